/// What a column chunk's own metadata says about a value, without reading its data pages: the
/// min/max statistics, the split-block bloom filter, and the dictionary of a chunk whose data pages
/// are all dictionary-encoded. Each "absent" is certain (a bloom filter has no false negatives; a
/// value outside [min, max] is not in the chunk; a fully dictionary-encoded chunk holds only its
/// dictionary's values). Anything this code cannot be sure of is `unknown`, never `absent`.

/// The verdict of one chunk's metadata on one value.
public enum ChunkEvidence: Sendable, Equatable {
    /// The chunk cannot hold the value; how that is known.
    case absent(EvidenceKind)
    /// The chunk's dictionary holds the value (and every data page is dictionary-encoded).
    case present
    /// The metadata cannot tell.
    case unknown
}

/// Which part of a chunk's metadata gave a verdict.
public enum EvidenceKind: String, Sendable, Equatable, CaseIterable {
    case statistics
    case bloomFilter = "bloom filter"
    case dictionary
}

/// A split-block bloom filter (`BloomFilter.md` of the Parquet format): 32-byte blocks of eight
/// 32-bit words; a value's XXH64 picks one block with its upper half and one bit in each word
/// with its lower half.
public struct SplitBlockBloomFilter: Sendable, Equatable {
    public let bitset: [UInt8]
    static let salt: [UInt32] = [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31]
    /// The largest filter read (the format's writers cap theirs at 128 MiB).
    public static let maxBytes = 128 << 20

    public init(bitset: [UInt8]) throws(ParquetError) {
        guard !bitset.isEmpty, bitset.count % 32 == 0 else {
            throw ParquetError(.corruptMetadata, "bloom filter of \(bitset.count) bytes is not a whole number of 32-byte blocks")
        }
        self.bitset = bitset
    }

    /// Parses a bloom filter as stored in a file: a Thrift `BloomFilterHeader` (size, algorithm
    /// BLOCK, hash XXHASH, compression UNCOMPRESSED) and then the bitset. Nil when the header names
    /// an algorithm, hash or compression this reader does not know (the filter says nothing then).
    /// Throws when the bytes end before the bitset does.
    public static func parse(_ bytes: [UInt8]) throws(ParquetError) -> SplitBlockBloomFilter? {
        let (header, body) = try ThriftStruct.decode(bytes)
        guard let n = header.i32(1), n > 0, Int(n) <= maxBytes else {
            throw ParquetError(.corruptMetadata, "bloom filter header has no valid size")
        }
        // Each of the three is a union whose field 1 is the only known member.
        for id: Int16 in [2, 3, 4] {
            guard let u = header.structure(id), u.fields.count == 1, u.fields[0].id == 1 else { return nil }
        }
        guard body + Int(n) <= bytes.count else {
            throw ParquetError(.truncated, "bloom filter of \(n) bytes runs past the \(bytes.count - body) bytes read")
        }
        return try SplitBlockBloomFilter(bitset: Array(bytes[body..<(body + Int(n))]))
    }

    /// False when the value whose XXH64 is `hash` was certainly never inserted.
    public func mightContain(hash: UInt64) -> Bool {
        let blocks = UInt64(bitset.count / 32)
        let block = Int(((hash >> 32) &* blocks) >> 32)
        let key = UInt32(truncatingIfNeeded: hash)
        return bitset.withUnsafeBytes { p in
            for i in 0..<8 {
                let word = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: block * 32 + i * 4, as: UInt32.self))
                let bit = UInt32(1) << ((key &* Self.salt[i]) >> 27)
                if word & bit == 0 { return false }
            }
            return true
        }
    }

    /// `mightContain` for a value given as its PLAIN bytes (BYTE_ARRAY: the bytes alone, no length).
    public func mightContain(plain value: [UInt8]) -> Bool { mightContain(hash: XXHash64.hash(value)) }
}

/// One page count of a chunk's `encoding_stats`.
public struct PageEncodingStats: Sendable, Equatable {
    public var pageType: Int32
    public var encoding: Int32
    public var count: Int32
}

