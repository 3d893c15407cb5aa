import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LetheStorage
import LetheTestSupport
import Testing

@testable import LetheS3

/// Delta tables written by delta-rs on a bucket that keeps versions: the files Lethe's vacuum
/// deletes, the change data it rewrites and the log files it scrubs or removes stay readable as
/// noncurrent versions. A run deletes those holding or naming the subject (and keeps a version
/// holding only others), audits it, and the table still reads in delta-rs; `verify` reads every
/// noncurrent version of the table and finds a planted one holding the subject, one of the log
/// naming it, and one it cannot read.
@Suite(.serialized) struct S3DeltaVersionedBucketTests {
    /// Per file (bytes in `dir`, named by index): whether it holds `subject` — a data file through
    /// pyarrow's `user_id` column, a checkpoint through pyarrow (every value), any other log file as text.
    static let oracle = """
        import json, sys, os, pyarrow.parquet as pq
        d, subject, kinds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        out = []
        for i, kind in enumerate(kinds):
            p = os.path.join(d, str(i))
            if kind == "data":
                t = pq.read_table(p)
                out.append(subject in (t.column("user_id").to_pylist() if "user_id" in t.column_names else []))
            elif kind == "checkpoint":
                out.append(subject in json.dumps(pq.read_table(p).to_pylist(), default=str))
            else:
                out.append(subject in open(p, encoding="utf-8", errors="replace").read())
        print(json.dumps(out))
        """

    /// The noncurrent versions below `prefix` that hold `subject`, by the oracle (delete markers and
    /// hidden files aside).
    static func holding(_ subject: String, below prefix: String, _ store: S3ObjectStore, dir: String) async throws -> [ObjectVersion] {
        let versions = try await store.versions(prefix: prefix).filter { v in
            !v.isLatest && !v.isDeleteMarker && !(v.key.split(separator: "/").last ?? "").hasPrefix(".")
                && (v.key.hasSuffix(".parquet") || v.key.contains("/_delta_log/"))
        }
        guard !versions.isEmpty else { return [] }
        let folder = dir + "/oracle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var kinds: [String] = []
        for (i, v) in versions.enumerated() {
            try Data(try await store.read(v.key, versionID: v.versionID, range: nil)).write(to: URL(fileURLWithPath: "\(folder)/\(i)"))
            kinds.append(!v.key.contains("/_delta_log/") ? "data" : v.key.hasSuffix(".parquet") ? "checkpoint" : "text")
        }
        let out = try Peers.python(
            ["-c", oracle, folder, subject, String(decoding: try JSONSerialization.data(withJSONObject: kinds), as: UTF8.self)],
            what: "noncurrent versions oracle")
        let held = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [Bool]
        return zip(versions, held).filter(\.1).map(\.0)
    }

