public import LetheCore

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

    public init(
        id: Int64 = 0, dataset: String, key: String, size: Int64, modifiedNanos: Int64, version: String,
        records: Int64, status: Status, issue: String? = nil, issueCode: String? = nil, indexedAt: Int64
    ) {
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
    /// What the step does (stored with it; by default the one its dataset and object key imply).
    public var kind: Kind

    public init(
        job: String, ordinal: Int64, dataset: String, objectKey: String, requestIDs: [String],
        subjectKeys: [SubjectKey], state: State = .pending, outcome: String? = nil, attempts: Int = 0,
        kind: Kind? = nil
    ) {
        self.job = job; self.ordinal = ordinal; self.dataset = dataset; self.objectKey = objectKey
        self.requestIDs = requestIDs; self.subjectKeys = subjectKeys; self.state = state; self.outcome = outcome
        self.attempts = attempts
        self.kind = kind ?? Self.kind(dataset: dataset, objectKey: objectKey)
    }
}

/// A file recorded before it was created (see `JournalWriter.recordTemporary`).
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
    /// What a purge leaves where a raw id was, and what people read for a purged text.
    public static let purgedMark = "[erased]"
    public var texts: [Int64: String]
    public var purged: Set<Int64>
    public init(texts: [Int64: String] = [:], purged: Set<Int64> = []) { self.texts = texts; self.purged = purged }
}

extension JournalStep {
    /// What a step does. Stored with the step (state schema v6); steps journaled before it were
    /// told apart by their fields (the sentinels below), which still imply the same kind.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Rewrite (or remove) one object: dataset + object key.
        case object
        /// Erase from a whole Delta table in one commit: object key `deltaTableKey`.
        case deltaTable = "delta_table"
        /// Run a dataset's rebuild command: dataset, empty object key.
        case rebuild
        /// A dataset that could not be indexed fails the requests reaching it: object key `datasetIssueKey`.
        case datasetIssue = "dataset_issue"
        /// The job's closing step (empty dataset): settles its requests.
        case settle
    }
    /// The object key of a step that erases from a whole Delta table.
    public static let deltaTableKey = "_delta_log"
    /// The object key of a step standing for a dataset that could not be indexed (no real key of a
    /// dataset lacks the dataset's path prefix, so none can be this).
    public static let datasetIssueKey = "!dataset-issue"

    /// The kind a step's fields imply (how steps journaled before v6 are read).
    public static func kind(dataset: String, objectKey: String) -> Kind {
        if dataset.isEmpty { return .settle }
        switch objectKey {
        case "": return .rebuild
        case datasetIssueKey: return .datasetIssue
        case deltaTableKey: return .deltaTable
        default: return .object
        }
    }
}
