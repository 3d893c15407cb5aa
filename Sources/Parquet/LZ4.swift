/// LZ4 raw block format (codec LZ4_RAW), compression and decompression, in Swift; and
/// codec LZ4, whose pages hold the block in Hadoop's framing.
enum LZ4 {
    /// Codec LZ4 (deprecated in the format): parquet-mr writes Hadoop's framing, one or
    /// more frames of a 4-byte big-endian uncompressed length, a 4-byte big-endian
    /// compressed length and an LZ4 block; older parquet-cpp wrote a bare LZ4 block. As
    /// Arrow does, the framing is tried first and a bare block is the fallback.
    static func decompressHadoop(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        if let framed = hadoopFrames(src, expected: expected) {
            var out: [UInt8] = []
            out.reserveCapacity(expected)
            var ok = true
            for f in framed {
                guard let part = try? decompress(UnsafeRawBufferPointer(rebasing: src[f.range]), expected: f.length) else { ok = false; break }
                out += part
            }
            if ok && out.count == expected { return out }
        }
        do {
            return try decompress(src, expected: expected)
        } catch {
            throw ParquetError(.decompression, "LZ4: the page is neither Hadoop-framed LZ4 nor an LZ4 block")
        }
    }

    /// The frames of a Hadoop-framed page, if the lengths add up exactly.
    static func hadoopFrames(_ src: UnsafeRawBufferPointer, expected: Int) -> [(range: Range<Int>, length: Int)]? {
        var frames: [(range: Range<Int>, length: Int)] = []
        var pos = 0, produced = 0
        func be32(_ at: Int) -> Int {
            Int(src[at]) << 24 | Int(src[at + 1]) << 16 | Int(src[at + 2]) << 8 | Int(src[at + 3])
        }
        while src.count - pos >= 8 {
            let raw = be32(pos), packed = be32(pos + 4)
            pos += 8
            guard packed <= src.count - pos, raw <= expected - produced else { return nil }
            frames.append((pos..<(pos + packed), raw))
            pos += packed
            produced += raw
        }
        guard pos == src.count, produced == expected, !frames.isEmpty else { return nil }
        return frames
    }

    /// One Hadoop frame around an LZ4 block (what parquet-mr and Arrow read for codec LZ4).
    static func compressHadoop(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        let block = compress(src)
        var out: [UInt8] = []
        out.reserveCapacity(block.count + 8)
        for v in [src.count, block.count] {
            out += [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        return out + block
    }

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
            let matchLimit = n - 12  // a match must start at least 12 bytes before the end
            let copyLimit = n - 5  // the last 5 bytes are always literals
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
