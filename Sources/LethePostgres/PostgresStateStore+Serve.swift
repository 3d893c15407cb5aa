import Foundation
public import LetheCatalog
public import LetheCore
import NIOCore
import PostgresNIO

// API tokens and the notification outbox (issue 14) on PostgreSQL.

extension PostgresStateStore {
    /// The tables of `lethe serve` (migration 4).
    static let serveMigration = """
        CREATE TABLE api_tokens(
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text COLLATE "C" NOT NULL,
            role text NOT NULL,
            hash bytea NOT NULL UNIQUE,
            created_at bigint NOT NULL,
            revoked_at bigint,
            last_used_at bigint
        );
        CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
        CREATE TABLE outbox(
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text COLLATE "C",
            event text NOT NULL,
            payload text NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE TABLE outbox_sinks(
            sink text COLLATE "C" PRIMARY KEY,
            floor bigint NOT NULL
        );
        CREATE TABLE outbox_deliveries(
            sink text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            attempts bigint NOT NULL DEFAULT 0,
            next_at bigint NOT NULL DEFAULT 0,
            delivered_at bigint,
            last_error text,
            PRIMARY KEY(sink, seq)
        )
        """

    /// The dispatch lease of each sink (migration 5): who holds it, until when.
    static let outboxLeaseMigration = """
        ALTER TABLE outbox_sinks ADD COLUMN holder text COLLATE "C";
        ALTER TABLE outbox_sinks ADD COLUMN lease_until bigint NOT NULL DEFAULT 0
        """

    static let tokenColumns = "id, name, role, created_at, revoked_at, last_used_at, hash"

    static func token(_ r: PGRow) throws -> APIToken {
        let id = try r.int(0), roleText = try r.str(2)
        guard let role = Role(rawValue: roleText) else { throw LetheError(.corrupt, "API token \(id) has an unknown role `\(roleText)`") }
        return APIToken(id: id, name: try r.str(1), role: role, createdAt: try r.int(3), revokedAt: try r.optInt(4), lastUsedAt: try r.optInt(5))
    }

    static let messageColumns = "o.seq, o.request_id, o.event, o.payload, o.created_at"

    static func message(_ r: PGRow) throws -> OutboxMessage {
        let seq = try r.int(0)
        guard let payload = try? JSONValue.parse(Array(try r.str(3).utf8)) else {
            throw LetheError(.corrupt, "outbox message \(seq) holds no JSON payload")
        }
        return OutboxMessage(seq: seq, requestID: try r.optStr(1), event: try r.str(2), payload: payload, createdAt: try r.int(4))
    }
}

extension PostgresStateStore: TokenReader, OutboxReader {
    public var tokens: any TokenReader { self }
    public var outbox: any OutboxReader { self }

    public func allTokens() async throws -> [APIToken] {
        try await read("cannot read the API tokens") { s in
            try s.query("SELECT \(unescaped: Self.tokenColumns) FROM api_tokens ORDER BY id").rows.map { try Self.token(PGRow($0)) }
        }
    }

    public func token(hash: [UInt8]) async throws -> (token: APIToken, hash: [UInt8])? {
        try await read("cannot read the API tokens") { s in
            guard
                let row = try s.query(
                    .sql("SELECT \(Self.tokenColumns) FROM api_tokens WHERE hash = $1") { $0.bytes(hash) }
                ).rows.first
            else { return nil }
            let r = PGRow(row)
            return (try Self.token(r), r.bytes(6) ?? [])
        }
    }

    public func messages(after: Int64, limit: Int) async throws -> [OutboxMessage] {
        try await read("cannot read the outbox") { s in
            try s.query(
                .sql("SELECT \(Self.messageColumns) FROM outbox o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2") {
                    $0.append(after); $0.append(Int64(limit))
                }
            ).rows.map { try Self.message(PGRow($0)) }
        }
    }

