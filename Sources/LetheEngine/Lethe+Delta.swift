import Foundation
public import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
public import DeltaLake
import Logging

/// How a data file of a Delta table is reachable.
public enum DeltaFileRole: String, Sendable {
    /// In the latest version.
    case live
    /// Removed by a commit but still on storage: readable by time travel until vacuumed.
    case history
    /// A change data feed file.
    case cdc
}

extension Lethe {
    /// The object key marking a journal step that erases from a whole Delta table in one commit.
    static let deltaStepKey = JournalStep.deltaTableKey

    func deltaTable(_ d: DatasetSpec) -> DeltaTable { DeltaTable(store: store, root: d.path) }

    /// Every data file any retained version can reach, with its role. A live file the
    /// log names but the store lacks is an error naming the table, version and file.
    func deltaObjects(_ d: DatasetSpec, snapshot: Snapshot? = nil) async throws -> [(ObjectInfo, DeltaFileRole)] {
        let t = deltaTable(d)
        let s: Snapshot
        if let snapshot { s = snapshot } else { s = try await t.snapshot() }
        try t.checkReadable(s)
        var out: [(ObjectInfo, DeltaFileRole)] = []
        for (path, _) in s.files.sorted(by: { $0.key < $1.key }) {
            guard let info = try await store.head(t.key(forLogPath: path)) else {
                throw LetheError(.corrupt, "version \(s.version) names data file \(path), which the store lacks", at: d.path)
            }
            out.append((info, .live))
        }
        let history = try await t.history(of: s)
        for path in history.dataFiles.sorted() {
            if let info = try await store.head(t.key(forLogPath: path)) { out.append((info, .history)) }
        }
        for c in history.changeData {
            if let info = try await store.head(t.key(forLogPath: c.path)) { out.append((info, .cdc)) }
        }
        return out
    }

    /// The objects of a dataset verification reads, with the options to scan them (see `DatasetDriver.objects`).
    func datasetObjects(_ d: DatasetSpec) async throws -> DatasetObjects { try await driver(for: d).objects(self) }

    /// What `index` scans of a dataset: every object (and which known ones are gone), or for
    /// a Delta table indexed before, only the files added by the commits since the last
    /// version indexed. `state` is what to record once the objects are indexed.
    struct IndexListing {
        var objects: [ObjectInfo]
        var options: FormatOptions?
        /// The objects are only the new ones: known objects not listed are kept.
        var incremental: Bool
        var state: (setting: String, value: String)?
    }

    static func deltaIndexSetting(_ d: DatasetSpec) -> String { "delta.\(d.name).indexed" }
    /// The version of the protocol checks `index` applies; a table indexed under older rules is replayed (and checked) again.
    static let deltaCheckRules: Int64 = 2

    func indexListing(_ d: DatasetSpec) async throws -> IndexListing { try await driver(for: d).indexListing(self) }

