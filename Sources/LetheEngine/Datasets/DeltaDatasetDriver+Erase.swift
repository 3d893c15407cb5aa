import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake
import Logging
import Synchronization

/// The journal step of a Delta table: one commit removing the subjects' rows from every live file
/// that holds them, then a targeted vacuum of the history and change data, then the partitions
/// named after a subject scrubbed.
extension DeltaDatasetDriver {
    func erase(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?, _ lethe: Lethe) async throws {
        guard spec.subject != nil else {
            try await lethe.finishStep(
                job: job, ordinal: step.ordinal, state: .failed, outcome: "dataset `\(step.dataset)` is gone from \(lethe.config.file)")
            return
        }
        do {
            let drop = Set(step.subjectKeys)
            let erasure = try await commitErasure(step, drop: drop, events: events, lethe)
            var details: [String: JSONValue] = [
                "job": .string(job), "dataset": .string(spec.name), "requests": .array(step.requestIDs.map(JSONValue.string)),
            ]
            if let result = erasure.result, !result.removed.isEmpty {
                let t0 = ContinuousClock.now
                let written = try await recordCommit(result, erasure, details: &details, events: events, lethe)
                Trace.mark("delta step: commit recorded", since: t0)
                // Journaled with the step (not audited): what the verification may derive the
                // replacements' index entries from (`RewriteEvidence`, by store versions).
                // A mask leaves the subjects' rows in the replacements: their entries are scanned, never derived.
                let files = result.maskedRows > 0 ? [] : Self.replacementFiles(result, versions: written, t: table(lethe))
                let evidence = files.map(\.evidence)
                if !evidence.isEmpty { details["verify_files"] = .array(evidence.map(\.json)) }
                // The verification's reads of the replacements, made now beside the vacuum (`ReadAhead`).
                if !files.isEmpty && spec.erase == .delete {
                    let d = spec, ids = step.requestIDs, candidates = erasure.candidates
                    // Options that hold nothing per file are the table's whatever its files (the commit added some).
                    let options = erasure.options.flatMap { $0.partitions == .none && $0.absentIsNullByObject.isEmpty ? $0 : nil }
                    lethe.readAhead.start(job: job, dataset: spec.name) {
                        guard let requests = try? await lethe.meta.requests(ids: ids), requests.count == ids.count else { return nil }
                        return await Verifier(lethe).readAheadDelta(d, requests: requests, files: files, candidates: candidates, options: options)
                    }
                }
                report.objectsRewritten += result.added.count
                report.objectsRemoved += result.removed.count - result.added.count
                report.rowsDropped += result.droppedRows
                if spec.erase == .blank { report.rowsBlanked += result.maskedRows } else { report.rowsMasked += result.maskedRows }
            }
            // The removed files a replacement may take the index entry of keep it past the vacuum
            // (the verification renames or removes it).
            let replaced = Set(
                (erasure.result?.rewrites ?? []).filter { _ in spec.erase == .delete }.filter { $0.added != nil && $0.readVersion != nil }.map {
                    table(lethe).key(forLogPath: $0.removed)
                })
            let deleted = try await Trace.span("delta step: vacuum and scrub") {
                try await cleanUpAfterErasure(job: job, step: step, drop: drop, keepingIndexed: replaced, events: events, lethe)
            }
            // A bucket that keeps versions: what the vacuum and scrub deleted or replaced is still there (Lethe+Versions.swift).
            if let v = try await purgeNoncurrentVersions(requestIDs: step.requestIDs, keys: drop, deleted: deleted, job: job, lethe) {
                report.noncurrentVersionsExamined = (report.noncurrentVersionsExamined ?? 0) + v.examined
                report.noncurrentVersionsDeleted = (report.noncurrentVersionsDeleted ?? 0) + v.deleted
                report.problems += v.problems
                if v.deleted > 0 { details["noncurrent_versions_deleted"] = .int(Int64(v.deleted)) }
            }
            try await lethe.finishStep(job: job, ordinal: step.ordinal, state: .done, outcome: JSONValue.object(details).text)
        } catch let e as StepNotRecorded {
            throw e
        } catch {
            // Any failure (the erasure or the vacuum) leaves the step failed with the reason, never running.
            let why = (error as? LetheError)?.description ?? "\(error)"
            try await lethe.failStep(job: job, step: step, reason: "\(spec.name): \(why)", events: events)
        }
    }

