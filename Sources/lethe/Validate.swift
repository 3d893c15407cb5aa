import ArgumentParser
import Foundation
import LetheCore
import LetheEngine
import LetheFormats

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a file's records against a dataset's schema; quarantine those that fail.",
        discussion: """
            Reads FILE (JSON Lines, CSV or Parquet, as the dataset's format; uncompressed), checks every \
            record against the dataset's `schema:` and writes the records that fail, with a reasons file \
            (line, field, rule — never a value; for Parquet the line is the row's 1-based ordinal), under \
            _quarantine/<dataset>/<run>/ in the lake (a Parquet file's failing rows as records.parquet). \
            Prints a summary with counts. Exit 1 when a record was quarantined (unless \
            --allow-quarantine), 2 on bad usage or an unreadable file. See docs/masking.md.
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset of lethe.yaml whose schema applies.") var dataset: String
    @Option(name: .customLong("in"), help: "The file to check.") var input: String
    @Option(name: .customLong("out"), help: "Write the records that passed here (as they were).") var output: String?
    @Option(help: "The quarantine's run id (one path segment; default: validate-<UTC time>-<random>).") var run: String?
    @Flag(help: "Exit 0 even when records were quarantined.") var allowQuarantine = false

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            guard let d = lethe.config.dataset(named: dataset) else {
                throw LetheError(.badUsage, "no dataset `\(dataset)` in \(global.config)")
            }
            let validator = try DatasetValidator(dataset: d)
            guard let data = FileManager.default.contents(atPath: input) else {
                throw LetheError(.badInput, "cannot read the file", at: input)
            }
            let result = try validator.validate(Array(data), name: input)
            let runID = run ?? Self.runID()
            let summary = try await QuarantineWriter(store: lethe.store).write(result, dataset: d, run: runID)
            if let output {
                // Atomic for a file; a device or FIFO (/dev/null) is written in place, never replaced by a rename.
                let atomic: Data.WritingOptions = isSpecialFile(output) ? [] : .atomic
                do { try Data(result.accepted).write(to: URL(fileURLWithPath: output), options: atomic) } catch {
                    throw LetheError(.io, "cannot write the accepted records", at: output)
                }
            }
            if global.json {
                out(ReportEncoder.text(summary))
            } else {
                out("\(summary.records) record(s): \(summary.accepted) valid, \(summary.quarantined) quarantined")
                for (rule, n) in summary.byRule.sorted(by: { $0.key < $1.key }) { out("  \(rule): \(n)") }
                if let why = summary.reasonsObject {
                    let objects = [summary.recordsObject, summary.unparsedObject].compactMap { $0 }.joined(separator: ", ")
                    out("quarantined to \(objects) (reasons: \(why))")
                }
            }
            return summary.quarantined > 0 && !allowQuarantine ? 1 : 0
        }
    }

    /// `validate-20261201T101500Z-1a2b3c4d`.
    static func runID() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "validate-\(f.string(from: Date()))-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }
}
