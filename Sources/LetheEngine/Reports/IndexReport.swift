import Foundation
import LetheCore

/// What an index run did.
public struct IndexReport: Sendable, Equatable, Codable {
    public struct Quarantined: Sendable, Equatable, Codable { public var dataset: String; public var object: String; public var issue: String }
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

extension IndexReport {
    enum CodingKeys: String, CodingKey {
        case datasets, objectsSeen = "objects_seen", objectsScanned = "objects_scanned"
        case objectsUnchanged = "objects_unchanged", objectsRemoved = "objects_removed", records
        case bytesScanned = "bytes", seconds, quarantined, datasetIssues = "dataset_issues"
    }
}

extension DatasetIssue.Kind: Codable {}

/// In reports: `{"dataset", "kind", "issue"}`.
extension DatasetIssue: Codable {
    enum CodingKeys: String, CodingKey { case dataset, kind, message = "issue" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dataset: try c.decode(String.self, forKey: .dataset), kind: try c.decode(Kind.self, forKey: .kind),
            message: try c.decode(String.self, forKey: .message))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(kind, forKey: .kind)
        try c.encode(message, forKey: .message)
    }
}
