import LetheCore
import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// When a `LocalObjectStore`'s `.deferred` writes bypass the page cache (`O_DIRECT`).
///
/// A Delta erasure writes its rewritten files as deferred writes: about a GiB of new files at most
/// per wave, made durable together at the end. Through the page cache each 4 KiB page of them is a
/// page the kernel must find; on a virtual machine whose guest hands freed memory back to the host
/// (virtio-balloon free page reporting, DAMON reclaim) a fresh page can cost a fault in the host,
/// 10-15 µs of CPU per page instead of 1-3 µs (docs/benchmarks.md, issue 12). Written with
/// `O_DIRECT` from a reused aligned buffer the file's bytes never take page-cache pages; the write
/// waits for the device instead, which costs wall time where pages are cheap. Hence the default:
/// direct only while buffered writes are measured slow.
public enum DirectWrites: Sendable, Equatable {
    /// Always through the page cache (the behavior before issue 12's direct writes).
    case never
    /// Deferred writes always go direct where the file system accepts it (tests, benchmarks).
    case always
    /// Buffered writes are measured (thread CPU time per page written, `PageCacheGauge`); while
    /// they are measured slow, new deferred writes go direct.
    case whenPageCacheIsSlow

    /// `LETHE_DIRECT_WRITES=never|always|slow` (benchmarks compare the policies in one binary); nil
    /// when unset or not one of these (then a one-line warning on standard error says it is ignored).
    public static let fromEnvironment: DirectWrites? = {
        guard let v = getenv("LETHE_DIRECT_WRITES").map({ String(cString: $0) }) else { return nil }
        switch v {
        case "never", "0": return .never
        case "always", "1": return .always
        case "slow", "whenPageCacheIsSlow": return .whenPageCacheIsSlow
        default:
            let line = Array("lethe: warning: LETHE_DIRECT_WRITES=\(v) is not one of never, always, slow: ignored (the default applies)\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            return nil
        }
    }()
}

/// Measures what writing through the page cache costs (thread CPU time per 4 KiB page of large
/// buffered writes) and tells, for a while after a slow measure, that it is slow. Also remembers the
/// file systems that refused `O_DIRECT`. Shared by the stores that use it (process-wide by default:
/// the page cache is the machine's).
public final class PageCacheGauge: Sendable {
    /// The process-wide gauge `LocalObjectStore` uses by default.
    public static let shared = PageCacheGauge()

    /// CPU time per 4 KiB page written from which the page cache counts as slow. Measured on the
    /// machine of issue 12: 1.5-3.7 µs while the guest had host-backed free memory, 11-15 µs once it
    /// did not (one page fault in the host per new page-cache page).
    public let slowNanosPerPage: Int64
    /// How long writes go direct after a slow measure, before buffered writes are measured again.
    public let slowFor: Duration
    /// Bytes of buffered writes measured before a verdict.
    public let sampleBytes: Int64
    /// Buffered writes of at least this many bytes are measured (smaller ones: the clock would cost
    /// more than they do).
    static let measuredWriteBytes = 64 << 10

    private let cpuClock: @Sendable () -> Int64
    private let clock: @Sendable () -> Int64

    private struct State {
        var nanos: Int64 = 0
        var bytes: Int64 = 0
        var since: Int64 = 0
        var slowUntil: Int64 = .min
        var refusing: Set<UInt64> = []
        var slowVerdicts = 0
        var lastNanosPerPage: Int64?
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - cpuClock: the calling thread's CPU time in nanoseconds (tests inject a slow or fast one).
    ///   - clock: a monotonic clock in nanoseconds (how long the slow verdict lasts).
    public init(
        slowNanosPerPage: Int64 = 8_000, slowFor: Duration = .seconds(10), sampleBytes: Int64 = 1 << 20,
        cpuClock: @escaping @Sendable () -> Int64 = PageCacheGauge.threadCPUNanos,
        clock: @escaping @Sendable () -> Int64 = PageCacheGauge.monotonicNanos
    ) {
        self.slowNanosPerPage = slowNanosPerPage
        self.slowFor = slowFor
        self.sampleBytes = max(1, sampleBytes)
        self.cpuClock = cpuClock
        self.clock = clock
    }

