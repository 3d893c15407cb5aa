import Foundation
import LetheCatalog
import LetheCore
@testable import LethePostgres
import LetheTestSupport
import LetheTesting
import Synchronization
import Testing

/// A value shared by concurrent tasks.
final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func withLock<R>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

/// The PostgreSQL work queue: claims, waves, leases, the fence, the coordinator lock.
@Suite("PostgreSQL work queue")
struct WorkQueueTests {
    static func key(_ n: Int) -> SubjectKey { SubjectKey(bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: 32)) }

    /// A job of `objects` object steps, `rebuilds` rebuild steps after them, and the closing step.
    static func job(_ name: String, objects: Int, rebuilds: Int) -> [JournalStep] {
        var steps: [JournalStep] = []
        for i in 0..<objects {
            steps.append(
                JournalStep(
                    job: name, ordinal: Int64(steps.count), dataset: "d", objectKey: "d/o-\(i).json", requestIDs: ["r-\(name)"],
                    subjectKeys: [key(i)]))
        }
        for i in 0..<rebuilds {
            steps.append(JournalStep(job: name, ordinal: Int64(steps.count), dataset: "g\(i)", objectKey: "", requestIDs: ["r-\(name)"], subjectKeys: []))
        }
        steps.append(JournalStep(job: name, ordinal: Int64(steps.count), dataset: "", objectKey: "", requestIDs: ["r-\(name)"], subjectKeys: []))
        return steps
    }

    /// Finishes a claimed step as the engine does: the fence, the step's end and an audit entry in one transaction.
    static func finish(_ store: PostgresStateStore, _ l: Lease) async throws {
        let job = l.step.job, ordinal = l.step.ordinal, owner = l.owner, epoch = l.epoch
        try await store.transaction("finish") { tx in
            try tx.journal.holdLease(job: job, ordinal: ordinal, owner: owner, epoch: epoch)
            try tx.finishStep(job: job, ordinal: ordinal, state: .done, outcome: nil)
            _ = try tx.audit.append(.objectRewritten, requestID: nil, actor: owner.raw, details: #"{"step":"\#(job)#\#(ordinal)"}"#, at: 1)
        }
    }

    /// 1,000 steps (20 jobs of 47 object steps, 2 rebuilds and a closing step), 8 claimers on two
    /// stores (two pools, as two processes): every step is claimed exactly once, and a step is
    /// claimed only when no step of its job in an earlier wave is pending.
    @Test func eightConcurrentClaimersClaimEveryStepOnceInWaveOrder() async throws {
        let (a, schema) = try freshStore("claims")
        let b = try PostgresStateStore(url: try PostgresServer.get().url(schema: schema))
        b.setAuditKey([UInt8](repeating: 0x42, count: 32))
        defer { a.close(); b.close() }
        let jobs = (0..<20).map { Self.job("j-\($0)", objects: 47, rebuilds: 2) }
        try await a.transaction("jobs") { tx in for j in jobs { try tx.createJob(j) } }
        let claims = Locked<[String: Int]>([:])
        let outOfOrder = Locked<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<8 {
                let store = w % 2 == 0 ? a : b
                group.addTask {
                    let me = WorkerID("test:\(w)")
                    let q = try #require(store.workQueue)
                    while true {
                        guard let l = try await q.claim(me, ttl: .seconds(60)) else {
                            if try await store.pendingSteps().isEmpty { return }
                            try await Task.sleep(for: .milliseconds(5))
                            continue
                        }
                        claims.withLock { $0["\(l.step.job)#\(l.step.ordinal)", default: 0] += 1 }
                        // Wave order: nothing of an earlier wave of this job is still pending.
                        let earlier = try await store.steps(job: l.step.job).filter { $0.wave < l.step.wave && $0.state == .pending }
                        if !earlier.isEmpty { outOfOrder.withLock { $0.append("\(l.step.job)#\(l.step.ordinal)") } }
                        try await Self.finish(store, l)
                    }
                }
            }
            try await group.waitForAll()
        }
        let counts = claims.withLock { $0 }
        #expect(counts.count == 1000)
        #expect(counts.values.allSatisfy { $0 == 1 }, "\(counts.filter { $0.value != 1 })")
        #expect(outOfOrder.withLock { $0 }.isEmpty)
        #expect(try await a.audit.entries().count == 1000)
        for j in jobs { #expect(try await a.steps(job: j[0].job).allSatisfy { $0.state == .done && $0.attempts == 1 }) }
    }

    /// A lease that expires is claimed again with the next epoch (attempts counted); the old holder's
    /// finish is refused by the fence (`.conflict`) and leaves no audit entry; the new holder's lands.
    @Test func anExpiredLeaseIsClaimedAgainAndTheOldHoldersFinishIsFenced() async throws {
        let (s, _) = try freshStore("expire")
        defer { s.close() }
        let q = try #require(s.workQueue)
        try await s.createJob(Self.job("j", objects: 1, rebuilds: 0))
        let first = try #require(try await q.claim(WorkerID("w1"), ttl: .seconds(60)))
        #expect(first.epoch == 1 && first.step.attempts == 1 && first.step.ordinal == 0)
        // While the lease holds: the object step is taken, the closing step waits for its wave.
        #expect(try await q.claim(WorkerID("w2"), ttl: .seconds(60)) == nil)
        // Expired (the database's clock: w1's last renewal asks for no time at all): claimed again by
        // w2, epoch and attempts up.
        #expect(try await q.renew(WorkerID("w1"), leases: [first], ttl: .zero).isEmpty)
        let deadline = Date().addingTimeInterval(20)
        var second: Lease?
        while second == nil && Date() < deadline {
            second = try await q.claim(WorkerID("w2"), ttl: .seconds(60))
            if second == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let again = try #require(second)
        #expect(again.step.ordinal == 0 && again.epoch == 2 && again.step.attempts == 2)
        // w1 renews: lost. w1 finishes: fenced, nothing lands.
        #expect(try await q.renew(WorkerID("w1"), leases: [first], ttl: .seconds(60)) == [first])
        do {
            try await Self.finish(s, first)
            Issue.record("a finish under a lost lease committed")
        } catch let e as LetheError {
            #expect(e.code == .conflict && e.description.contains("lease"), "\(e)")
        }
        #expect(try await s.audit.entries().isEmpty)
        #expect(try await s.steps(job: "j")[0].state == .pending)
        // w2's renewal holds, its finish lands; then the closing step is claimable.
        #expect(try await q.renew(WorkerID("w2"), leases: [again], ttl: .seconds(60)).isEmpty)
        try await Self.finish(s, again)
        #expect(try await s.audit.entries().count == 1)
        let settle = try #require(try await q.claim(WorkerID("w1"), ttl: .seconds(60)))
        #expect(settle.step.kind == .settle && settle.epoch == 1)
    }

    /// A released step is claimable at once and its claim is not counted; a step claimed four times
    /// (three leases lost) says so in its attempts, which the engine fails it by.
    @Test func releaseGivesAStepBackAndAttemptsCountEveryClaim() async throws {
        let (s, _) = try freshStore("release")
        defer { s.close() }
        let q = try #require(s.workQueue)
        try await s.createJob(Self.job("j", objects: 1, rebuilds: 0))
        let l = try #require(try await q.claim(WorkerID("w1"), ttl: .seconds(60)))
        try await q.release(l)
        let l2 = try #require(try await q.claim(WorkerID("w2"), ttl: .seconds(60)))
        #expect(l2.step.ordinal == 0 && l2.step.attempts == 1 && l2.epoch == 2)
        // Releasing a lease no longer held changes nothing.
        try await q.release(l)
        #expect(try await q.claim(WorkerID("w3"), ttl: .seconds(60)) == nil)
        var last = l2
        for n in 2...4 {
            try await q.release(last)  // stands for an expiry, without the wait: counted back below
            try await s.transaction("count") { tx in _ = try tx.beginStep(job: "j", ordinal: 0) }
            last = try #require(try await q.claim(WorkerID("w\(n)"), ttl: .seconds(60)))
            #expect(last.step.attempts == n)
        }
        #expect(last.step.attempts > 3)
    }

    /// One coordinator at a time: while one holds the lock another gets nil; after, it gets it.
    @Test func theCoordinatorLockAdmitsOneHolder() async throws {
        let (s, _) = try freshStore("coordinator")
        defer { s.close() }
        let q = try #require(s.workQueue)
        let inner = try await q.whileCoordinating { () -> Int? in
            try await q.whileCoordinating { 1 }
        }
        #expect(inner == .some(nil))
        #expect(try await q.whileCoordinating { 2 } == 2)
    }
}
