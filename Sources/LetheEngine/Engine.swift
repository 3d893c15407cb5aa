public import Foundation
public import Logging
public import LetheCore
public import LetheStorage
import LetheFormats
import DeltaLake
import Synchronization
public import LetheCatalog

/// Lethe's use cases over one lake: index, locate, forget, approve, run, verify,
/// audit. The CLI and the server are two doors into these calls.
public struct Lethe: Sendable {
    public let config: LakeConfig
    public let store: any ObjectStore
    public let meta: any StateStore
    public let secrets: StateSecrets
    /// The state folder (for the residue scan of Lethe's own state); nil for a remote state store.
    public let stateFolder: String?
    public let logger: Logger
    public let now: @Sendable () -> Int64
    /// Test hook: runs inside a Delta erasure between writing the replacements and committing them.
    var deltaCommitHook: (@Sendable () async throws -> Void)? = nil
    /// Test hook: the record format for a format name (e.g. one that counts the rows it keys); nil: `Formats.named`.
    var formatHook: (@Sendable (String) -> (any RecordFormat)?)? = nil
    /// Test hook: runs in a run's closing step just before its verification (another writer meanwhile).
    var beforeRunVerification: (@Sendable () async throws -> Void)? = nil
    /// Writes outbox messages even when `notify:` names no sink (a server with sinks of its own, tests);
    /// see `writesOutbox`.
    public var outboxAlways = false
    /// Crypto-shredding's vault (protect, reveal, ingest; its cache is evicted when a run destroys keys).
    /// Nil when the door opened none: destroying keys needs no key-encryption key.
    public var vault: Vault? = nil
    /// Object references this process has looked up (see `objectRefs`).
    let refCache = ObjectRefCache()
    /// The postings a run's plan read, for the first step of its job (see `PlannedPostings`).
    let plannedPostings = PlannedPostings()
    /// The plans a run's claim stored, as built (see `PlanMemo`).
    let planMemo = PlanMemo()
    /// The verification's keyed reads of a run's Delta replacements, made beside the vacuum (see `ReadAhead`).
    let readAhead = ReadAhead()
    /// Drops what a run kept for its own job (`plannedPostings`, `planMemo`, `readAhead`): called when
    /// the run ends, however it ends.
    func forgetRunMemos() {
        plannedPostings.clear()
        planMemo.clear()
        readAhead.clear()
    }
    /// Latest Delta snapshots this engine read (checked against the log before each use).
    let deltaSnapshots = SnapshotCache()
    /// Forgets the kept Delta snapshots (each run, index and verification starts afresh).
    func forgetDeltaSnapshots() { deltaSnapshots.clear() }

    public init(
        config: LakeConfig, store: any ObjectStore, meta: any StateStore, secrets: StateSecrets,
        stateFolder: String?, logger: Logger = Logger(label: "lethe"),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.config = config; self.store = store; self.meta = meta; self.secrets = secrets
        self.stateFolder = stateFolder; self.logger = logger; self.now = now
    }

