import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// A Delta table: its files are reached through its log (live, history, change data), its
/// subject's columns are typed and mapped by its schema, and one journal step erases the
/// subjects from the whole table in one commit, followed by a targeted vacuum.
struct DeltaDatasetDriver: DatasetDriver {
    let spec: DatasetSpec

    var formatName: String { "parquet" }
    var hasTransactionLog: Bool { true }
    var erasesInOneCommit: Bool { true }

    /// Partition values come from the log per file (see `scanOptions`), never from folder names.
    func baseOptions(_ subject: FormatOptions) -> FormatOptions { subject }

    func scanOptions(_ lethe: Lethe) async throws -> FormatOptions? { try await lethe.deltaScanOptions(spec, snapshot: nil) }

    /// For a table indexed before, only the files added by the commits since the last version
    /// indexed; else every file any retained version reaches.
    func indexListing(_ lethe: Lethe) async throws -> Lethe.IndexListing {
        let d = spec
        let setting = Lethe.deltaIndexSetting(d)
        func state(_ version: Int64, _ o: FormatOptions?, _ partitions: [String: CanonicalType]) -> (String, String) {
            let cols = (o?.subject.fields ?? []).map { JSONValue.array($0.components.map { .string(String(decoding: $0, as: UTF8.self)) }) }
            let utc = (o?.subject.fields ?? []).map { f in o?.timestampUTC[f].map(JSONValue.bool) ?? .null }
            return (setting, JSONValue.object(["version": .int(version), "columns": .array(cols),
                                               "partitions": .object(partitions.mapValues { .string($0.deltaName) }),
                                               "utc": .array(utc),
                                               "checks": .int(Lethe.deltaCheckRules)]).encodedText)
        }
        if let (version, objects, o, partitions) = try await lethe.deltaCommitsSince(d, setting: setting) {
            return Lethe.IndexListing(objects: objects, options: o, incremental: true, state: state(version, o, partitions))
        }
        let t = lethe.deltaTable(d)
        let s = try await t.snapshot()
        // A table Lethe cannot erase from correctly is refused by name here, at `index`, before
        // anyone files or approves a request for it (`.unsupported`, recorded per dataset).
        try t.checkWritable(s)
        let o = try await lethe.deltaScanOptions(d, snapshot: s)
        return Lethe.IndexListing(objects: try await lethe.deltaObjects(d, snapshot: s).map(\.0), options: o, incremental: false,
                                  state: state(s.version, o, try lethe.deltaSubjectPartitions(d, s.metadata)))
    }

    /// Every file a retained version reaches, plus the Parquet files under the table that no retained
    /// version names (`unnamed`: an interrupted write, Lethe's or another tool's, left them; they may
    /// hold a subject's rows, so verification reads them too).
    func objects(_ lethe: Lethe) async throws -> DatasetObjects {
        let d = spec
        let t = lethe.deltaTable(d)
        let s = try await t.snapshot()
        let named = try await lethe.deltaObjects(d, snapshot: s).map(\.0)
        let known = Set(named.map(\.key))
        let unnamed = try await lethe.store.list(prefix: d.path).filter { o in
            let rel = o.key.dropFirst(d.path.isEmpty ? 0 : d.path.count + 1)
            let base = rel.split(separator: "/").last.map(String.init) ?? ""
            return !known.contains(o.key) && !rel.hasPrefix("_delta_log/") && !base.hasPrefix(".") && base.hasSuffix(".parquet")
        }
        var o = try await lethe.deltaScanOptions(d, snapshot: s)
        // Partition values of an unnamed file: from its Hive-style folders (the log has none for it).
        let partitions = try lethe.deltaSubjectPartitions(d, s.metadata)
        if !unnamed.isEmpty, !partitions.isEmpty, case .perObject(var table)? = o?.partitions {
            for f in unnamed {
                let hive = FormatOptions.hiveValues(f.key, below: t.root)
                var parts: [FieldPath: PartitionValue] = [:]
                for (physical, type) in partitions {
                    let field = FieldPath(components: [Array(physical.utf8)])
                    if case .value(let raw)? = hive[field] {
                        parts[field] = Lethe.partitionValue(String(decoding: raw, as: UTF8.self), type)
                    } else if hive[field] != nil {
                        parts[field] = .null
                    }
                }
                table[f.key] = parts
            }
            o?.partitions = .perObject(table)
        }
        return DatasetObjects(objects: named + unnamed, options: o, unnamed: Set(unnamed.map(\.key)), hidden: [])
    }

    func roles(_ lethe: Lethe) async throws -> [String: DeltaFileRole] {
        var out: [String: DeltaFileRole] = [:]
        for (o, r) in try await lethe.deltaObjects(spec) { out[o.key] = r }
        return out
    }

    func logResidue(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]]? {
        try await lethe.deltaLogResidue(spec, subjects: subjects)
    }

    /// From the table's schema: a Delta `timestamp` holds microseconds, whatever its files store (INT96 is cut to them).
    func subjectColumnTypes(_ subject: SubjectSpec, _ lethe: Lethe) async throws -> [Int: CanonicalType] {
        lethe.deltaSubjectTypes(spec, try await lethe.deltaTable(spec).snapshot().metadata)
    }

    func erase(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?, _ lethe: Lethe) async throws {
        try await lethe.eraseDelta(job: job, step: step, report: &report, events: events)
    }
}
