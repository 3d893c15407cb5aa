import CLetheJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A syntax error in a JSON document, with the byte offset where it was found.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Reason: String, Sendable, Equatable {
        case unexpectedEnd = "unexpected end of input (unbalanced brackets?)"
        case unexpectedByte = "unexpected character"
        case unterminatedString = "unterminated string"
        case controlCharacter = "control character inside a string"
        case invalidEscape = "invalid escape sequence"
        case invalidUnicodeEscape = "invalid \\u escape (bad hex digits or unpaired surrogate)"
        case invalidNumber = "invalid number"
        case invalidLiteral = "invalid literal (expected true, false or null)"
        case expectedKey = "expected a string key"
        case expectedColon = "expected ':' after a key"
        case trailingGarbage = "unexpected data after the end of the document"
        case tooDeep = "nesting too deep"
        case duplicateField = "a searched field appears twice"
        case empty = "empty document"
    }
    /// 0-based byte offset inside the document.
    public let offset: Int
    public let reason: Reason
    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}

/// Finds the values of given fields, by exact path, in one JSON document (one JSON
/// Lines record) held in a buffer, and validates the document's syntax.
///
/// * A path matches only at its exact position: `user.id` is the key `id` of the
///   object under the top-level key `user`; it never matches `item.id`, a deeper
///   `user.profile.id`, or text inside a string. Keys match in any order, and keys
///   written with escapes match after unescaping. Paths do not descend into arrays.
/// * The whole document is validated (RFC 8259 grammar: brackets, strings, escapes,
///   numbers, literals, no trailing data), even after every path was found: a
///   record that is not valid JSON is never half-read. The scan does not stop early;
///   validating the rest costs about as much as a structural skip would.
/// * A searched field that occurs twice in the same object is an error
///   (`duplicateField`): the record's subject would be ambiguous.
/// * No allocation per document unless a key inside a searched object or a found
///   value is written with escapes (then an internal scratch buffer may grow once).
///
/// Two engines, one answer (`Engine`): the structural scan (CLetheJSON) classifies each
/// 64-byte block at once into bitmasks of quotes, string interiors, structural characters
/// and the first bytes of numbers and literals (AVX2 and a carry-less multiply where the CPU
/// has them, a portable classifier elsewhere), then walks only those positions. Whenever it
/// declines — the document may be malformed, a key in a searched object is escaped, a field
/// is duplicated, nesting is too deep — the byte-at-a-time scalar scanner decides and names
/// the error, so matches and errors are the scalar scanner's on every input.
///
/// One scanner per task: it holds mutable scratch state and is not thread-safe.
public final class JSONFieldScanner {
    /// How `scan` reads a document.
    public enum Engine: Sendable, Equatable {
        /// The two-stage structural scan, with the scalar scanner deciding what it declines.
        case structural
        /// The same with the portable classifier (no AVX2): for tests.
        case structuralPortable
        /// Only the byte-at-a-time scanner.
        case scalar
    }

    /// The kind of value found at a path.
    public enum Kind: UInt8, Sendable, Equatable {
        case absent, null, string, number, bool, object, array
        /// True for the kinds that can identify a subject (string, number).
        public var isScalarValue: Bool { self == .string || self == .number }
    }

    /// What was found at one path. For strings `start..<end` is the content between
    /// the quotes (still escaped when `hasEscapes`); for numbers the literal; for
    /// other kinds the first byte of the value.
    public struct Match: Sendable, Equatable {
        public var kind: Kind
        public var start: Int
        public var end: Int
        public var hasEscapes: Bool
        public static let absent = Match(kind: .absent, start: 0, end: 0, hasEscapes: false)
    }

    /// The paths searched, in the order given.
    public let paths: [FieldPath]
    /// The deepest nesting accepted.
    public static let maxDepth = 512

