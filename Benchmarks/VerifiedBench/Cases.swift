import Foundation
import BenchSupport
import IndexBenchmark
import LetheCatalog
import LetheCore
import LetheEngine
import LetheFormats
import LetheRuntime
import LetheStorage

extension Bench {
    // MARK: Parquet: one file, one subject, vs pyarrow

    mutating func parquetCase() async throws {
        let groups = 32
        let rowCount = max(groups * 1_000, Int(3_200_000 * o.scale) / groups * groups)
        let users = max(1_000, Int(1_000_000 * o.scale))
        let seed = 12
        let title = o.scale == 1 ? "Parquet 97 MB / 3.2M rows / 32 row groups" : "Parquet \(grouped(rowCount)) rows / 32 row groups"
        var row = Row(caseName: "parquet", title: title, subjects: 1, peerName: "pyarrow filter + write_table", goalText: "≥ 10×", goal: 10)
        do {
            step("\(title): data")
            let params = [rowCount, groups, users, seed].map(String.init)
            let fp = fingerprint([fileBytes(packageRoot + "/scripts/bench_verified.py")] + params.map { Array($0.utf8) })
            let py = self.py
            let (data, facts) = try await cached("parquet", fp) { dir in
                try py.call("bench_verified.py", ["parquet-gen", dir + "/events.parquet"] + params).json
            }
            let subject = try facts.string("subject")
            versions["pyarrow"] = facts["pyarrow"] as? String
            say("   \(megabytes(try facts.int("bytes"))), \(grouped(try facts.int("rows"))) rows, subject has \(try facts.int("subject_rows")) rows")
            let w = roundDir + "/parquet"
            try? FileManager.default.removeItem(atPath: w)
            try copyTree(data + "/events.parquet", w + "/peer/events.parquet")
            try copyTree(data + "/events.parquet", w + "/lethe/lake/events/events.parquet")

            step("\(title): pyarrow read_table → filter → write_table + os.replace")
            let (p, _) = try py.call("bench_verified.py", ["parquet-filter", w + "/peer/events.parquet", subject, String(rowCount / groups)])
            row.peer = try p.double("seconds")
            let peerDropped = try p.int("dropped")
            say("   pyarrow \(secs(row.peer!)) s, \(peerDropped) rows dropped")

            step("\(title): Lethe index, forget, approve → run → verified")
            var side = LetheSide()
            let config = try Self.writeConfig(
                root: w + "/lethe", dataset: "  - {name: events, path: events, format: parquet, subject: user_id}\n")
            let lethe = try await openAndIndex(config, &side)
            try await erase(lethe, [subject], &side)
            row.lethe = side.approveToVerified
            row.verify = side.verify
            row.forget = side.forget
            row.backfill = side.backfill
            row.dropped = side.dropped

            step("\(title): pyarrow reads both outputs")
            let (a, _) = try py.call("bench_verified.py", ["parquet-check", w + "/peer/events.parquet", subject])
            let (b, _) = try py.call("bench_verified.py", ["parquet-check", w + "/lethe/lake/events/events.parquet", subject])
            var problems: [String] = []
            if side.dropped != peerDropped { problems.append("Lethe dropped \(side.dropped) rows, pyarrow \(peerDropped)") }
            if try b.int("rows") != a.int("rows") { problems.append("Lethe's file has \(try b.int("rows")) rows, pyarrow's \(try a.int("rows"))") }
            if try b.int("subject_rows") != 0 { problems.append("Lethe's file still has the subject's rows") }
            if try b.int("event_id_sum") != a.int("event_id_sum") { problems.append("the surviving rows differ (event_id sum)") }
            guard problems.isEmpty else { throw BenchError("check failed: " + problems.joined(separator: "; ")) }
            row.detail = "Lethe's output: \(try b.int("row_groups")) row groups, read by pyarrow; \(side.objectsScanned) object(s) scanned by the verification"
            say("   checked: same rows as pyarrow's output, none of the subject's")
        } catch {
            row.failure = "\(error)"
            say("   FAILED: \(error)")
        }
        rows.append(row)
        try? FileManager.default.removeItem(atPath: roundDir + "/parquet")
    }

    // MARK: Delta: delta-rs delete

