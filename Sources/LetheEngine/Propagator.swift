import Foundation
import LetheCore
import LetheCatalog
import DeltaLake
import LetheFormats
import LetheStorage

extension Lethe {
    /// The principal that approves requests propagated from a change feed.
    public static let propagationPrincipal = "propagation"

    static func propagationSetting(_ d: DatasetSpec) -> String { "propagation.\(d.name).version" }

    /// `deletes_from: change_feed`: for each such Delta dataset, reads the change feed
    /// since the last version seen, and for every subject whose rows another tool deleted
    /// (and who has no live row left there) files an erasure request, approved by the
    /// `propagation` principal, so `run` erases the subject from every dataset holding it
    /// (derived tables, the source's own history and change data). Lethe's own commits
    /// are skipped. The first run reads the feed from its beginning.
    public func propagate(datasets names: [String]? = nil, progress: (@Sendable (String) -> Void)? = nil) async throws -> PropagationReport {
        try await propagate(datasets: names, events: progress.map { p in { @Sendable e in p(e.message) } })
    }

    /// `propagate`, reporting typed events (see `EngineEvent`).
    public func propagate(datasets names: [String]?, events: EngineEvents?) async throws -> PropagationReport {
        var report = PropagationReport()
        for d in config.datasets where d.deletesFromChangeFeed && (names?.contains(d.name) ?? true) {
            let t = deltaTable(d)
            let snap = try await t.snapshot()
            try t.checkReadable(snap)
            guard snap.metadata.changeDataFeed else {
                throw LetheError(.badInput, "dataset `\(d.name)` declares `deletes_from: change_feed`, but the table's change data feed is off (set delta.enableChangeDataFeed=true)",
                                 at: "\(config.file):\(d.line)")
            }
            let setting = Self.propagationSetting(d)
            let from = (try await meta.setting(setting).flatMap { Int64($0) }).map { $0 + 1 } ?? 0
            var source = PropagationReport.Source(dataset: d.name, versions: nil, deleted: 0, filed: [], stillLive: 0, missingFiles: 0)
            guard from <= snap.version else { report.sources.append(source); continue }
            let opts = try await deltaScanOptions(d, snapshot: snap)!
            let columns = opts.subject.fields.map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
            let feed = try await t.deletedSubjects(from: from, to: snap.version, subjectColumns: columns, skippingEngine: "Lethe/")
            source.versions = from...snap.version
            source.deleted = feed.subjects.count
            source.missingFiles = feed.missingFiles.count
            var subjects: [SubjectID] = []
            if !feed.subjects.isEmpty {
                // Live rows left for a subject mean the delete was partial: not an erasure.
                _ = try await index(datasets: [d.name])
                let live = Set(try await deltaObjects(d, snapshot: snap).filter { $0.1 == .live }.map(\.0.key))
                for raw in feed.subjects.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                    let s = SubjectID(bytes: raw)
                    let postings = try await meta.locate(prefix: key(for: s, in: d).prefix64, dataset: d.name)
                    if postings.contains(where: { live.contains($0.object.key) }) { source.stillLive += 1 } else { subjects.append(s) }
                }
            }
            if !subjects.isEmpty {
                let filer = "change-feed:\(d.name)"
                let reason = "deleted from `\(d.name)` by another tool (change feed, versions \(from)-\(snap.version))"
                let filed = try await forget(subjects, reason: reason, by: filer, checkReason: false)
                for r in filed where r.status == .planned {
                    _ = try await approve([r.id], by: Self.propagationPrincipal)
                    source.filed.append(r.id)
                }
            }
            // The feed's cursor moves in the transaction that audits what was read.
            let version = String(snap.version)
            try await commit("cannot save setting \(setting)", audit: [AuditNote(.propagated, actor: Self.propagationPrincipal, [
                "dataset": .string(d.name), "from_version": .int(from), "to_version": .int(snap.version),
                "deleted_subjects": .int(Int64(source.deleted)), "still_live": .int(Int64(source.stillLive)),
                "missing_change_files": .int(Int64(source.missingFiles)),
                "requests": .array(source.filed.map(JSONValue.string)),
            ])]) { tx in
                try tx.setSetting(setting, version)
            }
            if source.deleted > 0 {
                events?(.changeFeedRead(dataset: d.name, fromVersion: from, toVersion: snap.version, deleted: source.deleted, filed: source.filed.count, stillLive: source.stillLive))
            }
            report.sources.append(source)
        }
        return report
    }
}
