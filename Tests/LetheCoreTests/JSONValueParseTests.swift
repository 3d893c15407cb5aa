import Foundation
import LetheCore
import Testing

/// `JSONValue.parse` (the byte parser) against the `Codable` decoding through Foundation's
/// `JSONDecoder`, the reference it replaced: same value or both an error, on edge cases, on
/// generated documents and on every line of the Delta logs in the corpora on this machine.
struct JSONValueParseTests {
    static func reference(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    static func agree(_ text: [UInt8], _ comment: String) {
        let mine = try? JSONValue.parse(text)
        let ref = reference(text)
        #expect(mine == ref, "\(comment): \(String(decoding: text, as: UTF8.self).prefix(200))")
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "01", "1.", ".5", "-", "+1", "1.0", "-1.0", "1e3", "1E+3", "1e-3", "2.5", "-0.0", "1e400", "-1e400",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "9007199254740993", "9.007199254740993e15", "1.5e300", "123456789012345678901234567890",
        "true", "false", "null", "tru", "nul", "True",
        "\"\"", "\"a\"", "\"a\\\"b\"", "\"\\/\"", "\"\\b\\f\\n\\r\\t\"", "\"\\u0041\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\u12\"", "\"\\x\"", "\"abc", "\"a\tb\"", "\"é\"", "\"\\u0000\"",
        "[]", "[1,2]", "[1,]", "[,1]", "[1 2]", " [ 1 , [ 2 , { } ] ] ", "{}", "{\"a\":1}", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "{\"a\":1,\"a\":2}", "{\"b\":{\"c\":[null,true,false,-1.25]}}", "1 2", "", " ", "[1]x", "{\"a\":[1,{\"b\":\"\\u00e9\"}]}",
        "\u{FEFF}1", "[1e5, 2E-2, 0.000001, 1.0e0]", "0e5", "0.0e-5", "100e-2", "1.23e2", "12.30e1", "-0e0",
        "0.00000000000000000000001e23", "[1,,]", "{,}", "[,]", "{\"a\":1,,}",
    ])
    func edgeCasesAgreeWithFoundation(_ text: String) {
        Self.agree(Array(text.utf8), "edge case")
    }

    /// Where the byte parser is exact and Foundation is not: a fraction or exponent form whose
    /// decimal value is an integer at the edge of Int64 (Foundation goes through Double), and an
    /// exponent that underflows (Foundation gives the integer 0).
    @Test func numbersAtTheEdgesAreExact() throws {
        #expect(try JSONValue.parse(Array("922337203685477580.7e1".utf8)) == .int(Int64.max))
        #expect(try JSONValue.parse(Array("-922337203685477580.8e1".utf8)) == .int(Int64.min))
        #expect(try JSONValue.parse(Array("922337203685477580.8e1".utf8)) == .double(9.223372036854775808e18))
        #expect(try JSONValue.parse(Array("1e-400".utf8)) == .double(0))
    }

    /// An escape JSON does not have (RFC 8259 §7) is an error wherever it is; Foundation's decoder
    /// only sees it in a string it decodes (not under a duplicate key, whose first value wins).
    @Test func anInvalidEscapeIsAnErrorEvenUnderADuplicateKey() {
        #expect(throws: (any Error).self) { try JSONValue.parse(Array("{\"a\": 1, \"a\": \"\\q\"}".utf8)) }
        #expect(Self.reference(Array("{\"a\": 1, \"a\": \"\\q\"}".utf8)) == .object(["a": .int(1)]))
    }

    static func hasInvalidEscape(_ text: [UInt8]) -> Bool {
        var k = 0
        while k + 1 < text.count {
            if text[k] == UInt8(ascii: "\\") {
                if !Array("\"\\/bfnrtu".utf8).contains(text[k + 1]) { return true }
                k += 2
            } else {
                k += 1
            }
        }
        return false
    }

