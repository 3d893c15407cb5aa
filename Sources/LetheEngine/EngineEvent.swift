import LetheCore

/// What `run` (and `propagate`) report while they work, typed: a door shows `message` (the
/// CLI prints it on stderr), a benchmark or a service matches the cases.
public enum EngineEvent: Sendable, Equatable, Codable {
    /// Another `lethe run` holds the run lock of this state.
    case waitingForRunLock
    /// Temporary files killed runs left were removed.
    case temporariesRemoved(count: Int)
    /// An unfinished job (a crash or kill mid-run) is resumed.
    case resumingJob(job: String)
    /// Requests a dead run left `running` without a job were taken back.
    case requestsTakenBack(count: Int)
    /// Erased requests whose verification did not finish are verified.
    case verifyingUnfinished(count: Int)
    /// A table's change feed could not be read (the run goes on; exit 1).
    case changeFeedNotRead(dataset: String, error: String)
    /// A change feed was read: subjects another tool deleted, requests filed and approved for them.
    case changeFeedRead(dataset: String, fromVersion: Int64, toVersion: Int64, deleted: Int, filed: Int, stillLive: Int)
    /// A job was planned and journaled.
    case jobPlanned(job: String, requests: Int, steps: Int)
    /// An object was rewritten (or removed) without the subjects' records.
    case objectErased(dataset: String, object: String, dropped: Int64, kept: Int64)
    /// A Delta erasure (one commit for the table) conflicted with another writer and plans again.
    case tableReplanning(dataset: String, reason: String, attempt: Int)
    /// A Delta erasure committed.
    case tableCommitted(dataset: String, version: Int64, droppedRows: Int64, files: Int)
    /// The targeted vacuum after a Delta erasure.
    case tableVacuumed(dataset: String, deletedFiles: Int, rewrittenChangeData: Int, scrubbedCommits: Int)
    /// Change data files of partitions named after an erased subject were removed.
    case partitionChangeDataRemoved(dataset: String, count: Int)
    /// A dataset's rebuild command starts.
    case rebuilding(dataset: String, command: String)
    /// A step failed (its requests fail with the reason).
    case stepFailed(dataset: String, reason: String)
    /// The job's erased requests are verified.
    case verifying(count: Int)
    /// `lethe sweep` starts: verified requests not swept yet, and the datasets it reads.
    case sweepStarted(requests: Int, datasets: Int)
    /// The sweep read a dataset's objects.
    case sweepDataset(dataset: String, objects: Int, bytes: Int64)
    /// The sweep found what the index did not: the request fails again (the next run erases it).
    case sweepFound(request: String, findings: Int)
    /// Sealed raw ids were destroyed (`why`: `swept`, `deadline`).
    case rawIDsDestroyed(count: Int, why: String)

    /// The line a person reads.
    public var message: String {
        switch self {
        case .waitingForRunLock:
            return "waiting for another `lethe run` on this state to finish"
        case .temporariesRemoved(let n):
            return "removed \(n) temporary file(s) a killed run left"
        case .resumingJob(let job):
            return "resuming job \(job)"
        case .requestsTakenBack(let n):
            return "took back \(n) request(s) left running without a job"
        case .verifyingUnfinished(let n):
            return "verifying \(n) erased request(s) whose verification did not finish"
        case .changeFeedNotRead(let d, let error):
            return "\(d): change feed not read: \(error)"
        case .changeFeedRead(let d, let from, let to, let deleted, let filed, let stillLive):
            return
                "\(d): change feed v\(from)-\(to): \(deleted) subject(s) deleted by another tool, \(filed) request(s) filed and approved, \(stillLive) still live"
        case .jobPlanned(let job, let requests, let steps):
            return "job \(job): \(requests) request(s), \(steps) step(s)"
        case .objectErased(let d, let object, let dropped, let kept):
            return "\(d): \(object): dropped \(dropped), kept \(kept)"
        case .tableReplanning(let d, let reason, let attempt):
            return "\(d): \(reason); re-planning (\(attempt))"
        case .tableCommitted(let d, let version, let dropped, let files):
            return "\(d): committed version \(version): dropped \(dropped) rows from \(files) file(s)"
        case .tableVacuumed(let d, let deleted, let rewritten, let scrubbed):
            return "\(d): vacuumed: deleted \(deleted) history file(s), rewrote \(rewritten) change data file(s), scrubbed \(scrubbed) commit(s)"
        case .partitionChangeDataRemoved(let d, let n):
            return "\(d): removed \(n) change data file(s) of erased partitions"
        case .rebuilding(let d, let command):
            return "\(d): rebuilding: \(command)"
        case .stepFailed(let d, let reason):
            return "\(d): FAILED: \(reason)"
        case .verifying(let n):
            return "verifying \(n) request(s)"
        case .sweepStarted(let n, let d):
            return "sweeping \(d) dataset(s) and the state for \(n) verified request(s) not swept yet"
        case .sweepDataset(let d, let objects, let bytes):
            return "\(d): swept \(objects) object(s), \(bytes) bytes"
        case .sweepFound(let id, let n):
            return "\(id): the sweep found \(n) place(s) the index missed: it fails again; `lethe run` erases them"
        case .rawIDsDestroyed(let n, let why):
            return "destroyed \(n) sealed raw id(s) (\(why))"
        }
    }
}

/// Where `run` sends its events.
public typealias EngineEvents = @Sendable (EngineEvent) -> Void
