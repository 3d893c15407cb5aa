import Foundation
import LetheCore
import Logging
public import LetheCatalog

/// How a worker paces itself (`lethe worker`, and `lethe run` on a state with a work queue).
public struct WorkerSettings: Sendable {
    /// How long a claim holds a step without renewal (renewed every third of it while the step runs).
    public var lease: Duration
    /// How long an idle worker waits before looking for work again.
    public var poll: Duration
    /// How often a worker retries failed requests (`lethe run` retries them once, at its start).
    public var retryEvery: Duration
    /// The least time between two coordinator passes of one worker (a pass reads the open requests:
    /// idle workers polling it would slow the one verifying).
    public var coordinateEvery: Duration
    public init(
        lease: Duration = .seconds(30), poll: Duration = .seconds(1), retryEvery: Duration = .seconds(600),
        coordinateEvery: Duration = .seconds(5)
    ) {
        self.lease = lease; self.poll = poll; self.retryEvery = retryEvery; self.coordinateEvery = coordinateEvery
    }
    /// From the environment: `LETHE_WORKER_LEASE_MS`, `LETHE_WORKER_POLL_MS` (tests and e2e shorten them).
    public static func fromEnvironment(_ environment: [String: String]? = nil) -> WorkerSettings {
        let env = environment ?? ProcessInfo.processInfo.environment
        var s = WorkerSettings()
        if let ms = env["LETHE_WORKER_LEASE_MS"].flatMap(Int.init), ms > 0 { s.lease = .milliseconds(ms) }
        if let ms = env["LETHE_WORKER_POLL_MS"].flatMap(Int.init), ms > 0 { s.poll = .milliseconds(ms) }
        return s
    }
}

/// What a worker did with one claim.
public enum StepResult: Sendable, Equatable {
    /// The step ran and its end was recorded.
    case finished
    /// The lease was lost while the step ran (another worker holds the step): nothing was recorded.
    case leaseLost
    /// The step was given back unfinished (shutdown).
    case released
}

extension WorkerID {
    /// This process: `host:pid:startMillis`.
    public static let current = WorkerID(
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(Int64(Date().timeIntervalSince1970 * 1000))")
}

/// Test hook: `LETHE_FAILPOINT_SLOW_STEP_MS=N` makes every claimed object step (and object index item)
/// wait N ms before it runs (widens the window in which the e2e kills a worker mid-step).
enum SlowStepFailpoint {
    static let ms: Int? = ProcessInfo.processInfo.environment["LETHE_FAILPOINT_SLOW_STEP_MS"].flatMap(Int.init)
}

/// The lease was lost while a step ran.
struct LeaseLost: Error {}

extension Lethe {
    /// One coordinator pass (when no other process holds the coordinator lock; false then): what dead
    /// workers left (temporary files, requests stranded without a job, verifications cut short),
    /// retries of failed requests when `retryFailed`, propagation, then a job for every approved
    /// request, planned and journaled with its claim in one transaction (`JobPlanner`: its steps are
    /// then claimed by workers, wave by wave). Steps of journaled jobs are not executed here.
    /// Returns the pass's report (requests taken back, temporaries removed, the job planned), or nil.
    public func coordinate(_ queue: any WorkQueue, retryFailed: Bool, events: EngineEvents? = nil) async throws -> RunReport? {
        return try await durably {
            try await destroyExpiredRawIDs()
            return try await queue.whileCoordinating { [self] () -> RunReport in
                var r = RunReport()
                try await Executor(self).coordinatorPass(retryFailed: retryFailed, report: &r, events: events)
                return r
            }
        }
    }

    /// Claims one step and executes it under its lease (renewed while it runs; a lost lease cancels
    /// it, and its commit is fenced). nil when no step was claimable.
    /// Returns what came of the claim and what the step did.
    public func workOne(
        _ queue: any WorkQueue, worker: WorkerID, settings: WorkerSettings, events: EngineEvents? = nil
    ) async throws -> (result: StepResult, report: RunReport)? {
        return try await durably {
            var report = RunReport()
            guard let r = try await workOne(queue, worker: worker, settings: settings, report: &report, events: events) else { return nil }
            return (r, report)
        }
    }

