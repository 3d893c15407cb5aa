// Targets for the Parquet library: Thrift compact protocol and metadata, whole files
// (open, read and scan every column, select, rewrite), value encodings, page codecs.

@testable import Parquet

/// Reads a little-endian integer of `n` bytes at `i` (missing bytes are zero).
func littleEndian(_ d: UnsafeRawBufferPointer, _ i: Int, _ n: Int) -> Int {
    var v = 0
    for k in 0..<n where i + k < d.count { v |= Int(d[i + k]) << (8 * k) }
    return v
}

/// Thrift compact protocol: a struct decoded and re-encoded decodes to a struct that encodes
/// to the same bytes (the first encoding may normalise, e.g. the element type of a bool list);
/// then read as a footer (metadata, schema) and as a page header.
enum FuzzThrift {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = [UInt8](data)
        guard let (s, end) = try? ThriftStruct.decode(bytes) else { return }
        guard end > 0, end <= bytes.count else { Fuzz.fail("decode ended at \(end) of \(bytes.count)") }
        let once = s.encoded()
        guard let (t, tEnd) = try? ThriftStruct.decode(once) else { Fuzz.fail("re-encoded struct does not decode") }
        guard tEnd == once.count else { Fuzz.fail("re-encoded struct decodes to \(tEnd) of \(once.count) bytes") }
        let twice = t.encoded()
        guard twice == once else {
            Fuzz.fail("thrift encoding is not stable: \(firstDifference(s, t))")
        }
        if let meta = try? FileMetaData(raw: s) {
            _ = try? ParquetSchema(elements: meta.schema)
            let e = meta.encoded()
            guard let (u, _) = try? ThriftStruct.decode(e), (try? FileMetaData(raw: u)) != nil else {
                Fuzz.fail("re-encoded footer does not decode")
            }
        }
        _ = try? PageHeader(raw: s)
    }
}

/// Where two structs first differ, for the failure message.
func firstDifference(_ a: ThriftStruct, _ b: ThriftStruct, path: String = "") -> String {
    guard a.fields.count == b.fields.count else { return "\(path): \(a.fields.count) fields vs \(b.fields.count)" }
    for (x, y) in zip(a.fields, b.fields) where x != y {
        if x.id != y.id { return "\(path): field id \(x.id) vs \(y.id)" }
        return firstDifference(x.value, y.value, path: "\(path).\(x.id)")
    }
    return "\(path): equal"
}

func firstDifference(_ x: ThriftValue, _ y: ThriftValue, path: String) -> String {
    switch (x, y) {
    case let (.structure(u), .structure(v)):
        return firstDifference(u, v, path: path)
    case let (.list(t, u), .list(w, v)) where t == w && u.count == v.count:
        for (i, (p, q)) in zip(u, v).enumerated() where p != q { return firstDifference(p, q, path: "\(path)[\(i)]") }
        return "\(path): equal lists"
    default:
        return "\(path): \(x) vs \(y)"
    }
}

/// A whole Parquet file: open it, read and scan every column of every row group; when all of
/// that works, select rows, and rewrite it without its first row: the rewrite must open and
/// hold exactly the other rows.
enum FuzzParquet {
    static var options: ReadOptions {
        var o = ReadOptions()
        o.maxPageSize = 16 << 20
        o.maxValuesPerPage = 1 << 20
        return o
    }

    static func readAll(_ f: ParquetFile) -> Bool {
        var ok = true
        for g in 0..<f.rowGroups.count {
            for c in 0..<f.schema.columns.count {
                if (try? f.readColumn(c, rowGroup: g)) == nil { ok = false }
                if f.schema.columns[c].isFlat {
                    var rows: Int64 = 0
                    do {
                        try f.scanColumn(c, rowGroup: g) { _, _ in rows += 1 }
                        if rows != f.rowGroups[g].numRows { Fuzz.fail("scanColumn visited \(rows) rows of \(f.rowGroups[g].numRows)") }
                    } catch {
                        ok = false
                    }
                }
            }
        }
        return ok
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = [UInt8](data)
        guard let f = try? ParquetFile(bytes: bytes, name: "fuzz.parquet", options: options) else { return }
        guard readAll(f), f.numRows > 0, f.numRows <= 100_000 else { return }
        let n = f.numRows
        guard let before = try? f.selectRows(Array(1..<n)) else { return }
        var sink = InMemorySink()
        let result: RewriteResult
        do {
            result = try f.rewrite(droppingRows: [0], to: &sink)
        } catch {
            // Refusing to rewrite (an unsupported layout) is allowed; the file is left as it was.
            return
        }
        guard result.keptRows == n - 1, result.droppedRows == 1 else {
            Fuzz.fail("rewrite kept \(result.keptRows) and dropped \(result.droppedRows) of \(n) rows")
        }
        let g: ParquetFile
        do {
            g = try ParquetFile(bytes: sink.bytes, name: "rewritten.parquet", options: options)
        } catch {
            Fuzz.fail("the rewritten file does not open: \(error)")
        }
        guard g.numRows == n - 1 else { Fuzz.fail("the rewritten file has \(g.numRows) rows, expected \(n - 1)") }
        guard readAll(g) else { Fuzz.fail("a column of the rewritten file does not read") }
        guard n > 1 else { return }
        let after: [[ColumnData]]
        do {
            after = try g.selectRows(Array(0..<(n - 1)))
        } catch {
            Fuzz.fail("selectRows fails on the rewritten file: \(error)")
        }
        guard same(before, after) else { Fuzz.fail("the rewritten file's rows differ from the original's other rows") }
    }

