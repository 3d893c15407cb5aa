/// Encoding one column chunk: dictionary, pages (v1/v2), compression, statistics,
/// page index entries.

/// How to encode one column chunk.
public struct ColumnWriteOptions: Sendable {
    public var codec: CompressionCodec = .snappy
    /// Dictionary-encode the column (falls back to `valueEncoding` for the whole
    /// chunk when the dictionary would exceed `dictionaryPageSizeLimit`).
    public var dictionary = true
    /// Index encoding of dictionary pages: RLE_DICTIONARY (modern) or PLAIN_DICTIONARY (legacy v1).
    public var dictionaryIndexEncoding: Encoding = .rleDictionary
    /// Encoding named in the dictionary page header: PLAIN or PLAIN_DICTIONARY.
    public var dictionaryPageEncoding: Encoding = .plain
    /// Value encoding when not dictionary-encoded: PLAIN, RLE (booleans), DELTA_BINARY_PACKED,
    /// DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT.
    public var valueEncoding: Encoding = .plain
    /// Data page version, 1 or 2.
    public var pageVersion = 1
    /// Target uncompressed size of a data page's values.
    public var dataPageSize = 1 << 20
    /// Most level slots (values + nulls) in a data page; pages end at row boundaries.
    public var maxSlotsPerPage = 20_000
    public var dictionaryPageSizeLimit = 1 << 20
    /// Write column chunk statistics (min/max/null count).
    public var statistics = true
    /// Also fill the deprecated min/max fields (signed-order types only).
    public var legacyMinMax = false
    /// Write statistics into each data page header.
    public var pageStatistics = false
    /// Write a CRC-32 in each page header.
    public var pageChecksums = false
    /// Write a column index and offset index for the chunk.
    public var pageIndex = false
    /// v2 pages: compress the values section.
    public var v2CompressValues = true
    /// Dictionary-encode BOOLEAN columns too (only to mirror an original file that did).
    public var dictionaryForBooleans = false
    public init() {}
}

struct PageIndexEntry {
    var offset: Int  // relative to chunk start
    var size: Int  // header + body
    var firstRow: Int64
    var nullPage: Bool
    var min: [UInt8]
    var max: [UInt8]
    var nullCount: Int64
}

struct EncodedChunk {
    var bytes: [UInt8]
    var meta: ColumnMetaData  // offsets relative to chunk start
    var pages: [PageIndexEntry]
    var hasDictionaryPage: Bool
    var dataPageOffset: Int

    /// The metadata with offsets placed at `base`.
    func metaData(at base: Int64) -> ColumnMetaData {
        var m = meta
        m.dataPageOffset = base + Int64(dataPageOffset)
        m.dictionaryPageOffset = hasDictionaryPage ? base : nil
        return m
    }
}

enum ChunkWriter {
    static func validate(_ data: ColumnData, _ desc: ColumnDescriptor) throws(ParquetError) {
        let col = desc.dottedPath
        guard data.values.physicalType == desc.physicalType else {
            throw ParquetError(.invalidArgument, "values are \(data.values.physicalType), column is \(desc.physicalType)", column: col)
        }
        if desc.maxDefinitionLevel == 0 && data.definitionLevels != nil && data.definitionLevels!.contains(where: { $0 != 0 }) {
            throw ParquetError(.invalidArgument, "definition levels given for a required column", column: col)
        }
        if desc.maxRepetitionLevel == 0 && data.repetitionLevels != nil && data.repetitionLevels!.contains(where: { $0 != 0 }) {
            throw ParquetError(.invalidArgument, "repetition levels given for a non-repeated column", column: col)
        }
        let slots = data.slotCount
        if desc.maxDefinitionLevel > 0 {
            guard let d = data.definitionLevels else { throw ParquetError(.invalidArgument, "optional/repeated column needs definition levels", column: col) }
            var n = 0
            for l in d {
                guard Int(l) <= desc.maxDefinitionLevel else {
                    throw ParquetError(.invalidArgument, "definition level \(l) above \(desc.maxDefinitionLevel)", column: col)
                }
                if Int(l) == desc.maxDefinitionLevel { n += 1 }
            }
            guard n == data.values.count else { throw ParquetError(.invalidArgument, "\(n) defined slots but \(data.values.count) values", column: col) }
        } else {
            guard slots == data.values.count else { throw ParquetError(.invalidArgument, "\(slots) slots but \(data.values.count) values", column: col) }
        }
        if desc.maxRepetitionLevel > 0 {
            guard let r = data.repetitionLevels, r.count == slots else {
                throw ParquetError(.invalidArgument, "repeated column needs one repetition level per slot", column: col)
            }
            if let f = r.first, f != 0 { throw ParquetError(.invalidArgument, "the first repetition level must be 0", column: col) }
            for l in r where Int(l) > desc.maxRepetitionLevel {
                throw ParquetError(.invalidArgument, "repetition level \(l) above \(desc.maxRepetitionLevel)", column: col)
            }
        }
        if desc.physicalType == .fixedLenByteArray, case .fixedLenByteArray(let b) = data.values {
            for i in 0..<b.count where b.offsets[i + 1] - b.offsets[i] != desc.typeLength {
                throw ParquetError(.invalidArgument, "FIXED_LEN_BYTE_ARRAY value \(i) is not \(desc.typeLength) bytes", column: col)
            }
        }
    }

