import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// A plain dataset: the objects listed under its path (JSON Lines, CSV, Parquet, …), each
/// erased by rewriting it without the subjects' records (one journal step per object).
struct ObjectDatasetDriver: DatasetDriver {
    let spec: DatasetSpec

    var formatName: String { spec.format.rawValue }
    var hasTransactionLog: Bool { false }
    var erasesInOneCommit: Bool { false }

    func baseOptions(_ subject: FormatOptions) -> FormatOptions {
        var o = subject
        // A `field=value` folder below the dataset's path holds that subject part (Hive style).
        o.partitions = .hive(prefix: spec.path)
        return o
    }

    func scanOptions(_ lethe: Lethe) async throws -> FormatOptions? { lethe.options(for: spec) }

    /// Every object listed, hidden-by-name files left out.
    func indexListing(_ lethe: Lethe) async throws -> Lethe.IndexListing {
        let (objects, _) = try await listing(lethe)
        return Lethe.IndexListing(objects: objects, options: lethe.options(for: spec), incremental: false)
    }

    func objects(_ lethe: Lethe) async throws -> DatasetObjects {
        let (objects, hidden) = try await listing(lethe)
        return DatasetObjects(objects: objects, options: lethe.options(for: spec), unnamed: [], hidden: hidden)
    }

    /// The dataset's objects, listed page by page, apart from its hidden-by-name files. A listing
    /// with nothing in it checks that the dataset's folder exists.
    private func listing(_ lethe: Lethe) async throws -> (objects: [ObjectInfo], hidden: [ObjectInfo]) {
        var objects: [ObjectInfo] = [], hidden: [ObjectInfo] = []
        for try await page in lethe.store.list(prefix: spec.path, startAfter: nil) {
            for o in page {
                if Lethe.isHidden(o.key, below: spec.path) { hidden.append(o) } else { objects.append(o) }
            }
        }
        if objects.isEmpty && hidden.isEmpty { try lethe.checkFolderExists(spec) }
        // The dataset's quarantine (`_quarantine/<name>/`): its rejected records are the dataset's
        // records for forget requests; its other files (reasons, unparsed records) are searched for raw
        // ids as hidden files are. Nothing there is an error (most datasets have no quarantine).
        if let q = spec.quarantinePrefix {
            for try await page in lethe.store.list(prefix: q, startAfter: nil) {
                for o in page where o.key.hasPrefix(q) {
                    if spec.isQuarantineRecords(o.key) { objects.append(o) } else { hidden.append(o) }
                }
            }
        }
        return (objects, hidden)
    }

    func roles(_ lethe: Lethe) async throws -> [String: DeltaFileRole] { [:] }

    func logResidue(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]]? { nil }

    /// Parquet from the footer of one indexed object; none for JSON Lines and CSV (text as written).
    func subjectColumnTypes(_ subject: SubjectSpec, _ lethe: Lethe) async throws -> [Int: CanonicalType] {
        guard spec.format == .parquet else { return [:] }
        guard let o = try await lethe.meta.objects(dataset: spec.name).first(where: { $0.status == .indexed }),
            let info = try await lethe.store.head(o.key)
        else { return [:] }
        let hive = FormatOptions.hiveValues(o.key, below: spec.path)
        let types = try await ParquetFormat().canonicalTypes(of: info, in: lethe.store, fields: subject.fields.filter { hive[$0] == nil })
        var out: [Int: CanonicalType] = [:]
        for (i, f) in subject.fields.enumerated() { out[i] = types[f] }
        return out
    }

    func erase(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?, _ lethe: Lethe) async throws {
        try await lethe.rewrite(job: job, step: step, report: &report, events: events)
    }

    /// One step per object holding the subjects, by key; an object the index could not read gets
    /// a step for every request in scope.
    func planSteps(
        holders: [String: [ErasureRequest]]?, inScope: [ErasureRequest],
        quarantined: [IndexedObject]
    ) -> [(key: String, requests: [ErasureRequest])] {
        var objects = holders ?? [:]
        for q in quarantined { objects[q.key] = inScope }
        return objects.keys.sorted().map { ($0, objects[$0]!) }
    }

    func vacuum(_ mode: VacuumMode, dryRun: Bool, _ lethe: Lethe) async throws -> VacuumReport {
        throw LetheError(.badUsage, "dataset `\(spec.name)` is \(spec.format.rawValue): vacuum applies to Delta tables")
    }

    func rowRoles(_ lethe: Lethe) async throws -> RowRoles { .allLive(spec.name) }
}
