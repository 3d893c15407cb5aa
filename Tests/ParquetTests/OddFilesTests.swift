import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// Files other writers produce that pyarrow and DuckDB read (generated equivalents of the
/// Apache parquet-testing cases, written by scripts/parquet_oddities.py with pyarrow and
/// byte patches): read as leniently as the mainstream readers where the data is unambiguous.
struct OddFile: Sendable, CustomStringConvertible {
    var name: String, path: String, base: String, pyarrow: Bool
    var description: String { name }
}

let oddFileSet: Result<[OddFile], any Error> = Result {
    let dir = Env.tempDir("oddities")
    _ = try Peers.python([Peers.script("parquet_oddities.py"), "generate", dir.path], what: "parquet_oddities.py generate")
    let list = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [[String: Any]]
    return list.map { OddFile(name: $0["name"] as! String, path: $0["path"] as! String, base: $0["base"] as! String, pyarrow: $0["pyarrow"] as! Bool) }
}

func oddFile(_ name: String) throws -> OddFile {
    guard let f = try oddFileSet.get().first(where: { $0.name == name }) else { throw Env.ScriptFailed(description: "no odd file \(name)") }
    return f
}

@Suite struct OddFilesTests {
    static let names = ["hadoop_lz4", "hadoop_lz4_frames", "raw_lz4", "v2_empty_values", "footer_rows_zero", "dict_offset_missing", "dict_header_uncounted"]

    /// Each file reads as its unpatched original (pyarrow reads it the same way too).
    @Test(arguments: names) func readsLikeTheOriginal(name: String) throws {
        let f = try oddFile(name)
        #expect(f.pyarrow, "the generated \(name) is not readable by pyarrow: the fixture is wrong")
        let odd = try ParquetFile(source: try LocalFileSource(path: f.path), name: name)
        let base = try ParquetFile(source: try LocalFileSource(path: f.base), name: "base")
        #expect(odd.numRows == base.numRows && odd.numRows > 0)
        #expect(try readAllProjections(odd) == readAllProjections(base))
        for desc in odd.schema.columns {
            var a: [[UInt8]?] = [], b: [[UInt8]?] = []
            for g in 0..<odd.rowGroups.count { try odd.scanColumn(desc.index, rowGroup: g) { _, v in a.append(v.map { Array($0) }) } }
            for g in 0..<base.rowGroups.count { try base.scanColumn(desc.index, rowGroup: g) { _, v in b.append(v.map { Array($0) }) } }
            #expect(a == b, "\(name) \(desc.dottedPath)")
        }
    }

    /// A rewrite of a Hadoop-LZ4 file keeps codec LZ4 in Hadoop's framing for the chunks it
    /// re-encodes; pyarrow and DuckDB read the result as the original minus the dropped rows.
    @Test(arguments: ["hadoop_lz4", "raw_lz4", "footer_rows_zero", "v2_empty_values", "dict_offset_missing", "dict_header_uncounted"])
    func rewritesReadByPyarrow(name: String) throws {
        let f = try oddFile(name)
        let file = try ParquetFile(source: try LocalFileSource(path: f.path), name: name)
        let dropped: [Int64] = name == "v2_empty_values" ? [1] : [0, 3, 260, 261]  // row group 0 and 1 re-encoded
        var sink = InMemorySink()
        let result = try file.rewrite(droppingRows: dropped, to: &sink)
        #expect(result.droppedRows == Int64(dropped.count))
        let out = try ParquetFile(bytes: sink.bytes)
        #expect(out.numRows == file.numRows - Int64(dropped.count) && out.metadata.numRows == out.numRows)
        if name.contains("lz4") {
            for rg in out.rowGroups { for c in rg.columns { #expect(c.metaData?.codec == .lz4) } }
        }
        let dir = Env.tempDir("odd-rewrite-\(name)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let newPath = dir.appendingPathComponent("new.parquet").path, droppedPath = dir.appendingPathComponent("dropped.json").path
        try Data(sink.bytes).write(to: URL(fileURLWithPath: newPath))
        try Data("\(dropped)".utf8).write(to: URL(fileURLWithPath: droppedPath))
        let verdict = try Env.runScript(["verify", f.path, newPath, droppedPath])
        #expect(verdict.contains("\"ok\": true"), "\(verdict)")
    }

    /// Hadoop framing written by us reads back, frame lengths checked; a page that is not
    /// framed falls back to a bare LZ4 block, and garbage is a decompression error.
    @Test func lz4Framing() throws {
        let text = Array(String(repeating: "lethe forgets ", count: 50).utf8)
        let framed = text.withUnsafeBytes { LZ4.compressHadoop($0) }
        #expect(Array(framed.prefix(4)) == [0, 0, 2, 188])  // 700 bytes, big-endian
        #expect(try framed.withUnsafeBytes { try LZ4.decompressHadoop($0, expected: text.count) } == text)
        let bare = text.withUnsafeBytes { LZ4.compress($0) }
        #expect(try bare.withUnsafeBytes { try LZ4.decompressHadoop($0, expected: text.count) } == text)
        #expect(throws: ParquetError.self) { try [UInt8](repeating: 0xEE, count: 40).withUnsafeBytes { try LZ4.decompressHadoop($0, expected: 100) } }
        #expect(try [UInt8]().withUnsafeBytes { try LZ4.decompressHadoop($0, expected: 0) } == [])
    }
}