    func workOne(
        _ queue: any WorkQueue, worker: WorkerID, settings: WorkerSettings, report: inout RunReport, events: EngineEvents?
    ) async throws -> StepResult? {
        guard let lease = try await queue.claim(worker, ttl: settings.lease) else { return nil }
        let executor = Executor(self)
        let ttl = settings.lease
        let ended = StepEnded()
        do {
            let stepReport = try await withThrowingTaskGroup(of: RunReport?.self) { group -> RunReport in
                group.addTask {
                    var r = RunReport()
                    try await StepLease.$current.withValue(lease) {
                        try await StepLease.$ended.withValue(ended) {
                            try await executor.executeClaimed(lease, report: &r, events: events)
                        }
                    }
                    return r
                }
                group.addTask {
                    // The heartbeat: renews every third of the lease; a lost lease ends the step. Once
                    // the step's end has committed the step is no longer pending and a renewal finds no
                    // lease to renew: the heartbeat stops there and the step finishes (its report kept).
                    while true {
                        try await Task.sleep(for: ttl / 3)
                        if try await !queue.renew(worker, leases: [lease], ttl: ttl).isEmpty {
                            if try await ended.hasEnded() { return nil }
                            throw LeaseLost()
                        }
                    }
                }
                defer { group.cancelAll() }
                while let r = try await group.next() {
                    if let r { return r }
                }
                throw LeaseLost()
            }
            report.absorb(stepReport)
            return .finished
        } catch is LeaseLost {
            logger.warning("lease lost: another worker holds the step", metadata: ["step": "\(lease.step.job)#\(lease.step.ordinal)"])
            return .leaseLost
        } catch let e as LetheError where e.code == .conflict && e.message.contains("lease") {
            return .leaseLost
        } catch is CancellationError {
            // Shutdown: the step goes back to the queue (an object written already is found rewritten by the next holder).
            try? await queue.release(lease)
            return .released
        } catch {
            // Whatever the step met after its lease was lost (e.g. a request another holder settled) is
            // not this worker's to report; any other error (the state unreachable) ends the worker.
            if (try? await ended.hasEnded()) != true, let lost = try? await queue.renew(worker, leases: [lease], ttl: ttl), lost == [lease] {
                logger.warning("lease lost: another worker holds the step", metadata: ["step": "\(lease.step.job)#\(lease.step.ordinal)"])
                return .leaseLost
            }
            throw error
        }
    }

