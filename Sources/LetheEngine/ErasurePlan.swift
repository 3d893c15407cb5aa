import Foundation
import LetheCore
import LetheCatalog

/// Everything one request will touch: each dataset holding the subject (objects
/// and row counts from the index), then the derived datasets lineage reaches, in
/// lineage order. Stored on the request as JSON; holds only keyed hashes.
public struct ErasurePlan: Codable, Sendable, Equatable {
    public struct Object: Codable, Sendable, Equatable {
        public var key: String
        public var rows: Int64
        /// `indexed`, or `unreadable` for a quarantined object that may hold the subject.
        public var state: String
    }
    public struct Dataset: Codable, Sendable, Equatable {
        public var name: String
        public var format: String
        /// `holds` (the index found the subject), `derived` (reached through lineage), or `rebuild`.
        public var role: String
        public var derivedFrom: [String]
        public var objects: [Object]
        public var rows: Int64
        public var rebuild: String?
    }
    public var subjectKey: String
    public var plannedAt: Int64
    public var datasets: [Dataset]
    public var totalObjects: Int
    public var totalRows: Int64
    /// The subject's key in `normalize: nfc` datasets when it differs from `subjectKey` (see `nfcKey(for:)`).
    public var nfcSubjectKey: String? = nil

    enum CodingKeys: String, CodingKey {
        case subjectKey = "subject_key", plannedAt = "planned_at", datasets
        case totalObjects = "total_objects", totalRows = "total_rows", nfcSubjectKey = "nfc_subject_key"
    }

    public var json: [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(self)) ?? Data())
    }

    public static func decode(_ bytes: [UInt8]) -> ErasurePlan? {
        try? JSONDecoder().decode(ErasurePlan.self, from: Data(bytes))
    }
}

extension ErasurePlan.Dataset {
    enum CodingKeys: String, CodingKey { case name, format, role, derivedFrom = "derived_from", objects, rows, rebuild }
}

extension Lethe {
    /// Plans the erasure of one subject from the index and the lineage.
    public func plan(_ key: SubjectKey, nfc: SubjectKey? = nil) async throws -> ErasurePlan {
        let postings = try await postings(key, nfc: nfc)
        var byDataset: [String: [ErasurePlan.Object]] = [:]
        for p in postings {
            byDataset[p.object.dataset, default: []].append(.init(key: p.object.key, rows: Int64(p.rows.count), state: "indexed"))
        }
        let holding = Set(byDataset.keys)
        let reached = Set(config.downstream(of: holding).map(\.name))
        var out: [ErasurePlan.Dataset] = []
        for d in config.datasets where holding.contains(d.name) || reached.contains(d.name) {
            var objects = (byDataset[d.name] ?? []).sorted { $0.key < $1.key }
            if d.subject != nil {
                // An unreadable object may hold the subject: the run must try it, and fails the request while it cannot.
                for q in try await meta.objects(dataset: d.name) where q.status == .quarantined {
                    objects.append(.init(key: q.key, rows: 0, state: "unreadable"))
                }
            }
            let role = holding.contains(d.name) ? "holds" : (d.subject == nil ? "rebuild" : "derived")
            out.append(.init(name: d.name, format: d.format.rawValue, role: role, derivedFrom: d.derivedFrom,
                             objects: objects, rows: objects.reduce(0) { $0 + $1.rows }, rebuild: d.rebuild))
        }
        return ErasurePlan(subjectKey: key.hex, plannedAt: now(), datasets: out,
                           totalObjects: out.reduce(0) { $0 + $1.objects.count },
                           totalRows: out.reduce(0) { $0 + $1.rows }, nfcSubjectKey: nfc?.hex)
    }
}
