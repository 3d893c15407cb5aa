import Foundation
import Synchronization
import Crypto
import Logging
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import Logging

/// A step's end (and its audit entries) could not be committed: `execute` stops the run with
/// `error` instead of recording the step as failed.
struct StepNotRecorded: Error {
    var error: any Error
}

/// Test hooks: `LETHE_FAILPOINT_EXIT_AFTER_WRITES=N` ends the process abruptly right
/// after the N-th object write commits, before the journal records it;
/// `LETHE_FAILPOINT_EXIT_IN_VERIFY=1` ends it when verification starts.
enum Failpoint {
    static let limit: Int? = ProcessInfo.processInfo.environment["LETHE_FAILPOINT_EXIT_AFTER_WRITES"].flatMap(Int.init)
    static let inVerify = ProcessInfo.processInfo.environment["LETHE_FAILPOINT_EXIT_IN_VERIFY"] == "1"
    static let writes = Atomic<Int>(0)
    static func objectWritten() {
        guard let limit else { return }
        if writes.add(1, ordering: .relaxed).newValue >= limit { _exit(86) }
    }
    static func verifying() {
        if inVerify { _exit(86) }
    }
}

extension Lethe {
    /// The object key of a journal step standing for a dataset that could not be indexed.
    static let issueStepKey = JournalStep.datasetIssueKey
    /// A step started this many times without finishing (the process died in it each time) fails.
    static let maxStepAttempts = 3
    /// Object steps a run executes at a time (their reads, fsyncs and renames overlap).
    static let objectStepsInFlight = 4

    /// Executes approved requests: removes the temporary files of killed runs, resumes any
    /// unfinished job, takes back requests a dead run claimed without a job and verifies
    /// requests whose verification was cut short, retries failed requests, then erases every
    /// approved subject in one batched pass (one rewrite per object for all the subjects it
    /// holds), dataset by dataset in lineage order, runs rebuilds, and verifies.
    public func run(events: EngineEvents? = nil) async throws -> RunReport {
        return try await durably {
            forgetDeltaSnapshots()  // Delta snapshots are reused within one operation only
            try await destroyExpiredRawIDs()  // every writing entry point first (sweep.raw_id_days)
            // A state shared by many workers: the job's steps are claimed from its queue (with any
            // `lethe worker` running), wave by wave, instead of run in order here.
            if let queue = meta.workQueue {
                // Crypto-shredding first: the approved subjects' data keys go before any step is queued.
                try await shredKeys(try await meta.requests(status: .approved))
                return try await runOnQueue(queue, events: events)
            }
            return try await Executor(self).run(events: events)
        }
    }

    /// Records a step as failed (see `Executor.failStep`).
    func failStep(job: String, step: JournalStep, reason: String, events: EngineEvents?) async throws {
        try await Executor(self).failStep(job: job, step: step, reason: reason, events: events)
    }

    /// Erases the subjects of an object step from its object (see `Executor.rewrite`).
    func rewrite(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?) async throws {
        try await Executor(self).rewrite(job: job, step: step, report: &report, events: events)
    }
}

/// Executes approved requests (see `Lethe.run`): what killed runs left first, then one job per run,
/// its steps journaled with the claim and each step's end committed with its audit entries.
struct Executor: Sendable {
    let config: LakeConfig
    let store: any ObjectStore
    let state: any StateStore
    let logger: Logger
    let now: @Sendable () -> Int64
    /// The state folder (for the run lock); nil for a remote state store.
    let stateFolder: String?
    /// The engine the executor indexes, plans, verifies and moves requests through, and drivers run steps with.
    let lake: Lethe

    init(_ lake: Lethe) {
        config = lake.config; store = lake.store; state = lake.meta; logger = lake.logger; now = lake.now
        stateFolder = lake.stateFolder; self.lake = lake
    }

