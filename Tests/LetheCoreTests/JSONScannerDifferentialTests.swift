import Foundation
import Testing
@testable import LetheCore

#if canImport(Glibc)
    import Glibc
#endif

/// Differential fuzzing of the structural scan (AVX2 and portable classifiers) against the
/// byte-at-a-time scanner and against Foundation's JSONSerialization: seeded, bounded,
/// generated and mutated records with escapes, unicode, deep nesting and truncation, each
/// shifted across the 64-byte block boundaries and scanned again at the very end of a page.
@Suite struct JSONScannerDifferentialTests {
    static let paths = ["user.id", "user_id", "item.id", "user.profile.id", "a.a.a.a", "k"]

    /// What one engine made of a document.
    struct Outcome: Equatable, CustomStringConvertible {
        var error: JSONSyntaxError?
        var matches: [JSONFieldScanner.Match] = []
        var values: [[UInt8]?] = []
        var stoppedAt: Int?
        var description: String {
            if let error { return "error \(error)" }
            return "matches \(matches) values \(values.map { $0.map { String(decoding: $0, as: UTF8.self) } ?? "nil" }) stop \(String(describing: stoppedAt))"
        }
    }

    static func outcome(_ s: JSONFieldScanner, _ buf: UnsafeRawBufferPointer, stop: Bool) -> Outcome {
        do {
            try s.scan(buf, stopWhenFound: stop)
        } catch {
            return Outcome(error: error)
        }
        var o = Outcome(stoppedAt: s.stoppedAt)
        for i in s.paths.indices {
            o.matches.append(s.match(i))
            o.values.append(s.canonicalValue(i, in: buf))
        }
        return o
    }

    /// A string that stresses the escape logic: runs of backslashes of every length, escaped
    /// quotes, \u escapes and surrogate pairs, raw multi-byte UTF-8, sometimes long.
    static func nastyString(_ r: inout SplitMix) -> String {
        var s = "\""
        let n = r.chance(20) ? 40 + r.next(200) : r.next(12)
        for _ in 0..<n {
            switch r.next(12) {
            case 0: s += String(repeating: "\\\\", count: 1 + r.next(4))
            case 1: s += "\\\""
            case 2: s += ["\\n", "\\t", "\\/", "\\b", "\\f", "\\r"][r.next(6)]
            case 3: s += String(format: "\\u%04x", 0x20 + r.next(0xD000))
            case 4: s += "\\ud83d\\ude00"
            case 5: s += ["é", "中", "😀", "ß"][r.next(4)]
            case 6: s += ["{", "}", "[", "]", ":", ",", " "][r.next(7)]
            default: s.append(Gen.alphabet[r.next(Gen.alphabet.count)])
            }
        }
        return s + "\""
    }

    /// Deep nesting along `a.a.a.a` and beyond, arrays in between, sometimes past the depth limit.
    static func deep(_ r: inout SplitMix) -> String {
        let depth = r.chance(10) ? 500 + r.next(30) : 1 + r.next(40)
        var open = "", close = ""
        for d in 0..<depth {
            if r.chance(15) {
                open += "["
                close = "]" + close
            } else {
                open += d % 3 == 0 ? "{\"a\":" : "{\"x\":1,\"a\":"
                close = (r.chance(30) ? ",\"k\":\(nastyString(&r))}" : "}") + close
            }
        }
        let leaf = r.chance(50) ? nastyString(&r) : Gen.number(&r)
        return open + leaf + close
    }

    static func record(_ r: inout SplitMix) -> [UInt8] {
        var text: String
        switch r.next(10) {
        case 0: text = deep(&r)
        case 1: text = "{\"k\":\(nastyString(&r)),\"user\":{\"id\":\(nastyString(&r))},\"item\":{\"id\":\(Gen.number(&r))}}"
        case 2: text = "{\"user_id\":\(nastyString(&r)),\"user_id\":1}"  // a duplicate searched field
        case 3: text = "{\"us\\u0065r\":{\"id\":\"esc-key\"},\"n\":\(nastyString(&r))}"
        default: text = Gen.record(&r).1
        }
        return Array(text.utf8)
    }

    static let junk: [UInt8] = Array("{}[]\",:\\ \t\r\na1-.eE+0ntf".utf8) + [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xC3, 0xFF]

