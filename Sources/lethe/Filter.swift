import ArgumentParser
import Foundation
import ServiceLifecycle
import LetheCore
import LetheStream
import LetheEngine
import LetheRuntime

struct Filter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Filter forgotten subjects out of a JSON Lines stream.",
        discussion: """
            Writes every line whose subject is not forgotten (request approved or later), \
            unchanged and in order. Newly approved requests take effect within a second. \
            Counts go to stderr at the end; with --json as JSON (on stdout when --out is a file, else stderr). \
            Exit 2 on a malformed line under --on-malformed fail (the default). See docs/stream.md.
            """)
    @OptionGroup var global: Global
    @Option(help: "The subject field as a dotted path (repeat for a composite subject). Default: the --dataset's subject, else user_id.")
    var field: [String] = []
    @Option(help: "Take the subject field(s) from this dataset of lethe.yaml.") var dataset: String?
    @Option(name: .customLong("in"), help: "Read this file (default: stdin).") var input: String?
    @Option(name: .customLong("out"), help: "Write this file (default: stdout).") var output: String?
    @Flag(help: "Keep reading the input file as it grows (like tail -f), until interrupted.") var follow = false
    @Option(name: .customLong("on-malformed"), help: "A line that is not valid JSON: pass, drop or fail.")
    var onMalformed: String = "fail"
    @Option(help: "Seconds between deletion-set refreshes (at most 0.5).") var refresh: Double = 0.25
    @Option(
        help:
            "full: validate every line whole; fast: stop reading a line once its subject is found; minimal (with --on-malformed pass): read a kept line only up to its subject (see docs/stream.md)."
    )
    var validate: String = "full"

    func run() async throws {
        try await guarded {
            let (policy, validation) = try checkedOptions()
            let config = try await Trace.span("filter: config") { try LakeConfig.load(path: global.config) }
            let fields = try subjectFields(config)
            let state = try await Trace.span("filter: open state") { try await openState(config) }
            let meta = state.state
            let source: @Sendable (Int64) async throws -> DeletionChanges = { try await Lethe.deletionTags(in: meta, since: $0) }
            let shared = try await Trace.span("filter: deletion set") { try await loadDeletionSet(state, source: source) }
            let (inFD, outFD) = try openFiles()
            defer {
                if inFD != 0 { close(inFD) }
                if outFD != 1 { close(outFD) }
            }
            let options = StreamFilterService.Options(
                fields: fields, streamKey: state.secrets.streamHasher, onMalformed: policy,
                validation: validation, input: inFD, output: outFD, follow: follow)
            return try await pump(options, set: shared, source: source)
        }
    }

    /// The options that need checking beyond their types (exit 2).
    private func checkedOptions() throws -> (MalformedPolicy, Validation) {
        guard let policy = MalformedPolicy(rawValue: onMalformed) else {
            throw LetheError(.badUsage, "--on-malformed must be pass, drop or fail")
        }
        guard let validation = Validation(rawValue: validate) else {
            throw LetheError(.badUsage, "--validate must be full, fast or minimal")
        }
        if validation == .minimal && policy != .pass {
            throw LetheError(.badUsage, "--validate minimal needs --on-malformed pass (a kept line's rest is not read)")
        }
        guard refresh > 0 && refresh <= 0.5 else { throw LetheError(.badUsage, "--refresh must be in (0, 0.5]") }
        if follow && input == nil { throw LetheError(.badUsage, "--follow needs --in FILE") }
        return (policy, validation)
    }

    /// --field, else the --dataset's subject, else `user_id`.
    private func subjectFields(_ config: LakeConfig) throws -> [FieldPath] {
        var fields = field.map(FieldPath.init)
        if let dataset {
            guard let d = config.datasets.first(where: { $0.name == dataset }) else {
                throw LetheError(.badUsage, "no dataset `\(dataset)` in \(global.config)")
            }
            guard let s = d.subject else { throw LetheError(.badUsage, "dataset `\(dataset)` has no subject field") }
            if fields.isEmpty { fields = s.fields }
        }
        return fields.isEmpty ? [FieldPath("user_id")] : fields
    }

    /// Opens the state. The filter only reads: on a state folder it cannot write (another user's, a
    /// read-only mount) it opens the state read-only and skips the one write it would make (tags for
    /// requests filed before stream filtering existed).
    private func openState(_ config: LakeConfig) async throws -> Runtime.StateHandle {
        let writable = Runtime.stateIsWritable(config)
        // A state folder is opened read-only first: opening it for writing writes (SQLite's pool
        // makes its WAL file exist with a transaction, synced; its close checkpoints and syncs
        // again), ~15 ms of a filter's start-up for nothing when every request has its tag. A
        // state that cannot be opened so (no database or key yet) is opened as before.
        if writable, case .folder = config.state, let state = try? Runtime.openState(config: config, readOnly: true),
            try await Lethe.untaggedRequestCount(in: state.state) == 0
        {
            return state
        }
        let state = try Runtime.openState(config: config, readOnly: !writable)
        if writable {
            try await Lethe.backfillStreamTags(meta: state.state, secrets: state.secrets, now: Int64(Date().timeIntervalSince1970 * 1000))
        } else if case let untagged = try await Lethe.untaggedRequestCount(in: state.state), untagged > 0 {
            err(
                "lethe: \(untagged) request(s) filed before stream filtering have no stream tag and are not filtered yet; a writing command on this state (e.g. `lethe run`) gives them one"
            )
        }
        return state
    }

    /// The deletion set: from its snapshot if there is a usable one (one file read instead of a row
    /// per forgotten subject), then caught up; else read whole. A changed set is snapshotted again.
    private func loadDeletionSet(
        _ state: Runtime.StateHandle,
        source: @escaping @Sendable (Int64) async throws -> DeletionChanges
    ) async throws -> SharedDeletionSet {
        let key = state.secrets.streamHasher
        let shared = SharedDeletionSet()
        let snapshotPath = state.folder.map { $0 + "/" + DeletionSnapshot.fileName }
        let newest = try await Lethe.deletionTags(in: state.state, since: Int64.max).latest
        var changed = true
        if let snapshotPath, let snap = DeletionSnapshot.load(path: snapshotPath, key: key), snap.cursor <= newest {
            shared.install(snap.set, cursor: snap.cursor)
            changed = try await shared.refresh(from: source)
        } else {
            try await shared.load(from: source)
        }
        if changed, let snapshotPath {
            DeletionSnapshot.save(shared.current, cursor: shared.currentCursor, key: key, to: snapshotPath)
        }
        // The full scan filled SQLite's page cache and the tag array is gone: give that
        // memory back to the system (glibc keeps freed pages of thread arenas otherwise).
        Lethe.releaseMemory(of: state.state)
        #if canImport(Glibc)
            if let f = dlsym(nil, "malloc_trim") {  // not exported by the Glibc module
                _ = unsafeBitCast(f, to: (@convention(c) (Int) -> Int32).self)(0)
            }
        #endif
        return shared
    }

    /// The input (--in, else stdin) and output (--out, created or truncated, else stdout) descriptors.
    private func openFiles() throws -> (input: Int32, output: Int32) {
        var inFD: Int32 = 0
        if let input {
            inFD = open(input, O_RDONLY | O_CLOEXEC)
            guard inFD >= 0 else { throw LetheError.io("cannot open the input", at: input, errno: errno) }
        }
        var outFD: Int32 = 1
        if let output {
            outFD = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard outFD >= 0 else {
                let e = errno
                if inFD != 0 { close(inFD) }
                throw LetheError.io("cannot create the output", at: output, errno: e)
            }
        }
        return (inFD, outFD)
    }

    /// Filters until the end of input, or with --follow until SIGTERM/SIGINT (the pump stops at its
    /// next idle moment, filters a last unterminated line and flushes), while the deletion set is
    /// refreshed. Reports the counts; exit 2 on a malformed line under `fail`.
    private func pump(
        _ options: StreamFilterService.Options, set shared: SharedDeletionSet,
        source: @escaping @Sendable (Int64) async throws -> DeletionChanges
    ) async throws -> Int32 {
        let filter = StreamFilterService(options, set: shared)
        let refresher = DeletionSetRefresher(set: shared, interval: refresh, source: source) { e in
            err("lethe: warning: deletion set refresh failed: \(e)")
        }
        // A group shuts its services down in reverse order: the filter drains before the refresher stops.
        var failure: (any Error)?
        do {
            try await runUntilSignalled(
                [
                    // Named: without a name each is described by reflection (`"\(service)"`), a
                    // dynamic cast per protocol the printer tries, each a scan of every conformance
                    // record of the binary on first use: about a millisecond of start-up.
                    .init(service: refresher, successTerminationBehavior: .ignore, serviceName: "deletion set refresher"),
                    .init(service: filter, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "stream filter"),
                ],
                signals: options.follow)
        } catch {
            failure = error
        }
        let c = filter.counts
        var counts = FilterReport(passed: c.passed, dropped: c.dropped, malformed: c.malformed, blank: c.blank, bytes: c.bytes)
        if let e = failure as? MalformedLine {
            err("lethe: error: \(e.description)")
            counts.failedAtLine = e.line
            report(counts)
            return 2
        }
        if let failure { throw failure }
        report(counts)
        return 0
    }

    private func report(_ counts: FilterReport) {
        err(counts.summary)
        guard global.json else { return }
        let text = ReportEncoder.text(counts)
        if output != nil { out(text) } else { err(text) }
    }
}

