import Testing
import LetheCore
@testable import LetheCatalog

/// The capability readers and writers of a state store (SQLite here): paging boundaries and the
/// all-or-nothing rule of a transaction across writers.
@Suite struct StateStoreTests {
    func filed(_ id: String, _ n: UInt8) -> ErasureRequest {
        ErasureRequest(id: id, subjectKey: testKey(n), sealedSubject: [n], reason: "art. 17", requestedBy: "alice", at: Int64(n))
    }

    @Test func requestPagesResumeAfterTheirCursorAndEndWithoutOne() async throws {
        let store: any StateStore = try SQLiteMetastore(inMemory: nil)
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
        let store: any StateStore = try SQLiteMetastore(inMemory: nil)
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
        let store: any StateStore = try SQLiteMetastore(inMemory: nil)
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
}
