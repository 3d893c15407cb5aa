/// Thrift compact-protocol values, kept generically so that fields this library
/// does not model survive a read–modify–write of the footer verbatim.

/// A compact-protocol wire type.
public enum ThriftType: UInt8, Sendable {
    case stop = 0, boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6
    case double = 7, binary = 8, list = 9, set = 10, map = 11, structure = 12
}

/// One Thrift value.
public enum ThriftValue: Sendable, Equatable {
    case bool(Bool)
    case byte(Int8)
    case i16(Int16)
    case i32(Int32)
    case i64(Int64)
    case double(Double)
    case binary([UInt8])
    case list(ThriftType, [ThriftValue])
    case set(ThriftType, [ThriftValue])
    case map(ThriftType, ThriftType, [ThriftMapEntry])
    case structure(ThriftStruct)

    var wireType: ThriftType {
        switch self {
        case .bool(let b): return b ? .boolTrue : .boolFalse
        case .byte: return .byte
        case .i16: return .i16
        case .i32: return .i32
        case .i64: return .i64
        case .double: return .double
        case .binary: return .binary
        case .list: return .list
        case .set: return .set
        case .map: return .map
        case .structure: return .structure
        }
    }
}

public struct ThriftMapEntry: Sendable, Equatable {
    public var key: ThriftValue
    public var value: ThriftValue
}

/// One field of a Thrift struct.
public struct ThriftField: Sendable, Equatable {
    public var id: Int16
    public var value: ThriftValue
}

/// A Thrift struct as an ordered list of fields.
public struct ThriftStruct: Sendable, Equatable {
    public var fields: [ThriftField]
    public init(_ fields: [ThriftField] = []) { self.fields = fields }

    public subscript(id: Int16) -> ThriftValue? {
        get {
            for f in fields where f.id == id { return f.value }
            return nil
        }
        set {
            if let i = fields.firstIndex(where: { $0.id == id }) {
                if let newValue { fields[i].value = newValue } else { fields.remove(at: i) }
            } else if let newValue {
                let at = fields.firstIndex(where: { $0.id > id }) ?? fields.count
                fields.insert(ThriftField(id: id, value: newValue), at: at)
            }
        }
    }

    func i32(_ id: Int16) -> Int32? {
        switch self[id] {
        case .i32(let v)?: return v
        case .i16(let v)?: return Int32(v)
        case .byte(let v)?: return Int32(v)
        default: return nil
        }
    }
    func i64(_ id: Int16) -> Int64? {
        switch self[id] {
        case .i64(let v)?: return v
        case .i32(let v)?: return Int64(v)
        case .i16(let v)?: return Int64(v)
        default: return nil
        }
    }
    func i16(_ id: Int16) -> Int16? {
        if case .i16(let v)? = self[id] { return v }
        return nil
    }
    func bool(_ id: Int16) -> Bool? {
        if case .bool(let v)? = self[id] { return v }
        return nil
    }
    func binary(_ id: Int16) -> [UInt8]? {
        if case .binary(let v)? = self[id] { return v }
        return nil
    }
    func string(_ id: Int16) -> String? {
        binary(id).map { String(decoding: $0, as: UTF8.self) }
    }
    func structure(_ id: Int16) -> ThriftStruct? {
        if case .structure(let v)? = self[id] { return v }
        return nil
    }
    func list(_ id: Int16) -> [ThriftValue]? {
        switch self[id] {
        case .list(_, let v)?: return v
        case .set(_, let v)?: return v
        default: return nil
        }
    }
    func structList(_ id: Int16) -> [ThriftStruct]? {
        guard let l = list(id) else { return nil }
        var out: [ThriftStruct] = []
        out.reserveCapacity(l.count)
        for v in l {
            guard case .structure(let s) = v else { return nil }
            out.append(s)
        }
        return out
    }
}

/// Reads the Thrift compact protocol from a bounded byte range. Every length is
/// checked against the bytes that remain before anything is allocated.
struct ThriftReader {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let end: Int
    static let maxDepth = 48