    mutating func deltaCase(_ c: String) async throws {
        let s = o.scale
        let users = max(1_000, Int((1_000_000 * s).rounded()))
        func layout(_ rows: Int, _ files: Int, _ minFiles: Int, _ groups: Int) -> (rows: Int, files: Int, groups: Int) {
            let f = s == 1 ? files : max(minFiles, Int((Double(files) * s).rounded()))
            let unit = f * groups
            return (max(unit * 16, Int(Double(rows) * s) / unit * unit), f, groups)
        }
        let (title, l, seed): (String, (rows: Int, files: Int, groups: Int), Int)
        switch c {
        case "a": (title, l, seed) = ("Delta (a) 4M rows / 100 files", layout(4_000_000, 100, 10, 1), 11)
        case "b": (title, l, seed) = ("Delta (b) 8 files × 2M rows", layout(16_000_000, 8, 8, 8), 22)
        default: (title, l, seed) = ("Delta (c) 5,000 small files", layout(1_000_000, 5_000, 50, 1), 33)
        }
        let shownTitle = s == 1 ? title : "\(title.prefix(9)) \(grouped(l.rows)) rows / \(grouped(l.files)) files"
        // At least 1,000 picked whatever the counts asked: `--delta-subjects 1` and `1,1000` share the data (the
        // count is a generator parameter, and the cache keeps one fingerprint per case).
        let maxSubjects = max(1_000, o.deltaSubjects.max()!)
        step("\(shownTitle): data")
        let params = [l.rows, l.files, l.groups, users, seed, maxSubjects].map(String.init)
        let fp = fingerprint([fileBytes(packageRoot + "/scripts/delta_bench.py")] + params.map { Array($0.utf8) })
        let py = self.py
        let (data, facts) = try await cached("delta-" + c, fp) { dir in
            try py.call("delta_bench.py", ["gen", dir + "/events"] + params).json
        }
        versions["deltalake"] = facts["deltalake"] as? String
        versions["pyarrow"] = facts["pyarrow"] as? String
        say("   \(megabytes(try facts.int("bytes"))), \(grouped(l.rows)) rows in \(l.files) files × \(l.groups) row groups")
        let all = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: data + "/subjects.json")))
        for n in o.deltaSubjects {
            let goal: Double = n == 1 ? (c == "a" ? 3 : 5) : 2
            var row = Row(
                caseName: "delta-" + c, title: shownTitle, subjects: n, peerName: "delta-rs delete", goalText: "≥ \(Int(goal))×", goal: goal)
            let w = roundDir + "/delta-\(c)-\(n)"
            do {
                guard all.count >= n else { throw BenchError("only \(all.count) subjects were picked, \(n) asked") }
                let ids = Array(all.prefix(n))
                try? FileManager.default.removeItem(atPath: w)
                try copyTree(data + "/events", w + "/peer/events")
                try copyTree(data + "/events", w + "/lethe/lake/events")
                try FileManager.default.copyItem(atPath: data + "/subjects.json", toPath: w + "/subjects.json")
                let (expected, _) = try py.call("delta_bench.py", ["check", data + "/events", w + "/subjects.json", String(n)])

                step("\(shownTitle), \(grouped(n)) subject(s): delta-rs delete")
                let (d, _) = try py.call("delta_bench.py", ["delete", w + "/peer/events", w + "/subjects.json", String(n)])
                row.peer = try d.double("delete_s")
                guard let m = d["metrics"] as? [String: Any] else { throw BenchError("delete: no metrics in \(d)") }
                let peerDropped = try m.int("num_deleted_rows")
                say("   delta-rs delete \(secs(row.peer!)) s, \(grouped(peerDropped)) rows")

                step("\(shownTitle), \(grouped(n)) subject(s): Lethe index, forget, approve → run → verified")
                var side = LetheSide()
                let config = try Self.writeConfig(
                    root: w + "/lethe", dataset: "  - {name: events, path: events, format: delta, subject: user_id}\n")
                let lethe = try await openAndIndex(config, &side)
                try await erase(lethe, ids, &side)
                row.lethe = side.approveToVerified
                row.verify = side.verify
                row.forget = side.forget
                row.backfill = side.backfill
                row.dropped = side.dropped

                step("\(shownTitle), \(grouped(n)) subject(s): delta-rs reads both tables")
                var problems: [String] = []
                if side.dropped != peerDropped { problems.append("Lethe dropped \(side.dropped) rows, delta-rs \(peerDropped)") }
                let want = try expected.int("rows") - expected.int("subject_rows")
                for (who, table) in [("delta-rs", w + "/peer/events"), ("Lethe", w + "/lethe/lake/events")] {
                    let (k, _) = try py.call("delta_bench.py", ["check", table, w + "/subjects.json", String(n)])
                    if try k.int("rows") != want { problems.append("\(who)'s table has \(try k.int("rows")) rows, expected \(want)") }
                    if try k.int("subject_rows") != 0 { problems.append("\(who)'s table still has rows of the subjects") }
                    if try k.int("event_id_sum") != expected.int("kept_event_id_sum") { problems.append("\(who)'s surviving rows differ (event_id sum)") }
                }
                guard problems.isEmpty else { throw BenchError("check failed: " + problems.joined(separator: "; ")) }
                row.detail = "\(side.objectsScanned) object(s) scanned by the verification"
                say("   checked: both tables read by delta-rs, same surviving rows")
            } catch {
                row.failure = "\(error)"
                say("   FAILED: \(error)")
            }
            rows.append(row)
            try? FileManager.default.removeItem(atPath: w)
        }
    }

    // MARK: JSON Lines: 1 GiB in 1,000 objects, one subject, vs the full-scan erase

    static let jsonlDataset = "  - {name: events, path: raw/events, format: jsonl, subject: user.id, pii: [user.email, ip]}\n"

    /// The cached JSON Lines lake (generated by `LakeGenerator`, IndexBench) and its generator.
    func jsonlData() async throws -> (String, LakeGenerator, [String: Any]) {
        let bytes = Int64(1_073_741_824 * o.scale)
        let objects = max(10, Int(1_000 * o.scale))
        let users = max(1_000, Int(1_000_000 * o.scale))
        let params = [String(bytes), String(objects), String(users)]
        let fp = fingerprint([fileBytes(packageRoot + "/Benchmarks/IndexBench/LakeGenerator.swift")] + params.map { Array($0.utf8) })
        let cores = machine.cores
        let (dir, facts) = try await cached("jsonl", fp) { dir in
            let g = LakeGenerator(root: dir + "/lake", totalBytes: bytes, objects: objects, users: users)
            let r = try await g.generate(workers: cores)
            return ["bytes": r.bytes, "records": r.records, "objects": objects, "users": users]
        }
        return (dir, LakeGenerator(root: dir + "/lake", totalBytes: bytes, objects: objects, users: users), facts)
    }

    mutating func jsonlCase() async throws {
        let title = o.scale == 1 ? "JSON Lines 1 GiB / 1,000 objects" : "JSON Lines \(fmt(o.scale, 2)) GiB"
        var row = Row(caseName: "jsonl", title: title, subjects: 1, peerName: "full-scan erase", goalText: "≥ 50×", goal: 50)
        let w = roundDir + "/jsonl"
        do {
            step("\(title): data")
            let (data, gen, facts) = try await jsonlData()
            say("   \(megabytes(try facts.int("bytes"))), \(grouped(try facts.int("records"))) records in \(try facts.int("objects")) objects")
            try? FileManager.default.removeItem(atPath: w)
            try copyTree(data + "/lake", w + "/lethe/lake")
            try copyTree(data + "/lake", w + "/baseline/lake")
            step("\(title): Lethe index backfill")
            var side = LetheSide()
            let config = try Self.writeConfig(root: w + "/lethe", dataset: Self.jsonlDataset)
            let lethe = try await openAndIndex(config, &side)
            // One typical user (not one of the 2% hot ones) whom the index finds.
            var pick = SplitMix64(seed: 0x5EED)
            var subject: String?
            while subject == nil {
                let u = gen.drawUser(&pick)
                guard u >= gen.hotUsers else { continue }
                let s = LakeGenerator.userID(u)
                if try await !lethe.locate(SubjectID(s)).isEmpty { subject = s }
            }

            step("\(title): full-scan erase (every object read and keyed; baseline)")
            let base = try await fullScanErase(lethe, LocalObjectStore(root: w + "/baseline/lake"), [subject!])
            row.peer = base.seconds
            say("   full scan \(secs(base.seconds)) s, \(base.read) objects read, \(base.rewritten) rewritten, \(base.dropped) rows dropped")

            step("\(title): Lethe forget, approve → run → verified")
            try await erase(lethe, [subject!], &side)
            row.lethe = side.approveToVerified
            row.verify = side.verify
            row.forget = side.forget
            row.backfill = side.backfill
            row.dropped = side.dropped
            var problems: [String] = []
            if side.dropped != base.dropped { problems.append("Lethe dropped \(side.dropped) rows, the full scan \(base.dropped)") }
            let diff = try runProgram("/usr/bin/diff", ["-rq", w + "/lethe/lake", w + "/baseline/lake"])
            if diff.status != 0 { problems.append("the two lakes differ: \(diff.out.prefix(300))") }
            guard problems.isEmpty else { throw BenchError("check failed: " + problems.joined(separator: "; ")) }
            row.detail =
                "objects read by the verification: \(side.objectsScanned) (rewritten: \(base.rewritten)); the full scan read \(base.read)"
            say("   checked: the two lakes are byte-identical")
        } catch {
            row.failure = "\(error)"
            say("   FAILED: \(error)")
        }
        rows.append(row)
        try? FileManager.default.removeItem(atPath: w + "/baseline")
    }

    struct FullScan { var seconds = 0.0, read = 0, rewritten = 0, dropped: Int64 = 0 }

    /// What a lake without an index does: read and key every record of every object, rewrite those holding a subject.
    func fullScanErase(_ lethe: Lethe, _ store: LocalObjectStore, _ subjects: [String]) async throws -> FullScan {
        var r = FullScan()
        let d = lethe.config.datasets[0]
        let opts = FormatOptions(subject: d.subject!)
        let keys = Set(subjects.map { lethe.key(for: SubjectID($0)) })
        let format = JSONLinesFormat()
        let t0 = monotonic()
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher)
        for obj in try await store.list(prefix: d.path) {
            let out = try await format.erase(obj, in: store, options: opts, keyer: keyer, drop: keys)
            r.read += 1
            if out.written != nil || out.removed { r.rewritten += 1 }
            r.dropped += out.droppedTotal
        }
        r.seconds = monotonic() - t0
        return r
    }

    // MARK: Batch: forget --from and approve --all with the release binary

    mutating func batchCase() async throws {
        let n = o.batchIDs ?? max(1_000, Int(100_000 * o.scale))
        let title = "Batch: \(grouped(n)) ids"
        var forgetRow = Row(
            caseName: "batch", title: title, subjects: n, peerName: "", goalText: "< 5 s", goal: 5, isLimit: true)
        var approveRow = forgetRow
        forgetRow.title += ", `lethe forget --from`"
        approveRow.title += ", `lethe approve --all`"
        let w = roundDir + "/batch"
        do {
            guard FileManager.default.isExecutableFile(atPath: o.lethe) else {
                throw BenchError("no release binary at \(o.lethe): `swift build -c release --product lethe` (scripts/bench-verified does)")
            }
            step("\(title): the JSON Lines lake, indexed")
            let (data, gen, _) = try await jsonlData()
            try? FileManager.default.removeItem(atPath: w)
            try copyTree(data + "/lake", w + "/lake")
            var side = LetheSide()
            let config = try Self.writeConfig(root: w, dataset: Self.jsonlDataset)
            do {
                let lethe = try await openAndIndex(config, &side)
                _ = lethe
            }
            // Half the ids from the lake's users (present), half ids no record holds.
            var ids = ""
            let present = n / 2
            let stride = max(1, gen.users / max(1, present))
            for i in 0..<n {
                let u = i < present ? (i * stride) % gen.users : gen.users + i
                ids += LakeGenerator.userID(u) + "\n"
            }
            try ids.write(toFile: w + "/ids.txt", atomically: true, encoding: .utf8)
            let args = ["--config", w + "/lethe.yaml", "--json"]

            step("\(title): lethe forget --from ids.txt --by alice")
            let f = try runProgram(
                o.lethe, ["forget", "--from", w + "/ids.txt", "--by", "alice", "--reason", "bench"] + args, cwd: w, stdoutTo: "/dev/null",
                timeout: o.batchTimeout)
            forgetRow.forget = nil
            if f.timedOut {
                forgetRow.failure = "killed after \(secs(o.batchTimeout)) s (--batch-timeout)"
            } else if f.status != 0 {
                forgetRow.failure = "exit \(f.status): \(f.err.suffix(300))"
            } else {
                forgetRow.lethe = f.seconds
            }
            say("   forget: \(f.timedOut ? "killed at the timeout" : "exit \(f.status)") after \(secs(f.seconds)) s")
            let auditAfterForget = try await Runtime.open(config: config).meta.auditEntries().count

            step("\(title): lethe approve --all --by bob")
            let a = try runProgram(o.lethe, ["approve", "--all", "--by", "bob"] + args, cwd: w, stdoutTo: "/dev/null", timeout: o.batchTimeout)
            if a.timedOut {
                approveRow.failure = "killed after \(secs(o.batchTimeout)) s (--batch-timeout)"
            } else if a.status != 0 {
                approveRow.failure = "exit \(a.status): \(a.err.suffix(300))"
            } else {
                approveRow.lethe = a.seconds
            }
            say("   approve: \(a.timedOut ? "killed at the timeout" : "exit \(a.status)") after \(secs(a.seconds)) s")
            let lethe = try Runtime.open(config: config)
            let audit = try await lethe.meta.auditEntries().count
            let approved = try await lethe.requests(status: .approved).count
            forgetRow.detail = "\(grouped(auditAfterForget)) audit entries after forget"
            approveRow.detail = "\(grouped(approved)) requests approved, \(grouped(audit - auditAfterForget)) audit entries added by approve"
            if forgetRow.failure == nil && approveRow.failure == nil && approved != n {
                approveRow.failure = "\(approved) of \(n) requests approved"
            }
        } catch {
            forgetRow.failure = forgetRow.failure ?? "\(error)"
            approveRow.failure = approveRow.failure ?? "\(error)"
            say("   FAILED: \(error)")
        }
        rows.append(forgetRow)
        rows.append(approveRow)
        try? FileManager.default.removeItem(atPath: w)
    }

    // MARK: Sweep: the whole lake and the state, for 1,000 verified requests (GB/s; no goal here)

    mutating func sweepCase() async throws {
        let n = max(10, Int(1_000 * o.scale))
        let title =
            o.scale == 1
            ? "Sweep: JSON Lines 1 GiB, \(grouped(n)) verified requests" : "Sweep: JSON Lines \(fmt(o.scale, 2)) GiB, \(grouped(n)) verified requests"
        var row = Row(caseName: "sweep", title: title, subjects: n, peerName: "", goalText: "– (issue 16)", goal: 0, isLimit: true)
        let w = roundDir + "/sweep"
        do {
            step("\(title): data, index, \(grouped(n)) subjects erased and verified")
            let (data, gen, _) = try await jsonlData()
            try? FileManager.default.removeItem(atPath: w)
            try copyTree(data + "/lake", w + "/lethe/lake")
            var side = LetheSide()
            let config = try Self.writeConfig(root: w + "/lethe", dataset: Self.jsonlDataset)
            let lethe = try await openAndIndex(config, &side)
            var pick = SplitMix64(seed: 0x5EEE)
            var ids = Set<String>()
            while ids.count < n {
                let s = LakeGenerator.userID(gen.drawUser(&pick))
                if try await !lethe.locate(SubjectID(s)).isEmpty { ids.insert(s) }
            }
            try await erase(lethe, ids.sorted(), &side)
            // A copy of lake and state as they are now, for the one-core sweep of the release binary.
            try copyTree(w + "/lethe", w + "/one-core")
            let oneCoreConfig = try Self.writeConfig(root: w + "/one-core", dataset: Self.jsonlDataset)
            _ = oneCoreConfig

            step("\(title): lethe sweep (in process, every core)")
            let t0 = monotonic()
            let report = try await lethe.sweep()
            let secsAll = monotonic() - t0
            let swept = report.requests.filter { $0.result == "swept" }.count
            guard swept == n, report.unreadable.isEmpty else {
                throw BenchError("the sweep swept \(swept) of \(n) requests (\(report.unreadable.count) unreadable)")
            }
            row.lethe = secsAll
            var detail =
                "\(grouped(report.objects)) objects, \(megabytes(report.bytes)), the pass over lake and state \(secs(report.scanSeconds)) s: \(fmt(report.gbPerSecond, 2)) GB/s on \(report.workers) cores (\(fmt(report.perCoreGBPerSecond, 2)) GB/s per core)"
            say("   swept \(swept) requests in \(secs(secsAll)) s: \(detail)")
            if FileManager.default.isExecutableFile(atPath: o.lethe), FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
                step("\(title): taskset -c 0 lethe sweep (release binary, one core)")
                let r = try runProgram(
                    "/usr/bin/taskset", ["-c", "0", o.lethe, "sweep", "--json", "--config", w + "/one-core/lethe.yaml"], cwd: w + "/one-core")
                if r.status == 0, let line = r.out.split(separator: "\n").last,
                    let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                {
                    let one = try j.double("gb_per_s")
                    detail +=
                        "; one core (`taskset -c 0`, release binary): \(fmt(one, 2)) GB/s (pass \(secs(try j.double("scan_seconds"))) s of \(secs(try j.double("seconds"))) s)"
                    say("   one core: \(fmt(one, 2)) GB/s")
                } else {
                    notes.append("the one-core sweep exited \(r.status): \(r.err.suffix(200))")
                }
            }
            row.detail = "the Lethe column is the sweep's wall time; " + detail
        } catch {
            row.failure = "\(error)"
            say("   FAILED: \(error)")
        }
        rows.append(row)
        try? FileManager.default.removeItem(atPath: w)
    }
}