    // Trie of path components, nodes in breadth-first order so a node's children are contiguous.
    private let keyBytes: [UInt8]
    private let keyStart: [Int]
    private let keyLength: [Int]
    private let childStart: [Int32]
    private let childCount: [Int32]
    private let terminalStart: [Int32]
    private let terminalCount: [Int32]
    private let terminals: [Int32]

    private let keyStorage: UnsafeMutablePointer<UInt8>
    private let results: UnsafeMutablePointer<Match>
    private let stack: UnsafeMutablePointer<Int32>
    private var scratch: UnsafeMutablePointer<UInt8>
    private var scratchCapacity: Int
    /// Paths found so far in the current scan.
    private var found = 0
    /// The engine `scan` uses.
    public let engine: Engine
    // The trie as the C scan reads it, and its results.
    private let cTrie: UnsafeMutablePointer<lethe_json_trie>
    private let cResults: UnsafeMutablePointer<lethe_json_match>
    private let cStack: UnsafeMutablePointer<Int32>
    private let cArrays: [UnsafeMutableRawPointer]
    // `scanLines`: the lines of one C call and their matches (`linesPerCall` of each, times the paths).
    private let cLines: UnsafeMutablePointer<lethe_json_line>
    private let cLineResults: UnsafeMutablePointer<lethe_json_match>
    /// Lines `scanLines` hands the C scan at a time (their matches stay in the caches).
    static let linesPerCall = 128
    /// Documents the structural scan declined (the scalar scanner read them): for tests and profiles.
    public private(set) var declined = 0

    /// Whether the structural scan classifies with AVX2 on this CPU.
    public static var structuralUsesAVX2: Bool { lethe_json_uses_avx2() != 0 }

