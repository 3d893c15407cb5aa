import Foundation
import LetheCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// A statement that failed, before a unit of work names it (`PostgresStateStore.wrap`).
struct PGStatementError: Error {
    /// The server's SQLSTATE (nil when the connection failed).
    var sqlState: String?
    var message: String
    /// The connection is gone (the statement may or may not have run).
    var connectionLost: Bool

    /// Deadlock, serialization failure, lock not available: the transaction is rolled back and may run again.
    var isRetryable: Bool { connectionLost || ["40001", "40P01", "55P03"].contains(sqlState ?? "") }

    init(lostAt location: String) {
        sqlState = nil
        connectionLost = true
        message = "the connection to PostgreSQL at \(location) closed"
    }

    init(_ error: any Error, at location: String) {
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                sqlState = info[.sqlState]
                // The server's DETAIL is left out: it can quote row values (a key naming a subject).
                let text = (info[.message] ?? "server error").split(whereSeparator: \.isNewline).joined(separator: " ")
                message = "\(text) [SQLSTATE \(info[.sqlState] ?? "?")] at \(location)"
                connectionLost = info[.sqlState].map { $0.hasPrefix("08") || $0 == "57P01" } ?? false
            } else {
                sqlState = nil
                connectionLost = true
                message = "cannot reach PostgreSQL at \(location): \(e.code)" + (e.underlying.map { " (\(Self.oneLine($0)))" } ?? "")
            }
        } else if let e = error as? PGStatementError {
            self = e
        } else {
            sqlState = nil
            connectionLost = true
            message = "cannot reach PostgreSQL at \(location): \(Self.oneLine(error))"
        }
    }

    static func oneLine(_ e: any Error) -> String {
        String(describing: e).split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// One connection used synchronously, from a thread that is no event loop (a `NIOThreadPool`
/// thread of the store, or the caller's own thread while the state is opened): every statement
/// is sent and its result waited for.
final class PGSession: Sendable {
    let connection: PostgresConnection
    let logger: Logger
    let location: String
    private let retryableFlag = Atomic<Bool>(false)
    private let lostFlag = Atomic<Bool>(false)
    /// A statement of the current transaction failed in a way that allows running it again.
    var retryable: Bool { retryableFlag.load(ordering: .relaxed) }
    /// The connection broke: it goes back to no pool.
    var lost: Bool { lostFlag.load(ordering: .relaxed) }

    init(connection: PostgresConnection, logger: Logger, location: String) {
        self.connection = connection; self.logger = logger; self.location = location
    }

    /// Runs one statement; its rows.
    @discardableResult
    func query(_ q: PostgresQuery) throws -> PostgresQueryResult {
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a state statement waited on an event loop")
        do {
            return try waitFor(connection.query(q, logger: logger))
        } catch {
            let e = PGStatementError(error, at: location)
            if e.isRetryable { retryableFlag.store(true, ordering: .relaxed) }
            if e.connectionLost || connection.isClosed { lostFlag.store(true, ordering: .relaxed) }
            throw e
        }
    }

    /// Waits for a statement's result. A statement sent while the server was closing the connection
    /// (`pg_terminate_backend`, a restart) could be left waiting forever: the wait checks every second
    /// whether the connection is still open, and fails as a lost connection once it is not.
    func waitFor<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        future.whenComplete { r in
            result.withLock { $0 = r }
            done.signal()
        }
        while done.wait(timeout: .now() + 1) == .timedOut {
            guard connection.isClosed else { continue }
            if done.wait(timeout: .now() + 1) == .success { break }
            throw PGStatementError(lostAt: location)
        }
        return try result.withLock { $0! }.get()
    }

    /// Runs one statement; the number of rows it changed (or returned).
    @discardableResult
    func exec(_ q: PostgresQuery) throws -> Int {
        let r = try query(q)
        return r.metadata.rows ?? r.rows.count
    }

    /// Runs a statement and calls `each` for every row as it arrives (large scans).
    func stream(_ q: PostgresQuery, _ each: @escaping @Sendable (PostgresRow) throws -> Void) throws {
        precondition(MultiThreadedEventLoopGroup.currentEventLoop == nil, "a state statement waited on an event loop")
        do {
            _ = try waitFor(connection.query(q, logger: logger, each))
        } catch {
            let e = PGStatementError(error, at: location)
            if e.connectionLost || connection.isClosed { lostFlag.store(true, ordering: .relaxed) }
            throw e
        }
    }
}

