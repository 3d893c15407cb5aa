import Foundation
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog
import LetheTesting

/// The unit of work, temporary files, object references, purging, the keyed chain, read-only opens.
@Suite struct TransactionTests {
    func filed(_ id: String, _ n: UInt8) -> ErasureRequest {
        ErasureRequest(id: id, subjectKey: testKey(n), sealedSubject: [1], reason: "r", requestedBy: "alice", at: 1)
    }

    @Test func aTransactionCommitsAllOrNothing() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.insertRequest(filed("r-1", 1))
        struct Stop: Error {}
        await #expect(throws: Stop.self) {
            try await store.transaction("t") { tx in
                var r = try tx.request(id: "r-1")!
                r.status = .planned
                try tx.updateRequest(r, expecting: .filed)
                try tx.appendAudit(event: .planned, requestID: "r-1", actor: nil, details: "{}", at: 2)
                try tx.createJob([JournalStep(job: "j", ordinal: 0, dataset: "", objectKey: "", requestIDs: ["r-1"], subjectKeys: [])])
                try tx.setSetting("k", "v")
                throw Stop()
            }
        }
        #expect(try await store.request(id: "r-1")?.status == .filed)
        #expect(try await store.auditEntries().isEmpty)
        #expect(try await store.pendingSteps().isEmpty)
        #expect(try await store.setting("k") == nil)
        let ids = try await store.transaction("t") { tx -> Set<String> in
            try tx.insertRequest(self.filed("r-2", 2))
            try tx.createJob([JournalStep(job: "j", ordinal: 0, dataset: "", objectKey: "", requestIDs: ["r-2"], subjectKeys: [])])
            return try tx.pendingRequestIDs()
        }
        #expect(ids == ["r-2"])
        #expect(try await store.requests(status: nil).count == 2)
    }

    @Test func stepAttemptsCountAndFinishedStepsArePruned() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.createJob([
            JournalStep(job: "j", ordinal: 0, dataset: "raw", objectKey: "raw/a", requestIDs: ["r"], subjectKeys: []),
            JournalStep(job: "j", ordinal: 1, dataset: "", objectKey: "", requestIDs: ["r"], subjectKeys: []),
        ])
        #expect(try await store.beginStep(job: "j", ordinal: 0) == 1)
        #expect(try await store.beginStep(job: "j", ordinal: 0) == 2)
        #expect(try await store.steps(job: "j").first?.attempts == 2)
        try await store.finishStep(job: "j", ordinal: 0, state: .done, outcome: "raw/a")
        try await store.pruneJob("j")
        #expect(try await store.steps(job: "j").map(\.ordinal) == [1])
        try await store.finishStep(job: "j", ordinal: 1, state: .done, outcome: nil)
        try await store.pruneJob("j")
        #expect(try await store.steps(job: "j").isEmpty)
        await #expect(throws: LetheError.self) { _ = try await store.beginStep(job: "j", ordinal: 0) }
    }

    @Test func temporariesAreRecordedAndForgotten() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.recordTemporary("raw/.a.lethe-tmp-1", owner: 42)
        try await store.recordTemporary("raw/.b.lethe-tmp-2", owner: 43)
        #expect(try await store.temporaries().map(\.key) == ["raw/.a.lethe-tmp-1", "raw/.b.lethe-tmp-2"])
        #expect(try await store.temporaries().map(\.owner) == [42, 43])
        try await store.forgetTemporaries(["raw/.a.lethe-tmp-1"])
        #expect(try await store.temporaries().map(\.key) == ["raw/.b.lethe-tmp-2"])
    }

    @Test func objectReferencesAreStableNeverReusedAndPurgedByTheIdsTheyName() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let a = try await store.objectRefs(dataset: "u", keys: ["u/user_id=u-00077/p.jsonl", "u/user_id=u7/p.jsonl", "u/x.jsonl"])
        #expect(Set(a.values).count == 3)
        #expect(try await store.objectRefs(dataset: "u", keys: ["u/x.jsonl"]) == ["u/x.jsonl": a["u/x.jsonl"]!])
        #expect(try await store.objectNames(Array(a.values)).count == 3)
        // A long id: anywhere in a key; a short one: only as a whole segment or `name=id`.
        #expect(try await store.purge(rawID: Array("u-00077".utf8), substring: true) == 1)
        #expect(try await store.purge(rawID: Array("u7".utf8), substring: false) == 1)
        #expect(try await store.purge(rawID: Array("x".utf8), substring: false) == 0)
        #expect(try await store.objectNames(Array(a.values)).values.map(\.key) == ["u/x.jsonl"])
        // A name purged is never given to another key.
        let b = try await store.objectRefs(dataset: "u", keys: ["u/y.jsonl"])
        #expect(!a.values.contains(b["u/y.jsonl"]!))
    }

    @Test func purgeReplacesTheIdInRequestTextsAndSettings() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var r = filed("r-1", 1)
        r.status = .failed
        r.failure = "residue in exports/u-00077.jsonl"
        r.verification = Array(#"{"found":[{"object":"exports/u-00077.jsonl"}]}"#.utf8)
        try await store.insertRequest(r)
        try await store.setSetting("dataset.x.issue", "unreadable: exports/u-00077.jsonl: bad")
        try await store.purge(rawID: Array("u-00077".utf8), substring: true)
        let after = try #require(try await store.request(id: "r-1"))
        #expect(after.failure == "residue in exports/[erased].jsonl")
        #expect(String(decoding: after.verification!, as: UTF8.self) == #"{"found":[{"object":"exports/[erased].jsonl"}]}"#)
        #expect(try await store.setting("dataset.x.issue") == "unreadable: exports/[erased].jsonl: bad")
        #expect(after.sealedSubject == r.sealedSubject && after.subjectKey == r.subjectKey)
    }

    @Test func aKeyedChainMixesWithAnUnkeyedPrefixOnlyBeforeItsFirstKeyedEntry() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        for i in 1...2 { try await store.appendAudit(event: .filed, requestID: nil, actor: "a", details: "{\"i\":\(i)}", at: Int64(i)) }
        let key = Array(repeating: UInt8(7), count: 32)
        store.setAuditKey(key)
        for i in 3...4 { try await store.appendAudit(event: .filed, requestID: nil, actor: "a", details: "{\"i\":\(i)}", at: Int64(i)) }
        let entries = try await store.auditEntries()
        #expect(verifyAuditChain(entries, key: key).ok)
        #expect(!verifyAuditChain(entries, key: nil).ok)
        // An unkeyed entry after a keyed one is refused, even with a correct link.
        store.setAuditKey(nil)
        try await store.appendAudit(event: .filed, requestID: nil, actor: "a", details: "{}", at: 5)
        let v = verifyAuditChain(try await store.auditEntries(), key: key)
        #expect(!v.ok && v.firstBroken == 5, "\(v)")
    }

    @Test func keyingAnExistingChainAppendsOneSwitchPoint() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let store = try SQLiteStateStore(folder: folder)
        try await store.appendAudit(event: .filed, requestID: "r", actor: "a", details: "{}", at: 1)
        let key = Array(repeating: UInt8(3), count: 32)
        #expect(try store.keyAuditChain(fingerprintSetting: "fp", at: 2) { (key, "abc") })
        // Recorded: a second call changes nothing and never makes a key.
        #expect(
            try store.keyAuditChain(fingerprintSetting: "fp", at: 3) {
                Issue.record("made a second key"); return (key, "abc")
            } == false)
        store.setAuditKey(key)
        let entries = try await store.auditEntries()
        #expect(entries.map(\.event) == ["filed", "audit_keyed"])
        #expect(try store.auditChainIsKeyed(with: key))
        #expect(verifyAuditChain(entries, key: key).ok)
    }

    @Test func aReadOnlyStoreReadsAndRefusesToWrite() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        do {
            let w = try SQLiteStateStore(folder: folder)
            try await w.insertRequest(filed("r-1", 1))
        }
        let ro = try SQLiteStateStore(folder: folder, readOnly: true)
        #expect(ro.readOnly)
        #expect(try await ro.request(id: "r-1") != nil)
        await #expect(throws: LetheError.self) { try await ro.setSetting("k", "v") }
        // Nothing to read: refused, and nothing is created.
        let none = temporaryStateFolder()
        #expect(throws: LetheError.self) { _ = try SQLiteStateStore(folder: none, readOnly: true) }
        #expect(!FileManager.default.fileExists(atPath: none))
    }

    @Test func aReplacedOrDeletedDatabaseIsNoticed() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let store = try SQLiteStateStore(folder: folder)
        try store.checkIntact()
        try FileManager.default.removeItem(atPath: folder)
        #expect(throws: LetheError.self) { try store.checkIntact() }
    }

    @Test func secureDeleteIsOn() throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        #expect(try SQLiteStateStore(folder: folder).pragma("secure_delete") == "1")
        #expect(try SQLiteStateStore(inMemory: nil).pragma("secure_delete") == "1")
    }
}
