import Foundation
import Testing
@testable import Parquet

/// Rebuilds a file around a modified footer.
func withFooter(_ file: ParquetFile, _ bytes: [UInt8], _ meta: FileMetaData) -> [UInt8] {
    var out = Array(bytes[0..<Int(file.footerOffset)])
    let footer = meta.encoded()
    out += footer
    withUnsafeBytes(of: UInt32(footer.count).littleEndian) { out.append(contentsOf: $0) }
    out += ParquetLibrary.magic
    return out
}

/// Offset (in the file) of the first byte of the body of page `page` of a chunk.
func pageBodyOffset(_ file: ParquetFile, rowGroup: Int, column: Int, page: Int) throws -> (Int, Int) {
    let chunk = try file.columnChunkBytes(column: column, rowGroup: rowGroup)
    var pos = 0
    for p in 0...page {
        let (h, end) = try ThriftStruct.decode(chunk, from: pos, to: nil)
        let size = Int(h.i32(3)!)
        if p == page { return (Int(file.rowGroups[rowGroup].columns[column].metaData!.chunkStart) + end, size) }
        pos = end + size
    }
    fatalError("unreachable")
}

func expectError(_ code: ParquetError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ParquetError? {
    do {
        try body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
    } catch let e as ParquetError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected ParquetError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct BadInputTests {
    @Test func badMagicAndFooterErrors() throws {
        let good = try fixture("single_group").bytes
        var b = good
        b[b.count - 1] = 0x30
        let e1 = expectError(.badMagic) { _ = try ParquetFile(bytes: b, name: "x.parquet") }
        #expect(e1?.description.contains("x.parquet") == true)
        b = good; b[0] = 0
        _ = expectError(.badMagic) { _ = try ParquetFile(bytes: b) }
        _ = expectError(.truncated) { _ = try ParquetFile(bytes: Array(good[0..<10])) }
        // Footer length past the start of the file.
        b = good
        b[b.count - 8] = 0xff; b[b.count - 7] = 0xff; b[b.count - 6] = 0xff; b[b.count - 5] = 0x7f
        _ = expectError(.truncated) { _ = try ParquetFile(bytes: b) }
        // A truncated file (footer cut off) has no trailing magic.
        _ = expectError(.badMagic) { _ = try ParquetFile(bytes: Array(good[0..<(good.count - 3)])) }
        // Corrupt Thrift in the footer.
        b = good
        let len = Int(UInt32(b[b.count - 8]) | UInt32(b[b.count - 7]) << 8 | UInt32(b[b.count - 6]) << 16 | UInt32(b[b.count - 5]) << 24)
        for i in (b.count - 8 - len)..<(b.count - 8 - len + 40) { b[i] = 0xff }
        _ = expectError(.corruptMetadata) { _ = try ParquetFile(bytes: b) }
    }

    @Test func crcMismatchNamesFileRowGroupColumnPage() throws {
        let f = try fixture("small_plain_crc")
        var b = f.bytes
        let file = try ParquetFile(bytes: b, name: f.name)
        let col = try file.column(["i64"])
        let (off, size) = try pageBodyOffset(file, rowGroup: 1, column: col.index, page: 1)
        b[off + size - 1] ^= 0x10
        let bad = try ParquetFile(bytes: b, name: "crc.parquet")
        let e = expectError(.checksum) { _ = try bad.readColumn(col.index, rowGroup: 1) }
        #expect(e?.file == "crc.parquet")
        #expect(e?.rowGroup == 1)
        #expect(e?.column == "i64")
        #expect(e?.page == 1)
        #expect(e?.description.contains("row group 1, column i64, page 1") == true)
        _ = expectError(.checksum) { try bad.scanColumn(path: ["i64"], rowGroup: 1) { _, _ in } }
        // With checks off, the corrupted value is read.
        var o = ReadOptions(); o.verifyChecksums = false
        let lax = try ParquetFile(bytes: b, options: o)
        #expect(throws: Never.self) { _ = try lax.readColumn(col.index, rowGroup: 1) }
    }

    @Test func decompressionFailureIsReported() throws {
        let f = try fixture("flat_snappy_v1")
        var b = f.bytes
        let file = try ParquetFile(bytes: b, name: f.name)
        let col = try file.column(["f64"])
        let (off, _) = try pageBodyOffset(file, rowGroup: 0, column: col.index, page: 1)
        b[off] ^= 0x01  // the Snappy length preamble no longer matches the page header
        let e = expectError(.decompression) { _ = try ParquetFile(bytes: b, name: f.name).readColumn(col.index, rowGroup: 0) }
        #expect(e?.column == "f64")
        #expect(e?.page == 1)
    }

    @Test func valueCountsThatDoNotAddUp() throws {
        let f = try fixture("nested_v1")
        let file = try ParquetFile(bytes: f.bytes, name: f.name)
        let col = try file.column(["tags", "list", "element"])
        var meta = file.metadata
        var md = meta.rowGroups[0].columns[col.index].metaData!
        md.numValues += 5
        meta.rowGroups[0].columns[col.index].metaData = md
        let bad = try ParquetFile(bytes: withFooter(file, f.bytes, meta), name: f.name)
        let e = expectError(.corruptPage) { _ = try bad.readColumn(col.index, rowGroup: 0) }
        #expect(e?.description.contains("tags.list.element") == true)
        // A flat column whose value count differs from the row count is caught at open.
        meta = file.metadata
        md = meta.rowGroups[0].columns[0].metaData!
        md.numValues += 1
        meta.rowGroups[0].columns[0].metaData = md
        _ = expectError(.corruptMetadata) { _ = try ParquetFile(bytes: withFooter(file, f.bytes, meta)) }
        // A page header claiming more values than the chunk holds.
        meta = file.metadata
        md = meta.rowGroups[0].columns[col.index].metaData!
        md.numValues -= 1
        meta.rowGroups[0].columns[col.index].metaData = md
        _ = expectError(.corruptPage) { _ = try ParquetFile(bytes: withFooter(file, f.bytes, meta)).readColumn(col.index, rowGroup: 0) }
    }

    @Test func chunkRangeOutsideFile() throws {
        let f = try fixture("single_group")
        let file = try ParquetFile(bytes: f.bytes)
        var meta = file.metadata
        var md = meta.rowGroups[0].columns[1].metaData!
        md.totalCompressedSize = 1 << 40
        meta.rowGroups[0].columns[1].metaData = md
        _ = expectError(.corruptMetadata) { _ = try ParquetFile(bytes: withFooter(file, f.bytes, meta)) }
    }
}

/// A small deterministic PRNG for the mutation test.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e3779b97f4a7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}

/// Reads everything a file holds; throws the first error.
func readEverything(_ bytes: [UInt8], rewrite: Bool = true) throws -> [[ColumnData]] {
    let file = try ParquetFile(bytes: bytes, name: "mutant")
    var out: [[ColumnData]] = []
    for g in 0..<file.rowGroups.count {
        var cols: [ColumnData] = []
        for c in 0..<file.schema.columns.count {
            cols.append(try file.readColumn(c, rowGroup: g))
            if file.schema.columns[c].isFlat { try file.scanColumn(c, rowGroup: g) { _, _ in } }
        }
        out.append(cols)
    }
    var sink = InMemorySink()
    if rewrite && file.numRows > 0 { _ = try file.rewrite(droppingRows: [0], to: &sink) }
    return out
}

@Suite struct MutationTests {
    static let names = ["small_plain_crc", "small_nested_v2", "small_encodings", "single_group"]

    /// Flips, overwrites and truncates bytes thousands of times: every outcome is
    /// a ParquetError or a successful read (never a crash or another error); with
    /// page CRCs, a successful read returns the original values.
    @Test(arguments: names)
    func mutatedFilesFailCleanly(name: String) throws {
        let original = try fixture(name).bytes
        let reference = try readEverything(original)
        var rng = SplitMix(state: UInt64(name.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        var errors = 0, reads = 0
        let crcProtected = name.contains("crc")
        for i in 0..<750 {
            var b = original
            switch i % 5 {
            case 0: b = Array(b[0..<Int.random(in: 0..<b.count, using: &rng)])
            case 1:
                // Focus on the footer and page headers: the last quarter and chunk starts.
                let at = b.count - 1 - Int.random(in: 0..<max(1, b.count / 4), using: &rng)
                b[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 2:
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 3:
                let at = Int.random(in: 0..<b.count, using: &rng)
                b[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            default:
                // Chop a slice out of the middle.
                let a = Int.random(in: 0..<b.count, using: &rng)
                let n = Int.random(in: 1...16, using: &rng)
                b.removeSubrange(a..<min(b.count, a + n))
            }
            do {
                let got = try readEverything(b, rewrite: i % 4 == 0)
                reads += 1
                if crcProtected && b.count == original.count && i % 5 != 1 {
                    // Page bodies are CRC-protected; a clean read must be the original data
                    // (unless the flip hit a part of the footer that does not affect values).
                    if got != reference {
                        let file = try ParquetFile(bytes: b)
                        let diff = zip(b, original).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
                        let inData = diff.contains { $0 < Int(file.footerOffset) }
                        #expect(!inData, "mutation \(i) at \(diff) changed values without an error")
                    }
                }
            } catch is ParquetError {
                errors += 1
            } catch {
                Issue.record("mutation \(i): non-Parquet error \(error)")
            }
        }
        #expect(errors > 250, "only \(errors) of 750 mutations were detected")
        #expect(errors + reads == 750)
    }
}
