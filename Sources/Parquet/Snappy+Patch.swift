/// Editing a Snappy block in place: when the bytes to change were written by literals and no copy
/// reads them, the new block is the old one with those literal bytes replaced. The neutralised
/// dictionary page uses this instead of compressing the whole page again.
extension Snappy {
    /// The block `src` (which decompresses to `length` bytes) with the output bytes at `changes`
    /// replaced, or nil when a changed byte is produced by a copy, read by a copy, or outside the
    /// output. `changes` must be sorted by position and not overlap.
    static func patch(_ src: UnsafeRawBufferPointer, changes: [(at: Int, bytes: [UInt8])]) -> [UInt8]? {
        guard let (length, start) = try? uncompressedLength(src) else { return nil }
        var prevEnd = 0
        for c in changes {
            guard c.at >= prevEnd, c.at + c.bytes.count <= length else { return nil }
            prevEnd = c.at + c.bytes.count
        }
        let spans = changes.filter { !$0.bytes.isEmpty }
        guard !spans.isEmpty else { return Array(src) }
        // Does the output range [lo, hi) hold a changed byte?
        func touches(_ lo: Int, _ hi: Int) -> Bool {
            var a = 0, b = spans.count
            while a < b {
                let m = (a + b) / 2
                if spans[m].at + spans[m].bytes.count <= lo { a = m + 1 } else { b = m }
            }
            return a < spans.count && spans[a].at < hi
        }
        var out = Array(src)
        var ok = true
        out.withUnsafeMutableBytes { o in
            var ip = start
            var op = 0
            var next = 0  // first span not yet fully written
            let iend = src.count
            while ip < iend {
                let tag = src[ip]
                ip += 1
                var len: Int
                var off = 0
                switch tag & 3 {
                case 0:
                    len = Int(tag >> 2)
                    if len >= 60 {
                        let extra = len - 59
                        guard iend - ip >= extra else { ok = false; return }
                        len = 0
                        for k in 0..<extra { len |= Int(src[ip + k]) << (8 * k) }
                        ip += extra
                    }
                    len += 1
                    guard iend - ip >= len, length - op >= len else { ok = false; return }
                    // Write the parts of the changes that fall in this literal.
                    while next < spans.count && spans[next].at < op + len {
                        let s = spans[next]
                        let lo = max(s.at, op), hi = min(s.at + s.bytes.count, op + len)
                        if lo < hi {
                            for q in lo..<hi { o[ip + (q - op)] = s.bytes[q - s.at] }
                        }
                        if s.at + s.bytes.count <= op + len { next += 1 } else { break }
                    }
                    ip += len
                    op += len
                    continue
                case 1:
                    guard ip < iend else { ok = false; return }
                    len = 4 + Int((tag >> 2) & 7)
                    off = Int(tag >> 5) << 8 | Int(src[ip])
                    ip += 1
                case 2:
                    guard iend - ip >= 2 else { ok = false; return }
                    len = 1 + Int(tag >> 2)
                    off = Int(src[ip]) | Int(src[ip + 1]) << 8
                    ip += 2
                default:
                    guard iend - ip >= 4 else { ok = false; return }
                    len = 1 + Int(tag >> 2)
                    for k in 0..<4 { off |= Int(src[ip + k]) << (8 * k) }
                    ip += 4
                }
                guard off > 0, off <= op, length - op >= len else { ok = false; return }
                // A copy may neither produce nor read a changed byte.
                if touches(op, op + len) || touches(op - off, op - off + len) { ok = false; return }
                op += len
            }
            if op != length || next != spans.count { ok = false }
        }
        return ok ? out : nil
    }
}
