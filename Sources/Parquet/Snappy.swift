/// Snappy raw block format, compression and decompression, in Swift.
enum Snappy {
    /// Reads the uncompressed length stored at the start of a Snappy block.
    static func uncompressedLength(_ src: UnsafeRawBufferPointer) throws(ParquetError) -> (Int, Int) {
        var result = 0
        var shift = 0
        var i = 0
        while true {
            guard i < src.count, shift <= 28 else { throw ParquetError(.decompression, "Snappy: bad length preamble") }
            let b = src[i]
            i += 1
            result |= Int(b & 0x7f) << shift
            if b & 0x80 == 0 { break }
            shift += 7
        }
        return (result, i)
    }

    /// Decompresses into exactly `expected` bytes.
    static func decompress(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        let (length, start) = try uncompressedLength(src)
        guard length == expected else {
            throw ParquetError(.decompression, "Snappy: block says \(length) bytes, page header says \(expected)")
        }
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: max(length, 1)) { dst, count in
            count = 0
            guard length > 0 else { ok = src.count == start; return }
            guard let d = dst.baseAddress, let s = src.baseAddress else { ok = false; return }
            var ip = start
            let iend = src.count
            var op = 0
            while ip < iend {
                let tag = s.load(fromByteOffset: ip, as: UInt8.self)
                ip += 1
                switch tag & 3 {
                case 0:
                    var len = Int(tag >> 2)
                    if len >= 60 {
                        let extra = len - 59
                        guard iend - ip >= extra else { ok = false; return }
                        len = 0
                        for k in 0..<extra { len |= Int(s.load(fromByteOffset: ip + k, as: UInt8.self)) << (8 * k) }
                        ip += extra
                    }
                    len += 1
                    guard iend - ip >= len, length - op >= len else { ok = false; return }
                    (d + op).update(from: (s + ip).assumingMemoryBound(to: UInt8.self), count: len)
                    ip += len
                    op += len
                    continue
                case 1:
                    guard ip < iend else { ok = false; return }
                    let len = 4 + Int((tag >> 2) & 7)
                    let off = Int(tag >> 5) << 8 | Int(s.load(fromByteOffset: ip, as: UInt8.self))
                    ip += 1
                    guard off > 0, off <= op, length - op >= len else { ok = false; return }
                    copyMatch(d, op, off, len)
                    op += len
                case 2:
                    guard iend - ip >= 2 else { ok = false; return }
                    let len = 1 + Int(tag >> 2)
                    let off = Int(s.load(fromByteOffset: ip, as: UInt8.self)) | Int(s.load(fromByteOffset: ip + 1, as: UInt8.self)) << 8
                    ip += 2
                    guard off > 0, off <= op, length - op >= len else { ok = false; return }
                    copyMatch(d, op, off, len)
                    op += len
                default:
                    guard iend - ip >= 4 else { ok = false; return }
                    let len = 1 + Int(tag >> 2)
                    var off = 0
                    for k in 0..<4 { off |= Int(s.load(fromByteOffset: ip + k, as: UInt8.self)) << (8 * k) }
                    ip += 4
                    guard off > 0, off <= op, length - op >= len else { ok = false; return }
                    copyMatch(d, op, off, len)
                    op += len
                }
            }
            if op == length { count = length } else { ok = false }
        }
        guard ok else { throw ParquetError(.decompression, "Snappy: corrupt compressed data") }
        return length == 0 ? [] : out
    }

    @inline(__always)
    static func copyMatch(_ d: UnsafeMutablePointer<UInt8>, _ op: Int, _ off: Int, _ len: Int) {
        if off >= len {
            (d + op).update(from: d + op - off, count: len)
        } else {
            var i = 0
            while i < len { d[op + i] = d[op - off + i]; i += 1 }
        }
    }

    /// Compresses `src` into a Snappy raw block (written through a pointer into a buffer of the
    /// format's worst-case size, then trimmed).
    static func compress(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        let n = src.count
        let capacity = 32 + n + n / 6
        return [UInt8](unsafeUninitializedCapacity: capacity) { buf, count in
            let o = buf.baseAddress!
            var op = 0
            var v = n
            while v >= 0x80 {
                o[op] = UInt8(v & 0x7f) | 0x80
                op += 1
                v >>= 7
            }
            o[op] = UInt8(v)
            op += 1
            guard n > 0, let s = src.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                count = op
                return
            }

            @inline(__always) func emitLiteral(_ from: Int, _ len: Int) {
                guard len > 0 else { return }
                let l = len - 1
                if l < 60 {
                    o[op] = UInt8(l << 2)
                    op += 1
                } else if l < 1 << 8 {
                    o[op] = 60 << 2
                    o[op + 1] = UInt8(l)
                    op += 2
                } else if l < 1 << 16 {
                    o[op] = 61 << 2
                    o[op + 1] = UInt8(l & 0xff)
                    o[op + 2] = UInt8(l >> 8)
                    op += 3
                } else if l < 1 << 24 {
                    o[op] = 62 << 2
                    o[op + 1] = UInt8(l & 0xff)
                    o[op + 2] = UInt8((l >> 8) & 0xff)
                    o[op + 3] = UInt8(l >> 16)
                    op += 4
                } else {
                    o[op] = 63 << 2
                    for k in 0..<4 { o[op + 1 + k] = UInt8((l >> (8 * k)) & 0xff) }
                    op += 5
                }
                (o + op).update(from: s + from, count: len)
                op += len
            }
            @inline(__always) func emitCopy(_ off: Int, _ len: Int) {
                var len = len
                while len > 0 {
                    var chunk = min(len, 64)
                    if len - chunk > 0 && len - chunk < 4 { chunk = len - 4 }
                    if chunk >= 4 && chunk <= 11 && off < 2048 {
                        o[op] = UInt8(1 | ((chunk - 4) << 2) | ((off >> 8) << 5))
                        o[op + 1] = UInt8(off & 0xff)
                        op += 2
                    } else {
                        o[op] = UInt8(2 | ((chunk - 1) << 2))
                        o[op + 1] = UInt8(off & 0xff)
                        o[op + 2] = UInt8(off >> 8)
                        op += 3
                    }
                    len -= chunk
                }
            }

            let tableBits = 14
            let tab = UnsafeMutablePointer<Int32>.allocate(capacity: 1 << tableBits)
            defer { tab.deallocate() }
            let blockSize = 1 << 16
            var blockStart = 0
            while blockStart < n {
                let blockEnd = min(n, blockStart + blockSize)
                tab.update(repeating: -1, count: 1 << tableBits)
                var ip = blockStart
                var lit = blockStart
                if blockEnd - blockStart >= 15 {
                    let limit = blockEnd - 4
                    var skip = 32
                    while ip <= limit {
                        let word = UnsafeRawPointer(s + ip).loadUnaligned(as: UInt32.self)
                        let h = Int((word &* 0x1e35a7bd) >> UInt32(32 - tableBits))
                        let cand = Int(tab[h])
                        tab[h] = Int32(ip)
                        if cand >= blockStart, cand < ip, UnsafeRawPointer(s + cand).loadUnaligned(as: UInt32.self) == word {
                            emitLiteral(lit, ip - lit)
                            var len = 4
                            while ip + len + 8 <= blockEnd {
                                let x = UnsafeRawPointer(s + cand + len).loadUnaligned(as: UInt64.self)
                                let y = UnsafeRawPointer(s + ip + len).loadUnaligned(as: UInt64.self)
                                if x != y {
                                    len += (x ^ y).trailingZeroBitCount >> 3
                                    break
                                }
                                len += 8
                            }
                            if ip + len + 8 > blockEnd {
                                while ip + len < blockEnd && s[cand + len] == s[ip + len] { len += 1 }
                            }
                            emitCopy(ip - cand, len)
                            ip += len
                            lit = ip
                            skip = 32
                        } else {
                            ip += skip >> 5
                            skip += 1
                        }
                    }
                }
                emitLiteral(lit, blockEnd - lit)
                blockStart = blockEnd
            }
            count = op
        }
    }
}
