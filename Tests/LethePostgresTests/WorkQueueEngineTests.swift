import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LethePostgres
import LetheRuntime
import LetheTestSupport
import Synchronization
import Testing

/// The engine's side of the work queue: workers on one PostgreSQL state share a job's steps, and a
/// step whose lease was lost commits nothing through `Lethe.commit`.
@Suite struct WorkQueueEngineTests {
    /// A local JSON Lines lake of `objects` objects, 30 records each over 60 users, and its config on a fresh schema.
    static func lake(_ hint: String, objects: Int) throws -> (dir: String, config: LakeConfig) {
        let server = try PostgresServer.get()
        let schema = server.freshSchema(hint)
        let dir = NSTemporaryDirectory() + "lethe-pg-queue-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/lake/raw/events", withIntermediateDirectories: true)
        for part in 0..<objects {
            var lines = ""
            for j in 0..<30 { lines += #"{"n":\#(j),"user":{"id":"\#(user(part * 7 + j))"}}"# + "\n" }
            try lines.write(toFile: dir + "/lake/raw/events/p\(part).jsonl", atomically: true, encoding: .utf8)
        }
        let yaml = """
            lake: lake
            state: "\(server.url(schema: schema, withPassword: false))"
            keys: keys
            datasets:
              - {name: events, path: raw/events, format: jsonl, subject: user.id}
            """
        setenv("PGPASSWORD", server.password, 1)
        return (dir, try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir))
    }

    static func user(_ i: Int) -> String { "user-\(1000 + i % 60)" }

    /// `lake(hint, objects:)` opened and indexed, with one request (user 0's) filed and approved.
    static func oneApproved(_ hint: String, objects: Int) async throws -> (dir: String, lethe: Lethe, filed: [ErasureRequest]) {
        let (dir, config) = try lake(hint, objects: objects)
        let lethe = try Runtime.open(config: config)
        _ = try await lethe.index()
        let filed = try await lethe.forget([SubjectID(user(0))], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        return (dir, lethe, filed)
    }

    /// Three workers (three opens: three connection pools, as three processes) coordinate and claim
    /// until every request is verified: each object is rewritten once (one `object_rewritten` per
    /// object), every other record is kept, and the audit chain verifies.
    @Test func threeWorkersShareAJobAndRewriteEachObjectOnce() async throws {
        let (dir, config) = try Self.lake("workers", objects: 12)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        _ = try await lethe.index()
        let forgotten = (0..<20).map { Self.user($0 * 3) }
        let filed = try await lethe.forget(forgotten.map(SubjectID.init), reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let workers = try (0..<3).map { _ in try Runtime.open(config: config) }
        defer { for w in workers { (w.meta as? PostgresStateStore)?.close() } }
        let settings = WorkerSettings(lease: .seconds(30), poll: .milliseconds(20))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, w) in workers.enumerated() {
                group.addTask {
                    let q = try #require(w.meta.workQueue)
                    let me = WorkerID("test-\(n)")
                    let deadline = Date().addingTimeInterval(120)
                    while Date() < deadline {
                        _ = try await w.coordinate(q, retryFailed: false)
                        while try await w.workOne(q, worker: me, settings: settings) != nil {}
                        let open = try await w.meta.requests(status: nil).filter { $0.status != .verified && $0.status != .failed }
                        if open.isEmpty, try await w.meta.pendingSteps().isEmpty { return }
                        try await Task.sleep(for: settings.poll)
                    }
                }
            }
            try await group.waitForAll()
        }
        for r in filed {
            let now = try await lethe.request(r.id)
            #expect(now.status == .verified, "\(now.status): \(now.failure ?? "")")
        }
        var kept = 0, gone = 0, expectedKept = 0
        for part in 0..<12 {
            let text = try String(contentsOfFile: dir + "/lake/raw/events/p\(part).jsonl", encoding: .utf8)
            for l in text.split(separator: "\n") {
                if forgotten.contains(where: { l.contains("\"\($0)\"") }) { gone += 1 } else { kept += 1 }
            }
            expectedKept += (0..<30).filter { !forgotten.contains(Self.user(part * 7 + $0)) }.count
        }
        #expect(gone == 0 && kept == expectedKept)
        let entries = try await lethe.meta.audit.entries()
        var rewrites: [Int64: Int] = [:]
        for e in entries where e.event == AuditEvent.objectRewritten.rawValue || e.event == AuditEvent.objectRemoved.rawValue {
            if case .object(let d) = try JSONValue.parse(Array(e.details.utf8)), case .int(let ref)? = d["object"] { rewrites[ref, default: 0] += 1 }
        }
        #expect(rewrites.count == 12 && rewrites.values.allSatisfy { $0 == 1 }, "\(rewrites)")
        let audit = try await lethe.checkAudit()
        #expect(audit.ok, "\(audit.reason ?? "")")
    }

    /// A step claimed again after its lease expired: the first holder's run of it commits nothing
    /// (the fence in `Lethe.commit` refuses, `.conflict`; no audit entry), the new holder's lands.
    @Test func aStepRunUnderALostLeaseCommitsNothing() async throws {
        let (dir, lethe, filed) = try await Self.oneApproved("fence", objects: 2)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let q = try #require(lethe.meta.workQueue)
        #expect(try await lethe.coordinate(q, retryFailed: false) != nil)
        let old = try #require(try await q.claim(WorkerID("w1"), ttl: .seconds(60)))
        #expect(old.step.kind == .object)
        #expect(try await q.renew(WorkerID("w1"), leases: [old], ttl: .zero).isEmpty)  // expires now
        var fresh: Lease?
        let deadline = Date().addingTimeInterval(20)
        while fresh?.step.ordinal != old.step.ordinal && Date() < deadline {
            if let l = fresh { try await q.release(l) }
            fresh = try await q.claim(WorkerID("w2"), ttl: .seconds(60))
        }
        let again = try #require(fresh)
        #expect(again.step.ordinal == old.step.ordinal && again.epoch == old.epoch + 1)
        let before = try await lethe.meta.audit.entries().count
        do {
            var r = RunReport()
            try await StepLease.$current.withValue(old) { try await Executor(lethe).executeClaimed(old, report: &r, events: nil) }
            Issue.record("a step under a lost lease committed")
        } catch let e as LetheError {
            #expect(e.code == .conflict, "\(e)")
        }
        #expect(try await lethe.meta.audit.entries().count == before)
        #expect(try await lethe.meta.steps(job: old.step.job).first { $0.ordinal == old.step.ordinal }?.state == .pending)
        var r = RunReport()
        try await StepLease.$current.withValue(again) { try await Executor(lethe).executeClaimed(again, report: &r, events: nil) }
        #expect(try await lethe.meta.steps(job: old.step.job).first { $0.ordinal == old.step.ordinal }?.state == .done)
    }

    /// A step whose holders died in it three times (a fourth claim) fails with the reason `run`
    /// gives, its requests fail at the job's end, and the audit records it once.
    @Test func aStepClaimedAFourthTimeFails() async throws {
        let (dir, lethe, filed) = try await Self.oneApproved("attempts", objects: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let q = try #require(lethe.meta.workQueue)
        #expect(try await lethe.coordinate(q, retryFailed: false) != nil)
        // Three holders die in the object step: each claim counts, each lease expires.
        for n in 1...3 {
            let l = try #require(try await q.claim(WorkerID("dead-\(n)"), ttl: .seconds(60)))
            #expect(l.step.kind == .object && l.step.attempts == n)
            _ = try await q.renew(WorkerID("dead-\(n)"), leases: [l], ttl: .zero)
            try await Task.sleep(for: .milliseconds(20))
        }
        var result: (result: StepResult, report: RunReport)?
        let deadline = Date().addingTimeInterval(20)
        while result == nil && Date() < deadline {
            result = try await lethe.workOne(q, worker: WorkerID("alive"), settings: WorkerSettings(lease: .seconds(60)))
        }
        #expect(result?.result == .finished)
        let steps = try await lethe.meta.steps(job: filed.isEmpty ? "" : (try await lethe.meta.pendingSteps()).first?.job ?? "")
        #expect(steps.contains { $0.kind == .object && $0.state == .failed && ($0.outcome ?? "").contains("started 3 times and never finished") })
        // The closing step fails the request with that reason.
        while try await lethe.workOne(q, worker: WorkerID("alive"), settings: WorkerSettings(lease: .seconds(60))) != nil {}
        let r = try await lethe.request(filed[0].id)
        #expect(r.status == .failed && (r.failure ?? "").contains("started 3 times"), "\(r.status) \(r.failure ?? "")")
    }

    /// A renewal after the claimed step's end committed finds the step no longer pending: the step's own
    /// doing, not a lost lease. The heartbeat stops there and the step's report (what it rewrote, the
    /// closing step's verdicts) is kept. Caught a heartbeat firing in that window (as under load) that
    /// threw the step's report away: `lethe run` on the queue counted its erasures and failures short.
    @Test func aRenewalAfterTheStepsEndKeepsTheStepsReport() async throws {
        let (dir, lethe, filed) = try await Self.oneApproved("renew-end", objects: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let q = RenewalWatchingQueue(try #require(lethe.meta.workQueue))
        #expect(try await lethe.coordinate(q, retryFailed: false) != nil)
        // A short lease (a renewal every 30 ms); the step, once its end has committed, waits until a
        // renewal has found its lease gone (and a little longer, for the heartbeat to act on it).
        let settings = WorkerSettings(lease: .milliseconds(90))
        let events: EngineEvents = { e in
            guard case .objectErased = e else { return }
            let deadline = Date().addingTimeInterval(20)
            while q.renewalsFindingNoLease == 0 && Date() < deadline { usleep(2_000) }
            usleep(200_000)
        }
        let object = try #require(try await lethe.workOne(q, worker: WorkerID("w"), settings: settings, events: events))
        #expect(q.renewalsFindingNoLease > 0)
        #expect(object.result == .finished && object.report.objectsRewritten == 1, "\(object.result) \(object.report.objectsRewritten)")
        let settle = try #require(try await lethe.workOne(q, worker: WorkerID("w"), settings: WorkerSettings(lease: .seconds(60))))
        #expect(settle.result == .finished && settle.report.erased == filed.map(\.id) && settle.report.verifications.count == 1)
        #expect(try await lethe.request(filed[0].id).status == .verified)
    }

    /// `serve.batch_max` on the shared queue (the scheduler sets `Lethe.runBatchMax` around `run`): one
    /// run plans one job of at most that many approved requests, oldest first, runs it to the end and
    /// leaves the rest approved; the scheduler's next runs take the next batches until all are verified.
    @Test func aRunOnTheQueueTakesAtMostBatchMaxRequests() async throws {
        let (dir, config) = try Self.lake("batchmax", objects: 4)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        #expect(lethe.meta.workQueue != nil)
        _ = try await lethe.index()
        var filed: [ErasureRequest] = []
        for i in 0..<5 { filed += try await lethe.forget([SubjectID(Self.user(i * 5))], reason: "erasure request", by: "alice") }
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        func statuses() async throws -> [RequestStatus] {
            var out: [RequestStatus] = []
            for r in filed { out.append(try await lethe.request(r.id).status) }
            return out
        }
        let first = try await Lethe.$runBatchMax.withValue(2) { try await lethe.run() }
        #expect(first.jobs.count == 1 && first.erased.count == 2)
        #expect(try await statuses() == [.verified, .verified, .approved, .approved, .approved])
        let second = try await Lethe.$runBatchMax.withValue(2) { try await lethe.run() }
        #expect(second.jobs.count == 1)
        #expect(try await statuses() == [.verified, .verified, .verified, .verified, .approved])
        _ = try await Lethe.$runBatchMax.withValue(2) { try await lethe.run() }
        #expect(try await statuses() == Array(repeating: .verified, count: 5))
        // Without a limit (`lethe run`), one run takes every approved request.
        let more = try await lethe.forget([SubjectID(Self.user(41)), SubjectID(Self.user(43)), SubjectID(Self.user(47))], reason: "r", by: "alice")
        _ = try await lethe.approve(more.map(\.id), by: "bob")
        let all = try await lethe.run()
        #expect(all.erased.count == 3)
        for r in more { #expect(try await lethe.request(r.id).status == .verified) }
    }

    /// A graceful stop on the shared queue (`Lethe.runStop`, as `lethe serve` on SIGTERM): the run
    /// ends after the step it claimed, the job's other steps stay on the queue and its requests
    /// `running`; the next run claims the rest and every request ends verified.
    @Test func aRunOnTheQueueAskedToStopEndsAfterItsStepAndTheNextRunFinishesTheJob() async throws {
        let (dir, config) = try Self.lake("stop", objects: 6)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        _ = try await lethe.index()
        // Users 1020-1022 are in several objects (a step each).
        let filed = try await lethe.forget((0..<3).map { SubjectID(Self.user($0 + 20)) }, reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let erased = Flag()
        let stopped = try await Lethe.$runStop.withValue(RunStop { erased.isSet }) {
            try await lethe.run(events: { e in
                if case .objectErased = e { erased.set() }
            })
        }
        #expect(stopped.stopped && stopped.jobs.count == 1)
        #expect(try await !lethe.meta.pendingSteps().isEmpty)
        for r in filed { #expect(try await lethe.request(r.id).status == .running) }
        let resumed = try await lethe.run()
        #expect(!resumed.stopped && resumed.failed.isEmpty)
        #expect(try await lethe.meta.pendingSteps().isEmpty)
        for r in filed { #expect(try await lethe.request(r.id).status == .verified) }
    }
}

/// A flag set from the engine's events and read by `Lethe.runStop`.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// A work queue that counts the renewals that found a lease no longer held (`WorkQueue.renew`'s lost leases).
final class RenewalWatchingQueue: WorkQueue {
    let base: any WorkQueue
    private let lost = Atomic<Int>(0)
    init(_ base: any WorkQueue) { self.base = base }
    var renewalsFindingNoLease: Int { lost.load(ordering: .relaxed) }
    func register(_ worker: WorkerID) async throws { try await base.register(worker) }
    func deregister(_ worker: WorkerID) async throws { try await base.deregister(worker) }
    func claim(_ worker: WorkerID, ttl: Duration) async throws -> Lease? { try await base.claim(worker, ttl: ttl) }
    func renew(_ worker: WorkerID, leases: [Lease], ttl: Duration) async throws -> [Lease] {
        let out = try await base.renew(worker, leases: leases, ttl: ttl)
        if !out.isEmpty { lost.add(1, ordering: .relaxed) }
        return out
    }
    func release(_ lease: Lease) async throws { try await base.release(lease) }
    func whileCoordinating<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T? {
        try await base.whileCoordinating(body)
    }
}
