import Foundation
import GRDB
import GRDBSQLite
import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    // MARK: Audit log

    @discardableResult
    /// Appends inside a write transaction: reading the head and inserting after it happen under
    /// one write lock (BEGIN IMMEDIATE), so concurrent appenders cannot fork the chain.
    static func appendAudit(
        _ db: Database, event: AuditEvent, requestID: String?, actor: String?, details: String,
        at: Int64, key: [UInt8]?, requestIDs: [String] = []
    ) throws -> AuditEntry {
        try appendAudit(db, [AuditAppend(event, requestID: requestID, actor: actor, details: details, at: at, requestIDs: requestIDs)], key: key)[0]
    }

    /// Appends entries in order inside a write transaction: the head is read once, each entry chained to
    /// the one before (a batch of a job's 1,000 verdicts: the statements are cached, compiled once; the
    /// head is read from the stepped statement, no copied row).
    static func appendAudit(_ db: Database, _ entries: [AuditAppend], key: [UInt8]?) throws -> [AuditEntry] {
        guard !entries.isEmpty else { return [] }
        let headStatement = try db.cachedStatement(sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        var seq: Int64 = 0
        var prev = AuditChain.genesis
        // The row reads the statement: the cursor (which resets it when it goes) lives until the row is read.
        let heads = try Row.fetchCursor(headStatement)
        try withExtendedLifetime(heads) {
            if let head = try heads.next() {
                seq = head[0]
                prev = head[1]
            }
        }
        let insert = try db.cachedStatement(
            sql: "INSERT INTO audit(seq, at, event, request_id, actor, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let index = try db.cachedStatement(sql: "INSERT OR IGNORE INTO audit_requests(request_id, seq) VALUES (?, ?)")
        // The entries' values and request ids are bound straight to the statements (a batch entry lists
        // 10,000 ids; a run's close and verdicts append 1,000 entries): no boxed argument array each.
        insert.setUncheckedArguments([])
        index.setUncheckedArguments([])
        defer {
            sqlite3_clear_bindings(insert.sqliteStatement)
            sqlite3_clear_bindings(index.sqliteStatement)
        }
        var out: [AuditEntry] = []
        out.reserveCapacity(entries.count)
        for e in entries {
            seq += 1
            let hash = AuditChain.hash(
                seq: seq, at: e.at, event: e.event.rawValue, requestID: e.requestID, actor: e.actor,
                details: e.details, prevHash: prev, key: key)
            var values = Binder(insert.sqliteStatement)
            values.int(1, seq)
            values.int(2, e.at)
            values.text(3, e.event.rawValue)
            values.text(4, e.requestID)
            values.text(5, e.actor)
            values.text(6, e.details)
            values.text(7, prev)
            values.text(8, hash)
            try values.check("cannot bind audit entry \(seq)", sql: insert.sql)
            try insert.execute()
            // Each request the entry is about finds it here (`entries(requestID:)`).
            for id in (e.requestID.map { [$0] } ?? []) + e.requestIDs.filter({ $0 != e.requestID }) {
                var b = Binder(index.sqliteStatement)
                b.text(1, id)
                b.int(2, seq)
                try b.check("cannot bind an audit entry's request id", sql: index.sql)
                try index.execute()
            }
            out.append(
                AuditEntry(
                    seq: seq, at: e.at, event: e.event.rawValue, requestID: e.requestID, actor: e.actor, details: e.details,
                    prevHash: prev, hash: hash))
            prev = hash
        }
        return out
    }

    static func entry(_ row: Row) -> AuditEntry {
        AuditEntry(
            seq: row[0], at: row[1], event: row[2], requestID: row[3], actor: row[4], details: row[5],
            prevHash: row[6], hash: row[7])
    }

    public func auditEntries() async throws -> [AuditEntry] {
        try await read("cannot read the audit log") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit ORDER BY seq
                    """
            ).map(Self.entry)
        }
    }

    public func entries(from seq: Int64, limit: Int) async throws -> [AuditEntry] {
        if seq <= 1 && limit == Int.max { return try await auditEntries() }
        return try await read("cannot read the audit log") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?
                    """, arguments: [seq, limit]
            ).map(Self.entry)
        }
    }

    public func entries(requestID: String) async throws -> [AuditEntry] {
        try await read("cannot read the audit log") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.seq, a.at, a.event, a.request_id, a.actor, a.details, a.prev_hash, a.hash
                    FROM audit_requests r JOIN audit a ON a.seq = r.seq WHERE r.request_id = ? ORDER BY r.seq
                    """, arguments: [requestID]
            ).map(Self.entry)
        }
    }

    public func head() async throws -> AuditEntry? {
        try await read("cannot read the audit log") { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1
                    """
            ).map(Self.entry)
        }
    }

    /// Keys the audit chain from now on, in one write transaction (other processes wait): unless a
    /// fingerprint is recorded already (then returns false, changing nothing), calls `newKey` (which
    /// writes the key file aside), records its fingerprint and, if the chain has entries, appends
    /// the `audit_keyed` entry (the switch point: HMAC under the new key over the unkeyed head).
    public func keyAuditChain(
        fingerprintSetting: String, at: Int64,
        newKey: () throws -> (key: [UInt8], fingerprint: String)
    ) throws -> Bool {
        do {
            let keyed = try writer.write { db in
                if try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [fingerprintSetting]) != nil { return false }
                let (key, fingerprint) = try newKey()
                try Self.setSetting(db, fingerprintSetting, fingerprint)
                if let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") {
                    let seq: Int64 = head[0]
                    let hash: String = head[1]
                    _ = try Self.appendAudit(
                        db, event: .auditKeyed, requestID: nil, actor: "lethe",
                        details: #"{"unkeyed_head":"\#(seq):\#(hash)"}"#, at: at, key: key)
                }
                return true
            }
            if keyed {
                // On disk before the caller renames the key file into place (StateBootstrap): a key
                // file over a state that lost the switch would chain entries under a key the log
                // never switched to.
                durability.committed()
                try makeDurableNow()
            }
            return keyed
        } catch {
            throw Self.wrap(error, "cannot key the audit log", path: databasePath)
        }
    }

    /// True when some audit entry's hash verifies under `key` (a migration that committed).
    public func auditChainIsKeyed(with key: [UInt8]) throws -> Bool {
        do {
            return try writer.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit
                        WHERE event = 'audit_keyed' ORDER BY seq
                        """)
                return rows.contains { r in
                    AuditChain.hash(
                        seq: r[0], at: r[1], event: r[2], requestID: r[3], actor: r[4], details: r[5],
                        prevHash: r[6], key: key) == (r[7] as String)
                }
            }
        } catch {
            throw Self.wrap(error, "cannot read the audit log", path: databasePath)
        }
    }
}