    /// Dictionary-encodes values: the distinct values in first-seen order and one index per value.
    static func dictionaryEncode(_ values: ColumnValues) -> (ColumnValues, [UInt32]) {
        func fixed<K: Hashable>(_ keys: [K]) -> ([Int], [UInt32]) {
            var map: [K: UInt32] = [:]
            var firsts: [Int] = []
            var idx: [UInt32] = []
            idx.reserveCapacity(keys.count)
            for (i, k) in keys.enumerated() {
                if let j = map[k] {
                    idx.append(j)
                } else {
                    let j = UInt32(firsts.count)
                    map[k] = j
                    firsts.append(i)
                    idx.append(j)
                }
            }
            return (firsts, idx)
        }
        switch values {
        case .boolean(let a): let (f, i) = fixed(a); return (values.gather(f), i)
        case .int32(let a): let (f, i) = wordDictionary(a.count) { UInt64(UInt32(bitPattern: a[$0])) }; return (values.gather(f), i)
        case .int64(let a): let (f, i) = wordDictionary(a.count) { UInt64(bitPattern: a[$0]) }; return (values.gather(f), i)
        case .int96(let a): let (f, i) = fixed(a); return (values.gather(f), i)
        case .float(let a): let (f, i) = wordDictionary(a.count) { UInt64(a[$0].bitPattern) }; return (values.gather(f), i)
        case .double(let a): let (f, i) = wordDictionary(a.count) { a[$0].bitPattern }; return (values.gather(f), i)
        case .byteArray(let b), .fixedLenByteArray(let b):
            let (f, i) = byteDictionary(b)
            return (values.gather(f), i)
        }
    }

    /// Open-addressing hash of fixed-width values (as 64-bit words): first occurrences and indexes.
    static func wordDictionary(_ n: Int, _ word: (Int) -> UInt64) -> ([Int], [UInt32]) {
        var firsts: [Int] = []
        var idx = [UInt32](repeating: 0, count: n)
        var cap = 1024
        var keys = [UInt64](repeating: 0, count: cap)
        var slots = [Int32](repeating: -1, count: cap)
        @inline(__always) func slot(_ w: UInt64, _ cap: Int) -> Int { Int(truncatingIfNeeded: (w &* 0x9E37_79B9_7F4A_7C15) >> 32) & (cap - 1) }
        for i in 0..<n {
            let w = word(i)
            var s = slot(w, cap)
            while true {
                let e = slots[s]
                if e < 0 {
                    slots[s] = Int32(firsts.count)
                    keys[s] = w
                    idx[i] = UInt32(firsts.count)
                    firsts.append(i)
                    break
                }
                if keys[s] == w { idx[i] = UInt32(e); break }
                s = (s + 1) & (cap - 1)
            }
            if firsts.count * 2 > cap {
                // Grow: re-insert every distinct word.
                cap *= 4
                var k2 = [UInt64](repeating: 0, count: cap)
                var s2 = [Int32](repeating: -1, count: cap)
                for (j, first) in firsts.enumerated() {
                    let w = word(first)
                    var t = slot(w, cap)
                    while s2[t] >= 0 { t = (t + 1) & (cap - 1) }
                    s2[t] = Int32(j)
                    k2[t] = w
                }
                keys = k2
                slots = s2
            }
        }
        return (firsts, idx)
    }

