#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import LetheCore

/// Stream filtering of forgotten subjects: JSON Lines in, the same lines out minus
/// every event whose subject is in the deletion set. Byte for byte, in order.
public enum LetheStreamInfo { public static let name = "LetheStream" }

/// What to do with a line that is not valid JSON (or names its subject field twice).
public enum MalformedPolicy: String, Sendable, CaseIterable {
    /// Keep it in the output.
    case pass
    /// Leave it out.
    case drop
    /// Stop with an error naming the line.
    case fail
}

/// A line the filter refused under `MalformedPolicy.fail`.
public struct MalformedLine: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line number in the stream.
    public let line: Int64
    public let error: JSONSyntaxError
    public var description: String { "line \(line): malformed JSON: \(error.reason.rawValue) at byte \(error.offset + 1)" }
}

/// How much of each line the filter validates.
public enum Validation: String, Sendable, CaseIterable {
    /// Every line is validated whole (RFC 8259 grammar, no duplicate subject field).
    case full
    /// A line is read until the subject was found and its enclosing objects closed; the
    /// rest of the top-level object is then only checked to hold no backslash and no
    /// quoted text equal to a top-level key of the subject path (so it cannot hide a
    /// second subject field) — if it does, the line is validated whole. Syntax errors
    /// in that unread rest go unnoticed (the line is judged by its subject).
    case fast
    /// Only what decides the output, with `MalformedPolicy.pass` (under `drop` and `fail` the
    /// same as `full`): under `pass` a line is dropped only when its subject is forgotten and
    /// the whole line is valid. So a line is read as if it were valid, only up to the first
    /// occurrence of its subject (`JSONFieldScanner.locate`, no grammar check); if the subject
    /// is not forgotten, or absent, the line is kept without reading more. A line whose subject
    /// is forgotten is validated whole before it is dropped (a malformed one is kept, as `pass`
    /// says); lines `locate` declines are read up to their subject's objects closed, as `fast`.
    /// The output is the same as with `full`; the counts differ only in that a kept malformed
    /// line not read whole counts as passed.
    case minimal
}

/// Counts of a filter's lines.
public struct StreamCounts: Sendable, Equatable {
    /// Events written out (subject absent, empty, null, not a scalar, or not forgotten).
    public var passed: Int64 = 0
    /// Events left out because their subject is forgotten.
    public var dropped: Int64 = 0
    /// Malformed lines (passed or dropped per the policy, or the one that stopped the filter).
    public var malformed: Int64 = 0
    /// Empty or whitespace-only lines (always written out unchanged).
    public var blank: Int64 = 0
    /// Bytes read.
    public var bytes: Int64 = 0
    public init() {}
    /// Lines seen.
    public var lines: Int64 { passed + dropped + malformed + blank }
}

/// The filter over byte buffers: one per task (it holds the JSON scanner's scratch
/// state); the deletion set it reads may be shared and swapped meanwhile.
///
/// A line ends at LF; a CR before it is JSON whitespace, so CRLF lines work and are
/// written back with their CR. The subject is found by exact path with
/// `JSONFieldScanner` (any key order, escaped keys, nested decoys never match) and
/// canonicalised like everywhere in Lethe (string → unescaped UTF-8, number → its
/// literal text, composite → parts joined by 0x1F). An event whose subject field is
/// absent, null, an empty string, or not a string or number passes. Its
/// SipHash-2-4 tag under `stream.key` is looked up in the deletion set.
public final class StreamFilter {
    public let fields: [FieldPath]
    public let policy: MalformedPolicy
    public let validation: Validation
    public private(set) var counts = StreamCounts()
    /// `"key"` for each distinct first component of the subject paths (the fast-mode guard).
    private let topKeys: [[UInt8]]
    private let scanner: JSONFieldScanner
    private let prf: SipHash24
    private let shared: SharedDeletionSet
    private var joined: UnsafeMutablePointer<UInt8>
    private var joinedCapacity = 256
    /// The lines of a batch between scan and verdict (`batch` of them).
    private let pending: UnsafeMutablePointer<Pending>

    /// - Parameters:
    ///   - fields: the subject path(s); several for a composite subject.
    ///   - streamKey: the PRF of the tags (`StateSecrets.streamHasher`).
    ///   - set: the deletion set, read once per `filter` call.
    public init(
        fields: [FieldPath], streamKey: SipHash24, set: SharedDeletionSet, onMalformed: MalformedPolicy = .fail,
        validation: Validation = .full
    ) {
        precondition(!fields.isEmpty, "at least one subject field")
        self.fields = fields
        self.policy = onMalformed
        self.validation = validation
        var tops: [[UInt8]] = []
        for f in fields {
            let q = [0x22] + (f.components.first ?? []) + [0x22]
            if !tops.contains(q) { tops.append(q) }
        }
        self.topKeys = tops
        self.scanner = JSONFieldScanner(paths: fields)
        self.prf = streamKey
        self.shared = set
        joined = .allocate(capacity: joinedCapacity)
        pending = .allocate(capacity: Self.batch)
        pending.initialize(repeating: Pending(start: 0, end: 0, next: 0, verdict: .blank), count: Self.batch)
    }

