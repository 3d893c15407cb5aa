import Synchronization
import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog

/// The doors' listings read the state a page at a time (`Lethe+Queries`, `Lethe+Audit`): read in
/// pages of 2 or 3, they give what one whole read gives.
@Suite struct PagedQueriesTests {
    private func event(_ u: String) -> String { #"{"user":{"id":"\#(u)"}}"# + "\n" }

    /// Seven subjects; u-1…u-5 filed by alice, u-6 and u-7 by bob; all planned.
    private func filed() async throws -> Fixture {
        let f = try Fixture()
        f.put("raw/a.jsonl", (1...7).map { event("u-\($0)") }.joined())
        _ = try await f.lethe.index()
        for n in 1...7 {
            _ = try await f.lethe.forget([SubjectID("u-\(n)")], reason: "ticket \(n)", by: n <= 5 ? "alice" : "bob")
        }
        return f
    }

    @Test func approveAllReadsThePlannedRequestsAPageAtATime() async throws {
        let f = try await filed()
        let all = try await f.lethe.meta.requests.requests(status: nil)
        let (ok, mine) = try await Lethe.$requestPage.withValue(2) { try await f.lethe.approveAll(by: "bob") }
        #expect(ok.map(\.id) == all.prefix(5).map(\.id))
        #expect(ok.allSatisfy { $0.status == .approved })
        #expect(mine.map(\.id) == all.suffix(2).map(\.id))
        #expect(try await f.lethe.requests(status: .planned).map(\.id) == all.suffix(2).map(\.id))
    }

    @Test func requestListingsInPagesEqualOneRead() async throws {
        let f = try await filed()
        _ = try await f.lethe.approve([try await f.lethe.requests(status: nil)[2].id], by: "bob")
        for status in [nil, RequestStatus.planned, .approved, .verified] {
            let whole = try await f.lethe.meta.requests.requests(status: status).map(\.id)
            for page in [1, 2, 3, 7, 8] {
                #expect(
                    try await Lethe.$requestPage.withValue(page) { try await f.lethe.requests(status: status) }.map(\.id) == whole,
                    "\(status?.rawValue ?? "all") in pages of \(page)")
            }
        }
    }

    @Test func auditCheckAndLogReadTheLogAPageAtATime() async throws {
        let f = try await filed()
        let entries = try await f.lethe.meta.audit.entries()
        #expect(entries.count == 14)
        let whole = try await f.lethe.auditLog().map(\.details)
        let head = "\(entries[13].seq):\(entries[13].hash)"
        for page in [1, 3, 7, 14, 15] {
            try await Lethe.$auditPage.withValue(page) {
                #expect(try await f.lethe.auditLog().map(\.details) == whole, "pages of \(page)")
                let checked = try await f.lethe.auditReport(expectHead: nil)
                #expect(checked == AuditCheckReport(ok: true, entries: 14, head: head, firstBroken: nil, reason: nil), "pages of \(page)")
                // An entry recorded earlier, in the first page, is still found.
                let early = "\(entries[1].seq):\(entries[1].hash.prefix(16))"
                #expect(try await f.lethe.auditReport(expectHead: early).ok, "pages of \(page)")
                let altered = try await f.lethe.auditReport(expectHead: "2:" + String(repeating: "0", count: 16))
                #expect(!altered.ok && altered.firstBroken == 2, "pages of \(page)")
                let cut = try await f.lethe.auditReport(expectHead: "15:" + String(repeating: "0", count: 16))
                #expect(!cut.ok && cut.firstBroken == 15 && cut.reason?.contains("ends at 14") == true, "pages of \(page)")
                #expect(try await f.lethe.checkAudit().entries == entries, "pages of \(page)")
            }
        }
        // Without the audit key the chain does not verify, however it is paged.
        let unkeyed = Lethe(
            config: f.lethe.config, store: f.store, meta: f.lethe.meta,
            secrets: StateSecrets(
                installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32),
                auditKey: Array(repeating: 9, count: 32)), stateFolder: nil)
        let wrong = try await Lethe.$auditPage.withValue(5) { try await unkeyed.auditReport(expectHead: nil) }
        #expect(!wrong.ok && wrong.entries == 14)
    }
}

/// A store whose first read of the audit texts misses every text: as if each entry had been appended
/// (with its texts) after the texts were read, between two pages.
private final class LateTextsStore: StateStore {
    let base: any StateStore
    let reader: LateTextsReader
    init(base: any StateStore) { self.base = base; reader = LateTextsReader(base: base.audit) }
    var index: any SubjectIndexReader { base.index }
    var requests: any RequestReader { base.requests }
    var audit: any AuditReader { reader }
    var journal: any JournalReader { base.journal }
    var cursors: any CursorReader { base.cursors }
    var tokens: any TokenReader { base.tokens }
    var outbox: any OutboxReader { base.outbox }
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        try await base.transaction(what, body)
    }
    func checkIntact() throws { try base.checkIntact() }
    func checkpoint() async -> Bool { await base.checkpoint() }
    func makeDurable() async throws { try await base.makeDurable() }
}

private final class LateTextsReader: AuditReader {
    let base: any AuditReader
    let reads = Mutex(0)
    init(base: any AuditReader) { self.base = base }
    func entries(from seq: Int64, limit: Int) async throws -> [AuditEntry] { try await base.entries(from: seq, limit: limit) }
    func head() async throws -> AuditEntry? { try await base.head() }
    func texts() async throws -> AuditTexts {
        let first = reads.withLock { n in
            n += 1; return n == 1
        }
        return first ? AuditTexts() : try await base.texts()
    }
    func textDigest(_ text: String) -> String { base.textDigest(text) }
}

/// The texts are read once; a page naming a text the copy lacks reads them again instead of calling it missing.
@Test func auditPagesNamingTextsAppendedAfterTheTextsWereReadReadThemAgain() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n")
    _ = try await f.lethe.index()
    _ = try await f.lethe.forget([SubjectID("u-1")], reason: "ticket 1", by: "alice")
    let late = LateTextsStore(base: f.lethe.meta)
    let lethe = Lethe(config: f.lethe.config, store: f.store, meta: late, secrets: f.lethe.secrets, stateFolder: nil)
    let report = try await Lethe.$auditPage.withValue(1) { try await lethe.auditReport(expectHead: nil) }
    #expect(report.ok, "\(report.reason ?? "")")
    #expect(late.reader.reads.withLock { $0 } == 2)
    #expect(try await lethe.auditLog().contains { $0.details.contains("ticket 1") })
}
