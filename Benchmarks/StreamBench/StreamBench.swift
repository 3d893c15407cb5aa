// lethe-bench stream: `lethe filter` against a Python json.loads + set filter (scripts/bench_stream.py), side by side.
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench && swift build -c release --product lethe
//   $(swift build -c release --show-bin-path)/lethe-bench stream [--events 1000000] [--sets 100000,10000000] [--dir /tmp/lethe-stream-bench]
//
// Generates ~220-byte events, a state folder per deletion-set size (cached across
// runs in --dir), runs the release `lethe` binary next to this program under
// /usr/bin/time -v, runs the Python filter, checks both outputs are identical, and
// measures the approve → first dropped event delay of `lethe filter --follow`.
// Prints a Markdown table.
import Foundation
import BenchSupport
import LetheCore
import LetheCatalog
import LetheRuntime
import LetheEngine
import Synchronization

// MARK: - Options

struct Options {
    var eventsCount = 1_000_000
    var setSizes = [100_000, 10_000_000]
    var dir = "/tmp/lethe-stream-bench"
    var repeats = 3
}
let options: Options = {
    var o = Options()
    var args = CommandLine.arguments.dropFirst(2).makeIterator()  // lethe-bench stream …
    while let a = args.next() {
        switch a {
        case "--events": o.eventsCount = Int(args.next() ?? "") ?? o.eventsCount
        case "--sets": o.setSizes = (args.next() ?? "").split(separator: ",").compactMap { Int($0) }
        case "--dir": o.dir = args.next() ?? o.dir
        case "--repeats": o.repeats = Int(args.next() ?? "") ?? o.repeats
        default: FileHandle.standardError.write(Data("unknown option \(a)\n".utf8)); exit(2)
        }
    }
    return o
}()
let eventsCount = options.eventsCount
let setSizes = options.setSizes
let dir = options.dir
let repeats = options.repeats
let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
let letheBin = ProcessInfo.processInfo.environment["LETHE_BIN"] ?? binDir + "/lethe"

func log(_ s: String) { FileHandle.standardError.write(Data(("· " + s + "\n").utf8)) }
@Sendable func now() -> Double { Date().timeIntervalSince1970 }

// MARK: - Events

/// Subjects of events are u-0 … u-(universe-1); of those, u-0 … u-(inLake-1) are forgotten (5 %).
let universe = 1_000_000
let inLake = 50_000
let eventsPath = dir + "/events-\(eventsCount).jsonl"

// MARK: - State folders

func setupState(_ n: Int) async throws -> String {
    let root = dir + "/state-\(n)"
    let done = root + "/.complete"
    let yaml = """
        lake: ./lake
        state: ./state
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user.id

        """
    if FileManager.default.fileExists(atPath: done) { return root }
    try? FileManager.default.removeItem(atPath: root)
    try FileManager.default.createDirectory(atPath: root + "/lake/events", withIntermediateDirectories: true)
    try yaml.write(toFile: root + "/lethe.yaml", atomically: true, encoding: .utf8)
    let (secrets, meta) = try Runtime.openState(folder: root + "/state")
    log("filing \(n) approved requests in \(root)")
    let t0 = now()
    var ids: [String] = []
    ids.reserveCapacity(n)
    // Bulk load: the real request rows (keyed hash, stream tag, approved status), without
    // the sealed raw id and plan that `lethe forget` adds (they play no part in filtering).
    let batch = 200_000
    var i = 0
    while i < n {
        var rs: [ErasureRequest] = []
        rs.reserveCapacity(batch)
        for j in i..<min(n, i + batch) {
            let subject = SubjectID(j < inLake ? "u-\(j)" : "gone-\(j)")
            if j < inLake { ids.append(subject.string) }
            var r = ErasureRequest(
                id: "r-bench-\(j)", subjectKey: secrets.hasher.key(for: subject), sealedSubject: nil,
                reason: "bench", requestedBy: "alice", at: 1_700_000_000_000 + Int64(j))
            r.status = .approved
            r.decidedBy = "bob"
            r.streamTag = secrets.streamTag(subject)
            rs.append(r)
        }
        try await meta.insertRequests(rs)
        i += batch
    }
    log(String(format: "filed %d requests in %.1fs", n, now() - t0))
    // The Python filter's set: every forgotten raw id, one a line.
    var list = ""
    for j in 0..<n { list += (j < inLake ? "u-\(j)" : "gone-\(j)") + "\n" }
    try list.write(toFile: root + "/forgotten.txt", atomically: true, encoding: .utf8)
    _ = FileManager.default.createFile(atPath: done, contents: Data())
    return root
}

