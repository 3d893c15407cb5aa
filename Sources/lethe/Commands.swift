import ArgumentParser
import Foundation
import Synchronization
import ServiceLifecycle
import LetheCore
import LetheEngine
import LetheRuntime

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Write a commented starter lethe.yaml.")
    @Option(help: "The lake folder (or s3://bucket/prefix).") var lake: String = "./lake"
    @Option(help: "Where to write the config.") var config: String = "lethe.yaml"
    @Flag(help: "Overwrite an existing config.") var force = false

    func run() async throws {
        try await guarded {
            if FileManager.default.fileExists(atPath: config) && !force {
                throw LetheError(.badUsage, "\(config) exists; pass --force to overwrite it")
            }
            try Starter.config(lake: lake).write(toFile: config, atomically: true, encoding: .utf8)
            out("wrote \(config): describe your datasets in it, then run `lethe index`")
            return 0
        }
    }
}

struct Index: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Backfill or refresh the subject index.",
        discussion:
            "Scans only objects that are new or changed since the last run and forgets objects that are gone. Unreadable objects are quarantined and listed; the run goes on."
    )
    @OptionGroup var global: Global
    @Option(help: "Only this dataset (repeatable).") var dataset: [String] = []
    @Flag(help: "Keep refreshing until interrupted: every few seconds, or with `s3.events_queue` as S3's event notifications arrive.")
    var watch = false
    @Option(help: "Seconds between refreshes with --watch.") var interval: Double = 5
    @Flag(help: "Enqueue the objects to scan as items for `lethe worker` processes (PostgreSQL state) instead of scanning them here.")
    var distribute = false
    @Flag(help: "With --distribute: wait until the workers have indexed every item, then print the whole report.")
    var wait = false

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            let bar = ProgressBar(enabled: !global.json && isatty(2) != 0)
            let only = dataset.isEmpty ? nil : dataset
            let json = global.json
            if distribute {
                guard !watch else { throw LetheError(.badUsage, "--distribute and --watch do not go together") }
                let d = try await lethe.distributeIndex(datasets: only)
                guard wait else {
                    if json {
                        out(#"{"batch":"\#(d.batch)","items":\#(d.items)}"#)
                    } else {
                        out(
                            "index: \(d.items) item(s) enqueued for workers (batch \(d.batch)); \(d.report.objectsUnchanged) unchanged, \(d.report.objectsRemoved) removed"
                        )
                    }
                    for i in d.report.datasetIssues { err("lethe: \(i.description)") }
                    return d.report.datasetIssues.isEmpty ? 0 : 1
                }
                let started = Date()
                while true {
                    let (pending, r) = try await lethe.indexBatchReport(d.batch, base: d.report)
                    if pending == 0 {
                        var r = r
                        r.seconds = Date().timeIntervalSince(started) + d.report.seconds
                        Self.report(r, json: json)
                        if !r.datasetIssues.isEmpty { return r.datasetIssues.contains { $0.kind == .unsupported } ? 2 : 1 }
                        return 0
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            if watch,
                let events = try S3EventIndexService.configured(
                    lethe: lethe, datasets: only, progress: { bar.update($0) },
                    onEvent: { e in
                        bar.finish()
                        Self.report(e, json: json)
                        fflush(nil)
                    })
            {
                // `s3.events_queue`: S3's notifications from SQS, and a full listing every `watch.rescan`.
                try await runUntilSignalled([.init(service: events, successTerminationBehavior: .gracefullyShutdownGroup)])
                return 0
            }
            if watch {
                // Until SIGTERM or SIGINT: the pass under way finishes and reports, then exit 0.
                let service = IndexWatchService(lethe: lethe, datasets: only, interval: interval, progress: { bar.update($0) }) { r in
                    bar.finish()
                    Self.report(r, json: json)
                    fflush(nil)  // each pass reaches a pipe at once
                }
                try await runUntilSignalled([.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)])
                return 0
            }
            let r = try await lethe.index(datasets: only) { bar.update($0) }
            bar.finish()
            Self.report(r, json: json)
            if !r.datasetIssues.isEmpty { return r.datasetIssues.contains { $0.kind == .unsupported } ? 2 : 1 }
            return 0
        }
    }

    /// One line (or JSON object) per event of `index --watch` on a queue of S3 events.
    static func report(_ e: S3EventIndexService.Event, json: Bool) {
        switch e {
        case .rescanned(let r): report(r, json: json)
        case .indexed(let r, let messages):
            if json {
                report(r.index, json: true)
            } else {
                let delta = r.deltaTables.isEmpty ? "" : ", Delta: \(r.deltaTables.joined(separator: ", "))"
                out(
                    "events: \(messages) message(s), \(r.index.objectsScanned) object(s) indexed, \(r.index.objectsUnchanged) unchanged, "
                        + "\(r.index.objectsRemoved) removed, \(r.ignoredKeys) ignored\(delta) in \(String(format: "%.2f", r.index.seconds))s")
                for q in r.index.quarantined { out("  quarantined \(q.dataset): \(q.issue)") }
                for i in r.index.datasetIssues { err("lethe: \(i.description)") }
            }
        case .poison(let id, let reason): err("lethe: warning: events queue message \(id) skipped and deleted: \(reason)")
        }
    }

    static func report(_ r: IndexReport, json: Bool) {
        if json {
            out(ReportEncoder.text(r))
        } else {
            let mb = Double(r.bytesScanned) / 1e6
            out(
                String(
                    format: "indexed %d object(s) (%d unchanged, %d removed), %lld records, %.1f MB in %.2fs (%.0f MB/s, %.0f rows/s)",
                    r.objectsScanned, r.objectsUnchanged, r.objectsRemoved, r.records, mb, r.seconds,
                    r.seconds > 0 ? mb / r.seconds : 0, r.seconds > 0 ? Double(r.records) / r.seconds : 0))
            if !r.quarantined.isEmpty {
                out("quarantined \(r.quarantined.count) object(s) that cannot be read:")
                for q in r.quarantined { out("  \(q.dataset): \(q.issue)") }
            }
        }
        // A dataset that cannot be indexed at all: the others are; requests reaching it cannot be proven.
        for i in r.datasetIssues { err("lethe: \(i.description)") }
    }
}

