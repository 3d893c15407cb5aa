public import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import LetheCore
public import LetheCatalog

/// The embedded `StateStore`: one SQLite file (`<state folder>/lethe.sqlite`) in
/// WAL mode through GRDB, or a private in-memory database for tests.
///
/// Every protocol method runs in one transaction (writes take the write lock at
/// `BEGIN IMMEDIATE`, so two processes that append to the audit log or update
/// the same request are serialized by SQLite, waiting up to `busyTimeout`).
///
/// The subject index is laid out for size: `postings(k, object, rows)` is a
/// `WITHOUT ROWID` table keyed by (subject key prefix, object id) whose `rows`
/// are delta varints (`PostingCodec`), and each `objects` row keeps a compact
/// list of the key buckets it has postings in, so an object's postings are
/// deleted by primary-key range instead of through a second index on `object`.
public final class SQLiteStateStore: StateStore {
    /// The database file, or `:memory:`; used as the location in errors.
    public let databasePath: String
    /// The state folder as given to `init(folder:)` (nil in memory): where the run lock lives.
    public let folder: String?
    let writer: any DatabaseWriter
    /// Opened without write access: every write fails (read-only commands on a state folder they cannot write).
    public let readOnly: Bool
    /// A batch of objects with at least this many postings is written as one sorted segment
    /// (`PostingSegment`); a smaller one as a `postings` row per key.
    public let segmentMinimum: Int
    /// `segmentMinimum`'s default.
    public static let defaultSegmentMinimum = PostingSegment.minimumPostings
    /// The database file's identity when opened (device, inode), to notice it deleted or replaced.
    let identity: (dev: UInt64, ino: UInt64)?
    /// The key of the audit chain's HMAC (nil: entries are appended unkeyed, as before keys existed).
    let auditKeyBox = LockedValue<[UInt8]?>(nil)
    /// Batches under way (`batchWrites`), and the automatic checkpoint's setting to restore after them.
    let batchDepth = Mutex<Int>(0)
    let batchCheckpointPages = LockedValue<Int>(1000)
    /// Commits made and synced (`makeDurable`, SQLiteStateStore+Durability.swift).
    let durability = Durability()
    /// The connections of `readNow` (a file-backed pool's; opened at its first use).
    let hotReaders = HotReaders()

    /// The read-only `readNow` connections close before the pool: the pool's last connection then
    /// checkpoints and removes `lethe.sqlite-wal` (a read-only connection closing last cannot).
    deinit { hotReaders.closeAll() }

    /// How long a write waits for another process's write lock.
    public static let busyTimeout: TimeInterval = 10
    /// The file name inside the state folder.
    public static let fileName = "lethe.sqlite"