    /// A scanner for `paths` (at least one).
    public init(paths: [FieldPath], engine: Engine = .structural) {
        precondition(!paths.isEmpty, "at least one path")
        self.paths = paths
        self.engine = engine
        // Build a tree, then flatten it breadth first.
        final class TNode {
            var key: [UInt8]
            var children: [TNode] = []
            var terminals: [Int32] = []
            init(key: [UInt8]) { self.key = key }
        }
        let root = TNode(key: [])
        for (pi, path) in paths.enumerated() {
            var node = root
            for comp in path.components {
                if let c = node.children.first(where: { $0.key == comp }) {
                    node = c
                } else {
                    let c = TNode(key: comp)
                    node.children.append(c)
                    node = c
                }
            }
            node.terminals.append(Int32(pi))
        }
        var order: [TNode] = [root]
        var idx = 0
        while idx < order.count {
            order.append(contentsOf: order[idx].children)
            idx += 1
        }
        var kb: [UInt8] = [], ks: [Int] = [], kl: [Int] = []
        var cs: [Int32] = [], cc: [Int32] = [], ts: [Int32] = [], tc: [Int32] = [], terms: [Int32] = []
        var nextChild: Int32 = 1
        for node in order {
            ks.append(kb.count)
            kl.append(node.key.count)
            kb.append(contentsOf: node.key)
            cs.append(nextChild)
            cc.append(Int32(node.children.count))
            nextChild += Int32(node.children.count)
            ts.append(Int32(terms.count))
            tc.append(Int32(node.terminals.count))
            terms.append(contentsOf: node.terminals)
        }
        keyBytes = kb; keyStart = ks; keyLength = kl
        childStart = cs; childCount = cc; terminalStart = ts; terminalCount = tc; terminals = terms
        keyStorage = .allocate(capacity: max(kb.count, 1))
        keyStorage.initialize(repeating: 0, count: max(kb.count, 1))
        for (j, b) in kb.enumerated() { keyStorage[j] = b }
        results = .allocate(capacity: paths.count)
        results.initialize(repeating: .absent, count: paths.count)
        stack = .allocate(capacity: Self.maxDepth)
        stack.initialize(repeating: 0, count: Self.maxDepth)
        scratchCapacity = 256
        scratch = .allocate(capacity: scratchCapacity)
        func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            if !a.isEmpty { p.initialize(from: a, count: a.count) }
            return p
        }
        let cKeyStart = copy(ks.map(Int64.init)), cKeyLength = copy(kl.map(Int64.init))
        let cChildStart = copy(cs), cChildCount = copy(cc), cTermStart = copy(ts), cTermCount = copy(tc)
        let cTerms = copy(terms)
        cArrays = [
            UnsafeMutableRawPointer(cKeyStart), UnsafeMutableRawPointer(cKeyLength), UnsafeMutableRawPointer(cChildStart),
            UnsafeMutableRawPointer(cChildCount), UnsafeMutableRawPointer(cTermStart), UnsafeMutableRawPointer(cTermCount),
            UnsafeMutableRawPointer(cTerms),
        ]
        cTrie = .allocate(capacity: 1)
        cTrie.initialize(
            to: lethe_json_trie(
                key_bytes: UnsafePointer(keyStorage), key_start: cKeyStart, key_len: cKeyLength, child_start: cChildStart,
                child_count: cChildCount, term_start: cTermStart, term_count: cTermCount, terms: cTerms,
                path_count: Int32(paths.count)))
        cResults = .allocate(capacity: paths.count)
        cResults.initialize(repeating: lethe_json_match(), count: paths.count)
        cStack = .allocate(capacity: Int(LETHE_JSON_MAX_DEPTH))
        cLines = .allocate(capacity: Self.linesPerCall)
        cLines.initialize(repeating: lethe_json_line(), count: Self.linesPerCall)
        cLineResults = .allocate(capacity: Self.linesPerCall * paths.count)
        cLineResults.initialize(repeating: lethe_json_match(), count: Self.linesPerCall * paths.count)
        stopStorage = .allocate(capacity: 1)
        stopStorage.initialize(to: -1)
    }

    deinit {
        for a in cArrays { a.deallocate() }
        cTrie.deallocate()
        cResults.deallocate()
        cStack.deallocate()
        cLines.deallocate()
        cLineResults.deallocate()
        stopStorage.deallocate()
        results.deinitialize(count: paths.count)
        results.deallocate()
        stack.deallocate()
        scratch.deallocate()
        keyStorage.deallocate()
    }

    /// What the last successful `scan` found for path `index`.
    public func match(_ index: Int) -> Match {
        precondition(index >= 0 && index < paths.count)
        return results[index]
    }

    /// Calls `body` with the canonical bytes of path `index`'s value in `document`
    /// (the document given to the last `scan`): a string's unescaped UTF-8 content,
    /// a number's literal text. Returns nil for the other kinds.
    /// The buffer is valid only inside `body`.
    public func withCanonicalValue<R>(
        _ index: Int, in document: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R? {
        let m = match(index)
        guard m.kind.isScalarValue, let base = document.baseAddress else { return nil }
        precondition(m.end <= document.count)
        if !m.hasEscapes {
            return try body(UnsafeRawBufferPointer(start: base + m.start, count: m.end - m.start))
        }
        let n = unescape(base.assumingMemoryBound(to: UInt8.self), m.start, m.end)
        return try body(UnsafeRawBufferPointer(start: scratch, count: n))
    }

    /// The canonical bytes of path `index`'s value as an array (nil unless a string or number).
    public func canonicalValue(_ index: Int, in document: UnsafeRawBufferPointer) -> [UInt8]? {
        withCanonicalValue(index, in: document) { Array($0) }
    }

    /// Where the last `scan(_:stopWhenFound:)` stopped early (the offset of the first byte
    /// not read), or nil if it read the whole document.
    public var stoppedAt: Int? {
        let v = stopStorage.pointee
        return v >= 0 ? v : nil
    }
    /// `stoppedAt` as the scans write it (-1: read whole). Raw storage: the stream filter reads
    /// it once a line, and a class's stored `var` would cost a dynamic exclusivity check
    /// (`swift_beginAccess`, ~70 instructions) on every read from outside the class.
    private let stopStorage: UnsafeMutablePointer<Int>

    /// Scans one document. On success `match(_:)` tells what was found per path;
    /// on a syntax error the matches are unspecified.
    ///
    /// With `stopWhenFound`, the scan returns as soon as every path was found *and* the
    /// scan is back in the top-level object (every object on a searched path closed, so
    /// duplicates below the top level were checked); `stoppedAt` tells where. The bytes
    /// after that point — the rest of the top-level object's members — are then not
    /// validated and not checked for a duplicate top-level key: the caller decides what
    /// to accept (see `StreamFilter`). Only documents whose top level is an object stop early.
    public func scan(_ document: UnsafeRawBufferPointer, stopWhenFound: Bool = false) throws(JSONSyntaxError) {
        if engine != .scalar, let raw = document.baseAddress, document.count > 0 {
            var stop: Int64 = -1
            let ok = lethe_json_scan(
                cTrie, raw.assumingMemoryBound(to: UInt8.self), document.count, stopWhenFound ? 1 : 0, cResults, &stop,
                cStack, engine == .structuralPortable ? 1 : 0)
            if ok != 0 {
                for k in 0..<paths.count {  // (`found` is the scalar scan's own: it resets it)
                    let r = cResults[k]
                    let kind = Kind(rawValue: r.kind) ?? .absent
                    results[k] = Match(kind: kind, start: Int(r.start), end: Int(r.end), hasEscapes: r.escaped != 0)
                }
                stopStorage.pointee = stop >= 0 ? Int(stop) : -1
                return
            }
            declined += 1
        }
        try scanScalar(document, stopWhenFound: stopWhenFound)
    }

    /// How `scanLines` read one line.
    public enum LineOutcome: Sendable, Equatable {
        /// Valid: `match(_:)` tells what the line holds, as after `scan` of its content.
        case scanned
        /// Empty or whitespace only.
        case blank
        /// Not decided: `scan` the line's content (which then decides, or names the error).
        case declined
    }

    /// Scans each line of `window` — whole JSON Lines lines: its last byte is a line feed — as `scan` of
    /// the line's content would, with one structural classification of the window's bytes instead of one
    /// from each line's start (and each line's end found by that same pass), and calls
    /// `body(line, contentLength, outcome)` for the lines in order: `line` includes its line feed,
    /// `contentLength` does not. Match offsets are into the line. A line the structural scan does not
    /// decide (a malformed one among them) is `.declined`: the caller `scan`s its content.
    public func scanLines(
        _ window: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Int, LineOutcome) throws -> Void
    ) rethrows {
        guard let base = window.baseAddress, window.count > 0 else { return }
        let n = window.count
        precondition(window[n - 1] == 0x0A, "scanLines needs whole lines")
        let pathCount = paths.count
        var start = 0
        guard engine != .scalar else {
            while start < n {
                let end = UnsafeRawPointer(memchr(base + start, 0x0A, n - start)!) - base
                try body(UnsafeRawBufferPointer(start: base + start, count: end + 1 - start), end - start, .declined)
                start = end + 1
            }
            return
        }
        let portable: Int32 = engine == .structuralPortable ? 1 : 0
        while start < n {
            let done = Int(
                lethe_json_scan_lines(
                    cTrie, base.assumingMemoryBound(to: UInt8.self) + start, n - start, Int32(Self.linesPerCall), cLines, cLineResults,
                    cStack, portable))
            precondition(done > 0)
            for i in 0..<done {
                let l = cLines[i]
                let ls = Int(l.start), le = Int(l.end)
                let line = UnsafeRawBufferPointer(start: base + start + ls, count: le + 1 - ls)
                switch l.status {
                case 1:
                    for k in 0..<pathCount {
                        let r = cLineResults[i &* pathCount &+ k]
                        let kind = Kind(rawValue: r.kind) ?? .absent
                        results[k] =
                            kind == .absent
                            ? .absent : Match(kind: kind, start: Int(r.start) - ls, end: Int(r.end) - ls, hasEscapes: r.escaped != 0)
                    }
                    stopStorage.pointee = -1
                    try body(line, le - ls, .scanned)
                case 2:
                    try body(line, le - ls, .blank)
                default:
                    try body(line, le - ls, .declined)
                }
            }
            start += Int(cLines[done - 1].end) + 1
        }
    }

    /// What `locate(_:)` found.
    public enum Located: Sendable, Equatable {
        /// Every path was found: `match(_:)` tells where.
        case found
        /// The top-level object closed with some path absent.
        case absent
        /// Not answered (see `locate(_:)`): `scan` decides.
        case declined
    }

    /// Finds the first occurrence of every path in a document whose top level is an object,
    /// reading it only up to there and **as if it were valid JSON**: the grammar is not checked,
    /// and members off every path are stepped over by their structure alone. For a valid document
    /// `.found` gives the matches `scan` gives, and `.absent` means some path is absent; for a
    /// malformed one either answer may be anything but an out-of-bounds match (a found string's
    /// escapes are validated and a found number is one). For the stream filter's
    /// `--validate minimal` under `--on-malformed pass`, where a line is kept unless its subject is
    /// forgotten and the whole line is valid (it validates a forgotten subject's line with `scan`).
    ///
    /// `.declined` (then call `scan`): the top level is not an object, a path occurs twice, a key
    /// with escapes inside a searched object is longer than 256 bytes or badly escaped, the
    /// document ends first, the engine is `.scalar`, or the document is empty.
    public func locate(_ document: UnsafeRawBufferPointer) -> Located {
        guard engine != .scalar, let raw = document.baseAddress, document.count > 0 else { return .declined }
        let r = lethe_json_locate(
            cTrie, raw.assumingMemoryBound(to: UInt8.self), document.count, cResults, cStack,
            engine == .structuralPortable ? 1 : 0)
        if r == 0 { return .declined }
        if r == 2 { return .absent }
        for k in 0..<paths.count {
            let m = cResults[k]
            results[k] = Match(kind: Kind(rawValue: m.kind) ?? .absent, start: Int(m.start), end: Int(m.end), hasEscapes: m.escaped != 0)
        }
        stopStorage.pointee = -1
        return .found
    }

    /// The byte-at-a-time scan: exact errors, and the answer whenever the structural scan declines.
    private func scanScalar(_ document: UnsafeRawBufferPointer, stopWhenFound: Bool) throws(JSONSyntaxError) {
        let pathCount = paths.count
        for k in 0..<pathCount { results[k] = .absent }
        found = 0
        stopStorage.pointee = -1
        let stopAt = stopWhenFound ? pathCount : Int.max
        let n = document.count
        guard n > 0, let raw = document.baseAddress else {
            throw JSONSyntaxError(offset: 0, reason: .empty)
        }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        var i = skipWS(p, 0, n)
        if i == n { throw JSONSyntaxError(offset: i, reason: .empty) }
        var depth = 0
        // The trie node of the value about to be parsed, or -1 when it is not on any path.
        var pending: Int32 = 0
        var keyOffset = 0

        valueLoop: while true {
            i = skipWS(p, i, n)
            guard i < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
            let c = p[i]
            switch c {
            case 0x7B:  // {
                if pending >= 0 { try record(pending, .object, i, i + 1, false, keyOffset) }
                guard depth < Self.maxDepth else { throw JSONSyntaxError(offset: i, reason: .tooDeep) }
                let node: Int32 = (pending >= 0 && childCount[Int(pending)] > 0) ? pending : -1
                stack[depth] = node + 1
                depth += 1
                i = skipWS(p, i + 1, n)
                guard i < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
                if p[i] == 0x7D {
                    i += 1
                    depth -= 1
                } else {
                    keyOffset = i
                    (pending, i) = try parseKey(p, i, n, node)
                    continue valueLoop
                }
            case 0x5B:  // [
                if pending >= 0 { try record(pending, .array, i, i + 1, false, keyOffset) }
                guard depth < Self.maxDepth else { throw JSONSyntaxError(offset: i, reason: .tooDeep) }
                stack[depth] = -1
                depth += 1
                i = skipWS(p, i + 1, n)
                guard i < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
                if p[i] == 0x5D {
                    i += 1
                    depth -= 1
                } else {
                    pending = -1
                    continue valueLoop
                }
            case 0x22:  // "
                let (end, esc) = try skipString(p, i + 1, n)
                if pending >= 0 { try record(pending, .string, i + 1, end, esc, keyOffset) }
                i = end + 1
            case 0x2D, 0x30...0x39:
                let end = try skipNumber(p, i, n)
                if pending >= 0 { try record(pending, .number, i, end, false, keyOffset) }
                i = end
            case 0x74:  // true
                try literal(p, i, n, 0x74, 0x72, 0x75, 0x65)
                if pending >= 0 { try record(pending, .bool, i, i + 4, false, keyOffset) }
                i += 4
            case 0x66:  // false
                guard i + 5 <= n, p[i + 1] == 0x61, p[i + 2] == 0x6C, p[i + 3] == 0x73, p[i + 4] == 0x65 else {
                    throw JSONSyntaxError(offset: i, reason: .invalidLiteral)
                }
                if pending >= 0 { try record(pending, .bool, i, i + 5, false, keyOffset) }
                i += 5
            case 0x6E:  // null
                try literal(p, i, n, 0x6E, 0x75, 0x6C, 0x6C)
                if pending >= 0 { try record(pending, .null, i, i + 4, false, keyOffset) }
                i += 4
            default:
                throw JSONSyntaxError(offset: i, reason: .unexpectedByte)
            }
            // After a value: a separator, a closer, or the end.
            while true {
                if depth == 1 && found >= stopAt {
                    stopStorage.pointee = i
                    return
                }
                i = skipWS(p, i, n)
                if depth == 0 {
                    if i != n { throw JSONSyntaxError(offset: i, reason: .trailingGarbage) }
                    return
                }
                guard i < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
                let frame = stack[depth - 1]
                let c = p[i]
                if c == 0x2C {  // ,
                    i = skipWS(p, i + 1, n)
                    if frame >= 0 {
                        keyOffset = i
                        (pending, i) = try parseKey(p, i, n, frame - 1)
                    } else {
                        pending = -1
                    }
                    continue valueLoop
                } else if c == 0x7D && frame >= 0 {
                    depth -= 1
                    i += 1
                } else if c == 0x5D && frame < 0 {
                    depth -= 1
                    i += 1
                } else {
                    throw JSONSyntaxError(offset: i, reason: .unexpectedByte)
                }
            }
        }
    }

    // MARK: - Pieces

    @inline(__always)
    private func record(_ node: Int32, _ kind: Kind, _ start: Int, _ end: Int, _ esc: Bool, _ keyOffset: Int) throws(JSONSyntaxError) {
        let count = Int(terminalCount[Int(node)])
        if count == 0 { return }
        let first = Int(terminalStart[Int(node)])
        for t in first..<(first + count) {
            let pi = Int(terminals[t])
            if results[pi].kind != .absent { throw JSONSyntaxError(offset: keyOffset, reason: .duplicateField) }
            results[pi] = Match(kind: kind, start: start, end: end, hasEscapes: esc)
            found += 1
        }
    }

    /// Parses `"key" :` at `i` (which must be the opening quote); returns the child
    /// trie node of `node` the key names (or -1) and the index after the colon.
    @inline(__always)
    private func parseKey(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ node: Int32) throws(JSONSyntaxError) -> (Int32, Int) {
        guard i < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
        guard p[i] == 0x22 else { throw JSONSyntaxError(offset: i, reason: .expectedKey) }
        let (end, esc) = try skipString(p, i + 1, n)
        var child: Int32 = -1
        if node >= 0 {
            let cs = Int(childStart[Int(node)])
            let cc = Int(childCount[Int(node)])
            var kp = p + i + 1
            var kn = end - (i + 1)
            if esc {
                kn = unescape(p, i + 1, end)
                kp = UnsafePointer(scratch)
            }
            for c in cs..<(cs + cc) where keyLength[c] == kn {
                let kb = keyStorage + keyStart[c]
                var k = 0
                while k < kn && kb[k] == kp[k] { k += 1 }
                if k == kn { child = Int32(c); break }
            }
        }
        var j = skipWS(p, end + 1, n)
        guard j < n else { throw JSONSyntaxError(offset: n, reason: .unexpectedEnd) }
        guard p[j] == 0x3A else { throw JSONSyntaxError(offset: j, reason: .expectedColon) }
        j += 1
        return (child, j)
    }

    @inline(__always)
    private func skipWS(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int {
        var i = start
        while i < n {
            let c = p[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
        return i
    }

    @inline(__always)
    private func literal(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, _ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) throws(JSONSyntaxError) {
        guard i + 4 <= n, p[i] == a, p[i + 1] == b, p[i + 2] == c, p[i + 3] == d else {
            throw JSONSyntaxError(offset: i, reason: .invalidLiteral)
        }
    }

    @inline(__always)
    private func skipNumber(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) throws(JSONSyntaxError) -> Int {
        var j = start
        if p[j] == 0x2D { j += 1 }
        guard j < n else { throw JSONSyntaxError(offset: start, reason: .invalidNumber) }
        if p[j] == 0x30 {
            j += 1
        } else if p[j] >= 0x31 && p[j] <= 0x39 {
            j += 1
            while j < n && p[j] &- 0x30 < 10 { j += 1 }
        } else {
            throw JSONSyntaxError(offset: start, reason: .invalidNumber)
        }
        if j < n && p[j] == 0x2E {
            j += 1
            guard j < n, p[j] &- 0x30 < 10 else { throw JSONSyntaxError(offset: start, reason: .invalidNumber) }
            while j < n && p[j] &- 0x30 < 10 { j += 1 }
        }
        if j < n && (p[j] == 0x65 || p[j] == 0x45) {
            j += 1
            if j < n && (p[j] == 0x2B || p[j] == 0x2D) { j += 1 }
            guard j < n, p[j] &- 0x30 < 10 else { throw JSONSyntaxError(offset: start, reason: .invalidNumber) }
            while j < n && p[j] &- 0x30 < 10 { j += 1 }
        }
        return j
    }

    /// Skips a string's content starting after its opening quote; returns the index
    /// of the closing quote and whether the content holds escapes.
    @inline(__always)
    private func skipString(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) throws(JSONSyntaxError) -> (Int, Bool) {
        var i = start
        var esc = false
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while true {
            while i + 8 <= n {
                let w = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                let q = w ^ (ones &* 0x22)
                let b = w ^ (ones &* 0x5C)
                let m = ((q &- ones) & ~q) | ((b &- ones) & ~b) | ((w &- ones &* 0x20) & ~w)
                let hit = m & highs
                if hit != 0 {
                    i += hit.trailingZeroBitCount >> 3
                    break
                }
                i += 8
            }
            guard i < n else { throw JSONSyntaxError(offset: start - 1, reason: .unterminatedString) }
            let c = p[i]
            if c == 0x22 { return (i, esc) }
            if c == 0x5C {
                esc = true
                i = try skipEscape(p, i, n)
            } else if c < 0x20 {
                throw JSONSyntaxError(offset: i, reason: .controlCharacter)
            } else {
                i += 1
            }
        }
    }

    /// Validates the escape at `i` (a backslash); returns the index after it.
    private func skipEscape(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) throws(JSONSyntaxError) -> Int {
        guard i + 1 < n else { throw JSONSyntaxError(offset: i, reason: .unterminatedString) }
        switch p[i + 1] {
        case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:
            return i + 2
        case 0x75:
            let u = try hex4(p, i + 2, n, i)
            if u >= 0xDC00 && u <= 0xDFFF { throw JSONSyntaxError(offset: i, reason: .invalidUnicodeEscape) }
            if u >= 0xD800 && u <= 0xDBFF {
                guard i + 7 < n, p[i + 6] == 0x5C, p[i + 7] == 0x75 else {
                    throw JSONSyntaxError(offset: i, reason: .invalidUnicodeEscape)
                }
                let lo = try hex4(p, i + 8, n, i)
                guard lo >= 0xDC00 && lo <= 0xDFFF else { throw JSONSyntaxError(offset: i, reason: .invalidUnicodeEscape) }
                return i + 12
            }
            return i + 6
        default:
            throw JSONSyntaxError(offset: i, reason: .invalidEscape)
        }
    }

    @inline(__always)
    private func hex4(_ p: UnsafePointer<UInt8>, _ at: Int, _ n: Int, _ escapeOffset: Int) throws(JSONSyntaxError) -> UInt32 {
        guard at + 4 <= n else { throw JSONSyntaxError(offset: escapeOffset, reason: .invalidUnicodeEscape) }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[at + k]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw JSONSyntaxError(offset: escapeOffset, reason: .invalidUnicodeEscape)
            }
            v = v << 4 | d
        }
        return v
    }

    /// Unescapes the (already validated) string content `start..<end` into `scratch`;
    /// returns the length written.
    private func unescape(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        let need = end - start
        if need > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = max(need, scratchCapacity * 2)
            scratch = .allocate(capacity: scratchCapacity)
        }
        let out = scratch
        var o = 0
        var i = start
        func hex(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = p[at + k]
                let d: UInt32 = c <= 0x39 ? UInt32(c - 0x30) : UInt32((c | 0x20) - 0x61 + 10)
                v = v << 4 | d
            }
            return v
        }
        while i < end {
            let c = p[i]
            if c != 0x5C {
                out[o] = c
                o += 1
                i += 1
                continue
            }
            let e = p[i + 1]
            switch e {
            case 0x62: out[o] = 0x08; o += 1; i += 2
            case 0x66: out[o] = 0x0C; o += 1; i += 2
            case 0x6E: out[o] = 0x0A; o += 1; i += 2
            case 0x72: out[o] = 0x0D; o += 1; i += 2
            case 0x74: out[o] = 0x09; o += 1; i += 2
            case 0x75:
                var u = hex(i + 2)
                i += 6
                if u >= 0xD800 && u <= 0xDBFF {
                    let lo = hex(i + 2)
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
                }
                if u < 0x80 {
                    out[o] = UInt8(u); o += 1
                } else if u < 0x800 {
                    out[o] = UInt8(0xC0 | (u >> 6)); out[o + 1] = UInt8(0x80 | (u & 0x3F)); o += 2
                } else if u < 0x10000 {
                    out[o] = UInt8(0xE0 | (u >> 12)); out[o + 1] = UInt8(0x80 | ((u >> 6) & 0x3F))
                    out[o + 2] = UInt8(0x80 | (u & 0x3F)); o += 3
                } else {
                    out[o] = UInt8(0xF0 | (u >> 18)); out[o + 1] = UInt8(0x80 | ((u >> 12) & 0x3F))
                    out[o + 2] = UInt8(0x80 | ((u >> 6) & 0x3F)); out[o + 3] = UInt8(0x80 | (u & 0x3F)); o += 4
                }
            default:  // " \ /
                out[o] = e; o += 1; i += 2
            }
        }
        return o
    }
}
