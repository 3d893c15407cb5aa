import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import LetheRuntime
import LetheEngine
import LetheSQLite

/// `lethe-bench index|erase [--gb N] [--objects N] [--dir D] [--keep]`: generates a JSON Lines
/// lake, then measures index backfill, index size and `locate` latency, and (`erase`) erasure
/// of 1 and 1,000 subjects against a full-scan baseline, and prints a Markdown report.
/// See docs/benchmarks.md.
public struct LetheBench {
    struct Options {
        var gb = 1.0  // GiB of JSON Lines
        var objects = 1_000
        var users = 1_000_000
        var dir = "/tmp/lethe-bench"
        var keep = false
        var locateCalls = 10_000
        var syntheticEntries = 10_000_000  // a second index for `locate` when the lake's has fewer entries
        var pythonObjects = 40  // objects sampled for the Python json.loads peer
        var batch = 1_000  // subjects in the batch erasure
        var markdown: String?  // also write the report here
        var childIndex: String?  // internal: index the lake in this folder and print JSON
        var childTable = false  // internal: the child writes every posting to the `postings` table (no segments)
        var erase = true  // `erase`: the erasures too; `index`: stop before them
    }

    static func usage() -> Never {
        say(
            """
            usage: lethe-bench index|erase [--gb N] [--objects N] [--users N] [--dir D] [--keep]
                                           [--locate-calls N] [--synthetic-entries N] [--python-objects N]
                                           [--batch N] [--markdown FILE]
              --gb N                GiB of JSON Lines to generate (default 1)
              --objects N           objects in the lake (default 1000)
              --users N             distinct users (default 1000000)
              --dir D               work folder, removed at the end unless --keep (default /tmp/lethe-bench)
              --synthetic-entries N entries of the second index for locate, built through the StateStore API
                                    when the lake's index has fewer (default 10000000; 0 = never)
              --markdown FILE       also write the report to FILE
            """)
        exit(2)
    }

    static func parse(erase: Bool) -> Options {
        var o = Options()
        o.erase = erase
        var args = Array(CommandLine.arguments.dropFirst(2))  // lethe-bench index|erase …
        func value() -> String {
            guard args.count >= 2 else { usage() }
            let v = args[1]
            args.removeFirst()
            return v
        }
        while let a = args.first {
            switch a {
            case "--gb": o.gb = Double(value()) ?? { usage() }()
            case "--objects": o.objects = Int(value()) ?? { usage() }()
            case "--users": o.users = Int(value()) ?? { usage() }()
            case "--dir": o.dir = value()
            case "--keep": o.keep = true
            case "--locate-calls": o.locateCalls = Int(value()) ?? { usage() }()
            case "--synthetic-entries": o.syntheticEntries = Int(value()) ?? { usage() }()
            case "--python-objects": o.pythonObjects = Int(value()) ?? { usage() }()
            case "--batch": o.batch = Int(value()) ?? { usage() }()
            case "--markdown": o.markdown = value()
            case "--child-index": o.childIndex = value()
            case "--child-table": o.childTable = true
            case "-h", "--help": usage()
            default: say("unknown argument \(a)"); usage()
            }
            args.removeFirst()
        }
        guard o.gb > 0, o.objects > 0, o.users > 10, o.locateCalls > 0, o.batch > 0 else { usage() }
        return o
    }

