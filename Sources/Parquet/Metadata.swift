/// Parquet footer structures (parquet.thrift), as typed views over the Thrift
/// structs they were read from. Fields the library does not model stay in `raw`
/// and are written back unchanged.

/// The physical (storage) type of a leaf column.
public enum PhysicalType: Int32, Sendable, CaseIterable {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
}

/// Required, optional or repeated.
public enum Repetition: Int32, Sendable {
    case required = 0, optional = 1, repeated = 2
}

/// A page encoding.
public enum Encoding: Int32, Sendable, CaseIterable {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5
    case deltaLengthByteArray = 6, deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9
    var isDictionary: Bool { self == .plainDictionary || self == .rleDictionary }
}

/// A compression codec.
public enum CompressionCodec: Int32, Sendable, CaseIterable {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7
}

/// A page type.
public enum PageType: Int32, Sendable {
    case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3
}

/// The legacy converted type annotation.
public enum ConvertedType: Int32, Sendable {
    case utf8 = 0, map, mapKeyValue, list, enumeration, decimal, date, timeMillis, timeMicros
    case timestampMillis, timestampMicros, uint8, uint16, uint32, uint64, int8, int16, int32, int64
    case json, bson, interval
}

/// A decoded view of the `LogicalType` union. The raw Thrift value is kept on the
/// schema element; this is only for convenience.
public enum LogicalType: Sendable, Equatable {
    public enum TimeUnit: Sendable, Equatable { case millis, micros, nanos }
    case string, map, list, enumeration, json, bson, uuid, float16, unknown, variant
    case decimal(scale: Int32, precision: Int32)
    case date
    case time(adjustedToUTC: Bool, unit: TimeUnit)
    case timestamp(adjustedToUTC: Bool, unit: TimeUnit)
    case integer(bitWidth: Int8, signed: Bool)
    case other(fieldID: Int16)

    init?(_ s: ThriftStruct) {
        guard let f = s.fields.first else { return nil }
        let inner: ThriftStruct
        if case .structure(let i) = f.value { inner = i } else { inner = ThriftStruct() }
        func unit(_ u: ThriftStruct?) -> TimeUnit {
            switch u?.fields.first?.id {
            case 1: return .millis;
            case 3: return .nanos;
            default: return .micros
            }
        }
        switch f.id {
        case 1: self = .string
        case 2: self = .map
        case 3: self = .list
        case 4: self = .enumeration
        case 5: self = .decimal(scale: inner.i32(1) ?? 0, precision: inner.i32(2) ?? 0)
        case 6: self = .date
        case 7: self = .time(adjustedToUTC: inner.bool(1) ?? false, unit: unit(inner.structure(2)))
        case 8: self = .timestamp(adjustedToUTC: inner.bool(1) ?? false, unit: unit(inner.structure(2)))
        case 10:
            var bw: Int8 = 0
            if case .byte(let b)? = inner[1] { bw = b }
            self = .integer(bitWidth: bw, signed: inner.bool(2) ?? true)
        case 11: self = .unknown
        case 12: self = .json
        case 13: self = .bson
        case 14: self = .uuid
        case 15: self = .float16
        case 16: self = .variant
        default: self = .other(fieldID: f.id)
        }
    }

    /// The Thrift encoding of this logical type (for building new schemas).
    public var thrift: ThriftStruct {
        func empty(_ id: Int16) -> ThriftStruct { ThriftStruct([ThriftField(id: id, value: .structure(ThriftStruct()))]) }
        func unit(_ u: TimeUnit) -> ThriftValue {
            let id: Int16 = u == .millis ? 1 : (u == .micros ? 2 : 3)
            return .structure(ThriftStruct([ThriftField(id: id, value: .structure(ThriftStruct()))]))
        }
        func wrap(_ id: Int16, _ s: ThriftStruct) -> ThriftStruct { ThriftStruct([ThriftField(id: id, value: .structure(s))]) }
        switch self {
        case .string: return empty(1)
        case .map: return empty(2)
        case .list: return empty(3)
        case .enumeration: return empty(4)
        case .decimal(let s, let p): return wrap(5, ThriftStruct([ThriftField(id: 1, value: .i32(s)), ThriftField(id: 2, value: .i32(p))]))
        case .date: return empty(6)
        case .time(let utc, let u): return wrap(7, ThriftStruct([ThriftField(id: 1, value: .bool(utc)), ThriftField(id: 2, value: unit(u))]))
        case .timestamp(let utc, let u): return wrap(8, ThriftStruct([ThriftField(id: 1, value: .bool(utc)), ThriftField(id: 2, value: unit(u))]))
        case .integer(let bw, let signed): return wrap(10, ThriftStruct([ThriftField(id: 1, value: .byte(bw)), ThriftField(id: 2, value: .bool(signed))]))
        case .unknown: return empty(11)
        case .json: return empty(12)
        case .bson: return empty(13)
        case .uuid: return empty(14)
        case .float16: return empty(15)
        case .variant: return empty(16)
        case .other(let id): return empty(id)
        }
    }
}

