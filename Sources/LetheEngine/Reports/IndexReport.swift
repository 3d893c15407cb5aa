import Foundation
import LetheCore

/// What an index run did.
public struct IndexReport: Sendable {
    public struct Quarantined: Sendable { public var dataset: String; public var object: String; public var issue: String }
    public var datasets: [String] = []
    public var objectsSeen = 0
    public var objectsScanned = 0
    public var objectsUnchanged = 0
    public var objectsRemoved = 0
    public var records: Int64 = 0
    public var bytesScanned: Int64 = 0
    public var seconds: Double = 0
    public var quarantined: [Quarantined] = []
    /// Removed large objects whose postings this run deleted.
    public var purgedObjects = 0
    /// Datasets that could not be indexed at all (the others were): recorded, and reported.
    public var datasetIssues: [DatasetIssue] = []
}
