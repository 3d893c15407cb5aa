// lethe-bench delta: Lethe's Delta erasure side by side with delta-rs `DeltaTable.delete`,
// in one run, on identical copies of the same table (see docs/benchmarks.md).
//
//   LETHE_BENCH=1 swift run -c release lethe-bench delta [--scale F] [--cases a,b,c] [--subjects 1,1000]
//                                                     [--dir D] [--keep] [--no-vacuum] [--markdown FILE]
//
// Cases (at --scale 1): (a) 4M rows in 100 files; (b) 16M rows in 8 files of 8 row
// groups each; (c) 1M rows in 5,000 small files. Each table is written once by delta-rs
// (scripts/delta_bench.py gen); then, for each subject count, two `cp -r` copies: delta-rs
// deletes the subjects from one (`DeltaTable(path).delete("user_id IN (…)")`, in Python),
// Lethe erases them from the other through its engine API in this process (index, forget,
// approve by a second person, run). delta-rs then reads both copies' latest versions; the
// run stops reporting a row whose counts or surviving rows are not exactly right.
import Foundation
import LetheCore
import LetheCatalog
import LetheRuntime
import LetheEngine

struct Options {
    var scale = 1.0
    var cases = ["a", "b", "c"]
    var subjects = [1, 1_000]
    var dir = "/tmp/lethe-delta-bench"
    var markdown: String?
    var keep = false
    var vacuum = true

    static let usageText = """
        usage: lethe-bench delta [--scale F] [--cases a,b,c] [--subjects 1,1000] [--dir D] [--keep] [--no-vacuum] [--markdown FILE]
          --scale F        rows (and files of cases a and c) times F; 0.01 is a smoke test (default 1)
          --cases LIST     which tables: a = 4M rows in 100 files, b = 16M rows in 8 files × 8 row groups,
                           c = 1M rows in 5,000 files (default a,b,c)
          --subjects LIST  subjects erased per run, one run each (default 1,1000)
          --dir D          work folder, emptied first and removed at the end unless --keep (default /tmp/lethe-delta-bench)
          --no-vacuum      skip timing delta-rs's vacuum after its delete
          --markdown FILE  also write the report to FILE
        """

    static func parse(_ args: [String]) throws -> Options {
        var o = Options()
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw BenchError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--scale":
                let v = try value()
                guard let s = Double(v), s > 0, s <= 1 else { throw BenchError("--scale: a number in (0, 1], not \(v)") }
                o.scale = s
            case "--cases":
                o.cases = try value().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                for c in o.cases where !["a", "b", "c"].contains(c) { throw BenchError("--cases: unknown case \(c) (a, b or c)") }
            case "--subjects":
                let v = try value()
                o.subjects = try v.split(separator: ",").map {
                    guard let n = Int($0.trimmingCharacters(in: .whitespaces)), n > 0 else { throw BenchError("--subjects: \(v)") }
                    return n
                }
            case "--dir": o.dir = try value()
            case "--markdown": o.markdown = try value()
            case "--keep": o.keep = true
            case "--no-vacuum": o.vacuum = false
            case "-h", "--help": say(usageText); exit(0)
            default: throw BenchError("unknown argument \(args[i])\n" + usageText)
            }
            i += 1
        }
        guard !o.cases.isEmpty, !o.subjects.isEmpty else { throw BenchError(usageText) }
        return o
    }
}

/// One table's layout.
struct Layout {
    var name: String
    var title: String
    var rows: Int
    var files: Int
    var groups: Int
    var users: Int
    var seed: Int

