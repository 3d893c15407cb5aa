import Foundation
import LetheCore
import LetheEngine
import LetheRuntime
import LetheStorage
import LetheTestSupport
import Testing
@testable import LetheS3

/// Delta tables written by delta-rs, uploaded to moto's S3 and erased there through `Runtime`:
/// the history delta-rs wrote (a delete, appends; a change-data-feed table), Lethe's commit with
/// put-if-absent, then the table downloaded and read by delta-rs.
@Suite(.serialized) struct S3DeltaFlowTests {
    @Test func deltaTablesOnS3() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-delta")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/tables", withIntermediateDirectories: true)
        try Peers.python([Peers.script("delta_tables.py"), "make", dir + "/tables"], what: "delta_tables.py make")
        try Peers.python([Peers.script("delta_tables.py"), "make-features", dir + "/tables"], what: "delta_tables.py make-features")
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "warehouse", dir: dir,
            datasets: """
                  - {name: plain, path: tables/plain, format: delta, subject: user_id}
                  - {name: parted, path: tables/parted, format: delta, subject: user_id}
                  - {name: cdf, path: tables/cdf, format: delta, subject: user_id}
                """)
        let store = lethe.store as! S3ObjectStore
        // Upload every file of the three tables.
        for table in ["plain", "parted", "cdf"] {
            let root = dir + "/tables/" + table
            let files = FileManager.default.enumerator(atPath: root)!.compactMap { $0 as? String }
            for rel in files.sorted() {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
                try await store.put("tables/\(table)/\(rel)", [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel))))
            }
        }
        let idx = try await lethe.index()
        #expect(idx.quarantined.isEmpty && idx.datasetIssues.isEmpty && idx.records > 0, "\(idx)")
        let filed = try await lethe.forget([SubjectID("u-5")], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(try await lethe.request(filed[0].id).status == .verified)
        // Download the tables and let delta-rs read them: no u-5, the others kept.
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
            #expect(now == was.filter { $0 != "u-5" }, "\(table)")
            #expect(!now.isEmpty)
        }
        let full = try await lethe.verify(ids: [filed[0].id])
        #expect(full.count == 1 && full[0].clean)
    }
}
