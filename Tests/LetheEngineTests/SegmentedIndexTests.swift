import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite

// Issue 16: the backfill's postings written as sorted segments. The same lake indexed into a store
// writing every batch as a segment and into one writing table rows answers every `locate` alike,
// through an erasure run (derived entries), a changed object, a removed one and the purge.

@Test func aSegmentedIndexAnswersLikeTheTableThroughRunsAndChanges() async throws {
    let yaml = "lake: ./lake\ndatasets:\n  - {name: raw, path: raw, format: jsonl, subject: user.id}\n"
    let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp")
    let secrets = StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32))
    let store = InMemoryObjectStore()
    func object(_ i: Int, rows: Int, shift: Int = 0) -> [UInt8] {
        var s = ""
        for n in 0..<rows { s += userEvent("u-\((n * 7 + i * 13 + shift) % 450)", n) }
        return Array(s.utf8)
    }
    for i in 0..<12 { store.set("raw/part-\(i).jsonl", object(i, rows: 150 + i * 20)) }
    let table = Lethe(config: config, store: store, meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    let segmented = Lethe(
        config: config, store: store, meta: try SQLiteStateStore(inMemory: nil, segmentMinimum: 1), secrets: secrets, stateFolder: nil)
    let subjects = (0..<460).map { SubjectID("u-\($0)") }

    func expectSame(_ why: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for (i, s) in subjects.enumerated() {
            let a = try await table.locate(s).map { "\($0.object.key)@\($0.object.version):\($0.rows)" }
            let b = try await segmented.locate(s).map { "\($0.object.key)@\($0.object.version):\($0.rows)" }
            #expect(a == b, "\(why): u-\(i)", sourceLocation: sourceLocation)
            if a != b { return }
        }
    }

    let ra = try await table.index(), rb = try await segmented.index()
    #expect(ra.records == rb.records && rb.objectsScanned == 12)
    #expect(try await segmented.locate(SubjectID("u-5")).count > 0)
    try await expectSame("backfill")

    // An erasure run on each (each rewrites its own copy of the lake: two stores over one lake would
    // see each other's rewrites, so the segmented one runs on a copy).
    let copy = InMemoryObjectStore()
    for i in 0..<12 { copy.set("raw/part-\(i).jsonl", try #require(store.bytes("raw/part-\(i).jsonl"))) }
    let segmentedCopy = Lethe(config: config, store: copy, meta: segmented.meta, secrets: secrets, stateFolder: nil)
    for lethe in [table, segmentedCopy] {
        let r = try await lethe.forget([SubjectID("u-21"), SubjectID("u-300")], reason: "t", by: "alice")
        _ = try await lethe.approve(r.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.verifications.allSatisfy(\.clean) && run.rowsDropped > 0)
        #expect(try await lethe.locate(SubjectID("u-21")).isEmpty)
    }
    let tableAfterRun = Lethe(config: config, store: store, meta: table.meta, secrets: secrets, stateFolder: nil)
    for (i, s) in subjects.enumerated() {
        let a = try await tableAfterRun.locate(s).map { "\($0.object.key):\($0.rows)" }
        let b = try await segmentedCopy.locate(s).map { "\($0.object.key):\($0.rows)" }
        #expect(a == b, "after the run: u-\(i)")
        if a != b { break }
    }

    // A changed object and a removed one, in both lakes; then the purge.
    for s in [store, copy] {
        s.set("raw/part-3.jsonl", object(3, rows: 90, shift: 5))
        try await s.delete(["raw/part-7.jsonl"])
    }
    _ = try await tableAfterRun.index()
    _ = try await segmentedCopy.index()
    _ = try await table.meta.purgeDeadPostings(force: true)
    #expect(try await segmented.meta.purgeDeadPostings(force: true) > 0)
    for (i, s) in subjects.enumerated() {
        let a = try await tableAfterRun.locate(s).map { "\($0.object.key):\($0.rows)" }
        let b = try await segmentedCopy.locate(s).map { "\($0.object.key):\($0.rows)" }
        #expect(a == b, "after changes and the purge: u-\(i)")
        if a != b { break }
    }
    #expect(try await segmentedCopy.locate(SubjectID("u-5")).allSatisfy { $0.object.key != "raw/part-7.jsonl" })
}
