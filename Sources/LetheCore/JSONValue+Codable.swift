import Foundation

// Decoding, typed accessors and the second writer of `JSONValue`.
//
// `JSONValue` has two writers on purpose, and each must keep its bytes:
// - `text` (JSONValue.swift): the hand writer of audit details, reports and settings; its bytes are
//   hashed into the audit chain.
// - `encodedText` (here): `JSONEncoder`'s bytes with sorted keys and unescaped slashes (written
//   directly, see `encodedBytes`), as Delta writers emit;
//   it writes the lines of the Delta log that Spark and delta-rs read.
// The two differ on doubles (`1.0` against `1`), on a non-finite double (`null` in place against the
// whole document `null`) and on `.raw` (verbatim against re-encoded). Tests: jsonValueWritersAreByteStable.

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// `.raw` text is encoded as the value it parses to (an encoder cannot insert text verbatim).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .raw(let t): try c.encode(JSONValue.parse(Array(t.utf8)))
        }
    }
}

extension JSONValue {
    /// Parses one JSON document (on bytes, see `JSONByteParser`; the values are those the
    /// `Codable` decoding above gives).
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { try JSONByteParser.parse($0) }
    }

    /// Parses one JSON document from a slice of a larger buffer (a line of a log) without copying it.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        try JSONByteParser.parse(bytes)
    }

    /// Compact JSON with sorted keys and unescaped slashes (as Delta writers emit); `null` when the
    /// value cannot be encoded (a non-finite double anywhere in it).
    public var encodedText: String { String(decoding: encodedBytes, as: UTF8.self) }

    /// The bytes of `encodedText`, written directly (a vacuum of thousands of commits re-encodes
    /// every scrubbed line; `JSONEncoder` was most of its time). Byte for byte what `JSONEncoder`
    /// writes with `.sortedKeys` and `.withoutEscapingSlashes` (tests: `theDeltaWriterIsJSONEncoder…`):
    /// keys in the byte order of their UTF-8; a double as Swift prints it, without a trailing `.0`;
    /// `\b \f \n \r \t` and `\u00xx` for the other control characters; `null` for the whole
    /// document when a double anywhere in it is not finite, or a `.raw` text does not parse.
    public var encodedBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        return Self.encodeSorted(self, into: &out) ? out : Array("null".utf8)
    }

    private static func encodeSorted(_ v: JSONValue, into b: inout [UInt8]) -> Bool {
        switch v {
        case .null: b += "null".utf8
        case .bool(let x): b += (x ? "true" : "false").utf8
        case .int(let i): JSONText.append(i, into: &b)
        case .double(let d):
            guard d.isFinite else { return false }
            let s = d.description
            b += s.hasSuffix(".0") ? s.utf8.dropLast(2) : s.utf8.dropLast(0)
        case .string(let s): encoderQuote(s, into: &b)
        case .array(let a):
            b.append(UInt8(ascii: "["))
            for (i, x) in a.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                guard encodeSorted(x, into: &b) else { return false }
            }
            b.append(UInt8(ascii: "]"))
        case .object(let o):
            b.append(UInt8(ascii: "{"))
            for (i, (k, x)) in o.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                encoderQuote(k, into: &b)
                b.append(UInt8(ascii: ":"))
                guard encodeSorted(x, into: &b) else { return false }
            }
            b.append(UInt8(ascii: "}"))
        case .raw(let t):
            guard let p = try? JSONValue.parse(Array(t.utf8)) else { return false }
            return encodeSorted(p, into: &b)
        }
        return true
    }

    /// A string literal as `JSONEncoder` escapes it.
    private static func encoderQuote(_ s: String, into b: inout [UInt8]) {
        b.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): b.append(UInt8(ascii: "\\")); b.append(c)
            case 0x08: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "b"))
            case 0x0C: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "f"))
            case 0x0A: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "n"))
            case 0x0D: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "r"))
            case 0x09: b.append(UInt8(ascii: "\\")); b.append(UInt8(ascii: "t"))
            case 0..<0x20:
                b += "\\u00".utf8
                b.append(hexDigit[Int(c >> 4)])
                b.append(hexDigit[Int(c & 15)])
            default: b.append(c)
            }
        }
        b.append(UInt8(ascii: "\""))
    }

    private static let hexDigit = Array("0123456789abcdef".utf8)

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    /// An integer, or a double with an integral value in Int64 range.
    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var isNull: Bool { self == .null }

    /// A string-to-string map (partition values, configuration); null values stay nil.
    public var stringMap: [String: String?] {
        guard let o = object else { return [:] }
        return o.mapValues { $0.string }
    }
}
