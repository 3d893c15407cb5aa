import Foundation
public import LetheCatalog
import LetheCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The `StateStore` on a PostgreSQL server (`state: postgres://…`): one schema per installation
/// (`?schema=`, default `lethe`), created and migrated on first open.
///
/// The state seam's unit of work is synchronous (`transaction`'s body makes no awaits), so each
/// transaction runs on a thread of the store's own `NIOThreadPool`, never on an event loop: it takes
/// a connection, sends `BEGIN`, runs the body (each statement sent and waited for), and `COMMIT`s.
/// A body whose statement met a deadlock, a serialization failure or a lost connection is rolled
/// back and run again (up to 5 times, jittered): bodies must be re-runnable (they capture values
/// only). `COMMIT` itself is never retried: when the connection breaks during it, the outcome is
/// unknown and the error says so (every step is idempotent: running the command again is safe).
///
/// Concurrent writers on several machines: requests are compare-and-set on their status, audit
/// appends serialise on the one `audit_head` row (`FOR UPDATE`, released at commit), migrations on
/// a transaction-scoped advisory lock, `lethe run` on a session advisory lock.
public final class PostgresStateStore: StateStore, Sendable {
    public let location: PostgresLocation
    public let readOnly: Bool
    let connections: PGConnections
    let threads: NIOThreadPool
    /// The installation id read at open: `checkIntact` fails when it changed or vanished.
    let installation: String
    let auditKeyBox = Mutex<[UInt8]?>(nil)
    /// The folder of the installation's key files, searched by the residue scan with the tables.
    let keysFolderBox = Mutex<String?>(nil)
    let closedFlag = Atomic<Bool>(false)

    /// The current schema version (`lethe_migrations`).
    public static let schemaVersion: Int64 = 2
    /// How many times a transaction runs when it meets a deadlock, a serialization failure or a lost connection.
    public static let maxAttempts = 5

    /// Connects to `url` and opens (creating and migrating, unless `readOnly`) its schema.
    /// With `readOnly`, every connection has `default_transaction_read_only` on, nothing is created,
    /// and a schema that is missing or older than this build is refused naming a writing command.
    public convenience init(url: String, readOnly: Bool = false, environment: [String: String]? = nil) throws {
        try self.init(location: PostgresLocation(url: url, environment: environment), readOnly: readOnly)
    }

    public init(location: PostgresLocation, readOnly: Bool = false, threads count: Int = 8) throws {
        self.location = location
        self.readOnly = readOnly
        var config = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        config.options.connectTimeout = .seconds(10)
        config.options.additionalStartupParameters =
            [
                ("search_path", location.schema), ("application_name", "lethe"), ("TimeZone", "UTC"),
            ] + (readOnly ? [("default_transaction_read_only", "on")] : [])
        var logger = Logger(label: "lethe.postgres")
        logger.logLevel = .critical
        connections = PGConnections(configuration: config, location: location.description, logger: logger, maxIdle: count)
        threads = NIOThreadPool(numberOfThreads: count)
        threads.start()
        do {
            installation = try Self.migrate(connections, location: location, readOnly: readOnly)
        } catch {
            connections.closeAll()
            threads.shutdownGracefully { _ in }
            throw error
        }
    }

    /// Closes the connections and stops the threads (the store is unusable afterwards; idempotent).
    public func close() {
        guard !closedFlag.exchange(true, ordering: .relaxed) else { return }
        connections.closeAll()
        threads.shutdownGracefully { _ in }
    }

    deinit { close() }

    /// Sets the key under which new audit entries are chained (HMAC-SHA-256); see `AuditChain`.
    public func setAuditKey(_ key: [UInt8]?) { auditKeyBox.withLock { $0 = key } }
    public var auditKey: [UInt8]? { auditKeyBox.withLock { $0 } }

    /// The installation's key folder (searched by the residue scan too).
    public func setKeysFolder(_ folder: String?) { keysFolderBox.withLock { $0 = folder } }
    public var keysFolder: String? { keysFolderBox.withLock { $0 } }