    public func pending(sink: String, after: Int64, limit: Int) async throws -> [OutboxPending] {
        try await read("cannot read the outbox of sink \(sink)") { s in
            try s.query(
                .sql(
                    """
                    SELECT \(Self.messageColumns), coalesce(d.attempts, 0), coalesce(d.next_at, 0), d.last_error
                    FROM outbox o LEFT JOIN outbox_deliveries d ON d.sink = $1 AND d.seq = o.seq
                    WHERE o.seq > $2 AND d.delivered_at IS NULL ORDER BY o.seq LIMIT $3
                    """
                ) {
                    $0.append(sink); $0.append(after); $0.append(Int64(limit))
                }
            ).rows.map { row in
                let r = PGRow(row)
                return OutboxPending(message: try Self.message(r), attempts: Int(try r.int(5)), nextAttemptAt: try r.int(6), lastError: try r.optStr(7))
            }
        }
    }

    public func deliveries(seq: Int64) async throws -> [OutboxDelivery] {
        try await read("cannot read the deliveries of outbox message \(seq)") { s in
            try s.query(
                .sql("SELECT sink, seq, attempts, next_at, delivered_at, last_error FROM outbox_deliveries WHERE seq = $1 ORDER BY sink") {
                    $0.append(seq)
                }
            ).rows.map { row in
                let r = PGRow(row)
                return OutboxDelivery(
                    sink: try r.str(0), seq: try r.int(1), attempts: Int(try r.int(2)), nextAttemptAt: try r.int(3), deliveredAt: try r.optInt(4),
                    lastError: try r.optStr(5))
            }
        }
    }

    public func floor(sink: String) async throws -> Int64? {
        try await read("cannot read the outbox of sink \(sink)") { s in
            try s.query(.sql("SELECT floor FROM outbox_sinks WHERE sink = $1") { $0.append(sink) }).rows.first.map { try PGRow($0).int(0) }
        }
    }

    public func lease(sink: String) async throws -> OutboxLease? {
        try await read("cannot read the outbox of sink \(sink)") { s in
            try s.query(.sql("SELECT holder, lease_until FROM outbox_sinks WHERE sink = $1") { $0.append(sink) }).rows.first.map {
                let r = PGRow($0)
                return OutboxLease(holder: try r.optStr(0), until: try r.int(1))
            }
        }
    }
}

struct PGTokenWriter: TokenWriter {
    let s: PGSession

    func insertToken(name: String, role: Role, hash: [UInt8], at: Int64) throws -> APIToken {
        let taken = try s.query(.sql("SELECT 1 FROM api_tokens WHERE name = $1 AND revoked_at IS NULL") { $0.append(name) }).rows.first != nil
        if taken {
            throw LetheError(.conflict, "a token named `\(name)` exists: revoke it first (`lethe token revoke \(name)`) or choose another name")
        }
        let id = try PGRow(
            s.query(
                .sql("INSERT INTO api_tokens(name, role, hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id") {
                    $0.append(name); $0.append(role.rawValue); $0.bytes(hash); $0.append(at)
                }
            ).rows[0]
        ).int(0)
        return APIToken(id: id, name: name, role: role, createdAt: at)
    }

    func revokeToken(name: String, at: Int64) throws -> APIToken? {
        guard
            let row = try s.query(
                .sql("UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING \(PostgresStateStore.tokenColumns)") {
                    $0.append(name); $0.append(at)
                }
            ).rows.first
        else { return nil }
        return try PostgresStateStore.token(PGRow(row))
    }

    func touchToken(id: Int64, at: Int64) throws {
        try s.exec(
            .sql("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)") {
                $0.append(id); $0.append(at)
            })
    }
}

struct PGOutboxWriter: OutboxWriter {
    let s: PGSession

    func enqueue(requestID: String?, event: String, payload: JSONValue, at: Int64) throws -> Int64 {
        try PGRow(
            s.query(
                .sql("INSERT INTO outbox(request_id, event, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING seq") {
                    $0.append(requestID); $0.append(event); $0.append(payload.text); $0.append(at)
                }
            ).rows[0]
        ).int(0)
    }

