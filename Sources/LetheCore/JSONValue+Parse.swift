/// The byte parser behind `JSONValue.parse`: one pass over the bytes, no `Decoder`.
///
/// It gives the values the `Codable` decoding of `JSONValue` gives (the differential test
/// `JSONValueParseTests` holds it to that): a number is `.int` when it is an integer in Int64
/// range, or a fraction/exponent form whose value is one exactly (`1.0`, `1e3`), else `.double`;
/// a later duplicate key replaces an earlier one; strings must be valid UTF-8 with JSON escapes
/// (a lone surrogate escape is an error); nesting deeper than 512 is an error. The Delta log is
/// parsed through it line by line, and checkpoint statistics row by row: it is a hot path.
struct JSONByteParser {
    static let maxDepth = 512

    struct Failure: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    /// Bytes of a string with escapes, reused across strings.
    private var scratch: [UInt8] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.b = bytes }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var p = JSONByteParser(bytes)
        // A UTF-8 byte order mark is skipped, as Foundation's decoder skips it.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { p.i = 3 }
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw p.fail("unexpected text after the value") }
        return v
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: i, reason: reason) }

    private mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard i < b.count else { throw fail("unexpected end of input") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard b.count - i >= n else { throw fail("unexpected end of input") }
        let w = word.utf8Start
        for k in 0..<n where b[i + k] != w[k] { throw fail("unexpected character") }
        i += n
    }

    private mutating func object(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nested too deep") }
        i += 1
        var out: [String: JSONValue] = [:]
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") {
            i += 1
            return .object(out)
        }
        while true {
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of input") }
            guard b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let key = try string()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            let v = try value(depth: depth)
            if out[key] == nil { out[key] = v }  // the first of duplicate keys wins, as in Foundation's decoder
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of input") }
            if b[i] == UInt8(ascii: ",") {
                i += 1
                skipSpace()
                // A trailing comma is accepted, as Foundation's decoder accepts it.
                if i < b.count, b[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(out)
                }
                continue
            }
            guard b[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            i += 1
            return .object(out)
        }
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nested too deep") }
        i += 1
        var out: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") {
            i += 1
            return .array(out)
        }
        while true {
            skipSpace()
            out.append(try value(depth: depth))
            skipSpace()
            guard i < b.count else { throw fail("unexpected end of input") }
            if b[i] == UInt8(ascii: ",") {
                i += 1
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(out)
                }
                continue
            }
            guard b[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            i += 1
            return .array(out)
        }
    }

    /// A string literal at `i` (on its opening quote).
    private mutating func string() throws -> String {
        i += 1
        let start = i
        // Fast path: no escape before the closing quote.
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let s = try text(UnsafeBufferPointer(rebasing: b[start..<i]), at: start)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in a string") }
            i += 1
        }
        guard i < b.count else { throw Failure(offset: start - 1, reason: "unterminated string") }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return try scratch.withUnsafeBufferPointer { try text($0, at: start) }
            }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") {
                scratch.append(c)
                i += 1
                continue
            }
            guard i + 1 < b.count else { break }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(e)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"): try unicodeEscape()
            default:
                i -= 2
                throw fail("invalid escape")
            }
        }
        throw Failure(offset: start - 1, reason: "unterminated string")
    }

    /// `\uXXXX` (after the `u`), with a following low surrogate for a high one; appended as UTF-8.
    private mutating func unicodeEscape() throws {
        let at = i - 2
        var scalar = try hex4()
        if (0xD800..<0xDC00).contains(scalar) {
            guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                throw Failure(offset: at, reason: "lone surrogate escape")
            }
            i += 2
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw Failure(offset: at, reason: "lone surrogate escape") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..<0xE000).contains(scalar) {
            throw Failure(offset: at, reason: "lone surrogate escape")
        }
        guard let u = Unicode.Scalar(scalar) else { throw Failure(offset: at, reason: "invalid escape") }
        scratch.append(contentsOf: UTF8.encode(u)!)
    }

    private mutating func hex4() throws -> UInt32 {
        guard b.count - i >= 4 else { throw fail("unexpected end of input") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private func text(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw Failure(offset: at, reason: "string is not valid UTF-8")
        }
        return s
    }

    /// A number at `i`: strict JSON grammar; `.int` when its value is an Int64 exactly.
    private mutating func number() throws -> JSONValue {
        let start = i
        var negative = false
        if b[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
        if b[i] == UInt8(ascii: "0") {
            i += 1
            if i < b.count, isDigit(b[i]) { throw fail("leading zero in a number") }
        } else {
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        let intEnd = i
        var fracStart = i
        var fracEnd = i
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            fracStart = i
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
            while i < b.count, isDigit(b[i]) { i += 1 }
            fracEnd = i
        }
        var exponent = 0
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            var expNegative = false
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                expNegative = b[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < b.count, isDigit(b[i]) else { throw fail("invalid number") }
            while i < b.count, isDigit(b[i]) {
                exponent = min(exponent * 10 + Int(b[i] - UInt8(ascii: "0")), 100_000)
                i += 1
            }
            if expNegative { exponent = -exponent }
        }
        // `.int` when the decimal value is an integer in Int64 range (exactly, whatever its form).
        if let v = exactInteger(
            negative: negative, int: (start + (negative ? 1 : 0))..<intEnd, fraction: fracStart..<fracEnd, exponent: exponent)
        {
            return .int(v)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw Failure(offset: start, reason: "number out of range") }
        return .double(d)
    }

    /// The value of digits `int` `.` `fraction` `e` `exponent` when it is an integer that fits Int64.
    private func exactInteger(negative: Bool, int: Range<Int>, fraction: Range<Int>, exponent: Int) -> Int64? {
        if fraction.isEmpty && exponent == 0 {
            // Digits only (the common case): no copy.
            var v: Int64 = 0
            for k in int {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (r, o2) = m.subtractingReportingOverflow(Int64(b[k] - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                v = r
            }
            if negative { return v }
            return v == Int64.min ? nil : -v
        }
        // The significant digits, without leading zeros, and the power of ten they are scaled by.
        var digits: [UInt8] = []
        digits.reserveCapacity(int.count + fraction.count)
        for k in int where !(digits.isEmpty && b[k] == UInt8(ascii: "0")) { digits.append(b[k] - UInt8(ascii: "0")) }
        for k in fraction where !(digits.isEmpty && b[k] == UInt8(ascii: "0")) { digits.append(b[k] - UInt8(ascii: "0")) }
        if digits.isEmpty { return 0 }
        var scale = exponent - fraction.count
        while scale < 0, let last = digits.last, last == 0 {
            digits.removeLast()
            scale += 1
        }
        guard scale >= 0, digits.count + scale <= 19 else { return nil }
        // Accumulated negatively so Int64.min fits.
        var v: Int64 = 0
        for d in digits + [UInt8](repeating: 0, count: scale) {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (r, o2) = m.subtractingReportingOverflow(Int64(d))
            if o1 || o2 { return nil }
            v = r
        }
        if negative { return v }
        return v == Int64.min ? nil : -v
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
