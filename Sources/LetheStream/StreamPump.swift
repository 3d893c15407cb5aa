#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import LetheCore

/// Runs a `StreamFilter` between two file descriptors: reads with read(2) in large
/// chunks and writes the kept runs of each chunk straight from the input buffer with
/// writev(2) (one `iovec` a run of kept lines, so the kept bytes are never copied in user
/// space; a chunk with nothing dropped is one run). No allocation per event.
///
/// A chunk's kept runs are written before the next read reuses the buffer, so output goes
/// out once per read: at once when a live stream's read returns less than asked, and in
/// pieces of up to `chunk` bytes otherwise. Under `.fail` the runs before the malformed line
/// are written before the error is thrown.
public final class StreamPump {
    public let filter: StreamFilter
    private let input: Int32
    private let output: Int32
    private let chunk: Int
    private var inBuf: UnsafeMutableRawPointer
    private var inCapacity: Int
    /// The kept runs of the current chunk, slices of `inBuf`, not yet written.
    private let runs: UnsafeMutablePointer<iovec>
    private let runCapacity: Int
    private var runCount = 0

    /// - Parameters:
    ///   - chunk: bytes asked of each read(2).
    ///   - maxRuns: runs gathered per writev(2) (at most IOV_MAX, 1024 on Linux).
    public init(filter: StreamFilter, input: Int32, output: Int32, chunk: Int = 256 << 10, maxRuns: Int = 1024) {
        self.filter = filter
        self.input = input
        self.output = output
        self.chunk = max(4096, chunk)
        inCapacity = self.chunk * 2
        inBuf = .allocate(byteCount: inCapacity, alignment: 64)
        runCapacity = min(1024, max(1, maxRuns))
        runs = .allocate(capacity: runCapacity)
    }

    deinit {
        inBuf.deallocate()
        runs.deallocate()
    }

    /// Filters until the end of input — or, with `follow`, forever (polling a file that
    /// grows, every `pollInterval` seconds), until `shouldStop()` is true at an idle moment.
    /// A last line without LF is filtered at the end (with `follow`, when stopping).
    /// Throws `MalformedLine` (policy `.fail`, after writing the lines before it) or `LetheError`.
    public func run(follow: Bool = false, pollInterval: Double = 0.02, shouldStop: () -> Bool = { false }) throws {
        var carry = 0
        defer { try? flush() }
        while true {
            if inCapacity - carry < chunk {
                // A line longer than the buffer: grow it.
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: inCapacity * 2, alignment: 64)
                bigger.copyMemory(from: inBuf, byteCount: carry)
                inBuf.deallocate()
                inBuf = bigger
                inCapacity *= 2
            }
            let want = chunk  // small enough that a chunk is still in the L2 cache when its runs are written
            let got = read(input, inBuf + carry, want)
            if got < 0 {
                if errno == EINTR {
                    if shouldStop() { break }
                    continue
                }
                throw LetheError.io("cannot read the input", at: "", errno: errno)
            }
            if got == 0 {
                try flush()
                if follow && !shouldStop() {
                    usleep(UInt32(pollInterval * 1e6))
                    continue
                }
                break
            }
            let have = carry + got
            let used = try filter.filter(UnsafeRawBufferPointer(start: inBuf, count: have), isFinal: false) { run in
                try self.emit(run)
            }
            try flush()  // the runs are slices of inBuf: written before it moves or is read into
            carry = have - used
            if carry > 0 && used > 0 { memmove(inBuf, inBuf + used, carry) }
            if follow && got < want && shouldStop() { break }
        }
        if carry > 0 {
            try filter.filter(UnsafeRawBufferPointer(start: inBuf, count: carry), isFinal: true) { run in
                try self.emit(run)
            }
        }
        try flush()
    }

    @inline(__always)
    private func emit(_ run: UnsafeRawBufferPointer) throws {
        if runCount == runCapacity { try flush() }
        runs[runCount] = iovec(iov_base: UnsafeMutableRawPointer(mutating: run.baseAddress!), iov_len: run.count)
        runCount += 1
    }

    /// Writes the kept runs gathered so far.
    public func flush() throws {
        var i = 0
        let n = runCount
        runCount = 0
        while i < n {
            let w = writev(output, runs + i, Int32(n - i))
            if w < 0 {
                if errno == EINTR { continue }
                throw LetheError.io("cannot write the output", at: "", errno: errno)
            }
            if w == 0 { throw LetheError.io("cannot write the output", at: "", errno: EIO) }
            // Skip what was written: whole runs, then part of one.
            var left = w
            while i < n && left >= runs[i].iov_len {
                left -= runs[i].iov_len
                i += 1
            }
            if left > 0 {
                runs[i].iov_base += left
                runs[i].iov_len -= left
            }
        }
    }
}
