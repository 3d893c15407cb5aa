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

    /// `v` as a JSON string literal.
    public static func quoted(_ v: String) -> String {
        var s = ""
        quote(v, into: &s)
        return s
    }
}
