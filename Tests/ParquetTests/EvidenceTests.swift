import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The format's own evidence (statistics, bloom filters, full dictionaries) on files pyarrow and
/// DuckDB write: never "absent" for a value a chunk holds, and "absent" for most values it does not.
@Suite struct EvidenceTests {
    @Test func xxHash64MatchesTheReferenceVectors() {
        #expect(XXHash64.hash(Array("".utf8)) == 0xEF46_DB37_51D8_E999)
        #expect(XXHash64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        // 4-byte and 8-byte tail steps and the four-lane body: checked by the files' bloom filters below.
        #expect(XXHash64.hash(Array("abcd".utf8)) != XXHash64.hash(Array("abce".utf8)))
    }

    /// Writes `users` rows over `distinct` ids (`u0000001`…) with pyarrow or DuckDB; returns the file.
    static func write(_ writer: String, _ name: String, distinct: Int, rows: Int, options: String = "") throws -> ParquetFile {
        let dir = Env.tempDir("evidence-\(name)")
        let path = dir.appendingPathComponent("f.parquet").path
        let code: String
        if writer == "duckdb" {
            code = """
                import duckdb, sys
                c = duckdb.connect()
                c.execute("copy (select 'u' || lpad(cast((i * 7919) % \(distinct) as varchar), 7, '0') as user_id, i as n from range(\(rows)) t(i)) to '\(path)' (format parquet, row_group_size \(rows / 2) \(options))")
                """
        } else {
            code = """
                import pyarrow as pa, pyarrow.parquet as pq
                ids = ['u%07d' % ((i * 7919) % \(distinct)) for i in range(\(rows))]
                t = pa.table({'user_id': ids, 'n': list(range(\(rows)))})
                pq.write_table(t, '\(path)', row_group_size=\(rows / 2)\(options))
                """
        }
        try Peers.python(["-c", code], what: "\(writer) writes \(name)")
        return try ParquetFile(source: try LocalFileSource(path: path), name: name)
    }

    /// Every id of the file is never ruled out; ids not in it are ruled out `byAtLeast` of the time, by `kinds`.
    static func check(_ f: ParquetFile, distinct: Int, absentRuledOut byAtLeast: Double, kinds: Set<EvidenceKind>) throws {
        let col = try f.column(["user_id"]).index
        let present = (0..<distinct).map { Array(String(format: "u%07d", $0).utf8) }
        // Between the ids in sort order (so within every chunk's min/max), and two outside it.
        let absent = (0..<1000).map { Array(String(format: "u%07da", $0 * 3).utf8) } + [Array("a".utf8), Array("zzz".utf8)]
        var ruledOut = 0, total = 0
        var seen = Set<EvidenceKind>()
        for g in 0..<f.rowGroups.count {
            let held = try f.readColumn(col, rowGroup: g)
            var inGroup = Set<[UInt8]>()
            if case .byteArray(let v) = held.values { for i in 0..<v.count { inGroup.insert(Array(v[i])) } }
            let verdicts = try f.evidence(column: col, rowGroup: g, values: present + absent)
            for (v, e) in zip(present + absent, verdicts) {
                if inGroup.contains(v) {
                    #expect(e == .present || e == .unknown, "row group \(g) holds \(String(decoding: v, as: UTF8.self)) but the evidence says \(e)")
                } else if case .absent(let k) = e {
                    seen.insert(k)
                }
            }
            for e in verdicts.suffix(absent.count) {
                total += 1
                if case .absent = e { ruledOut += 1 }
            }
        }
        #expect(Double(ruledOut) >= byAtLeast * Double(total), "only \(ruledOut) of \(total) absent values ruled out")
        #expect(kinds.isSubset(of: seen), "evidence kinds \(seen), expected at least \(kinds)")
    }

    @Test func pyarrowBloomFilterAndDictionary() throws {
        let f = try Self.write("pyarrow", "pa-bloom", distinct: 3000, rows: 20000, options: ", bloom_filter_options={'user_id': {'ndv': 3000, 'fpp': 0.01}}")
        let md = f.rowGroups[0].columns[0].metaData!
        #expect(md.bloomFilterOffset != nil)
        #expect(md.isFullyDictionaryEncoded == true)
        try Self.check(f, distinct: 3000, absentRuledOut: 0.99, kinds: [.statistics, .bloomFilter])
    }

