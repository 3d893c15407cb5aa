import Testing
import GRDB
import LetheCore
@testable import LetheSQLite
import LetheCatalog

@Suite struct IndexTests {
    @Test func largeRemovedObjectsLeaveLocateAtOnceAndTheirPostingsAtThePurge() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let n = Int64(SQLiteStateStore.deferredPostings) + 5
        var big: [Int64: [Int64]] = [:]
        for k in 0..<n { big[k * 1_000_003] = [k] }
        let a = try await store.putIndexedObject(sampleObject("t", "big-a"), postings: big)
        let small = try await store.putIndexedObject(sampleObject("t", "small"), postings: [1_000_003: [9]])
        func rawPostings() async throws -> Int {
            try await store.read("count") { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM postings") ?? 0 }
        }
        #expect(try await rawPostings() == Int(n) + 1)
        try await store.removeObject(dataset: "t", key: "big-a")
        // Gone from locate and from the objects at once; its postings wait for the purge.
        #expect(try await store.locate(prefix: 1_000_003, dataset: nil) == [Posting(object: small, rows: [9])])
        #expect(try await store.objects(dataset: "t") == [small])
        #expect(try await rawPostings() == Int(n) + 1)
        // A new object never takes the dead object's id (its postings would join it).
        let b = try await store.putIndexedObject(sampleObject("t", "big-b"), postings: [7: [1]])
        #expect(b.id != a.id)
        #expect(try await store.locate(prefix: 1_000_003, dataset: nil).count == 1)
        // A large object indexed anew also leaves its old postings dead, under a new id.
        let b2 = try await store.putIndexedObject(sampleObject("t", "big-b", version: "v2"), postings: big)
        let b3 = try await store.putIndexedObject(sampleObject("t", "big-b", version: "v3"), postings: [7: [2]])
        #expect(b3.id != b2.id)
        #expect(try await store.locate(prefix: 7, dataset: nil).map(\.rows) == [[2]])
        #expect(try await store.locate(prefix: 1_000_003, dataset: nil).count == 1)
        // The purge deletes exactly the dead postings.
        #expect(try await store.purgeDeadPostings(force: false) == 2)  // dead (2n) outweigh a quarter of the live
        #expect(try await rawPostings() == 2)
        #expect(try await store.purgeDeadPostings(force: true) == 0)
        #expect(try await store.locate(prefix: 7, dataset: nil).map(\.rows) == [[2]])
    }

    @Test func putLocateAcrossDatasets() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let a = try await store.putIndexedObject(sampleObject("raw", "raw/a.jsonl"), postings: [10: [0, 3], 20: [1]])
        let b = try await store.putIndexedObject(sampleObject("silver", "silver/b.csv"), postings: [10: [7]])
        #expect(a.id != b.id)
        #expect(a.id > 0)

        let hits = try await store.locate(prefix: 10, dataset: nil)
        #expect(hits == [Posting(object: a, rows: [0, 3]), Posting(object: b, rows: [7])])
        #expect(try await store.locate(prefix: 10, dataset: "silver") == [Posting(object: b, rows: [7])])
        #expect(try await store.locate(prefix: 20, dataset: nil) == [Posting(object: a, rows: [1])])
        #expect(try await store.locate(prefix: 30, dataset: nil).isEmpty)
        #expect(try await store.locate(prefix: 20, dataset: "silver").isEmpty)

