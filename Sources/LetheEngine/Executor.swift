import Foundation
import Crypto
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog

/// What `run` did.
public struct RunReport: Sendable {
    public struct Rebuild: Sendable {
        public var dataset: String, command: String
        public var exitStatus: Int32
        public var seconds: Double
        public var output: String
    }
    public var jobs: [String] = []
    public var objectsRewritten = 0
    public var objectsRemoved = 0
    public var rowsDropped: Int64 = 0
    public var rebuilds: [Rebuild] = []
    public var erased: [String] = []
    public var verifications: [Verification] = []
    public var failed: [(id: String, reason: String)] = []
    /// Requests filed from change feeds (`deletes_from: change_feed`) before the job.
    public var propagation = PropagationReport()
}

/// Journal steps are of three kinds, told apart by their fields:
/// an object rewrite (dataset + object key), a rebuild (dataset, empty key),
/// and the job's closing step (empty dataset) that settles its requests.
extension JournalStep {
    var isFinal: Bool { dataset.isEmpty }
    var isRebuild: Bool { !dataset.isEmpty && objectKey.isEmpty }
}

/// Test hook: `LETHE_FAILPOINT_EXIT_AFTER_WRITES=N` ends the process abruptly right
/// after the N-th object write commits, before the journal records it.
enum Failpoint {
    static let limit: Int? = ProcessInfo.processInfo.environment["LETHE_FAILPOINT_EXIT_AFTER_WRITES"].flatMap(Int.init)
    nonisolated(unsafe) static var writes = 0
    static func objectWritten() {
        guard let limit else { return }
        writes += 1
        if writes >= limit { _exit(86) }
    }
}

extension Lethe {
    /// Executes approved requests: resumes any unfinished job first, retries failed
    /// requests, then erases every approved subject in one batched pass (one
    /// rewrite per object for all the subjects it holds), dataset by dataset in
    /// lineage order, runs rebuilds, and verifies.
    public func run(progress: (@Sendable (String) -> Void)? = nil) async throws -> RunReport {
        var report = RunReport()
        // 1. Unfinished jobs (a crash or kill mid-run).
        let pending = try await meta.pendingSteps()
        for job in Self.orderedUnique(pending.map(\.job)) {
            progress?("resuming job \(job)")
            try await execute(job: job, report: &report, progress: progress)
        }
        // 2. Failed requests are retried.
        for r in try await meta.requests(status: .failed) {
            let n = try await transition(r, .retry(at: now()))
            try await audit("retry", request: n.id, actor: "lethe", ["attempts": .int(Int64(n.attempts))])
        }
        // 3. Subjects other tools deleted from `deletes_from: change_feed` tables become approved requests.
        report.propagation = try await propagate(progress: progress)
        // 4. A new job for every approved request.
        let approved = try await meta.requests(status: .approved)
        guard !approved.isEmpty else { return report }
        // Bring the index up to date so the plan sees objects written since.
        _ = try await index()
        let job = "j-" + String(Lethe.newRequestID().dropFirst(2))
        var steps: [JournalStep] = []
        var ordinal: Int64 = 0
        func add(_ dataset: String, _ object: String, _ ids: [String], _ keys: [SubjectKey]) {
            steps.append(JournalStep(job: job, ordinal: ordinal, dataset: dataset, objectKey: object,
                                     requestIDs: ids, subjectKeys: keys))
            ordinal += 1
        }
        // Per dataset and object: which requests' subjects it holds.
        var holders: [String: [String: [ErasureRequest]]] = [:]
        var scope: [String: Set<String>] = [:]   // dataset → requests whose plan reaches it
        let nfc = nfcKeys(approved)
        func keys(_ rs: [ErasureRequest], _ d: DatasetSpec) -> [SubjectKey] { Array(Set(rs.map { subjectKey(of: $0, in: d, nfc) })).sorted() }
        for r in approved {
            let postings = try await postings(r.subjectKey, nfc: nfc[r.id])
            var holding = Set<String>()
            for p in postings {
                holders[p.object.dataset, default: [:]][p.object.key, default: []].append(r)
                holding.insert(p.object.dataset)
            }
            for d in holding.union(config.downstream(of: holding).map(\.name)) { scope[d, default: []].insert(r.id) }
        }
        let byID = Dictionary(uniqueKeysWithValues: approved.map { ($0.id, $0) })
        for d in config.datasets {
            guard let inScope = scope[d.name] else { continue }
            if d.format == .delta, d.subject != nil, let held = holders[d.name] {
                // One commit for the whole table: every live file holding any of these subjects.
                let rs = Array(Set(held.values.flatMap { $0 }.map(\.id))).sorted().compactMap { byID[$0] }
                add(d.name, Lethe.deltaStepKey, rs.map(\.id), keys(rs, d))
            } else if d.subject != nil {
                var objects = holders[d.name] ?? [:]
                for q in try await meta.objects(dataset: d.name) where q.status == .quarantined {
                    objects[q.key] = inScope.compactMap { byID[$0] }
                }
                for key in objects.keys.sorted() {
                    let rs = objects[key]!
                    add(d.name, key, rs.map(\.id), keys(rs, d))
                }
            }
            if d.rebuild != nil {
                let rs = inScope.sorted()
                add(d.name, "", rs, keys(rs.compactMap { byID[$0] }, d))
            }
        }
        add("", "", approved.map(\.id), approved.map(\.subjectKey))
        for r in approved {
            try await transition(r, .start(at: now()))
            try await audit("started", request: r.id, actor: "lethe", ["job": .string(job)])
        }
        try await meta.createJob(steps)
        progress?("job \(job): \(approved.count) request(s), \(steps.count - 1) step(s)")
        try await execute(job: job, report: &report, progress: progress)
        return report
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }

