import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite

/// `Lethe.index(changes:)`, the real-time index's entry: the named keys only, the store as the
/// truth (a repeated, late or reordered notification is harmless), Delta logs incrementally.
@Suite struct IndexChangesTests {
    private func line(_ u: String, _ n: Int) -> String { #"{"n":\#(n),"user":{"id":"\#(u)"}}"# + "\n" }

    @Test func aNewObjectIsLocatableAndAGoneOneLeavesTheIndex() async throws {
        let f = try Fixture()
        f.put("raw/a.jsonl", line("u-1", 1))
        _ = try await f.lethe.index()
        f.put("raw/b.jsonl", line("u-2", 1) + line("u-2", 2))
        let r = try await f.lethe.index(changes: ["raw/b.jsonl"])
        #expect(r.index.objectsScanned == 1 && r.index.records == 2 && r.ignoredKeys == 0)
        #expect(try await f.lethe.locate(SubjectID("u-2")).map(\.object.key) == ["raw/b.jsonl"])
        // The same notification again (SQS delivers at least once): one HEAD, nothing read.
        let again = try await f.lethe.index(changes: ["raw/b.jsonl"])
        #expect(again.index.objectsScanned == 0 && again.index.objectsUnchanged == 1)
        // Rewritten: read again; removed: gone from the index, whatever order the events came in.
        f.put("raw/b.jsonl", line("u-3", 1))
        _ = try await f.lethe.index(changes: ["raw/b.jsonl"])
        #expect(try await f.lethe.locate(SubjectID("u-2")).isEmpty)
        #expect(try await f.lethe.locate(SubjectID("u-3")).map(\.object.key) == ["raw/b.jsonl"])
        try await f.store.delete("raw/b.jsonl")
        let gone = try await f.lethe.index(changes: ["raw/b.jsonl", "raw/b.jsonl"])
        #expect(gone.index.objectsRemoved == 1)
        #expect(try await f.lethe.locate(SubjectID("u-3")).isEmpty)
        // The object not named is untouched.
        #expect(try await f.lethe.locate(SubjectID("u-1")).map(\.object.key) == ["raw/a.jsonl"])
    }

    @Test func keysOutsideEveryDatasetHiddenOnesAndTemporariesAreIgnored() async throws {
        let f = try Fixture()
        f.put("elsewhere/x.jsonl", line("u-9", 1))
        f.put("rawish/x.jsonl", line("u-9", 1))  // `raw` is a folder: `rawish` is not under it
        f.put("raw/_SUCCESS", line("u-9", 1))
        f.put("raw/.x.jsonl.crc", line("u-9", 1))
        let r = try await f.lethe.index(changes: ["elsewhere/x.jsonl", "rawish/x.jsonl", "raw/_SUCCESS", "raw/.x.jsonl.crc"])
        #expect(r.ignoredKeys == 2)
        #expect(r.index.objectsScanned == 0)
        #expect(try await f.lethe.locate(SubjectID("u-9")).isEmpty)
        // Only the datasets asked for.
        f.put("other/o.jsonl", #"{"uid":"u-8"}"# + "\n")
        f.put("raw/r.jsonl", line("u-8", 1))
        _ = try await f.lethe.index(changes: ["other/o.jsonl", "raw/r.jsonl"], datasets: ["raw"])
        #expect(try await f.lethe.locate(SubjectID("u-8")).map(\.object.key) == ["raw/r.jsonl"])
    }

    @Test func aDeltaLogKeyIndexesTheTablesNewCommits() async throws {
        let dir = NSTemporaryDirectory() + "lethe-changes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try deltaPy(["make-files", dir, "3"])
        let yaml = """
            lake: .
            datasets:
              - {name: files, path: files, format: delta, subject: user_id}
            """
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        _ = try await lethe.index()
        _ = try deltaPy(["make-files-append", dir + "/files", "late-1"])
        let added = try FileManager.default.contentsOfDirectory(atPath: dir + "/files").filter { $0.hasSuffix(".parquet") }
        // The data file's own event changes nothing: the table's rows are what its log says.
        let early = try await lethe.index(changes: added.map { "files/" + $0 })
        #expect(early.index.objectsScanned == 0 && early.deltaTables.isEmpty)
        #expect(try await lethe.locate(SubjectID("late-1")).isEmpty)
        let r = try await lethe.index(changes: ["files/_delta_log/00000000000000000003.json"])
        #expect(r.deltaTables == ["files"])
        #expect(r.index.objectsScanned == 1)
        #expect(try await lethe.locate(SubjectID("late-1")).count == 1)
        #expect(try await lethe.index(changes: ["files/_delta_log/00000000000000000003.json"]).index.objectsScanned == 0)
    }
}
