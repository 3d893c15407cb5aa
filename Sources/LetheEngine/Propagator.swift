import Foundation
import LetheCore
import LetheCatalog
import DeltaLake
import LetheFormats
import LetheStorage

/// `deletes_from: change_feed` (see `Lethe.propagate`): reads each such table's change feed since
/// the last version seen and turns the subjects another tool deleted into approved requests.
struct Propagator: Sendable {
    let config: LakeConfig
    let state: any StateStore
    /// The engine the propagator reads tables through and files and approves requests with.
    let lake: Lethe

    init(_ lake: Lethe) { config = lake.config; state = lake.meta; self.lake = lake }

    func propagate(datasets names: [String]?, events: EngineEvents?) async throws -> PropagationReport {
        var report = PropagationReport()
        for d in config.datasets where d.deletesFromChangeFeed && (names?.contains(d.name) ?? true) {
            report.sources.append(try await propagate(d, events: events))
        }
        return report
    }

    /// One table's feed, from the version after the cursor to the latest: its subjects deleted
    /// with no live row left are filed and approved; the cursor moves with its audit entry.
    private func propagate(_ d: DatasetSpec, events: EngineEvents?) async throws -> PropagationReport.Source {
        let driver = DeltaDatasetDriver(spec: d)  // `deletes_from: change_feed` is for Delta tables only (LakeConfig)
        let t = driver.table(lake)
        let snap = try await t.snapshot()
        try t.checkReadable(snap)
        guard snap.metadata.changeDataFeed else {
            throw LetheError(
                .badInput,
                "dataset `\(d.name)` declares `deletes_from: change_feed`, but the table's change data feed is off (set delta.enableChangeDataFeed=true)",
                at: "\(config.file):\(d.line)")
        }
        let from = (try await state.cursors.propagation(dataset: d.name)).map { $0 + 1 } ?? 0
        var source = PropagationReport.Source(dataset: d.name, versions: nil, deleted: 0, filed: [], stillLive: 0, missingFiles: 0)
        guard from <= snap.version else { return source }
        let subjects = try await erasedSubjects(driver, t, snap, from: from, source: &source)
        if !subjects.isEmpty {
            let filer = "change-feed:\(d.name)"
            let reason = "deleted from `\(d.name)` by another tool (change feed, versions \(from)-\(snap.version))"
            let filed = try await lake.forget(subjects, reason: reason, by: filer, checkReason: false)
            for r in filed where r.status == .planned {
                _ = try await lake.approve([r.id], by: Lethe.propagationPrincipal)
                source.filed.append(r.id)
            }
        }
        try await moveCursor(d, source, from: from, to: snap.version)
        if source.deleted > 0 {
            events?(
                .changeFeedRead(
                    dataset: d.name, fromVersion: from, toVersion: snap.version, deleted: source.deleted,
                    filed: source.filed.count, stillLive: source.stillLive))
        }
        return source
    }

    /// The subjects whose rows the feed's versions `from...` show deleted by another tool and who have
    /// no live row left in the table (live rows left mean the delete was partial: not an erasure).
    private func erasedSubjects(
        _ driver: DeltaDatasetDriver, _ t: DeltaTable, _ snap: Snapshot, from: Int64,
        source: inout PropagationReport.Source
    ) async throws -> [SubjectID] {
        let d = driver.spec
        let opts = try await driver.scanOptions(lake, snapshot: snap)!
        let columns = opts.subject.fields.map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
        let feed = try await t.deletedSubjects(from: from, to: snap.version, subjectColumns: columns, skippingEngine: "Lethe/")
        source.versions = from...snap.version
        source.deleted = feed.subjects.count
        source.missingFiles = feed.missingFiles.count
        guard !feed.subjects.isEmpty else { return [] }
        _ = try await lake.index(datasets: [d.name])
        let live = Set(try await driver.files(lake, snapshot: snap).filter { $0.1 == .live }.map(\.0.key))
        var subjects: [SubjectID] = []
        for raw in feed.subjects.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let s = SubjectID(bytes: raw)
            let postings = try await state.locate(prefix: lake.key(for: s, in: d).prefix64, dataset: d.name)
            if postings.contains(where: { live.contains($0.object.key) }) { source.stillLive += 1 } else { subjects.append(s) }
        }
        return subjects
    }

    /// The feed's cursor moves in the transaction that audits what was read.
    private func moveCursor(_ d: DatasetSpec, _ source: PropagationReport.Source, from: Int64, to version: Int64) async throws {
        let name = d.name
        try await lake.commit(
            "cannot save setting \(Lethe.propagationSetting(d))",
            audit: [
                AuditNote(
                    .propagated, actor: Lethe.propagationPrincipal,
                    [
                        "dataset": .string(name), "from_version": .int(from), "to_version": .int(version),
                        "deleted_subjects": .int(Int64(source.deleted)), "still_live": .int(Int64(source.stillLive)),
                        "missing_change_files": .int(Int64(source.missingFiles)),
                        "requests": .array(source.filed.map(JSONValue.string)),
                    ])
            ]
        ) { tx in
            try tx.cursors.setPropagation(version, dataset: name)
        }
    }
}

extension Lethe {
    /// The principal that approves requests propagated from a change feed.
    public static let propagationPrincipal = "propagation"

    static func propagationSetting(_ d: DatasetSpec) -> String { "propagation.\(d.name).version" }

    /// `deletes_from: change_feed`: for each such Delta dataset, reads the change feed
    /// since the last version seen, and for every subject whose rows another tool deleted
    /// (and who has no live row left there) files an erasure request, approved by the
    /// `propagation` principal, so `run` erases the subject from every dataset holding it
    /// (derived tables, the source's own history and change data). Lethe's own commits
    /// are skipped. The first run reads the feed from its beginning. `events`: what it reads (see `EngineEvent`).
    public func propagate(datasets names: [String]? = nil, events: EngineEvents? = nil) async throws -> PropagationReport {
        return try await durably {
            try await Propagator(self).propagate(datasets: names, events: events)
        }
    }
}
