import Testing
import GRDB
import LetheCore
@testable import LetheSQLite
import LetheCatalog
import LetheTesting

@Suite struct AuditTests {
    func filledStore(_ n: Int) async throws -> SQLiteStateStore {
        let store = try SQLiteStateStore(inMemory: nil)
        for i in 1...n {
            try await store.appendAudit(
                event: i % 2 == 0 ? .approved : .filed, requestID: i % 3 == 0 ? nil : "r-\(i)",
                actor: i % 4 == 0 ? nil : "alice", details: "{\"n\":\(i)}", at: Int64(1000 + i))
        }
        return store
    }

    /// Runs raw SQL with the append-only triggers removed, as an attacker holding the file could.
    func tamper(_ store: SQLiteStateStore, _ sql: String) async throws {
        try await store.writer.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            try db.execute(sql: sql)
        }
    }

    /// The incremental verifier fed by range gives the whole-log verdict, wherever the pages cut the
    /// chain and whatever was tampered with (an altered entry, a removed one, one out of order).
    @Test func chainVerificationAcrossPageBoundariesEqualsTheWholeLog() async throws {
        for (n, sql) in [
            (9, nil), (9, "UPDATE audit SET details = '{}' WHERE seq = 4"), (9, "DELETE FROM audit WHERE seq = 5"),
            (9, "UPDATE audit SET prev_hash = hash WHERE seq = 7"), (9, "DELETE FROM audit WHERE seq = 1"),
        ] as [(Int, String?)] {
            let store = try await filledStore(n)
            if let sql { try await tamper(store, sql) }
            let whole = verifyAuditChain(try await store.auditEntries())
            for page in [1, 2, 3, 4, 100] {
                var v = AuditChainVerifier(key: nil)
                var from: Int64 = 1
                while case let entries = try await store.audit.entries(from: from, limit: page), let last = entries.last {
                    v.feed(entries)
                    from = last.seq + 1
                }
                let paged = v.finish()
                #expect(
                    paged.ok == whole.ok && paged.firstBroken == whole.firstBroken && paged.reason == whole.reason,
                    "page \(page), tamper \(sql ?? "none")")
            }
            #expect(whole.ok == (sql == nil))
        }
    }

    /// A batch of entries (`AuditWriter.append(_:)`, the head read once) is the log one append each writes:
    /// the same seqs, hashes and chain, after entries already there, and each request finds its entry.
    @Test func aBatchOfEntriesIsTheLogOneAppendEachWrites() async throws {
        var batch: [AuditAppend] = []
        for i in 0..<5 {
            let event: AuditEvent = i == 2 ? .auditKeyed : .verified
            let id: String? = i == 2 ? nil : "b-\(i)"
            let actor: String? = i == 1 ? nil : "lethe"
            batch.append(AuditAppend(event, requestID: id, actor: actor, details: "{\"i\":\(i)}", at: 50 + Int64(i)))
        }
        let entries = batch
        let one = try await filledStore(3), many = try await filledStore(3)
        for e in entries { try await one.appendAudit(event: e.event, requestID: e.requestID, actor: e.actor, details: e.details, at: e.at) }
        let returned = try await many.transaction("t") { tx -> [AuditEntry] in try tx.audit.append(entries) }
        let expected = try await one.auditEntries()
        #expect(try await many.auditEntries() == expected)
        #expect(returned == Array(expected.suffix(5)) && returned.map(\.seq) == [4, 5, 6, 7, 8])
        #expect(verifyAuditChain(try await many.auditEntries()).ok)
        for i in [0, 1, 3, 4] { #expect(try await many.audit.entries(requestID: "b-\(i)").map(\.seq) == [Int64(4 + i)]) }
        // On an empty log the first entry follows the genesis.
        let empty = try SQLiteStateStore(inMemory: nil)
        let first = try await empty.transaction("t") { tx -> [AuditEntry] in try tx.audit.append(Array(entries.prefix(2))) }
        #expect(first.map(\.seq) == [1, 2] && first[0].prevHash == AuditChain.genesis && first[1].prevHash == first[0].hash)
        let none = try await empty.transaction("t") { tx -> [AuditEntry] in try tx.audit.append([AuditAppend]()) }
        #expect(none.isEmpty)
    }

    @Test func appendChainsEntries() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let first = try await store.appendAudit(event: .filed, requestID: "r-1", actor: "alice", details: "{}", at: 10)
        let second = try await store.appendAudit(event: .planned, requestID: "r-1", actor: nil, details: "{\"objects\":2}", at: 11)
        #expect(first.seq == 1 && first.prevHash == AuditChain.genesis)
        #expect(second.seq == 2 && second.prevHash == first.hash)
        #expect(
            second.hash
                == AuditChain.hash(
                    seq: 2, at: 11, event: "planned", requestID: "r-1", actor: nil,
                    details: "{\"objects\":2}", prevHash: first.hash))
        let all = try await store.auditEntries()
        #expect(all == [first, second])
        #expect(verifyAuditChain(all).ok)
        #expect(verifyAuditChain([]).ok)
    }

    @Test func triggersRefuseUpdateAndDelete() async throws {
        let store = try await filledStore(3)
        await #expect(throws: DatabaseError.self) {
            try await store.writer.write { db in try db.execute(sql: "UPDATE audit SET details = '{}' WHERE seq = 2") }
        }
        await #expect(throws: DatabaseError.self) {
            try await store.writer.write { db in try db.execute(sql: "DELETE FROM audit WHERE seq = 3") }
        }
        #expect(try await store.auditEntries().count == 3)
        #expect(verifyAuditChain(try await store.auditEntries()).ok)
    }

    @Test func editIsDetected() async throws {
        let store = try await filledStore(6)
        try await tamper(store, "UPDATE audit SET actor = 'mallory' WHERE seq = 4")
        let v = verifyAuditChain(try await store.auditEntries())
        #expect(!v.ok)
        #expect(v.firstBroken == 4)
        #expect(v.reason != nil)
    }

    @Test func editWithRecomputedHashIsDetectedAtTheNextLink() async throws {
        let store = try await filledStore(6)
        var entries = try await store.auditEntries()
        var e = entries[2]  // seq 3
        e.details = "{\"n\":0}"
        e.hash = AuditChain.hash(
            seq: e.seq, at: e.at, event: e.event, requestID: e.requestID, actor: e.actor,
            details: e.details, prevHash: e.prevHash)
        try await tamper(store, "UPDATE audit SET details = '\(e.details)', hash = '\(e.hash)' WHERE seq = 3")
        entries = try await store.auditEntries()
        let v = verifyAuditChain(entries)
        #expect(!v.ok)
        #expect(v.firstBroken == 4)
    }

    @Test func deletionIsDetected() async throws {
        let store = try await filledStore(6)
        try await tamper(store, "DELETE FROM audit WHERE seq = 3")
        let v = verifyAuditChain(try await store.auditEntries())
        #expect(!v.ok)
        #expect(v.firstBroken == 4)

        let store2 = try await filledStore(4)
        try await tamper(store2, "DELETE FROM audit WHERE seq = 1")
        #expect(verifyAuditChain(try await store2.auditEntries()).firstBroken == 2)
    }

    @Test func deletionWithRenumberingIsDetected() async throws {
        let store = try await filledStore(6)
        try await tamper(store, "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3;")
        let v = verifyAuditChain(try await store.auditEntries())
        #expect(!v.ok)
        #expect(v.firstBroken == 3)
    }

    @Test func reorderIsDetected() async throws {
        let store = try await filledStore(6)
        // Swap the contents of entries 2 and 5, keeping their sequence numbers.
        try await tamper(
            store,
            """
            UPDATE audit SET seq = -2 WHERE seq = 2;
            UPDATE audit SET seq = 2 WHERE seq = 5;
            UPDATE audit SET seq = 5 WHERE seq = -2;
            """)
        let v = verifyAuditChain(try await store.auditEntries())
        #expect(!v.ok)
        #expect(v.firstBroken == 2)
    }

    @Test func outOfOrderInputIsDetected() async throws {
        let store = try await filledStore(4)
        var entries = try await store.auditEntries()
        entries.swapAt(1, 2)
        let v = verifyAuditChain(entries)
        #expect(!v.ok)
        #expect(v.firstBroken == 3)
    }

    @Test func concurrentAppendsKeepOneChain() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<25 {
                        try await store.appendAudit(event: .filed, requestID: "r-\(t)", actor: "w\(t)", details: "{\"i\":\(i)}", at: Int64(i))
                    }
                }
            }
            try await group.waitForAll()
        }
        let entries = try await store.auditEntries()
        #expect(entries.count == 200)
        #expect(entries.map(\.seq) == Array(1...200))
        #expect(verifyAuditChain(entries).ok)
    }

    @Test func twoConnectionsToOneFileKeepOneChain() async throws {
        // Two stores on one file stand for two processes (`lethe run` and `lethe index --watch`).
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let one = try SQLiteStateStore(folder: folder)
        let two = try SQLiteStateStore(folder: folder)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, store) in [one, two].enumerated() {
                for t in 0..<3 {
                    group.addTask {
                        for i in 0..<20 {
                            try await store.appendAudit(event: .filed, requestID: nil, actor: "p\(n)t\(t)", details: "{\"i\":\(i)}", at: Int64(i))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let entries = try await two.auditEntries()
        #expect(entries.count == 120)
        #expect(verifyAuditChain(entries).ok)
        #expect(try await one.auditEntries() == entries)
    }

    // D2: free text lives in `audit_texts`; the chain commits to its keyed digest. A text altered in the table is
    // caught, a purged one (NULL) is accepted, a missing one is not, and an actor column `text#N` must be backed.
    @Test func auditTextsAreCheckedAgainstTheDigestsTheChainHolds() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let key = Array(repeating: UInt8(7), count: 32)
        store.setAuditKey(key)
        try await store.transaction("t") { tx in
            let who = try tx.auditText("alice"), why = try tx.auditText("duplicate of customer-777777")
            let details = #"{"actor":{"hmac":"\#(who.hmac)","text":\#(who.id)},"reason":{"hmac":"\#(why.hmac)","text":\#(why.id)}}"#
            _ = try tx.appendAudit(event: .filed, requestID: "r-1", actor: who.actor, details: details, at: 1)
        }
        var entries = try await store.auditEntries()
        #expect(verifyAuditChain(entries, key: key).ok)
        #expect(verifyAuditTexts(entries, texts: try await store.auditTexts(), key: key).ok)
        let line = resolveAuditTexts(entries[0], try await store.auditTexts())
        #expect(line.actor == "alice" && line.details == #"{"actor":"alice","reason":"duplicate of customer-777777"}"#)
        try await store.purge(rawID: Array("customer-777777".utf8), substring: true)
        let purged = try await store.auditTexts()
        #expect(purged.purged.count == 1 && verifyAuditTexts(entries, texts: purged, key: key).ok)
        #expect(resolveAuditTexts(entries[0], purged).details == #"{"actor":"alice","reason":"[erased]"}"#)
        try await store.writer.write { db in try db.execute(sql: "UPDATE audit_texts SET text = 'mallory' WHERE text = 'alice'") }
        let v = verifyAuditTexts(entries, texts: try await store.auditTexts(), key: key)
        #expect(!v.ok && v.firstBroken == 1 && (v.reason ?? "").contains("altered"))
        try await store.writer.write { db in try db.execute(sql: "DELETE FROM audit_texts WHERE text = 'mallory'") }
        #expect(!verifyAuditTexts(entries, texts: try await store.auditTexts(), key: key).ok)
        entries[0].actor = "text#99"
        #expect(!verifyAuditTexts(entries, texts: purged, key: key).ok)
    }
}
