/// Finds which of many byte strings occur in a haystack, in one pass of two stages.
///
/// A sampled filter first: with `m` the shortest needle's length and a gram length `q`, every
/// occurrence of a needle covers one of the positions `0, s, 2s, …` (`s = m - q + 1`) together with the
/// `q` bytes that follow it, inside the needle's first `m` bytes. So only every `s`-th position is looked
/// at: its `q`-byte gram is hashed into a byte table that holds every needle's grams at offsets `0..<s`.
/// Only where the table says yes are the `s` starts that could hold a needle checked: their first `k`
/// bytes (at most 8) against a 64K-bit filter and a dictionary, then the rest of each candidate is
/// compared. Needles shorter than 6 bytes have no sampled stage (every start is checked). With ids of
/// 9 bytes this reads one position in 6 (about 3.5 instructions a byte against 21 for a rolling check
/// at every byte, docs/benchmarks.md). Used to search lake objects (the sweep), Lethe's state, Delta
/// logs and commit files for raw ids.
public struct NeedleSet: Sendable {
    let k: Int
    let byPrefix: [UInt64: [[UInt8]]]
    let filter: [UInt64]
    let wordBounded: Bool
    /// The sampled stage: gram length (0: none), stride, hash shift and table.
    let q: Int
    let stride: Int
    let gramShift: UInt64
    let grams: [UInt8]

    /// Empty needles are ignored. `wordBounded`: a needle that begins (ends) with an ASCII letter or
    /// digit matches only where the byte before (after) it is not one, so a numeric id is not found
    /// inside a longer number (a timestamp, a size) nor a hex-like one inside a hash. The edges of
    /// the haystack count as boundaries.
    public init(_ needles: [[UInt8]], wordBounded: Bool = false) {
        let ns = Array(Set(needles.filter { !$0.isEmpty }))
        let m = ns.map(\.count).min() ?? 1
        let k = min(8, m)
        var byPrefix: [UInt64: [[UInt8]]] = [:]
        for n in ns { byPrefix[Self.pack(n, 0, k), default: []].append(n) }
        for p in byPrefix.keys { byPrefix[p]!.sort { $0.lexicographicallyPrecedes($1) } }
        var filter = [UInt64](repeating: 0, count: 1024)
        for p in byPrefix.keys { let s = Self.slot(p); filter[s >> 6] |= 1 << UInt64(s & 63) }
        // Longer grams where needles are long enough to keep a long stride (fewer false hits in text
        // that shares short runs with the needles, e-mail domains say).
        let q = m >= 12 ? 8 : m >= 6 ? 4 : 0
        let stride = q == 0 ? 1 : m - q + 1
        var bits = 15
        while bits < 24 && (1 << bits) < ns.count * stride * 32 { bits += 1 }
        let shift = UInt64(64 - bits)
        var grams = [UInt8](repeating: 0, count: q == 0 ? 0 : 1 << bits)
        if q > 0 {
            for n in ns {
                for o in 0..<stride { grams[Self.gramSlot(Self.pack(n, o, q), shift)] = 1 }
            }
        }
        self.k = k; self.byPrefix = byPrefix; self.filter = filter; self.wordBounded = wordBounded
        self.q = q; self.stride = stride; self.gramShift = shift; self.grams = grams
    }

    /// `n[from ..< from + count]` as a little-endian integer (`count` ≤ 8), as loaded from a haystack.
    @inline(__always) static func pack(_ n: [UInt8], _ from: Int, _ count: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<count { v |= UInt64(n[from + i]) << (8 * UInt64(i)) }
        return v
    }

