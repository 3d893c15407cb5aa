public import LetheCore

// The state seam, split by capability: a store offers readers (each read is one read transaction)
// and one unit of work, `transaction`, whose writers commit together or not at all. SQLite
// (embedded) implements it today; a PostgreSQL store implements the same readers and `transaction`.
// Crypto-shredding's keys: `VaultKeyReader`/`VaultKeyWriter` (VaultKeys.swift). The work queue of a
// state shared by many workers: `WorkQueue` (WorkQueue.swift).

/// One page of a listing: its items, and the cursor to pass as `after` for the next page (nil: last page).
public struct Page<T: Sendable>: Sendable {
    public var items: [T]
    public var next: String?
    public init(items: [T], next: String?) { self.items = items; self.next = next }
}

/// The subject index, read.
public protocol SubjectIndexReader: Sendable {
    /// Every object of a dataset the index knows (indexed or quarantined), by key.
    func objects(dataset: String) async throws -> [IndexedObject]
    /// Where a subject key prefix has postings, across datasets (optionally one).
    func locate(prefix: Int64, dataset: String?) async throws -> [Posting]
    /// `locate(prefix:dataset:)` for many prefixes in one read (a batch of requests): postings by prefix
    /// (prefixes without any are absent).
    func locate(prefixes: [Int64], dataset: String?) async throws -> [Int64: [Posting]]
    /// Every quarantined object, of every dataset.
    func quarantinedObjects() async throws -> [IndexedObject]
    /// The datasets the index holds at least one object of.
    func datasetsWithObjects() async throws -> Set<String>
    /// Counts: objects, quarantined objects, postings.
    func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64)
    /// The keys behind object references that are still known (purged ones are absent).
    func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)]
}

/// Erasure requests, read.
public protocol RequestReader: Sendable {
    func request(id: String) async throws -> ErasureRequest?
    /// The requests with these ids that exist, in the order given, in one read (a batch: a run's
    /// thousand requests are one round trip, not a thousand).
    func requests(ids: [String]) async throws -> [ErasureRequest]
    /// Requests in filing order, optionally of one status, at most `limit` after the cursor `after`.
    func requests(status: RequestStatus?, after: String?, limit: Int) async throws -> Page<ErasureRequest>
    /// The open request (not rejected, not verified) of each of these subjects that has one.
    func openRequests(subjectKeys: [SubjectKey]) async throws -> [SubjectKey: ErasureRequest]
    /// The stream deletion set's changes: stream tags of forgotten requests (status
    /// approved, running, erased, verified or failed) with `updated_at >= since`, tags
    /// of requests rejected at or after `since` whose tag no forgotten request holds,
    /// and the newest `updated_at`. `since: Int64.min` gives the whole set.
    func deletionTags(since: Int64) async throws -> DeletionChanges
    /// Requests that still hold their sealed subject but no stream tag (filed before stream filtering).
    func requestsWithoutStreamTag() async throws -> [ErasureRequest]
    /// Verified requests not swept since (the sweep's work), in filing order, at most `limit` after the cursor `after`.
    func unswept(after: String?, limit: Int) async throws -> Page<ErasureRequest>
    /// Requests still holding their sealed raw id whose deadline (`rawDueAt`) is at or before `now`,
    /// at most `limit`, in deadline order (every writing command destroys them first).
    func rawIDsDue(now: Int64, limit: Int) async throws -> [ErasureRequest]
    /// The sweep marks of a request (`sweep --dataset`: which scopes a sweep covered, and when), by scope.
    func sweepMarks(requestID: String) async throws -> [SweepMark]
    /// A sweep as recorded, or nil.
    func sweep(id: String) async throws -> SweepRecord?
}

/// A request's mark for one scope of a sweep (a dataset name, or `!state` for Lethe's own state).
public struct SweepMark: Sendable, Equatable {
    public var requestID: String
    public var scope: String
    public var sweepID: String
    public var at: Int64
    public init(requestID: String, scope: String, sweepID: String, at: Int64) {
        self.requestID = requestID; self.scope = scope; self.sweepID = sweepID; self.at = at
    }
}