    /// `Lethe.run`: recovery and retries, propagation, then one job for every approved request.
    func run(events: EngineEvents?) async throws -> RunReport {
        var report = RunReport()
        try state.checkIntact()
        // One run at a time per state: a second one would resume this one's live job as if it were interrupted.
        let lock = try await lake.acquireRunLock(events: events)
        defer { lock?.release() }
        // Crypto-shredding first, before recovery, indexing and planning: the data keys of every approved
        // subject are destroyed seconds after approval, whatever the lake's size (docs/crypto-shredding.md).
        var shredded = Set(try await lake.shredKeys(try await state.requests(status: .approved)))
        // 0-3. What killed runs left: temporary files, unfinished jobs, stranded requests; then retries.
        try await Trace.span("run: recover and retry") { try await recoverAndRetry(report: &report, events: events) }
        if stopping(&report) { return report }
        // 4. Subjects other tools deleted from `deletes_from: change_feed` tables become approved requests.
        report.propagation = try await propagateScoped(report: &report, events: events)
        // 5. A new job for every approved request.
        var approved = try await state.requests(status: .approved)
        if let most = Lethe.runBatchMax, approved.count > most { approved = Array(approved.prefix(max(1, most))) }  // `serve.batch_max`
        guard !approved.isEmpty else {
            try state.checkIntact()
            return report
        }
        // Requests propagation approved just now: their keys too, before the job.
        shredded.formUnion(try await lake.shredKeys(approved))
        report.keysDestroyed = shredded.count
        let destroyed = shredded
        var byKey: [SubjectKey: [Posting]] = [:]
        let (job, jobPlan, planned) = try await Trace.span("run: plan \(approved.count) requests") {
            try await planJob(approved, destroyed: destroyed, report: &report, postings: &byKey)
        }
        // What the plan kept for this run's job (`PlanMemo`, `PlannedPostings`) goes when the run ends.
        defer { lake.forgetRunMemos() }
        if stopping(&report) { return report }  // nothing claimed yet: the requests stay approved
        let claimed = try await Trace.span("run: claim") { try await claimJob(job, jobPlan, planned: planned, beginFirst: true) }
        guard !claimed.isEmpty else {
            try state.checkIntact()
            return report
        }
        events?(.jobPlanned(job: job, requests: claimed.count, steps: jobPlan.steps.count - 1))
        // The plan's postings, for the job's first step (ordinal 0, see `JobPlan.claimed`), run next
        // with no index write between (`PlannedPostings`).
        lake.plannedPostings.keep(job: job, ordinal: 0, byKey)
        // This run verifies the job it executes: its Delta steps may read ahead for it (`ReadAhead`).
        lake.readAhead.allow(job: job)
        try await execute(job: job, begun: true, report: &report, events: events)
        try state.checkIntact()
        return report
    }

    /// The start of a run: removes the temporary files of killed runs, resumes unfinished jobs, takes
    /// back or verifies requests a dead run stranded, and retries the requests that had failed
    /// before this run (one that fails in it waits for the next).
    func recoverAndRetry(report: inout RunReport, events: EngineEvents?) async throws {
        // Requests that failed before this run are retried below; one that fails in it waits for the next.
        let failedBefore = Set(try await state.requests(status: .failed).map(\.id))
        // 0. Temporary files that a killed run left (each journaled before it was created).
        report.temporariesRemoved = try await lake.removeLeftTemporaries()
        if report.temporariesRemoved > 0 { events?(.temporariesRemoved(count: report.temporariesRemoved)) }
        // 1. Unfinished jobs (a crash or kill mid-run).
        let pending = try await state.pendingSteps()
        for job in Self.orderedUnique(pending.map(\.job)) {
            if stopping(&report) { return }
            events?(.resumingJob(job: job))
            try await execute(job: job, report: &report, events: events)
        }
        if stopping(&report) { return }
        // 2. Requests left `running` without a job, or `erased` without their verification. With no job
        // pending above, no request is held by one: nothing to read again (the take-back re-reads it in its
        // transaction).
        try await recover(report: &report, events: events, live: pending.isEmpty ? [] : nil)
        // 3. Requests that had failed before this run are retried.
        for r in try await state.requests(status: .failed) where failedBefore.contains(r.id) {
            try await lake.transition(r, .retry(at: now()), audit: .retry, actor: "lethe", ["attempts": .int(Int64(r.attempts))])
        }
    }

    /// Plans a job for the approved requests: brings the index up to date so the plan sees objects
    /// written since (a dataset that cannot be indexed is recorded and fails the requests that reach
    /// it), re-plans each request, and lays out the job's steps (`JobPlanner`).
    func planJob(_ approved: [ErasureRequest], destroyed: Set<SubjectKey> = [], report: inout RunReport) async throws -> (
        job: String, plan: JobPlan, planned: [(String, [UInt8])]
    ) {
        var postings: [SubjectKey: [Posting]] = [:]
        let out = try await planJob(approved, destroyed: destroyed, report: &report, postings: &postings)
        lake.planMemo.clear()  // a job planned for the queue: its verification is not this call's
        return out
    }

