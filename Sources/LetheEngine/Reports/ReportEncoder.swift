import Foundation
import LetheCore

/// The one way a report becomes JSON for every door (the CLI's `--json`, later the HTTP service):
/// compact, keys sorted, slashes unescaped. Report types spell their keys in `CodingKeys`.
public enum ReportEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(value)
    }

    /// The report as one line of JSON text.
    public static func text<T: Encodable>(_ value: T) -> String {
        // Reports hold strings, integers, booleans and finite doubles: encoding cannot fail.
        String(decoding: (try? encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

/// A JSON document held by a report as it was stored (a request's plan and verification, an
/// audit entry's details): decoded into a `JSONValue` and encoded back as that value.
struct JSONDocument: Codable {
    var value: JSONValue

    init(_ value: JSONValue) { self.value = value }

    /// Parses stored JSON text; nil when it is not JSON.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        (try? JSONDecoder().decode(JSONDocument.self, from: Data(bytes)))?.value
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { value = .null }
        else if let b = try? c.decode(Bool.self) { value = .bool(b) }
        else if let i = try? c.decode(Int64.self) { value = .int(i) }
        else if let d = try? c.decode(Double.self) { value = .double(d) }
        else if let s = try? c.decode(String.self) { value = .string(s) }
        else if let a = try? c.decode([JSONDocument].self) { value = .array(a.map(\.value)) }
        else { value = .object(try c.decode([String: JSONDocument].self).mapValues(\.value)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a.map(JSONDocument.init))
        case .object(let o): try c.encode(o.mapValues(JSONDocument.init))
        case .raw(let t):
            guard let v = JSONDocument.parse(Array(t.utf8)) else { try c.encodeNil(); return }
            try c.encode(JSONDocument(v))
        }
    }
}

extension KeyedEncodingContainer {
    /// Encodes a stored JSON document, `null` when there is none (the key is always present).
    mutating func encodeDocument(_ v: JSONValue?, forKey key: Key) throws {
        if let v { try encode(JSONDocument(v), forKey: key) } else { try encodeNil(forKey: key) }
    }
}

extension KeyedDecodingContainer {
    func decodeDocument(forKey key: Key) throws -> JSONValue? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decode(JSONDocument.self, forKey: key).value
    }
}
