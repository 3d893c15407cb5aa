import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// Vacuum of a Delta table: targeted (the history and change data files holding erased subjects,
/// and the log scrubbed of them) or by retention (every unreferenced file older than it).
extension DeltaDatasetDriver {
    func vacuum(_ mode: VacuumMode, dryRun: Bool, _ lethe: Lethe) async throws -> VacuumReport {
        switch mode {
        case .retention(let hours, let force):
            return try await vacuumRetention(hours: hours, force: force, dryRun: dryRun, lethe)
        case .targeted:
            let (keys, ids) = try await erasedHere(lethe)
            let r = try await vacuumTargeted(keys: keys, requestIDs: ids, job: nil, dryRun: dryRun, lethe)
            if !dryRun {
                let scrubbed = try await scrubPartitions(keys: keys, lethe)
                // A bucket that keeps versions: the deleted and replaced files' versions (Lethe+Versions.swift).
                let deleted = Set((r?.deleted ?? []) + (r?.removedCheckpoints ?? []) + (r?.removedLogFiles ?? []) + scrubbed)
                _ = try await purgeNoncurrentVersions(requestIDs: ids, keys: keys, deleted: deleted, job: nil, lethe)
            }
            return VacuumReport(
                dataset: spec.name, mode: "targeted", deleted: r?.deleted ?? [],
                unreadableVersions: r?.unreadableVersions ?? [], dryRun: dryRun)
        }
    }

    /// The subject keys and ids of the erased and verified requests whose subjects the index finds in
    /// this table (or a sweep found in it), read a page at a time: only those are held, never every request.
    private func erasedHere(_ lethe: Lethe) async throws -> (Set<SubjectKey>, [String]) {
        var keys = Set<SubjectKey>()
        var ids: [String] = []
        for status in [RequestStatus.erased, .verified] {
            var after: String?
            repeat {
                let page = try await lethe.meta.requests.requests(status: status, after: after, limit: 1_000)
                after = page.next
                let nfc = lethe.nfcKeys(page.items)
                let keyOf = Dictionary(uniqueKeysWithValues: page.items.map { ($0.id, lethe.subjectKey(of: $0, in: spec, nfc)) })
                let found = try await lethe.meta.index.locate(prefixes: Array(Set(keyOf.values.map(\.prefix64))), dataset: spec.name)
                for r in page.items {
                    let k = keyOf[r.id]!
                    let swept = sweepFindings([r])
                    guard found[k.prefix64]?.isEmpty == false || !swept.log.isEmpty || !swept.objects.isEmpty else { continue }
                    keys.insert(k)
                    ids.append(r.id)
                }
            } while after != nil
        }
        return (keys, ids)
    }

    /// The standard vacuum of every unreferenced file older than `hours`, refused below the
    /// table's configured retention unless `force`; the deleted files leave the index in the
    /// transaction that audits the vacuum.
    private func vacuumRetention(hours: Double, force: Bool, dryRun: Bool, _ lethe: Lethe) async throws -> VacuumReport {
        let d = spec
        let t = table(lethe)
        let s = try await t.snapshot()
        try t.checkWritable(s)
        let configured = t.configuredRetentionHours(s)
        if hours < configured && !force {
            throw LetheError(
                .badUsage,
                "dataset `\(d.name)`: --retain \(hours) is below the table's retention of \(configured) hours; readers of older versions may fail (pass --force to do it anyway)"
            )
        }
        let deleted = try await t.vacuumStandard(retainHours: hours, now: lethe.now(), dryRun: dryRun)
        if !dryRun {
            try await lethe.commit(
                Self.removeWhat(d, deleted),
                audit: [
                    AuditNote(
                        .deltaVacuum,
                        [
                            "dataset": .string(d.name), "mode": .string("retention"),
                            "retain_hours": .double(hours), "deleted_files": .int(Int64(deleted.count)),
                        ])
                ]
            ) { tx in
                try tx.removeObjects(dataset: d.name, keys: deleted)
            }
        }
        return VacuumReport(dataset: d.name, mode: "retention", deleted: deleted, unreadableVersions: [], dryRun: dryRun)
    }

    /// What the transaction removing vacuumed files from the index says when it cannot be written.
    static func removeWhat(_ d: DatasetSpec, _ keys: [String]) -> String {
        keys.count == 1 ? "cannot remove object \(keys[0]) of dataset \(d.name)" : "cannot remove \(keys.count) objects of dataset \(d.name)"
    }

