/// The canonical text of a column's values: the value as people write it, whatever
/// the physical encoding (a DATE is `2021-01-03`, not the day count `18630`; a
/// DECIMAL(5, 2) is `111.11`, not its unscaled `11111`). `scanColumn` hands these
/// bytes to its caller; see docs/parquet.md ("Canonical text") for the table.
///
/// Rendering works into a scratch buffer the scan owns (no allocation per value,
/// except FLOAT/DOUBLE/FLOAT16, whose shortest round-trip text comes from Swift's
/// `description`: small strings that Swift keeps inline).
public enum CanonicalText {
    /// How one column's values are rendered.
    public enum Form: Sendable, Equatable {
        /// BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY strings and binaries: the stored bytes.
        case raw
        /// INT32 / INT64 integers (signed).
        case signed
        /// INT32 / INT64 unsigned integers (INT(bw, false), UINT_8…UINT_64).
        case unsigned
        case boolean
        case float
        case double
        /// FIXED_LEN_BYTE_ARRAY(2) with the FLOAT16 annotation.
        case float16
        /// DECIMAL on INT32, INT64, FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY: `s` fractional digits.
        case decimal(scale: Int)
        /// DATE (INT32 days since 1970-01-01): `YYYY-MM-DD`.
        case date
        /// TIME: `HH:MM:SS[.fraction]`; `digits` is 3, 6 or 9 (the unit).
        case time(digits: Int)
        /// TIMESTAMP on INT64: `YYYY-MM-DDTHH:MM:SS[.fraction]` plus `Z` when adjusted to UTC.
        case timestamp(digits: Int, utc: Bool)
        /// INT96 (legacy timestamps: Julian day + nanoseconds): as a UTC timestamp in nanoseconds.
        case int96
        /// INT96 in a table whose schema types the column as a microsecond timestamp (a Delta
        /// `timestamp`, as Spark writes it with `legacyINT96`): UTC, nanoseconds cut to microseconds
        /// (floor, as Spark reads them).
        case int96Micros
        /// FIXED_LEN_BYTE_ARRAY(16) with the UUID annotation: lowercase 8-4-4-4-12 hex.
        case uuid
    }

    /// The form of a leaf column, from its physical, logical and converted types.
    public static func form(of c: ColumnDescriptor) -> Form {
        let logical = c.logicalType
        let converted = c.convertedType
        let decimalScale: Int? = {
            if case .decimal(let s, _)? = logical { return Int(s) }
            if logical == nil, converted == .decimal { return Int(c.element.scale ?? 0) }
            return nil
        }()
        func digits(_ u: LogicalType.TimeUnit) -> Int { u == .millis ? 3 : (u == .micros ? 6 : 9) }
        switch c.physicalType {
        case .boolean: return .boolean
        case .float: return .float
        case .double: return .double
        case .int96: return .int96
        case .int32, .int64:
            if let s = decimalScale { return .decimal(scale: s) }
            switch logical {
            case .date?: return .date
            case .time(_, let u)?: return .time(digits: digits(u))
            case .timestamp(let utc, let u)? where c.physicalType == .int64: return .timestamp(digits: digits(u), utc: utc)
            case .integer(_, let signed)?: return signed ? .signed : .unsigned
            case nil:
                switch converted {
                case .date?: return .date
                case .timeMillis? where c.physicalType == .int32: return .time(digits: 3)
                case .timeMicros? where c.physicalType == .int64: return .time(digits: 6)
                case .timestampMillis? where c.physicalType == .int64: return .timestamp(digits: 3, utc: true)
                case .timestampMicros? where c.physicalType == .int64: return .timestamp(digits: 6, utc: true)
                case .uint8?, .uint16?, .uint32?, .uint64?: return .unsigned
                default: return .signed
                }
            default: return .signed
            }
        case .byteArray:
            if let s = decimalScale { return .decimal(scale: s) }
            return .raw
        case .fixedLenByteArray:
            if let s = decimalScale { return .decimal(scale: s) }
            if case .uuid? = logical, c.typeLength == 16 { return .uuid }
            if case .float16? = logical, c.typeLength == 2 { return .float16 }
            return .raw
        }
    }
}

/// A growable byte buffer the renderers write into; one per scan.
final class Scratch {
    private(set) var pointer: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int

    init(capacity: Int = 128) {
        self.capacity = capacity
        pointer = .allocate(capacity: capacity)
    }
    deinit { pointer.deallocate() }

    /// At least `n` bytes (contents not kept).
    @inline(__always)
    func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if n > capacity {
            pointer.deallocate()
            capacity = max(n, capacity * 2)
            pointer = .allocate(capacity: capacity)
        }
        return pointer
    }
}

