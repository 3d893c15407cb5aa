import LetheCore

/// An object as the subject index knows it.
public struct IndexedObject: Sendable, Equatable {
    public enum Status: String, Sendable { case indexed, quarantined }
    public var id: Int64
    public var dataset: String
    public var key: String
    public var size: Int64
    public var modifiedNanos: Int64
    public var version: String
    public var records: Int64
    public var status: Status
    /// Why the object is quarantined (one line, no personal data).
    public var issue: String?
    /// The `LetheError.Code` of the quarantine (`unsupported`: data Lethe refuses by name; else unreadable).
    public var issueCode: String?
    public var indexedAt: Int64

    public init(id: Int64 = 0, dataset: String, key: String, size: Int64, modifiedNanos: Int64, version: String,
                records: Int64, status: Status, issue: String? = nil, issueCode: String? = nil, indexedAt: Int64) {
        self.id = id; self.dataset = dataset; self.key = key; self.size = size
        self.modifiedNanos = modifiedNanos; self.version = version; self.records = records
        self.status = status; self.issue = issue; self.issueCode = issueCode; self.indexedAt = indexedAt
    }
}

/// Where one subject's records are in one object.
public struct Posting: Sendable, Equatable {
    public var object: IndexedObject
    /// 0-based record ordinals, ascending.
    public var rows: [Int64]
    public init(object: IndexedObject, rows: [Int64]) { self.object = object; self.rows = rows }
}

/// One entry of the hash-chained audit log.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    public var at: Int64
    /// What happened: `filed`, `planned`, `approved`, `rejected`, `object_rewritten`, `rebuild`, `verified`, ….
    public var event: String
    public var requestID: String?
    public var actor: String?
    /// Event details as a JSON object (keyed hashes only, never raw ids).
    public var details: String
    /// Hex SHA-256 of the previous entry (64 zeros for the first).
    public var prevHash: String
    /// Hex SHA-256 over this entry's fields and `prevHash`.
    public var hash: String

    public init(seq: Int64, at: Int64, event: String, requestID: String?, actor: String?, details: String, prevHash: String, hash: String) {
        self.seq = seq; self.at = at; self.event = event; self.requestID = requestID; self.actor = actor
        self.details = details; self.prevHash = prevHash; self.hash = hash
    }
}

/// A step of an execution job, journaled so `run` resumes after a crash.
public struct JournalStep: Sendable, Equatable {
    public enum State: String, Sendable { case pending, done, failed }
    public var job: String
    /// Order within the job (lineage order, then object key).
    public var ordinal: Int64
    public var dataset: String
    /// The object key, or for a rebuild step the empty string.
    public var objectKey: String
    /// Request ids whose subjects this step drops, and the keys (hex) to drop.
    public var requestIDs: [String]
    public var subjectKeys: [SubjectKey]
    public var state: State
    /// Outcome as JSON (counts), or the failure reason.
    public var outcome: String?
    /// How many times a run started this step (a step that keeps dying, e.g. a crash, is failed after a few).
    public var attempts: Int

    public init(job: String, ordinal: Int64, dataset: String, objectKey: String, requestIDs: [String],
                subjectKeys: [SubjectKey], state: State = .pending, outcome: String? = nil, attempts: Int = 0) {
        self.job = job; self.ordinal = ordinal; self.dataset = dataset; self.objectKey = objectKey
        self.requestIDs = requestIDs; self.subjectKeys = subjectKeys; self.state = state; self.outcome = outcome
        self.attempts = attempts
    }
}

