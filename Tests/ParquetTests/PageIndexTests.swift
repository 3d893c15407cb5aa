import Foundation
import Testing
@testable import Parquet

@Suite struct PageIndexTests {
    /// After a rewrite, every offset index (copied or rebuilt) points at real page
    /// headers, and every bloom filter kept is byte-identical to the original's.
    @Test func offsetIndexesAndBloomFiltersStayValid() throws {
        for name in ["flat_crc_index", "flat_bloom"] {
            let f = try fixture(name)
            let file = try ParquetFile(bytes: f.bytes, name: name)
            let dropped = rowsToDrop(file)
            var sink = InMemorySink()
            let result = try file.rewrite(droppingRows: dropped, to: &sink)
            let out = try ParquetFile(bytes: sink.bytes, name: name)
            var checkedPages = 0, checkedBlooms = 0
            for (g, outcome) in result.rowGroups.enumerated() {
                let n: Int
                switch outcome {
                case .copied(let i): n = i
                case .reencoded(let i, _): n = i
                case .removed: continue
                }
                for c in 0..<out.schema.columns.count {
                    let chunk = out.rowGroups[n].columns[c]
                    let orig = file.rowGroups[g].columns[c]
                    #expect((chunk.offsetIndexOffset != nil) == (orig.offsetIndexOffset != nil), "\(name) \(g) \(c)")
                    if let off = chunk.offsetIndexOffset, let len = chunk.offsetIndexLength {
                        let (oi, _) = try ThriftStruct.decode(Array(sink.bytes[Int(off)..<Int(off) + Int(len)]))
                        let locs = try #require(oi.structList(1))
                        var firstRows: [Int64] = []
                        for l in locs {
                            let at = Int(l.i64(1)!)
                            let (h, end) = try ThriftStruct.decode(sink.bytes, from: at, to: nil)
                            #expect(Int(l.i32(2)!) == end - at + Int(h.i32(3)!), "\(name) row group \(n) column \(c)")
                            firstRows.append(l.i64(3)!)
                            checkedPages += 1
                        }
                        #expect(firstRows.first == 0)
                        #expect(firstRows == firstRows.sorted())
                    }
                    if let bo = chunk.metaData!.bloomFilterOffset {
                        guard case .copied = outcome else { Issue.record("bloom filter kept on a re-encoded chunk"); continue }
                        let len = Int(try #require(chunk.metaData!.bloomFilterLength))
                        let ob = Int(orig.metaData!.bloomFilterOffset!)
                        #expect(Array(sink.bytes[Int(bo)..<Int(bo) + len]) == Array(f.bytes[ob..<ob + len]))
                        checkedBlooms += 1
                    }
                }
            }
            if name == "flat_crc_index" { #expect(checkedPages > 20) } else { #expect(checkedBlooms > 0) }
        }
    }
}