    /// `erase`: the whole run (index, size, locate, erasures); else it stops before the erasures.
    public static func main(erase: Bool) async {
        let o = parse(erase: erase)
        do {
            if let d = o.childIndex {
                try await childIndex(dir: d, table: o.childTable)
            } else {
                var bench = Bench(options: o)
                try await bench.run()
            }
        } catch {
            FileHandle.standardError.write(Data("lethe-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func configText(state: String) -> String {
        """
        lake: ./lake
        state: ./\(state)
        datasets:
          - name: events
            path: raw/events
            format: jsonl
            subject: user.id
            pii: [user.email, ip]

        """
    }

    static func open(dir: String, state: String) throws -> Lethe {
        let cfg = try LakeConfig.parse(configText(state: state), file: dir + "/lethe.yaml", baseDir: dir)
        return try Runtime.open(config: cfg)
    }

    /// The single-worker index run, started by the parent under `taskset -c 0`.
    /// With `table`, postings go to the `postings` table as before segments (a row per key).
    static func childIndex(dir: String, table: Bool) async throws {
        var lethe = try open(dir: dir, state: "state-1core")
        if table {
            let folder = dir + "/state-1core"
            let (secrets, _) = try Runtime.openState(folder: folder)
            let meta = try SQLiteStateStore(folder: folder, segmentMinimum: .max)
            lethe = Lethe(config: lethe.config, store: LocalObjectStore(root: dir + "/lake"), meta: meta, secrets: secrets, stateFolder: folder)
        }
        let r = try await lethe.index(workers: 1)
        say("{\"cpus\":\(ProcessInfo.processInfo.activeProcessorCount),\"records\":\(r.records),\"bytes\":\(r.bytesScanned),\"seconds\":\(r.seconds)}")
    }
}

/// One benchmark run.
struct Bench {
    let o: LetheBench.Options
    let lake: String
    var rows: [(String, String, String, String)] = []  // figure, Lethe, peer, goal
    var notes: [String] = []

    init(options: LetheBench.Options) {
        o = options
        lake = options.dir + "/lake"
    }

    mutating func row(_ figure: String, _ lethe: String, _ peer: String = "", _ goal: String = "") {
        rows.append((figure, lethe, peer, goal))
        say("  \(figure): \(lethe)\(peer.isEmpty ? "" : "   | peer: \(peer)")\(goal.isEmpty ? "" : "   | goal: \(goal)")")
    }

    func step(_ s: String) { say("== \(s)  [load \(Machine.loadAverage())]") }

    mutating func run() async throws {
        let machine = Machine.current()
        say("lethe-bench \(machine.date) — \(machine.cores) cores, \(machine.cpu), \(fmt(machine.memGiB, 1)) GiB, \(machine.kernel), load \(machine.load)")
        let marker = o.dir + "/.lethe-bench"
        if FileManager.default.fileExists(atPath: o.dir) {
            guard FileManager.default.fileExists(atPath: marker) else {
                throw BenchError("\(o.dir) exists and was not made by lethe-bench; choose another --dir")
            }
            try FileManager.default.removeItem(atPath: o.dir)
        }
        try makeDirs(lake)
        _ = FileManager.default.createFile(atPath: marker, contents: Data())
        try LetheBench.configText(state: "state").write(toFile: o.dir + "/lethe.yaml", atomically: true, encoding: .utf8)

        // 1. The lake.
        step("generating the lake")
        let gen = LakeGenerator(root: lake, totalBytes: Int64(o.gb * 1_073_741_824), objects: o.objects, users: o.users)
        let (g, genSecs) = try await timed { try await gen.generate(workers: machine.cores) }
        let objectPaths = (0..<o.objects).map { lake + "/" + gen.key(ofObject: $0) }
        row(
            "Lake",
            "\(grouped(g.bytes)) bytes JSONL (\(fmt(Double(g.bytes) / 1_073_741_824, 2)) GiB), \(grouped(o.objects)) objects, \(grouped(g.records)) records (\(fmt(Double(g.bytes) / Double(g.records), 0)) B each), \(grouped(o.users)) users (2% hot get 25% of events)"
        )
        row("Lake generation", "\(duration(genSecs)) (\(fmt(Double(g.bytes) / genSecs / 1e6, 0)) MB/s, \(machine.cores) writers)")

        // 2. Index backfill.
        step("index backfill (\(machine.cores) workers)")
        let lethe = try LetheBench.open(dir: o.dir, state: "state")
        let idx = try await lethe.index()
        guard idx.records == g.records, idx.quarantined.isEmpty else {
            throw BenchError("index saw \(idx.records) records (generated \(g.records)), quarantined \(idx.quarantined.count)")
        }
        let mbps = Double(idx.bytesScanned) / idx.seconds / 1e6
        let rps = Double(idx.records) / idx.seconds
        let stats = try await lethe.meta.indexStats()

        step("index backfill (1 worker: taskset -c 0)")
        var one: (cpus: Int, seconds: Double, bytes: Int64, records: Int64)?
        var oneTable: (cpus: Int, seconds: Double, bytes: Int64, records: Int64)?
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
            // The segment write path, then (alternative) every posting a `postings` row as before issue 16.
            for table in [false, true] {
                let child = try runProgram(
                    "/usr/bin/taskset", ["-c", "0", CommandLine.arguments[0], "index", "--child-index", o.dir] + (table ? ["--child-table"] : []))
                let (status, out) = (child.status, child.out + child.err)
                if status == 0, let line = out.split(separator: "\n").last,
                    let j = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let cpus = j["cpus"] as? Int, let secs = j["seconds"] as? Double,
                    let bytes = (j["bytes"] as? NSNumber)?.int64Value, let recs = (j["records"] as? NSNumber)?.int64Value
                {
                    if table { oneTable = (cpus, secs, bytes, recs) } else { one = (cpus, secs, bytes, recs) }
                } else {
                    notes.append("the 1-worker index run\(table ? " (postings table)" : "") failed (status \(status)): \(out.prefix(200))")
                }
                try? FileManager.default.removeItem(atPath: o.dir + "/state-1core")
            }
        }

        step("peers: plain read, Python json.loads")
        let (readBytes, readSecs) = await timed { readAll(objectPaths) }
        let python = try pythonScan(objectPaths)

        row(
            "Index backfill, \(machine.cores) workers (total)",
            "\(duration(idx.seconds)): \(fmt(mbps, 1)) MB/s, \(grouped(Int64(rps))) rows/s",
            "", "")
        if let one {
            let m1 = Double(one.bytes) / one.seconds / 1e6
            row(
                "Index backfill per core (1 worker, taskset -c 0, cpus seen \(one.cpus))",
                "\(fmt(m1, 1)) MB/s, \(grouped(Int64(Double(one.records) / one.seconds))) rows/s",
                "read(2) only: \(fmt(Double(readBytes) / readSecs / 1e6, 1)) MB/s; Python json.loads: \(python.map { "\(fmt($0.mbps, 1)) MB/s, \(grouped(Int64($0.rps))) rows/s (\($0.objects) objects sampled)" } ?? "n/a")",
                "≥ 300 MB/s")
            if let t = oneTable {
                row(
                    "Index backfill per core, every posting a `postings` row (no segments)",
                    "\(fmt(Double(t.bytes) / t.seconds / 1e6, 1)) MB/s, \(grouped(Int64(Double(t.records) / t.seconds))) rows/s")
            }
        } else {
            row(
                "Index backfill per core (total / \(machine.cores))",
                "\(fmt(mbps / Double(machine.cores), 1)) MB/s, \(grouped(Int64(rps / Double(machine.cores)))) rows/s",
                "read(2) only: \(fmt(Double(readBytes) / readSecs / 1e6, 1)) MB/s; Python json.loads: \(python.map { "\(fmt($0.mbps, 1)) MB/s" } ?? "n/a")",
                "≥ 300 MB/s")
        }
        row("Index entries (subject, object) postings", grouped(stats.postings) + " for \(grouped(idx.records)) records")

        // 3. Index size.
        step("index size")
        let db = o.dir + "/state/lethe.sqlite"
        let walBefore = fileSize(db + "-wal")
        let checkpoint = try runProgram("/usr/bin/sqlite3", [db, "PRAGMA wal_checkpoint(TRUNCATE);"])
        let (ck, ckOut) = (checkpoint.status, checkpoint.out + checkpoint.err)
        if ck != 0 { notes.append("checkpoint failed: \(ckOut)") }
        let dbBytes = fileSize(db) + fileSize(db + "-wal")
        var postingsBytes: Int64 = 0
        let dbstat = try runProgram(
            "/usr/bin/sqlite3",
            [db, "SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name IN ('postings', 'segments', 'segment_blocks', 'segment_blocks_by_key');"])
        let (ds, dsOut) = (dbstat.status, dbstat.out)
        if ds == 0 { postingsBytes = Int64(dsOut.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
        let segs = try runProgram("/usr/bin/sqlite3", [db, "SELECT count(*) || ' segment(s), ' || coalesce(sum(blocks), 0) || ' blocks' FROM segments;"])
        if segs.status == 0 { notes.append("the backfilled index: \(segs.out.trimmingCharacters(in: .whitespacesAndNewlines))") }
        row(
            "Index bytes per indexed record",
            "\(fmt(Double(dbBytes) / Double(idx.records), 1)) B (lethe.sqlite \(grouped(dbBytes)) B after checkpoint; WAL was \(grouped(walBefore)) B; postings table and segments \(fmt(Double(postingsBytes) / Double(idx.records), 1)) B/record, \(fmt(Double(postingsBytes) / Double(max(1, stats.postings)), 1)) B/entry)",
            "", "≤ 24 B")

        // 4. locate.
        step("locate latency")
        var rng = SplitMix(seed: 0xC0FFEE)
        var subjects: [SubjectID] = []
        for i in 0..<o.locateCalls {
            // Half drawn from the lake's users (present, almost always), half ids no record holds.
            let u = i % 2 == 0 ? gen.drawUser(&rng) : o.users + Int(rng.next() % 5_000_000)
            subjects.append(SubjectID(LakeGenerator.userID(u)))
        }
        let real = try await measureLocate(lethe, subjects)
        row(
            "`locate` on the lake's index (\(grouped(stats.postings)) entries), \(grouped(o.locateCalls)) subjects, \(real.found) present",
            "Lethe.locate p50 \(duration(real.engine.percentile(0.5))), p99 \(duration(real.engine.percentile(0.99)))",
            "raw StateStore.locate p50 \(duration(real.raw.percentile(0.5))), p99 \(duration(real.raw.percentile(0.99)))",
            "p99 < 1 ms")
        if stats.postings < Int64(o.syntheticEntries) {
            step("synthetic index of \(grouped(o.syntheticEntries)) entries through the StateStore API")
            let (synth, secs) = try await timed { try await syntheticIndex(entries: o.syntheticEntries, config: lethe.config) }
            row(
                "Synthetic index build (StateStore.putIndexedObjects(flat:), \(grouped(synth.objects)) objects in batches of 100)",
                "\(duration(secs)) (\(grouped(Int64(Double(o.syntheticEntries) / secs))) entries/s), \(fmt(Double(synth.bytes) / Double(o.syntheticEntries), 1)) B/entry on disk"
            )
            var srng = SplitMix(seed: 0xBEEF)
            var probes: [SubjectID] = []
            for i in 0..<o.locateCalls {
                let n = Int(srng.next() % UInt64(synth.probes))
                probes.append(SubjectID(i % 2 == 0 ? "p-\(n)" : "q-\(n)"))
            }
            let s = try await measureLocate(synth.lethe, probes)
            row(
                "`locate` on a synthetic index of \(grouped(synth.entries)) entries, \(grouped(o.locateCalls)) subjects, \(s.found) present",
                "Lethe.locate p50 \(duration(s.engine.percentile(0.5))), p99 \(duration(s.engine.percentile(0.99)))",
                "raw StateStore.locate p50 \(duration(s.raw.percentile(0.5))), p99 \(duration(s.raw.percentile(0.99)))",
                "p99 < 1 ms")
            try? FileManager.default.removeItem(atPath: o.dir + "/synth-state")
        }

        // 5. Erasure, indexed vs full scan, on identical copies.
        if o.erase {
            step("copying the lake for the full-scan baseline")
            let baselineLake = o.dir + "/lake-baseline"
            let copy = try runProgram("/bin/cp", ["-a", lake, baselineLake])
            let (cp, cpOut) = (copy.status, copy.err)
            guard cp == 0 else { throw BenchError("cp failed: \(cpOut)") }
            var pick = SplitMix(seed: 0x5EED)
            var chosen = Set<Int>()
            var single: SubjectID?
            var batch: [SubjectID] = []
            while single == nil || batch.count < o.batch {
                let u = gen.drawUser(&pick)
                guard chosen.insert(u).inserted else { continue }
                let s = SubjectID(LakeGenerator.userID(u))
                guard try await !lethe.locate(s).isEmpty else { continue }
                // The single subject is a typical user (not one of the 2% hot ones); the batch is drawn as the lake is.
                if single == nil { if u >= gen.hotUsers { single = s } else { batch.append(s) } } else if batch.count < o.batch { batch.append(s) }
            }
            let store = LocalObjectStore(root: lake)
            let baseStore = LocalObjectStore(root: baselineLake)
            for (label, subs) in [("1 subject (not a hot user)", [single!]), ("\(grouped(o.batch)) subjects", batch)] {
                step("erasure of \(label): indexed (forget + approve + run)")
                let e = try await indexedErasure(lethe, subs)
                step("erasure of \(label): full-scan baseline")
                let b = try await fullScanErasure(lethe, baseStore, subs)
                if e.rowsDropped != b.rowsDropped {
                    notes.append("erasure of \(label): the indexed run dropped \(e.rowsDropped) rows, the full scan \(b.rowsDropped)")
                }
                row(
                    "Erasure of \(label): wall time",
                    "\(duration(e.total)) (forget \(duration(e.forget)), approve \(duration(e.approve)), run \(duration(e.run)))",
                    "full scan: \(duration(b.seconds))")
                row(
                    "Erasure of \(label): objects read / rewritten, rows dropped (indexed: each step's object is read by the rewrite and by its re-index, then the verification scans the dataset)",
                    "\(grouped(e.objectsRead)) read / \(grouped(e.objectsRewritten)) rewritten, \(grouped(e.rowsDropped)) rows",
                    "\(grouped(b.objectsRead)) read / \(grouped(b.objectsRewritten)) rewritten, \(grouped(b.rowsDropped)) rows")
                row(
                    "Erasure of \(label): inside `run`",
                    "index refresh + plan \(duration(e.prepare)), rewrites \(duration(e.rewrite)), settle + verification scan \(duration(e.verify)); \(e.verifiedClean)/\(subs.count) verified clean"
                )
            }
            _ = store
        }

        // 6. Report.
        let end = Machine.current()
        var md = """
            Measured \(machine.date) on \(machine.cores) cores (\(machine.cpu)), \(fmt(machine.memGiB, 1)) GiB RAM, \(machine.kernel); \
            load average at start \(machine.load), at end \(end.load). \
            Command: `lethe-bench \(CommandLine.arguments.dropFirst().joined(separator: " "))`. Warm page cache (the lake was just written).

            | Figure | Lethe | Peer / baseline | Goal |
            |---|---|---|---|

            """
        for r in rows { md += "| \(r.0) | \(r.1) | \(r.2) | \(r.3) |\n" }
        if !notes.isEmpty { md += "\n" + notes.map { "- NOTE: \($0)" }.joined(separator: "\n") + "\n" }
        say("\n" + md)
        if let path = o.markdown { try md.write(toFile: path, atomically: true, encoding: .utf8) }
        if !o.keep { try? FileManager.default.removeItem(atPath: o.dir) } else { say("kept \(o.dir)") }
    }

    // MARK: Peers

    struct PythonResult { var mbps: Double; var rps: Double; var objects: Int }

    /// `json.loads` per line over a sample of the objects (every k-th), single process.
    func pythonScan(_ paths: [String]) throws -> PythonResult? {
        let script = packageRoot + "/scripts/bench_index_peer.py"
        let k = max(1, paths.count / max(1, o.pythonObjects))
        let sample = stride(from: 0, to: paths.count, by: k).prefix(o.pythonObjects).map { paths[$0] }
        let peer = try runProgram("/usr/bin/env", ["python3", script] + sample)
        let (status, out) = (peer.status, peer.out)
        guard status == 0, let line = out.split(separator: "\n").last,
            let j = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let secs = j["seconds"] as? Double, let bytes = (j["bytes"] as? NSNumber)?.doubleValue,
            let recs = (j["records"] as? NSNumber)?.doubleValue
        else { return nil }
        return PythonResult(mbps: bytes / secs / 1e6, rps: recs / secs, objects: sample.count)
    }

    // MARK: locate

    struct LocateResult { var engine = Latencies(); var raw = Latencies(); var found = 0 }

    func measureLocate(_ lethe: Lethe, _ subjects: [SubjectID]) async throws -> LocateResult {
        var r = LocateResult()
        let prefixes = subjects.map { lethe.key(for: $0).prefix64 }
        for s in subjects.prefix(200) { _ = try await lethe.locate(s) }  // warm-up
        for s in subjects {
            let t0 = monotonic()
            let p = try await lethe.locate(s)
            r.engine.add(monotonic() - t0)
            if !p.isEmpty { r.found += 1 }
        }
        for k in prefixes {
            let t0 = monotonic()
            _ = try await lethe.meta.locate(prefix: k, dataset: nil)
            r.raw.add(monotonic() - t0)
        }
        return r
    }

    struct Synthetic { var lethe: Lethe; var entries: Int; var objects: Int; var probes: Int; var bytes: Int64 }

    /// A second index with `entries` postings, written through `StateStore.putIndexedObjects(flat:)`
    /// in objects of 5,000 entries, 100 objects a batch (as the backfill writes them: one sorted
    /// segment a batch, merged into one at the end as an index pass ends). Keys are random 64-bit prefixes (distributed like
    /// HMAC prefixes) except `probes` real subjects `p-N` that `Lethe.locate` can find, spread
    /// over the objects at random.
    func syntheticIndex(entries: Int, config: LakeConfig) async throws -> Synthetic {
        let folder = o.dir + "/synth-state"
        let (secrets, meta) = try Runtime.openState(folder: folder)
        let lethe = Lethe(config: config, store: LocalObjectStore(root: lake), meta: meta, secrets: secrets, stateFolder: folder)
        let probes = min(50_000, entries / 10)
        var keys: [Int64] = []
        keys.reserveCapacity(entries)
        for n in 0..<probes { keys.append(secrets.hasher.key(for: SubjectID("p-\(n)")).prefix64) }
        var rng = SplitMix(seed: 0xABCDEF)
        while keys.count < entries { keys.append(Int64(bitPattern: rng.next())) }
        keys.shuffle(using: &rng)
        let per = 5_000
        var objects = 0
        var start = 0
        var batch: [(IndexedObject, PostingList)] = []
        while start < keys.count {
            let end = min(keys.count, start + per)
            var postings = PostingList()
            postings.reserveCapacity(end - start)
            for i in start..<end { postings.append(keys[i], row: Int64(rng.next() % 5_000)) }
            postings.sort()
            batch.append(
                (
                    IndexedObject(
                        dataset: "events", key: "synthetic/part-\(objects).jsonl", size: 1_000_000, modifiedNanos: 0,
                        version: "v\(objects)", records: Int64(per), status: .indexed, indexedAt: 0),
                    postings
                ))
            if batch.count == 100 {
                try await meta.putIndexedObjects(flat: batch)
                batch.removeAll()
            }
            objects += 1
            start = end
        }
        if !batch.isEmpty { try await meta.putIndexedObjects(flat: batch) }
        // The end of an index pass (what `Lethe.index` does last): the batches' segments merged into one.
        _ = try await meta.purgeDeadPostings(force: false)
        let db = folder + "/lethe.sqlite"
        _ = try runProgram("/usr/bin/sqlite3", [db, "PRAGMA wal_checkpoint(TRUNCATE);"])
        return Synthetic(
            lethe: lethe, entries: entries, objects: objects, probes: probes,
            bytes: fileSize(db) + fileSize(db + "-wal"))
    }

    // MARK: Erasure

    struct IndexedErasure {
        var forget = 0.0, approve = 0.0, run = 0.0, total = 0.0
        var prepare = 0.0, rewrite = 0.0, verify = 0.0
        var objectsRead = 0, objectsRewritten = 0, rowsDropped: Int64 = 0, verifiedClean = 0
    }

    func indexedErasure(_ lethe: Lethe, _ subjects: [SubjectID]) async throws -> IndexedErasure {
        var e = IndexedErasure()
        let t0 = monotonic()
        let filed = try await lethe.forget(subjects, reason: "benchmark", by: "alice")
        let t1 = monotonic()
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let t2 = monotonic()
        let log = ProgressLog()
        let report = try await lethe.run(events: { log.add($0) })
        let t3 = monotonic()
        e.forget = t1 - t0; e.approve = t2 - t1; e.run = t3 - t2; e.total = t3 - t0
        let entries = log.all
        let jobStart = entries.first { if case .jobPlanned = $0.1 { true } else { false } }?.0 ?? t2
        let lastObject = entries.last?.0 ?? jobStart
        e.prepare = jobStart - t2
        e.rewrite = lastObject - jobStart
        e.verify = t3 - lastObject
        e.objectsRewritten = report.objectsRewritten + report.objectsRemoved
        e.rowsDropped = report.rowsDropped
        e.verifiedClean = report.verifications.filter(\.clean).count
        // Objects read: each step's object twice (the rewrite, then its re-index), plus the verification's scan of the dataset.
        e.objectsRead = 2 * (entries.count - 1) + (report.verifications.first?.objectsScanned ?? 0)
        guard report.failed.isEmpty else { throw BenchError("erasure failed: \(report.failed.first!.reason)") }
        return e
    }

    struct FullScan { var seconds = 0.0; var objectsRead = 0; var objectsRewritten = 0; var rowsDropped: Int64 = 0 }

    /// What a lake without an index must do: read every object of the dataset, key every
    /// record, and rewrite the objects that hold a subject (`JSONLinesFormat.erase`
    /// scans and writes only when something matches), one pass for the whole batch.
    func fullScanErasure(_ lethe: Lethe, _ store: LocalObjectStore, _ subjects: [SubjectID]) async throws -> FullScan {
        var r = FullScan()
        let d = lethe.config.datasets[0]
        let opts = FormatOptions(subject: d.subject!)
        let keys = Set(subjects.map { lethe.key(for: $0) })
        let format = JSONLinesFormat()
        let t0 = monotonic()
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher)
        for obj in try await store.list(prefix: d.path) {
            let out = try await format.erase(obj, in: store, options: opts, keyer: keyer, drop: keys)
            r.objectsRead += 1
            if out.written != nil || out.removed { r.objectsRewritten += 1 }
            r.rowsDropped += out.droppedTotal
        }
        r.seconds = monotonic() - t0
        return r
    }
}
