// lethe-bench verified: approval → verified, each case with its peer side by side in one run (docs/benchmarks.md,
// issue 12). What is timed for Lethe: from the `approve` call to the return of `run` with every request
// verified, in process through the engine API; `forget` and the index backfill in their own columns.
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench --product lethe
//   .build/release/lethe-bench verified [--scale F] [--case LIST] [--dir D] [--regen] [--markdown FILE] [--keep]
//
// Every case checks its result (rows dropped equal the peer's, the peer reads Lethe's output, the requests are
// `verified`) and prints FAILED, without a ratio, otherwise.
import Foundation
import BenchSupport
import LetheCore
import LetheEngine
import LetheRuntime

struct Options {
    var scale = 1.0
    var cases = VerifiedBench.allCases
    var dir = "/tmp/lethe-verified-bench"
    var regen = false
    var keep = false
    var markdown: String?
    var deltaSubjects = [1, 1_000]
    var batchIDs: Int?
    var batchTimeout = 300.0
    var lethe = packageRoot + "/.build/release/lethe"
    var rounds = 1

    static let usageText = """
        usage: lethe-bench verified [--scale F] [--case LIST] [--dir D] [--regen] [--keep] [--markdown FILE]
                                    [--delta-subjects 1,1000] [--batch-ids N] [--batch-timeout S] [--lethe PATH]
                                    [--rounds N]
          --scale F           data sizes times F, in (0, 1]; 0.1 is a smoke run of a few minutes (default 1)
          --case LIST         parquet, delta-a, delta-b, delta-c, jsonl, batch, sweep (default: all, in that order)
          --dir D             work folder; generated data is cached in D/data under a fingerprint of the
                              generator and its parameters, copies are made in D/work (default /tmp/lethe-verified-bench)
          --regen             generate the data again even if cached
          --keep              keep D/work after the run
          --markdown FILE     also write the report to FILE
          --delta-subjects L  subject counts of the Delta cases (default 1,1000)
          --batch-ids N       ids of the batch case (default 100,000 × scale)
          --batch-timeout S   kill `lethe forget`/`approve` after S seconds and report it (default 300)
          --lethe PATH        the release `lethe` binary of the batch case (default .build/release/lethe)
          --rounds N          run the cases N times, one round after the other (each round every case with its
                              peer back to back); the report gives each row's medians and every round's ratio
                              (default 1). On a shared or virtual machine one round's ratio can be off by 2×.
        Cases: parquet = one 97 MB file of 3.2M rows in 32 row groups, one subject, vs pyarrow read → filter →
        write_table + os.replace; delta-a/b/c = 4M rows in 100 files / 8 files × 2M rows / 5,000 small files,
        1 and 1,000 subjects, vs delta-rs `delete`; jsonl = 1 GiB in 1,000 objects, one subject, vs a full-scan
        erase; batch = `lethe forget --from` and `lethe approve --all` of 100,000 ids with the release binary;
        sweep = `lethe sweep` of the JSON Lines lake for 1,000 verified requests: GB/s on every core (in process)
        and on one (`taskset -c 0`, the release binary); recorded, no goal (issue 16).
        """

    static func parse(_ args: [String]) throws -> Options {
        var o = Options()
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw BenchError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        func ints(_ v: String) throws -> [Int] {
            try v.split(separator: ",").map {
                guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n > 0 else { throw BenchError("not a count list: \(v)") }
                return n
            }
        }
        while i < args.count {
            switch args[i] {
            case "--scale":
                let v = try value()
                guard let s = Double(v), s > 0, s <= 1 else { throw BenchError("--scale: a number in (0, 1], not \(v)") }
                o.scale = s
            case "--case", "--cases":
                o.cases = try value().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                for c in o.cases where !VerifiedBench.allCases.contains(c) {
                    throw BenchError("--case: unknown case \(c) (\(VerifiedBench.allCases.joined(separator: ", ")))")
                }
            case "--dir": o.dir = try value()
            case "--regen": o.regen = true
            case "--keep": o.keep = true
            case "--markdown": o.markdown = try value()
            case "--delta-subjects": o.deltaSubjects = try ints(try value())
            case "--batch-ids": o.batchIDs = try ints(try value()).first
            case "--batch-timeout":
                let v = try value()
                guard let s = Double(v), s > 0 else { throw BenchError("--batch-timeout: seconds, not \(v)") }
                o.batchTimeout = s
            case "--rounds":
                let v = try value()
                guard let n = Int(v), n >= 1, n <= 50 else { throw BenchError("--rounds: a count from 1 to 50, not \(v)") }
                o.rounds = n
            case "--lethe":
                let v = try value()
                o.lethe = v.hasPrefix("/") ? v : FileManager.default.currentDirectoryPath + "/" + v
            case "-h", "--help":
                say(usageText)
                exit(0)
            default: throw BenchError("unknown argument \(args[i])\n" + usageText)
            }
            i += 1
        }
        guard !o.cases.isEmpty, !o.deltaSubjects.isEmpty else { throw BenchError(usageText) }
        return o
    }
}

