import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Small helpers shared by the benchmark programs (`lethe-bench`, `delta-bench`).

/// Seconds on the monotonic clock.
public func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// An integer with thousands separators: 1,234,567.
public func grouped(_ n: Int64) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

public func grouped(_ n: Int) -> String { grouped(Int64(n)) }

/// Prints a line at once (stdout of a redirected run is otherwise block-buffered).
public func say(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}

/// A benchmark's failure, printed as its one-line reason.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The package root: three levels above this file, or the working directory.
public let packageRoot: String = {
    let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    if FileManager.default.fileExists(atPath: fromSource + "/Package.swift") { return fromSource }
    return FileManager.default.currentDirectoryPath
}()

/// Events, each with the monotonic time it arrived (e.g. the engine's events from `Lethe.run(events:)`,
/// added from the engine's task).
public final class TimedLog<Event: Sendable>: Sendable {
    private let entries = Mutex<[(Double, Event)]>([])
    public init() {}
    public func add(_ e: Event) {
        let t = monotonic()
        entries.withLock { $0.append((t, e)) }
    }
    public var all: [(Double, Event)] { entries.withLock { $0 } }
}

/// A finished program: exit status, standard output, standard error, wall time, and whether it was
/// killed at the timeout.
public struct Ran: Sendable {
    public var status: Int32
    public var out: String
    public var err: String
    public var seconds: Double
    public var timedOut = false
}

/// Runs a program (standard input from /dev/null). Standard output goes to `stdoutTo` (a path opened
/// in place, never created by rename: /dev/null must stay a device) or is read to the end; standard
/// error goes to a temporary file, so a chatty child cannot block on a full pipe. With `timeout`, the
/// child is killed after that many seconds.
public func runProgram(_ path: String, _ args: [String], cwd: String? = nil, stdoutTo: String? = nil, timeout: Double? = nil) throws -> Ran {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    p.standardInput = FileHandle.nullDevice
    let errPath = NSTemporaryDirectory() + "lethe-bench-stderr-\(UUID().uuidString)"
    guard FileManager.default.createFile(atPath: errPath, contents: nil), let errFile = FileHandle(forWritingAtPath: errPath) else {
        throw BenchError("cannot create \(errPath)")
    }
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    p.standardError = errFile
    let pipe = Pipe()
    var outFile: FileHandle?
    if let stdoutTo {
        // open(2), created or emptied in place: FileHandle(forWritingAtPath:) needs an existing file, and
        // FileManager.createFile writes aside and renames, which would replace a device such as /dev/null.
        let fd = open(stdoutTo, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot open \(stdoutTo)") }
        let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
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

/// The venv's Python running the bench scripts in `scripts/`; each command prints one JSON object as
/// its last line.
public struct Python: Sendable {
    public let python: String

    /// `bench` names the benchmark in the error when the venv is missing.
    public init(for bench: String) throws {
        python = ProcessInfo.processInfo.environment["LETHE_PYTHON"] ?? packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw BenchError("lethe-bench \(bench) needs \(python) with pyarrow and deltalake: run `scripts/bootstrap --python` or set LETHE_PYTHON")
        }
    }

    /// Runs `scripts/<script> args…`; returns its JSON object (the last line of its output) and the process wall time.
    public func call(_ script: String, _ args: [String]) throws -> (json: [String: Any], wall: Double) {
        let path = packageRoot + "/scripts/" + script
        guard FileManager.default.fileExists(atPath: path) else { throw BenchError("missing \(path)") }
        let r = try runProgram(python, [path] + args)
        guard r.status == 0 else { throw BenchError("\(script) \(args.first ?? "") exited with status \(r.status): \(r.err.suffix(1500))") }
        guard let line = r.out.split(separator: "\n").last,
            let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw BenchError("\(script) \(args.first ?? ""): no JSON in its output: \(r.out.suffix(500))") }
        return (j, r.seconds)
    }
}

extension Dictionary where Key == String, Value == Any {
    public func int(_ k: String) throws -> Int64 {
        guard let n = self[k] as? NSNumber else { throw BenchError("missing number `\(k)` in \(self)") }
        return n.int64Value
    }
    public func double(_ k: String) throws -> Double {
        guard let n = self[k] as? NSNumber else { throw BenchError("missing number `\(k)` in \(self)") }
        return n.doubleValue
    }
    public func string(_ k: String) throws -> String {
        guard let s = self[k] as? String else { throw BenchError("missing string `\(k)` in \(self)") }
        return s
    }
}

/// FNV-1a 64 of some byte strings, hex: the fingerprint of a generator and its parameters (names a data cache folder).
public func fingerprint(_ parts: [[UInt8]]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for p in parts {
        for b in p + [0] {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
    }
    return String(h, radix: 16)
}

/// A file's bytes (empty when it cannot be read).
public func fileBytes(_ path: String) -> [UInt8] { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? [] }

/// Size of a file in bytes (0 if it does not exist).
public func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

/// Bytes under a folder (regular files, not following links).
public func folderBytes(_ path: String) -> Int64 {
    guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total: Int64 = 0
    while let rel = e.nextObject() as? String {
        var st = stat()
        if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
    }
    return total
}

/// `cp -a FROM TO` (the copies the tools compared work on are made the same way).
public func copyTree(_ from: String, _ to: String) throws {
    try FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let r = try runProgram("/bin/cp", ["-a", from, to])
    guard r.status == 0 else { throw BenchError("cp -a \(from) \(to) failed: \(r.err)") }
}

/// The machine a figure was measured on.
public struct Machine: Sendable {
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    public var cpu = "unknown CPU"
    public var memGiB = 0.0
    public var kernel = "?"
    /// When the machine was looked at (ISO 8601) and its load averages then.
    public var date: String
    public var load: String

    public init() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        date = f.string(from: Date())
        load = Self.load()
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

    public static func current() -> Machine { Machine() }
    public static func loadAverage() -> String { load() }

    /// The load averages (1, 5, 15 minutes).
    public static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// The file-system type of a folder (`df --output=fstype`; `stat -f` says ext2/ext3 for ext4).
    public static func fsType(_ path: String) -> String {
        let out = (try? runProgram("/bin/df", ["--output=fstype", path]))?.out ?? ""
        return out.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

// MARK: Formatting

public func fmt(_ x: Double, _ digits: Int = 2) -> String {
    guard x.isFinite else { return "n/a" }
    return String(format: "%.\(digits)f", x)
}

/// Seconds with three decimals below 10 s.
public func secs(_ x: Double) -> String { x < 10 ? fmt(x, 3) : fmt(x, 1) }

public func megabytes(_ b: Int64) -> String { fmt(Double(b) / 1e6, 1) + " MB" }
