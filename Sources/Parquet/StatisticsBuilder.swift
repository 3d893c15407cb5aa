/// Computing min/max/null-count statistics (column chunk, page, page index).

/// Min/max over values in a column's sort order; bytes are the PLAIN encoding
/// of the value (raw bytes for byte arrays).
struct MinMax {
    var min: [UInt8]?
    var max: [UInt8]?

    /// Min and max of `values[range]` (ignores NaN; zero min is -0.0, zero max +0.0).
    static func compute(_ values: ColumnValues, _ r: Range<Int>, order: SortOrder) -> MinMax {
        guard !r.isEmpty, order != .undefined else { return MinMax() }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        switch values {
        case .boolean(let a):
            var lo = true, hi = false
            for i in r { lo = lo && a[i]; hi = hi || a[i] }
            return MinMax(min: [lo ? 1 : 0], max: [hi ? 1 : 0])
        case .int32(let a):
            if order == .unsigned {
                var lo = UInt32.max, hi = UInt32.min
                for i in r { let v = UInt32(bitPattern: a[i]); lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
                return MinMax(min: le(lo), max: le(hi))
            }
            var lo = Int32.max, hi = Int32.min
            for i in r { lo = Swift.min(lo, a[i]); hi = Swift.max(hi, a[i]) }
            return MinMax(min: le(lo), max: le(hi))
        case .int64(let a):
            if order == .unsigned {
                var lo = UInt64.max, hi = UInt64.min
                for i in r { let v = UInt64(bitPattern: a[i]); lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
                return MinMax(min: le(lo), max: le(hi))
            }
            var lo = Int64.max, hi = Int64.min
            for i in r { lo = Swift.min(lo, a[i]); hi = Swift.max(hi, a[i]) }
            return MinMax(min: le(lo), max: le(hi))
        case .float(let a):
            var lo = Float.infinity, hi = -Float.infinity, any = false
            for i in r where !a[i].isNaN { any = true; lo = Swift.min(lo, a[i]); hi = Swift.max(hi, a[i]) }
            guard any else { return MinMax() }
            if lo == 0 { lo = -0.0 }
            if hi == 0 { hi = 0.0 }
            return MinMax(min: le(lo.bitPattern), max: le(hi.bitPattern))
        case .double(let a):
            var lo = Double.infinity, hi = -Double.infinity, any = false
            for i in r where !a[i].isNaN { any = true; lo = Swift.min(lo, a[i]); hi = Swift.max(hi, a[i]) }
            guard any else { return MinMax() }
            if lo == 0 { lo = -0.0 }
            if hi == 0 { hi = 0.0 }
            return MinMax(min: le(lo.bitPattern), max: le(hi.bitPattern))
        case .int96:
            return MinMax()
        case .byteArray(let b), .fixedLenByteArray(let b):
            return b.bytes.withUnsafeBufferPointer { p -> MinMax in
                var lo = r.lowerBound, hi = r.lowerBound
                let less: (Int, Int) -> Bool
                switch order {
                case .signed:
                    less = { x, y in signedBigEndianLess(p, b.offsets[x], b.offsets[x + 1], b.offsets[y], b.offsets[y + 1]) }
                case .float16:
                    less = { x, y in float16(p, b.offsets[x]) < float16(p, b.offsets[y]) }
                default:
                    less = { x, y in unsignedLess(p, b.offsets[x], b.offsets[x + 1], b.offsets[y], b.offsets[y + 1]) }
                }
                var start = r.lowerBound
                if order == .float16 {
                    // Skip NaNs and values of the wrong size.
                    guard let first = r.first(where: { b.offsets[$0 + 1] - b.offsets[$0] == 2 && !float16(p, b.offsets[$0]).isNaN }) else { return MinMax() }
                    start = first; lo = first; hi = first
                }
                for i in start..<r.upperBound {
                    if order == .float16 && (b.offsets[i + 1] - b.offsets[i] != 2 || float16(p, b.offsets[i]).isNaN) { continue }
                    if less(i, lo) { lo = i }
                    if less(hi, i) { hi = i }
                }
                var mn = Array(b[lo]), mx = Array(b[hi])
                if order == .float16 {
                    if float16(p, b.offsets[lo]) == 0 { mn = [0x00, 0x80] }
                    if float16(p, b.offsets[hi]) == 0 { mx = [0x00, 0x00] }
                }
                return MinMax(min: mn, max: mx)
            }
        }
    }
}

@inline(__always)
func unsignedLess(_ p: UnsafeBufferPointer<UInt8>, _ a0: Int, _ a1: Int, _ b0: Int, _ b1: Int) -> Bool {
    let n = min(a1 - a0, b1 - b0)
    var i = 0
    while i < n {
        let x = p[a0 + i], y = p[b0 + i]
        if x != y { return x < y }
        i += 1
    }
    return a1 - a0 < b1 - b0
}

/// Compares big-endian two's-complement integers of possibly different lengths (DECIMAL).
func signedBigEndianLess(_ p: UnsafeBufferPointer<UInt8>, _ a0: Int, _ a1: Int, _ b0: Int, _ b1: Int) -> Bool {
    let la = a1 - a0, lb = b1 - b0
    let negA = la > 0 && p[a0] & 0x80 != 0
    let negB = lb > 0 && p[b0] & 0x80 != 0
    if negA != negB { return negA }
    let n = max(la, lb)
    let padA: UInt8 = negA ? 0xff : 0, padB: UInt8 = negB ? 0xff : 0
    for i in 0..<n {
        let x = i < n - la ? padA : p[a0 + i - (n - la)]
        let y = i < n - lb ? padB : p[b0 + i - (n - lb)]
        if x != y { return x < y }
    }
    return false
}

func float16(_ p: UnsafeBufferPointer<UInt8>, _ at: Int) -> Float {
    let bits = UInt16(p[at]) | UInt16(p[at + 1]) << 8
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exp = Int((bits >> 10) & 0x1f)
    let frac = Float(bits & 0x3ff)
    if exp == 0 { return sign * frac * Float(sign: .plus, exponent: -24, significand: 1) }
    if exp == 31 { return frac == 0 ? sign * .infinity : .nan }
    return sign * (1 + frac / 1024) * Float(sign: .plus, exponent: exp - 15, significand: 1)
}
