import LetheCore

/// The compact byte encodings of the subject index.
///
/// Both encodings are sequences of unsigned LEB128 varints (7 bits a byte, low
/// group first, high bit set on every byte but the last) over a strictly
/// ascending list: the first value as is, every later one as its distance to the
/// previous value minus one (so consecutive values cost one zero byte).
public enum PostingCodec {
    // MARK: Row ordinals

    /// Encodes ascending, distinct, non-negative row ordinals.
    /// - Precondition: `rows` is strictly ascending and its first value is ≥ 0
    ///   (see `normalizedRows(_:)`).
    public static func encodeRows(_ rows: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rows.count + 2)
        var previous: Int64 = -1
        for r in rows {
            precondition(r > previous, "row ordinals must be non-negative and strictly ascending")
            appendVarint(UInt64(r - previous - 1), to: &out)
            previous = r
        }
        return out
    }

    /// Decodes what `encodeRows` wrote; throws `.corrupt` on truncated or overflowing input.
    public static func decodeRows<C: Collection<UInt8>>(_ bytes: C) throws -> [Int64] {
        var rows: [Int64] = []
        rows.reserveCapacity(bytes.count)
        var previous: Int64 = -1
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let gap = try readVarint(bytes, &i)
            // previous ≥ -1, so the bound cannot overflow; next ≤ Int64.max.
            guard previous < Int64.max, gap <= UInt64(Int64.max - (previous + 1)) else {
                throw LetheError(.corrupt, "posting rows overflow")
            }
            let next = previous + Int64(gap) + 1
            rows.append(next)
            previous = next
        }
        return rows
    }

    /// Sorts and de-duplicates row ordinals; nil if one is negative.
    public static func normalizedRows(_ rows: [Int64]) -> [Int64]? {
        var strictlyAscending = true
        var previous: Int64 = -1
        for r in rows {
            if r < 0 { return nil }
            if r <= previous { strictlyAscending = false }
            previous = r
        }
        if strictlyAscending { return rows }
        var out: [Int64] = []
        out.reserveCapacity(rows.count)
        for r in rows.sorted() where out.last != r { out.append(r) }
        return out
    }

    // MARK: Key buckets

    /// How many high bits of a key prefix an object's bucket list keeps.
    ///
    /// The bucket list lets the store delete an object's postings by primary key
    /// range (`k` within the bucket, `object` equal) without a second index on
    /// `object`. Fewer bits make the list smaller and each range wider.
    public static let defaultBucketBits: UInt8 = 24

    /// The buckets (`bits` high bits, unsigned) of a set of key prefixes, encoded:
    /// one byte `bits`, then the distinct buckets ascending as delta varints.
    public static func encodeBuckets<S: Sequence<Int64>>(_ prefixes: S, bits: UInt8 = defaultBucketBits) -> [UInt8] {
        precondition(bits >= 1 && bits <= 64, "bucket bits in 1...64")
        let shift = UInt64(64 - bits)
        var buckets = prefixes.map { shift == 64 ? 0 : UInt64(bitPattern: $0) >> shift }
        buckets.sort()
        var out: [UInt8] = [bits]
        out.reserveCapacity(buckets.count * 3 + 1)
        var previous: UInt64? = nil
        for b in buckets {
            if let p = previous {
                if b == p { continue }
                appendVarint(b - p - 1, to: &out)
            } else {
                appendVarint(b, to: &out)
            }
            previous = b
        }
        return out
    }

    /// The inclusive signed key ranges of the buckets `encodeBuckets` wrote.
    public static func decodeBuckets<C: Collection<UInt8>>(_ bytes: C) throws -> [ClosedRange<Int64>] {
        guard let bits = bytes.first, bits >= 1, bits <= 64 else {
            throw LetheError(.corrupt, "object key buckets: bad header")
        }
        let shift = UInt64(64 - bits)
        let span: UInt64 = shift == 64 ? UInt64.max : (UInt64(1) << shift) - 1
        let limit: UInt64 = bits == 64 ? UInt64.max : (UInt64(1) << UInt64(bits)) - 1
        var ranges: [ClosedRange<Int64>] = []
        var i = bytes.index(after: bytes.startIndex)
        var previous: UInt64? = nil
        while i != bytes.endIndex {
            let v = try readVarint(bytes, &i)
            let bucket: UInt64
            if let p = previous {
                let (a, o1) = p.addingReportingOverflow(v)
                let (b, o2) = a.addingReportingOverflow(1)
                guard !o1, !o2 else { throw LetheError(.corrupt, "object key buckets overflow") }
                bucket = b
            } else {
                bucket = v
            }
            guard bucket <= limit else { throw LetheError(.corrupt, "object key buckets overflow") }
            previous = bucket
            let low = shift == 64 ? 0 : bucket << shift
            // An aligned block of 2^shift values (shift < 64) never straddles the
            // sign boundary, so it stays one range in the signed order too.
            if shift == 64 {
                ranges.append(Int64.min...Int64.max)
            } else {
                ranges.append(Int64(bitPattern: low)...Int64(bitPattern: low | span))
            }
        }
        return ranges
    }

    // MARK: Varints

    /// `appendVarint` into room the caller made: the varint written at `b[i...]` (at most 10 bytes),
    /// `i` moved past it.
    @inline(__always)
    static func putVarint(_ value: UInt64, _ b: UnsafeMutableRawBufferPointer, _ i: inout Int) {
        var v = value
        while v >= 0x80 {
            b[i] = UInt8(truncatingIfNeeded: v) | 0x80
            i += 1
            v >>= 7
        }
        b[i] = UInt8(v)
        i += 1
    }

    @inline(__always)
    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inline(__always)
    static func readVarint<C: Collection<UInt8>>(_ bytes: C, _ i: inout C.Index) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i != bytes.endIndex else { throw LetheError(.corrupt, "truncated varint") }
            let b = bytes[i]
            bytes.formIndex(after: &i)
            if shift == 63 && b > 1 { throw LetheError(.corrupt, "varint overflows 64 bits") }
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { throw LetheError(.corrupt, "varint overflows 64 bits") }
        }
    }
}
