/// One object's postings as flat (subject key prefix, row ordinal) pairs, appended in the order a
/// scan finds them: no dictionary of arrays, no allocation per subject (issue 16, the index write
/// path). `sort()` orders them by key then row and removes duplicates; a back end then encodes
/// each key's rows in one pass over the sorted pairs.
public struct PostingList: Sendable, Equatable {
    public struct Pair: Sendable, Equatable, Comparable {
        public var key: Int64
        public var row: Int64
        public init(key: Int64, row: Int64) { self.key = key; self.row = row }
        @inline(__always)
        public static func < (a: Pair, b: Pair) -> Bool { a.key < b.key || (a.key == b.key && a.row < b.row) }
    }

    public private(set) var pairs: [Pair] = []
    /// Whether `pairs` is known to be ascending by (key, row) without duplicates.
    public private(set) var isSorted = true

    public init() {}

    /// The pairs of a dictionary (key → rows, any order).
    public init(_ postings: [Int64: [Int64]]) {
        pairs.reserveCapacity(postings.count)
        for (k, rows) in postings {
            for r in rows { pairs.append(Pair(key: k, row: r)) }
        }
        isSorted = pairs.count <= 1
    }

    public var count: Int { pairs.count }
    public var isEmpty: Bool { pairs.isEmpty }

    @inline(__always)
    public mutating func append(_ key: Int64, row: Int64) {
        if isSorted, let last = pairs.last, !(last < Pair(key: key, row: row)) { isSorted = false }
        pairs.append(Pair(key: key, row: row))
    }

    public mutating func reserveCapacity(_ n: Int) { pairs.reserveCapacity(n) }

    /// Orders the pairs by (key, row) and removes duplicates (a no-op when already so).
    public mutating func sort() {
        guard !isSorted else { return }
        if pairs.count >= 64 && pairs.count < Int(Int32.max) { Self.radixSort(&pairs) } else { pairs.sort() }
        var w = 0
        for i in pairs.indices where w == 0 || pairs[w - 1] != pairs[i] {
            pairs[w] = pairs[i]
            w += 1
        }
        pairs.removeSubrange(w...)
        isSorted = true
    }

    /// Sorts by (key, row): one pass scatters the pairs into buckets by their key's top bits (keys are
    /// keyed-hash prefixes, spread evenly: about one pair a bucket), then each bucket is sorted in
    /// place (insertion sort; a comparison sort for a bucket that holds many, as a hot key's rows do).
    /// Any keys give the right order; uneven ones only cost more in the buckets' sorts.
    static func radixSort(_ pairs: inout [Pair]) {
        let n = pairs.count
        var bits = 1
        while bits < 16 && (1 << bits) < n { bits += 1 }
        let shift = UInt64(64 - bits)
        let buckets = 1 << bits
        @inline(__always) func bucket(_ k: Int64) -> Int { Int(truncatingIfNeeded: (UInt64(bitPattern: k) ^ (1 << 63)) >> shift) }
        var starts = [Int32](repeating: 0, count: buckets + 1)
        var out = [Pair](repeating: Pair(key: 0, row: 0), count: n)
        var next = [Int32](repeating: 0, count: buckets)
        pairs.withUnsafeBufferPointer { src in
            starts.withUnsafeMutableBufferPointer { c in
                for p in src { c[bucket(p.key) + 1] &+= 1 }
                for b in 0..<buckets { c[b + 1] &+= c[b] }
                next.withUnsafeMutableBufferPointer { nx in
                    for b in 0..<buckets { nx[b] = c[b] }
                    out.withUnsafeMutableBufferPointer { dst in
                        for p in src {
                            let b = bucket(p.key)
                            dst[Int(nx[b])] = p
                            nx[b] &+= 1
                        }
                    }
                }
            }
        }
        starts.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { d in
                for b in 0..<buckets {
                    let lo = Int(c[b]), hi = Int(c[b + 1])
                    if hi - lo < 2 { continue }
                    if hi - lo > 32 {
                        var part = UnsafeMutableBufferPointer(rebasing: d[lo..<hi])
                        part.sort()
                        continue
                    }
                    var i = lo + 1
                    while i < hi {
                        let x = d[i]
                        var j = i
                        while j > lo && x < d[j - 1] {
                            d[j] = d[j - 1]
                            j -= 1
                        }
                        d[j] = x
                        i += 1
                    }
                }
            }
        }
        pairs = out
    }

    /// How many distinct keys (after `sort()`; an estimate before).
    public var distinctKeys: Int {
        guard isSorted else { return Set(pairs.lazy.map(\.key)).count }
        var n = 0
        var previous: Int64? = nil
        for p in pairs where p.key != previous {
            n += 1
            previous = p.key
        }
        return n
    }

    /// Key → ascending rows (back ends without a flat write path).
    public var dictionary: [Int64: [Int64]] {
        var sorted = self
        sorted.sort()
        var out: [Int64: [Int64]] = [:]
        var i = 0
        let p = sorted.pairs
        while i < p.count {
            var j = i
            var rows: [Int64] = []
            while j < p.count && p[j].key == p[i].key {
                rows.append(p[j].row)
                j += 1
            }
            out[p[i].key] = rows
            i = j
        }
        return out
    }
}