    /// What the erasure commit did: its result (nil when no live file held the subjects), the rows
    /// dropped per subject key, the scan options of the last plan (column mapping may change between
    /// plans), and how many times it planned again after a conflict.
    private struct TableErasure {
        var result: DeltaEraseResult?
        var perKey: [SubjectKey: Int64] = [:]
        var options: FormatOptions?
        var replans = 0
        /// The index's rows of the subjects in each file the last plan read, by object key.
        var candidates: [String: Set<Int64>] = [:]
    }

    /// Plans the erasure at the latest version and commits it; when another writer removed a file
    /// being rewritten (e.g. compaction), indexes its commits and plans again (5 times at most).
    private func commitErasure(_ step: JournalStep, drop: Set<SubjectKey>, events: EngineEvents?, _ lethe: Lethe) async throws -> TableErasure {
        let t = table(lethe)
        var out = TableErasure()
        while true {
            let snap = try await Trace.span("delta step: snapshot") { try await t.snapshot() }
            let options = try await scanOptions(lethe, snapshot: snap)!
            out.options = options
            let candidates = try await Trace.span("delta step: candidates") { try await candidateRows(drop, step: step, lethe) }
            out.perKey = [:]
            out.candidates = candidates
            let paths = snap.files.keys.filter { candidates[t.key(forLogPath: $0)] != nil }
            guard !paths.isEmpty else { return out }
            do {
                out.result = try await eraseFiles(
                    paths, t, snap, candidates: candidates, drop: drop, options: options,
                    perKey: &out.perKey, step: step, lethe)
                return out
            } catch let e as LetheError where e.code == .conflict && out.replans < 5 {
                out.replans += 1
                events?(.tableReplanning(dataset: spec.name, reason: e.message, attempt: out.replans))
                lethe.logger.info("delta re-plan", metadata: ["dataset": "\(spec.name)", "reason": "\(e.message)"])
                _ = try await lethe.index(datasets: [spec.name])
            }
        }
    }

    /// The files the index names for these subjects, with the rows it names.
    /// The postings the run's plan read just before, when this step is the first of the job it claimed
    /// (`PlannedPostings`) and the table keys its subjects by their own keys (no `normalize: nfc`).
    private func candidateRows(_ drop: Set<SubjectKey>, step: JournalStep, _ lethe: Lethe) async throws -> [String: Set<Int64>] {
        if spec.normalization != .nfc, let planned = lethe.plannedPostings.take(step, keys: drop, dataset: spec.name) { return planned }
        var candidates: [String: Set<Int64>] = [:]
        // One read of the index for the batch's keys.
        for ps in try await lethe.meta.index.locate(prefixes: Array(Set(drop.map(\.prefix64))), dataset: spec.name).values {
            for p in ps { candidates[p.object.key, default: []].formUnion(p.rows) }
        }
        return candidates
    }

