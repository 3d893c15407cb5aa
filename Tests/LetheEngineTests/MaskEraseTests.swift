import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting

// Issue 15: `erase: mask | blank` end to end (forget → approve → run → verified), on JSON Lines and CSV.

private let maskYAML = """
    lake: ./lake
    datasets:
      - name: events
        path: events
        format: jsonl
        subject: user.id
        pii: [user.email, ip]
        erase: mask
        mask: {user.email: null, ip: redact, user.id: hash}
      - name: people
        path: people
        format: csv
        subject: user_id
        pii: [email, city]
        erase: mask
        mask: {email: {literal: "x@invalid, really"}, city: blank}
      - name: logs
        path: logs
        format: jsonl
        subject: uid
        erase: blank
      - name: rows
        path: rows
        format: csv
        subject: uid
        erase: blank
    """

private func maskFixture(store: FaultInjectingStore = FaultInjectingStore()) throws -> (Lethe, FaultInjectingStore) {
    let config = try LakeConfig.parse(maskYAML, file: "lethe.yaml", baseDir: "/tmp")
    let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))
    return (Lethe(config: config, store: store, meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil), store)
}

private let events =
    #"{"n":1,"user":{"id":"u-1","email":"a@x.org"},"ip":"10.0.0.1"}"# + "\n"
    + #"{"n":2,"user":{"id":"u-2","email":"b@x.org"},"ip":"10.0.0.2"}"# + "\r\n"
    + "\n"
    + #"{"ip":"10.0.0.3","user":{"email":"c@x.org","id":"u-1"},"n":3}"# + "\n"

private func text(_ s: FaultInjectingStore, _ k: String) -> String { String(decoding: s.get(k) ?? [], as: UTF8.self) }

private func maskForgetAndRun(_ lethe: Lethe, _ subject: String) async throws -> (ErasureRequest, RunReport) {
    let r = try await lethe.forget([SubjectID(subject)], reason: "ticket", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    return (try await lethe.request(r.id), run)
}

@Test func aMaskDatasetKeepsTheSubjectsRecordsWithTheirFieldsReplacedAndVerifies() async throws {
    let (lethe, store) = try maskFixture()
    store.set("events/a.jsonl", Array(events.utf8))
    store.set("people/p.csv", Array("user_id,email,city,n\r\nu-1,a@x.org,Paris,1\r\nu-2,b@x.org,Rome,2\r\n\"u-1\",\"c@x.org\",\"Lyon, FR\",3".utf8))
    _ = try await lethe.index()
    let planned = try await lethe.forget([SubjectID("u-1")], reason: "ticket", by: "alice")[0]
    let plan = try #require(planned.plan.flatMap(ErasurePlan.decode))
    #expect(plan.datasets.first { $0.name == "events" }?.action == "mask")
    _ = try await lethe.approve([planned.id], by: "bob")
    let run = try await lethe.run()
    let r = try await lethe.request(planned.id)
    #expect(r.status == .verified, "\(String(describing: r.failure))")
    #expect(run.rowsMasked == 4 && run.rowsDropped == 0 && run.rowsBlanked == 0)

    let p = String(decoding: MaskKey(installation: SubjectHasher(secret: Array(repeating: 3, count: 32))).pseudonym(Array("u-1".utf8)), as: UTF8.self)
    #expect(p.count == 32 && p.allSatisfy(\.isHexDigit))
    // Other records byte for byte; the subject's records in place, with the configured values.
    #expect(
        text(store, "events/a.jsonl")
            == #"{"n":1,"user":{"id":"\#(p)","email":null},"ip":"[redacted]"}"# + "\n"
            + #"{"n":2,"user":{"id":"u-2","email":"b@x.org"},"ip":"10.0.0.2"}"# + "\r\n"
            + "\n"
            + #"{"ip":"[redacted]","user":{"email":null,"id":"\#(p)"},"n":3}"# + "\n")
    // CSV: the subject field has no rule: null (empty); the literal needs quotes; `blank` is empty.
    #expect(
        text(store, "people/p.csv")
            == "user_id,email,city,n\r\n,\"x@invalid, really\",,1\r\nu-2,b@x.org,Rome,2\r\n,\"x@invalid, really\",,3")
    // The audit entry states the action; the certificate too.
    let rewritten = try await lethe.meta.auditEntries().filter { $0.event == "object_rewritten" }
    #expect(rewritten.count == 2 && rewritten.allSatisfy { $0.details.contains(#""action":"mask""#) && $0.details.contains(#""masked":"#) })
    #expect(rewritten.allSatisfy { !$0.details.contains("u-1") && !$0.details.contains("a@x.org") })
    // (The certificate's `action` per dataset is checked by scripts/e2e: it needs the signing key of a state folder.)

    // A second run has nothing left to mask (the records no longer carry the subject).
    let again = try await lethe.run()
    #expect(again.rowsMasked == 0)
    // A record of the subject that stays unmasked fails the verification.
    store.set("events/b.jsonl", Array(#"{"n":9,"user":{"id":"u-1","email":"z@x.org"},"ip":"1"}"#.utf8))
    let v = try await lethe.verify(ids: [r.id])
    #expect(v.count == 1 && !v[0].clean)
}

@Test func aBlankDatasetKeepsEmptyRecordsInPlace() async throws {
    let (lethe, store) = try maskFixture()
    store.set("logs/l.jsonl", Array((#"{"uid":"u-1","msg":"hi"}"# + "\r\n" + #"{"uid":"u-2","msg":"yo"}"# + "\n" + #"{"uid":"u-1"}"#).utf8))
    store.set("rows/r.csv", Array("uid,msg,n\nu-1,\"a,b\",1\nu-2,c,2\n".utf8))
    _ = try await lethe.index()
    let (r, run) = try await maskForgetAndRun(lethe, "u-1")
    #expect(r.status == .verified, "\(String(describing: r.failure))")
    #expect(run.rowsBlanked == 3 && run.rowsMasked == 0)
    #expect(text(store, "logs/l.jsonl") == "{}\r\n" + #"{"uid":"u-2","msg":"yo"}"# + "\n{}")
    #expect(text(store, "rows/r.csv") == "uid,msg,n\n,,\nu-2,c,2\n")
    // The blanked objects index again (a `{}` record has no subject) and u-2 is still found.
    let idx = try await lethe.index()
    #expect(idx.records >= 0)
    let hits = try await lethe.locate(SubjectID("u-2"))
    #expect(Set(hits.map(\.object.dataset)) == ["logs", "rows"])
    #expect(try await lethe.locate(SubjectID("u-1")).isEmpty)
}

@Test func aMaskStepThatFailsToCommitLeavesTheObjectAndTheNextRunMasksOnce() async throws {
    let (lethe, store) = try maskFixture()
    store.set("events/a.jsonl", Array(events.utf8))
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-1")], reason: "ticket", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    store.failCommit(at: 1)
    _ = try await lethe.run()
    #expect(text(store, "events/a.jsonl") == events)
    #expect(try await lethe.request(r.id).status != .verified)
    store.clearFaults()
    _ = try await lethe.run()
    let after = text(store, "events/a.jsonl")
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(!after.contains("u-1") && !after.contains("a@x.org") && after.contains("u-2"))
    // Run again (as a resumed step would): nothing changes.
    _ = try await lethe.run()
    #expect(text(store, "events/a.jsonl") == after)
}
