import Testing
import Foundation
import Synchronization
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting

// A run executes a job's object steps several at a time (`Lethe.objectStepsInFlight`), and one at a
// time when resuming a job a run died in (so the step counted is the one it died in).

private let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))

/// `objects` JSON Lines objects in `raw`, each holding `gone` twice among 10 other users' records.
private func lakeOf(_ objects: Int) throws -> (Lethe, FaultInjectingStore, kept: [String: String]) {
    let store = FaultInjectingStore()
    var kept: [String: String] = [:]
    for o in 0..<objects {
        var text = "", left = ""
        for n in 0..<12 {
            let u = n % 6 == 0 ? "gone" : "u-\(o)-\(n)"
            text += userEvent(u, n)
            if u != "gone" { left += userEvent(u, n) }
        }
        let key = "raw/p\(o).jsonl"
        store.set(key, Array(text.utf8))
        kept[key] = left
    }
    let lethe = Lethe(
        config: try LakeConfig.parse(rawAndOtherDatasets, file: "lethe.yaml", baseDir: "/tmp"), store: store,
        meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    return (lethe, store, kept)
}

/// Runs, returning the report and the most reads under way at once before the verification began.
private func run(_ lethe: Lethe, _ store: FaultInjectingStore) async throws -> (RunReport, Int) {
    let most = Mutex<Int?>(nil)
    store.resetCounters()
    store.slowReads(.milliseconds(20))
    let report = try await lethe.run(events: { e in
        if case .verifying = e { most.withLock { $0 = $0 ?? store.mostReadsAtOnce } }
    })
    store.slowReads(nil)
    return (report, try #require(most.withLock { $0 }))
}

@Test func aJobsObjectStepsRunSeveralAtATimeAndEachObjectKeepsEveryOtherRecord() async throws {
    let (lethe, store, kept) = try lakeOf(6)
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("gone")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let (report, most) = try await run(lethe, store)
    #expect(most >= 2, "object steps ran one at a time")
    #expect(report.objectsRewritten == 6 && report.rowsDropped == 12 && report.failed.isEmpty, "\(report)")
    #expect(try await lethe.request(r.id).status == .verified)
    for (key, text) in kept { #expect(String(decoding: store.get(key)!, as: UTF8.self) == text, "\(key)") }
    // Every step recorded once, with its own audit entry.
    let rewritten = try await lethe.meta.auditEntries().filter { $0.event == "object_rewritten" }
    #expect(rewritten.count == 6)
}

@Test func aJobARunDiedInIsResumedOneStepAtATime() async throws {
    let (lethe, store, kept) = try lakeOf(8)
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("gone")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    // A run stopped after its first object: the job stays with pending steps.
    let erased = Atomic<Bool>(false)
    let first = try await Lethe.$runStop.withValue(RunStop { erased.load(ordering: .relaxed) }) {
        try await lethe.run(events: { e in
            if case .objectErased = e { erased.store(true, ordering: .relaxed) }
        })
    }
    let job = try #require(first.jobs.first)
    // The run that claimed the job began its first step once, in the claim's transaction.
    #expect(try await lethe.meta.steps(job: job).map(\.attempts).first == 1)
    let pending = try await lethe.meta.steps(job: job).filter { $0.state == .pending && $0.kind == .object }
    #expect(pending.count >= 2, "\(pending.count) object steps left")
    // A run died in the first pending step (it was begun, never finished).
    _ = try await lethe.meta.beginStep(job: job, ordinal: try #require(pending.first).ordinal)
    let (report, most) = try await run(lethe, store)
    #expect(most == 1, "a resumed job ran its steps \(most) at a time")
    #expect(report.failed.isEmpty && report.jobs.first == job, "\(report)")
    #expect(try await lethe.request(r.id).status == .verified)
    for (key, text) in kept { #expect(String(decoding: store.get(key)!, as: UTF8.self) == text, "\(key)") }
}

@Test func aStepEndTheStateCannotRecordStopsTheRunWithItsNeighboursInFlightAndTheNextRunFinishesTheJob() async throws {
    let (plain, store, kept) = try lakeOf(6)
    let faulty = FaultInjectingStateStore(base: plain.meta)
    let lethe = Lethe(config: plain.config, store: store, meta: faulty, secrets: plain.secrets, stateFolder: nil)
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("gone")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    // Armed once the job is journaled: the first step end to commit (several are in flight) fails.
    try await expectRunStopsAtAFailedStepEnd(lethe, faulty)
    #expect(try await lethe.meta.pendingSteps().contains { $0.kind == .object }, "the failed step's end is not pending")
    // The next run resumes the job, drops what is left and verifies; every other record is kept once.
    let report = try await lethe.run()
    #expect(report.failed.isEmpty, "\(report.failed)")
    #expect(try await lethe.meta.pendingSteps().isEmpty)
    #expect(try await lethe.request(r.id).status == .verified)
    for (key, text) in kept { #expect(String(decoding: store.get(key)!, as: UTF8.self) == text, "\(key)") }
}