    func registerSink(_ sink: String) throws -> Int64 {
        try s.exec(
            .sql("INSERT INTO outbox_sinks(sink, floor) SELECT $1, coalesce(max(seq), 0) FROM outbox ON CONFLICT (sink) DO NOTHING") {
                $0.append(sink)
            })
        return try PGRow(s.query(.sql("SELECT floor FROM outbox_sinks WHERE sink = $1") { $0.append(sink) }).rows[0]).int(0)
    }

    func setFloor(sink: String, seq: Int64) throws {
        try s.exec(
            .sql("UPDATE outbox_sinks SET floor = $2 WHERE sink = $1 AND floor < $2") {
                $0.append(sink); $0.append(seq)
            })
    }

    func delivered(sink: String, seqs: [Int64], at: Int64) throws {
        guard !seqs.isEmpty else { return }
        try s.exec(
            .sql(
                """
                INSERT INTO outbox_deliveries(sink, seq, attempts, next_at, delivered_at) SELECT $1, q, 1, 0, $3 FROM unnest($2::bigint[]) AS q
                ON CONFLICT (sink, seq) DO UPDATE SET attempts = outbox_deliveries.attempts + 1,
                    delivered_at = coalesce(outbox_deliveries.delivered_at, excluded.delivered_at)
                """
            ) {
                $0.append(sink); $0.append(seqs); $0.append(at)
            })
    }

    func deliveryFailed(sink: String, seq: Int64, attempts: Int, nextAttemptAt: Int64, error: String) throws {
        try s.exec(
            .sql(
                """
                INSERT INTO outbox_deliveries(sink, seq, attempts, next_at, last_error) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (sink, seq) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at, last_error = excluded.last_error
                WHERE outbox_deliveries.delivered_at IS NULL
                """
            ) {
                $0.append(sink); $0.append(seq); $0.append(Int64(attempts)); $0.append(nextAttemptAt); $0.append(error)
            })
    }

    func takeLease(sink: String, holder: String, until: Int64, now: Int64) throws -> Bool {
        try !s.query(
            .sql(
                """
                UPDATE outbox_sinks SET holder = $2, lease_until = $3
                WHERE sink = $1 AND (holder IS NULL OR holder = $2 OR lease_until <= $4) RETURNING 1
                """
            ) {
                $0.append(sink); $0.append(holder); $0.append(until); $0.append(now)
            }
        ).rows.isEmpty
    }

    func holdLease(sink: String, holder: String, until: Int64) throws -> Bool {
        try !s.query(
            .sql("UPDATE outbox_sinks SET lease_until = $3 WHERE sink = $1 AND holder = $2 RETURNING 1") {
                $0.append(sink); $0.append(holder); $0.append(until)
            }
        ).rows.isEmpty
    }

    func releaseLease(sink: String, holder: String) throws {
        try s.exec(
            .sql("UPDATE outbox_sinks SET holder = NULL, lease_until = 0 WHERE sink = $1 AND holder = $2") {
                $0.append(sink); $0.append(holder)
            })
    }

    func prune(sinks: [String], before: Int64, limit: Int) throws -> Int {
        let names = Array(Set(sinks))
        guard !names.isEmpty, limit > 0 else { return 0 }
        let floors = try s.query(.sql("SELECT floor FROM outbox_sinks WHERE sink = ANY($1::text[])") { $0.append(names) }).rows.map {
            try PGRow($0).int(0)
        }
        guard floors.count == names.count, let through = floors.min() else { return 0 }
        // The oldest `limit` messages settled everywhere and written before `before`, with their delivery rows.
        return try s.query(
            .sql(
                """
                WITH gone AS (
                    SELECT seq FROM outbox WHERE seq <= $1 AND created_at < $2 ORDER BY seq LIMIT $3
                ), d AS (
                    DELETE FROM outbox_deliveries WHERE seq IN (SELECT seq FROM gone)
                )
                DELETE FROM outbox WHERE seq IN (SELECT seq FROM gone) RETURNING 1
                """
            ) {
                $0.append(through); $0.append(before); $0.append(Int64(limit))
            }
        ).rows.count
    }
}
