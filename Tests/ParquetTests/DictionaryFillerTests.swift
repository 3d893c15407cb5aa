import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// Readers that build a dictionary-typed column (Arrow: pandas categoricals, `read_dictionary`, a
/// file whose Arrow schema declares a dictionary) merge equal dictionary entries, so a neutralised
/// entry must equal no other: with copies of a kept entry (Lethe before session 17) pyarrow read the
/// indices past the merged entry as other values or out of range. pyarrow writes dictionary arrays
/// of every kind a filler has (strings, int64, int32 near its floor, doubles, fixed-size binary
/// holding the fillers' own first values), Lethe drops rows so that some entries lose every row,
/// and pyarrow must read every column back as the original without those rows.
@Test func aNeutralisedDictionaryStaysDistinctForArrowReaders() throws {
    let dir = Env.tempDir("fillers")
    let path = dir.appendingPathComponent("in.parquet").path, out = dir.appendingPathComponent("out.parquet").path
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            n = 300
            def dic(k, values):
                return pa.DictionaryArray.from_arrays(pa.array([i % k for i in range(n)], pa.int32()), values)
            pq.write_table(pa.table({
                "s": dic(7, pa.array(["c-%d" % k for k in range(7)])),
                "i64": dic(5, pa.array([10**12 + k for k in range(5)], pa.int64())),
                "i32": dic(6, pa.array([-2**31, -2**31 + 1, 5, 6, 7, 8], pa.int32())),
                "f64": dic(4, pa.array([0.5, 1.5, -2.25, 3.0], pa.float64())),
                "fsb": dic(3, pa.array([b"\\x00\\x00\\x00\\x01", b"abcd", b"\\x00\\x00\\x00\\x00"], pa.binary(4))),
                "v": pa.array(range(n), pa.int64()),
            }), sys.argv[1], row_group_size=100)
            """, path,
        ], what: "dictionary arrays")
    let file = try ParquetFile(source: try LocalFileSource(path: path), name: "in")
    // Every row of one entry per column: c-3, 10**12+2, -2**31 (floor: fillers go above), 1.5, abcd.
    let dropped: [Int64] = (0..<file.numRows).filter { (i: Int64) -> Bool in
        let a = i % 7 == 3 || i % 5 == 2
        return a || i % 6 == 0 || i % 4 == 1 || i % 3 == 1
    }
    var sink = InMemorySink()
    let result = try file.rewrite(droppingRows: dropped, to: &sink, pageOptions: PageRewriteOptions())
    #expect(result.pages.neutralisedEntries > 0 && result.pages.pageLevelChunks > 0, "\(result.pages)")
    let outFile = try ParquetFile(bytes: sink.bytes, name: "out")
    #expect(try PageCopyRewriteTests.residue(Array("c-3".utf8), outFile, sink.bytes).isEmpty)
    #expect(try PageCopyRewriteTests.residue(Array("abcd".utf8), outFile, sink.bytes).isEmpty)
    try Data(sink.bytes).write(to: URL(fileURLWithPath: out))
    let droppedJSON = "[" + dropped.map { String($0) }.joined(separator: ",") + "]"
    let check = try Peers.python(
        [
            "-c",
            """
            import sys, json, pyarrow.parquet as pq
            dropped = set(json.loads(sys.argv[3]))
            a, b = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])
            problems = []
            for c in a.column_names:
                want = [x for i, x in enumerate(a.column(c).to_pylist()) if i not in dropped]
                if str(b.schema.field(c).type) != str(a.schema.field(c).type): problems.append("%s type %s" % (c, b.schema.field(c).type))
                if b.column(c).to_pylist() != want: problems.append("%s values differ" % c)
            f = pq.ParquetFile(sys.argv[2])
            for g in range(f.num_row_groups):
                for c in ["s", "i64", "i32", "f64", "fsb"]:
                    chunk = f.read_row_group(g).column(c).chunks[0]
                    if not hasattr(chunk, "dictionary"): continue  # Arrow reads only byte arrays as dictionaries
                    d = chunk.dictionary.to_pylist()
                    if any(x in d for x in ["c-3", 10**12 + 2, 1.5, b"abcd"]): problems.append("erased value in rg %d %s: %s" % (g, c, d))
            print("ok" if not problems else "; ".join(problems))
            """, path, out, droppedJSON,
        ], what: "read back"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(check == "ok")
    // The dictionaries as written: every entry distinct, the page's entry count kept.
    for g in 0..<outFile.rowGroups.count {
        for c in 0..<5 {
            let md = try #require(outFile.rowGroups[g].columns[c].metaData)
            var pages = try PageIterator(chunk: try outFile.columnChunkBytes(column: c, rowGroup: g), codecRaw: md.codecRaw, options: outFile.options)
            guard let p = try pages.next(), p.header.type == .dictionaryPage else { continue }
            let desc = outFile.schema.columns[c]
            let pd = try #require(try PlainDictionary(p.data, count: p.header.numValues, type: desc.physicalType, typeLength: desc.typeLength))
            let entries = (0..<pd.count).map { pd.value($0) }
            #expect(Set(entries).count == entries.count, "rg \(g) column \(desc.dottedPath): \(entries)")
        }
    }
}

/// The fillers themselves: distinct from every other entry and from each other, of the same size,
/// for every physical type a dictionary holds; nil when no filler fits.
@Test func fillersAreDistinctAndKeepTheSize() throws {
    func plain(_ values: [[UInt8]], prefixed: Bool) -> [UInt8] {
        var b: [UInt8] = []
        for v in values {
            if prefixed { b += withUnsafeBytes(of: UInt32(v.count).littleEndian) { Array($0) } }
            b += v
        }
        return b
    }
    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    var cases: [(PhysicalType, Int, [[UInt8]], [Int])] = [
        // byte arrays: the fillers' first candidates (zero bytes ending in 0, 1) are taken already.
        (.byteArray, 0, [[0, 0, 0], [0, 0, 1], [0x61, 0x62, 0x63], [], [9]], [2, 3, 4]),
        (.fixedLenByteArray, 2, [[0, 0], [0, 1], [0, 2], [7, 7]], [3, 1]),
        (.int64, 0, [le(Int64.min), le(Int64(5)), le(Int64(-3))], [1]),
        (.int32, 0, [le(Int32.min), le(Int32(7)), le(Int32.max - 1)], [1]),
        (.double, 0, [le(Double(2.5).bitPattern), le(Double(-1).bitPattern), le(Double.nan.bitPattern)], [0, 2]),
        (.float, 0, [le(Float(2.5).bitPattern), le(Float(-Float.greatestFiniteMagnitude).bitPattern)], [0]),
        (.int96, 0, [[UInt8](repeating: 0, count: 12), [UInt8](repeating: 1, count: 12)], [1]),
    ]
    // A decimal's (in range): just above the smallest, never the value replaced (12) nor a kept one.
    let inRange = cases.count
    cases.append((.int32, 0, [le(Int32(10)), le(Int32(11)), le(Int32(12)), le(Int32(20))], [2]))
    for (n, (type, width, values, orphans)) in cases.enumerated() {
        let pd = try #require(try PlainDictionary(plain(values, prefixed: type == .byteArray), count: values.count, type: type, typeLength: width))
        let (body, changes) = try #require(pd.neutralised(orphans, type: type, outsideRange: n != inRange), "\(type)")
        #expect(body.count == pd.bytes.count)
        var patched = pd.bytes
        for c in changes { patched.replaceSubrange(c.at..<(c.at + c.bytes.count), with: c.bytes) }
        #expect(patched == body, "\(type): the changes are the body's")
        let after = try #require(try PlainDictionary(body, count: values.count, type: type, typeLength: width))
        let entries = (0..<after.count).map { after.value($0) }
        for o in orphans where !values[o].isEmpty { #expect(entries[o] != values[o], "\(type) entry \(o) kept its value") }
        let nonEmpty = entries.filter { !$0.isEmpty }
        #expect(Set(nonEmpty).count == nonEmpty.count, "\(type): \(entries)")
        for i in values.indices where !orphans.contains(i) { #expect(entries[i] == values[i]) }
        if n == inRange { #expect(entries[2] == le(Int32(13))) }
        if type == .int96 {
            // A valid day: 1970-01-01 (Julian 2440588).
            for o in orphans { #expect(Array(entries[o][8...]) == le(UInt32(2_440_588))) }
        }
        if type == .byteArray { for o in orphans { #expect(entries[o].allSatisfy { $0 < 0x20 }, "control characters") } }
        // Never the value of any entry, the replaced ones included.
        for o in orphans where !values[o].isEmpty { #expect(!values.contains(entries[o]), "\(type): a filler is an entry's value") }
    }
    // An int32 dictionary spanning [min, max]: no room either side, so a value free just above the smallest.
    let full = try #require(try PlainDictionary(le(Int32.min) + le(Int32.max) + le(Int32(0)), count: 3, type: .int32, typeLength: 0))
    #expect(full.neutralised([2], type: .int32).map { Array($0.body[8...]) } == le(Int32.min + 1))
    // In range only, and no value free just above the smallest: none either.
    let dense = try #require(try PlainDictionary(le(Int32(1)) + le(Int32(2)) + le(Int32(3)), count: 3, type: .int32, typeLength: 0))
    #expect(dense.neutralised([1], type: .int32, outsideRange: false) == nil)
}

/// When no filler fits (`neutralised` returns nil) the chunk is re-encoded whole, its dictionary rebuilt
/// from the values kept (session 18). pyarrow writes an int8 column whose dictionary is [10, 11, 12] in
/// every row group (a narrow integer takes in-range fillers only, and none is free above 10) and a
/// one-byte fixed-size binary column whose dictionary holds every control byte a filler could be
/// (0x00-0x1F) and `Z`; the erased rows are the only ones with 10, `Z` and the id `u-gone`. Both a
/// rewrite dropping those rows and a scrub-only rewrite (no row dropped, the entries left behind by an
/// earlier rewrite that did not neutralise) must re-encode those chunks: pyarrow and DuckDB read every
/// kept row as before, and neither the dictionaries nor the statistics (nor, for the id, any byte of the
/// file) hold an erased value.
@Test func aChunkNoFillerFitsIsReencodedWithItsDictionaryRebuilt() throws {
    let dir = Env.tempDir("nofiller")
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("in.parquet").path
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            n = 300
            gone = [i % 3 == 0 for i in range(n)]
            pq.write_table(pa.table({
                "s": pa.array(["u-gone" if gone[i] else "u-%d" % i for i in range(n)]),
                "i8": pa.array([[10, 11, 12][i % 3] for i in range(n)], pa.int8()),
                "fsb": pa.array([b"Z" if gone[i] else bytes([(i // 3) % 32]) for i in range(n)], pa.binary(1)),
                "v": pa.array(range(n), pa.int64()),
            }), sys.argv[1], row_group_size=100, use_dictionary=True, compression="snappy")
            """, path,
        ], what: "narrow dictionaries")
    let file = try ParquetFile(source: try LocalFileSource(path: path), name: "in")
    let dropped = (0..<file.numRows).filter { $0 % 3 == 0 }
    let columns = try ["s", "i8", "fsb"].map { try file.column([$0]).index }
    /// Erased values left in the file: the id anywhere, 10 and Z in a dictionary entry or a bound.
    func residue(_ bytes: [UInt8]) throws -> [String] {
        let out = try ParquetFile(bytes: bytes, name: "out")
        var found = try PageCopyRewriteTests.residue(Array("u-gone".utf8), out, bytes)
        for (name, value) in [("i8", withUnsafeBytes(of: Int32(10).littleEndian) { Array($0) }), ("fsb", Array("Z".utf8))] {
            if try PageCopyRewriteTests.dictionaryEntries(out, column: name).contains(value) { found.append("\(name) dictionary") }
            let c = try out.column([name]).index
            for g in 0..<out.rowGroups.count {
                let md = try #require(out.rowGroups[g].columns[c].metaData)
                if let s = md.statistics, [s.minValue, s.maxValue, s.legacyMin, s.legacyMax].contains(where: { $0 == value }) {
                    found.append("\(name) statistics rg \(g)")
                }
                // Still dictionary-encoded, as the original.
                let dictionaryEncodings = [Encoding.rleDictionary.rawValue, Encoding.plainDictionary.rawValue]
                if !md.encodings.contains(where: dictionaryEncodings.contains) { found.append("\(name) rg \(g) lost its dictionary") }
            }
        }
        return found
    }
    #expect(try PageCopyRewriteTests.dictionaryEntries(file, column: "i8").contains(withUnsafeBytes(of: Int32(10).littleEndian) { Array($0) }))
    #expect(try PageCopyRewriteTests.dictionaryEntries(file, column: "fsb").count == 33)  // the premise: every filler taken

    // Rows dropped: the two chunks of each row group are re-encoded, the string column's entry neutralised.
    var sink = InMemorySink()
    let dropping = try file.rewrite(droppingRows: dropped, to: &sink)
    // (`s` and `v` page by page: `u-gone` and the dropped rows' `v` values neutralised.)
    #expect(dropping.pages.wholeChunks == 2 * file.rowGroups.count && dropping.pages.pageLevelChunks == 2 * file.rowGroups.count, "\(dropping.pages)")
    let afterDropping = try residue(sink.bytes)
    #expect(afterDropping.isEmpty, "\(afterDropping)")

    // Scrub only: an earlier rewrite that left the entries (neutralising nothing), then a scrub of those chunks.
    var kept = PageRewriteOptions()
    kept.neutraliseDictionary = false
    var leftSink = InMemorySink()
    _ = try file.rewrite(droppingRows: dropped, to: &leftSink, pageOptions: kept)
    #expect(try Set(residue(leftSink.bytes)).isSuperset(of: ["i8 dictionary", "fsb dictionary", "file bytes"]))  // the premise
    let left = try ParquetFile(bytes: leftSink.bytes, name: "left")
    var scrubSink = InMemorySink()
    let scrub = Dictionary(uniqueKeysWithValues: (0..<left.rowGroups.count).map { ($0, Set(columns)) })
    let scrubbing = try left.rewrite(droppingRows: [], scrubbing: scrub, to: &scrubSink)
    #expect(scrubbing.droppedRows == 0 && scrubbing.keptRows == left.numRows)
    #expect(
        scrubbing.pages.wholeChunks == 2 * left.rowGroups.count && scrubbing.pages.neutralisedEntries == left.rowGroups.count, "\(scrubbing.pages)")
    let afterScrubbing = try residue(scrubSink.bytes)
    #expect(afterScrubbing.isEmpty, "\(afterScrubbing)")
    try PageCopyRewriteTests.peersRead([
        (name: "dropping", original: path, bytes: sink.bytes, rows: dropped),
        (name: "scrubbing", original: path, bytes: scrubSink.bytes, rows: dropped),
    ])
}