/// The state seam: requests, subject index, audit chain, execution journal.
/// SQLite (embedded) and PostgreSQL implementations; every method is one transaction.
public protocol Metastore: Sendable {
    // MARK: Subject index
    /// Every object of a dataset the index knows (indexed or quarantined), by key.
    func objects(dataset: String) async throws -> [IndexedObject]
    /// Replaces what the index holds for one object: upserts the object row and
    /// replaces all its postings (subject key prefix → ascending rows) in one transaction.
    /// Returns the stored object (with its id).
    @discardableResult
    func putIndexedObject(_ object: IndexedObject, postings: [Int64: [Int64]]) async throws -> IndexedObject
    /// The same for many objects in one transaction (a backfill writes in batches).
    @discardableResult
    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) async throws -> [IndexedObject]
    /// Records an object as quarantined (drops its postings).
    @discardableResult
    func quarantine(_ object: IndexedObject) async throws -> IndexedObject
    /// Forgets objects that are gone from the lake, in one transaction (and their postings:
    /// at once, or for a large object at the next `purgeDeadPostings`; `locate` never returns them).
    func removeObjects(dataset: String, keys: [String]) async throws
    /// Deletes the postings removed large objects left, when they outweigh a quarter of the
    /// live ones (or always with `force`); returns the number of objects purged.
    @discardableResult
    func purgeDeadPostings(force: Bool) async throws -> Int
    /// Where a subject key prefix has postings, across datasets (optionally one).
    func locate(prefix: Int64, dataset: String?) async throws -> [Posting]
    /// Every quarantined object, of every dataset.
    func quarantinedObjects() async throws -> [IndexedObject]
    /// The datasets the index holds at least one object of.
    func datasetsWithObjects() async throws -> Set<String>
    /// Counts: objects, quarantined objects, postings.
    func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64)

    // MARK: Requests
    func insertRequest(_ r: ErasureRequest) async throws
    /// Saves a request if it is still at `expected` status (else `.conflict`).
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) async throws
    func request(id: String) async throws -> ErasureRequest?
    /// Requests in filing order, optionally of one status.
    func requests(status: RequestStatus?) async throws -> [ErasureRequest]
    /// Files many requests in one transaction (bulk loads, benchmarks); `.conflict` if an id exists.
    func insertRequests(_ rs: [ErasureRequest]) async throws
    /// The stream deletion set's changes: stream tags of forgotten requests (status
    /// approved, running, erased, verified or failed) with `updated_at >= since`, tags
    /// of requests rejected at or after `since` whose tag no forgotten request holds,
    /// and the newest `updated_at`. `since: Int64.min` gives the whole set.
    func deletionTags(since: Int64) async throws -> DeletionChanges
    /// Requests that still hold their sealed subject but no stream tag (filed before stream filtering).
    func requestsWithoutStreamTag() async throws -> [ErasureRequest]

    // MARK: Audit log
    /// Appends an entry, chaining it to the last one inside one transaction; returns it.
    @discardableResult
    func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) async throws -> AuditEntry
    func auditEntries() async throws -> [AuditEntry]

    // MARK: Journal
    /// Creates the job's steps (no-op for steps that already exist).
    func createJob(_ steps: [JournalStep]) async throws
    /// Steps of every job that has a pending step, in (job, ordinal) order.
    func pendingSteps() async throws -> [JournalStep]
    func steps(job: String) async throws -> [JournalStep]
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) async throws
    /// Counts one more start of a step, before it runs; returns the count.
    func beginStep(job: String, ordinal: Int64) async throws -> Int
    /// Deletes a job's finished (done or failed) steps: object keys leave the state once a job is settled.
    func pruneJob(_ job: String) async throws

    // MARK: Settings
    func setting(_ name: String) async throws -> String?
    func setSetting(_ name: String, _ value: String) async throws
    func removeSetting(_ name: String) async throws
    /// Every setting whose name starts with `prefix`.
    func settings(prefix: String) async throws -> [String: String]

    // MARK: Temporary files
    /// Records the key of a file before it is created, with the process that creates it, so that a
    /// run killed mid-write leaves nothing the next run does not know of. `table`: the root of the
    /// Delta table whose commit is to adopt the file (a replacement or change data file of an
    /// erasure); nil for a temporary file, which nothing adopts.
    func recordTemporary(_ key: String, owner: Int32, table: String?) async throws
    /// Files recorded and not yet forgotten.
    func temporaries() async throws -> [TemporaryFile]
    func forgetTemporaries(_ keys: [String]) async throws

    // MARK: Free text of the audit log
    /// The keyed digest the audit chain commits to for a text (`AuditChain.textDigest` under the audit key).
    func textDigest(_ text: String) -> String
    /// Every text the audit log references: those still held, and the ids of those purged.
    func auditTexts() async throws -> AuditTexts

    // MARK: Object names
    /// Stable references for object keys (assigned on first use, never reused): the audit log and
    /// plans name objects by reference, so a key that names a subject stays purgeable.
    func objectRefs(dataset: String, keys: [String]) async throws -> [String: Int64]
    /// The keys behind references that are still known (purged ones are absent).
    func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)]
    /// Removes a raw id from the state that may be purged: object names whose key holds it
    /// (`bytes` as a substring, or for short ids a whole path segment or `name=value` segment),
    /// and the text of requests and settings that hold it. Returns how many rows changed.
    @discardableResult
    func purge(rawID bytes: [UInt8], substring: Bool) async throws -> Int

    // MARK: Units of work
    /// Runs `body` as one transaction (GRDB's `write { db in … }`): everything it does through the
    /// transaction is committed together or not at all. `body` is synchronous: no awaits inside.
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
}

