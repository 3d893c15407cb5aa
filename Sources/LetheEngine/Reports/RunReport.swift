import Foundation
import LetheCore

/// What `run` did.
public struct RunReport: Sendable, Equatable {
    public struct Rebuild: Sendable, Equatable {
        public var dataset: String, command: String
        public var exitStatus: Int32
        public var seconds: Double
        public var output: String
    }
    public var jobs: [String] = []
    public var objectsRewritten = 0
    public var objectsRemoved = 0
    /// On a bucket that keeps versions: noncurrent versions of the rewritten objects read, and those deleted (nil elsewhere).
    public var noncurrentVersionsExamined: Int?
    public var noncurrentVersionsDeleted: Int?
    public var rowsDropped: Int64 = 0
    /// Rows kept with the subject's fields replaced (`erase: mask`).
    public var rowsMasked: Int64 = 0
    /// Rows kept emptied (`erase: blank`).
    public var rowsBlanked: Int64 = 0
    public var rebuilds: [Rebuild] = []
    public var erased: [String] = []
    public var verifications: [Verification] = []
    /// A request the run failed, and why (one line, no personal data).
    public struct FailedRequest: Sendable, Equatable {
        public var id: String
        public var reason: String
        public init(id: String, reason: String) { self.id = id; self.reason = reason }
    }
    public var failed: [FailedRequest] = []
    /// Requests filed from change feeds (`deletes_from: change_feed`) before the job.
    public var propagation = PropagationReport()
    /// Datasets that could not be indexed: requests reaching them fail, the others proceed.
    public var datasetIssues: [DatasetIssue] = []
    /// Requests a run that died had claimed without journaling their job: taken back and planned anew.
    public var requeued: [String] = []
    /// Temporary files that killed runs left, removed.
    public var temporariesRemoved = 0
    /// Crypto-shredding: subjects whose data key the run destroyed, before any erasure step.
    public var keysDestroyed = 0
    /// Failures that belong to no request (e.g. a change feed that could not be read); the run exits 1.
    public var problems: [String] = []
    /// The run was asked to stop between steps (`Lethe.runStop`) before its work was done: what
    /// is left stays journaled for the next run. Not part of the JSON report.
    public var stopped = false
}

/// `run`'s report: what was erased, rebuilt, verified and failed. The rebuild commands' output,
/// the dataset issues and the feed versions read are for the operator's terminal, not the report.
extension RunReport: Codable {
    enum CodingKeys: String, CodingKey {
        case jobs, objectsRewritten = "objects_rewritten", objectsRemoved = "objects_removed", rowsDropped = "rows_dropped"
        case rowsMasked = "rows_masked", rowsBlanked = "rows_blanked"
        case erased, rebuilds, verifications, failed, requeued, problems, temporariesRemoved = "temporaries_removed"
        case propagated, keysDestroyed = "keys_destroyed"
        case noncurrentVersionsExamined = "noncurrent_versions_examined", noncurrentVersionsDeleted = "noncurrent_versions_deleted"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        jobs = try c.decode([String].self, forKey: .jobs)
        objectsRewritten = try c.decode(Int.self, forKey: .objectsRewritten)
        objectsRemoved = try c.decode(Int.self, forKey: .objectsRemoved)
        rowsDropped = try c.decode(Int64.self, forKey: .rowsDropped)
        rowsMasked = try c.decodeIfPresent(Int64.self, forKey: .rowsMasked) ?? 0
        rowsBlanked = try c.decodeIfPresent(Int64.self, forKey: .rowsBlanked) ?? 0
        erased = try c.decode([String].self, forKey: .erased)
        rebuilds = try c.decode([Rebuild].self, forKey: .rebuilds)
        verifications = try c.decode([Verification].self, forKey: .verifications)
        failed = try c.decode([FailedRequest].self, forKey: .failed)
        requeued = try c.decode([String].self, forKey: .requeued)
        problems = try c.decode([String].self, forKey: .problems)
        temporariesRemoved = try c.decode(Int.self, forKey: .temporariesRemoved)
        propagation.sources = try c.decode([PropagationReport.Source].self, forKey: .propagated)
        noncurrentVersionsExamined = try c.decodeIfPresent(Int.self, forKey: .noncurrentVersionsExamined)
        noncurrentVersionsDeleted = try c.decodeIfPresent(Int.self, forKey: .noncurrentVersionsDeleted)
        keysDestroyed = try c.decodeIfPresent(Int.self, forKey: .keysDestroyed) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(objectsRewritten, forKey: .objectsRewritten)
        try c.encode(objectsRemoved, forKey: .objectsRemoved)
        try c.encode(rowsDropped, forKey: .rowsDropped)
        // Present when a dataset masks or blanks (`erase: mask | blank`): reports of deletions keep their keys.
        if rowsMasked != 0 { try c.encode(rowsMasked, forKey: .rowsMasked) }
        if rowsBlanked != 0 { try c.encode(rowsBlanked, forKey: .rowsBlanked) }
        try c.encode(erased, forKey: .erased)
        try c.encode(rebuilds, forKey: .rebuilds)
        try c.encode(verifications, forKey: .verifications)
        try c.encode(failed, forKey: .failed)
        try c.encode(requeued, forKey: .requeued)
        try c.encode(problems, forKey: .problems)
        try c.encode(temporariesRemoved, forKey: .temporariesRemoved)
        try c.encode(propagation.sources, forKey: .propagated)
        try c.encodeIfPresent(noncurrentVersionsExamined, forKey: .noncurrentVersionsExamined)
        try c.encodeIfPresent(noncurrentVersionsDeleted, forKey: .noncurrentVersionsDeleted)
        if keysDestroyed > 0 { try c.encode(keysDestroyed, forKey: .keysDestroyed) }  // absent when none: reports before issue 15 unchanged
    }
}

/// In the report: `{"dataset", "exit_status", "seconds"}` (the command and its output are not reported).
extension RunReport.Rebuild: Codable {
    enum CodingKeys: String, CodingKey { case dataset, exitStatus = "exit_status", seconds }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            dataset: try c.decode(String.self, forKey: .dataset), command: "",
            exitStatus: try c.decode(Int32.self, forKey: .exitStatus), seconds: try c.decode(Double.self, forKey: .seconds),
            output: "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(exitStatus, forKey: .exitStatus)
        try c.encode(seconds, forKey: .seconds)
    }
}

extension RunReport.FailedRequest: Codable {}