/// One sweep (`sweeps` table): what it covered and how it ended (`result` nil while it runs or when killed).
public struct SweepRecord: Sendable, Equatable {
    public var id: String
    public var startedAt: Int64
    public var finishedAt: Int64?
    /// `lake`, or the dataset names it was limited to.
    public var scope: String
    public var objects: Int64
    public var bytes: Int64
    public var result: String?
    public init(id: String, startedAt: Int64, finishedAt: Int64? = nil, scope: String, objects: Int64 = 0, bytes: Int64 = 0, result: String? = nil) {
        self.id = id; self.startedAt = startedAt; self.finishedAt = finishedAt; self.scope = scope
        self.objects = objects; self.bytes = bytes; self.result = result
    }
}

/// The audit log, read.
public protocol AuditReader: Sendable {
    /// At most `limit` entries from sequence number `seq` on, in order.
    func entries(from seq: Int64, limit: Int) async throws -> [AuditEntry]
    /// The last entry (nil for an empty log).
    func head() async throws -> AuditEntry?
    /// Every text the audit log references: those still held, and the ids of those purged.
    func texts() async throws -> AuditTexts
    /// The keyed digest the audit chain commits to for a text (`AuditChain.textDigest` under the audit key).
    func textDigest(_ text: String) -> String
    /// Every entry about a request, in order: its own entries and the batch entries listing it.
    func entries(requestID: String) async throws -> [AuditEntry]
}

/// The execution journal and the temporary files, read.
public protocol JournalReader: Sendable {
    /// Steps of every job that has a pending step, in (job, ordinal) order.
    func pendingSteps() async throws -> [JournalStep]
    func steps(job: String) async throws -> [JournalStep]
    /// Files recorded and not yet forgotten.
    func temporaries() async throws -> [TemporaryFile]
}

/// Cursors (how far a dataset was indexed or propagated) and settings, read.
public protocol CursorReader: Sendable {
    /// How far `index` read a Delta dataset's log (nil: never, or under a cursor this build cannot read).
    func deltaIndex(dataset: String) async throws -> DeltaIndexCursor?
    /// The last change-feed version `deletes_from: change_feed` propagated from a dataset.
    func propagation(dataset: String) async throws -> Int64?
    func setting(_ name: String) async throws -> String?
    /// Every setting whose name starts with `prefix`.
    func settings(prefix: String) async throws -> [String: String]
}

/// The subject index, written inside a transaction.
public protocol SubjectIndexWriter {
    /// Replaces what the index holds for each object: upserts the object row and replaces all its
    /// postings (subject key prefix → ascending rows). Returns the stored objects (with their ids).
    @discardableResult
    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [IndexedObject]
    /// Records an object as quarantined (drops its postings).
    @discardableResult
    func quarantine(_ object: IndexedObject) throws -> IndexedObject
    /// Forgets objects that are gone from the lake (and their postings: at once, or for a large
    /// object at the next `purgeDeadPostings`; `locate` never returns them).
    func removeObjects(dataset: String, keys: [String]) throws
    /// Deletes the postings removed large objects left, when they outweigh a quarter of the
    /// live ones (or always with `force`); returns the number of objects purged.
    @discardableResult
    func purgeDeadPostings(force: Bool) throws -> Int
    /// Stable references for object keys (assigned on first use, never reused): the audit log and
    /// plans name objects by reference, so a key that names a subject stays purgeable.
    func objectRefs(dataset: String, keys: [String]) throws -> [String: Int64]
    /// Records that an indexed object was rewritten without some of its records
    /// (`EraseOutcome.exact`): `object` describes the new version (size, mtime, version, records),
    /// `from` is the version the index holds for it, `dropped` the dropped ordinals in the old
    /// numbering (sorted). The new version's postings are the old ones derived as
    /// `PostingDerivation.derive` does; how the store keeps them is its own affair (a store may
    /// avoid rewriting every posting). Returns the stored object, or nil when the index does not
    /// hold version `from` of that object cleanly indexed, or the store cannot derive (the
    /// default): the caller then scans the new version and calls `putIndexedObjects`.
    @discardableResult
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject?
    /// `putDerivedObject` for an object rewritten under a new key (a Delta table's replacement file):
    /// `object.key` is the new key, `oldKey` (same dataset) the key the index holds at version `from`,
    /// `dropped` the dropped ordinals in the old key's numbering. The old key's entry becomes the new
    /// key's (its postings kept, derived as `putDerivedObject` says) and `locate` no longer returns the
    /// old key. Returns nil, changing nothing, when the index does not hold `oldKey` at version `from`
    /// cleanly indexed with `object.records` + the distinct dropped ordinals as its records, when it
    /// already holds `object.key`, or when the store cannot derive (the default): the caller then
    /// scans the new object and removes the old key as before.
    @discardableResult
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String) throws -> IndexedObject?
}

