internal import CLetheNeedles

/// Finds which of many byte strings occur in a haystack, in one pass of two stages (the C kernel
/// `CLetheNeedles`, issue 16).
///
/// A first stage finds the starts worth verifying, then each is verified against the needles that
/// share its first `k` bytes (`k` = min(8, shortest)): a 64K-bit filter and a hash table on those
/// bytes, a compare of the rest, the word bounds.
/// - Teddy (x86-64 with AVX2, chosen at run time): the 3 bytes at one offset of every needle (the
///   offset whose bytes are the rarest, judged by the needles' own bytes) as nibble masks of 8
///   buckets, tested 32 positions at a time with byte shuffles. Ids that share a prefix (`u-0…`)
///   make a tight fingerprint: a candidate only where an id-like token starts. When the needles'
///   fingerprints would pass most bytes (1,000 random hex ids) Teddy is not used, and a run of dense
///   candidates in the data switches to the sampled stage for 64 KiB at a time.
/// - Sampled grams (portable, and the fallback): with `m` the shortest needle's length and a gram
///   length `q`, every occurrence of a needle covers one of the positions `0, s, 2s, …` (`s = m - q + 1`)
///   together with the `q` bytes that follow it, inside the needle's first `m` bytes; only those
///   positions' grams are looked up in a byte table holding every needle's grams at offsets `0..<s`.
///   Needles shorter than 6 bytes have no sampled stage (every start is verified).
/// Used to search lake objects (the sweep), Lethe's state, Delta logs and commit files for raw ids.
public struct NeedleSet: Sendable {
    /// The needles, deduplicated, in byte order (a shorter one first on a tie).
    let needles: [[UInt8]]
    let k: Int
    let wordBounded: Bool
    /// The most needles sharing their first `k` bytes.
    let maxGroup: Int
    /// The needles' bytes, then one flag byte per needle, then the gram table, then Teddy's 96 bytes of masks.
    let bytes: [UInt8]
    let flagsAt: Int, gramsAt: Int, teddyAt: Int
    /// Each needle's start in `bytes` (count + 1), then the hash table's first needle and count per slot.
    let words: [UInt32]
    let firstAt: Int, countAt: Int
    /// The 64K-bit prefix filter (1,024 words), then the hash table's keys.
    let wide: [UInt64]
    let tableBits: Int
    /// The sampled stage: gram length (0: none), stride, hash shift.
    let q: Int
    let stride: Int
    let gramShift: UInt64
    /// Teddy's offset in the needles, nil when the needles' fingerprints would pass too much.
    let teddyOffset: Int?

    /// Empty needles are ignored. `wordBounded`: a needle that begins (ends) with an ASCII letter or
    /// digit matches only where the byte before (after) it is not one, so a numeric id is not found
    /// inside a longer number (a timestamp, a size) nor a hex-like one inside a hash. The edges of
    /// the haystack count as boundaries.
    public init(_ needles: [[UInt8]], wordBounded: Bool = false) {
        let ns = Array(Set(needles.filter { !$0.isEmpty })).sorted { $0.lexicographicallyPrecedes($1) }
        let m = ns.map(\.count).min() ?? 1
        let k = min(8, m)
        // Groups of needles sharing their first k bytes: consecutive in byte order.
        var groups: [(key: UInt64, first: Int, count: Int)] = []
        for (i, n) in ns.enumerated() {
            let key = Self.pack(n, 0, k)
            if let last = groups.last, last.key == key { groups[groups.count - 1].count += 1 } else { groups.append((key, i, 1)) }
        }
        var tableBits = 4
        while (1 << tableBits) < groups.count * 2 { tableBits += 1 }
        let slots = 1 << tableBits
        var wide = [UInt64](repeating: 0, count: 1024 + slots)
        var first = [UInt32](repeating: 0, count: slots), count = [UInt32](repeating: 0, count: slots)
        for g in groups {
            let h = g.key &* Self.hashMul
            let bit = Int(truncatingIfNeeded: h >> 48)
            wide[bit >> 6] |= 1 << UInt64(bit & 63)
            var slot = Int(truncatingIfNeeded: h >> UInt64(64 - tableBits)) & (slots - 1)
            while count[slot] != 0 { slot = (slot + 1) & (slots - 1) }
            wide[1024 + slot] = g.key
            first[slot] = UInt32(g.first)
            count[slot] = UInt32(g.count)
        }
        var bytes: [UInt8] = []
        var words: [UInt32] = []
        for n in ns {
            words.append(UInt32(bytes.count))
            bytes += n
        }
        words.append(UInt32(bytes.count))
        let flagsAt = bytes.count
        for n in ns { bytes.append((Self.isWordByte(n[0]) ? 1 : 0) | (Self.isWordByte(n[n.count - 1]) ? 2 : 0)) }
        // Longer grams where needles are long enough to keep a long stride (fewer false hits in text
        // that shares short runs with the needles, e-mail domains say).
        let q = m >= 12 ? 8 : m >= 6 ? 4 : 0
        let stride = q == 0 ? 1 : m - q + 1
        var bits = 15
        while bits < 24 && (1 << bits) < ns.count * stride * 32 { bits += 1 }
        let shift = UInt64(64 - bits)
        let gramsAt = bytes.count
        if q > 0 {
            var grams = [UInt8](repeating: 0, count: 1 << bits)
            for n in ns {
                for o in 0..<stride { grams[Self.gramSlot(Self.pack(n, o, q), shift)] = 1 }
            }
            bytes += grams
        }
        let teddyAt = bytes.count
        let teddy = Self.teddyMasks(ns, m)
        bytes += teddy?.masks ?? [UInt8](repeating: 0, count: 96)
        let firstAt = words.count
        words += first
        let countAt = words.count
        words += count
        self.needles = ns; self.k = k; self.wordBounded = wordBounded
        self.maxGroup = groups.map(\.count).max() ?? 0
        self.bytes = bytes; self.flagsAt = flagsAt; self.gramsAt = gramsAt; self.teddyAt = teddyAt
        self.words = words; self.firstAt = firstAt; self.countAt = countAt
        self.wide = wide; self.tableBits = tableBits
        self.q = q; self.stride = stride; self.gramShift = shift
        self.teddyOffset = teddy?.offset
    }

