import Foundation
import GRDB
import LetheCore

extension SQLiteMetastore {
    // MARK: Audit log

    @discardableResult
    public func appendAudit(event: String, requestID: String?, actor: String?, details: String, at: Int64) async throws -> AuditEntry {
        try await write("cannot append to the audit log") { db in
            // Reading the head and inserting after it happen under one write lock
            // (BEGIN IMMEDIATE), so concurrent appenders cannot fork the chain.
            let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            let seq: Int64 = (head?[0] as Int64? ?? 0) + 1
            let prev: String = head?[1] ?? AuditChain.genesis
            let hash = AuditChain.hash(seq: seq, at: at, event: event, requestID: requestID, actor: actor,
                                       details: details, prevHash: prev)
            try db.execute(sql: """
                INSERT INTO audit(seq, at, event, request_id, actor, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [seq, at, event, requestID, actor, details, prev, hash])
            return AuditEntry(seq: seq, at: at, event: event, requestID: requestID, actor: actor, details: details,
                              prevHash: prev, hash: hash)
        }
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
}

/// Recomputes the audit hash chain: every entry's hash over its own fields, its
/// link to the previous entry's hash (the genesis hash for the first), and the
/// continuity of sequence numbers from 1.
///
/// Returns `ok == false` with the sequence number of the first entry that does
/// not verify (for a removed entry, the one after the gap) and why. Removing
/// entries from the end leaves a valid, shorter chain: compare the head with a
/// copy kept elsewhere (a certificate, a webhook receiver) to catch that.
public func verifyAuditChain(_ entries: [AuditEntry]) -> (ok: Bool, firstBroken: Int64?, reason: String?) {
    var expectedSeq: Int64 = 1
    var prev = AuditChain.genesis
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
        let recomputed = AuditChain.hash(seq: e.seq, at: e.at, event: e.event, requestID: e.requestID, actor: e.actor,
                                         details: e.details, prevHash: e.prevHash)
        if recomputed != e.hash {
            return (false, e.seq, "entry \(e.seq) was altered (its hash does not match its fields)")
        }
        prev = e.hash
        expectedSeq += 1
    }
    return (true, nil, nil)
}
