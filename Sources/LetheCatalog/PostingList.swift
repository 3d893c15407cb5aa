/// One object's postings as flat (subject key prefix, row ordinal) pairs, appended in the order a
/// scan finds them: no dictionary of arrays, no allocation per subject (issue 16, the index write
/// path). `sort()` orders them by key then row and removes duplicates; a back end then encodes
/// each key's rows in one pass over the sorted pairs.
public struct PostingList: Sendable, Equatable {
    public struct Pair: Sendable, Equatable, TopBitsKeyed {
        public var key: Int64
        public var radixKey: Int64 { key }
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

    /// Sorts by (key, row) (`sortByKeyTopBits`: a pass on the keys' top bits, then each bucket).
    static func radixSort(_ pairs: inout [Pair]) {
        pairs.sortByKeyTopBits(maxBits: 16)
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
