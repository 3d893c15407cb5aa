/// The subject-scan fast path: one flat column, one row group, each row's value
/// as canonical bytes, without per-value allocation for byte arrays and integers.

/// How `scanColumn` renders a value as bytes:
/// - BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY: the raw bytes.
/// - INT32 / INT64: decimal ASCII of the integer, unsigned when the logical or
///   converted type says so (UINT_8…UINT_64, INT(bw, false)); DECIMAL stored as
///   INT32/INT64 renders its unscaled integer.
/// - BOOLEAN: `true` / `false`.
/// - FLOAT / DOUBLE: Swift's shortest round-trip decimal (`1.5`, `nan`, `inf`).
/// - INT96: the 12 raw bytes.
public enum CanonicalBytes {}

/// "00" "01" … "99": two decimal digits per entry.
nonisolated(unsafe) let digitPairs: UnsafePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 200)
    for i in 0..<100 {
        p[2 * i] = UInt8(48 + i / 10)
        p[2 * i + 1] = UInt8(48 + i % 10)
    }
    return UnsafePointer(p)
}()

@inline(__always)
func writeDecimal(_ v: UInt64, negative: Bool, into p: UnsafeMutablePointer<UInt8>) -> UnsafeRawBufferPointer {
    // p has room for 24 bytes; digits are written from the end, two at a time.
    var i = 24
    var x = v
    let pairs = digitPairs
    while x >= 100 {
        let r = Int(x % 100)
        x /= 100
        i -= 2
        p[i] = pairs[2 * r]
        p[i + 1] = pairs[2 * r + 1]
    }
    if x >= 10 {
        i -= 2
        p[i] = pairs[2 * Int(x)]
        p[i + 1] = pairs[2 * Int(x) + 1]
    } else {
        i -= 1
        p[i] = UInt8(truncatingIfNeeded: 48 &+ x)
    }
    if negative { i -= 1; p[i] = 45 }
    return UnsafeRawBufferPointer(start: p + i, count: 24 - i)
}

extension ParquetFile {
    /// Calls `visit` once per row of a flat leaf column in one row group, in row
    /// order, with the row's index in the file and its value's canonical bytes
    /// (nil for null). The buffer is only valid during the call.
    public func scanColumn(path: [String], rowGroup: Int,
                           _ visit: (_ row: Int64, _ value: UnsafeRawBufferPointer?) throws -> Void) throws {
        let desc = try column(path)
        try scanColumn(desc.index, rowGroup: rowGroup, visit)
    }

    /// `scanColumn(path:rowGroup:_:)` by leaf index.
    public func scanColumn(_ column: Int, rowGroup: Int,
                           _ visit: (_ row: Int64, _ value: UnsafeRawBufferPointer?) throws -> Void) throws {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count else { throw ParquetError(.invalidArgument, "no column \(column)", file: name) }
        let desc = schema.columns[column]
        guard desc.isFlat else {
            throw ParquetError(.invalidArgument, "scanColumn needs a non-repeated column; use readColumn", file: name, column: desc.dottedPath)
        }
        let chunk = try columnChunkBytes(column: column, rowGroup: rowGroup)
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        let firstRow = rowGroupFirstRow[rowGroup]
        var pageIndex = 0
        do {
            try scanChunk(chunk, desc: desc, codecRaw: md.codecRaw, numValues: md.numValues, firstRow: firstRow, pageIndex: &pageIndex, visit)
        } catch let e as ParquetError {
            throw e.located(file: name, rowGroup: rowGroup, column: desc.dottedPath, page: e.code == .corruptMetadata ? nil : pageIndex)
        }
    }