    static func mutate(_ b: [UInt8], _ r: inout SplitMix) -> [UInt8] {
        var bytes = b
        if bytes.isEmpty { return [junk[r.next(junk.count)]] }
        for _ in 0..<(1 + r.next(3)) {
            switch r.next(6) {
            case 0: bytes.removeLast(min(bytes.count, 1 + r.next(min(bytes.count, 70))))  // truncation
            case 1: bytes.remove(at: r.next(bytes.count))
            case 2: bytes.insert(junk[r.next(junk.count)], at: r.next(bytes.count + 1))
            case 3: bytes[r.next(bytes.count)] = junk[r.next(junk.count)]
            case 4: bytes.insert(contentsOf: Array(repeating: UInt8(ascii: "\\"), count: 1 + r.next(3)), at: r.next(bytes.count + 1))
            default:  // a span repeated (duplicate keys, stray closers)
                let a = r.next(bytes.count), l = min(bytes.count - a, 1 + r.next(30))
                bytes.insert(contentsOf: bytes[a..<(a + l)], at: r.next(bytes.count + 1))
            }
            if bytes.isEmpty { break }
        }
        return bytes
    }

    /// A buffer whose last byte is the last byte before an inaccessible page: a read past the
    /// document's end faults.
    final class PageEnd {
        let base: UnsafeMutableRawPointer
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size: Int
        init(pages: Int) {
            size = page * (pages + 1)
            base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            precondition(base != MAP_FAILED)
            precondition(mprotect(base + page * pages, page, PROT_NONE) == 0)
        }
        deinit { munmap(base, size) }
        func with<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R {
            let limit = size - page
            precondition(bytes.count <= limit)
            let start = base + (limit - bytes.count)
            bytes.withUnsafeBytes { if let b = $0.baseAddress { start.copyMemory(from: b, byteCount: $0.count) } }
            return body(UnsafeRawBufferPointer(start: start, count: bytes.count))
        }
    }

