import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// Sorted posting segments (issue 16): a store writing every batch as a segment answers `locate`
/// exactly as one writing a `postings` row per key, through re-indexing, quarantine, removal,
/// derived entries and their compaction, tier merges and the dead-entry purge; an old-schema state
/// (v13, postings in the table) opens and moves objects to segments as they are indexed again.
@Suite struct PostingSegmentTests {
    func object(_ key: String, records: Int64, version: String = "v1", dataset: String = "d") -> IndexedObject {
        IndexedObject(dataset: dataset, key: key, size: 100, modifiedNanos: 1, version: version, records: records, status: .indexed, indexedAt: 1)
    }

    /// Random postings of `records` rows over a pool of keys (shared keys across objects, a few hot
    /// ones with many rows), with the pool's edge keys (Int64.min/max, 0, -1) among them.
    func postings(_ rng: inout SplitMix64, records: Int64, pool: [Int64]) -> PostingList {
        var list = PostingList()
        for r in 0..<records {
            let hot = rng.next() % 10 == 0
            let k = hot ? pool[Int(rng.next() % 4)] : pool[Int(rng.next() % UInt64(pool.count))]
            list.append(k, row: r)
        }
        return list
    }

    func keyPool(_ rng: inout SplitMix64, _ n: Int) -> [Int64] {
        var pool: [Int64] = [Int64.min, Int64.max, 0, -1]
        while pool.count < n { pool.append(Int64(bitPattern: rng.next())) }
        return pool
    }

    /// `locate` of every key of `pool` (one at a time, and all at once) on both stores.
    func expectSameAnswers(
        _ a: SQLiteStateStore, _ b: SQLiteStateStore, _ pool: [Int64], stats: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        func strip(_ ps: [Posting]) -> [String] { ps.map { "\($0.object.dataset)/\($0.object.key)@\($0.object.version):\($0.rows)" } }
        let manyA = try await a.locate(prefixes: pool, dataset: nil)
        let manyB = try await b.locate(prefixes: pool, dataset: nil)
        #expect(manyA.mapValues(strip) == manyB.mapValues(strip), sourceLocation: sourceLocation)
        for k in pool.prefix(300) {
            let one = try await b.locate(prefix: k, dataset: nil)
            #expect(strip(one) == strip(try await a.locate(prefix: k, dataset: nil)), sourceLocation: sourceLocation)
            #expect(strip(one) == strip(manyB[k] ?? []), sourceLocation: sourceLocation)
            let inE = try await b.locate(prefix: k, dataset: "e")
            #expect(strip(inE) == strip(try await a.locate(prefix: k, dataset: "e")), sourceLocation: sourceLocation)
        }
        guard stats else { return }
        let sa = try await a.indexStats(), sb = try await b.indexStats()
        #expect(sa.objects == sb.objects && sa.postings == sb.postings && sa.quarantined == sb.quarantined, sourceLocation: sourceLocation)
    }

