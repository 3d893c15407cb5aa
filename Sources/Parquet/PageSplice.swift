/// Editing a data page in place (issue 12): a page that loses a few rows is the old page with a
/// few byte ranges replaced — the runs of the level and index streams that held the dropped slots,
/// the dropped PLAIN values, the length prefix that follows — and its Snappy body is the old one
/// with the elements around those ranges rewritten and every other element copied as it was.
/// Nothing is decoded or compressed beyond the runs that change.

/// Replace the bytes `range` of a buffer with `bytes` (an empty range inserts, empty bytes delete).
struct ByteEdit: Equatable {
    var range: Range<Int>
    var bytes: [UInt8]
}

/// `src` with `edits` (sorted by position, not overlapping) applied.
func applyEdits(_ src: UnsafeRawBufferPointer, _ edits: [ByteEdit]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(src.count + edits.reduce(0) { $0 + $1.bytes.count - $1.range.count })
    var x = 0
    for e in edits {
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: src[x..<e.range.lowerBound]))
        out.append(contentsOf: e.bytes)
        x = e.range.upperBound
    }
    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: src[x...]))
    return out
}

/// Whether `edits` are sorted, inside `0...count` and do not overlap.
func editsAreWellFormed(_ edits: [ByteEdit], count: Int) -> Bool {
    var prev = 0
    for e in edits {
        guard e.range.lowerBound >= prev, e.range.upperBound <= count else { return false }
        prev = e.range.upperBound
    }
    return true
}

