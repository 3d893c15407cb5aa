import LetheCore
import LetheEngine
import Foundation
@_exported import BenchSupport
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Times an async body; returns its result and the seconds it took.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let t0 = monotonic()
    let r = try await body()
    return (r, monotonic() - t0)
}

/// Splitmix64: small, fast and deterministic.
typealias SplitMix = SplitMix64

/// Latency distribution of a series of calls (seconds).
struct Latencies {
    var samples: [Double] = []
    mutating func add(_ s: Double) { samples.append(s) }
    func percentile(_ p: Double) -> Double {
        guard !samples.isEmpty else { return .nan }
        let s = samples.sorted()
        let i = Swift.min(s.count - 1, Swift.max(0, Int((Double(s.count) * p).rounded(.up)) - 1))
        return s[i]
    }
    var mean: Double { samples.isEmpty ? .nan : samples.reduce(0, +) / Double(samples.count) }
    var maximum: Double { samples.max() ?? .nan }
}

/// Timestamped events from `Lethe.run(events:)`.
typealias ProgressLog = TimedLog<EngineEvent>

/// Reads every file with `read(2)` into a 1 MiB buffer (what `cat > /dev/null` does); returns bytes read.
func readAll(_ paths: [String]) -> Int64 {
    let cap = 1 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64)
    defer { buf.deallocate() }
    var total: Int64 = 0
    var checksum: UInt8 = 0
    for p in paths {
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { continue }
        while true {
            let n = read(fd, buf, cap)
            if n <= 0 { break }
            total += Int64(n)
            checksum &+= buf.load(fromByteOffset: n - 1, as: UInt8.self)
        }
        close(fd)
    }
    if checksum == 0xFF && total < 0 { say("") }  // keep the reads observable
    return total
}

/// Milliseconds or microseconds, whichever reads better.
func duration(_ s: Double) -> String {
    guard s.isFinite else { return "n/a" }
    if s < 1e-3 { return fmt(s * 1e6, 0) + " µs" }
    if s < 1 { return fmt(s * 1e3, 2) + " ms" }
    return fmt(s, 2) + " s"
}