    @Test func pyarrowDictionaryWithoutBloomFilter() throws {
        let f = try Self.write("pyarrow", "pa-dict", distinct: 3000, rows: 20000)
        #expect(f.rowGroups[0].columns[0].metaData!.bloomFilterOffset == nil)
        try Self.check(f, distinct: 3000, absentRuledOut: 1.0, kinds: [.dictionary])
    }

    @Test func pyarrowPlainPagesGiveOnlyStatistics() throws {
        let f = try Self.write("pyarrow", "pa-plain", distinct: 3000, rows: 20000, options: ", use_dictionary=False")
        #expect(f.rowGroups[0].columns[0].metaData!.isFullyDictionaryEncoded == false)
        let col = try f.column(["user_id"]).index
        // In range, not in the file, no bloom filter, no dictionary: nothing can be said.
        #expect(try f.evidence(column: col, rowGroup: 0, values: [Array("u0000001a".utf8)]) == [.unknown])
        #expect(try f.evidence(column: col, rowGroup: 0, values: [Array("a".utf8)]) == [.absent(.statistics)])
        #expect(try f.fullDictionary(column: col, rowGroup: 0) == nil)
    }

    @Test func duckDBBloomFilters() throws {
        let f = try Self.write("duckdb", "duck", distinct: 500, rows: 40000)
        #expect(f.rowGroups[0].columns[0].metaData!.bloomFilterOffset != nil)
        try Self.check(f, distinct: 500, absentRuledOut: 0.99, kinds: [.bloomFilter])
    }

    @Test func integerColumnsUseSignedStatistics() throws {
        let dir = Env.tempDir("evidence-int")
        let path = dir.appendingPathComponent("f.parquet").path
        try Peers.python(
            [
                "-c",
                "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({'id': pa.array([-5, 3, 10, 7], pa.int64())}), '\(path)', use_dictionary=False)",
            ],
            what: "pyarrow writes int64")
        let f = try ParquetFile(source: try LocalFileSource(path: path))
        func le(_ x: Int64) -> [UInt8] { withUnsafeBytes(of: x.littleEndian) { Array($0) } }
        let e = try f.evidence(column: 0, rowGroup: 0, values: [le(-6), le(-5), le(4), le(10), le(11)])
        #expect(e == [.absent(.statistics), .unknown, .unknown, .unknown, .absent(.statistics)])
    }

    @Test func aBloomFilterOfAnotherKindSaysNothing() throws {
        var header = ThriftStruct()
        header[1] = .i32(32)
        header[2] = .structure(ThriftStruct([ThriftField(id: 1, value: .structure(ThriftStruct()))]))
        header[3] = .structure(ThriftStruct([ThriftField(id: 2, value: .structure(ThriftStruct()))]))  // not XXHASH
        header[4] = .structure(ThriftStruct([ThriftField(id: 1, value: .structure(ThriftStruct()))]))
        #expect(try SplitBlockBloomFilter.parse(header.encoded() + [UInt8](repeating: 0, count: 32)) == nil)
        header[3] = .structure(ThriftStruct([ThriftField(id: 1, value: .structure(ThriftStruct()))]))
        let filter = try #require(try SplitBlockBloomFilter.parse(header.encoded() + [UInt8](repeating: 0, count: 32)))
        #expect(!filter.mightContain(plain: Array("x".utf8)))
        #expect(throws: ParquetError.self) { try SplitBlockBloomFilter.parse(header.encoded() + [UInt8](repeating: 0, count: 31)) }
    }

    /// parquet-mr's xxHash bloom filter of "hello", "parquet", "bloom", "filter" (Apache
    /// parquet-testing), when the corpus is on this machine.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/work/corpora/parquet-testing/data/bloom_filter.xxhash.bin")))
    func parquetMRBloomFilter() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "/work/corpora/parquet-testing/data/bloom_filter.xxhash.bin")))
        let filter = try #require(try SplitBlockBloomFilter.parse(bytes))
        for w in ["hello", "parquet", "bloom", "filter"] { #expect(filter.mightContain(plain: Array(w.utf8)), "\(w)") }
        let misses = (0..<200).filter { !filter.mightContain(plain: Array("absent-\($0)".utf8)) }.count
        #expect(misses > 150)
    }
}
