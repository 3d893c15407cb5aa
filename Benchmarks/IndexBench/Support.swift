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

/// Timestamped events from `Lethe.run(events:)` (called from the engine's task).
final class ProgressLog: Sendable {
    private let entries = Mutex<[(Double, EngineEvent)]>([])
    func add(_ e: EngineEvent) { let t = monotonic(); entries.withLock { $0.append((t, e)) } }
    var all: [(Double, EngineEvent)] { entries.withLock { $0 } }
}

/// Runs a program; returns its exit status and standard output (standard error passes through).
func runProgram(_ path: String, _ args: [String], cwd: String? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    p.standardOutput = out
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Size of a file in bytes (0 if it does not exist).
func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

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

/// The machine, for the report.
struct Machine {
    var cores: Int
    var cpu: String
    var memGiB: Double
    var kernel: String
    var date: String
    var load: String

    static func current() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?" } ?? "?"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kb =
            meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Double($0) } } ?? 0
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return Machine(
            cores: ProcessInfo.processInfo.activeProcessorCount, cpu: model, memGiB: kb / 1_048_576,
            kernel: "Linux " + release, date: f.string(from: Date()), load: loadAverage())
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

// MARK: Formatting

func fmt(_ x: Double, _ digits: Int = 1) -> String {
    guard x.isFinite else { return "n/a" }
    return String(format: "%.\(digits)f", x)
}

/// Milliseconds or microseconds, whichever reads better.
func duration(_ s: Double) -> String {
    guard s.isFinite else { return "n/a" }
    if s < 1e-3 { return fmt(s * 1e6, 0) + " µs" }
    if s < 1 { return fmt(s * 1e3, 2) + " ms" }
    return fmt(s, 2) + " s"
}
