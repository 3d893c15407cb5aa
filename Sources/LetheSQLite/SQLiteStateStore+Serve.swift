import Foundation
import GRDB
public import LetheCore
public import LetheCatalog

// API tokens and the notification outbox (issue 14) on SQLite.

extension SQLiteStateStore {
    /// The tables of `lethe serve` (migration `v9-serve`).
    static let serveSchema = """
        CREATE TABLE api_tokens(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            hash BLOB NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER,
            last_used_at INTEGER
        );
        CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
        CREATE TABLE outbox(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id TEXT,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE outbox_sinks(
            sink TEXT NOT NULL PRIMARY KEY,
            floor INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE outbox_deliveries(
            sink TEXT NOT NULL,
            seq INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at INTEGER NOT NULL DEFAULT 0,
            delivered_at INTEGER,
            last_error TEXT,
            PRIMARY KEY(sink, seq)
        ) WITHOUT ROWID;
        """

    /// The dispatch lease of each sink (migration `v10-outbox-lease`): who holds it, until when.
    static let outboxLeaseSchema = """
        ALTER TABLE outbox_sinks ADD COLUMN holder TEXT;
        ALTER TABLE outbox_sinks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
        """

    static func token(_ row: Row, path: String) throws -> APIToken {
        let roleText: String = row["role"]
        guard let role = Role(rawValue: roleText) else {
            throw LetheError(.corrupt, "API token \(row["id"] as Int64) has an unknown role `\(roleText)`", at: path)
        }
        return APIToken(
            id: row["id"], name: row["name"], role: role, createdAt: row["created_at"], revokedAt: row["revoked_at"],
            lastUsedAt: row["last_used_at"])
    }

    static func message(_ row: Row, path: String) throws -> OutboxMessage {
        let text: String = row["payload"]
        let payload: JSONValue
        do { payload = try JSONValue.parse(Array(text.utf8)) } catch {
            throw LetheError(.corrupt, "outbox message \(row["seq"] as Int64) holds no JSON payload", at: path)
        }
        return OutboxMessage(seq: row["seq"], requestID: row["request_id"], event: row["event"], payload: payload, createdAt: row["created_at"])
    }
}

extension SQLiteStateStore: TokenReader, OutboxReader {
    public var tokens: any TokenReader { self }
    public var outbox: any OutboxReader { self }