    /// `lethe run` on a state with a work queue: the coordinator pass (failed requests retried once),
    /// then claims steps and executes them — cooperating with any `lethe worker` on the same state —
    /// until no step is pending and no request is approved. With `runBatchMax` (`serve.batch_max`) it
    /// plans one job of at most that many requests (oldest first) and ends when no step is pending:
    /// the rest stay approved for the next run. `runStop` ends it between claimed steps.
    func runOnQueue(_ queue: any WorkQueue, events: EngineEvents?) async throws -> RunReport {
        var report = RunReport()
        try meta.checkIntact()
        let lock = try await acquireRunLock(events: events)
        defer { lock?.release() }
        let me = WorkerID.current
        let settings = WorkerSettings.fromEnvironment()
        try await queue.register(me)
        var first = true
        let clock = ContinuousClock()
        var lastPass: ContinuousClock.Instant?
        while true {
            try Task.checkCancellation()
            // With `runBatchMax`, no second job in this run (a later pass would plan the next batch).
            let oneJobDone = Lethe.runBatchMax != nil && !report.jobs.isEmpty
            if !oneJobDone, lastPass.map({ clock.now - $0 >= settings.coordinateEvery }) ?? true {
                if let pass = try await coordinate(queue, retryFailed: first, events: events) {
                    report.absorb(pass)
                    first = false
                    lastPass = clock.now
                }
            }
            var worked = false
            // A stop (`runStop`) between claimed steps: what is left stays on the queue for the next run or other workers.
            if Lethe.stopRequested {
                report.stopped = true
                break
            }
            while try await workOne(queue, worker: me, settings: settings, report: &report, events: events) != nil {
                worked = true
                if Lethe.stopRequested { break }
            }
            // With `runBatchMax` (the scheduler's `batch_max`) one job a run: the scheduler runs again while more are approved.
            if try await meta.pendingSteps().isEmpty, !first, try await meta.requests(status: .approved).isEmpty || oneJobDone {
                break
            }
            if !worked { try await Task.sleep(for: .milliseconds(200)) }
        }
        try? await queue.deregister(me)
        try meta.checkIntact()
        return report
    }
}

extension Executor {
    /// The coordinator's share of `run`: everything but executing the steps (see `Lethe.coordinate`).
    func coordinatorPass(retryFailed: Bool, report: inout RunReport, events: EngineEvents?) async throws {
        try state.checkIntact()
        let failedBefore = retryFailed ? Set(try await state.requests(status: .failed).map(\.id)) : []
        report.temporariesRemoved += try await lake.removeLeftTemporaries(keepingOwn: true)
        try await recover(report: &report, events: events)
        for r in try await state.requests(status: .failed) where failedBefore.contains(r.id) {
            try await lake.transition(r, .retry(at: now()), audit: .retry, actor: "lethe", ["attempts": .int(Int64(r.attempts))])
        }
        let propagation = try await propagateScoped(report: &report, events: events)
        report.propagation.sources += propagation.sources
        var approved = try await state.requests(status: .approved)
        if let most = Lethe.runBatchMax, approved.count > most { approved = Array(approved.prefix(max(1, most))) }  // `serve.batch_max`
        guard !approved.isEmpty else { return }
        let (job, jobPlan, planned) = try await planJob(approved, report: &report)
        let claimed = try await claimJob(job, jobPlan, planned: planned)
        guard !claimed.isEmpty else { return }
        report.jobs.append(job)
        events?(.jobPlanned(job: job, requests: claimed.count, steps: jobPlan.steps.count - 1))
    }

    /// Executes one claimed step (its lease is `StepLease.current`, so its commit is fenced). A step
    /// claimed more than `maxStepAttempts` times (its holders died in it) fails with today's reason.
    func executeClaimed(_ lease: Lease, report: inout RunReport, events: EngineEvents?) async throws {
        let step = lease.step, job = step.job
        try state.checkIntact()
        let interrupted = step.attempts > Lethe.maxStepAttempts ? step.attempts - 1 : nil
        do {
            try await runStep(job: job, step: step, interrupted: interrupted, report: &report, events: events)
        } catch let e as StepNotRecorded {
            throw e.error
        }
    }
}

extension RunReport {
    /// Adds what another part of the same run did (a step, a coordinator pass).
    mutating func absorb(_ o: RunReport) {
        jobs += o.jobs.filter { !jobs.contains($0) }
        objectsRewritten += o.objectsRewritten
        objectsRemoved += o.objectsRemoved
        if let n = o.noncurrentVersionsExamined { noncurrentVersionsExamined = (noncurrentVersionsExamined ?? 0) + n }
        if let n = o.noncurrentVersionsDeleted { noncurrentVersionsDeleted = (noncurrentVersionsDeleted ?? 0) + n }
        rowsDropped += o.rowsDropped
        rowsMasked += o.rowsMasked
        rowsBlanked += o.rowsBlanked
        rebuilds += o.rebuilds
        erased += o.erased
        verifications += o.verifications
        failed += o.failed
        propagation.sources += o.propagation.sources
        datasetIssues += o.datasetIssues
        requeued += o.requeued
        temporariesRemoved += o.temporariesRemoved
        problems += o.problems
    }
}