    private func scanChunk(_ chunk: [UInt8], desc: ColumnDescriptor, codecRaw: Int32, numValues: Int64, firstRow: Int64,
                           pageIndex: inout Int, _ visit: (Int64, UnsafeRawBufferPointer?) throws -> Void) throws {
        var pages = try PageIterator(chunk: chunk, codecRaw: codecRaw, options: options)
        let maxDef = desc.maxDefinitionLevel
        let unsigned = desc.sortOrder == .unsigned
        var dict: ByteArrayValues?   // rendered dictionary
        var row = firstRow
        var remaining = numValues
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        defer { scratch.deallocate() }
        while true {
            pageIndex = pages.index
            guard let page = try pages.next() else { break }
            let h = page.header
            switch h.type {
            case .indexPage: continue
            case .dictionaryPage:
                guard dict == nil else { throw ParquetError(.corruptPage, "second dictionary page") }
                guard h.numValues <= page.data.count * 8 else { throw ParquetError(.corruptPage, "dictionary page value count does not fit its size") }
                var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
                try withBytes(page.data) { (p) throws(ParquetError) in try acc.appendPlain(p, count: h.numValues) }
                dict = render(acc.result(), unsigned: unsigned, scratch: scratch)
            case .dataPage, .dataPageV2:
                let n = h.numValues
                guard Int64(n) <= remaining else { throw ParquetError(.corruptPage, "page holds \(n) values but only \(remaining) remain in the column chunk") }
                guard n <= options.maxValuesPerPage else { throw ParquetError(.limitExceeded, "page of \(n) values exceeds the limit") }
                remaining -= Int64(n)
                guard let enc = Encoding(rawValue: h.encoding) else { throw ParquetError(.corruptPage, "unknown encoding \(h.encoding)") }
                let v2 = h.type == .dataPageV2
                var pos = 0
                var defs: [UInt16] = []
                var nonNull = n
                try withBytes(page.data) { (data) throws(ParquetError) in
                    if v2 { pos += h.repLevelsByteLength }
                    if maxDef > 0 {
                        defs = try decodeLevels(data, pos: &pos, count: n, maxLevel: maxDef, encoding: h.defLevelEncoding, v2Length: v2 ? h.defLevelsByteLength : nil)
                        nonNull = 0
                        for l in defs where Int(l) == maxDef { nonNull += 1 }
                    } else if v2 {
                        pos += h.defLevelsByteLength
                    }
                    if v2 && h.numNulls != n - nonNull { throw ParquetError(.corruptPage, "v2 page says \(h.numNulls) nulls, levels say \(n - nonNull)") }
                }
                if maxDef == 0 { defs = [UInt16](repeating: 0, count: n) }
                let valueLevel = UInt16(maxDef)
                try page.data.withUnsafeBytes { all in
                  try defs.withUnsafeBufferPointer { defp in
                    let data = UnsafeRawBufferPointer(rebasing: all[pos...])
                    @inline(__always) func isValue(_ s: Int) -> Bool { defp[s] == valueLevel }
                    if enc.isDictionary {
                        guard let dict else { throw ParquetError(.corruptPage, "dictionary-encoded page without a dictionary page") }
                        var idx: [UInt32] = []
                        if nonNull > 0 {
                            guard data.count >= 1 else { throw ParquetError(.corruptPage, "dictionary page data is empty") }
                            var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[1...]), bitWidth: Int(data[0]))
                            idx = try dec.decode(count: nonNull)
                        }
                        let dcount = UInt32(dict.count)
                        for i in idx where i >= dcount { throw ParquetError(.corruptPage, "dictionary index \(i) out of range (dictionary has \(dcount) values)") }
                        try dict.bytes.withUnsafeBytes { db in
                            try dict.offsets.withUnsafeBufferPointer { off in
                                var vi = 0
                                for s in 0..<n {
                                    if isValue(s) {
                                        let k = Int(idx[vi]); vi += 1
                                        try visit(row, UnsafeRawBufferPointer(rebasing: db[off[k]..<off[k + 1]]))
                                    } else {
                                        try visit(row, nil)
                                    }
                                    row += 1
                                }
                            }
                        }
                    } else if enc == .plain && desc.physicalType == .byteArray {
                        var p = 0
                        for s in 0..<n {
                            if isValue(s) {
                                guard data.count - p >= 4 else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY length truncated") }
                                let len = Int(data.loadUnaligned(fromByteOffset: p, as: UInt32.self))
                                p += 4
                                guard data.count - p >= len else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY value past the end of the page") }
                                try visit(row, UnsafeRawBufferPointer(rebasing: data[p..<(p + len)]))
                                p += len
                            } else {
                                try visit(row, nil)
                            }
                            row += 1
                        }
                    } else if enc == .plain && (desc.physicalType == .int64 || desc.physicalType == .int32) {
                        let w = desc.physicalType == .int64 ? 8 : 4
                        guard data.count >= nonNull * w else { throw ParquetError(.corruptPage, "PLAIN data holds fewer than \(nonNull) values") }
                        var vi = 0
                        for s in 0..<n {
                            if isValue(s) {
                                let v: Int64 = w == 8 ? data.loadUnaligned(fromByteOffset: vi * 8, as: Int64.self)
                                                      : Int64(data.loadUnaligned(fromByteOffset: vi * 4, as: Int32.self))
                                vi += 1
                                try visit(row, renderInt(v, wide: w == 8, unsigned: unsigned, scratch))
                            } else {
                                try visit(row, nil)
                            }
                            row += 1
                        }
                    } else {
                        var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
                        try acc.appendEncoded(enc, data, count: nonNull, dictionary: nil)
                        let values = acc.result()
                        var vi = 0
                        for s in 0..<n {
                            if isValue(s) {
                                try renderValue(values, vi, unsigned: unsigned, scratch) { try visit(row, $0) }
                                vi += 1
                            } else {
                                try visit(row, nil)
                            }
                            row += 1
                        }
                    }
                  }
                }
            }
        }
        pageIndex = pages.index
        guard remaining == 0 else {
            throw ParquetError(.corruptPage, "column chunk pages hold \(numValues - remaining) values, metadata says \(numValues)")
        }
    }
}

