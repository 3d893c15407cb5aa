import Foundation
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// `makeDurable`: one sync of the WAL when a write committed since the last one, none otherwise.
@Suite struct SQLiteDurabilityTests {
    func folder() -> String { NSTemporaryDirectory() + "lethe-sqlite-durable-\(UUID().uuidString)" }

    @Test func syncsTheWALOnceAfterWritesAndNeverAfterReads() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(folder: dir)
        // Opening (the schema) is not an operation's write: nothing to sync.
        try await store.makeDurable()
        #expect(store.walSyncs == 0)
        try await store.setSetting("a", "1")
        try await store.transaction("two settings") { tx in
            try tx.cursors.setSetting("b", "2")
            try tx.cursors.setSetting("c", "3")
        }
        #expect(store.walSyncs == 0)  // commits do not sync (`synchronous = NORMAL`)
        try await store.makeDurable()
        #expect(store.walSyncs == 1)  // one sync for both transactions
        try await store.makeDurable()
        #expect(store.walSyncs == 1)  // nothing new
        _ = try await store.cursors.setting("a")
        _ = try store.settingNow("b")
        try await store.makeDurable()
        #expect(store.walSyncs == 1)  // reads: nothing to sync
        // A transaction that fails commits nothing, and leaves nothing to sync.
        await #expect(throws: LetheError.self) {
            try await store.transaction("refused") { tx in
                try tx.cursors.setSetting("d", "4")
                throw LetheError(.failure, "refused")
            }
        }
        try await store.makeDurable()
        #expect(store.walSyncs == 1)
        // The writes that bypass `transaction` count too.
        try store.setSettingNow("e", "5")
        try await store.makeDurable()
        #expect(store.walSyncs == 2)
        #expect(try store.settingNow("d") == nil && store.settingNow("e") == "5")
    }

    /// Operations that end together share one sync: the first covers every commit made before it,
    /// and the others, waiting on the writer meanwhile, find nothing left.
    @Test func concurrentDurablePointsShareOneSync() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(folder: dir)
        try await store.setSetting("a", "1")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { try await store.makeDurable() } }
            try await group.waitForAll()
        }
        #expect(store.walSyncs == 1)
    }

    /// An operation cancelled after its commits (a service shutting down) still syncs them, and its
    /// durable point does not fail: the caller would take the committed work for failed and redo it.
    @Test func aCancelledCallerStillSyncs() async throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(folder: dir)
        try await store.setSetting("a", "1")
        let task = Task {
            while !Task.isCancelled { await Task.yield() }
            try await store.makeDurable()
        }
        task.cancel()
        try await task.value
        #expect(store.walSyncs == 1)
    }

    /// Keying the audit chain (opening a new state) is durable before the key file is renamed into
    /// place: a key file over a state that lost its fingerprint and `audit_keyed` entry would chain
    /// later entries under a key the log never switched to.
    @Test func keyingTheAuditChainSyncsAtOnce() throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(folder: dir)
        let keyed = try store.keyAuditChain(fingerprintSetting: "key.audit.key.fingerprint", at: 1) {
            (Array(repeating: 7, count: 32), "fp")
        }
        #expect(keyed)
        #expect(store.walSyncs == 1)
    }

    @Test func aReadOnlyOrInMemoryStoreHasNothingToSync() async throws {
        let memory = try SQLiteStateStore(inMemory: nil)
        try await memory.setSetting("a", "1")
        try await memory.makeDurable()
        #expect(memory.walSyncs == 0)
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try SQLiteStateStore(folder: dir)
            try await store.setSetting("a", "1")
        }
        let reader = try SQLiteStateStore(folder: dir, readOnly: true)
        try await reader.makeDurable()
        #expect(reader.walSyncs == 0)
    }
}
