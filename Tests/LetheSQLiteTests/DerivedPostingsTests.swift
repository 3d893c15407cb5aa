import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// The SQLite side of derived index entries: a derivation writes one object row and no posting, its
/// dropped list accumulates in the postings' numbering, compaction rewrites the postings once the
/// list passes its bound (or on `purgeDeadPostings(force: true)`), and a v7 state opens.
@Suite struct DerivedPostingsTests {
    func object(_ key: String, records: Int64, version: String = "v1") -> IndexedObject {
        IndexedObject(dataset: "d", key: key, size: 100, modifiedNanos: 1, version: version, records: records, status: .indexed, indexedAt: 1)
    }

    /// (rows of the postings table, hash of their content, the `dropped` column of `key`).
    func raw(_ store: SQLiteStateStore, _ key: String) async throws -> (count: Int, content: Int, dropped: Data?) {
        try await store.writer.read { db in
            var hasher = Hasher()
            var n = 0
            for row in try Row.fetchAll(db, sql: "SELECT k, object, rows FROM postings ORDER BY k, object") {
                hasher.combine(row[0] as Int64)
                hasher.combine(row[1] as Int64)
                hasher.combine(row[2] as Data)
                n += 1
            }
            let dropped = try Data?.fetchOne(db, sql: "SELECT dropped FROM objects WHERE key = ?", arguments: [key]) ?? nil
            return (n, hasher.finalize(), dropped)
        }
    }

    func derive(_ store: SQLiteStateStore, _ o: IndexedObject, to version: String, dropped: [Int64]) async throws -> IndexedObject {
        var n = o
        n.version = version
        n.records = PostingDerivation.records(old: o.records, dropped: dropped)
        let new = n
        return try #require(try await store.putDerivedObjects([(object: new, from: o.version, dropped: dropped)])[0])
    }

    func held(_ store: SQLiteStateStore, _ keys: [Int64], object key: String) async throws -> [Int64: [Int64]] {
        var out: [Int64: [Int64]] = [:]
        for (k, ps) in try await store.locate(prefixes: keys, dataset: "d") {
            if let p = ps.first(where: { $0.object.key == key }) { out[k] = p.rows }
        }
        return out
    }

    @Test func aDerivationWritesNoPostingAndCompactsPastItsBound() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        var postings: [Int64: [Int64]] = [:]
        for k in 0..<Int64(1_000) { postings[k * 7_919] = [k] }  // one record a key
        let keys = Array(postings.keys)
        var a = try await store.putIndexedObject(object("d/a", records: 1_000), postings: postings)
        _ = try await store.putIndexedObject(object("d/b", records: 1_000), postings: postings)
        let before = try await raw(store, "d/a")
        #expect(before.count == 2_000 && before.dropped == nil)

        // Small derivations: the postings table is untouched, the dropped list accumulates.
        var expected = postings
        for dropped in [[0, 5, 999], [0], Array(stride(from: Int64(10), to: 200, by: 10))] as [[Int64]] {
            a = try await derive(store, a, to: a.version + "+", dropped: dropped)
            expected = PostingDerivation.derive(old: expected, dropped: dropped)
            let now = try await raw(store, "d/a")
            #expect(now.count == before.count && now.content == before.content)
            #expect(now.dropped != nil)
            #expect(try await held(store, keys, object: "d/a") == expected)
        }
        let list = try SQLiteStateStore.decodeDropped(try await raw(store, "d/a").dropped, object: a.id, path: "")
        #expect(list.first == 0 && list.count == 4 + 19)  // 0, 5, 999; then 1 (the new 0); then 19 in the old numbering
        #expect(list.contains(1) && list.contains(999))

        // Past a quarter of the records: compacted (emptied postings deleted, dropped cleared).
        a = try await derive(store, a, to: "big", dropped: Array(0..<Int64(300)))
        expected = PostingDerivation.derive(old: expected, dropped: Array(0..<Int64(300)))
        let after = try await raw(store, "d/a")
        #expect(after.dropped == nil && after.count == 1_000 + expected.count)
        #expect(try await held(store, keys, object: "d/a") == expected)
        #expect(try await held(store, keys, object: "d/b") == postings)
        #expect(try await store.indexStats().postings == Int64(1_000 + expected.count))

