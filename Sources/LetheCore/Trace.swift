import Foundation

/// Phase timings for whoever profiles a run: with `LETHE_TRACE=1` in the environment, each span
/// prints one line to standard error (`trace  1.2345 s  +0.0567 s  label`: time since the process
/// started tracing, the span's own duration). Labels are phase names and counts, never a subject's
/// id. Off (the default), a span costs one branch.
public enum Trace {
    /// Whether `LETHE_TRACE` is set (read once).
    public static let enabled: Bool = ProcessInfo.processInfo.environment["LETHE_TRACE"].map { !$0.isEmpty && $0 != "0" } ?? false
    private static let origin: ContinuousClock.Instant = {
        let now = ContinuousClock.now
        if enabled {
            // The origin on the clock `perf record -k CLOCK_MONOTONIC` stamps samples with, so that a
            // profile's samples can be assigned to the spans: `perf report --time A,B` with A and B the
            // origin plus a span's start and end (docs/benchmarks.md, issue 12 and 16 profiles).
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            FileHandle.standardError.write(Data("trace origin CLOCK_MONOTONIC \(ts.tv_sec).\(String(ts.tv_nsec + 1_000_000_000).dropFirst())\n".utf8))
        }
        return now
    }()

    /// Runs `body` and, when tracing, prints how long it took.
    public static func span<T>(_ label: @autoclosure () -> String, _ body: () async throws -> T) async rethrows -> T {
        guard enabled else { return try await body() }
        let t0 = ContinuousClock.now
        let v = try await body()
        emit(label(), since: t0)
        return v
    }

    /// Prints a line for a point in time (duration: since `since`, when given).
    public static func mark(_ label: @autoclosure () -> String, since: ContinuousClock.Instant? = nil) {
        guard enabled else { return }
        emit(label(), since: since ?? ContinuousClock.now)
    }

    private static func emit(_ label: String, since t0: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        func s(_ d: Duration) -> String {
            let c = d.components
            return String(format: "%.4f", Double(c.seconds) + Double(c.attoseconds) / 1e18)
        }
        let line = "trace \(s(now - origin)) s  +\(s(now - t0)) s  \(label)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
