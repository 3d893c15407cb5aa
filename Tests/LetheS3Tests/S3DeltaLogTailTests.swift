import DeltaLake
import Foundation
import LetheCore
import LetheEngine
import LetheStorage
import LetheTestSupport
import LetheTesting
import Testing

@testable import LetheS3

/// A Delta table with a long log on moto (1,100 commits before delta-rs's checkpoint, one after):
/// the snapshot lists only the log's tail (one LIST request instead of two) and equals the replay
/// from the whole log's listing; delta-rs wrote the checkpoint and reads the table.
@Suite(.serialized) struct S3DeltaLogTailTests {
    static let longLog = """
        import json, os, sys, pyarrow as pa
        from deltalake import DeltaTable, write_deltalake
        d, n = sys.argv[1], int(sys.argv[2])
        write_deltalake(d, pa.table({"user_id": ["u-1", "u-2"], "n": pa.array([1, 2], pa.int64())}))
        for v in range(1, n + 1):
            with open(f"{d}/_delta_log/{v:020d}.json", "w") as f:
                f.write(json.dumps({"commitInfo": {"timestamp": 1700000000000 + v, "operation": "WRITE", "operationParameters": {}}}) + "\\n")
        DeltaTable(d).create_checkpoint()
        write_deltalake(d, pa.table({"user_id": ["u-3"], "n": pa.array([3], pa.int64())}), mode="append")
        sys.stdout.flush()
        os._exit(0)
        """

    @Test func theSnapshotListsOnlyTheLogTailOnS3() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-log-tail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Peers.python(["-c", Self.longLog, dir + "/t", "1100"], what: "a long delta-rs log")
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "warehouse", dir: dir, datasets: "  - {name: t, path: t, format: delta, subject: user_id}\n")
        let s3 = lethe.store as! S3ObjectStore
        let root = dir + "/t"
        let files = FileManager.default.enumerator(atPath: root)!.compactMap { $0 as? String }.filter { !$0.hasPrefix(".") && !$0.contains("/.") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, rel) in files.enumerated() {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
                if i >= 8 { try await group.next() }
                group.addTask { try await s3.put("t/" + rel, [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel)))) }
            }
            try await group.waitForAll()
        }
        let store = CountingObjectStore(s3)
        let table = DeltaTable(store: store, root: "t")
        let full = try await table.snapshot(version: nil, tail: false)
        let before = store.counts
        store.reset()
        let tail = try await table.snapshot()
        let after = store.counts
        print("delta log of 1,102 commits on moto: LIST requests \(before.listPages) → \(after.listPages), keys listed \(before.listed) → \(after.listed)")
        #expect(before.listPages == 2 && before.listed > 1_100)
        #expect(after.listPages == 1 && after.listed <= 4)
        #expect(tail.version == 1_101 && full.version == 1_101)
        #expect(tail.files == full.files && tail.metadata == full.metadata && tail.checkpoint == full.checkpoint)
        #expect(tail.checkpoint?.version == 1_100)
        // Through the engine: indexed from the tail, the rows found.
        let idx = try await lethe.index()
        #expect(idx.records == 3, "\(idx)")
    }
}
