/// Value encodings: PLAIN, dictionary indices, RLE booleans, DELTA_BINARY_PACKED,
/// DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT (decode and encode).

/// Collects decoded values of one physical type.
struct ValueAccumulator {
    let type: PhysicalType
    let width: Int
    var bools: [Bool] = []
    var i32: [Int32] = []
    var i64: [Int64] = []
    var i96: [Int96] = []
    var f32: [Float] = []
    var f64: [Double] = []
    var bin = ByteArrayValues()

    init(type: PhysicalType, width: Int) {
        self.type = type
        self.width = width
    }

    var count: Int {
        switch type {
        case .boolean: return bools.count
        case .int32: return i32.count
        case .int64: return i64.count
        case .int96: return i96.count
        case .float: return f32.count
        case .double: return f64.count
        case .byteArray, .fixedLenByteArray: return bin.count
        }
    }

    func result() -> ColumnValues {
        switch type {
        case .boolean: return .boolean(bools)
        case .int32: return .int32(i32)
        case .int64: return .int64(i64)
        case .int96: return .int96(i96)
        case .float: return .float(f32)
        case .double: return .double(f64)
        case .byteArray: return .byteArray(bin)
        case .fixedLenByteArray: return .fixedLenByteArray(bin)
        }
    }

    /// Appends `count` raw little-endian fixed-width values.
    private static func appendRaw<T>(_ arr: inout [T], _ data: UnsafeRawBufferPointer, _ count: Int) {
        guard count > 0 else { return }
        let old = arr.count
        arr.reserveCapacity(old + count)
        let add = [T](unsafeUninitializedCapacity: count) { buf, n in
            UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: data.baseAddress!, byteCount: count * MemoryLayout<T>.size)
            n = count
        }
        arr.append(contentsOf: add)
    }

    /// Decodes `count` PLAIN values; returns the bytes consumed.
    @discardableResult
    mutating func appendPlain(_ data: UnsafeRawBufferPointer, count: Int) throws(ParquetError) -> Int {
        func need(_ n: Int) throws(ParquetError) {
            guard n <= data.count else { throw ParquetError(.corruptPage, "PLAIN data holds fewer than \(count) values") }
        }
        switch type {
        case .boolean:
            try need((count + 7) / 8)
            bools.reserveCapacity(bools.count + count)
            for i in 0..<count { bools.append(data[i >> 3] >> UInt8(i & 7) & 1 == 1) }
            return (count + 7) / 8
        case .int32:
            try need(count * 4); Self.appendRaw(&i32, data, count); return count * 4
        case .float:
            try need(count * 4); Self.appendRaw(&f32, data, count); return count * 4
        case .int64:
            try need(count * 8); Self.appendRaw(&i64, data, count); return count * 8
        case .double:
            try need(count * 8); Self.appendRaw(&f64, data, count); return count * 8
        case .int96:
            try need(count * 12)
            i96.reserveCapacity(i96.count + count)
            for i in 0..<count {
                i96.append(
                    Int96(
                        low: data.loadUnaligned(fromByteOffset: i * 12, as: UInt64.self),
                        high: data.loadUnaligned(fromByteOffset: i * 12 + 8, as: UInt32.self)))
            }
            return count * 12
        case .fixedLenByteArray:
            let (total, overflow) = count.multipliedReportingOverflow(by: width)
            guard !overflow else { throw ParquetError(.corruptPage, "value count overflow") }
            try need(total)
            bin.reserve(values: count, bytes: total)
            bin.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[0..<total]))
            var o = bin.offsets.last!
            for _ in 0..<count { o += width; bin.offsets.append(o) }
            return total
        case .byteArray:
            // Lengths checked first, then the bytes copied into place and the offsets appended: one
            // growth of `bytes` instead of one append per value (a dictionary page of short ids).
            var pos = 0
            var total = 0
            for _ in 0..<count {
                guard data.count - pos >= 4 else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY length truncated") }
                let len = Int(data.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
                pos += 4
                guard data.count - pos >= len else { throw ParquetError(.corruptPage, "PLAIN BYTE_ARRAY value of \(len) bytes past the end of the page") }
                pos += len
                total += len
            }
            var bytes: [UInt8] = []
            swap(&bytes, &bin.bytes)
            defer { swap(&bytes, &bin.bytes) }
            var o = bytes.count
            // 16 bytes of slack past the values: a value of up to 16 bytes is copied as one 16-byte load and
            // store (no `memcpy` call a value), its spill overwritten by the next value or cut off below.
            bytes.append(contentsOf: repeatElement(0, count: total + 16))
            bin.offsets.reserveCapacity(bin.offsets.count + count)
            bytes.withUnsafeMutableBytes { out in
                var p = 0
                for _ in 0..<count {
                    let len = Int(data.loadUnaligned(fromByteOffset: p, as: UInt32.self))
                    if len <= 16 && data.count - (p + 4) >= 16 {
                        out.storeBytes(of: data.loadUnaligned(fromByteOffset: p + 4, as: SIMD16<UInt8>.self), toByteOffset: o, as: SIMD16<UInt8>.self)
                    } else if len > 0 {
                        (out.baseAddress! + o).copyMemory(from: data.baseAddress! + p + 4, byteCount: len)
                    }
                    p += 4 + len
                    o += len
                    bin.offsets.append(o)
                }
            }
            bytes.removeLast(16)
            return pos
        }
    }

    /// Appends dictionary entries by index.
    mutating func appendDictionary(_ indices: UnsafeBufferPointer<UInt32>, _ dict: ColumnValues) throws(ParquetError) {
        let n = dict.count
        for i in indices where Int(i) >= n {
            throw ParquetError(.corruptPage, "dictionary index \(i) out of range (dictionary has \(n) values)")
        }
        switch dict {
        case .boolean(let d): bools.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .int32(let d): i32.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .int64(let d): i64.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .int96(let d): i96.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .float(let d): f32.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .double(let d): f64.append(contentsOf: indices.lazy.map { d[Int($0)] })
        case .byteArray(let d), .fixedLenByteArray(let d):
            var total = 0
            for i in indices { total += d.offsets[Int(i) + 1] - d.offsets[Int(i)] }
            bin.reserve(values: indices.count, bytes: total)
            d.bytes.withUnsafeBytes { raw in
                for i in indices { bin.append(UnsafeRawBufferPointer(rebasing: raw[d.offsets[Int(i)]..<d.offsets[Int(i) + 1]])) }
            }
        }
    }

    /// Decodes `count` values with `encoding` from a data page's value section.
    mutating func appendEncoded(_ encoding: Encoding, _ data: UnsafeRawBufferPointer, count: Int, dictionary: ColumnValues?) throws(ParquetError) {
        switch encoding {
        case .plain:
            try appendPlain(data, count: count)
        case .plainDictionary, .rleDictionary:
            guard let dictionary else { throw ParquetError(.corruptPage, "dictionary-encoded page without a dictionary page") }
            guard count > 0 else { return }
            guard data.count >= 1 else { throw ParquetError(.corruptPage, "dictionary page data is empty") }
            var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[1...]), bitWidth: Int(data[0]))
            let idx: [UInt32] = try dec.decode(count: count)
            try withBuffer(idx) { (p) throws(ParquetError) in try appendDictionary(p, dictionary) }
        case .rle:
            guard type == .boolean else { throw ParquetError(.corruptPage, "RLE value encoding is only valid for BOOLEAN") }
            guard data.count >= 4 else { throw ParquetError(.corruptPage, "RLE boolean data truncated") }
            let len = Int(data.loadUnaligned(as: UInt32.self))
            guard len <= data.count - 4 else { throw ParquetError(.corruptPage, "RLE boolean length past the end of the page") }
            var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[4..<(4 + len)]), bitWidth: 1)
            let v: [UInt8] = try dec.decode(count: count)
            bools.append(contentsOf: v.lazy.map { $0 != 0 })
        case .deltaBinaryPacked:
            var pos = 0
            switch type {
            case .int32:
                let v = try DeltaBinaryPacked.decode(data, pos: &pos, count: count, exact: false)
                i32.append(contentsOf: v.lazy.map { Int32(truncatingIfNeeded: $0) })
            case .int64:
                i64.append(contentsOf: try DeltaBinaryPacked.decode(data, pos: &pos, count: count, exact: false))
            default: throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED is only valid for INT32/INT64")
            }
        case .deltaLengthByteArray:
            guard type == .byteArray else { throw ParquetError(.corruptPage, "DELTA_LENGTH_BYTE_ARRAY is only valid for BYTE_ARRAY") }
            var pos = 0
            try DeltaLengthByteArray.decode(data, pos: &pos, count: count, into: &bin)
        case .deltaByteArray:
            guard type == .byteArray || type == .fixedLenByteArray else { throw ParquetError(.corruptPage, "DELTA_BYTE_ARRAY is only valid for byte arrays") }
            let before = bin.count
            try DeltaByteArray.decode(data, count: count, into: &bin)
            if type == .fixedLenByteArray {
                for i in before..<bin.count where bin.offsets[i + 1] - bin.offsets[i] != width {
                    throw ParquetError(.corruptPage, "DELTA_BYTE_ARRAY value has the wrong length for FIXED_LEN_BYTE_ARRAY(\(width))")
                }
            }
        case .byteStreamSplit:
            let w: Int
            switch type {
            case .int32, .float: w = 4
            case .int64, .double: w = 8
            case .fixedLenByteArray: w = width
            default: throw ParquetError(.corruptPage, "BYTE_STREAM_SPLIT is not valid for \(type)")
            }
            let (total, overflow) = count.multipliedReportingOverflow(by: w)
            guard !overflow, data.count >= total else { throw ParquetError(.corruptPage, "BYTE_STREAM_SPLIT data holds fewer than \(count) values") }
            let joined = [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buf, n in
                for k in 0..<w {
                    let stream = k * count
                    for i in 0..<count { buf[i * w + k] = data[stream + i] }
                }
                n = total
            }
            try withBytes(joined) { (p) throws(ParquetError) in try appendPlain(p, count: count) }
        case .bitPacked:
            throw ParquetError(.corruptPage, "BIT_PACKED is not a value encoding")
        }
    }
}

