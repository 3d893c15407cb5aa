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
/// for Delta tables (plain datasets get `PartitionSource.hive` from their driver's `baseOptions`)
/// and finds the files whose partition names an erased subject, so that their names leave
/// the log and their folders the lake.
extension DeltaDatasetDriver {
    /// The table's partition columns among the subject's fields: physical name → type.
    /// Throws `unsupported` for a partition column whose type cannot hold a subject.
    func subjectPartitions(_ m: TableMetadata) throws -> [String: CanonicalType] {
        guard let subject = spec.subject, !m.partitionColumns.isEmpty else { return [:] }
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
                throw LetheError(.unsupported, "partition column `\(name)` has type \(types[name] ?? "unknown"), which cannot hold a subject", at: spec.path)
            }
            out[try m.physicalPath([name], table: spec.path)[0]] = type
        }
        return out
    }

    /// The Delta type of each top-level subject field, by its index in the subject (for the
    /// field-aware log search: strings in the log compared in canonical form).
    func subjectTypes(_ m: TableMetadata) -> [Int: CanonicalType] {
        guard let subject = spec.subject, let schema = try? JSONValue.parse(Array(m.schemaString.utf8)) else { return [:] }
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
    static func applyPartitions(
        to o: inout FormatOptions, _ t: DeltaTable, columns: [String: CanonicalType],
        files: [(path: String, values: [String: String?]?)]
    ) {
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
                        parts[field] = partitionValue(value, type)
                    } else {
                        absent[key, default: []].insert(field)
                    }
                } else if case .value(let raw)? = hive[field] {
                    parts[field] = partitionValue(String(decoding: raw, as: UTF8.self), type)
                } else if hive[field] != nil {
                    parts[field] = .null
                }
            }
            table[key] = parts
        }
        o.partitions = .perObject(table)
        o.absentIsNullByObject = absent
    }

    /// The partition values of files under the table that its log does not name, from their
    /// Hive-style folders (the log has none for them), added to `o`'s per-object table.
    static func applyHivePartitions(to o: inout FormatOptions?, _ t: DeltaTable, columns: [String: CanonicalType], keys: [String]) {
        guard !keys.isEmpty, !columns.isEmpty, case .perObject(var table)? = o?.partitions else { return }
        for key in keys {
            let hive = FormatOptions.hiveValues(key, below: t.root)
            var parts: [FieldPath: PartitionValue] = [:]
            for (physical, type) in columns {
                let field = FieldPath(components: [Array(physical.utf8)])
                if case .value(let raw)? = hive[field] {
                    parts[field] = partitionValue(String(decoding: raw, as: UTF8.self), type)
                } else if hive[field] != nil {
                    parts[field] = .null
                }
            }
            table[key] = parts
        }
        o?.partitions = .perObject(table)
    }

    /// One partition value as the log holds it (text or null), in canonical form. An empty
    /// string is null (no subject); text that is not a value of the type is kept as written.
    static func partitionValue(_ text: String?, _ type: CanonicalType) -> PartitionValue {
        guard let text, !text.isEmpty else { return .null }
        return .value(CanonicalValue.fromText(text, as: type) ?? Array(text.utf8))
    }

    /// Every file the table's retained log names (live, history — tombstones and files of commits
    /// kept before a checkpoint —, change data) with its partition values.
    static func filesWithPartitions(_ t: DeltaTable, _ s: Snapshot) async throws -> [(path: String, values: [String: String?]?)] {
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
    static func filesNamingSubjects(
        _ t: DeltaTable, _ s: Snapshot, options: FormatOptions, types: [String: CanonicalType],
        keys: Set<SubjectKey>, keyer: SubjectKeyer
    ) async throws -> Set<String> {
        guard case .perObject = options.partitions else { return [] }
        var out = Set<String>()
        for (path, _) in try await filesWithPartitions(t, s) {
            let key = t.key(forLogPath: path)
            let o = options.resolved(for: key)
            let hive = FormatOptions.hiveValues(key, below: t.root)
            var parts: [[UInt8]] = []
            for f in o.subject.fields {
                if case .value(let v)? = o.constants[f] {
                    parts.append(v)
                } else if o.constants[f] != nil, case .value(let raw)? = hive[f], let type = types[String(decoding: f.components[0], as: UTF8.self)],
                    case .value(let v) = partitionValue(String(decoding: raw, as: UTF8.self), type)
                {
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
}