struct Locate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locate",
        abstract: "Show where a subject's data lives, from the index (no request is filed).",
        discussion: """
            The subject is taken exactly as typed, never split: `lethe locate 'a|b'` looks for the one id `a|b`. \
            Ids that are not UTF-8 text: --hex 75ff31. A composite subject (a dataset whose `subject` lists several \
            fields): --subject-json '["t1","u-42"]'. A negative number is an id: `lethe locate -654807448`. \
            ROLE tells, for Delta tables, live rows from `history` (files removed by a commit, or rows a deletion vector \
            deleted: readable by time travel until vacuumed) and `cdc` (change data feed files).
            """)
    @OptionGroup var global: Global
    @OptionGroup var subject: SubjectArguments

    func run() async throws {
        try await guarded {
            let typed = try subject.typed()
            guard typed.count == 1 else { throw LetheError(.badUsage, "name exactly one subject (an id, --hex or --subject-json)") }
            let lethe = try global.open(readOnly: true)
            let s = try lethe.config.check(typed[0])
            for h in await lethe.canonicalHints(for: s) { err("lethe: warning: \(h)") }  // the user's terminal only
            let found = try await lethe.locateRows(s)
            for i in try await lethe.datasetIssues().values.sorted(by: { $0.dataset < $1.dataset }) {
                err("lethe: warning: \(i.description): the index cannot say whether it holds the subject")
            }
            if global.json {
                out(ReportEncoder.text(LocateReport(found)))
            } else if found.isEmpty {
                out("subject \(lethe.key(for: s).short): no records in the index")
            } else {
                out("subject \(lethe.key(for: s).short):")
                out(
                    table(
                        ["DATASET", "OBJECT", "ROLE", "ROWS"],
                        found.map {
                            // 0 rows: the object holds the subject's value only in a Parquet dictionary entry no row references.
                            [$0.dataset, $0.object, $0.role.rawValue, String(RecordOrdinal.records($0.rows))]
                        }))
            }
            return 0
        }
    }
}

struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "File erasure requests; each is planned at once.",
        discussion: """
            The plan lists every dataset, object and row count that holds the subject, and the derived datasets lineage \
            reaches. A second person must approve before `lethe run` erases anything.

            Subjects are taken exactly as typed and never split: `lethe forget 'a|b'` names the one id `a|b`. \
            An id that is not UTF-8 text or holds characters a shell cannot pass: --hex 75ff31. \
            A composite subject (a dataset whose `subject` lists several fields) is a JSON array of its parts: \
            --subject-json '["t1","a|b"]'. In a lake with composite datasets, a typed id holding `composite_separator` \
            (`|`, the old composite spelling) is refused rather than split or taken whole: write it with --subject-json. \
            A negative number is an id (`lethe forget -654807448`); so is anything after `--`.

            --from FILE reads one id a line, literally: every byte but the LF is part of the id (ids need not be UTF-8), \
            nothing is trimmed and `#` is not a comment unless --trim / --comments ask; empty lines are skipped. \
            --from-format hex or json reads each line as with --hex or --subject-json.
            """)
    @OptionGroup var global: Global
    @OptionGroup var subject: SubjectArguments
    @OptionGroup var file: FromFileOptions
    @Option(help: "Why (e.g. a ticket number); recorded in the audit log.") var reason: String = "erasure request"
    @Option(help: "Who files the request (default: $LETHE_USER or $USER).") var by: String?

    func run() async throws {
        try await guarded {
            var t0 = ContinuousClock.now
            let typed = try subject.typed() + file.typed()
            Trace.mark("forget: ids read", since: t0)
            guard !typed.isEmpty else { throw LetheError(.badUsage, "name at least one subject, or --from FILE") }
            let lethe = try global.open()
            t0 = ContinuousClock.now
            let ids = try typed.map { try lethe.config.check($0) }
            Trace.mark("forget: ids checked", since: t0)
            // An id typed in a form a typed subject column never holds (`3.5` for decimal(5,2)): said on the
            // user's terminal only (never logged or stored); the request is filed as typed.
            for h in await Trace.span("forget: canonical hints", { await lethe.canonicalHints(for: ids) }).joined() { err("lethe: warning: \(h)") }
            let rs = try await lethe.forget(ids, reason: reason, by: principal(by))
            if global.json {
                t0 = ContinuousClock.now
                try await printJSONLines(rs)
                Trace.mark("forget: \(rs.count) requests printed", since: t0)
            } else {
                for r in rs {
                    let p = r.plan.flatMap(ErasurePlan.decode)
                    out(
                        "\(r.id)  \(r.status.rawValue)  subject \(r.subjectKey.short)  \(p?.totalObjects ?? 0) object(s), \(p?.totalRows ?? 0) row(s) in \(p?.datasets.count ?? 0) dataset(s)"
                    )
                    if (p?.totalObjects ?? 0) == 0 {
                        // Often a typo or another form of the id (`U-42`, `42` for `u-42`): say so before anyone approves.
                        err(
                            "lethe: note: \(r.id): the index holds no record of this subject; check the id as the data writes it (`lethe locate ID`); once approved, verification reads every dataset with a subject column to prove it absent"
                        )
                    }
                }
                out("next: a second person approves with `lethe approve ID --by NAME`")
            }
            return 0
        }
    }
}

/// Prints each request's JSON line (`RequestView`, no plan), in order. Many (`forget --from`, `approve
/// --all`): the lines made in parts, one per core, each part printed whole (the same bytes).
func printJSONLines(_ rs: [ErasureRequest]) async throws {
    let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let size = rs.count >= 4_096 ? (rs.count + cores - 1) / cores : max(1, rs.count)
    let parts = stride(from: 0, to: rs.count, by: size).map { $0..<min($0 + size, rs.count) }
    let texts = try await boundedMap(parts, limit: parts.count) { p in
        rs[p].map { RequestView($0, withPlan: false).jsonLine }.joined(separator: "\n")
    }
    for t in texts { out(t) }
}

