import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// How a data file of a Delta table is reachable.
public enum DeltaFileRole: String, Sendable {
    /// In the latest version.
    case live
    /// Removed by a commit but still on storage: readable by time travel until vacuumed.
    case history
    /// A change data feed file.
    case cdc
}

/// Reading a Delta table through its log: its files and their roles, the commits since the
/// version last indexed, the options to scan it, and the log files naming a subject.
extension DeltaDatasetDriver {
    /// The table at the dataset's path in the lake's store.
    func table(_ lethe: Lethe) -> DeltaTable { DeltaTable(store: lethe.store, root: spec.path, snapshots: lethe.deltaSnapshots) }

    /// Every data file any retained version can reach, with its role. A live file the
    /// log names but the store lacks is an error naming the table, version and file.
    /// The files' metadata comes from one paged listing of the table (`listing`, or taken here
    /// after the snapshot), not a `head` per file; a path outside the table is looked up alone.
    /// `history`: the snapshot's history when the caller has it (`DeltaTable.history(of:)` without `naming`).
    func files(_ lethe: Lethe, snapshot: Snapshot? = nil, listing: TableListing? = nil, history known: DeltaHistory? = nil) async throws
        -> [(ObjectInfo, DeltaFileRole)]
    {
        let t = table(lethe), store = lethe.store
        let s: Snapshot
        if let snapshot { s = snapshot } else { s = try await t.snapshot() }
        try t.checkReadable(s)
        let listed: TableListing
        if let listing { listed = listing } else { listed = try await TableListing(spec.path, store) }
        func info(_ path: String) async throws -> ObjectInfo? {
            let key = t.key(forLogPath: path)
            if let known = listed.covers(key) { return known ? listed.objects[key] : nil }
            return try await store.head(key)
        }
        var out: [(ObjectInfo, DeltaFileRole)] = []
        for (path, _) in s.files.sorted(by: { $0.key < $1.key }) {
            guard let i = try await info(path) else {
                throw LetheError(.corrupt, "version \(s.version) names data file \(path), which the store lacks", at: spec.path)
            }
            out.append((i, .live))
        }
        let history: DeltaHistory
        if let known { history = known } else { history = try await t.history(of: s) }
        for path in history.dataFiles.sorted() {
            if let i = try await info(path) { out.append((i, .history)) }
        }
        for c in history.changeData {
            if let i = try await info(c.path) { out.append((i, .cdc)) }
        }
        return out
    }

    /// The objects under a table's folder outside its log, from one paged listing, by key.
    struct TableListing: Sendable {
        /// The table's folder: `root/` (empty for a table at the lake's root).
        let folder: String
        var objects: [String: ObjectInfo] = [:]

        init(_ root: String, _ store: any ObjectStore) async throws {
            folder = root.isEmpty ? "" : root + "/"
            let log = folder + "_delta_log/"
            for try await page in store.list(prefix: root, skippingFolder: log) {
                for o in page where o.key.hasPrefix(folder) && !o.key.hasPrefix(log) { objects[o.key] = o }
            }
        }

        /// Whether `key` is listed (true/false) when the listing covers it: a plain key under the
        /// table's folder, outside its log. Nil for anything else (looked up alone).
        func covers(_ key: String) -> Bool? {
            guard key.hasPrefix(folder), !key.hasPrefix(folder + "_delta_log/") else { return nil }
            let rel = key.dropFirst(folder.count)
            guard !rel.isEmpty, !rel.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
            else { return nil }
            return objects[key] != nil
        }
    }

    /// The files added (data and change data) by the commits after the version last indexed,
    /// reading only those commits; nil when a full replay is needed: never indexed, commits
    /// cleaned up, a metadata or protocol change, or another tool's VACUUM (files deleted).
    /// The last tuple member: per object key, the commits read that name the file (for `DeltaCommitIndex`).
    func commitsSince(_ lethe: Lethe) async throws -> (Int64, [ObjectInfo], FormatOptions?, [String: CanonicalType], [String: [Int64]])? {
        guard let c = try await lethe.meta.cursors.deltaIndex(dataset: spec.name), c.checks == Self.checkRules,
            var o = lethe.options(for: spec)
        else { return nil }
        let last = c.version
        // Partition columns among the subject's (physical name → type), as recorded at the last full listing.
        var partitions: [String: CanonicalType] = [:]
        for (name, type) in c.partitions {
            guard let t = CanonicalType(deltaType: type) else { return nil }
            partitions[name] = t
        }
        o.subject = SubjectSpec(fields: c.columns.map { FieldPath(components: $0.map { Array($0.utf8) }) })
        guard o.subject.fields.count == lethe.options(for: spec)?.subject.fields.count else { return nil }
        // Timestamp subject fields as the schema types them (UTC or not), as recorded at the last full listing.
        guard c.utc.count == o.subject.fields.count else { return nil }
        for (f, u) in zip(o.subject.fields, c.utc) { if let b = u { o.timestampUTC[f] = b } }
        let t = table(lethe)
        // The log from the last version indexed on (a tail listing): none there means the log ends
        // before it (a table made again), which needs the full listing as before.
        let vs = try await t.versions(from: max(0, last))
        guard let latest = vs.last, let first = vs.first, latest >= last else { return nil }
        guard latest > last else { return (last, [], o, partitions, [:]) }
        guard first <= last + 1 else { return nil }
        guard let (objects, partitioned, naming) = try await filesAdded(t, (last + 1)...latest, lethe.store) else { return nil }
        if !partitions.isEmpty { Self.applyPartitions(to: &o, t, columns: partitions, files: partitioned) }
        return (latest, objects, o, partitions, naming)
    }