    /// The issue's three tables, shrunk by `scale`: rows always; files for (a) and (c) down
    /// to a floor (the point of (b) is its 8 × 8 layout, kept at every scale). Row counts are
    /// rounded down so every file and row group holds the same number of rows.
    static func of(_ c: String, scale: Double) -> Layout {
        let users = max(1_000, Int((1_000_000 * scale).rounded()))
        func make(_ title: String, rows: Int, files: Int, minFiles: Int, groups: Int, seed: Int) -> Layout {
            let f = scale == 1 ? files : max(minFiles, Int((Double(files) * scale).rounded()))
            let unit = f * groups
            let r = max(unit * 16, Int(Double(rows) * scale) / unit * unit)
            return Layout(name: c, title: title, rows: r, files: f, groups: groups, users: users, seed: seed)
        }
        switch c {
        case "a": return make("(a) 4M rows, 100 files", rows: 4_000_000, files: 100, minFiles: 10, groups: 1, seed: 11)
        case "b": return make("(b) 16M rows, 8 files × 8 row groups", rows: 16_000_000, files: 8, minFiles: 8, groups: 8, seed: 22)
        default: return make("(c) 1M rows, 5,000 small files", rows: 1_000_000, files: 5_000, minFiles: 50, groups: 1, seed: 33)
        }
    }
}

/// What the table generator reported.
struct TableFacts {
    var layout: Layout
    var bytes: Int64
    var distinct: Int64
    var version: Int64
    var checkpoints: Int64
    var seconds: Double
    var deltalake: String
    var pyarrow: String
}

/// One (case, subject count) run of both tools.
struct Result {
    var layout: Layout
    var subjects: Int
    var rowsBefore: Int64 = 0
    var dropped: Int64 = 0
    var rowsAfter: Int64 = 0
    // delta-rs
    var drLoad = 0.0, drDelete = 0.0, drWall = 0.0
    var drVacuum: Double?
    var drVacuumDeleted: Int64 = 0
    var drRemoved: Int64 = 0, drAdded: Int64 = 0
    // Lethe
    var index = 0.0
    var indexRecords: Int64 = 0
    var forget = 0.0, approve = 0.0
    var prepare = 0.0, rewrite = 0.0, vacuum = 0.0, verify = 0.0
    var erase: Double { prepare + rewrite + vacuum }
    var lRemoved = 0, lAdded = 0
    var lVacuumDeleted = 0
    var stateBytes: Int64 = 0
    var folderBytes: Int64 = 0
    var failure: String?
}

/// `lethe-bench delta`.
public enum DeltaBench {
    public static func main() async {
        do {
            let o = try Options.parse(Array(CommandLine.arguments.dropFirst(2)))  // lethe-bench delta …
            var bench = try Bench(o)
            try await bench.run()
            if bench.results.contains(where: { $0.failure != nil }) { exit(1) }
        } catch {
            FileHandle.standardError.write(Data("lethe-bench delta: \(error)\n".utf8))
            exit(1)
        }
    }
}

struct Bench {
    let o: Options
    let py: Python
    var facts: [String: TableFacts] = [:]
    var results: [Result] = []

    init(_ o: Options) throws {
        self.o = o
        py = try Python(for: "delta")
    }

    func step(_ s: String) { say("== \(s)  [load \(Machine.load())]") }