/// One element of the flattened schema list.
public struct SchemaElement: Sendable, Equatable {
    public var raw: ThriftStruct
    public init(raw: ThriftStruct) { self.raw = raw }

    /// Builds a schema element. `children` is non-nil for groups.
    public init(
        name: String, type: PhysicalType? = nil, typeLength: Int32? = nil, repetition: Repetition?,
        numChildren: Int32? = nil, convertedType: ConvertedType? = nil, scale: Int32? = nil,
        precision: Int32? = nil, fieldID: Int32? = nil, logicalType: LogicalType? = nil
    ) {
        var s = ThriftStruct()
        if let type { s[1] = .i32(type.rawValue) }
        if let typeLength { s[2] = .i32(typeLength) }
        if let repetition { s[3] = .i32(repetition.rawValue) }
        s[4] = .binary(Array(name.utf8))
        if let numChildren { s[5] = .i32(numChildren) }
        if let convertedType { s[6] = .i32(convertedType.rawValue) }
        if let scale { s[7] = .i32(scale) }
        if let precision { s[8] = .i32(precision) }
        if let fieldID { s[9] = .i32(fieldID) }
        if let logicalType { s[10] = .structure(logicalType.thrift) }
        raw = s
    }

    public var name: String { raw.string(4) ?? "" }
    public var physicalType: PhysicalType? { raw.i32(1).flatMap(PhysicalType.init(rawValue:)) }
    public var typeLength: Int32? { raw.i32(2) }
    public var repetition: Repetition? { raw.i32(3).flatMap(Repetition.init(rawValue:)) }
    public var numChildren: Int32? { raw.i32(5) }
    public var convertedType: ConvertedType? { raw.i32(6).flatMap(ConvertedType.init(rawValue:)) }
    public var scale: Int32? { raw.i32(7) }
    public var precision: Int32? { raw.i32(8) }
    public var fieldID: Int32? { raw.i32(9) }
    /// The raw `LogicalType` union, verbatim.
    public var logicalTypeRaw: ThriftStruct? { raw.structure(10) }
    public var logicalType: LogicalType? { logicalTypeRaw.flatMap(LogicalType.init) }
}

/// Column statistics (min/max as the physical type's PLAIN bytes).
public struct Statistics: Sendable, Equatable {
    public var raw: ThriftStruct
    public init(raw: ThriftStruct = ThriftStruct()) { self.raw = raw }
    /// Deprecated signed-order max/min (fields 1, 2).
    public var legacyMax: [UInt8]? {
        get { raw.binary(1) }
        set { raw[1] = newValue.map { .binary($0) } }
    }
    public var legacyMin: [UInt8]? {
        get { raw.binary(2) }
        set { raw[2] = newValue.map { .binary($0) } }
    }
    public var nullCount: Int64? {
        get { raw.i64(3) }
        set { raw[3] = newValue.map { .i64($0) } }
    }
    public var distinctCount: Int64? {
        get { raw.i64(4) }
        set { raw[4] = newValue.map { .i64($0) } }
    }
    public var maxValue: [UInt8]? {
        get { raw.binary(5) }
        set { raw[5] = newValue.map { .binary($0) } }
    }
    public var minValue: [UInt8]? {
        get { raw.binary(6) }
        set { raw[6] = newValue.map { .binary($0) } }
    }
    public var isMaxValueExact: Bool? {
        get { raw.bool(7) }
        set { raw[7] = newValue.map { .bool($0) } }
    }
    public var isMinValueExact: Bool? {
        get { raw.bool(8) }
        set { raw[8] = newValue.map { .bool($0) } }
    }
}

