import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import LetheSQLite

/// A lake in memory with the SQLite metastore in memory.
struct Fixture {
    let store = InMemoryObjectStore()
    let lethe: Lethe

    init(_ yaml: String = Fixture.yaml, baseDir: String = "/tmp") throws {
        let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: baseDir)
        let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))
        lethe = Lethe(config: config, store: store, meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    }

    static let yaml = """
        lake: ./lake
        datasets:
          - name: raw
            path: raw
            format: jsonl
            subject: user.id
          - name: users
            path: users
            format: csv
            subject: user_id
            derived_from: [raw]
          - name: other
            path: other
            format: jsonl
            subject: uid
        """

    func put(_ key: String, _ text: String) { store.set(key, Array(text.utf8)) }
    func text(_ key: String) async throws -> String { String(decoding: try await store.read(key), as: UTF8.self) }
}

private func event(_ u: String, _ n: Int) -> String { #"{"n":\#(n),"user":{"id":"\#(u)"},"item":{"id":"\#(u)"}}"# + "\n" }

@Test func indexLocatesExactSubjectsAndIsIncremental() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-12", 2) + event("u-1", 3))
    f.put("users/u.csv", "user_id,email\nu-1,a@x\nu-2,b@x\n")
    let r1 = try await f.lethe.index()
    #expect(r1.objectsScanned == 2 && r1.records == 5)
    let hits = try await f.lethe.locate(SubjectID("u-1"))
    #expect(Set(hits.map(\.object.key)) == ["raw/a.jsonl", "users/u.csv"])
    #expect(hits.first { $0.object.key == "raw/a.jsonl" }?.rows == [0, 2])
    let r2 = try await f.lethe.index()
    #expect(r2.objectsScanned == 0 && r2.objectsUnchanged == 2)
    f.put("raw/a.jsonl", event("u-2", 1))
    try await f.store.delete("users/u.csv")
    let r3 = try await f.lethe.index()
    #expect(r3.objectsScanned == 1 && r3.objectsRemoved == 1)
    #expect(try await f.lethe.locate(SubjectID("u-1")).isEmpty)
}

@Test func fullFlowErasesThroughLineageAndVerifies() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-12", 2) + "\r\n" + event("u-1", 3).dropLast() + "\r\n" + event("u-3", 4))
    f.put("users/u.csv", "user_id,email\r\nu-1,\"a,b\"\r\nu-12,\"multi\nline\"\r\n")
    f.put("other/o.jsonl", #"{"uid":"u-2","user":{"id":"u-1"}}"# + "\n")  // `uid` is the subject here: no match
    _ = try await f.lethe.index()
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    #expect(r.status == .planned)
    let plan = try #require(ErasurePlan.decode(r.plan!))
    #expect(plan.datasets.map(\.name) == ["raw", "users"])
    #expect(plan.totalRows == 3)
    await #expect(throws: LetheError.self) { _ = try await f.lethe.approve([r.id], by: "alice") }
    _ = try await f.lethe.approve([r.id], by: "bob")
    let run = try await f.lethe.run()
    #expect(run.rowsDropped == 3 && run.objectsRewritten == 2)
    #expect(run.failed.isEmpty)
    #expect(try await f.text("raw/a.jsonl") == event("u-12", 2) + "\r\n" + event("u-3", 4))
    #expect(try await f.text("users/u.csv") == "user_id,email\r\nu-12,\"multi\nline\"\r\n")
    #expect(try await f.text("other/o.jsonl") == #"{"uid":"u-2","user":{"id":"u-1"}}"# + "\n")
    let done = try await f.lethe.request(r.id)
    // Verified keeps the raw id sealed (the sweep or the deadline destroys it): filing + 25 days.
    #expect(done.status == .verified && done.sealedSubject != nil && done.rawDestroyedAt == nil)
    #expect(done.rawDueAt == done.filedAt + 25 * 86_400_000 && done.proof != nil)
    let entries = try await f.lethe.meta.auditEntries()
    #expect(entries.map(\.event).contains("object_rewritten"))
    #expect(verifyAuditChain(entries).ok)
    #expect(!entries.contains { $0.details.contains("u-1\"") || $0.details.contains("\"u-1") })
}

@Test func thousandRequestsOnOneObjectAreOneRewrite() async throws {
    let f = try Fixture()
    var text = ""
    for i in 0..<3000 { text += event("u-\(i % 1500)", i) }
    f.put("raw/big.jsonl", text)
    _ = try await f.lethe.index()
    let subjects = (0..<1000).map { SubjectID("u-\($0)") }
    let rs = try await f.lethe.forget(subjects, reason: "bulk", by: "alice")
    _ = try await f.lethe.approve(rs.map(\.id), by: "bob")
    let run = try await f.lethe.run()
    #expect(run.objectsRewritten == 1)
    #expect(run.rowsDropped == 2000)
    #expect(run.erased.count == 1000)
    let after = try await f.text("raw/big.jsonl")
    #expect(after.split(separator: "\n").count == 1000)
    #expect(try await f.lethe.meta.auditEntries().filter { $0.event == "object_rewritten" }.count == 1)
}

