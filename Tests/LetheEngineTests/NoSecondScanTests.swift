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
    // The erase keys the 4 hinted rows; the verification keys the 3,196 rows left once (its read is the new index entry).
    let keyed = counter.count - before
    #expect(keyed <= 4 + 3196, "keyed \(keyed) rows in the run")
    #expect(try await lethe.locate(SubjectID("u-17")).isEmpty)
    #expect(try await lethe.locate(SubjectID("u-18")).first?.rows.count == 4)
    // The next run finds everything unchanged: nothing keyed.
    let again = counter.count
    _ = try await lethe.index()
    #expect(counter.count == again)
}
