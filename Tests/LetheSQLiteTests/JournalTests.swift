import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

@Suite struct JournalTests {
    func step(_ job: String, _ ordinal: Int64, keys: [SubjectKey] = [testKey(1), testKey(2)]) -> JournalStep {
        JournalStep(
            job: job, ordinal: ordinal, dataset: "raw", objectKey: ordinal == 99 ? "" : "raw/part-\(ordinal).jsonl",
            requestIDs: ["r-1", "r-2"], subjectKeys: keys)
    }

    @Test func createIsIdempotentAndKeepsProgress() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let steps = [step("job-1", 0), step("job-1", 1, keys: []), step("job-1", 99)]
        try await store.createJob(steps)
        #expect(try await store.steps(job: "job-1") == steps)

        try await store.finishStep(job: "job-1", ordinal: 0, state: .done, outcome: "{\"dropped\":3}")
        // Creating again (a resumed `run`) neither duplicates nor resets steps.
        try await store.createJob(steps)
        let now = try await store.steps(job: "job-1")
        #expect(now.count == 3)
        #expect(now[0].state == .done && now[0].outcome == "{\"dropped\":3}")
        #expect(now[1] == steps[1] && now[2] == steps[2])
        try await store.createJob([])
    }

    @Test func pendingStepsSpanUnfinishedJobsOnly() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.createJob([step("job-b", 0), step("job-b", 1)])
        try await store.createJob([step("job-a", 2), step("job-a", 1)])
        try await store.createJob([step("job-c", 0)])

        try await store.finishStep(job: "job-b", ordinal: 0, state: .done, outcome: nil)
        try await store.finishStep(job: "job-c", ordinal: 0, state: .failed, outcome: "object changed")
        let pending = try await store.pendingSteps()
        #expect(pending.map { "\($0.job)#\($0.ordinal):\($0.state.rawValue)" } == ["job-a#1:pending", "job-a#2:pending", "job-b#0:done", "job-b#1:pending"])

        try await store.finishStep(job: "job-b", ordinal: 1, state: .done, outcome: nil)
        try await store.finishStep(job: "job-a", ordinal: 1, state: .done, outcome: nil)
        try await store.finishStep(job: "job-a", ordinal: 2, state: .done, outcome: nil)
        #expect(try await store.pendingSteps().isEmpty)
        #expect(try await store.steps(job: "job-c").first?.outcome == "object changed")
    }

    @Test func finishingAMissingStepIsNotFound() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        do {
            try await store.finishStep(job: "nope", ordinal: 0, state: .done, outcome: nil)
            Issue.record("finishing a missing step succeeded")
        } catch let e as LetheError {
            #expect(e.code == .notFound)
        }
    }

    @Test func settings() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        #expect(try await store.setting("index.cursor") == nil)
        try await store.setSetting("index.cursor", "a")
        try await store.setSetting("index.cursor", "b")
        try await store.setSetting("other", "")
        #expect(try await store.setting("index.cursor") == "b")
        #expect(try await store.setting("other") == "")
    }
}
