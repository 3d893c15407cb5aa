import Foundation
import Testing
import LetheCore

/// Values exercising both JSON writers: key order (case, digits, underscores, non-ASCII), string
/// escapes (quote, backslash, slash, control characters, non-ASCII, U+2028), integer limits, doubles
/// of every shape, non-finite doubles, nesting and empties.
let jsonFixtures: [JSONValue] = {
    let strings = [
        "", "plain", "slash/path/x.parquet", "quote\"back\\slash", "nl\ncr\rtab\t", "ctl\u{01}\u{1f}\u{7f}",
        "é日本🙂", "ls\u{2028}ps\u{2029}", "<&>'",
    ]
    let doubles: [Double] = [
        0, 1, -2.5, 0.1, 1e20, 1e-7, 123456789.125, Double.pi, -0.0, 1e300,
        Double.leastNonzeroMagnitude, 9007199254740992, Double.nan, -Double.infinity,
    ]
    let keys = ["b", "a", "B", "A", "a10", "a2", "_x", "é", "Z", "z", "1", "10", "9", ""]
    var v: [JSONValue] = strings.map(JSONValue.string) + doubles.map(JSONValue.double)
    v += [.int(0), .int(-1), .int(.max), .int(.min), .bool(true), .bool(false), .null, .array([]), .object([:])]
    v.append(.object(Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($0.element, JSONValue.int(Int64($0.offset))) })))
    v.append(
        .object([
            "add": .object([
                "path": .string("a/b=1/part-0.parquet"), "partitionValues": .object(["b": .null, "a": .string("x")]),
                "size": .int(123), "modificationTime": .int(1_700_000_000_000), "dataChange": .bool(true),
                "stats": .string("{\"numRecords\":3}"), "tags": .object([:]),
            ]),
            "arr": .array([.int(1), .double(2.5), .string("s"), .array([.null, .object([:])])]),
        ]))
    v.append(.array([.int(1), .double(.nan)]))
    return v
}()

