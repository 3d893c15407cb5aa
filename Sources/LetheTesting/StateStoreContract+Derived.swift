public import LetheCatalog
import LetheCore
import Testing

// Derived index entries (`SubjectIndexWriter.putDerivedObject`): what a store that derives must do.
// Every store the contract runs against derives (a store returning nil always would fail these).

extension StateStoreContract {
    /// Random postings over `records` rows: `keys` distinct prefixes drawn from a small range (so that
    /// objects share keys), each with 1–5 rows, rows shared between keys (prefix collisions).
    static func randomPostings(_ rng: inout SplitMix64, records: Int64, keys: Int) -> [Int64: [Int64]] {
        guard records > 0 else { return [:] }
        var out: [Int64: [Int64]] = [:]
        while out.count < keys {
            let k = Int64(rng.next() % 512) - 256
            var rows: [Int64] = []
            for _ in 0..<(1 + Int(rng.next() % 5)) { rows.append(Int64(rng.next() % UInt64(records))) }
            out[k] = Array(Set(rows)).sorted()
        }
        return out
    }

    /// What the store holds for `key` of `dataset`, by prefix, read with `locate(prefix:)` for every
    /// prefix of `universe`; checks `locate(prefixes:)` agrees.
    static func held(_ s: any StateStore, dataset: String, key: String, universe: [Int64]) async throws -> [Int64: [Int64]] {
        var out: [Int64: [Int64]] = [:]
        let many = try await s.index.locate(prefixes: universe, dataset: dataset)
        for k in universe {
            let one = try await s.index.locate(prefix: k, dataset: dataset)
            #expect(one.allSatisfy { !$0.rows.isEmpty }, "an empty posting for prefix \(k)")
            #expect((many[k] ?? []) == one, "locate(prefixes:) and locate(prefix:) differ for prefix \(k)")
            if let p = one.first(where: { $0.object.key == key }) { out[k] = p.rows }
        }
        return out
    }