extension SubjectIndexWriter {
    @discardableResult
    public func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject? { nil }
    @discardableResult
    public func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String) throws
        -> IndexedObject?
    { nil }
}

/// Erasure requests, read and written inside a transaction.
public protocol RequestWriter {
    func request(id: String) throws -> ErasureRequest?
    /// Requests by id in the order given (absent ones left out): what `request(id:)` reads for each.
    func requests(ids: [String]) throws -> [ErasureRequest]
    func requests(status: RequestStatus?) throws -> [ErasureRequest]
    /// Files a request (`.conflict` if its id exists).
    func insert(_ r: ErasureRequest) throws
    /// Saves a request if it is still at `expected` status (else `.conflict`).
    func update(_ r: ErasureRequest, expecting expected: RequestStatus) throws
    /// Ids of the requests that jobs with a pending step name.
    func pendingRequestIDs() throws -> Set<String>
    /// Files many requests, in order (`.conflict` naming the first id that exists).
    func insert(_ rs: [ErasureRequest]) throws
    /// Saves many requests, each if it is still at `expected` status (else `.conflict` naming the first that is not).
    func update(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws
    /// Saves a decision on many requests (approval): only their `status`, `decidedBy`, `decisionReason`
    /// and `updatedAt`, each if it is still at `expected` status (else `.conflict` naming the first that
    /// is not). The other fields stay as stored: a store writes a decision without rewriting the rest.
    func saveDecisions(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws
    /// Records (or moves forward) the marks of a sweep over `scope` for these requests.
    func markSwept(requestIDs: [String], scope: String, sweepID: String, at: Int64) throws
    /// Records a sweep, or updates its record (by id).
    func recordSweep(_ sweep: SweepRecord) throws
}

/// The audit log, appended to inside a transaction (the only way to append: an entry always
/// lands with the change it records).
public protocol AuditWriter {
    /// Appends an entry, chained to the last one; returns it.
    @discardableResult
    func append(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry
    /// Appends one entry about many requests (a batch): its `requestID` column is empty (or the one id)
    /// and each request finds it through `AuditReader.entries(requestID:)`.
    @discardableResult
    func append(_ event: AuditEvent, requestIDs: [String], actor: String?, details: String, at: Int64) throws -> AuditEntry
    /// Appends entries in order, each about one request (or none) and chained to the one before: what
    /// `append(_:requestID:actor:details:at:)` does for each (a store may read the chain's head once).
    @discardableResult
    func append(_ entries: [AuditAppend]) throws -> [AuditEntry]
    /// Stores a piece of free text for an audit entry of this transaction (see `AuditTextRef`).
    func text(_ text: String) throws -> AuditTextRef
}

/// The execution journal and the temporary files, written inside a transaction.
public protocol JournalWriter {
    /// Creates a job's steps (no-op for steps that already exist).
    func createJob(_ steps: [JournalStep]) throws
    /// Counts one more start of a step, before it runs; returns the count.
    func beginStep(job: String, ordinal: Int64) throws -> Int
    /// Records a step's end.
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws
    /// Deletes a job's finished (done or failed) steps: object keys leave the state once a job is settled.
    func pruneJob(_ job: String) throws
    /// Records the key of a file before it is created, with the process that creates it, so that a
    /// run killed mid-write leaves nothing the next run does not know of. `table`: the root of the
    /// Delta table whose commit is to adopt the file; nil for a temporary file, which nothing adopts.
    func recordTemporary(_ key: String, owner: Int32, table: String?) throws
    func forgetTemporaries(_ keys: [String]) throws
    /// The fence of a claimed step (see `WorkQueue`; the default, for stores without one, refuses).
    func holdLease(job: String, ordinal: Int64, owner: WorkerID, epoch: Int64) throws
    /// The fence and end of a claimed index item (see `IndexItemQueue`; the default refuses).
    func finishIndexItem(_ lease: IndexLease, report: String) throws -> Bool
}

/// Cursors and settings, read and written inside a transaction.
public protocol CursorWriter {
    func deltaIndex(dataset: String) throws -> DeltaIndexCursor?
    func setDeltaIndex(_ cursor: DeltaIndexCursor, dataset: String) throws
    func propagation(dataset: String) throws -> Int64?
    func setPropagation(_ version: Int64, dataset: String) throws
    func setting(_ name: String) throws -> String?
    func setSetting(_ name: String, _ value: String) throws
    func removeSetting(_ name: String) throws
}

/// The state store: readers, and one unit of work (`transaction`).
public protocol StateStore: Sendable {
    var index: any SubjectIndexReader { get }
    var requests: any RequestReader { get }
    var audit: any AuditReader { get }
    var journal: any JournalReader { get }
    var cursors: any CursorReader { get }
    /// API tokens of `lethe serve`.
    var tokens: any TokenReader { get }
    /// The notification outbox.
    var outbox: any OutboxReader { get }
    /// Crypto-shredding's wrapped data keys (VaultKeys.swift; none by default).
    var vault: any VaultKeyReader { get }

    /// Runs `body` as one transaction: everything it does through the transaction is committed
    /// together or not at all. `body` is synchronous: no awaits inside. `what` names the work in errors.
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T
    /// Fails when the state the store opened is gone or replaced (e.g. its folder deleted mid-run):
    /// what is written afterwards would be lost.
    func checkIntact() throws
    /// Empties the write-ahead log into the database (best effort; false when another reader holds it),
    /// so superseded copies of purged rows do not linger in it.
    @discardableResult
    func checkpoint() async -> Bool
    /// Gives memory the store caches back to the system (after a large scan); no-op by default.
    func releaseMemory()
    /// Runs `body`, the write transactions of one batch (`forget --from`, `approve --all`: a chunk of
    /// requests each), with the store's own periodic flushing held back and done once at the end
    /// (SQLite: the WAL checkpoints after each commit — two fsyncs each — as one checkpoint). What each
    /// transaction commits is committed as before. Runs `body` as it is by default.
    func batchWrites<T: Sendable>(_ body: () async throws -> T) async throws -> T
    /// Makes every transaction this store has committed so far durable (on disk, kept through a power
    /// loss or an OS crash), if it is not yet: the engine calls it once when an operation that wrote
    /// the state ends, before the operation returns (`Lethe.durably`). SQLite commits in WAL mode
    /// without a sync (`synchronous = NORMAL`): this syncs the WAL once when a write committed since the
    /// last sync, and costs nothing otherwise. A store durable at each commit (PostgreSQL) does nothing.
    /// No default: a store that wraps another must pass it on.
    func makeDurable() async throws
    /// Searches what the store keeps for raw ids (verification's proof that Lethe's own state
    /// holds none); nil when the store cannot be searched from here (in memory; nil by default).
    var residueScanner: (any StateResidueScanner)? { get }
    /// Takes the state's run lock: one `lethe run` at a time per state, held until the handle is
    /// released (or the process ends). Waits while another holder has it, telling `progress` once.
    /// nil when the store has nothing to lock (in memory; nil by default).
    func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)?
    /// The work queue of a state shared by many workers (`WorkQueue`); nil by default.
    var workQueue: (any WorkQueue)? { get }

    // Single-call writes: each is one transaction. The defaults below run through `transaction`;
    // a back end may replace one with an equivalent that is faster (SQLite encodes postings
    // outside its write lock).
    @discardableResult
    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) async throws -> [IndexedObject]
    /// `putIndexedObjects` with each object's postings as flat pairs (the backfill's write path);
    /// by default through the dictionary form.
    @discardableResult
    func putIndexedObjects(flat batch: [(IndexedObject, PostingList)]) async throws -> [IndexedObject]
    @discardableResult
    func quarantine(_ object: IndexedObject) async throws -> IndexedObject
    func removeObjects(dataset: String, keys: [String]) async throws
    @discardableResult
    func purgeDeadPostings(force: Bool) async throws -> Int
    func objectRefs(dataset: String, keys: [String]) async throws -> [String: Int64]
    func insertRequest(_ r: ErasureRequest) async throws
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) async throws
    /// Files many requests in one transaction (bulk loads, benchmarks); `.conflict` if an id exists.
    func insertRequests(_ rs: [ErasureRequest]) async throws
    func createJob(_ steps: [JournalStep]) async throws
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) async throws
    func beginStep(job: String, ordinal: Int64) async throws -> Int
    func pruneJob(_ job: String) async throws
    func recordTemporary(_ key: String, owner: Int32, table: String?) async throws
    func forgetTemporaries(_ keys: [String]) async throws
    func setSetting(_ name: String, _ value: String) async throws
    func removeSetting(_ name: String) async throws
    /// Removes a raw id from the state that may be purged (see `StateTransaction.purge`).
    @discardableResult
    func purge(rawID bytes: [UInt8], substring: Bool) async throws -> Int
}