enum DeltaBinaryPacked {
    private static func uleb(_ d: UnsafeRawBufferPointer, _ pos: inout Int) throws(ParquetError) -> UInt64 {
        var r: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < d.count, shift < 64 else { throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED header truncated") }
            let b = d[pos]
            pos += 1
            r |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return r }
            shift += 7
        }
    }
    private static func zigzag(_ d: UnsafeRawBufferPointer, _ pos: inout Int) throws(ParquetError) -> Int64 {
        let v = try uleb(d, &pos)
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    /// Decodes `count` values (the header's total must be at least `count`; with
    /// `exact` it must equal it, and the whole stream is consumed so `pos` ends
    /// just past it).
    static func decode(_ d: UnsafeRawBufferPointer, pos: inout Int, count: Int, exact: Bool) throws(ParquetError) -> [Int64] {
        let blockSize = try uleb(d, &pos)
        let miniblocks = try uleb(d, &pos)
        let total = try uleb(d, &pos)
        var value = try zigzag(d, &pos)
        guard blockSize > 0, blockSize % 128 == 0, blockSize <= 1 << 16, miniblocks > 0, miniblocks <= blockSize,
            blockSize % miniblocks == 0, (blockSize / miniblocks) % 32 == 0
        else {
            throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED header has invalid block sizes")
        }
        guard exact ? total == UInt64(count) : total >= UInt64(count) else {
            throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED holds \(total) values, page needs \(count)")
        }
        let perMini = Int(blockSize / miniblocks)
        let nMini = Int(miniblocks)
        var out: [Int64] = []
        out.reserveCapacity(count)
        if count == 0 { return out }
        out.append(value)
        guard let base = d.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED data empty") }
        while out.count < count {
            let minDelta = try zigzag(d, &pos)
            guard d.count - pos >= nMini else { throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED bit widths truncated") }
            let widthsAt = pos
            pos += nMini
            for m in 0..<nMini {
                if out.count >= count { break }
                let bw = Int(d[widthsAt + m])
                guard bw <= 64 else { throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED bit width \(bw) too large") }
                let bytes = perMini * bw / 8
                guard d.count - pos >= bytes else { throw ParquetError(.corruptPage, "DELTA_BINARY_PACKED miniblock truncated") }
                let n = min(perMini, count - out.count)
                var bp = pos * 8
                let end = pos + bytes
                for _ in 0..<n {
                    let delta = bw == 0 ? 0 : loadBits(base, end, bp, bw)
                    bp += bw
                    value = value &+ minDelta &+ Int64(bitPattern: delta)
                    out.append(value)
                }
                pos += bytes
            }
        }
        return out
    }

    /// Encodes with blocks of 128 values in 4 miniblocks; `bits32` wraps deltas at 32 bits (INT32).
    static func encode(_ values: [Int64], bits32: Bool) -> [UInt8] {
        var out: [UInt8] = []
        func uleb(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        func zz(_ v: Int64) { uleb(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
        let blockSize = 128, nMini = 4, perMini = 32
        uleb(UInt64(blockSize)); uleb(UInt64(nMini)); uleb(UInt64(values.count))
        zz(values.first ?? 0)
        guard values.count > 1 else { return out }
        var deltas = [Int64](repeating: 0, count: values.count - 1)
        for i in 1..<values.count {
            if bits32 {
                deltas[i - 1] = Int64(Int32(truncatingIfNeeded: values[i]) &- Int32(truncatingIfNeeded: values[i - 1]))
            } else {
                deltas[i - 1] = values[i] &- values[i - 1]
            }
        }
        var start = 0
        var mini = [UInt64](repeating: 0, count: perMini)
        while start < deltas.count {
            let end = min(start + blockSize, deltas.count)
            var minDelta = Int64.max
            for i in start..<end where deltas[i] < minDelta { minDelta = deltas[i] }
            zz(minDelta)
            let widthsAt = out.count
            out.append(contentsOf: repeatElement(0, count: nMini))
            for m in 0..<nMini {
                let ms = start + m * perMini
                if ms >= end { break }
                let me = min(ms + perMini, end)
                var maxAdj: UInt64 = 0
                for k in 0..<perMini {
                    let adj: UInt64
                    if ms + k < me {
                        adj = bits32 ? UInt64(UInt32(truncatingIfNeeded: deltas[ms + k] &- minDelta)) : UInt64(bitPattern: deltas[ms + k] &- minDelta)
                    } else {
                        adj = 0
                    }
                    mini[k] = adj
                    maxAdj |= adj
                }
                let bw = bitWidth(of: maxAdj)
                out[widthsAt + m] = UInt8(bw)
                mini.withUnsafeBufferPointer { packBits($0, bitWidth: bw, into: &out) }
            }
            start = end
        }
        return out
    }
}

enum DeltaLengthByteArray {
    static func decode(_ d: UnsafeRawBufferPointer, pos: inout Int, count: Int, into bin: inout ByteArrayValues) throws(ParquetError) {
        let lengths = try DeltaBinaryPacked.decode(d, pos: &pos, count: count, exact: true)
        var total = 0
        for l in lengths {
            guard l >= 0, l <= Int64(d.count) else { throw ParquetError(.corruptPage, "DELTA_LENGTH_BYTE_ARRAY has an invalid length") }
            total += Int(l)
        }
        guard d.count - pos >= total else { throw ParquetError(.corruptPage, "DELTA_LENGTH_BYTE_ARRAY data past the end of the page") }
        bin.reserve(values: count, bytes: total)
        for l in lengths {
            bin.append(UnsafeRawBufferPointer(rebasing: d[pos..<(pos + Int(l))]))
            pos += Int(l)
        }
    }

    static func encode(_ v: ByteArrayValues, into out: inout [UInt8]) {
        var lengths: [Int64] = []
        lengths.reserveCapacity(v.count)
        for i in 0..<v.count { lengths.append(Int64(v.offsets[i + 1] - v.offsets[i])) }
        out.append(contentsOf: DeltaBinaryPacked.encode(lengths, bits32: true))
        out.append(contentsOf: v.bytes[v.offsets[0]..<v.offsets[v.count]])
    }
}

enum DeltaByteArray {
    static func decode(_ d: UnsafeRawBufferPointer, count: Int, into bin: inout ByteArrayValues) throws(ParquetError) {
        var pos = 0
        let prefixes = try DeltaBinaryPacked.decode(d, pos: &pos, count: count, exact: true)
        var suffixes = ByteArrayValues()
        try DeltaLengthByteArray.decode(d, pos: &pos, count: count, into: &suffixes)
        var prev: [UInt8] = []
        for i in 0..<count {
            let p = prefixes[i]
            guard p >= 0, p <= Int64(prev.count) else { throw ParquetError(.corruptPage, "DELTA_BYTE_ARRAY prefix longer than the previous value") }
            var cur = Array(prev[0..<Int(p)])
            cur.append(contentsOf: suffixes[i])
            bin.append(cur)
            prev = cur
        }
    }

    static func encode(_ v: ByteArrayValues) -> [UInt8] {
        var prefixes: [Int64] = []
        var suffixes = ByteArrayValues()
        prefixes.reserveCapacity(v.count)
        var prevStart = 0, prevEnd = 0
        v.bytes.withUnsafeBufferPointer { b in
            for i in 0..<v.count {
                let s = v.offsets[i], e = v.offsets[i + 1]
                var p = 0
                let limit = min(e - s, prevEnd - prevStart)
                while p < limit && b[s + p] == b[prevStart + p] { p += 1 }
                prefixes.append(Int64(p))
                suffixes.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(b)[(s + p)..<e]))
                prevStart = s; prevEnd = e
            }
        }
        var out = DeltaBinaryPacked.encode(prefixes, bits32: true)
        DeltaLengthByteArray.encode(suffixes, into: &out)
        return out
    }
}

/// PLAIN and other value encoders.
enum ValueEncoder {
    static func plain(_ values: ColumnValues) -> [UInt8] {
        var out: [UInt8] = []
        func raw<T>(_ a: [T]) { a.withUnsafeBytes { out.append(contentsOf: $0) } }
        switch values {
        case .boolean(let b):
            out = [UInt8](repeating: 0, count: (b.count + 7) / 8)
            for (i, v) in b.enumerated() where v { out[i >> 3] |= 1 << UInt8(i & 7) }
        case .int32(let a): raw(a)
        case .int64(let a): raw(a)
        case .float(let a): raw(a)
        case .double(let a): raw(a)
        case .int96(let a):
            out.reserveCapacity(a.count * 12)
            for v in a { out.append(contentsOf: v.bytes) }
        case .fixedLenByteArray(let v):
            out.append(contentsOf: v.bytes[v.offsets[0]..<v.offsets[v.count]])
        case .byteArray(let v):
            // One buffer of the exact size, each length and value stored in place (no append per value).
            var total = 4 * v.count
            for i in 0..<v.count { total += v.offsets[i + 1] - v.offsets[i] }
            out = [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buf, count in
                let dst = UnsafeMutableRawPointer(buf.baseAddress!)
                var o = 0
                v.bytes.withUnsafeBytes { src in
                    v.offsets.withUnsafeBufferPointer { off in
                        for i in 0..<v.count {
                            let a = off[i], n = off[i + 1] - a
                            dst.storeBytes(of: UInt32(n).littleEndian, toByteOffset: o, as: UInt32.self)
                            o += 4
                            if n > 0 { (dst + o).copyMemory(from: src.baseAddress! + a, byteCount: n) }
                            o += n
                        }
                    }
                }
                count = o
            }
        }
        return out
    }

    static func encode(_ values: ColumnValues, _ encoding: Encoding, typeLength: Int) throws(ParquetError) -> [UInt8] {
        switch encoding {
        case .plain: return plain(values)
        case .rle:
            guard case .boolean(let b) = values else { throw ParquetError(.invalidArgument, "RLE value encoding needs BOOLEAN values") }
            let body = RLEEncoder.encode(b.map { UInt8($0 ? 1 : 0) }, bitWidth: 1)
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt32(body.count).littleEndian) { out.append(contentsOf: $0) }
            return out + body
        case .deltaBinaryPacked:
            switch values {
            case .int32(let a): return DeltaBinaryPacked.encode(a.map { Int64($0) }, bits32: true)
            case .int64(let a): return DeltaBinaryPacked.encode(a, bits32: false)
            default: throw ParquetError(.invalidArgument, "DELTA_BINARY_PACKED needs INT32/INT64 values")
            }
        case .deltaLengthByteArray:
            guard case .byteArray(let v) = values else { throw ParquetError(.invalidArgument, "DELTA_LENGTH_BYTE_ARRAY needs BYTE_ARRAY values") }
            var out: [UInt8] = []
            DeltaLengthByteArray.encode(v, into: &out)
            return out
        case .deltaByteArray:
            switch values {
            case .byteArray(let v), .fixedLenByteArray(let v): return DeltaByteArray.encode(v)
            default: throw ParquetError(.invalidArgument, "DELTA_BYTE_ARRAY needs byte array values")
            }
        case .byteStreamSplit:
            let w: Int
            switch values {
            case .int32, .float: w = 4
            case .int64, .double: w = 8
            case .fixedLenByteArray: w = typeLength
            default: throw ParquetError(.invalidArgument, "BYTE_STREAM_SPLIT is not valid for these values")
            }
            let p = plain(values)
            let n = values.count
            var out = [UInt8](repeating: 0, count: p.count)
            for i in 0..<n { for k in 0..<w { out[k * n + i] = p[i * w + k] } }
            return out
        case .plainDictionary, .rleDictionary, .bitPacked:
            throw ParquetError(.invalidArgument, "\(encoding) is not a direct value encoding")
        }
    }
}
