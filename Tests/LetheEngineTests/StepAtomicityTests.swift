import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheCatalog

/// A journal step's end and its audit entry land in one state transaction, or neither does.
@Suite struct StepAtomicityTests {
    @Test func stepAndAuditAreOneTransaction() async throws {
        let f = try Fixture()
        let faulty = FaultInjectingStateStore(base: f.lethe.meta)
        let lethe = Lethe(config: f.lethe.config, store: f.store, meta: faulty, secrets: f.lethe.secrets, stateFolder: nil)
        f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n" + #"{"user":{"id":"u-2"}}"# + "\n")
        _ = try await lethe.index()
        let filed = try await lethe.forget([SubjectID("u-1")], reason: "test", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let before = try await lethe.meta.auditEntries().count

        // Armed once the job is journaled: the next audit append is the rewrite step's `object_rewritten`.
        do {
            _ = try await lethe.run(events: { if case .jobPlanned = $0 { faulty.failAuditAppend() } })
            Issue.record("the run went on after the state could not record a step's end")
        } catch let e as LetheError {
            #expect(e.description.contains("injected fault"))
        }
        #expect(faulty.faultsThrown == 1)
        // The object was rewritten, but the step's end rolled back with its audit entry: the step is
        // still pending, and nothing claims it was rewritten (or failed).
        #expect(try await f.text("raw/a.jsonl") == #"{"user":{"id":"u-2"}}"# + "\n")
        let pending = try await lethe.meta.pendingSteps()
        #expect(pending.first { $0.kind == .object && $0.objectKey == "raw/a.jsonl" }?.state == .pending)
        let events = try await lethe.meta.auditEntries().dropFirst(before).map(\.event)
        #expect(events == ["started"])

        // The next run resumes the step (nothing left to drop) and finishes the job.
        let report = try await lethe.run()
        #expect(report.erased == filed.map(\.id))
        #expect(report.verifications.map(\.clean) == [true])
        #expect(try await lethe.meta.pendingSteps().isEmpty)
        #expect(try await lethe.request(filed[0].id).status == .verified)
    }
}