    /// Opens (creating if needed) `<folder>/lethe.sqlite`; creates the folder with mode 0700.
    /// With `readOnly`, opens an existing database without writing anything (no folder, file,
    /// migration or WAL files are created when the folder cannot be written; a database whose
    /// schema is older than this build is refused, naming a writing command to run first).
    public init(folder: String, readOnly: Bool = false, segmentMinimum: Int = defaultSegmentMinimum) throws {
        let path = (folder as NSString).appendingPathComponent(Self.fileName)
        self.databasePath = path
        self.folder = folder
        self.readOnly = readOnly
        self.segmentMinimum = max(1, segmentMinimum)
        do {
            if readOnly {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw LetheError(.notFound, "no state database here: run `lethe index` first", at: path)
                }
                let queue = try Self.openReadOnly(path)
                self.writer = queue
                guard try queue.read({ db in try Self.migrator.hasCompletedMigrations(db) }) else {
                    throw LetheError(
                        .badInput,
                        "the state database is from an older version and read-only here: run a writing command (e.g. `lethe index`) once to upgrade it",
                        at: path)
                }
            } else {
                try Self.prepareFolder(folder, databasePath: path)
                let pool = try Self.openPool(path)
                self.writer = pool
                try Self.migrate(pool)
            }
        } catch {
            throw Self.wrap(error, "cannot open the state database", path: path)
        }
        var st = stat()
        identity = stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
    }

    /// Opens the pool. Its first connection switches a new database to WAL, and openers racing
    /// on a new state can meet SQLITE_BUSY there without SQLite's busy handler being consulted
    /// (the journal-mode change takes its lock without waiting): try again for a while.
    private static func openPool(_ path: String) throws -> DatabasePool {
        var attempt = 0
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration())
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempt < 600 {
                attempt += 1
                usleep(useconds_t(5_000 + (attempt % 10) * 2_000))
            }
        }
    }

    /// Runs the migrations. Openers racing on a new state (several processes, or pools of one
    /// process) can both see a migration pending and the second fail on what the first created
    /// ("table objects already exists"): GRDB reads the applied list outside each migration's
    /// transaction. The loser tries again, and finds the migration applied.
    private static func migrate(_ pool: DatabasePool) throws {
        var attempt = 0
        while true {
            do {
                try migrator.migrate(pool)
                return
            } catch is DatabaseError where attempt < 20 {
                attempt += 1
                if try pool.read({ db in try migrator.hasCompletedMigrations(db) }) { return }
                usleep(20_000)
            }
        }
    }

    /// A read-only connection. SQLite reads a WAL database read-only when its `-shm` and `-wal`
    /// files exist or can be created; when neither holds (a folder Lethe cannot write, closed
    /// cleanly), the file is opened as immutable (nothing else can be writing it then either).
    private static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        var config = configuration()
        config.readonly = true
        let dir = (path as NSString).deletingLastPathComponent
        let walFilesPresent = FileManager.default.fileExists(atPath: path + "-shm")
        if walFilesPresent || access(dir, W_OK) == 0 {
            return try DatabaseQueue(path: path, configuration: config)
        }
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let escaped = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
        return try DatabaseQueue(path: "file:\(escaped)?immutable=1", configuration: config)
    }

    /// A private in-memory store (tests, dry runs). With a `name`, every store
    /// opened with the same name in this process shares one database while any is open.
    public init(inMemory name: String? = nil, segmentMinimum: Int = defaultSegmentMinimum) throws {
        self.databasePath = ":memory:"
        self.folder = nil
        self.segmentMinimum = max(1, segmentMinimum)
        do {
            let queue: DatabaseQueue
            if let name {
                queue = try DatabaseQueue(named: name, configuration: Self.configuration())
            } else {
                queue = try DatabaseQueue(configuration: Self.configuration())
            }
            self.writer = queue
            try Self.migrator.migrate(queue)
        } catch {
            throw Self.wrap(error, "cannot open the in-memory state database", path: ":memory:")
        }
        self.readOnly = false
        self.identity = nil
    }

    /// Sets the key under which new audit entries are chained (HMAC-SHA-256); see `AuditChain`.
    public func setAuditKey(_ key: [UInt8]?) { auditKeyBox.value = key }
    public var auditKey: [UInt8]? { auditKeyBox.value }

    public func checkIntact() throws {
        guard let identity else { return }
        var st = stat()
        guard stat(databasePath, &st) == 0 else {
            throw LetheError(
                .io,
                "the state database was deleted while Lethe was using it: what this process recorded since is lost; run again (the lake is unchanged where no step finished)",
                at: databasePath)
        }
        guard UInt64(st.st_dev) == identity.dev, UInt64(st.st_ino) == identity.ino else {
            throw LetheError(.io, "the state database was replaced while Lethe was using it: what this process recorded since is lost", at: databasePath)
        }
    }

    /// The most bytes of the database file a connection maps (`PRAGMA mmap_size`).
    static let mmapSize = 1 << 30

    private static func configuration() -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        config.label = "lethe.metastore"
        config.prepareDatabase { db in
            // Up to 64 MiB of page cache a connection (allocated only as used): a
            // backfill inserts random keys all over the postings b-tree.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            // Pages of the database file read through a mapping of it, not copied by `pread` into the
            // page cache: in WAL mode a connection's page cache is emptied whenever another connection
            // has committed, so a run's reads (postings, requests) after each of its commits read
            // their pages again. Reads only: writes still go through the WAL.
            try db.execute(sql: "PRAGMA mmap_size = \(mmapSize)")
            // Deleted content (object names, plans, sealed ids) is overwritten with zeros, not left
            // in free pages: set explicitly, whatever the SQLite build's default.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        return config
    }

    /// Creates the state folder (0700) and an empty database file (0600) if they are missing,
    /// so SQLite's WAL and shared-memory files inherit the file's owner-only mode.
    private static func prepareFolder(_ folder: String, databasePath: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw LetheError.badInput("the state path is not a folder", at: folder)
            }
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: NSNumber(value: Int16(0o700))])
            } catch {
                throw LetheError(.io, "cannot create the state folder", at: folder, cause: error)
            }
        }
        // Exclusive create only: opening (and closing) an existing database here would drop the
        // POSIX locks another connection of this process holds on it.
        let fd = open(databasePath, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {
            throw LetheError.io("cannot create the state database", at: databasePath, errno: errno)
        }
    }

    // MARK: Transactions

    /// Runs `body` in one read transaction, mapping failures to `LetheError`.
    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.read(body)
        } catch {
            throw Self.wrap(error, what, path: databasePath)
        }
    }

    /// Runs `body` in one read transaction on the calling thread, mapping failures to `LetheError`: no
    /// hop to a queue of GRDB's and back (two thread switches an async `read` costs). For short reads on
    /// the service's hot paths only (a token by its hash, a subject's postings: tens of µs); never for a
    /// listing or anything whose size a caller chooses.
    ///
    /// A pool's own readers are not used: one is held by an async read until its task resumes on the
    /// cooperative pool, so threads of that pool waiting here for a free reader could wait for
    /// themselves. `readNow` has connections of its own instead (`HotReaders`: read-only, checked out by
    /// one thread at a time, never across a suspension, a new one opened when all are busy), each with a
    /// `HotCache` of what earlier reads found, emptied whenever `data_version` says the database changed.
    /// A queue (in memory, read-only opens) reads on itself with a cache of this read only (a connection's
    /// own commits do not move its `data_version`).
    func readNow<T: Sendable>(_ what: String, _ body: (Database, HotCache) throws -> T) throws -> T {
        do {
            guard writer is DatabasePool else { return try writer.read { db in try body(db, HotCache()) } }
            return try hotReaders.read(path: databasePath, open: Self.openHotReader, body)
        } catch {
            throw Self.wrap(error, what, path: databasePath)
        }
    }

    /// A read-only connection to the pool's WAL database, configured as the pool's.
    static func openHotReader(_ path: String) throws -> DatabaseQueue {
        var config = configuration()
        config.readonly = true
        config.label = "lethe.metastore.hot"
        return try DatabaseQueue(path: path, configuration: config)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` write transaction, mapping failures to `LetheError`.
    func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.writeWithoutTransaction { [durability] db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                durability.committed()
                guard let result else { throw LetheError(.failure, "\(what): transaction produced no result") }
                return result
            }
        } catch {
            throw Self.wrap(error, what, path: databasePath)
        }
    }

    static func wrap(_ error: any Error, _ what: String, path: String) -> any Error {
        if error is LetheError || error is CancellationError { return error }
        if let e = error as? DatabaseError {
            let corrupt = e.resultCode == .SQLITE_CORRUPT || e.resultCode == .SQLITE_NOTADB
            let detail = e.message ?? "SQLite error \(e.resultCode.rawValue)"
            return LetheError(corrupt ? .corrupt : .io, "\(what): \(detail)", at: path, cause: e)
        }
        return LetheError(.io, what, at: path, cause: error)
    }

    // MARK: Schema

    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE objects(
                        id INTEGER PRIMARY KEY,
                        dataset TEXT NOT NULL,
                        key TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        mtime INTEGER NOT NULL,
                        version TEXT NOT NULL,
                        records INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        issue TEXT,
                        indexed_at INTEGER NOT NULL,
                        postings INTEGER NOT NULL DEFAULT 0,
                        buckets BLOB,
                        UNIQUE(dataset, key)
                    );
                    CREATE TABLE postings(
                        k INTEGER NOT NULL,
                        object INTEGER NOT NULL,
                        rows BLOB NOT NULL,
                        PRIMARY KEY(k, object)
                    ) WITHOUT ROWID;

                    CREATE TABLE requests(
                        id TEXT NOT NULL PRIMARY KEY,
                        filing INTEGER NOT NULL UNIQUE,
                        subject_key BLOB NOT NULL CHECK(length(subject_key) = 32),
                        sealed_subject BLOB,
                        status TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        requested_by TEXT NOT NULL,
                        filed_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        decided_by TEXT,
                        decision_reason TEXT,
                        plan BLOB,
                        verification BLOB,
                        failure TEXT,
                        attempts INTEGER NOT NULL
                    );
                    CREATE INDEX requests_by_status ON requests(status, filing);

                    CREATE TABLE audit(
                        seq INTEGER PRIMARY KEY,
                        at INTEGER NOT NULL,
                        event TEXT NOT NULL,
                        request_id TEXT,
                        actor TEXT,
                        details TEXT NOT NULL,
                        prev_hash TEXT NOT NULL,
                        hash TEXT NOT NULL
                    );
                    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

                    CREATE TABLE journal(
                        job TEXT NOT NULL,
                        ordinal INTEGER NOT NULL,
                        dataset TEXT NOT NULL,
                        object_key TEXT NOT NULL,
                        request_ids TEXT NOT NULL,
                        subject_keys BLOB NOT NULL,
                        state TEXT NOT NULL,
                        outcome TEXT,
                        PRIMARY KEY(job, ordinal)
                    ) WITHOUT ROWID;
                    CREATE INDEX journal_pending ON journal(job) WHERE state = 'pending';

                    CREATE TABLE settings(
                        name TEXT NOT NULL PRIMARY KEY,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        // Stream filtering (issue 5): each request keeps its subject's stream tag
        // (SipHash-2-4 under stream.key); the deletion feed reads by update time.
        m.registerMigration("v2-stream-tags") { db in
            try db.execute(
                sql: """
                    ALTER TABLE requests ADD COLUMN stream_tag INTEGER;
                    CREATE INDEX requests_by_update ON requests(updated_at);
                    CREATE INDEX requests_by_stream_tag ON requests(stream_tag, status) WHERE stream_tag IS NOT NULL;
                    CREATE INDEX requests_untagged ON requests(filing) WHERE stream_tag IS NULL AND sealed_subject IS NOT NULL;
                    """)
        }
        // Large objects leave the index at once (their `objects` row goes, so `locate` no longer
        // sees them) and their postings later, in one pass (see `purgeDeadPostings`).
        m.registerMigration("v3-dead-objects") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dead_objects(
                        id INTEGER PRIMARY KEY,
                        postings INTEGER NOT NULL,
                        buckets BLOB
                    );
                    """)
        }
        // Crash safety and raw ids (issue 10): step attempts, temporary files known before they
        // exist, object references for the audit log and plans, the code of a quarantine.
        m.registerMigration("v4-crash-safety") { db in
            try db.execute(
                sql: """
                    ALTER TABLE journal ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE objects ADD COLUMN issue_code TEXT;
                    CREATE TABLE temp_files(
                        key TEXT NOT NULL PRIMARY KEY,
                        owner INTEGER NOT NULL,
                        at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE object_names(
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        dataset TEXT NOT NULL,
                        key TEXT NOT NULL,
                        UNIQUE(dataset, key)
                    );
                    """)
        }
        // Free text out of the append-only log (h6 D2): reasons and actors' names live in
        // `audit_texts` (purgeable), the chain commits to their keyed digest; requests keep the
        // requester's digest for the four-eyes rule once the name is purged. Files a Delta erasure
        // writes are journaled with their table (`temp_files.table_root`): a resumed run removes
        // those no commit adopted.
        m.registerMigration("v5-audit-texts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit_texts(
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        hmac TEXT NOT NULL,
                        text TEXT,
                        purged_at INTEGER
                    );
                    ALTER TABLE requests ADD COLUMN requested_by_hmac TEXT;
                    ALTER TABLE temp_files ADD COLUMN table_root TEXT;
                    """)
        }
        // Seams for other back ends (issue 11): cursors by type instead of JSON in settings, the
        // kind of a journal step stored instead of told by sentinel keys, requests found by subject.
        m.registerMigration("v6-seams") { db in try migrateV6(db) }
        // Verification at index cost (issue 12): how a request was proven, the sweep and the raw id's
        // deadline (sealed until swept or `filed_at + sweep.raw_id_days`), batch audit entries
        // indexed per request, the sweep's marks, and (for Delta) the commit that added a file.
        m.registerMigration("v7-index-cost") { db in try migrateV7(db) }
        // Derived index entries (issue 12): an object rewritten without some records keeps its
        // postings; `dropped` lists the ordinals (delta varints, the postings' numbering) its
        // readers remap rows through until it is compacted (see SQLiteStateStore+Derived.swift).
        m.registerMigration("v8-derived-postings") { db in
            try db.execute(sql: "ALTER TABLE objects ADD COLUMN dropped BLOB")
        }
        // `lethe serve` (issue 14): API tokens (hashed), the notification outbox and its per-sink delivery state.
        m.registerMigration("v9-serve") { db in try db.execute(sql: serveSchema) }
        // Several `lethe serve` on one state: one dispatcher at a time per sink (a lease with holder and expiry).
        m.registerMigration("v10-outbox-lease") { db in try db.execute(sql: outboxLeaseSchema) }
        // Crypto-shredding (issue 15): each subject's wrapped data key, by its keyed hash.
        m.registerMigration("v11-vault") { db in try db.execute(sql: vaultSchema) }
        // The key store's size: the KEK by a small id (`vault_keks`), AES key wrap for new keys.
        m.registerMigration("v12-vault-compact") { db in try db.execute(sql: vaultCompactMigration) }
        // ≤ 64 B a subject: compact rows by a 12-byte subject-key prefix, exact rows where needed.
        m.registerMigration("v13-vault-prefix") { db in try db.execute(sql: vaultPrefixMigration) }
        // An index write path at backfill speed (issue 16): a batch's postings as one sorted segment,
        // a row per block of entries (see PostingSegment.swift); `objects.segment` names the segment
        // an object's postings are in (NULL: the `postings` table, as before).
        m.registerMigration("v14-posting-segments") { db in
            try db.execute(
                sql: """
                    CREATE TABLE segments(
                        id INTEGER PRIMARY KEY,
                        entries INTEGER NOT NULL,
                        blocks INTEGER NOT NULL
                    );
                    CREATE TABLE segment_blocks(
                        segment INTEGER NOT NULL,
                        last_k INTEGER NOT NULL,
                        data BLOB NOT NULL
                    );
                    CREATE UNIQUE INDEX segment_blocks_by_key ON segment_blocks(segment, last_k);
                    ALTER TABLE objects ADD COLUMN segment INTEGER;
                    """)
        }
        return m
    }()
}

extension SQLiteStateStore {
    /// The raw id deadline given to requests filed before v7 (`sweep.raw_id_days`' default).
    static let backfilledRawIDDays: Int64 = 25

    static func migrateV7(_ db: Database) throws {
        try db.execute(
            sql: """
                ALTER TABLE objects ADD COLUMN added_version INTEGER;
                ALTER TABLE requests ADD COLUMN proof TEXT;
                ALTER TABLE requests ADD COLUMN swept_at INTEGER;
                ALTER TABLE requests ADD COLUMN raw_due_at INTEGER;
                ALTER TABLE requests ADD COLUMN raw_destroyed_at INTEGER;
                ALTER TABLE requests ADD COLUMN raw_destroyed_why TEXT;
                ALTER TABLE requests ADD COLUMN sweep_findings BLOB;
                CREATE INDEX requests_unswept ON requests(filing) WHERE status = 'verified' AND swept_at IS NULL;
                CREATE INDEX requests_raw_due ON requests(raw_due_at) WHERE sealed_subject IS NOT NULL;
                CREATE TABLE request_sweeps(
                    request_id TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    sweep_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    PRIMARY KEY(request_id, scope)
                ) WITHOUT ROWID;
                CREATE TABLE audit_requests(
                    request_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    PRIMARY KEY(request_id, seq)
                ) WITHOUT ROWID;
                CREATE TABLE sweeps(
                    id TEXT NOT NULL PRIMARY KEY,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    scope TEXT NOT NULL,
                    objects INTEGER NOT NULL DEFAULT 0,
                    bytes INTEGER NOT NULL DEFAULT 0,
                    result TEXT
                );
                INSERT INTO audit_requests(request_id, seq) SELECT request_id, seq FROM audit WHERE request_id IS NOT NULL;
                UPDATE requests SET raw_due_at = filed_at + \(backfilledRawIDDays * ErasureRequest.dayMillis);
                UPDATE requests SET proof = 'full' WHERE status = 'verified' OR verification IS NOT NULL AND status = 'failed';
                UPDATE requests SET raw_destroyed_at = updated_at, raw_destroyed_why = CASE status
                    WHEN 'verified' THEN 'verified' WHEN 'rejected' THEN 'rejected' ELSE 'unknown' END
                    WHERE sealed_subject IS NULL;
                """)
    }

    // MARK: Settings (see SQLiteStateStore+Cursors.swift)

    /// A setting read without the async hop (opening the state, before any task runs).
    public func settingNow(_ name: String) throws -> String? {
        do {
            return try writer.read { db in try Self.readSetting(db, name) }
        } catch {
            throw Self.wrap(error, "cannot read setting \(name)", path: databasePath)
        }
    }

    /// Saves a setting without the async hop (see `settingNow`).
    public func setSettingNow(_ name: String, _ value: String) throws {
        do {
            try writer.write { db in try Self.setSetting(db, name, value) }
            durability.committed()
        } catch {
            throw Self.wrap(error, "cannot save setting \(name)", path: databasePath)
        }
    }

    /// Runs `body` while this process holds a read transaction that has read the database
    /// (SQLite's read lock is held meanwhile): consistent multi-step reads, and tests of what
    /// other code does to the locks.
    public func whileReading<T>(_ body: () throws -> T) throws -> T {
        do {
            return try writer.read { db in
                _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM settings")
                return try body()
            }
        } catch {
            throw Self.wrap(error, "cannot read the state", path: databasePath)
        }
    }

    /// Runs SQL on the state behind every check (tests that alter the state as an attacker would).
    func tamper(_ sql: String) async throws {
        try await writer.write { db in try db.execute(sql: sql) }
        durability.committed()
    }

    /// The value of a `PRAGMA` on a connection of this store (e.g. `secure_delete`).
    public func pragma(_ name: String) throws -> String? {
        do {
            return try writer.read { db in try String.fetchOne(db, sql: "PRAGMA \(name)") }
        } catch {
            throw Self.wrap(error, "cannot read PRAGMA \(name)", path: databasePath)
        }
    }

    /// True when the state holds nothing yet: no object, request or audit entry.
    public func isEmptyNow() throws -> Bool {
        do {
            return try writer.read { db in
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT NOT EXISTS (SELECT 1 FROM objects) AND NOT EXISTS (SELECT 1 FROM requests)
                           AND NOT EXISTS (SELECT 1 FROM audit)
                        """) ?? true
            }
        } catch {
            throw Self.wrap(error, "cannot read the state", path: databasePath)
        }
    }

    /// True when some request holds a stream tag (so `stream.key` must exist).
    public func hasStreamTagsNow() throws -> Bool {
        do {
            return try writer.read { db in
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM requests WHERE stream_tag IS NOT NULL)") ?? false
            }
        } catch {
            throw Self.wrap(error, "cannot read the state", path: databasePath)
        }
    }
}

/// SQLite's `SQLITE_TRANSIENT`: a value bound with it is copied by SQLite before the bind returns.
var sqliteTransient: sqlite3_destructor_type { unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self) }

/// Binds one row's values straight to a prepared statement (SQLite's C API; values copied, as GRDB
/// binds them): for statements run many times in a row, where a `StatementArguments` of boxed values
/// a row costs more than the insert. The statement is reset first (it may have been stepped); the
/// caller then runs it with GRDB (`execute()` after `setUncheckedArguments([])`, so GRDB binds nothing).
struct Binder {
    let h: OpaquePointer
    private var failed = SQLITE_OK

    init(_ h: OpaquePointer) {
        self.h = h
        sqlite3_reset(h)
    }

    private mutating func note(_ code: Int32) { if code != SQLITE_OK && failed == SQLITE_OK { failed = code } }

    mutating func text(_ i: Int32, _ v: String?) {
        guard let v else { return note(sqlite3_bind_null(h, i)) }
        note(sqlite3_bind_text(h, i, v, -1, sqliteTransient))
    }

    /// A blob; an empty one stays an empty blob (not NULL).
    mutating func blob(_ i: Int32, _ v: [UInt8]?) {
        guard let v else { return note(sqlite3_bind_null(h, i)) }
        if v.isEmpty { return note(sqlite3_bind_zeroblob(h, i, 0)) }
        v.withUnsafeBytes { note(sqlite3_bind_blob(h, i, $0.baseAddress, Int32($0.count), sqliteTransient)) }
    }

    mutating func int(_ i: Int32, _ v: Int64?) {
        guard let v else { return note(sqlite3_bind_null(h, i)) }
        note(sqlite3_bind_int64(h, i, v))
    }

    /// Throws the first failed bind's code (the texts made only then: GRDB's `Statement.sql` trims a copy).
    func check(_ what: @autoclosure () -> String, sql: @autoclosure () -> String) throws {
        guard failed != SQLITE_OK else { return }
        throw DatabaseError(resultCode: ResultCode(rawValue: failed), message: what(), sql: sql())
    }
}

/// A value behind a `Mutex`, held by reference so that escaping closures can share it
/// (state set once after opening, read from any task; an error a transaction body threw).
final class LockedValue<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    init(_ value: T) { mutex = Mutex(value) }
    var value: T {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }
}

/// `readNow`'s connections: read-only connections checked out one caller at a time (a free one is
/// taken, a new one opened when every one is busy), so a read never waits for another thread's. How
/// many there are is bounded by how many threads call `readNow` at once (it never suspends). Opened at
/// the first use. Each connection keeps a `HotCache` that is valid for one state of the database.
final class HotReaders: Sendable {
    private let free = Mutex<[HotReader]>([])
    private let generation = Atomic<Int>(0)

    /// Closes the connections not in use (those in use close when their read ends); the next read opens new ones.
    func closeAll() {
        generation.add(1, ordering: .relaxed)
        let idle = free.withLock { qs in
            let all = qs
            qs = []
            return all
        }
        for r in idle { try? r.queue.close() }
    }

    /// What the caches of the connections not in use hold (tests).
    func idleCaches() -> [HotCacheSummary] { free.withLock { $0.map { HotCacheSummary($0.cache) } } }

    /// `body` in a read transaction of a connection of its own (opened with `open` when none is free),
    /// with the connection's cache, emptied first when the database changed since its last read.
    func read<T: Sendable>(path: String, open: (String) throws -> DatabaseQueue, _ body: (Database, HotCache) throws -> T) throws -> T {
        let reader = try free.withLock { $0.popLast() } ?? HotReader(queue: try open(path), generation: generation.load(ordering: .relaxed))
        defer {
            if reader.generation == generation.load(ordering: .relaxed) {
                free.withLock { $0.append(reader) }
            } else {
                try? reader.queue.close()
            }
        }
        return try reader.queue.inDatabase { db in try reader.cache.transaction(db) { try body(db, reader.cache) } }
    }
}

/// One connection of `HotReaders` and its cache. `@unchecked Sendable` (reviewed, scripts/check-seams): its
/// cache is mutable and unlocked, and it is used by one thread at a time — `HotReaders.read` takes it out of
/// the free list under the list's lock and puts it back after the read, and the read never suspends.
final class HotReader: @unchecked Sendable {
    let queue: DatabaseQueue
    let cache = HotCache()
    /// `HotReaders`' generation when opened: a connection opened before `closeAll` is closed after its read.
    let generation: Int
    init(queue: DatabaseQueue, generation: Int) { self.queue = queue; self.generation = generation }
}

/// What a `HotCache` holds, for tests.
struct HotCacheSummary: Sendable {
    var tokenHashes: Set<[UInt8]>
    var segments: [Int64]?
    var objects: Int
    var invalidations: Int
    init(_ c: HotCache) { tokenHashes = Set(c.tokens.keys); segments = c.segments; objects = c.objects.count; invalidations = c.invalidations }
}

/// What a `readNow` connection remembers between reads, valid while the database is unchanged: SQLite's
/// `PRAGMA data_version` (read first in every read transaction) moves whenever another connection — of
/// this process or another — commits, and then the whole cache is emptied before the read goes on. So a
/// token revoked by `lethe token revoke` in another process, a segment merged, an object re-indexed are
/// seen by the next read after their commit, as without a cache. Used by one thread at a time.
final class HotCache {
    /// The `data_version` the cache holds values of (nil: none read yet).
    private(set) var dataVersion: Int64?
    /// How many times the cache was emptied because the database changed (tests).
    private(set) var invalidations = 0
    /// API tokens by their hash (`token(hash:)`): found ones only.
    var tokens: [[UInt8]: (token: APIToken, hash: [UInt8])] = [:]
    /// The posting segments' ids, ascending (`segmentIDs`).
    var segments: [Int64]?
    /// Objects joined to segment entries (`livePostings`), by id; nil: no such object (dead).
    var objects: [Int64: SQLiteStateStore.LiveObject?] = [:]
    /// The most objects kept; beyond it the object cache starts again.
    static let maxObjects = 65_536
    /// The most tokens kept; beyond it the token cache starts again.
    static let maxTokens = 1_024

    /// `body` in one deferred read transaction begun and ended with cached statements (no SQL compiled per
    /// read), after checking `data_version` and emptying the cache if it moved.
    func transaction<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
        let result: T
        do {
            try validate(db)
            result = try body()
        } catch {
            try? db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute()
            throw error
        }
        try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        return result
    }

    /// Reads `data_version` (inside the read transaction: the version of its snapshot) and empties the
    /// cache when it differs from the one the cache's values were read at.
    func validate(_ db: Database) throws {
        let version = try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? -1
        if version != dataVersion {
            if dataVersion != nil { invalidations += 1 }
            tokens = [:]
            segments = nil
            objects = [:]
            dataVersion = version
        }
    }
}
