import Foundation
import Testing
import LetheCatalog
import LetheCore
import LetheStorage
import LetheTesting
@testable import LetheFormats
@testable import Parquet

// Issue 12 part B, "no second scan": an erase reports the ordinals it dropped, so the index entries of
// the rewritten object can be derived from the old ones; with the index's hint it keys only the hinted rows.

// MARK: PostingDerivation

@Test func derivationRemovesDroppedRowsAndShiftsTheSurvivors() {
    let old: [Int64: [Int64]] = [1: [0, 3, 7], 2: [1, 2], 3: [4], 4: [5, 6, 9]]
    let derived = PostingDerivation.derive(old: old, dropped: [2, 4, 6, 4])
    // Old rows 0 1 3 5 7 8 9 survive as 0 1 2 3 4 5 6.
    #expect(derived == [1: [0, 2, 4], 2: [1], 4: [3, 6]])
    #expect(PostingDerivation.records(old: 10, dropped: [2, 4, 6, 4]) == 7)
}

@Test func aCollidingPostingKeepsItsOtherRows() {
    // Two subjects share a 64-bit prefix: one posting holds both subjects' rows; dropping one
    // subject's rows leaves the other's, renumbered.
    let derived = PostingDerivation.derive(old: [42: [1, 5, 8]], dropped: [5])
    #expect(derived == [42: [1, 7]])
    #expect(PostingDerivation.derive(old: [42: [5]], dropped: [5]).isEmpty)
    #expect(PostingDerivation.derive(old: [42: [0, 1]], dropped: []) == [42: [0, 1]])
}

// MARK: Fixtures

/// The fixtures of the contract suite these tests run on (jsonl, jsonl.gz, csv, csv.gz, parquet).
let eraseFixtures = FormatFixture.all

/// `count` records over `subjects` subjects, seeded.
func fixtureRecords(_ count: Int, subjects: Int, seed: UInt64) -> [FixtureRecord] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { i in FixtureRecord("u\(rng.next(subjects))", "n\(i)") }
}

func fixtureStore(_ fixture: FormatFixture, _ records: [FixtureRecord]) async throws -> FaultInjectingStore {
    let store = FaultInjectingStore()
    store.set(fixture.key, try await fixture.encode(records))
    return store
}

/// The object's postings (key prefix → rows) and record count, by a scan.
func postings(_ fixture: FormatFixture, _ store: any ObjectStore) async throws -> (postings: [Int64: [Int64]], records: Int64, hint: EraseHint) {
    let info = try #require(try await store.head(fixture.key))
    var out: [Int64: [Int64]] = [:]
    var byKey: [SubjectKey: [Int64]] = [:]
    let summary = try await fixture.format.scan(info, in: store, options: fixture.options, keyer: SubjectKeyer(hasher: hasher)) { row, k in
        out[k.prefix64, default: []].append(row)
        byKey[k, default: []].append(row)
    }
    return (out, summary.records, EraseHint(version: info.version, rows: byKey))
}

func erase(
    _ fixture: FormatFixture, _ store: any ObjectStore, dropping subjects: [String], hint: EraseHint?,
    format: (any RecordFormat)? = nil
) async throws -> EraseOutcome {
    let info = try #require(try await store.head(fixture.key))
    return try await (format ?? fixture.format).erase(
        info, in: store, options: fixture.options, keyer: SubjectKeyer(hasher: hasher),
        drop: Set(subjects.map { key($0) }), hint: hint)
}

// MARK: Derivation equals a scan

@Test(arguments: eraseFixtures)
func derivedPostingsEqualAFreshScan(_ fixture: FormatFixture) async throws {
    var rng = SplitMix64(seed: 12)
    for round in 0..<6 {
        let records = fixtureRecords(90, subjects: 14, seed: 100 + UInt64(round))
        let store = try await fixtureStore(fixture, records)
        let before = try await postings(fixture, store)
        let drop = (0..<(1 + rng.next(4))).map { _ in "u\(rng.next(14))" }
        let outcome = try await erase(fixture, store, dropping: drop, hint: round % 2 == 0 ? nil : before.hint)
        #expect(outcome.exact, "\(fixture.name) round \(round)")
        let expected = records.indices.filter { drop.contains(records[$0].subject) }.map(Int64.init)
        #expect(outcome.droppedOrdinals == expected, "\(fixture.name) round \(round)")
        guard !outcome.removed else { continue }
        let after = try await postings(fixture, store)
        #expect(
            PostingDerivation.derive(old: before.postings, dropped: outcome.droppedOrdinals) == after.postings,
            "\(fixture.name) round \(round): derived postings differ from a scan of the rewritten object")
        #expect(PostingDerivation.records(old: before.records, dropped: outcome.droppedOrdinals) == after.records)
    }
}

// MARK: Hinted erase

@Test(arguments: eraseFixtures)
func hintedEraseDropsExactlyWhatTheFullEraseDrops(_ fixture: FormatFixture) async throws {
    var rng = SplitMix64(seed: 7)
    for round in 0..<5 {
        let records = fixtureRecords(80, subjects: 10, seed: 200 + UInt64(round))
        let full = try await fixtureStore(fixture, records), hinted = try await fixtureStore(fixture, records)
        let hint = try await postings(fixture, hinted).hint
        // Some dropped subjects may be absent from the object (no hinted row).
        let drop = (0..<(1 + rng.next(3))).map { _ in "u\(rng.next(12))" }
        let a = try await erase(fixture, full, dropping: drop, hint: nil)
        let b = try await erase(fixture, hinted, dropping: drop, hint: hint)
        #expect(a == b, "\(fixture.name) round \(round)")
        #expect(full.get(fixture.key) == hinted.get(fixture.key), "\(fixture.name) round \(round): the objects written differ")
    }
}

