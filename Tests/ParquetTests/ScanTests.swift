import Foundation
import Testing
@testable import Parquet

@Suite struct ScanTests {
    /// scanColumn yields, per row, exactly what readColumn reads, rendered canonically.
    @Test func scanMatchesReadColumnOnEveryFlatColumn() throws {
        var scanned = 0
        for f in try fixtures() {
            let file = try ParquetFile(source: try LocalFileSource(path: f.path), name: f.name)
            for desc in file.schema.columns where desc.isFlat {
                for g in 0..<file.rowGroups.count {
                    let data = try file.readColumn(desc.index, rowGroup: g)
                    var expected: [[UInt8]?] = []
                    var vi = 0
                    for s in 0..<data.slotCount {
                        if let d = data.definitionLevels, Int(d[s]) != desc.maxDefinitionLevel { expected.append(nil); continue }
                        expected.append(expectedCanonical(data.values, vi, desc))
                        vi += 1
                    }
                    var got: [[UInt8]?] = []
                    var rows: [Int64] = []
                    try file.scanColumn(path: desc.path, rowGroup: g) { row, v in
                        rows.append(row)
                        got.append(v.map { Array($0) })
                    }
                    let first = file.rowGroupFirstRow[g]
                    #expect(rows == Array(first..<(first + file.rowGroups[g].numRows)), "\(f.name) \(desc.dottedPath)")
                    #expect(got == expected, "\(f.name) \(desc.dottedPath) row group \(g)")
                    scanned += 1
                }
            }
        }
        #expect(scanned > 300)
    }

    @Test func scanRefusesRepeatedColumns() throws {
        let file = try ParquetFile(bytes: try fixture("nested_v1").bytes)
        #expect(throws: ParquetError.self) {
            try file.scanColumn(path: ["tags", "list", "element"], rowGroup: 0) { _, _ in }
        }
        #expect(throws: ParquetError.self) { try file.scanColumn(path: ["nope"], rowGroup: 0) { _, _ in } }
        #expect(throws: ParquetError.self) { try file.scanColumn(path: ["subject"], rowGroup: 99) { _, _ in } }
    }

    @Test func canonicalIntegersAreDecimalText() throws {
        let f = try fixture("flat_snappy_v1")
        let file = try ParquetFile(bytes: f.bytes)
        let u64 = try file.column(["u64"])
        #expect(u64.sortOrder == .unsigned)
        var sawLarge = false
        try file.scanColumn(path: ["u64"], rowGroup: 0) { _, v in
            guard let v else { return }
            let s = String(decoding: v, as: UTF8.self)
            #expect(UInt64(s) != nil, "\(s)")
            if let x = UInt64(s), x > UInt64(Int64.max) { sawLarge = true }
        }
        #expect(sawLarge)
    }
}

/// The documented canonical bytes, computed independently of the scan code.
func expectedCanonical(_ v: ColumnValues, _ i: Int, _ desc: ColumnDescriptor) -> [UInt8] {
    let unsigned = desc.sortOrder == .unsigned
    switch v {
    case .boolean(let a): return Array((a[i] ? "true" : "false").utf8)
    case .int32(let a): return Array((unsigned ? String(UInt32(bitPattern: a[i])) : String(a[i])).utf8)
    case .int64(let a): return Array((unsigned ? String(UInt64(bitPattern: a[i])) : String(a[i])).utf8)
    case .int96(let a): return a[i].bytes
    case .float(let a): return Array(a[i].description.utf8)
    case .double(let a): return Array(a[i].description.utf8)
    case .byteArray(let b), .fixedLenByteArray(let b): return Array(b[i])
    }
}
