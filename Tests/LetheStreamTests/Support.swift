import Foundation
import LetheCore
@testable import LetheStream

/// A deterministic generator (SplitMix64) so a failing corpus can be reproduced.
typealias SplitMix = SplitMix64

let testStreamKey = SipHash24(key: Array(100..<116))

func tag(_ s: String) -> UInt64 { testStreamKey.hash(Array(s.utf8)) }

/// A filter over `fields` whose deletion set holds `forgotten` (canonical ids).
func makeFilter(
    _ fields: [String] = ["user.id"], forgotten: [String], policy: MalformedPolicy = .fail,
    validation: Validation = .full
) -> StreamFilter {
    let set = SharedDeletionSet(DeletionSet(tags: forgotten.map(tag)))
    return StreamFilter(
        fields: fields.map(FieldPath.init), streamKey: testStreamKey, set: set, onMalformed: policy,
        validation: validation)
}

/// Feeds `input` to `filter` in pieces of the given sizes (cycled), carrying partial
/// lines like `StreamPump` does; returns the output.
func filterInPieces(_ filter: StreamFilter, _ input: [UInt8], sizes: [Int]) throws -> [UInt8] {
    var out: [UInt8] = []
    var pending: [UInt8] = []
    var pos = 0
    var k = 0
    while pos < input.count {
        let n = min(sizes[k % sizes.count], input.count - pos)
        k += 1
        pending.append(contentsOf: input[pos..<(pos + n)])
        pos += n
        let used = try pending.withUnsafeBytes { b in
            try filter.filter(b, isFinal: false) { out.append(contentsOf: $0) }
        }
        pending.removeFirst(used)
    }
    try pending.withUnsafeBytes { b in
        _ = try filter.filter(b, isFinal: true) { out.append(contentsOf: $0) }
    }
    return out
}

/// The reference: split on LF, parse each line with Foundation's JSONSerialization,
/// take the subject by walking dictionaries, canonicalise, look it up in a Swift Set.
func referenceFilter(_ input: [UInt8], fields: [[String]], forgotten: Set<String>) throws -> [UInt8] {
    var out: [UInt8] = []
    var lines = input.split(separator: 0x0A, omittingEmptySubsequences: false)
    let endsWithNewline = input.last == 0x0A
    if endsWithNewline { lines.removeLast() }
    for (i, line) in lines.enumerated() {
        let newline = i < lines.count - 1 || endsWithNewline
        let keep: Bool
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            keep = true
        } else {
            let obj = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            var parts: [String] = []
            for path in fields {
                var v: Any? = obj
                for c in path { v = (v as? [String: Any])?[c] }
                if let s = v as? String, !s.isEmpty {
                    parts.append(s)
                } else if let n = v as? NSNumber, !(v is String), String(cString: n.objCType) != "c" {
                    parts.append(n.stringValue)
                } else {
                    parts = []
                    break
                }
            }
            keep = parts.isEmpty || !forgotten.contains(parts.joined(separator: "\u{1F}"))
        }
        if keep {
            out.append(contentsOf: line)
            if newline { out.append(0x0A) }
        }
    }
    return out
}

/// A varied corpus of JSON Lines events with the subject at `user.id`.
struct Corpus {
    var rng: SplitMix
    init(seed: UInt64) { rng = SplitMix(seed: seed) }

    mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }

    /// Escapes every character of `s` as \uXXXX (surrogate pairs above the BMP).
    static func uEscaped(_ s: String) -> String {
        s.utf16.map { String(format: "\\u%04x", $0) }.joined()
    }

    static func jsonString(_ s: String) -> String {
        var o = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\t": o += "\\t"
            default: if u.value < 0x20 { o += String(format: "\\u%04x", u.value) } else { o.unicodeScalars.append(u) }
            }
        }
        return o + "\""
    }

    /// The id value as JSON text for subject number `n`, in one of many spellings.
    mutating func idValue(_ n: Int) -> String {
        switch int(12) {
        case 0: return String(n)  // number
        case 1: return "\"\(n)\""  // same subject as a string
        case 2: return Self.jsonString("ü-\(n)-東京")  // unicode
        case 3: return "\"" + Self.uEscaped("u-\(n)") + "\""  // fully escaped value
        case 4: return "\"u\\u002d\(n)\""  // partly escaped
        case 5: return Self.jsonString("u-\(n)\"q\\")  // escaped quote and backslash
        case 6: return "\"\(Self.uEscaped("😀"))-\(n)\""  // surrogate pair
        default: return "\"u-\(n)\""
        }
    }

    /// The canonical id of subject `n` in spelling `idValue` used (reconstructed by parsing).
    mutating func key(_ name: String) -> String {
        switch int(8) {
        case 0: return "\"" + Self.uEscaped(name) + "\""
        case 1 where name == "user": return "\"us\\u0065r\""
        case 2 where name == "id": return "\"i\\u0064\""
        default: return "\"\(name)\""
        }
    }

    mutating func ws() -> String { pick(["", "", "", " ", "  ", "\t", "\r "]) }

    mutating func decoy() -> String {
        switch int(8) {
        case 0: return "{\"user\":{\"id\":\"u-\(int(1000))\"}}"
        case 1: return "{\"id\":\"u-\(int(1000))\"}"
        case 2: return "[\"u-\(int(1000))\",{\"user\":{\"id\":\"u-7\"}}]"
        case 3: return Self.jsonString("{\"user\":{\"id\":\"u-\(int(1000))\"}}")
        case 4: return "\(int(100000)).5e-3"
        case 5: return "true"
        case 6: return "null"
        default: return "[[],{},[{\"user.id\":\"u-\(int(1000))\"}]]"
        }
    }

    /// One event (without line end).
    mutating func event(subjects: Int) -> String {
        var members: [String] = []
        let n = 10 + int(subjects)
        // The subject, in most events.
        let userKind = int(20)
        var userMembers: [String] = []
        switch userKind {
        case 0: members.append("\(key("user")):null")
        case 1: members.append("\(key("user")):[\(idValue(n))]")
        case 2: userMembers.append("\(key("id")):null")
        case 3: userMembers.append("\(key("id")):\"\"")
        case 4: userMembers.append("\(key("id")):\(pick(["true", "false", "{}", "[1]", "{\"id\":\"u-\(n)\"}"]))")
        case 5: break  // no user at all
        default: userMembers.append("\(key("id")):\(ws())\(idValue(n))")
        }
        if userKind >= 2 {
            if int(2) == 0 { userMembers.append("\"name\":\(Self.jsonString("Name \(n) \u{e9}"))") }
            if int(3) == 0 { userMembers.append("\"profile\":{\"id\":\"u-\(int(1000))\"}") }
            if int(3) == 0 { userMembers.append("\"ids\":[\"u-\(int(1000))\"]") }
            shuffle(&userMembers)
            if userKind != 5 {
                members.append("\(key("user")):\(ws()){\(userMembers.joined(separator: "," + ws()))}")
            }
        }
        members.append("\"ts\":\(1_700_000_000_000 + int(1_000_000_000))")
        members.append("\"event\":\(Self.jsonString(pick(["click", "view", "buy", "user.id", "\"user\":{\"id\":\"u-14\"}"])))")
        if int(2) == 0 { members.append("\"item\":{\"id\":\"u-\(int(1000))\",\"price\":\(int(10000)).\(int(100))}") }
        if int(3) == 0 { members.append("\"meta\":\(decoy())") }
        if int(4) == 0 { members.append("\"user_id\":\"u-\(int(1000))\"") }
        if int(5) == 0 { members.append("\"tags\":[\(decoy()),\(decoy())]") }
        shuffle(&members)
        return ws() + "{" + ws() + members.joined(separator: ws() + "," + ws()) + ws() + "}" + ws()
    }

    mutating func shuffle(_ a: inout [String]) {
        if a.count < 2 { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(i + 1)) }
    }

    /// `count` events with varied line ends, blank lines, and no newline after the last line.
    mutating func lines(_ count: Int, subjects: Int) -> [UInt8] {
        var s = ""
        for i in 0..<count {
            s += event(subjects: subjects)
            switch int(40) {
            case 0: s += "\r\n"
            case 1: s += "\n\n"
            case 2: s += "\n \t\r\n"
            default: s += "\n"
            }
            if i == count - 1 { while s.last == "\n" || s.last == "\r\n" || s.last == " " || s.last == "\t" { s.removeLast() } }
        }
        return Array(s.utf8)
    }
}