extension ColumnMetaData {
    /// The chunk's `encoding_stats` (nil when the writer left them out).
    public var encodingStats: [PageEncodingStats]? {
        guard let list = raw.structList(13) else { return nil }
        return list.map { PageEncodingStats(pageType: $0.i32(1) ?? -1, encoding: $0.i32(2) ?? -1, count: $0.i32(3) ?? 0) }
    }

    /// True when the `encoding_stats` show every data page dictionary-encoded (and at least one
    /// dictionary page); false when they show another encoding; nil without `encoding_stats`.
    public var isFullyDictionaryEncoded: Bool? {
        guard let stats = encodingStats else { return nil }
        var dictionaryPage = false
        for s in stats where s.count > 0 {
            switch PageType(rawValue: s.pageType) {
            case .dictionaryPage?: dictionaryPage = true
            case .dataPage?, .dataPageV2?:
                guard let e = Encoding(rawValue: s.encoding), e.isDictionary else { return false }
            case .indexPage?: continue
            case nil: return false
            }
        }
        return dictionaryPage
    }
}

extension FileMetaData {
    /// True when the footer declares TYPE_DEFINED_ORDER for leaf column `column` (the order the
    /// statistics' `min_value`/`max_value` follow); files without `column_orders` say nothing.
    public func typeDefinedOrder(column: Int) -> Bool {
        guard let orders = raw.list(7), column < orders.count, case .structure(let o) = orders[column] else { return false }
        return o.fields.count == 1 && o.fields[0].id == 1
    }
}

extension ParquetFile {
    /// The byte ranges `evidence` reads for one chunk besides the footer: its bloom filter
    /// (`bloomProbe` bytes when the writer left its length out) and its dictionary page when
    /// every data page is dictionary-encoded.
    public func evidenceRanges(column: Int, rowGroup: Int, bloomProbe: Int64 = 4096) -> [Range<Int64>] {
        guard rowGroup >= 0, rowGroup < metadata.rowGroups.count, column >= 0, column < metadata.rowGroups[rowGroup].columns.count,
            let md = metadata.rowGroups[rowGroup].columns[column].metaData
        else { return [] }
        var out: [Range<Int64>] = []
        if let r = bloomRange(md, probe: bloomProbe) { out.append(r) }
        if md.isFullyDictionaryEncoded == true, let d = dictionaryRange(md) { out.append(d) }
        return out
    }

    private func bloomRange(_ md: ColumnMetaData, probe: Int64) -> Range<Int64>? {
        guard let off = md.bloomFilterOffset, off >= 4, off < source.size else { return nil }
        let len = md.bloomFilterLength.map(Int64.init) ?? probe
        guard len > 0 else { return nil }
        return off..<min(source.size, off + len)
    }

    private func dictionaryRange(_ md: ColumnMetaData) -> Range<Int64>? {
        guard let d = md.dictionaryPageOffset, d >= 4, md.dataPageOffset > d, md.dataPageOffset <= source.size else { return nil }
        return d..<md.dataPageOffset
    }

    /// The dictionary of a chunk whose data pages are all dictionary-encoded (by its
    /// `encoding_stats`): every value the chunk holds is one of these. Nil otherwise.
    public func fullDictionary(column: Int, rowGroup: Int) throws(ParquetError) -> ColumnValues? {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count, let md = metadata.rowGroups[rowGroup].columns[column].metaData,
            md.isFullyDictionaryEncoded == true, let range = dictionaryRange(md)
        else { return nil }
        let desc = schema.columns[column]
        return try withLocation(file: name, rowGroup: rowGroup, column: desc.dottedPath) { () throws -> ColumnValues? in
            var pages = try PageIterator(chunk: try source.read(range), codecRaw: md.codecRaw, options: options)
            guard let page = try pages.next(), page.header.type == .dictionaryPage else { return nil }
            guard let e = Encoding(rawValue: page.header.encoding), e == .plain || e == .plainDictionary else {
                throw ParquetError(.corruptPage, "dictionary page with encoding \(page.header.encoding)")
            }
            guard page.header.numValues <= page.data.count * 8 + 1 else {
                throw ParquetError(.corruptPage, "dictionary page value count does not fit its size")
            }
            var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
            try withBytes(page.data) { (p) throws(ParquetError) in _ = try acc.appendPlain(p, count: page.header.numValues) }
            return acc.result()
        }
    }