/// The writers one transaction offers (see `StateStore.transaction`).
public protocol StateTransaction {
    var index: any SubjectIndexWriter { get }
    var requests: any RequestWriter { get }
    var audit: any AuditWriter { get }
    var journal: any JournalWriter { get }
    var cursors: any CursorWriter { get }
    var tokens: any TokenWriter { get }
    var outbox: any OutboxWriter { get }
    /// Crypto-shredding's wrapped data keys (VaultKeys.swift; refused by default).
    var vault: any VaultKeyWriter { get }
    /// Removes a raw id from the state that may be purged: object names whose key holds it
    /// (`bytes` as a substring, or for short ids a whole path segment or `name=value` segment),
    /// and the text of requests and settings that hold it. Returns how many rows changed.
    @discardableResult
    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int
    /// `purge(rawID:substring:)` for many raw ids at once (`substring` for ids of at least
    /// `StateResidueScanner.minimumNeedle` bytes), in one pass over each table. Returns how many rows changed.
    @discardableResult
    func purge(rawIDs: [[UInt8]]) throws -> Int
}

/// A held run lock (see `StateStore.acquireRunLock`).
public protocol RunLockHandle: Sendable {
    /// Lets the next holder in (idempotent; also done when the handle goes away).
    func release()
}

/// A search of everything a state store keeps (its files, for a local store) for byte strings.
public protocol StateResidueScanner: Sendable {
    /// Searches for each needle as a whole token (needles shorter than `minimumNeedle` are skipped);
    /// returns how many files (or tables) were read and, per needle found, where (relative names).
    func search(for needles: [[UInt8]]) throws -> (files: Int, hits: [[UInt8]: [String]])
}