/// `lethe deletions`: the stream deletion set as tags, whole or changed since a cursor.
struct Deletions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deletions",
        abstract: "Print the stream deletion set, or its changes since T.",
        discussion: """
            Each forgotten subject is a 64-bit SipHash-2-4 tag of its canonical id under the state folder's \
            stream.key (16 hex digits). Without --since: the whole set. With --since T (milliseconds since \
            the epoch, or an ISO 8601 time): tags added and removed by requests updated at or after T. \
            The last line (`latest` in JSON) is the cursor to pass next time.
            """)
    @OptionGroup var global: Global
    @Option(help: "Only changes at or after this time (ms since the epoch, or ISO 8601).") var since: String?

    func run() async throws {
        try await guarded {
            var cursor = Int64.min
            if let since {
                if let ms = Int64(since) {
                    cursor = ms
                } else if let d = ISO8601DateFormatter().date(from: since) {
                    cursor = Int64(d.timeIntervalSince1970 * 1000)
                } else {
                    throw LetheError(.badUsage, "--since takes milliseconds since the epoch or an ISO 8601 time")
                }
            }
            let config = try LakeConfig.load(path: global.config)
            let meta = try Runtime.openState(config: config, readOnly: true).state
            let report = DeletionsReport(try await Lethe.deletionTags(in: meta, since: cursor), since: cursor)
            if global.json {
                out(ReportEncoder.text(report))
            } else {
                var text = ""
                for t in report.added { text += "+" + DeletionsReport.hex(t) + "\n" }
                for t in report.removed { text += "-" + DeletionsReport.hex(t) + "\n" }
                FileHandle.standardOutput.write(Data(text.utf8))
                out("# latest \(report.latest)")
            }
            return 0
        }
    }
}
