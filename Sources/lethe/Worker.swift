import ArgumentParser
import Foundation
import Synchronization
import ServiceLifecycle
import LetheCore
import LetheEngine
import LetheRuntime
import UnixSignals

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Claim and run steps of approved jobs from a shared PostgreSQL state, until SIGTERM.",
        discussion: """
            Run one `lethe worker` per machine (or several) against the same lethe.yaml: the state must be \
            `state: postgres://…` (with `keys: DIR`, the same key files on every machine); the lake an S3 bucket, \
            or a local folder (then run the workers on that one machine: temporary files are judged by process id).

            Each worker, between steps and at most every 5 seconds, makes a coordinator pass when no other process is making one \
            (a PostgreSQL advisory lock): it takes back what dead workers left, retries failed requests \
            (every 10 minutes), and plans every approved request into a job. Then it claims one step at a \
            time (`FOR UPDATE SKIP LOCKED`): object rewrites and Delta table erasures run on many workers \
            at once, rebuilds after them in lineage order, and the job's closing step (verification) last.

            A claim is a lease (--lease seconds, renewed every third of it while the step runs). A worker \
            killed mid-step loses nothing: its lease expires and another worker runs the step again (steps \
            are idempotent; the first worker's late commit is refused). A step whose holders died three \
            times fails its requests, as in `lethe run`.

            SIGTERM or SIGINT: stop claiming, finish the step under way (at most --grace seconds, then it \
            is given back to the queue), exit 0. Progress goes to stderr, one line per step, with the worker id.

            Examples:
              lethe worker --config /etc/lethe/lethe.yaml
              lethe worker --lease 10 --poll 0.5      short leases: a dead worker's step is redone sooner
            `lethe run` still works alone (and on PostgreSQL cooperates with running workers).
            """
    )
    @OptionGroup var global: Global
    @Option(help: "Seconds a claimed step stays leased without renewal.") var lease: Double = 30
    @Option(help: "Seconds an idle worker waits before looking for work again.") var poll: Double = 1
    @Option(help: "Seconds the step under way may take to finish after SIGTERM before it is given back.") var grace: Double = 20

    func validate() throws {
        guard lease >= 0.5, poll > 0, grace >= 0 else {
            throw ValidationError("--lease must be at least 0.5 seconds, --poll above 0, --grace 0 or more")
        }
    }

    func run() async throws {
        try await guarded {
            let config = try LakeConfig.load(path: global.config)
            guard case .postgres = config.state else {
                throw LetheError(
                    .badUsage,
                    "lethe worker needs a shared PostgreSQL state (`state: postgres://…`): \(config.file) names a state folder; use `lethe run`")
            }
            let lethe = try Runtime.open(config: config)
            let me = WorkerService.thisProcess
            let settings = WorkerSettings(lease: .milliseconds(Int64(lease * 1000)), poll: .milliseconds(Int64(poll * 1000)))
            let json = global.json
            let steps = Counter()
            err("worker \(me): started (lease \(lease)s)")
            var service = try WorkerService(
                lethe: lethe, settings: settings,
                events: { e in if !json { err("worker \(me): \(e.message)") } },
                onStep: { result, report in
                    steps.add(result)
                    if result != .finished { err("worker \(me): step \(result == .leaseLost ? "lost its lease (another worker redoes it)" : "given back")") }
                    for f in report.failed { err("worker \(me): \(f.id) failed: \(f.reason)") }
                    for v in report.verifications { err("worker \(me): \(v.id) \(v.clean ? "verified" : "NOT clean: \(v.summary)")") }
                })
            service.onIndexItem = { result, report in
                steps.add(result)
                if result != .finished { err("worker \(me): index item \(result == .leaseLost ? "lost its lease (another worker redoes it)" : "given back")") }
                if !json && result == .finished {
                    err(
                        "worker \(me): index item: \(report.objectsScanned) object(s) indexed, \(report.records) records, \(report.quarantined.count) quarantined"
                    )
                }
            }
            let group = ServiceGroup(
                configuration: {
                    var c = ServiceGroupConfiguration(
                        services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                        gracefulShutdownSignals: [.sigterm, .sigint], logger: Lethe.defaultLogger())
                    c.maximumGracefulShutdownDuration = .milliseconds(Int64(grace * 1000))
                    return c
                }())
            try await group.run()
            let (finished, lost, released) = steps.counts
            if json {
                out(#"{"worker":"\#(me)","steps":\#(finished),"leases_lost":\#(lost),"released":\#(released)}"#)
            } else {
                out("worker \(me): stopped after \(finished) step(s) (\(lost) lease(s) lost, \(released) given back)")
            }
            return 0
        }
    }
}

/// Counts a worker's claims by outcome.
final class Counter: Sendable {
    private let box = Mutex<(Int, Int, Int)>((0, 0, 0))
    func add(_ r: StepResult) {
        box.withLock {
            switch r {
            case .finished: $0.0 += 1
            case .leaseLost: $0.1 += 1
            case .released: $0.2 += 1
            }
        }
    }
    var counts: (Int, Int, Int) { box.withLock { $0 } }
}