/// Today's bytes of each fixture: (`JSONValue.text`, the hand writer whose bytes are hashed into the audit
/// chain; the Delta log writer, `JSONEncoder` with sorted keys and unescaped slashes, whose lines Spark reads).
let jsonFixtureBytes: [(text: String, encoded: String)] = [
    ("\"\"", "\"\""),
    ("\"plain\"", "\"plain\""),
    ("\"slash/path/x.parquet\"", "\"slash/path/x.parquet\""),
    ("\"quote\\\"back\\\\slash\"", "\"quote\\\"back\\\\slash\""),
    ("\"nl\\ncr\\rtab\\t\"", "\"nl\\ncr\\rtab\\t\""),
    ("\"ctl\\u0001\\u001f\u{7F}\"", "\"ctl\\u0001\\u001f\u{7F}\""),
    ("\"é日本🙂\"", "\"é日本🙂\""),
    ("\"ls\u{2028}ps\u{2029}\"", "\"ls\u{2028}ps\u{2029}\""),
    ("\"<&>\'\"", "\"<&>\'\""),
    ("0.0", "0"),
    ("1.0", "1"),
    ("-2.5", "-2.5"),
    ("0.1", "0.1"),
    ("1e+20", "1e+20"),
    ("1e-07", "1e-07"),
    ("123456789.125", "123456789.125"),
    ("3.141592653589793", "3.141592653589793"),
    ("-0.0", "-0"),
    ("1e+300", "1e+300"),
    ("5e-324", "5e-324"),
    ("9007199254740992.0", "9007199254740992"),
    ("null", "null"),
    ("null", "null"),
    ("0", "0"),
    ("-1", "-1"),
    ("9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("true", "true"),
    ("false", "false"),
    ("null", "null"),
    ("[]", "[]"),
    ("{}", "{}"),
    (
        "{\"\":13,\"1\":10,\"10\":11,\"9\":12,\"A\":3,\"B\":2,\"Z\":8,\"_x\":6,\"a\":1,\"a10\":4,\"a2\":5,\"b\":0,\"z\":9,\"é\":7}",
        "{\"\":13,\"1\":10,\"10\":11,\"9\":12,\"A\":3,\"B\":2,\"Z\":8,\"_x\":6,\"a\":1,\"a10\":4,\"a2\":5,\"b\":0,\"z\":9,\"é\":7}"
    ),
    (
        "{\"add\":{\"dataChange\":true,\"modificationTime\":1700000000000,\"partitionValues\":{\"a\":\"x\",\"b\":null},\"path\":\"a/b=1/part-0.parquet\",\"size\":123,\"stats\":\"{\\\"numRecords\\\":3}\",\"tags\":{}},\"arr\":[1,2.5,\"s\",[null,{}]]}",
        "{\"add\":{\"dataChange\":true,\"modificationTime\":1700000000000,\"partitionValues\":{\"a\":\"x\",\"b\":null},\"path\":\"a/b=1/part-0.parquet\",\"size\":123,\"stats\":\"{\\\"numRecords\\\":3}\",\"tags\":{}},\"arr\":[1,2.5,\"s\",[null,{}]]}"
    ),
    ("[1,null]", "null"),
]

@Test func jsonValueWritersAreByteStable() {
    #expect(jsonFixtures.count == jsonFixtureBytes.count)
    for (v, want) in zip(jsonFixtures, jsonFixtureBytes) {
        #expect(v.text == want.text)
        #expect(v.encodedText == want.encoded)
    }
}

@Test func jsonValueParsesWhatItsDeltaWriterWrites() throws {
    for v in jsonFixtures where v != .double(-0.0) {  // "-0" reads back as the integer 0
        let once = v.encodedText
        #expect(try JSONValue.parse(Array(once.utf8)).encodedText == once, "\(once)")
    }
    let raw = JSONValue.raw("{\"b\": [1, 2.5], \"a\": \"x/y\"}")
    #expect(raw.text == "{\"b\": [1, 2.5], \"a\": \"x/y\"}")
    #expect(raw.encodedText == "{\"a\":\"x/y\",\"b\":[1,2.5]}")
    let doc = try JSONValue.parse(Array("{\"p\":{\"a\":\"1\",\"b\":null},\"n\":3.0,\"l\":[true]}".utf8))
    #expect(doc["p"]?.stringMap == ["a": "1", "b": String?.none])
    #expect(doc["n"]?.int == 3 && doc["l"]?.array == [.bool(true)] && doc["l"]?.array?.first?.bool == true)
    #expect(doc["p"]?["b"]?.isNull == true && doc["missing"] == nil && doc["p"]?.string == nil)
}

/// `encodedText` is written by hand: on random documents it is byte for byte what `JSONEncoder`
/// (sorted keys, unescaped slashes) writes, the whole document `null` included.
@Test func theDeltaWriterIsJSONEncoderOnRandomDocuments() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    func reference(_ v: JSONValue) -> String {
        (try? encoder.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
    var rng = SplitMix64(seed: 0x6a73_6f6e)
    let alphabet: [String] = [
        "a", "B", "z", "_", "-", ".", "/", "0", "9", " ", "\"", "\\", "\u{08}", "\u{0C}", "\n", "\r", "\t", "\u{01}",
        "\u{1F}", "\u{7F}", "é", "e\u{301}", "Ä", "日", "🙂", "\u{FF21}", "\u{2028}", "\u{FFFF}",
    ]
    func text() -> String { (0..<Int(rng.next() % 6)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined() }
    func double() -> Double {
        switch rng.next() % 6 {
        case 0: return Double(bitPattern: rng.next())  // any bits: NaN, infinities, subnormals
        case 1: return Double(Int64(bitPattern: rng.next()) % 1_000_000) / 1_000
        case 2: return Double(Int64(bitPattern: rng.next()) >> Int(rng.next() % 60))
        case 3: return Double(rng.next() % 10_000) * pow(10, Double(Int(rng.next() % 40) - 20))
        case 4: return [0, -0.0, 1, 1e15, 1e16, 1e17, 1e21, 1e-6, 1e-7, 0.1, 2.5][Int(rng.next() % 11)]
        default: return Double(rng.next() % 1_000_000_007) / 7
        }
    }
    func value(_ depth: Int) -> JSONValue {
        switch rng.next() % (depth > 3 ? 6 : 9) {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2: return .int(Int64(bitPattern: rng.next()) >> Int(rng.next() % 64))
        case 3: return .double(double())
        case 4, 5: return .string(text())
        case 6: return .array((0..<Int(rng.next() % 4)).map { _ in value(depth + 1) })
        case 7: return .raw(value(depth + 1).text)
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<Int(rng.next() % 6) { o[text()] = value(depth + 1) }
            return .object(o)
        }
    }
    var nulls = 0
    for i in 0..<20_000 {
        let v = value(0)
        let want = reference(v)
        if want == "null" { nulls += 1 }
        #expect(v.encodedText == want, "document \(i)")
        if v.encodedText != want { return }
    }
    #expect(nulls > 100)  // non-finite doubles reached
    #expect(JSONValue.raw("{not json").encodedText == "null")
}
