/// The RLE / bit-packing hybrid (levels, dictionary indices, booleans) and the
/// little bit-unpacking helpers the other encodings share.

@inline(__always)
func bitWidth(of maxValue: UInt64) -> Int {
    maxValue == 0 ? 0 : 64 - maxValue.leadingZeroBitCount
}

/// Reads `bw` (≤ 64) bits starting at bit `bitPos` of `base[0..<end]`, LSB first.
/// The caller has checked that the bits lie inside the buffer.
@inline(__always)
func loadBits(_ base: UnsafePointer<UInt8>, _ end: Int, _ bitPos: Int, _ bw: Int) -> UInt64 {
    let byte = bitPos >> 3
    let shift = UInt64(bitPos & 7)
    var word: UInt64
    if byte + 8 <= end {
        word = UnsafeRawPointer(base + byte).loadUnaligned(as: UInt64.self).littleEndian
    } else {
        word = 0
        var k = 0
        while byte + k < end && k < 8 { word |= UInt64(base[byte + k]) << (8 * UInt64(k)); k += 1 }
    }
    var v = word >> shift
    if bw + Int(shift) > 64 {
        let extra = byte + 8 < end ? UInt64(base[byte + 8]) : 0
        v |= extra << (64 - shift)
    }
    return bw == 64 ? v : v & ((1 << UInt64(bw)) - 1)
}

/// Decodes the RLE / bit-packed hybrid encoding.
struct RLEDecoder {
    let base: UnsafePointer<UInt8>
    var pos: Int
    let end: Int
    let bitWidth: Int
    private var rleLeft = 0
    private var rleValue: UInt64 = 0
    private var packedLeft = 0
    private var packedBitPos = 0  // absolute bit position in base
    private var packedEnd = 0  // byte end of the current packed run

    init(_ buf: UnsafeRawBufferPointer, bitWidth: Int) throws(ParquetError) {
        guard bitWidth >= 0, bitWidth <= 32 else { throw ParquetError(.corruptPage, "RLE bit width \(bitWidth) out of range") }
        // An empty buffer gets a dummy base; nothing is ever read from it.
        base = buf.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyBytePointer
        pos = 0
        end = buf.count
        self.bitWidth = bitWidth
    }

    private mutating func readVarint() throws(ParquetError) -> UInt64 {
        var r: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end, shift < 64 else { throw ParquetError(.corruptPage, "RLE run header truncated") }
            let b = base[pos]
            pos += 1
            r |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return r }
            shift += 7
        }
    }

    private mutating func nextRun() throws(ParquetError) {
        let header = try readVarint()
        if header & 1 == 1 {
            let groups = header >> 1
            guard groups > 0, groups < UInt64(Int32.max) else { throw ParquetError(.corruptPage, "RLE bit-packed run has a bad size") }
            let bytesWanted = Int(groups) * bitWidth
            let avail = end - pos
            let bytes = min(bytesWanted, avail)
            // Tolerate a final run that was written shorter than its group count.
            packedLeft = bitWidth == 0 ? Int(groups) * 8 : min(Int(groups) * 8, bytes * 8 / bitWidth)
            guard packedLeft > 0 else { throw ParquetError(.corruptPage, "RLE bit-packed run past the end of data") }
            packedBitPos = pos * 8
            packedEnd = pos + bytes
            pos += bytes
        } else {
            let count = header >> 1
            guard count > 0, count < UInt64(Int32.max) else { throw ParquetError(.corruptPage, "RLE run has a bad length") }
            let nbytes = (bitWidth + 7) / 8
            guard end - pos >= nbytes else { throw ParquetError(.corruptPage, "RLE run value truncated") }
            var v: UInt64 = 0
            for k in 0..<nbytes { v |= UInt64(base[pos + k]) << (8 * UInt64(k)) }
            pos += nbytes
            rleValue = v
            rleLeft = Int(count)
        }
    }

    /// Decodes exactly `count` values into `out`.
    mutating func decode<T: FixedWidthInteger>(into out: UnsafeMutablePointer<T>, count: Int) throws(ParquetError) {
        var i = 0
        while i < count {
            if rleLeft > 0 {
                let n = min(rleLeft, count - i)
                let v = T(truncatingIfNeeded: rleValue)
                (out + i).update(repeating: v, count: n)
                rleLeft -= n
                i += n
            } else if packedLeft > 0 {
                let n = min(packedLeft, count - i)
                let bw = bitWidth
                if bw == 0 {
                    (out + i).update(repeating: 0, count: n)
                } else {
                    var bp = packedBitPos
                    for k in 0..<n {
                        out[i + k] = T(truncatingIfNeeded: loadBits(base, packedEnd, bp, bw))
                        bp += bw
                    }
                    packedBitPos = bp
                }
                packedLeft -= n
                i += n
            } else {
                try nextRun()
            }
        }
    }

    /// Decodes `count` values into a new array.
    mutating func decode<T: FixedWidthInteger>(count: Int, as: T.Type = T.self) throws(ParquetError) -> [T] {
        var failure: ParquetError?
        let out = [T](unsafeUninitializedCapacity: count) { buf, n in
            n = 0
            guard count > 0 else { return }
            do throws(ParquetError) {
                try decode(into: buf.baseAddress!, count: count)
                n = count
            } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }
}