struct Requests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "requests", abstract: "List erasure requests.")
    @OptionGroup var global: Global
    @Option(help: "Only this status: \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", ")).") var status: String?
    @Option(
        help:
            "Only requests the sweep has (yes) or has not (no) marked swept; `--status verified --swept no` lists the next sweep's work."
    )
    var swept: String?

    func run() async throws {
        try await guarded {
            var st: RequestStatus?
            if let status {
                guard let s = RequestStatus(rawValue: status) else {
                    throw LetheError(.badUsage, "unknown status `\(status)` (known: \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                st = s
            }
            var wantSwept: Bool?
            if let swept {
                guard swept == "yes" || swept == "no" else { throw LetheError(.badUsage, "--swept takes yes or no, not `\(swept)`") }
                wantSwept = swept == "yes"
            }
            let lethe = try global.open(readOnly: true)
            var rs = try await lethe.requests(status: st)
            if let wantSwept { rs = rs.filter { ($0.sweptAt != nil) == wantSwept } }
            if global.json {
                out(ReportEncoder.text(rs.map { RequestView($0, withPlan: false) }))
            } else {
                out(
                    table(
                        ["ID", "STATUS", "SUBJECT", "BY", "FILED", "NOTE"],
                        rs.map {
                            [$0.id, $0.status.rawValue, $0.subjectKey.short, $0.requestedBy, time($0.filedAt), $0.failure ?? $0.decisionReason ?? ""]
                        }))
            }
            return 0
        }
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one request with its plan and verification.")
    @OptionGroup var global: Global
    @Argument var id: String

    func run() async throws {
        try await guarded {
            let lethe = try global.open(readOnly: true)
            var r = try await lethe.request(id)
            let plan = try await r.plan.flatMap(ErasurePlan.decode).asyncMap { try await lethe.resolvedPlan($0) }
            if let plan { r.plan = plan.json }
            if global.json { out(ReportEncoder.text(RequestView(r, withPlan: true))); return 0 }
            out("request   \(r.id)")
            out("status    \(r.status.rawValue)\(r.failure.map { " (\($0))" } ?? "")")
            out("subject   \(r.subjectKey.hex)")
            out("filed     \(time(r.filedAt)) by \(r.requestedBy): \(r.reason)")
            if let d = r.decidedBy { out("decided   by \(d)\(r.decisionReason.map { ": \($0)" } ?? "")") }
            if let p = plan {
                out("plan      \(p.totalObjects) object(s), \(p.totalRows) row(s)")
                for d in p.datasets {
                    let extra = d.rebuild.map { " — rebuild: \($0)" } ?? ""
                    let state = d.state.map { ", \($0)\(d.issue.map { ": \($0)" } ?? "")" } ?? ""
                    let verb = d.action.map { " to \($0)" } ?? ""
                    out("  \(d.name) [\(d.format), \(d.role)\(state)]: \(d.objects.count) object(s), \(d.rows) row(s)\(verb)\(extra)")
                    for o in d.objects.prefix(20) {
                        let name = o.key ?? "object #\(o.ref.map(String.init) ?? "?") (name purged)"
                        out("    \(name)  \(o.rows) row(s)\(o.state == "indexed" ? "" : " (\(o.state)\(o.issue.map { ": \($0)" } ?? ""))")")
                    }
                    if d.objects.count > 20 { out("    … \(d.objects.count - 20) more") }
                }
            }
            if let v = r.verification.flatMap({ try? JSONDecoder().decode(Verification.self, from: Data($0)) }) {
                out(
                    "verified  \(v.clean ? "clean" : "NOT clean: \(v.summary)") — \(v.objectsScanned) object(s), \(v.recordsScanned) record(s) scanned at \(time(v.at))"
                )
            }
            if let p = RequestView(r, withPlan: false).proofs.verified { out("proof     \(p.kind) (verified \(time(p.at)))") }
            if let at = r.sweptAt { out("swept     \(time(at))") }
            if r.sealedSubject != nil {
                out("raw id    sealed until swept\(r.rawDueAt.map { "; destroyed \(time($0)) at the latest" } ?? "")")
            } else {
                out("raw id    destroyed\(r.rawDestroyedAt.map { " \(time($0))" } ?? "")\(r.rawDestroyedWhy.map { " (\($0))" } ?? "")")
            }
            // The request's audit trail: its own entries and the batch entries (forget --from, approve --all) listing it.
            let trail = try await lethe.auditTrail(of: r.id)
            if !trail.isEmpty { out("audit") }
            for l in trail.map(AuditLineView.init) {
                let batch = l.request == nil ? " (batch of \(Self.batchCount(l.details)))" : ""
                out("  \(l.seq)  \(time(l.at))  \(l.event)\(batch)  \(l.actor ?? "-")")
            }
            return 0
        }
    }
}

extension Show {
    /// The `count` of a batch entry's details (`?` when absent).
    static func batchCount(_ details: JSONValue) -> String {
        if case .object(let o) = details, case .int(let n)? = o["count"] { return String(n) }
        return "?"
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve planned requests (never your own: four eyes).")
    @OptionGroup var global: Global
    @Argument(help: "Request ids.") var ids: [String] = []
    @Flag(help: "Approve every planned request not filed by you.") var all = false
    @Option(help: "Who approves (default: $LETHE_USER or $USER).") var by: String?

    func run() async throws {
        try await guarded {
            guard all != !ids.isEmpty else { throw LetheError(.badUsage, "name request ids, or pass --all (not both)") }
            let lethe = try global.open()
            let who = principal(by)
            var approved: [ErasureRequest] = []
            if all {
                let (ok, skipped) = try await lethe.approveAll(by: who)
                approved = ok
                if !skipped.isEmpty && !global.json { err("skipped \(skipped.count) request(s) filed by \(who) (four eyes)") }
            } else {
                approved = try await lethe.approve(ids, by: who)
            }
            if global.json {
                try await printJSONLines(approved)
            } else {
                for r in approved { out("\(r.id)  approved by \(who)") }; out("next: `lethe run` erases approved requests")
            }
            return 0
        }
    }
}

struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a request, with a reason.")
    @OptionGroup var global: Global
    @Argument var id: String
    @Option(help: "Who rejects (default: $LETHE_USER or $USER).") var by: String?
    @Option(help: "Why.") var reason: String = ""

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            let r = try await lethe.reject(id, by: principal(by), reason: reason)
            if global.json { out(ReportEncoder.text(RequestView(r, withPlan: false))) } else { out("\(r.id)  rejected by \(r.decidedBy ?? "")") }
            return 0
        }
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Execute approved requests: erase, propagate, rebuild, verify.",
        discussion:
            "Resumes an interrupted run first. Then, for datasets with `deletes_from: change_feed`, reads the Delta change feed since the last run and files approved requests (principal `propagation`) for subjects another tool deleted. Every object is rewritten once for all the subjects it holds, atomically; a failed object fails its requests, is left untouched, and is retried by the next run."
    )
    @OptionGroup var global: Global
    @Flag(help: "Run once and exit (the default; `lethe serve` runs continuously).") var once = false

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            let quiet = global.json
            let r = try await lethe.run(events: { if !quiet { err($0.message) } })
            if global.json {
                out(ReportEncoder.text(r))
            } else {
                for s in r.propagation.sources where s.deleted > 0 {
                    out(
                        "propagated from \(s.dataset)'s change feed: \(s.filed.count) request(s) filed and approved by `propagation` (\(s.stillLive) subject(s) still with live rows skipped)"
                    )
                }
                if r.jobs.isEmpty { out("nothing to do: no approved requests") }
                out(
                    "rewrote \(r.objectsRewritten) object(s), removed \(r.objectsRemoved), dropped \(r.rowsDropped) row(s)"
                        + (r.rowsMasked > 0 ? ", masked \(r.rowsMasked) row(s)" : "") + (r.rowsBlanked > 0 ? ", blanked \(r.rowsBlanked) row(s)" : ""))
                for b in r.rebuilds {
                    out("rebuilt \(b.dataset): `\(b.command)` exited \(b.exitStatus) in \(String(format: "%.2f", b.seconds))s")
                    if b.exitStatus != 0 {
                        // Shown to the operator only: the audit log keeps the output's size and digest.
                        for line in b.output.split(separator: "\n").suffix(20) { err("  | \(line)") }
                    }
                }
                for v in r.verifications { out(Self.line(v)) }
                for f in r.failed { out("\(f.id)  failed: \(f.reason)") }
                if !r.requeued.isEmpty {
                    out("took back \(r.requeued.count) request(s) a stopped run had claimed without a job: \(r.requeued.joined(separator: " "))")
                }
                for p in r.problems { out("problem: \(p)") }
            }
            return r.failed.isEmpty && r.problems.isEmpty ? 0 : 1
        }
    }

    /// A request's verification as `run` prints it: at index cost, what the proof rests on (objects listed,
    /// read again, indexed now); read in full, the objects and records scanned.
    static func line(_ v: Verification) -> String {
        guard v.clean else { return "\(v.id)  NOT clean: \(v.summary) (\(v.objectsScanned) objects, \(v.recordsScanned) records scanned)" }
        guard let p = v.proof, p.hasPrefix("index") else {
            return "\(v.id)  verified clean (\(v.objectsScanned) objects, \(v.recordsScanned) records scanned)"
        }
        let full = p == "index+full" ? "; \(v.objectsScanned) object(s) read in all" : ""
        // Objects read again only where their rewrite re-encoded records: say what was read, or that nothing was.
        let part =
            v.objectsRereadInPart.map { n in
                v.recordsScanned == 0
                    ? "; \(n) rewritten object(s) proven by the index alone (the rewrite re-encoded no record: nothing to read)"
                    : "; \(n) re-read only in their re-encoded rows (\(v.recordsScanned) records read, the copied ones proven by the index)"
            } ?? ""
        let evidence =
            v.evidence.map { e in
                "; \(e.ruledOut) of \(e.asked) unchanged also ruled out by their own metadata" + (e.by.isEmpty ? "" : " (\(e.by.joined(separator: ", ")))")
            } ?? ""
        return
            "\(v.id)  verified (\(p)): \(v.objectsListed ?? 0) objects listed, \(v.objectsReread ?? 0) re-read, \(v.objectsIndexedNow ?? 0) indexed now\(full)\(part)\(evidence)"
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Residue scan without trusting the index.")
    @OptionGroup var global: Global
    @Argument var ids: [String] = []
    @Flag(help: "Every erased or verified request.") var all = false
    @Flag(help: "Scan and print, store nothing (works on a state folder Lethe cannot write).") var dryRun = false

    func run() async throws {
        try await guarded {
            guard all != !ids.isEmpty else { throw LetheError(.badUsage, "name request ids, or pass --all (not both)") }
            let lethe = try global.open(readOnly: dryRun)
            let vs = try await lethe.verify(ids: ids, all: all, dryRun: dryRun)
            if global.json {
                for v in vs { out(ReportEncoder.text(v)) }
            } else {
                for v in vs {
                    out(
                        "\(v.id)  \(v.clean ? "clean" : "NOT clean: \(v.summary)") — \(v.objectsScanned) object(s), \(v.recordsScanned) record(s)\(v.logsExamined.map { ", \($0) Delta log(s)" } ?? "")\(v.listingsExamined.map { ", \($0) emptied dataset listing(s)" } ?? ""), \(v.stateScanSkipped.map { "state not searched: \($0)" } ?? "\(v.stateFilesScanned) state file(s) scanned")"
                    )
                }
            }
            return vs.allSatisfy(\.clean) ? 0 : 1
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Print or check the hash-chained audit log.")
    @OptionGroup var global: Global
    @Flag(help: "Recompute the chain; exit 1 naming the first broken entry.") var check = false
    @Option(
        name: .customLong("expect-head"),
        help: "With --check: a head recorded earlier (SEQ:HASH, as --check prints it) that must still be in the chain; catches removal of the newest entries.")
    var expectHead: String?

    func run() async throws {
        try await guarded {
            let lethe = try global.open(readOnly: true)
            if check {
                let v = try await lethe.auditReport(expectHead: expectHead)
                if global.json {
                    out(ReportEncoder.text(v))
                } else if v.ok {
                    out("audit log intact: \(v.entries) entries; head \(v.head)")
                    out("record the head elsewhere; `lethe audit --check --expect-head \(v.head)` later proves nothing was cut off")
                } else {
                    err("lethe: audit log broken at entry \(v.firstBroken.map(String.init) ?? "?"): \(v.reason ?? "")")
                }
                return v.ok ? 0 : 1
            }
            // Texts people typed (reasons, names) are resolved from `audit_texts`; `[erased]` where erasure purged them.
            let json = global.json
            try await lethe.auditLog { lines in
                if json {
                    for l in lines { out(ReportEncoder.text(AuditLineView(l))) }
                } else {
                    for l in lines {
                        let e = AuditLineView(l)
                        out("\(e.seq)  \(time(e.at))  \(e.event)  \(e.request ?? "-")  \(e.actor ?? "-")  \(l.details)  \(e.hash.prefix(12))")
                    }
                }
            }
            return 0
        }
    }
}

/// A one-line progress bar on stderr (terminals only).
final class ProgressBar: Sendable {
    let enabled: Bool
    private struct State { var last = Date.distantPast; var drawn = false }
    private let state = Mutex(State())
    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: IndexProgress) {
        guard enabled else { return }
        state.withLock { st in
            let now = Date()
            guard now.timeIntervalSince(st.last) > 0.1 || p.objectsDone == p.objectsTotal else { return }
            st.last = now
            let secs = max(0.001, now.timeIntervalSince(p.startedAt))
            let frac = p.bytesTotal > 0 ? Double(p.bytesDone) / Double(p.bytesTotal) : 1
            let width = 24
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(
                format: "\r%@ %3.0f%%  %d/%d objects  %.1f/%.1f MB  %.0f MB/s  %.0f rows/s ",
                bar, frac * 100, p.objectsDone, p.objectsTotal, Double(p.bytesDone) / 1e6,
                Double(p.bytesTotal) / 1e6, Double(p.bytesDone) / 1e6 / secs, Double(p.records) / secs)
            FileHandle.standardError.write(Data(line.utf8))
            st.drawn = true
        }
    }

    func finish() {
        guard enabled else { return }
        state.withLock { st in
            guard st.drawn else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            st.drawn = false
        }
    }
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<U>(_ f: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let v = self else { return nil }
        return try await f(v)
    }
}