    /// A logger at the level `LETHE_LOG_LEVEL` names (trace … critical), `error` by default:
    /// commands report what matters in their own output.
    public static func defaultLogger() -> Logger {
        var l = Logger(label: "lethe")
        l.logLevel = ProcessInfo.processInfo.environment["LETHE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return l
    }

    /// The keyed hash of a subject.
    public func key(for subject: SubjectID) -> SubjectKey { secrets.hasher.key(for: subject) }

    /// One id typed as text: its UTF-8 bytes, never split (composite subjects and other forms: `SubjectInput`).
    public func subject(_ text: String) -> SubjectID { SubjectID(text) }

    /// How the engine lists, reads and erases dataset `d` (see `DatasetDriver`).
    func driver(for d: DatasetSpec) -> any DatasetDriver { DatasetDrivers.driver(for: d) }

    func format(for d: DatasetSpec) throws -> any RecordFormat {
        guard let f = formatHook?(driver(for: d).formatName) ?? Formats.named(driver(for: d).formatName) else {
            throw LetheError(
                .badInput, "dataset `\(d.name)`: format `\(d.format.rawValue)` is not supported by this build yet",
                at: "\(config.file):\(d.line)")
        }
        return f
    }

    func options(for d: DatasetSpec) -> FormatOptions? {
        guard let s = d.subject else { return nil }
        var o = FormatOptions(subject: s)
        o.delimiter = d.delimiter
        o.pii = d.pii
        return driver(for: d).baseOptions(o)
    }

    /// Commits a change of the state (a journal step's end, index entries, a cursor, the
    /// temporary files a commit adopted) together with the audit entries recording it, in one
    /// transaction: both land or neither does. There is no lone audit write: an entry is
    /// always the record of a change committed with it.
    /// `ending`: the journal step whose end `change` records; when it is the claimed step
    /// (`StepLease.current`), `StepLease.ended` is set once the transaction has committed.
    func commit(
        _ what: String, audit: [AuditNote], ending: (job: String, ordinal: Int64)? = nil,
        _ change: @escaping @Sendable (any StateTransaction) throws -> Void
    ) async throws {
        let at = now()
        let entries = audit.map { ($0.event, $0.actor, JSONValue.object($0.details).text) }
        // Inside a claimed step (a worker's lease): the fence first, so a holder whose lease was
        // lost commits nothing (neither the change nor its audit entries).
        let lease = StepLease.current
        // The claimed step's end: marked as committing before the transaction, so a renewal that
        // finds the step no longer pending meanwhile waits for this commit's outcome.
        let end = lease.flatMap { l in ending.flatMap { $0.job == l.step.job && $0.ordinal == l.step.ordinal ? StepLease.ended : nil } }
        end?.committing()
        do {
            try await meta.transaction(what) { tx in
                if let lease {
                    try tx.journal.holdLease(job: lease.step.job, ordinal: lease.step.ordinal, owner: lease.owner, epoch: lease.epoch)
                }
                try change(tx)
                for (event, actor, details) in entries {
                    try tx.appendAudit(event: event, requestID: nil, actor: actor, details: details, at: at)
                }
            }
        } catch {
            end?.settled(committed: false)
            throw error
        }
        end?.settled(committed: true)
    }
}

extension Lethe {
    /// Records a step's end with no audit entry, through `commit` (so a claimed step is fenced).
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) async throws {
        try await commit("cannot record journal step \(job)#\(ordinal)", audit: [], ending: (job, ordinal)) { tx in
            try tx.finishStep(job: job, ordinal: ordinal, state: state, outcome: outcome)
        }
    }
}

/// The lease of the step the current task executes (a worker's claim, `WorkQueue`); nil outside
/// one. Every `Lethe.commit` made while it is set runs the fence (`JournalWriter.holdLease`) first.
public enum StepLease {
    @TaskLocal public static var current: Lease?
    /// Set once the claimed step's end has committed under its lease: from then on the step is no
    /// longer pending, so a renewal finds the lease gone — the step's own doing, not a loss
    /// (`Lethe.workOne`'s heartbeat stops instead of cancelling the step and dropping its report).
    @TaskLocal static var ended: StepEnded?
}

/// Whether a claimed step's end has committed (`StepLease.ended`): not yet, being committed, or committed.
final class StepEnded: Sendable {
    private let state = Atomic<Int>(0)  // 0 not ended, 1 committing, 2 committed
    func committing() { state.store(1, ordering: .releasing) }
    func settled(committed: Bool) { state.store(committed ? 2 : 0, ordering: .releasing) }
    /// Whether the end has committed, waiting out a commit under way.
    func hasEnded() async throws -> Bool {
        while state.load(ordering: .acquiring) == 1 { try await Task.sleep(for: .milliseconds(5)) }
        return state.load(ordering: .acquiring) == 2
    }
}

/// An audit entry to commit with the state change it records (see `Lethe.commit`).
struct AuditNote: Sendable {
    var event: AuditEvent
    var actor: String?
    var details: [String: JSONValue]
    init(_ event: AuditEvent, actor: String? = "lethe", _ details: [String: JSONValue]) {
        self.event = event; self.actor = actor; self.details = details
    }
}
