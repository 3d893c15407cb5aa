import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite

// A run's plan reads its subjects' postings once; the job's first step (a Delta table's) takes its
// candidate rows from them (`PlannedPostings`) instead of a second read of the index. What it takes
// must be what that read would give: the rows by object key of the dataset's entries of the keys.

@Test func plannedPostingsGiveTheStepWhatItsOwnReadOfTheIndexWould() async throws {
    let yaml = """
        lake: ./lake
        datasets:
          - {name: raw, path: raw, format: jsonl, subject: user.id}
          - {name: other, path: other, format: jsonl, subject: user.id}
        """
    let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp")
    let secrets = StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32))
    let store = InMemoryObjectStore()
    for i in 0..<6 {
        var s = ""
        for n in 0..<80 { s += userEvent("u-\((n * 7 + i * 13) % 90)", n) }
        store.set("raw/part-\(i).jsonl", Array(s.utf8))
        store.set("other/part-\(i).jsonl", Array(s.utf8))
    }
    let lethe = Lethe(config: config, store: store, meta: try SQLiteStateStore(inMemory: nil, segmentMinimum: 1), secrets: secrets, stateFolder: nil)
    _ = try await lethe.index()
    let raw = try #require(config.dataset(named: "raw"))
    // Subjects in the lake and some that are not (u-90…u-99).
    let keys = (0..<100).map { lethe.key(for: SubjectID("u-\($0)"), in: raw) }
    let byKey = try await lethe.postings(keys, nfc: [:])
    func step(_ job: String, _ ordinal: Int64, _ ks: [SubjectKey]) -> JournalStep {
        JournalStep(job: job, ordinal: ordinal, dataset: "raw", objectKey: Lethe.deltaStepKey, requestIDs: ["r"], subjectKeys: ks)
    }
    func ownRead(_ ks: Set<SubjectKey>) async throws -> [String: Set<Int64>] {
        var out: [String: Set<Int64>] = [:]
        for ps in try await lethe.meta.index.locate(prefixes: Array(Set(ks.map(\.prefix64))), dataset: "raw").values {
            for p in ps { out[p.object.key, default: []].formUnion(p.rows) }
        }
        return out
    }
    let memo = PlannedPostings()
    let some = Set(keys.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
    let want = try await ownRead(some)
    #expect(want.count > 1 && want.keys.allSatisfy { $0.hasPrefix("raw/") })

    memo.keep(job: "j-1", ordinal: 0, byKey)
    // Another job's step, or another step of this job: not theirs (and still held for the first step).
    #expect(memo.take(step("j-2", 0, Array(some)), keys: some, dataset: "raw") == nil)
    #expect(memo.take(step("j-1", 1, Array(some)), keys: some, dataset: "raw") == nil)
    #expect(memo.take(step("j-1", 0, Array(some)), keys: some, dataset: "raw") == want)
    // Taken once: a second planning of the step (after a conflict) reads the index.
    #expect(memo.take(step("j-1", 0, Array(some)), keys: some, dataset: "raw") == nil)

    // Every key of the plan, the other dataset's entries left out.
    memo.keep(job: "j-1", ordinal: 0, byKey)
    #expect(memo.take(step("j-1", 0, keys), keys: Set(keys), dataset: "raw") == (try await ownRead(Set(keys))))

    // A key the plan did not read: nil (the step reads the index).
    let stranger = lethe.key(for: SubjectID("not planned"), in: raw)
    memo.keep(job: "j-1", ordinal: 0, byKey)
    #expect(memo.take(step("j-1", 0, [stranger]), keys: some.union([stranger]), dataset: "raw") == nil)
    memo.keep(job: "j-1", ordinal: 0, byKey)
    memo.clear()
    #expect(memo.take(step("j-1", 0, Array(some)), keys: some, dataset: "raw") == nil)
}

// The run's verification takes each request's plan as the run built it (`PlanMemo`) instead of decoding
// the bytes the claim stored: it must be what decoding them gives (plans holding objects, none, an NFC
// key), and nothing for a request holding other bytes.
@Test func theRunsPlansAreWhatDecodingTheirStoredBytesGives() async throws {
    let yaml = """
        lake: ./lake
        datasets:
          - {name: raw, path: raw, format: jsonl, subject: user.id}
          - {name: names, path: names, format: jsonl, subject: user.id, normalize: nfc}
        """
    let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp")
    let secrets = StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32))
    let store = InMemoryObjectStore()
    let decomposed = "Jose\u{301}"  // NFD: its NFC key differs from its own
    for i in 0..<3 {
        var s = ""
        for n in 0..<40 { s += userEvent("u-\((n + i * 5) % 30)", n) }
        store.set("raw/part-\(i).jsonl", Array(s.utf8))
        store.set("names/part-\(i).jsonl", Array((s + userEvent("José", 99)).utf8))
    }
    let lethe = Lethe(config: config, store: store, meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    _ = try await lethe.index()
    let subjects = ["u-1", "u-7", "u-29", "nobody", decomposed].map(SubjectID.init)
    let filed = try await lethe.forget(subjects, reason: "t", by: "alice")
    let approved = try await lethe.approve(filed.map(\.id), by: "bob")
    var report = RunReport()
    var postings: [SubjectKey: [Posting]] = [:]
    let (_, _, planned) = try await Executor(lethe).planJob(approved, report: &report, postings: &postings)
    #expect(planned.count == subjects.count)
    var withObjects = 0, withNFC = 0
    for (r, (id, bytes)) in zip(approved, planned) {
        #expect(r.id == id)
        var stored = r
        stored.plan = bytes
        let decoded = try #require(ErasurePlan.decode(bytes))
        #expect(lethe.planMemo.plan(of: stored) == decoded)
        if decoded.totalObjects > 0 { withObjects += 1 }
        if decoded.nfcSubjectKey != nil { withNFC += 1 }
        // Other bytes (a plan made since), or none: decoded, not taken.
        stored.plan = bytes + [UInt8(ascii: " ")]
        #expect(lethe.planMemo.plan(of: stored) == nil)
        stored.plan = nil
        #expect(lethe.planMemo.plan(of: stored) == nil)
    }
    #expect(withObjects >= 3 && withNFC >= 1 && withObjects < subjects.count)
    lethe.planMemo.clear()
    var first = approved[0]
    first.plan = planned[0].1
    #expect(lethe.planMemo.plan(of: first) == nil)
    // A job planned for the queue (`planJob` without the postings) keeps nothing: no verification of this call's follows.
    _ = try await Executor(lethe).planJob(approved, report: &report)
    #expect(lethe.planMemo.plan(of: first) == nil)
}