    /// The history and change data files of the table the index shows holding `keys`, by object key
    /// (history: its log path; change data: its log path), and the change data files it has not indexed.
    private struct VacuumTargets {
        var history: Set<String> = []  // log paths of history files to delete
        var cdcIndexed: Set<String> = []  // object keys of change data files holding the subjects
        var cdcUnindexed: Set<String> = []  // object keys of change data files the index has not seen
        var cdcPath: [String: String] = [:]  // object key → log path of every change data file
        var namedIn: [String: [Int64]] = [:]  // log path → retained commits naming it
        var letheVacuums: LetheVacuumCommits?  // where Lethe's VACUUM START and END commits are, as far as known
        var isEmpty: Bool { history.isEmpty && cdcIndexed.isEmpty && cdcUnindexed.isEmpty }
    }

    private func vacuumTargets(_ t: DeltaTable, _ s: Snapshot, keys: Set<SubjectKey>, _ lethe: Lethe) async throws -> VacuumTargets {
        // Small reads of the state, one after the other: run at once, they took as many of the pool's
        // connections, and a run's first such fan-out opened new ones (each parsing the schema and
        // compiling its statements again), which cost more than the reads. The table's index entries
        // are read only when the log names change data files (`unindexed`): nothing else needs them.
        let name = spec.name, meta = lethe.meta
        func unindexed(_ cdcPath: [String: String]) async throws -> Set<String> {
            guard !cdcPath.isEmpty else { return [] }
            let indexed = Set(try await meta.objects(dataset: name).map(\.key))
            return Set(cdcPath.keys.filter { !indexed.contains($0) })
        }
        var located: Set<String> = []
        for ps in try await meta.index.locate(prefixes: Array(Set(keys.map(\.prefix64))), dataset: name).values {
            for p in ps { located.insert(p.object.key) }
        }
        Trace.mark("vacuum: postings of \(keys.count) subjects")
        let cursor = try await meta.cursors.deltaIndex(dataset: name)
        Trace.mark("vacuum: cursor")
        let loaded = try await DeltaCommitIndex.load(dataset: name, meta)
        Trace.mark("vacuum: commit index loaded")
        if let index = loaded, index.version <= s.version {
            let out = try await Trace.span("vacuum: commits naming \(located.count) files, from the commit index") {
                try await targetsFromCommitIndex(t, s, index, located: located)
            }
            if var out {
                out.cdcUnindexed = try await unindexed(out.cdcPath)
                out.letheVacuums = index.letheVacuums
                return out
            }
        }
        // No commit index (or one that cannot answer for a located file): the whole log is read, and
        // the commit index built from it (up to the version the index's cursor vouches for).
        let history = try await Trace.span("vacuum: history of the whole log") { try await t.history(of: s) }
        if let cursor, cursor.version <= s.version {
            let entries = DeltaCommitIndex.entries(history, t).compactMapValues { vs in
                let upTo = vs.filter { $0 <= cursor.version }
                return upTo.isEmpty ? nil : upTo
            }
            let name = DeltaCommitIndex.setting(spec.name), dataset = spec.name
            try await lethe.meta.transaction("cannot save setting \(name)") { tx in
                try DeltaCommitIndex.note(entries, from: 0, through: cursor.version, complete: true, dataset: dataset, tx)
            }
        }
        var out = VacuumTargets()
        var historyPath: [String: String] = [:]
        out.namedIn = history.namedIn
        out.letheVacuums = LetheVacuumCommits(through: s.version, versions: history.letheVacuums)
        for p in history.dataFiles { historyPath[t.key(forLogPath: p)] = p }
        for c in history.changeData { out.cdcPath[t.key(forLogPath: c.path)] = c.path }
        for key in located {
            if let path = historyPath[key] { out.history.insert(path) }
            if out.cdcPath[key] != nil { out.cdcIndexed.insert(key) }
        }
        // Change data files the index has not seen yet (e.g. the one Lethe's own DELETE wrote, when
        // a run died right after committing) are scanned too: they hold the deleted rows.
        out.cdcUnindexed = try await unindexed(out.cdcPath)
        return out
    }