        // `purgeDeadPostings(force: true)` compacts too.
        a = try await derive(store, a, to: "next", dropped: [3])
        #expect(try await raw(store, "d/a").dropped != nil)
        _ = try await store.purgeDeadPostings(force: true)
        expected = PostingDerivation.derive(old: expected, dropped: [3])
        #expect(try await raw(store, "d/a").dropped == nil)
        #expect(try await held(store, keys, object: "d/a") == expected)
        #expect(try await store.objects(dataset: "d").first { $0.key == "d/a" }?.version == "next")
    }

    /// An object of more postings than `deferredPostings` compacts under a new id (its old postings dead).
    @Test func aLargeDerivedObjectCompactsUnderANewID() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let n = Int64(SQLiteStateStore.deferredPostings) + 500
        var postings: [Int64: [Int64]] = [:]
        for k in 0..<n { postings[k &* 0x1E37_79B9_7F4A_7C15] = [k] }
        let a = try await store.putIndexedObject(object("d/a", records: n), postings: postings)
        let dropped = Array(stride(from: Int64(0), to: n, by: 3))  // a third: past the bound
        let d = try await derive(store, a, to: "v2", dropped: dropped)
        #expect(d.id != a.id)
        let expected = PostingDerivation.derive(old: postings, dropped: dropped)
        let sample = Array(postings.keys.sorted().prefix(3_000))
        #expect(try await held(store, sample, object: "d/a") == expected.filter { sample.contains($0.key) })
        _ = try await store.purgeDeadPostings(force: true)
        #expect(try await store.indexStats().postings == Int64(expected.count))
        #expect(try await raw(store, "d/a").count == expected.count)
    }

    /// Compaction bounds: a quarter of the records (from 64 ordinals), else 16,384 ordinals (1/64 of a
    /// large object's records, at most 65,536).
    @Test func compactionBounds() {
        #expect(!SQLiteStateStore.needsCompaction(dropped: 63, records: 100))
        #expect(SQLiteStateStore.needsCompaction(dropped: 64, records: 255))
        #expect(!SQLiteStateStore.needsCompaction(dropped: 64, records: 256))
        #expect(SQLiteStateStore.needsCompaction(dropped: 16_385, records: 1_000_000))
        #expect(!SQLiteStateStore.needsCompaction(dropped: 20_000, records: 3_200_000))
        #expect(SQLiteStateStore.needsCompaction(dropped: 50_001, records: 3_200_000))
        #expect(!SQLiteStateStore.needsCompaction(dropped: 65_536, records: 100_000_000))
        #expect(SQLiteStateStore.needsCompaction(dropped: 65_537, records: 100_000_000))
    }

    /// A damaged dropped list fails the read as corrupt, naming the object and the field.
    @Test func aDamagedDroppedListIsCorrupt() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let a = try await store.putIndexedObject(object("d/a", records: 3), postings: [7: [0, 2]])
        _ = try await derive(store, a, to: "v2", dropped: [1])
        try await store.tamper("UPDATE objects SET dropped = X'FF' WHERE key = 'd/a'")
        do {
            _ = try await store.locate(prefix: 7, dataset: nil)
            Issue.record("a damaged dropped list was read")
        } catch let e as LetheError {
            #expect(e.code == .corrupt && e.message.contains("dropped rows of object \(a.id)"))
        }
    }

    /// The pure ordinal arithmetic against a brute force.
    @Test func remapAndLiftAgreeWithABruteForce() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            let n = Int64(1 + rng.next() % 60)
            let all = Array(0..<n)
            let earlier = all.filter { _ in rng.next() % 4 == 0 }
            let survivors = all.filter { !earlier.contains($0) }
            let current = Array(0..<Int64(survivors.count)).filter { _ in rng.next() % 3 == 0 }
            #expect(SQLiteStateStore.lift(current, through: earlier) == current.map { survivors[Int($0)] })
            let rows = all.filter { _ in rng.next() % 2 == 0 }
            let brute = rows.filter { !earlier.contains($0) }.map { r in r - Int64(earlier.filter { $0 < r }.count) }
            #expect(SQLiteStateStore.remap(rows, dropped: earlier) == brute)
            let lifted = SQLiteStateStore.lift(current, through: earlier)
            #expect(SQLiteStateStore.merge(earlier, lifted) == (earlier + lifted).sorted())
        }
    }

    /// A state written before v8 opens: its objects have no dropped list, their postings read as
    /// written, and they derive.
    @Test func aV7StateOpensAndDerives() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
            try SQLiteStateStore.migrator.migrate(pool, upTo: "v7-index-cost")
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO objects(id, dataset, key, size, mtime, version, records, status, indexed_at, postings, buckets)
                        VALUES (1, 'd', 'd/a', 10, 1, 'v1', 3, 'indexed', 1, 1, ?)
                        """, arguments: [Data(PostingCodec.encodeBuckets([Int64(42)]))])
                try db.execute(
                    sql: "INSERT INTO postings(k, object, rows) VALUES (42, 1, ?)", arguments: [Data(PostingCodec.encodeRows([0, 2]))])
            }
        }
        let store = try SQLiteStateStore(folder: folder)
        #expect(try await store.locate(prefix: 42, dataset: nil).map(\.rows) == [[0, 2]])
        let a = try #require(try await store.objects(dataset: "d").first)
        _ = try await derive(store, a, to: "v2", dropped: [1])
        #expect(try await store.locate(prefix: 42, dataset: nil).map(\.rows) == [[0, 1]])
        _ = try await derive(store, try #require(try await store.objects(dataset: "d").first), to: "v3", dropped: [0])
        #expect(try await store.locate(prefix: 42, dataset: nil).map(\.rows) == [[0]])
    }
}
