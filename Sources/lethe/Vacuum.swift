import ArgumentParser
import Foundation
import LetheCore
import LetheEngine

struct Vacuum: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vacuum",
        abstract: "Delete superseded Delta files: those holding erased subjects, or all past a retention.",
        discussion: """
            Without --retain: targeted physical erasure. Deletes the history and change-data
            files that still hold subjects of erased requests, scrubs their statistics (and
            any commitInfo naming a subject) from the log, and records in the audit log which
            versions time travel can no longer read. `lethe run` already does this for the
            tables it erases; run it by hand after restoring old files, say.
            With --retain HOURS: the standard Delta vacuum of every file the latest version
            does not reference, removed more than HOURS ago.
            """)
    @OptionGroup var global: Global
    @Option(help: "Only this dataset.") var dataset: String?
    @Option(help: "Standard vacuum: delete unreferenced files older than this many hours.") var retain: Double?
    @Flag(help: "List what would be deleted; change nothing.") var dryRun = false
    @Flag(help: "Allow a retention below the table's configured one.") var force = false

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            let reports = try await lethe.vacuum(dataset: dataset, retainHours: retain, dryRun: dryRun, force: force)
            if global.json {
                for r in reports { out(ReportEncoder.text(r)) }
            } else {
                if reports.isEmpty { out("no Delta datasets in \(global.config)") }
                for r in reports {
                    let verb = r.dryRun ? "would delete" : "deleted"
                    out("\(r.dataset) (\(r.mode)): \(verb) \(r.deleted.count) file(s)")
                    for k in r.deleted.prefix(20) { out("  \(k)") }
                    if r.deleted.count > 20 { out("  … \(r.deleted.count - 20) more") }
                    if !r.unreadableVersions.isEmpty {
                        out(
                            "  versions no longer readable by time travel: "
                                + r.unreadableVersions.map { "\($0.lowerBound)–\($0.upperBound)" }.joined(separator: ", "))
                    }
                }
            }
            return 0
        }
    }
}