    /// `planJob`, giving the requests' index entries by subject key as the plans read them (`postings`).
    func planJob(
        _ approved: [ErasureRequest], destroyed: Set<SubjectKey> = [], report: inout RunReport, postings byKeyOut: inout [SubjectKey: [Posting]]
    ) async throws -> (
        job: String, plan: JobPlan, planned: [(String, [UInt8])]
    ) {
        let indexed = try await Trace.span("plan: index refresh") { try await lake.index() }
        report.datasetIssues = indexed.datasetIssues
        let cov = try await Trace.span("plan: coverage") { try await lake.coverage() }
        // A subject matched in `normalize: nfc` datasets by its NFC key (kept in its plan).
        let nfc = lake.nfcKeys(approved)
        let nfcByKey = lake.nfcByKey(approved, nfc)
        // The requests' index entries in one read of the index (by key, then by request), for the plans and the steps.
        let byKey = try await Trace.span("plan: postings") { try await lake.postings(Array(Set(approved.map(\.subjectKey))), nfc: nfcByKey) }
        let plans = try await Trace.span("plan: plans") {
            try await lake.plans(approved.map(\.subjectKey), nfc: nfcByKey, coverage: cov, destroyed: destroyed, postings: byKey)
        }
        byKeyOut = byKey
        let job = "j-" + String(Lethe.newRequestID().dropFirst(2))
        var postings: [String: [Posting]] = [:]
        for r in approved { postings[r.id] = byKey[r.subjectKey] ?? [] }
        let jobPlan = JobPlanner.plan(job: job, approved: approved, postings: postings, coverage: cov, config: config, nfc: nfc)
        let planned = approved.map { ($0.id, plans[$0.subjectKey]!.json) }
        // The plans as built, for this run's verification to take instead of decoding what it stores (`PlanMemo`).
        lake.planMemo.keep(zip(planned, approved).map { ($0.0, $0.1, plans[$1.subjectKey]!) })
        return (job, jobPlan, planned)
    }

    /// Claims the requests (re-planned: verification covers what this run reaches) and journals the
    /// job's steps for those claimed, in one transaction: a kill leaves both or neither. Returns the
    /// ids claimed (a request rejected meanwhile is not).
    /// With `beginFirst` (a run executing the job itself), the job's first step is begun in the same
    /// transaction (its attempt counted, as `execute` would count it: one state write fewer).
    func claimJob(_ job: String, _ jobPlan: JobPlan, planned: [(String, [UInt8])], beginFirst: Bool = false) async throws -> [String] {
        let at = now()
        return try await state.transaction("cannot start job \(job)") { tx -> [String] in
            var claimed = Set<String>()
            var started: [AuditAppend] = []
            let details = JSONValue.object(["job": .string(job)]).text
            // The requests as stored, in one read of the transaction (not one per request).
            var current: [String: ErasureRequest] = [:]
            for r in try tx.requests.requests(ids: planned.map(\.0)) { current[r.id] = r }
            for (id, plan) in planned {
                guard let cur = current[id], cur.status == .approved else { continue }  // rejected meanwhile
                var n = try RequestLifecycle.apply(.replanned(plan: plan), to: cur).get()
                n = try RequestLifecycle.apply(.start(at: at), to: n).get()
                try tx.updateRequest(n, expecting: .approved)
                current[id] = n
                started.append(AuditAppend(.started, requestID: id, actor: "lethe", details: details, at: at))
                claimed.insert(id)
            }
            guard !claimed.isEmpty else { return [] }
            // One `started` entry per request claimed, in the claim's order (the chain's head read once).
            try tx.audit.append(started)
            let steps = jobPlan.claimed(claimed)
            try tx.createJob(steps)
            if beginFirst, let first = steps.first { _ = try tx.beginStep(job: job, ordinal: first.ordinal) }
            return claimed.sorted()
        }
    }

    /// Requests a dead run left behind: `running` with no job holding them (claimed before claim
    /// and job were one transaction) go back to approved with a new plan; `erased` with no job
    /// holding them (killed during verification) are verified now.
    /// `live`: the ids jobs with a pending step name, when the caller knows them (else read here).
    func recover(report: inout RunReport, events: EngineEvents?, live known: Set<String>? = nil) async throws {
        let live: Set<String>
        if let known {
            live = known
        } else {
            live = try await state.transaction("cannot read the journal") { tx in try tx.pendingRequestIDs() }
        }
        let running = try await state.requests(status: .running).filter { !live.contains($0.id) }
        if !running.isEmpty {
            let plans = try await lake.plans(running.map(\.subjectKey), nfc: lake.nfcByKey(running, lake.nfcKeys(running)), coverage: try await lake.coverage())
            let at = now()
            let planned = running.map { ($0.id, plans[$0.subjectKey]!.json) }
            report.requeued = try await state.transaction("cannot take back \(running.count) request(s)") { tx -> [String] in
                let live = try tx.pendingRequestIDs()
                var out: [String] = []
                for (id, plan) in planned where !live.contains(id) {
                    guard let cur = try tx.request(id: id), cur.status == .running else { continue }
                    let n = try RequestLifecycle.apply(.requeue(plan: plan, at: at), to: cur).get()
                    try tx.updateRequest(n, expecting: .running)
                    try tx.appendAudit(
                        event: .requeued, requestID: id, actor: "lethe",
                        details: JSONValue.object([
                            "subject_key": .string(cur.subjectKey.hex), "why": .string("running without a job: the run that claimed it stopped first"),
                        ]).text, at: at)
                    out.append(id)
                }
                return out
            }
            if !report.requeued.isEmpty { events?(.requestsTakenBack(count: report.requeued.count)) }
        }
        let erased = try await state.requests(status: .erased).filter { !live.contains($0.id) }
        if !erased.isEmpty {
            events?(.verifyingUnfinished(count: erased.count))
            let results = try await lake.verify(erased)
            report.verifications += results
            for v in results where !v.clean { report.failed.append(.init(id: v.id, reason: v.summary)) }
        }
    }

