import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheTesting
import LetheCatalog
import LetheSQLite
import DeltaLake

/// Lakes partitioned by the subject (customer, tenant, day), written by delta-rs and pyarrow.
private enum PartLake {
    static let script = #"""
        import sys, os, json, datetime
        import pyarrow as pa, pyarrow.parquet as pq, deltalake as dl

        def users():
            # u-1 twice (two files), a slash and a space in values, a null partition.
            return [("u-1", 1, "a"), ("u-2", 2, "b"), ("A/A", 3, "c"), (None, 4, "d"), ("B B", 5, "e"), ("u-1", 6, "f")]

        def make(d):
            rows = users()
            t = lambda rs: pa.table({"user_id": pa.array([r[0] for r in rs], pa.string()), "n": pa.array([r[1] for r in rs], pa.int64()),
                                     "note": pa.array([r[2] for r in rs], pa.string())})
            cfg = {"delta.enableChangeDataFeed": "true"}
            dl.write_deltalake(d + "/users", t(rows[:5]), partition_by=["user_id"], configuration=cfg)
            dl.write_deltalake(d + "/users", t(rows[5:]), partition_by=["user_id"], mode="append")
            dl.write_deltalake(d + "/mapped", t(rows[:5]), partition_by=["user_id"], configuration={"delta.columnMapping.mode": "name"})
            days = pa.table({"day": pa.array([datetime.date(2021, 1, 3), datetime.date(2021, 1, 3), datetime.date(2021, 1, 4)], pa.date32()),
                             "user_id": ["x", "y", "z"], "amount": pa.array([1.5, 2.5, 3.5])})
            dl.write_deltalake(d + "/typed", days, partition_by=["day"])
            ten = pa.table({"tenant": pa.array([7, 7, 8, 7], pa.int32()), "user_id": ["u-1", "u-2", "u-1", "u-1"], "n": [1, 2, 3, 4]})
            dl.write_deltalake(d + "/tenants", ten, partition_by=["tenant"])
            # Plain Hive-style datasets.
            pq.write_to_dataset(t(rows), d + "/plain/pq", partition_cols=["user_id"])
            for u, body in [("u-1", '{"n":1}\n{"n":6}\n'), ("u-2", '{"n":2}\n'), ("A%2FA", '{"n":3}\n'), ("__HIVE_DEFAULT_PARTITION__", '{"n":4}\n')]:
                os.makedirs(d + "/plain/js/user_id=" + u, exist_ok=True)
                open(d + "/plain/js/user_id=" + u + "/part-0.jsonl", "w").write(body)
            for tenant, body in [("7", "user,n\nu-1,1\nu-2,2\n"), ("8", "user,n\nu-1,3\n")]:
                os.makedirs(d + "/plain/csv/tenant=" + tenant, exist_ok=True)
                open(d + "/plain/csv/tenant=" + tenant + "/a.csv", "w").write(body)

        def table(path):
            # delta-rs's SQL engine reads column-mapped tables (to_pyarrow_table gives nulls for them).
            r = dl.QueryBuilder().register("t", dl.DeltaTable(path)).execute("select * from t")
            return r.read_all() if hasattr(r, "read_all") else pa.Table.from_batches(list(r))

        def make_ts(d):
            t = pa.table({"ts": pa.array([datetime.datetime(2021, 1, 3, 4, 5, 6, 123000, tzinfo=datetime.timezone.utc),
                                          datetime.datetime(2021, 1, 4, tzinfo=datetime.timezone.utc)], pa.timestamp("us", tz="UTC")),
                          "n": [1, 2]})
            dl.write_deltalake(d + "/ts", t, partition_by=["ts"])