extension StateResidueScanner {
    /// Needles shorter than this are not searched for (they would match at random).
    public static var minimumNeedle: Int { 6 }
}

// MARK: Defaults

extension StateStore {
    public func releaseMemory() {}
    public func batchWrites<T: Sendable>(_ body: () async throws -> T) async throws -> T { try await body() }
    public var residueScanner: (any StateResidueScanner)? { nil }
    public func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? { nil }

    @discardableResult
    public func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) async throws -> [IndexedObject] {
        guard !batch.isEmpty else { return [] }
        let what = batch.count == 1 ? "cannot index object \(batch[0].0.key) of dataset \(batch[0].0.dataset)" : "cannot index \(batch.count) objects"
        return try await transaction(what) { tx in try tx.index.putIndexedObjects(batch) }
    }
    @discardableResult
    public func putIndexedObjects(flat batch: [(IndexedObject, PostingList)]) async throws -> [IndexedObject] {
        try await putIndexedObjects(batch.map { ($0.0, $0.1.dictionary) })
    }
    @discardableResult
    public func quarantine(_ object: IndexedObject) async throws -> IndexedObject {
        try await transaction("cannot quarantine object \(object.key) of dataset \(object.dataset)") { tx in try tx.index.quarantine(object) }
    }
    public func removeObjects(dataset: String, keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        let what = keys.count == 1 ? "cannot remove object \(keys[0]) of dataset \(dataset)" : "cannot remove \(keys.count) objects of dataset \(dataset)"
        try await transaction(what) { tx in try tx.index.removeObjects(dataset: dataset, keys: keys) }
    }
    @discardableResult
    public func purgeDeadPostings(force: Bool = false) async throws -> Int {
        try await transaction("cannot purge the postings of removed objects") { tx in try tx.index.purgeDeadPostings(force: force) }
    }
    /// `SubjectIndexWriter.putDerivedObject` for a batch, in one transaction; nil where the
    /// store could not derive (the caller scans that object instead).
    @discardableResult
    public func putDerivedObjects(_ batch: [(object: IndexedObject, from: String, dropped: [Int64])]) async throws -> [IndexedObject?] {
        guard !batch.isEmpty else { return [] }
        return try await transaction("cannot index \(batch.count) rewritten object(s)") { tx in
            try batch.map { try tx.index.putDerivedObject($0.object, from: $0.from, dropped: $0.dropped) }
        }
    }
    /// `SubjectIndexWriter.putDerivedObject(_:from:dropped:replacing:)` for a batch, in one
    /// transaction; nil where the store could not derive (the caller scans that object instead).
    @discardableResult
    public func putDerivedObjects(_ batch: [(object: IndexedObject, from: String, dropped: [Int64], replacing: String)]) async throws
        -> [IndexedObject?]
    {
        guard !batch.isEmpty else { return [] }
        return try await transaction("cannot index \(batch.count) replacement object(s)") { tx in
            try batch.map { try tx.index.putDerivedObject($0.object, from: $0.from, dropped: $0.dropped, replacing: $0.replacing) }
        }
    }
    public func objectRefs(dataset: String, keys: [String]) async throws -> [String: Int64] {
        guard !keys.isEmpty else { return [:] }
        return try await transaction("cannot name \(keys.count) object(s) of dataset \(dataset)") { tx in
            try tx.index.objectRefs(dataset: dataset, keys: keys)
        }
    }
    public func insertRequest(_ r: ErasureRequest) async throws {
        try await transaction("cannot file request \(r.id)") { tx in try tx.requests.insert(r) }
    }
    public func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) async throws {
        try await transaction("cannot save request \(r.id)") { tx in try tx.requests.update(r, expecting: expected) }
    }
    public func insertRequests(_ rs: [ErasureRequest]) async throws {
        if rs.isEmpty { return }
        try await transaction("cannot file \(rs.count) requests") { tx in for r in rs { try tx.requests.insert(r) } }
    }
    public func createJob(_ steps: [JournalStep]) async throws {
        try await transaction("cannot journal job \(steps.first?.job ?? "")") { tx in try tx.journal.createJob(steps) }
    }
    public func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) async throws {
        try await transaction("cannot record journal step \(job)#\(ordinal)") { tx in
            try tx.journal.finishStep(job: job, ordinal: ordinal, state: state, outcome: outcome)
        }
    }
    public func beginStep(job: String, ordinal: Int64) async throws -> Int {
        try await transaction("cannot record journal step \(job)#\(ordinal)") { tx in try tx.journal.beginStep(job: job, ordinal: ordinal) }
    }
    public func pruneJob(_ job: String) async throws {
        try await transaction("cannot prune journal job \(job)") { tx in try tx.journal.pruneJob(job) }
    }
    public func recordTemporary(_ key: String, owner: Int32, table: String?) async throws {
        try await transaction("cannot record temporary file \(key)") { tx in try tx.journal.recordTemporary(key, owner: owner, table: table) }
    }
    public func forgetTemporaries(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await transaction("cannot forget \(keys.count) temporary file(s)") { tx in try tx.journal.forgetTemporaries(keys) }
    }
    public func setSetting(_ name: String, _ value: String) async throws {
        try await transaction("cannot save setting \(name)") { tx in try tx.cursors.setSetting(name, value) }
    }
    public func removeSetting(_ name: String) async throws {
        try await transaction("cannot remove setting \(name)") { tx in try tx.cursors.removeSetting(name) }
    }
    @discardableResult
    public func purge(rawID bytes: [UInt8], substring: Bool) async throws -> Int {
        guard !bytes.isEmpty else { return 0 }
        return try await transaction("cannot purge an erased id from the state") { tx in try tx.purge(rawID: bytes, substring: substring) }
    }
}

