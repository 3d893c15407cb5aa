import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

@Suite struct RequestTests {
    func filed(_ id: String, _ n: UInt8, at: Int64 = 100) -> ErasureRequest {
        ErasureRequest(id: id, subjectKey: testKey(n), sealedSubject: [1, 2, 3, n], reason: "art. 17", requestedBy: "alice", at: at)
    }

    @Test func insertReadListInFilingOrder() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        // Filing order is insertion order, not id order nor time order.
        try await store.insertRequest(filed("r-c", 3, at: 300))
        try await store.insertRequest(filed("r-a", 1, at: 100))
        try await store.insertRequest(filed("r-b", 2, at: 200))
        #expect(try await store.requests(status: nil).map(\.id) == ["r-c", "r-a", "r-b"])
        #expect(try await store.request(id: "r-a") == filed("r-a", 1, at: 100))
        #expect(try await store.request(id: "nope") == nil)

        await #expect(throws: LetheError.self) { try await store.insertRequest(self.filed("r-a", 9)) }
        do {
            try await store.insertRequest(filed("r-a", 9))
            Issue.record("a duplicate id was accepted")
        } catch let e as LetheError {
            #expect(e.code == .conflict)
        }
    }

    /// `requests(ids:)` reads by `id IN (…)` in chunks of 500: the order given, absent ids left out, a repeated
    /// id repeated, ids past the first chunk found, each request whole (every field, as `request(id:)` reads it).
    @Test func requestsByIDKeepTheOrderGivenAcrossChunks() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var filedOnes: [ErasureRequest] = []
        for i in 0..<1_203 {
            var r = filed("r-\(i)", UInt8(i % 251), at: Int64(i))
            r.plan = Array("{\"n\":\(i)}".utf8)
            r.verification = i % 2 == 0 ? [UInt8(i % 256)] : nil
            filedOnes.append(r)
        }
        try await store.insertRequests(filedOnes)
        let ids = (0..<1_203).reversed().map { "r-\($0)" } + ["r-nope", "r-7", "r-1202"]
        let got = try await store.requests.requests(ids: ids)
        #expect(got.map(\.id) == (0..<1_203).reversed().map { "r-\($0)" } + ["r-7", "r-1202"])
        #expect(got.first == filedOnes[1_202] && got[1_202] == filedOnes[0] && got.last == filedOnes[1_202])
        for r in got { #expect(r == filedOnes[Int(r.id.dropFirst(2))!]) }
        #expect(try await store.requests.requests(ids: []).isEmpty)
    }

    @Test func everyFieldRoundTrips() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var r = filed("r-1", 1)
        try await store.insertRequest(r)
        r = try RequestLifecycle.apply(.planned(plan: Array("{\"objects\":[]}".utf8)), to: r).get()
        try await store.updateRequest(r, expecting: .filed)
        r = try RequestLifecycle.apply(.approve(by: "bob", at: 150), to: r).get()
        try await store.updateRequest(r, expecting: .planned)
        r = try RequestLifecycle.apply(.start(at: 160), to: r).get()
        r = try RequestLifecycle.apply(.fail(reason: "disk full", at: 170), to: r).get()
        r.verification = [0, 255]
        try await store.updateRequest(r, expecting: .approved)
        let got = try #require(try await store.request(id: "r-1"))
        #expect(got == r)
        #expect(got.status == .failed && got.attempts == 1 && got.failure == "disk full" && got.decidedBy == "bob")

        r = try RequestLifecycle.apply(
            .reject(by: "carol", reason: "duplicate", at: 0),
            to:
                try RequestLifecycle.apply(.retry(at: 180), to: r).get()
        ).get()
        try await store.updateRequest(r, expecting: .failed)
        let rejected = try #require(try await store.request(id: "r-1"))
        #expect(rejected.sealedSubject == nil && rejected.decisionReason == "duplicate" && rejected.status == .rejected)
    }

    @Test func compareAndSwapConflicts() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let r = filed("r-1", 1)
        try await store.insertRequest(r)
        let planned = try RequestLifecycle.apply(.planned(plan: [1]), to: r).get()
        try await store.updateRequest(planned, expecting: .filed)

        // A second writer that read the request while it was still filed loses.
        var stale = r
        stale.reason = "changed"
        do {
            try await store.updateRequest(stale, expecting: .filed)
            Issue.record("a stale update was accepted")
        } catch let e as LetheError {
            #expect(e.code == .conflict)
        }
        #expect(try await store.request(id: "r-1") == planned)

        do {
            try await store.updateRequest(filed("ghost", 2), expecting: .filed)
            Issue.record("an update of a missing request was accepted")
        } catch let e as LetheError {
            #expect(e.code == .notFound)
        }
    }

    @Test func concurrentApprovalsOnlyOneWins() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let r = try RequestLifecycle.apply(.planned(plan: [1]), to: filed("r-1", 1)).get()
        try await store.insertRequest(r)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    let approved = try RequestLifecycle.apply(.approve(by: "approver-\(i)", at: Int64(i)), to: r).get()
                    do {
                        try await store.updateRequest(approved, expecting: .planned)
                        return true
                    } catch let e as LetheError where e.code == .conflict {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
        #expect(try await store.request(id: "r-1")?.status == .approved)
    }

    @Test func listByStatus() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        for i in 0..<6 {
            var r = filed("r-\(i)", UInt8(i))
            try await store.insertRequest(r)
            if i % 2 == 0 {
                r = try RequestLifecycle.apply(.planned(plan: [0]), to: r).get()
                try await store.updateRequest(r, expecting: .filed)
            }
        }
        #expect(try await store.requests(status: .planned).map(\.id) == ["r-0", "r-2", "r-4"])
        #expect(try await store.requests(status: .filed).map(\.id) == ["r-1", "r-3", "r-5"])
        #expect(try await store.requests(status: .verified).isEmpty)
    }

    /// The batch insert binds each request's values itself (not through `StatementArguments`): every
    /// column, set and unset, reads back as written, with consecutive filing numbers, beside the one-row
    /// insert that shares its cached statement; a duplicate id is a conflict and leaves nothing of its batch.
    @Test func batchInsertBindsEveryColumn() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var full = filed("r-full", 1, at: 1_000)
        setEveryField(&full, 1_000)
        var bare = ErasureRequest(id: "r-bare", subjectKey: testKey(2), sealedSubject: nil, reason: "", requestedBy: "carol", at: 10)
        bare.rawDueAt = nil
        try await store.insertRequests([full, bare])
        try await store.insertRequest(filed("r-one", 3))
        try await store.insertRequests([filed("r-x", 4), filed("r-y", 5)])
        #expect(try await store.request(id: "r-full") == full)
        #expect(try await store.request(id: "r-bare") == bare)
        #expect(try await store.request(id: "r-x") == filed("r-x", 4))
        #expect(try await store.requests(status: nil).map(\.id) == ["r-full", "r-bare", "r-one", "r-x", "r-y"])
        #expect(try await store.requests(status: nil, after: "3", limit: 10).items.map(\.id) == ["r-x", "r-y"])
        do {
            try await store.insertRequests([filed("r-z", 6), filed("r-full", 7)])
            Issue.record("a duplicate id was accepted")
        } catch let e as LetheError {
            #expect(e.code == .conflict)
        }
        #expect(try await store.request(id: "r-z") == nil)
    }

    /// `batchWrites` (a `forget --from`'s chunks): the writer connection's automatic checkpoint is off
    /// while the batch runs (the WAL keeps every commit; the database file does not grow), back on after
    /// it, nested or thrown out of, and one checkpoint at the end copies the batch into the database file.
    @Test func batchWritesCheckpointOnceAtTheEnd() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let store = try SQLiteStateStore(folder: folder)
        let file = folder + "/lethe.sqlite"
        func size() throws -> Int { (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? -1 }
        func autoCheckpoint() async throws -> Int {
            try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? -1 }
        }
        _ = await store.checkpoint()
        let before = try size()
        try await store.batchWrites {
            #expect(try await autoCheckpoint() == 0)
            for chunk in 0..<4 {
                var rs: [ErasureRequest] = []
                for i in 0..<600 {
                    var r = filed("r-\(chunk)-\(i)", UInt8(i % 250))
                    r.plan = [UInt8](repeating: UInt8(i % 256), count: 2_000)
                    rs.append(r)
                }
                try await store.insertRequests(rs)
            }
            let inner = try await store.batchWrites { () async throws -> Int in try await autoCheckpoint() }
            #expect(inner == 0)
            #expect(try await autoCheckpoint() == 0)
            // 4.8 MB committed, over the 1,000 pages that would have checkpointed: all still in the WAL.
            #expect(try size() == before)
        }
        #expect(try await autoCheckpoint() == 1000)
        #expect(try size() > before + 4_000_000)
        #expect(try await store.requests(status: .filed).count == 2_400)
        await #expect(throws: LetheError.self) {
            try await store.batchWrites { throw LetheError(.failure, "stop") }
        }
        #expect(try await autoCheckpoint() == 1000)
    }
}