    /// One `DELETE` commit rewriting the live files `paths`: each file is read once, and only the
    /// candidate rows' subjects are keyed again to confirm them.
    private func eraseFiles(
        _ paths: [String], _ t: DeltaTable, _ snap: Snapshot, candidates: [String: Set<Int64>], drop: Set<SubjectKey>,
        options: FormatOptions, perKey: inout [SubjectKey: Int64], step: JournalStep, _ lethe: Lethe
    ) async throws -> DeltaEraseResult {
        let parquet = ParquetFormat()
        let keyers = KeyerPool(hasher: lethe.secrets.hasher), normalization = spec.normalization
        let params: [String: JSONValue] = [
            "predicate": .string(
                spec.erase == .delete ? "lethe erasure (rows of subjects by keyed hash)" : "lethe \(spec.erase.rawValue) (rows of subjects by keyed hash)"),
            "lethe_requests": .string(step.requestIDs.joined(separator: ",")),
            "lethe_subject_keys": .string(drop.map(\.short).sorted().joined(separator: ",")),
        ]
        let logical = (lethe.options(for: spec)?.subject.fields ?? []).map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
        // Files are selected in parallel (and a file again if its selection needed more than the
        // ranges read): each file's counts replace its previous ones, merged once the erasure is done.
        let counts = Mutex<[String: [SubjectKey: Int64]]>([:])
        let result = try await t.erase(
            files: paths,
            reading: { path, footer in
                // The subject chunks of the row groups holding the candidate rows.
                let k = t.key(forLogPath: path)
                // Every row group's where the index marked an unreferenced entry (see `scrubbing`).
                return parquet.keyingRanges(of: Array(candidates[k] ?? []), in: footer, objectKey: k, options: options)
            },
            selecting: { path, file in
                let k = t.key(forLogPath: path)
                // A keyer per task at a time: its cache is not thread-safe, and files are selected in parallel.
                let keyer = keyers.take(normalization)
                defer { keyers.give(keyer) }
                for l in logical { try t.checkFieldIDs(file, logical: l, snapshot: snap) }
                var confirmed: [Int64] = []
                var fileCounts: [SubjectKey: Int64] = [:]
                for (row, key) in try parquet.keys(of: candidates[k]!.sorted(), in: file, objectKey: k, options: options, keyer: keyer)
                where drop.contains(key) {
                    confirmed.append(row)
                    fileCounts[key, default: 0] += 1
                }
                counts.withLock { $0[path] = fileCounts }
                return confirmed
            },
            scrubbing: { path, file in
                // Where the index marked a dictionary entry no row references (`RecordOrdinal`): the
                // chunks holding a dropped subject's value that way.
                let k = t.key(forLogPath: path)
                guard candidates[k]?.contains(where: { !RecordOrdinal.isRecord($0) }) == true else { return [:] }
                let keyer = keyers.take(normalization)
                defer { keyers.give(keyer) }
                return try parquet.unreferencedChunks(in: file, objectKey: k, options: options, keyer: keyer, keys: drop)
            }, operationParameters: params, now: lethe.now(), beforeCommit: lethe.deltaCommitHook, willWrite: lethe.journalDeltaWrite(spec),
            mask: try deltaMask(snap, lethe))
        for fileCounts in counts.withLock({ $0 }).values {
            for (key, n) in fileCounts { perKey[key, default: 0] += n }
        }
        return result
    }

    /// The mask of a dataset whose `erase:` is `mask` or `blank` (nil for `delete`): its fields by
    /// physical name (column mapping), the pseudonyms under the installation's mask key. A subject held
    /// by a partition column cannot be masked (the partition value names it): refused.
    private func deltaMask(_ snap: Snapshot, _ lethe: Lethe) throws -> DeltaMask? {
        guard var action = Executor.recordAction(spec) else { return nil }
        let partitions = Set(snap.metadata.partitionColumns)
        for f in spec.subject?.fields ?? [] where f.components.count == 1 && partitions.contains(String(decoding: f.components[0], as: UTF8.self)) {
            throw LetheError(
                .unsupported,
                "the subject column `\(f)` is a partition column: `erase: \(spec.erase.rawValue)` cannot change a partition value; use `erase: delete`")
        }
        if case .transform(let fields) = action {
            var physical: [FieldPath: FieldAction] = [:]
            for (f, a) in fields {
                let logical = f.components.map { String(decoding: $0, as: UTF8.self) }
                let path = (try? snap.metadata.physicalPath(logical, table: spec.path)) ?? logical
                physical[FieldPath(components: path.map { Array($0.utf8) })] = a
            }
            action = .transform(physical)
        }
        let maskKey = MaskKey(installation: lethe.secrets.hasher), chosen = action
        let table = spec.path
        return DeltaMask { file in try ParquetFormat.maskPlan(chosen, file: file, maskKey: maskKey, objectKey: table) }
    }

    /// What the verification may derive each replacement file's index entry from: the store version
    /// the erasure read the removed file at, its replacement's (`versions`, by log path), the physical
    /// rows dropped and kept, and the rows re-encoded (journaled by versions), with each replacement's
    /// object key and the removed file's (in memory only: a key may name a subject). A file whose
    /// versions are unknown has none.
    static func replacementFiles(_ result: DeltaEraseResult, versions: [String: String], t: DeltaTable) -> [Verifier.ReplacementFile] {
        result.rewrites.compactMap { r in
            guard let added = r.added, let e = evidence(r, versions: versions) else { return nil }
            return Verifier.ReplacementFile(key: t.key(forLogPath: added), removed: t.key(forLogPath: r.removed), evidence: e)
        }
    }

