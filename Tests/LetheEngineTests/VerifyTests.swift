import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog

// The verifier's verdicts: no false "clean" (issue 9 item 1), and no false failure either —
// a request that can never be verified is as stuck as one never erased.

private func row(_ u: String, _ n: Int, country: String = "FR") -> String { #"{"n":\#(n),"user_id":"\#(u)","country":"\#(country)"}"# + "\n" }

private func approved(_ lethe: Lethe, _ subjects: [String]) async throws -> [ErasureRequest] {
    let rs = try await lethe.forget(subjects.map { SubjectID($0) }, reason: "ticket 4711", by: "alice")
    return try await lethe.approve(rs.map(\.id), by: "bob")
}

// 3a: a Delta table the erasure emptied (every row belonged to the erased subjects, every file removed and the
// history vacuumed) was "not clean: no object was examined" at every run. The table's log is the evidence: it was
// read, names no data file, and holds none of the subjects' values; the count stays honest (0 objects).
@Test func aDeltaTableTheErasureEmptiedVerifiesCleanOnItsLog() async throws {
    let dir = try deltaTables("deltaemptied", "make-propagation")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let lethe = try deltaLethe(dir, ["silver"])
    _ = try await lethe.index()
    let rs = try await approved(lethe, (0..<7).map { "u-\($0)" })
    _ = try await lethe.run()
    for r in rs {
        let done = try await lethe.request(r.id)
        #expect(done.status == .verified, "\(done.failure ?? "")")
    }
    let v = try await lethe.verify(ids: [rs[0].id], dryRun: true)[0]
    #expect(v.clean && v.objectsScanned == 0 && v.logsExamined == 1, "\(v.summary)")
    #expect(try rows(dir + "/silver").isEmpty)
    // The verdict is earned: a table whose log cannot be read is not clean.
    try FileManager.default.removeItem(atPath: dir + "/silver/_delta_log")
    let broken = try await lethe.verify(ids: [rs[0].id], dryRun: true)[0]
    #expect(!broken.clean, "\(broken.summary)")
}

// 3b: the check that object keys do not name the subject matched any `name=value` folder whose value is the id:
// a short id equal to another column's partition value (`country=DE`) failed its request for good, though that
// folder says nothing about the subject. Only a segment holding the subject's own field's value, or the raw id as
// a whole token (ids long enough to search), names the subject.
@Test func aFolderOfAnotherColumnWhoseValueEqualsTheIdDoesNotNameTheSubject() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    try lake.put("events/country=DE/a.jsonl", row("DE", 1, country: "DE") + row("u-2", 2, country: "DE"))
    try lake.put("events/country=FR/b.jsonl", row("u-3", 3))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let r = try await approved(lethe, ["DE"])[0]
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(done.failure ?? "")")
    #expect(try lake.text("events/country=DE/a.jsonl") == row("u-2", 2, country: "DE"))
    #expect(!Lethe.key("events/country=DE/a.jsonl", names: SubjectID("DE"), fields: ["user_id"]))
    #expect(Lethe.key("events/user_id=DE/a.jsonl", names: SubjectID("DE"), fields: ["user_id"]))
    #expect(Lethe.key("events/user_id=jane%40x.example/a.jsonl", names: SubjectID("jane@x.example"), fields: ["user_id"]))
    #expect(Lethe.key("exports/DE/a.jsonl", names: SubjectID("DE"), fields: ["user_id"]))
    #expect(Lethe.key("exports/jane@x.example.jsonl", names: SubjectID("jane@x.example"), fields: ["user_id"]))
    #expect(!Lethe.key("exports/part-00000-1796004080592.jsonl", names: SubjectID("179600"), fields: ["user_id"]))
}

// 3b: the subject's own partition folder still fails verification while a file sits under it.
@Test func aFileUnderTheSubjectsOwnFolderStillFailsVerification() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    try lake.put("events/country=DE/a.jsonl", row("u-2", 2, country: "DE"))
    // A file under a folder named after the subject's own field, holding no record: nothing to rewrite, but its key names DE.
    try lake.put("events/user_id=DE/empty.jsonl", "")
    let lethe = try lake.open()
    _ = try await lethe.index()
    let r = try await approved(lethe, ["DE"])[0]
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status != .verified)
    let v = try #require(done.verification.flatMap { try? JSONDecoder().decode(Verification.self, from: Data($0)) })
    #expect(!v.clean && v.found.contains { $0.object == "events/user_id=DE/empty.jsonl" }, "\(v.summary)")
    #expect(!v.found.contains { $0.object.contains("country=DE") }, "\(v.summary)")
}

