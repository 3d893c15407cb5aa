public import Foundation
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

extension JSONValue {
    /// A JSON document a report holds as it was stored (a request's plan and verification, an audit
    /// entry's details); nil when the text is not JSON.
    static func document(_ bytes: [UInt8]) -> JSONValue? { try? JSONValue.parse(bytes) }
}

extension KeyedEncodingContainer {
    /// Encodes a stored JSON document, `null` when there is none (the key is always present).
    mutating func encodeDocument(_ v: JSONValue?, forKey key: Key) throws {
        try encode(v ?? .null, forKey: key)
    }
}

extension KeyedDecodingContainer {
    func decodeDocument(forKey key: Key) throws -> JSONValue? {
        try decodeIfPresent(JSONValue.self, forKey: key)
    }
}
