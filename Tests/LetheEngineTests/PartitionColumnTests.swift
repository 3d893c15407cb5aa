import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog

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

def rows(path):
    t = pa.table(table(path))
    out = sorted(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())
    print(json.dumps(out))

def pqrows(path):
    t = pq.read_table(path)
    print(json.dumps(sorted(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())))

def append(path):
    t = dl.DeltaTable(path)
    dl.write_deltalake(path, pa.table({"user_id": ["u-9"], "n": [9], "note": ["z"]}), mode="append")
    print(pa.table(table(path)).num_rows)

cmd = sys.argv[1]
{"make": make, "rows": rows, "pqrows": pqrows, "append": append}[cmd](sys.argv[2])
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
        return Lethe(config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
                     meta: try SQLiteMetastore(inMemory: nil),
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
    @Test func subjectsInPartitionColumnsAreLocatedErasedAndVerified() async throws {
        let dir = NSTemporaryDirectory() + "lethe-partitions-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) } else { print("KEPT", dir) } }
        try PartLake.py(["make", dir])
        let lethe = try PartLake.lethe(dir)
        let before = (users: try PartLake.rows(dir + "/users"), mapped: try PartLake.rows(dir + "/mapped"),
                      typed: try PartLake.rows(dir + "/typed"), tenants: try PartLake.rows(dir + "/tenants"),
                      pq: try PartLake.pqRows(dir + "/plain/pq"))

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
        #expect(!FileManager.default.fileExists(atPath: dir + "/plain/csv/tenant=7/a.csv") == false)   // composite: the file stays
        #expect(try String(contentsOfFile: dir + "/plain/csv/tenant=7/a.csv", encoding: .utf8) == "user,n\nu-2,2\n")
        #expect(try String(contentsOfFile: dir + "/plain/csv/tenant=8/a.csv", encoding: .utf8) == "user,n\nu-1,3\n")
        #expect(try String(contentsOfFile: dir + "/plain/js/user_id=u-2/part-0.jsonl", encoding: .utf8) == "{\"n\":2}\n")

        // The logs no longer name the erased partitions: not in paths, not in partitionValues.
        for (table, texts) in [("users", ["user_id=u-1", "user_id=A%252FA", "\"u-1\"", "\"A/A\""]), ("mapped", ["\"u-1\"", "\"A/A\""]),
                               ("typed", ["day=2021-01-03", "\"2021-01-03\""])] {
            for t in texts {
                #expect(try PartLake.logFiles(holding: t, table: dir + "/" + table).isEmpty, "\(table) log still holds \(t)")
            }
        }
        // The tables stay appendable and readable by delta-rs.
        for (table, rows) in [("users", before.users), ("mapped", before.mapped)] {
            #expect(try PartLake.py(["append", dir + "/" + table]).trimmingCharacters(in: .whitespacesAndNewlines)
                    == String(without(rows, u1).count + 1))
        }
        // Indexing again finds nothing of the subjects and quarantines nothing.
        let again = try await lethe.index()
        #expect(again.quarantined.isEmpty, "\(again.quarantined.map { "\($0.object): \($0.issue)" })")
        for s in ["u-1", "A/A", "2021-01-03", "7|u-1"] { #expect(try await located(s).isEmpty, "\(s)") }
    }
}
