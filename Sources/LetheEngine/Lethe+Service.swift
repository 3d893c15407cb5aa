public import LetheCore
public import LetheCatalog
import LetheStorage
import Foundation

// What the HTTP service (`lethe serve`) asks of the engine beyond the CLI's calls: pages addressed
// by a cursor, the audit log after a sequence number, and whether the lake and the state answer.

extension Lethe {
    /// At most this many approved requests per run (the scheduler's `serve.batch_max`); nil: all of
    /// them. The rest stay approved for the next run. Task-local: set around one `run` call.
    @TaskLocal public static var runBatchMax: Int? = nil

    /// Asked between a run's steps (`lethe serve`: whether a graceful shutdown began). When it answers
    /// true the run stops there: the step under way has finished and is journaled, the job's other
    /// steps stay pending (its requests `running`), no new job is planned, and the next run resumes the
    /// job as it resumes a killed one (`RunReport.stopped`). Task-local: set around one `run` call.
    /// (A class, so that the task-local value is one reference: an optional closure as a task-local
    /// value crashed optimized builds in `swift_task_localValuePush`.)
    @TaskLocal public static var runStop: RunStop? = nil

    /// Whether the run under way was asked to stop (`runStop`).
    static var stopRequested: Bool { runStop?.asked() ?? false }

    /// One page of requests in filing order (optionally of one status), starting after the request
    /// id `after`; `next` is the id to pass for the following page (nil at the end).
    public func requestPage(status: RequestStatus?, after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        try await meta.requests.requests(status: status, after: after, limit: max(1, limit))
    }

    /// Up to `limit` audit entries after sequence number `seq` (0: from the first), texts resolved.
    public func auditLines(after seq: Int64, limit: Int) async throws -> [AuditLine] {
        let page = try await meta.audit.entries(from: max(0, seq) + 1, limit: max(1, limit))
        guard !page.isEmpty else { return [] }
        let texts = try await meta.audit.texts()
        return page.map { e in
            let (actor, details) = resolveAuditTexts(e, texts)
            return AuditLine(entry: e, actor: actor, details: details)
        }
    }

    /// The newest audit entry (nil for an empty log): the chain head to record elsewhere.
    public func auditHead() async throws -> AuditEntry? { try await meta.audit.head() }

    /// The subject index's size: objects indexed, objects quarantined, index entries (postings).
    public func indexStats() async throws -> (objects: Int64, quarantined: Int64, entries: Int64) {
        let s = try await meta.index.indexStats()
        return (s.objects, s.quarantined, s.postings)
    }

    /// Throws unless the state store is intact and answers, and the lake can be listed (a local lake
    /// folder that exists; an S3 bucket that answers a listing).
    public func checkReachable() async throws {
        try meta.checkIntact()
        _ = try await meta.audit.head()
        if case .folder(let root) = config.lake {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
                throw LetheError(.io, "the lake folder is missing", at: root)
            }
        }
        var it = store.list(prefix: config.datasets.first?.path ?? "", startAfter: nil).makeAsyncIterator()
        _ = try await it.next()
    }
}

/// What a run asks between its steps to know whether to stop there (`Lethe.runStop`).
public final class RunStop: Sendable {
    let asked: @Sendable () -> Bool
    /// `asked` is called between steps, in the run's task (so it can read that task's task-locals).
    public init(_ asked: @escaping @Sendable () -> Bool) { self.asked = asked }
}
