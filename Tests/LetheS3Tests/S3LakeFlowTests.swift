import Foundation
import LetheCore
import LetheEngine
import LetheRuntime
import LetheStorage
import LetheFormats
import LetheTestSupport
import Testing
@testable import LetheS3

/// A lake on moto's S3 server, opened through `Runtime` from a `lethe.yaml` (`lake: s3://…`, the
/// `s3:` keys, credentials from the environment): JSON Lines, gzip JSON Lines, CSV and Parquet
/// (written by pyarrow) indexed, forgotten, approved, erased and verified; other subjects' rows kept.
@Suite(.serialized) struct S3LakeFlowTests {
    @Test func forgetApproveRunVerifiedOnAnS3Lake() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-flow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "prod", dir: dir,
            datasets: """
                  - {name: events, path: raw/events, format: jsonl, subject: user.id}
                  - {name: archive, path: raw/archive, format: jsonl, subject: user.id}
                  - {name: people, path: raw/people, format: csv, subject: uid}
                  - {name: facts, path: silver/facts, format: parquet, subject: user_id}
                """)
        let store = lethe.store
        #expect(store.location == "s3://lake/prod")
        func user(_ i: Int) -> String { "u-\(i % 7)" }
        for part in 0..<3 {
            var lines = ""
            for j in 0..<30 { lines += #"{"n":\#(j),"user":{"id":"\#(user(part + j))"}}"# + "\n" }
            try await store.put("raw/events/p\(part).jsonl", Array(lines.utf8))
            try await EncodedObject.write(Array(lines.utf8), to: "raw/archive/p\(part).jsonl.gz", in: store)
        }
        var csv = "uid,name\n"
        for j in 0..<20 { csv += "\(user(j)),name \(j)\n" }
        try await store.put("raw/people/all.csv", Array(csv.utf8))
        let pq = dir + "/facts.parquet"
        try Peers.python(
            [
                "-c",
                "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({'user_id': ['u-%d' % (i % 7) for i in range(700)], 'v': list(range(700))}), '\(pq)', row_group_size=100)",
            ], what: "pyarrow writes facts")
        try await store.put("silver/facts/part-0.parquet", [UInt8](try Data(contentsOf: URL(fileURLWithPath: pq))))

        let idx = try await lethe.index()
        #expect(idx.quarantined.isEmpty)
        let filed = try await lethe.forget([SubjectID("u-3")], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty)
        let r = try await lethe.request(filed[0].id)
        #expect(r.status == .verified)
        #expect(r.proof == "index")
        // No row of u-3 anywhere; every other row kept.
        var counts: [String: Int] = [:]
        for o in try await store.list(prefix: "") {
            let text = String(decoding: try await EncodedObject.read(o.key, in: store), as: UTF8.self)
            if o.key.hasSuffix(".parquet") { continue }
            for l in text.split(separator: "\n") where !l.hasPrefix("uid,") {
                counts[l.contains("\"u-3\"") || l.hasPrefix("u-3,") ? "u-3" : "other", default: 0] += 1
            }
        }
        #expect(counts["u-3"] == nil)
        let u3Lines = (0..<3).reduce(0) { a, p in a + (0..<30).filter { user(p + $0) == "u-3" }.count }
        let u3People = (0..<20).filter { user($0) == "u-3" }.count
        #expect(counts["other"] == 2 * (90 - u3Lines) + (20 - u3People))
        let facts = try await store.read("silver/facts/part-0.parquet")
        try Data(facts).write(to: URL(fileURLWithPath: pq))
        let left = try Peers.python(
            ["-c", "import pyarrow.parquet as pq; t = pq.read_table('\(pq)'); print(t.num_rows, t.column('user_id').to_pylist().count('u-3'))"],
            what: "pyarrow reads facts")
        #expect(left.trimmingCharacters(in: .whitespacesAndNewlines) == "600 0")
        // The full scan agrees.
        let full = try await lethe.verify(ids: [filed[0].id])
        #expect(full.count == 1 && full[0].clean)
    }
}
