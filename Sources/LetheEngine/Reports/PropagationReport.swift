import Foundation
import LetheCore

/// What propagation through change feeds did.
public struct PropagationReport: Sendable {
    public struct Source: Sendable {
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
