import LetheCore
import LetheCatalog

// What the index covers, per dataset (the dashboard's index page): objects, records, when last indexed,
// and the quarantined objects with the reason each could not be read.

/// The subject index's coverage of one dataset.
public struct DatasetCoverage: Sendable, Equatable {
    public struct Quarantined: Sendable, Equatable {
        public var key: String
        /// Why it could not be indexed (one line, no personal data).
        public var issue: String
        /// `unsupported` (data Lethe refuses by name) or another `LetheError` code (unreadable).
        public var code: String?
        public var at: Int64
    }
    public var name: String
    public var format: String
    /// Objects the index knows (indexed and quarantined).
    public var objects: Int
    /// Records of the indexed objects.
    public var records: Int64
    /// When an object of it was last indexed (ms; nil: never indexed).
    public var lastIndexedAt: Int64?
    public var quarantined: [Quarantined]
}

extension Lethe {
    /// The index's coverage of every configured dataset, in the configuration's order.
    public func indexCoverage() async throws -> [DatasetCoverage] {
        var out: [DatasetCoverage] = []
        for d in config.datasets {
            let objects = try await meta.objects(dataset: d.name)
            var c = DatasetCoverage(name: d.name, format: d.format.rawValue, objects: objects.count, records: 0, lastIndexedAt: nil, quarantined: [])
            for o in objects {
                c.lastIndexedAt = max(c.lastIndexedAt ?? o.indexedAt, o.indexedAt)
                if o.status == .quarantined {
                    c.quarantined.append(.init(key: o.key, issue: o.issue ?? "unreadable", code: o.issueCode, at: o.indexedAt))
                } else {
                    c.records += o.records
                }
            }
            c.quarantined.sort { $0.key < $1.key }
            out.append(c)
        }
        return out
    }
}
