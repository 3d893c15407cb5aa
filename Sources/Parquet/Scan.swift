/// The subject-scan fast path: one leaf column, one row group, each row's value as
/// canonical text (see `CanonicalText`), without per-value allocation for byte arrays,
/// integers, decimals, dates, times and timestamps.

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
    /// Calls `visit` once per row of a leaf column in one row group, in row order,
    /// with the row's index in the file and its value's canonical text (nil for null;
    /// see `CanonicalText`). The buffer is only valid during the call.
    ///
    /// A column inside a repeated field (a list or map) gives each row the one value
    /// its elements hold (nil when it holds none); a row whose elements hold different
    /// values throws `unsupported`: the row belongs to several subjects at once.
    public func scanColumn(
        path: [String], rowGroup: Int,
        _ visit: (_ row: Int64, _ value: UnsafeRawBufferPointer?) throws -> Void
    ) throws {
        let desc = try column(path)
        try scanColumn(desc.index, rowGroup: rowGroup, visit)
    }

    /// `scanColumn(path:rowGroup:_:)` by leaf index. `form` overrides the text form the column's
    /// annotations give (a table format whose schema knows better, e.g. a Delta `timestamp`
    /// stored with `isAdjustedToUTC=false`, renders `…Z`).
    public func scanColumn(
        _ column: Int, rowGroup: Int, form: CanonicalText.Form? = nil,
        _ visit: (_ row: Int64, _ value: UnsafeRawBufferPointer?) throws -> Void
    ) throws {
        try scanColumnEntries(column, rowGroup: rowGroup, form: form) { row, _, value in try visit(row, value) }
    }

    /// `scanColumn(_:rowGroup:form:_:)` that also names, for each row whose value a dictionary-encoded
    /// page gives, the value's index in the chunk's dictionary (`entry`; -1 for a null, a value of a
    /// page in another encoding — PLAIN, DELTA_*, a writer's fallback from the dictionary mid-chunk —
    /// and every value of a column inside a list or map). Within one call the same entry is always the
    /// same value (its canonical text as `value` gives it), so a caller can work once per entry (key
    /// it, compare it) and reuse the result for every row that names it. Entries are below the
    /// dictionary's size; a dictionary may hold the same value twice (two entries). `dictionary`, when
    /// given, is called with the chunk's dictionary rendered (entry i is value i) when its page is read,
    /// before any row names an entry: a caller can work on all entries at once.
    ///
    /// `rows`, when given (a flag per row of the row group), lets the scan skip the data pages of a
    /// flat column that hold no flagged row — neither decompressed nor visited — and render the
    /// dictionary only when a page it reads needs it (not with `dictionary`); the rows of the pages
    /// it reads are visited, flagged or not, but for a dictionary-encoded page of a BYTE_ARRAY column
    /// (raw form), which visits only its flagged rows, their values read in the dictionary page as it
    /// is (no rendering of the whole dictionary).
    public func scanColumnEntries(
        _ column: Int, rowGroup: Int, form: CanonicalText.Form? = nil,
        dictionary: ((ByteArrayValues) throws -> Void)? = nil, rows: [Bool]? = nil,
        _ visit: (_ row: Int64, _ entry: Int, _ value: UnsafeRawBufferPointer?) throws -> Void
    ) throws {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count else { throw ParquetError(.invalidArgument, "no column \(column)", file: name) }
        let desc = schema.columns[column]
        guard desc.isFlat else {
            try scanRepeated(desc, rowGroup: rowGroup, form: form) { row, value in try visit(row, -1, value) }
            return
        }
        let chunk = try columnChunkBytes(column: column, rowGroup: rowGroup)
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        let firstRow = rowGroupFirstRow[rowGroup]
        var pageIndex = 0
        do {
            try scanChunk(
                chunk, desc: desc, form: form, codecRaw: md.codecRaw, numValues: md.numValues, firstRow: firstRow, pageIndex: &pageIndex,
                memo: (rowGroup, column), dictionary: dictionary, rows: dictionary == nil ? rows : nil, visit)
        } catch let e as ParquetError {
            throw e.located(file: name, rowGroup: rowGroup, column: desc.dottedPath, page: e.code == .corruptMetadata ? nil : pageIndex)
        }
    }

    /// `scanColumnEntries(_:rowGroup:form:dictionary:_:)` in bulk, for a caller that needs each row's
    /// dictionary entry rather than its value: appends one slot per row of the row group to `slots`, in
    /// row order — the row's entry (≥ 0) when a dictionary-encoded page gives its value, -1 for a null,
    /// and otherwise what `other` returns for the row's value (a value of a page in another encoding,
    /// and every value of a column inside a list or map; `other`'s result should be below -1). A
    /// dictionary-encoded page's indices are decoded straight into `slots`, without a call per row.
    /// `dictionary` is called as `scanColumnEntries` calls it. On an error, `slots` holds the slots of
    /// the rows `scanColumnEntries` would have visited before it (row `rowGroupFirstRow[rowGroup] + i`
    /// for the i-th slot appended), and the error is the one it would have thrown.
    public func scanColumnSlots(
        _ column: Int, rowGroup: Int, form: CanonicalText.Form? = nil, dictionary: ((ByteArrayValues) throws -> Void)? = nil,
        slots: inout [Int32], other: (_ row: Int64, _ value: UnsafeRawBufferPointer) throws -> Int32
    ) throws {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count else { throw ParquetError(.invalidArgument, "no column \(column)", file: name) }
        let desc = schema.columns[column]
        guard desc.isFlat else {
            try scanRepeated(desc, rowGroup: rowGroup, form: form) { row, value in
                slots.append(value == nil ? -1 : try other(row, value!))
            }
            return
        }
        let chunk = try columnChunkBytes(column: column, rowGroup: rowGroup)
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        var pageIndex = 0
        // The bulk closure escapes (an optional parameter), so what it shares with the row closure is
        // checked at run time on each access: the rows of other pages pay that, a dictionary page once.
        var out: [Int32] = []
        swap(&out, &slots)
        defer { swap(&out, &slots) }
        do {
            try scanChunk(
                chunk, desc: desc, form: form, codecRaw: md.codecRaw, numValues: md.numValues, firstRow: rowGroupFirstRow[rowGroup],
                pageIndex: &pageIndex, memo: (rowGroup, column), dictionary: dictionary,
                bulk: { n, fill in
                    let start = out.count
                    out.append(contentsOf: repeatElement(0, count: n))
                    do {
                        try out.withUnsafeMutableBufferPointer { try fill(UnsafeMutableBufferPointer(rebasing: $0[start...])) }
                    } catch {
                        out.removeSubrange(start...)
                        throw error
                    }
                }
            ) { row, _, value in
                out.append(value == nil ? -1 : try other(row, value!))
            }
        } catch let e as ParquetError {
            throw e.located(file: name, rowGroup: rowGroup, column: desc.dottedPath, page: e.code == .corruptMetadata ? nil : pageIndex)
        }
    }

    /// A column with a repeated ancestor: each row's elements must agree on one value.
    private func scanRepeated(
        _ desc: ColumnDescriptor, rowGroup: Int, form: CanonicalText.Form?,
        _ visit: (Int64, UnsafeRawBufferPointer?) throws -> Void
    ) throws {
        let data = try readColumn(desc.index, rowGroup: rowGroup)
        let renderer = ValueRenderer(desc, form: form)
        let reps = data.repetitionLevels ?? []
        let defs = data.definitionLevels
        let maxDef = UInt16(desc.maxDefinitionLevel)
        var row = rowGroupFirstRow[rowGroup] - 1
        var vi = 0
        var current: [UInt8] = []
        var has = false
        func emit() throws {
            if has {
                try current.withUnsafeBytes { try visit(row, $0) }
            } else {
                try visit(row, nil)
            }
        }
        for s in 0..<reps.count {
            if reps[s] == 0 {
                if s > 0 { try emit() }
                row += 1
                has = false
                current.removeAll(keepingCapacity: true)
            }
            guard defs == nil || defs![s] == maxDef else { continue }
            try renderer.withValue(data.values, vi) { v in
                if !has {
                    current.append(contentsOf: v)
                    has = true
                } else if !current.elementsEqual(v) {
                    throw ParquetError(
                        .unsupported,
                        "row \(row) holds different values in \(desc.dottedPath), which is inside a repeated field (list or map): the row belongs to several subjects, so erasing one would drop the others' data",
                        file: name, rowGroup: rowGroup, column: desc.dottedPath)
                }
            }
            vi += 1
        }
        if !reps.isEmpty { try emit() }
    }

    private func scanChunk(
        _ chunk: [UInt8], desc: ColumnDescriptor, form: CanonicalText.Form?, codecRaw: Int32, numValues: Int64, firstRow: Int64,
        pageIndex: inout Int, memo: (rowGroup: Int, column: Int)? = nil, dictionary onDictionary: ((ByteArrayValues) throws -> Void)?,
        rows wanted: [Bool]? = nil,
        bulk: ((_ count: Int, _ fill: (UnsafeMutableBufferPointer<Int32>) throws -> Void) throws -> Void)? = nil,
        _ visit: (Int64, Int, UnsafeRawBufferPointer?) throws -> Void
    ) throws {
        var pages = try PageIterator(chunk: chunk, codecRaw: codecRaw, options: options)
        let maxDef = desc.maxDefinitionLevel
        let renderer = ValueRenderer(desc, form: form)
        var dictionary = ChunkDictionary.none
        // With `wanted`, a BYTE_ARRAY dictionary is read as it is (no rendering, no copy): a few of its
        // entries are looked up, by the wanted rows.
        let lazyDictionary = wanted != nil && desc.physicalType == .byteArray && renderer.isRaw
        func render(_ page: DecodedPage) throws -> ByteArrayValues {
            let h = page.header
            guard h.numValues <= page.data.count * 8 else { throw ParquetError(.corruptPage, "dictionary page value count does not fit its size") }
            var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
            try withBytes(page.data) { (p) throws(ParquetError) in try acc.appendPlain(p, count: h.numValues) }
            return renderer.renderAll(acc.result())
        }
        var row = firstRow
        var remaining = numValues
        while true {
            pageIndex = pages.index
            if let wanted, let (h, bodyStart) = try pages.peekHeader(), h.type == .dataPage || h.type == .dataPageV2 {
                // A page of rows none of which is wanted: past it, unread (its header's counts still checked).
                let n = h.numValues
                guard Int64(n) <= remaining else { throw ParquetError(.corruptPage, "page holds \(n) values but only \(remaining) remain in the column chunk") }
                let lo = Int(row - firstRow)
                if lo >= 0, lo + n <= wanted.count, !wanted[lo..<(lo + n)].contains(true) {
                    guard h.compressedSize <= chunk.count - bodyStart else { throw ParquetError(.corruptPage, "page runs past the end of the column chunk") }
                    pages.pos = bodyStart + h.compressedSize
                    pages.index += 1
                    remaining -= Int64(n)
                    row += Int64(n)
                    continue
                }
            }
            guard let page = try pages.next() else { break }
            let h = page.header
            switch h.type {
            case .indexPage: continue
            case .dictionaryPage:
                guard case .none = dictionary else { throw ParquetError(.corruptPage, "second dictionary page") }
                if let memo, let kept = dictionaryMemo { kept.keep(page.data, rowGroup: memo.rowGroup, column: memo.column) }
                if wanted != nil {
                    dictionary = .unread(page)
                } else {
                    let rendered = try render(page)
                    dictionary = .rendered(rendered)
                    try onDictionary?(rendered)
                }
            case .dataPage, .dataPageV2:
                if case .unread(let p) = dictionary, let e = Encoding(rawValue: h.encoding), e.isDictionary {
                    dictionary =
                        lazyDictionary
                        ? .inPage(bytes: p.data, starts: try Self.plainEntryStarts(p.data, count: p.header.numValues)) : .rendered(try render(p))
                }
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
                        defs = try decodeLevels(
                            data, pos: &pos, count: n, maxLevel: maxDef, encoding: h.defLevelEncoding, v2Length: v2 ? h.defLevelsByteLength : nil)
                        nonNull = 0
                        for l in defs where Int(l) == maxDef { nonNull += 1 }
                    } else if v2 {
                        pos += h.defLevelsByteLength
                    }
                    if v2 && h.numNulls != n - nonNull { throw ParquetError(.corruptPage, "v2 page says \(h.numNulls) nulls, levels say \(n - nonNull)") }
                    guard pos <= data.count else { throw ParquetError(.corruptPage, "levels run past the end of the page") }
                }
                if maxDef == 0 && !(bulk != nil && enc.isDictionary) { defs = [UInt16](repeating: 0, count: n) }
                let valueLevel = UInt16(maxDef)
                try page.data.withUnsafeBytes { all in
                    try defs.withUnsafeBufferPointer { defp in
                        let data = UnsafeRawBufferPointer(rebasing: all[pos...])
                        @inline(__always) func isValue(_ s: Int) -> Bool { defp[s] == valueLevel }
                        if enc.isDictionary, let bulk {
                            guard let entries = dictionary.entries else {
                                throw ParquetError(.corruptPage, "dictionary-encoded page without a dictionary page")
                            }
                            // The page's indices decoded into the tail of its slots, checked, then spread
                            // over the rows from the front (a value's index never sits before its row's slot).
                            try bulk(n) { slots in
                                let nulls = n - nonNull
                                if nonNull > 0 {
                                    guard data.count >= 1 else { throw ParquetError(.corruptPage, "dictionary page data is empty") }
                                    var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[1...]), bitWidth: Int(data[0]))
                                    try dec.decode(into: slots.baseAddress! + nulls, count: nonNull)
                                }
                                let dcount = UInt32(entries)
                                for s in nulls..<n where UInt32(bitPattern: slots[s]) >= dcount {
                                    throw ParquetError(
                                        .corruptPage, "dictionary index \(UInt32(bitPattern: slots[s])) out of range (dictionary has \(dcount) values)")
                                }
                                if nulls > 0 {
                                    var vi = nulls
                                    for s in 0..<n {
                                        if isValue(s) {
                                            slots[s] = slots[vi]
                                            vi += 1
                                        } else {
                                            slots[s] = -1
                                        }
                                    }
                                }
                            }
                            row += Int64(n)
                        } else if enc.isDictionary {
                            guard let entries = dictionary.entries else {
                                throw ParquetError(.corruptPage, "dictionary-encoded page without a dictionary page")
                            }
                            var idx: [UInt32] = []
                            if nonNull > 0 {
                                guard data.count >= 1 else { throw ParquetError(.corruptPage, "dictionary page data is empty") }
                                var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[1...]), bitWidth: Int(data[0]))
                                idx = try dec.decode(count: nonNull)
                            }
                            let dcount = UInt32(entries)
                            for i in idx where i >= dcount {
                                throw ParquetError(.corruptPage, "dictionary index \(i) out of range (dictionary has \(dcount) values)")
                            }
                            if case .inPage(let dictBytes, let entryStarts) = dictionary, let wanted {
                                // Only the wanted rows visited, each value read from the dictionary page in place.
                                let lo = Int(row - firstRow)
                                try dictBytes.withUnsafeBytes { db in
                                    var vi = 0
                                    for s in 0..<n {
                                        let value = isValue(s)
                                        defer { if value { vi += 1 } }
                                        let w = lo + s
                                        guard w >= 0, w < wanted.count, wanted[w] else { continue }
                                        if value {
                                            let k = Int(idx[vi])
                                            let at = Int(entryStarts[k])
                                            let len = Int(db.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                                            try visit(row + Int64(s), k, UnsafeRawBufferPointer(rebasing: db[(at + 4)..<(at + 4 + len)]))
                                        } else {
                                            try visit(row + Int64(s), -1, nil)
                                        }
                                    }
                                }
                                row += Int64(n)
                                return
                            }
                            guard case .rendered(let dict) = dictionary else {
                                throw ParquetError(.corruptPage, "dictionary-encoded page without a dictionary page")
                            }
                            try dict.bytes.withUnsafeBytes { db in
                                try dict.offsets.withUnsafeBufferPointer { off in
                                    var vi = 0
                                    for s in 0..<n {
                                        if isValue(s) {
                                            let k = Int(idx[vi]); vi += 1
                                            try visit(row, k, UnsafeRawBufferPointer(rebasing: db[off[k]..<off[k + 1]]))
                                        } else {
                                            try visit(row, -1, nil)
                                        }
                                        row += 1
                                    }
                                }
                            }
                        } else if enc == .plain && desc.physicalType == .byteArray {
                            let raw = renderer.isRaw
                            var p = 0
                            for s in 0..<n {
                                if isValue(s) {
                                    guard data.count - p >= 4 else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY length truncated") }
                                    let len = Int(data.loadUnaligned(fromByteOffset: p, as: UInt32.self))
                                    p += 4
                                    guard data.count - p >= len else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY value past the end of the page") }
                                    let v = UnsafeRawBufferPointer(rebasing: data[p..<(p + len)])
                                    try visit(row, -1, raw ? v : renderer.bytes(v))
                                    p += len
                                } else {
                                    try visit(row, -1, nil)
                                }
                                row += 1
                            }
                        } else if enc == .plain && (desc.physicalType == .int64 || desc.physicalType == .int32) {
                            let wide = desc.physicalType == .int64
                            let w = wide ? 8 : 4
                            guard data.count >= nonNull * w else { throw ParquetError(.corruptPage, "PLAIN data holds fewer than \(nonNull) values") }
                            let signed = renderer.form == .signed
                            let scratch = renderer.scratch.reserve(64)
                            var vi = 0
                            for s in 0..<n {
                                if isValue(s) {
                                    let v: Int64 =
                                        wide
                                        ? data.loadUnaligned(fromByteOffset: vi * 8, as: Int64.self)
                                        : Int64(data.loadUnaligned(fromByteOffset: vi * 4, as: Int32.self))
                                    vi += 1
                                    try visit(row, -1, signed ? writeDecimal(v.magnitude, negative: v < 0, into: scratch) : renderer.int(v, wide: wide))
                                } else {
                                    try visit(row, -1, nil)
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
                                    try renderer.withValue(values, vi) { try visit(row, -1, $0) }
                                    vi += 1
                                } else {
                                    try visit(row, -1, nil)
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

extension ParquetFile {
    /// Where each of a PLAIN BYTE_ARRAY page's `count` values starts (its 4-byte length), checked to lie
    /// in the page as `ValueAccumulator.appendPlain` checks them.
    static func plainEntryStarts(_ data: [UInt8], count: Int) throws(ParquetError) -> [Int32] {
        guard count >= 0, count <= data.count / 4, data.count <= Int(Int32.max) else {
            throw ParquetError(.corruptPage, "dictionary page value count does not fit its size")
        }
        var starts = [Int32](repeating: 0, count: count)
        var pos = 0
        let ok: Bool = data.withUnsafeBytes { d in
            starts.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    guard d.count - pos >= 4 else { return false }
                    let len = Int(d.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
                    guard d.count - pos - 4 >= len else { return false }
                    out[i] = Int32(truncatingIfNeeded: pos)
                    pos += 4 + len
                }
                return true
            }
        }
        guard ok else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY dictionary value past the end of the page") }
        return starts
    }
}

extension ValueRenderer {
    /// Renders value `i` canonically and passes the bytes to `body`.
    func withValue<R>(_ values: ColumnValues, _ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch values {
        case .boolean(let a):
            let s: StaticString = a[i] ? "true" : "false"
            return try body(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        case .int32(let a): return try body(int(Int64(a[i]), wide: false))
        case .int64(let a): return try body(int(a[i], wide: true))
        case .int96(let a): return try body(int96(a[i]))
        case .float(let a): return try body(float(a[i]))
        case .double(let a): return try body(double(a[i]))
        case .byteArray(let b), .fixedLenByteArray(let b):
            return try b.withValue(i) { try body(isRaw ? $0 : bytes($0)) }
        }
    }

    /// Renders every value (used for dictionaries).
    func renderAll(_ values: ColumnValues) -> ByteArrayValues {
        if isRaw {
            if case .byteArray(let b) = values { return b }
            if case .fixedLenByteArray(let b) = values { return b }
        }
        var out = ByteArrayValues()
        for i in 0..<values.count {
            withValue(values, i) { out.append($0) }
        }
        return out
    }
}

/// A column chunk's dictionary, as far as a scan has read it.
private enum ChunkDictionary {
    /// No dictionary page seen (yet).
    case none
    /// Its page, read and not needed yet: rendered (or indexed in place) when a dictionary-encoded page needs it.
    case unread(DecodedPage)
    /// Rendered: entry i is value i.
    case rendered(ByteArrayValues)
    /// A BYTE_ARRAY dictionary read where it lies in its page: entry i's length prefix at `starts[i]`.
    case inPage(bytes: [UInt8], starts: [Int32])

    /// Its number of entries, once it has been rendered or indexed; nil before.
    var entries: Int? {
        switch self {
        case .none, .unread: return nil
        case .rendered(let d): return d.count
        case .inPage(_, let starts): return starts.count
        }
    }
}