extension StateTransaction {
    @discardableResult
    public func purge(rawIDs: [[UInt8]]) throws -> Int {
        var n = 0
        for id in Set(rawIDs) where !id.isEmpty {
            n += try purge(rawID: id, substring: id.count >= purgeSubstringMinimum)
        }
        return n
    }
}

/// The length from which a raw id is purged as a substring (`StateResidueScanner.minimumNeedle`).
public let purgeSubstringMinimum = 6

extension RequestWriter {
    public func requests(ids: [String]) throws -> [ErasureRequest] { try ids.compactMap { try request(id: $0) } }
    public func markSwept(requestIDs: [String], scope: String, sweepID: String, at: Int64) throws {
        throw LetheError(.unsupported, "this state store does not record sweeps")
    }
    public func recordSweep(_ sweep: SweepRecord) throws {
        throw LetheError(.unsupported, "this state store does not record sweeps")
    }
    public func insert(_ rs: [ErasureRequest]) throws { for r in rs { try insert(r) } }
    public func update(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        for r in rs { try update(r, expecting: expected) }
    }
    /// Reads each request and saves it with the decision's fields (see the requirement).
    public func saveDecisions(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        for r in rs {
            var n = try request(id: r.id) ?? r
            n.status = r.status
            n.decidedBy = r.decidedBy
            n.decisionReason = r.decisionReason
            n.updatedAt = r.updatedAt
            try update(n, expecting: expected)
        }
    }
}