@Test func corruptObjectFailsOnlyThatObjectAndARetrySucceedsOnceFixed() async throws {
    let f = try Fixture()
    f.put("raw/good.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("raw/bad.jsonl", event("u-2", 1) + "{not json\n")
    let ir = try await f.lethe.index()
    #expect(ir.quarantined.map(\.object) == ["raw/bad.jsonl"])
    #expect(ir.quarantined[0].issue.contains("raw/bad.jsonl:line 2"))
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await f.lethe.approve([r.id], by: "bob")
    let run = try await f.lethe.run()
    #expect(run.failed.map(\.id) == [r.id])
    #expect(try await f.text("raw/bad.jsonl") == event("u-2", 1) + "{not json\n")  // untouched
    #expect(try await f.text("raw/good.jsonl") == event("u-2", 2))  // the rest erased
    #expect(try await f.lethe.request(r.id).status == .failed)
    f.put("raw/bad.jsonl", event("u-2", 1) + event("u-1", 7))  // someone repairs the object
    let again = try await f.lethe.run()
    #expect(again.failed.isEmpty)
    #expect(try await f.text("raw/bad.jsonl") == event("u-2", 1))
    #expect(try await f.lethe.request(r.id).status == .verified)
}

@Test func rebuildRunsAfterUpstreamErasureAndFailureFailsTheRequest() async throws {
    let dir = NSTemporaryDirectory() + "lethe-rebuild-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let yaml =
        Fixture.yaml + """

              - name: agg
                path: agg
                format: csv
                derived_from: [users]
                rebuild: "echo rebuilt-$LETHE_DATASET > out.txt; exit ${REBUILD_EXIT:-0}"
            """
    let f = try Fixture(yaml, baseDir: dir)
    f.put("raw/a.jsonl", event("u-1", 1))
    _ = try await f.lethe.index()
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    let plan = try #require(ErasurePlan.decode(r.plan!))
    #expect(plan.datasets.map(\.name) == ["raw", "users", "agg"])
    #expect(plan.datasets.last?.role == "rebuild")
    _ = try await f.lethe.approve([r.id], by: "bob")
    let run = try await f.lethe.run()
    #expect(run.rebuilds.map(\.dataset) == ["agg"])
    #expect(run.rebuilds.first?.exitStatus == 0)
    #expect(try String(contentsOfFile: dir + "/out.txt", encoding: .utf8) == "rebuilt-agg\n")
    #expect(try await f.lethe.meta.auditEntries().contains { $0.event == "rebuild" && $0.details.contains("\"exit_status\":0") })

    // A rebuild that fails fails the request, with the reason.
    let failing = try Fixture(yaml.replacingOccurrences(of: "exit ${REBUILD_EXIT:-0}", with: "exit 3"), baseDir: dir)
    failing.put("raw/a.jsonl", event("u-1", 1))
    _ = try await failing.lethe.index()
    let r2 = try await failing.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await failing.lethe.approve([r2.id], by: "bob")
    let run2 = try await failing.lethe.run()
    #expect(run2.failed.map(\.id) == [r2.id])
    #expect(run2.failed.first?.reason.contains("exited with status 3") == true)
    #expect(try await failing.lethe.request(r2.id).status == .failed)
}

@Test func verificationFindsResidueWrittenBehindLethesBack() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    _ = try await f.lethe.index()
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await f.lethe.approve([r.id], by: "bob")
    _ = try await f.lethe.run()
    // A pipeline writes the subject back; the index has not seen it.
    f.put("raw/late.jsonl", event("u-1", 5))
    var erased = try await f.lethe.request(r.id)
    erased.status = .erased  // re-verify
    try await f.lethe.meta.updateRequest(erased, expecting: .verified)
    let v = try await f.lethe.verify(ids: [r.id])
    #expect(v[0].clean == false)
    #expect(v[0].found.map(\.object) == ["raw/late.jsonl"])
    #expect(try await f.lethe.request(r.id).status == .failed)
}

@Test func forgettingTheSameSubjectTwiceReturnsTheOpenRequest() async throws {
    let f = try Fixture()
    let a = try await f.lethe.forget([SubjectID("u-9")], reason: "t", by: "alice")
    let b = try await f.lethe.forget([SubjectID("u-9")], reason: "t", by: "carol")
    #expect(a[0].id == b[0].id)
    #expect(try await f.lethe.meta.requests(status: nil).count == 1)
}

@Test func multiNeedleSearchFindsEveryRawIdOnce() {
    let hay = Array("xx alice@example.com yy bob-123456 zz alice@example.co".utf8)
    let needles = ["alice@example.com", "bob-123456", "carol-99999", "alice@example.co"].map { Array($0.utf8) }
    let found = Lethe.search(hay, for: needles)
    #expect(found == Set([needles[0], needles[1], needles[3]]))
    #expect(Lethe.search(Array("short".utf8), for: needles).isEmpty)
    // A needle straddling the end is not found; one ending exactly at the end is.
    #expect(Lethe.search(Array("...bob-12345".utf8), for: needles).isEmpty)
    #expect(Lethe.search(Array("...bob-123456".utf8), for: needles) == [needles[1]])
}