/// Renders values of one column in its canonical form.
struct ValueRenderer {
    let form: CanonicalText.Form
    let scratch = Scratch()
    /// A second buffer for big-number arithmetic (decimal magnitudes).
    let work = Scratch()

    init(_ c: ColumnDescriptor, form: CanonicalText.Form? = nil) { self.form = form ?? CanonicalText.form(of: c) }

    /// True when integer values render as plain decimal integers (the scan's fastest path).
    var isPlainInteger: Bool { form == .signed || form == .unsigned }
    /// True when byte-array values are their own canonical bytes.
    var isRaw: Bool { form == .raw }

    /// An INT32 (`wide` false) or INT64 value.
    @inline(__always)
    func int(_ v: Int64, wide: Bool) -> UnsafeRawBufferPointer {
        let p = scratch.reserve(64)
        switch form {
        case .unsigned:
            let u = wide ? UInt64(bitPattern: v) : UInt64(UInt32(truncatingIfNeeded: v))
            return writeDecimal(u, negative: false, into: p)
        case .decimal(let s):
            return decimal(magnitude: v.magnitude, negative: v < 0, scale: s)
        case .date:
            let n = writeDate(days: v, into: p, at: 0)
            return UnsafeRawBufferPointer(start: p, count: n)
        case .time(let digits):
            return time(v, digits: digits, into: p)
        case .timestamp(let digits, let utc):
            let perSecond = digits == 3 ? Int64(1000) : (digits == 6 ? 1_000_000 : 1_000_000_000)
            let perDay = perSecond * 86_400
            let (q, r) = v.quotientAndRemainder(dividingBy: perDay)
            let days = r < 0 ? q - 1 : q
            let within = r < 0 ? r + perDay : r
            return timestamp(days: days, within: within, perSecond: perSecond, digits: digits, utc: utc, into: p)
        default:
            return writeDecimal(v.magnitude, negative: v < 0, into: p)
        }
    }

    /// A BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value.
    func bytes(_ b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        switch form {
        case .decimal(let s): return decimal(bigEndian: b, scale: s)
        case .uuid where b.count == 16:
            let p = scratch.reserve(36)
            let hex: StaticString = "0123456789abcdef"
            let h = hex.utf8Start
            var o = 0
            for i in 0..<16 {
                if i == 4 || i == 6 || i == 8 || i == 10 { p[o] = UInt8(ascii: "-"); o += 1 }
                p[o] = h[Int(b[i] >> 4)]
                p[o + 1] = h[Int(b[i] & 15)]
                o += 2
            }
            return UnsafeRawBufferPointer(start: p, count: 36)
        case .float16 where b.count == 2:
            return text(Self.float16Text(UInt16(b[0]) | UInt16(b[1]) << 8))
        default:
            return b
        }
    }

    /// An INT96 value (bytes 0–7: nanoseconds of the day, 8–11: Julian day), as a UTC timestamp.
    func int96(_ v: Int96) -> UnsafeRawBufferPointer {
        let perDay: Int64 = 86_400_000_000_000
        let nanos = v.nanosOfDay
        let (q, r) = nanos.quotientAndRemainder(dividingBy: perDay)
        let days = Int64(v.julianDay) - 2_440_588 + (r < 0 ? q - 1 : q)
        var within = r < 0 ? r + perDay : r
        if form == .int96Micros { within -= within % 1000 }
        return timestamp(days: days, within: within, perSecond: 1_000_000_000, digits: 9, utc: true, into: scratch.reserve(64))
    }

    func float(_ f: Float) -> UnsafeRawBufferPointer { text(f.description) }
    func double(_ d: Double) -> UnsafeRawBufferPointer { text(d.description) }

    /// Copies a string's UTF-8 into the scratch buffer.
    private func text(_ s: String) -> UnsafeRawBufferPointer {
        var s = s
        return s.withUTF8 { u in
            let p = scratch.reserve(u.count)
            if let b = u.baseAddress { p.update(from: b, count: u.count) }
            return UnsafeRawBufferPointer(start: p, count: u.count)
        }
    }

    static func float16Text(_ bits: UInt16) -> String {
        #if arch(x86_64) && os(macOS)
            return Float(float16Bits: bits).description
        #else
            return Float16(bitPattern: bits).description
        #endif
    }

    // MARK: decimals

