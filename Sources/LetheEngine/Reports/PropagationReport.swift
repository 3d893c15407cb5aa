import Foundation
import LetheCore

/// What propagation through change feeds did.
public struct PropagationReport: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        public var dataset: String
        /// Versions of the feed read, e.g. 4...9 (nil when there was nothing new).
        public var versions: ClosedRange<Int64>?
        /// Subjects the other tool deleted, by keyed hash.
        public var deleted: Int
        /// Requests filed and approved for them.
        public var filed: [String]
        /// Subjects deleted but still with live rows in the table (a partial delete, e.g.
        /// de-duplication, is not an erasure): not propagated.
        public var stillLive: Int
        /// Change data files already gone (vacuumed) when read.
        public var missingFiles: Int
    }
    public var sources: [Source] = []
    public var filed: Int { sources.reduce(0) { $0 + $1.filed.count } }
}

/// In `run`'s report (`propagated`): `{"dataset", "deleted_subjects", "requests", "still_live"}`;
/// the versions read and missing files are not reported.
extension PropagationReport.Source: Codable {
    enum CodingKeys: String, CodingKey {
        case dataset, deleted = "deleted_subjects", filed = "requests", stillLive = "still_live"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dataset: try c.decode(String.self, forKey: .dataset), versions: nil,
            deleted: try c.decode(Int.self, forKey: .deleted), filed: try c.decode([String].self, forKey: .filed),
            stillLive: try c.decode(Int.self, forKey: .stillLive), missingFiles: 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(deleted, forKey: .deleted)
        try c.encode(filed, forKey: .filed)
        try c.encode(stillLive, forKey: .stillLive)
    }
}
