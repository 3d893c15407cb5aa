import ArgumentParser
import Foundation
import LetheCore
import LetheEngine
import LetheRuntime

enum Starter {
    static func config(lake: String) -> String {
        """
        # lethe.yaml — what Lethe needs to know about your lake.
        # Relative paths are relative to this file's folder.

        # The lake root: a folder, or s3://bucket/prefix with an `s3:` block (docs/scale-out.md).
        lake: \(lake)

        # Lethe's own state (SQLite database, keys). Keep it private: mode 0700.
        state: ./.lethe

        # Typed subject ids are never split: a composite subject (a `subject` list) is typed
        # as a JSON array of its parts, `lethe forget --subject-json '["t1","u-42"]'`.

        datasets:
          # Every object under `path` belongs to the dataset.
          - name: raw_events
            path: raw/events
            format: jsonl            # jsonl | csv (parquet and delta are coming); .gz is read and written as gzip
            subject: user.id         # the field naming the person: a column, a dotted JSON path, or a list (composite)
            pii: [user.email, ip]    # fields that hold personal data

          # A dataset derived from another is erased in the same request.
          # - name: silver_sessions
          #   path: silver/sessions
          #   format: csv
          #   subject: user_id
          #   derived_from: [raw_events]

          # An aggregate with no subject column is rebuilt after its upstream is erased,
          # by a command run in this folder.
          # - name: gold_daily
          #   path: gold/daily
          #   format: csv
          #   derived_from: [silver_sessions]
          #   rebuild: "python3 jobs/daily.py"

        """
    }
}

struct Quickstart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart",
        abstract: "Build a sample lake, index it, forget one subject end to end, print the report.",
        discussion:
            "The lake has raw JSON Lines events (some gzipped), bronze users and silver sessions in CSV derived from them, and a gold daily aggregate rebuilt by a Python job. Afterwards, `cd DIR` and try the other commands on it."
    )
    @Option(help: "Where to build the sample (must not exist, or be empty).") var dir: String = "./lethe-quickstart"
    @Option(help: "The subject to forget.") var subject: String = "u-00042"
    @Flag(help: "Replace an existing quickstart folder.") var force = false
    @Flag(help: "Print the final report as JSON.") var json = false

    func run() async throws {
        try await guarded {
            let fm = FileManager.default
            if let items = try? fm.contentsOfDirectory(atPath: dir), !items.isEmpty {
                guard force else { throw LetheError(.badUsage, "\(dir) exists and is not empty; pass --force to replace it") }
                guard fm.fileExists(atPath: dir + "/lethe.yaml") else {
                    throw LetheError(.badUsage, "\(dir) is not a quickstart folder (no lethe.yaml); refusing to replace it")
                }
                try fm.removeItem(atPath: dir)
            }
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let abs = (dir.hasPrefix("/") ? dir : fm.currentDirectoryPath + "/" + dir)
            func say(_ s: String) { if !json { out(s) } }

            say("1. building a sample lake in \(dir)")
            let t0 = Date()
            let built = try await SampleLake().build(in: abs)
            say("   \(built.events) events of \(built.users) users in \(built.objects) objects (\(String(format: "%.1f", Date().timeIntervalSince(t0)))s)")

            let lethe = try Runtime.open(config: try LakeConfig.load(path: abs + "/lethe.yaml"))
            say("2. indexing (lethe index)")
            let ir = try await lethe.index()
            say(String(format: "   %d objects, %lld records, %.1f MB in %.2fs", ir.objectsScanned, ir.records, Double(ir.bytesScanned) / 1e6, ir.seconds))

            let s = lethe.subject(subject)
            let before = try await lethe.locateRows(s)  // one entry per object: the sample lake has no Delta table
            say("3. locating subject \(lethe.key(for: s).short) (lethe locate \(subject))")
            for p in before.prefix(8) { say("   \(p.dataset)  \(p.object)  \(RecordOrdinal.records(p.rows)) row(s)") }
            if before.count > 8 { say("   … \(before.count - 8) more objects") }

            say("4. alice files the request (lethe forget \(subject) --by alice)")
            let r = try await lethe.forget([s], reason: "quickstart: GDPR Art. 17 request #1", by: "alice")[0]
            let plan = ErasurePlan.decode(r.plan ?? [])
            say(
                "   \(r.id) planned: \(plan?.totalObjects ?? 0) objects, \(plan?.totalRows ?? 0) rows; lineage: \(plan?.datasets.map { "\($0.name) (\($0.role))" }.joined(separator: " → ") ?? "")"
            )

            say("5. four eyes: alice may not approve her own request")
            do { _ = try await lethe.approve([r.id], by: "alice"); say("   !! self-approval was accepted") } catch let e as LetheError {
                say("   refused: \(e.message)")
            }
            _ = try await lethe.approve([r.id], by: "bob")
            say("   bob approves (lethe approve \(r.id) --by bob)")

            say("6. erasing, propagating, rebuilding, verifying (lethe run)")
            let t1 = Date()
            let run = try await lethe.run()
            say("   rewrote \(run.objectsRewritten) objects, dropped \(run.rowsDropped) rows in \(String(format: "%.2f", Date().timeIntervalSince(t1)))s")
            for b in run.rebuilds { say("   rebuilt \(b.dataset) with `\(b.command)`: exit \(b.exitStatus)") }
            for v in run.verifications {
                let how: String
                if let p = v.proof, p.hasPrefix("index") {
                    how =
                        "proof \(p): \(v.objectsListed ?? 0) objects listed, \(v.objectsReread ?? 0) read again, \(v.objectsIndexedNow ?? 0) indexed now; `lethe sweep` reads the whole lake and the state"
                } else {
                    how = "\(v.objectsScanned) objects, \(v.recordsScanned) records, \(v.stateFilesScanned) state files scanned without the index"
                }
                say("   verification: \(v.clean ? "clean" : "NOT clean: \(v.summary)") (\(how))")
            }
            for f in run.failed { say("   FAILED \(f.id): \(f.reason)") }

            let after = try await lethe.locate(s)
            let chain = try await lethe.auditReport(expectHead: nil)
            let final = try await lethe.request(r.id)
            say("7. report")
            let rawID =
                final.sealedSubject == nil
                ? "destroyed"
                : "sealed until the request is swept (destroyed \(lethe.config.rawIDDays) days after filing at the latest)"
            say("   request \(final.id): \(final.status.rawValue); raw id: \(rawID)")
            say("   index now holds \(after.count) object(s) for the subject (was \(before.count))")
            say("   audit log: \(chain.entries) entries, chain \(chain.ok ? "intact" : "BROKEN")")
            say("")
            say("Try it yourself:  cd \(dir) && lethe show \(r.id) && lethe audit")
            if json {
                out(
                    ReportEncoder.text(
                        QuickstartReport(
                            dir: abs, events: built.events, subjects: built.users, request: RequestView(final, withPlan: true),
                            objectsBefore: before.count, objectsAfter: after.count, rowsDropped: run.rowsDropped,
                            auditEntries: chain.entries, auditOk: chain.ok)))
            }
            return final.status == .verified && chain.ok ? 0 : 1
        }
    }
}
