import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheCatalog
import LetheSQLite
import LetheTesting

// Issue 12: one run keys each row of the object it rewrites once at most (hinted erase, then the
// verification's keyed read, which is the object's new index entry), not three times (erase,
// re-index, verification).

@Test func runKeysEachRowOnceAtMost() async throws {
    let yaml = "lake: ./lake\ndatasets:\n  - {name: events, path: ds, format: parquet, subject: user_id}\n"
    let store = InMemoryObjectStore()
    let counter = KeyedRowCounter()
    var lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp"), store: store, meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 5, count: 32), requestKey: Array(repeating: 6, count: 32)),
        stateFolder: nil)
    lethe.formatHook = { name in
        guard name == "parquet" else { return nil }
        var f = ParquetFormat()
        f.keyedRows = counter
        return f
    }
    let fixture = try #require(FormatFixture.all.first { $0.name == "parquet" })
    // 3,200 rows, 800 subjects; the one erased holds 4 rows.
    let records = (0..<3200).map { FixtureRecord("u-\($0 % 800)", "note \($0)") }
    store.set(fixture.key, try await fixture.encode(records))
    _ = try await lethe.index()
    #expect(counter.count == 3200)
    let r = try await lethe.forget([SubjectID("u-17")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let before = counter.count
    let run = try await lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1, "\(v)")
    #expect(run.rowsDropped == 4)
    // The erase keys the 4 hinted rows; the verification compares the rewritten rows' values with the raw id (no
    // keyed hash) and the index entry is derived from the old one: nothing else is keyed.
    let keyed = counter.count - before
    #expect(keyed == 4, "keyed \(keyed) rows in the run")
    #expect(try await lethe.locate(SubjectID("u-17")).isEmpty)
    #expect(try await lethe.locate(SubjectID("u-18")).first?.rows.count == 4)
    // The next run finds everything unchanged: nothing keyed.
    let again = counter.count
    _ = try await lethe.index()
    #expect(counter.count == again)
}

@Test func aHintIsGivenOnlyForTheIndexedVersionUnderTheCurrentSpec() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n" + #"{"user":{"id":"u-2"}}"# + "\n" + #"{"user":{"id":"u-1"}}"# + "\n")
    f.put("raw/b.jsonl", #"{"user":{"id":"u-3"}}"# + "\n")
    _ = try await f.lethe.index()
    let k1 = f.lethe.key(for: SubjectID("u-1")), k9 = f.lethe.key(for: SubjectID("u-9"))
    let step = JournalStep(job: "j", ordinal: 1, dataset: "raw", objectKey: "raw/a.jsonl", requestIDs: ["r"], subjectKeys: [k1, k9])
    let info = try #require(try await f.store.head("raw/a.jsonl"))
    let hint = try #require(try await Executor(f.lethe).eraseHint(step, dataset: "raw"))
    // The rows of each key the index holds there, for the version it scanned; a key it holds nowhere there has none.
    #expect(hint.version == info.version && hint.rows == [k1: [0, 2]] && hint.applies(to: info))
    // An object the index holds nothing of these keys in gets no hint (the format keys every record).
    var other = step
    other.objectKey = "raw/b.jsonl"
    #expect(try await Executor(f.lethe).eraseHint(other, dataset: "raw") == nil)
    // Entries made under another spec say nothing: no hint.
    try await f.lethe.meta.setSetting(IndexSpec.setting("raw"), "0000")
    #expect(try await Executor(f.lethe).eraseHint(step, dataset: "raw") == nil)
}