    /// The bloom filter of a chunk (nil when it has none, or one of an unknown kind).
    public func bloomFilter(column: Int, rowGroup: Int, bloomProbe: Int64 = 4096) throws(ParquetError) -> SplitBlockBloomFilter? {
        try checkRowGroup(rowGroup)
        guard let md = metadata.rowGroups[rowGroup].columns[column].metaData, let r = bloomRange(md, probe: bloomProbe) else { return nil }
        return try withLocation(file: name, rowGroup: rowGroup, column: schema.columns[column].dottedPath) {
            () throws -> SplitBlockBloomFilter? in
            var bytes = try source.read(r)
            if md.bloomFilterLength == nil {
                // Without a stated length, the probe may end inside the bitset: read to its end.
                let (header, body) = try ThriftStruct.decode(bytes)
                if let n = header.i32(1), n > 0, Int(n) <= SplitBlockBloomFilter.maxBytes, body + Int(n) > bytes.count {
                    let end = r.lowerBound + Int64(body) + Int64(n)
                    guard end <= source.size else { throw ParquetError(.truncated, "bloom filter runs past the end of the file") }
                    bytes = try source.read(r.lowerBound..<end)
                }
            }
            return try SplitBlockBloomFilter.parse(bytes)
        }
    }

    /// What the chunk of leaf `column` in `rowGroup` says about each of `values`, given as the
    /// column's PLAIN bytes (BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY: the bytes alone; INT32/INT64:
    /// little-endian). Statistics are used for byte arrays (unsigned order: no logical type,
    /// STRING, ENUM, JSON) and signed integers, only under TYPE_DEFINED_ORDER; the bloom filter and
    /// a full dictionary for every type. `absent` comes from the cheapest source that proves it.
    public func evidence(column: Int, rowGroup: Int, values: [[UInt8]], bloomProbe: Int64 = 4096) throws(ParquetError) -> [ChunkEvidence] {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count, let md = metadata.rowGroups[rowGroup].columns[column].metaData else {
            return values.map { _ in .unknown }
        }
        let desc = schema.columns[column]
        var out = [ChunkEvidence](repeating: .unknown, count: values.count)
        // A chunk of nulls only (or no values) holds nothing.
        if let s = md.statistics, let nulls = s.nullCount, nulls == md.numValues, desc.isFlat {
            return values.map { _ in .absent(.statistics) }
        }
        if let order = statisticsOrder(desc, column: column), let s = md.statistics, let lo = s.minValue, let hi = s.maxValue {
            for (i, v) in values.enumerated() where order(v, lo) < 0 || order(v, hi) > 0 { out[i] = .absent(.statistics) }
        }
        if out.contains(.unknown), let bloom = try bloomFilter(column: column, rowGroup: rowGroup, bloomProbe: bloomProbe) {
            for (i, v) in values.enumerated() where out[i] == .unknown && !bloom.mightContain(plain: v) { out[i] = .absent(.bloomFilter) }
        }
        if out.contains(.unknown), let dict = try fullDictionary(column: column, rowGroup: rowGroup) {
            let entries = Self.plainEntries(dict)
            for (i, v) in values.enumerated() where out[i] == .unknown { out[i] = entries.contains(v) ? .present : .absent(.dictionary) }
        }
        return out
    }

    /// Each dictionary entry as PLAIN bytes (byte arrays without their length).
    static func plainEntries(_ values: ColumnValues) -> Set<[UInt8]> {
        var out = Set<[UInt8]>()
        func le<T: FixedWidthInteger>(_ x: T) -> [UInt8] { withUnsafeBytes(of: x.littleEndian) { Array($0) } }
        switch values {
        case .byteArray(let v), .fixedLenByteArray(let v): for i in 0..<v.count { out.insert(Array(v[i])) }
        case .int32(let v): for x in v { out.insert(le(x)) }
        case .int64(let v): for x in v { out.insert(le(x)) }
        case .float(let v): for x in v { out.insert(le(x.bitPattern)) }
        case .double(let v): for x in v { out.insert(le(x.bitPattern)) }
        case .int96(let v): for x in v { out.insert(withUnsafeBytes(of: x) { Array($0) }) }
        case .boolean(let v): for x in v { out.insert([x ? 1 : 0]) }
        }
        return out
    }

