import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// The capability readers and writers of a state store (SQLite here): paging boundaries and the
/// all-or-nothing rule of a transaction across writers.
@Suite struct StateStoreTests {
    func filed(_ id: String, _ n: UInt8) -> ErasureRequest {
        ErasureRequest(id: id, subjectKey: testKey(n), sealedSubject: [n], reason: "art. 17", requestedBy: "alice", at: Int64(n))
    }

    @Test func requestPagesResumeAfterTheirCursorAndEndWithoutOne() async throws {
        let store: any StateStore = try SQLiteStateStore(inMemory: nil)
        try await store.insertRequests((1...7).map { filed("r-\($0)", UInt8($0)) })
        var r3 = try #require(try await store.request(id: "r-3"))
        r3 = try RequestLifecycle.apply(.planned(plan: []), to: r3).get()
        try await store.updateRequest(r3, expecting: .filed)

        var seen: [String] = [], after: String? = nil, pages = 0
        repeat {
            let page = try await store.requests.requests(status: nil, after: after, limit: 3)
            seen += page.items.map(\.id)
            after = page.next
            pages += 1
        } while after != nil && pages < 10
        #expect(seen == (1...7).map { "r-\($0)" })
        #expect(pages == 3)
        // A last page that is exactly full leaves a cursor; the page after it is empty and has none.
        let full = try await store.requests.requests(status: nil, after: nil, limit: 7)
        #expect(full.items.count == 7)
        let empty = try await store.requests.requests(status: nil, after: full.next, limit: 7)
        #expect(empty.items.isEmpty && empty.next == nil)
        // By status, in filing order.
        #expect(try await store.requests.requests(status: .filed, after: nil, limit: 2).items.map(\.id) == ["r-1", "r-2"])
        #expect(try await store.requests.requests(status: .planned, after: nil, limit: 2).items.map(\.id) == ["r-3"])
        await #expect(throws: LetheError.self) { _ = try await store.requests.requests(status: nil, after: "x", limit: 2) }
    }

    @Test func auditEntriesReadByRangeEqualTheWholeLog() async throws {
        let store: any StateStore = try SQLiteStateStore(inMemory: nil)
        #expect(try await store.audit.head() == nil)
        for i in 0..<10 {
            try await store.transaction("t") { tx in
                _ = try tx.audit.append(.filed, requestID: "r-\(i)", actor: nil, details: "{}", at: Int64(i))
            }
        }
        let all = try await store.audit.entries()
        #expect(all.count == 10)
        var paged: [AuditEntry] = []
        var from: Int64 = 1
        while case let page = try await store.audit.entries(from: from, limit: 4), !page.isEmpty {
            paged += page
            from = page.last!.seq + 1
        }
        #expect(paged == all)
        #expect(try await store.audit.head() == all.last)
    }

    @Test func aTransactionAcrossWritersLandsWholeOrNotAtAll() async throws {
        let store: any StateStore = try SQLiteStateStore(inMemory: nil)
        let r = filed("r-1", 1)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await store.transaction("t") { tx in
                try tx.requests.insert(r)
                try tx.cursors.setSetting("x", "1")
                try tx.journal.recordTemporary("tmp/a", owner: 1, table: nil)
                _ = try tx.index.putIndexedObjects([(sampleObject("d", "d/a"), [7: [0]])])
                _ = try tx.audit.append(.filed, requestID: r.id, actor: nil, details: "{}", at: 1)
                throw Boom()
            }
        }
        #expect(try await store.request(id: r.id) == nil)
        #expect(try await store.setting("x") == nil)
        #expect(try await store.temporaries().isEmpty)
        #expect(try await store.objects(dataset: "d").isEmpty)
        #expect(try await store.auditEntries().isEmpty)

        try await store.transaction("t") { tx in
            try tx.requests.insert(r)
            try tx.cursors.setSetting("x", "1")
            _ = try tx.index.putIndexedObjects([(sampleObject("d", "d/a"), [7: [0]])])
            _ = try tx.audit.append(.filed, requestID: r.id, actor: nil, details: "{}", at: 1)
        }
        #expect(try await store.request(id: r.id) != nil)
        #expect(try await store.setting("x") == "1")
        #expect(try await store.locate(prefix: 7, dataset: nil).map(\.rows) == [[0]])
        #expect(try await store.auditEntries().map(\.requestID) == [r.id])
    }

    @Test func openRequestsAreFoundBySubjectWithoutListingAll() async throws {
        let store: any StateStore = try SQLiteStateStore(inMemory: nil)
        try await store.insertRequests((1...5).map { filed("r-\($0)", UInt8($0)) })
        // r-2 rejected (terminal), r-6 a second, later request for subject 3 after r-3 was verified.
        var r2 = try #require(try await store.request(id: "r-2"))
        r2 = try RequestLifecycle.apply(.reject(by: "bob", reason: "no", at: 9), to: r2).get()
        try await store.updateRequest(r2, expecting: .filed)
        try await store.transaction("t") { tx in
            let r3 = try tx.request(id: "r-3")!
            var v = r3
            v.status = .verified
            try tx.updateRequest(v, expecting: .filed)
        }
        try await store.insertRequest(filed("r-6", 3))
        let open = try await store.requests.openRequests(subjectKeys: [testKey(1), testKey(2), testKey(3), testKey(9), testKey(1)])
        #expect(open.mapValues(\.id) == [testKey(1): "r-1", testKey(3): "r-6"])
        #expect(try await store.requests.openRequests(subjectKeys: []).isEmpty)
        // Many keys (more than one SQL chunk).
        let many = (0..<1200).map { i in SubjectKey(bytes: [UInt8(i % 256), UInt8(i / 256)] + [UInt8](repeating: 7, count: 30)) }
        #expect(try await store.requests.openRequests(subjectKeys: many + [testKey(5)]).mapValues(\.id) == [testKey(5): "r-5"])
    }

    /// With fewer open requests than keys asked (a `forget --from` of many), the open ones are read by
    /// status and kept where their key is asked; with more, selected by key: the same answer either way —
    /// only keys asked for, terminal requests left out, two open requests of one subject its later one.
    @Test func openRequestsReadByStatusOrByKeyAgree() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.insertRequests((1...8).map { filed("r-\($0)", UInt8($0)) })
        var r2 = try #require(try await store.request(id: "r-2"))
        r2 = try RequestLifecycle.apply(.reject(by: "bob", reason: "no", at: 9), to: r2).get()
        try await store.updateRequest(r2, expecting: .filed)
        // A second open request for subject 4, filed later (the store does not forbid it).
        try await store.insertRequest(filed("r-9", 4))
        let asked = [testKey(1), testKey(2), testKey(4), testKey(6)]
        let want = [testKey(1): "r-1", testKey(4): "r-9", testKey(6): "r-6"]
        // 4 keys, 8 open: by key.
        #expect(try await store.requests.openRequests(subjectKeys: asked).mapValues(\.id) == want)
        // 4 + 20 absent keys, 8 open: by status.
        let absent = (100..<120).map { testKey(UInt8($0)) }
        #expect(try await store.requests.openRequests(subjectKeys: asked + absent).mapValues(\.id) == want)
        #expect(try await store.requests.openRequests(subjectKeys: absent).isEmpty)
    }
}