/// Metadata of one column chunk.
public struct ColumnMetaData: Sendable, Equatable {
    public var raw: ThriftStruct
    public init(raw: ThriftStruct) { self.raw = raw }
    public var physicalType: PhysicalType? { raw.i32(1).flatMap(PhysicalType.init(rawValue:)) }
    public var encodings: [Int32] {
        get { (raw.list(2) ?? []).compactMap { if case .i32(let v) = $0 { return v } else { return nil } } }
        set { raw[2] = .list(.i32, newValue.map { .i32($0) }) }
    }
    public var pathInSchema: [String] {
        (raw.list(3) ?? []).compactMap { if case .binary(let b) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }
    public var codecRaw: Int32 { raw.i32(4) ?? 0 }
    public var codec: CompressionCodec? { CompressionCodec(rawValue: codecRaw) }
    public var numValues: Int64 {
        get { raw.i64(5) ?? 0 }
        set { raw[5] = .i64(newValue) }
    }
    public var totalUncompressedSize: Int64 {
        get { raw.i64(6) ?? 0 }
        set { raw[6] = .i64(newValue) }
    }
    public var totalCompressedSize: Int64 {
        get { raw.i64(7) ?? 0 }
        set { raw[7] = .i64(newValue) }
    }
    public var dataPageOffset: Int64 {
        get { raw.i64(9) ?? 0 }
        set { raw[9] = .i64(newValue) }
    }
    public var indexPageOffset: Int64? {
        get { raw.i64(10) }
        set { raw[10] = newValue.map { .i64($0) } }
    }
    public var dictionaryPageOffset: Int64? {
        get { raw.i64(11) }
        set { raw[11] = newValue.map { .i64($0) } }
    }
    public var statistics: Statistics? {
        get { raw.structure(12).map(Statistics.init(raw:)) }
        set { raw[12] = newValue.map { .structure($0.raw) } }
    }
    public var bloomFilterOffset: Int64? {
        get { raw.i64(14) }
        set { raw[14] = newValue.map { .i64($0) } }
    }
    public var bloomFilterLength: Int32? {
        get { raw.i32(15) }
        set { raw[15] = newValue.map { .i32($0) } }
    }

    /// Byte offset where the chunk starts (its dictionary page if it has one).
    public var chunkStart: Int64 {
        // Some writers leave one of the two at 0 (e.g. an empty chunk); take the smaller real one.
        if let d = dictionaryPageOffset, d >= 4, d < dataPageOffset || dataPageOffset < 4 { return d }
        return dataPageOffset
    }
}

/// One column chunk entry of a row group.
public struct ColumnChunk: Sendable, Equatable {
    public var raw: ThriftStruct
    public init(raw: ThriftStruct) { self.raw = raw }
    public var filePath: String? { raw.string(1) }
    public var fileOffset: Int64 {
        get { raw.i64(2) ?? 0 }
        set { raw[2] = .i64(newValue) }
    }
    public var metaData: ColumnMetaData? {
        get { raw.structure(3).map(ColumnMetaData.init(raw:)) }
        set { raw[3] = newValue.map { .structure($0.raw) } }
    }
    public var offsetIndexOffset: Int64? {
        get { raw.i64(4) }
        set { raw[4] = newValue.map { .i64($0) } }
    }
    public var offsetIndexLength: Int32? {
        get { raw.i32(5) }
        set { raw[5] = newValue.map { .i32($0) } }
    }
    public var columnIndexOffset: Int64? {
        get { raw.i64(6) }
        set { raw[6] = newValue.map { .i64($0) } }
    }
    public var columnIndexLength: Int32? {
        get { raw.i32(7) }
        set { raw[7] = newValue.map { .i32($0) } }
    }
    public var isEncrypted: Bool { raw[8] != nil || raw[9] != nil }
}

/// One row group.
public struct RowGroup: Sendable, Equatable {
    public var raw: ThriftStruct
    public var columns: [ColumnChunk]
    public init(raw: ThriftStruct) throws(ParquetError) {
        self.raw = raw
        guard let cols = raw.structList(1) else { throw ParquetError(.corruptMetadata, "row group without a column list") }
        columns = cols.map(ColumnChunk.init(raw:))
    }
    public var numRows: Int64 {
        get { raw.i64(3) ?? 0 }
        set { raw[3] = .i64(newValue) }
    }
    public var totalByteSize: Int64 {
        get { raw.i64(2) ?? 0 }
        set { raw[2] = .i64(newValue) }
    }
    public var fileOffset: Int64? {
        get { raw.i64(5) }
        set { raw[5] = newValue.map { .i64($0) } }
    }
    public var totalCompressedSize: Int64? {
        get { raw.i64(6) }
        set { raw[6] = newValue.map { .i64($0) } }
    }
    public var ordinal: Int16? {
        get { raw.i16(7) }
        set { raw[7] = newValue.map { .i16($0) } }
    }

    var encodedStruct: ThriftStruct {
        var r = raw
        r[1] = .list(.structure, columns.map { .structure($0.raw) })
        return r
    }
}

/// A footer key/value pair.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: String?
    public init(key: String, value: String?) { self.key = key; self.value = value }
}

/// The file footer.
public struct FileMetaData: Sendable, Equatable {
    public var raw: ThriftStruct
    public var schema: [SchemaElement]
    public var rowGroups: [RowGroup]

