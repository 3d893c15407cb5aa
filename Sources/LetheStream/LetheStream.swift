#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LetheCore

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
    public private(set) var counts = StreamCounts()
    private let scanner: JSONFieldScanner
    private let prf: SipHash24
    private let shared: SharedDeletionSet
    private var joined: UnsafeMutablePointer<UInt8>
    private var joinedCapacity = 256

    /// - Parameters:
    ///   - fields: the subject path(s); several for a composite subject.
    ///   - streamKey: the PRF of the tags (`StateSecrets.streamHasher`).
    ///   - set: the deletion set, read once per `filter` call.
    public init(fields: [FieldPath], streamKey: SipHash24, set: SharedDeletionSet, onMalformed: MalformedPolicy = .fail) {
        precondition(!fields.isEmpty, "at least one subject field")
        self.fields = fields
        self.policy = onMalformed
        self.scanner = JSONFieldScanner(paths: fields)
        self.prf = streamKey
        self.shared = set
        joined = .allocate(capacity: joinedCapacity)
    }

    deinit { joined.deallocate() }

    /// Filters the complete lines of `input` (through its last LF; with `isFinal`, also
    /// a last line without LF). Kept bytes go to `keep` as contiguous runs of whole
    /// lines, in order, each run a slice of `input`. Returns the bytes consumed: the
    /// caller passes the rest again, followed by more input.
    /// Throws `MalformedLine` under `.fail` (after keeping the lines before it).
    @discardableResult
    public func filter(_ input: UnsafeRawBufferPointer, isFinal: Bool,
                       keep: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard let base = input.baseAddress, input.count > 0 else { return 0 }
        let set = shared.current
        let n = input.count
        var lineStart = 0
        var runStart = 0
        var c = counts
        defer { counts = c }
        while lineStart < n {
            let rest = n - lineStart
            let nl = memchr(base + lineStart, 0x0A, rest)
            let lineEnd: Int, next: Int
            if let nl {
                lineEnd = UnsafeRawPointer(nl) - base
                next = lineEnd + 1
            } else {
                if !isFinal { break }
                lineEnd = n
                next = n
            }
            let line = UnsafeRawBufferPointer(start: base + lineStart, count: lineEnd - lineStart)
            var drop = false
            switch classify(line, set) {
            case .blank: c.blank += 1
            case .pass: c.passed += 1
            case .drop: c.dropped += 1; drop = true
            case .malformed(let e):
                c.malformed += 1
                switch policy {
                case .pass: break
                case .drop: drop = true
                case .fail:
                    if lineStart > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: lineStart - runStart)) }
                    c.bytes += Int64(lineStart)
                    throw MalformedLine(line: c.lines, error: e)
                }
            }
            if drop {
                if lineStart > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: lineStart - runStart)) }
                runStart = next
            }
            lineStart = next
        }
        if lineStart > runStart { try keep(UnsafeRawBufferPointer(start: base + runStart, count: lineStart - runStart)) }
        c.bytes += Int64(lineStart)
        return lineStart
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

    enum Verdict { case blank, pass, drop, malformed(JSONSyntaxError) }

    /// The verdict on one line (without its LF).
    @inline(__always)
    func classify(_ line: UnsafeRawBufferPointer, _ set: DeletionSet) -> Verdict {
        do {
            try scanner.scan(line)
        } catch {
            if error.reason == .empty { return .blank }
            return .malformed(error)
        }
        let k = fields.count
        if k == 1 {
            let m = scanner.match(0)
            guard m.kind.isScalarValue, m.end > m.start else { return .pass }
            let tag = scanner.withCanonicalValue(0, in: line) { prf.hash($0) }!
            return set.contains(tag) ? .drop : .pass
        }
        var len = 0
        for i in 0..<k {
            let m = scanner.match(i)
            guard m.kind.isScalarValue, m.end > m.start else { return .pass }
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
        let tag = prf.hash(UnsafeRawBufferPointer(start: joined, count: o))
        return set.contains(tag) ? .drop : .pass
    }
}