    deinit {
        joined.deallocate()
        pending.deinitialize(count: Self.batch)
        pending.deallocate()
    }

    /// Filters the complete lines of `input` (through its last LF; with `isFinal`, also
    /// a last line without LF). Kept bytes go to `keep` as contiguous runs of whole
    /// lines, in order, each run a slice of `input`. Returns the bytes consumed: the
    /// caller passes the rest again, followed by more input.
    /// Throws `MalformedLine` under `.fail` (after keeping the lines before it).
    ///
    /// Lines are judged in batches of up to `batch`: each line of a batch is scanned and its
    /// subject's tag computed, and the tag's slot in the deletion set prefetched; then the batch's
    /// lookups are made and its verdicts applied in order. A set larger than the cache costs a
    /// memory access per event, which the scans of the following lines now hide.
    @discardableResult
    public func filter(
        _ input: UnsafeRawBufferPointer, isFinal: Bool,
        keep: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int {
        guard let base = input.baseAddress, input.count > 0 else { return 0 }
        let set = shared.current
        let n = input.count
        var lineStart = 0
        var runStart = 0
        var c = counts
        defer { counts = c }
        let pend = pending
        while lineStart < n {
            // Phase 1: scan up to `batch` lines, prefetching each tag's slot.
            var k = 0
            var at = lineStart
            while k < Self.batch && at < n {
                let nl = memchr(base + at, 0x0A, n - at)
                let lineEnd: Int, next: Int
                if let nl {
                    lineEnd = UnsafeRawPointer(nl) - base
                    next = lineEnd + 1
                } else {
                    if !isFinal { break }
                    lineEnd = n
                    next = n
                }
                let line = UnsafeRawBufferPointer(start: base + at, count: lineEnd - at)
                let v = classify(line)
                if case .lookup(let tag, _) = v { set.prefetch(tag) }
                pend[k] = Pending(start: at, end: lineEnd, next: next, verdict: v)
                k += 1
                at = next
            }
            if k == 0 { break }
            // Phase 2: the verdicts, in order.
            for j in 0..<k {
                let p = pend[j]
                // Most lines: a subject not in the set (the lookup inline, not through `resolve`).
                if case .lookup(let tag, _) = p.verdict, !set.contains(tag) {
                    c.passed += 1
                    continue
                }
                var drop = false
                switch resolve(p, base, set) {
                case .blank: c.blank += 1
                case .pass: c.passed += 1
                case .drop: c.dropped += 1; drop = true
                case .malformed(let e):
                    c.malformed += 1
                    switch policy {
                    case .pass: break
                    case .drop: drop = true
                    case .fail:
                        if p.start > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: p.start - runStart)) }
                        c.bytes += Int64(p.start)
                        throw MalformedLine(line: c.lines, error: e)
                    }
                case .lookup: preconditionFailure("resolved above")
                }
                if drop {
                    if p.start > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: p.start - runStart)) }
                    runStart = p.next
                }
            }
            lineStart = at
        }
        if lineStart > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: lineStart - runStart)) }
        c.bytes += Int64(lineStart)
        return lineStart
    }

    /// Lines judged per batch (see `filter`).
    static let batch = 16

    /// One line of a batch between its scan and its verdict.
    struct Pending {
        var start: Int
        var end: Int
        var next: Int
        var verdict: Verdict
    }

    /// Convenience: filters a whole buffer (a last line without LF included) into a new array.
    public func filter(_ input: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        try input.withUnsafeBytes { b in
            _ = try filter(b, isFinal: true) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// A line's verdict. `lookup`: the subject's tag is to be looked up in the set (the event is
    /// dropped when it is there); with `rescan` (`--validate minimal`, the line read only up to its
    /// subject) a forgotten subject's line is first validated whole.
    enum Verdict { case blank, pass, drop, malformed(JSONSyntaxError), lookup(UInt64, rescan: Bool) }

    /// The first half of a line's verdict: everything but the set lookup (the subject's tag).
    @inline(__always)
    func classify(_ line: UnsafeRawBufferPointer) -> Verdict {
        do {
            switch validation {
            case .fast:
                try scanner.scan(line, stopWhenFound: true)
                if let at = scanner.stoppedAt, !restIsSafe(line, from: at) { try scanner.scan(line) }
            case .minimal where policy == .pass:
                // Kept unless the subject is forgotten and the whole line valid: found as if the line
                // were valid (a forgotten one is validated whole in `resolve`); an absent subject keeps it.
                switch scanner.locate(line) {
                case .found:
                    guard let tag = subjectTag(line) else { return .pass }
                    return .lookup(tag, rescan: true)
                case .absent: return .pass
                case .declined: break
                }
                try scanner.scan(line, stopWhenFound: true)
                if scanner.stoppedAt != nil {
                    // Kept whether the rest is valid or not, unless forgotten: then read whole first.
                    guard let tag = subjectTag(line) else { return .pass }
                    return .lookup(tag, rescan: true)
                }
            default:
                try scanner.scan(line)
            }
        } catch {
            if error.reason == .empty { return .blank }
            return .malformed(error)
        }
        guard let tag = subjectTag(line) else { return .pass }
        return .lookup(tag, rescan: false)
    }

    /// The second half: looks a pending tag up (a forgotten subject's line under `minimal` is
    /// validated whole first, and judged by that scan).
    @inline(__always)
    func resolve(_ p: Pending, _ base: UnsafeRawPointer, _ set: DeletionSet) -> Verdict {
        guard case .lookup(let tag, let rescan) = p.verdict else { return p.verdict }
        if !set.contains(tag) { return .pass }
        if !rescan { return .drop }
        let line = UnsafeRawBufferPointer(start: base + p.start, count: p.end - p.start)
        do {
            try scanner.scan(line)  // forgotten: dropped only if the whole line is valid
        } catch {
            if error.reason == .empty { return .blank }
            return .malformed(error)
        }
        guard let again = subjectTag(line) else { return .pass }
        return set.contains(again) ? .drop : .pass
    }

    /// The tag of the subject the last scan found; nil when the event has none (a part absent,
    /// null, empty, or not a string or number: the event passes).
    @inline(__always)
    private func subjectTag(_ line: UnsafeRawBufferPointer) -> UInt64? {
        let k = fields.count
        if k == 1 {
            let m = scanner.match(0)
            guard m.kind.isScalarValue, m.end > m.start else { return nil }
            return scanner.withCanonicalValue(0, in: line) { prf.hash($0) }!
        }
        var len = 0
        for i in 0..<k {
            let m = scanner.match(i)
            guard m.kind.isScalarValue, m.end > m.start else { return nil }
            len += m.end - m.start + 1
        }
        if len > joinedCapacity {
            joined.deallocate()
            joinedCapacity = max(len, joinedCapacity * 2)
            joined = .allocate(capacity: joinedCapacity)
        }
        var o = 0
        for i in 0..<k {
            if i > 0 { joined[o] = SubjectID.partSeparator; o += 1 }
            let dst = joined + o
            o += scanner.withCanonicalValue(i, in: line) { v in
                if let b = v.baseAddress, v.count > 0 { dst.update(from: b.assumingMemoryBound(to: UInt8.self), count: v.count) }
                return v.count
            }!
        }
        return prf.hash(UnsafeRawBufferPointer(start: joined, count: o))
    }

    /// The fast-mode guard: the unread rest holds no backslash and no `"key"` of a
    /// top-level subject key. Finds quotes and backslashes eight bytes at a time.
    @inline(__always)
    private func restIsSafe(_ line: UnsafeRawBufferPointer, from at: Int) -> Bool {
        let n = line.count
        if at >= n { return true }
        let p = line.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = at
        while i < n {
            var m: UInt64
            if i + 8 <= n {
                let w = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                let q = w ^ (ones &* 0x22)
                let b = w ^ (ones &* 0x5C)
                m = (((q &- ones) & ~q) | ((b &- ones) & ~b)) & highs
                if m == 0 { i += 8; continue }
            } else {
                m = 0
                for k in 0..<(n - i) where p[i + k] == 0x22 || p[i + k] == 0x5C { m |= 0x80 << (8 * UInt64(k)) }
                if m == 0 { return true }
            }
            // The bit trick can flag a byte after a real hit (borrow); check each flagged byte.
            while m != 0 {
                let j = i + m.trailingZeroBitCount >> 3
                m &= m &- 1
                let c = p[j]
                if c == 0x5C { return false }
                if c == 0x22 && matchesTopKey(p, j, n) { return false }
            }
            i += 8
        }
        return true
    }

    @inline(__always)
    private func matchesTopKey(_ p: UnsafePointer<UInt8>, _ at: Int, _ n: Int) -> Bool {
        for k in topKeys where k.count <= n - at && p[at + 1] == k[1] {
            var e = 2
            while e < k.count && p[at + e] == k[e] { e += 1 }
            if e == k.count { return true }
        }
        return false
    }
}