@Test(arguments: eraseFixtures)
func aStaleHintIsIgnored(_ fixture: FormatFixture) async throws {
    let records = fixtureRecords(60, subjects: 8, seed: 3)
    let store = try await fixtureStore(fixture, records)
    let info = try #require(try await store.head(fixture.key))
    // A hint made from another version that names none of the subject's rows: followed, it would drop nothing.
    let stale = EraseHint(version: info.version + "-older", rows: [key("u1"): []])
    let outcome = try await erase(fixture, store, dropping: ["u1"], hint: stale)
    let expected = records.indices.filter { records[$0].subject == "u1" }.map(Int64.init)
    #expect(!expected.isEmpty)
    #expect(outcome.droppedOrdinals == expected)
    #expect(outcome.droppedTotal == Int64(expected.count))
}

@Test(arguments: ["jsonl", "csv"])
func aHintedLineEraseParsesOnlyTheHintedRecords(_ kind: String) async throws {
    // A record the hint does not name is copied unparsed: a broken line after it does not stop the
    // hinted erase, which the full erase refuses.
    let (text, format, opts): (String, any RecordFormat, FormatOptions) =
        kind == "jsonl"
        ? ("{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n{\"id\": broken\n{\"id\":\"a\"}\n", JSONLinesFormat(), options("id"))
        : ("id,n\na,1\n\nb,2\nb,3,too,many\na,4\n", CSVFormat(), options("id"))
    let store = FaultInjectingStore()
    store.set("o." + kind, text.bytes)
    let info = try #require(try await store.head("o." + kind))
    let keyer = SubjectKeyer(hasher: hasher)
    let full = await letheError { _ = try await format.erase(info, in: store, options: opts, keyer: keyer, drop: [key("a")], hint: nil) }
    #expect(full?.code == .corrupt)
    let hint = EraseHint(version: info.version, rows: [key("a"): [0, 3]])
    let outcome = try await format.erase(info, in: store, options: opts, keyer: keyer, drop: [key("a")], hint: hint)
    #expect(outcome.droppedOrdinals == [0, 3])
    #expect(outcome.kept == 2)
    let expected = kind == "jsonl" ? "\n{\"id\":\"b\"}\n{\"id\": broken\n" : "id,n\n\nb,2\nb,3,too,many\n"
    #expect(store.get("o." + kind) == expected.bytes)
}

@Test func aHintedParquetEraseKeysAtMostTheHintedRows() async throws {
    let fixture = try #require(FormatFixture.all.first { $0.name == "parquet" })
    let records = fixtureRecords(400, subjects: 50, seed: 9)
    let full = try await fixtureStore(fixture, records), hinted = try await fixtureStore(fixture, records)
    let hint = try await postings(fixture, hinted).hint
    let counting = { () -> (ParquetFormat, KeyedRowCounter) in
        var f = ParquetFormat()
        let c = KeyedRowCounter()
        f.keyedRows = c
        return (f, c)
    }
    let (fullFormat, fullCount) = counting(), (hintedFormat, hintedCount) = counting()
    let a = try await erase(fixture, full, dropping: ["u3"], hint: nil, format: fullFormat)
    let b = try await erase(fixture, hinted, dropping: ["u3"], hint: hint, format: hintedFormat)
    #expect(a == b)
    let hintedRows = hint.ordinals(of: [key("u3")]).count
    #expect(hintedRows > 0)
    #expect(fullCount.count == records.count)
    #expect(hintedCount.count <= hintedRows)
}

// MARK: Tail carry

@Test func aTailCarriedEraseIsNotDerived() async throws {
    let root = NSTemporaryDirectory() + "lethe-derive-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let original = "{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}\n{\"id\":\"u-1\"}\n"
    _ = FileManager.default.createFile(atPath: root + "/a.jsonl", contents: Data(original.utf8))
    let store = LateAppenderStore(inner: LocalObjectStore(root: root), late: ["{\"id\":\"u-3\"}\n".bytes])
    let info = try #require(try await store.head("a.jsonl"))
    let outcome = try await JSONLinesFormat().erase(
        info, in: store, options: options("id"), keyer: SubjectKeyer(hasher: hasher),
        drop: [key("u-1")], hint: nil)
    #expect(try await store.read("a.jsonl") == "{\"id\":\"u-2\"}\n{\"id\":\"u-3\"}\n".bytes)
    #expect(!outcome.exact, "a carried tail adds records the derivation does not know")

    // Without a late writer the same erase is exact.
    let plain = LocalObjectStore(root: root)
    _ = FileManager.default.createFile(atPath: root + "/b.jsonl", contents: Data(original.utf8))
    let b = try #require(try await plain.head("b.jsonl"))
    let exact = try await JSONLinesFormat().erase(b, in: plain, options: options("id"), keyer: SubjectKeyer(hasher: hasher), drop: [key("u-1")])
    #expect(exact.exact)
    #expect(exact.droppedOrdinals == [0, 2])
}