    /// (segments, blocks, entries in blocks) of a store.
    func layout(_ s: SQLiteStateStore) async throws -> (segments: Int, blocks: Int, entries: Int, tableRows: Int) {
        try await s.writer.read { db in
            var entries = 0
            for data in try Data.fetchAll(db, sql: "SELECT data FROM segment_blocks") {
                try data.withUnsafeBytes { b in
                    try PostingSegment.forEach(b) { _, _, _ in
                        entries += 1
                        return true
                    }
                }
            }
            return (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM segments")!, try Int.fetchOne(db, sql: "SELECT count(*) FROM segment_blocks")!, entries,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM postings")!
            )
        }
    }

    @Test func segmentsAnswerLikeThePostingsTableThroughEveryIndexChange() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let table = try SQLiteStateStore(inMemory: nil)  // every batch below the default minimum: table rows
        let segmented = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
        var rng = SplitMix64(seed: 16)
        let pool = keyPool(&rng, 3_000)
        var records: [String: Int64] = [:]
        // Three batches of objects in two datasets, some large enough for many blocks.
        for batch in 0..<3 {
            var b: [(IndexedObject, PostingList)] = []
            for i in 0..<8 {
                let key = "p\(batch)/o\(i)"
                let n = Int64(50 + Int(rng.next() % 3_000))
                records[key] = n
                b.append((object(key, records: n, dataset: i % 3 == 0 ? "e" : "d"), postings(&rng, records: n, pool: pool)))
            }
            try await table.putIndexedObjects(flat: b)
            try await segmented.putIndexedObjects(flat: b)
        }
        var l = try await layout(segmented)
        #expect(l.segments == 3 && l.tableRows == 0 && l.blocks > 20)
        try await expectSameAnswers(table, segmented, pool)

        // Re-index two objects (one batch), quarantine one, remove one: the old entries are dead.
        let again: [(IndexedObject, PostingList)] = [
            (object("p0/o1", records: 40, version: "v2"), postings(&rng, records: 40, pool: pool)),
            (object("p2/o0", records: 900, version: "v2", dataset: "e"), postings(&rng, records: 900, pool: pool)),
        ]
        try await table.putIndexedObjects(flat: again)
        try await segmented.putIndexedObjects(flat: again)
        for s in [table, segmented] {
            var q = object("p1/o2", records: 0, version: "v9")
            q.status = .quarantined
            q.issue = "bad"
            try await s.quarantine(q)
            try await s.removeObjects(dataset: "d", keys: ["p1/o4"])
            try await s.removeObjects(dataset: "e", keys: ["p1/o3"])
        }
        try await expectSameAnswers(table, segmented, pool)

        // Derived entries on an object in a segment: small drops, then past the compaction bound.
        for s in [table, segmented] {
            let o = try #require(try await s.objects(dataset: "d").first { $0.key == "p0/o2" })
            var n = o
            n.version = "v1-a"
            n.records = o.records - 3
            _ = try #require(try await s.putDerivedObjects([(object: n, from: o.version, dropped: [0, 7, o.records - 1])])[0])
        }
        try await expectSameAnswers(table, segmented, pool)
        for s in [table, segmented] {
            let o = try #require(try await s.objects(dataset: "d").first { $0.key == "p0/o2" })
            var n = o
            n.version = "v1-b"
            let dropped = Array(stride(from: Int64(0), to: o.records, by: 2))
            n.records = o.records - Int64(dropped.count)
            _ = try #require(try await s.putDerivedObjects([(object: n, from: o.version, dropped: dropped)])[0])
        }
        try await expectSameAnswers(table, segmented, pool)
        // A derived object renamed (a Delta rewrite's new file takes the old one's entries).
        for s in [table, segmented] {
            let o = try #require(try await s.objects(dataset: "d").first { $0.key == "p2/o1" })
            var n = o
            n.key = "p2/o1-rewritten"
            n.version = "r1"
            n.records = o.records - 2
            _ = try #require(try await s.putDerivedObjects([(object: n, from: o.version, dropped: [1, 2], replacing: o.key)])[0])
        }
        try await expectSameAnswers(table, segmented, pool)

        // The purge merges every segment into one without the dead entries.
        _ = try await table.purgeDeadPostings(force: true)
        #expect(try await segmented.purgeDeadPostings(force: true) > 0)
        l = try await layout(segmented)
        let live = try await segmented.indexStats().postings
        #expect(l.segments == 1 && l.tableRows == 0)
        #expect(Int64(l.entries) == live)
        let dead = try await segmented.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dead_objects")! }
        #expect(dead == 0)
        try await expectSameAnswers(table, segmented, pool)

        // After the purge, new objects (ids may follow the purged ones) never see old entries.
        let late: [(IndexedObject, PostingList)] = (0..<3).map { i in (object("late/o\(i)", records: 300), postings(&rng, records: 300, pool: pool)) }
        try await table.putIndexedObjects(flat: late)
        try await segmented.putIndexedObjects(flat: late)
        try await expectSameAnswers(table, segmented, pool)

        // Reopened from its folder: the same answers.
        let reopened = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
        try await expectSameAnswers(table, reopened, pool)
    }

    @Test func segmentsOfATierMergeSoALookupReadsFew() async throws {
        let table = try SQLiteStateStore(inMemory: nil)
        let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var rng = SplitMix64(seed: 99)
        let pool = keyPool(&rng, 500)
        var counts: [Int] = []
        for batch in 0..<(PostingSegment.fanout + 5) {
            let b: [(IndexedObject, PostingList)] = (0..<2).map { i in
                (object("b\(batch)/o\(i)", records: 200), postings(&rng, records: 200, pool: pool))
            }
            try await table.putIndexedObjects(flat: b)
            try await segmented.putIndexedObjects(flat: b)
            let l = try await layout(segmented)
            #expect(l.segments < PostingSegment.fanout)  // small segments: one tier, merged at `fanout`
            counts.append(l.segments)
        }
        // One segment a batch until the tier is full, then its `fanout` segments merged into one.
        #expect(Array(counts.prefix(PostingSegment.fanout - 1)) == Array(1..<PostingSegment.fanout))
        #expect(counts[PostingSegment.fanout - 1] == 1)
        // Objects re-indexed: their dead entries leave at the next merge of their segment.
        let again: [(IndexedObject, PostingList)] = (0..<11).map { b in
            (object("b\(b)/o0", records: 10, version: "v2"), postings(&rng, records: 10, pool: pool))
        }
        try await table.putIndexedObjects(flat: again)
        try await segmented.putIndexedObjects(flat: again)
        try await expectSameAnswers(table, segmented, pool)
    }

    /// A backfill of many batches (fewer than a tier's `fanout`) merges nothing while it runs: one
    /// segment a batch, then the end of the pass merges them all at once into one segment that holds
    /// every live entry once and answers as a table-only store does.
    @Test func aBackfillOfManyBatchesEndsWithOneSegment() async throws {
        let table = try SQLiteStateStore(inMemory: nil)
        let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var rng = SplitMix64(seed: 1_616)
        let pool = keyPool(&rng, 5_000)
        let batches = PostingSegment.fanout - 2
        for batch in 0..<batches {
            let b: [(IndexedObject, PostingList)] = (0..<5).map { i in
                let n = Int64(100 + Int(rng.next() % 900))
                return (object("b\(batch)/o\(i)", records: n, dataset: i == 0 ? "e" : "d"), postings(&rng, records: n, pool: pool))
            }
            try await table.putIndexedObjects(flat: b)
            try await segmented.putIndexedObjects(flat: b)
            #expect(try await layout(segmented).segments == batch + 1)
        }
        // An object of an early batch indexed again within the pass: its old entries are dead.
        let again = [(object("b1/o2", records: 300, version: "v2"), postings(&rng, records: 300, pool: pool))]
        try await table.putIndexedObjects(flat: again)
        try await segmented.putIndexedObjects(flat: again)
        try await expectSameAnswers(table, segmented, pool)
        #expect(try await segmented.purgeDeadPostings(force: false) == 0)
        let l = try await layout(segmented)
        #expect(l.segments == 1 && l.tableRows == 0 && l.blocks > 1)
        // The merge freed its inputs' blocks with secure_delete off, and turned it back on.
        #expect(try segmented.pragma("secure_delete") == "1")
        // Every entry once: the dead object's old entries were left out by the merge.
        #expect(Int64(l.entries) == (try await segmented.indexStats().postings))
        try await expectSameAnswers(table, segmented, pool)
    }

    /// A merge of any number of inputs (the loser tree pads them to a power of two with exhausted ones):
    /// every live entry once, in (key, object) order across the whole output, a key's entries in one
    /// block, the dead ones (an object indexed again, a whole input's objects indexed again) left out —
    /// and `locate` answers as a table-only store does. Keys at the pool's edges (10-byte varint
    /// distances) and hot keys with many rows (encoded rows longer than 8 bytes) included.
    @Test func mergesOfAnyNumberOfInputsKeepEveryLiveEntryOnceInOrder() async throws {
        for inputs in [2, 3, 5, 8, 9, 14] {  // (with the segment of the objects indexed again: below `fanout`)
            let table = try SQLiteStateStore(inMemory: nil)
            let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
            var rng = SplitMix64(seed: UInt64(100 + inputs))
            let pool = keyPool(&rng, 400)
            for batch in 0..<inputs {
                var b: [(IndexedObject, PostingList)] = (0..<2).map { i in
                    let n = Int64(20 + Int(rng.next() % 600))
                    return (object("b\(batch)/o\(i)", records: n, dataset: i == 0 ? "e" : "d"), postings(&rng, records: n, pool: pool))
                }
                // A key of many far-apart rows: its encoded rows run longer than 8 bytes.
                var spread = PostingList()
                for j in 0..<12 { spread.append(pool[4 + batch], row: Int64(j * 400 + batch)) }
                b.append((object("b\(batch)/spread", records: 5_000), spread))
                try await table.putIndexedObjects(flat: b)
                try await segmented.putIndexedObjects(flat: b)
            }
            // Dead entries: one object of the first batch, and both of the last batch, indexed again
            // (their new entries in a segment of their own, merged too).
            let again: [(IndexedObject, PostingList)] = ["b0/o1", "b\(inputs - 1)/o0", "b\(inputs - 1)/o1"].map { key in
                (object(key, records: 30, version: "v2", dataset: key.hasSuffix("o0") ? "e" : "d"), postings(&rng, records: 30, pool: pool))
            }
            try await table.putIndexedObjects(flat: again)
            try await segmented.putIndexedObjects(flat: again)
            let ids = try await segmented.writer.read { db in try Int64.fetchAll(db, sql: "SELECT id FROM segments ORDER BY id") }
            #expect(ids.count == inputs + 1)
            try await segmented.writer.write { db in _ = try SQLiteStateStore.mergeSegments(db, ids) }
            let l = try await layout(segmented)
            #expect(l.segments == 1 && l.tableRows == 0)
            #expect(Int64(l.entries) == (try await segmented.indexStats().postings), "inputs \(inputs)")
            // Strictly ascending (key, object) from the first block to the last; no key split between blocks.
            let blocks = try await segmented.writer.read { db in try Data.fetchAll(db, sql: "SELECT data FROM segment_blocks ORDER BY last_k") }
            var previous: (key: Int64, object: Int64)? = nil
            var longRows = 0
            for data in blocks {
                var first = true
                try data.withUnsafeBytes { b in
                    try PostingSegment.forEach(b) { k, o, rows in
                        if let p = previous {
                            #expect(p.key < k || (p.key == k && p.object < o && !first), "inputs \(inputs)")
                        }
                        previous = (k, o)
                        first = false
                        if rows.count > 8 { longRows += 1 }
                        return true
                    }
                }
            }
            #expect(longRows > 0)
            try await expectSameAnswers(table, segmented, pool)
        }
    }

    /// A merge that fails part way (here a corrupt block of its last input, met after many entries
    /// were written) rolls back with its transaction: the input segments, their blocks and the
    /// objects' segments are as they were, and `locate` answers as before.
    @Test func aMergeThatFailsLeavesItsInputsIntact() async throws {
        let table = try SQLiteStateStore(inMemory: nil)
        let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var rng = SplitMix64(seed: 404)
        let pool = keyPool(&rng, 3_000)
        for batch in 0..<4 {
            let b: [(IndexedObject, PostingList)] = (0..<3).map { i in
                (object("b\(batch)/o\(i)", records: 800), postings(&rng, records: 800, pool: pool))
            }
            try await table.putIndexedObjects(flat: b)
            try await segmented.putIndexedObjects(flat: b)
        }
        func snapshot() async throws -> [String] {
            try await segmented.writer.read { db in
                try String.fetchAll(db, sql: "SELECT id || ':' || entries || ':' || blocks FROM segments ORDER BY id")
                    + String.fetchAll(db, sql: "SELECT segment || ':' || last_k || ':' || hex(data) FROM segment_blocks ORDER BY segment, last_k")
                    + String.fetchAll(db, sql: "SELECT id || ':' || coalesce(segment, '-') FROM objects ORDER BY id")
            }
        }
        // The last input's last block made unreadable (the merge reaches it only at its end).
        let last = try await segmented.writer.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM segments")! }
        try await segmented.writer.write { db in
            try db.execute(
                sql:
                    "UPDATE segment_blocks SET data = X'01' || substr(data, 2, 8) || X'FFFFFFFFFF' WHERE segment = ? AND last_k = (SELECT max(last_k) FROM segment_blocks WHERE segment = ?)",
                arguments: [last, last])
        }
        let before = try await snapshot()
        #expect(before.count > 8)
        await #expect(throws: LetheError.self) { try await segmented.purgeDeadPostings(force: false) }
        #expect(try await snapshot() == before)
        // Keys of the intact blocks answer as the table does (the corrupt block's keys are left out).
        let intactBelow: Int64 = try await segmented.writer.read { db in
            try #require(
                try Int64.fetchOne(
                    db, sql: "SELECT last_k FROM segment_blocks WHERE segment = ? ORDER BY last_k DESC LIMIT 1 OFFSET 1", arguments: [last]))
        }
        let corruptKeys = Set(pool.filter { $0 > intactBelow })
        try await expectSameAnswers(table, segmented, pool.filter { !corruptKeys.contains($0) }, stats: false)
    }

    /// An entry whose object id is `Int64.max` (the merge's mark of an exhausted input) is refused by
    /// name, not taken for the end of its input nor reported as a truncated entry.
    @Test func anEntryWithTheLargestObjectIdIsRefusedByName() async throws {
        let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var rng = SplitMix64(seed: 405)
        let pool = keyPool(&rng, 500)
        for batch in 0..<2 {
            let b: [(IndexedObject, PostingList)] = (0..<2).map { i in
                (object("b\(batch)/o\(i)", records: 300), postings(&rng, records: 300, pool: pool))
            }
            try await segmented.putIndexedObjects(flat: b)
        }
        // The last input's last block: its first entry (key delta 0) names object 2^63 - 1, no rows.
        let last = try await segmented.writer.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM segments")! }
        try await segmented.writer.write { db in
            try db.execute(
                sql:
                    "UPDATE segment_blocks SET data = X'01' || substr(data, 2, 8) || X'00FFFFFFFFFFFFFFFF7F00' WHERE segment = ? AND last_k = (SELECT max(last_k) FROM segment_blocks WHERE segment = ?)",
                arguments: [last, last])
        }
        let error = await #expect(throws: LetheError.self) { try await segmented.purgeDeadPostings(force: true) }
        #expect(error?.message.contains("object id is out of range") == true, "\(String(describing: error))")
    }

    /// The end of an index pass (`purgeDeadPostings(force: false)` with few dead postings) merges the
    /// segments into one when those besides the largest weigh an eighth of it, and leaves them otherwise.
    @Test func theEndOfAPassConsolidatesSegmentsThatWeighEnough() async throws {
        let table = try SQLiteStateStore(inMemory: nil)
        let segmented = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var rng = SplitMix64(seed: 7)
        let pool = keyPool(&rng, 2_000)
        func sizes() async throws -> [Int64] {
            try await segmented.writer.read { db in try Int64.fetchAll(db, sql: "SELECT entries FROM segments ORDER BY id") }
        }
        func add(_ name: String, objects: Int, records: Int64) async throws {
            let b: [(IndexedObject, PostingList)] = (0..<objects).map { i in
                (object("\(name)/o\(i)", records: records), postings(&rng, records: records, pool: pool))
            }
            try await table.putIndexedObjects(flat: b)
            try await segmented.putIndexedObjects(flat: b)
        }
        // A backfill: batches of a few tiers.
        for batch in 0..<6 { try await add("b\(batch)", objects: 3, records: 300) }
        #expect(try await sizes().count >= 2)
        #expect(try await segmented.purgeDeadPostings(force: false) == 0)
        #expect(try await sizes().count == 1)
        try await expectSameAnswers(table, segmented, pool)

        // Small refreshes: a segment is merged in only once the small ones weigh an eighth of the big one.
        var merged = false, kept = false
        for round in 0..<12 {
            try await add("r\(round)", objects: 2, records: 200)
            let before = try await sizes()
            let largest = before.max()!
            let rest = before.reduce(0, +) - largest
            _ = try await segmented.purgeDeadPostings(force: false)
            let after = try await sizes()
            if rest * 8 >= largest {
                #expect(after.count == 1)
                merged = true
            } else {
                #expect(after == before)
                kept = kept || before.count > 1
            }
            try await expectSameAnswers(table, segmented, pool)
        }
        #expect(merged && kept)
    }

    /// Batches' entries sorted with the buffers kept from the sort before (`TopBitsScratch`, as the batch
    /// writer does): arrays that grow and shrink (empty, one, a few, more than the bucket tables of the one
    /// before, fewer again) of uniform keys, a hot key's many entries and the edge keys, each in the order a
    /// plain sort gives, no entry lost or doubled.
    @Test func sortsWithKeptBuffersOrderEveryArray() throws {
        var rng = SplitMix64(seed: 23)
        var scratch = TopBitsScratch<BatchEntry>()
        for n in [0, 1, 5, 2_000, 150_000, 70, 100, 3, 300_000, 290_000, 1_000, 0, 40_000] {
            var entries: [BatchEntry] = []
            for i in 0..<n {
                let key: Int64 =
                    i % 97 == 0 ? [Int64.min, .max, 0, -1][i % 4] : i % 13 == 0 ? 42 : Int64(bitPattern: rng.next())
                entries.append(BatchEntry(key: key, object: Int64(rng.next() % 50), at: Int32(i)))
            }
            let want = entries.sorted(by: <)
            BatchEntry.sort(&entries, scratch: &scratch)
            #expect(entries.map(\.key) == want.map(\.key), "n \(n)")
            #expect(entries.map(\.object) == want.map(\.object), "n \(n)")
            #expect(Set(entries.map(\.at)).count == n, "n \(n): an entry lost or doubled")
        }
    }

    @Test func aBlockEndsOnlyWhereTheKeyChanges() throws {
        var w = PostingSegment.Writer()
        let rows = PostingCodec.encodeRows(Array(0..<Int64(400)))
        // One hot key in 40 objects (far more than a block's target), then others.
        try rows.withUnsafeBytes { r in
            for o in 1...40 { w.add(key: 5, object: Int64(o), rows: r) }
            for k in 6..<Int64(2_000) { w.add(key: k, object: 1, rows: UnsafeRawBufferPointer(rebasing: r[0..<1])) }
            w.close()
            let blocks = w.takeBlocks()
            #expect(blocks.count > 2)
            var seen = Set<Int64>()
            for b in blocks {
                var keys: [Int64] = []
                try b.data.withUnsafeBytes { d in
                    try PostingSegment.forEach(d) { k, _, _ in
                        keys.append(k)
                        return true
                    }
                }
                #expect(keys.last == b.lastKey && keys == keys.sorted())
                #expect(seen.isDisjoint(with: keys))
                seen.formUnion(keys)
            }
            #expect(blocks[0].lastKey == 5)
        }
    }

    @Test func aCorruptBlockIsReportedNotRead() async throws {
        let store = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        var list = PostingList()
        list.append(42, row: 0)
        try await store.putIndexedObjects(flat: [(object("a", records: 1), list)])
        #expect(try await store.locate(prefix: 42, dataset: nil).map(\.rows) == [[0]])
        try await store.writer.write { db in try db.execute(sql: "UPDATE segment_blocks SET data = X'01000000'") }
        await #expect(throws: LetheError.self) { try await store.locate(prefix: 42, dataset: nil) }
    }

    @Test func postingListsSortDeduplicateAndRejectNegativeRows() async throws {
        var l = PostingList()
        for (k, r) in [(5, 2), (3, 1), (5, 0), (3, 1), (-4, 7)] as [(Int64, Int64)] { l.append(k, row: r) }
        #expect(!l.isSorted)
        l.sort()
        #expect(l.pairs.map { [$0.key, $0.row] } == [[-4, 7], [3, 1], [5, 0], [5, 2]])
        #expect(l.dictionary == [-4: [7], 3: [1], 5: [0, 2]] && l.distinctKeys == 3)
        #expect(PostingList([1: [3, 1], 2: [0]]).dictionary == [1: [1, 3], 2: [0]])
        var bad = PostingList()
        bad.append(1, row: -1)
        let store = try SQLiteStateStore(inMemory: nil, segmentMinimum: 1)
        await #expect(throws: LetheError.self) { try await store.putIndexedObjects(flat: [(object("a", records: 1), bad)]) }
        #expect(try await store.indexStats().objects == 0)
    }

    /// A state written before segments (v13: postings in the table) opens; its postings are found;
    /// an object indexed again moves to a segment and its old rows go.
    @Test func aV13StateOpensAndItsObjectsMoveToSegments() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let old: [Int64: [Int64]] = [11: [0, 3], -7: [1], Int64.max: [2]]
        do {
            let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
            try SQLiteStateStore.migrator.migrate(pool, upTo: "v13-vault-prefix")
            try await pool.write { db in
                let buckets = Data(PostingCodec.encodeBuckets(old.keys))
                for (id, key) in [(Int64(1), "a"), (2, "b")] {
                    try db.execute(
                        sql: """
                            INSERT INTO objects(id, dataset, key, size, mtime, version, records, status, indexed_at, postings, buckets)
                            VALUES (?, 'd', ?, 100, 1, 'v1', 4, 'indexed', 1, ?, ?)
                            """, arguments: [id, key, old.count, buckets])
                    for (k, rows) in old {
                        try db.execute(
                            sql: "INSERT INTO postings(k, object, rows) VALUES (?, ?, ?)", arguments: [k, id, Data(PostingCodec.encodeRows(rows))])
                    }
                }
            }
        }
        let store = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
        for (k, rows) in old {
            #expect(try await store.locate(prefix: k, dataset: nil).map { "\($0.object.key):\($0.rows)" } == ["a:\(rows)", "b:\(rows)"])
        }
        var list = PostingList()
        list.append(11, row: 1)
        list.append(99, row: 0)
        try await store.putIndexedObjects(flat: [(object("a", records: 2, version: "v2"), list)])
        #expect(try await store.locate(prefix: 11, dataset: nil).map { "\($0.object.key):\($0.rows)" } == ["a:[1]", "b:[0, 3]"])
        #expect(try await store.locate(prefix: -7, dataset: nil).map(\.object.key) == ["b"])
        #expect(try await store.locate(prefix: 99, dataset: nil).map(\.object.key) == ["a"])
        let l = try await layout(store)
        #expect(l.segments == 1 && l.entries == 2 && l.tableRows == old.count)  // a's rows deleted, b's kept
    }
}

