import LetheCore

// The work queue: the steps of journaled jobs, claimed by many workers (`lethe worker`) with leases
// that expire. A state store shared by several machines offers it (PostgreSQL); the embedded SQLite
// state does not (`StateStore.workQueue` is nil there, and `lethe run` executes a job's steps in order
// in one process, as always).

/// A worker process, as the queue names it: `host:pid:startMillis` (unique across machines and restarts).
public struct WorkerID: Hashable, Sendable, CustomStringConvertible {
    public var raw: String
    public init(_ raw: String) { self.raw = raw }
    public var description: String { raw }
}

/// A claimed step: the step as journaled (its `attempts` counts this claim), who holds it, and the
/// claim's epoch. The epoch goes up with every claim of the step: a holder whose lease expired and
/// was claimed again holds an older epoch, and its commit is refused (the fence,
/// `JournalWriter.holdLease`).
public struct Lease: Sendable, Equatable {
    public var step: JournalStep
    public var owner: WorkerID
    public var epoch: Int64
    public init(step: JournalStep, owner: WorkerID, epoch: Int64) { self.step = step; self.owner = owner; self.epoch = epoch }
}

/// The steps of journaled jobs, claimed with leases. A step is claimable when it is pending, nobody
/// holds an unexpired lease on it, and no step of its job in an earlier wave is pending
/// (`JournalStep.wave`). Deadlines are the database's clock, never a worker's.
public protocol WorkQueue: Sendable {
    /// Records a worker (and its first heartbeat).
    func register(_ worker: WorkerID) async throws
    /// Forgets a worker (graceful shutdown).
    func deregister(_ worker: WorkerID) async throws
    /// Claims one claimable step for `worker` for `ttl` (attempts + 1, epoch + 1); nil when none is.
    func claim(_ worker: WorkerID, ttl: Duration) async throws -> Lease?
    /// Renews leases for `ttl` and the worker's heartbeat; returns the leases it no longer holds
    /// (claimed again by another worker after expiring, or finished).
    func renew(_ worker: WorkerID, leases: [Lease], ttl: Duration) async throws -> [Lease]
    /// Gives a step back unfinished (graceful shutdown): claimable again at once, this claim not
    /// counted as an attempt. No-op when the lease is no longer held.
    func release(_ lease: Lease) async throws
    /// Runs `body` holding the coordinator lock (one coordinator at a time per state, freed when the
    /// holder's connection closes, `kill -9` included); nil without running it when another holds it.
    func whileCoordinating<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T?
}

extension JournalStep {
    /// The order in which a job's steps may run concurrently: every step of a wave may run once no
    /// step of the job in a lower wave is pending. Object, Delta table and dataset issue steps are
    /// wave 0 (independent of each other); rebuild steps follow all of them, one at a time in
    /// ordinal (lineage) order (`1 + ordinal`); the closing step comes last (`settleWave`).
    public var wave: Int64 { Self.wave(kind: kind, ordinal: ordinal) }

    /// The wave of the job's closing step (after every other).
    public static let settleWave: Int64 = 1 << 40

    public static func wave(kind: Kind, ordinal: Int64) -> Int64 {
        switch kind {
        case .object, .deltaTable, .datasetIssue: return 0
        case .rebuild: return 1 + ordinal
        case .settle: return settleWave
        }
    }
}

extension JournalWriter {
    /// The fence: before a step's end commits, checks that `owner` still holds the step's lease at
    /// `epoch` (and locks the step until the transaction ends); `.conflict` when it does not, so the
    /// whole transaction — the step's end and its audit entries — rolls back. Stores without a work
    /// queue have no leases: they refuse.
    public func holdLease(job: String, ordinal: Int64, owner: WorkerID, epoch: Int64) throws {
        throw LetheError(.unsupported, "this state store has no work queue (leases need `state: postgres://…`)")
    }
}

extension StateStore {
    /// The work queue of a state shared by many workers; nil (the default) for a state one process runs.
    public var workQueue: (any WorkQueue)? { nil }
}

// MARK: Index backfill items (`lethe index --distribute`)

/// A piece of an index backfill that one worker scans: objects of one dataset (at most 64 objects
/// and 256 MiB), or a whole Delta table (`keys` empty, `table` true: its log replay stays in one
/// process). Items of one run share a `batch`.
public struct IndexItem: Sendable, Equatable, Codable {
    public var batch: String
    public var ordinal: Int64
    public var dataset: String
    /// The lake keys to scan (objects the coordinator found new or changed).
    public var keys: [String]
    /// A Delta table: the worker indexes the whole table incrementally.
    public var table: Bool
    /// The dataset's index spec fingerprint, recorded when the dataset's last item of the batch completes.
    public var fingerprint: String?
    public init(batch: String, ordinal: Int64, dataset: String, keys: [String], table: Bool = false, fingerprint: String? = nil) {
        self.batch = batch; self.ordinal = ordinal; self.dataset = dataset; self.keys = keys; self.table = table
        self.fingerprint = fingerprint
    }
}

/// A claimed index item, fenced by its epoch as a step is (`Lease`).
public struct IndexLease: Sendable, Equatable {
    public var item: IndexItem
    public var owner: WorkerID
    public var epoch: Int64
    /// Claims of the item so far, this one included.
    public var attempts: Int
    public init(item: IndexItem, owner: WorkerID, epoch: Int64, attempts: Int) {
        self.item = item; self.owner = owner; self.epoch = epoch; self.attempts = attempts
    }
}

/// Where a batch of index items stands: how many are pending, and the reports of those done
/// (each the JSON its worker recorded with the item's completion).
public struct IndexBatchStatus: Sendable, Equatable {
    public var pending: Int
    public var done: Int
    public var reports: [String]
    public init(pending: Int, done: Int, reports: [String]) { self.pending = pending; self.done = done; self.reports = reports }
}

/// The index backfill items of a work queue (PostgreSQL); stores without them refuse.
public protocol IndexItemQueue: Sendable {
    /// Records items (pending, claimable at once).
    func enqueueIndexItems(_ items: [IndexItem]) async throws
    /// Claims one pending item nobody holds a live lease on (attempts + 1, epoch + 1); nil when none is.
    func claimIndexItem(_ worker: WorkerID, ttl: Duration) async throws -> IndexLease?
    /// Renews the lease; false when it is no longer held (claimed again after expiring, released,
    /// or ended by another holder). True, and nothing changed, once the item ended under this very
    /// lease: a renewal that raced its holder's end is no lost lease.
    func renewIndexItem(_ lease: IndexLease, ttl: Duration) async throws -> Bool
    /// Gives an item back unfinished (shutdown): claimable at once, the attempt not counted.
    func releaseIndexItem(_ lease: IndexLease) async throws
    /// The batch's pending and done items.
    func indexBatch(_ batch: String) async throws -> IndexBatchStatus
}

extension JournalWriter {
    /// The fence and the end of a claimed index item, in the transaction that commits its postings:
    /// refuses (`.conflict`) unless `lease` is still held, then records the item done with `report`.
    /// Returns true when no item of the same batch and dataset is pending any more (the caller then
    /// records the dataset as indexed). Stores without a work queue refuse.
    public func finishIndexItem(_ lease: IndexLease, report: String) throws -> Bool {
        throw LetheError(.unsupported, "this state store has no work queue (index items need `state: postgres://…`)")
    }
}
