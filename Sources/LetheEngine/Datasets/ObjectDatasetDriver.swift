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
        let all = try await lethe.store.list(prefix: spec.path)
        if all.isEmpty { try lethe.checkFolderExists(spec) }
        let objects = all.filter { !Lethe.isHidden($0.key, below: spec.path) }
        return Lethe.IndexListing(objects: objects, options: lethe.options(for: spec), incremental: false)
    }

    func objects(_ lethe: Lethe) async throws -> DatasetObjects {
        let all = try await lethe.store.list(prefix: spec.path)
        if all.isEmpty { try lethe.checkFolderExists(spec) }
        let hidden = all.filter { Lethe.isHidden($0.key, below: spec.path) }
        return DatasetObjects(objects: all.filter { !Lethe.isHidden($0.key, below: spec.path) }, options: lethe.options(for: spec),
                              unnamed: [], hidden: hidden)
    }

    func roles(_ lethe: Lethe) async throws -> [String: DeltaFileRole] { [:] }

    func logResidue(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]]? { nil }

    /// Parquet from the footer of one indexed object; none for JSON Lines and CSV (text as written).
    func subjectColumnTypes(_ subject: SubjectSpec, _ lethe: Lethe) async throws -> [Int: CanonicalType] {
        guard spec.format == .parquet else { return [:] }
        guard let o = try await lethe.meta.objects(dataset: spec.name).first(where: { $0.status == .indexed }),
              let info = try await lethe.store.head(o.key) else { return [:] }
        let hive = FormatOptions.hiveValues(o.key, below: spec.path)
        let types = try await ParquetFormat().canonicalTypes(of: info, in: lethe.store, fields: subject.fields.filter { hive[$0] == nil })
        var out: [Int: CanonicalType] = [:]
        for (i, f) in subject.fields.enumerated() { out[i] = types[f] }
        return out
    }

    func erase(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?, _ lethe: Lethe) async throws {
        try await lethe.rewrite(job: job, step: step, report: &report, events: events)
    }
}