    /// Propagation, with a table whose change feed cannot be read reported instead of stopping the run.
    func propagateScoped(report: inout RunReport, events: EngineEvents?) async throws -> PropagationReport {
        var out = PropagationReport()
        for d in config.datasets where d.deletesFromChangeFeed {
            do {
                let r = try await lake.propagate(datasets: [d.name], events: events)
                out.sources += r.sources
            } catch let e as LetheError where e.code != .badInput && e.code != .badUsage {
                try state.checkIntact()
                report.problems.append("\(d.name): change feed not read: \(DatasetIssue.oneLine(e.description))")
                events?(.changeFeedNotRead(dataset: d.name, error: e.description))
            }
        }
        return out
    }

    /// Whether the run stops here (it was asked to: `Lethe.runStop`); sets `report.stopped`.
    func stopping(_ report: inout RunReport) -> Bool {
        if !report.stopped, Lethe.stopRequested { report.stopped = true }
        return report.stopped
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }

    /// Runs the pending steps of a job in order. A step started `maxStepAttempts` times without
    /// finishing fails; an error inside a step fails that step (its requests fail with the
    /// reason), never the run, unless the state itself is gone.
    /// `begun`: the job was claimed by this run with its first step begun (`claimJob(beginFirst:)`).
    func execute(job: String, begun: Bool = false, report: inout RunReport, events: EngineEvents?) async throws {
        report.jobs.append(job)
        let pending = try await state.steps(job: job).filter { $0.state == .pending }
        guard let first = pending.first else { return }
        // Steps run in order, so a run that died in this job died in its first pending step:
        // that step's count goes up (one write per run of the job, not one per step; for a job this
        // run claimed, in the claim's transaction).
        let attempts = begun ? first.attempts : try await state.beginStep(job: job, ordinal: first.ordinal)
        // The audit log names objects by reference: look them up once for the whole job.
        var keysByDataset: [String: [String]] = [:]
        for s in pending where s.kind == .object {
            keysByDataset[s.dataset, default: []].append(s.objectKey)
        }
        try await Trace.span("execute: object refs") { for (d, keys) in keysByDataset { _ = try await lake.objectRefs(d, keys) } }
        // Object steps of the first wave (each its own object) run several at a time, as workers
        // would run them: their reads, fsyncs and renames overlap. A job a run died in before
        // (`attempts > 1`) runs one step at a time, so its first pending step is the one counted.
        let inFlight = attempts > 1 ? 1 : Lethe.objectStepsInFlight
        do {
            var i = 0
            while i < pending.count {
                try state.checkIntact()
                // A stop between steps (a graceful shutdown): the rest stays pending for the next run.
                if pending[i].ordinal != first.ordinal, stopping(&report) { return }
                var end = i + 1
                if inFlight > 1 {
                    var keys: Set<String> = [pending[i].objectKey]
                    while end < pending.count, Self.runsAlongside(pending[end], pending[i]), keys.insert(pending[end].objectKey).inserted { end += 1 }
                }
                if end - i == 1 {
                    let step = pending[i]
                    let interrupted = step.ordinal == first.ordinal && attempts > Lethe.maxStepAttempts ? attempts - 1 : nil
                    try await runStep(job: job, step: step, interrupted: interrupted, report: &report, events: events)
                } else {
                    try await runSteps(job: job, Array(pending[i..<end]), inFlight: inFlight, report: &report, events: events)
                }
                i = end
            }
        } catch let e as StepNotRecorded {
            // The state could not record a step's end: the run stops here and the step stays
            // pending (no second write pretends it failed); the next run resumes it.
            throw e.error
        }
    }

    /// Whether `step` may run at the same time as `lead` (both object steps of the first wave, see `JournalStep.wave`).
    static func runsAlongside(_ step: JournalStep, _ lead: JournalStep) -> Bool {
        step.kind == .object && lead.kind == .object && step.wave == 0 && lead.wave == 0
    }

    /// Object steps of one wave, at most `inFlight` at a time, started in order (so the steps in
    /// flight are always the job's first pending ones). A stop (`Lethe.runStop`) starts no more;
    /// what runs finishes. The first error (`StepNotRecorded`, the state gone, a cancellation)
    /// ends the others, which stay pending.
    func runSteps(job: String, _ steps: [JournalStep], inFlight: Int, report: inout RunReport, events: EngineEvents?) async throws {
        let executor = self
        var stopped = false
        let merged = try await withThrowingTaskGroup(of: RunReport.self) { group -> RunReport in
            var out = RunReport()
            var next = 0
            func start() {
                let step = steps[next]
                next += 1
                group.addTask {
                    var r = RunReport()
                    try await executor.runStep(job: job, step: step, interrupted: nil, report: &r, events: events)
                    return r
                }
            }
            while next < steps.count, next < inFlight { start() }
            while let r = try await group.next() {
                out.absorb(r)
                guard next < steps.count, !stopped else { continue }
                if Lethe.stopRequested { stopped = true } else { try state.checkIntact(); start() }
            }
            return out
        }
        report.absorb(merged)
        if stopped { report.stopped = true }
    }