    /// Open-addressing hash of byte strings (no per-value allocation).
    static func byteDictionary(_ b: ByteArrayValues) -> ([Int], [UInt32]) {
        var firsts: [Int] = []
        var idx = [UInt32](repeating: 0, count: b.count)
        var cap = 1024
        var table = [Int32](repeating: -1, count: cap)
        b.bytes.withUnsafeBufferPointer { p in
            b.offsets.withUnsafeBufferPointer { off in
                func hash(_ i: Int) -> Int {
                    var h: UInt64 = 0xcbf29ce484222325
                    for k in off[i]..<off[i + 1] { h = (h ^ UInt64(p[k])) &* 0x100000001b3 }
                    return Int(truncatingIfNeeded: h ^ (h >> 29))
                }
                func equal(_ x: Int, _ y: Int) -> Bool {
                    let lx = off[x + 1] - off[x]
                    guard lx == off[y + 1] - off[y] else { return false }
                    var k = 0
                    while k < lx { if p[off[x] + k] != p[off[y] + k] { return false }; k += 1 }
                    return true
                }
                var hashes: [Int] = []
                for i in 0..<b.count {
                    let h = hash(i)
                    var slot = h & (cap - 1)
                    while true {
                        let e = table[slot]
                        if e < 0 {
                            table[slot] = Int32(firsts.count)
                            idx[i] = UInt32(firsts.count)
                            firsts.append(i)
                            hashes.append(h)
                            break
                        }
                        if hashes[Int(e)] == h && equal(firsts[Int(e)], i) { idx[i] = UInt32(e); break }
                        slot = (slot + 1) & (cap - 1)
                    }
                    if firsts.count * 2 > cap {
                        cap *= 2
                        table = [Int32](repeating: -1, count: cap)
                        for (j, hj) in hashes.enumerated() {
                            var s = hj & (cap - 1)
                            while table[s] >= 0 { s = (s + 1) & (cap - 1) }
                            table[s] = Int32(j)
                        }
                    }
                }
            }
        }
        return (firsts, idx)
    }

    static func plainSize(_ v: ColumnValues, _ i: Int, width: Int) -> Int {
        switch v {
        case .boolean: return 1
        case .int32, .float: return 4
        case .int64, .double: return 8
        case .int96: return 12
        case .fixedLenByteArray: return width
        case .byteArray(let b): return 4 + b.offsets[i + 1] - b.offsets[i]
        }
    }

    static func statisticsStruct(_ mm: MinMax, nullCount: Int64, legacy: Bool) -> Statistics {
        var s = Statistics()
        if legacy, let mx = mm.max, let mn = mm.min { s.legacyMax = mx; s.legacyMin = mn }
        s.nullCount = nullCount
        if let mx = mm.max, let mn = mm.min {
            s.maxValue = mx
            s.minValue = mn
            s.isMaxValueExact = true
            s.isMinValueExact = true
        }
        return s
    }

