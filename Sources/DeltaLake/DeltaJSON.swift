import Foundation

/// A JSON value as it appears in the Delta log. Actions keep their whole JSON so
/// that fields Lethe does not model survive a rewrite of the log unchanged.
public indirect enum DeltaJSON: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([DeltaJSON])
    case object([String: DeltaJSON])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([DeltaJSON].self) { self = .array(a); return }
        self = .object(try c.decode([String: DeltaJSON].self))
    }

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
        }
    }

    /// Parses one JSON document.
    public static func parse(_ bytes: [UInt8]) throws -> DeltaJSON {
        try JSONDecoder().decode(DeltaJSON.self, from: Data(bytes))
    }

    /// Compact JSON with sorted keys and unescaped slashes (as Delta writers emit).
    public var text: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(self)) ?? Data("null".utf8), as: UTF8.self)
    }

    public subscript(key: String) -> DeltaJSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var object: [String: DeltaJSON]? { if case .object(let o) = self { return o }; return nil }
    public var array: [DeltaJSON]? { if case .array(let a) = self { return a }; return nil }
    public var isNull: Bool { self == .null }

    /// A string-to-string map (partition values, configuration); null values stay nil.
    public var stringMap: [String: String?] {
        guard let o = object else { return [:] }
        return o.mapValues { $0.string }
    }
}