    // MARK: Units of work

    /// The error of a unit of work, as one line naming the server (never the password).
    func wrap(_ error: any Error, _ what: String) -> any Error {
        if let e = error as? PGStatementError {
            let corrupt = e.sqlState == "XX001" || e.sqlState == "XX002"
            return LetheError(corrupt ? .corrupt : .io, "\(what): \(e.message)")
        }
        if let e = error as? LetheError, e.code == .io, !e.message.hasPrefix(what) {
            return LetheError(.io, "\(what): \(e.message)", at: e.location)
        }
        return error
    }

    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        if readOnly {
            throw LetheError(.badUsage, "\(what): the state was opened read-only (\(location))")
        }
        return try await threads.runIfActive { try self.transactionNow(what, body) }
    }

    /// `transaction` on the calling thread (no event loop): opening the state, tests.
    func transactionNow<T>(_ what: String, _ body: (PGTransaction) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let s: PGSession
            do { s = try connections.checkout() } catch { throw wrap(error, what) }
            var reusable = false
            defer { connections.checkin(s, reusable: reusable) }
            do {
                try s.exec("BEGIN")
            } catch {
                if s.lost && attempt < Self.maxAttempts { continue }
                throw wrap(error, what)
            }
            let result: T
            do {
                result = try body(PGTransaction(session: s, store: self))
            } catch {
                if !s.lost, (try? s.exec("ROLLBACK")) != nil { reusable = true }
                if s.retryable && attempt < Self.maxAttempts {
                    Self.backoff(attempt)
                    continue
                }
                throw wrap(error, what)
            }
            do {
                try s.exec("COMMIT")
            } catch let e as PGStatementError {
                if e.connectionLost {
                    throw LetheError(
                        .io,
                        "\(what): the connection to PostgreSQL at \(location) broke during COMMIT: whether the transaction landed is unknown; run the command again (its steps are idempotent)"
                    )
                }
                // The server refused the commit: it rolled the transaction back.
                if e.isRetryable && attempt < Self.maxAttempts {
                    Self.backoff(attempt)
                    continue
                }
                throw wrap(e, what)
            }
            reusable = true
            return result
        }
    }

    /// The server process of a transaction's connection (tests end it to lose the connection).
    static func backendPID(_ tx: any StateTransaction) throws -> Int64 {
        guard let t = tx as? PGTransaction else { throw LetheError(.badUsage, "not a PostgreSQL transaction") }
        return try PGRow(t.session.query("SELECT pg_backend_pid()::bigint").rows[0]).int(0)
    }

    static func backoff(_ attempt: Int) {
        usleep(useconds_t(Int.random(in: 1_000...(10_000 << min(attempt, 5)))))
    }

    /// Runs `body` on a connection (autocommit; `consistent`: in one read-only snapshot).
    func read<T: Sendable>(_ what: String, consistent: Bool = false, _ body: @escaping @Sendable (PGSession) throws -> T) async throws -> T {
        try await threads.runIfActive { try self.readNow(what, consistent: consistent, body) }
    }

    /// `read` on the calling thread (no event loop).
    func readNow<T>(_ what: String, consistent: Bool = false, _ body: (PGSession) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let s: PGSession
            do { s = try connections.checkout() } catch { throw wrap(error, what) }
            var reusable = false
            defer { connections.checkin(s, reusable: reusable) }
            do {
                if consistent { try s.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") }
                let r = try body(s)
                if consistent { try s.exec("COMMIT") }
                reusable = true
                return r
            } catch {
                if s.lost && attempt < 3 { continue }
                if consistent && !s.lost, (try? s.exec("ROLLBACK")) != nil { reusable = true }
                throw wrap(error, what)
            }
        }
    }

    public func checkIntact() throws {
        let now = try readNow("cannot read the state") { s in
            try s.query("SELECT installation::text FROM lethe_meta").rows.first.map { try PGRow($0).str(0) }
        }
        guard now == installation else {
            throw LetheError(
                .io,
                "the state schema \(location.schema) was dropped or replaced while Lethe was using it: what this process recorded since is lost (\(location))"
            )
        }
    }

    /// Nothing to checkpoint: the server owns its write-ahead log.
    @discardableResult
    public func checkpoint() async -> Bool { true }

    /// Nothing to do: a commit returns once the server has flushed its write-ahead log
    /// (`synchronous_commit = on`, PostgreSQL's default; a server set otherwise trades that away).
    public func makeDurable() async throws {}

    // MARK: Opening without the async hop (StateBootstrap)

    /// A setting read on the calling thread.
    public func settingNow(_ name: String) throws -> String? {
        try readNow("cannot read setting \(name)") { s in try Self.readSetting(s, name) }
    }

    /// Saves a setting on the calling thread.
    public func setSettingNow(_ name: String, _ value: String) throws {
        try transactionNow("cannot save setting \(name)") { tx in try Self.setSetting(tx.session, name, value) }
    }

    /// True when the state holds nothing yet: no object, request or audit entry.
    public func isEmptyNow() throws -> Bool {
        try readNow("cannot read the state") { s in
            try PGRow(
                s.query(
                    """
                    SELECT NOT EXISTS (SELECT 1 FROM objects) AND NOT EXISTS (SELECT 1 FROM requests)
                       AND NOT EXISTS (SELECT 1 FROM audit)
                    """
                ).rows[0]
            ).bool(0)
        }
    }

    /// True when some request holds a stream tag (so `stream.key` must exist).
    public func hasStreamTagsNow() throws -> Bool {
        try readNow("cannot read the state") { s in
            try PGRow(s.query("SELECT EXISTS (SELECT 1 FROM requests WHERE stream_tag IS NOT NULL)").rows[0]).bool(0)
        }
    }

    /// Keys the audit chain from now on, in one transaction holding an advisory lock (other openers
    /// wait): unless a fingerprint is recorded already (then false, nothing changed), calls `newKey`
    /// (which writes the key file aside), records its fingerprint and, if the chain has entries,
    /// appends the `audit_keyed` entry.
    public func keyAuditChain(fingerprintSetting: String, at: Int64, newKey: () throws -> (key: [UInt8], fingerprint: String)) throws -> Bool {
        try transactionNow("cannot key the audit log") { tx in
            let s = tx.session
            try s.exec(.sql("SELECT pg_advisory_xact_lock(hashtext($1))") { $0.append("lethe:\(location.schema):keys") })
            if try Self.readSetting(s, fingerprintSetting) != nil { return false }
            let (key, fingerprint) = try newKey()
            try Self.setSetting(s, fingerprintSetting, fingerprint)
            let head = try PGRow(s.query("SELECT seq, hash FROM audit_head").rows[0])
            let seq = try head.int(0)
            if seq > 0 {
                _ = try Self.appendAudit(
                    s, event: .auditKeyed, requestID: nil, actor: "lethe", details: #"{"unkeyed_head":"\#(seq):\#(try head.str(1))"}"#,
                    at: at, key: key, requestIDs: [])
            }
            return true
        }
    }

    /// True when some `audit_keyed` entry's hash verifies under `key` (a migration that committed).
    public func auditChainIsKeyed(with key: [UInt8]) throws -> Bool {
        try readNow("cannot read the audit log") { s in
            try s.query("SELECT \(unescaped: Self.auditColumns) FROM audit WHERE event = 'audit_keyed' ORDER BY seq").rows.contains { row in
                let e = try Self.entry(PGRow(row))
                return AuditChain.hash(
                    seq: e.seq, at: e.at, event: e.event, requestID: e.requestID, actor: e.actor, details: e.details, prevHash: e.prevHash,
                    key: key) == e.hash
            }
        }
    }
}
