import Foundation
import Testing
@testable import LetheCore

private func run(_ doc: String, _ paths: [String]) throws -> [(JSONFieldScanner.Kind, String?)] {
    let scanner = JSONFieldScanner(paths: paths.map(FieldPath.init))
    let bytes = Array(doc.utf8)
    return try bytes.withUnsafeBytes { buf in
        try scanner.scan(buf)
        return paths.indices.map { i in
            (scanner.match(i).kind, scanner.canonicalValue(i, in: buf).map { String(decoding: $0, as: UTF8.self) })
        }
    }
}

private func syntaxError(_ doc: String, _ paths: [String] = ["user.id"]) -> JSONSyntaxError? {
    do {
        _ = try run(doc, paths)
        return nil
    } catch {
        return error as? JSONSyntaxError
    }
}

struct ExactPathCase: Sendable, CustomTestStringConvertible {
    let doc: String
    let path: String
    let kind: JSONFieldScanner.Kind
    let value: String?
    var testDescription: String { "\(path) in \(doc)" }
}

@Suite struct JSONFieldScannerTests {
    static let exactCases: [ExactPathCase] = [
        .init(doc: #"{"user":{"id":"u-1"}}"#, path: "user.id", kind: .string, value: "u-1"),
        .init(doc: #"{"item":{"id":"x"},"user":{"name":"n","id":"u-1"}}"#, path: "user.id", kind: .string, value: "u-1"),
        .init(doc: #"{"item":{"id":"x"}}"#, path: "user.id", kind: .absent, value: nil),
        .init(doc: #"{"user":{"profile":{"id":"deep"}}}"#, path: "user.id", kind: .absent, value: nil),
        .init(doc: #"{"user":{"profile":{"id":"deep"}},"x":1}"#, path: "user.profile.id", kind: .string, value: "deep"),
        .init(doc: #"{"note":"{\"user\":{\"id\":\"u-1\"}}"}"#, path: "user.id", kind: .absent, value: nil),
        .init(doc: #"{"user.id":"dotted"}"#, path: "user.id", kind: .absent, value: nil),
        .init(doc: #"{"user.id":"dotted"}"#, path: #"user\.id"#, kind: .string, value: "dotted"),
        .init(doc: #"{"user\u005fid":"esc"}"#, path: "user_id", kind: .string, value: "esc"),
        .init(doc: #"{"\u0075ser":{"\u0069d":7}}"#, path: "user.id", kind: .number, value: "7"),
        .init(doc: #"{"user_id":"a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#, path: "user_id", kind: .string, value: "a\"b\\c/d\né😀"),
        .init(doc: #"{"user_id":"héllo"}"#, path: "user_id", kind: .string, value: "héllo"),
        .init(doc: #"{"user_id":-12.5e+3}"#, path: "user_id", kind: .number, value: "-12.5e+3"),
        .init(doc: #"{"user_id":123}"#, path: "user_id", kind: .number, value: "123"),
        .init(doc: #"{"user_id":null}"#, path: "user_id", kind: .null, value: nil),
        .init(doc: #"{"user_id":true}"#, path: "user_id", kind: .bool, value: nil),
        .init(doc: #"{"user_id":{"a":1}}"#, path: "user_id", kind: .object, value: nil),
        .init(doc: #"{"user_id":["u-1"]}"#, path: "user_id", kind: .array, value: nil),
        .init(doc: #"{"users":[{"id":"u-1"}]}"#, path: "users.id", kind: .absent, value: nil),
        .init(doc: #"[{"user_id":"u-1"}]"#, path: "user_id", kind: .absent, value: nil),
        .init(doc: " \t\r\n{ \"user\" \n:\t{ \"id\" : \"u-1\" } } \r\n", path: "user.id", kind: .string, value: "u-1"),
        .init(doc: #"{"a":[1,{"user_id":"x"},[{"user_id":"y"}]],"user_id":"u-12"}"#, path: "user_id", kind: .string, value: "u-12"),
        .init(doc: #"{"user_id":""}"#, path: "user_id", kind: .string, value: ""),
    ]

    @Test(arguments: exactCases)
    func exactPath(_ c: ExactPathCase) throws {
        let r = try run(c.doc, [c.path])
        #expect(r[0].0 == c.kind)
        #expect(r[0].1 == c.value)
    }

    @Test func severalPathsAtOnce() throws {
        let r = try run(
            #"{"tenant":"t1","user":{"id":"u-1","org":{"id":5}},"item":{"id":"i"}}"#,
            ["user.id", "tenant", "user.org.id", "item.id", "missing", "user"])
        #expect(r.map(\.0) == [.string, .string, .number, .string, .absent, .object])
        #expect(r.map(\.1) == ["u-1", "t1", "5", "i", nil, nil])
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        let doc: String
        let reason: JSONSyntaxError.Reason
        let offset: Int
        var testDescription: String { doc }
    }

    static let badCases: [BadCase] = [
        .init(doc: #"{"user":{"id":"u-1"}"#, reason: .unexpectedEnd, offset: 20),
        .init(doc: #"{"user":{"id":"u-1"}}}"#, reason: .trailingGarbage, offset: 21),
        .init(doc: #"{"user":{"id":"u-1"}} x"#, reason: .trailingGarbage, offset: 22),
        .init(doc: #"{"user_id":"u-1}"#, reason: .unterminatedString, offset: 11),
        .init(doc: "{\"user_id\":\"u\u{01}1\"}", reason: .controlCharacter, offset: 13),
        .init(doc: #"{"user_id":"u\x"}"#, reason: .invalidEscape, offset: 13),
        .init(doc: #"{"user_id":"\ud83d"}"#, reason: .invalidUnicodeEscape, offset: 12),
        .init(doc: #"{"user_id":"\u12G4"}"#, reason: .invalidUnicodeEscape, offset: 12),
        .init(doc: #"{"user_id":01}"#, reason: .unexpectedByte, offset: 12),
        .init(doc: #"{"user_id":1.}"#, reason: .invalidNumber, offset: 11),
        .init(doc: #"{"user_id":-}"#, reason: .invalidNumber, offset: 11),
        .init(doc: #"{"user_id":tru}"#, reason: .invalidLiteral, offset: 11),
        .init(doc: #"{"user_id" "x"}"#, reason: .expectedColon, offset: 11),
        .init(doc: #"{user_id:"x"}"#, reason: .expectedKey, offset: 1),
        .init(doc: #"{"a":1,}"#, reason: .expectedKey, offset: 7),
        .init(doc: #"{"a":[1,2}"#, reason: .unexpectedByte, offset: 9),
        .init(doc: #"{"a":1 "b":2}"#, reason: .unexpectedByte, offset: 7),
        .init(doc: #"{"user_id":"a","user_id":"b"}"#, reason: .duplicateField, offset: 15),
        .init(doc: "   ", reason: .empty, offset: 3),
        .init(doc: "", reason: .empty, offset: 0),
        .init(doc: #"{"a":"x","user_id":"ok","b":[}"#, reason: .unexpectedByte, offset: 29),
    ]

    @Test(arguments: badCases)
    func malformed(_ c: BadCase) {
        let e = syntaxError(c.doc, ["user_id"])
        #expect(e == JSONSyntaxError(offset: c.offset, reason: c.reason))
    }

    @Test func tooDeep() {
        let doc = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(syntaxError(doc)?.reason == .tooDeep)
        let ok = "{\"user_id\":1,\"x\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}"
        #expect(syntaxError(ok, ["user_id"]) == nil)
    }

    /// 100,000 generated records: the scanner agrees with the generator's tree and
    /// with Foundation's JSONSerialization on every searched path.
    @Test func generatedCorpusAgreesWithReference() throws {
        var rng = SplitMix(seed: 0x5eed)
        let paths = ["user.id", "user_id", "item.id", "user.profile.id"]
        let scanner = JSONFieldScanner(paths: paths.map(FieldPath.init))
        var checked = 0
        for _ in 0..<100_000 {
            let (tree, text) = Gen.record(&rng)
            let bytes = Array(text.utf8)
            let ref = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            try bytes.withUnsafeBytes { buf in
                try scanner.scan(buf)
                for (pi, path) in paths.enumerated() {
                    let comps = path.split(separator: ".").map(String.init)
                    let expected = tree.lookup(comps)
                    let m = scanner.match(pi)
                    let got = scanner.canonicalValue(pi, in: buf)
                    let refValue = Gen.refLookup(ref, comps)
                    switch expected {
                    case nil:
                        #expect(m.kind == .absent, "\(text)")
                        #expect(refValue == nil)
                    case .str(let s)?:
                        #expect(m.kind == .string, "\(text)")
                        #expect(got == Array(s.utf8), "\(text)")
                        #expect((refValue as? String).map { Array($0.utf8) } == got, "\(text)")
                    case .num(let lit)?:
                        #expect(m.kind == .number, "\(text)")
                        #expect(got == Array(lit.utf8), "\(text)")
                        #expect((refValue as? NSNumber)?.doubleValue == Double(lit), "\(text)")
                    case .null?:
                        #expect(m.kind == .null)
                        #expect(refValue is NSNull)
                    case .bool?: #expect(m.kind == .bool)
                    case .obj?: #expect(m.kind == .object)
                    case .arr?: #expect(m.kind == .array)
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == 400_000)
    }

    /// Mutated records: whenever JSONSerialization rejects a document the scanner
    /// rejects it too, and the other way round.
    @Test func mutatedCorpusValidityAgreesWithReference() throws {
        var rng = SplitMix(seed: 0xbad)
        let scanner = JSONFieldScanner(paths: [FieldPath("user.id"), FieldPath("user_id")])
        let junk = Array("{}[]\",:\\ a1-.e\u{01}".utf8)
        var rejected = 0
        for _ in 0..<20_000 {
            var bytes = Array(Gen.record(&rng).1.utf8)
            switch rng.next(4) {
            case 0: bytes.removeLast(1 + rng.next(min(bytes.count - 1, 20)))
            case 1: bytes.remove(at: rng.next(bytes.count))
            case 2: bytes.insert(junk[rng.next(junk.count)], at: rng.next(bytes.count + 1))
            default: bytes[rng.next(bytes.count)] = junk[rng.next(junk.count)]
            }
            let refOK = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            var ours: JSONSyntaxError?
            bytes.withUnsafeBytes { buf in
                do { try scanner.scan(buf) } catch { ours = error as? JSONSyntaxError }
            }
            if ours?.reason == .duplicateField { continue }
            guard let text = String(validating: bytes, as: UTF8.self) else { continue }
            // Known deviations of Foundation's parser from RFC 8259: it accepts a trailing
            // comma before `}` / `]`, and rejects numbers that overflow a Double.
            if refOK && ours != nil && text.contains(/,\s*[}\]]/) { continue }
            if !refOK && ours == nil && text.contains(/[0-9][eE][+-]?[0-9]{3,}/) { continue }
            #expect(refOK == (ours == nil), "\(String(decoding: bytes, as: UTF8.self)) ours: \(String(describing: ours))")
            if ours != nil { rejected += 1 }
        }
        #expect(rejected > 5_000)
    }
}

// MARK: - Generator

typealias SplitMix = SplitMix64
extension SplitMix64 {
    mutating func next64() -> UInt64 { next() }
    mutating func next(_ n: Int) -> Int { n <= 1 ? 0 : Int(next64() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { next(100) < percent }
}

indirect enum J {
    case str(String), num(String), bool(Bool), null, obj([(String, J)]), arr([J])

    func lookup(_ path: [String]) -> J? {
        var cur = self
        for c in path {
            guard case .obj(let kv) = cur, let v = kv.first(where: { $0.0 == c })?.1 else { return nil }
            cur = v
        }
        return cur
    }
}

enum Gen {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ ")
    static let specials: [Character] = ["\"", "\\", "/", "\n", "\t", "é", "ß", "中", "😀", "\u{1F}", "{", "}", ":", ","]

    static func id(_ r: inout SplitMix) -> J {
        switch r.next(10) {
        case 0: return .null
        case 1, 2: return .num(number(&r))
        case 3: return .str(String(r.next(100_000)))
        default: return .str(text(&r, max: 14))
        }
    }

    static func number(_ r: inout SplitMix) -> String {
        switch r.next(5) {
        case 0: return String(r.next(1_000_000))
        case 1: return "-" + String(r.next(1000))
        case 2: return "\(r.next(100)).\(r.next(100))"
        case 3: return "\(1 + r.next(9))e\(r.chance(50) ? "+" : "-")\(r.next(20))"
        default: return "0"
        }
    }

    static func text(_ r: inout SplitMix, max: Int) -> String {
        var s = "u-"
        for _ in 0..<r.next(max) {
            if r.chance(12) { s.append(specials[r.next(specials.count)]) } else { s.append(alphabet[r.next(alphabet.count)]) }
        }
        return s
    }

    static func decoyObject(_ r: inout SplitMix, depth: Int) -> J {
        var kv: [(String, J)] = [("id", id(&r))]
        if r.chance(40) { kv.append(("name", .str(text(&r, max: 10)))) }
        if depth < 3 && r.chance(30) { kv.append(("profile", decoyObject(&r, depth: depth + 1))) }
        if r.chance(20) { kv.append(("tags", .arr([.str("a"), .num("1"), .bool(true), .null]))) }
        shuffle(&kv, &r)
        return .obj(kv)
    }

    static func record(_ r: inout SplitMix) -> (J, String) {
        var kv: [(String, J)] = []
        if r.chance(80) {
            var user: [(String, J)] = []
            if r.chance(90) { user.append(("id", id(&r))) }
            if r.chance(50) { user.append(("profile", decoyObject(&r, depth: 1))) }
            if r.chance(40) { user.append(("email", .str(text(&r, max: 12) + "@example.com"))) }
            if r.chance(5) { user.append(("id2", .bool(false))) }
            shuffle(&user, &r)
            kv.append(("user", r.chance(3) ? .arr([.obj(user)]) : .obj(user)))
        }
        if r.chance(50) { kv.append(("item", decoyObject(&r, depth: 1))) }
        if r.chance(40) { kv.append(("user_id", r.chance(5) ? .bool(true) : id(&r))) }
        if r.chance(20) { kv.append(("user.id", .str("dotted-decoy"))) }
        if r.chance(30) { kv.append(("note", .str("{\"user\":{\"id\":\"u-1\"},\"user_id\":\"u-1\"}"))) }
        if r.chance(30) { kv.append(("events", .arr((0..<r.next(4)).map { _ in decoyObject(&r, depth: 2) }))) }
        if r.chance(50) { kv.append(("ts", .num(String(1_700_000_000 + r.next(1_000_000))))) }
        if r.chance(20) { kv.append(("ok", .bool(r.chance(50)))) }
        if r.chance(10) { kv.append(("nothing", .null)) }
        if r.chance(10) { kv.append(("empty", .obj([]))) }
        shuffle(&kv, &r)
        let tree = J.obj(kv)
        var out = ""
        write(tree, &out, &r)
        return (tree, out)
    }

    static func shuffle<T>(_ a: inout [T], _ r: inout SplitMix) {
        if a.count < 2 { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, r.next(i + 1)) }
    }

    static func ws(_ out: inout String, _ r: inout SplitMix) {
        if r.chance(85) { return }
        for _ in 0..<(1 + r.next(2)) { out.append([" ", "\t", "\n", "\r"][r.next(4)]) }
    }

    static func writeString(_ s: String, _ out: inout String, _ r: inout SplitMix) {
        out.append("\"")
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append(r.chance(50) ? "\\n" : "\\u000a")
            case "\t": out.append("\\t")
            case "/": out.append(r.chance(50) ? "\\/" : "/")
            case _ where ch.value < 0x20: out.append(String(format: "\\u%04x", ch.value))
            default:
                if r.chance(8) {
                    if ch.value >= 0x10000 {
                        let v = ch.value - 0x10000
                        out.append(String(format: "\\u%04X\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
                    } else {
                        out.append(String(format: r.chance(50) ? "\\u%04x" : "\\u%04X", ch.value))
                    }
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        out.append("\"")
    }

    static func write(_ j: J, _ out: inout String, _ r: inout SplitMix) {
        ws(&out, &r)
        switch j {
        case .str(let s): writeString(s, &out, &r)
        case .num(let n): out.append(n)
        case .bool(let b): out.append(b ? "true" : "false")
        case .null: out.append("null")
        case .arr(let items):
            out.append("[")
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(",") }
                write(v, &out, &r)
            }
            ws(&out, &r)
            out.append("]")
        case .obj(let kv):
            out.append("{")
            for (i, (k, v)) in kv.enumerated() {
                if i > 0 { out.append(",") }
                ws(&out, &r)
                writeString(k, &out, &r)
                ws(&out, &r)
                out.append(":")
                write(v, &out, &r)
            }
            ws(&out, &r)
            out.append("}")
        }
        ws(&out, &r)
    }

    static func refLookup(_ value: Any, _ path: [String]) -> Any? {
        var cur: Any = value
        for c in path {
            guard let d = cur as? [String: Any], let v = d[c] else { return nil }
            cur = v
        }
        return cur
    }
}
