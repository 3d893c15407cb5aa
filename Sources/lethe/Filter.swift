import ArgumentParser
import Foundation
import LetheCore
import LetheCatalog
import LetheStream
import LetheEngine
import LetheRuntime

/// Set by SIGINT/SIGTERM while `lethe filter --follow` runs (read between polls).
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

struct Filter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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
    @Option(help: "full: validate every line whole; fast: stop reading a line once its subject is found (see docs/stream.md).")
    var validate: String = "full"

    func run() async throws {
        try await guarded {
            guard let policy = MalformedPolicy(rawValue: onMalformed) else {
                throw LetheError(.badUsage, "--on-malformed must be pass, drop or fail")
            }
            guard let validation = Validation(rawValue: validate) else {
                throw LetheError(.badUsage, "--validate must be full or fast")
            }
            guard refresh > 0 && refresh <= 0.5 else { throw LetheError(.badUsage, "--refresh must be in (0, 0.5]") }
            if follow && input == nil { throw LetheError(.badUsage, "--follow needs --in FILE") }
            let config = try LakeConfig.load(path: global.config)
            var fields = field.map(FieldPath.init)
            if let dataset {
                guard let d = config.datasets.first(where: { $0.name == dataset }) else {
                    throw LetheError(.badUsage, "no dataset `\(dataset)` in \(global.config)")
                }
                guard let s = d.subject else { throw LetheError(.badUsage, "dataset `\(dataset)` has no subject field") }
                if fields.isEmpty { fields = s.fields }
            }
            if fields.isEmpty { fields = [FieldPath("user_id")] }
            guard case .folder(let folder) = config.state else {
                throw LetheError(.badInput, "`state: postgres://…` is not supported by this build yet; use a folder", at: config.file)
            }
            // The filter only reads: on a state folder it cannot write (another user's, a read-only
            // mount) it opens the state read-only and skips the one write it would make (tags for
            // requests filed before stream filtering existed).
            let writable = Runtime.stateIsWritable(config)
            let state = try Runtime.openState(config: config, readOnly: !writable)
            let (secrets, meta) = (state.secrets, state.state)
            if writable {
                try await Lethe.backfillStreamTags(meta: meta, secrets: secrets, now: Int64(Date().timeIntervalSince1970 * 1000))
            } else if case let untagged = try await meta.requestsWithoutStreamTag().filter({ $0.sealedSubject != nil }).count, untagged > 0 {
                err("lethe: \(untagged) request(s) filed before stream filtering have no stream tag and are not filtered yet; a writing command on this state (e.g. `lethe run`) gives them one")
            }
            let source: @Sendable (Int64) async throws -> DeletionChanges = { try await meta.deletionTags(since: $0) }
            let shared = SharedDeletionSet()
            // Start from the snapshot of the set if there is a usable one (one file read
            // instead of a row per forgotten subject), then catch up; else read it all.
            let snapshotPath = folder + "/" + DeletionSnapshot.fileName
            let newest = try await meta.deletionTags(since: Int64.max).latest
            var changed = true
            if let snap = DeletionSnapshot.load(path: snapshotPath, key: secrets.streamHasher), snap.cursor <= newest {
                shared.install(snap.set, cursor: snap.cursor)
                changed = try await shared.refresh(from: source)
            } else {
                try await shared.load(from: source)
            }
            if changed {
                DeletionSnapshot.save(shared.current, cursor: shared.currentCursor, key: secrets.streamHasher, to: snapshotPath)
            }
            // The full scan filled SQLite's page cache and the tag array is gone: give that
            // memory back to the system (glibc keeps freed pages of thread arenas otherwise).
            meta.releaseMemory()
            #if canImport(Glibc)
            if let f = dlsym(nil, "malloc_trim") {  // not exported by the Glibc module
                _ = unsafeBitCast(f, to: (@convention(c) (Int) -> Int32).self)(0)
            }
            #endif

            let inFD: Int32
            if let input {
                inFD = open(input, O_RDONLY | O_CLOEXEC)
                guard inFD >= 0 else { throw LetheError.io("cannot open the input", at: input, errno: errno) }
            } else {
                inFD = 0
            }
            defer { if inFD != 0 { close(inFD) } }
            let outFD: Int32
            if let output {
                outFD = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard outFD >= 0 else { throw LetheError.io("cannot create the output", at: output, errno: errno) }
            } else {
                outFD = 1
            }
            defer { if outFD != 1 { close(outFD) } }
            if follow { Self.installStopHandlers() }

            let filter = StreamFilter(fields: fields, streamKey: secrets.streamHasher, set: shared, onMalformed: policy,
                                      validation: validation)
            let pump = StreamPump(filter: filter, input: inFD, output: outFD)
            let interval = refresh
            let refresher = Task.detached {
                await shared.follow(source, interval: interval) { e in err("lethe: warning: deletion set refresh failed: \(e)") }
            }
            // The hot loop blocks in read(2): run it on its own thread, off the task pool.
            let box = PumpBox(pump)
            let following = follow
            let outcome: Result<Void, any Error> = await withCheckedContinuation { cont in
                let t = Thread {
                    let r = Result { try box.pump.run(follow: following) { stopRequested != 0 } }
                    cont.resume(returning: r)
                }
                t.stackSize = 1 << 22
                t.start()
            }
            refresher.cancel()
            let c = filter.counts
            let summary = "lethe filter: \(c.passed) passed, \(c.dropped) dropped, \(c.malformed) malformed, \(c.blank) blank line(s); \(c.bytes) bytes"
            if case .failure(let e as MalformedLine) = outcome {
                err("lethe: error: \(e.description)")
                report(c, summary, failedAt: e.line)
                return 2
            }
            if case .failure(let e) = outcome { throw e }
            report(c, summary, failedAt: nil)
            return 0
        }
    }

    private func report(_ c: StreamCounts, _ summary: String, failedAt: Int64?) {
        err(summary)
        guard global.json else { return }
        var o: [String: JSONValue] = [
            "passed": .int(c.passed), "dropped": .int(c.dropped), "malformed": .int(c.malformed),
            "blank": .int(c.blank), "bytes": .int(c.bytes),
        ]
        if let failedAt { o["failed_at_line"] = .int(failedAt) }
        let text = JSONValue.object(o).text
        if output != nil { out(text) } else { err(text) }
    }

    static func installStopHandlers() {
        var sa = sigaction()
        #if canImport(Glibc)
        sa.__sigaction_handler.sa_handler = { _ in stopRequested = 1 }
        #endif
        sa.sa_flags = 0  // no SA_RESTART: a blocked read returns EINTR
        sigemptyset(&sa.sa_mask)
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
    }
}

/// Hands the pump to the thread that runs it (used by that thread only, then read after it ends).
private final class PumpBox: @unchecked Sendable {
    let pump: StreamPump
    init(_ p: StreamPump) { pump = p }
}

/// The few JSON shapes the filter commands print.
struct Deletions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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
            let ch = try await meta.deletionTags(since: cursor)
            func hex(_ t: UInt64) -> String {
                let s = String(t, radix: 16)
                return String(repeating: "0", count: 16 - s.count) + s
            }
            let latest = ch.latest == Int64.min ? 0 : ch.latest
            if global.json {
                out(JSONValue.object([
                    "added": .array(ch.added.map { .string(hex($0)) }),
                    "removed": .array(ch.removed.map { .string(hex($0)) }),
                    "latest": .int(latest), "since": .int(cursor == Int64.min ? 0 : cursor),
                ]).text)
            } else {
                var text = ""
                for t in ch.added { text += "+" + hex(t) + "\n" }
                for t in ch.removed { text += "-" + hex(t) + "\n" }
                FileHandle.standardOutput.write(Data(text.utf8))
                out("# latest \(latest)")
            }
            return 0
        }
    }
}