    /// Derived entries read back as `PostingDerivation.derive` says, over random postings and dropped
    /// sets (seeded), through successive derivations of the same object (each in the numbering of the
    /// version before it), some dropping enough to make a store compact; another object holding the
    /// same prefixes is untouched; the object row describes the new version.
    public static func derivedEntriesReadBackAsDerivationSays(_ s: any StateStore) async throws {
        var rng = SplitMix64(seed: 0x1E7E_12)
        for round in 0..<8 {
            let dataset = "p\(round)"
            var records = Int64(1 + rng.next() % (round % 3 == 2 ? 1_500 : 300))
            let keys = Int(1 + rng.next() % UInt64(min(records, 200)))
            var expected = randomPostings(&rng, records: records, keys: keys)
            let neighbour = randomPostings(&rng, records: 50, keys: 40)
            var a = object(dataset, "\(dataset)/a", version: "v0")
            a.records = records
            var b = object(dataset, "\(dataset)/b")
            b.records = 50
            let batch = [(a, expected), (b, neighbour)]
            _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects(batch) }
            let universe = Array(Set(expected.keys).union(neighbour.keys)).sorted()
            for step in 1...(1 + Int(rng.next() % 5)) {
                // The rows of one key (a subject's records), plus some others; duplicates, any order.
                var dropped: [Int64] = expected.isEmpty ? [] : expected[Array(expected.keys).sorted()[Int(rng.next() % UInt64(expected.count))]]!
                let share: UInt64 = step % 3 == 0 ? 2 : 12  // every third step drops up to half the records
                if records > 0 {
                    for _ in 0..<Int(rng.next() % (UInt64(records) / share + 1)) { dropped.append(Int64(rng.next() % UInt64(records))) }
                }
                dropped.append(contentsOf: dropped.prefix(2))
                dropped.reverse()
                var next = a
                next.version = "v\(step)"
                next.size = a.size - 1
                next.modifiedNanos = a.modifiedNanos + 1
                next.indexedAt = a.indexedAt + 1
                next.records = PostingDerivation.records(old: records, dropped: dropped)
                let (from, new, d) = (a.version, next, dropped)
                let stored = try await s.transaction("t") { tx in try tx.index.putDerivedObject(new, from: from, dropped: d) }
                let derived = try #require(stored, "round \(round) step \(step): the store did not derive")
                #expect(derived.version == new.version && derived.records == new.records && derived.status == .indexed)
                expected = PostingDerivation.derive(old: expected, dropped: dropped)
                records = next.records
                a = derived
                let objects = try await s.index.objects(dataset: dataset)
                #expect(objects.count == 2)
                if let o = objects.first(where: { $0.key == a.key }) {
                    #expect(o.version == new.version && o.records == records && o.size == new.size && o.modifiedNanos == new.modifiedNanos)
                    #expect(o.id == derived.id)
                }
                let got = try await held(s, dataset: dataset, key: a.key, universe: universe)
                #expect(got == expected, "round \(round) step \(step): derived postings differ")
                #expect(try await held(s, dataset: dataset, key: b.key, universe: universe) == neighbour)
            }
        }
    }

    /// A store derives only from the version it holds, cleanly indexed, with a consistent record
    /// count and ordinals within the old records; else nil and nothing changes. A batch in one
    /// transaction derives what it can; a transaction that fails after a derivation leaves none.
    public static func derivedEntriesOnlyFromTheVersionHeld(_ s: any StateStore) async throws {
        var a = object("d", "d/a")
        a.records = 10
        let postings: [Int64: [Int64]] = [1: [0, 4], 2: [4, 9], 3: [7]]
        let first = a
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects([(first, postings), (object("d", "d/q"), [1: [1]])]) }
        var q = object("d", "d/q", version: "v2")
        q.issue = "cannot parse line 1"
        let bad = q
        _ = try await s.transaction("t") { tx in try tx.index.quarantine(bad) }
        func next(_ o: IndexedObject, records: Int64) -> IndexedObject {
            var n = o
            n.version = o.version + "+"
            n.records = records
            return n
        }
        let cases: [(IndexedObject, String, [Int64], String)] = [
            (next(a, records: 9), "v0", [4], "wrong from"),
            (next(object("d", "d/none"), records: 9), "v1", [4], "unknown object"),
            (next(object("e", "d/a"), records: 9), "v1", [4], "other dataset"),
            (next(q, records: 9), "v2", [4], "quarantined"),
            (next(a, records: 8), "v1", [4], "record count"),
            (next(a, records: 9), "v1", [10], "ordinal past the records"),
            (next(a, records: 9), "v1", [-1], "negative ordinal"),
        ]
        let universe: [Int64] = [1, 2, 3]
        for (o, from, dropped, why) in cases {
            let r = try await s.transaction("t") { tx in try tx.index.putDerivedObject(o, from: from, dropped: dropped) }
            #expect(r == nil, "\(why): derived")
            #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == postings, "\(why): postings changed")
            #expect(try await s.index.objects(dataset: "d").first { $0.key == "d/a" }?.version == "v1", "\(why): object changed")
        }
        #expect(try await s.index.quarantinedObjects().map(\.key) == ["d/q"])

        // A transaction failing after the derivation leaves nothing of it.
        let good = next(a, records: 9)
        await #expect(throws: Injected.self) {
            _ = try await s.transaction("t") { tx -> Bool in
                _ = try tx.index.putDerivedObject(good, from: "v1", dropped: [4])
                throw Injected()
            }
        }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == postings)
        #expect(try await s.index.objects(dataset: "d").first { $0.key == "d/a" }?.version == "v1")

        // A batch: what can be derived is, the rest is nil.
        let results = try await s.putDerivedObjects([
            (object: good, from: "v1", dropped: [4]), (object: next(q, records: 9), from: "v2", dropped: [0]),
        ])
        #expect(results.map { $0?.version } == ["v1+", nil])
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == [1: [0], 2: [8], 3: [6]])
        // The empty dropped list derives a new version with the same postings.
        let same = next(try #require(results[0]), records: 9)
        #expect(try await s.putDerivedObjects([(object: same, from: "v1+", dropped: [])]).first??.version == "v1++")
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == [1: [0], 2: [8], 3: [6]])
    }

    /// After a derivation, indexing the object again replaces its entries with exactly the new ones
    /// (nothing of the derivation applies to them), quarantine and removal hide it, compaction
    /// (`purgeDeadPostings(force: true)`) changes nothing that is read.
    public static func derivedObjectsReindexQuarantineAndRemoveCleanly(_ s: any StateStore) async throws {
        var a = object("d", "d/a")
        a.records = 10
        var b = object("d", "d/b")
        b.records = 10
        let pa: [Int64: [Int64]] = [1: [0, 4], 2: [4, 9], 3: [7], 5: [2]]
        let pb: [Int64: [Int64]] = [1: [3], 2: [5, 6]]
        let (a0, b0) = (a, b)
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects([(a0, pa), (b0, pb)]) }
        let universe: [Int64] = [1, 2, 3, 4, 5]
        func derive(_ o: IndexedObject, to version: String, dropped: [Int64]) async throws -> IndexedObject {
            var n = o
            n.version = version
            n.records = PostingDerivation.records(old: o.records, dropped: dropped)
            let (new, from) = (n, o.version)
            return try #require(try await s.transaction("t") { tx in try tx.index.putDerivedObject(new, from: from, dropped: dropped) })
        }
        a = try await derive(a, to: "v2", dropped: [4, 0])
        b = try await derive(b, to: "v2", dropped: [0])
        let da = PostingDerivation.derive(old: pa, dropped: [4, 0])
        let db = PostingDerivation.derive(old: pb, dropped: [0])
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == da)

        // Compaction: the same entries.
        _ = try await s.transaction("t") { tx in try tx.index.purgeDeadPostings(force: true) }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == da)
        #expect(try await held(s, dataset: "d", key: "d/b", universe: universe) == db)
        a = try await derive(a, to: "v3", dropped: [0])
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == PostingDerivation.derive(old: da, dropped: [0]))

        // Indexed again: exactly the new postings.
        let fresh: [Int64: [Int64]] = [1: [0, 1, 2], 4: [5]]
        var scanned = a
        scanned.version = "v4"
        scanned.records = 6
        let rescan = scanned
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects([(rescan, fresh)]) }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == fresh)
        a = try await derive(rescan, to: "v5", dropped: [1])
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == [1: [0, 1], 4: [4]])

        // Quarantined: hidden, not derivable; indexed again: back.
        var q = a
        q.version = "v6"
        q.issue = "cannot parse line 2"
        let bad = q
        _ = try await s.transaction("t") { tx in try tx.index.quarantine(bad) }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe).isEmpty)
        var again = q
        again.version = "v7"
        again.records = 6
        again.issue = nil
        let (after, v7) = (q, again)
        #expect(try await s.transaction("t") { tx in try tx.index.putDerivedObject(v7, from: after.version, dropped: [0]) } == nil)
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects([(v7, fresh)]) }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe) == fresh)

        // Removed: gone, and the other object's entries stay.
        _ = try await derive(v7, to: "v8", dropped: [0])
        try await s.transaction("t") { tx in try tx.index.removeObjects(dataset: "d", keys: ["d/a"]) }
        #expect(try await held(s, dataset: "d", key: "d/a", universe: universe).isEmpty)
        #expect(try await s.index.objects(dataset: "d").map(\.key) == ["d/b"])
        #expect(try await held(s, dataset: "d", key: "d/b", universe: universe) == db)
        _ = try await s.transaction("t") { tx in try tx.index.purgeDeadPostings(force: true) }
        #expect(try await held(s, dataset: "d", key: "d/b", universe: universe) == db)
        #expect(try await s.index.indexStats().objects == 1)
    }

    /// A replacement under a new key (`putDerivedObject(_:from:dropped:replacing:)`, a Delta table's
    /// rewritten file) takes the old key's entry: `locate` returns the new key with the derived rows
    /// and never the old key, through successive derivations and a compaction; it is refused (nil,
    /// nothing changed) when the old key is not held at `from` cleanly with the records the rewrite
    /// read, when the new key is held already, or for the same key; a failed transaction leaves
    /// the old key's entry.
    public static func derivedReplacementsTakeTheOldKeysEntry(_ s: any StateStore) async throws {
        var old = object("r", "r/part-0.parquet")
        old.records = 400
        var rng = SplitMix64(seed: 0x5EED_D)
        let postings = randomPostings(&rng, records: 400, keys: 150)
        let neighbour: [Int64: [Int64]] = [Array(postings.keys).sorted()[0]: [1, 2], 999: [0]]
        var other = object("r", "r/part-1.parquet")
        other.records = 3
        let (o0, n0) = (old, other)
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects([(o0, postings), (n0, neighbour)]) }
        let universe = Array(Set(postings.keys).union(neighbour.keys)).sorted()
        func replacement(_ key: String, _ version: String, records: Int64) -> IndexedObject {
            var n = object("r", key, version: version)
            n.records = records
            n.size = 77
            return n
        }
        func unchanged(_ why: String) async throws {
            #expect(try await held(s, dataset: "r", key: old.key, universe: universe) == postings, "\(why): postings changed")
            #expect(try await s.index.objects(dataset: "r").map(\.key) == [old.key, other.key], "\(why): objects changed")
        }
        // Refusals.
        let dropped: [Int64] = postings[Array(postings.keys).sorted()[3]]!
        let kept = PostingDerivation.records(old: 400, dropped: dropped)
        let refusals: [(IndexedObject, String, String, [Int64], String)] = [
            (replacement("r/new.parquet", "w1", records: kept), "v0", old.key, dropped, "wrong from"),
            (replacement("r/new.parquet", "w1", records: kept), "v1", "r/none.parquet", dropped, "unknown old key"),
            (replacement(other.key, "w1", records: kept), "v1", old.key, dropped, "new key held"),
            (replacement(old.key, "w1", records: kept), "v1", old.key, dropped, "same key"),
            (replacement("r/new.parquet", "w1", records: kept + 1), "v1", old.key, dropped, "record count"),
            (replacement("r/new.parquet", "w1", records: 399), "v1", old.key, [400], "ordinal past the records"),
        ]
        for (o, from, oldKey, d, why) in refusals {
            let r = try await s.transaction("t") { tx in try tx.index.putDerivedObject(o, from: from, dropped: d, replacing: oldKey) }
            #expect(r == nil, "\(why): derived")
            try await unchanged(why)
        }
        let first = replacement("r/new.parquet", "w1", records: kept)
        await #expect(throws: Injected.self) {
            _ = try await s.transaction("t") { tx -> Bool in
                _ = try tx.index.putDerivedObject(first, from: "v1", dropped: dropped, replacing: "r/part-0.parquet")
                throw Injected()
            }
        }
        try await unchanged("failed transaction")

        // Derived: the new key holds the derived rows, the old key nothing, the neighbour its own.
        let stored = try #require(try await s.putDerivedObjects([(object: first, from: "v1", dropped: dropped, replacing: old.key)])[0])
        #expect(stored.key == first.key && stored.version == "w1" && stored.records == kept && stored.status == .indexed)
        var expected = PostingDerivation.derive(old: postings, dropped: dropped)
        #expect(try await held(s, dataset: "r", key: first.key, universe: universe) == expected)
        #expect(try await held(s, dataset: "r", key: old.key, universe: universe).isEmpty)
        #expect(try await s.index.objects(dataset: "r").map(\.key) == [first.key, other.key])
        #expect(try await held(s, dataset: "r", key: other.key, universe: universe) == neighbour)
        #expect(try await s.index.indexStats().objects == 2)

        // Again, onto a third key, dropping enough to make a store compact.
        let many = Array(stride(from: Int64(0), to: kept, by: 2))
        let second = replacement("r/newer.parquet", "w2", records: PostingDerivation.records(old: kept, dropped: many))
        let again = try #require(try await s.putDerivedObjects([(object: second, from: "w1", dropped: many, replacing: first.key)])[0])
        #expect(again.key == second.key && again.records == second.records)
        expected = PostingDerivation.derive(old: expected, dropped: many)
        #expect(try await held(s, dataset: "r", key: second.key, universe: universe) == expected)
        #expect(try await held(s, dataset: "r", key: first.key, universe: universe).isEmpty)
        #expect(try await s.index.objects(dataset: "r").map(\.key) == [second.key, other.key])
        _ = try await s.transaction("t") { tx in try tx.index.purgeDeadPostings(force: true) }
        #expect(try await held(s, dataset: "r", key: second.key, universe: universe) == expected)

        // Removed: gone; the neighbour stays.
        try await s.transaction("t") { tx in try tx.index.removeObjects(dataset: "r", keys: [second.key]) }
        _ = try await s.transaction("t") { tx in try tx.index.purgeDeadPostings(force: true) }
        #expect(try await held(s, dataset: "r", key: second.key, universe: universe).isEmpty)
        #expect(try await held(s, dataset: "r", key: other.key, universe: universe) == neighbour)
    }
}