/// The operations one transaction offers (see `Metastore.transaction`).
public protocol StateTransaction {
    func request(id: String) throws -> ErasureRequest?
    func requests(status: RequestStatus?) throws -> [ErasureRequest]
    func insertRequest(_ r: ErasureRequest) throws
    /// Saves a request if it is still at `expected` status (else `.conflict`).
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) throws
    /// Creates a job's steps (no-op for steps that already exist).
    func createJob(_ steps: [JournalStep]) throws
    /// Ids of the requests that jobs with a pending step name.
    func pendingRequestIDs() throws -> Set<String>
    @discardableResult
    func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry
    func setting(_ name: String) throws -> String?
    func setSetting(_ name: String, _ value: String) throws
    /// Stores a piece of free text for an audit entry of this transaction (see `AuditTextRef`).
    func auditText(_ text: String) throws -> AuditTextRef
    func removeSetting(_ name: String) throws
    /// Records a journal step's end (see `Metastore.finishStep`).
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws
    /// Counts one more start of a step; returns the count.
    func beginStep(job: String, ordinal: Int64) throws -> Int
    /// Forgets objects gone from the lake (see `Metastore.removeObjects`).
    func removeObjects(dataset: String, keys: [String]) throws
    func forgetTemporaries(_ keys: [String]) throws
}

/// A file recorded before it was created (see `Metastore.recordTemporary`).
public struct TemporaryFile: Sendable, Equatable {
    public var key: String
    public var owner: Int32
    /// The Delta table root whose commit may adopt the file; nil for a temporary file.
    public var table: String?
    public init(key: String, owner: Int32, table: String? = nil) { self.key = key; self.owner = owner; self.table = table }
}

/// A piece of free text (a reason, an actor's name) that an audit entry references instead of
/// holding it: the entry carries `{"hmac":"…","text":ID}` (and an actor column `text#ID`), the
/// chain commits to the keyed digest, and the text itself lives in `audit_texts`, where erasure
/// replaces it when it names an erased subject. `audit --check` verifies the texts that remain.
public struct AuditTextRef: Sendable, Equatable {
    public var id: Int64
    public var hmac: String
    public init(id: Int64, hmac: String) { self.id = id; self.hmac = hmac }
    /// The actor column's form of a reference.
    public var actor: String { AuditTextRef.actorPrefix + String(id) }
    public static let actorPrefix = "text#"
}

/// The texts audit entries reference: held ones by id, and the ids of purged ones.
public struct AuditTexts: Sendable, Equatable {
    public var texts: [Int64: String]
    public var purged: Set<Int64>
    public init(texts: [Int64: String] = [:], purged: Set<Int64> = []) { self.texts = texts; self.purged = purged }
}

extension Metastore {
    public func releaseMemory() {}

    /// Records a temporary file (nothing adopts it).
    public func recordTemporary(_ key: String, owner: Int32) async throws {
        try await recordTemporary(key, owner: owner, table: nil)
    }

    /// Forgets one object (see `removeObjects`).
    public func removeObject(dataset: String, key: String) async throws {
        try await removeObjects(dataset: dataset, keys: [key])
    }
}

extension JournalStep {
    /// What a step does. Stored today by its fields (the sentinels below); the kind is derived.
    public enum Kind: Sendable, Equatable {
        /// Rewrite (or remove) one object: dataset + object key.
        case object
        /// Erase from a whole Delta table in one commit: object key `deltaTableKey`.
        case deltaTable
        /// Run a dataset's rebuild command: dataset, empty object key.
        case rebuild
        /// A dataset that could not be indexed fails the requests reaching it: object key `datasetIssueKey`.
        case datasetIssue
        /// The job's closing step (empty dataset): settles its requests.
        case settle
    }
    /// The object key of a step that erases from a whole Delta table.
    public static let deltaTableKey = "_delta_log"
    /// The object key of a step standing for a dataset that could not be indexed (no real key of a
    /// dataset lacks the dataset's path prefix, so none can be this).
    public static let datasetIssueKey = "!dataset-issue"

    public var kind: Kind {
        if dataset.isEmpty { return .settle }
        switch objectKey {
        case "": return .rebuild
        case Self.datasetIssueKey: return .datasetIssue
        case Self.deltaTableKey: return .deltaTable
        default: return .object
        }
    }
}
