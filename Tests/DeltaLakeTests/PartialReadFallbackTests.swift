import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
@testable import Parquet
import Synchronization

// An erasure reads only part of a file when it can (the footer, the ranges the selection names, then
// all but the row groups it copies unread), and does the work again on the whole file when the
// selection or the rewrite reads outside the bytes it fetched. These tests drive each fallback with a
// file delta-rs wrote (4 row groups of 2,000 rows, bloom filters and page indexes, one subject row in
// row group 2; `scripts/delta_relaid.py`), left as written or re-laid byte for byte in a layout that
// puts what the rewrite reads inside the byte range of a row group it copies unread:
//   (a) the selection reads a row group the partial read did not fetch (as-written),
//   (b) the rewrite reads the page indexes of the row groups it copies, which lie inside their ranges (inline),
//   (c) the same file's rewrite on several threads (chunkWorkers 2) reads the chunks of the row group that
//       loses its row, which lie inside the other row groups' ranges (by-column), or its old column index,
//       which lies inside row group 0's (in-group-0).
// Each checks, against the same erasure done on the whole file (`reading: nil`) of a copy of the table,
// that the replacement is the same bytes, that delta-rs reads every other row as before and not the
// subject's, that the fallback happened (the store saw the whole file read after the ranged reads),
// and that no byte of the subject's value is left in the replacement.

func relaidPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_relaid.py")] + args, what: "delta_relaid.py \(args.joined(separator: " "))")
}

/// A local store that records the reads of the table's data files (nil: the whole file).
final class ReadLogStore: ForwardingLocalStore {
    let base: LocalObjectStore
    let log = Mutex<[Range<Int64>?]>([])
    init(_ base: LocalObjectStore) { self.base = base }

    var reads: [Range<Int64>?] { log.withLock { $0 } }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        if key.hasSuffix(".parquet") && !key.contains("_delta_log/") { log.withLock { $0.append(range) } }
        return try await base.read(key, range: range, ifVersion: ifVersion)
    }
    func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        try await base.openWrite(key, precondition: precondition, durability: durability)
    }
    func makeDurable(_ writers: [any ObjectWriteStream]) async throws { try await base.makeDurable(writers) }
    func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] { try await base.commit(writers) }
}

/// A one-file table of `delta_relaid.py make DIR LAYOUT`.
struct RelaidTable {
    var dir: String
    var store: ReadLogStore
    var table: DeltaTable
    var snap: Snapshot
    /// The data file's log path.
    var path: String
    var root: String { dir + "/t" }

    init(_ layout: String) async throws {
        dir = tempDir()
        _ = try relaidPy(["make", dir, layout])
        store = ReadLogStore(LocalObjectStore(root: dir))
        table = DeltaTable(store: store, root: "t")
        snap = try await table.snapshot()
        #expect(snap.files.count == 1)
        path = snap.files.keys.first!
    }

    /// The table's rows as delta-rs reads them, "user_id|n|pad", by n.
    func rows() throws -> [String] {
        let rows = try JSONSerialization.jsonObject(with: Data(try relaidPy(["rows", root]).utf8)) as! [[Any]]
        return rows.map { r in r.map { "\($0)" }.joined(separator: "|") }
    }
}

/// The subject's value, in row 4321 (row group 2) of the fixture.
let relaidSubject = "target-0"

/// The file's rows (of the row groups `groups`) whose user_id is the subject's.
func subjectRows(_ file: ParquetFile, groups: [Int]) throws -> [Int64] {
    var out: [Int64] = []
    for g in groups {
        let data = try file.readColumn(0, rowGroup: g)
        guard case .byteArray(let v) = data.values, v.count == Int(file.rowGroups[g].numRows) else {
            throw LetheError(.corrupt, "user_id of row group \(g) is not one string a row")
        }
        for i in 0..<v.count where Array(v[i]) == Array(relaidSubject.utf8) { out.append(file.rowGroupFirstRow[g] + Int64(i)) }
    }
    return out
}

