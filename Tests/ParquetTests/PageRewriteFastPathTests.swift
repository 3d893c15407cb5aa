import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The page rewrite's fast paths (issue 12, session 8) against the general path they replace:
/// flat columns rewritten from the runs between drops, old page and chunk bounds kept when no
/// lost value reaches them, neutralised Snappy dictionary pages patched in place. Each is
/// switched off in `PageRewriteOptions` for the reference; both outputs must decode to the same
/// values (and to the original minus the dropped rows), and every kept statistic must still bound
/// the values it describes.
@Suite struct PageRewriteFastPathTests {
    /// pyarrow files over every physical type, nullable and required, dictionary and PLAIN,
    /// v1 and v2 data pages, one page per chunk and many, with page indexes and page statistics;
    /// a list column rides along (it takes the general path).
    static let generated: Result<[String: String], any Error> = Result {
        let dir = Env.tempDir("fastpath")
        let code = """
            import sys, os, json, random, decimal
            import pyarrow as pa, pyarrow.parquet as pq
            out = sys.argv[1]
            r = random.Random(5)
            n = 3000
            def maybe(v, p=0.2):
                return None if r.random() < p else v
            fields = [
                pa.field("b", pa.bool_()),
                pa.field("i32", pa.int32(), nullable=False),
                pa.field("i32n", pa.int32()),
                pa.field("i64", pa.int64(), nullable=False),
                pa.field("i64n", pa.int64()),
                pa.field("ts96", pa.timestamp("ns")),
                pa.field("f", pa.float32()),
                pa.field("d", pa.float64(), nullable=False),
                pa.field("s", pa.string(), nullable=False),
                pa.field("sn", pa.string()),
                pa.field("flba", pa.binary(5)),
                pa.field("dec", pa.decimal128(10, 2)),
                pa.field("u32", pa.uint32()),
                pa.field("tags", pa.list_(pa.string())),
            ]
            cols = {
                "b": [maybe(r.random() < 0.5) for _ in range(n)],
                "i32": [r.randrange(-500, 500) for _ in range(n)],
                "i32n": [maybe(r.randrange(-50, 50)) for _ in range(n)],
                "i64": [10_000_000 + i * 7 for i in range(n)],
                "i64n": [maybe(r.randrange(0, 1 << 40)) for _ in range(n)],
                "ts96": [maybe(1_700_000_000_000_000_000 + r.randrange(10**12)) for _ in range(n)],
                "f": [maybe(r.randrange(-1000, 1000) / 8) for _ in range(n)],
                "d": [r.randrange(-10**6, 10**6) / 16 for _ in range(n)],
                "s": [f"id-{r.randrange(10**6):07d}" for _ in range(n)],
                "sn": [maybe("v" * r.randrange(0, 6) + str(r.randrange(60))) for _ in range(n)],
                "flba": [maybe(bytes(r.randrange(256) for _ in range(5))) for _ in range(n)],
                "dec": [maybe(decimal.Decimal(r.randrange(-10**6, 10**6)) / 100) for _ in range(n)],
                "u32": [maybe(r.randrange(0, 1 << 32)) for _ in range(n)],
                "tags": [maybe([f"t{r.randrange(9)}" for _ in range(i % 3)]) for i in range(n)],
            }
            t = pa.table({k: pa.array(v, f.type) for (k, v), f in zip(cols.items(), fields)}, schema=pa.schema(fields))
            files = {}
            def w(name, **kw):
                p = os.path.join(out, name + ".parquet")
                kw.setdefault("write_page_index", True)
                pq.write_table(t, p, row_group_size=1500, use_deprecated_int96_timestamps=True, **kw)
                files[name] = p
            w("dict_v1_onepage", data_page_size=1 << 20)
            w("dict_v2_pages", data_page_size=2048, data_page_version="2.0")
            w("plain_v1_pages", use_dictionary=False, data_page_size=2048)
            w("plain_v2_onepage", use_dictionary=False, data_page_version="2.0", data_page_size=1 << 20, compression="zstd")
            w("dict_v1_nostats", data_page_size=4096, write_statistics=False, write_page_index=False)
            print(json.dumps(files))
            """
        let json = try Peers.python(["-c", code, dir.path], what: "fast path fixtures")
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: String]
    }

    static let writers = ["dict_v1_onepage", "dict_v2_pages", "plain_v1_pages", "plain_v2_onepage", "dict_v1_nostats"]

    static var general: PageRewriteOptions {
        var o = PageRewriteOptions()
        o.flatFastPath = false
        o.keepStatistics = false
        o.patchCompressedDictionary = false
        o.splicePages = false
        return o
    }

    /// Random drops (one row, a few, many, a whole run): the fast and the general rewrite give the
    /// same values, the original's minus the dropped rows, and every bound in the fast output
    /// (chunk statistics, column index, page header statistics) bounds its values.
    @Test(arguments: writers) func fastAndGeneralPathsAgree(writer: String) throws {
        let path = try #require(try Self.generated.get()[writer])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        let original = try readAllProjections(file)
        var rng = SplitMix(state: UInt64(writer.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        var totals = PageRewriteCounts()
        let n = Int(file.numRows)
        var sets: [[Int64]] = [[0], [Int64(n - 1)], [1499, 1500], Array(200..<260).map(Int64.init)]
        for k in [1, 3, 50, 400] {
            sets.append(Array(Set((0..<k).map { _ in Int64.random(in: 0..<Int64(n), using: &rng) })).sorted())
        }
        for rows in sets {
            let (fast, fastBytes, rf) = try PageCopyRewriteTests.rewrite(file, rows, options: PageRewriteOptions())
            let (slow, _, rs) = try PageCopyRewriteTests.rewrite(file, rows, options: Self.general)
            #expect(rf.pages.wholeChunks == rs.pages.wholeChunks && rf.pages.reencodedPages == rs.pages.reencodedPages)
            #expect(rs.pages.flatPages == 0 && rs.pages.keptPageStatistics == 0 && rs.pages.patchedDictionaries == 0 && rs.pages.splicedPages == 0)
            let got = try readAllProjections(fast)
            #expect(try got == readAllProjections(slow), "\(writer) \(rows.count) rows")
            #expect(got == expectedAfterDrop(original, rows), "\(writer) \(rows.count) rows")
            try Self.expectBoundsHold(fast, fastBytes, "\(writer) \(rows.count) rows")
            totals.flatPages += rf.pages.flatPages
            totals.splicedPages += rf.pages.splicedPages
            totals.keptPageStatistics += rf.pages.keptPageStatistics
            totals.patchedDictionaries += rf.pages.patchedDictionaries
            totals.keptChunkStatistics += rf.pages.keptChunkStatistics
            totals.neutralisedEntries += rf.pages.neutralisedEntries
        }
        // Each fast path ran where the file allows it.
        #expect(totals.flatPages > 0, "\(writer)")
        // Snappy bodies (pyarrow's default) and v2 pages whose values are not compressed are edited
        // in place; the zstd writer's v2 pages with compressed values are encoded again.
        if writer != "plain_v2_onepage" { #expect(totals.splicedPages > 0, "\(writer): \(totals)") }
        if writer != "dict_v1_nostats" { #expect(totals.keptPageStatistics > 0, "\(writer)") }
        // (Chunks with PLAIN pages keep their bounds by the older strictly-inside rule, not counted.)
        if writer.hasPrefix("dict") && writer != "dict_v1_nostats" { #expect(totals.keptChunkStatistics > 0, "\(writer)") }
        if writer.hasPrefix("dict") && writer != "plain_v2_onepage" {
            #expect(totals.neutralisedEntries > 0 && totals.patchedDictionaries > 0, "\(writer): \(totals)")
        }
    }

    /// The dictionary entries only dropped rows used are gone after the patched path too (the
    /// unique `i64` and `s` values of the dropped rows appear in no dictionary), and pyarrow and
    /// DuckDB read the fast outputs as the original minus the rows.
    @Test func patchedDictionariesLeaveNoResidueAndPeersRead() throws {
        var jobs: [(name: String, original: String, bytes: [UInt8], rows: [Int64])] = []
        for writer in Self.writers {
            let path = try #require(try Self.generated.get()[writer])
            let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
            let rows: [Int64] = [3, 17, 1600, 2999]
            let (out, bytes, result) = try PageCopyRewriteTests.rewrite(file, rows, options: PageRewriteOptions())
            if writer.hasPrefix("dict") { #expect(result.pages.patchedDictionaries > 0, "\(writer): \(result.pages)") }
            let keptRows = (0..<file.numRows).filter { !rows.contains($0) }
            for column in ["i64", "s"] {
                // Values only the dropped rows held (`s` repeats now and then).
                let held = Set(try PageCopyRewriteTests.values(of: column, rows: keptRows, in: file))
                let gone = try PageCopyRewriteTests.values(of: column, rows: rows, in: file).filter { !held.contains($0) }
                #expect(!gone.isEmpty)
                let left = try PageCopyRewriteTests.dictionaryEntries(out, column: column)
                #expect(gone.allSatisfy { !left.contains($0) }, "\(writer) \(column)")
            }
            jobs.append((writer, path, bytes, rows))
        }
        try PageCopyRewriteTests.peersRead(jobs)
    }

    /// Snappy patching: the patched block decompresses to the changed bytes; a change a copy
    /// produces or reads is refused (nil), never written wrong.
    @Test func snappyPatchIsExactOrRefused() throws {
        var rng = SplitMix(state: 99)
        var words: [UInt8] = []
        for i in 0..<30_000 { words += Array("k\(i % 977)-\((i * 7919) % 100_003)|".utf8) }
        let random = (0..<150_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var patched = 0, refused = 0
        for input in [words, random, Array(words.prefix(70_000)) + random.prefix(70_000)] {
            let block = input.withUnsafeBytes { Snappy.compress($0) }
            for _ in 0..<200 {
                var changes: [(at: Int, bytes: [UInt8])] = []
                var at = Int.random(in: 0..<2000, using: &rng)
                while at < input.count - 16 && changes.count < 6 {
                    let len = Int.random(in: 1...12, using: &rng)
                    changes.append((at, (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }))
                    at += len + Int.random(in: 0..<30_000, using: &rng)
                }
                var want = input
                for c in changes { want.replaceSubrange(c.at..<(c.at + c.bytes.count), with: c.bytes) }
                guard let p = block.withUnsafeBytes({ Snappy.patch($0, changes: changes) }) else {
                    refused += 1
                    continue
                }
                patched += 1
                let got = try p.withUnsafeBytes { (b) throws(ParquetError) in try Snappy.decompress(b, expected: input.count) }
                #expect(got == want)
            }
        }
        #expect(patched > 100 && refused > 10, "patched \(patched), refused \(refused)")
        // Out of range or overlapping changes are refused.
        let block = words.withUnsafeBytes { Snappy.compress($0) }
        #expect(block.withUnsafeBytes { Snappy.patch($0, changes: [(words.count - 1, [1, 2])]) } == nil)
        #expect(block.withUnsafeBytes { Snappy.patch($0, changes: [(10, [1, 2]), (11, [3])]) } == nil)
    }

    /// Min/max read from a dictionary's PLAIN bytes equals `MinMax.compute` over the decoded
    /// entries, for every type and order it handles, with NaN, ±0 and prefixes among the entries.
    @Test func dictionaryMinMaxFromBytesMatchesDecoded() throws {
        var rng = SplitMix(state: 4)
        func plain(_ v: ColumnValues) -> [UInt8] { ValueEncoder.plain(v) }
        var cases: [(ColumnValues, PhysicalType, Parquet.SortOrder, Int)] = []
        let n = 300
        cases.append((.int32((0..<n).map { _ in Int32.random(in: -1000...1000, using: &rng) }), .int32, .signed, 0))
        cases.append((.int32((0..<n).map { _ in Int32(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)) }), .int32, .unsigned, 0))
        cases.append((.int64((0..<n).map { _ in Int64.random(in: Int64.min...Int64.max, using: &rng) }), .int64, .signed, 0))
        cases.append((.int64((0..<n).map { _ in Int64.random(in: Int64.min...Int64.max, using: &rng) }), .int64, .unsigned, 0))
        cases.append((.float((0..<n).map { i in i % 17 == 0 ? .nan : (i % 13 == 0 ? 0 : Float.random(in: -5...5, using: &rng)) }), .float, .signed, 0))
        cases.append((.double((0..<n).map { i in i % 19 == 0 ? .nan : (i % 11 == 0 ? -0.0 : Double.random(in: -5...5, using: &rng)) }), .double, .signed, 0))
        var ba = ByteArrayValues()
        for _ in 0..<n { ba.append((0..<Int.random(in: 0...4, using: &rng)).map { _ in UInt8.random(in: 0...3, using: &rng) * 80 }) }
        cases.append((.byteArray(ba), .byteArray, .unsigned, 0))
        var fl = ByteArrayValues()
        for _ in 0..<n { fl.append((0..<3).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        cases.append((.fixedLenByteArray(fl), .fixedLenByteArray, .unsigned, 3))
        for (values, type, order, width) in cases {
            let pd = try #require(try PlainDictionary(plain(values), count: values.count, type: type, typeLength: width))
            for density in [0.0, 0.01, 0.5, 1.0] {
                let marks = (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) < density }
                let got = try #require(pd.minMax(marked: marks, type: type, order: order))
                let want = ParquetFile.minMax(ofMarked: marks, in: values, order: order)
                #expect(got.min == want.min && got.max == want.max, "\(type) \(order) density \(density)")
            }
        }
    }

    // MARK: helpers

    /// Chunk statistics, column index entries and page header statistics each bound the values
    /// they describe (compared in the column's order where this code knows it).
    static func expectBoundsHold(_ file: ParquetFile, _ bytes: [UInt8], _ what: String) throws {
        for (g, rg) in file.rowGroups.enumerated() {
            for (c, chunk) in rg.columns.enumerated() {
                let desc = file.schema.columns[c]
                guard desc.maxRepetitionLevel == 0, let cmp = ParquetFile.statisticsComparator(desc) else { continue }
                let md = try #require(chunk.metaData)
                let data = try file.readColumn(c, rowGroup: g)
                func check(_ lo: [UInt8]?, _ hi: [UInt8]?, _ values: ColumnValues, _ where_: String) {
                    let mm = MinMax.compute(values, 0..<values.count, order: desc.sortOrder)
                    guard let lo, let hi, let a = mm.min, let b = mm.max, let x = cmp(lo, a), let y = cmp(b, hi) else { return }
                    #expect(x <= 0 && y <= 0, "\(what): rg \(g) col \(desc.dottedPath) \(where_)")
                }
                if let s = md.statistics { check(s.minValue, s.maxValue, data.values, "chunk statistics") }
                // Pages one by one, with the chunk's dictionary.
                guard let off = chunk.offsetIndexOffset, let len = chunk.offsetIndexLength else { continue }
                let (oi, _) = try ThriftStruct.decode(Array(bytes[Int(off)..<Int(off) + Int(len)]))
                let locs = try #require(oi.structList(1))
                var ci: ThriftStruct?
                if let o = chunk.columnIndexOffset, let l = chunk.columnIndexLength {
                    ci = try ThriftStruct.decode(Array(bytes[Int(o)..<Int(o) + Int(l)])).0
                }
                let dict: [UInt8] = md.dictionaryPageOffset.map { Array(bytes[Int($0)..<Int(md.dataPageOffset)]) } ?? []
                for (k, l) in locs.enumerated() {
                    let at = Int(l.i64(1)!)
                    let (h, _) = try ThriftStruct.decode(bytes, from: at, to: nil)
                    let header = try PageHeader(raw: h)
                    let first = l.i64(3)!
                    let next = k + 1 < locs.count ? locs[k + 1].i64(3)! : rg.numRows
                    var pi = 0
                    let (page, _) = try ParquetFile.decodeChunk(
                        dict + Array(bytes[at..<(at + Int(l.i32(2)!))]), desc: desc, codecRaw: md.codecRaw,
                        numValues: Int64(header.numValues), numRows: next - first, options: file.options, pageIndex: &pi)
                    if let hs = ParquetFile.pageHeaderStatistics(header) {
                        check(hs.binary(6), hs.binary(5), page.values, "page \(k) header")
                        if let nc = hs.i64(3) { #expect(nc == Int64(page.slotCount - page.values.count), "\(what): page \(k) nulls") }
                    }
                    if let ci, case .binary(let lo)? = ci.list(2)?[k], case .binary(let hi)? = ci.list(3)?[k],
                        case .bool(false)? = ci.list(1)?[k]
                    {
                        check(lo, hi, page.values, "page \(k) column index")
                    }
                }
            }
        }
    }
}