    @inline(__always) public static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
    }

    /// Whether `needle` at `start` of `hay` stands alone: no letter or digit continues a letter or digit at its edges.
    @inline(__always) public static func isBounded(_ needle: [UInt8], at start: Int, in hay: UnsafeBufferPointer<UInt8>) -> Bool {
        if start > 0, isWordByte(needle[0]), isWordByte(hay[start - 1]) { return false }
        let end = start + needle.count
        if end < hay.count, isWordByte(needle[needle.count - 1]), isWordByte(hay[end]) { return false }
        return true
    }

    public var isEmpty: Bool { byPrefix.isEmpty }

    @inline(__always) static func slot(_ p: UInt64) -> Int { Int(truncatingIfNeeded: (p &* 0x9E37_79B9_7F4A_7C15) >> 48) }
    @inline(__always) static func gramSlot(_ g: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (g &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The needles that occur in `hay`.
    public func matches(in hay: [UInt8]) -> Set<[UInt8]> {
        hay.withUnsafeBufferPointer { matches(in: $0) }
    }

    /// The needles that occur in `hay`.
    public func matches(in hay: UnsafeBufferPointer<UInt8>) -> Set<[UInt8]> {
        var found = Set<[UInt8]>()
        forEachOccurrence(in: hay) { _, n in
            found.insert(n)
            return true
        }
        return found
    }

    /// True when any needle occurs in `hay` (stops at the first).
    public func containsAny(_ hay: [UInt8]) -> Bool {
        var any = false
        hay.withUnsafeBufferPointer { h in
            forEachOccurrence(in: h) { _, _ in
                any = true
                return false
            }
        }
        return any
    }

    /// Calls `body` with the start and the needle of every occurrence in `h` (overlapping ones too), in
    /// order of start, needles starting at the same byte in byte order; `body` returns false to stop.
    public func forEachOccurrence(in h: UnsafeBufferPointer<UInt8>, _ body: (Int, [UInt8]) -> Bool) {
        guard !byPrefix.isEmpty, h.count >= k, let base = h.baseAddress else { return }
        let n = h.count
        let raw = UnsafeRawPointer(base)
        let k = self.k
        let kMask: UInt64 = k == 8 ? .max : (1 << (8 * UInt64(k))) - 1
        @inline(__always) func load(_ i: Int, _ mask: UInt64, _ len: Int) -> UInt64 {
            if i + 8 <= n { return raw.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian & mask }
            var v: UInt64 = 0
            for t in 0..<len { v |= UInt64(base[i + t]) << (8 * UInt64(t)) }
            return v
        }
        // The needles that may start at `p`; false when `body` asked to stop.
        @inline(__always) func check(_ p: Int) -> Bool {
            let pre = load(p, kMask, k)
            let sl = Self.slot(pre)
            guard filter[sl >> 6] & (1 << UInt64(sl & 63)) != 0, let cands = byPrefix[pre] else { return true }
            for c in cands where p + c.count <= n {
                var j = k
                while j < c.count && base[p + j] == c[j] { j += 1 }
                guard j == c.count else { continue }
                if wordBounded && !Self.isBounded(c, at: p, in: h) { continue }
                if !body(p, c) { return false }
            }
            return true
        }
        guard q > 0 else {
            for p in 0...(n - k) where !check(p) { return }
            return
        }
        let q = self.q, s = self.stride, shift = gramShift
        let qMask: UInt64 = q == 8 ? .max : (1 << (8 * UInt64(q))) - 1
        grams.withUnsafeBufferPointer { g in
            var j = 0
            // The starts `j - s + 1 ... j` that a hit at `j` may hold; false when `body` asked to stop.
            @inline(__always) func hit(_ j: Int) -> Bool {
                var p = max(0, j - s + 1)
                while p <= j && p + k <= n {
                    if !check(p) { return false }
                    p += 1
                }
                return true
            }
            // While 8 bytes can be loaded at `j`: no bounds branch in the loop.
            let fast = n - 8
            while j <= fast {
                let gram = raw.loadUnaligned(fromByteOffset: j, as: UInt64.self).littleEndian & qMask
                if _slowPath(g[Self.gramSlot(gram, shift)] != 0) && !hit(j) { return }
                j += s
            }
            while j <= n - q {
                if g[Self.gramSlot(load(j, qMask, q), shift)] != 0 && !hit(j) { return }
                j += s
            }
        }
    }

    /// `hay` with every occurrence of `needle` as a whole token (`isBounded`) replaced by `mark`: a
    /// numeric id is not cut out of a longer number, nor a hex-like one out of a hash.
    public static func replacingTokens(_ needle: [UInt8], in hay: [UInt8], with mark: [UInt8]) -> [UInt8] {
        guard !needle.isEmpty, hay.count >= needle.count else { return hay }
        return hay.withUnsafeBufferPointer { h in
            var out: [UInt8] = []
            out.reserveCapacity(h.count)
            var i = 0
            while i < h.count {
                if i + needle.count <= h.count, h[i] == needle[0], h[i..<(i + needle.count)].elementsEqual(needle),
                    isBounded(needle, at: i, in: h)
                {
                    out += mark
                    i += needle.count
                } else {
                    out.append(h[i])
                    i += 1
                }
            }
            return out
        }
    }

    /// `hay` with every needle found in it (`matches`) replaced as a whole token by `mark`, in byte
    /// order of the needles; nil when nothing changes.
    public func replacingMatches(in hay: [UInt8], with mark: [UInt8]) -> [UInt8]? {
        let hit = matches(in: hay)
        guard !hit.isEmpty else { return nil }
        var new = hay
        for id in hit.sorted(by: { $0.lexicographicallyPrecedes($1) }) { new = Self.replacingTokens(id, in: new, with: mark) }
        return new == hay ? nil : new
    }
}