    /// The files added (data and change data) by the commits after the version last indexed,
    /// reading only those commits; nil when a full replay is needed: never indexed, commits
    /// cleaned up, a metadata or protocol change, or another tool's VACUUM (files deleted).
    func deltaCommitsSince(_ d: DatasetSpec, setting: String) async throws -> (Int64, [ObjectInfo], FormatOptions?, [String: CanonicalType])? {
        guard let text = try await meta.setting(setting), let j = try? JSONValue.parse(Array(text.utf8)),
              let last = j["version"]?.int, let cols = j["columns"]?.array, j["checks"]?.int == Self.deltaCheckRules,
              var o = options(for: d), let partitionTypes = j["partitions"]?.object else { return nil }
        // Partition columns among the subject's (physical name → type), as recorded at the last full listing.
        var partitions: [String: CanonicalType] = [:]
        for (name, type) in partitionTypes {
            guard let t = type.string.flatMap(CanonicalType.init(deltaType:)) else { return nil }
            partitions[name] = t
        }
        var partitioned: [(path: String, values: [String: String?]?)] = []
        o.subject = SubjectSpec(fields: cols.map { FieldPath(components: ($0.array ?? []).compactMap(\.string).map { Array($0.utf8) }) })
        guard o.subject.fields.count == options(for: d)?.subject.fields.count else { return nil }
        // Timestamp subject fields as the schema types them (UTC or not), as recorded at the last full listing.
        guard let utc = j["utc"]?.array, utc.count == o.subject.fields.count else { return nil }
        for (f, u) in zip(o.subject.fields, utc) { if let b = u.bool { o.timestampUTC[f] = b } }
        let t = deltaTable(d)
        let vs = try await t.versions()
        guard let latest = vs.last, let first = vs.first, latest >= last else { return nil }
        guard latest > last else { return (last, [], o, partitions) }
        guard first <= last + 1 else { return nil }
        var objects: [ObjectInfo] = []
        for v in (last + 1)...latest {
            for a in try await t.commit(v) {
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
        if !partitions.isEmpty { applyDeltaPartitions(to: &o, t, columns: partitions, files: partitioned) }
        return (latest, objects, o, partitions)
    }

    /// How to scan a dataset's objects for its subject. For a Delta table in column
    /// mapping `name` mode the subject's logical path becomes its physical Parquet path.
    func scanOptions(for d: DatasetSpec) async throws -> FormatOptions? { try await driver(for: d).scanOptions(self) }

    /// `scanOptions` of a Delta dataset, at `snapshot` (the latest when nil).
    func deltaScanOptions(_ d: DatasetSpec, snapshot: Snapshot?) async throws -> FormatOptions? {
        guard var o = options(for: d) else { return nil }
        let s: Snapshot
        if let snapshot { s = snapshot } else { s = try await deltaTable(d).snapshot() }
        if s.metadata.columnMappingMode != "none" {
            o.subject = SubjectSpec(fields: try o.subject.fields.map { f in
                let logical = f.components.map { String(decoding: $0, as: UTF8.self) }
                return FieldPath(components: try s.metadata.physicalPath(logical, table: d.path).map { Array($0.utf8) })
            })
        }
        // Timestamps as the table's schema types them (`timestamp` is UTC even where a writer left the
        // Parquet annotation local), and subject parts held in partition columns from each file's
        // partitionValues (Lethe+Partitions.swift).
        for (i, type) in deltaSubjectTypes(d, s.metadata) {
            if case .timestamp(_, let utc) = type { o.timestampUTC[o.subject.fields[i]] = utc }
        }
        let partitions = try deltaSubjectPartitions(d, s.metadata)
        if !partitions.isEmpty {
            applyDeltaPartitions(to: &o, deltaTable(d), columns: partitions, files: try await deltaFilesWithPartitions(deltaTable(d), s))
        }
        return o
    }

    /// The subject's columns of a Delta dataset as physical paths (statistics and partition values use them).
    func deltaSubjectColumns(_ d: DatasetSpec, snapshot: Snapshot? = nil) async throws -> [[String]] {
        guard let o = try await deltaScanOptions(d, snapshot: snapshot) else { return [] }
        return o.subject.fields.map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// The files of a Delta dataset's log (commits, checkpoints, sidecars, `.crc`, compactions,
    /// `_last_checkpoint`) whose fields hold a subject's value, field-aware (see `SubjectValues`):
    /// for the verifier, whatever the ids' lengths. The log is read once for all the subjects.
    public func deltaLogResidue(_ d: DatasetSpec, subjects: [SubjectID]) async throws -> [SubjectID: [LogResidue]] {
        let t = deltaTable(d)
        let s = try await t.snapshot()
        let subject = try await deltaSubjectValues(d, s, subjects)
        var byName: [String: [SubjectID]] = [:]
        for id in subjects { if let parts = id.logParts { byName[SubjectValues.name(parts), default: []].append(id) } }
        var out: [SubjectID: [LogResidue]] = [:]
        for r in try await t.logResidue(subject) {
            for id in Set(r.values.flatMap { byName[$0] ?? [] }) { out[id, default: []].append(r) }
        }
        return out
    }

    /// The subjects as the log of a Delta dataset holds them: one value per subject column.
    func deltaSubjectValues(_ d: DatasetSpec, _ s: Snapshot, _ subjects: [SubjectID]) async throws -> SubjectValues {
        let columns = try await deltaSubjectColumns(d, snapshot: s)
        var values = SubjectValues(columns: columns, subjects: subjects.compactMap(\.logParts).filter { $0.count == columns.count })
        values.types = deltaSubjectTypes(d, s.metadata)   // log strings compared in canonical form (Lethe+Partitions.swift)
        return values
    }

    /// The roles of a Delta dataset's files, by object key (for `locate`).
    public func deltaRoles(dataset: String) async throws -> [String: DeltaFileRole] {
        guard let d = config.dataset(named: dataset) else { return [:] }
        return try await driver(for: d).roles(self)
    }

    /// Targeted vacuum of one Delta dataset for the given subjects: deletes the history
    /// and change-data files the index shows holding them, scrubs the log, updates the
    /// index, and audits which versions time travel can no longer read.
    @discardableResult
    func vacuumDelta(_ d: DatasetSpec, keys: Set<SubjectKey>, requestIDs: [String], job: String?,
                     dryRun: Bool = false) async throws -> DeltaVacuumResult? {
        let t = deltaTable(d)
        let s = try await t.snapshot()
        var historyPath: [String: String] = [:], cdcPath: [String: String] = [:]
        let history = try await t.history(of: s)
        for p in history.dataFiles { historyPath[t.key(forLogPath: p)] = p }
        for c in history.changeData { cdcPath[t.key(forLogPath: c.path)] = c.path }
        var paths = Set<String>()
        var cdcKeys = Set<String>()
        for k in keys {
            for p in try await meta.locate(prefix: k.prefix64, dataset: d.name) {
                if let path = historyPath[p.object.key] { paths.insert(path) }
                if cdcPath[p.object.key] != nil { cdcKeys.insert(p.object.key) }
            }
        }
        // Change data files the index has not seen yet (e.g. the one Lethe's own DELETE wrote, when
        // a run died right after committing) are scanned too: they hold the deleted rows.
        let indexed = Set(try await meta.objects(dataset: d.name).map(\.key))
        let unindexedCDC = Set(cdcPath.keys.filter { !indexed.contains($0) })
        guard !paths.isEmpty || !cdcKeys.isEmpty || !unindexedCDC.isEmpty else { return nil }
        if dryRun {
            return DeltaVacuumResult(deleted: paths.sorted().map(t.key(forLogPath:)) + cdcKeys.sorted(), unreadableVersions: [],
                                     scrubbedCommits: [], removedCheckpoints: [])
        }
        // Change data files keep every other subject's changes: each is rescanned for the rows to drop.
        var changeData: [String: [Int64]] = [:]
        if let opts = try await deltaScanOptions(d, snapshot: s) {
            let f = try format(for: d)
            let keyer = keyer(for: d)
            for k in cdcKeys.union(unindexedCDC).sorted() {
                guard let info = try await store.head(k) else { continue }
                var rows: [Int64] = []
                _ = try await f.scan(info, in: store, options: opts, keyer: keyer) { row, key in
                    if keys.contains(key) { rows.append(row) }
                }
                // An indexed file is kept even without rows: a resumed vacuum sets its logged size right.
                if cdcKeys.contains(k) || !rows.isEmpty { changeData[cdcPath[k]!] = rows }
            }
        }
        guard !paths.isEmpty || !changeData.isEmpty else { return nil }
        // Raw ids (in memory only) find the log fields that name a subject: statistics bounds of the
        // subject's columns, partition values, and commitInfo parameters (e.g. another tool's DELETE predicate).
        var raws: [SubjectID] = []
        for id in requestIDs {
            guard let r = try await meta.request(id: id), let sealed = r.sealedSubject else { continue }
            raws.append(try secrets.unseal(sealed, requestID: id))
        }
        let subject = try await deltaSubjectValues(d, s, raws)
        let result = try await t.vacuumTargeted(paths: paths, changeData: changeData, subject: subject, runID: job, now: now())
        let cdcOptions = try await deltaScanOptions(d, snapshot: s)
        for k in result.rewrittenChangeData { try await reindex(d, key: k, options: cdcOptions) }
        var details: [String: JSONValue] = [
            "dataset": .string(d.name), "mode": .string("targeted"),
            // Files by reference: a key may name a subject (a partition folder).
            "deleted_files": try await refsJSON(d.name, result.deleted),
            "rewritten_change_data_files": try await refsJSON(d.name, result.rewrittenChangeData),
            "unreadable_versions": .array(result.unreadableVersions.map { .string("\($0.lowerBound)-\($0.upperBound)") }),
            "scrubbed_commits": .array(result.scrubbedCommits.map(JSONValue.int)),
            "removed_checkpoints": .int(Int64(result.removedCheckpoints.count)),
            "rewritten_checkpoints": .int(Int64(result.rewrittenCheckpoints.count)),
            "removed_log_files": .int(Int64(result.removedLogFiles.count)),
            "requests": .array(requestIDs.map(JSONValue.string)),
        ]
        if let job { details["job"] = .string(job) }
        if !result.keptReachable.isEmpty { details["kept_reachable_files"] = .array(result.keptReachable.map(JSONValue.string)) }
        // The deleted files leave the index in the transaction that audits the vacuum.
        let deleted = result.deleted
        try await commit(Self.removeWhat(d, deleted), audit: [AuditNote(.deltaVacuum, details)]) { tx in
            try tx.removeObjects(dataset: d.name, keys: deleted)
        }
        return result
    }

    /// What the transaction removing vacuumed files from the index says when it cannot be written.
    static func removeWhat(_ d: DatasetSpec, _ keys: [String]) -> String {
        keys.count == 1 ? "cannot remove object \(keys[0]) of dataset \(d.name)" : "cannot remove \(keys.count) objects of dataset \(d.name)"
    }

    /// The journal step of a Delta dataset: one commit removing the subjects' rows
    /// from every live file that holds them.
    func eraseDelta(job: String, step: JournalStep, report: inout RunReport,
                    events: EngineEvents?) async throws {
        guard let d = config.dataset(named: step.dataset), d.subject != nil else {
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .failed, outcome: "dataset `\(step.dataset)` is gone from \(config.file)")
            return
        }
        do {
            let t = deltaTable(d)
            let drop = Set(step.subjectKeys)
            let parquet = ParquetFormat()
            let keyer = keyer(for: d)
            var perKey: [SubjectKey: Int64] = [:]
            var opts: FormatOptions?     // the last plan's (column mapping may change between plans)
            var erased: DeltaEraseResult?
            var replans = 0
            while true {
                let snap = try await t.snapshot()
                let options = try await deltaScanOptions(d, snapshot: snap)!
                opts = options
                // Live files the index names for these subjects, with the rows it names; each
                // file is read once, and only those rows' subjects are keyed again to confirm them.
                var candidates: [String: Set<Int64>] = [:]
                for k in drop {
                    for p in try await meta.locate(prefix: k.prefix64, dataset: d.name) { candidates[p.object.key, default: []].formUnion(p.rows) }
                }
                perKey = [:]
                let paths = snap.files.keys.filter { candidates[t.key(forLogPath: $0)] != nil }
                guard !paths.isEmpty else { break }
                let params: [String: JSONValue] = [
                    "predicate": .string("lethe erasure (rows of subjects by keyed hash)"),
                    "lethe_requests": .string(step.requestIDs.joined(separator: ",")),
                    "lethe_subject_keys": .string(drop.map(\.short).sorted().joined(separator: ",")),
                ]
                do {
                    let logical = (self.options(for: d)?.subject.fields ?? []).map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
                    erased = try await t.erase(files: paths, selecting: { path, file in
                        let k = t.key(forLogPath: path)
                        for l in logical { try t.checkFieldIDs(file, logical: l, snapshot: snap) }
                        var confirmed: [Int64] = []
                        for (row, key) in try parquet.keys(of: candidates[k]!.sorted(), in: file, objectKey: k, options: options, keyer: keyer)
                        where drop.contains(key) {
                            confirmed.append(row)
                            perKey[key, default: 0] += 1
                        }
                        return confirmed
                    }, operationParameters: params, now: now(), beforeCommit: deltaCommitHook, willWrite: journalDeltaWrite(d))
                    break
                } catch let e as LetheError where e.code == .conflict && replans < 5 {
                    // Another writer removed a file being rewritten (e.g. compaction): index its
                    // commits and plan again from the new version.
                    replans += 1
                    events?(.tableReplanning(dataset: d.name, reason: e.message, attempt: replans))
                    logger.info("delta re-plan", metadata: ["dataset": "\(d.name)", "reason": "\(e.message)"])
                    _ = try await index(datasets: [d.name])
                }
            }
            var details: [String: JSONValue] = [
                "job": .string(job), "dataset": .string(d.name), "requests": .array(step.requestIDs.map(JSONValue.string)),
            ]
            if let result = erased, !result.removed.isEmpty {
                // A kill from here on leaves the adopted files journaled as temporaries: the next run
                // finds the table's log naming them and forgets them without removing them.
                Failpoint.objectWritten()
                events?(.tableCommitted(dataset: d.name, version: result.version, droppedRows: result.droppedRows, files: result.removed.count))
                // The replacements are indexed when the job settles (they hold none of these subjects);
                // change data files hold them, and the vacuum below finds them through the index.
                let after = result.changeData.isEmpty ? opts : try await scanOptions(for: d)   // knows the new files' partitions
                for c in result.changeData { try await reindex(d, key: t.key(forLogPath: c.path), options: after) }
                details["version"] = .int(result.version)
                details["removed"] = try await refsJSON(d.name, result.removed.map(t.key(forLogPath:)))
                details["added"] = try await refsJSON(d.name, result.added.map { t.key(forLogPath: $0.path) })
                details["dropped"] = .object(Dictionary(uniqueKeysWithValues: perKey.map { ($0.key.hex, JSONValue.int($0.value)) }))
                details["kept"] = .int(result.keptRows)
                if replans > 0 { details["replans"] = .int(Int64(replans)) }
                // The commit adopted its files: they are data now, no longer the journal's to remove.
                // They leave the journal in the transaction that audits the commit.
                let adopted = result.added.map { t.key(forLogPath: $0.path) } + result.changeData.map { t.key(forLogPath: $0.path) }
                do {
                    try await commit("cannot forget \(adopted.count) temporary file(s)", audit: [AuditNote(.deltaCommit, details)]) { tx in
                        try tx.forgetTemporaries(adopted)
                    }
                } catch {
                    throw StepNotRecorded(error: error)   // the run stops; the next one resumes the step
                }
                report.objectsRewritten += result.added.count
                report.objectsRemoved += result.removed.count - result.added.count
                report.rowsDropped += result.droppedRows
            }
            // History and change data files (also when no live file held the subjects, e.g. another tool deleted them).
            if let v = try await vacuumDelta(d, keys: drop, requestIDs: step.requestIDs, job: job) {
                events?(.tableVacuumed(dataset: d.name, deletedFiles: v.deleted.count, rewrittenChangeData: v.rewrittenChangeData.count, scrubbedCommits: v.scrubbedCommits.count))
            }
            // Partitions named after a subject: their names leave the log, their change data and folders the lake.
            let scrubbed = try await scrubDeltaPartitions(d, keys: drop)
            if !scrubbed.isEmpty { events?(.partitionChangeDataRemoved(dataset: d.name, count: scrubbed.count)) }
            try await meta.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: JSONValue.object(details).text)
        } catch let e as StepNotRecorded {
            throw e
        } catch {
            // Any failure (the erasure or the vacuum) leaves the step failed with the reason, never running.
            let why = (error as? LetheError)?.description ?? "\(error)"
            try await failStep(job: job, step: step, reason: "\(d.name): \(why)", events: events)
        }
    }
}

extension Lethe {
    /// `lethe vacuum`: targeted (no retention) deletes the history and change-data files
    /// that hold subjects of erased requests and scrubs the log; with `retainHours`, the
    /// standard vacuum of every unreferenced file older than the retention, refused
    /// below the table's configured retention unless `force`.
    public func vacuum(dataset: String?, retainHours: Double?, dryRun: Bool, force: Bool) async throws -> [VacuumReport] {
        var chosen = config.datasets.filter { driver(for: $0).hasTransactionLog }
        if let dataset {
            guard let d = config.dataset(named: dataset) else { throw LetheError(.badUsage, "no dataset named `\(dataset)` in \(config.file)") }
            guard driver(for: d).hasTransactionLog else { throw LetheError(.badUsage, "dataset `\(dataset)` is \(d.format.rawValue): vacuum applies to Delta tables") }
            chosen = [d]
        }
        var out: [VacuumReport] = []
        for d in chosen {
            let t = deltaTable(d)
            if let retainHours {
                let s = try await t.snapshot()
                try t.checkWritable(s)
                let configured = t.configuredRetentionHours(s)
                if retainHours < configured && !force {
                    throw LetheError(.badUsage, "dataset `\(d.name)`: --retain \(retainHours) is below the table's retention of \(configured) hours; readers of older versions may fail (pass --force to do it anyway)")
                }
                let deleted = try await t.vacuumStandard(retainHours: retainHours, now: now(), dryRun: dryRun)
                if !dryRun {
                    try await commit(Self.removeWhat(d, deleted), audit: [AuditNote(.deltaVacuum, [
                        "dataset": .string(d.name), "mode": .string("retention"),
                        "retain_hours": .double(retainHours), "deleted_files": .int(Int64(deleted.count)),
                    ])]) { tx in
                        try tx.removeObjects(dataset: d.name, keys: deleted)
                    }
                }
                out.append(VacuumReport(dataset: d.name, mode: "retention", deleted: deleted, unreadableVersions: [], dryRun: dryRun))
            } else {
                let erased = try await meta.requests(status: nil).filter { $0.status == .erased || $0.status == .verified }
                let nfc = nfcKeys(erased)
                let keys = Set(erased.map { subjectKey(of: $0, in: d, nfc) })
                let r = try await vacuumDelta(d, keys: keys, requestIDs: erased.map(\.id), job: nil, dryRun: dryRun)
                if !dryRun { _ = try await scrubDeltaPartitions(d, keys: keys) }
                out.append(VacuumReport(dataset: d.name, mode: "targeted", deleted: r?.deleted ?? [],
                                        unreadableVersions: r?.unreadableVersions ?? [], dryRun: dryRun))
            }
        }
        return out
    }
}

extension Lethe {
    /// `locate` with each object's role: for Delta tables, live rows apart from rows only
    /// time travel reaches (removed files, rows deleted by a deletion vector) and change data.
    public func locateRows(_ subject: SubjectID) async throws -> [LocatedRows] {
        var out: [LocatedRows] = []
        var tables: [String: (roles: [String: DeltaFileRole], live: [String: AddFile], table: DeltaTable)] = [:]
        for p in try await locate(subject) {
            guard let d = config.dataset(named: p.object.dataset), driver(for: d).hasTransactionLog else {
                out.append(LocatedRows(dataset: p.object.dataset, object: p.object.key, role: .live, rows: p.rows))
                continue
            }
            if tables[d.name] == nil {
                let t = deltaTable(d)
                let s = try await t.snapshot()
                var roles: [String: DeltaFileRole] = [:]
                for (o, r) in try await deltaObjects(d, snapshot: s) { roles[o.key] = r }
                var live: [String: AddFile] = [:]
                for (path, add) in s.files { live[t.key(forLogPath: path)] = add }
                tables[d.name] = (roles, live, t)
            }
            let info = tables[d.name]!
            let role = info.roles[p.object.key] ?? .history
            if role == .live, let add = info.live[p.object.key], add.deletionVector != nil {
                let deleted = Set(try await info.table.deletedRows(add))
                let kept = p.rows.filter { !deleted.contains($0) }, gone = p.rows.filter { deleted.contains($0) }
                if !kept.isEmpty { out.append(LocatedRows(dataset: d.name, object: p.object.key, role: .live, rows: kept)) }
                if !gone.isEmpty { out.append(LocatedRows(dataset: d.name, object: p.object.key, role: .history, rows: gone)) }
            } else {
                out.append(LocatedRows(dataset: d.name, object: p.object.key, role: role, rows: p.rows))
            }
        }
        return out
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