extension AuditWriter {
    @discardableResult
    public func append(_ event: AuditEvent, requestIDs: [String], actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try append(event, requestID: requestIDs.count == 1 ? requestIDs[0] : nil, actor: actor, details: details, at: at)
    }
    @discardableResult
    public func append(_ entries: [AuditAppend]) throws -> [AuditEntry] {
        try entries.map { try append($0.event, requestID: $0.requestID, actor: $0.actor, details: $0.details, at: $0.at) }
    }
}

/// An entry to append to the audit log (see `AuditWriter.append(_:)`): one request's change, in a batch of them.
public struct AuditAppend: Sendable {
    public var event: AuditEvent
    public var requestID: String?
    public var actor: String?
    public var details: String
    public var at: Int64
    /// Other requests the entry is about (a batch entry's), indexed with it beside `requestID`.
    public var requestIDs: [String]
    public init(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64, requestIDs: [String] = []) {
        self.event = event
        self.requestID = requestID
        self.actor = actor
        self.details = details
        self.at = at
        self.requestIDs = requestIDs
    }
}

extension AuditReader {
    /// Default: the whole log, filtered by the entry's request column and, for batch entries, the ids their details list.
    public func entries(requestID: String) async throws -> [AuditEntry] {
        let quoted = "\"" + requestID + "\""
        return try await entries().filter { $0.requestID == requestID || ($0.requestID == nil && $0.details.contains(quoted)) }
    }
}

extension SubjectIndexReader {
    public func locate(prefixes: [Int64], dataset: String?) async throws -> [Int64: [Posting]] {
        var out: [Int64: [Posting]] = [:]
        for p in Set(prefixes) {
            let ps = try await locate(prefix: p, dataset: dataset)
            if !ps.isEmpty { out[p] = ps }
        }
        return out
    }
}

extension RequestReader {
    public func requests(ids: [String]) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        for id in ids { if let r = try await request(id: id) { out.append(r) } }
        return out
    }
    public func sweepMarks(requestID: String) async throws -> [SweepMark] { [] }
    public func sweep(id: String) async throws -> SweepRecord? { nil }
    public func unswept(after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        let page = try await requests(status: .verified, after: after, limit: limit)
        return Page(items: page.items.filter { $0.sweptAt == nil }, next: page.next)
    }
    public func rawIDsDue(now: Int64, limit: Int) async throws -> [ErasureRequest] {
        let due = try await requests(status: nil).filter { $0.rawIDExpired(now: now) }
        return Array(due.sorted { ($0.rawDueAt ?? 0, $0.id) < ($1.rawDueAt ?? 0, $1.id) }.prefix(limit))
    }
}

extension RequestReader {
    /// Every request in filing order, optionally of one status (one read).
    public func requests(status: RequestStatus?) async throws -> [ErasureRequest] {
        try await requests(status: status, after: nil, limit: Int.max).items
    }
}

extension AuditReader {
    /// The whole audit log (one read; `audit --check` reads it by range instead).
    public func entries() async throws -> [AuditEntry] { try await entries(from: 1, limit: Int.max) }
}

// MARK: Conveniences under the names call sites use (forwarding to the capabilities)

