import Foundation
import LetheCatalog
import LetheCore
public import LetheEngine
public import Logging
public import ServiceLifecycle
import Synchronization

/// Wakes the scheduler (an approval through the API): with `run_every: 0` approved requests run at once.
public final class RunTrigger: Sendable {
    private let woken = Mutex(false)

    public init() {}

    public func wake() { woken.withLock { $0 = true } }

    /// Whether `wake` was called since the last call (and forgets it).
    func consume() -> Bool {
        woken.withLock { w in
            defer { w = false }; return w
        }
    }
}

/// Runs approved requests in batches of at most `batchMax`, every `every` seconds (with `every == 0`:
/// as soon as they are approved, checking every `poll` seconds for approvals made through the CLI).
///
/// Never two runs at once, with the CLI either: the engine's run takes the state's run lock. A graceful
/// shutdown (SIGTERM, SIGINT) cuts the wait short and stops a run under way after the step it is in
/// (each step is journaled: the next start resumes the job, as it resumes a run killed outright). A run that throws (the lake or the
/// state did not answer) is logged and retried at the next tick; the service keeps going.
public struct SchedulerService: Service {
    let lethe: Lethe
    let every: Double
    let batchMax: Int
    let poll: Double
    let trigger: RunTrigger
    let metrics: ServerMetrics?
    let logger: Logger
    let onRun: @Sendable (RunReport) -> Void

    public init(
        lethe: Lethe, every: Double, batchMax: Int, poll: Double = 2, trigger: RunTrigger, metrics: ServerMetrics? = nil,
        logger: Logger, onRun: @escaping @Sendable (RunReport) -> Void = { _ in }
    ) {
        self.lethe = lethe; self.every = every; self.batchMax = batchMax; self.poll = poll; self.trigger = trigger
        self.metrics = metrics; self.logger = logger; self.onRun = onRun
    }

    public func run() async throws {
        // At start: a run at once, so that a run a stop interrupted is resumed.
        var first = true
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var due = first || every > 0
            if !due { due = (try? await hasApproved()) == true }
            if due {
                first = false
                await runBatches()
            }
            if Task.isShuttingDownGracefully { return }
            do {
                try await cancelWhenGracefulShutdown { try await wait() }
            } catch is CancellationError {
                return
            }
        }
    }

    /// Until the next tick: `every` seconds, or with `every == 0` an approval or `poll` seconds.
    func wait() async throws {
        if every > 0 { return try await Task.sleep(nanoseconds: UInt64(every * 1e9)) }
        let slice: UInt64 = 50_000_000
        var left = UInt64(poll * 1e9)
        while left > 0 && !trigger.consume() {
            try await Task.sleep(nanoseconds: min(slice, left))
            left -= min(slice, left)
        }
    }

    func hasApproved() async throws -> Bool {
        !(try await lethe.requestPage(status: .approved, after: nil, limit: 1).items.isEmpty)
    }

    /// Runs until no approved request is left (each run at most `batchMax` requests) or a shutdown begins.
    func runBatches() async {
        repeat {
            do {
                // A graceful shutdown stops the run between two steps: the step under way finishes and is
                // journaled, the rest is resumed by the next start (or `lethe run`).
                let most: Int? = batchMax
                let stop = RunStop { Task.isShuttingDownGracefully }
                let report = try await Lethe.$runBatchMax.withValue(most) {
                    try await Lethe.$runStop.withValue(stop) { try await lethe.run() }
                }
                metrics?.record(run: report)
                onRun(report)
                if !report.jobs.isEmpty {
                    logger.info(
                        "run: \(report.erased.count) erased, \(report.verifications.filter(\.clean).count) verified, \(report.failed.count) failed")
                }
                if report.stopped {
                    logger.notice("run stopped for the shutdown after a step: the next start resumes its job")
                    return
                }
                guard !report.jobs.isEmpty, try await hasApproved() else { return }
            } catch {
                metrics?.recordRunError()
                logger.error("scheduled run failed: \(error)")
                return
            }
        } while !Task.isShuttingDownGracefully && !Task.isCancelled
    }
}