// F5: `_SUCCESS` markers, Hadoop `.crc` sidecars and other hidden-by-name files (a name starting with `.`, or with
// `_` and no `=`: Spark's and Hadoop's convention) are not data: indexing them quarantined them ("not JSON") and
// every request reaching the dataset failed. They are not read as records, but verification still searches their
// bytes for the raw id; and a data file Lethe rewrites loses its stale `.crc` (Spark and Hadoop refuse a file
// whose checksum does not match).
@Test func hiddenSidecarsAreNotDataButAreSearchedAndAStaleCrcIsRemoved() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    try lake.put("events/part-0.jsonl", row("u-000001", 1) + row("u-000002", 2))
    try lake.put("events/part-1.jsonl", row("u-000003", 3))
    try lake.put("events/.part-0.jsonl.crc", "crc\u{0}\u{0}\u{2}\u{0}\u{1}\u{7f}garbage")
    try lake.put("events/.part-1.jsonl.crc", "crc\u{0}\u{0}\u{2}\u{0}\u{1}\u{7f}garbage")
    try lake.put("events/_SUCCESS", "")
    let lethe = try lake.open()
    let ir = try await lethe.index()
    #expect(ir.quarantined.isEmpty, "\(ir.quarantined.map(\.object))")
    #expect(ir.objectsSeen == 2)
    let r = try await approved(lethe, ["u-000001"])[0]
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(done.failure ?? "")")
    #expect(try lake.text("events/part-0.jsonl") == row("u-000002", 2))
    #expect(!lake.exists("events/.part-0.jsonl.crc"))  // stale: removed with the rewrite
    #expect(lake.exists("events/.part-1.jsonl.crc") && lake.exists("events/_SUCCESS"))
    // A hidden file holding a raw id is residue all the same.
    try lake.put("events/_notes.txt", "asked by u-000003 on the phone\n")
    let other = try await approved(lethe, ["u-000003"])[0]
    _ = try await lethe.run()
    let left = try await lethe.request(other.id)
    #expect(left.status != .verified)
    let v = try #require(left.verification.flatMap { try? JSONDecoder().decode(Verification.self, from: Data($0)) })
    #expect(v.found.contains { $0.object == "events/_notes.txt" }, "\(v.summary)")
    #expect(try lake.text("events/part-1.jsonl") == "")
}

// h7: a configured dataset whose folder is missing (a typo in `path`) indexed as a clean, empty dataset: requests
// were verified without it ever being read. It is a dataset issue naming the config line and the folder.
@Test func aDatasetWhoseFolderIsMissingIsADatasetIssueNotASilentZero() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
          - name: typo
            path: evnets
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    try lake.put("events/a.jsonl", row("u-000001", 1) + row("u-000002", 2))
    let lethe = try lake.open()
    let ir = try await lethe.index()
    let issue = try #require(ir.datasetIssues.first { $0.dataset == "typo" })
    #expect(issue.kind == .unreadable && issue.message.contains("`evnets` does not exist") && issue.message.contains("lethe.yaml:8"), "\(issue)")
    #expect(try await lethe.datasetIssues()["typo"] != nil)
    let r = try await approved(lethe, ["u-000001"])[0]
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .failed && (done.failure ?? "").contains("evnets"), "\(done.status) \(done.failure ?? "")")
    // Once the folder exists (even empty), the dataset indexes cleanly and the retry is verified.
    try FileManager.default.createDirectory(atPath: lake.dir + "/lake/evnets", withIntermediateDirectories: true)
    _ = try await lethe.run()
    let retried = try await lethe.request(r.id)
    #expect(retried.status == .verified, "\(retried.failure ?? "")")
}

// h7: a FIFO in a dataset is refused naming its key and saying what it is (it said "replace it by what it points to").
@Test func aFIFOInADatasetIsRefusedAsANamedPipe() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    try lake.put("events/a.jsonl", row("u-000001", 1))
    #expect(mkfifo(lake.dir + "/lake/events/pipe.jsonl", 0o644) == 0)
    let ir = try await lethe(lake).index()
    let q = try #require(ir.quarantined.first)
    #expect(q.object == "events/pipe.jsonl" && q.issue.contains("`events/pipe.jsonl` is a FIFO (named pipe)") && !q.issue.contains("points to"), "\(q.issue)")
}

private func lethe(_ lake: DiskLake) throws -> Lethe { try lake.open() }

// 3c: a plain dataset the erasure emptied (the subject's records were its only objects, deleted whole) was left
// "not clean: no object was examined" at every run: a request that can never be verified. The dataset's listing,
// read and holding no object where the request's plan named the objects it erased, is the evidence. It must stay
// earned: a dataset the plan never reached, empty from the start, proves nothing.
@Test func aPlainDatasetTheErasureEmptiedVerifiesCleanOnItsListing() async throws {
    let lake = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: events
            path: events
            format: jsonl
            subject: user_id
        """)
    defer { lake.remove() }
    // The subject's folder (a Hive partition by the subject column): its objects are deleted whole, the folder removed.
    try lake.put("events/user_id=u-1/a.jsonl", row("u-1", 1) + row("u-1", 2))
    try lake.put("events/user_id=u-1/b.jsonl", row("u-1", 3))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let r = try await approved(lethe, ["u-1"])[0]
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(done.failure ?? "")")
    let v = try await lethe.verify(ids: [r.id], dryRun: true)[0]
    #expect(v.clean && v.objectsScanned == 0 && v.listingsExamined == 1, "\(v.summary)")
    #expect(!lake.exists("events/user_id=u-1"))

    // Not earned: a request whose plan named no object there (the subject was never in the lake) and an empty dataset.
    let none = try await approved(lethe, ["u-9"])[0]
    _ = try await lethe.run()
    let after = try await lethe.request(none.id)
    #expect(after.status != .verified && (after.failure ?? "").contains("no object was examined"), "\(after.status) \(after.failure ?? "")")
}