    private static func evidence(_ r: DeltaFileRewrite, versions: [String: String]) -> RewriteEvidence? {
        guard let added = r.added, let from = r.readVersion, let written = versions[added] else { return nil }
        var e = RewriteEvidence(
            from: from, written: written, dropped: r.dropped, records: r.keptRows,
            rewrittenRows: ParquetFormat.rewrittenRows(r.rowGroups, groupRows: r.groupRows))
        // A scrubbed entry's mark would survive a derivation: the replacement's entry is read.
        e.exact = !r.scrubbed
        return e
    }

    /// After the commit: its change data files are indexed, and the files it adopted leave the
    /// journal in the transaction that audits the commit (`delta_commit`). Returns the store
    /// versions of the files it added, by log path.
    private func recordCommit(
        _ result: DeltaEraseResult, _ erasure: TableErasure, details: inout [String: JSONValue],
        events: EngineEvents?, _ lethe: Lethe
    ) async throws -> [String: String] {
        let t = table(lethe)
        // A kill from here on leaves the adopted files journaled as temporaries: the next run
        // finds the table's log naming them and forgets them without removing them.
        Failpoint.objectWritten()
        events?(.tableCommitted(dataset: spec.name, version: result.version, droppedRows: result.droppedRows, files: result.removed.count))
        // The replacements are indexed when the job settles (they hold none of these subjects);
        // change data files hold them, and the vacuum after finds them through the index.
        let after = result.changeData.isEmpty ? erasure.options : try await scanOptions(lethe)  // knows the new files' partitions
        for c in result.changeData { try await lethe.reindex(spec, key: t.key(forLogPath: c.path), options: after) }
        details["version"] = .int(result.version)
        details["removed"] = try await lethe.refsJSON(spec.name, result.removed.map(t.key(forLogPath:)))
        details["added"] = try await lethe.refsJSON(spec.name, result.added.map { t.key(forLogPath: $0.path) })
        details["dropped"] = .object(Dictionary(uniqueKeysWithValues: erasure.perKey.map { ($0.key.hex, JSONValue.int($0.value)) }))
        details["kept"] = .int(result.keptRows)
        if erasure.replans > 0 { details["replans"] = .int(Int64(erasure.replans)) }
        // The commit adopted its files: they are data now, no longer the journal's to remove.
        let adopted = result.added.map { t.key(forLogPath: $0.path) } + result.changeData.map { t.key(forLogPath: $0.path) }
        // What the commit wrote, for the run's verification to read again (DeltaDatasetDriver+Verify.swift).
        var w = DeltaWritten()
        let versions = try await storeVersionsByPath(result.added.map(\.path) + result.changeData.map(\.path), lethe)
        w.objects = Set(versions.values)
        w.since = result.version
        let name = spec.name, written = w
        do {
            try await lethe.commit("cannot forget \(adopted.count) temporary file(s)", audit: [AuditNote(.deltaCommit, details)]) { tx in
                try tx.forgetTemporaries(adopted)
                try DeltaWritten.note(written, dataset: name, tx)
            }
        } catch {
            throw StepNotRecorded(error: error)  // the run stops; the next one resumes the step
        }
        return versions
    }

    /// History and change data files holding the subjects are vacuumed (also when no live file held
    /// them, e.g. another tool deleted them), and partitions named after a subject scrubbed: their
    /// names leave the log, their change data and folders the lake. Returns the keys deleted.
    private func cleanUpAfterErasure(
        job: String, step: JournalStep, drop: Set<SubjectKey>, keepingIndexed: Set<String>, events: EngineEvents?, _ lethe: Lethe
    ) async throws -> Set<String> {
        var deleted = Set<String>()
        if let v = try await vacuumTargeted(keys: drop, requestIDs: step.requestIDs, job: job, keepingIndexed: keepingIndexed, lethe) {
            events?(
                .tableVacuumed(
                    dataset: spec.name, deletedFiles: v.deleted.count, rewrittenChangeData: v.rewrittenChangeData.count,
                    scrubbedCommits: v.scrubbedCommits.count))
            deleted.formUnion(v.deleted)
            deleted.formUnion(v.removedCheckpoints + v.removedLogFiles)
        }
        let scrubbed = try await scrubPartitions(keys: drop, lethe)
        if !scrubbed.isEmpty { events?(.partitionChangeDataRemoved(dataset: spec.name, count: scrubbed.count)) }
        return deleted.union(scrubbed)
    }
}
