import Foundation
import Testing
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting

/// Each engine operation that writes the state ends with one durable point (`StateStore.makeDurable`),
/// after its last transaction and before it returns; read-only calls have none, and an operation
/// called inside another adds none. Over a state folder, SQLite syncs its WAL there, once, and only
/// when something was written since the last sync.
@Suite struct DurabilityTests {
    struct Lake {
        let folder = NSTemporaryDirectory() + "lethe-durable-\(UUID().uuidString)"
        let store = InMemoryObjectStore()
        let base: SQLiteStateStore
        let meta: FaultInjectingStateStore
        let lethe: Lethe

        init() throws {
            let config = try LakeConfig.parse(Fixture.yaml, file: "lethe.yaml", baseDir: "/tmp")
            let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))
            base = try SQLiteStateStore(folder: folder)
            meta = FaultInjectingStateStore(base: base)
            lethe = Lethe(config: config, store: store, meta: meta, secrets: secrets, stateFolder: folder)
            store.set("raw/a.jsonl", Array((#"{"user":{"id":"u-1"}}"# + "\n" + #"{"user":{"id":"u-2"}}"# + "\n").utf8))
        }

        /// Durable points the engine made and WAL syncs the store did so far.
        var counts: (points: Int, syncs: Int) { (meta.makeDurableCalls, base.walSyncs) }
    }

    @Test func everyWritingOperationEndsSyncedOnceAndReadsNever() async throws {
        let lake = try Lake()
        defer { try? FileManager.default.removeItem(atPath: lake.folder) }
        #expect(lake.counts == (0, 0))
        _ = try await lake.lethe.index()
        #expect(lake.counts == (1, 1))
        let r = try await lake.lethe.forget([SubjectID("u-1")], reason: "ticket 1", by: "alice")[0]
        #expect(lake.counts == (2, 2))
        // Reads: no durable point, no sync.
        _ = try await lake.lethe.request(r.id)
        _ = try await lake.lethe.requests(status: .planned)
        _ = try await lake.lethe.locate(SubjectID("u-1"))
        _ = try await lake.lethe.auditLog()
        #expect(lake.counts == (2, 2))
        _ = try await lake.lethe.approve([r.id], by: "bob")
        #expect(lake.counts == (3, 3))
        // A run writes many transactions (its job, steps, verification, audit) and calls writing
        // operations of its own (the raw ids' deadline first): one durable point, one sync at its end.
        let run = try await lake.lethe.run()
        #expect(run.failed.isEmpty)
        #expect(try await lake.lethe.request(r.id).status == .verified)
        #expect(lake.counts == (4, 4))
        // A failed operation still ends with its durable point; with nothing written, no sync.
        await #expect(throws: LetheError.self) { _ = try await lake.lethe.approve(["no-such-request"], by: "bob") }
        #expect(lake.counts == (5, 4))
    }

    /// In memory (and for a store durable at each commit), the durable point costs nothing.
    @Test func anInMemoryStateNeverSyncs() async throws {
        let f = try Fixture()
        f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n")
        _ = try await f.lethe.index()
        _ = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")
        #expect((f.lethe.meta as? SQLiteStateStore)?.walSyncs == 0)
    }
}
