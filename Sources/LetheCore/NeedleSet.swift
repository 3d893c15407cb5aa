/// Finds which of many byte strings occur in a haystack, in one pass: a rolling
/// prefix of the shortest needle's length (at most 8 bytes) is checked against a
/// 64K-bit filter, then a dictionary, then the rest of each candidate is compared.
/// Used to search Lethe's state, Delta logs and commit files for raw ids.
public struct NeedleSet: Sendable {
    let k: Int
    let byPrefix: [UInt64: [[UInt8]]]
    let filter: [UInt64]
    let wordBounded: Bool

    /// Empty needles are ignored. `wordBounded`: a needle that begins (ends) with an ASCII letter or
    /// digit matches only where the byte before (after) it is not one, so a numeric id is not found
    /// inside a longer number (a timestamp, a size) nor a hex-like one inside a hash. The edges of
    /// the haystack count as boundaries.
    public init(_ needles: [[UInt8]], wordBounded: Bool = false) {
        let ns = needles.filter { !$0.isEmpty }
        let k = min(8, ns.map(\.count).min() ?? 1)
        var byPrefix: [UInt64: [[UInt8]]] = [:]
        for n in Set(ns) {
            var p: UInt64 = 0
            for i in 0..<k { p = p << 8 | UInt64(n[i]) }
            byPrefix[p, default: []].append(n)
        }
        var filter = [UInt64](repeating: 0, count: 1024)
        for p in byPrefix.keys { let s = Self.slot(p); filter[s >> 6] |= 1 << UInt64(s & 63) }
        self.k = k; self.byPrefix = byPrefix; self.filter = filter; self.wordBounded = wordBounded
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

    /// The needles that occur in `hay`.
    public func matches(in hay: [UInt8]) -> Set<[UInt8]> {
        var found = Set<[UInt8]>()
        scan(hay) {
            found.insert($0); return true
        }
        return found
    }

    /// True when any needle occurs in `hay` (stops at the first).
    public func containsAny(_ hay: [UInt8]) -> Bool {
        var any = false
        scan(hay) { _ in
            any = true; return false
        }
        return any
    }

    /// Calls `hit` for each needle found (once per needle); `hit` returns false to stop.
    func scan(_ hay: [UInt8], _ hit: ([UInt8]) -> Bool) {
        guard !byPrefix.isEmpty, hay.count >= k else { return }
        var seen = Set<[UInt8]>()
        let k = self.k
        let mask: UInt64 = k == 8 ? .max : (1 << (8 * UInt64(k))) - 1
        hay.withUnsafeBufferPointer { h in
            var p: UInt64 = 0
            for i in 0..<h.count {
                p = (p << 8 | UInt64(h[i])) & mask
                guard i >= k - 1 else { continue }
                let sl = Self.slot(p)
                guard filter[sl >> 6] & (1 << UInt64(sl & 63)) != 0, let cands = byPrefix[p] else { continue }
                let start = i - (k - 1)
                for n in cands where start + n.count <= h.count && !seen.contains(n) {
                    var j = k
                    while j < n.count && h[start + j] == n[j] { j += 1 }
                    if j == n.count {
                        if wordBounded && !Self.isBounded(n, at: start, in: h) { continue }
                        seen.insert(n)
                        if !hit(n) { return }
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
