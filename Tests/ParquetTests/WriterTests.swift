import Foundation
import Testing
@testable import Parquet

/// A deterministic table covering flat, optional, list and legacy types.
func sampleTable(rows n: Int) throws -> (ParquetSchema, [ColumnData]) {
    let schema = try ParquetSchema(
        root: .root([
            .leaf("id", .int64, .required),
            .leaf("name", .byteArray, logicalType: .string, convertedType: .utf8),
            .leaf("score", .double),
            .leaf("flag", .boolean),
            .list("tags", element: .leaf("element", .byteArray, logicalType: .string, convertedType: .utf8)),
            .leaf("ts", .int64, .required, logicalType: .timestamp(adjustedToUTC: true, unit: .micros)),
            .leaf("fixed", .fixedLenByteArray, typeLength: 4),
            .leaf("legacy_ts", .int96),
            .leaf("small", .int32, logicalType: .integer(bitWidth: 16, signed: true)),
        ]))
    var seed: UInt64 = 42
    func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 17 }
    var ids: [Int64] = [], names = ByteArrayValues(), nameDef: [UInt16] = []
    var scores: [Double] = [], scoreDef: [UInt16] = [], flags: [Bool] = [], flagDef: [UInt16] = []
    var tags = ByteArrayValues(), tagDef: [UInt16] = [], tagRep: [UInt16] = []
    var ts: [Int64] = [], fixed = ByteArrayValues(), fixedDef: [UInt16] = []
    var i96: [Int96] = [], i96Def: [UInt16] = [], small: [Int32] = [], smallDef: [UInt16] = []
    let words = ["alpha", "beta", "gamma", "delta", "épsilon", ""]
    for r in 0..<n {
        ids.append(Int64(r) * 7 - 1000)
        if next() % 5 == 0 { nameDef.append(0) } else { nameDef.append(1); names.append(Array("\(words[Int(next() % 6)])-\(next() % 50)".utf8)) }
        if next() % 4 == 0 { scoreDef.append(0) } else { scoreDef.append(1); scores.append(Double(Int64(next() % 100_000) - 50_000) / 7) }
        if next() % 3 == 0 { flagDef.append(0) } else { flagDef.append(1); flags.append(next() % 2 == 0) }
        switch next() % 4 {
        case 0: tagDef.append(0); tagRep.append(0)
        case 1: tagDef.append(1); tagRep.append(0)
        default:
            let k = Int(next() % 4) + 1
            for j in 0..<k {
                tagRep.append(j == 0 ? 0 : 1)
                if next() % 5 == 0 { tagDef.append(2) } else { tagDef.append(3); tags.append(Array(words[Int(next() % 6)].utf8)) }
            }
        }
        ts.append(1_700_000_000_000_000 + Int64(next() % 1_000_000_000))
        if next() % 6 == 0 { fixedDef.append(0) } else { fixedDef.append(1); fixed.append((0..<4).map { _ in UInt8(next() % 256) }) }
        if next() % 6 == 0 {
            i96Def.append(0)
        } else {
            i96Def.append(1); i96.append(Int96(low: next() % 86_400_000_000_000, high: UInt32(2_460_000 + next() % 1000)))
        }
        if next() % 7 == 0 { smallDef.append(0) } else { smallDef.append(1); small.append(Int32(Int64(next() % 60000) - 30000)) }
    }
    return (
        schema,
        [
            ColumnData(values: .int64(ids)),
            ColumnData(values: .byteArray(names), definitionLevels: nameDef),
            ColumnData(values: .double(scores), definitionLevels: scoreDef),
            ColumnData(values: .boolean(flags), definitionLevels: flagDef),
            ColumnData(values: .byteArray(tags), definitionLevels: tagDef, repetitionLevels: tagRep),
            ColumnData(values: .int64(ts)),
            ColumnData(values: .fixedLenByteArray(fixed), definitionLevels: fixedDef),
            ColumnData(values: .int96(i96), definitionLevels: i96Def),
            ColumnData(values: .int32(small), definitionLevels: smallDef),
        ]
    )
}

