#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import LetheCore

/// Runs a `StreamFilter` between two file descriptors: reads with read(2) in large
/// chunks, writes kept lines through one large buffer with write(2). No allocation
/// per event.
///
/// Output is flushed when the buffer fills, whenever the input is caught up (a read
/// returned less than asked, so a live stream's lines go out at once), and at the end.
public final class StreamPump {
    public let filter: StreamFilter
    private let input: Int32
    private let output: Int32
    private let chunk: Int
    private var inBuf: UnsafeMutableRawPointer
    private var inCapacity: Int
    private let outBuf: UnsafeMutableRawPointer
    private let outCapacity: Int
    private var outCount = 0

    /// - Parameters:
    ///   - chunk: bytes asked of each read(2).
    public init(filter: StreamFilter, input: Int32, output: Int32, chunk: Int = 1 << 20, outputBuffer: Int = 1 << 20) {
        self.filter = filter
        self.input = input
        self.output = output
        self.chunk = max(4096, chunk)
        inCapacity = self.chunk * 2
        inBuf = .allocate(byteCount: inCapacity, alignment: 64)
        outCapacity = max(4096, outputBuffer)
        outBuf = .allocate(byteCount: outCapacity, alignment: 64)
    }

    deinit {
        inBuf.deallocate()
        outBuf.deallocate()
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
            let want = inCapacity - carry
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
            carry = have - used
            if carry > 0 && used > 0 { memmove(inBuf, inBuf + used, carry) }
            if got < want { try flush() }
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
        if run.count > outCapacity - outCount {
            try flush()
            if run.count >= outCapacity {
                try writeAll(run.baseAddress!, run.count)
                return
            }
        }
        (outBuf + outCount).copyMemory(from: run.baseAddress!, byteCount: run.count)
        outCount += run.count
    }

    /// Writes the buffered output.
    public func flush() throws {
        if outCount == 0 { return }
        let n = outCount
        outCount = 0
        try writeAll(UnsafeRawPointer(outBuf), n)
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) throws {
        var done = 0
        while done < n {
            let w = write(output, p + done, n - done)
            if w < 0 {
                if errno == EINTR { continue }
                throw LetheError.io("cannot write the output", at: "", errno: errno)
            }
            done += w
        }
    }
}