// MARK: - Running things

struct RunResult { var seconds: Double; var maxRSSKB: Int; var stderr: String; var status: Int32; var user = 0.0; var sys = 0.0 }

/// Runs a command under /usr/bin/time -v; wall time measured here (process start included).
func timed(_ args: [String], cwd: String, stdin: String? = nil, stdout: String = "/dev/null") throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
    p.arguments = ["-v"] + args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    if let stdin { p.standardInput = FileHandle(forReadingAtPath: stdin) }
    // Opened in place (created or truncated): `FileManager.createFile` writes a temporary file and
    // renames it over the path, which as root replaced /dev/null with a regular file.
    let out = open(stdout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard out >= 0 else { throw LetheError.io("cannot open the output", at: stdout, errno: errno) }
    p.standardOutput = FileHandle(fileDescriptor: out, closeOnDealloc: true)
    let errPipe = Pipe()
    p.standardError = errPipe
    let t0 = now()
    try p.run()
    let errData = errPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let secs = now() - t0
    let text = String(decoding: errData, as: UTF8.self)
    var r = RunResult(seconds: secs, maxRSSKB: 0, stderr: text, status: p.terminationStatus)
    for line in text.split(separator: "\n") {
        let value = line.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if line.contains("Maximum resident set size") { r.maxRSSKB = Int(value) ?? 0 }
        if line.contains("User time (seconds)") { r.user = Double(value) ?? 0 }
        if line.contains("System time (seconds)") { r.sys = Double(value) ?? 0 }
    }
    return r
}

struct Row { var set: Int; var what: String; var seconds: Double; var rssMB: Double; var note: String }

func best(_ n: Int, _ body: () throws -> RunResult) rethrows -> RunResult {
    var r = try body()
    for _ in 1..<max(1, n) {
        let s = try body()
        if s.seconds < r.seconds { r = s }
    }
    return r
}

// MARK: - Steady resident memory of a running filter

/// VmRSS (KB) of `lethe filter --follow` on an idle input once the set is loaded (RSS stable for 1 s).
func steadyRSSKB(root: String) throws -> Int {
    let idle = dir + "/idle.jsonl"
    _ = FileManager.default.createFile(atPath: idle, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: letheBin)
    p.arguments = ["filter", "--config", root + "/lethe.yaml", "--field", "user.id", "--in", idle, "--follow", "--out", dir + "/idle-out.jsonl"]
    p.standardError = FileHandle.nullDevice
    try p.run()
    defer { p.terminate(); p.waitUntilExit() }
    func rss() -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    var last = -1, stableSince = now()
    let start = now()
    while now() - start < 120 {
        usleep(200_000)
        let r = rss()
        if r != last { last = r; stableSince = now() } else if now() - stableSince >= 1.0 && r > 0 { return r }
    }
    return last
}

// MARK: - approve → first dropped event, with --follow