@inline(__always)
func renderInt(_ v: Int64, wide: Bool, unsigned: Bool, _ scratch: UnsafeMutablePointer<UInt8>) -> UnsafeRawBufferPointer {
    if unsigned {
        let u = wide ? UInt64(bitPattern: v) : UInt64(UInt32(truncatingIfNeeded: v))
        return writeDecimal(u, negative: false, into: scratch)
    }
    return writeDecimal(v.magnitude, negative: v < 0, into: scratch)
}

/// Renders value `i` canonically and passes the bytes to `body`.
func renderValue(_ values: ColumnValues, _ i: Int, unsigned: Bool, _ scratch: UnsafeMutablePointer<UInt8>,
                 _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    switch values {
    case .boolean(let a):
        let s: StaticString = a[i] ? "true" : "false"
        try body(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    case .int32(let a): try body(renderInt(Int64(a[i]), wide: false, unsigned: unsigned, scratch))
    case .int64(let a): try body(renderInt(a[i], wide: true, unsigned: unsigned, scratch))
    case .int96(let a):
        var v = a[i]
        withUnsafeBytes(of: &v.low) { lo in
            for k in 0..<8 { scratch[k] = lo[k] }
        }
        for k in 0..<4 { scratch[8 + k] = UInt8(truncatingIfNeeded: v.high >> (8 * UInt32(k))) }
        try body(UnsafeRawBufferPointer(start: scratch, count: 12))
    case .float(let a):
        var s = a[i].description
        try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    case .double(let a):
        var s = a[i].description
        try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    case .byteArray(let b), .fixedLenByteArray(let b):
        try b.withValue(i, body)
    }
}

/// Renders every value (used for dictionaries).
func render(_ values: ColumnValues, unsigned: Bool, scratch: UnsafeMutablePointer<UInt8>) -> ByteArrayValues {
    if case .byteArray(let b) = values { return b }
    if case .fixedLenByteArray(let b) = values { return b }
    var out = ByteArrayValues()
    for i in 0..<values.count {
        renderValue(values, i, unsigned: unsigned, scratch) { out.append($0) }
    }
    return out
}