/// Dropping values from an RLE / bit-packed hybrid stream by editing only the runs that hold them.
enum HybridSplice {
    /// Appends to `edits` (positions offset by `base`) the changes that remove the values at
    /// `drops` (sorted, distinct, each < `count`) from the stream `s` of `count` values of
    /// `bitWidth` bits. An RLE run loses its dropped values by a smaller count; in a bit-packed run
    /// holding a dropped value, each group of eight values that loses one becomes RLE runs of its
    /// survivors and the stretches of groups between keep their bytes under new headers (a
    /// bit-packed run cannot end short of eight values mid-stream); a run of one group, or of bit
    /// width 0, is written again: its first multiple of eight survivors bit-packed, the rest as RLE
    /// runs, or all of them bit-packed with padding when the run ends the stream. Returns the stream's length
    /// in bytes (the end of the run holding the last value), or nil for a stream this code does
    /// not edit (truncated, a run of no values): the caller takes the decoding path, which
    /// reports what is wrong.
    static func dropping(
        _ s: UnsafeRawBufferPointer, bitWidth bw: Int, count: Int, drops: [Int], base: Int, edits: inout [ByteEdit]
    ) -> Int? {
        guard bw >= 0 && bw <= 32 else { return nil }
        let valueBytes = (bw + 7) / 8
        var pos = 0
        var seen = 0
        var di = 0
        while seen < count {
            let runStart = pos
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard pos < s.count, shift < 35 else { return nil }
                let b = s[pos]
                pos += 1
                header |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { break }
                shift += 7
            }
            if header & 1 == 0 {
                let n = Int(header >> 1)
                guard n > 0, s.count - pos >= valueBytes else { return nil }
                pos += valueBytes
                let effective = min(n, count - seen)
                var k = 0
                while di < drops.count && drops[di] < seen + effective { k += 1; di += 1 }
                if k > 0 {
                    var bytes: [UInt8] = []
                    if effective > k {
                        appendVarint(UInt64(effective - k) << 1, to: &bytes)
                        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: s[(pos - valueBytes)..<pos]))
                    }
                    edits.append(ByteEdit(range: (base + runStart)..<(base + pos), bytes: bytes))
                }
                seen += effective
            } else {
                let groups = Int(header >> 1)
                guard groups > 0 else { return nil }
                let len = groups * bw
                guard s.count - pos >= len else { return nil }
                let bodyStart = pos
                pos += len
                let effective = min(groups * 8, count - seen)
                guard di < drops.count && drops[di] < seen + effective else {
                    seen += effective
                    continue
                }
                if bw > 0 && groups > 1 {
                    // Groups of eight values that lose none keep their bytes, under a new header for
                    // each stretch of them; a group that loses values becomes RLE runs of its survivors
                    // (a bit-packed run holds whole groups). Only the header and the groups that lose
                    // values change, so a Snappy body around them is mostly kept as it was.
                    let used = (effective + 7) / 8
                    s.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: s.count) { p in
                        let body = p + bodyStart
                        func dirty(_ g: Int) -> Bool { g < used && di < drops.count && drops[di] < seen + min(g * 8 + 8, effective) }
                        var cur = ByteEdit(range: (base + runStart)..<(base + bodyStart), bytes: [])
                        var g = 0
                        var vals: [UInt32] = []
                        while g < groups {
                            if !dirty(g) {
                                var k = g + 1
                                while k < groups && !dirty(k) { k += 1 }
                                appendVarint(UInt64(k - g) << 1 | 1, to: &cur.bytes)
                                edits.append(cur)
                                let at = base + bodyStart + k * bw
                                cur = ByteEdit(range: at..<at, bytes: [])
                                g = k
                                continue
                            }
                            cur.range = cur.range.lowerBound..<(base + bodyStart + (g + 1) * bw)
                            vals.removeAll(keepingCapacity: true)
                            for i in (g * 8)..<min(g * 8 + 8, effective) {
                                if di < drops.count && drops[di] == seen + i {
                                    di += 1
                                    continue
                                }
                                vals.append(UInt32(truncatingIfNeeded: loadBits(body, len, i * bw, bw)))
                            }
                            var i = 0
                            while i < vals.count {
                                var j = i + 1
                                while j < vals.count && vals[j] == vals[i] { j += 1 }
                                appendVarint(UInt64(j - i) << 1, to: &cur.bytes)
                                for b in 0..<valueBytes { cur.bytes.append(UInt8(truncatingIfNeeded: vals[i] >> (8 * UInt32(b)))) }
                                i = j
                            }
                            g += 1
                        }
                        if !cur.range.isEmpty { edits.append(cur) }
                    }
                    seen += effective
                    continue
                }
                // Survivors of the run.
                var vals: [UInt32] = []
                vals.reserveCapacity(effective)
                s.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: s.count) { p in
                    let body = p + bodyStart
                    for i in 0..<effective {
                        if di < drops.count && drops[di] == seen + i {
                            di += 1
                            continue
                        }
                        vals.append(bw == 0 ? 0 : UInt32(truncatingIfNeeded: loadBits(body, len, i * bw, bw)))
                    }
                }
                let endsStream = seen + groups * 8 >= count
                var bytes: [UInt8] = []
                if endsStream {
                    appendPacked(vals[...], bitWidth: bw, to: &bytes)
                } else {
                    let whole = vals.count / 8 * 8
                    appendPacked(vals[0..<whole], bitWidth: bw, to: &bytes)
                    var i = whole
                    while i < vals.count {
                        var j = i + 1
                        while j < vals.count && vals[j] == vals[i] { j += 1 }
                        appendVarint(UInt64(j - i) << 1, to: &bytes)
                        for b in 0..<valueBytes { bytes.append(UInt8(truncatingIfNeeded: vals[i] >> (8 * UInt32(b)))) }
                        i = j
                    }
                }
                edits.append(ByteEdit(range: (base + runStart)..<(base + pos), bytes: bytes))
                seen += effective
            }
        }
        return di == drops.count ? pos : nil
    }

    static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// A bit-packed run of `vals` (padded with zeros to a multiple of eight); nothing for no values.
    static func appendPacked(_ vals: ArraySlice<UInt32>, bitWidth bw: Int, to out: inout [UInt8]) {
        guard !vals.isEmpty else { return }
        let groups = (vals.count + 7) / 8
        appendVarint(UInt64(groups) << 1 | 1, to: &out)
        guard bw > 0 else { return }
        var acc: UInt64 = 0
        var bits = 0
        var written = 0
        for v in vals {
            acc |= UInt64(v) << UInt64(bits)
            bits += bw
            while bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: acc))
                written += 1
                acc >>= 8
                bits -= 8
            }
        }
        if bits > 0 {
            out.append(UInt8(truncatingIfNeeded: acc))
            written += 1
        }
        out.append(contentsOf: repeatElement(0, count: groups * bw - written))
    }
}