    public init(raw: ThriftStruct) throws(ParquetError) {
        self.raw = raw
        guard let s = raw.structList(2), !s.isEmpty else { throw ParquetError(.corruptMetadata, "footer has no schema") }
        schema = s.map(SchemaElement.init(raw:))
        var groups: [RowGroup] = []
        for g in raw.structList(4) ?? [] { groups.append(try RowGroup(raw: g)) }
        rowGroups = groups
        if raw[8] != nil { throw ParquetError(.unsupported, "encrypted files are not supported") }
    }

    public var version: Int32 { raw.i32(1) ?? 1 }
    public var numRows: Int64 {
        get { raw.i64(3) ?? 0 }
        set { raw[3] = .i64(newValue) }
    }
    public var createdBy: String? {
        get { raw.string(6) }
        set { raw[6] = newValue.map { .binary(Array($0.utf8)) } }
    }
    public var keyValueMetadata: [KeyValue] {
        get {
            (raw.structList(5) ?? []).map { KeyValue(key: $0.string(1) ?? "", value: $0.string(2)) }
        }
        set {
            if newValue.isEmpty { raw[5] = nil; return }
            raw[5] = .list(
                .structure,
                newValue.map { kv in
                    var s = ThriftStruct()
                    s[1] = .binary(Array(kv.key.utf8))
                    if let v = kv.value { s[2] = .binary(Array(v.utf8)) }
                    return .structure(s)
                })
        }
    }

    /// The footer's Thrift encoding.
    public func encoded() -> [UInt8] {
        var r = raw
        r[2] = .list(.structure, schema.map { .structure($0.raw) })
        r[4] = .list(.structure, rowGroups.map { .structure($0.encodedStruct) })
        return r.encoded()
    }
}

/// A decoded page header (the hot fields), plus its raw struct.
struct PageHeader {
    var raw: ThriftStruct
    var type: PageType
    var uncompressedSize: Int
    var compressedSize: Int
    var crc: Int32?
    // data page v1/v2 and dictionary page
    var numValues: Int = 0
    var encoding: Int32 = 0
    var defLevelEncoding: Int32 = Encoding.rle.rawValue
    var repLevelEncoding: Int32 = Encoding.rle.rawValue
    // v2 only
    var numNulls: Int = 0
    var numRows: Int = 0
    var defLevelsByteLength: Int = 0
    var repLevelsByteLength: Int = 0
    var isCompressed: Bool = true
    var hasStatistics: Bool = false

    init(raw: ThriftStruct) throws(ParquetError) {
        self.raw = raw
        guard let t = raw.i32(1), let pt = PageType(rawValue: t) else { throw ParquetError(.corruptPage, "page header has no valid page type") }
        type = pt
        guard let u = raw.i32(2), let c = raw.i32(3), u >= 0, c >= 0 else {
            throw ParquetError(.corruptPage, "page header has invalid sizes")
        }
        uncompressedSize = Int(u)
        compressedSize = Int(c)
        crc = raw.i32(4)
        func count(_ v: Int32?, _ what: String) throws(ParquetError) -> Int {
            guard let v, v >= 0 else { throw ParquetError(.corruptPage, "page header has an invalid \(what)") }
            return Int(v)
        }
        switch pt {
        case .dataPage:
            guard let h = raw.structure(5) else { throw ParquetError(.corruptPage, "data page without data_page_header") }
            numValues = try count(h.i32(1), "value count")
            guard let e = h.i32(2) else { throw ParquetError(.corruptPage, "data page without encoding") }
            encoding = e
            defLevelEncoding = h.i32(3) ?? Encoding.rle.rawValue
            repLevelEncoding = h.i32(4) ?? Encoding.rle.rawValue
            hasStatistics = h[5] != nil
        case .dataPageV2:
            guard let h = raw.structure(8) else { throw ParquetError(.corruptPage, "data page v2 without data_page_header_v2") }
            numValues = try count(h.i32(1), "value count")
            numNulls = try count(h.i32(2), "null count")
            numRows = try count(h.i32(3), "row count")
            guard let e = h.i32(4) else { throw ParquetError(.corruptPage, "data page v2 without encoding") }
            encoding = e
            defLevelsByteLength = try count(h.i32(5), "definition level length")
            repLevelsByteLength = try count(h.i32(6), "repetition level length")
            isCompressed = h.bool(7) ?? true
            hasStatistics = h[8] != nil
            guard numNulls <= numValues, defLevelsByteLength + repLevelsByteLength <= compressedSize,
                defLevelsByteLength + repLevelsByteLength <= uncompressedSize
            else {
                throw ParquetError(.corruptPage, "data page v2 sizes do not add up")
            }
        case .dictionaryPage:
            guard let h = raw.structure(7) else { throw ParquetError(.corruptPage, "dictionary page without dictionary_page_header") }
            numValues = try count(h.i32(1), "value count")
            encoding = h.i32(2) ?? Encoding.plain.rawValue
        case .indexPage:
            break
        }
    }
}
