// lethe-bench serve: `lethe serve` under load on loopback (issue 14): 1,000 concurrent filings and
// 10,000 locates with bounded concurrency, against the release binary over an embedded (SQLite) state.
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench && swift build -c release --product lethe
//   $(swift build -c release --show-bin-path)/lethe-bench serve [--filings 1000] [--locates 10000]
//       [--concurrency 64] [--connections 128] [--dir /tmp/lethe-serve-bench]
//
// Makes the quickstart lake (12,000 users) with `lethe quickstart`, indexes it, creates a requester
// token, starts `lethe serve --port 0` (a free loopback port) and then:
//   0. files `--sequential` requests and locates as many subjects one call at a time (an idle server's latency);
//   1. files `--filings` requests at once, one subject each (all sent together; the client opens at
//      most `--connections` connections, the rest wait in its queue, which the latency includes);
//   2. locates `--locates` subjects, `--concurrency` at a time, half of them in the lake, half not.
// Checks that nothing was lost (every filing 201 with one planned request, distinct ids, the state
// lists exactly that many requests; every locate 200, a hit for the known subjects and none for the
// unknown ones), then stops the server (SIGTERM) and prints p50/p90/p99/max per operation, the
// throughput and the server's CPU time per call (/proc), next to the issue's goals. Loopback only;
// every request has a 60 s timeout; the server is stopped whatever happens.
import AsyncHTTPClient
import BenchSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

public enum ServeBench {
    struct Options {
        var filings = 1_000
        var locates = 10_000
        var concurrency = 64
        var connections = 128
        var sequential = 200
        var dir = "/tmp/lethe-serve-bench"
    }