    @Test func structuralScanAgreesWithScalarScannerAndFoundation() throws {
        var rng = SplitMix(seed: 0x16_5ca4)
        let fp = Self.paths.map(FieldPath.init)
        let fast = JSONFieldScanner(paths: fp, engine: .structural)
        let portable = JSONFieldScanner(paths: fp, engine: .structuralPortable)
        let scalar = JSONFieldScanner(paths: fp, engine: .scalar)
        let pageEnd = PageEnd(pages: 256)
        var docs = 0, valid = 0, foundationChecked = 0, foundValues = 0, validScans = 0, validDeclined = 0
        for round in 0..<3_000 {
            let original = Self.record(&rng)
            for variant in 0..<3 {
                var bytes = variant == 0 ? original : Self.mutate(original, &rng)
                // Shift the document across block boundaries (leading whitespace is insignificant).
                if rng.chance(50) { bytes.insert(contentsOf: Array(repeating: UInt8(ascii: " "), count: rng.next(64)), at: 0) }
                docs += 1
                for stop in [false, true] {
                    let want = bytes.withUnsafeBytes { Self.outcome(scalar, $0, stop: stop) }
                    let before = fast.declined
                    let got = bytes.withUnsafeBytes { Self.outcome(fast, $0, stop: stop) }
                    if want.error == nil {
                        validScans += 1
                        if fast.declined > before { validDeclined += 1 }
                    }
                    let gotPortable = bytes.withUnsafeBytes { Self.outcome(portable, $0, stop: stop) }
                    let atPageEnd = pageEnd.with(bytes) { Self.outcome(round % 2 == 0 ? fast : portable, $0, stop: stop) }
                    let text = String(decoding: bytes, as: UTF8.self)
                    #expect(got == want, "\(text)")
                    #expect(gotPortable == want, "\(text)")
                    #expect(atPageEnd == want, "\(text)")
                    if stop { continue }
                    if want.error == nil { valid += 1 }
                    // The slow reference: validity, and the string and number values found.
                    if want.error?.reason == .duplicateField || want.error?.reason == .tooDeep { continue }
                    guard String(validating: bytes, as: UTF8.self) != nil else { continue }
                    let ref = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
                    // Foundation's known deviations from RFC 8259 (as in JSONFieldScannerTests).
                    if ref != nil && want.error != nil && text.contains(/,\s*[}\]]/) { continue }
                    if ref == nil && want.error == nil && text.contains(/[0-9][eE][+-]?[0-9]{3,}/) { continue }
                    if ref == nil && want.error == nil && text.contains(/\\u0000/) { continue }
                    #expect((ref != nil) == (want.error == nil), "\(text): \(want)")
                    guard let ref, want.error == nil else { continue }
                    foundationChecked += 1
                    for (i, path) in Self.paths.enumerated() {
                        let comps = path.split(separator: ".").map(String.init)
                        let r = Gen.refLookup(ref, comps)
                        switch want.matches[i].kind {
                        case .string:
                            #expect((r as? String).map { Array($0.utf8) } == want.values[i], "\(text) \(path)")
                            foundValues += 1
                        case .number:
                            #expect((r as? NSNumber)?.doubleValue == Double(String(decoding: want.values[i] ?? [], as: UTF8.self)), "\(text) \(path)")
                            foundValues += 1
                        case .absent: #expect(r == nil, "\(text) \(path)")
                        case .null: #expect(r is NSNull)
                        case .object: #expect(r is [String: Any])
                        case .array: #expect(r is [Any])
                        case .bool: #expect(r is NSNumber)
                        }
                    }
                }
            }
        }
        #expect(docs == 9_000)
        #expect(valid > 3_000 && valid < 8_000, "valid \(valid)")
        #expect(foundationChecked > 2_500)
        #expect(foundValues > 2_500)
        // The structural scan answered every valid document itself: it declines only what may be
        // malformed (the scalar scanner then names the error).
        #expect(validScans > 6_000)
        #expect(validDeclined == 0, "declined \(validDeclined) of \(validScans) valid scans")
    }

    /// Numbers and keys at the edges of the word-at-a-time code (digit runs read eight bytes at a
    /// time, keys compared by overlapping word loads): every length around 8 and 16, each followed
    /// by every kind of byte (digits' neighbours `/` and `:`, bytes that carry when 6 is added,
    /// letters, structure), at every offset in a word and against the end of a page; and keys one
    /// byte off the searched one at every position. The structural engines must agree with the
    /// scalar scanner, and decline no valid document.
    @Test func numbersAndKeysAtWordEdgesAgreeWithScalarScanner() throws {
        let pageEnd = PageEnd(pages: 4)
        var checked = 0, validScans = 0
        func agree(_ paths: [FieldPath], _ docs: [[UInt8]]) {
            let scalar = JSONFieldScanner(paths: paths, engine: .scalar)
            for engine in [JSONFieldScanner.Engine.structural, .structuralPortable] {
                let fast = JSONFieldScanner(paths: paths, engine: engine)
                for doc in docs {
                    for stop in [false, true] {
                        let want = doc.withUnsafeBytes { Self.outcome(scalar, $0, stop: stop) }
                        let before = fast.declined
                        let got = doc.withUnsafeBytes { Self.outcome(fast, $0, stop: stop) }
                        let atEnd = pageEnd.with(doc) { Self.outcome(fast, $0, stop: stop) }
                        let text = String(decoding: doc, as: UTF8.self)
                        #expect(got == want, "\(engine) \(text)")
                        #expect(atEnd == want, "\(engine) page end \(text)")
                        if want.error == nil {
                            validScans += 1
                            #expect(fast.declined == before, "\(engine) declined a valid document: \(text)")
                        }
                        checked += 1
                    }
                }
            }
        }
        // Numbers: integer, fraction and exponent runs of 1...19 digits, then one byte of each kind.
        let after: [[UInt8]] = [
            [], Array(",\"z\":1}".utf8), Array("}".utf8), Array(" }".utf8), [0x2F], [0x3A], [0x3F], [0x40], [0x61], [0xFA], [0xFF], [0x2E], [0x65],
        ]
        var numbers: [[UInt8]] = []
        for len in 1...19 {
            let digits = Array((0..<len).map { UInt8(ascii: "1") + UInt8($0 % 9) })
            for shape in 0..<5 {
                var n: [UInt8]
                switch shape {
                case 0: n = digits
                case 1: n = Array("-".utf8) + digits
                case 2: n = Array("0.".utf8) + digits
                case 3: n = Array("7e+".utf8) + digits
                default: n = digits + Array(".".utf8) + digits + Array("E".utf8) + digits.prefix(3)
                }
                for tail in after {
                    for shift in [0, 3, 7] {
                        let pad = Array(repeating: UInt8(ascii: " "), count: shift)
                        let closing = tail.isEmpty ? Array("}".utf8) : tail
                        numbers.append(pad + Array("{\"k\":".utf8) + n + closing + (closing.last == UInt8(ascii: "}") ? [] : Array("}".utf8)))
                        numbers.append(pad + n + tail)  // the whole document: the number ends the buffer
                    }
                }
            }
        }
        agree([FieldPath("k"), FieldPath("z")], numbers)
        // Keys: a searched key of 1...20 bytes against keys one byte off at each position, one byte
        // shorter or longer, and itself.
        for len in 1...20 {
            let key = (0..<len).map { UInt8(ascii: "a") + UInt8(($0 * 7) % 26) }
            var near: [[UInt8]] = [key, Array(key.dropLast()), key + [UInt8(ascii: "q")], [UInt8(ascii: "q")] + key]
            for i in 0..<len {
                var k = key
                k[i] ^= 0x01
                near.append(k)
            }
            var docs: [[UInt8]] = []
            for k in near {
                for shift in [0, 5] {
                    let pad = Array(repeating: UInt8(ascii: " "), count: shift)
                    docs.append(pad + Array("{\"".utf8) + k + Array("\":\"v\",\"o\":{\"".utf8) + k + Array("\":7}}".utf8))
                }
            }
            let name = String(decoding: key, as: UTF8.self)
            agree([FieldPath(name), FieldPath("o.\(name)")], docs)
        }
        #expect(checked > 10_000, "checked \(checked)")
        #expect(validScans > 3_000, "valid \(validScans)")
    }

    /// A random value of nested objects and arrays whose keys are the searched components (so
    /// paths end at objects, arrays, literals and scalars at every depth, and duplicates occur),
    /// with whitespace around every token now and then.
    static func nested(_ r: inout SplitMix, depth: Int) -> String {
        func ws() -> String { r.chance(15) ? [" ", "\n", "\t ", "\r\n  "][r.next(4)] : "" }
        let keys = ["a", "b", "id", "user", "k", "x"]
        let kind = depth >= 6 ? 2 + r.next(5) : r.next(7)
        switch kind {
        case 0:
            let n = r.next(5)
            var members: [String] = []
            for _ in 0..<n { members.append(ws() + "\"\(keys[r.next(keys.count)])\"" + ws() + ":" + ws() + nested(&r, depth: depth + 1) + ws()) }
            return "{" + ws() + members.joined(separator: ",") + "}"
        case 1:
            let n = r.next(4)
            var items: [String] = []
            for _ in 0..<n { items.append(ws() + nested(&r, depth: depth + 1) + ws()) }
            return "[" + ws() + items.joined(separator: ",") + "]"
        case 2: return nastyString(&r)
        case 3: return Gen.number(&r)
        case 4: return ["true", "false", "null"][r.next(3)]
        default: return "\"v\(r.next(100))\""
        }
    }

    /// The walk's grammar states and early stop (a container's frame kept in a register and the
    /// ones around it on the stack; the stop asked only after a recorded scalar at depth 1 and when
    /// a container closes back to depth 1): nested objects and arrays with the searched keys at
    /// every depth, top-level scalars and arrays followed by whitespace or more data, and their
    /// mutations. Both structural engines must agree with the scalar scanner — error, matches,
    /// values and where an early stop stopped — and decline no valid generated document.
    @Test func nestedContainersAndEarlyStopsAgreeWithScalarScanner() throws {
        var rng = SplitMix(seed: 0x16_5ca7)
        let pageEnd = PageEnd(pages: 4)
        let pathSets: [[String]] = [["a"], ["user.id"], ["a.b", "k"], ["a.a.a", "x"], ["user.id", "user"], ["b.id", "a.k", "id"]]
        var checked = 0, valid = 0, stopped = 0
        for (i, names) in pathSets.enumerated() {
            let paths = names.map { FieldPath($0) }
            let scalar = JSONFieldScanner(paths: paths, engine: .scalar)
            let fast = [JSONFieldScanner(paths: paths, engine: .structural), JSONFieldScanner(paths: paths, engine: .structuralPortable)]
            for j in 0..<1_500 {
                var text =
                    (i + j) % 5 == 0
                    ? Self.nested(&rng, depth: 0)
                    : "{" + "\"\(["a", "user", "b", "k"][rng.next(4)])\":" + Self.nested(&rng, depth: 1) + ",\"x\":" + Self.nested(&rng, depth: 1) + "}"
                if rng.chance(10) { text += [" ", "\n", " 1", ",{}", "}", "]"][rng.next(6)] }
                var doc = Array(text.utf8)
                let mutated = rng.chance(25)
                if mutated { doc = Self.mutate(doc, &rng) }
                for stop in [false, true] {
                    let want = doc.withUnsafeBytes { Self.outcome(scalar, $0, stop: stop) }
                    for s in fast {
                        let before = s.declined
                        let got = doc.withUnsafeBytes { Self.outcome(s, $0, stop: stop) }
                        let atEnd = doc.count <= 4 * 4096 ? pageEnd.with(doc) { Self.outcome(s, $0, stop: stop) } : got
                        let shown = String(decoding: doc, as: UTF8.self)
                        #expect(got == want, "\(s.engine) stop \(stop) \(shown)")
                        #expect(atEnd == want, "\(s.engine) page end, stop \(stop) \(shown)")
                        if want.error == nil && !mutated {
                            #expect(s.declined == before, "\(s.engine) declined a valid document: \(text)")
                        }
                        checked += 1
                    }
                    if want.error == nil { valid += 1 }
                    if want.stoppedAt != nil { stopped += 1 }
                }
            }
        }
        #expect(checked > 30_000, "checked \(checked)")
        #expect(valid > 5_000, "valid \(valid)")
        #expect(stopped > 200, "stopped early \(stopped)")
    }

    /// `locate` (the stream filter's `--validate minimal` under `pass`) reads a document as if it were
    /// valid, up to the first occurrence of every path: on every valid generated document whose top
    /// level is an object it must find exactly the full scalar scan's matches and values (`.found`), or
    /// say a path is absent (`.absent`) — never decline — and decline every other top level; on
    /// mutated documents it may answer anything but must stay inside the buffer (also placed at the
    /// end of a page) and give matches whose canonical values can be read. Documents: the differential
    /// records (escaped keys and values, decoys, duplicates, deep nesting) and nested objects and
    /// arrays with the searched keys at every depth and brackets inside strings, shifted across blocks.
    @Test func locateFindsWhatTheFullScanFindsInValidDocuments() throws {
        var rng = SplitMix(seed: 0x16_5ca9)
        let pageEnd = PageEnd(pages: 256)
        let pathSets: [[String]] = [["user.id", "item.id"], ["a"], ["user.id"], ["a.b", "k"], ["a.a.a", "x"], ["user.id", "user"], ["b.id", "a.k", "id"]]
        var found = 0, absent = 0, checkedValid = 0, checkedMutated = 0
        for (i, names) in pathSets.enumerated() {
            let paths = names.map { FieldPath($0) }
            let scalar = JSONFieldScanner(paths: paths, engine: .scalar)
            let engines = [JSONFieldScanner(paths: paths, engine: .structural), JSONFieldScanner(paths: paths, engine: .structuralPortable)]
            for j in 0..<(i == 0 ? 3_000 : 1_200) {
                var doc: [UInt8]
                if i == 0 {
                    doc = Self.record(&rng)
                } else if (i + j) % 5 == 0 {
                    doc = Array(Self.nested(&rng, depth: 0).utf8)
                } else {
                    let first = ["a", "user", "b", "k", "x"][rng.next(5)]
                    doc = Array(("{\"\(first)\":" + Self.nested(&rng, depth: 1) + ",\"x\":" + Self.nested(&rng, depth: 1) + "}").utf8)
                }
                if rng.chance(50) { doc.insert(contentsOf: Array(repeating: UInt8(ascii: " "), count: rng.next(64)), at: 0) }
                let mutated = rng.chance(30)
                if mutated { doc = Self.mutate(doc, &rng) }
                let want = doc.withUnsafeBytes { Self.outcome(scalar, $0, stop: false) }
                let isObject = doc.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) } == UInt8(ascii: "{")
                let shown = String(decoding: doc, as: UTF8.self)
                for s in engines {
                    func run(_ b: UnsafeRawBufferPointer) -> (JSONFieldScanner.Located, Outcome) {
                        let r = s.locate(b)
                        var o = Outcome()
                        if r == .found {
                            for k in s.paths.indices {
                                let m = s.match(k)
                                #expect(m.start >= 0 && m.start <= m.end && m.end <= b.count, "\(s.engine) \(shown)")
                                o.matches.append(m)
                                o.values.append(s.canonicalValue(k, in: b))
                            }
                        }
                        return (r, o)
                    }
                    let (got, matches) = doc.withUnsafeBytes { run($0) }
                    let (atEnd, matchesAtEnd) = pageEnd.with(doc) { run($0) }
                    #expect(atEnd == got && matchesAtEnd == matches, "\(s.engine) page end \(shown)")
                    guard want.error == nil else {
                        checkedMutated += 1
                        continue
                    }
                    checkedValid += 1
                    if !isObject {
                        #expect(got == .declined, "\(s.engine) \(shown)")
                    } else if want.matches.allSatisfy({ $0.kind != .absent }) {
                        #expect(got == .found, "\(s.engine) \(shown)")
                        #expect(matches.matches == want.matches && matches.values == want.values, "\(s.engine) \(shown)")
                        found += 1
                    } else {
                        #expect(got == .absent, "\(s.engine) \(shown)")
                        absent += 1
                    }
                }
            }
        }
        #expect(found > 1_500 && absent > 3_000 && checkedMutated > 2_000, "found \(found) absent \(absent) mutated \(checkedMutated)")
        #expect(checkedValid > 10_000, "valid \(checkedValid)")
    }

    /// `scanLines` (a window of whole lines classified once, each line's end found by the same pass) against
    /// each line's content scanned alone by the scalar scanner: generated records and their mutations (a
    /// line feed splitting a record, so that a string is left open at a line's end; a control byte inside a
    /// string; a stray quote; escapes; truncation), blank and whitespace-only lines, CRLF endings, leading
    /// whitespace shifting lines across blocks, windows of more lines than one C call takes, and at the very
    /// end of a page. The lines must be split where a line feed is; a blank line is `.blank`; a line whose
    /// content is valid is `.scanned` with the scalar scanner's matches and values — or `.declined` only when
    /// a malformed line starts in the 64 bytes after its line feed (the block its end is classified in); a
    /// malformed line is `.declined` (its error is then the scalar scanner's).
    @Test func linesScannedTogetherAgreeWithEachLineScannedAlone() throws {
        var rng = SplitMix(seed: 0x16_11e5)
        let fp = Self.paths.map(FieldPath.init)
        let scalar = JSONFieldScanner(paths: fp, engine: .scalar)
        let engines = [JSONFieldScanner(paths: fp, engine: .structural), JSONFieldScanner(paths: fp, engine: .structuralPortable)]
        let pageEnd = PageEnd(pages: 2048)
        var lines = 0, scanned = 0, validDeclined = 0, malformed = 0, blanks = 0, windows = 0
        for round in 0..<240 {
            var window: [UInt8] = []
            for _ in 0..<(1 + rng.next(400)) {
                var bytes: [UInt8]
                switch rng.next(12) {
                case 0: bytes = (0..<rng.next(4)).map { _ in [0x20, 0x09, 0x0D][rng.next(3)] }
                case 1, 2: bytes = Self.mutate(Self.record(&rng), &rng)
                case 3:
                    bytes = Self.record(&rng)
                    bytes.insert([UInt8(ascii: "\""), 0x0A, 0x09, 0x01][rng.next(4)], at: rng.next(bytes.count + 1))
                default: bytes = Self.record(&rng)
                }
                if rng.chance(20) { bytes.insert(contentsOf: Array(repeating: UInt8(ascii: " "), count: rng.next(64)), at: 0) }
                if rng.chance(10) { bytes.append(0x0D) }
                window += bytes + [0x0A]
            }
            // The reference: split at every line feed, each line's content alone.
            var want: [(line: [UInt8], end: Int, outcome: Outcome?)] = []
            var start = 0
            for (i, b) in window.enumerated() where b == 0x0A {
                let content = Array(window[start..<i])
                let blank = content.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                want.append((Array(window[start...i]), i, blank ? nil : content.withUnsafeBytes { Self.outcome(scalar, $0, stop: false) }))
                start = i + 1
            }
            for (e, engine) in engines.enumerated() {
                for atPageEnd in [false, true] where !atPageEnd || (round + e) % 2 == 0 {
                    var got: [(line: [UInt8], outcome: JSONFieldScanner.LineOutcome, result: Outcome?)] = []
                    func collect(_ buf: UnsafeRawBufferPointer) {
                        engine.scanLines(buf) { line, contentLength, outcome in
                            #expect(contentLength == line.count - 1 && line[contentLength] == 0x0A)
                            var result: Outcome? = nil
                            if outcome == .scanned {
                                let content = UnsafeRawBufferPointer(rebasing: line[0..<contentLength])
                                var o = Outcome(stoppedAt: engine.stoppedAt)
                                for k in engine.paths.indices {
                                    o.matches.append(engine.match(k))
                                    o.values.append(engine.canonicalValue(k, in: content))
                                }
                                result = o
                            }
                            got.append((Array(line), outcome, result))
                        }
                    }
                    if atPageEnd { pageEnd.with(window) { collect($0) } } else { window.withUnsafeBytes { collect($0) } }
                    windows += 1
                    #expect(got.count == want.count, "round \(round) engine \(e)")
                    for (i, w) in want.enumerated() where i < got.count {
                        let g = got[i]
                        let text = String(decoding: w.line, as: UTF8.self)
                        #expect(g.line == w.line, "round \(round) line \(i)")
                        lines += 1
                        // A line may decline for a malformed line after it whose start is in the 64 bytes
                        // after this line's end (the block this line's line feed is classified in).
                        let neighbourMalformed = want[(i + 1)...].prefix { $0.end - $0.line.count + 1 <= w.end + 64 }.contains {
                            $0.outcome?.error != nil
                        }
                        guard let wo = w.outcome else {
                            #expect(g.outcome == .blank || (g.outcome == .declined && neighbourMalformed), "\(text)")
                            blanks += 1
                            continue
                        }
                        if wo.error != nil {
                            #expect(g.outcome == .declined, "malformed, \(g.outcome): \(text)")
                            malformed += 1
                            continue
                        }
                        switch g.outcome {
                        case .scanned:
                            scanned += 1
                            #expect(g.result == wo, "\(text)")
                        case .declined:
                            #expect(neighbourMalformed, "a valid line declined: \(text)")
                            validDeclined += 1
                        case .blank:
                            Issue.record("a record taken for a blank line: \(text)")
                        }
                    }
                }
            }
        }
        #expect(windows > 700)
        #expect(
            lines > 80_000 && scanned > 30_000 && malformed > 5_000 && blanks > 5_000,
            "lines \(lines) scanned \(scanned) malformed \(malformed) blanks \(blanks)")
        #expect(validDeclined * 10 < scanned, "declined \(validDeclined) valid lines of \(scanned)")
    }

    /// The structural scan answers ordinary valid records itself, with either classifier.
    @Test func ordinaryRecordsAreNotDeclined() throws {
        var rng = SplitMix(seed: 7)
        for engine in [JSONFieldScanner.Engine.structural, .structuralPortable] {
            let s = JSONFieldScanner(paths: [FieldPath("user.id"), FieldPath("item.id")], engine: engine)
            for _ in 0..<500 {
                let bytes = Array(Gen.record(&rng).1.utf8)
                try bytes.withUnsafeBytes { try s.scan($0) }
            }
            #expect(s.declined == 0, "\(engine): \(s.declined)")
        }
    }

    @Test func structuralScanUsesAVX2WhereTheCPUHasIt() throws {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }.map { $0.split(separator: " ").map(String.init) } ?? []
        if flags.contains("avx2") && flags.contains("pclmulqdq") && flags.contains("bmi2") {
            #expect(JSONFieldScanner.structuralUsesAVX2)
        }
    }
}