    /// Equal values, comparing floating point by bit pattern (NaN payloads, -0.0).
    static func same(_ a: [[ColumnData]], _ b: [[ColumnData]]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            guard x.count == y.count else { return false }
            for (c, d) in zip(x, y) {
                guard c.definitionLevels == d.definitionLevels, c.repetitionLevels == d.repetitionLevels else { return false }
                switch (c.values, d.values) {
                case let (.float(u), .float(v)): if u.map(\.bitPattern) != v.map(\.bitPattern) { return false }
                case let (.double(u), .double(v)): if u.map(\.bitPattern) != v.map(\.bitPattern) { return false }
                default: if c.values != d.values { return false }
                }
            }
        }
        return true
    }
}

/// Value encodings on their own. Input: byte 0 the encoding, byte 1 the physical type,
/// byte 2 the FIXED_LEN_BYTE_ARRAY width, bytes 3-4 the value count, then the page data; for
/// dictionary encodings the dictionary is the count's PLAIN values decoded from the data.
enum FuzzEncodings {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 5 else { return }
        let encodings = Encoding.allCases
        let types = PhysicalType.allCases
        let encoding = encodings[Int(data[0]) % encodings.count]
        let type = types[Int(data[1]) % types.count]
        let width = type == .fixedLenByteArray ? Int(data[2] % 32) : 0
        let count = littleEndian(data, 3, 2) % 4097
        let body = UnsafeRawBufferPointer(rebasing: data[5...])
        var dictionary: ColumnValues?
        if encoding == .plainDictionary || encoding == .rleDictionary {
            var d = ValueAccumulator(type: type, width: width)
            if (try? d.appendPlain(body, count: min(count, 64))) == nil { return }
            dictionary = d.result()
        }
        var acc = ValueAccumulator(type: type, width: width)
        do {
            try acc.appendEncoded(encoding, body, count: count, dictionary: dictionary)
            guard acc.count == count else { Fuzz.fail("\(encoding) decoded \(acc.count) of \(count) \(type) values") }
        } catch {}
        // Levels, as a page's definition levels would be read (v1 RLE with its length prefix).
        var pos = 0
        _ = try? decodeLevels(body, pos: &pos, count: count, maxLevel: Int(data[2] % 4), encoding: Encoding.rle.rawValue, v2Length: nil)
        pos = 0
        _ = try? decodeLevels(body, pos: &pos, count: count, maxLevel: Int(data[2] % 4), encoding: Encoding.bitPacked.rawValue, v2Length: nil)
    }
}

/// Page codecs. Input: byte 0 the codec, bytes 1-3 the uncompressed size the page header
/// would claim, then the compressed page. A page that decompresses must decompress to exactly
/// the claimed size; compressing it again and decompressing gives it back.
enum FuzzCodecs {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 4 else { return }
        let codecs = CompressionCodec.allCases
        let codec = codecs[Int(data[0]) % codecs.count]
        let expected = littleEndian(data, 1, 3)
        let body = UnsafeRawBufferPointer(rebasing: data[4...])
        guard let out = try? Codecs.decompress(codec, body, expected: expected) else { return }
        guard out.count == expected else { Fuzz.fail("\(codec) produced \(out.count) bytes, header says \(expected)") }
        let packed: [UInt8]
        do {
            packed = try out.withUnsafeBytes { (p) throws(ParquetError) in try Codecs.compress(codec, p) }
        } catch {
            Fuzz.fail("\(codec) cannot compress what it decompressed: \(error)")
        }
        let back = try? packed.withUnsafeBytes { (p) throws(ParquetError) in try Codecs.decompress(codec, p, expected: out.count) }
        guard back == out else { Fuzz.fail("\(codec) round trip changed \(out.count) bytes") }
    }
}
