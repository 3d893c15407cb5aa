import Foundation
import LetheCore
import LetheStorage
public import ServiceLifecycle
public import LetheCatalog
public import LetheEngine

/// `lethe worker`: claims steps of approved jobs from a shared PostgreSQL state and executes them,
/// until the service group shuts down. Between steps it makes a coordinator pass when no other
/// process holds the coordinator lock (planning approved requests into jobs, taking back what dead
/// workers left). A graceful shutdown (SIGTERM, SIGINT) stops claiming and lets the step under way
/// finish; a step cut short by cancellation (the group's grace period ran out) is given back to the
/// queue. A killed worker loses nothing: its lease expires and another worker runs the step again.
public struct WorkerService: Service {
    let lethe: Lethe
    let queue: any WorkQueue
    public let worker: WorkerID
    let settings: WorkerSettings
    let events: EngineEvents?
    let onStep: @Sendable (StepResult, RunReport) -> Void
    /// Called after each index item claimed (`lethe index --distribute`), with what it did.
    public var onIndexItem: @Sendable (StepResult, IndexReport) -> Void = { _, _ in }

    /// This process as the queue names it (`host:pid:startMillis`).
    public static var thisProcess: String { WorkerID.current.raw }

    /// A worker for this process on the lake's state (`.badUsage` when the state has no work queue:
    /// workers need a shared PostgreSQL state).
    public init(
        lethe: Lethe, settings: WorkerSettings, events: EngineEvents? = nil,
        onStep: @escaping @Sendable (StepResult, RunReport) -> Void = { _, _ in }
    ) throws {
        guard let queue = lethe.meta.workQueue else {
            throw LetheError(.badUsage, "lethe worker needs a shared PostgreSQL state (`state: postgres://…`) in \(lethe.config.file)")
        }
        self.init(lethe: lethe, queue: queue, worker: .current, settings: settings, events: events, onStep: onStep)
    }

    /// - Parameters:
    ///   - onStep: called after each claim with what came of it and what the step did.
    public init(
        lethe: Lethe, queue: any WorkQueue, worker: WorkerID = .current, settings: WorkerSettings,
        events: EngineEvents? = nil, onStep: @escaping @Sendable (StepResult, RunReport) -> Void = { _, _ in }
    ) {
        self.lethe = lethe; self.queue = queue; self.worker = worker; self.settings = settings
        self.events = events; self.onStep = onStep
    }

    public func run() async throws {
        try await queue.register(worker)
        let clock = ContinuousClock()
        var lastRetry: ContinuousClock.Instant?
        var lastPass: ContinuousClock.Instant?
        var keptMemory = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if lastPass.map({ clock.now - $0 >= settings.coordinateEvery }) ?? true {
                let retry = lastRetry.map { clock.now - $0 >= settings.retryEvery } ?? true
                // Made here or by another worker (it holds the lock): either way not again for a while.
                if try await lethe.coordinate(queue, retryFailed: retry, events: events) != nil, retry { lastRetry = clock.now }
                lastPass = clock.now
            }
            var worked = false
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                guard let (result, report) = try await lethe.workOne(queue, worker: worker, settings: settings, events: events) else { break }
                worked = true
                keptMemory = true
                onStep(result, report)
            }
            // Index backfill items when no erasure step is claimable (erasure first), one at a time.
            if !worked && !Task.isShuttingDownGracefully && !Task.isCancelled,
                let (result, report) = try await lethe.workOneIndexItem(queue, worker: worker, settings: settings)
            {
                worked = true
                onIndexItem(result, report)
            }
            if !worked {
                // Idle after work: what the steps kept for reuse goes back to the system (see ProcessMemory).
                if keptMemory {
                    ProcessMemory.giveBack()
                    keptMemory = false
                }
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: settings.poll) }
                } catch is CancellationError {
                    break
                }
            }
        }
        try? await queue.deregister(worker)
    }
}