extension Snappy {
    /// The Snappy block `src`, which decompresses to `original`, edited so that it decompresses to
    /// `original` with `edits` applied — without compressing again: literals are written with the
    /// edits applied, a copy that neither reads nor writes an edited byte is kept (with its
    /// distance changed by the edits between its source and its destination), and any other copy
    /// becomes a literal of the bytes it produced. Nil when `src` is not a well-formed block of `original`'s length or the edits do
    /// not fit it.
    /// From element `ip` (output position `op`), the elements that are whole and touch no edit: a
    /// literal or copy writing only before `before` and at or after `after`, a copy also reading
    /// only from `after` on. Returns where the first other element starts (and its output
    /// position); a malformed element stops the walk there (the caller's own walk refuses it).
    @inline(__always)
    static func untouched(_ src: UnsafeRawBufferPointer, from ip: Int, op: Int, length: Int, before: Int, after: Int) -> (Int, Int) {
        guard op >= after, let base = src.baseAddress else { return (ip, op) }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let iend = src.count
        // Every element must write only before `limit`; every position below stays far from overflow.
        let limit = Swift.min(before, length)
        var ip = ip, op = op
        while ip < iend {
            let tag = Int(p[ip])
            var len: Int
            var next: Int
            if tag & 3 == 0 {
                len = tag &>> 2
                next = ip &+ 1
                if len >= 60 {
                    let extra = len &- 59
                    guard iend &- next >= extra else { return (ip, op) }
                    len = 0
                    for k in 0..<extra { len |= Int(p[next &+ k]) &<< (8 &* k) }
                    next &+= extra
                }
                len &+= 1
                guard iend &- next >= len, limit &- op >= len else { return (ip, op) }
                next &+= len
            } else {
                let off: Int
                if tag & 3 == 1 {
                    guard iend &- ip >= 2 else { return (ip, op) }
                    len = 4 &+ (tag &>> 2) & 7
                    off = (tag &>> 5) &<< 8 | Int(p[ip &+ 1])
                    next = ip &+ 2
                } else if tag & 3 == 2 {
                    guard iend &- ip >= 3 else { return (ip, op) }
                    len = 1 &+ tag &>> 2
                    off = Int(p[ip &+ 1]) | Int(p[ip &+ 2]) &<< 8
                    next = ip &+ 3
                } else {
                    guard iend &- ip >= 5 else { return (ip, op) }
                    len = 1 &+ tag &>> 2
                    off = Int(p[ip &+ 1]) | Int(p[ip &+ 2]) &<< 8 | Int(p[ip &+ 3]) &<< 16 | Int(p[ip &+ 4]) &<< 24
                    next = ip &+ 5
                }
                guard off > 0, op &- off >= after, limit &- op >= len else { return (ip, op) }
            }
            ip = next
            op &+= len
        }
        return (ip, op)
    }