/// The store's connections: idle ones kept for reuse, new ones opened on demand.
final class PGConnections: Sendable {
    let configuration: PostgresConnection.Configuration
    let location: String
    let logger: Logger
    let maxIdle: Int
    private let idle = Mutex<[PostgresConnection]>([])
    private let closed = Atomic<Bool>(false)
    private let nextID = Atomic<Int>(1)

    init(configuration: PostgresConnection.Configuration, location: String, logger: Logger, maxIdle: Int) {
        self.configuration = configuration; self.location = location; self.logger = logger; self.maxIdle = maxIdle
    }

    /// An idle connection, or a new one (up to 3 attempts, 0.1 and 0.3 s apart).
    func checkout() throws -> PGSession {
        while let c = idle.withLock({ $0.popLast() }) {
            if !c.isClosed { return PGSession(connection: c, logger: logger, location: location) }
        }
        return PGSession(connection: try connect(), logger: logger, location: location)
    }

    func connect() throws -> PostgresConnection {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
                return try PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: id, logger: logger
                ).wait()
            } catch {
                let e = PGStatementError(error, at: location)
                // A refusal by the server (password, unknown database) is final.
                guard e.connectionLost, attempt < 3 else {
                    throw LetheError(.io, e.connectionLost ? e.message : "cannot connect to PostgreSQL: \(e.message)")
                }
                usleep(useconds_t(attempt == 1 ? 100_000 : 300_000))
            }
        }
    }

    /// Gives a session's connection back (closed instead when broken, in a transaction, or too many idle).
    func checkin(_ s: PGSession, reusable: Bool) {
        let c = s.connection
        guard reusable, !s.lost, !c.isClosed, !closed.load(ordering: .relaxed) else {
            closeConnection(c)
            return
        }
        let kept = idle.withLock { list -> Bool in
            guard list.count < maxIdle else { return false }
            list.append(c)
            return true
        }
        if !kept { closeConnection(c) }
    }

    func closeAll() {
        closed.store(true, ordering: .relaxed)
        for c in idle.withLock({ l -> [PostgresConnection] in
            defer { l = [] }
            return l
        }) {
            closeConnection(c)
        }
    }
}

/// Reading cells by position.
struct PGRow {
    let cells: PostgresRandomAccessRow
    init(_ row: PostgresRow) { cells = row.makeRandomAccess() }

    func int(_ i: Int) throws -> Int64 { try cells[i].decode(Int64.self) }
    func optInt(_ i: Int) throws -> Int64? { cells[i].bytes == nil ? nil : try cells[i].decode(Int64.self) }
    func str(_ i: Int) throws -> String { try cells[i].decode(String.self) }
    func optStr(_ i: Int) throws -> String? { cells[i].bytes == nil ? nil : try cells[i].decode(String.self) }
    func bool(_ i: Int) throws -> Bool { try cells[i].decode(Bool.self) }
    /// A bytea cell's bytes (nil for NULL).
    func bytes(_ i: Int) -> [UInt8]? { cells[i].bytes.map { Array($0.readableBytesView) } }
    func ints(_ i: Int) throws -> [Int64]? { cells[i].bytes == nil ? nil : try cells[i].decode([Int64].self) }
    func isNull(_ i: Int) -> Bool { cells[i].bytes == nil }
}

extension PostgresBindings {
    mutating func bytes(_ b: [UInt8]?) {
        if let b { append(ByteBuffer(bytes: b)) } else { append(nil as ByteBuffer?) }
    }
}

extension PostgresQuery {
    /// SQL with `$n` placeholders and their values.
    static func sql(_ text: String, _ build: (inout PostgresBindings) throws -> Void = { _ in }) rethrows -> PostgresQuery {
        var b = PostgresBindings()
        try build(&b)
        return PostgresQuery(unsafeSQL: text, binds: b)
    }
}

/// Closes a connection without waiting.
func closeConnection(_ c: PostgresConnection) {
    let f: EventLoopFuture<Void> = c.close()
    // Held until the channel is closed (PostgresNIO asserts a connection goes away closed).
    f.whenComplete { _ in withExtendedLifetime(c) {} }
}
