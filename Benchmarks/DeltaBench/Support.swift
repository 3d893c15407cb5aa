import Foundation
@_exported import BenchSupport
import Synchronization
import LetheEngine
#if canImport(Glibc)
    import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Milliseconds since the epoch (the clock of the engine's audit entries).
func wallMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// Progress messages of `Lethe.run`, each with the monotonic time it arrived (called from the engine's task).
final class Progress: Sendable {
    private let entries = Mutex<[(Double, EngineEvent)]>([])
    func add(_ m: EngineEvent) {
        let t = monotonic()
        entries.withLock { $0.append((t, m)) }
    }
    var all: [(Double, EngineEvent)] { entries.withLock { $0 } }
}

/// The package root: three levels above this file, or the working directory.
let packageRoot: String = {
    let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    if FileManager.default.fileExists(atPath: fromSource + "/Package.swift") { return fromSource }
    return FileManager.default.currentDirectoryPath
}()

/// A program's exit status, standard output, standard error and wall time.
struct Ran {
    var status: Int32
    var out: String
    var err: String
    var seconds: Double
}

func runProgram(_ path: String, _ args: [String]) throws -> Ran {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardInput = FileHandle.nullDevice
    // Standard error goes to a file, so a chatty child cannot block on a full pipe while stdout is read.
    let errPath = NSTemporaryDirectory() + "delta-bench-stderr-\(UUID().uuidString)"
    guard FileManager.default.createFile(atPath: errPath, contents: nil), let errFile = FileHandle(forWritingAtPath: errPath) else {
        throw BenchError("cannot create \(errPath)")
    }
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = errFile
    let t0 = monotonic()
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let secs = monotonic() - t0
    try? errFile.close()
    let e = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
    return Ran(
        status: p.terminationStatus, out: String(decoding: o, as: UTF8.self),
        err: String(decoding: e, as: UTF8.self), seconds: secs)
}

/// The venv's Python running scripts/delta_bench.py.
struct Python {
    let python: String
    let script: String

    init() throws {
        python = ProcessInfo.processInfo.environment["LETHE_PYTHON"] ?? packageRoot + "/.venv/bin/python"
        script = packageRoot + "/scripts/delta_bench.py"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw BenchError("lethe-bench delta needs \(python) with deltalake and pyarrow: run `scripts/bootstrap --python` or set LETHE_PYTHON")
        }
        guard FileManager.default.fileExists(atPath: script) else { throw BenchError("missing \(script)") }
    }

    /// Runs a command of the script; returns its JSON object (the last line of its output) and the process wall time.
    func call(_ args: [String]) throws -> (json: [String: Any], wall: Double) {
        let r = try runProgram(python, [script] + args)
        guard r.status == 0 else {
            throw BenchError("delta_bench.py \(args.first ?? "") exited with status \(r.status): \(r.err.suffix(2000))")
        }
        guard let line = r.out.split(separator: "\n").last,
            let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw BenchError("delta_bench.py \(args.first ?? ""): no JSON in its output: \(r.out.suffix(500))")
        }
        return (j, r.seconds)
    }
}

extension Dictionary where Key == String, Value == Any {
    func int(_ k: String) throws -> Int64 {
        guard let n = self[k] as? NSNumber else { throw BenchError("missing number `\(k)` in \(self)") }
        return n.int64Value
    }
    func double(_ k: String) throws -> Double {
        guard let n = self[k] as? NSNumber else { throw BenchError("missing number `\(k)` in \(self)") }
        return n.doubleValue
    }
}

/// Bytes under a folder (regular files, not following links).
func folderBytes(_ path: String) -> Int64 {
    guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total: Int64 = 0
    while let rel = e.nextObject() as? String {
        var st = stat()
        if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
    }
    return total
}

/// Copies a folder the way `cp -r` does (the copies the two tools work on are made the same way).
func copyTree(_ from: String, _ to: String) throws {
    try FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let r = try runProgram("/bin/cp", ["-r", from, to])
    guard r.status == 0 else { throw BenchError("cp -r \(from) \(to) failed: \(r.err)") }
}

struct Machine {
    var cores = ProcessInfo.processInfo.activeProcessorCount
    var cpu = "unknown CPU"
    var memGiB = 0.0

    init() {
        if let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = s.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
            let line = s.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
        {
            memGiB = kb / 1_048_576
        }
    }

    static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

// MARK: Formatting

func fmt(_ x: Double, _ digits: Int = 2) -> String {
    guard x.isFinite else { return "n/a" }
    return String(format: "%.\(digits)f", x)
}

/// Seconds with three significant decimals below 10 s.
func secs(_ x: Double) -> String { x < 10 ? fmt(x, 3) : fmt(x, 1) }

func megabytes(_ b: Int64) -> String { fmt(Double(b) / 1e6, 1) + " MB" }