    static func splice(_ src: UnsafeRawBufferPointer, original: UnsafeRawBufferPointer, edits: [ByteEdit]) -> [UInt8]? {
        guard let (length, start) = try? uncompressedLength(src), length == original.count,
            editsAreWellFormed(edits, count: length)
        else { return nil }
        let newLength = length + edits.reduce(0) { $0 + $1.bytes.count - $1.range.count }
        var out: [UInt8] = []
        out.reserveCapacity(src.count + edits.reduce(0) { $0 + $1.bytes.count } + 64)
        HybridSplice.appendVarint(UInt64(newLength), to: &out)
        var lit: [UInt8] = []
        func flush() {
            guard !lit.isEmpty else { return }
            let n = lit.count - 1
            if n < 60 {
                out.append(UInt8(n << 2))
            } else {
                var bytes = 1
                while bytes < 4 && n >> (8 * bytes) != 0 { bytes += 1 }
                out.append(UInt8((59 + bytes) << 2))
                for b in 0..<bytes { out.append(UInt8(truncatingIfNeeded: n >> (8 * b))) }
            }
            out.append(contentsOf: lit)
            lit.removeAll(keepingCapacity: true)
        }
        var ei = 0  // first edit whose replacement is not yet written
        var skipUntil = 0  // original bytes before this are replaced by an edit already written
        /// Appends the original bytes [a, b) with the edits that start there applied.
        func edited(_ a: Int, _ b: Int) {
            var x = max(a, skipUntil)
            while ei < edits.count && edits[ei].range.lowerBound < b {
                let e = edits[ei]
                if e.range.lowerBound > x {
                    lit.append(contentsOf: UnsafeRawBufferPointer(rebasing: original[x..<e.range.lowerBound]))
                }
                lit.append(contentsOf: e.bytes)
                skipUntil = e.range.upperBound
                x = max(x, e.range.upperBound)
                ei += 1
            }
            if x < b { lit.append(contentsOf: UnsafeRawBufferPointer(rebasing: original[x..<b])) }
        }
        /// The copy's distance in the edited output, for a copy reading `len` bytes at `src` and
        /// writing them at `dst`; nil when an edit changes the bytes it reads or writes (then they
        /// are written as a literal). Edits between source and destination only move them apart.
        // Per block of 256 output bytes, the first edit ending after the block's start; and the
        // running sum of the edits' size changes: a copy's distance in O(1) however far it reaches.
        let shift = 8
        var firstEnding = [Int](repeating: edits.count, count: (length >> shift) + 2)
        var k = 0
        for b in firstEnding.indices {
            while k < edits.count && edits[k].range.upperBound <= b << shift { k += 1 }
            firstEnding[b] = k
        }
        var growth = [Int](repeating: 0, count: edits.count + 1)
        for (k, e) in edits.enumerated() { growth[k + 1] = growth[k] + e.bytes.count - e.range.count }
        func distance(_ src: Int, _ dst: Int, _ len: Int) -> Int? {
            // The edits [i, j) lie between the copy's source and the end of its destination: i the
            // first ending after `src` (edits are sorted and disjoint: their ends are too), j the
            // first from i starting at or after `dst + len`.
            var i = firstEnding[src >> shift]
            while i < edits.count && edits[i].range.upperBound <= src { i += 1 }
            var j = min(max(ei, i), edits.count)
            while j > i && edits[j - 1].range.lowerBound >= dst + len { j -= 1 }
            while j < edits.count && edits[j].range.lowerBound < dst + len { j += 1 }
            // One of them changes a byte the copy reads (the lowest start is the first's) or writes
            // (the highest end is the last's); an insertion counts strictly inside either.
            if i < j && (edits[i].range.lowerBound < src + len || edits[j - 1].range.upperBound > dst) { return nil }
            let d = dst - src + growth[j] - growth[i]
            return d > 0 ? d : nil
        }
        var ip = start
        var op = 0
        let iend = src.count
        // Elements no edit touches are copied as they were, a run at a time.
        var run = start
        func flushRun(_ end: Int) {
            if end > run { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: src[run..<end])) }
        }
        // Per edit index: where the next edit starts, and the point a copy's source must not be
        // before for its distance to hold (the end of the last edit written; an insertion's place).
        let lowers = edits.map(\.range.lowerBound) + [Int.max]
        let barriers = [0] + edits.map { $0.range.isEmpty ? $0.range.lowerBound : $0.range.upperBound }
        while ip < iend {
            // Elements no edit touches, walked without writing anything.
            let (vip, vop) = Self.untouched(src, from: ip, op: op, length: length, before: lowers[ei], after: max(barriers[ei], skipUntil))
            if vip > ip {
                if !lit.isEmpty {
                    flush()
                    run = ip
                }
                ip = vip
                op = vop
                if ip >= iend { break }
            }
            let elementStart = ip
            let tag = src[ip]
            ip += 1
            var len: Int
            var off = 0
            let nextEdit = lowers[ei]
            switch tag & 3 {
            case 0:
                len = Int(tag >> 2)
                if len >= 60 {
                    let extra = len - 59
                    guard iend - ip >= extra else { return nil }
                    len = 0
                    for k in 0..<extra { len |= Int(src[ip + k]) << (8 * k) }
                    ip += extra
                }
                len += 1
                guard iend - ip >= len, length - op >= len else { return nil }
                ip += len
                if op >= skipUntil && op + len <= nextEdit {
                    if !lit.isEmpty {
                        flush()
                        run = elementStart
                    }
                } else {
                    flushRun(elementStart)
                    edited(op, op + len)
                    run = ip
                }
                op += len
                continue
            case 1:
                guard ip < iend else { return nil }
                len = 4 + Int((tag >> 2) & 7)
                off = Int(tag >> 5) << 8 | Int(src[ip])
                ip += 1
            case 2:
                guard iend - ip >= 2 else { return nil }
                len = 1 + Int(tag >> 2)
                off = Int(src[ip]) | Int(src[ip + 1]) << 8
                ip += 2
            default:
                guard iend - ip >= 4 else { return nil }
                len = 1 + Int(tag >> 2)
                for k in 0..<4 { off |= Int(src[ip + k]) << (8 * k) }
                ip += 4
            }
            guard off > 0, off <= op, length - op >= len else { return nil }
            // Past every edit written so far and ending before the next: as it was.
            let barrier = barriers[ei]
            if op - off >= barrier && op >= skipUntil && op + len <= nextEdit {
                if !lit.isEmpty {
                    flush()
                    run = elementStart
                }
                op += len
                continue
            }
            flushRun(elementStart)
            run = ip
            if let d = distance(op - off, op, len) {
                // Insertions at the copy's start come before its bytes.
                while ei < edits.count && edits[ei].range.lowerBound <= op {
                    lit.append(contentsOf: edits[ei].bytes)
                    skipUntil = max(skipUntil, edits[ei].range.upperBound)
                    ei += 1
                }
                flush()
                if d == off {
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: src[elementStart..<ip]))
                } else if len >= 4 && len <= 11 && d < 2048 {
                    out.append(UInt8(1 | (len - 4) << 2 | (d >> 8) << 5))
                    out.append(UInt8(d & 0xff))
                } else if d < 65536 {
                    out.append(UInt8(2 | (len - 1) << 2))
                    out.append(UInt8(d & 0xff))
                    out.append(UInt8(d >> 8))
                } else {
                    out.append(UInt8(3 | (len - 1) << 2))
                    for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: d >> (8 * k))) }
                }
            } else {
                edited(op, op + len)
            }
            op += len
        }
        flushRun(iend)
        guard op == length else { return nil }
        // Insertions at the very end (no element reaches them).
        while ei < edits.count {
            lit.append(contentsOf: edits[ei].bytes)
            ei += 1
        }
        flush()
        return out
    }
}