    /// An integer magnitude with `scale` fractional digits.
    func decimal(magnitude: UInt64, negative: Bool, scale: Int) -> UnsafeRawBufferPointer {
        var tmp = (UInt64(0), UInt64(0), UInt64(0))  // 24 bytes of digits
        return withUnsafeMutableBytes(of: &tmp) { t in
            let d = writeDecimal(magnitude, negative: false, into: t.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return placePoint(digits: d, negative: negative && magnitude != 0, scale: scale)
        }
    }

    /// A big-endian two's complement integer (any length) with `scale` fractional digits.
    func decimal(bigEndian b: UnsafeRawBufferPointer, scale: Int) -> UnsafeRawBufferPointer {
        guard !b.isEmpty else { return placePoint(digits: UnsafeRawBufferPointer(start: zeroDigit.utf8Start, count: 1), negative: false, scale: scale) }
        let negative = b[0] & 0x80 != 0
        // Up to 8 significant bytes (after dropping sign-extension bytes): one Int64.
        var first = 0
        let fill: UInt8 = negative ? 0xFF : 0
        while first < b.count - 1 && b[first] == fill && (b[first + 1] & 0x80 != 0) == negative { first += 1 }
        if b.count - first <= 8 {
            var v: UInt64 = negative ? ~0 : 0
            for i in first..<b.count { v = v << 8 | UInt64(b[i]) }
            let signed = Int64(bitPattern: v)
            return decimal(magnitude: signed.magnitude, negative: signed < 0, scale: scale)
        }
        // Longer: magnitude in 32-bit limbs (most significant first), divided by 10^9 repeatedly.
        let n = b.count
        let limbs = (n + 3) / 4
        let w = work.reserve(limbs * 4).withMemoryRebound(to: UInt32.self, capacity: limbs) { $0 }
        for i in 0..<limbs { w[i] = 0 }
        for i in 0..<n {
            let byte = negative ? ~b[i] : b[i]
            let pos = n - 1 - i  // byte position from the least significant end
            let limb = limbs - 1 - pos / 4
            w[limb] |= UInt32(byte) << (8 * UInt32(pos % 4))
        }
        if negative {  // two's complement: magnitude = ~x + 1
            var k = limbs - 1
            while k >= 0 {
                let (s, o) = w[k].addingReportingOverflow(1)
                w[k] = s
                if !o { break }
                k -= 1
            }
        }
        // Digits, least significant group first, into a temporary area at the end of the scratch buffer.
        let maxDigits = n * 3 + 9
        let out = scratch.reserve(maxDigits + max(scale, 0) + 4)
        var end = maxDigits
        var start = 0
        while start < limbs && w[start] == 0 { start += 1 }
        var pos = end
        while start < limbs {
            var rem: UInt64 = 0
            for k in start..<limbs {
                let cur = rem << 32 | UInt64(w[k])
                w[k] = UInt32(cur / 1_000_000_000)
                rem = cur % 1_000_000_000
            }
            while start < limbs && w[start] == 0 { start += 1 }
            // Nine digits of this group (fewer for the most significant one).
            var r = rem
            let last = start >= limbs
            var written = 0
            repeat {
                pos -= 1
                out[pos] = UInt8(48 + r % 10)
                r /= 10
                written += 1
            } while (last ? r > 0 : written < 9)
        }
        if pos == end { pos -= 1; out[pos] = 48 }
        end = maxDigits
        // Move the digits to a separate area so placePoint can write from the start of the buffer.
        let digits = work.reserve(end - pos)
        digits.update(from: out + pos, count: end - pos)
        return placePoint(digits: UnsafeRawBufferPointer(start: digits, count: end - pos), negative: negative, scale: scale)
    }

    private var zeroDigit: StaticString { "0" }

    /// Writes `digits` (no leading zeros, `0` for zero) as a decimal with `scale` fractional digits.
    private func placePoint(digits: UnsafeRawBufferPointer, negative: Bool, scale: Int) -> UnsafeRawBufferPointer {
        let n = digits.count
        let p = scratch.reserve(n + max(scale, 0) + max(-scale, 0) + 4)
        var o = 0
        if negative { p[o] = UInt8(ascii: "-"); o += 1 }
        if scale <= 0 {
            for d in digits { p[o] = d; o += 1 }
            if scale < 0 && !(n == 1 && digits[0] == 48) {
                for _ in 0..<(-scale) { p[o] = 48; o += 1 }
            }
        } else if n > scale {
            for i in 0..<(n - scale) { p[o] = digits[i]; o += 1 }
            p[o] = UInt8(ascii: "."); o += 1
            for i in (n - scale)..<n { p[o] = digits[i]; o += 1 }
        } else {
            p[o] = 48; p[o + 1] = UInt8(ascii: "."); o += 2
            for _ in 0..<(scale - n) { p[o] = 48; o += 1 }
            for d in digits { p[o] = d; o += 1 }
        }
        return UnsafeRawBufferPointer(start: p, count: o)
    }

    // MARK: dates and times

    /// `HH:MM:SS[.fraction]` of a time of day in units of 10^-digits seconds (out-of-range values: the integer).
    private func time(_ v: Int64, digits: Int, into p: UnsafeMutablePointer<UInt8>) -> UnsafeRawBufferPointer {
        let perSecond = digits == 3 ? Int64(1000) : (digits == 6 ? 1_000_000 : 1_000_000_000)
        guard v >= 0, v < perSecond * 86_400 else { return writeDecimal(v.magnitude, negative: v < 0, into: p) }
        let n = writeTime(v, perSecond: perSecond, digits: digits, into: p, at: 0)
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    private func timestamp(
        days: Int64, within: Int64, perSecond: Int64, digits: Int, utc: Bool,
        into p: UnsafeMutablePointer<UInt8>
    ) -> UnsafeRawBufferPointer {
        var n = writeDate(days: days, into: p, at: 0)
        p[n] = UInt8(ascii: "T"); n += 1
        n = writeTime(within, perSecond: perSecond, digits: digits, into: p, at: n)
        if utc { p[n] = UInt8(ascii: "Z"); n += 1 }
        return UnsafeRawBufferPointer(start: p, count: n)
    }
}

/// Writes `HH:MM:SS` and, when the fraction is not zero, `.` and its digits without trailing zeros.
@inline(__always)
func writeTime(_ v: Int64, perSecond: Int64, digits: Int, into p: UnsafeMutablePointer<UInt8>, at start: Int) -> Int {
    let secs = v / perSecond
    var frac = v % perSecond
    let pairs = digitPairs
    var o = start
    for part in [secs / 3600, secs / 60 % 60, secs % 60] {
        if o > start { p[o] = UInt8(ascii: ":"); o += 1 }
        let x = Int(part)
        if x < 100 {
            p[o] = pairs[2 * x]; p[o + 1] = pairs[2 * x + 1]; o += 2
        } else {  // hours ≥ 100 cannot occur within a day
            o += writeUnsigned(UInt64(x), into: p + o)
        }
    }
    if frac > 0 {
        var d = digits
        while frac % 10 == 0 { frac /= 10; d -= 1 }
        p[o] = UInt8(ascii: "."); o += 1
        var i = o + d
        o = i
        while i > o - d {
            i -= 1
            p[i] = UInt8(48 + frac % 10)
            frac /= 10
        }
    }
    return o
}

/// Writes the proleptic Gregorian date of `days` since 1970-01-01 as `YYYY-MM-DD`
/// (years outside 0…9999 with a sign and at least four digits). Returns the end offset.
@inline(__always)
func writeDate(days: Int64, into p: UnsafeMutablePointer<UInt8>, at start: Int) -> Int {
    let (y, m, d) = civil(days: days)
    var o = start
    if y < 0 || y > 9999 {
        p[o] = y < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"); o += 1
    }
    let ay = y.magnitude
    if ay < 1000 {  // at least four digits
        var pad = ay < 10 ? 3 : (ay < 100 ? 2 : 1)
        if ay == 0 { pad = 3 }
        for _ in 0..<pad { p[o] = 48; o += 1 }
    }
    o += writeUnsigned(ay, into: p + o)
    let pairs = digitPairs
    p[o] = UInt8(ascii: "-"); p[o + 1] = pairs[2 * Int(m)]; p[o + 2] = pairs[2 * Int(m) + 1]
    p[o + 3] = UInt8(ascii: "-"); p[o + 4] = pairs[2 * Int(d)]; p[o + 5] = pairs[2 * Int(d) + 1]
    return o + 6
}

/// Year, month, day of `days` since 1970-01-01 in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
@inline(__always)
func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}

/// Writes the decimal digits of `v` at `p`; returns their count.
@inline(__always)
func writeUnsigned(_ v: UInt64, into p: UnsafeMutablePointer<UInt8>) -> Int {
    var tmp = (UInt64(0), UInt64(0), UInt64(0))
    return withUnsafeMutableBytes(of: &tmp) { t in
        let d = writeDecimal(v, negative: false, into: t.baseAddress!.assumingMemoryBound(to: UInt8.self))
        p.update(from: d.baseAddress!.assumingMemoryBound(to: UInt8.self), count: d.count)
        return d.count
    }
}

#if arch(x86_64) && os(macOS)
    extension Float {
        /// The value of IEEE half-precision bits (no Float16 on Intel macOS).
        init(float16Bits h: UInt16) {
            let sign = UInt32(h >> 15) << 31
            let exp = Int(h >> 10 & 0x1F), frac = UInt32(h & 0x3FF)
            if exp == 0x1F { self = Float(bitPattern: sign | 0x7F80_0000 | frac << 13); return }
            if exp == 0 { self = (sign != 0 ? -1 : 1) * Float(frac) * 0x1p-24; return }
            self = Float(bitPattern: sign | UInt32(exp + 112) << 23 | frac << 13)
        }
    }
#endif