    /// Runs the pending steps of a job in order.
    func execute(job: String, report: inout RunReport, progress: (@Sendable (String) -> Void)?) async throws {
        report.jobs.append(job)
        for step in try await meta.steps(job: job) where step.state == .pending {
            if step.isFinal {
                try await settle(job: job, step: step, report: &report, progress: progress)
            } else if step.objectKey == Lethe.deltaStepKey {
                try await eraseDelta(job: job, step: step, report: &report, progress: progress)
            } else if step.isRebuild {
                try await rebuild(job: job, step: step, report: &report, progress: progress)
            } else {
                try await rewrite(job: job, step: step, report: &report, progress: progress)
            }
        }
    }

    func rewrite(job: String, step: JournalStep, report: inout RunReport, progress: (@Sendable (String) -> Void)?) async throws {
        guard let d = config.dataset(named: step.dataset), let opts = options(for: d) else {
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .failed,
                                      outcome: "dataset `\(step.dataset)` is no longer in \(config.file)")
            return
        }
        do {
            guard let info = try await store.head(step.objectKey) else {
                // Gone from the lake since planning: nothing left to erase there.
                try await reindex(d, key: step.objectKey)
                try await meta.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: #"{"gone":true}"#)
                return
            }
            let f = try format(for: d)
            let keyer = keyer(for: d)
            let outcome = try await f.erase(info, in: store, options: opts, keyer: keyer, drop: Set(step.subjectKeys))
            if outcome.written != nil || outcome.removed { Failpoint.objectWritten() }
            // The index learns of the new version at the job's end, in one batched incremental
            // pass (and, after a crash, at the next run's start): no per-object transaction here.
            let dropped = JSONValue.object(Dictionary(uniqueKeysWithValues: outcome.dropped.map { ($0.key.hex, JSONValue.int($0.value)) }))
            let details: [String: JSONValue] = [
                "job": .string(job), "dataset": .string(d.name), "object": .string(step.objectKey),
                "dropped": dropped, "kept": .int(outcome.kept), "removed": .bool(outcome.removed),
                "requests": .array(step.requestIDs.map(JSONValue.string)),
            ]
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: JSONValue.object(details).text)
            if outcome.written != nil || outcome.removed {
                try await audit(outcome.removed ? "object_removed" : "object_rewritten", actor: "lethe", details)
                report.objectsRewritten += outcome.removed ? 0 : 1
                report.objectsRemoved += outcome.removed ? 1 : 0
                report.rowsDropped += outcome.droppedTotal
            }
            progress?("\(d.name): \(step.objectKey): dropped \(outcome.droppedTotal), kept \(outcome.kept)")
        } catch let e as LetheError {
            // The object is left untouched (the write aborted); its requests fail with the reason.
            let reason = "\(d.name): \(e.description)"
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .failed, outcome: reason)
            try await audit("object_failed", actor: "lethe", [
                "job": .string(job), "dataset": .string(d.name), "object": .string(step.objectKey),
                "reason": .string(e.description), "requests": .array(step.requestIDs.map(JSONValue.string)),
            ])
            progress?("\(d.name): \(step.objectKey): FAILED: \(e.description)")
        }
    }

    func rebuild(job: String, step: JournalStep, report: inout RunReport, progress: (@Sendable (String) -> Void)?) async throws {
        guard let d = config.dataset(named: step.dataset), let cmd = d.rebuild else {
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .failed, outcome: "dataset `\(step.dataset)` has no rebuild command")
            return
        }
        progress?("\(d.name): rebuilding: \(cmd)")
        let started = Date()
        let (status, output) = try Self.runCommand(cmd, in: config.baseDir, env: [
            "LETHE_DATASET": d.name, "LETHE_CONFIG": config.file,
            "LETHE_LAKE": { if case .folder(let p) = config.lake { return p } else { return "" } }(),
        ])
        let secs = Date().timeIntervalSince(started)
        report.rebuilds.append(.init(dataset: d.name, command: cmd, exitStatus: status, seconds: secs,
                                     output: String(decoding: output.suffix(8192), as: UTF8.self)))
        // The output may hold personal data: the audit keeps its size and digest only.
        let details: [String: JSONValue] = [
            "job": .string(job), "dataset": .string(d.name), "command": .string(cmd), "exit_status": .int(Int64(status)),
            "seconds": .double((secs * 1000).rounded() / 1000), "output_bytes": .int(Int64(output.count)),
            "output_sha256": .string(Hex.encode(Array(SHA256.hash(data: output)))),
            "requests": .array(step.requestIDs.map(JSONValue.string)),
        ]
        try await audit("rebuild", actor: "lethe", details)
        if status == 0 {
            if d.subject != nil { _ = try await index(datasets: [d.name]) }
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: JSONValue.object(details).text)
        } else {
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .failed,
                                      outcome: "\(d.name): rebuild `\(cmd)` exited with status \(status)")
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
    /// verified; the others fail with the first reason.
    func settle(job: String, step: JournalStep, report: inout RunReport, progress: (@Sendable (String) -> Void)? = nil) async throws {
        let steps = try await meta.steps(job: job)
        var reasons: [String: String] = [:]
        for s in steps where s.state == .failed {
            for id in s.requestIDs where reasons[id] == nil { reasons[id] = s.outcome ?? "step failed" }
        }
        var erased: [ErasureRequest] = []
        for id in step.requestIDs {
            guard var r = try await meta.request(id: id), r.status == .running else { continue }
            if let reason = reasons[id] {
                r = try await transition(r, .fail(reason: reason, at: now()))
                try await audit("failed", request: id, actor: "lethe", ["job": .string(job), "reason": .string(reason)])
                report.failed.append((id, reason))
            } else {
                r = try await transition(r, .erased(at: now()))
                try await audit("erased", request: id, actor: "lethe", ["job": .string(job), "subject_key": .string(r.subjectKey.hex)])
                report.erased.append(id)
                erased.append(r)
            }
        }
        // Re-index what the job rewrote: objects whose version changed are rescanned, in batches.
        let touched = Set(steps.filter { !$0.isFinal && !$0.isRebuild }.map(\.dataset))
            .filter { config.dataset(named: $0)?.subject != nil }
        if !touched.isEmpty { _ = try await index(datasets: Array(touched).sorted()) }
        try await meta.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: nil)
        if !erased.isEmpty {
            progress?("verifying \(erased.count) request(s)")
            let results = try await verify(erased)
            report.verifications += results
            for v in results where !v.clean { report.failed.append((v.id, v.summary)) }
        }
    }
}