    /// The vacuum's targets from the commit index (`DeltaCommitIndex`): the commits it names for the
    /// located files, and every commit after its version (written since the last `index`, by Lethe or
    /// another tool), each read whole; nil when it has no entry for a located file, or when none of the
    /// commits read and nothing in the snapshot names one (an index that does not describe this log).
    /// Change data files: the snapshot's and those the commits read name; one the index lacks is
    /// scanned (`cdcUnindexed`). Every change data file the log names up to the index's version was
    /// indexed with it (the commit index never runs ahead of the index's cursor).
    private func targetsFromCommitIndex(
        _ t: DeltaTable, _ s: Snapshot, _ index: DeltaCommitIndex, located: Set<String>
    ) async throws -> VacuumTargets? {
        var wanted = Set<Int64>()
        for k in located {
            guard let vs = index.versions(of: k) else { return nil }
            wanted.formUnion(vs.filter { $0 <= s.version })
        }
        if index.version < s.version { wanted.formUnion((index.version + 1)...s.version) }
        let versions = wanted.sorted()
        let read = try await boundedMap(versions, limit: 8) { v in try await t.commitIfPresent(v) }
        var commits: [(Int64, [DeltaAction])] = []
        for (v, actions) in zip(versions, read) { if let actions { commits.append((v, actions)) } }
        var out = VacuumTargets()
        var dataPath: [String: String] = [:]  // key → log path of the data files the commits name
        var added = Set<String>(), cdcNamed = Set<String>()  // keys an `add` / a `cdc` action of the commits read names
        for (p, _) in s.tombstones { dataPath[t.key(forLogPath: p)] = p }
        for c in s.cdcFiles {
            out.cdcPath[t.key(forLogPath: c.path)] = c.path
            cdcNamed.insert(t.key(forLogPath: c.path))
        }
        for (_, actions) in commits {
            for a in actions {
                switch a {
                case .add(let f):
                    dataPath[t.key(forLogPath: f.path)] = f.path
                    added.insert(t.key(forLogPath: f.path))
                case .remove(let r): dataPath[t.key(forLogPath: r.path)] = r.path
                case .cdc(let c):
                    out.cdcPath[t.key(forLogPath: c.path)] = c.path
                    cdcNamed.insert(t.key(forLogPath: c.path))
                default: break
                }
            }
        }
        // Each located file that is not live must be added by one of the commits read (its statistics
        // are there), or be a change data file one of them (or the replayed ones) names: else the
        // index does not describe the log (or the log no longer holds the file's add) and the log is searched.
        let live = Set(s.files.keys.map(t.key(forLogPath:)))
        for k in located where !live.contains(k) && !added.contains(k) && !cdcNamed.contains(k) { return nil }
        var namedIn: [String: [Int64]] = [:]
        for (k, vs) in t.namingByKey(commits) {
            if let p = dataPath[k] ?? out.cdcPath[k] { namedIn[p] = vs }
        }
        for (p, vs) in s.namedIn { DeltaCommitIndex.merge(&namedIn[p, default: []], vs) }
        out.namedIn = namedIn
        for key in located {
            if let path = dataPath[key], !live.contains(key) { out.history.insert(path) }
            if out.cdcPath[key] != nil { out.cdcIndexed.insert(key) }
        }
        return out  // `cdcUnindexed`: the caller's (`vacuumTargets`)
    }

    /// The rows of `keys` in each change data file to rewrite (by log path): change data files keep
    /// every other subject's changes, so each is rescanned for the rows to drop.
    private func changeDataRows(_ targets: VacuumTargets, _ s: Snapshot, keys: Set<SubjectKey>, _ lethe: Lethe) async throws -> [String: [Int64]] {
        var changeData: [String: [Int64]] = [:]
        guard let opts = try await scanOptions(lethe, snapshot: s) else { return changeData }
        let f = try lethe.format(for: spec)
        let keyer = lethe.keyer(for: spec)
        for k in targets.cdcIndexed.union(targets.cdcUnindexed).sorted() {
            guard let info = try await lethe.store.head(k) else { continue }
            var rows: [Int64] = []
            _ = try await f.scan(info, in: lethe.store, options: opts, keyer: keyer) { row, key in
                if keys.contains(key) { rows.append(row) }
            }
            // An indexed file is kept even without rows: a resumed vacuum sets its logged size right.
            if targets.cdcIndexed.contains(k) || !rows.isEmpty { changeData[targets.cdcPath[k]!] = rows }
        }
        return changeData
    }

