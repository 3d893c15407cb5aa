import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite

/// Delta tables whose partitioning changed over their history (an overwrite with a new schema),
/// written by delta-rs in the shapes of Delta's own test tables `spark/delta-0.1.0` (the subject's
/// column stored in the files, then the table partitioned by it) and
/// `connectors/time-travel-partition-changes-b` (partitioned by `part5`, then by `part2`, with
/// `remove`s that carry no partition values, as early Spark writers logged them).
private enum Repartitioned {
    static let script = #"""
        import sys, os, json, glob
        import pyarrow as pa, pyarrow.parquet as pq, deltalake as dl

        def strip_removes(table, version):
            log = table + "/_delta_log/%020d.json" % version
            lines = []
            for line in open(log):
                a = json.loads(line)
                if "remove" in a:
                    a["remove"] = {k: v for k, v in a["remove"].items() if k in ("path", "deletionTimestamp", "dataChange")}
                lines.append(json.dumps(a))
            open(log, "w").write("\n".join(lines) + "\n")

        def make_stored(d):
            # `id` a data column in the first two versions, then the table overwritten partitioned by `id`.
            t = lambda ids, vs: pa.table({"id": pa.array(ids, pa.int32()), "value": vs})
            dl.write_deltalake(d, t([4, 1], ["d", "a"]))
            dl.write_deltalake(d, t([5, 6], ["e", "f"]), mode="append")
            dl.write_deltalake(d, t([4, 5, 6, 1], ["d", "e", "f", "a"]), mode="overwrite", partition_by=["id"], schema_mode="overwrite")

        def make_changed(d):
            # Partitioned by `part5`, then overwritten partitioned by `part2` (a column the old files lack).
            dl.write_deltalake(d, pa.table({"id": list(range(10)), "part5": [i % 5 for i in range(10)]}), partition_by=["part5"])
            dl.write_deltalake(d, pa.table({"id": list(range(10)), "part2": [i % 2 for i in range(10)]}), mode="overwrite",
                               partition_by=["part2"], schema_mode="overwrite")
            strip_removes(d, 1)

        def rows(path):
            t = dl.DeltaTable(path).to_pyarrow_table()
            print(json.dumps(sorted(json.dumps(r, sort_keys=True) for r in t.to_pylist())))

        def holding(arg):
            # Data files under the table (outside the log) whose own `column` holds `value`.
            path, column, value = arg.split("|")
            out = []
            for f in sorted(glob.glob(path + "/**/*.parquet", recursive=True)):
                if "/_delta_log/" in f:
                    continue
                t = pq.read_table(f)
                if column in t.column_names and any(str(v) == value for v in t.column(column).to_pylist()):
                    out.append(os.path.relpath(f, path))
            print(json.dumps(out))

        cmd = sys.argv[1]
        {"make-stored": make_stored, "make-changed": make_changed, "rows": rows, "holding": holding}[cmd](sys.argv[2])
        sys.stdout.flush()
        os._exit(0)   # delta-rs's runtime sometimes aborts at interpreter exit
        """#

    @discardableResult
    static func py(_ args: [String]) throws -> String { try Peers.python(["-c", script] + args, what: "repartitioned table \(args[0])") }

    static func rows(_ path: String) throws -> [String] { try JSONDecoder().decode([String].self, from: Data(try py(["rows", path]).utf8)) }

    static func files(_ path: String, holding column: String, _ value: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(try py(["holding", "\(path)|\(column)|\(value)"]).utf8))
    }

    /// A lake in a fresh folder with one Delta dataset `t` at `t/`, built by `make`.
    static func lake(_ make: String, subject: String) throws -> (dir: String, lethe: Lethe) {
        let dir = NSTemporaryDirectory() + "lethe-repartitioned-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try py([make, dir + "/t"])
        let yaml = "lake: .\ndatasets:\n  - {name: t, path: t, format: delta, subject: \(subject)}\n"
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        return (dir, lethe)
    }
}

@Suite struct RepartitionedDeltaTests {
    /// `spark/delta-0.1.0`: the history files hold `id` in their own column (`partitionValues`
    /// `{}`); the table is now partitioned by `id`. Lethe took every file's `id` from its
    /// partition values (null for those), so the history file holding id 4 was neither located
    /// nor vacuumed, and verification then found it: the request failed at `run`.
    @Test func aSubjectStoredInTheFilesBeforeTheTableWasPartitionedByItIsErasedFromHistoryToo() async throws {
        let (dir, lethe) = try Repartitioned.lake("make-stored", subject: "id")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let table = dir + "/t"
        #expect(try Repartitioned.files(table, holding: "id", "4").count == 1)  // the old unpartitioned file
        let report = try await lethe.index()
        #expect(report.quarantined.isEmpty)
        let located = try await lethe.locateRows(SubjectID("4"))
        #expect(located.filter { $0.role == .live }.map(\.rows.count) == [1])
        #expect(located.filter { $0.role == .history }.map(\.rows.count) == [1], "\(located.map { ($0.object, $0.role) })")
        let r = try await lethe.forget([SubjectID("4")], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(r.id).status == .verified)
        #expect(try Repartitioned.rows(table) == [#"{"id": 1, "value": "a"}"#, #"{"id": 5, "value": "e"}"#, #"{"id": 6, "value": "f"}"#])
        #expect(try Repartitioned.files(table, holding: "id", "4").isEmpty)
        #expect(try Repartitioned.files(table, holding: "id", "5").count == 1)  // others' history stays
        let names = (FileManager.default.enumerator(atPath: table)?.allObjects as? [String] ?? []).filter { $0.contains("id=4") }
        #expect(names.isEmpty, "\(names)")
    }

    /// `connectors/time-travel-partition-changes-b`: partitioned by `part5`, then by `part2`. The
    /// `part5` files (history; their `remove`s carry no partition values, their `add`s do) have no
    /// `part2` anywhere — not in their log entries, folders or columns — so they hold no subject
    /// there. Lethe quarantined all ten and the request failed at `run` as unreadable.
    @Test func filesWrittenBeforeTheTableWasPartitionedByTheSubjectColumnHoldNoSubject() async throws {
        let (dir, lethe) = try Repartitioned.lake("make-changed", subject: "part2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let table = dir + "/t"
        let report = try await lethe.index()
        #expect(report.quarantined.isEmpty, "\(report.quarantined.map(\.issue))")
        let located = try await lethe.locateRows(SubjectID("0"))
        #expect(located.map(\.rows.count) == [5])
        #expect(located.allSatisfy { $0.role == .live })
        let r = try await lethe.forget([SubjectID("0")], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(r.id).status == .verified)
        #expect(try Repartitioned.rows(table) == (0..<10).filter { $0 % 2 == 1 }.map { #"{"id": \#($0), "part2": 1}"# }.sorted())
        #expect(try Repartitioned.files(table, holding: "id", "0").count == 1)  // the old `part5=0` file: no part2, kept
    }
}