    static let hashMul: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Teddy's masks for the 3 bytes at the offset (below the shortest needle's length) where they
    /// pass the least, or nil when even there they would pass more than 1 position in 16. The
    /// distinct 3-byte fingerprints, in byte order, are dealt to 8 buckets in runs (needles sharing
    /// leading bytes share a bucket); what passes is estimated with byte frequencies taken from the
    /// needles (ids look like the data around them), smoothed toward uniform.
    static func teddyMasks(_ ns: [[UInt8]], _ m: Int) -> (offset: Int, masks: [UInt8])? {
        guard m >= 3, !ns.isEmpty else { return nil }
        var freq = [Double](repeating: 0, count: 256)
        var total = 0.0
        for n in ns { for b in n { freq[Int(b)] += 1 }; total += Double(n.count) }
        let prob = freq.map { 0.7 * $0 / total + 0.3 / 256 }
        var best: (offset: Int, masks: [UInt8], pass: Double)?
        for o in 0...min(m - 3, 16) {
            let prints = Set(ns.map { UInt32($0[o]) << 16 | UInt32($0[o + 1]) << 8 | UInt32($0[o + 2]) }).sorted()
            var masks = [UInt8](repeating: 0, count: 96)
            for (i, f) in prints.enumerated() {
                let bucket = UInt8(1) << UInt8(i * 8 / prints.count)
                for j in 0..<3 {
                    let b = Int((f >> UInt32(16 - 8 * j)) & 0xFF)
                    masks[32 * j + (b & 15)] |= bucket
                    masks[32 * j + 16 + (b >> 4)] |= bucket
                }
            }
            var pass = 0.0
            for bucket in 0..<8 {
                var p = 1.0
                for j in 0..<3 {
                    var a = 0.0
                    for v in 0..<256 where (masks[32 * j + (v & 15)] & masks[32 * j + 16 + (v >> 4)]) >> UInt8(bucket) & 1 != 0 { a += prob[v] }
                    p *= a
                }
                pass += p
            }
            if best == nil || pass < best!.pass { best = (o, masks, pass) }
        }
        guard let best, best.pass < 1.0 / 16 else { return nil }
        return (best.offset, best.masks)
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

    public var isEmpty: Bool { needles.isEmpty }

    @inline(__always) static func gramSlot(_ g: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (g &* hashMul) >> shift)
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

    /// How the first stage is chosen (tests and benchmarks compare them).
    public enum Stage: Int32, Sendable {
        /// The fastest the CPU has (Teddy where it can run and the needles suit it, switching to the
        /// sampled stage over dense stretches).
        case auto = 0
        /// The portable sampled stage only.
        case sampled = 1
        /// Teddy wherever the set has it, never switching.
        case teddy = 2
    }

    /// Whether this machine runs the Teddy stage (x86-64 with AVX2).
    public static var hasTeddy: Bool { lethe_needles_have_avx2() != 0 }

    /// Whether this set has a Teddy stage (its needles' fingerprints are selective enough).
    public var usesTeddy: Bool { teddyOffset != nil }

    /// Calls `body` with the start and the needle of every occurrence in `h` (overlapping ones too), in
    /// order of start, needles starting at the same byte in byte order; `body` returns false to stop.
    public func forEachOccurrence(in h: UnsafeBufferPointer<UInt8>, _ body: (Int, [UInt8]) -> Bool) {
        forEachOccurrence(in: h, stage: .auto, body)
    }

    /// `forEachOccurrence` with the first stage chosen.
    public func forEachOccurrence(in h: UnsafeBufferPointer<UInt8>, stage: Stage, _ body: (Int, [UInt8]) -> Bool) {
        guard !needles.isEmpty, h.count >= k, let base = h.baseAddress else { return }
        let cap = max(256, 2 * maxGroup)
        bytes.withUnsafeBufferPointer { b in
            words.withUnsafeBufferPointer { w in
                wide.withUnsafeBufferPointer { x in
                    let bb = b.baseAddress!, wb = w.baseAddress!, xb = x.baseAddress!
                    var set = lethe_needle_set(
                        needle_bytes: bb, needle_start: wb, needle_flags: bb + flagsAt, count: UInt32(needles.count),
                        k: UInt32(k), word_bounded: wordBounded ? 1 : 0, max_group: UInt32(maxGroup),
                        prefix_filter: xb, table_keys: xb + 1024, table_first: wb + firstAt, table_count: wb + countAt,
                        table_mask: UInt64((1 << tableBits) - 1), table_shift: UInt32(64 - tableBits),
                        q: UInt32(q), stride: UInt32(stride), gram_shift: UInt32(gramShift), grams: bb + gramsAt,
                        teddy: teddyOffset == nil ? 0 : 1, teddy_offset: UInt32(teddyOffset ?? 0), teddy_masks: bb + teddyAt)
                    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: cap) { starts in
                        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: cap) { which in
                            var from = 0
                            while from < h.count {
                                var next = 0
                                let c = lethe_needles_find(
                                    &set, base, h.count, from, stage.rawValue, starts.baseAddress!, which.baseAddress!, cap, &next)
                                for t in 0..<c where !body(Int(starts[t]), needles[Int(which[t])]) { return }
                                from = next
                            }
                        }
                    }
                }
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
