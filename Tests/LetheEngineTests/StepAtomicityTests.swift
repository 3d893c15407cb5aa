import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheStorage
import LetheTesting
import LetheSQLite

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
        try await expectRunStopsAtAFailedStepEnd(lethe, faulty)
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

    /// A targeted vacuum's index change (the deleted history files leave the index) and its
    /// `delta_vacuum` entry land together: under a fault on the entry neither does, and the next run
    /// completes both.
    @Test func vacuumAndAuditAreOneTransaction() async throws {
        let dir = try deltaTables("vacuumpair", "make")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try deltaLethe(dir, ["plain"])
        let faulty = FaultInjectingStateStore(base: base.meta)
        let lethe = base.over(faulty)
        _ = try await lethe.index()
        // delta-rs's own DELETE left u-3's rows in history files, and an append wrote live ones since.
        let held = try await lethe.locateRows(SubjectID("u-3"))
        #expect(held.contains { $0.role == .history } && held.contains { $0.role == .live })
        let r = try await lethe.forget([SubjectID("u-3")], reason: "test", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")

        // Armed once the job is journaled: the second audit append is the vacuum's `delta_vacuum`
        // (the first is the erasure's `delta_commit`). The step fails; so does its request.
        let failed = try await lethe.run(events: { if case .jobPlanned = $0 { faulty.failAuditAppend(nth: 2) } })
        #expect(faulty.faultsThrown == 1)
        #expect(failed.failed.map(\.id) == [r.id])
        #expect(try await lethe.meta.auditEntries().filter { $0.event == "delta_vacuum" }.isEmpty)
        #expect(try await lethe.meta.auditEntries().filter { $0.event == "delta_commit" }.count == 1)
        // The files are gone from the lake, but the index change rolled back with the entry.
        #expect(Set(try await lethe.locate(SubjectID("u-3")).map(\.object.key)) == Set(held.map(\.object)))

        // The next run retries the request: the vacuum is recorded with its entry, and the subject is proven gone.
        let report = try await lethe.run()
        #expect(report.failed.isEmpty, "\(report.failed)")
        #expect(try await lethe.request(r.id).status == .verified)
        #expect(try await lethe.meta.auditEntries().filter { $0.event == "delta_vacuum" }.count == 1)
        #expect(try await lethe.locate(SubjectID("u-3")).isEmpty)
        #expect(try await lethe.checkAudit().ok)
    }

    /// A change feed's cursor and its `propagated` entry land together: under a fault on the entry
    /// neither does, and the next propagation completes both.
    @Test func propagationCursorAndAuditAreOneTransaction() async throws {
        let dir = try deltaTables("propagatepair", "make-propagation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
            lake: .
            datasets:
              - name: bronze
                path: bronze
                format: delta
                subject: user_id
                deletes_from: change_feed
            """
        let base = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
        let faulty = FaultInjectingStateStore(base: base.meta)
        let lethe = base.over(faulty)
        _ = try await lethe.index()
        // Nothing deleted by another tool: the only entry propagation appends is `propagated`.
        faulty.failAuditAppend()
        await #expect(throws: LetheError.self) { _ = try await lethe.propagate(datasets: ["bronze"], events: nil) }
        #expect(faulty.faultsThrown == 1)
        #expect(try await lethe.meta.cursors.propagation(dataset: "bronze") == nil)
        #expect(try await lethe.meta.auditEntries().filter { $0.event == "propagated" }.isEmpty)

        let report = try await lethe.propagate(datasets: ["bronze"], events: nil)
        let version = try #require(report.sources.first?.versions?.upperBound)
        #expect(try await lethe.meta.cursors.propagation(dataset: "bronze") == version)
        #expect(try await lethe.meta.auditEntries().filter { $0.event == "propagated" }.count == 1)
        #expect(try await lethe.checkAudit().ok)
    }
}

/// Runs `lethe` with `faulty` armed once the job is journaled (the next audit append — a step end's —
/// fails): the run must stop with the injected fault, thrown once.
func expectRunStopsAtAFailedStepEnd(_ lethe: Lethe, _ faulty: FaultInjectingStateStore) async throws {
    do {
        _ = try await lethe.run(events: { if case .jobPlanned = $0 { faulty.failAuditAppend() } })
        Issue.record("the run went on after the state could not record a step's end")
    } catch let e as LetheError {
        #expect(e.description.contains("injected fault"))
    }
    #expect(faulty.faultsThrown == 1)
}
