/// JSON text helpers shared by the audit log, the state store and the CLI's `--json` output.
public enum JSONText {
    /// Appends `v` as a JSON string literal: quotes, backslashes and control characters escaped,
    /// everything else (non-ASCII included) as it is.
    public static func quote(_ v: String, into s: inout String) {
        s += "\""
        // Most strings (ids, keys, hex digests) need no escape: appended whole.
        if !v.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            s += v
            s += "\""
            return
        }
        for u in v.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    s += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    s.unicodeScalars.append(u)
                }
            }
        }
        s += "\""
    }

    /// Appends `v` as a JSON string literal to bytes, escaped as `quote(_:into:)` escapes it.
    public static func quote(_ v: String, into b: inout [UInt8]) {
        b.append(UInt8(ascii: "\""))
        for c in v.utf8 {
            switch c {
            case UInt8(ascii: "\""): b.append(UInt8(ascii: "\\")); b.append(c)
            case UInt8(ascii: "\\"): b.append(UInt8(ascii: "\\")); b.append(c)
            case 0x0A: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "n"))
            case 0x0D: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "r"))
            case 0x09: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "t"))
            case 0..<0x20:
                b += Array("\\u00".utf8)
                b.append(hexDigits[Int(c >> 4)])
                b.append(hexDigits[Int(c & 15)])
            default: b.append(c)
            }
        }
        b.append(UInt8(ascii: "\""))
    }

    /// Appends a decimal integer to bytes.
    public static func append(_ v: Int64, into b: inout [UInt8]) {
        guard v >= 0 else {
            b += Array(String(v).utf8)
            return
        }
        var digits: (UInt64, Int) = (UInt64(v), 0)
        repeat {
            digits.1 += 1
            digits.0 /= 10
        } while digits.0 > 0
        let start = b.count
        b.append(contentsOf: repeatElement(48, count: digits.1))
        var n = UInt64(v), i = b.count
        repeat {
            i -= 1
            b[i] = 48 + UInt8(n % 10)
            n /= 10
        } while i > start
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `v` as a JSON string literal.
    public static func quoted(_ v: String) -> String {
        var s = ""
        quote(v, into: &s)
        return s
    }
}