struct WriterConfig: Sendable, CustomStringConvertible {
    var name: String
    var options: WriterOptions
    var description: String { name }

    static var all: [WriterConfig] {
        var out: [WriterConfig] = []
        var o = WriterOptions()
        o.columns.codec = .snappy
        out.append(WriterConfig(name: "snappy_v1_dict", options: o))
        o.columns.codec = .zstd; o.columns.pageVersion = 2; o.columns.pageIndex = true; o.columns.pageChecksums = true; o.columns.pageStatistics = true
        o.columns.maxSlotsPerPage = 100
        out.append(WriterConfig(name: "zstd_v2_dict_index_crc", options: o))
        o = WriterOptions(); o.columns.codec = .gzip; o.columns.dictionary = false; o.columns.legacyMinMax = true
        out.append(WriterConfig(name: "gzip_v1_plain", options: o))
        o = WriterOptions(); o.columns.codec = .lz4Raw; o.columns.dictionary = false; o.columns.pageVersion = 2
        var d = o.columns
        d.valueEncoding = .deltaBinaryPacked; o.perColumn["id"] = d; o.perColumn["ts"] = d; o.perColumn["small"] = d
        d.valueEncoding = .deltaByteArray; o.perColumn["name"] = d; o.perColumn["fixed"] = d
        d.valueEncoding = .deltaLengthByteArray; o.perColumn["tags.list.element"] = d
        d.valueEncoding = .byteStreamSplit; o.perColumn["score"] = d
        d.valueEncoding = .rle; o.perColumn["flag"] = d
        out.append(WriterConfig(name: "lz4_v2_delta_bss", options: o))
        o = WriterOptions(); o.columns.codec = .uncompressed; o.columns.maxSlotsPerPage = 37; o.columns.v2CompressValues = false
        out.append(WriterConfig(name: "none_v1_small_pages", options: o))
        return out
    }
}

@Suite struct WriterTests {
    @Test func writtenFilesReadBackAndPyarrowDuckDBAgree() throws {
        let (schema, columns) = try sampleTable(rows: 700)
        let dir = Env.tempDir("writer")
        var paths: [String] = []
        var jobs: [[String: Any]] = []
        for cfg in WriterConfig.all {
            var w = try ParquetWriter(
                sink: InMemorySink(), schema: schema, options: cfg.options,
                keyValueMetadata: [KeyValue(key: "writer", value: cfg.name)])
            // Two row groups: rows 0..<400 and 400..<700.
            let (a, b) = splitRows(columns, schema, at: 400)
            try w.writeRowGroup(a)
            try w.writeRowGroup(b)
            try w.close()
            let bytes = w.sink.bytes
            let file = try ParquetFile(bytes: bytes, name: cfg.name)
            #expect(file.numRows == 700)
            #expect(file.rowGroups.count == 2)
            for c in 0..<columns.count {
                #expect(try file.readColumn(c, rowGroup: 0) == a[c], "\(cfg.name) column \(schema.columns[c].dottedPath)")
                #expect(try file.readColumn(c, rowGroup: 1) == b[c], "\(cfg.name) column \(schema.columns[c].dottedPath)")
            }
            let path = dir.appendingPathComponent(cfg.name + ".parquet").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            paths.append(path)
            jobs.append(["name": cfg.name, "orig": path, "new": path, "dropped": [Int]()])
        }
        // pyarrow reads what we wrote.
        _ = try Env.runScript(["dumpall"] + paths)
        for (i, path) in paths.enumerated() {
            let file = try ParquetFile(source: try LocalFileSource(path: path))
            let exp = try expectedColumns(Fixture(name: WriterConfig.all[i].name, path: path, expected: path + ".json", writer: "lethe"))
            let ours = try readAllProjections(file)
            #expect(exp.numRows == 700)
            for (c, col) in exp.columns.enumerated() {
                #expect(col.rows == ours[c], "\(WriterConfig.all[i].name) \(col.path)")
            }
        }
        // Statistics match the data for pyarrow, and DuckDB reads the same rows.
        let jobsPath = dir.appendingPathComponent("jobs.json")
        try JSONSerialization.data(withJSONObject: jobs).write(to: jobsPath)
        let report = try JSONSerialization.jsonObject(with: Data(try Env.runScript(["verifyall", jobsPath.path]).utf8)) as! [[String: Any]]
        for r in report {
            #expect((r["errors"] as! [String]).isEmpty, "\(r["name"]!): \(r["errors"]!)")
            #expect(r["duckdb_unsupported"] as? Bool == false)
        }
    }

