import Foundation
import GRDB
import LetheCore

extension SQLiteMetastore {
    // MARK: Audit log

    @discardableResult
    public func appendAudit(event: String, requestID: String?, actor: String?, details: String, at: Int64) async throws -> AuditEntry {
        let key = auditKey
        return try await write("cannot append to the audit log") { db in
            try Self.appendAudit(db, event: event, requestID: requestID, actor: actor, details: details, at: at, key: key)
        }
    }

    /// Appends inside a write transaction: reading the head and inserting after it happen under
    /// one write lock (BEGIN IMMEDIATE), so concurrent appenders cannot fork the chain.
    static func appendAudit(_ db: Database, event: String, requestID: String?, actor: String?, details: String,
                            at: Int64, key: [UInt8]?) throws -> AuditEntry {
        let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        let seq: Int64 = (head?[0] as Int64? ?? 0) + 1
        let prev: String = head?[1] ?? AuditChain.genesis
        let hash = AuditChain.hash(seq: seq, at: at, event: event, requestID: requestID, actor: actor,
                                   details: details, prevHash: prev, key: key)
        try db.execute(sql: """
            INSERT INTO audit(seq, at, event, request_id, actor, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [seq, at, event, requestID, actor, details, prev, hash])
        return AuditEntry(seq: seq, at: at, event: event, requestID: requestID, actor: actor, details: details,
                          prevHash: prev, hash: hash)
    }

    public func auditEntries() async throws -> [AuditEntry] {
        try await read("cannot read the audit log") { db in
            try Row.fetchAll(db, sql: """
                SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit ORDER BY seq
                """).map {
                AuditEntry(seq: $0[0], at: $0[1], event: $0[2], requestID: $0[3], actor: $0[4], details: $0[5],
                           prevHash: $0[6], hash: $0[7])
            }
        }
    }

    /// Keys the audit chain from now on, in one write transaction (other processes wait): unless a
    /// fingerprint is recorded already (then returns false, changing nothing), calls `newKey` (which
    /// writes the key file aside), records its fingerprint and, if the chain has entries, appends
    /// the `audit_keyed` entry (the switch point: HMAC under the new key over the unkeyed head).
    public func keyAuditChain(fingerprintSetting: String, at: Int64,
                              newKey: () throws -> (key: [UInt8], fingerprint: String)) throws -> Bool {
        do {
            return try writer.write { db in
                if try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [fingerprintSetting]) != nil { return false }
                let (key, fingerprint) = try newKey()
                try Self.setSetting(db, fingerprintSetting, fingerprint)
                if let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") {
                    let seq: Int64 = head[0]
                    let hash: String = head[1]
                    _ = try Self.appendAudit(db, event: "audit_keyed", requestID: nil, actor: "lethe",
                                             details: #"{"unkeyed_head":"\#(seq):\#(hash)"}"#, at: at, key: key)
                }
                return true
            }
        } catch {
            throw Self.wrap(error, "cannot key the audit log", path: databasePath)
        }
    }

    /// True when some audit entry's hash verifies under `key` (a migration that committed).
    public func auditChainIsKeyed(with key: [UInt8]) throws -> Bool {
        do {
            return try writer.read { db in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT seq, at, event, request_id, actor, details, prev_hash, hash FROM audit
                    WHERE event = 'audit_keyed' ORDER BY seq
                    """)
                return rows.contains { r in
                    AuditChain.hash(seq: r[0], at: r[1], event: r[2], requestID: r[3], actor: r[4], details: r[5],
                                    prevHash: r[6], key: key) == (r[7] as String)
                }
            }
        } catch {
            throw Self.wrap(error, "cannot read the audit log", path: databasePath)
        }
    }
}

/// Recomputes the audit hash chain: every entry's hash over its own fields, its
/// link to the previous entry's hash (the genesis hash for the first), and the
/// continuity of sequence numbers from 1.
///
/// With `key` (the state's audit key), entries are HMAC-SHA-256 under it: an entry that verifies
/// only as plain SHA-256 is accepted before the first keyed entry (written before the chain was
/// keyed) and refused after it, and a non-empty chain with no keyed entry at all is refused (it
/// was rewritten without the key). Without `key`, every entry must be plain SHA-256.
///
/// Returns `ok == false` with the sequence number of the first entry that does
/// not verify (for a removed entry, the one after the gap) and why. Removing
/// entries from the end leaves a valid, shorter chain: compare the head with a
/// copy kept elsewhere (a certificate, a webhook receiver) to catch that.
public func verifyAuditChain(_ entries: [AuditEntry], key: [UInt8]? = nil) -> (ok: Bool, firstBroken: Int64?, reason: String?) {
    var expectedSeq: Int64 = 1
    var prev = AuditChain.genesis
    var keyedSeen = false
    for e in entries {
        if e.seq != expectedSeq {
            let why = e.seq > expectedSeq
                ? "entries \(expectedSeq)…\(e.seq - 1) are missing"
                : "entry \(e.seq) is out of order (expected \(expectedSeq))"
            return (false, e.seq, why)
        }
        if e.prevHash != prev {
            return (false, e.seq, "entry \(e.seq) does not link to the previous entry's hash")
        }
        func recompute(_ k: [UInt8]?) -> String {
            AuditChain.hash(seq: e.seq, at: e.at, event: e.event, requestID: e.requestID, actor: e.actor,
                            details: e.details, prevHash: e.prevHash, key: k)
        }
        if let key, recompute(key) == e.hash {
            keyedSeen = true
        } else if recompute(nil) == e.hash {
            if keyedSeen {
                return (false, e.seq, "entry \(e.seq) is not keyed with the audit key although earlier entries are: it was written or rewritten without the key")
            }
        } else {
            return (false, e.seq, "entry \(e.seq) was altered (its hash does not match its fields\(key == nil ? "" : " under the audit key"))")
        }
        prev = e.hash
        expectedSeq += 1
    }
    if key != nil, !entries.isEmpty, !keyedSeen {
        return (false, entries.first?.seq, "no entry is keyed with the audit key: the chain was rewritten without it (or audit.key is not this state's)")
    }
    return (true, nil, nil)
}