    mutating func run() async throws {
        let fm = FileManager.default
        let marker = o.dir + "/.delta-bench"
        if fm.fileExists(atPath: o.dir) {
            guard fm.fileExists(atPath: marker) else { throw BenchError("\(o.dir) exists and was not made by lethe-bench delta; choose another --dir") }
            try fm.removeItem(atPath: o.dir)
        }
        try fm.createDirectory(atPath: o.dir, withIntermediateDirectories: true)
        _ = fm.createFile(atPath: marker, contents: Data())
        let machine = Machine()
        let started = Date()
        let loadStart = Machine.load()
        say("lethe-bench delta: \(machine.cores) cores, \(machine.cpu), load \(loadStart)")

        for c in o.cases {
            let layout = Layout.of(c, scale: o.scale)
            let caseDir = o.dir + "/" + c
            let original = caseDir + "/original/events"
            let subjectsFile = caseDir + "/original/subjects.json"
            step("\(layout.title): writing \(grouped(layout.rows)) rows in \(grouped(layout.files)) files × \(layout.groups) row groups with delta-rs")
            try fm.createDirectory(atPath: caseDir + "/original", withIntermediateDirectories: true)
            let (g, _) = try py.call(
                "delta_bench.py",
                [
                    "gen", original, String(layout.rows), String(layout.files), String(layout.groups),
                    String(layout.users), String(layout.seed), String(o.subjects.max()!),
                ])
            let f = TableFacts(
                layout: layout, bytes: try g.int("bytes"), distinct: try g.int("distinct_users"),
                version: try g.int("version"), checkpoints: try g.int("checkpoints"), seconds: try g.double("seconds"),
                deltalake: g["deltalake"] as? String ?? "?", pyarrow: g["pyarrow"] as? String ?? "?")
            facts[c] = f
            say(
                "   \(megabytes(f.bytes)), \(grouped(f.distinct)) distinct users, version \(f.version), \(f.checkpoints) checkpoint(s), written in \(secs(f.seconds)) s"
            )
            let all = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: subjectsFile)))
            for n in o.subjects {
                var r = Result(layout: layout, subjects: n)
                do {
                    guard all.count >= n else { throw BenchError("only \(all.count) distinct subjects were picked, \(n) asked") }
                    try await runPair(&r, caseDir: caseDir, original: original, subjectsFile: subjectsFile, ids: Array(all.prefix(n)))
                } catch {
                    r.failure = "\(error)"
                    say("   FAILED: \(error)")
                }
                results.append(r)
                if !o.keep { try? fm.removeItem(atPath: caseDir + "/s\(n)") }
            }
            if !o.keep { try? fm.removeItem(atPath: caseDir) }
        }
        try report(machine: machine, started: started, loadStart: loadStart)
        if !o.keep { try? fm.removeItem(atPath: o.dir) } else { say("kept \(o.dir)") }
    }

    /// Both tools on their own copy of the table, then delta-rs reads both back.
    func runPair(_ r: inout Result, caseDir: String, original: String, subjectsFile: String, ids: [String]) async throws {
        let n = ids.count
        let runDir = caseDir + "/s\(n)"
        let drTable = runDir + "/delta-rs/events"
        let lRoot = runDir + "/lethe"
        step("\(r.layout.title), \(grouped(n)) subject(s): copies")
        let (expected, _) = try py.call("delta_bench.py", ["check", original, subjectsFile, String(n)])
        r.rowsBefore = try expected.int("rows")
        r.dropped = try expected.int("subject_rows")
        let keptSum = try expected.int("kept_event_id_sum")
        try copyTree(original, drTable)
        try copyTree(original, lRoot + "/lake/events")

        // delta-rs.
        step("\(r.layout.title), \(grouped(n)) subject(s): delta-rs DeltaTable.delete")
        let (d, wall) = try py.call("delta_bench.py", ["delete", drTable, subjectsFile, String(n)])
        r.drLoad = try d.double("load_s")
        r.drDelete = try d.double("delete_s")
        r.drWall = wall
        guard let m = d["metrics"] as? [String: Any] else { throw BenchError("delete: no metrics in \(d)") }
        r.drRemoved = try m.int("num_removed_files")
        r.drAdded = try m.int("num_added_files")
        let drDeleted = try m.int("num_deleted_rows")
        say(
            "   delete \(secs(r.drDelete)) s (open \(secs(r.drLoad)) s, process \(secs(wall)) s), files \(r.drRemoved) → \(r.drAdded), rows \(grouped(drDeleted))"
        )
        if o.vacuum {
            let (v, _) = try py.call("delta_bench.py", ["vacuum", drTable])
            r.drVacuum = try v.double("vacuum_s")
            r.drVacuumDeleted = try v.int("deleted")
            say("   vacuum(retention_hours=0) \(secs(r.drVacuum!)) s, \(r.drVacuumDeleted) file(s) deleted")
        }

        // Lethe, in this process.
        step("\(r.layout.title), \(grouped(n)) subject(s): Lethe index, forget, approve, run")
        try await runLethe(&r, root: lRoot, ids: ids)
        r.stateBytes = folderBytes(lRoot + "/state")
        r.folderBytes = folderBytes(caseDir)

        // Both copies as delta-rs reads them.
        step("\(r.layout.title), \(grouped(n)) subject(s): delta-rs reads both copies")
        var problems: [String] = []
        if drDeleted != r.dropped { problems.append("delta-rs reported \(drDeleted) rows deleted, the subjects hold \(r.dropped)") }
        for (who, table) in [("delta-rs", drTable), ("Lethe", lRoot + "/lake/events")] {
            let (c, _) = try py.call("delta_bench.py", ["check", table, subjectsFile, String(n)])
            let rows = try c.int("rows"), left = try c.int("subject_rows"), sum = try c.int("event_id_sum")
            if rows != r.rowsBefore - r.dropped { problems.append("\(who)'s copy has \(rows) rows, expected \(r.rowsBefore - r.dropped)") }
            if left != 0 { problems.append("\(who)'s copy still has \(left) rows of the subjects") }
            if sum != keptSum {
                problems.append("\(who)'s copy kept other rows than the original minus the subjects' (event_id sum \(sum), expected \(keptSum))")
            }
            r.rowsAfter = rows
        }
        guard problems.isEmpty else { throw BenchError("correctness check failed: " + problems.joined(separator: "; ")) }
        say("   both copies: \(grouped(r.rowsAfter)) rows, none of the subjects', surviving rows identical (event_id sum)")
    }

    static func config(root: String) throws -> LakeConfig {
        let text = """
            lake: ./lake
            state: ./state
            datasets:
              - name: events
                path: events
                format: delta
                subject: user_id

            """
        try text.write(toFile: root + "/lethe.yaml", atomically: true, encoding: .utf8)
        return try LakeConfig.parse(text, file: root + "/lethe.yaml", baseDir: root)
    }

    /// Index backfill, then forget (alice) → approve (bob) → run, timed by phase.
    ///
    /// `run` reports progress: "job …" once it has refreshed the index and planned,
    /// "events: committed version …" right after the Delta commit, "events: vacuumed: …" after
    /// the targeted vacuum, and "verifying …" before the verification scan. Request transitions
    /// and the re-index of the replacements between the vacuum and the verification are in
    /// neither phase; "verify" is the scan to the end of `run`.
    func runLethe(_ r: inout Result, root: String, ids: [String]) async throws {
        let lethe = try Runtime.open(config: try Self.config(root: root))
        var t0 = monotonic()
        let idx = try await lethe.index()
        r.index = monotonic() - t0
        r.indexRecords = idx.records
        guard idx.quarantined.isEmpty else { throw BenchError("Lethe quarantined \(idx.quarantined.map(\.object))") }
        guard idx.records == r.rowsBefore else { throw BenchError("Lethe indexed \(idx.records) rows, the table has \(r.rowsBefore)") }
        say("   index backfill \(secs(r.index)) s, \(grouped(idx.records)) rows in \(idx.objectsScanned) files")

        t0 = monotonic()
        let filed = try await lethe.forget(ids.map { SubjectID($0) }, reason: "delta-bench", by: "alice")
        r.forget = monotonic() - t0
        t0 = monotonic()
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        r.approve = monotonic() - t0

        let progress = Progress()
        let auditFrom = try await lethe.meta.auditEntries().last?.seq ?? 0
        let start = monotonic()
        let report = try await lethe.run(events: { progress.add($0) })
        let end = monotonic()
        guard report.failed.isEmpty else { throw BenchError("Lethe's run failed: \(report.failed.map(\.reason).joined(separator: "; "))") }
        guard report.rowsDropped == r.dropped else { throw BenchError("Lethe dropped \(report.rowsDropped) rows, the subjects hold \(r.dropped)") }
        let clean = report.verifications.filter(\.clean).count
        guard clean == ids.count else { throw BenchError("Lethe verified \(clean) of \(ids.count) requests clean") }

        let messages = progress.all
        guard let job = messages.first(where: { if case .jobPlanned = $0.1 { true } else { false } })?.0,
            let committed = messages.first(where: { if case .tableCommitted = $0.1 { true } else { false } })?.0,
            let verifying = messages.first(where: { if case .verifying = $0.1 { true } else { false } })?.0
        else {
            throw BenchError("Lethe's run did not report a job, a commit and a verification: \(messages.map(\.1.message))")
        }
        let audit = try await lethe.meta.auditEntries().filter { $0.seq > auditFrom }
        let vacuumEntry = audit.first(where: { $0.event == "delta_vacuum" })
        let vacuumed = messages.first(where: { if case .tableVacuumed = $0.1 { true } else { false } })?.0 ?? committed
        r.prepare = job - start
        r.rewrite = committed - job
        r.vacuum = vacuumed - committed
        r.verify = end - verifying
        r.lAdded = report.objectsRewritten
        r.lRemoved = report.objectsRewritten + report.objectsRemoved
        if let v = vacuumEntry, let j = try? JSONSerialization.jsonObject(with: Data(v.details.utf8)) as? [String: Any],
            let files = j["deleted_files"] as? [Any]
        {
            r.lVacuumDeleted = files.count
        }
        say(
            "   erase \(secs(r.erase)) s (refresh + plan \(secs(r.prepare)), rewrite + commit \(secs(r.rewrite)), targeted vacuum \(secs(r.vacuum))), verify \(secs(r.verify)) s; forget \(secs(r.forget)) s, approve \(secs(r.approve)) s; files \(r.lRemoved) → \(r.lAdded), \(r.lVacuumDeleted) deleted"
        )
    }

    // MARK: Report

    func report(machine: Machine, started: Date, loadStart: String) throws {
        let date = ISO8601DateFormatter().string(from: started)
        let anyFacts = facts.values.first
        var md = """
            ## Delta: Lethe vs delta-rs `DeltaTable.delete` (`lethe-bench delta`)

            Measured \(date) on \(machine.cores) cores (\(machine.cpu)), \(fmt(machine.memGiB, 1)) GiB RAM; \
            load average at start \(loadStart), at end \(Machine.load()). \
            Command: `lethe-bench \(CommandLine.arguments.dropFirst().joined(separator: " "))`. \
            delta-rs (Python `deltalake`) \(anyFacts?.deltalake ?? "?"), pyarrow \(anyFacts?.pyarrow ?? "?"). \
            Warm page cache (every copy was just made with `cp -r`).

            | table | rows | files × row groups | size | distinct users | commits | checkpoints | written by delta-rs in |
            |---|---|---|---|---|---|---|---|

            """
        for c in o.cases {
            guard let f = facts[c] else { continue }
            md +=
                "| \(f.layout.title) | \(grouped(f.layout.rows)) | \(grouped(f.layout.files)) × \(f.layout.groups) | \(megabytes(f.bytes)) | \(grouped(f.distinct)) | \(grouped(f.version + 1)) | \(f.checkpoints) | \(secs(f.seconds)) s |\n"
        }
        md += """

            | case | subjects | rows dropped | delta-rs delete s | Lethe erase s | speed-up | Lethe verify s | Lethe index backfill s | delta-rs process s | delta-rs vacuum s | Lethe forget + approve s | files rewritten delta-rs / Lethe (removed → added) | rows after |
            |---|---|---|---|---|---|---|---|---|---|---|---|---|

            """
        for r in results {
            if let failure = r.failure {
                md += "| \(r.layout.name) | \(grouped(r.subjects)) | FAILED: \(failure.replacingOccurrences(of: "|", with: "\\|")) | | | | | | | | | | |\n"
                continue
            }
            md +=
                "| \(r.layout.name) | \(grouped(r.subjects)) | \(grouped(r.dropped)) | \(secs(r.drDelete)) | \(secs(r.erase)) | \(fmt(r.drDelete / r.erase, 1))× | \(secs(r.verify)) | \(secs(r.index)) | \(secs(r.drWall)) | \(r.drVacuum.map(secs) ?? "–") | \(secs(r.forget + r.approve)) | \(r.drRemoved) → \(r.drAdded) / \(r.lRemoved) → \(r.lAdded) | \(grouped(r.rowsAfter)) |\n"
        }
        md += """

            Lethe's erase, by phase (seconds), and disk use:

            | case | subjects | refresh + plan | rewrite + commit | targeted vacuum | erase total | files deleted by vacuum delta-rs / Lethe | Lethe state | case folder after the run |
            |---|---|---|---|---|---|---|---|---|

            """
        for r in results where r.failure == nil {
            md +=
                "| \(r.layout.name) | \(grouped(r.subjects)) | \(secs(r.prepare)) | \(secs(r.rewrite)) | \(secs(r.vacuum)) | \(secs(r.erase)) | \(r.drVacuum == nil ? "–" : String(r.drVacuumDeleted)) / \(r.lVacuumDeleted) | \(megabytes(r.stateBytes)) | \(megabytes(r.folderBytes)) |\n"
        }
        md += """

            What each column includes:
            - **delta-rs delete s**: wall time inside Python around `DeltaTable(path).delete("user_id IN (…)")` only (the table is \
            opened before the timer starts). delta-rs writes new files and one commit; the superseded files stay on storage, \
            readable by time travel, until a vacuum.
            - **Lethe erase s**: the part of `Lethe.run` up to its commit and targeted vacuum: index refresh (incremental, \
            nothing changed) + plan + journal, reading each file the index names (the rows it names re-keyed to confirm them), \
            row-group-preserving rewrite (one file per core at a time), the Delta commit, and the targeted vacuum (superseded \
            files holding the subjects deleted, their statistics scrubbed from the log, VACUUM START/END commits). Same \
            process, no interpreter start. The replacements are indexed when the job settles (in "verify").
            - **speed-up**: delta-rs delete s ÷ Lethe erase s (delta-rs's figure excludes opening the table and any vacuum; Lethe's includes both).
            - **Lethe verify s**: from "verifying …" to the end of `run` \
            (a residue scan of every file the table reaches, live and history, and a search of `_delta_log` and Lethe's state for \
            the raw ids). delta-rs has no counterpart.
            - **Lethe index backfill s**: `Lethe.index()` over the fresh copy (every row of every file keyed into a fresh SQLite \
            index): the one-off cost of adopting a table, not part of an erasure.
            - **delta-rs process s**: wall time of the Python process that ran the delete (interpreter start, imports, opening the table, delete, exit).
            - **delta-rs vacuum s**: a second process, `vacuum(retention_hours=0, enforce_retention_duration=False)`, the delta-rs way \
            to make the deleted rows unreadable by time travel (Lethe's erase already did that); not in the speed-up.
            - **Lethe forget + approve s**: filing (and planning) the requests as alice and approving them as bob.
            - Phases, from `run`'s progress messages: "refresh + plan" from the start of `run` to "job …"; "rewrite + commit" \
            to "committed version …"; "targeted vacuum" to "vacuumed: …"; "verify" from \
            "verifying …" to the end of `run`. Lethe erase s = refresh + plan + rewrite + commit + targeted vacuum.
            - After every run delta-rs reads both copies' latest versions: the row count must be the original's minus the \
            subjects' rows, no row of the subjects may remain, and the sum of `event_id` over the surviving rows must equal the \
            original's without the subjects' rows; a run that fails this is reported as FAILED, without figures.

            """
        let ok = results.filter { $0.failure == nil }
        if !ok.isEmpty {
            md += "\nGoals (delta-rs delete s ÷ Lethe erase s): faster on every case; ≥ 5× on (b) and (c) for one subject.\n\n"
            for r in ok {
                let x = r.drDelete / r.erase
                let goal = (r.subjects == 1 && (r.layout.name == "b" || r.layout.name == "c")) ? 5.0 : 1.0
                md +=
                    "- (\(r.layout.name)) \(grouped(r.subjects)) subject(s): \(fmt(x, 1))× (goal > \(goal == 1 ? "1" : "5")×): \(x > goal || (goal == 5 && x >= 5) ? "met" : "missed")\n"
            }
        }
        say("\n" + md)
        if let path = o.markdown { try md.write(toFile: path, atomically: true, encoding: .utf8) }
    }
}