    init(_ bytes: UnsafeRawBufferPointer, from: Int = 0, to: Int? = nil) {
        self.bytes = bytes
        self.pos = from
        self.end = to ?? bytes.count
    }

    private func fail(_ what: String) -> ParquetError {
        ParquetError(.corruptMetadata, "corrupt Thrift: \(what) at byte \(pos)")
    }

    mutating func readByte() throws(ParquetError) -> UInt8 {
        guard pos < end else { throw ParquetError(.corruptMetadata, "corrupt Thrift: unexpected end of data") }
        let b = bytes[pos]
        pos += 1
        return b
    }

    mutating func readVarint() throws(ParquetError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readByte()
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw fail("varint too long") }
        }
    }

    mutating func readZigzag() throws(ParquetError) -> Int64 {
        let v = try readVarint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    mutating func readI32() throws(ParquetError) -> Int32 {
        let v = try readZigzag()
        guard v >= Int64(Int32.min), v <= Int64(Int32.max) else { throw fail("i32 out of range") }
        return Int32(v)
    }

    mutating func readLength() throws(ParquetError) -> Int {
        let v = try readVarint()
        guard v <= UInt64(end - pos) else { throw fail("length \(v) past the end of data") }
        return Int(v)
    }

    mutating func readBinary() throws(ParquetError) -> [UInt8] {
        let n = try readLength()
        let out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)]))
        pos += n
        return out
    }

    mutating func readStruct(depth: Int = 0) throws(ParquetError) -> ThriftStruct {
        guard depth < Self.maxDepth else { throw fail("nesting too deep") }
        var fields: [ThriftField] = []
        var lastID: Int16 = 0
        while true {
            let header = try readByte()
            let typeBits = header & 0x0f
            if typeBits == 0 { return ThriftStruct(fields) }
            guard let type = ThriftType(rawValue: typeBits) else { throw fail("bad field type \(typeBits)") }
            let delta = header >> 4
            let id: Int16
            if delta != 0 {
                let (sum, overflow) = lastID.addingReportingOverflow(Int16(delta))
                guard !overflow else { throw fail("field id overflow") }
                id = sum
            } else {
                let v = try readZigzag()
                guard v >= Int64(Int16.min), v <= Int64(Int16.max) else { throw fail("field id out of range") }
                id = Int16(v)
            }
            lastID = id
            let value: ThriftValue
            switch type {
            case .boolTrue: value = .bool(true)
            case .boolFalse: value = .bool(false)
            default: value = try readValue(type, depth: depth + 1)
            }
            fields.append(ThriftField(id: id, value: value))
        }
    }

    mutating func readValue(_ type: ThriftType, depth: Int) throws(ParquetError) -> ThriftValue {
        guard depth < Self.maxDepth else { throw fail("nesting too deep") }
        switch type {
        case .stop: throw fail("unexpected stop")
        case .boolTrue, .boolFalse:
            // Inside collections a bool is one byte: 1 true, anything else false.
            return .bool(try readByte() == 1)
        case .byte: return .byte(Int8(bitPattern: try readByte()))
        case .i16:
            let v = try readZigzag()
            guard v >= Int64(Int16.min), v <= Int64(Int16.max) else { throw fail("i16 out of range") }
            return .i16(Int16(v))
        case .i32: return .i32(try readI32())
        case .i64: return .i64(try readZigzag())
        case .double:
            guard end - pos >= 8 else { throw fail("truncated double") }
            var bits: UInt64 = 0
            for i in 0..<8 { bits |= UInt64(bytes[pos + i]) << (8 * UInt64(i)) }
            pos += 8
            return .double(Double(bitPattern: bits))
        case .binary: return .binary(try readBinary())
        case .list, .set:
            let header = try readByte()
            var count = Int(header >> 4)
            if count == 15 {
                let v = try readVarint()
                guard v <= UInt64(end - pos) else { throw fail("list size \(v) past the end of data") }
                count = Int(v)
            }
            guard let elem = ThriftType(rawValue: header & 0x0f), elem != .stop else { throw fail("bad list element type") }
            guard count <= end - pos else { throw fail("list size \(count) past the end of data") }
            var items: [ThriftValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try readValue(elem, depth: depth + 1)) }
            return type == .list ? .list(elem, items) : .set(elem, items)
        case .map:
            let v = try readVarint()
            guard v <= UInt64(end - pos) / 2 else { throw fail("map size \(v) past the end of data") }
            let count = Int(v)
            if count == 0 { return .map(.binary, .binary, []) }
            let kv = try readByte()
            guard let kt = ThriftType(rawValue: kv >> 4), let vt = ThriftType(rawValue: kv & 0x0f), kt != .stop, vt != .stop else {
                throw fail("bad map types")
            }
            var entries: [ThriftMapEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let k = try readValue(kt, depth: depth + 1)
                let val = try readValue(vt, depth: depth + 1)
                entries.append(ThriftMapEntry(key: k, value: val))
            }
            return .map(kt, vt, entries)
        case .structure: return .structure(try readStruct(depth: depth))
        }
    }
}