/// One row of the report: a case (and subject count) with both sides.
struct Row {
    var caseName: String
    var title: String
    var subjects: Int
    var peerName: String
    var goalText: String
    /// Speed-up goal (peer ÷ Lethe), or for the batch case the wall-time limit in seconds.
    var goal: Double
    var isLimit = false
    var dropped: Int64 = 0
    var peer: Double?
    var lethe: Double?
    var verify: Double?
    var forget: Double?
    var backfill: Double?
    var detail = ""
    var failure: String?
    /// Over several rounds: the median of the rounds' ratios (not the ratio of the medians).
    var medianRatio: Double?

    var ratio: Double? {
        guard failure == nil, let p = peer, let l = lethe, l > 0 else { return nil }
        return medianRatio ?? p / l
    }
    var met: Bool? {
        guard failure == nil, goal > 0 else { return nil }
        if isLimit { return lethe.map { $0 < goal } }
        return ratio.map { $0 >= goal }
    }
}

/// `lethe-bench verified`.
public enum VerifiedBench {
    static let allCases = ["parquet", "delta-a", "delta-b", "delta-c", "jsonl", "batch", "sweep"]

    public static func main() async {
        do {
            let o = try Options.parse(Array(CommandLine.arguments.dropFirst(2)))  // lethe-bench verified …
            var bench = try Bench(o)
            try await bench.run()
            if bench.rows.contains(where: { $0.failure != nil }) { exit(1) }
        } catch {
            FileHandle.standardError.write(Data("lethe-bench verified: \(error)\n".utf8))
            exit(1)
        }
    }
}

struct Bench {
    let o: Options
    let py: Python
    let machine = Machine()
    var rows: [Row] = []
    var versions: [String: String] = [:]
    var notes: [String] = []

    init(_ o: Options) throws {
        self.o = o
        py = try Python(for: "verified")
    }

    var dataDir: String { o.dir + "/data" }
    var workDir: String { o.dir + "/work" }
    /// The round under way (from 1).
    var round = 1
    /// This round's work copies: a folder of its own, never a path an earlier round used (that
    /// round's state may still be closing, and SQLite's last connection removes its WAL by path).
    var roundDir: String { workDir + "/r\(round)" }

    func step(_ s: String) { say("== \(s)  [load \(Machine.load())]") }

    mutating func run() async throws {
        let fm = FileManager.default
        let marker = o.dir + "/.verified-bench"
        if fm.fileExists(atPath: o.dir) && !fm.fileExists(atPath: marker) {
            throw BenchError("\(o.dir) exists and was not made by lethe-bench verified; choose another --dir")
        }
        try fm.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        _ = fm.createFile(atPath: marker, contents: Data())
        if fm.fileExists(atPath: workDir) { try fm.removeItem(atPath: workDir) }
        try fm.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let started = Date()
        let loadStart = Machine.load()
        let fs = Machine.fsType(o.dir)
        say("lethe-bench verified: \(machine.cores) cores, \(machine.cpu), \(fmt(machine.memGiB, 1)) GiB, \(machine.kernel), \(fs), load \(loadStart)")

        for round in 1...o.rounds {
            self.round = round
            if o.rounds > 1 { say("== round \(round) of \(o.rounds)") }
            try await runCases()
        }
        let md = report(started: started, loadStart: loadStart, fs: fs)
        say("\n" + md)
        if let path = o.markdown { try md.write(toFile: path, atomically: true, encoding: .utf8) }
        if !o.keep { try? fm.removeItem(atPath: workDir) } else { say("kept \(workDir)") }
    }

    /// One round: every case once, each with its peer (rows appended in case order).
    mutating func runCases() async throws {
        for c in o.cases {
            let before = rows.count
            do {
                switch c {
                case "parquet": try await parquetCase()
                case "delta-a", "delta-b", "delta-c": try await deltaCase(String(c.last!))
                case "jsonl": try await jsonlCase()
                case "sweep": try await sweepCase()
                default: try await batchCase()
                }
            } catch {
                say("   FAILED: \(error)")
                if rows.count == before {
                    rows.append(Row(caseName: c, title: c, subjects: 0, peerName: "", goalText: "", goal: 0, failure: "\(error)"))
                }
            }
        }
    }