    /// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
    public static func threadCPUNanos() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// `CLOCK_MONOTONIC`, in nanoseconds.
    public static func monotonicNanos() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    private var slowForNanos: Int64 {
        let c = slowFor.components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }

    /// The CPU clock's reading now (for `record`).
    func cpuNow() -> Int64 { cpuClock() }

    /// Whether the last measure, less than `slowFor` ago, found the page cache slow.
    public var isSlow: Bool {
        let now = clock()
        return state.withLock { now < $0.slowUntil }
    }

    /// Slow verdicts so far (for tests and benchmarks).
    public var slowVerdicts: Int { state.withLock { $0.slowVerdicts } }
    /// The last verdict's CPU nanoseconds per 4 KiB page (nil before the first).
    public var lastNanosPerPage: Int64? { state.withLock { $0.lastNanosPerPage } }

    /// Adds a measured buffered write (`bytes` written in `cpuNanos` of the writing thread's CPU); once
    /// `sampleBytes` are measured, the verdict: slow when the cost per page passes `slowNanosPerPage`.
    /// A sample older than `slowFor` is dropped (the machine may have changed since).
    func record(cpuNanos: Int64, bytes: Int64) {
        let now = clock(), window = slowForNanos
        let verdict: Int64? = state.withLock { s in
            if s.bytes > 0 && now - s.since > window { (s.nanos, s.bytes) = (0, 0) }
            if s.bytes == 0 { s.since = now }
            s.nanos += max(0, cpuNanos)
            s.bytes += bytes
            guard s.bytes >= sampleBytes else { return nil }
            let perPage = s.nanos * 4096 / s.bytes
            s.lastNanosPerPage = perPage
            (s.nanos, s.bytes) = (0, 0)
            guard perPage > slowNanosPerPage else { return nil }
            s.slowUntil = now + window
            s.slowVerdicts += 1
            return perPage
        }
        if let v = verdict {
            Trace.mark("page cache measured slow (\(v / 1000).\(v % 1000 / 100) µs of CPU per 4 KiB page written): deferred writes go direct for \(slowFor)")
        }
    }

    /// Whether the file system of `device` refused `O_DIRECT` before.
    func refuses(device: UInt64) -> Bool { state.withLock { $0.refusing.contains(device) } }

    /// Remembers that the file system of `device` refuses `O_DIRECT` (its later writes stay buffered).
    func refuse(device: UInt64) { state.withLock { _ = $0.refusing.insert(device) } }
}

/// Aligned 1 MiB buffers for `O_DIRECT` writes, kept for reuse (a fresh buffer's pages would cost
/// what the direct writes save).
enum DirectBuffers {
    static let size = 1 << 20
    /// Offsets, lengths and addresses of direct writes are multiples of this (the page size: a
    /// multiple of every block device's logical block size Linux supports).
    static let alignment = 4096
    /// Buffers kept: one per thread of the I/O pool that may write at once, and a few more.
    static let kept = 8
    private static let free = Mutex<[UInt]>([])

    static func take() -> UnsafeMutableRawPointer {
        if let a = free.withLock({ $0.popLast() }), let p = UnsafeMutableRawPointer(bitPattern: a) { return p }
        var p: UnsafeMutableRawPointer?
        let r = posix_memalign(&p, alignment, size)
        guard r == 0, let p else { fatalError("posix_memalign(\(alignment), \(size)) failed: \(r)") }
        return p
    }

    static func give(_ p: UnsafeMutableRawPointer) {
        let keep = free.withLock { f -> Bool in
            guard f.count < kept else { return false }
            f.append(UInt(bitPattern: p))
            return true
        }
        if !keep { Glibc.free(p) }
    }
}
