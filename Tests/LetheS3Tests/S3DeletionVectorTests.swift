import DeltaLake
import Foundation
import LetheCore
import LetheEngine
import LetheStorage
import LetheTestSupport
import Testing

@testable import LetheS3

/// Deletion vectors stored by absolute path (`storageType` `p`) as an S3 table writes them:
/// `s3://bucket/prefix/…` URLs resolve to the lake's keys, and only inside the table.
@Suite(.serialized) struct S3DeletionVectorTests {
    @Test func objectURLsMapToKeysOnlyInsideTheBucketAndPrefix() throws {
        let endpoint = try S3Endpoint(url: "http://127.0.0.1:9", region: "us-east-1", bucket: "lake")
        let store = S3ObjectStore(
            client: S3Client(endpoint: endpoint, credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b")), prefix: "warehouse")
        #expect(store.key(forURL: "s3://lake/warehouse/t/deletion_vector_1.bin") == "t/deletion_vector_1.bin")
        #expect(store.key(forURL: "s3a://lake/warehouse/t/sub%20dir/dv.bin") == "t/sub dir/dv.bin")
        #expect(store.key(forURL: "s3n://lake/warehouse/x") == "x")
        for outside in [
            "s3://other/warehouse/t/dv.bin", "s3://lake/warehouse2/t/dv.bin", "s3://lake/t/dv.bin", "s3://lake/warehouse/t/../../x",
            "s3://lake/warehouse/./t", "s3://lake/warehouse//t", "s3://lake/warehouse", "s3://lake", "gs://lake/warehouse/t",
            "file:///lake/warehouse/t", "/lake/warehouse/t", "s3://lake/warehouse/%ZZ",
        ] {
            #expect(store.key(forURL: outside) == nil, "\(outside)")
        }
        let atRoot = S3ObjectStore(client: store.client, prefix: "")
        #expect(atRoot.key(forURL: "s3://lake/warehouse/t") == "warehouse/t")
    }

    struct Fixture: Decodable {
        struct File: Decodable { var rows: [Int64] }
        var files: [String: File]
    }

    /// A delta-rs table given deletion vectors of every kind (one by absolute path), uploaded to
    /// moto with that path rewritten to the bucket's URL: every file's deleted rows are read as
    /// the script committed them, and a URL outside the table is refused.
    @Test func absoluteDeletionVectorURLsAreReadFromTheBucket() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-dv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Peers.python([Peers.script("delta_dv.py"), "make", dir, "40,1000,30"], what: "delta_dv.py make")
        let spec =
            #"{"dvs": [{"f": 0, "rows": [0, 5, 39], "storage": "u", "bin": "b1"}, {"f": 1, "rows": [1, 2, 999], "storage": "p", "bin": "b3"}, {"f": 2, "rows": [4], "storage": "i"}]}"#
        let out = try Peers.python([Peers.script("delta_dv.py"), "delete", dir + "/dv", spec], what: "delta_dv.py delete")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(out.utf8))
        // The absolute `file://` path the script wrote becomes the bucket's URL of the same file.
        let local = "file://" + (dir + "/dv/").addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)!
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "warehouse", dir: dir, datasets: "  - {name: dv, path: tables/dv, format: delta, subject: user_id}\n")
        let store = lethe.store as! S3ObjectStore
        var rewrote = 0
        for rel in FileManager.default.enumerator(atPath: dir + "/dv")!.compactMap({ $0 as? String }).sorted() {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir + "/dv/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/dv/" + rel)))
            if rel.hasPrefix("_delta_log/"), rel.hasSuffix(".json") {
                let text = String(decoding: bytes, as: UTF8.self)
                if text.contains(local) { rewrote += 1 }
                bytes = Array(text.replacingOccurrences(of: local, with: "s3://lake/warehouse/tables/dv/").utf8)
            }
            try await store.put("tables/dv/" + rel, bytes)
        }
        #expect(rewrote == 1)
        let table = DeltaTable(store: store, root: "tables/dv")
        let snap = try await table.snapshot()
        var absolute = 0
        for (path, add) in snap.files {
            #expect(try await table.deletedRows(add) == (fixture.files[path]?.rows ?? []), "\(path)")
            if let dv = try table.deletionVector(of: add), dv.storageType == .absolutePath {
                #expect(try dv.fileKey(in: table)?.hasPrefix("tables/dv/") == true)
                absolute += 1
            }
        }
        #expect(absolute == 1)
        // The same URL seen from another table of the lake is outside it.
        let other = DeltaTable(store: store, root: "tables/other")
        let add = try #require(snap.files.values.first { (try? table.deletionVector(of: $0))??.storageType == .absolutePath })
        #expect(throws: LetheError.self) { _ = try other.deletionVector(of: add)?.fileKey(in: other) }
        // Lethe indexes the table on S3: every physical row, those a deletion vector hides included
        // (they are still in the files, so still someone's data).
        let idx = try await lethe.index()
        #expect(idx.quarantined.isEmpty && idx.datasetIssues.isEmpty, "\(idx)")
        let physical: Int64 = 40 + 1000 + 30
        #expect(idx.records == physical)
    }
}