extension StateStore {
    public func objects(dataset: String) async throws -> [IndexedObject] { try await index.objects(dataset: dataset) }
    public func locate(prefix: Int64, dataset: String?) async throws -> [Posting] { try await index.locate(prefix: prefix, dataset: dataset) }
    public func quarantinedObjects() async throws -> [IndexedObject] { try await index.quarantinedObjects() }
    public func datasetsWithObjects() async throws -> Set<String> { try await index.datasetsWithObjects() }
    public func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64) { try await index.indexStats() }
    public func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)] { try await index.objectNames(refs) }
    @discardableResult
    public func putIndexedObject(_ object: IndexedObject, postings: [Int64: [Int64]]) async throws -> IndexedObject {
        try await putIndexedObjects([(object, postings)])[0]
    }
    /// Forgets one object (see `removeObjects`).
    public func removeObject(dataset: String, key: String) async throws { try await removeObjects(dataset: dataset, keys: [key]) }

    public func request(id: String) async throws -> ErasureRequest? { try await requests.request(id: id) }
    /// Requests by id in chunks of `chunk` per read (absent ids left out), in the order given.
    public func requests(ids: [String], chunk: Int = 1_000) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        out.reserveCapacity(ids.count)
        var start = 0
        while start < ids.count {
            let part = Array(ids[start..<min(start + chunk, ids.count)])
            start += part.count
            out += try await requests.requests(ids: part)
        }
        return out
    }
    public func requests(status: RequestStatus?) async throws -> [ErasureRequest] { try await requests.requests(status: status) }
    public func deletionTags(since: Int64) async throws -> DeletionChanges { try await requests.deletionTags(since: since) }
    public func requestsWithoutStreamTag() async throws -> [ErasureRequest] { try await requests.requestsWithoutStreamTag() }

    public func auditEntries() async throws -> [AuditEntry] { try await audit.entries() }
    public func auditTexts() async throws -> AuditTexts { try await audit.texts() }
    public func textDigest(_ text: String) -> String { audit.textDigest(text) }

    public func pendingSteps() async throws -> [JournalStep] { try await journal.pendingSteps() }
    public func steps(job: String) async throws -> [JournalStep] { try await journal.steps(job: job) }
    public func temporaries() async throws -> [TemporaryFile] { try await journal.temporaries() }
    /// Records a temporary file (nothing adopts it).
    public func recordTemporary(_ key: String, owner: Int32) async throws { try await recordTemporary(key, owner: owner, table: nil) }

    public func setting(_ name: String) async throws -> String? { try await cursors.setting(name) }
    public func settings(prefix: String) async throws -> [String: String] { try await cursors.settings(prefix: prefix) }
}

extension StateTransaction {
    public func request(id: String) throws -> ErasureRequest? { try requests.request(id: id) }
    public func requests(status: RequestStatus?) throws -> [ErasureRequest] { try requests.requests(status: status) }
    public func insertRequest(_ r: ErasureRequest) throws { try requests.insert(r) }
    /// Saves a request if it is still at `expected` status (else `.conflict`).
    public func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) throws { try requests.update(r, expecting: expected) }
    public func pendingRequestIDs() throws -> Set<String> { try requests.pendingRequestIDs() }
    public func createJob(_ steps: [JournalStep]) throws { try journal.createJob(steps) }
    @discardableResult
    public func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try audit.append(event, requestID: requestID, actor: actor, details: details, at: at)
    }
    public func auditText(_ text: String) throws -> AuditTextRef { try audit.text(text) }
    public func setting(_ name: String) throws -> String? { try cursors.setting(name) }
    public func setSetting(_ name: String, _ value: String) throws { try cursors.setSetting(name, value) }
    public func removeSetting(_ name: String) throws { try cursors.removeSetting(name) }
    public func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws {
        try journal.finishStep(job: job, ordinal: ordinal, state: state, outcome: outcome)
    }
    public func beginStep(job: String, ordinal: Int64) throws -> Int { try journal.beginStep(job: job, ordinal: ordinal) }
    public func removeObjects(dataset: String, keys: [String]) throws { try index.removeObjects(dataset: dataset, keys: keys) }
    public func forgetTemporaries(_ keys: [String]) throws { try journal.forgetTemporaries(keys) }
}