        def make_naive_ts(d):
            # A Delta `timestamp` column whose Parquet files say isAdjustedToUTC=false, as older delta-rs wrote them.
            t = pa.table({"ts": pa.array([datetime.datetime(2021, 1, 3, 4, 5, 6, 123000, tzinfo=datetime.timezone.utc),
                                          datetime.datetime(2021, 1, 4, tzinfo=datetime.timezone.utc)], pa.timestamp("us", tz="UTC")),
                          "n": [1, 2]})
            dl.write_deltalake(d + "/naive", t)
            naive_commit(d + "/naive", 0)

        def append_naive(path):
            t = pa.table({"ts": pa.array([datetime.datetime(2021, 1, 3, 4, 5, 6, 123000, tzinfo=datetime.timezone.utc)], pa.timestamp("us", tz="UTC")),
                          "n": [3]})
            dl.write_deltalake(path, t, mode="append")
            naive_commit(path, 1)

        def naive_commit(table, version):
            d = table.rsplit("/", 1)[0]
            log = table + "/_delta_log/%020d.json" % version
            lines = []
            for line in open(log):
                a = json.loads(line)
                if "add" in a:
                    f = table + "/" + a["add"]["path"]
                    data = pq.read_table(f)
                    data = data.set_column(0, "ts", data.column("ts").cast(pa.timestamp("us")))
                    pq.write_table(data, f)
                    a["add"]["size"] = os.path.getsize(f)
                lines.append(json.dumps(a))
            open(log, "w").write("\n".join(lines) + "\n")

        def make_checkpointed(d):
            # Partitioned by user_id; a checkpoint at version 1 and version 0's commit cleaned up; u-4 added after it.
            t = lambda us: pa.table({"user_id": us, "n": list(range(len(us)))})
            dl.write_deltalake(d + "/cp", t(["u-1", "u-2"]), partition_by=["user_id"])
            dl.write_deltalake(d + "/cp", t(["u-3"]), partition_by=["user_id"], mode="append")
            dl.DeltaTable(d + "/cp").create_checkpoint()
            os.remove(d + "/cp/_delta_log/00000000000000000000.json")
            dl.write_deltalake(d + "/cp", t(["u-4", "u-4"]), partition_by=["user_id"], mode="append")

        def rows(path):
            t = pa.table(table(path))
            out = sorted(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())
            print(json.dumps(out))

        def pqrows(path):
            t = pq.read_table(path)
            print(json.dumps(sorted(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())))

        def checkpoint(path):
            dl.DeltaTable(path).create_checkpoint()

        def append(path):
            t = dl.DeltaTable(path)
            dl.write_deltalake(path, pa.table({"user_id": ["u-9"], "n": [9], "note": ["z"]}), mode="append")
            print(pa.table(table(path)).num_rows)