    /// A comparison of PLAIN values in the order the statistics follow, when this reader knows it.
    private func statisticsOrder(_ desc: ColumnDescriptor, column: Int) -> (([UInt8], [UInt8]) -> Int)? {
        guard metadata.typeDefinedOrder(column: column) else { return nil }
        switch desc.physicalType {
        case .byteArray:
            switch desc.logicalType {
            case nil, .string?, .enumeration?, .json?: break
            default: return nil
            }
            if desc.logicalType == nil, let c = desc.convertedType, c != .utf8, c != .enumeration, c != .json { return nil }
            return { a, b in
                for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
                return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
            }
        case .int32, .int64:
            switch desc.logicalType {
            case nil: if desc.convertedType != nil { return nil }
            case .integer(_, let signed)?: if !signed { return nil }
            default: return nil
            }
            let width = desc.physicalType == .int32 ? 4 : 8
            return { a, b in
                guard a.count == width, b.count == width else { return 0 }  // malformed: never "outside"
                let x = Self.signed(a), y = Self.signed(b)
                return x == y ? 0 : (x < y ? -1 : 1)
            }
        default:
            return nil
        }
    }

    static func signed(_ le: [UInt8]) -> Int64 {
        var u: UInt64 = 0
        for (i, b) in le.enumerated() { u |= UInt64(b) << (8 * UInt64(i)) }
        if le.count == 4 { return Int64(Int32(truncatingIfNeeded: u)) }
        return Int64(bitPattern: u)
    }
}

extension ParquetFile {
    /// Every value the chunk of leaf `column` in `rowGroup` holds, as PLAIN sections: the
    /// dictionary page's body and the value section of each PLAIN data page (a section is
    /// `bytes[from...]`; a dictionary-encoded data page holds indices into the dictionary page,
    /// no value of its own). The pages are walked, not taken from `encoding_stats`. Nil when a
    /// data page has another encoding (or indices without a dictionary page first), or the column
    /// is not flat: then its values are not all written out PLAIN in the pages.
    public func plainValueSections(column: Int, rowGroup: Int) throws(ParquetError) -> [(bytes: [UInt8], from: Int)]? {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count, schema.columns[column].isFlat,
            let md = metadata.rowGroups[rowGroup].columns[column].metaData
        else { return nil }
        let desc = schema.columns[column]
        let chunk = try columnChunkBytes(column: column, rowGroup: rowGroup)
        return try withLocation(file: name, rowGroup: rowGroup, column: desc.dottedPath) { () throws -> [(bytes: [UInt8], from: Int)]? in
            var pages = try PageIterator(chunk: chunk, codecRaw: md.codecRaw, options: options)
            var out: [(bytes: [UInt8], from: Int)] = []
            var dictionary = false
            var pos = 0
            while true {
                pages.pos = pos
                guard let (h, bodyStart) = try pages.peekHeader() else { break }
                guard h.compressedSize <= chunk.count - bodyStart else { throw ParquetError(.corruptPage, "page runs past the end of the column chunk") }
                let start = pos
                pos = bodyStart + h.compressedSize
                guard let e = Encoding(rawValue: h.encoding) else { return nil }
                switch h.type {
                case .indexPage: continue
                case .dictionaryPage:
                    guard start == 0, e == .plain || e == .plainDictionary else { return nil }
                    dictionary = true
                case .dataPage, .dataPageV2:
                    if e.isDictionary {
                        guard dictionary else { return nil }
                        continue
                    }
                    guard e == .plain else { return nil }
                }
                pages.pos = start
                guard let page = try pages.next() else { return nil }
                var from = 0
                if h.type == .dataPageV2 {
                    from = h.repLevelsByteLength + h.defLevelsByteLength
                } else if h.type == .dataPage && desc.maxDefinitionLevel > 0 {
                    guard h.defLevelEncoding == Encoding.rle.rawValue, page.data.count >= 4 else { return nil }
                    from = 4 + Int(page.data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
                }
                guard from <= page.data.count else { throw ParquetError(.corruptPage, "levels run past the end of the page") }
                out.append((page.data, from))
            }
            return out
        }
    }
}
