import Foundation
import Testing
@testable import Parquet

/// The rows a test drops from a fixture: every 7th row (from row 3) of row
/// group 0, all of row group 2; other row groups stay untouched.
func rowsToDrop(_ file: ParquetFile) -> [Int64] {
    var rows: [Int64] = []
    let groups = file.rowGroups
    guard !groups.isEmpty else { return [] }
    for r in stride(from: Int64(3), to: groups[0].numRows, by: 7) { rows.append(r) }
    if groups.count > 2 {
        let first = file.rowGroupFirstRow[2]
        for r in 0..<groups[2].numRows { rows.append(first + r) }
    }
    return rows
}

/// The original's per-column projections without the dropped rows.
func expectedAfterDrop(_ original: [[Proj]], _ dropped: [Int64]) -> [[Proj]] {
    let drop = Set(dropped.map { Int($0) })
    return original.map { col in col.enumerated().filter { !drop.contains($0.offset) }.map(\.element) }
}

@Suite struct RewriteInteropTests {
    @Test func erasingRowsFromEveryFixture() throws {
        let dir = Env.tempDir("rewrite")
        var jobs: [[String: Any]] = []
        for f in try fixtures() where f.name != "empty" {
            let file = try ParquetFile(source: try LocalFileSource(path: f.path), name: f.name)
            let dropped = rowsToDrop(file)
            var sink = InMemorySink()
            let result = try file.rewrite(droppingRows: dropped, to: &sink)
            #expect(result.droppedRows == Int64(dropped.count))
            #expect(result.keptRows == file.numRows - Int64(dropped.count))
            #expect(result.bytesWritten == Int64(sink.bytes.count))
            let out = try ParquetFile(bytes: sink.bytes, name: f.name + "-erased")
            #expect(out.numRows == result.keptRows)
            #expect(out.schema == file.schema, "\(f.name): schema changed")
            #expect(out.keyValueMetadata == file.keyValueMetadata)

            // Our reader: original minus dropped rows.
            let before = try readAllProjections(file)
            let after = try readAllProjections(out)
            #expect(after == expectedAfterDrop(before, dropped), "\(f.name): values differ after erasure")

            // Untouched row groups are byte-identical; re-encoded ones keep codec, encodings kind and page version.
            for (g, outcome) in result.rowGroups.enumerated() {
                switch outcome {
                case .copied(let n):
                    for c in 0..<file.schema.columns.count {
                        #expect(
                            try file.columnChunkBytes(column: c, rowGroup: g) == out.columnChunkBytes(column: c, rowGroup: n),
                            "\(f.name) row group \(g) column \(c) not byte-identical")
                    }
                case .reencoded(let n, let d):
                    #expect(d > 0)
                    for c in 0..<file.schema.columns.count {
                        let a = file.rowGroups[g].columns[c].metaData!, b = out.rowGroups[n].columns[c].metaData!
                        #expect(a.codecRaw == b.codecRaw)
                        let (_, la) = try file.readColumnWithLayout(c, rowGroup: g)
                        let (_, lb) = try out.readColumnWithLayout(c, rowGroup: n)
                        #expect(la.pageVersion == lb.pageVersion, "\(f.name) \(c)")
                        #expect(la.hasDictionary == lb.hasDictionary, "\(f.name) \(c)")
                        #expect(la.pageCRC == lb.pageCRC)
                        if lb.dataPageCount > 0 && la.dictionaryIndexEncoding == nil { #expect(la.valueEncoding == lb.valueEncoding, "\(f.name) \(c)") }
                        #expect(b.bloomFilterOffset == nil)
                    }
                case .removed:
                    #expect(g == 2)
                }
            }
            let path = dir.appendingPathComponent(f.name + ".erased.parquet").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(sink.bytes))
            jobs.append(["name": f.name, "orig": f.path, "new": path, "dropped": dropped.map { Int($0) }])
        }
        // pyarrow and DuckDB read every result as the original minus the dropped rows.
        let jobsPath = dir.appendingPathComponent("jobs.json")
        try JSONSerialization.data(withJSONObject: jobs).write(to: jobsPath)
        let report = try JSONSerialization.jsonObject(with: Data(try Env.runScript(["verifyall", jobsPath.path]).utf8)) as! [[String: Any]]
        #expect(report.count == jobs.count)
        for r in report {
            let errors = r["errors"] as! [String]
            // DuckDB cannot read BYTE_STREAM_SPLIT on FIXED_LEN_BYTE_ARRAY (the original either).
            #expect((r["duckdb_unsupported"] as? Bool ?? false) == (r["name"] as! String).contains("bss_flba"), "\(r["name"]!)")
            #expect(errors.isEmpty, "\(r["name"]!): \(errors.joined(separator: "; "))")
        }
    }

    @Test func erasedSubjectLeavesNoTraceInUncompressedFile() throws {
        let f = try fixture("flat_none_v1")
        let file = try ParquetFile(bytes: f.bytes, name: f.name)
        // Collect subjects per row; pick one whose rows all sit in row group 0.
        var subjectRows: [String: [Int64]] = [:]
        for g in 0..<file.rowGroups.count {
            try file.scanColumn(path: ["subject"], rowGroup: g) { row, v in
                subjectRows[String(decoding: v!, as: UTF8.self), default: []].append(row)
            }
        }
        let victim = try #require(subjectRows.min { $0.key < $1.key })
        let needle = Array(victim.key.utf8)
        #expect(f.bytes.firstRange(of: needle) != nil)
        var sink = InMemorySink()
        let result = try file.rewrite(droppingRows: victim.value.sorted(), to: &sink)
        #expect(result.droppedRows == Int64(victim.value.count))
        #expect(sink.bytes.firstRange(of: needle) == nil, "subject bytes remain (dictionary or statistics)")
    }

    @Test func droppingEveryRowReportsEmpty() throws {
        let f = try fixture("flat_snappy_v1")
        let file = try ParquetFile(bytes: f.bytes, name: f.name)
        var sink = InMemorySink()
        let result = try file.rewrite(droppingRows: Array(0..<file.numRows), to: &sink)
        #expect(result.isEmpty)
        #expect(result.rowGroups.allSatisfy { if case .removed = $0 { return true } else { return false } })
        let out = try ParquetFile(bytes: sink.bytes)
        #expect(out.numRows == 0)
        #expect(out.rowGroups.isEmpty)
        #expect(out.schema == file.schema)
    }

    @Test func rejectsBadRowLists() throws {
        let file = try ParquetFile(bytes: try fixture("single_group").bytes)
        var sink = InMemorySink()
        #expect(throws: ParquetError.self) { try file.rewrite(droppingRows: [3, 2], to: &sink) }
        #expect(throws: ParquetError.self) { try file.rewrite(droppingRows: [file.numRows], to: &sink) }
        #expect(throws: ParquetError.self) { try file.rewrite(droppingRows: [-1], to: &sink) }
    }
}