extension ThriftStruct {
    /// Decodes one struct from `bytes[from...]`; returns it and the offset just past it.
    static func decode(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) throws(ParquetError) -> (ThriftStruct, Int) {
        let r: Result<(ThriftStruct, Int), ParquetError> = bytes.withUnsafeBytes { raw in
            var reader = ThriftReader(raw, from: from, to: to ?? raw.count)
            do throws(ParquetError) {
                let s = try reader.readStruct()
                return .success((s, reader.pos))
            } catch {
                return .failure(error)
            }
        }
        return try r.get()
    }

    /// Encodes the struct with the compact protocol.
    func encoded() -> [UInt8] {
        var w = ThriftWriter()
        w.writeStruct(self)
        return w.out
    }
}

/// Writes the Thrift compact protocol.
struct ThriftWriter {
    var out: [UInt8] = []

    mutating func writeVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func writeZigzag(_ v: Int64) {
        writeVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    mutating func writeStruct(_ s: ThriftStruct) {
        var last: Int16 = 0
        for f in s.fields {
            let t = f.value.wireType.rawValue
            let delta = Int(f.id) - Int(last)
            if delta > 0 && delta <= 15 {
                out.append(UInt8(delta) << 4 | t)
            } else {
                out.append(t)
                writeZigzag(Int64(f.id))
            }
            last = f.id
            if case .bool = f.value { continue }
            writeValue(f.value)
        }
        out.append(0)
    }

    mutating func writeValue(_ v: ThriftValue) {
        switch v {
        case .bool(let b): out.append(b ? 1 : 2)
        case .byte(let b): out.append(UInt8(bitPattern: b))
        case .i16(let x): writeZigzag(Int64(x))
        case .i32(let x): writeZigzag(Int64(x))
        case .i64(let x): writeZigzag(x)
        case .double(let d):
            let bits = d.bitPattern
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
        case .binary(let b):
            writeVarint(UInt64(b.count))
            out.append(contentsOf: b)
        case .list(let t, let items), .set(let t, let items):
            let elemType: UInt8 = (t == .boolFalse) ? ThriftType.boolTrue.rawValue : t.rawValue
            if items.count < 15 {
                out.append(UInt8(items.count) << 4 | elemType)
            } else {
                out.append(0xf0 | elemType)
                writeVarint(UInt64(items.count))
            }
            for item in items { writeValue(item) }
        case .map(let kt, let vt, let entries):
            writeVarint(UInt64(entries.count))
            if !entries.isEmpty {
                out.append(kt.rawValue << 4 | vt.rawValue)
                for e in entries {
                    writeValue(e.key)
                    writeValue(e.value)
                }
            }
        case .structure(let s): writeStruct(s)
        }
    }
}