/// `updateRequest` binds each value straight to its statement (`bindUpdate`): the rows it writes are
/// the rows GRDB's argument array (`updateArguments`) writes, column for column — every field set,
/// every optional one nil, and empty blobs (empty, not NULL: as an empty `Data` argument binds).
@Suite struct RequestUpdateBindingTests {
    static func variants() -> [ErasureRequest] {
        var full = ErasureRequest(id: "r-full", subjectKey: testKey(7), sealedSubject: [9, 8, 7], reason: "art. 17", requestedBy: "alice", at: 100)
        setEveryField(&full, 111)
        var bare = ErasureRequest(id: "r-bare", subjectKey: testKey(8), sealedSubject: nil, reason: "", requestedBy: "carol", at: 1)
        bare.status = .planned
        var empty = ErasureRequest(id: "r-empty", subjectKey: testKey(9), sealedSubject: [], reason: "x", requestedBy: "dave", at: 2)
        empty.status = .approved
        empty.plan = []
        empty.verification = []
        empty.sweepFindings = []
        return [full, bare, empty]
    }

    @Test func boundUpdateWritesTheRowsOfTheArgumentArray() async throws {
        let bound = try SQLiteStateStore(inMemory: nil), reference = try SQLiteStateStore(inMemory: nil)
        for store in [bound, reference] {
            for r in Self.variants() {
                try await store.insertRequest(ErasureRequest(id: r.id, subjectKey: testKey(1), sealedSubject: [1], reason: "r", requestedBy: "q", at: 0))
            }
        }
        for r in Self.variants() {
            try await bound.updateRequest(r, expecting: .filed)
            try await reference.write("reference update") { db in
                try db.execute(sql: SQLiteStateStore.updateRequestSQL, arguments: SQLiteStateStore.updateArguments(r, expecting: .filed))
                #expect(db.changesCount == 1)
            }
        }
        let rows: @Sendable (Database) throws -> [[DatabaseValue]] = { db in
            try Row.fetchAll(db, sql: "SELECT * FROM requests ORDER BY id").map { Array($0.databaseValues) }
        }
        let got = try await bound.read("rows", rows), want = try await reference.read("rows", rows)
        #expect(got.count == 3)
        #expect(got == want)
        // And they read back as the requests written.
        let full = try #require(try await bound.request(id: "r-full"))
        #expect(full == Self.variants()[0])
        #expect(try await bound.request(id: "r-empty")?.plan == [])
        // A compare-and-set that misses still conflicts, and leaves the statement usable.
        await #expect(throws: LetheError.self) { try await bound.updateRequest(Self.variants()[1], expecting: .filed) }
        var again = Self.variants()[1]
        again.reason = "again"
        try await bound.updateRequest(again, expecting: .planned)
        #expect(try await bound.request(id: "r-bare")?.reason == "again")
    }
}

/// Every optional field of `r` set (a failed request), the times from `n` on: what the binding tests
/// write and read back.
func setEveryField(_ r: inout ErasureRequest, _ n: Int64) {
    r.status = .failed
    r.updatedAt = 2 * n
    r.decidedBy = "bob"
    r.decisionReason = "ok per ticket 7"
    r.plan = Array(#"{"objects":[1]}"#.utf8)
    r.verification = [0, 255, 7]
    r.failure = "disk full"
    r.attempts = 3
    r.streamTag = 0xF000_0000_0000_0001
    r.requesterDigest = "d1g3st"
    r.proof = "index"
    r.sweptAt = 3 * n
    r.rawDueAt = 4 * n
    r.rawDestroyedAt = 5 * n
    r.rawDestroyedWhy = "verified"
    r.sweepFindings = [9, 8]
}