    /// One step of a job, for `run` (steps in order) and for a worker (a claimed step): the closing
    /// step settles the job; a step started more than `maxStepAttempts` times (`interrupted`: how
    /// many times before) fails with that reason; any other runs, and what it throws fails it.
    /// `StepNotRecorded` (the state could not record the end) is thrown as it is.
    func runStep(job: String, step: JournalStep, interrupted: Int?, report: inout RunReport, events: EngineEvents?) async throws {
        if step.kind == .settle {
            try await settle(job: job, step: step, report: &report, events: events, interrupted: interrupted)
            return
        }
        if let interrupted {
            try await failStep(
                job: job, step: step,
                reason: "\(step.dataset): the step was started \(interrupted) times and never finished (the process was killed or crashed in it)",
                events: events)
            return
        }
        if step.kind == .object, let ms = SlowStepFailpoint.ms { try await Task.sleep(for: .milliseconds(ms)) }
        do {
            switch step.kind {
            case .datasetIssue: try await datasetIssueStep(job: job, step: step, events: events)
            case .rebuild: try await rebuild(job: job, step: step, report: &report, events: events)
            case .object, .deltaTable: try await eraseStep(job: job, step: step, report: &report, events: events)
            case .settle: break  // handled above
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch let e as StepNotRecorded {
            throw e
        } catch {
            try state.checkIntact()
            try await failStep(job: job, step: step, reason: Self.failureReason(step, error), events: events)
        }
    }

    /// The reason a step that threw fails with: its dataset and the error, on one line.
    static func failureReason(_ step: JournalStep, _ error: any Error) -> String {
        "\(step.dataset): \(DatasetIssue.oneLine(error: error))"
    }

    /// Commits a step's end with its audit entries (see `commit`); a failure is `StepNotRecorded`.
    func commitStep(
        _ job: String, _ step: JournalStep, audit: [AuditNote],
        _ change: @escaping @Sendable (any StateTransaction) throws -> Void
    ) async throws {
        do {
            try await lake.commit(Self.stepWhat(job, step), audit: audit, ending: (job, step.ordinal), change)
        } catch {
            throw StepNotRecorded(error: error)
        }
    }

    /// What the state transaction recording a step's end says when it cannot be written.
    static func stepWhat(_ job: String, _ step: JournalStep) -> String { "cannot record journal step \(job)#\(step.ordinal)" }

    /// Records a step as failed, with its reason on the requests and a redacted one in the audit log.
    /// The step's end and its `object_failed` entry commit together.
    func failStep(
        job: String, step: JournalStep, reason: String, events: EngineEvents?,
        alsoAudit earlier: [AuditNote] = []
    ) async throws {
        let note = try await failureNote(job: job, step: step, reason: reason)
        let ordinal = step.ordinal
        try await commitStep(job, step, audit: earlier + [note]) { tx in
            try tx.finishStep(job: job, ordinal: ordinal, state: .failed, outcome: reason)
        }
        events?(.stepFailed(dataset: step.dataset, reason: reason))
    }

    /// The `object_failed` audit entry of a step: the reason redacted (objects by reference, paths hidden).
    func failureNote(job: String, step: JournalStep, reason: String) async throws -> AuditNote {
        let refs = try await lake.objectRefs(step.dataset, step.kind == .object ? [step.objectKey] : [])
        var details: [String: JSONValue] = [
            "job": .string(job), "dataset": .string(step.dataset), "reason": .string(lake.auditText(reason, refs: refs)),
            "requests": .array(step.requestIDs.map(JSONValue.string)),
        ]
        if let r = refs[step.objectKey] { details["object"] = .int(r) }
        return AuditNote(.objectFailed, details)
    }

    /// The step of a dataset that could not be indexed: fails with the recorded reason, unless the
    /// dataset indexes cleanly by now.
    func datasetIssueStep(job: String, step: JournalStep, events: EngineEvents?) async throws {
        if let issue = try await lake.datasetIssues()[step.dataset] {
            try await failStep(job: job, step: step, reason: issue.description, events: events)
        } else {
            try await lake.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: nil)
        }
    }

    /// A step erasing subjects from a dataset: the driver that planned it runs it (one object
    /// rewritten, or a whole table in one commit).
    func eraseStep(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?) async throws {
        guard let d = config.dataset(named: step.dataset) else {
            let gone = step.kind == .object ? "is no longer in" : "is gone from"
            try await lake.finishStep(job: job, ordinal: step.ordinal, state: .failed, outcome: "dataset `\(step.dataset)` \(gone) \(config.file)")
            return
        }
        try await DatasetDrivers.driver(for: step, d).erase(job: job, step: step, report: &report, events: events, lake)
    }

    func rewrite(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?) async throws {
        guard let d = config.dataset(named: step.dataset), let opts = lake.options(for: d) else {
            try await lake.finishStep(
                job: job, ordinal: step.ordinal, state: .failed,
                outcome: "dataset `\(step.dataset)` is no longer in \(config.file)")
            return
        }
        guard let info = try await store.head(step.objectKey) else {
            // Gone from the lake since planning: nothing left to erase there.
            try await lake.reindex(d, key: step.objectKey)
            try await lake.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: #"{"gone":true}"#)
            return
        }
        let f = try lake.format(for: d)
        let keyer = lake.keyer(for: d)
        // The object is about to change: its Hadoop checksum sidecar (`.name.crc`) would go stale, and
        // Spark and Hadoop refuse a file whose checksum does not match (a missing one is only not checked).
        // Removed first, so a kill after the rewrite leaves no stale one.
        let sidecar = hadoopChecksumKey(step.objectKey)
        if try await store.head(sidecar) != nil { try await store.delete([sidecar]) }
        let outcome: EraseOutcome
        do {
            let hint = try await eraseHint(step, dataset: d.name)
            outcome = try await f.erase(
                info, in: store, options: opts, keyer: keyer, actions: Self.eraseActions(d, Set(step.subjectKeys), keyer: keyer), hint: hint)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The object is left untouched (the write aborted); its requests fail with the reason.
            try await failStep(job: job, step: step, reason: Self.failureReason(step, error), events: events)
            return
        }
        try await recordRewrite(outcome, from: info.version, job: job, step: step, dataset: d, report: &report)
        events?(.objectErased(dataset: d.name, object: step.objectKey, dropped: outcome.droppedTotal, kept: outcome.kept))
    }

    /// What erasing `keys` from dataset `d` does to their records (`erase:` in lethe.yaml): drop them,
    /// mask their subject and pii fields (`mask:`; an unlisted field becomes null), or blank them.
    static func eraseActions(_ d: DatasetSpec, _ keys: Set<SubjectKey>, keyer: SubjectKeyer) -> EraseActions {
        guard let action = recordAction(d) else { return .drop(keys) }
        return EraseActions(bySubject: Dictionary(uniqueKeysWithValues: keys.map { ($0, action) }), maskKey: MaskKey(installation: keyer.hasher))
    }

    /// The record action of a dataset whose `erase:` keeps its subjects' records; nil for `delete`.
    static func recordAction(_ d: DatasetSpec) -> RecordAction? {
        switch d.erase {
        case .delete: return nil
        case .blank: return .blankRecord
        case .mask: return .transform(Dictionary(uniqueKeysWithValues: d.maskedFields.map { ($0.field, FieldAction($0.rule)) }))
        }
    }

    /// Where the index says the step's subjects are in its object: the rows of each key's postings
    /// there, for the version the index scanned. Nil when the index holds no posting of these keys in
    /// the object (a quarantined object, or one the index never saw): the format then keys every record.
    /// A hint for another version than the one erased is ignored by the format (`EraseHint.applies`).
    /// Entries made under another dataset spec (`IndexSpec`) give no hint either.
    func eraseHint(_ step: JournalStep, dataset: String) async throws -> EraseHint? {
        guard let d = config.dataset(named: dataset), let fp = IndexSpec.fingerprint(d, options: lake.options(for: d)),
            try await state.cursors.setting(IndexSpec.setting(dataset)) == fp
        else { return nil }
        var version: String?
        var rows: [SubjectKey: [Int64]] = [:]
        let keys = Set(step.subjectKeys)
        let located = try await state.index.locate(prefixes: Array(Set(keys.map(\.prefix64))), dataset: dataset)
        for k in keys {
            for p in located[k.prefix64] ?? []
            where p.object.key == step.objectKey && p.object.status == .indexed {
                // Entries of one object share its version; two versions would be a torn index: no hint.
                if let v = version, v != p.object.version { return nil }
                version = p.object.version
                rows[k, default: []] += p.rows
            }
        }
        guard let version else { return nil }
        return EraseHint(version: version, rows: rows)
    }

    /// An object step's end, committed with its audit entry (`object_rewritten` or `object_removed`
    /// when the object changed): a failure leaves the step pending (the next run finds the object
    /// already rewritten, drops nothing, and records it then).
    private func recordRewrite(
        _ outcome: EraseOutcome, from version: String, job: String, step: JournalStep, dataset d: DatasetSpec,
        report: inout RunReport
    ) async throws {
        let changed = outcome.written != nil || outcome.removed
        if changed { Failpoint.objectWritten() }
        // The index learns of the new version at the job's end, in one batched incremental
        // pass (and, after a crash, at the next run's start): no per-object transaction here.
        // The audit log names the object by reference: its key may name a subject.
        let ref = try await lake.objectRefs(d.name, [step.objectKey])[step.objectKey]!
        let dropped = JSONValue.object(Dictionary(uniqueKeysWithValues: outcome.dropped.map { ($0.key.hex, JSONValue.int($0.value)) }))
        var details: [String: JSONValue] = [
            "job": .string(job), "dataset": .string(d.name), "object": .int(ref),
            "dropped": dropped, "kept": .int(outcome.kept), "removed": .bool(outcome.removed), "action": .string(d.erase.rawValue),
            "requests": .array(step.requestIDs.map(JSONValue.string)),
        ]
        // The step's end and its audit entry commit together: a failure leaves the step pending
        // (the next run finds the object already rewritten, drops nothing, and records it then).
        // The journaled outcome also carries what the verification may rely on (`RewriteEvidence`).
        if !outcome.transformed.isEmpty {
            details[d.erase == .blank ? "blanked" : "masked"] = .object(
                Dictionary(uniqueKeysWithValues: outcome.transformed.map { ($0.key.hex, JSONValue.int($0.value)) }))
        }
        var journaled = details
        journaled["verify"] = RewriteEvidence(from: version, outcome).json
        let text = JSONValue.object(journaled).text, ordinal = step.ordinal
        try await commitStep(job, step, audit: changed ? [AuditNote(outcome.removed ? .objectRemoved : .objectRewritten, details)] : []) { tx in
            try tx.finishStep(job: job, ordinal: ordinal, state: .done, outcome: text)
        }
        if changed {
            report.objectsRewritten += outcome.removed ? 0 : 1
            report.objectsRemoved += outcome.removed ? 1 : 0
            report.rowsDropped += outcome.droppedTotal
            let changed = outcome.transformed.values.reduce(0, +)
            if d.erase == .blank { report.rowsBlanked += changed } else { report.rowsMasked += changed }
        }
    }

    func rebuild(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?) async throws {
        guard let d = config.dataset(named: step.dataset), let cmd = d.rebuild else {
            try await lake.finishStep(job: job, ordinal: step.ordinal, state: .failed, outcome: "dataset `\(step.dataset)` has no rebuild command")
            return
        }
        events?(.rebuilding(dataset: d.name, command: cmd))
        let started = Date()
        let (status, output) = try Self.runCommand(
            cmd, in: config.baseDir,
            env: [
                "LETHE_DATASET": d.name, "LETHE_CONFIG": config.file,
                "LETHE_LAKE": { if case .folder(let p) = config.lake { return p } else { return "" } }(),
            ])
        let secs = Date().timeIntervalSince(started)
        report.rebuilds.append(
            .init(
                dataset: d.name, command: cmd, exitStatus: status, seconds: secs,
                output: String(decoding: output.suffix(8192), as: UTF8.self)))
        // The output may hold personal data: the audit keeps its size and digest only.
        let details: [String: JSONValue] = [
            "job": .string(job), "dataset": .string(d.name), "command": .string(cmd), "exit_status": .int(Int64(status)),
            "seconds": .double((secs * 1000).rounded() / 1000), "output_bytes": .int(Int64(output.count)),
            "output_sha256": .string(Hex.encode(Array(SHA256.hash(data: output)))),
            "requests": .array(step.requestIDs.map(JSONValue.string)),
        ]
        // The `rebuild` entry commits with the step's end (done, or failed with the reason).
        let note = AuditNote(.rebuild, details), ordinal = step.ordinal
        guard status == 0 else {
            let reason = "\(d.name): rebuild `\(cmd)` exited with status \(status)"
            try await commitStep(job, step, audit: [note]) { tx in
                try tx.finishStep(job: job, ordinal: ordinal, state: .failed, outcome: reason)
            }
            return
        }
        if d.subject != nil {
            do {
                _ = try await lake.index(datasets: [d.name])
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try state.checkIntact()
                try await failStep(job: job, step: step, reason: Self.failureReason(step, error), events: events, alsoAudit: [note])
                return
            }
        }
        let text = JSONValue.object(details).text
        try await commitStep(job, step, audit: [note]) { tx in
            try tx.finishStep(job: job, ordinal: ordinal, state: .done, outcome: text)
        }
    }

    /// Runs a shell command in a folder; returns its exit status and combined output.
    static func runCommand(_ cmd: String, in dir: String, env: [String: String]) throws -> (Int32, [UInt8]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", cmd]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw LetheError(.failure, "cannot start rebuild command: \(error)", at: dir) }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, Array(out))
    }

    /// The job's closing step: requests whose steps all succeeded are erased and
    /// verified; the others fail with the first reason. Resumed after a kill, it verifies
    /// the requests already erased. The job's object keys leave the journal before the
    /// verification (its residue scan covers the state), and the step finishes only after it.
    func settle(
        job: String, step: JournalStep, report: inout RunReport, events: EngineEvents? = nil,
        interrupted: Int? = nil
    ) async throws {
        let steps = try await state.steps(job: job)
        let toVerify = try await Trace.span("settle: close \(step.requestIDs.count) requests") {
            try await closeRequests(job: job, step: step, steps: steps, report: &report, interrupted: interrupted)
        }
        // What the job rewrote: the verification reads those objects (their keyed scan is their new
        // index entry); datasets it verifies by the full scan, or not at all, are re-indexed as before.
        let touched = Set(steps.filter { $0.kind == .object || $0.kind == .deltaTable }.map(\.dataset))
            .filter { config.dataset(named: $0)?.subject != nil }
        var rewritten: [String: Set<String>] = [:]
        var evidence: [String: [String: RewriteEvidence]] = [:]
        var seen: [String: Set<String>] = [:]
        for s in steps where s.kind == .object {
            rewritten[s.dataset, default: []].insert(s.objectKey)
            // An object named by two steps has no single evidence: read in full.
            guard seen[s.dataset, default: []].insert(s.objectKey).inserted else {
                evidence[s.dataset]?[s.objectKey] = nil
                continue
            }
            if s.state == .done, let e = RewriteEvidence.parse(s.outcome) { evidence[s.dataset, default: [:]][s.objectKey] = e }
        }
        var run = IndexCostRun(rewritten: rewritten, touched: touched, evidence: evidence)
        for s in steps where s.kind == .deltaTable && s.state == .done {
            run.deltaEvidence[s.dataset, default: []] += RewriteEvidence.parseFiles(s.outcome)
        }
        try await Trace.span("settle: noncurrent versions, prune, temporaries") {
            try await purgeNoncurrentVersions(job: job, steps: steps, report: &report)
            try await state.pruneJob(job)
            try await lake.forgetFinishedTemporaries()
        }
        if toVerify.isEmpty {
            try await run.reindexUnverified(Verifier(lake), verified: [])
        } else {
            events?(.verifying(count: toVerify.count))
            try await lake.beforeRunVerification?()
            let results = try await Verifier(lake).verify(toVerify, dryRun: false, indexCost: run)
            report.verifications += results
            for v in results where !v.clean { report.failed.append(.init(id: v.id, reason: v.summary)) }
        }
        try await lake.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: nil)
        try await state.pruneJob(job)
    }

