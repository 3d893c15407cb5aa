import Foundation
import LetheCore

/// What `run` did.
public struct RunReport: Sendable {
    public struct Rebuild: Sendable {
        public var dataset: String, command: String
        public var exitStatus: Int32
        public var seconds: Double
        public var output: String
    }
    public var jobs: [String] = []
    public var objectsRewritten = 0
    public var objectsRemoved = 0
    public var rowsDropped: Int64 = 0
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
    /// Failures that belong to no request (e.g. a change feed that could not be read); the run exits 1.
    public var problems: [String] = []
}
