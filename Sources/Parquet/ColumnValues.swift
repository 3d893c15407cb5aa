/// Decoded column values and levels.

/// A 96-bit integer as stored by INT96 columns (legacy timestamps):
/// `low` holds bytes 0–7 (little endian), `high` bytes 8–11.
public struct Int96: Sendable, Hashable {
    public var low: UInt64
    public var high: UInt32
    public init(low: UInt64, high: UInt32) { self.low = low; self.high = high }

    /// The 12 stored bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 12)
        for k in 0..<8 { out[k] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(k))) }
        for k in 0..<4 { out[8 + k] = UInt8(truncatingIfNeeded: high >> (8 * UInt32(k))) }
        return out
    }
    /// For timestamps: nanoseconds within the day (bytes 0–7) and the Julian day (bytes 8–11).
    public var nanosOfDay: Int64 { Int64(bitPattern: low) }
    public var julianDay: Int32 { Int32(bitPattern: high) }
}

/// Variable- or fixed-length byte strings stored back to back.
/// Value `i` is `bytes[offsets[i]..<offsets[i+1]]`.
public struct ByteArrayValues: Sendable, Equatable {
    public var bytes: [UInt8] = []
    public var offsets: [Int] = [0]
    public init() {}
    public init<S: Sequence>(_ values: S) where S.Element == [UInt8] {
        for v in values { append(v) }
    }
    public var count: Int { offsets.count - 1 }
    public subscript(i: Int) -> ArraySlice<UInt8> { bytes[offsets[i]..<offsets[i + 1]] }
    public mutating func append<C: Collection>(_ v: C) where C.Element == UInt8 {
        bytes.append(contentsOf: v)
        offsets.append(bytes.count)
    }
    mutating func append(_ p: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: p)
        offsets.append(bytes.count)
    }
    mutating func reserve(values: Int, bytes n: Int) {
        offsets.reserveCapacity(offsets.count + values)
        bytes.reserveCapacity(bytes.count + n)
    }
    /// Calls `body` with value `i`'s bytes.
    @inline(__always)
    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[offsets[i]..<offsets[i + 1]]))
        }
    }
}

/// The non-null values of one column chunk (or of a page), in physical form.
public enum ColumnValues: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    case int96([Int96])
    case float([Float])
    case double([Double])
    case byteArray(ByteArrayValues)
    case fixedLenByteArray(ByteArrayValues)

    public var count: Int {
        switch self {
        case .boolean(let v): return v.count
        case .int32(let v): return v.count
        case .int64(let v): return v.count
        case .int96(let v): return v.count
        case .float(let v): return v.count
        case .double(let v): return v.count
        case .byteArray(let v), .fixedLenByteArray(let v): return v.count
        }
    }

    /// Empty values of the given physical type.
    public static func empty(_ type: PhysicalType) -> ColumnValues {
        switch type {
        case .boolean: return .boolean([])
        case .int32: return .int32([])
        case .int64: return .int64([])
        case .int96: return .int96([])
        case .float: return .float([])
        case .double: return .double([])
        case .byteArray: return .byteArray(ByteArrayValues())
        case .fixedLenByteArray: return .fixedLenByteArray(ByteArrayValues())
        }
    }

    var physicalType: PhysicalType {
        switch self {
        case .boolean: return .boolean
        case .int32: return .int32
        case .int64: return .int64
        case .int96: return .int96
        case .float: return .float
        case .double: return .double
        case .byteArray: return .byteArray
        case .fixedLenByteArray: return .fixedLenByteArray
        }
    }

    /// The values at the given (sorted) indexes.
    func gather(_ idx: [Int]) -> ColumnValues {
        switch self {
        case .boolean(let v): return .boolean(idx.map { v[$0] })
        case .int32(let v): return .int32(idx.map { v[$0] })
        case .int64(let v): return .int64(idx.map { v[$0] })
        case .int96(let v): return .int96(idx.map { v[$0] })
        case .float(let v): return .float(idx.map { v[$0] })
        case .double(let v): return .double(idx.map { v[$0] })
        case .byteArray(let v): return .byteArray(v.gather(idx))
        case .fixedLenByteArray(let v): return .fixedLenByteArray(v.gather(idx))
        }
    }

    /// The values in `range`.
    func slice(_ r: Range<Int>) -> ColumnValues {
        switch self {
        case .boolean(let v): return .boolean(Array(v[r]))
        case .int32(let v): return .int32(Array(v[r]))
        case .int64(let v): return .int64(Array(v[r]))
        case .int96(let v): return .int96(Array(v[r]))
        case .float(let v): return .float(Array(v[r]))
        case .double(let v): return .double(Array(v[r]))
        case .byteArray(let v): return .byteArray(v.gather(Array(r)))
        case .fixedLenByteArray(let v): return .fixedLenByteArray(v.gather(Array(r)))
        }
    }
}

extension ByteArrayValues {
    func gather(_ idx: [Int]) -> ByteArrayValues {
        var total = 0
        for i in idx { total += offsets[i + 1] - offsets[i] }
        // The bytes and offsets written in place, each buffer allocated once at its exact size.
        var out = ByteArrayValues()
        out.offsets = [Int](unsafeUninitializedCapacity: idx.count + 1) { offs, n in
            out.bytes = [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buf, count in
                var o = 0
                offs[0] = 0
                bytes.withUnsafeBytes { src in
                    offsets.withUnsafeBufferPointer { off in
                        for (k, i) in idx.enumerated() {
                            let a = off[i], len = off[i + 1] - a
                            if len > 0 { UnsafeMutableRawPointer(buf.baseAddress! + o).copyMemory(from: src.baseAddress! + a, byteCount: len) }
                            o += len
                            offs[k + 1] = o
                        }
                    }
                }
                count = o
            }
            n = idx.count + 1
        }
        return out
    }
}

/// One leaf column of one row group: the non-null values and the levels.
///
/// `definitionLevels` is nil when the column's max definition level is 0 (every
/// slot holds a value); `repetitionLevels` is nil when its max repetition level
/// is 0 (one slot per row). A slot holds a value exactly when its definition
/// level equals the max definition level; `values` lists those values in order.
public struct ColumnData: Sendable, Equatable {
    public var values: ColumnValues
    public var definitionLevels: [UInt16]?
    public var repetitionLevels: [UInt16]?

    public init(values: ColumnValues, definitionLevels: [UInt16]? = nil, repetitionLevels: [UInt16]? = nil) {
        self.values = values
        self.definitionLevels = definitionLevels
        self.repetitionLevels = repetitionLevels
    }

    /// Number of level slots (values plus nulls/empties).
    public var slotCount: Int { definitionLevels?.count ?? repetitionLevels?.count ?? values.count }

    /// Number of rows (slots whose repetition level is 0).
    public var rowCount: Int {
        guard let r = repetitionLevels else { return slotCount }
        var n = 0
        for l in r where l == 0 { n += 1 }
        return n
    }

    /// Builds flat optional-column data from per-row optionals (test/convenience helper).
    public static func optionalInt64(_ rows: [Int64?]) -> ColumnData {
        ColumnData(values: .int64(rows.compactMap { $0 }), definitionLevels: rows.map { $0 == nil ? 0 : 1 })
    }
}
