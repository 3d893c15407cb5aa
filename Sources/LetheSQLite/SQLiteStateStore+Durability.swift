import GRDB
import GRDBSQLite
import LetheCore
import Synchronization

/// Durability of the state (docs/state.md, "Durability").
///
/// The pool runs SQLite in WAL mode with `synchronous = NORMAL`: a commit appends its pages to
/// `lethe.sqlite-wal` without a sync, so it survives a killed process (the pages are in the OS's
/// cache) but not a power loss or an OS crash until the WAL reaches the disk. `makeDurable` syncs the
/// WAL once, through the writer connection's own WAL file (SQLite's `xSync`: `fdatasync`, and the
/// folder's entry too the first time this connection syncs a WAL it created), when a write committed
/// since the last sync; the engine calls it once when an operation that wrote the state ends. The
/// database file itself needs nothing: it only changes by checkpoints, which sync it.
extension SQLiteStateStore {
    /// Syncs the WAL when a write transaction committed here since the last sync (see above); nothing
    /// otherwise (no hop to the writer, no system call). The sync runs on the writer connection, after
    /// every transaction this process committed before it and before the next, so it covers them all:
    /// concurrent operations that end together share one sync.
    ///
    /// The caller's cancellation does not reach the sync: an operation whose transactions committed
    /// is not turned into a failure (which a caller would retry, writing twice) by a cancelled wait.
    public func makeDurable() async throws {
        guard !readOnly, writer is DatabasePool, durability.pending else { return }
        do {
            try await Task { [writer, durability] in
                try await writer.writeWithoutTransaction { db in try durability.sync(db) }
            }.value
        } catch {
            throw Self.wrap(error, "cannot sync the state's write-ahead log to disk", path: databasePath)
        }
    }

    /// `makeDurable` on the calling thread (opening a state, before any task runs).
    func makeDurableNow() throws {
        guard !readOnly, writer is DatabasePool, durability.pending else { return }
        do {
            try writer.writeWithoutTransaction { [durability] db in try durability.sync(db) }
        } catch {
            throw Self.wrap(error, "cannot sync the state's write-ahead log to disk", path: databasePath)
        }
    }

    /// How many times `makeDurable` synced the WAL (tests: one per writing operation, none after a
    /// read-only one).
    public var walSyncs: Int { durability.syncs.load(ordering: .sequentiallyConsistent) }

    /// Syncs the WAL file of `db`'s connection (SQLite's own handle on it, so the file the commits went
    /// to, with SQLite's sync: `fdatasync` on Linux).
    static func syncWAL(_ db: Database) throws {
        var file: UnsafeMutablePointer<sqlite3_file>? = nil
        let rc = withUnsafeMutablePointer(to: &file) { p in
            sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_JOURNAL_POINTER, p)
        }
        guard rc == SQLITE_OK, let file, let sync = file.pointee.pMethods?.pointee.xSync else {
            // A pool's writer that committed has its WAL open: this is no state Lethe makes.
            throw DatabaseError(resultCode: ResultCode(rawValue: rc == SQLITE_OK ? SQLITE_MISUSE : rc), message: "no write-ahead log to sync")
        }
        let synced = sync(file, SQLITE_SYNC_NORMAL)
        guard synced == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: synced), message: "the write-ahead log's sync failed")
        }
    }
}

/// What `makeDurable` needs to know: write transactions committed by this store, how many of them
/// the last sync of the WAL covered, and how many syncs there were.
final class Durability: Sendable {
    let commits = Atomic<UInt64>(0)
    let synced = Atomic<UInt64>(0)
    let syncs = Atomic<Int>(0)

    /// Counts a committed write transaction (call after its commit, on the writer connection).
    func committed() { commits.add(1, ordering: .sequentiallyConsistent) }

    /// Syncs the WAL of the writer connection `db` if a counted commit is not yet synced. Call on the
    /// writer (its lock held): every counted commit is in the WAL then, and none is under way.
    func sync(_ db: Database) throws {
        let made = commits.load(ordering: .sequentiallyConsistent)
        guard made > synced.load(ordering: .sequentiallyConsistent) else { return }  // another sync covered it
        try SQLiteStateStore.syncWAL(db)
        synced.store(made, ordering: .sequentiallyConsistent)
        syncs.add(1, ordering: .sequentiallyConsistent)
    }

    /// Whether a committed write is not yet synced.
    var pending: Bool {
        commits.load(ordering: .sequentiallyConsistent) > synced.load(ordering: .sequentiallyConsistent)
    }
}
