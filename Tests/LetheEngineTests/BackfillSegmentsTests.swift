import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
@testable import LetheSQLite

// Issue 16: a backfill writes one segment a batch and merges nothing while it runs; the end of the
// pass merges them all at once, so the index a backfill leaves is one segment, answering as a store
// writing table rows does.

@Test func aBackfillOfManyBatchesEndsWithOneSegmentAnsweringLikeTheTable() async throws {
    let yaml = "lake: ./lake\ndatasets:\n  - {name: raw, path: raw, format: jsonl, subject: user.id}\n"
    let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp")
    let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))
    let store = InMemoryObjectStore()
    // 700 objects: the indexer writes batches of 256, so three batches (three segments) before the end.
    let seed: UInt64 = 7
    for i in 0..<700 {
        var s = ""
        for n in 0..<(8 + i % 9) { s += userEvent("u-\((UInt64(n * 31 + i * 17) &+ seed) % 2_000)", n) }
        store.set("raw/part-\(i).jsonl", Array(s.utf8))
    }
    let tableStore = try SQLiteStateStore(inMemory: nil)
    let segmentStore = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
    let table = Lethe(config: config, store: store, meta: tableStore, secrets: secrets, stateFolder: nil)
    let segmented = Lethe(config: config, store: store, meta: segmentStore, secrets: secrets, stateFolder: nil)
    let ra = try await table.index(), rb = try await segmented.index(workers: 2)
    #expect(ra.records == rb.records && rb.objectsScanned == 700 && rb.quarantined.isEmpty)
    let (segments, blocks, tableRows) = try await segmentStore.segmentLayout()
    #expect(segments == 1 && blocks > 1 && tableRows == 0, "seed \(seed)")
    #expect(try await segmentStore.indexStats().postings == (try await tableStore.indexStats().postings))
    var found = 0
    for u in 0..<2_010 {
        let s = SubjectID("u-\(u)")
        let a = try await table.locate(s).map { "\($0.object.key)@\($0.object.version):\($0.rows)" }
        let b = try await segmented.locate(s).map { "\($0.object.key)@\($0.object.version):\($0.rows)" }
        #expect(a == b, "u-\(u), seed \(seed)")
        if a != b { break }
        if !a.isEmpty { found += 1 }
    }
    #expect(found > 1_500)
}
