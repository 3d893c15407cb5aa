import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The page-level rewrite (plan §2.7): in a row group that loses rows, pages without a dropped
/// row are copied byte for byte, the others re-encoded, and the dictionary carried with the
/// entries only erased rows referenced neutralised. Files written by pyarrow and DuckDB, and the
/// Apache parquet-testing corpus; pyarrow and DuckDB read every result.
@Suite struct PageCopyRewriteTests {
    /// Sorts inside the other ids, so the chunk statistics cannot rule it out: only the dictionary can.
    static let victim = "user-00042-victim@example.org"

    /// Files by pyarrow (v1 and v2 pages, page index + CRC) and DuckDB (v1, v2) with a
    /// `user_id` subject column whose victim rows sit in two places; several pages per chunk.
    static let generated: Result<[String: String], any Error> = Result {
        let dir = Env.tempDir("pagecopy")
        let code = """
            import sys, os, json, random
            import pyarrow as pa, pyarrow.parquet as pq, duckdb
            out = sys.argv[1]
            random.seed(7)
            n = 20000
            users = [f"user-{random.randrange(1500):05d}" for _ in range(n)]
            for r in [101, 102, 103, 104, 12000, 12001]: users[r] = "\(victim)"
            t = pa.table({
                "user_id": pa.array(users, pa.string()),
                "event_id": pa.array([1_000_000 + i for i in range(n)], pa.int64()),
                "amount": pa.array([None if i % 11 == 0 else float(random.randrange(1000)) / 8 for i in range(n)], pa.float64()),
                "country": pa.array([random.choice(["FR", "DE", "NL", "SE", None]) for _ in range(n)], pa.string()),
                "tags": pa.array([None if i % 13 == 0 else [f"t{random.randrange(40)}" for _ in range(i % 4)] for i in range(n)], pa.list_(pa.string())),
            })
            files = {}
            def w(name, **kw):
                p = os.path.join(out, name + ".parquet"); pq.write_table(t, p, **kw); files[name] = p
            w("pyarrow_v1", row_group_size=5000, data_page_size=4096)
            w("pyarrow_v2", row_group_size=5000, data_page_size=4096, data_page_version="2.0")
            w("pyarrow_index_crc", row_group_size=5000, data_page_size=4096, write_page_index=True, write_page_checksum=True, compression="zstd")
            con = duckdb.connect(); con.register("t", t)
            for name, opts in [("duckdb_v1", "ROW_GROUP_SIZE 5000"), ("duckdb_v2", "ROW_GROUP_SIZE 5000, PARQUET_VERSION v2, COMPRESSION zstd")]:
                p = os.path.join(out, name + ".parquet")
                con.execute(f"COPY (SELECT * FROM t) TO '{p}' (FORMAT parquet, {opts})"); files[name] = p
            print(json.dumps(files))
            """
        let json = try Peers.python(["-c", code, dir.path], what: "page-copy fixtures")
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: String]
    }

    static let writers = ["pyarrow_v1", "pyarrow_v2", "pyarrow_index_crc", "duckdb_v1", "duckdb_v2"]

    /// Erases the victim's rows: untouched pages copied, pyarrow and DuckDB read the original minus
    /// those rows (types, statistics checked), and the victim's bytes appear nowhere: not in the file,
    /// not in any decompressed page (dictionaries included), not in statistics; the chunk's own
    /// evidence (statistics, dictionary) never says the victim is present.
    @Test(arguments: writers) func erasesOneSubjectPageByPage(writer: String) throws {
        let path = try #require(try Self.generated.get()[writer])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        let needle = Array(Self.victim.utf8)
        let rows = try Self.rows(of: needle, in: file)
        #expect(rows.count == 6)
        let (out, bytes, result) = try Self.rewrite(file, rows, options: PageRewriteOptions())
        #expect(result.pages.pageLevelChunks > 0, "\(writer): \(result.pages)")
        // DuckDB writes one page per chunk here: nothing to copy inside a touched chunk.
        if writer.hasPrefix("pyarrow") { #expect(result.pages.copiedPages > 0, "\(writer): \(result.pages)") }
        #expect(result.pages.wholeChunks == 0, "\(writer): \(result.pages)")
        #expect(try Self.residue(needle, out, bytes).isEmpty, "\(writer)")
        // Event ids only the victim's rows held leave the dictionaries too.
        let eventIDs = try Self.values(of: "event_id", rows: rows, in: file)
        for e in eventIDs { #expect(try Self.dictionaryEntries(out, column: "event_id").contains(e) == false, "\(writer)") }
        let c = try out.column(["user_id"]).index
        for g in 0..<out.rowGroups.count {
            for e in try out.evidence(column: c, rowGroup: g, values: [needle]) { #expect(e != .present, "\(writer) row group \(g)") }
        }
        try Self.peersRead([(writer, path, bytes, rows)])
    }

    /// The deliberately wrong variant (dictionary carried verbatim) leaves the victim in the
    /// dictionary page: the residue check and the chunk's own evidence catch it.
    @Test func aCarriedDictionaryWithTheErasedValueIsCaught() throws {
        let path = try #require(try Self.generated.get()["pyarrow_v1"])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: "pyarrow_v1")
        let needle = Array(Self.victim.utf8)
        let rows = try Self.rows(of: needle, in: file)
        var wrong = PageRewriteOptions()
        wrong.neutraliseDictionary = false
        let (out, bytes, _) = try Self.rewrite(file, rows, options: wrong)
        #expect(try !Self.residue(needle, out, bytes).isEmpty)
        let c = try out.column(["user_id"]).index
        var present = 0
        for g in 0..<out.rowGroups.count { present += try out.evidence(column: c, rowGroup: g, values: [needle]).filter { $0 == .present }.count }
        #expect(present > 0)
    }

    /// The page-level and the whole-chunk rewrite give the same rows.
    @Test(arguments: writers) func pageLevelAndWholeChunkAgree(writer: String) throws {
        let path = try #require(try Self.generated.get()[writer])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        let rows: [Int64] = [0, 1, 2, 101, 4999, 5000, 7777, 12001, 19999]
        var whole = PageRewriteOptions()
        whole.enabled = false
        let (a, _, ra) = try Self.rewrite(file, rows, options: PageRewriteOptions())
        let (b, _, rb) = try Self.rewrite(file, rows, options: whole)
        #expect(ra.pages.pageLevelChunks > 0 && rb.pages.pageLevelChunks == 0)
        #expect(try readAllProjections(a) == readAllProjections(b))
        #expect(try readAllProjections(a) == expectedAfterDrop(readAllProjections(file), rows))
    }

    /// Apache parquet-testing files (page index with tiny pages, v2 pages, nested lists and maps,
    /// nulls, checksums, DELTA encodings): rows dropped, pyarrow and DuckDB read the result.
    static let corpus = [
        "alltypes_tiny_pages.parquet", "alltypes_tiny_pages_plain.parquet", "datapage_v2.snappy.parquet", "nested_lists.snappy.parquet",
        "nested_maps.snappy.parquet", "nulls.snappy.parquet", "data_index_bloom_encoding_stats.parquet", "rle-dict-snappy-checksum.parquet",
        "plain-dict-uncompressed-checksum.parquet", "delta_encoding_optional_column.parquet", "delta_byte_array.parquet",
        "int32_with_null_pages.parquet", "list_columns.parquet", "null_list.parquet", "alltypes_dictionary.parquet",
    ]
    static let corpusDir = "/work/corpora/parquet-testing/data/"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: corpusDir)))
    func parquetTestingCorpus() throws {
        var jobs: [(String, String, [UInt8], [Int64])] = []
        var copied = 0
        for name in Self.corpus {
            let path = Self.corpusDir + name
            let file = try ParquetFile(source: try LocalFileSource(path: path), name: name)
            guard file.numRows > 2 else { continue }
            let n = file.numRows
            let rows = Array(Set([1, 2, n / 2, n - 2].filter { $0 >= 0 && $0 < n })).sorted()
            let (out, bytes, result) = try Self.rewrite(file, rows, options: PageRewriteOptions())
            copied += result.pages.copiedPages
            #expect(out.numRows == n - Int64(rows.count), "\(name)")
            if name.hasPrefix("alltypes_tiny_pages") { #expect(result.pages.copiedPages > 100, "\(name): \(result.pages)") }
            jobs.append((name, path, bytes, rows))
        }
        #expect(copied > 0)
        try Self.peersRead(jobs)
    }

    /// The rebuilt offset and column indexes of page-level chunks: every location points at a page
    /// header with the stated size and first row, and every column index entry bounds its page's
    /// values and counts its nulls (pages decoded one by one with the chunk's dictionary).
    @Test(arguments: ["pyarrow_index_crc", "alltypes_tiny_pages.parquet"])
    func pageIndexesDescribeTheNewPages(name: String) throws {
        let path = name.hasSuffix(".parquet") ? Self.corpusDir + name : try #require(try Self.generated.get()[name])
        guard FileManager.default.fileExists(atPath: path) else { return }
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: name)
        let rows: [Int64] =
            name.hasSuffix(".parquet") ? [1, 2, file.numRows / 2] : try Self.rows(of: Array(Self.victim.utf8), in: file)
        let (out, bytes, result) = try Self.rewrite(file, rows, options: PageRewriteOptions())
        #expect(result.pages.pageLevelChunks > 0 && result.pages.copiedPages > 0)
        var checked = 0
        for (g, rg) in out.rowGroups.enumerated() {
            for (c, chunk) in rg.columns.enumerated() {
                let desc = out.schema.columns[c]
                guard desc.maxRepetitionLevel == 0, let off = chunk.offsetIndexOffset, let len = chunk.offsetIndexLength else { continue }
                let md = try #require(chunk.metaData)
                let (oi, _) = try ThriftStruct.decode(Array(bytes[Int(off)..<Int(off) + Int(len)]))
                let locs = try #require(oi.structList(1))
                var ci: ThriftStruct?
                if let o = chunk.columnIndexOffset, let l = chunk.columnIndexLength {
                    ci = try ThriftStruct.decode(Array(bytes[Int(o)..<Int(o) + Int(l)])).0
                    #expect(ci?.list(2)?.count == locs.count)
                }
                let dict: [UInt8] =
                    md.dictionaryPageOffset.map { Array(bytes[Int($0)..<Int(md.dataPageOffset)]) } ?? []
                let cmp = ParquetFile.statisticsComparator(desc)
                for (k, l) in locs.enumerated() {
                    let at = Int(l.i64(1)!)
                    let (h, end) = try ThriftStruct.decode(bytes, from: at, to: nil)
                    #expect(Int(l.i32(2)!) == end - at + Int(h.i32(3)!), "\(name) rg \(g) col \(c) page \(k)")
                    let first = l.i64(3)!
                    let next = k + 1 < locs.count ? locs[k + 1].i64(3)! : rg.numRows
                    let header = try PageHeader(raw: h)
                    var pi = 0
                    let (data, _) = try ParquetFile.decodeChunk(
                        dict + Array(bytes[at..<(at + Int(l.i32(2)!))]), desc: desc, codecRaw: md.codecRaw,
                        numValues: Int64(header.numValues), numRows: next - first, options: out.options, pageIndex: &pi)
                    guard let ci else { continue }
                    let nulls = Int64(data.slotCount - data.values.count)
                    if let counts = ci.list(5), case .i64(let n) = counts[k] { #expect(n == nulls, "\(name) rg \(g) col \(c) page \(k)") }
                    guard case .bool(let nullPage) = ci.list(1)![k] else { Issue.record("bad null_pages"); continue }
                    #expect(nullPage == (data.values.count == 0))
                    guard !nullPage, let cmp, case .binary(let lo) = ci.list(2)![k], case .binary(let hi) = ci.list(3)![k] else { continue }
                    let mm = MinMax.compute(data.values, 0..<data.values.count, order: desc.sortOrder)
                    guard let a = mm.min, let b = mm.max else { continue }
                    if let x = cmp(lo, a), let y = cmp(b, hi) { #expect(x <= 0 && y <= 0, "\(name) rg \(g) col \(c) page \(k): bounds") }
                    checked += 1
                }
            }
        }
        #expect(checked > 20)
    }

    /// Snappy (re-compressing neutralised dictionaries and re-encoded pages): round trips on
    /// repetitive, random and mixed inputs across block boundaries, matches ending anywhere.
    @Test func snappyRoundTrips() throws {
        var rng = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = [[], [7], Array(repeating: 0, count: 200_000), (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }]
        inputs.append((0..<100_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        var mixed: [UInt8] = []
        for i in 0..<20_000 { mixed += Array("user-\(i % 1500)-\(i % 7 == 0 ? "x" : "yy")|".utf8) }
        inputs.append(mixed)
        for len in [15, 16, 17, 65_535, 65_536, 65_537] { inputs.append(Array(mixed.prefix(len))) }
        for input in inputs {
            let c = input.withUnsafeBytes { Snappy.compress($0) }
            #expect(c.count <= 32 + input.count + input.count / 6)
            let d = try c.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompress(p, expected: input.count) }
            #expect(d == input, "\(input.count) bytes")
        }
    }

    // MARK: helpers

    static func rows(of needle: [UInt8], in file: ParquetFile) throws -> [Int64] {
        var rows: [Int64] = []
        for g in 0..<file.rowGroups.count {
            try file.scanColumn(path: ["user_id"], rowGroup: g) { row, v in if let v, Array(v) == needle { rows.append(row) } }
        }
        return rows
    }

    /// PLAIN bytes of `column`'s values at `rows`.
    static func values(of column: String, rows: [Int64], in file: ParquetFile) throws -> [[UInt8]] {
        let want = Set(rows)
        var out: [[UInt8]] = []
        for g in 0..<file.rowGroups.count {
            try file.scanColumn(path: [column], rowGroup: g) { row, v in if want.contains(row), let v { out.append(Array(v)) } }
        }
        return out
    }

    static func rewrite(_ file: ParquetFile, _ rows: [Int64], options: PageRewriteOptions) throws -> (ParquetFile, [UInt8], RewriteResult) {
        var sink = InMemorySink()
        let result = try file.rewrite(droppingRows: rows, to: &sink, pageOptions: options)
        #expect(result.droppedRows == Int64(rows.count))
        return (try ParquetFile(bytes: sink.bytes, name: file.name + "-erased"), sink.bytes, result)
    }

    /// Where the needle still appears: the raw file, any decompressed page, any statistics.
    static func residue(_ needle: [UInt8], _ out: ParquetFile, _ bytes: [UInt8]) throws -> [String] {
        var found: [String] = []
        if bytes.firstRange(of: needle) != nil { found.append("file bytes") }
        for (g, rg) in out.rowGroups.enumerated() {
            for (c, chunk) in rg.columns.enumerated() {
                let md = try #require(chunk.metaData)
                if let s = md.statistics, [s.minValue, s.maxValue, s.legacyMin, s.legacyMax].contains(where: { $0 == needle }) {
                    found.append("statistics rg \(g) col \(c)")
                }
                var pages = try PageIterator(chunk: try out.columnChunkBytes(column: c, rowGroup: g), codecRaw: md.codecRaw, options: out.options)
                while let p = try pages.next() {
                    if p.data.firstRange(of: needle) != nil { found.append("page \(pages.index - 1) rg \(g) col \(c) (\(p.header.type))") }
                }
            }
        }
        return found
    }

    /// Every dictionary entry (PLAIN bytes) of a column, over all row groups.
    static func dictionaryEntries(_ file: ParquetFile, column: String) throws -> Set<[UInt8]> {
        let c = try file.column([column]).index
        let desc = file.schema.columns[c]
        var out = Set<[UInt8]>()
        for g in 0..<file.rowGroups.count {
            let md = try #require(file.rowGroups[g].columns[c].metaData)
            var pages = try PageIterator(chunk: try file.columnChunkBytes(column: c, rowGroup: g), codecRaw: md.codecRaw, options: file.options)
            guard let p = try pages.next(), p.header.type == .dictionaryPage else { continue }
            var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
            try withBytes(p.data) { (d) throws(ParquetError) in _ = try acc.appendPlain(d, count: p.header.numValues) }
            out.formUnion(ParquetFile.plainEntries(acc.result()))
        }
        return out
    }

    /// pyarrow and DuckDB read each result as its original minus the dropped rows (schema, types,
    /// values, statistics).
    static func peersRead(_ jobs: [(name: String, original: String, bytes: [UInt8], rows: [Int64])]) throws {
        let dir = Env.tempDir("pagecopy-verify-\(jobs.first?.name ?? "")")
        defer { try? FileManager.default.removeItem(at: dir) }
        var list: [[String: Any]] = []
        for j in jobs {
            let p = dir.appendingPathComponent(j.name + ".erased.parquet").path
            try Data(j.bytes).write(to: URL(fileURLWithPath: p))
            list.append(["name": j.name, "orig": j.original, "new": p, "dropped": j.rows.map { Int($0) }])
        }
        let jobsPath = dir.appendingPathComponent("jobs.json")
        try JSONSerialization.data(withJSONObject: list).write(to: jobsPath)
        let report = try JSONSerialization.jsonObject(with: Data(try Env.runScript(["verifyall", jobsPath.path]).utf8)) as! [[String: Any]]
        #expect(report.count == jobs.count)
        for r in report {
            let errors = r["errors"] as! [String]
            #expect(errors.isEmpty, "\(r["name"]!): \(errors.joined(separator: "; "))")
        }
    }
}