/// Erases the subject's row the way `DeltaTable.erase` does, with `workers` rewrite tasks (one file:
/// `workers` threads for its columns): the result and the replacement's bytes.
func eraseSubject(
    _ t: RelaidTable, reading: (@Sendable (String, ParquetFile) throws -> [Range<Int64>]?)?,
    selecting: @escaping @Sendable (String, ParquetFile) throws -> [Int64], workers: Int
) async throws -> (DeltaEraseResult, [UInt8]) {
    let table = t.table
    let batch = try await t.table.rewriteAll(
        [PendingRewrite(path: t.path, add: try #require(t.snap.files[t.path]))],
        select: { path, add in try await table.rewriteJob(path, add, reading: reading, selecting: selecting) },
        changeDataFeed: false, now: 1, written: WrittenKeys(), workers: workers
    ) { _ in nil }.batch
    let result = try await t.table.commitErasure(batch, on: t.snap, operationParameters: [:], now: 1, maxAttempts: 1)
    #expect(result.removed == [t.path] && result.droppedRows == 1 && result.keptRows == 7_999)
    let added = try #require(result.added.first, "no replacement: the subject's row was not found")
    return (result, try await t.store.base.read(t.table.key(forLogPath: added.path)))
}

/// What every fallback test checks once the erasure is committed: delta-rs reads the table (a valid
/// log) with every row but the subject's as before; Lethe reads the new version; the replacement is
/// the bytes the whole-file erasure of a copy of the table wrote, holds no byte of the subject's value
/// (the original file does), and keeps every chunk's page indexes, and its bloom filter where its row
/// group was copied.
func checkErased(_ t: RelaidTable, before: [String], replacement: [UInt8], layout: String, workers: Int) async throws {
    let after = try t.rows()
    #expect(after == before.filter { !$0.hasPrefix(relaidSubject + "|") })
    #expect(after.count == 7_999 && before.count == 8_000)
    let snap = try await t.table.snapshot()
    #expect(snap.version == 1 && snap.files.count == 1)
    try t.table.checkReadable(snap)

    let original = try await t.store.base.read(t.table.key(forLogPath: t.path))
    let originalHolds = holds(original, relaidSubject), replacementHolds = holds(replacement, relaidSubject)
    #expect(originalHolds)
    #expect(!replacementHolds, "the replacement still holds the subject's value")

    let reference = try await RelaidTable(layout)
    defer { try? FileManager.default.removeItem(atPath: reference.dir) }
    let (_, whole) = try await eraseSubject(
        reference, reading: nil, selecting: { _, f in try subjectRows(f, groups: Array(0..<f.rowGroups.count)) }, workers: workers)
    let same = replacement == whole
    if !same, let dump = ProcessInfo.processInfo.environment["LETHE_FALLBACK_DUMP"] {
        try Data(replacement).write(to: URL(fileURLWithPath: dump + "/\(layout)-partial.parquet"))
        try Data(whole).write(to: URL(fileURLWithPath: dump + "/\(layout)-whole.parquet"))
    }
    #expect(same, "the fallback's replacement differs from the whole-file erasure's")

    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data(replacement).write(to: URL(fileURLWithPath: dir + "/r.parquet"))
    let indexes = try JSONSerialization.jsonObject(with: Data(try relaidPy(["indexes", dir + "/r.parquet"]).utf8)) as! [[[Bool]]]
    for (g, columns) in indexes.enumerated() {
        for (c, has) in columns.enumerated() {
            #expect(has == [true, true, g != 2], "row group \(g) column \(c): column index, offset index, bloom filter \(has)")
        }
    }
}

func holds(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard haystack.count >= n.count else { return false }
    return (0...(haystack.count - n.count)).contains { i in haystack[i] == n[0] && Array(haystack[i..<(i + n.count)]) == n }
}

/// The reads of the data file show one whole read, the last one, after `ranged` ranged reads at least.
func checkWholeReadLast(_ reads: [Range<Int64>?], ranged: Int) {
    #expect(reads.filter { $0 == nil }.count == 1, "\(reads)")
    #expect(reads.last == .some(nil), "the whole file is not the last read: \(reads)")
    #expect(reads.dropLast().count >= ranged, "\(reads)")
}

@Test func aSelectionThatReadsOutsideTheRangesNamedIsDoneAgainOnTheWholeFile() async throws {
    // The ranges name the subject chunk of row group 0 (a stale index, say); the selection keys every
    // row group's, reading row groups 1–3 the partial read did not fetch.
    // Selected twice (the partial file, then the whole one); the rewrite reads nothing more.
    try await expectRedoneOnTheWholeFile(
        "as-written", named: 0, select: { f in try subjectRows(f, groups: Array(0..<f.rowGroups.count)) }, selections: 2, workers: 1, ranged: 3)
}

@Test func aSelectionThatCatchesAReadOutsideTheRangesNamedIsDoneAgainOnTheWholeFile() async throws {
    // The same, with a selection that skips a row group it cannot read (it catches the error): its
    // answer on the partial file misses the subject's row; the read outside was seen all the same.
    try await expectRedoneOnTheWholeFile(
        "as-written", named: 0, select: { f in f.rowGroups.indices.flatMap { g in (try? subjectRows(f, groups: [g])) ?? [] } }, selections: 2,
        workers: 1, ranged: 3)
}

@Test func onlyRowGroupsWithGapsBetweenTheirChunksAreCopiedChunkByChunk() async throws {
    // delta-rs lays a row group's chunks end to end (its range is copied whole); the other layouts
    // leave gaps (page indexes and bloom filters, other row groups' chunks) in some row groups' ranges.
    let layouts: [(String, Set<Int>)] = [("as-written", []), ("inline", [0, 1, 2, 3]), ("by-column", [0, 1, 2, 3]), ("in-group-0", [0])]
    for (layout, expected) in layouts {
        let t = try await RelaidTable(layout)
        defer { try? FileManager.default.removeItem(atPath: t.dir) }
        let bytes = try await t.store.base.read(t.table.key(forLogPath: t.path))
        #expect(try ParquetFile(bytes: bytes).rowGroupsWithGaps() == expected, "\(layout)")
    }
}

/// Erases the subject of the table re-laid as `layout`, the partial read naming only the subject
/// chunk of row group `named`, the selection `select` (counted: `selections` calls expected), the
/// rewrite on `workers` threads; the store's reads must end with the whole file (after `ranged`
/// ranged reads) and the result be the erasure's.
func expectRedoneOnTheWholeFile(
    _ layout: String, named: Int = 2, select: @escaping @Sendable (ParquetFile) throws -> [Int64] = { try subjectRows($0, groups: [2]) },
    selections: Int = 1, workers: Int, ranged: Int, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let t = try await RelaidTable(layout)
    defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let before = try t.rows()
    let calls = Mutex(0)
    let (_, replacement) = try await eraseSubject(
        t, reading: { _, footer in [try footer.chunkRange(column: 0, rowGroup: named)] },
        selecting: { _, f in
            calls.withLock { $0 += 1 }
            return try select(f)
        }, workers: workers)
    #expect(calls.withLock { $0 } == selections, sourceLocation: sourceLocation)
    checkWholeReadLast(t.store.reads, ranged: ranged)
    try await checkErased(t, before: before, replacement: replacement, layout: layout, workers: workers)
}

@Test func aRewriteThatReadsOutsideTheRangesFetchedIsDoneAgainOnTheWholeFile() async throws {
    // The selection reads what it named (the subject chunk of row group 2); the rewrite copies row groups
    // 0, 1 and 3 unread, but their page indexes lie inside their byte ranges: copying the indexes reads them.
    // The footer, the chunk selected, what the rewrite reads, then the whole file.
    try await expectRedoneOnTheWholeFile("inline", workers: 1, ranged: 4)
}

@Test func aRewriteOnSeveralThreadsThatReadsOutsideTheRangesFetchedIsDoneAgainOnTheWholeFile() async throws {
    // Laid out column by column, every row group's byte range holds chunks of the others: the chunks of
    // row group 2 (which loses its row) lie inside the ranges of the row groups copied unread, so each
    // chunk task of the rewrite (two threads: the wave's tail file) reads outside what was fetched.
    // The footer and the chunk selected: every other byte lies in a copied row group's range.
    try await expectRedoneOnTheWholeFile("by-column", workers: 2, ranged: 3)
}

@Test func aRewriteThatReadsAPageIndexInsideACopiedRowGroupIsDoneAgainOnTheWholeFile() async throws {
    // Every page index and bloom filter lies between the first two chunks of row group 0, which is
    // copied: the page-level rewrite of row group 2 reads its old column index (whose bounds hold the
    // subject's value) from there. Copied whole, row group 0's range would carry that index along.
    try await expectRedoneOnTheWholeFile("in-group-0", workers: 2, ranged: 4)
}
