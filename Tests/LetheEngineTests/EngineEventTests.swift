import Testing
import Synchronization
@testable import LetheEngine
import LetheCore

/// `run`'s progress is typed; each event's `message` is the line the CLI has always printed.
@Suite struct EngineEventTests {
    @Test func messagesAreTheLinesTheCLIPrints() {
        let expected: [(EngineEvent, String)] = [
            (.waitingForRunLock, "waiting for another `lethe run` on this state to finish"),
            (.temporariesRemoved(count: 2), "removed 2 temporary file(s) a killed run left"),
            (.resumingJob(job: "j-1"), "resuming job j-1"),
            (.requestsTakenBack(count: 3), "took back 3 request(s) left running without a job"),
            (.verifyingUnfinished(count: 1), "verifying 1 erased request(s) whose verification did not finish"),
            (.changeFeedNotRead(dataset: "t", error: "boom"), "t: change feed not read: boom"),
            (
                .changeFeedRead(dataset: "t", fromVersion: 4, toVersion: 9, deleted: 2, filed: 1, stillLive: 1),
                "t: change feed v4-9: 2 subject(s) deleted by another tool, 1 request(s) filed and approved, 1 still live"
            ),
            (.jobPlanned(job: "j-1", requests: 2, steps: 5), "job j-1: 2 request(s), 5 step(s)"),
            (.objectErased(dataset: "raw", object: "raw/a.jsonl", dropped: 3, kept: 7), "raw: raw/a.jsonl: dropped 3, kept 7"),
            (.tableReplanning(dataset: "t", reason: "a file was removed", attempt: 2), "t: a file was removed; re-planning (2)"),
            (.tableCommitted(dataset: "t", version: 7, droppedRows: 12, files: 3), "t: committed version 7: dropped 12 rows from 3 file(s)"),
            (
                .tableVacuumed(dataset: "t", deletedFiles: 4, rewrittenChangeData: 1, scrubbedCommits: 2),
                "t: vacuumed: deleted 4 history file(s), rewrote 1 change data file(s), scrubbed 2 commit(s)"
            ),
            (.partitionChangeDataRemoved(dataset: "t", count: 2), "t: removed 2 change data file(s) of erased partitions"),
            (.rebuilding(dataset: "users", command: "make users"), "users: rebuilding: make users"),
            (.stepFailed(dataset: "raw", reason: "raw: cannot read"), "raw: FAILED: raw: cannot read"),
            (.verifying(count: 2), "verifying 2 request(s)"),
        ]
        for (event, text) in expected { #expect(event.message == text) }
    }

    @Test func runReportsTypedEventsWhoseMessagesAreTheCLIText() async throws {
        let f = try Fixture()
        f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n" + #"{"user":{"id":"u-2"}}"# + "\n")
        _ = try await f.lethe.index()
        let r = try await f.lethe.forget([SubjectID("u-1")], reason: "test", by: "alice")
        _ = try await f.lethe.approve(r.map(\.id), by: "bob")
        let seen = Seen()
        _ = try await f.lethe.run(events: { seen.add($0) })
        let events = seen.all
        #expect(events.first.map { if case .jobPlanned(_, 1, _) = $0 { true } else { false } } == true)
        #expect(events.contains(.objectErased(dataset: "raw", object: "raw/a.jsonl", dropped: 1, kept: 1)))
        #expect(events.last == .verifying(count: 1))
        // The CLI prints each event's message: the texts are those of the lines before typed events.
        let r2 = try await f.lethe.forget([SubjectID("u-2")], reason: "test", by: "alice")
        _ = try await f.lethe.approve(r2.map(\.id), by: "bob")
        let texts = SeenText()
        _ = try await f.lethe.run(events: { texts.add($0.message) })
        #expect(texts.all.first?.hasPrefix("job ") == true)
        #expect(texts.all.contains("raw: raw/a.jsonl: dropped 1, kept 0"))
        #expect(texts.all.last == "verifying 1 request(s)")
    }
}

private final class Seen: Sendable {
    private let events = Mutex<[EngineEvent]>([])
    func add(_ e: EngineEvent) { events.withLock { $0.append(e) } }
    var all: [EngineEvent] { events.withLock { $0 } }
}

private final class SeenText: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
}
