public import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
public import DeltaLake

/// The engine's calls that reach a dataset through its driver (`DatasetDriver`); what a Delta
/// table does is in `Datasets/DeltaDatasetDriver+*.swift`.
extension Lethe {
    /// The object key marking a journal step that erases from a whole Delta table in one commit.
    static let deltaStepKey = JournalStep.deltaTableKey

    /// The objects of a dataset verification reads, with the options to scan them (see `DatasetDriver.objects`).
    func datasetObjects(_ d: DatasetSpec) async throws -> DatasetObjects { try await driver(for: d).objects(self) }

    /// A dataset's format and listing, for a pass that reads it (verification, sweep): a failure is
    /// returned for the caller to report (cancellation is thrown).
    func formatAndObjects(_ d: DatasetSpec) async throws -> Result<(format: any RecordFormat, listing: DatasetObjects), any Error> {
        do {
            return .success((try format(for: d), try await datasetObjects(d)))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return .failure(error)
        }
    }

    /// What `index` scans of a dataset: every object (and which known ones are gone), or for
    /// a Delta table indexed before, only the files added by the commits since the last
    /// version indexed. `cursor` is what to record once the objects are indexed.
    struct IndexListing {
        /// A Delta table's index cursor, with its dataset.
        typealias Cursor = (dataset: String, cursor: DeltaIndexCursor)
        var objects: [ObjectInfo]
        var options: FormatOptions?
        /// The objects are only the new ones: known objects not listed are kept.
        var incremental: Bool
        var cursor: Cursor?
        /// A Delta table's commit index to store with its cursor (`DeltaCommitIndex`), with its dataset.
        var commitIndex: (dataset: String, update: DeltaCommitIndex.Update)? = nil
    }

    func indexListing(_ d: DatasetSpec) async throws -> IndexListing { try await driver(for: d).indexListing(self) }

    /// How to scan a dataset's objects for its subject. For a Delta table in column
    /// mapping `name` mode the subject's logical path becomes its physical Parquet path.
    func scanOptions(for d: DatasetSpec) async throws -> FormatOptions? { try await driver(for: d).scanOptions(self) }

    /// The files of a Delta dataset's log (commits, checkpoints, sidecars, `.crc`, compactions,
    /// `_last_checkpoint`) whose fields hold a subject's value, field-aware (see `SubjectValues`):
    /// for the verifier, whatever the ids' lengths. The log is read once for all the subjects.
    public func deltaLogResidue(_ d: DatasetSpec, subjects: [SubjectID]) async throws -> [SubjectID: [LogResidue]] {
        try await DeltaDatasetDriver(spec: d).logFilesNaming(subjects, self)
    }

    /// The roles of a Delta dataset's files, by object key (for `locate`).
    public func deltaRoles(dataset: String) async throws -> [String: DeltaFileRole] {
        guard let d = config.dataset(named: dataset) else { return [:] }
        return try await driver(for: d).roles(self)
    }

    /// `lethe vacuum`: targeted (no retention) deletes the history and change-data files
    /// that hold subjects of erased requests and scrubs the log; with `retainHours`, the
    /// standard vacuum of every unreferenced file older than the retention, refused
    /// below the table's configured retention unless `force`.
    public func vacuum(dataset: String?, retainHours: Double?, dryRun: Bool, force: Bool) async throws -> [VacuumReport] {
        return try await durably {
            var chosen = config.datasets.filter { driver(for: $0).hasTransactionLog }
            if let dataset {
                guard let d = config.dataset(named: dataset) else { throw LetheError(.badUsage, "no dataset named `\(dataset)` in \(config.file)") }
                chosen = [d]  // a dataset without a log refuses (its driver says why)
            }
            let mode: VacuumMode = retainHours.map { .retention(hours: $0, force: force) } ?? .targeted
            var out: [VacuumReport] = []
            for d in chosen { out.append(try await driver(for: d).vacuum(mode, dryRun: dryRun, self)) }
            return out
        }
    }

    /// `locate` with each object's role: for Delta tables, live rows apart from rows only
    /// time travel reaches (removed files, rows deleted by a deletion vector) and change data.
    public func locateRows(_ subject: SubjectID) async throws -> [LocatedRows] {
        var out: [LocatedRows] = []
        var roles: [String: RowRoles] = [:]
        for p in try await locate(subject) {
            guard let d = config.dataset(named: p.object.dataset) else {
                out += try await RowRoles.allLive(p.object.dataset).rows(p)
                continue
            }
            if roles[d.name] == nil { roles[d.name] = try await driver(for: d).rowRoles(self) }
            out += try await roles[d.name]!.rows(p)
        }
        return out
    }
}