        #expect(try await store.objects(dataset: "raw") == [a])
        let stats = try await store.indexStats()
        #expect(stats.objects == 2 && stats.quarantined == 0 && stats.postings == 3)
    }

    @Test func rowsAreNormalizedAndNegativeRowsRefused() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let o = try await store.putIndexedObject(sampleObject("raw", "x"), postings: [1: [5, 2, 5, 0], 2: []])
        #expect(try await store.locate(prefix: 1, dataset: nil) == [Posting(object: o, rows: [0, 2, 5])])
        #expect(try await store.locate(prefix: 2, dataset: nil).isEmpty)
        #expect(try await store.indexStats().postings == 1)
        await #expect(throws: LetheError.self) {
            try await store.putIndexedObject(sampleObject("raw", "y"), postings: [1: [-1]])
        }
        // The failed put left nothing behind.
        #expect(try await store.objects(dataset: "raw").map(\.key) == ["x"])
    }

    @Test func replaceKeepsIdAndDropsOldPostingsOnly() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        // Keys that share one 24-bit bucket (and one shared key) between two objects,
        // plus keys at both ends of the signed range.
        let base: Int64 = 0x1234_5600_0000_0000
        let first = try await store.putIndexedObject(
            sampleObject("raw", "a"),
            postings: [base: [0], base + 1: [1], Int64.min: [2], Int64.max: [3], -1: [4]])
        let other = try await store.putIndexedObject(
            sampleObject("raw", "b"),
            postings: [base: [9], base + 2: [8], Int64.min: [7]])

        var next = sampleObject("raw", "a", records: 99, version: "v2")
        next.id = 12345  // ignored: the store keys objects by (dataset, key)
        let replaced = try await store.putIndexedObject(next, postings: [base + 3: [0, 1]])
        #expect(replaced.id == first.id)
        #expect(replaced.version == "v2" && replaced.records == 99)

        #expect(try await store.locate(prefix: base, dataset: nil) == [Posting(object: other, rows: [9])])
        #expect(try await store.locate(prefix: base + 1, dataset: nil).isEmpty)
        #expect(try await store.locate(prefix: Int64.min, dataset: nil) == [Posting(object: other, rows: [7])])
        #expect(try await store.locate(prefix: Int64.max, dataset: nil).isEmpty)
        #expect(try await store.locate(prefix: -1, dataset: nil).isEmpty)
        #expect(try await store.locate(prefix: base + 2, dataset: nil) == [Posting(object: other, rows: [8])])
        #expect(try await store.locate(prefix: base + 3, dataset: nil) == [Posting(object: replaced, rows: [0, 1])])
        #expect(try await store.indexStats().postings == 4)
        #expect(try await rawPostingCount(store) == 4)
    }

    @Test func removeAndQuarantine() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let a = try await store.putIndexedObject(sampleObject("raw", "a"), postings: [1: [0], 2: [1]])
        let b = try await store.putIndexedObject(sampleObject("raw", "b"), postings: [1: [5], 3: [2]])

        try await store.removeObject(dataset: "raw", key: "a")
        try await store.removeObject(dataset: "raw", key: "never-indexed")  // a no-op
        #expect(try await store.locate(prefix: 1, dataset: nil) == [Posting(object: b, rows: [5])])
        #expect(try await store.locate(prefix: 2, dataset: nil).isEmpty)
        #expect(try await store.objects(dataset: "raw").map(\.key) == ["b"])
        _ = a

        var bad = sampleObject("raw", "b")
        bad.issue = "gzip stream truncated at byte 812"
        let q = try await store.quarantine(bad)
        #expect(q.id == b.id)
        #expect(q.status == .quarantined)
        #expect(try await store.locate(prefix: 1, dataset: nil).isEmpty)
        #expect(try await store.locate(prefix: 3, dataset: nil).isEmpty)
        #expect(try await store.objects(dataset: "raw") == [q])
        var stats = try await store.indexStats()
        #expect(stats.objects == 1 && stats.quarantined == 1 && stats.postings == 0)
        #expect(try await rawPostingCount(store) == 0)

        // A quarantined object that is fixed and indexed again is no longer quarantined.
        let again = try await store.putIndexedObject(sampleObject("raw", "b"), postings: [4: [0]])
        #expect(again.id == b.id && again.status == .indexed && again.issue == nil)
        stats = try await store.indexStats()
        #expect(stats.objects == 1 && stats.quarantined == 0 && stats.postings == 1)

        // Quarantining something never seen records it.
        let fresh = try await store.quarantine(sampleObject("silver", "broken.parquet"))
        #expect(try await store.objects(dataset: "silver") == [fresh])
    }

    @Test func manyRandomObjectsStayConsistent() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var rng = SplitMix64(seed: 7)
        // A small key space so objects share keys and buckets.
        let keySpace = (0..<64).map { _ in Int64(bitPattern: rng.next() & 0xFFFF_FF00_0000_000F) }
        var truth: [String: [Int64: [Int64]]] = [:]
        for round in 0..<300 {
            let key = "obj-\(Int.random(in: 0..<20, using: &rng))"
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                try await store.removeObject(dataset: "d", key: key)
                truth[key] = nil
            case 1:
                try await store.quarantine(sampleObject("d", key))
                truth[key] = [:]
            default:
                var postings: [Int64: [Int64]] = [:]
                for _ in 0..<Int.random(in: 0..<10, using: &rng) {
                    postings[keySpace.randomElement(using: &rng)!, default: []].append(Int64(round))
                }
                try await store.putIndexedObject(sampleObject("d", key), postings: postings)
                truth[key] = postings.filter { !$0.value.isEmpty }
            }
        }
        for k in keySpace {
            let got = try await store.locate(prefix: k, dataset: "d").map { "\($0.object.key)=\($0.rows)" }
            let want = truth.keys.sorted().compactMap { key in truth[key]?[k].map { "\(key)=\(PostingCodec.normalizedRows($0)!)" } }
            #expect(got == want)
        }
        let expected = truth.values.reduce(0) { $0 + $1.count }
        #expect(try await store.indexStats().postings == Int64(expected))
        #expect(try await rawPostingCount(store) == Int64(expected))
    }

    func rawPostingCount(_ store: SQLiteStateStore) async throws -> Int64 {
        try await store.writer.read { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM postings") ?? -1 }
    }
}
