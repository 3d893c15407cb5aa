/// LZ4 raw block format (codec LZ4_RAW), compression and decompression, in Swift.
enum LZ4 {
    static func decompress(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        var ok = true
        let out = [UInt8](unsafeUninitializedCapacity: max(expected, 1)) { dst, count in
            count = 0
            guard let d = dst.baseAddress, let s = src.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                ok = expected == 0 && src.count <= 1
                return
            }
            var ip = 0
            let iend = src.count
            var op = 0
            while ip < iend {
                let token = s[ip]
                ip += 1
                var lit = Int(token >> 4)
                if lit == 15 {
                    while true {
                        guard ip < iend else { ok = false; return }
                        let b = s[ip]; ip += 1
                        lit += Int(b)
                        if lit > expected { ok = false; return }
                        if b != 255 { break }
                    }
                }
                guard iend - ip >= lit, expected - op >= lit else { ok = false; return }
                (d + op).update(from: s + ip, count: lit)
                ip += lit
                op += lit
                if ip == iend { break }
                guard iend - ip >= 2 else { ok = false; return }
                let off = Int(s[ip]) | Int(s[ip + 1]) << 8
                ip += 2
                var mlen = Int(token & 15)
                if mlen == 15 {
                    while true {
                        guard ip < iend else { ok = false; return }
                        let b = s[ip]; ip += 1
                        mlen += Int(b)
                        if mlen > expected { ok = false; return }
                        if b != 255 { break }
                    }
                }
                mlen += 4
                guard off > 0, off <= op, expected - op >= mlen else { ok = false; return }
                Snappy.copyMatch(d, op, off, mlen)
                op += mlen
            }
            if op == expected { count = expected } else { ok = false }
        }
        guard ok else { throw ParquetError(.decompression, "LZ4: corrupt compressed data") }
        return expected == 0 ? [] : out
    }

    static func compress(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        let n = src.count
        var out: [UInt8] = []
        out.reserveCapacity(16 + n + n / 255)
        guard n > 0, let s = src.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return [0] }
        func emitLength(_ v: Int) {
            var v = v
            while v >= 255 { out.append(255); v -= 255 }
            out.append(UInt8(v))
        }
        func emitSequence(_ litStart: Int, _ litLen: Int, _ off: Int, _ matchLen: Int) {
            let ml = matchLen - 4
            let token = UInt8(min(litLen, 15) << 4) | (matchLen > 0 ? UInt8(min(ml, 15)) : 0)
            out.append(token)
            if litLen >= 15 { emitLength(litLen - 15) }
            out.append(contentsOf: UnsafeBufferPointer(start: s + litStart, count: litLen))
            if matchLen > 0 {
                out.append(UInt8(off & 0xff)); out.append(UInt8(off >> 8))
                if ml >= 15 { emitLength(ml - 15) }
            }
        }
        let tableBits = 14
        var table = [Int32](repeating: -1, count: 1 << tableBits)
        var lit = 0
        if n >= 13 {
            let matchLimit = n - 12   // a match must start at least 12 bytes before the end
            let copyLimit = n - 5     // the last 5 bytes are always literals
            var ip = 0
            table.withUnsafeMutableBufferPointer { tab in
                var skip = 64
                while ip < matchLimit {
                    let word = UnsafeRawPointer(s + ip).loadUnaligned(as: UInt32.self)
                    let h = Int((word &* 2654435761) >> UInt32(32 - tableBits))
                    let cand = Int(tab[h])
                    tab[h] = Int32(ip)
                    if cand >= 0, ip - cand <= 65535, UnsafeRawPointer(s + cand).loadUnaligned(as: UInt32.self) == word {
                        var len = 4
                        while ip + len < copyLimit && s[cand + len] == s[ip + len] { len += 1 }
                        emitSequence(lit, ip - lit, ip - cand, len)
                        ip += len
                        lit = ip
                        skip = 64
                    } else {
                        ip += skip >> 6
                        skip += 1
                    }
                }
            }
        }
        emitSequence(lit, n - lit, 0, 0)
        return out
    }
}
