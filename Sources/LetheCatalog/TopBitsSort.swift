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
        var scratch = TopBitsScratch<Element>()
        sortByKeyTopBits(maxBits: maxBits, scratch: &scratch)
    }

    /// `sortByKeyTopBits(maxBits:)` with its buffers (the bucket tables, the copy the elements are
    /// scattered into) taken from `scratch` and left there for the next call: a caller that sorts large
    /// arrays again and again (a backfill's batches) reuses pages instead of having fresh ones faulted
    /// in and zeroed each time. Afterwards `scratch` holds this array's former storage.
    @inlinable
    public mutating func sortByKeyTopBits(maxBits: Int, scratch: inout TopBitsScratch<Element>) {
        let n = count
        guard n > 1 else { return }
        precondition(n < Int(Int32.max))
        var bits = 1
        while bits < maxBits && (1 << bits) < n { bits += 1 }
        let shift = UInt64(64 - bits)
        let buckets = 1 << bits
        @inline(__always) func bucket(_ k: Int64) -> Int { Int(truncatingIfNeeded: (UInt64(bitPattern: k) ^ (1 << 63)) >> shift) }
        scratch.starts.removeAll(keepingCapacity: true)
        scratch.starts.append(contentsOf: repeatElement(0, count: buckets + 1))
        scratch.next.removeAll(keepingCapacity: true)
        scratch.next.append(contentsOf: repeatElement(0, count: buckets))
        // The copy to scatter into: n valid elements (these), each overwritten by the scatter.
        scratch.out.removeAll(keepingCapacity: true)
        scratch.out.append(contentsOf: self)
        self.withUnsafeBufferPointer { src in
            scratch.out.withUnsafeMutableBufferPointer { dst in
                scratch.starts.withUnsafeMutableBufferPointer { c in
                    for e in src { c[bucket(e.radixKey) + 1] &+= 1 }
                    for b in 0..<buckets { c[b + 1] &+= c[b] }
                    scratch.next.withUnsafeMutableBufferPointer { nx in
                        for b in 0..<buckets { nx[b] = c[b] }
                        for e in src {
                            let b = bucket(e.radixKey)
                            dst[Int(nx[b])] = e
                            nx[b] &+= 1
                        }
                    }
                }
            }
        }
        swap(&self, &scratch.out)
        scratch.starts.withUnsafeBufferPointer { c in
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

/// The buffers `sortByKeyTopBits(maxBits:scratch:)` reuses from one call to the next.
public struct TopBitsScratch<Element> {
    @usableFromInline var out: [Element] = []
    @usableFromInline var starts: [Int32] = []
    @usableFromInline var next: [Int32] = []
    public init() {}
    /// Bytes held (capacities), for a keeper that bounds what it keeps.
    public var bytes: Int { out.capacity * MemoryLayout<Element>.stride + (starts.capacity + next.capacity) * 4 }
}

extension TopBitsScratch: Sendable where Element: Sendable {}