    @Test func statisticsAreComputed() throws {
        let schema = try ParquetSchema(
            root: .root([
                .leaf("u", .int32, logicalType: .integer(bitWidth: 32, signed: false)),
                .leaf("s", .byteArray, logicalType: .string),
                .leaf("d", .double),
            ]))
        var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
        try w.writeRowGroup([
            ColumnData(values: .int32([5, -1, 7]), definitionLevels: [1, 1, 0, 1]),
            ColumnData(
                values: .byteArray(ByteArrayValues([Array("b".utf8), Array("ab".utf8), Array("c".utf8), Array("b".utf8)])), definitionLevels: [1, 1, 1, 1]),
            ColumnData(values: .double([0.0, .nan, -2.5]), definitionLevels: [1, 1, 1, 0]),
        ])
        try w.close()
        let file = try ParquetFile(bytes: w.sink.bytes)
        let st = file.rowGroups[0].columns.map { $0.metaData!.statistics! }
        // Unsigned order: -1 is 0xFFFFFFFF, the maximum.
        #expect(st[0].minValue == [5, 0, 0, 0])
        #expect(st[0].maxValue == [0xff, 0xff, 0xff, 0xff])
        #expect(st[0].nullCount == 1)
        #expect(st[1].minValue == Array("ab".utf8))
        #expect(st[1].maxValue == Array("c".utf8))
        #expect(st[2].minValue == withUnsafeBytes(of: (-2.5).bitPattern) { Array($0) })
        #expect(st[2].maxValue == withUnsafeBytes(of: (0.0).bitPattern) { Array($0) })
    }

    @Test func rejectsInconsistentColumns() throws {
        let schema = try ParquetSchema(root: .root([.leaf("a", .int64), .leaf("b", .int64, .required)]))
        var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
        #expect(throws: ParquetError.self) { try w.writeRowGroup([ColumnData(values: .int64([1]))]) }
        #expect(throws: ParquetError.self) {
            try w.writeRowGroup([ColumnData(values: .int64([1]), definitionLevels: [1, 1]), ColumnData(values: .int64([1, 2]))])
        }
        #expect(throws: ParquetError.self) {
            try w.writeRowGroup([ColumnData(values: .int32([1]), definitionLevels: [1]), ColumnData(values: .int64([1]))])
        }
        #expect(throws: ParquetError.self) {
            try w.writeRowGroup([ColumnData(values: .int64([1]), definitionLevels: [1]), ColumnData(values: .int64([1, 2]))])
        }
    }
}

/// Splits column data at a row boundary.
func splitRows(_ columns: [ColumnData], _ schema: ParquetSchema, at row: Int) -> ([ColumnData], [ColumnData]) {
    var a: [ColumnData] = [], b: [ColumnData] = []
    for (c, data) in columns.enumerated() {
        let maxDef = schema.columns[c].maxDefinitionLevel
        let n = data.rowCount
        a.append(data.droppingRows(Array(row..<n), maxDefinitionLevel: maxDef))
        b.append(data.droppingRows(Array(0..<row), maxDefinitionLevel: maxDef))
    }
    return (a, b)
}