    @Test func invalidUTF8AndDeepNestingAgree() {
        Self.agree([0x22, 0xFF, 0x22], "invalid UTF-8 in a string")
        Self.agree([0x22, 0xC3, 0x22], "truncated UTF-8 in a string")
        Self.agree([0x22, 0xED, 0xA0, 0x80, 0x22], "an encoded surrogate")
        Self.agree(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8), "600 levels")
        Self.agree(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8), "100 levels")
    }

    /// Random documents (seeded), written with random spacing and escapes, and mutated by a byte.
    @Test func generatedDocumentsAgreeWithFoundation() {
        var rng = SplitMix64(seed: 0x15_0E7E)
        for n in 0..<3000 {
            var out: [UInt8] = []
            Self.write(depth: 0, &rng, into: &out)
            Self.agree(out, "document \(n)")
            if !out.isEmpty {
                var m = out
                let at = Int(rng.next() % UInt64(m.count))
                let alphabet = Array(" \"\\{}[],:0-.eE9ux\u{7F}".utf8)
                m[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                if (try? JSONValue.parse(m)) == nil, Self.reference(m) != nil, Self.hasInvalidEscape(m) { continue }
                Self.agree(m, "mutated document \(n)")
            }
        }
    }

    static func write(depth: Int, _ rng: inout SplitMix64, into out: inout [UInt8]) {
        func space() { if rng.next() % 4 == 0 { out += Array([" ", "\n", "\t", "\r\n "][Int(rng.next() % 4)].utf8) } }
        space()
        switch rng.next() % (depth > 4 ? 5 : 7) {
        case 0: out += Array(["true", "false", "null"][Int(rng.next() % 3)].utf8)
        case 1:
            let forms = ["0", "-0", "7", "-12", "3.25", "1e2", "-2.5E-3", "1.0", "9223372036854775807", "9223372036854775808", "0.1", "6.02e23"]
            out += Array(forms[Int(rng.next() % UInt64(forms.count))].utf8)
        case 2: out += Array(String(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)).utf8)
        case 3, 4: string(&rng, into: &out)
        case 5:
            out.append(UInt8(ascii: "["))
            let n = Int(rng.next() % 4)
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(depth: depth + 1, &rng, into: &out)
            }
            space()
            out.append(UInt8(ascii: "]"))
        default:
            out.append(UInt8(ascii: "{"))
            let n = Int(rng.next() % 4)
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                space()
                string(&rng, into: &out)
                space()
                out.append(UInt8(ascii: ":"))
                write(depth: depth + 1, &rng, into: &out)
            }
            space()
            out.append(UInt8(ascii: "}"))
        }
        space()
    }

    static func string(_ rng: inout SplitMix64, into out: inout [UInt8]) {
        let pieces = ["a", "b", "k", "é", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\t", " ", "user_id"]
        out.append(UInt8(ascii: "\""))
        for _ in 0..<Int(rng.next() % 6) { out += Array(pieces[Int(rng.next() % UInt64(pieces.count))].utf8) }
        out.append(UInt8(ascii: "\""))
    }

    /// Every line of every Delta log commit in the corpora (files this project did not write).
    @Test func deltaLogLinesOfTheCorporaAgree() throws {
        // delta-rs's test tables as scripts/corpus-delta fetches them into the checkout, and the development machine's corpora.
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let fetched = repo + "/.fixtures/deltalake-1.6.6/crates/test/tests/data"
        let roots = [fetched, "/work/corpora/delta-rs", "/work/corpora/delta-io", "/work/corpora/delta-golden"]
        let fm = FileManager.default
        var lines = 0
        for root in roots where fm.fileExists(atPath: root) {
            guard let walk = fm.enumerator(atPath: root) else { continue }
            for case let rel as String in walk where rel.hasSuffix(".json") && rel.contains("_delta_log/") {
                guard let data = fm.contents(atPath: root + "/" + rel) else { continue }
                for line in Array(data).split(separator: UInt8(ascii: "\n")) where lines < 20_000 {
                    Self.agree(Array(line), rel)
                    lines += 1
                }
            }
        }
        // `scripts/test` fetches delta-rs's tables before the Swift tests (816 log lines); a checkout where no
        // corpus was fetched yet has nothing to compare.
        if roots.contains(where: fm.fileExists(atPath:)) { #expect(lines > 500) }
    }

    @Test func errorsNameTheByteOffset() {
        #expect(throws: (any Error).self) { try JSONValue.parse(Array("{\"a\":tru}".utf8)) }
        do {
            _ = try JSONValue.parse(Array("[1, 2, x]".utf8))
            Issue.record("parsed invalid JSON")
        } catch {
            #expect("\(error)" == "invalid JSON at byte 7: unexpected character")
        }
    }
}
