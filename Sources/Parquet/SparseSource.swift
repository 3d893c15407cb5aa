import Synchronization

/// Pieces of a file held in memory (`SparseSource`) and a sink that plans a rewrite as bytes and
/// copied ranges (`PlannedSink`): what a rewrite that reads and writes only part of a file needs.

/// A sink that records what the rewrite writes and, instead of the bytes, the ranges of the file
/// it copies, for a store's writer to copy (`ObjectWriteStream.copyRange`).
public struct PlannedSink: ParquetSink, Sendable {
    public enum Step: Sendable, Equatable { case bytes([UInt8]), copy(Range<Int64>) }
    public private(set) var steps: [Step] = []
    /// Bytes of the planned file (written and copied).
    public private(set) var size: Int64 = 0

    public init() {}

    public mutating func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        size += Int64(bytes.count)
        if case .bytes(var last)? = steps.last, last.count < 1 << 20 {
            steps.removeLast()
            last += bytes
            steps.append(.bytes(last))
        } else {
            steps.append(.bytes(bytes))
        }
    }

    public mutating func copy(from source: any ParquetSource, range: Range<Int64>) throws {
        guard !range.isEmpty else { return }
        size += Int64(range.count)
        if case .copy(let last)? = steps.last, last.upperBound == range.lowerBound {
            steps[steps.count - 1] = .copy(last.lowerBound..<range.upperBound)
        } else {
            steps.append(.copy(range))
        }
    }

    /// The planned file's head and footer (the magic, the footer, its length and the closing magic)
    /// as a source, enough to open it (`ParquetFile(source:)`) for its metadata without holding it
    /// whole. Nil when those bytes are not all written (a copy in place of them).
    public func footerSource() -> SparseSource? {
        guard size >= 12 else { return nil }
        guard let tail = writtenBytes(size - 8..<size) else { return nil }
        let footerLen = Int64(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLen <= size - 12, let footer = writtenBytes((size - 8 - footerLen)..<size), let head = writtenBytes(0..<4) else { return nil }
        var source = SparseSource(size: size)
        source.add(0, head)
        source.add(size - 8 - footerLen, footer)
        return source
    }

    /// The written bytes of `range` of the planned file, nil when part of it is copied.
    func writtenBytes(_ range: Range<Int64>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var at: Int64 = 0
        for step in steps {
            let n: Int64
            switch step {
            case .bytes(let b): n = Int64(b.count)
            case .copy(let r): n = Int64(r.count)
            }
            let lo = max(at, range.lowerBound), hi = min(at + n, range.upperBound)
            if lo < hi {
                guard case .bytes(let b) = step else { return nil }
                out += b[Int(lo - at)..<Int(hi - at)]
            }
            at += n
            if at >= range.upperBound { break }
        }
        return out.count == range.count ? out : nil
    }
}

/// Some byte ranges of a file, held in memory; reading outside them is an `.io` error.
public struct SparseSource: ParquetSource {
    public let size: Int64
    public private(set) var segments: [(offset: Int64, bytes: [UInt8])] = []

    public init(size: Int64) { self.size = size }

    public mutating func add(_ offset: Int64, _ bytes: [UInt8]) {
        if !bytes.isEmpty { segments.append((offset, bytes)) }
    }

    /// Bytes held.
    public var heldBytes: Int64 { segments.reduce(0) { $0 + Int64($1.bytes.count) } }

    public func covers(_ range: Range<Int64>) -> Bool {
        segments.contains { $0.offset <= range.lowerBound && range.upperBound <= $0.offset + Int64($0.bytes.count) }
    }

    public func read(_ range: Range<Int64>) throws -> [UInt8] {
        if range.isEmpty { return [] }
        for s in segments where s.offset <= range.lowerBound && range.upperBound <= s.offset + Int64(s.bytes.count) {
            let lo = Int(range.lowerBound - s.offset)
            // A whole segment (a column chunk read as such): its bytes shared, not copied.
            if lo == 0 && range.count == s.bytes.count { return s.bytes }
            return Array(s.bytes[lo..<(lo + range.count)])
        }
        throw ParquetError(.io, "read \(range) outside the ranges fetched from the store (the object may have changed)")
    }

    /// The tail of a `size`-byte file (`tailGuess` bytes, more when its footer is longer) and its
    /// first four bytes, read with `read`: enough to open it. An implausible footer length is left
    /// for opening to report.
    public static func footer(
        size: Int64, tailGuess: Int64 = 64 << 10, maxFooterSize: Int = ReadOptions().maxFooterSize,
        read: (Range<Int64>) async throws -> [UInt8]
    ) async throws -> SparseSource {
        var tailStart = max(0, size - tailGuess)
        var tail = try await read(tailStart..<size)
        if tail.count >= 8, size >= 12 {
            let n = tail.count
            var footerLen: Int64 = 0
            for i in 0..<4 { footerLen |= Int64(tail[n - 8 + i]) << (8 * Int64(i)) }
            let footerStart = size - 8 - footerLen
            // Only a plausible footer is fetched; otherwise opening reports the problem.
            if footerLen <= size - 12, footerLen <= Int64(maxFooterSize), footerStart < tailStart {
                tail = try await read(footerStart..<tailStart) + tail
                tailStart = footerStart
            }
        }
        var source = SparseSource(size: size)
        source.add(tailStart, tail)
        if tailStart > 0 { source.add(0, try await read(0..<min(4, tailStart))) }
        return source
    }
}

/// The bytes of a file fetched so far (`SparseSource`), remembering a read outside them: a reader
/// that caught it (a page index or bloom filter it then left out) or failed on it leaves its work
/// to be done again on the whole file (a Delta erasure's selection and rewrite, a streamed erase).
public final class MissRecordingSource: ParquetSource {
    public let bytes: SparseSource
    private let missedRead = Atomic<Bool>(false)
    public init(_ bytes: SparseSource) { self.bytes = bytes }
    public var size: Int64 { bytes.size }
    public func read(_ range: Range<Int64>) throws -> [UInt8] {
        do { return try bytes.read(range) } catch {
            missedRead.store(true, ordering: .relaxed)
            throw error
        }
    }
    /// A read fell outside the bytes held.
    public var missed: Bool { missedRead.load(ordering: .relaxed) }
}