        cmd = sys.argv[1]
        {"make": make, "make-ts": make_ts, "make-checkpointed": make_checkpointed, "make-naive-ts": make_naive_ts, "append-naive": append_naive, "rows": rows, "pqrows": pqrows, "append": append, "checkpoint": checkpoint}[cmd](sys.argv[2])
        sys.stdout.flush()
        os._exit(0)   # delta-rs's runtime sometimes aborts at interpreter exit
        """#

    @discardableResult
    static func py(_ args: [String]) throws -> String { try Peers.python(["-c", script] + args, what: "partition lake \(args[0])") }

    static func rows(_ path: String) throws -> [String] { try JSONDecoder().decode([String].self, from: Data(try py(["rows", path]).utf8)) }
    static func pqRows(_ path: String) throws -> [String] { try JSONDecoder().decode([String].self, from: Data(try py(["pqrows", path]).utf8)) }

    static func lethe(_ dir: String) throws -> Lethe {
        let yaml = """
            lake: .
            datasets:
              - {name: users, path: users, format: delta, subject: user_id}
              - {name: mapped, path: mapped, format: delta, subject: user_id}
              - {name: typed, path: typed, format: delta, subject: day}
              - {name: tenants, path: tenants, format: delta, subject: [tenant, user_id]}
              - {name: pq, path: plain/pq, format: parquet, subject: user_id}
              - {name: js, path: plain/js, format: jsonl, subject: user_id}
              - {name: csv, path: plain/csv, format: csv, subject: [tenant, user]}
            """
        return Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
    }

    /// Relative paths of every folder and file under `dir` whose name holds `text`.
    static func names(holding text: String, under dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter { $0.contains(text) }
    }

    /// Every Delta log file of a table whose text holds `text`.
    static func logFiles(holding text: String, table: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: table + "/_delta_log").filter {
            (try? String(contentsOfFile: table + "/_delta_log/" + $0, encoding: .utf8))?.contains(text) ?? false
        }
    }
}

@Suite struct PartitionColumnTests {
    /// A table whose first commits are cleaned up behind a checkpoint: a partition added after
    /// the checkpoint leaves the log by name; one the checkpoint lists is erased but refused by
    /// name (Lethe does not rewrite a checkpoint's paths), never certified clean.
    @Test func partitionNamesBehindACheckpoint() async throws {
        let dir = NSTemporaryDirectory() + "lethe-cp-partitions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PartLake.py(["make-checkpointed", dir])
        let yaml = "lake: .\ndatasets:\n  - {name: cp, path: cp, format: delta, subject: user_id}\n"
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        _ = try await lethe.index()
        let after = try await lethe.forget([SubjectID("u-4")], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([after.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(after.id).status == .verified)
        #expect(try PartLake.logFiles(holding: "u-4", table: dir + "/cp").isEmpty)
        #expect(PartLake.names(holding: "user_id=u-4", under: dir).isEmpty)
        let inCheckpoint = try await lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([inCheckpoint.id], by: "bob")
        let run2 = try await lethe.run()
        let r = try await lethe.request(inCheckpoint.id)
        #expect(r.status == .failed && (r.failure ?? "").contains("checkpoint"), "\(r.status) \(r.failure ?? "")")
        #expect(run2.failed.count == 1)
        #expect(try PartLake.rows(dir + "/cp").sorted() == ["{\"n\": 0, \"user_id\": \"u-3\"}", "{\"n\": 1, \"user_id\": \"u-2\"}"])
    }

    /// A Delta `timestamp` column stored by an older writer with Parquet `isAdjustedToUTC=false`:
    /// the table's type says UTC, so the value is `2021-01-03T04:05:06.123Z` (it was found by
    /// no one and "verified clean" while the row stayed, as in delta-rs's `issue_1374` table).
    @Test func deltaTimestampsRenderAsTheTableTypesThem() async throws {
        let dir = NSTemporaryDirectory() + "lethe-naive-ts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PartLake.py(["make-naive-ts", dir])
        let yaml = "lake: .\ndatasets:\n  - {name: naive, path: naive, format: delta, subject: ts}\n"
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        let subject = SubjectID("2021-01-03T04:05:06.123Z")
        _ = try await lethe.index()
        #expect(try await lethe.locate(subject).map(\.rows.count) == [1])
        #expect(try await lethe.locate(SubjectID("2021-01-03T04:05:06.123")).isEmpty)
        let r = try await lethe.forget([subject], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(r.id).status == .verified)
        #expect(try PartLake.rows(dir + "/naive").count == 1)
        // Indexed again incrementally (the types come from the recorded state): an appended row is found by its UTC text.
        try PartLake.py(["append-naive", dir + "/naive"])
        _ = try await lethe.index()
        #expect(try await lethe.locate(subject).map(\.rows.count) == [1])
    }

    /// delta-rs writes a timestamp partition value as `2021-01-03 04:05:06.123000`; people type
    /// `2021-01-03T04:05:06.123Z`. Indexing renders the value by the column's type, and so does
    /// the field-aware log search, which must see the value in `partitionValues` until it is gone.
    @Test func timestampPartitionsAreMatchedInDataAndLogByTheirCanonicalText() async throws {
        let dir = NSTemporaryDirectory() + "lethe-ts-partitions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PartLake.py(["make-ts", dir])
        let yaml = "lake: .\ndatasets:\n  - {name: ts, path: ts, format: delta, subject: ts}\n"
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        let subject = SubjectID("2021-01-03T04:05:06.123Z")
        _ = try await lethe.index()
        #expect(try await lethe.locate(subject).map(\.rows.count) == [1])
        let d = try #require(lethe.config.dataset(named: "ts"))
        let before = try await lethe.deltaLogResidue(d, subjects: [subject])[subject] ?? []
        #expect(before.flatMap(\.fields).contains { $0.contains("partitionValues.ts") }, "\(before)")
        let r = try await lethe.forget([subject], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(r.id).status == .verified)
        #expect(try await lethe.deltaLogResidue(d, subjects: [subject])[subject] == nil)
        #expect(PartLake.names(holding: "ts=2021-01-03", under: dir).isEmpty, "\(PartLake.names(holding: "ts=2021-01-03", under: dir))")
        #expect(try PartLake.rows(dir + "/ts").count == 1)
    }

    @Test func subjectsInPartitionColumnsAreLocatedErasedAndVerified() async throws {
        let dir = NSTemporaryDirectory() + "lethe-partitions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) } else { print("KEPT", dir) } }
        try PartLake.py(["make", dir])
        let lethe = try PartLake.lethe(dir)
        let before = (
            users: try PartLake.rows(dir + "/users"), mapped: try PartLake.rows(dir + "/mapped"),
            typed: try PartLake.rows(dir + "/typed"), tenants: try PartLake.rows(dir + "/tenants"),
            pq: try PartLake.pqRows(dir + "/plain/pq")
        )

        // Index: nothing quarantined ("no column `user_id`" was the old answer).
        let ir = try await lethe.index()
        #expect(ir.quarantined.isEmpty, "\(ir.quarantined.map { "\($0.object): \($0.issue)" })")
        // Locate by the value as people write it, whatever the partition column's type.
        // A composite subject is typed as its parts (`--subject-json`); `|` here only separates them.
        func typed(_ s: String) -> SubjectID { SubjectID(parts: s.split(separator: "|").map { Array($0.utf8) }) }
        func located(_ s: String) async throws -> [String: Int] {
            var out: [String: Int] = [:]
            for p in try await lethe.locate(typed(s)) { out[p.object.dataset, default: 0] += p.rows.count }
            return out
        }
        #expect(try await located("u-1") == ["users": 2, "mapped": 1, "pq": 2, "js": 2])
        #expect(try await located("A/A") == ["users": 1, "mapped": 1, "pq": 1, "js": 1])
        #expect(try await located("2021-01-03") == ["typed": 2])
        #expect(try await located("7|u-1") == ["tenants": 2, "csv": 1])

        for subject in ["u-1", "A/A", "2021-01-03", "7|u-1"] {
            let r = try await lethe.forget([typed(subject)], reason: "t", by: "alice")[0]
            _ = try await lethe.approve([r.id], by: "bob")
        }
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        for r in try await lethe.meta.requests(status: nil) {
            #expect(r.status == .verified, "\(r.id): \(r.status) \(r.failure ?? "")")
        }

        // Every reader sees the others' rows and none of the subjects'.
        func without(_ rows: [String], _ gone: (String) -> Bool) -> [String] { rows.filter { !gone($0) } }
        let u1 = { (r: String) in r.contains("\"user_id\": \"u-1\"") || r.contains("\"user_id\": \"A/A\"") }
        #expect(try PartLake.rows(dir + "/users") == without(before.users, u1))
        #expect(try PartLake.rows(dir + "/mapped") == without(before.mapped, u1))
        #expect(try PartLake.rows(dir + "/typed") == without(before.typed) { $0.contains("2021-01-03") })
        #expect(try PartLake.rows(dir + "/tenants") == without(before.tenants) { $0.contains("\"tenant\": 7") && $0.contains("\"u-1\"") })
        #expect(try PartLake.pqRows(dir + "/plain/pq") == without(before.pq, u1))

        // No folder or file is named after an erased subject: data, change data, sidecars.
        for name in ["user_id=u-1", "user_id=A%2FA", "day=2021-01-03"] {
            #expect(PartLake.names(holding: name, under: dir).isEmpty, "\(name): \(PartLake.names(holding: name, under: dir))")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/plain/csv/tenant=7/a.csv") == false)  // composite: the file stays
        #expect(try String(contentsOfFile: dir + "/plain/csv/tenant=7/a.csv", encoding: .utf8) == "user,n\nu-2,2\n")
        #expect(try String(contentsOfFile: dir + "/plain/csv/tenant=8/a.csv", encoding: .utf8) == "user,n\nu-1,3\n")
        #expect(try String(contentsOfFile: dir + "/plain/js/user_id=u-2/part-0.jsonl", encoding: .utf8) == "{\"n\":2}\n")

        // The logs no longer name the erased partitions: not in paths, not in partitionValues.
        for (table, texts) in [
            ("users", ["user_id=u-1", "user_id=A%252FA", "\"u-1\"", "\"A/A\""]), ("mapped", ["\"u-1\"", "\"A/A\""]),
            ("typed", ["day=2021-01-03", "\"2021-01-03\""]),
        ] {
            for t in texts {
                #expect(try PartLake.logFiles(holding: t, table: dir + "/" + table).isEmpty, "\(table) log still holds \(t)")
            }
        }
        // The tables stay appendable and readable by delta-rs.
        for (table, rows) in [("users", before.users), ("mapped", before.mapped)] {
            #expect(
                try PartLake.py(["append", dir + "/" + table]).trimmingCharacters(in: .whitespacesAndNewlines)
                    == String(without(rows, u1).count + 1))
        }
        // Indexing again finds nothing of the subjects and quarantines nothing.
        let again = try await lethe.index()
        #expect(again.quarantined.isEmpty, "\(again.quarantined.map { "\($0.object): \($0.issue)" })")
        for s in ["u-1", "A/A", "2021-01-03", "7|u-1"] { #expect(try await located(s).isEmpty, "\(s)") }
    }
}

// h6 D4: a Hive folder `user_id=h-1/` holding a record whose own `user_id` is `h-9`. The folder's value wins,
// silently: forgetting h-9 plans nothing and verifies "clean" while `{"user_id":"h-9"}` stays in the lake, and
// forgetting h-1 deletes h-9's record with the file. A record that disagrees with its folder is ambiguous: it
// must neither be erased as the folder's subject nor let the record's subject be called clean.
@Test
func aRecordThatDisagreesWithItsHiveFolderIsNeitherErasedAsTheFoldersSubjectNorCalledClean() async throws {
    let f = try Fixture("lake: ./lake\ndatasets:\n  - {name: j, path: j, format: jsonl, subject: user_id}\n")
    f.put("j/user_id=h-1/a.jsonl", #"{"user_id":"h-9","n":1}"# + "\n" + #"{"n":2}"# + "\n")
    f.put("j/plain/b.jsonl", #"{"user_id":"h-1","n":3}"# + "\n")
    _ = try await f.lethe.index()
    let nine = try await f.lethe.forget([SubjectID("h-9")], reason: "t", by: "alice")[0]
    _ = try await f.lethe.approve([nine.id], by: "bob")
    _ = try await f.lethe.run()
    let left = (try? await f.text("j/user_id=h-1/a.jsonl")) ?? ""
    #expect(try await f.lethe.request(nine.id).status != .verified || !left.contains("h-9"), "h-9 verified clean while its record stays")
    let one = try await f.lethe.forget([SubjectID("h-1")], reason: "t", by: "alice")[0]
    _ = try await f.lethe.approve([one.id], by: "bob")
    _ = try await f.lethe.run()
    let after = (try? await f.text("j/user_id=h-1/a.jsonl")) ?? ""
    #expect(after.contains("h-9") == left.contains("h-9"), "forgetting h-1 dropped h-9's record")
}

/// D4: the folder's value wins for the partition column, but a record (JSON Lines, CSV, Parquet) whose own
/// field names another value than its Hive folder — or any value under `__HIVE_DEFAULT_PARTITION__` — is
/// ambiguous: the object is quarantined at `index` with one line naming the object, the line (or row) and the
/// field (never the values), so no request is verified while it holds the record and no erasure takes it.
@Test func aRecordThatDisagreesWithItsFolderIsQuarantinedNamingTheObjectLineAndField() async throws {
    let f = try Fixture(
        """
        lake: ./lake
        datasets:
          - {name: j, path: j, format: jsonl, subject: user_id}
          - {name: c, path: c, format: csv, subject: [tenant, user]}
          - {name: p, path: p, format: parquet, subject: user_id}
        """)
    f.put("j/user_id=h-1/a.jsonl", #"{"user_id":"h-1","n":1}"# + "\n" + #"{"n":2}"# + "\n" + #"{"user_id":null}"# + "\n" + #"{"user_id":"h-9","n":3}"# + "\n")
    f.put("j/user_id=h-2/b.jsonl", #"{"user_id":"h-2","n":1}"# + "\n" + #"{"user_id":""}"# + "\n")
    f.put("j/user_id=__HIVE_DEFAULT_PARTITION__/c.jsonl", #"{"n":1}"# + "\n" + #"{"user_id":"h-7"}"# + "\n")
    f.put("j/plain/d.jsonl", #"{"user_id":"h-9","n":4}"# + "\n")
    f.put("c/tenant=7/a.csv", "user,tenant\nu-1,7\nu-2,\nu-3,8\n")
    f.put("c/tenant=8/b.csv", "user\nu-1\n")
    let dir = NSTemporaryDirectory() + "lethe-folders-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Peers.python(
        [
            "-c",
            """
            import sys, os, pyarrow as pa, pyarrow.parquet as pq
            os.makedirs(sys.argv[1])
            pq.write_table(pa.table({"user_id": ["h-1", None, "h-1", "h-9"], "n": [1, 2, 3, 4]}), sys.argv[1] + "/a.parquet", row_group_size=2)
            pq.write_table(pa.table({"user_id": ["h-2", None], "n": [1, 2]}), sys.argv[1] + "/b.parquet")
            """, dir,
        ], what: "parquet files with a partition column")
    f.store.set("p/user_id=h-1/a.parquet", Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/a.parquet"))))
    f.store.set("p/user_id=h-2/b.parquet", Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/b.parquet"))))

    let report = try await f.lethe.index()
    var issues: [String: String] = [:]
    for q in report.quarantined { issues[q.object] = q.issue }
    #expect(
        Set(issues.keys) == ["j/user_id=h-1/a.jsonl", "j/user_id=__HIVE_DEFAULT_PARTITION__/c.jsonl", "c/tenant=7/a.csv", "p/user_id=h-1/a.parquet"],
        "\(issues)")
    #expect(issues["j/user_id=h-1/a.jsonl"]?.contains("j/user_id=h-1/a.jsonl:line 4") == true, "\(issues)")
    #expect(issues["j/user_id=__HIVE_DEFAULT_PARTITION__/c.jsonl"]?.contains(":line 2") == true, "\(issues)")
    #expect(issues["c/tenant=7/a.csv"]?.contains("c/tenant=7/a.csv:line 4") == true, "\(issues)")
    #expect(issues["p/user_id=h-1/a.parquet"]?.contains("p/user_id=h-1/a.parquet:row 3") == true, "\(issues)")
    for (_, issue) in issues {
        #expect(issue.contains("subject field `user_id`") || issue.contains("subject field `tenant`"), "\(issue)")
        for raw in ["h-9", "h-7", "u-3", "\"8\""] { #expect(!issue.contains(raw), "\(issue)") }
    }
    // The records that agree with their folder (or name nothing) are indexed as the folder's subject.
    #expect(try await f.lethe.locate(SubjectID("h-2")).map(\.object.key).sorted() == ["j/user_id=h-2/b.jsonl", "p/user_id=h-2/b.parquet"])
    #expect(try await f.lethe.locate(SubjectID(parts: [Array("8".utf8), Array("u-1".utf8)])).map(\.object.key) == ["c/tenant=8/b.csv"])

    // h-9's record elsewhere is erased, but its request is not verified while the ambiguous records stay.
    let nine = try await f.lethe.forget([SubjectID("h-9")], reason: "t", by: "alice")[0]
    _ = try await f.lethe.approve([nine.id], by: "bob")
    _ = try await f.lethe.run()
    let r = try await f.lethe.request(nine.id)
    #expect(r.status != .verified, "\(r.status)")
    #expect(try await f.text("j/plain/d.jsonl") == "")
    #expect(try await f.text("j/user_id=h-1/a.jsonl").contains("h-9"))
    #expect(try await f.store.head("p/user_id=h-1/a.parquet") != nil)
}

/// A local store whose replace of one Delta commit fails once the new text names `lethe-erased/` (the partition
/// scrub's rewrite of that commit): what a crash, a full disk or a permission error at that instant leaves.
private func scrubFailingStore(_ inner: LocalObjectStore, commitKey: String) -> FaultInjectingStore {
    let store = FaultInjectingStore(base: inner)
    store.failCommits { key, bytes, precondition in
        guard key == commitKey, case .matches = precondition else { return false }
        return String(decoding: bytes, as: UTF8.self).contains("lethe-erased/")
    }
    return store
}

// h6 D7: the partition scrub renames an erased partition's file in every commit that names it, one commit file
// at a time, oldest first. Between two rewrites the log pairs no `remove` with the renamed `add`: the replay
// names `lethe-erased/<hash>.parquet` as live, a file that does not exist, and delta-rs (any reader, Lethe's own
// `index` and `locate`) cannot read the table at all. A kill there (reproduced through the CLI) leaves the table
// unreadable until a later run resumes the step; an error there, or a step given up after three attempts (the
// kill -9 soak), leaves it so for good: every later request fails ("version N names data file lethe-erased/…,
// which the store lacks").
@Test
func aPartitionScrubCutBetweenItsCommitRewritesLeavesTheTableReadable() async throws {
    let dir = NSTemporaryDirectory() + "lethe-scrubcut-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try PartLake.py(["make", dir])
    let before = try PartLake.rows(dir + "/users")
    let yaml = "lake: .\ndatasets:\n  - {name: users, path: users, format: delta, subject: user_id}\n"
    // Lethe's erasure commit will be version 2 (delta-rs wrote versions 0 and 1): its `remove` is renamed last.
    let store = scrubFailingStore(LocalObjectStore(root: dir), commitKey: "users/_delta_log/00000000000000000002.json")
    let meta = try SQLiteStateStore(inMemory: nil)
    let secrets = StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32))
    let lethe = Lethe(config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: store, meta: meta, secrets: secrets, stateFolder: nil)
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try? await lethe.run()
    let readable = (try? PartLake.rows(dir + "/users")) != nil
    #expect(readable, "delta-rs cannot read the table after the cut scrub")
    // Without the failure, the next run must be able to finish the request.
    let again = Lethe(config: lethe.config, store: LocalObjectStore(root: dir), meta: meta, secrets: secrets, stateFolder: nil)
    for _ in 0..<2 where try await again.request(r.id).status != .verified { _ = try? await again.run() }
    let settled = try await again.request(r.id)
    #expect(settled.status == .verified, "\(settled.failure ?? "")")
    #expect(try PartLake.rows(dir + "/users") == before.filter { !$0.contains("\"u-2\"") })
}

/// A local store that, once the partition scrub writes its first keyed name (`lethe-erased/`), lets
/// `cut - 1` more changes of the lake through (object commits and deletes) and refuses every one after:
/// the lake is left exactly as a `kill -9` after that many changes leaves it.
private func cuttingStore(_ inner: LocalObjectStore, cut: Int) -> FaultInjectingStore {
    let store = FaultInjectingStore(base: inner)
    store.cut(afterChanges: cut - 1) { key, bytes in
        key.contains("lethe-erased/") || String(decoding: bytes, as: UTF8.self).contains("lethe-erased/")
    }
    return store
}

/// D7, cut by cut: a partition scrub (two files of `u-1`, added by two commits, removed by Lethe's
/// erasure commit, a checkpoint naming them, change data) is cut after each of its changes in turn.
/// After every cut delta-rs reads the table with exactly the other subjects' rows, Lethe indexes it,
/// and the next run finishes the scrub: the request is verified and no log file or folder names `u-1`.
@Test func aPartitionScrubCutAfterAnyOfItsChangesLeavesTheTableReadableAndTheNextRunFinishesIt() async throws {
    let dir = NSTemporaryDirectory() + "lethe-scrubcuts-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try PartLake.py(["make", dir])
    try PartLake.py(["checkpoint", dir + "/users"])
    let expected = try PartLake.rows(dir + "/users").filter { !$0.contains("\"user_id\": \"u-1\"") }
    let yaml = "lake: .\ndatasets:\n  - {name: users, path: users, format: delta, subject: user_id}\n"
    let secrets = StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32))
    var cut = 1
    var cuts: [Int] = []
    while cut < 40 {
        let lake = dir + "/cut\(cut)"
        try FileManager.default.createDirectory(atPath: lake, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/users", toPath: lake + "/users")
        let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: lake)
        let meta = try SQLiteStateStore(inMemory: nil)
        let store = cuttingStore(LocalObjectStore(root: lake), cut: cut)
        let cutting = Lethe(config: config, store: store, meta: meta, secrets: secrets, stateFolder: nil)
        _ = try await cutting.index()
        let r = try await cutting.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        _ = try await cutting.approve([r.id], by: "bob")
        _ = try? await cutting.run()
        guard store.wasCut else { break }  // the scrub finished before this cut: every cut is tried
        cuts.append(cut)
        // The state the cut left: delta-rs reads the erased table, Lethe indexes it.
        let rows = try? PartLake.rows(lake + "/users")
        #expect(rows == expected, "cut \(cut): delta-rs reads \(rows.map { "\($0.count) rows" } ?? "nothing")")
        let again = Lethe(config: config, store: LocalObjectStore(root: lake), meta: meta, secrets: secrets, stateFolder: nil)
        let ir = try await again.index()
        #expect(ir.datasetIssues.isEmpty, "cut \(cut): \(ir.datasetIssues)")
        // The next runs finish the scrub.
        for _ in 0..<3 where try await again.request(r.id).status != .verified { _ = try? await again.run() }
        let settled = try await again.request(r.id)
        #expect(settled.status == .verified, "cut \(cut): \(settled.status) \(settled.failure ?? "")")
        #expect(try PartLake.rows(lake + "/users") == expected, "cut \(cut)")
        #expect(try PartLake.logFiles(holding: "u-1", table: lake + "/users").isEmpty, "cut \(cut)")
        #expect(PartLake.names(holding: "user_id=u-1", under: lake).isEmpty, "cut \(cut): \(PartLake.names(holding: "user_id=u-1", under: lake))")
        cut += 1
    }
    print("partition scrub cut after each of its \(cuts.count) changes")
    #expect(cuts.count >= 4, "the scrub made \(cuts.count) change(s) before finishing")
}