    static func encode(_ data: ColumnData, desc: ColumnDescriptor, options o: ColumnWriteOptions, metaTemplate: ColumnMetaData? = nil) throws(ParquetError)
        -> EncodedChunk
    {
        try validate(data, desc)
        let maxDef = desc.maxDefinitionLevel, maxRep = desc.maxRepetitionLevel
        let slots = data.slotCount
        let order = desc.sortOrder
        let values = data.values

        // Dictionary (whole chunk), with fallback when too large.
        var dictValues: ColumnValues?
        var indices: [UInt32] = []
        // Booleans are never dictionary-encoded (Arrow cannot read that) unless a rewrite asks for it.
        let useDictionary = o.dictionary && (desc.physicalType != .boolean || o.dictionaryForBooleans)
        if useDictionary && values.count > 0 {
            let (d, i) = dictionaryEncode(values)
            var size = 0
            for k in 0..<d.count { size += plainSize(d, k, width: desc.typeLength) }
            if size <= o.dictionaryPageSizeLimit {
                dictValues = d
                indices = i
            }
        } else if useDictionary {
            dictValues = .empty(desc.physicalType)
        }
        let valueEncoding: Encoding = dictValues != nil ? o.dictionaryIndexEncoding : o.valueEncoding
        let indexWidth = dictValues.map { bitWidth(of: UInt64(max($0.count, 1) - 1)) } ?? 0

        var out: [UInt8] = []
        var totalUncompressed = 0
        var encodingStats: [(PageType, Encoding)] = []
        var hasDict = false
        if let dv = dictValues {
            let body = ValueEncoder.plain(dv)
            let comp = try withBytes(body) { (p) throws(ParquetError) in try Codecs.compress(o.codec, p) }
            var h = ThriftStruct()
            h[1] = .i32(PageType.dictionaryPage.rawValue)
            h[2] = .i32(Int32(body.count))
            h[3] = .i32(Int32(comp.count))
            if o.pageChecksums { h[4] = .i32(Int32(bitPattern: comp.withUnsafeBytes { Codecs.crc32($0) })) }
            var dh = ThriftStruct()
            dh[1] = .i32(Int32(dv.count))
            dh[2] = .i32(o.dictionaryPageEncoding.rawValue)
            dh[3] = .bool(false)
            h[7] = .structure(dh)
            let hb = h.encoded()
            out += hb
            out += comp
            totalUncompressed += hb.count + body.count
            encodingStats.append((.dictionaryPage, o.dictionaryPageEncoding))
            hasDict = true
        }
        let dataPageOffset = out.count

        // Split into pages at row boundaries.
        let def = data.definitionLevels
        let rep = data.repetitionLevels
        var pages: [PageIndexEntry] = []
        var slot = 0
        var valueIndex = 0
        var rowIndex: Int64 = 0
        let avgIndexBytes = max(1, indexWidth / 8)
        repeat {
            let startSlot = slot, startValue = valueIndex, startRow = rowIndex
            var bytes = 0
            var s = slot
            var vi = valueIndex
            while s < slots {
                if s > startSlot && (rep == nil || rep![s] == 0) {
                    if s - startSlot >= o.maxSlotsPerPage || bytes >= o.dataPageSize { break }
                }
                if rep == nil || rep![s] == 0 { rowIndex += 1 }
                if def == nil || Int(def![s]) == maxDef {
                    bytes += dictValues != nil ? avgIndexBytes : plainSize(values, vi, width: desc.typeLength)
                    vi += 1
                }
                s += 1
            }
            let n = s - startSlot
            let nv = vi - startValue
            slot = s
            valueIndex = vi
            let numRows = Int(rowIndex - startRow)

            // Levels.
            var repBytes: [UInt8] = [], defBytes: [UInt8] = []
            if maxRep > 0, let rep { repBytes = RLEEncoder.encode(rep[startSlot..<s], bitWidth: bitWidth(of: UInt64(maxRep))) }
            if maxDef > 0, let def { defBytes = RLEEncoder.encode(def[startSlot..<s], bitWidth: bitWidth(of: UInt64(maxDef))) }
            // Values.
            var valueBytes: [UInt8]
            if dictValues != nil {
                valueBytes = [UInt8(indexWidth)]
                valueBytes += RLEEncoder.encode(indices[startValue..<vi], bitWidth: indexWidth)
            } else {
                valueBytes = try ValueEncoder.encode(values.slice(startValue..<vi), valueEncoding, typeLength: desc.typeLength)
            }
            let nullCount = Int64(n - nv)
            let mm = (o.pageStatistics || o.pageIndex) ? MinMax.compute(values, startValue..<vi, order: order) : MinMax()

            var h = ThriftStruct()
            var body: [UInt8]
            var uncompressedSize: Int
            if o.pageVersion == 2 {
                let compressValues = o.v2CompressValues && o.codec != .uncompressed
                let vals = compressValues ? try withBytes(valueBytes) { (p) throws(ParquetError) in try Codecs.compress(o.codec, p) } : valueBytes
                body = repBytes + defBytes + vals
                uncompressedSize = repBytes.count + defBytes.count + valueBytes.count
                h[1] = .i32(PageType.dataPageV2.rawValue)
                var dh = ThriftStruct()
                dh[1] = .i32(Int32(n))
                dh[2] = .i32(Int32(nullCount))
                dh[3] = .i32(Int32(numRows))
                dh[4] = .i32(valueEncoding.rawValue)
                dh[5] = .i32(Int32(defBytes.count))
                dh[6] = .i32(Int32(repBytes.count))
                dh[7] = .bool(compressValues)
                if o.pageStatistics { dh[8] = .structure(statisticsStruct(mm, nullCount: nullCount, legacy: o.legacyMinMax && order == .signed).raw) }
                h[8] = .structure(dh)
            } else {
                var raw: [UInt8] = []
                func prefixed(_ b: [UInt8]) {
                    withUnsafeBytes(of: UInt32(b.count).littleEndian) { raw.append(contentsOf: $0) }
                    raw += b
                }
                if maxRep > 0 { prefixed(repBytes) }
                if maxDef > 0 { prefixed(defBytes) }
                raw += valueBytes
                uncompressedSize = raw.count
                body = try withBytes(raw) { (p) throws(ParquetError) in try Codecs.compress(o.codec, p) }
                h[1] = .i32(PageType.dataPage.rawValue)
                var dh = ThriftStruct()
                dh[1] = .i32(Int32(n))
                dh[2] = .i32(valueEncoding.rawValue)
                dh[3] = .i32(Encoding.rle.rawValue)
                dh[4] = .i32(Encoding.rle.rawValue)
                if o.pageStatistics { dh[5] = .structure(statisticsStruct(mm, nullCount: nullCount, legacy: o.legacyMinMax && order == .signed).raw) }
                h[5] = .structure(dh)
            }
            h[2] = .i32(Int32(uncompressedSize))
            h[3] = .i32(Int32(body.count))
            if o.pageChecksums { h[4] = .i32(Int32(bitPattern: body.withUnsafeBytes { Codecs.crc32($0) })) }
            let hb = h.encoded()
            let pageOffset = out.count
            out += hb
            out += body
            totalUncompressed += hb.count + uncompressedSize
            encodingStats.append((o.pageVersion == 2 ? .dataPageV2 : .dataPage, valueEncoding))
            pages.append(
                PageIndexEntry(
                    offset: pageOffset, size: hb.count + body.count, firstRow: startRow, nullPage: nv == 0,
                    min: mm.min ?? [], max: mm.max ?? [], nullCount: nullCount))
        } while slot < slots

        // Column metadata.
        var m = metaTemplate ?? ColumnMetaData(raw: ThriftStruct())
        m.raw[1] = .i32(desc.physicalType.rawValue)
        var encs = Set<Int32>([Encoding.rle.rawValue, valueEncoding.rawValue])
        if hasDict { encs.insert(o.dictionaryPageEncoding.rawValue) }
        m.encodings = encs.sorted()
        m.raw[3] = .list(.binary, desc.path.map { .binary(Array($0.utf8)) })
        m.raw[4] = .i32(o.codec.rawValue)
        m.numValues = Int64(slots)
        m.totalUncompressedSize = Int64(totalUncompressed)
        m.totalCompressedSize = Int64(out.count)
        m.raw[10] = nil  // index page offset
        m.raw[14] = nil  // bloom filter: not rebuilt
        m.raw[15] = nil
        m.raw[16] = nil  // size statistics would be stale
        m.raw[17] = nil  // geospatial statistics would be stale
        if o.statistics {
            let nulls = Int64(slots - values.count)
            m.statistics = statisticsStruct(
                MinMax.compute(values, 0..<values.count, order: order), nullCount: nulls, legacy: o.legacyMinMax && order == .signed)
        } else {
            m.statistics = nil
        }
        var counts: [String: (PageType, Encoding, Int)] = [:]
        var orderKeys: [String] = []
        for (t, e) in encodingStats {
            let k = "\(t.rawValue)/\(e.rawValue)"
            if let c = counts[k] { counts[k] = (t, e, c.2 + 1) } else { counts[k] = (t, e, 1); orderKeys.append(k) }
        }
        m.raw[13] = .list(
            .structure,
            orderKeys.map { k in
                let (t, e, c) = counts[k]!
                return .structure(
                    ThriftStruct([
                        ThriftField(id: 1, value: .i32(t.rawValue)), ThriftField(id: 2, value: .i32(e.rawValue)), ThriftField(id: 3, value: .i32(Int32(c))),
                    ]))
            })
        return EncodedChunk(bytes: out, meta: m, pages: pages, hasDictionaryPage: hasDict, dataPageOffset: dataPageOffset)
    }

    /// The Thrift ColumnIndex for a chunk's pages.
    static func columnIndex(_ pages: [PageIndexEntry]) -> [UInt8] {
        var s = ThriftStruct()
        s[1] = .list(.boolTrue, pages.map { .bool($0.nullPage) })
        s[2] = .list(.binary, pages.map { .binary($0.nullPage ? [] : $0.min) })
        s[3] = .list(.binary, pages.map { .binary($0.nullPage ? [] : $0.max) })
        s[4] = .i32(0)  // UNORDERED
        s[5] = .list(.i64, pages.map { .i64($0.nullCount) })
        return s.encoded()
    }

    /// The Thrift OffsetIndex for a chunk's pages placed at `base`.
    static func offsetIndex(_ pages: [PageIndexEntry], base: Int64) -> [UInt8] {
        var s = ThriftStruct()
        s[1] = .list(
            .structure,
            pages.map { p in
                .structure(
                    ThriftStruct([
                        ThriftField(id: 1, value: .i64(base + Int64(p.offset))),
                        ThriftField(id: 2, value: .i32(Int32(p.size))),
                        ThriftField(id: 3, value: .i64(p.firstRow)),
                    ]))
            })
        return s.encoded()
    }
}
