import LetheCore
import LetheStorage
import LetheFormats
import DeltaLake
import LetheCatalog

/// Subjects held in partition columns (a lake partitioned by customer or tenant).
///
/// A partition value is constant for a whole file, and is not stored in it: Delta keeps
/// it in the log (`partitionValues`), Hive-style datasets in a `field=value` folder. The
/// formats take such a subject part from `FormatOptions.constants`; this file fills them
/// for Delta tables (plain datasets get `PartitionSource.hive` from `options(for:)`) and
/// finds the files whose partition names an erased subject, so that their names leave
/// the log and their folders the lake.
extension Lethe {
    /// A Delta table's partition columns among the subject's fields: physical name → type.
    /// Throws `unsupported` for a partition column whose type cannot hold a subject.
    func deltaSubjectPartitions(_ d: DatasetSpec, _ m: TableMetadata) throws -> [String: CanonicalType] {
        guard let subject = d.subject, !m.partitionColumns.isEmpty else { return [:] }
        var types: [String: String] = [:]
        if let schema = try? JSONValue.parse(Array(m.schemaString.utf8)) {
            for f in schema["fields"]?.array ?? [] {
                if let name = f["name"]?.string, let type = f["type"]?.string { types[name] = type }
            }
        }
        var out: [String: CanonicalType] = [:]
        for field in subject.fields where field.components.count == 1 {
            let name = String(decoding: field.components[0], as: UTF8.self)
            guard m.partitionColumns.contains(name) else { continue }
            guard let typeName = types[name], let type = CanonicalType(deltaType: typeName) else {
                throw LetheError(.unsupported, "partition column `\(name)` has type \(types[name] ?? "unknown"), which cannot hold a subject", at: d.path)
            }
            out[try m.physicalPath([name], table: d.path)[0]] = type
        }
        return out
    }

    /// The Delta type of each top-level subject field, by its index in the subject (for the
    /// field-aware log search: strings in the log compared in canonical form).
    func deltaSubjectTypes(_ d: DatasetSpec, _ m: TableMetadata) -> [Int: CanonicalType] {
        guard let subject = d.subject, let schema = try? JSONValue.parse(Array(m.schemaString.utf8)) else { return [:] }
        var types: [String: String] = [:]
        for f in schema["fields"]?.array ?? [] {
            if let name = f["name"]?.string, let type = f["type"]?.string { types[name] = type }
        }
        var out: [Int: CanonicalType] = [:]
        for (i, field) in subject.fields.enumerated() where field.components.count == 1 {
            if let t = types[String(decoding: field.components[0], as: UTF8.self)].flatMap(CanonicalType.init(deltaType:)) { out[i] = t }
        }
        return out
    }

    /// Each file's subject partition values, canonical by the column's type, keyed by
    /// object key and physical field, set on `o` (`partitions`, `absentIsNullByObject`). `files` are
    /// log paths with their `partitionValues` (nil when the action has none: a `remove` without
    /// extended metadata, whose values are then read from its Hive-style folder names, as writers
    /// without column mapping lay them out). A file whose `partitionValues` lack a column was
    /// written before the table was partitioned by it (partitioning changes only by overwrite,
    /// so such a file is history): the subject part is read from the file's own column, and a
    /// file without that column holds none (`spark/delta-0.1.0`: `id` stored in the files, then
    /// the table repartitioned by `id`; `time-travel-partition-changes-b`: `part5` then `part2`).
    func applyDeltaPartitions(to o: inout FormatOptions, _ t: DeltaTable, columns: [String: CanonicalType],
                              files: [(path: String, values: [String: String?]?)]) {
        var table: [String: [FieldPath: PartitionValue]] = [:]
        var absent: [String: Set<FieldPath>] = [:]
        for (path, values) in files {
            let key = t.key(forLogPath: path)
            let hive = values == nil ? FormatOptions.hiveValues(key, below: t.root) : [:]
            var parts: [FieldPath: PartitionValue] = [:]
            for (physical, type) in columns {
                let field = FieldPath(components: [Array(physical.utf8)])
                if let values {
                    if let value = values[physical] {
                        parts[field] = Self.partitionValue(value, type)
                    } else {
                        absent[key, default: []].insert(field)
                    }
                } else if case .value(let raw)? = hive[field] {
                    parts[field] = Self.partitionValue(String(decoding: raw, as: UTF8.self), type)
                } else if hive[field] != nil {
                    parts[field] = .null
                }
            }
            table[key] = parts
        }
        o.partitions = .perObject(table)
        o.absentIsNullByObject = absent
    }

    /// One partition value as the log holds it (text or null), in canonical form. An empty
    /// string is null (no subject); text that is not a value of the type is kept as written.
    static func partitionValue(_ text: String?, _ type: CanonicalType) -> PartitionValue {
        guard let text, !text.isEmpty else { return .null }
        return .value(CanonicalValue.fromText(text, as: type) ?? Array(text.utf8))
    }

    /// Every file the table's retained log names (live, history — tombstones and files of commits
    /// kept before a checkpoint —, change data) with its partition values.
    func deltaFilesWithPartitions(_ t: DeltaTable, _ s: Snapshot) async throws -> [(path: String, values: [String: String?]?)] {
        var out: [(path: String, values: [String: String?]?)] = []
        for (p, add) in s.files { out.append((p, add.partitionValues)) }
        let h = try await t.history(of: s)
        for p in h.dataFiles { out.append((p, h.partitionValues[p])) }
        for c in h.changeData { out.append((c.path, c.raw["partitionValues"]?.object.map { $0.mapValues(\.string) })) }
        return out
    }