    /// A cached data folder: `data/NAME-FINGERPRINT`, made by `make` unless it holds `facts.json` (written last).
    func cached(_ name: String, _ fp: String, make: (String) async throws -> [String: Any]) async throws -> (String, [String: Any]) {
        let dir = dataDir + "/" + name + "-" + fp
        let factsPath = dir + "/facts.json"
        let fm = FileManager.default
        if !o.regen, let d = fm.contents(atPath: factsPath), let j = try JSONSerialization.jsonObject(with: d) as? [String: Any] {
            say("   cached: \(dir)")
            return (dir, j)
        }
        // Other fingerprints of the same data go: the cache holds one version per case.
        for old in (try? fm.contentsOfDirectory(atPath: dataDir)) ?? [] where old.hasPrefix(name + "-") {
            try? fm.removeItem(atPath: dataDir + "/" + old)
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let facts = try await make(dir)
        try JSONSerialization.data(withJSONObject: facts).write(to: URL(fileURLWithPath: factsPath))
        return (dir, facts)
    }

    // MARK: Lethe's side (the same for every case)

    struct LetheSide {
        var backfill = 0.0
        var records: Int64 = 0
        var forget = 0.0
        var approveToVerified = 0.0
        var verify = 0.0
        var dropped: Int64 = 0
        var objectsScanned = 0
    }

    static func writeConfig(root: String, dataset: String) throws -> LakeConfig {
        let text = "lake: ./lake\nstate: ./state\ndatasets:\n" + dataset
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try text.write(toFile: root + "/lethe.yaml", atomically: true, encoding: .utf8)
        return try LakeConfig.parse(text, file: root + "/lethe.yaml", baseDir: root)
    }

    /// Opens the lake and runs the index backfill (timed on its own).
    func openAndIndex(_ config: LakeConfig, _ side: inout LetheSide) async throws -> Lethe {
        let lethe = try Runtime.open(config: config)
        let t0 = monotonic()
        let idx = try await lethe.index()
        side.backfill = monotonic() - t0
        side.records = idx.records
        guard idx.quarantined.isEmpty else { throw BenchError("Lethe quarantined \(idx.quarantined.map(\.object))") }
        say("   Lethe index backfill \(secs(side.backfill)) s, \(grouped(idx.records)) records in \(idx.objectsScanned) object(s)")
        return lethe
    }

    /// forget (alice, its own column), then the timed part: approve (bob) → run → every request verified.
    func erase(_ lethe: Lethe, _ ids: [String], _ side: inout LetheSide) async throws {
        var t0 = monotonic()
        let filed = try await lethe.forget(ids.map { SubjectID($0) }, reason: "verified-bench", by: "alice")
        side.forget = monotonic() - t0
        let log = EventLog()
        t0 = monotonic()
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let report = try await lethe.run(events: { log.add($0) })
        let end = monotonic()
        side.approveToVerified = end - t0
        let verifying = log.all.first(where: { if case .verifying = $0.1 { true } else { false } })?.0 ?? end
        side.verify = end - verifying
        side.dropped = report.rowsDropped
        side.objectsScanned = report.verifications.map(\.objectsScanned).max() ?? 0
        guard report.failed.isEmpty else {
            throw BenchError("Lethe's run failed \(report.failed.count) request(s): \(report.failed.first!.reason)")
        }
        var notVerified = 0
        for r in filed where try await lethe.request(r.id).status != .verified { notVerified += 1 }
        guard notVerified == 0 else { throw BenchError("\(notVerified) of \(filed.count) request(s) are not verified after `run`") }
        say(
            "   Lethe approve → verified \(secs(side.approveToVerified)) s (verification \(secs(side.verify)) s, \(side.objectsScanned) object(s) scanned), forget \(secs(side.forget)) s, \(grouped(side.dropped)) rows dropped"
        )
    }

    // MARK: Report

    /// The rows of several rounds as one row per case and subject count (first seen order): the median of
    /// each figure, the ratio the median of the rounds' own ratios (each round's peer and Lethe ran back to
    /// back), every round's ratio in the detail. A case that failed in any round is shown failed.
    static func medians(of rows: [Row]) -> [Row] {
        var order: [String] = []
        var groups: [String: [Row]] = [:]
        for r in rows {
            let k = "\(r.caseName)\u{1}\(r.title)\u{1}\(r.subjects)"
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(r)
        }
        return order.map { k in
            let g = groups[k]!
            guard g.count > 1 else { return g[0] }
            if let failed = g.first(where: { $0.failure != nil }) {
                var f = failed
                f.failure = "in \(g.filter { $0.failure != nil }.count) of \(g.count) rounds: \(failed.failure!)"
                return f
            }
            func median(_ xs: [Double?]) -> Double? {
                let v = xs.compactMap { $0 }.sorted()
                guard !v.isEmpty else { return nil }
                return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
            }
            var m = g[0]
            m.peer = median(g.map(\.peer))
            m.lethe = median(g.map(\.lethe))
            m.verify = median(g.map(\.verify))
            m.forget = median(g.map(\.forget))
            m.backfill = median(g.map(\.backfill))
            let ratios = g.compactMap(\.ratio)
            m.medianRatio = median(ratios)
            let each = m.isLimit ? g.compactMap(\.lethe).map { secs($0) + " s" } : ratios.map { fmt($0, 1) + "×" }
            m.detail = (m.detail.isEmpty ? "" : m.detail + "; ") + "rounds: " + each.joined(separator: ", ")
            return m
        }
    }

    func report(started: Date, loadStart: String, fs: String) -> String {
        let date = ISO8601DateFormatter().string(from: started)
        let tools = versions.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        var md = """
            Measured \(date) on \(machine.cores) cores (\(machine.cpu)), \(fmt(machine.memGiB, 1)) GiB RAM, \(machine.kernel), \
            work folder on \(fs); load average at start \(loadStart), at end \(Machine.load()). \
            Command: `lethe-bench \(CommandLine.arguments.dropFirst().joined(separator: " "))` (scale \(o.scale), \
            \(o.rounds == 1 ? "one round" : "\(o.rounds) rounds, each row's medians; the ratio is the median of the rounds' ratios")). \
            \(tools.isEmpty ? "" : "Peers: \(tools). ")Warm page cache (every copy was just made with `cp -a`).

            | case | subjects | rows dropped | peer | peer s | Lethe approve → verified s | of which verification s | speed-up | goal | met | Lethe forget s | Lethe index backfill s |
            |---|---|---|---|---|---|---|---|---|---|---|---|

            """
        let shown = Self.medians(of: rows)
        for r in shown {
            if let f = r.failure {
                let cleaned = f.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
                md += "| \(r.title) | \(grouped(r.subjects)) | FAILED: \(cleaned.prefix(300)) | \(r.peerName) | | | | | \(r.goalText) | | | |\n"
                continue
            }
            let met = r.met.map { $0 ? "yes" : "no" } ?? "–"
            md +=
                "| \(r.title) | \(grouped(r.subjects)) | \(r.isLimit ? "–" : grouped(r.dropped)) | \(r.peerName) | \(r.peer.map(secs) ?? "–") | \(r.lethe.map(secs) ?? "–") | \(r.verify.map(secs) ?? "–") | \(r.ratio.map { fmt($0, 1) + "×" } ?? "–") | \(r.goalText) | \(met) | \(r.forget.map(secs) ?? "–") | \(r.backfill.map(secs) ?? "–") |\n"
        }
        let details = shown.filter { $0.failure == nil && !$0.detail.isEmpty }
        if !details.isEmpty {
            md += "\n" + details.map { "- \($0.title), \(grouped($0.subjects)) subject(s): \($0.detail)" }.joined(separator: "\n") + "\n"
        }
        if !notes.isEmpty { md += "\n" + notes.map { "- NOTE: \($0)" }.joined(separator: "\n") + "\n" }
        md += """

            What is timed: **Lethe approve → verified** runs from the `approve` call (by a second person) to the return of \
            `run` with every request `verified`, in this process through the engine API (refresh, plan, rewrite, commit, \
            vacuum, settle, verification); "of which verification" is from the `verifying` event to the end. `forget` and \
            the index backfill (adopting the data once) are their own columns. Peers: pyarrow `read_table` → filter → \
            `write_table` to a temporary + fsync + `os.replace` (timed in process); delta-rs `DeltaTable.delete` (the call \
            only, table already open; no vacuum); for JSON Lines, the full-scan erase a lake without an index must do \
            (`JSONLinesFormat.erase` over every object, one pass for all subjects). Checks: rows dropped equal the peer's; \
            the peer reads Lethe's output (pyarrow / delta-rs: row count, no subject row, the sum of `event_id` over the \
            surviving rows equal to the peer's; JSON Lines: the two lakes are byte-identical); every request `verified`.

            """
        return md
    }
}