/// `PostingSegment.varint` (a block walk's reader) reads what `PostingCodec.readVarint` reads: the same
/// value, the same next index and the same error, for varints of every length, near a buffer's end
/// (the checked reader's side) and far from it (the unchecked side), truncated or overflowing.
@Suite struct BlockVarintTests {
    static func both(_ bytes: [UInt8], at start: Int) -> (checked: String, fast: String) {
        bytes.withUnsafeBytes { raw in
            func describe(_ read: (inout Int) throws -> UInt64) -> String {
                var i = start
                do {
                    let v = try read(&i)
                    return "\(v) next \(i)"
                } catch let e as LetheError {
                    return "error \(e.message)"
                } catch {
                    return "error \(error)"
                }
            }
            return (describe { try PostingCodec.readVarint(raw, &$0) }, describe { try PostingSegment.varint(raw, &$0) })
        }
    }

    @Test func sameValuesIndexesAndErrorsAsTheCheckedReader() {
        var values: [UInt64] = [
            0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, UInt64(1) << 42, (UInt64(1) << 56) - 1, UInt64(1) << 56, (UInt64(1) << 63) - 1, UInt64(1) << 63, .max,
        ]
        var g = SystemRandomNumberGenerator()
        for bits in 1...64 { values.append(UInt64.random(in: 0...UInt64.max, using: &g) >> UInt64(64 - bits)) }
        var cases = 0
        for v in values {
            var enc = [UInt8](repeating: 0, count: 10)
            var n = 0
            enc.withUnsafeMutableBytes { PostingCodec.putVarint(v, $0, &n) }
            let varint = Array(enc[0..<n])
            // Before it 0–2 bytes, after it 0–12: both sides of the nine bytes the unchecked reader needs.
            for lead in 0...2 {
                for tail in 0...12 {
                    let bytes = [UInt8](repeating: 0xAA, count: lead) + varint + [UInt8](repeating: 0x01, count: tail)
                    let (checked, fast) = Self.both(bytes, at: lead)
                    #expect(checked == fast, "value \(v), lead \(lead), tail \(tail)")
                    #expect(checked == "\(v) next \(lead + n)")
                    cases += 1
                }
            }
        }
        // Malformed: truncated, ten bytes overflowing, eleven bytes, a continuation to the end.
        let bad: [[UInt8]] = [
            [0x80], [0xFF, 0xFF], [UInt8](repeating: 0xFF, count: 9) + [0x02], [UInt8](repeating: 0xFF, count: 9) + [0x01],
            [UInt8](repeating: 0x80, count: 10) + [0x00], [UInt8](repeating: 0xFF, count: 12), [UInt8](repeating: 0x80, count: 9) + [0x00],
        ]
        for b in bad {
            for tail in [0, 1, 9, 12] {
                let bytes = b + [UInt8](repeating: 0x05, count: tail)
                let (checked, fast) = Self.both(bytes, at: 0)
                #expect(checked == fast, "bytes \(b), tail \(tail)")
                cases += 1
            }
        }
        #expect(cases > 1_000)
    }
}
