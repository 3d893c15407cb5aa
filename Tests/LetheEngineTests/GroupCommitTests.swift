import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LetheTesting
import Testing

/// Group commit of filings (issue 14's load): several callers' filings read the state once and are
/// written in one transaction, each caller getting its own requests or its own error; on both stores.
@Suite(.timeLimit(.minutes(10))) struct GroupCommitTests {
    static func ids(_ r: Result<[ErasureRequest], any Error>) -> [String]? { try? r.get().map(\.id) }

    @Test(arguments: ServeStore.allCases)
    func callersFiledTogetherGetTheirOwnRequestsAndTheirOwnErrors(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind, outbox: false)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let s = { (t: String) in l.subject(t) }
        let results = await l.forget(calls: [
            FilingCall([s("u-1")], reason: "ticket 1", by: "alice"),
            FilingCall([s("u-2"), s("x-9")], reason: "ticket 2", by: "bob"),
            // The reason holds the subject's id: refused, this caller only.
            FilingCall([s("u-3")], reason: "erase u-3 please", by: "carol"),
            // The subject of the first caller: that request, filed once.
            FilingCall([s("u-1")], reason: "ticket 4", by: "dave"),
            // One of its subjects is named in its reason: nothing of this caller is filed, u-4 included.
            FilingCall([s("u-4"), s("zz-12345")], reason: "for zz-12345", by: "erin"),
            FilingCall([], reason: "nothing", by: "frank"),
        ])
        #expect(results.count == 6)
        let first = try #require(Self.ids(results[0])), second = try #require(Self.ids(results[1]))
        #expect(first.count == 1 && second.count == 2)
        #expect(Self.ids(results[3]) == first, "a subject two callers name is one request")
        #expect(Self.ids(results[5]) == [])
        for bad in [2, 4] {
            guard case .failure(let e as LetheError) = results[bad] else {
                Issue.record("caller \(bad) should fail alone: \(results[bad])")
                continue
            }
            #expect(e.code == .badInput && e.message.contains("nothing was filed"))
        }
        // What the refused callers named is not filed; the others are, planned, by their own callers.
        let open = try await l.meta.requests.openRequests(subjectKeys: ["u-1", "u-2", "x-9", "u-3", "u-4", "zz-12345"].map { l.key(for: s($0)) })
        #expect(Set(open.values.map(\.id)) == Set(first + second))
        #expect(open[l.key(for: s("u-3"))] == nil && open[l.key(for: s("u-4"))] == nil)
        let r1 = try await l.request(first[0])
        #expect(r1.status == .planned && r1.requestedBy == "alice" && r1.reason == "ticket 1")
        for id in second { #expect(try await l.request(id).requestedBy == "bob") }
        // Audit entries as `forget` writes them for each caller: `filed` + `planned` for one subject,
        // one `filed_batch` listing both requests for two; the chain intact.
        #expect(try await l.meta.audit.entries(requestID: first[0]).map(\.event) == ["filed", "planned"])
        for id in second {
            let entries = try await l.meta.audit.entries(requestID: id)
            #expect(entries.map(\.event) == ["filed_batch"])
            #expect(entries.first.map { e in second.allSatisfy { e.details.contains($0) } } == true)
        }
        #expect(try await l.checkAudit().ok)
    }

    @Test(arguments: ServeStore.allCases)
    func concurrentFilingsThroughTheGroupAreBatchedAndNoneIsLost(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind, outbox: true)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let group = FilingGroup(lethe: l)
        // 60 callers, 40 subjects: callers i and i + 40 name the same one.
        let got = try await withThrowingTaskGroup(of: (Int, [ErasureRequest]).self) { tasks in
            for i in 0..<60 {
                tasks.addTask { (i, try await group.forget([l.subject("g-\(i % 40)")], reason: "ticket \(i)", by: "caller-\(i)")) }
            }
            var out: [Int: [ErasureRequest]] = [:]
            for try await (i, rs) in tasks { out[i] = rs }
            return out
        }
        #expect(got.count == 60 && got.values.allSatisfy { $0.count == 1 })
        let ids = Set(got.values.map { $0[0].id })
        #expect(ids.count == 40)
        for i in 40..<60 { #expect(got[i]?[0].id == got[i - 40]?[0].id) }
        let counts = group.counts
        #expect(counts.calls == 60)
        #expect(counts.batches < 60 && counts.largest > 1, "concurrent filings were written together (\(counts))")
        // Every request stored, planned, with its entries and its notifications; the chain intact.
        for id in ids {
            let r = try await l.request(id)
            #expect(r.status == .planned)
            #expect(try await l.meta.audit.entries(requestID: id).map(\.event) == ["filed", "planned"])
        }
        let events = try await l.meta.outbox.messages(after: 0, limit: 1_000)
        #expect(events.filter { $0.event == "filed" }.count == 40 && events.filter { $0.event == "planned" }.count == 40)
        #expect(try await l.checkAudit().ok)
    }

    /// The shared transaction that cannot commit is written again one caller at a time: nothing is
    /// lost or doubled, and without a failure a group is one transaction.
    @Test func aSharedTransactionThatFailsIsWrittenAgainOneCallerAtATime() async throws {
        let lake = try ServeLake(.sqlite, outbox: false)
        defer { lake.remove() }
        _ = try await lake.lethe.index()
        let faulty = FaultInjectingStateStore(base: lake.lethe.meta)
        let l = Lethe(
            config: lake.lethe.config, store: lake.lethe.store, meta: faulty, secrets: lake.lethe.secrets, stateFolder: lake.lethe.stateFolder)
        let calls = (1...3).map { FilingCall([l.subject("f-\($0)")], reason: "ticket \($0)", by: "alice") }
        var before = faulty.transactionsCommitted
        var results = await l.forget(calls: calls)
        #expect(results.allSatisfy { Self.ids($0)?.count == 1 })
        #expect(faulty.transactionsCommitted - before == 1, "three callers, one transaction")
        // The shared transaction fails at its third audit entry (the second caller's `filed`).
        let more = (4...6).map { FilingCall([l.subject("f-\($0)")], reason: "ticket \($0)", by: "bob") }
        faulty.failAuditAppend(nth: 3)
        before = faulty.transactionsCommitted
        results = await l.forget(calls: more)
        #expect(faulty.faultsThrown == 1)
        #expect(results.allSatisfy { Self.ids($0)?.count == 1 })
        #expect(faulty.transactionsCommitted - before == 3, "written again one caller at a time")
        for r in results {
            let id = try #require(Self.ids(r)?.first)
            #expect(try await l.meta.audit.entries(requestID: id).map(\.event) == ["filed", "planned"])
        }
        let all = try await l.requests(status: nil)
        #expect(all.count == 6 && Set(all.map(\.id)).count == 6)
        #expect(try await l.checkAudit().ok)
    }
}
