import LetheCore
import LetheStorage
import LetheFormats
import DeltaLake
import LetheCatalog

/// Partitions named after an erased subject: their names leave the log, their change data and
/// folders the lake (see DeltaDatasetDriver+Partitions.swift).
extension DeltaDatasetDriver {
    /// After a targeted vacuum: the files whose partition names an erased subject leave the
    /// log's history under a keyed name (their `path` replaced by `lethe-erased/<HMAC>.parquet`,
    /// the subject's partition values by null), their change data files are deleted with
    /// their `cdc` actions, and the folders left empty are removed. A scrub cut short (a crash
    /// between two commit replacements) left a log every reader can read; this call finishes it,
    /// and deletes what the cut left in the erased partitions' folders. Returns the deleted keys.
    func scrubPartitions(keys: Set<SubjectKey>, _ lethe: Lethe) async throws -> [String] {
        let t = table(lethe)
        let s = try await t.snapshot()
        guard let options = try await scanOptions(lethe, snapshot: s) else { return [] }
        let types = try subjectPartitions(s.metadata)
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher, normalization: spec.normalization)
        let named = try await Self.filesNamingSubjects(t, s, options: options, types: types, keys: keys, keyer: keyer)
            .filter { s.files[$0] == nil }  // history only
        var deleted: [String] = []
        if !named.isEmpty {
            let columns = Set(types.keys)
            var renamed: [String: String] = [:]
            for p in named {
                renamed[p] = "lethe-erased/" + lethe.secrets.hasher.key(forBytes: Array((s.metadata.id + "/" + p).utf8)).short + ".parquet"
            }
            let cdc = Set(s.cdcFiles.map(\.path)).intersection(named)
            deleted = try await t.scrubPartitionNames(renamed: renamed, dropChangeData: cdc, columns: columns)
        }
        if !types.isEmpty, case .perObject = options.partitions {
            deleted += try await deleteErasedPartitionLeftovers(t, options: options, types: types, keys: keys, keyer: keyer, lethe.store)
        }
        try await lethe.meta.removeObjects(dataset: spec.name, keys: deleted)
        return deleted
    }

    /// The files a scrub cut short leaves in the folders of erased partitions, which the log no
    /// longer names: change data files whose `cdc` actions already name their empty copy (they
    /// hold the subject's rows), and Hadoop checksum sidecars (`.name.crc`) of files the log does
    /// not name. Each is deleted. Data files are not touched here (the targeted vacuum deletes
    /// them by the log), nor any file the log names.
    private func deleteErasedPartitionLeftovers(
        _ t: DeltaTable, options: FormatOptions, types: [String: CanonicalType],
        keys: Set<SubjectKey>, keyer: SubjectKeyer, _ store: any ObjectStore
    ) async throws -> [String] {
        let s = try await t.snapshot()
        let h = try await t.history(of: s)
        var named = Set(s.files.keys.map(t.key(forLogPath:)))
        named.formUnion(h.dataFiles.map(t.key(forLogPath:)))
        named.formUnion(h.changeData.map { t.key(forLogPath: $0.path) })
        let root = t.root.isEmpty ? "" : t.root + "/"
        // The listing is read whole, page by page, before anything is deleted from under it.
        var out: [String] = []
        for try await page in store.list(prefix: root, startAfter: nil) {
            for o in page where !o.key.hasPrefix(root + "_delta_log/") && !named.contains(o.key) {
                if Self.isErasedPartitionLeftover(
                    o.key, root: root, table: t, named: named, options: options, types: types,
                    keys: keys, keyer: keyer)
                {
                    out.append(o.key)
                }
            }
        }
        if !out.isEmpty { try await store.delete(out) }
        return out
    }

    /// True for a change data file or a checksum sidecar (of a file the log does not name) in the
    /// folder of a partition that names one of `keys`.
    private static func isErasedPartitionLeftover(
        _ key: String, root: String, table t: DeltaTable, named: Set<String>,
        options: FormatOptions, types: [String: CanonicalType],
        keys: Set<SubjectKey>, keyer: SubjectKeyer
    ) -> Bool {
        let slash = key.lastIndex(of: "/")
        let base = slash.map { String(key[key.index(after: $0)...]) } ?? key
        let sidecarOf =
            base.hasPrefix(".") && base.hasSuffix(".crc")
            ? (slash.map { String(key[...$0]) } ?? "") + String(base.dropFirst().dropLast(4)) : nil
        if let data = sidecarOf, named.contains(data) { return false }
        guard sidecarOf != nil || key.hasPrefix(root + "_change_data/") else { return false }
        let hive = FormatOptions.hiveValues(key, below: t.root)
        var parts: [[UInt8]] = []
        for f in options.subject.fields {
            guard let type = types[String(decoding: f.components[0], as: UTF8.self)], case .value(let raw)? = hive[f],
                case .value(let v) = partitionValue(String(decoding: raw, as: UTF8.self), type)
            else { return false }
            parts.append(v)
        }
        return !parts.isEmpty && keys.contains(keyer.key(SubjectID(parts: parts).bytes))
    }
}