    @Test func noncurrentVersionsOfDeltaTablesHoldingTheSubjectAreDeletedAndVerified() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-delta-versions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tables", withIntermediateDirectories: true)
        try Peers.python([Peers.script("delta_tables.py"), "make", dir + "/tables"], what: "delta_tables.py make")
        try Peers.python([Peers.script("delta_tables.py"), "make-features", dir + "/tables"], what: "delta_tables.py make-features")
        // A checkpoint in `plain`: the vacuum removes or rewrites it, and `_last_checkpoint` with it.
        try Peers.python([Peers.script("delta_tables.py"), "checkpoint", dir + "/tables/plain"], what: "delta_tables.py checkpoint")
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "warehouse", dir: dir,
            datasets: """
                  - {name: plain, path: tables/plain, format: delta, subject: user_id}
                  - {name: parted, path: tables/parted, format: delta, subject: user_id}
                  - {name: cdf, path: tables/cdf, format: delta, subject: user_id}
                """)
        let store = lethe.store as! S3ObjectStore
        let on = try await store.client.send(
            "PUT", key: nil, query: [("versioning", "")],
            body: Array("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".utf8), what: "PutBucketVersioning")
        #expect(on.status == 200)
        func local(_ rel: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/tables/" + rel))) }
        for table in ["plain", "parted", "cdf"] {
            let root = dir + "/tables/" + table
            for rel in FileManager.default.enumerator(atPath: root)!.compactMap({ $0 as? String }).sorted() {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
                try await store.put("tables/\(table)/\(rel)", try local(table + "/" + rel))
            }
        }
        // A version holding only other subjects (a file of `named`: customer ids), deleted before the run.
        let named = try #require(
            FileManager.default.enumerator(atPath: dir + "/tables/named")!.compactMap { $0 as? String }.first { $0.hasSuffix(".parquet") && !$0.hasPrefix(".") }
        )
        try await store.put("tables/plain/part-00000-others.parquet", try local("named/" + named))
        try await store.delete(["tables/plain/part-00000-others.parquet"])

        let idx = try await lethe.index()
        #expect(idx.quarantined.isEmpty && idx.datasetIssues.isEmpty && idx.records > 0, "\(idx)")
        let filed = try await lethe.forget([SubjectID("u-5")], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty && run.problems.isEmpty, "\(run.failed) \(run.problems)")
        #expect(try await lethe.request(filed[0].id).status == .verified)
        #expect((run.noncurrentVersionsDeleted ?? 0) > 0, "\(run)")
        #expect((run.verifications.first?.versionsExamined ?? 0) >= 1)

        // No noncurrent version holds u-5 (data, change data, commits, checkpoints); the one holding others stays.
        let left = try await Self.holding("u-5", below: "tables", store, dir: dir)
        #expect(left.isEmpty, "\(left.map { "\($0.key) \($0.versionID)" })")
        let others = try await store.versions(prefix: "tables/plain/part-00000-others.parquet").filter { !$0.isDeleteMarker }
        #expect(others.count == 1)
        // Audited, objects by reference.
        let audit = try await lethe.auditLog().filter { $0.entry.event == AuditEvent.versionsDeleted.rawValue }
        #expect(!audit.isEmpty && audit.allSatisfy { !$0.details.contains("tables/") && !$0.details.contains("u-5") }, "\(audit.map(\.details))")

        // delta-rs reads the current tables: no u-5, the others kept.
        for table in ["plain", "parted", "cdf"] {
            let out = dir + "/back/" + table
            for o in try await store.list(prefix: "tables/" + table) {
                let path = dir + "/back/" + String(o.key.dropFirst("tables/".count))
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(try await store.read(o.key)).write(to: URL(fileURLWithPath: path))
            }
            let before = try Peers.python([Peers.script("delta_tables.py"), "rows", dir + "/tables/" + table], what: "rows before")
            let after = try Peers.python([Peers.script("delta_tables.py"), "rows", out], what: "rows after")
            let was = try JSONSerialization.jsonObject(with: Data(before.utf8)) as! [String]
            let now = try JSONSerialization.jsonObject(with: Data(after.utf8)) as! [String]
            #expect(now == was.filter { $0 != "u-5" } && !now.isEmpty, "\(table)")
        }
        let clean = try await lethe.verify(ids: [filed[0].id])
        #expect(clean.count == 1 && clean[0].clean, "\(clean)")
        #expect((clean[0].versionsExamined ?? 0) >= 1)

        // Planted afterwards: a data file holding u-5 (a restore, deleted again), the original of a
        // commit naming u-5 (cdf's delete by delta-rs) under its scrubbed copy, and a file that is no Parquet.
        let history = try #require(
            FileManager.default.enumerator(atPath: dir + "/tables/plain")!.compactMap { $0 as? String }.first {
                $0.hasSuffix(".parquet") && !$0.hasPrefix("_") && !$0.contains("/.") && !$0.hasPrefix(".")
            })
        try await store.put("tables/plain/part-restored.parquet", try local("plain/" + history))
        try await store.delete(["tables/plain/part-restored.parquet"])
        let commit = "tables/cdf/_delta_log/00000000000000000001.json"
        let scrubbed = try await store.read(commit)
        let original = try local("cdf/_delta_log/00000000000000000001.json")
        #expect(scrubbed != original && String(decoding: original, as: UTF8.self).contains("u-5"))
        try await store.put(commit, original)
        try await store.put(commit, scrubbed)
        try await store.put("tables/parted/part-junk.parquet", Array("not parquet".utf8))
        try await store.delete(["tables/parted/part-junk.parquet"])
        let dirty = try await lethe.verify(ids: [filed[0].id])
        #expect(dirty.count == 1 && !dirty[0].clean)
        let found = dirty[0].found.filter { ($0.issue ?? "").contains("noncurrent version") }
        #expect(found.contains { $0.object == "tables/plain/part-restored.parquet" }, "\(dirty[0].found)")
        #expect(found.contains { $0.object == commit && ($0.issue ?? "").contains("log") }, "\(dirty[0].found)")
        #expect(dirty[0].unreadable.contains { $0.object == "tables/parted/part-junk.parquet" }, "\(dirty[0].unreadable)")
    }
}