nonisolated(unsafe) let emptyBytePointer: UnsafePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
    p.initialize(repeating: 0, count: 16)
    return UnsafePointer(p)
}()

/// Encodes values with the RLE / bit-packed hybrid.
struct RLEEncoder {
    let bitWidth: Int
    var out: [UInt8] = []

    init(bitWidth: Int) { self.bitWidth = bitWidth }

    private mutating func varint(_ v: Int) {
        var v = UInt64(v)
        while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    private mutating func emitPacked<C: RandomAccessCollection>(_ vals: C, from: Int, count: Int) where C.Element: FixedWidthInteger, C.Index == Int {
        guard count > 0 else { return }
        let groups = (count + 7) / 8
        varint(groups << 1 | 1)
        guard bitWidth > 0 else { return }
        // groups * 8 values of bitWidth (≤ 32) bits: exactly groups * bitWidth bytes, written in
        // place (the padding values are the zeros already there).
        let start = out.count
        let total = groups * bitWidth
        out.append(contentsOf: repeatElement(0, count: total))
        let bw = bitWidth
        out.withUnsafeMutableBufferPointer { o in
            let p = o.baseAddress! + start
            var op = 0
            var acc: UInt64 = 0
            var bits = 0
            var k = 0
            while k < count {
                acc |= UInt64(truncatingIfNeeded: vals[from + k]) << UInt64(bits)
                bits += bw
                while bits >= 8 {
                    p[op] = UInt8(truncatingIfNeeded: acc)
                    op += 1
                    acc >>= 8
                    bits -= 8
                }
                k += 1
            }
            if bits > 0 && op < total { p[op] = UInt8(truncatingIfNeeded: acc) }
        }
    }

    private mutating func emitRun(_ value: UInt64, _ count: Int) {
        varint(count << 1)
        let nbytes = (bitWidth + 7) / 8
        for k in 0..<nbytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))) }
    }

    /// Appends the encoding of `vals` (values < 2^bitWidth, bitWidth ≤ 32).
    mutating func encode<C: RandomAccessCollection>(_ vals: C) where C.Element: FixedWidthInteger, C.Index == Int {
        let n = vals.count
        let start = vals.startIndex
        var litStart = start
        var i = start
        let end = start + n
        while i < end {
            let v = vals[i]
            var j = i + 1
            while j < end && vals[j] == v { j += 1 }
            let run = j - i
            let pending = i - litStart
            if run >= 8 {
                if pending % 8 == 0 {
                    emitPacked(vals, from: litStart, count: pending)
                    emitRun(UInt64(truncatingIfNeeded: v), run)
                    i = j
                    litStart = i
                } else {
                    i += 8 - pending % 8
                }
            } else {
                i = j
            }
        }
        emitPacked(vals, from: litStart, count: end - litStart)
    }

    static func encode<C: RandomAccessCollection>(_ vals: C, bitWidth: Int) -> [UInt8] where C.Element: FixedWidthInteger, C.Index == Int {
        var e = RLEEncoder(bitWidth: bitWidth)
        e.encode(vals)
        return e.out
    }
}

/// Packs `bw`-bit values LSB first (used by DELTA_BINARY_PACKED).
func packBits(_ vals: UnsafeBufferPointer<UInt64>, bitWidth bw: Int, into out: inout [UInt8]) {
    guard bw > 0 else { return }
    let totalBytes = (vals.count * bw + 7) / 8
    let start = out.count
    out.append(contentsOf: repeatElement(0, count: totalBytes))
    out.withUnsafeMutableBufferPointer { o in
        var bitPos = 0
        for v in vals {
            var v = bw == 64 ? v : v & ((1 << UInt64(bw)) - 1)
            var remaining = bw
            var bp = bitPos
            while remaining > 0 {
                let byte = start + bp >> 3
                let shift = bp & 7
                let take = min(8 - shift, remaining)
                o[byte] |= UInt8(truncatingIfNeeded: (v & ((1 << UInt64(take)) - 1)) << UInt64(shift))
                v >>= UInt64(take)
                remaining -= take
                bp += take
            }
            bitPos += bw
        }
    }
}