    public func allTokens() async throws -> [APIToken] {
        let path = databasePath
        return try await read("cannot read the API tokens") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_tokens ORDER BY id").map { try Self.token($0, path: path) }
        }
    }

    public func token(hash: [UInt8]) async throws -> (token: APIToken, hash: [UInt8])? {
        let path = databasePath
        // Every authenticated call: read on the caller's thread. A token found is kept by the connection
        // until the database changes (`HotCache`: a revocation, by any process, empties it at once).
        return try readNow("cannot read the API tokens") { db, cache in
            if let known = cache.tokens[hash] { return known }
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM api_tokens WHERE hash = ?"), arguments: [Data(hash)]) else {
                return nil
            }
            let found = (token: try Self.token(row, path: path), hash: Array(row["hash"] as Data))
            if cache.tokens.count >= HotCache.maxTokens { cache.tokens = [:] }
            cache.tokens[hash] = found
            return found
        }
    }

    public func messages(after: Int64, limit: Int) async throws -> [OutboxMessage] {
        let path = databasePath
        return try await read("cannot read the outbox") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, limit]).map {
                try Self.message($0, path: path)
            }
        }
    }

    public func pending(sink: String, after: Int64, limit: Int) async throws -> [OutboxPending] {
        let path = databasePath
        return try await read("cannot read the outbox of sink \(sink)") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT o.*, coalesce(d.attempts, 0) AS attempts, coalesce(d.next_at, 0) AS next_at, d.last_error
                    FROM outbox o LEFT JOIN outbox_deliveries d ON d.sink = ? AND d.seq = o.seq
                    WHERE o.seq > ? AND d.delivered_at IS NULL ORDER BY o.seq LIMIT ?
                    """, arguments: [sink, after, limit]
            ).map {
                OutboxPending(
                    message: try Self.message($0, path: path), attempts: $0["attempts"], nextAttemptAt: $0["next_at"], lastError: $0["last_error"])
            }
        }
    }

    public func deliveries(seq: Int64) async throws -> [OutboxDelivery] {
        try await read("cannot read the deliveries of outbox message \(seq)") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox_deliveries WHERE seq = ? ORDER BY sink", arguments: [seq]).map {
                OutboxDelivery(
                    sink: $0["sink"], seq: $0["seq"], attempts: $0["attempts"], nextAttemptAt: $0["next_at"], deliveredAt: $0["delivered_at"],
                    lastError: $0["last_error"])
            }
        }
    }

    public func floor(sink: String) async throws -> Int64? {
        try await read("cannot read the outbox of sink \(sink)") { db in
            try Int64.fetchOne(db, sql: "SELECT floor FROM outbox_sinks WHERE sink = ?", arguments: [sink])
        }
    }

    public func lease(sink: String) async throws -> OutboxLease? {
        try await read("cannot read the outbox of sink \(sink)") { db in
            try Row.fetchOne(db, sql: "SELECT holder, lease_until FROM outbox_sinks WHERE sink = ?", arguments: [sink]).map {
                OutboxLease(holder: $0["holder"], until: $0["lease_until"])
            }
        }
    }
}

struct SQLiteTokenWriter: TokenWriter {
    let db: Database
    let path: String

    func insertToken(name: String, role: Role, hash: [UInt8], at: Int64) throws -> APIToken {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL)", arguments: [name]) ?? false {
            throw LetheError(.conflict, "a token named `\(name)` exists: revoke it first (`lethe token revoke \(name)`) or choose another name")
        }
        try db.execute(
            sql: "INSERT INTO api_tokens(name, role, hash, created_at) VALUES (?, ?, ?, ?)", arguments: [name, role.rawValue, Data(hash), at])
        return APIToken(id: db.lastInsertedRowID, name: name, role: role, createdAt: at)
    }

    func revokeToken(name: String, at: Int64) throws -> APIToken? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM api_tokens WHERE name = ? AND revoked_at IS NULL", arguments: [name]) else {
            return nil
        }
        var t = try SQLiteStateStore.token(row, path: path)
        try db.execute(sql: "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", arguments: [at, t.id])
        t.revokedAt = at
        return t
    }

    func touchToken(id: Int64, at: Int64) throws {
        try db.execute(
            sql: "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)", arguments: [at, id, at])
    }
}

struct SQLiteOutboxWriter: OutboxWriter {
    let db: Database

    func enqueue(requestID: String?, event: String, payload: JSONValue, at: Int64) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO outbox(request_id, event, payload, created_at) VALUES (?, ?, ?, ?)",
            arguments: [requestID, event, payload.text, at])
        return db.lastInsertedRowID
    }

    func registerSink(_ sink: String) throws -> Int64 {
        if let f = try Int64.fetchOne(db, sql: "SELECT floor FROM outbox_sinks WHERE sink = ?", arguments: [sink]) { return f }
        let last = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM outbox") ?? 0
        try db.execute(sql: "INSERT INTO outbox_sinks(sink, floor) VALUES (?, ?)", arguments: [sink, last])
        return last
    }

    func setFloor(sink: String, seq: Int64) throws {
        try db.execute(sql: "UPDATE outbox_sinks SET floor = ? WHERE sink = ? AND floor < ?", arguments: [seq, sink, seq])
    }

    func delivered(sink: String, seqs: [Int64], at: Int64) throws {
        let st = try db.cachedStatement(
            sql: """
                INSERT INTO outbox_deliveries(sink, seq, attempts, next_at, delivered_at) VALUES (?, ?, 1, 0, ?)
                ON CONFLICT(sink, seq) DO UPDATE SET attempts = attempts + 1, delivered_at = coalesce(delivered_at, excluded.delivered_at)
                """)
        for s in seqs { try st.execute(arguments: [sink, s, at]) }
    }

    func deliveryFailed(sink: String, seq: Int64, attempts: Int, nextAttemptAt: Int64, error: String) throws {
        try db.execute(
            sql: """
                INSERT INTO outbox_deliveries(sink, seq, attempts, next_at, last_error) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(sink, seq) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at, last_error = excluded.last_error
                WHERE delivered_at IS NULL
                """, arguments: [sink, seq, attempts, nextAttemptAt, error])
    }

    func takeLease(sink: String, holder: String, until: Int64, now: Int64) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE outbox_sinks SET holder = ?, lease_until = ?
                WHERE sink = ? AND (holder IS NULL OR holder = ? OR lease_until <= ?)
                """, arguments: [holder, until, sink, holder, now])
        return db.changesCount == 1
    }

    func holdLease(sink: String, holder: String, until: Int64) throws -> Bool {
        try db.execute(sql: "UPDATE outbox_sinks SET lease_until = ? WHERE sink = ? AND holder = ?", arguments: [until, sink, holder])
        return db.changesCount == 1
    }

    func releaseLease(sink: String, holder: String) throws {
        try db.execute(sql: "UPDATE outbox_sinks SET holder = NULL, lease_until = 0 WHERE sink = ? AND holder = ?", arguments: [sink, holder])
    }

    func prune(sinks: [String], before: Int64, limit: Int) throws -> Int {
        let names = Array(Set(sinks))
        guard !names.isEmpty, limit > 0 else { return 0 }
        let marks = names.map { _ in "?" }.joined(separator: ", ")
        let floors = try Int64.fetchAll(db, sql: "SELECT floor FROM outbox_sinks WHERE sink IN (\(marks))", arguments: StatementArguments(names))
        guard floors.count == names.count, let through = floors.min() else { return 0 }
        // The oldest `limit` messages settled everywhere and written before `before`.
        let seqs = try Int64.fetchAll(
            db, sql: "SELECT seq FROM outbox WHERE seq <= ? AND created_at < ? ORDER BY seq LIMIT ?", arguments: [through, before, limit])
        guard let last = seqs.last else { return 0 }
        try db.execute(
            sql: "DELETE FROM outbox_deliveries WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? AND created_at < ?)", arguments: [last, before])
        try db.execute(sql: "DELETE FROM outbox WHERE seq <= ? AND created_at < ?", arguments: [last, before])
        return db.changesCount
    }
}
