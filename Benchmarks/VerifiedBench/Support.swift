import Foundation
import BenchSupport
import LetheEngine
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The package root: three levels above this file, or the working directory.
let packageRoot: String = {
    let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    if FileManager.default.fileExists(atPath: fromSource + "/Package.swift") { return fromSource }
    return FileManager.default.currentDirectoryPath
}()

/// Timestamped events of `Lethe.run(events:)` (called from the engine's task).
final class EventLog: Sendable {
    private let entries = Mutex<[(Double, EngineEvent)]>([])
    func add(_ e: EngineEvent) {
        let t = monotonic()
        entries.withLock { $0.append((t, e)) }
    }
    var all: [(Double, EngineEvent)] { entries.withLock { $0 } }
}

/// A finished program: exit status, standard output, standard error, wall time, and whether it was killed at the timeout.
struct Ran {
    var status: Int32
    var out: String
    var err: String
    var seconds: Double
    var timedOut = false
}

/// Runs a program; standard output to `stdout` (a file path, or a pipe read to the end when nil).
func runProgram(_ path: String, _ args: [String], cwd: String? = nil, stdoutTo: String? = nil, timeout: Double? = nil) throws -> Ran {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    p.standardInput = FileHandle.nullDevice
    let errPath = NSTemporaryDirectory() + "verified-bench-stderr-\(UUID().uuidString)"
    guard FileManager.default.createFile(atPath: errPath, contents: nil), let errFile = FileHandle(forWritingAtPath: errPath) else {
        throw BenchError("cannot create \(errPath)")
    }
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    p.standardError = errFile
    let pipe = Pipe()
    var outFile: FileHandle?
    if let stdoutTo {
        // Opened in place (never created by rename: /dev/null must stay a device).
        guard let h = FileHandle(forWritingAtPath: stdoutTo) else { throw BenchError("cannot open \(stdoutTo)") }
        outFile = h
        p.standardOutput = h
    } else {
        p.standardOutput = pipe
    }
    let t0 = monotonic()
    try p.run()
    let killed = Mutex(false)
    if let timeout {
        let pid = p.processIdentifier
        Thread.detachNewThread {
            let deadline = monotonic() + timeout
            while monotonic() < deadline {
                if kill(pid, 0) != 0 { return }
                usleep(100_000)
            }
            killed.withLock { $0 = true }
            kill(pid, SIGKILL)
        }
    }
    var o = Data()
    if stdoutTo == nil { o = pipe.fileHandleForReading.readDataToEndOfFile() }
    p.waitUntilExit()
    let secs = monotonic() - t0
    try? errFile.close()
    try? outFile?.close()
    let e = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
    return Ran(
        status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self),
        seconds: secs, timedOut: killed.withLock { $0 })
}

/// The venv's Python running one of the bench scripts; each command prints one JSON object as its last line.
struct Python {
    let python: String

    init() throws {
        python = ProcessInfo.processInfo.environment["LETHE_PYTHON"] ?? packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw BenchError("lethe-bench verified needs \(python) with pyarrow and deltalake: run `scripts/bootstrap --python` or set LETHE_PYTHON")
        }
    }

    func call(_ script: String, _ args: [String]) throws -> (json: [String: Any], wall: Double) {
        let r = try runProgram(python, [packageRoot + "/scripts/" + script] + args)
        guard r.status == 0 else { throw BenchError("\(script) \(args.first ?? "") exited with status \(r.status): \(r.err.suffix(1500))") }
        guard let line = r.out.split(separator: "\n").last,
            let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw BenchError("\(script) \(args.first ?? ""): no JSON in its output: \(r.out.suffix(500))") }
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
    func string(_ k: String) throws -> String {
        guard let s = self[k] as? String else { throw BenchError("missing string `\(k)` in \(self)") }
        return s
    }
}

/// FNV-1a 64 of some byte strings, hex: the fingerprint of a generator and its parameters (names a data cache folder).
func fingerprint(_ parts: [[UInt8]]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for p in parts {
        for b in p + [0] {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
    }
    return String(h, radix: 16)
}

func fileBytes(_ path: String) -> [UInt8] { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? [] }

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

/// `cp -a FROM TO` (both tools work on copies made the same way).
func copyTree(_ from: String, _ to: String) throws {
    try FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let r = try runProgram("/bin/cp", ["-a", from, to])
    guard r.status == 0 else { throw BenchError("cp -a \(from) \(to) failed: \(r.err)") }
}

struct Machine {
    var cores = ProcessInfo.processInfo.activeProcessorCount
    var cpu = "unknown CPU"
    var memGiB = 0.0
    var kernel = "?"

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
        var u = utsname()
        uname(&u)
        kernel = "Linux " + withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// The file-system type of a folder (`df --output=fstype`; `stat -f` says ext2/ext3 for ext4).
    static func fsType(_ path: String) -> String {
        let out = (try? runProgram("/bin/df", ["--output=fstype", path]))?.out ?? ""
        return out.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

func fmt(_ x: Double, _ digits: Int = 2) -> String {
    guard x.isFinite else { return "n/a" }
    return String(format: "%.\(digits)f", x)
}

/// Seconds with three decimals below 10 s.
func secs(_ x: Double) -> String { x < 10 ? fmt(x, 3) : fmt(x, 1) }

func megabytes(_ b: Int64) -> String { fmt(Double(b) / 1e6, 1) + " MB" }
