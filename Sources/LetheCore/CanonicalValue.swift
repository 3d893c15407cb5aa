/// Canonical subject values: one text form per logical type, the value as people
/// write it (docs/formats.md, "Canonical subject values"). The subject index, locate,
/// forget, erase, verify and the stream filter all key the UTF-8 bytes of this form.
///
/// The Parquet library renders typed column values itself (`Parquet.CanonicalText`,
/// on bytes, in the scan); this type renders values that arrive as *text* typed by a
/// schema elsewhere: Delta `partitionValues` (strings in the log, typed by the table
/// schema), statistics, Hive folder names.

/// The logical type of a subject value.
public enum CanonicalType: Sendable, Hashable, CustomStringConvertible {
    /// Bytes as stored (UTF-8 text).
    case string
    /// Raw bytes.
    case binary
    /// `true` / `false`.
    case boolean
    /// Decimal ASCII, `-` for negatives, no `+`, no leading zeros.
    case integer
    /// Plain notation with exactly `scale` fractional digits.
    case decimal(scale: Int)
    /// Swift's shortest round-trip text of a Float.
    case float
    /// Swift's shortest round-trip text of a Double.
    case double
    /// `YYYY-MM-DD` (years outside 0…9999 with a sign and at least four digits).
    case date
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]`, then `Z` when adjusted to UTC; the fraction
    /// has at most `digits` digits, trailing zeros removed.
    case timestamp(digits: Int, utc: Bool)
    /// `HH:MM:SS[.fraction]`.
    case time(digits: Int)
    /// Lowercase 8-4-4-4-12 hex.
    case uuid

    /// The type of a Delta schema primitive (`string`, `long`, `decimal(10,2)`, `timestamp`, …);
    /// nil for a type that cannot hold a subject (struct, array, map, variant, unknown).
    public init?(deltaType name: String) {
        let n = name.lowercased().filter { $0 != " " }
        switch n {
        case "string": self = .string
        case "binary": self = .binary
        case "boolean": self = .boolean
        case "byte", "short", "integer", "int", "long": self = .integer
        case "float": self = .float
        case "double": self = .double
        case "date": self = .date
        case "timestamp": self = .timestamp(digits: 6, utc: true)
        case "timestamp_ntz": self = .timestamp(digits: 6, utc: false)
        default:
            guard n.hasPrefix("decimal") else { return nil }
            // decimal(p,s), or `decimal` alone (10, 0)
            let inner = n.dropFirst("decimal".count)
            if inner.isEmpty { self = .decimal(scale: 0); return }
            guard inner.first == "(", inner.last == ")" else { return nil }
            let parts = inner.dropFirst().dropLast().split(separator: ",")
            guard parts.count == 2, Int(parts[0]) != nil, let s = Int(parts[1]), s >= 0 else { return nil }
            self = .decimal(scale: s)
        }
    }

    /// The Delta schema type name of this type (`decimal(38,s)` for decimals: the precision does not matter here).
    public var deltaName: String {
        switch self {
        case .string: return "string"
        case .binary: return "binary"
        case .boolean: return "boolean"
        case .integer: return "long"
        case .decimal(let s): return "decimal(38,\(s))"
        case .float: return "float"
        case .double: return "double"
        case .date: return "date"
        case .timestamp(_, let utc): return utc ? "timestamp" : "timestamp_ntz"
        case .time: return "string"
        case .uuid: return "string"
        }
    }

    public var description: String {
        switch self {
        case .string: return "string"
        case .binary: return "binary"
        case .boolean: return "boolean"
        case .integer: return "integer"
        case .decimal(let s): return "decimal(scale \(s))"
        case .float: return "float"
        case .double: return "double"
        case .date: return "date"
        case .timestamp(_, let utc): return utc ? "timestamp" : "timestamp without time zone"
        case .time: return "time"
        case .uuid: return "uuid"
        }
    }
}

/// Renders values in their canonical form.
public enum CanonicalValue {
    /// The canonical bytes of a value written as text by another tool, for a column of
    /// type `type`; nil when the text is not a value of that type. Accepted input:
    /// - integer: optional sign and digits (`007` → `7`, `+5` → `5`, `-0` → `0`);
    /// - decimal: optional sign, digits with an optional fraction, optional exponent
    ///   (`1.5` with scale 2 → `1.50`, `1.5E+2` → `150.00`); more significant fractional
    ///   digits than the scale is an error;
    /// - float/double: what Swift's `Float(_:)`/`Double(_:)` parse (`NaN`, `Infinity` too);
    /// - boolean: `true`/`false` in any case;
    /// - date: `Y-M-D` (`2021-1-3` → `2021-01-03`);
    /// - timestamp: a date, then ` ` or `T`, `H:M:S[.fraction]`, then optionally `Z` or an
    ///   offset `±HH:MM` (converted to UTC). Text without a zone is taken as UTC, as Delta
    ///   writes timestamp partition values;
    /// - time: `H:M:S[.fraction]`;
    /// - uuid: 32 hex digits with or without dashes, any case;
    /// - binary: the characters' code points as bytes when all are below 256 (Delta writes
    ///   binary partition values that way), else the UTF-8;
    /// - string: the UTF-8 as is.
    public static func fromText(_ text: String, as type: CanonicalType) -> [UInt8]? {
        switch type {
        case .string: return Array(text.utf8)
        case .binary:
            let scalars = text.unicodeScalars
            if scalars.allSatisfy({ $0.value < 256 }) { return scalars.map { UInt8($0.value) } }
            return Array(text.utf8)
        case .boolean:
            switch text.lowercased() {
            case "true": return Array("true".utf8)
            case "false": return Array("false".utf8)
            default: return nil
            }
        case .integer: return integer(Array(text.utf8))
        case .decimal(let scale): return decimal(Array(text.utf8), scale: scale)
        case .float:
            guard let f = Float(text.trimmingSpaces) else { return nil }
            return Array(f.description.utf8)
        case .double:
            guard let d = Double(text.trimmingSpaces) else { return nil }
            return Array(d.description.utf8)
        case .date:
            var p = Parser(Array(text.utf8))
            guard let days = p.date(), p.atEnd else { return nil }
            return date(days: days)
        case .time(let digits):
            var p = Parser(Array(text.utf8))
            guard let (secs, frac, fd) = p.time(), p.atEnd, secs < 86_400 else { return nil }
            return Array(timeText(seconds: secs, fraction: frac, fractionDigits: fd, maxDigits: digits).utf8)
        case .timestamp(let digits, let utc):
            var p = Parser(Array(text.utf8))
            guard let days = p.date() else { return nil }
            guard p.eat(UInt8(ascii: "T")) || p.eat(UInt8(ascii: " ")) else { return nil }
            guard let (secs, frac, fd) = p.time(), secs < 86_400 else { return nil }
            var total = days * 86_400 + secs
            if !p.atEnd {
                if p.eat(UInt8(ascii: "Z")) || p.eat(UInt8(ascii: "z")) {
                } else if let off = p.offset() {
                    total -= off
                } else {
                    return nil
                }
            }
            guard p.atEnd else { return nil }
            return timestamp(seconds: total, fraction: frac, fractionDigits: fd, maxDigits: digits, utc: utc)
        case .uuid:
            let hex = text.utf8.filter { $0 != UInt8(ascii: "-") }
            guard hex.count == 32, hex.allSatisfy({ Self.hexValue($0) != nil }) else { return nil }
            var out: [UInt8] = []
            for (i, c) in hex.enumerated() {
                if i == 8 || i == 12 || i == 16 || i == 20 { out.append(UInt8(ascii: "-")) }
                out.append(c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F") ? c + 32 : c)
            }
            return out
        }
    }

    /// `YYYY-MM-DD` of `days` since 1970-01-01 (proleptic Gregorian).
    public static func date(days: Int64) -> [UInt8] {
        let (y, m, d) = civil(days: days)
        var s = ""
        if y < 0 || y > 9999 { s += y < 0 ? "-" : "+" }
        let ay = String(y.magnitude)
        s += String(repeating: "0", count: max(0, 4 - ay.count)) + ay
        s += "-" + two(m) + "-" + two(d)
        return Array(s.utf8)
    }

    /// A timestamp of `seconds` since the epoch plus `fraction` (an integer of
    /// `fractionDigits` digits), the fraction cut to `maxDigits` digits.
    public static func timestamp(seconds: Int64, fraction: Int64, fractionDigits: Int, maxDigits: Int, utc: Bool) -> [UInt8] {
        let days = seconds >= 0 ? seconds / 86_400 : -((-seconds + 86_399) / 86_400)
        let within = seconds - days * 86_400
        var out = date(days: days)
        out.append(UInt8(ascii: "T"))
        out += Array(timeText(seconds: within, fraction: fraction, fractionDigits: fractionDigits, maxDigits: maxDigits).utf8)
        if utc { out.append(UInt8(ascii: "Z")) }
        return out
    }

    // MARK: - helpers

    static func timeText(seconds: Int64, fraction: Int64, fractionDigits: Int, maxDigits: Int) -> String {
        var s = two(seconds / 3600) + ":" + two(seconds / 60 % 60) + ":" + two(seconds % 60)
        var digits = String(fraction)
        digits = String(repeating: "0", count: max(0, fractionDigits - digits.count)) + digits
        if digits.count > maxDigits { digits = String(digits.prefix(maxDigits)) }
        while digits.last == "0" { digits.removeLast() }
        if !digits.isEmpty && fraction != 0 { s += "." + digits }
        return s
    }

    static func two(_ v: Int64) -> String { v < 10 ? "0" + String(v) : String(v) }

    static func integer(_ t: [UInt8]) -> [UInt8]? {
        var i = 0
        var negative = false
        if i < t.count && (t[i] == UInt8(ascii: "-") || t[i] == UInt8(ascii: "+")) { negative = t[i] == UInt8(ascii: "-"); i += 1 }
        guard i < t.count, t[i...].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        while i < t.count - 1 && t[i] == 48 { i += 1 }
        let digits = Array(t[i...])
        if digits == [48] { return digits }
        return (negative ? [UInt8(ascii: "-")] : []) + digits
    }

    static func decimal(_ t: [UInt8], scale: Int) -> [UInt8]? {
        var i = 0
        var negative = false
        if i < t.count && (t[i] == UInt8(ascii: "-") || t[i] == UInt8(ascii: "+")) { negative = t[i] == UInt8(ascii: "-"); i += 1 }
        var intDigits: [UInt8] = [], fracDigits: [UInt8] = []
        while i < t.count, t[i] >= 48, t[i] <= 57 { intDigits.append(t[i]); i += 1 }
        if i < t.count, t[i] == UInt8(ascii: ".") {
            i += 1
            while i < t.count, t[i] >= 48, t[i] <= 57 { fracDigits.append(t[i]); i += 1 }
        }
        guard !intDigits.isEmpty || !fracDigits.isEmpty else { return nil }
        var exponent = 0
        if i < t.count, t[i] == UInt8(ascii: "e") || t[i] == UInt8(ascii: "E") {
            i += 1
            guard let e = integer(Array(t[i...])), let v = Int(String(decoding: e, as: UTF8.self)), abs(v) < 10_000 else { return nil }
            exponent = v
            i = t.count
        }
        guard i == t.count else { return nil }
        // All digits with the point `fracDigits.count - exponent` places from the right.
        var digits = intDigits + fracDigits
        var pointFromRight = fracDigits.count - exponent
        while pointFromRight < scale { digits.append(48); pointFromRight += 1 }
        while pointFromRight > scale {
            guard digits.last == 48 else { return nil }  // would lose significant digits
            digits.removeLast()
            pointFromRight -= 1
        }
        while digits.count > scale + 1 && digits.first == 48 { digits.removeFirst() }
        while digits.count < scale + 1 { digits.insert(48, at: 0) }
        let isZero = digits.allSatisfy { $0 == 48 }
        var out: [UInt8] = negative && !isZero ? [UInt8(ascii: "-")] : []
        out += digits[0..<(digits.count - scale)]
        if scale > 0 { out.append(UInt8(ascii: ".")); out += digits[(digits.count - scale)...] }
        return out
    }

    /// The value of an ASCII hex digit (either case), nil for any other byte.
    public static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }

    /// Year, month, day of `days` since 1970-01-01 (H. Hinnant's `civil_from_days`).
    static func civil(days: Int64) -> (Int64, Int64, Int64) {
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

    /// Days since 1970-01-01 of a proleptic Gregorian date (`days_from_civil`); nil when invalid.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64? {
        guard (1...12).contains(month), day >= 1 else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= lengths[Int(month - 1)] else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// A small cursor over ASCII text.
    struct Parser {
        let t: [UInt8]
        var i = 0
        init(_ t: [UInt8]) { self.t = t }
        var atEnd: Bool { i == t.count }
        mutating func eat(_ c: UInt8) -> Bool {
            if i < t.count && t[i] == c { i += 1; return true }
            return false
        }
        /// 1 to `max` digits.
        mutating func number(max: Int = 18) -> (value: Int64, digits: Int)? {
            var v: Int64 = 0, n = 0
            while i < t.count, t[i] >= 48, t[i] <= 57, n < max { v = v * 10 + Int64(t[i] - 48); i += 1; n += 1 }
            return n > 0 ? (v, n) : nil
        }
        /// `[+-]Y-M-D` → days since the epoch.
        mutating func date() -> Int64? {
            var sign: Int64 = 1
            if eat(UInt8(ascii: "-")) { sign = -1 } else { _ = eat(UInt8(ascii: "+")) }
            guard let y = number(max: 9), eat(UInt8(ascii: "-")), let m = number(max: 2), eat(UInt8(ascii: "-")),
                let d = number(max: 2)
            else { return nil }
            return CanonicalValue.days(year: sign * y.value, month: m.value, day: d.value)
        }
        /// `H:M:S[.fraction]` → (seconds of the day, fraction, its digit count).
        mutating func time() -> (Int64, Int64, Int)? {
            guard let h = number(max: 2), eat(UInt8(ascii: ":")), let m = number(max: 2), eat(UInt8(ascii: ":")),
                let s = number(max: 2), h.value < 24, m.value < 60, s.value < 60
            else { return nil }
            var frac: Int64 = 0, fd = 0
            if eat(UInt8(ascii: ".")) {
                guard let f = number(max: 18) else { return nil }
                (frac, fd) = f
            }
            return (h.value * 3600 + m.value * 60 + s.value, frac, fd)
        }
        /// `±HH:MM` or `±HHMM` → seconds east of UTC.
        mutating func offset() -> Int64? {
            let sign: Int64
            if eat(UInt8(ascii: "+")) { sign = 1 } else if eat(UInt8(ascii: "-")) { sign = -1 } else { return nil }
            guard let h = number(max: 2), h.digits == 2 else { return nil }
            _ = eat(UInt8(ascii: ":"))
            guard let m = number(max: 2), m.digits == 2, h.value < 24, m.value < 60 else { return nil }
            return sign * (h.value * 3600 + m.value * 60)
        }
    }
}

private extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