    static func options() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst(2).makeIterator()  // lethe-bench serve …
        while let a = args.next() {
            switch a {
            case "--filings": o.filings = Int(args.next() ?? "") ?? o.filings
            case "--locates": o.locates = Int(args.next() ?? "") ?? o.locates
            case "--concurrency": o.concurrency = max(1, Int(args.next() ?? "") ?? o.concurrency)
            case "--connections": o.connections = max(1, Int(args.next() ?? "") ?? o.connections)
            case "--sequential": o.sequential = max(0, Int(args.next() ?? "") ?? o.sequential)
            case "--dir": o.dir = args.next() ?? o.dir
            case "--help":
                say("lethe-bench serve [--filings 1000] [--locates 10000] [--concurrency 64] [--connections 128] [--sequential 200] [--dir DIR]")
                exit(0)
            default:
                FileHandle.standardError.write(Data("unknown option \(a)\n".utf8))
                exit(2)
            }
        }
        return o
    }

    /// The next index to hand out, shared by the locating tasks.
    final class Counter: Sendable {
        private let n = Atomic<Int>(0)
        func take() -> Int { n.add(1, ordering: .relaxed).oldValue }
    }

    static func log(_ s: String) { FileHandle.standardError.write(Data(("· " + s + "\n").utf8)) }

    public static func main() async {
        do {
            try await run(options())
        } catch {
            FileHandle.standardError.write(Data("lethe-bench serve: \(error)\n".utf8))
            exit(1)
        }
    }

    /// The release `lethe` next to this program (or LETHE_BIN).
    static var letheBin: String {
        let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        return ProcessInfo.processInfo.environment["LETHE_BIN"] ?? binDir + "/lethe"
    }

    static func run(_ o: Options) async throws {
        let lethe = letheBin
        guard FileManager.default.isExecutableFile(atPath: lethe) else { throw BenchError("no lethe binary at \(lethe) (build it, or set LETHE_BIN)") }
        try? FileManager.default.removeItem(atPath: o.dir)
        try FileManager.default.createDirectory(atPath: o.dir, withIntermediateDirectories: true)
        let qs = o.dir + "/qs"
        log("quickstart lake in \(qs)")
        try check(try runProgram(lethe, ["quickstart", "--dir", qs], timeout: 600), "lethe quickstart")
        try check(try runProgram(lethe, ["index"], cwd: qs, timeout: 600), "lethe index")
        let made = try runProgram(lethe, ["token", "create", "--name", "bench-requester", "--role", "requester", "--json"], cwd: qs, timeout: 60)
        try check(made, "lethe token create")
        let approverRun = try runProgram(lethe, ["token", "create", "--name", "bench-approver", "--role", "approver", "--json"], cwd: qs, timeout: 60)
        try check(approverRun, "lethe token create")
        let requester = try tokenOf(made.out), approver = try tokenOf(approverRun.out)

        // Subjects the lake holds: the users of the plain CSV shards (the quickstart forgot u-00042).
        var known: [String] = []
        for shard in 0..<3 {
            let text = try String(contentsOfFile: qs + "/lake/bronze/users/shard-\(shard).csv", encoding: .utf8)
            for line in text.split(separator: "\n").dropFirst() {
                if let id = line.split(separator: ",").first, id != "u-00042" { known.append(String(id)) }
            }
        }
        guard known.count >= 100 else { throw BenchError("only \(known.count) users in the quickstart lake's CSV shards") }
        let server = try Server.start(lethe, cwd: qs)
        defer { server.stop() }
        log("lethe serve on 127.0.0.1:\(server.port) (pid \(server.pid))")
        let base = "http://127.0.0.1:\(server.port)"
        var config = HTTPClient.Configuration()
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: o.connections)
        config.timeout = .init(connect: .seconds(10), read: .seconds(60))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            try await measure(o, client: client, base: base, requester: requester, approver: approver, known: known, serverPID: server.pid) {
                server.cpuSeconds()
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static func measure(
        _ o: Options, client: HTTPClient, base: String, requester: String, approver: String, known: [String], serverPID: Int32,
        cpu: () -> Double
    ) async throws {

        // Warm-up: a few calls of each (connections, the first page of the state).
        for i in 0..<5 {
            _ = try await call(client, base + "/v1/locate", token: requester, body: #"{"subject":"warm-\#(i)"}"#)
        }

        let before = try await listRequests(client, base, token: approver)  // the quickstart's own request

        // 0. One at a time (no queueing): the latency of one call on an idle server.
        log("\(o.sequential) filings and \(o.sequential) locates one at a time")
        var seqFile: [Double] = [], seqLocate: [Double] = []
        var seqBad = 0
        for i in 0..<o.sequential {
            var s = monotonic()
            let (fs, _) = try await call(client, base + "/v1/requests", token: requester, body: #"{"subjects":["seq-\#(i)"],"reason":"bench"}"#)
            seqFile.append(monotonic() - s)
            s = monotonic()
            let (ls, _) = try await call(client, base + "/v1/locate", token: requester, body: #"{"subject":"\#(known[i % known.count])"}"#)
            seqLocate.append(monotonic() - s)
            if fs != 201 || ls != 200 { seqBad += 1 }
        }

        // 1. Filings, all at once.
        log("\(o.filings) concurrent filings")
        let cpu0 = cpu(), client0 = clientCPU()
        let t0 = monotonic()
        let filings = try await withThrowingTaskGroup(of: (Double, Int, String).self) { group in
            for i in 0..<o.filings {
                let subject = String(format: "u-%05d", i)
                group.addTask {
                    let s = monotonic()
                    let (status, body) = try await call(
                        client, base + "/v1/requests", token: requester, body: #"{"subjects":["\#(subject)"],"reason":"bench"}"#)
                    return (monotonic() - s, status, body)
                }
            }
            var out: [(Double, Int, String)] = []
            for try await r in group { out.append(r) }
            return out
        }
        let fileWall = monotonic() - t0
        let fileCPU = cpu() - cpu0, fileClient = clientCPU() - client0
        var ids = Set<String>()
        var badFilings: [String] = []
        for (_, status, body) in filings {
            guard status == 201, let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let rs = json["requests"] as? [[String: Any]], rs.count == 1, let id = rs[0]["id"] as? String,
                rs[0]["status"] as? String == "planned"
            else {
                badFilings.append("\(status) \(body.prefix(200))")
                continue
            }
            ids.insert(id)
        }
        let listedNow = try await listRequests(client, base, token: approver)

        // 2. Locates, `concurrency` at a time: even i a subject of the lake, odd i one that is not.
        log("\(o.locates) locates, \(o.concurrency) at a time")
        let cpu1 = cpu(), client1 = clientCPU()
        let t1 = monotonic()
        let next = Counter()
        let knownSubjects = known
        let locates = try await withThrowingTaskGroup(of: [(Double, Int, Bool, Bool)].self) { group in
            for _ in 0..<o.concurrency {
                group.addTask {
                    var mine: [(Double, Int, Bool, Bool)] = []
                    while true {
                        let i = next.take()
                        if i >= o.locates { return mine }
                        let known = i % 2 == 0
                        let subject = known ? knownSubjects[(i / 2) % knownSubjects.count] : "nobody-\(i)"
                        let s = monotonic()
                        let (status, body) = try await call(client, base + "/v1/locate", token: requester, body: #"{"subject":"\#(subject)"}"#)
                        let hit = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [Any]).map { !$0.isEmpty }
                        mine.append((monotonic() - s, status, known, hit ?? !known))
                    }
                }
            }
            var out: [(Double, Int, Bool, Bool)] = []
            for try await part in group { out += part }
            return out
        }
        let locateWall = monotonic() - t1
        let locateCPU = cpu() - cpu1, locateClient = clientCPU() - client1
        let badLocates = locates.filter { $0.1 != 200 }.count
        let wrongLocates = locates.filter { $0.1 == 200 && $0.2 != $0.3 }.count

        // The checks: none lost, every response as expected.
        var problems: [String] = []
        if filings.count != o.filings { problems.append("\(filings.count) filing responses for \(o.filings) filings") }
        if !badFilings.isEmpty { problems.append("\(badFilings.count) filings without a 201 and one planned request, e.g. \(badFilings[0])") }
        if ids.count != o.filings { problems.append("\(ids.count) distinct request ids for \(o.filings) filings") }
        let listed = listedNow.subtracting(before)
        if seqBad > 0 { problems.append("\(seqBad) one-at-a-time calls without a 201/200") }
        if listed.count != ids.count + o.sequential || !ids.isSubset(of: listed) {
            problems.append("the state lists \(listed.count) new requests for \(ids.count + o.sequential) filed, \(ids.subtracting(listed).count) missing")
        }
        if locates.count != o.locates { problems.append("\(locates.count) locate responses for \(o.locates) locates") }
        if badLocates > 0 { problems.append("\(badLocates) locates without a 200") }
        if wrongLocates > 0 { problems.append("\(wrongLocates) locates with a wrong answer (a known subject not found, or an unknown one found)") }

        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        say("")
        say("lethe-bench serve: \(o.filings) concurrent filings, \(o.locates) locates (\(o.concurrency) at a time), loopback, release build")
        say("load average after the run: \(load); server CPU from /proc/\(serverPID)/stat")
        say("")
        say("| operation | calls | p50 | p90 | p99 | max | wall | throughput | server CPU / call | goal (p99) |")
        say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        say(row("`POST /v1/requests` (one at a time)", seqFile, wall: seqFile.reduce(0, +), cpu: nil, goal: 0.050))
        say(row("`POST /v1/locate` (one at a time)", seqLocate, wall: seqLocate.reduce(0, +), cpu: nil, goal: 0.005))
        say(row("`POST /v1/requests` (all at once)", filings.map(\.0), wall: fileWall, cpu: fileCPU, goal: 0.050))
        say(row("`POST /v1/locate` (\(o.concurrency) at a time)", locates.map(\.0), wall: locateWall, cpu: locateCPU, goal: 0.005))
        say("")
        // What the goals ask of this machine: with every core serving and nothing else running, a call
        // waits for the CPU of the calls ahead of it, so the last of a burst of N answers after at least
        // N × (CPU per call) / cores, and with C calls in flight each waits about C × (CPU per call) / cores.
        let cores = Double(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        say("What the goals ask of this machine (\(Int(cores)) cores; CPU per call as measured, the bench client's on the same cores):")
        say("")
        say("| burst | server CPU / call | client CPU / call | least p99 the server's CPU allows | CPU / call the goal needs | gap |")
        say("|---|---:|---:|---:|---:|---:|")
        say(
            need(
                "\(grouped(o.filings)) filings at once", calls: Double(o.filings) * 0.99, cpu: fileCPU / Double(max(1, o.filings)),
                client: fileClient / Double(max(1, o.filings)), cores: cores, goal: 0.050))
        say(
            need(
                "\(o.concurrency) locates in flight", calls: Double(o.concurrency), cpu: locateCPU / Double(max(1, o.locates)),
                client: locateClient / Double(max(1, o.locates)), cores: cores, goal: 0.005))
        say("")
        if problems.isEmpty {
            say(
                "none lost: \(ids.count) distinct request ids, the state lists exactly them, every filing 201 with one planned request; every locate 200, known subjects found, unknown ones not"
            )
        } else {
            for p in problems { say("FAIL: \(p)") }
            throw BenchError("\(problems.count) check(s) failed")
        }
    }

    static func row(_ name: String, _ lat: [Double], wall: Double, cpu: Double?, goal: Double) -> String {
        let s = lat.sorted()
        func p(_ q: Double) -> Double { s.isEmpty ? 0 : s[min(s.count - 1, Int((Double(s.count) * q).rounded(.up)) - 1)] }
        func ms(_ x: Double) -> String { fmt(x * 1000, x < 0.01 ? 2 : 1) + " ms" }
        // A goal is met by calls measured, never by none.
        let met =
            s.isEmpty ? "< \(ms(goal)): not measured" : p(0.99) < goal ? "< \(ms(goal)): met" : "< \(ms(goal)): **missed**"
        return "| \(name) | \(grouped(s.count)) | \(ms(p(0.5))) | \(ms(p(0.9))) | \(ms(p(0.99))) | \(ms(s.last ?? 0)) | \(secs(wall)) s "
            + "| \(fmt(Double(s.count) / max(wall, 1e-9), 0))/s | \(cpu.map { ms($0 / Double(max(1, s.count))) } ?? "–") | \(met) |"
    }

    /// One line of the goals' arithmetic: the least p99 `calls` ahead of the last one impose at `cpu` seconds
    /// of server CPU a call on `cores` cores, and the CPU per call under which the goal's p99 is reachable.
    static func need(_ name: String, calls: Double, cpu: Double, client: Double, cores: Double, goal: Double) -> String {
        func ms(_ x: Double) -> String { fmt(x * 1000, x < 0.01 ? 3 : 1) + " ms" }
        let least = calls * cpu / cores, needed = goal * cores / calls
        return "| \(name) | \(ms(cpu)) | \(ms(client)) | \(ms(least)) | ≤ \(ms(needed)) | \(fmt(cpu / needed, 1))× |"
    }

    /// This process's CPU time (user + system, seconds): the bench client shares the cores with the server.
    static func clientCPU() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    static func check(_ r: Ran, _ what: String) throws {
        guard r.status == 0 else { throw BenchError("\(what) exited \(r.status): \(r.err.suffix(400))") }
    }

    static func tokenOf(_ json: String) throws -> String {
        guard let d = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], let t = d["token"] as? String else {
            throw BenchError("no token in \(json.prefix(200))")
        }
        return t
    }

    /// One call: (status, body).
    static func call(_ client: HTTPClient, _ url: String, token: String, body: String?) async throws -> (Int, String) {
        var req = HTTPClientRequest(url: url)
        req.headers.add(name: "Authorization", value: "Bearer " + token)
        if let body {
            req.method = .POST
            req.headers.add(name: "Content-Type", value: "application/json")
            req.body = .bytes(ByteBuffer(string: body))
        }
        let res = try await client.execute(req, timeout: .seconds(60))
        let buf = try await res.body.collect(upTo: 16 << 20)
        return (Int(res.status.code), String(buffer: buf))
    }

    /// Every request id the state lists (`GET /v1/requests`, paged).
    static func listRequests(_ client: HTTPClient, _ base: String, token: String) async throws -> Set<String> {
        var ids = Set<String>()
        var cursor: String?
        repeat {
            let url = base + "/v1/requests?limit=1000" + (cursor.map { "&cursor=" + $0 } ?? "")
            let (status, body) = try await call(client, url, token: token, body: nil)
            guard status == 200, let d = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let rs = d["requests"] as? [[String: Any]]
            else { throw BenchError("GET /v1/requests: \(status) \(body.prefix(200))") }
            for r in rs { if let id = r["id"] as? String { ids.insert(id) } }
            cursor = d["next_cursor"] as? String
        } while cursor != nil
        return ids
    }

    /// `lethe serve --port 0` in the lake's folder; stopped with SIGTERM (SIGKILL after 30 s).
    final class Server {
        let process: Process
        let port: Int
        var pid: Int32 { process.processIdentifier }

        init(process: Process, port: Int) { self.process = process; self.port = port }

        static func start(_ lethe: String, cwd: String) throws -> Server {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: lethe)
            p.arguments = ["serve", "--port", "0", "--host", "127.0.0.1", "--watch", "0", "--json"]
            p.currentDirectoryURL = URL(fileURLWithPath: cwd)
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            p.standardInput = FileHandle.nullDevice
            try p.run()
            // The first line: {"listening": …, "port": P}.
            var line: [UInt8] = []
            let h = out.fileHandleForReading
            while true {
                let b = h.readData(ofLength: 1)
                if b.isEmpty || b.first == 0x0A { break }
                line += b
            }
            guard let d = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let port = d["port"] as? Int else {
                p.terminate()
                throw BenchError("lethe serve did not start: \(String(decoding: line, as: UTF8.self))")
            }
            return Server(process: p, port: port)
        }

        /// utime + stime of the server process (seconds), from /proc.
        func cpuSeconds() -> Double {
            guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
            let f = s[s.index(after: close)...].split(separator: " ")
            // After the command: state is field 3, utime 14, stime 15 (1-based) → indices 11, 12 here.
            guard f.count > 12, let u = Double(f[11]), let k = Double(f[12]) else { return 0 }
            return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }

        func stop() {
            guard process.isRunning else { return }
            kill(pid, SIGTERM)
            let deadline = monotonic() + 30
            while process.isRunning && monotonic() < deadline { usleep(50_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }
}
