import Foundation

/// A small JSON value for audit details and reports (not a hot path).
public enum JSONValue: Sendable, Equatable {
    case string(String), int(Int64), double(Double), bool(Bool), null
    case array([JSONValue]), object([String: JSONValue])
    /// Pre-encoded JSON text, inserted verbatim.
    case raw(String)

    /// Compact JSON text with sorted keys.
    public var text: String {
        var s = ""
        write(&s)
        return s
    }

    public func write(_ s: inout String) {
        switch self {
        case .string(let v): JSONValue.quote(v, into: &s)
        case .int(let v): s += String(v)
        case .double(let v): s += v.isFinite ? String(v) : "null"
        case .bool(let v): s += v ? "true" : "false"
        case .null: s += "null"
        case .raw(let t): s += t
        case .array(let a):
            s += "["
            for (i, v) in a.enumerated() { if i > 0 { s += "," }; v.write(&s) }
            s += "]"
        case .object(let o):
            s += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { s += "," }
                JSONValue.quote(k, into: &s); s += ":"; o[k]!.write(&s)
            }
            s += "}"
        }
    }

    public static func quote(_ v: String, into s: inout String) { JSONText.quote(v, into: &s) }
}