func followDelay(root: String, trials: Int) async throws -> [Double] {
    let config = try LakeConfig.load(path: root + "/lethe.yaml")
    let lethe = try Runtime.open(config: config)
    var delays: [Double] = []
    for trial in 0..<trials {
        let subject = "live-\(UUID().uuidString.prefix(8))-\(trial)"
        let req = try await lethe.forget([SubjectID(subject)], reason: "bench", by: "alice")[0]
        let live = dir + "/live.jsonl", liveOut = dir + "/live-out.jsonl"
        _ = FileManager.default.createFile(atPath: live, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: letheBin)
        p.arguments = ["filter", "--config", root + "/lethe.yaml", "--field", "user.id", "--in", live, "--out", liveOut, "--follow"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        // The writer: one event of the subject every millisecond, with its write time.
        let fd = open(live, O_WRONLY | O_APPEND)
        final class Times: Sendable { let state = Mutex<(t: [Double], stop: Bool)>(([], false)) }
        let times = Times()
        let writer = Thread {
            var seq = 0
            while true {
                let stop = times.state.withLock { $0.stop }
                if stop { break }
                let line = Array(#"{"user":{"id":"\#(subject)"},"seq":\#(seq)}"#.utf8) + [0x0A]
                let t = now()
                _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
                times.state.withLock { $0.t.append(t) }
                seq += 1
                usleep(1000)
            }
        }
        writer.start()
        try await Task.sleep(nanoseconds: 1_500_000_000)
        _ = try await lethe.approve([req.id], by: "bob")
        let approvedAt = now()
        try await Task.sleep(nanoseconds: 2_000_000_000)
        times.state.withLock { $0.stop = true }
        try await Task.sleep(nanoseconds: 100_000_000)
        p.terminate()
        p.waitUntilExit()
        close(fd)
        let outText = (try? String(contentsOfFile: liveOut, encoding: .utf8)) ?? ""
        var maxKept = -1
        for line in outText.split(separator: "\n") {
            if let r = line.range(of: "\"seq\":") {
                maxKept = max(maxKept, Int(line[r.upperBound...].dropLast()) ?? -1)
            }
        }
        let t = times.state.withLock { $0.t }
        if maxKept + 1 < t.count {
            delays.append((t[maxKept + 1] - approvedAt) * 1000)
        } else {
            log("trial \(trial): no event was dropped")
        }
    }
    return delays
}

// MARK: - Report

func machine() -> String {
    let m = Machine()
    return "\(m.cpu), \(m.cores) cores, \(Int(m.memGiB)) GiB"
}

/// `lethe-bench stream`: the benchmark's steps, in order.
public enum StreamBench {
    public static func main() async {
        do { try await run() } catch {
            FileHandle.standardError.write(Data("lethe-bench stream: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run() async throws {
        guard FileManager.default.isExecutableFile(atPath: letheBin) else {
            print("no lethe binary at \(letheBin): build it with `swift build -c release --product lethe`")
            exit(1)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: eventsPath) {
            log("generating \(eventsCount) events")
            var rng = SystemRandomNumberGenerator()
            var text = ""
            text.reserveCapacity(eventsCount * 230)
            let kinds = ["page_view", "add_to_cart", "purchase", "search", "click"]
            let countries = ["DE", "FR", "US", "JP", "BR", "IN"]
            for i in 0..<eventsCount {
                let u = Int.random(in: 0..<universe, using: &rng)
                let item = Int.random(in: 0..<100_000, using: &rng)
                let session = String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16)
                text += #"{"ts":\#(1_700_000_000_000 + i * 7),"event":"\#(kinds[i % 5])","user":{"id":"u-\#(u)","country":"\#(countries[u % 6])"},"#
                text += #""item":{"id":"i-\#(item)","price":\#(item % 997).\#(item % 89)},"session":"s-\#(session)","#
                text += #""ua":"Mozilla/5.0 (X11; Linux x86_64)","ref":"https://shop.example.com/p/\#(item)"}"# + "\n"
            }
            try text.write(toFile: eventsPath, atomically: true, encoding: .utf8)
        }
        let eventsBytes = (try FileManager.default.attributesOfItem(atPath: eventsPath)[.size] as? NSNumber)?.intValue ?? 0
        log("events: \(eventsCount), \(eventsBytes) bytes (\(eventsBytes / max(eventsCount, 1)) B each)")
        var rows: [Row] = []
        var baselineRSS: Double = 0
        var perSubject: [(Int, Double)] = []
        // Baseline resident memory: an empty deletion set, no input.
        do {
            let root = try await setupState(0)
            // The same run as the measured ones (1M events to a file) with an empty set, so I/O buffers cancel out.
            let r = try timed(
                [
                    letheBin, "filter", "--config", root + "/lethe.yaml", "--field", "user.id", "--in", eventsPath,
                    "--out", dir + "/out-empty.jsonl",
                ], cwd: root)
            baselineRSS = Double(r.maxRSSKB) / 1024
        }

        for n in setSizes {
            let root = try await setupState(n)
            let cfg = root + "/lethe.yaml"
            // Start-up alone (load the set, no events).
            let empty = try best(repeats) {
                try timed([letheBin, "filter", "--config", cfg, "--field", "user.id", "--in", "/dev/null"], cwd: root)
            }
            let outL = dir + "/out-lethe.jsonl"
            let l = try best(repeats) {
                try timed([letheBin, "filter", "--config", cfg, "--field", "user.id", "--in", eventsPath, "--out", outL], cwd: root)
            }
            guard l.status == 0 else { print("lethe filter failed:\n\(l.stderr)"); exit(1) }
            let lNull = try best(repeats) {
                try timed([letheBin, "filter", "--config", cfg, "--field", "user.id", "--in", eventsPath], cwd: root)
            }
            let lFast = try best(repeats) {
                try timed([letheBin, "filter", "--config", cfg, "--field", "user.id", "--validate", "fast", "--in", eventsPath], cwd: root)
            }
            // Issue 16: a kept line read only up to its subject (the output of `full` under `--on-malformed pass`).
            let outM = dir + "/out-minimal.jsonl"
            let lMin = try best(repeats) {
                try timed(
                    [
                        letheBin, "filter", "--config", cfg, "--field", "user.id", "--on-malformed", "pass", "--validate", "minimal",
                        "--in", eventsPath, "--out", outM,
                    ], cwd: root)
            }
            let lMinNull = try best(repeats) {
                try timed(
                    [
                        letheBin, "filter", "--config", cfg, "--field", "user.id", "--on-malformed", "pass", "--validate", "minimal",
                        "--in", eventsPath,
                    ], cwd: root)
            }
            let outP = dir + "/out-python.jsonl"
            let py = try timed(["python3", packageRoot + "/scripts/bench_stream.py", root + "/forgotten.txt"], cwd: root, stdin: eventsPath, stdout: outP)
            guard py.status == 0 else { print("python filter failed:\n\(py.stderr)"); exit(1) }
            let same = FileManager.default.contentsEqual(atPath: outL, andPath: outP)
            let kept = (try? Data(contentsOf: URL(fileURLWithPath: outL)).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }) ?? 0
            let rss = Double(l.maxRSSKB) / 1024
            perSubject.append((n, (rss - baselineRSS) * 1024 * 1024 / Double(max(n, 1))))
            rows.append(
                Row(
                    set: n, what: "lethe filter --out FILE (incl. process start)", seconds: l.seconds, rssMB: rss,
                    note: String(
                        format: "\(eventsCount - kept) dropped; output \(same ? "identical to" : "DIFFERS from") Python's; CPU %.2f s user + %.2f s sys",
                        l.user, l.sys)))
            rows.append(
                Row(
                    set: n, what: "lethe filter, output to /dev/null", seconds: lNull.seconds, rssMB: Double(lNull.maxRSSKB) / 1024,
                    note: String(format: "CPU %.2f s user + %.2f s sys", lNull.user, lNull.sys)))
            rows.append(
                Row(
                    set: n, what: "lethe filter --validate fast, output to /dev/null", seconds: lFast.seconds, rssMB: Double(lFast.maxRSSKB) / 1024,
                    note: String(format: "CPU %.2f s user + %.2f s sys", lFast.user, lFast.sys)))
            let sameMin = FileManager.default.contentsEqual(atPath: outM, andPath: outP)
            rows.append(
                Row(
                    set: n, what: "lethe filter --on-malformed pass --validate minimal --out FILE", seconds: lMin.seconds,
                    rssMB: Double(lMin.maxRSSKB) / 1024,
                    note: String(
                        format: "output \(sameMin ? "identical to" : "DIFFERS from") Python's; CPU %.2f s user + %.2f s sys; %.1f× Python",
                        lMin.user, lMin.sys, py.seconds / lMin.seconds)))
            rows.append(
                Row(
                    set: n, what: "lethe filter --on-malformed pass --validate minimal, output to /dev/null", seconds: lMinNull.seconds,
                    rssMB: Double(lMinNull.maxRSSKB) / 1024,
                    note: String(format: "CPU %.2f s user + %.2f s sys; %.1f× Python", lMinNull.user, lMinNull.sys, py.seconds / lMinNull.seconds)))
            rows.append(
                Row(
                    set: n, what: "lethe filter, start-up only (empty input)", seconds: empty.seconds,
                    rssMB: Double(empty.maxRSSKB) / 1024, note: "loads the set (snapshot file, then catch-up from SQLite)"))
            rows.append(Row(set: n, what: "lethe filter minus start-up", seconds: max(l.seconds - empty.seconds, 1e-6), rssMB: rss, note: "steady-state rate"))
            rows.append(
                Row(
                    set: n, what: "Python json.loads + set (incl. start)", seconds: py.seconds, rssMB: Double(py.maxRSSKB) / 1024,
                    note: String(format: "CPU %.2f s user + %.2f s sys; lethe (--out FILE) is %.1f× faster", py.user, py.sys, py.seconds / l.seconds)))
        }
        var steadyBase = 0
        var steady: [(Int, Int)] = []
        do {
            steadyBase = try steadyRSSKB(root: try await setupState(0))
            for n in setSizes { steady.append((n, try steadyRSSKB(root: try await setupState(n)))) }
        }
        let delayRoot = try await setupState(setSizes.first ?? 0)
        let delays = try await followDelay(root: delayRoot, trials: 5).sorted()
        var md = "Run \(ISO8601DateFormatter().string(from: Date())) on \(machine()); "
        md += "\(eventsCount) events, \(eventsBytes) bytes (\(eventsBytes / max(eventsCount, 1)) B/event), 5 % of events from forgotten subjects. "
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
        md +=
            "Wall time includes process start; best of \(repeats) for lethe, one run for Python. Load average at the end: \(load) (other builds shared the 2 cores).\n\n"
        md += "| forgotten subjects | filter | seconds | events/s | MB/s | max RSS (MB) | note |\n"
        md += "|---:|---|---:|---:|---:|---:|---|\n"
        for r in rows {
            let eps = r.what.contains("start-up only") ? "—" : String(format: "%.2fM", Double(eventsCount) / r.seconds / 1e6)
            let mbs = r.what.contains("start-up only") ? "—" : String(format: "%.0f", Double(eventsBytes) / r.seconds / 1e6)
            md += "| \(r.set) | \(r.what) | \(String(format: "%.3f", r.seconds)) | \(eps) | \(mbs) | \(String(format: "%.0f", r.rssMB)) | \(r.note) |\n"
        }
        md +=
            "\nResident memory per forgotten subject, steady (VmRSS of a running `lethe filter --follow` once the set is loaded, minus the \(steadyBase / 1024) MB with an empty set, divided by the set size): "
        md +=
            steady.map { String(format: "%d subjects: %.1f B (%d MB)", $0.0, Double(($0.1 - steadyBase) * 1024) / Double(max($0.0, 1)), $0.1 / 1024) }.joined(
                separator: "; ") + ".\n"
        md +=
            "Peak (max RSS of the 1M-event run minus the \(String(format: "%.0f", baselineRSS)) MB of an empty set, divided by the set size; with the set from the snapshot file): "
        md += perSubject.map { String(format: "%d subjects: %.1f B", $0.0, $0.1) }.joined(separator: "; ") + ".\n"
        if delays.isEmpty {
            md += "\napprove → first dropped event (`--follow`): not measured (no event dropped).\n"
        } else {
            md += String(
                format:
                    "\napprove → first dropped event while `lethe filter --follow` runs (%d trials, events written every 1 ms, set of %d): median %.0f ms, max %.0f ms.\n",
                delays.count, setSizes.first ?? 0, delays[delays.count / 2], delays.last!)
        }
        print(md)
    }
}
