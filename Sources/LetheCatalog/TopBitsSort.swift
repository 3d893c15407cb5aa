/// Elements sorted by `sortByKeyTopBits`: ordered by `<`, whose first criterion is `radixKey`.
public protocol TopBitsKeyed: Comparable {
    /// The element's leading sort key (a keyed-hash prefix: spread evenly over its range).
    var radixKey: Int64 { get }
}

extension Array where Element: TopBitsKeyed {
    /// Sorts by `<`: one pass scatters the elements into buckets by their key's top bits (at most
    /// `maxBits` of them; for keyed-hash prefixes about one element a bucket), then each bucket is
    /// sorted in place (insertion sort; a comparison sort for a bucket that holds many, as a hot key's
    /// elements do). Any keys give the right order; uneven ones only cost more in the buckets' sorts.
    /// Costs a few predictable steps an element where a heap or comparison sort of random keys
    /// mispredicts at each level.
    @inlinable
    public mutating func sortByKeyTopBits(maxBits: Int) {
        let n = count
        guard n > 1 else { return }
        precondition(n < Int(Int32.max))
        var bits = 1
        while bits < maxBits && (1 << bits) < n { bits += 1 }
        let shift = UInt64(64 - bits)
        let buckets = 1 << bits
        @inline(__always) func bucket(_ k: Int64) -> Int { Int(truncatingIfNeeded: (UInt64(bitPattern: k) ^ (1 << 63)) >> shift) }
        var starts = [Int32](repeating: 0, count: buckets + 1)
        var next = [Int32](repeating: 0, count: buckets)
        let out = self.withUnsafeBufferPointer { src in
            [Element](unsafeUninitializedCapacity: n) { dst, initialized in
                starts.withUnsafeMutableBufferPointer { c in
                    for e in src { c[bucket(e.radixKey) + 1] &+= 1 }
                    for b in 0..<buckets { c[b + 1] &+= c[b] }
                    next.withUnsafeMutableBufferPointer { nx in
                        for b in 0..<buckets { nx[b] = c[b] }
                        for e in src {
                            let b = bucket(e.radixKey)
                            (dst.baseAddress! + Int(nx[b])).initialize(to: e)
                            nx[b] &+= 1
                        }
                    }
                }
                initialized = n
            }
        }
        self = out
        starts.withUnsafeBufferPointer { c in
            self.withUnsafeMutableBufferPointer { d in
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
    }
}