    /// The log paths of a table's files whose partition values alone name one of `keys`
    /// (every subject part is a partition column): every row of such a file is the
    /// subject's, and its path (`year=2021/…`) names the subject. A value the log no longer
    /// holds (a scrub set it to null) is read from the path's Hive-style folder, so a resumed
    /// run still finds the names to take out.
    func deltaFilesNamingSubjects(_ t: DeltaTable, _ s: Snapshot, options: FormatOptions, types: [String: CanonicalType],
                                  keys: Set<SubjectKey>, normalization: Normalization = .none) async throws -> Set<String> {
        guard case .perObject = options.partitions else { return [] }
        let keyer = SubjectKeyer(hasher: secrets.hasher, normalization: normalization)
        var out = Set<String>()
        for (path, _) in try await deltaFilesWithPartitions(t, s) {
            let key = t.key(forLogPath: path)
            let o = options.resolved(for: key)
            let hive = FormatOptions.hiveValues(key, below: t.root)
            var parts: [[UInt8]] = []
            for f in o.subject.fields {
                if case .value(let v)? = o.constants[f] {
                    parts.append(v)
                } else if o.constants[f] != nil, case .value(let raw)? = hive[f], let type = types[String(decoding: f.components[0], as: UTF8.self)],
                          case .value(let v) = Self.partitionValue(String(decoding: raw, as: UTF8.self), type) {
                    parts.append(v)
                } else {
                    parts = []
                    break
                }
            }
            if !parts.isEmpty, keys.contains(keyer.key(SubjectID(parts: parts).bytes)) { out.insert(path) }
        }
        return out
    }

    /// After a targeted vacuum: the files whose partition names an erased subject leave the
    /// log's history under a keyed name (their `path` replaced by `lethe-erased/<HMAC>.parquet`,
    /// the subject's partition values by null), their change data files are deleted with
    /// their `cdc` actions, and the folders left empty are removed. A scrub cut short (a crash
    /// between two commit replacements) left a log every reader can read; this call finishes it,
    /// and deletes what the cut left in the erased partitions' folders. Returns the deleted keys.
    func scrubDeltaPartitions(_ d: DatasetSpec, keys: Set<SubjectKey>) async throws -> [String] {
        let t = deltaTable(d)
        let s = try await t.snapshot()
        guard let options = try await deltaScanOptions(d, snapshot: s) else { return [] }
        let types = try deltaSubjectPartitions(d, s.metadata)
        let named = try await deltaFilesNamingSubjects(t, s, options: options, types: types, keys: keys,
                                             normalization: d.normalization).filter { s.files[$0] == nil }   // history only
        var deleted: [String] = []
        if !named.isEmpty {
            let columns = Set(types.keys)
            var renamed: [String: String] = [:]
            for p in named { renamed[p] = "lethe-erased/" + secrets.hasher.key(forBytes: Array((s.metadata.id + "/" + p).utf8)).short + ".parquet" }
            let cdc = Set(s.cdcFiles.map(\.path)).intersection(named)
            deleted = try await t.scrubPartitionNames(renamed: renamed, dropChangeData: cdc, columns: columns)
        }
        if !types.isEmpty, case .perObject = options.partitions {
            deleted += try await deleteErasedPartitionLeftovers(d, t, options: options, types: types, keys: keys)
        }
        try await meta.removeObjects(dataset: d.name, keys: deleted)
        return deleted
    }

    /// The files a scrub cut short leaves in the folders of erased partitions, which the log no
    /// longer names: change data files whose `cdc` actions already name their empty copy (they
    /// hold the subject's rows), and Hadoop checksum sidecars (`.name.crc`) of files the log does
    /// not name. Each is deleted. Data files are not touched here (the targeted vacuum deletes
    /// them by the log), nor any file the log names.
    func deleteErasedPartitionLeftovers(_ d: DatasetSpec, _ t: DeltaTable, options: FormatOptions, types: [String: CanonicalType],
                                        keys: Set<SubjectKey>) async throws -> [String] {
        let s = try await t.snapshot()
        let h = try await t.history(of: s)
        var named = Set(s.files.keys.map(t.key(forLogPath:)))
        named.formUnion(h.dataFiles.map(t.key(forLogPath:)))
        named.formUnion(h.changeData.map { t.key(forLogPath: $0.path) })
        let keyer = SubjectKeyer(hasher: secrets.hasher, normalization: d.normalization)
        let root = t.root.isEmpty ? "" : t.root + "/"
        var out: [String] = []
        for o in try await store.list(prefix: root) where !o.key.hasPrefix(root + "_delta_log/") && !named.contains(o.key) {
            let slash = o.key.lastIndex(of: "/")
            let base = slash.map { String(o.key[o.key.index(after: $0)...]) } ?? o.key
            let sidecarOf = base.hasPrefix(".") && base.hasSuffix(".crc")
                ? (slash.map { String(o.key[...$0]) } ?? "") + String(base.dropFirst().dropLast(4)) : nil
            if let data = sidecarOf, named.contains(data) { continue }
            guard sidecarOf != nil || o.key.hasPrefix(root + "_change_data/") else { continue }
            let hive = FormatOptions.hiveValues(o.key, below: t.root)
            var parts: [[UInt8]] = []
            for f in options.subject.fields {
                guard let type = types[String(decoding: f.components[0], as: UTF8.self)], case .value(let raw)? = hive[f],
                      case .value(let v) = Self.partitionValue(String(decoding: raw, as: UTF8.self), type) else { parts = []; break }
                parts.append(v)
            }
            guard !parts.isEmpty, keys.contains(keyer.key(SubjectID(parts: parts).bytes)) else { continue }
            try await store.delete(o.key)
            out.append(o.key)
        }
        return out
    }
}
