import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LetheStorage
import LetheTestSupport
import Testing

@testable import LetheS3

/// A bucket that keeps versions: an object Lethe rewrites stays readable as a noncurrent version,
/// and so do the versions before it. A run deletes the noncurrent versions holding the subject
/// (and keeps those that do not), audits it, and its verification reads them; `verify` reads
/// every noncurrent version of the dataset and finds one planted after the run.
@Suite(.serialized) struct S3VersionedBucketTests {
    @Test func noncurrentVersionsHoldingTheSubjectAreDeletedAndVerified() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let dir = try temporaryFolder("s3-versions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "prod", dir: dir, datasets: "  - {name: events, path: raw/events, format: jsonl, subject: user.id}\n")
        let store = lethe.store as! S3ObjectStore
        let body = Array("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".utf8)
        let on = try await store.client.send("PUT", key: nil, query: [("versioning", "")], body: body, what: "PutBucketVersioning")
        #expect(on.status == 200)
        func line(_ n: Int, _ u: String) -> String { #"{"n":\#(n),"user":{"id":"\#(u)"}}"# + "\n" }
        // Three versions of one object: without the subject, then twice with it.
        try await store.put("raw/events/a.jsonl", Array((line(0, "u-2") + line(1, "u-5")).utf8))
        try await store.put("raw/events/a.jsonl", Array((line(0, "u-2") + line(1, "u-3") + line(2, "u-5")).utf8))
        try await store.put("raw/events/a.jsonl", Array((line(0, "u-3") + line(1, "u-2") + line(2, "u-3")).utf8))
        try await store.put("raw/events/b.jsonl", Array(line(0, "u-4").utf8))
        #expect(try await store.versions(prefix: "raw/events/a.jsonl").count == 3)

        _ = try await lethe.index()
        let filed = try await lethe.forget([SubjectID("u-3")], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(run.noncurrentVersionsDeleted == 2, "\(run)")
        #expect(run.noncurrentVersionsExamined == 3)  // the two before and the one the run replaced
        let r = try await lethe.request(filed[0].id)
        #expect(r.status == .verified)
        #expect(run.verifications.first?.versionsExamined == 1)  // what is left: the version without the subject
        // Left: the current version (rewritten) and the first one; no version holds u-3.
        let left = try await store.versions(prefix: "raw/events/a.jsonl")
        #expect(left.count == 2)
        for v in left {
            let text = String(decoding: try await store.read(v.key, versionID: v.versionID, range: nil), as: UTF8.self)
            #expect(!text.contains("u-3"))
            #expect(text.contains("u-2"))
        }
        // Audited, the object by reference.
        let lines = try await lethe.auditLog()
        let entry = try #require(lines.first(where: { $0.entry.event == AuditEvent.versionsDeleted.rawValue }))
        #expect(!entry.details.contains("a.jsonl") && entry.details.contains("\"versions\":2"), "\(entry.details)")

        // A version holding the subject appears afterwards (a restore from a backup, overwritten):
        // the full verification reads every noncurrent version and finds it.
        try await store.put("raw/events/b.jsonl", Array((line(0, "u-4") + line(1, "u-3")).utf8))
        try await store.put("raw/events/b.jsonl", Array(line(0, "u-4").utf8))
        let again = try await lethe.verify(ids: [filed[0].id])
        #expect(again.count == 1 && !again[0].clean)
        #expect(again[0].found.contains { $0.object == "raw/events/b.jsonl" && ($0.issue ?? "").contains("noncurrent version") }, "\(again[0].found)")
        #expect((again[0].versionsExamined ?? 0) >= 2)
    }
}