    /// The data and change data files the commits `versions` add, with their partition values; nil
    /// when one of them needs a full replay (a metadata or protocol change, another tool's VACUUM,
    /// an added file the store lacks).
    private func filesAdded(_ t: DeltaTable, _ versions: ClosedRange<Int64>, _ store: any ObjectStore) async throws
        -> ([ObjectInfo], [(path: String, values: [String: String?]?)], [String: [Int64]])?
    {
        var objects: [ObjectInfo] = []
        var partitioned: [(path: String, values: [String: String?]?)] = []
        var read: [(Int64, [DeltaAction])] = []
        for v in versions {
            let actions = try await t.commit(v)
            read.append((v, actions))
            for a in actions {
                switch a {
                case .metadata, .protocol:
                    return nil
                case .commitInfo(let c):
                    if let op = c["operation"]?.string, op.hasPrefix("VACUUM"), !(c["engineInfo"]?.string ?? "").hasPrefix("Lethe/") { return nil }
                case .add(let f):
                    guard let info = try await store.head(t.key(forLogPath: f.path)) else { return nil }
                    objects.append(info)
                    partitioned.append((f.path, f.partitionValues))
                case .cdc(let c):
                    if let info = try await store.head(t.key(forLogPath: c.path)) { objects.append(info) }
                    partitioned.append((c.path, c.raw["partitionValues"]?.object.map { $0.mapValues(\.string) }))
                default:
                    break
                }
            }
        }
        return (objects, partitioned, t.namingByKey(read))
    }

    /// How to scan the table's files for its subject at `snapshot` (the latest when nil). In column
    /// mapping `name` mode the subject's logical path becomes its physical Parquet path.
    func scanOptions(_ lethe: Lethe, snapshot: Snapshot?) async throws -> FormatOptions? {
        guard var o = lethe.options(for: spec) else { return nil }
        let t = table(lethe)
        let s: Snapshot
        if let snapshot { s = snapshot } else { s = try await t.snapshot() }
        if s.metadata.columnMappingMode != "none" {
            o.subject = SubjectSpec(
                fields: try o.subject.fields.map { f in
                    let logical = f.components.map { String(decoding: $0, as: UTF8.self) }
                    return FieldPath(components: try s.metadata.physicalPath(logical, table: spec.path).map { Array($0.utf8) })
                })
        }
        // Timestamps as the table's schema types them (`timestamp` is UTC even where a writer left the
        // Parquet annotation local), and subject parts held in partition columns from each file's
        // partitionValues (DeltaDatasetDriver+Partitions.swift).
        for (i, type) in subjectTypes(s.metadata) {
            if case .timestamp(_, let utc) = type { o.timestampUTC[o.subject.fields[i]] = utc }
        }
        let partitions = try subjectPartitions(s.metadata)
        if !partitions.isEmpty {
            Self.applyPartitions(to: &o, t, columns: partitions, files: try await Self.filesWithPartitions(t, s))
        }
        return o
    }

    /// The subject's columns as physical paths (statistics and partition values use them).
    func subjectColumns(_ lethe: Lethe, snapshot: Snapshot? = nil) async throws -> [[String]] {
        guard let o = try await scanOptions(lethe, snapshot: snapshot) else { return [] }
        return o.subject.fields.map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// The files of the table's log (commits, checkpoints, sidecars, `.crc`, compactions,
    /// `_last_checkpoint`) whose fields hold a subject's value, field-aware (see `SubjectValues`):
    /// for the verifier, whatever the ids' lengths. The log is read once for all the subjects.
    func logFilesNaming(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]] {
        let t = table(lethe)
        let s = try await t.snapshot()
        let subject = try await subjectValues(s, subjects, lethe)
        var byName: [String: [SubjectID]] = [:]
        for id in subjects { if let parts = id.logParts { byName[SubjectValues.name(parts), default: []].append(id) } }
        var out: [SubjectID: [LogResidue]] = [:]
        for r in try await t.logResidue(subject) {
            for id in Set(r.values.flatMap { byName[$0] ?? [] }) { out[id, default: []].append(r) }
        }
        return out
    }

    /// The object keys of every file any retained version of the Delta table at `root` names
    /// (live, removed, change data): a journaled file one of them names was adopted by a commit.
    static func namedKeys(_ root: String, _ store: any ObjectStore) async throws -> Set<String> {
        let t = DeltaTable(store: store, root: root)
        let s = try await t.snapshot()
        var out = Set(s.files.keys.map(t.key(forLogPath:)))
        let h = try await t.history(of: s)
        for p in h.dataFiles { out.insert(t.key(forLogPath: p)) }
        for c in h.changeData { out.insert(t.key(forLogPath: c.path)) }
        return out
    }

    /// The subjects as the table's log holds them: one value per subject column.
    func subjectValues(_ s: Snapshot, _ subjects: [SubjectID], _ lethe: Lethe) async throws -> SubjectValues {
        let columns = try await subjectColumns(lethe, snapshot: s)
        var values = SubjectValues(columns: columns, subjects: subjects.compactMap(\.logParts).filter { $0.count == columns.count })
        values.types = subjectTypes(s.metadata)  // log strings compared in canonical form (DeltaDatasetDriver+Partitions.swift)
        return values
    }
}

extension SubjectID {
    /// The parts of this subject as a Delta log's JSON can hold them (text), in order; nil when a
    /// part is not UTF-8 (raw bytes cannot stand in the log's JSON as such).
    var logParts: [String]? {
        var out: [String] = []
        for p in bytes.split(separator: SubjectID.partSeparator, omittingEmptySubsequences: false) {
            guard let s = String(validating: Array(p), as: UTF8.self) else { return nil }
            out.append(s)
        }
        return out
    }
}