    /// Targeted vacuum of the table for the given subjects: deletes the history and change-data
    /// files the index shows holding them, scrubs the log, updates the index, and audits which
    /// versions time travel can no longer read. The index entries of `keepingIndexed` (files an
    /// erasure replaced, whose entries the replacements may take) stay for the run's verification.
    @discardableResult
    func vacuumTargeted(
        keys: Set<SubjectKey>, requestIDs: [String], job: String?, dryRun: Bool = false, keepingIndexed: Set<String> = [],
        _ lethe: Lethe
    ) async throws -> DeltaVacuumResult? {
        let t = table(lethe)
        let s = try await Trace.span("vacuum: snapshot") { try await t.snapshot() }
        let targets = try await vacuumTargets(t, s, keys: keys, lethe)
        Trace.mark("vacuum: targets")
        // The job's requests (read in chunks: log files a sweep found naming them) and what Lethe
        // wrote to the table since its last verification (read after the targets, as their reads are).
        let requests = try await lethe.meta.requests(ids: requestIDs)
        let writtenText = try await lethe.meta.setting(DeltaWritten.setting(spec.name))
        var swept = Set<Int64>()
        for r in requests {
            for name in sweepFindings([r]).log { if name.count == 25, name.hasSuffix(".json"), let v = Int64(name.prefix(20)) { swept.insert(v) } }
        }
        guard !targets.isEmpty || !swept.isEmpty else { return nil }
        if dryRun {
            return DeltaVacuumResult(
                deleted: targets.history.sorted().map(t.key(forLogPath:)) + targets.cdcIndexed.sorted(),
                unreadableVersions: [], scrubbedCommits: [], removedCheckpoints: [])
        }
        Trace.mark("vacuum: requests read")
        let changeData = try await changeDataRows(targets, s, keys: keys, lethe)
        guard !targets.history.isEmpty || !changeData.isEmpty || !swept.isEmpty else { return nil }
        // Raw ids (in memory only) find the log fields that name a subject: statistics bounds of the
        // subject's columns, partition values, and commitInfo parameters (e.g. another tool's DELETE predicate).
        var raws: [SubjectID] = []
        for r in requests {
            guard let sealed = r.sealedSubject else { continue }
            raws.append(try lethe.secrets.unseal(sealed, requestID: r.id))
        }
        Trace.mark("vacuum: raw ids unsealed")
        let subject = try await subjectValues(s, raws, lethe)
        Trace.mark("vacuum: change data rows, subject values")
        // The commits read and scrubbed: those naming the files deleted or rewritten (their statistics),
        // the ones Lethe wrote since its last verification, and those a sweep found naming a subject.
        // Another tool's commitInfo naming a subject elsewhere in the log is the sweep's to find.
        var commits = swept
        for p in targets.history { commits.formUnion(targets.namedIn[p] ?? []) }
        for p in changeData.keys { commits.formUnion(targets.namedIn[p] ?? []) }
        if let since = DeltaWritten(text: writtenText).since, since <= s.version {
            commits.formUnion(since...s.version)
        }
        let result = try await Trace.span("vacuum: delete \(targets.history.count) files, scrub \(commits.count) commits") {
            try await t.vacuumTargeted(
                paths: targets.history, changeData: changeData, subject: subject, runID: job, commits: commits,
                known: targets.letheVacuums, now: lethe.now())
        }
        let cdcOptions = try await scanOptions(lethe, snapshot: s)
        for k in result.rewrittenChangeData { try await lethe.reindex(spec, key: k, options: cdcOptions) }
        // What the vacuum wrote, for the run's verification to read again (DeltaDatasetDriver+Verify.swift):
        // the change data it rewrote, the commits and checkpoints it scrubbed, and its own commits.
        var written = DeltaWritten()
        for k in result.rewrittenChangeData { if let i = try await lethe.store.head(k) { written.objects.insert(i.version) } }
        let logFolder = (spec.path.isEmpty ? "" : spec.path + "/") + "_delta_log/"
        written.log = Set(result.scrubbedCommits.map(DeltaTable.commitName) + result.rewrittenCheckpoints.map { String($0.dropFirst(logFolder.count)) })
        written.since = s.version + 1
        try await Trace.span("vacuum: recorded") {
            try await recordVacuum(result, requestIDs: requestIDs, job: job, written: written, keepingIndexed: keepingIndexed, lethe)
        }
        return result
    }

    /// The deleted files leave the index in the transaction that audits the vacuum.
    private func recordVacuum(
        _ result: DeltaVacuumResult, requestIDs: [String], job: String?, written: DeltaWritten, keepingIndexed: Set<String>,
        _ lethe: Lethe
    ) async throws {
        let d = spec
        var details: [String: JSONValue] = [
            "dataset": .string(d.name), "mode": .string("targeted"),
            // Files by reference: a key may name a subject (a partition folder).
            "deleted_files": try await lethe.refsJSON(d.name, result.deleted),
            "rewritten_change_data_files": try await lethe.refsJSON(d.name, result.rewrittenChangeData),
            "unreadable_versions": .array(result.unreadableVersions.map { .string("\($0.lowerBound)-\($0.upperBound)") }),
            "scrubbed_commits": .array(result.scrubbedCommits.map(JSONValue.int)),
            "removed_checkpoints": .int(Int64(result.removedCheckpoints.count)),
            "rewritten_checkpoints": .int(Int64(result.rewrittenCheckpoints.count)),
            "removed_log_files": .int(Int64(result.removedLogFiles.count)),
            "requests": .array(requestIDs.map(JSONValue.string)),
        ]
        if let job { details["job"] = .string(job) }
        if !result.keptReachable.isEmpty { details["kept_reachable_files"] = .array(result.keptReachable.map(JSONValue.string)) }
        let deleted = result.deleted, unindexed = result.deleted.filter { !keepingIndexed.contains($0) }
        try await lethe.commit(Self.removeWhat(d, deleted), audit: [AuditNote(.deltaVacuum, details)]) { tx in
            try tx.removeObjects(dataset: d.name, keys: unindexed)
            try DeltaWritten.note(written, dataset: d.name, tx)
        }
    }
}