    /// The job's requests end here: those whose steps all succeeded are erased, the others fail with
    /// the first reason (all of them when the closing step was cut short too often). Returns the
    /// requests to verify (erased now, or by this job before a kill).
    private func closeRequests(
        job: String, step: JournalStep, steps: [JournalStep], report: inout RunReport,
        interrupted: Int?
    ) async throws -> [ErasureRequest] {
        var reasons: [String: String] = [:]
        for s in steps where s.state == .failed {
            for id in s.requestIDs where reasons[id] == nil { reasons[id] = s.outcome ?? "step failed" }
        }
        // The requests' transitions land together (a few transactions for the whole job).
        var changes: [Lethe.RequestChange] = []
        var verifyIDs: [String] = []
        var unchanged: [String: ErasureRequest] = [:]
        // One read for the batch's requests (not one per request).
        let current = Dictionary(try await state.requests(ids: step.requestIDs).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for id in step.requestIDs {
            guard let r = current[id] else { continue }
            let cutShort = interrupted.map {
                "the job's closing step (verification) was started \($0) times and never finished (the process was killed or crashed in it)"
            }
            if r.status == .running {
                if let reason = reasons[id] ?? cutShort {
                    changes.append(
                        try .init(
                            r, .fail(reason: reason, at: now()), audit: .failed,
                            ["job": .string(job), "reason": .string(lake.auditText(reason, refs: [:]))]))
                    report.failed.append(.init(id: id, reason: reason))
                } else {
                    changes.append(try .init(r, .erased(at: now()), audit: .erased, ["job": .string(job), "subject_key": .string(r.subjectKey.hex)]))
                    report.erased.append(id)
                    verifyIDs.append(id)
                }
            } else if r.status == .erased {
                // Erased by this job before a kill cut its verification short.
                if let reason = cutShort {
                    changes.append(try .init(r, .fail(reason: reason, at: now()), audit: .failed, ["job": .string(job), "reason": .string(reason)]))
                    report.failed.append(.init(id: id, reason: reason))
                } else {
                    unchanged[id] = r
                    verifyIDs.append(id)
                }
            }
        }
        try await lake.apply(changes, actor: "lethe")
        let changed = Dictionary(changes.map { ($0.new.id, $0.new) }, uniquingKeysWith: { _, b in b })
        let toVerify = verifyIDs.compactMap { changed[$0] ?? unchanged[$0] }
        return toVerify
    }
}
