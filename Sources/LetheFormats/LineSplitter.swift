#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import LetheCore

/// Splits a stream of chunks into LF-terminated lines without copying, except for
/// the few lines that straddle two chunks (those are assembled in `carry`).
struct LineSplitter {
    /// The object's key, for error locations.
    let objectKey: String
    /// The longest line accepted (a line without a newline for gigabytes is not a record).
    let maxLineLength: Int
    private var carry: [UInt8] = []
    /// The number of the last line handed out (1-based).
    private(set) var lineNumber: Int64 = 0

    init(objectKey: String, maxLineLength: Int) {
        self.objectKey = objectKey
        self.maxLineLength = maxLineLength
    }

    /// Calls `body(line, contentLength, lineNumber)` for each complete line in `chunk`:
    /// `line` includes its LF, `contentLength` excludes it.
    mutating func feed(_ chunk: [UInt8], _ body: (UnsafeRawBufferPointer, Int, Int64) throws -> Void) throws {
        try chunk.withUnsafeBytes { try feed(bytes: $0, body) }
    }

    /// `feed` of bytes lent for the call (a mapped window): only a line left unfinished at their end is copied.
    mutating func feed(bytes buf: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Int, Int64) throws -> Void) throws {
        guard let base = buf.baseAddress, var pos = try finishCarry(buf, body) else { return }
        let n = buf.count
        while pos < n {
            guard let nl = memchr(base + pos, 0x0A, n - pos) else {
                try appendCarry(UnsafeRawBufferPointer(start: base + pos, count: n - pos))
                return
            }
            let idx = UnsafeRawPointer(nl) - base
            lineNumber += 1
            try body(UnsafeRawBufferPointer(start: base + pos, count: idx + 1 - pos), idx - pos, lineNumber)
            pos = idx + 1
        }
    }

    /// `feed(bytes:_:)` for a caller that reads whole lines in bulk: the line carried from earlier
    /// bytes goes to `body` alone, then every line the bytes hold whole goes to `lines(region,
    /// firstLineNumber)` as one region (its last byte a line feed), which returns how many lines it
    /// held; a line left unfinished at the end is carried.
    mutating func feed(
        bytes buf: UnsafeRawBufferPointer, lines: (UnsafeRawBufferPointer, Int64) throws -> Int64,
        _ body: (UnsafeRawBufferPointer, Int, Int64) throws -> Void
    ) throws {
        guard let base = buf.baseAddress, let pos = try finishCarry(buf, body) else { return }
        let n = buf.count
        guard pos < n else { return }
        // The last line feed: a line's length back from the end (memrchr is not in every C library).
        var end = n
        while end > pos && buf[end - 1] != 0x0A { end -= 1 }
        guard end > pos else {
            try appendCarry(UnsafeRawBufferPointer(start: base + pos, count: n - pos))
            return
        }
        lineNumber += try lines(UnsafeRawBufferPointer(start: base + pos, count: end - pos), lineNumber + 1)
        if end < n { try appendCarry(UnsafeRawBufferPointer(start: base + end, count: n - end)) }
    }

    /// Completes the line carried from earlier bytes (if any) with the first line of `buf` and hands it
    /// to `body`; returns where the rest of `buf` starts, or nil when `buf` went to the carry whole.
    private mutating func finishCarry(
        _ buf: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Int, Int64) throws -> Void
    ) throws -> Int? {
        guard !carry.isEmpty, let base = buf.baseAddress else { return 0 }
        guard let nl = memchr(base, 0x0A, buf.count) else {
            try appendCarry(buf)
            return nil
        }
        let idx = UnsafeRawPointer(nl) - base
        try appendCarry(UnsafeRawBufferPointer(start: base, count: idx + 1))
        lineNumber += 1
        let ln = lineNumber
        try carry.withUnsafeBytes { try body($0, $0.count - 1, ln) }
        carry.removeAll(keepingCapacity: true)
        return idx + 1
    }

    /// Hands out the last line if it has no newline.
    mutating func finish(_ body: (UnsafeRawBufferPointer, Int, Int64) throws -> Void) throws {
        guard !carry.isEmpty else { return }
        lineNumber += 1
        let ln = lineNumber
        try carry.withUnsafeBytes { try body($0, $0.count, ln) }
        carry.removeAll()
    }

    private mutating func appendCarry(_ bytes: UnsafeRawBufferPointer) throws {
        if carry.count + bytes.count > maxLineLength {
            throw LetheError(.corrupt, "line is longer than \(maxLineLength) bytes", at: "\(objectKey):line \(lineNumber + 1)")
        }
        carry.append(contentsOf: bytes)
    }
}

/// Collects a rewritten object's bytes and hands them to a sink in large pieces.
struct OutputBuffer {
    var bytes: [UInt8] = []
    let flushSize: Int

    init(flushSize: Int = 1 << 20) {
        self.flushSize = flushSize
        bytes.reserveCapacity(flushSize + (64 << 10))
    }

    mutating func append(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }

    var needsFlush: Bool { bytes.count >= flushSize }

    mutating func take() -> [UInt8] {
        let out = bytes
        bytes = []
        bytes.reserveCapacity(flushSize + (64 << 10))
        return out
    }
}
