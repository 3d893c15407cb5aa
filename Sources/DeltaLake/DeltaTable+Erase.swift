import Foundation
public import LetheCore
import LetheStorage
public import Parquet
import Synchronization

/// What an erasure commit did.
public struct DeltaEraseResult: Sendable {
    public var version: Int64
    /// Log paths of the files removed (now history, readable by time travel until vacuumed).
    public var removed: [String]
    /// The replacement files added.
    public var added: [AddFile]
    /// Change data files written (tables with the change data feed on).
    public var changeData: [CDCFile]
    /// Rows of the table the commit deleted (rows a deletion vector had deleted are not counted).
    public var droppedRows: Int64
    public var keptRows: Int64
    /// Rows already deleted by a deletion vector, physically gone with the rewrite.
    public var purgedRows: Int64 = 0
    /// What each removed file's rewrite did, in the order of `removed`.
    public var rewrites: [DeltaFileRewrite] = []
    /// Rows a mask changed (an `UPDATE` commit; then `droppedRows` is 0).
    public var maskedRows: Int64 = 0
}

/// A mask instead of a deletion (issue 15): the subjects' rows stay, some of their cells replaced.
/// `plan(file)` names the file's masked leaf columns (by index in its Parquet schema, physical
/// names) and the new value of each of their cells in the subjects' rows.
public struct DeltaMask: Sendable {
    public var plan: @Sendable (ParquetFile) throws -> (columns: Set<Int>, replace: @Sendable (Int, OldCell) -> CellValue)
    public init(plan: @escaping @Sendable (ParquetFile) throws -> (columns: Set<Int>, replace: @Sendable (Int, OldCell) -> CellValue)) {
        self.plan = plan
    }
}

/// How one file of an erasure commit was rewritten, in the file's physical rows (a deletion
/// vector's rows count): enough for an index entry of the replacement to follow from the removed
/// file's (`dropped` ordinals out of `physicalRows`, the rest in order).
public struct DeltaFileRewrite: Sendable, Equatable {
    /// Log path of the removed file.
    public var removed: String
    /// Log path of its replacement (nil: every row was dropped, the file is only removed).
    public var added: String?
    /// The store version of the bytes the erasure read (nil when the store could not tell).
    public var readVersion: String?
    /// Rows of the file read.
    public var physicalRows: Int64
    /// Rows dropped (the subjects' and a deletion vector's), increasing.
    public var dropped: [Int64]
    /// Rows of the replacement (`physicalRows` minus the dropped).
    public var keptRows: Int64
    /// What became of each row group of the file read, and their row counts.
    public var rowGroups: [RowGroupOutcome]
    public var groupRows: [Int64]
    /// Whether dictionary entries no row references were scrubbed (`scrubbing:`): the replacement is
    /// then more than the file read without `dropped`.
    public var scrubbed = false
}

extension DeltaTable {
    /// Rewrites live files without the given rows and commits, in one `DELETE` commit,
    /// a `remove` for each and an `add` for each replacement (same partition, same
    /// Parquet schema, untouched row groups copied byte for byte, statistics recomputed).
    /// A file that loses every row is only removed. `operationParameters` go into the
    /// commitInfo (request ids and keyed hashes: never a raw id or a predicate).
    ///
    /// Concurrent commits: appends are rebased (the commit is retried at the next
    /// version); if another writer removed one of the files being rewritten, the
    /// replacements are deleted and `.conflict` is thrown so the caller re-plans.
    /// `erase(rows:…)` where the rows to drop are chosen once each file is read:
    /// `selecting(path, file)` returns the file's rows to drop (increasing); a file
    /// with none is left alone, and when no file has any, nothing is committed
    /// (`removed` is empty). Each file is read once.
    ///
    /// `willWrite(keys)` is called before the replacement and change data files of each wave of
    /// rewrites are created, so a caller can journal them (in one transaction): a process killed
    /// before the commit leaves files no version names.
    ///
    /// With `reading`, a file is not read whole: `reading(path, footer)` names the byte ranges
    /// `selecting` needs (nil: the whole file), which are read with the footer; the rewrite then reads
    /// everything but the row groups it copies unchanged, and the store copies those (a kernel copy
    /// on a local store, UploadPartCopy on S3). A selection or rewrite that reads outside the bytes
    /// read is done again on the whole file. Files are read and selected in parallel (one per core):
    /// `selecting` may be called more than once for a file, the last call counts.
    public func erase(
        files: [String], reading: (@Sendable (String, ParquetFile) throws -> [Range<Int64>]?)? = nil,
        selecting: @escaping @Sendable (String, ParquetFile) throws -> [Int64],
        scrubbing: (@Sendable (String, ParquetFile) throws -> [Int: Set<Int>])? = nil,
        operationParameters: [String: JSONValue], now: Int64, maxAttempts: Int = 20,
        beforeCommit: (@Sendable () async throws -> Void)? = nil,
        willWrite: (@Sendable ([String]) async throws -> Void)? = nil,
        mask: DeltaMask? = nil
    ) async throws -> DeltaEraseResult {
        let snap = try await Trace.span("delta erase: snapshot") { try await snapshot() }
        try checkWritable(snap)
        let tracker = WrittenKeys(willWrite: willWrite)
        var prepared: PreparedCommit? = nil
        do {
            // Each file is read and its rows chosen by the task that rewrites it, in its wave (no
            // barrier between choosing every file's rows and the first rewrite).
            let live = try liveFiles(files, in: snap)
            let reading = mask == nil ? reading : nil
            let select: @Sendable (String, AddFile) async throws -> RewriteJob? = { path, add in
                try await self.rewriteJob(path, add, reading: reading, selecting: selecting, scrubbing: scrubbing, mask: mask)
            }
            // The commit's file is written once the replacements are, and made durable in their pass;
            // it enters the log (linked) only once they are durable and named (`commitErasure`).
            let (batch, commitFile) = try await Trace.span("delta erase: select and rewrite \(live.count) files") {
                try await rewriteAll(
                    live.map { PendingRewrite(path: $0.0, add: $0.1) }, select: select, changeDataFeed: snap.metadata.changeDataFeed, now: now,
                    written: tracker
                ) { batch in
                    try await prepareErasureCommit(batch, on: snap, operationParameters: operationParameters, now: now)
                }
            }
            prepared = commitFile
            guard !batch.removes.isEmpty else {
                return DeltaEraseResult(version: snap.version, removed: [], added: [], changeData: [], droppedRows: 0, keptRows: 0)
            }
            try await beforeCommit?()
            var result = try await Trace.span("delta erase: commit") {
                try await commitErasure(
                    batch, on: snap, operationParameters: operationParameters, now: now, maxAttempts: maxAttempts, prepared: commitFile)
            }
            result.rewrites = batch.rewrites
            return result
        } catch {
            if let prepared { await prepared.writer.abort() }  // nothing once it was committed
            for k in tracker.keys { try? await store.delete(k) }
            throw error
        }
    }

    /// An erasure's commit file at the version after `snap`, written (`.deferred`, put-if-absent)
    /// but not committed: made durable with the replacements, then linked by `commitErasure` once
    /// they are in place. Nil when the batch removes nothing.
    func prepareErasureCommit(
        _ batch: ErasureBatch, on snap: Snapshot, operationParameters: [String: JSONValue], now: Int64
    ) async throws -> PreparedCommit? {
        guard !batch.removes.isEmpty else { return nil }
        let version = snap.version + 1
        let actions = try await erasureActions(batch, snap: snap, version: version, operationParameters: operationParameters, now: now)
        let w = try await store.openWrite(logKey(Self.commitName(version)), precondition: .absent, durability: .deferred)
        do {
            try await w.write(Self.commitBytes(actions))
        } catch {
            await w.abort()
            throw error
        }
        return PreparedCommit(writer: w, version: version, actions: actions)
    }

    /// The live entries of `files` in `snap`, in path order (`.conflict` for one no longer live: re-plan).
    func liveFiles(_ files: [String], in snap: Snapshot) throws -> [(String, AddFile)] {
        try Set(files).sorted().map { path in
            guard let add = snap.files[path] else {
                throw LetheError(.conflict, "file \(path) is no longer live at version \(snap.version)", at: root)
            }
            return (path, add)
        }
    }

    /// One file read and its rows chosen (nil: none to drop).
    func rewriteJob(
        _ path: String, _ add: AddFile, reading: (@Sendable (String, ParquetFile) throws -> [Range<Int64>]?)?,
        selecting: @Sendable (String, ParquetFile) throws -> [Int64],
        scrubbing: (@Sendable (String, ParquetFile) throws -> [Int: Set<Int>])? = nil, mask: DeltaMask? = nil
    ) async throws -> RewriteJob? {
        let key = key(forLogPath: path)
        // Read at the version seen (a file changed in between is a conflict: re-plan), which the
        // result reports so a caller can tell whether what it knew of the file was of these bytes.
        let info = try await store.head(key)
        let version = info?.version
        var file: ParquetFile? = nil
        var partial: SparseSource? = nil
        var subjectRows: [Int64] = []
        var scrub: [Int: Set<Int>] = [:]
        if let reading, let info, let version {
            let footerSource = try await SparseSource.footer(size: info.size) { r in try await self.store.read(key, range: r, ifVersion: version) }
            let footer = try Self.open(footerSource, key)
            if !footer.omitsDictionaryHeaderSize, let ranges = try reading(path, footer) {
                var source = footerSource
                try await fetch(ranges, of: key, version: version, into: &source)
                let fetched = MissRecordingSource(source)
                // The dictionary pages the selection decompresses are kept for the rewrite.
                let sparse = try Self.open(fetched, key).rememberingDictionaryPages()
                do {
                    subjectRows = try selecting(path, sparse)
                    scrub = try scrubbing?(path, sparse) ?? [:]
                    // A read outside them that did not throw (one the selection caught) leaves its answer in doubt.
                    if fetched.missed { throw WholeFileNeeded() }
                    file = sparse
                    partial = source
                } catch  where fetched.missed || error is WholeFileNeeded {
                    // It read outside the ranges named: read the whole file.
                }
            }
        }
        if file == nil {
            let bytes = try await store.read(key, range: nil, ifVersion: version)
            let whole = try Self.open(InMemorySource(bytes), key).rememberingDictionaryPages()
            subjectRows = try selecting(path, whole)
            scrub = try scrubbing?(path, whole) ?? [:]
            file = whole
        }
        guard let file, !subjectRows.isEmpty || !scrub.isEmpty else { return nil }
        // Rows a deletion vector already deleted go too: the replacement has no DV.
        let dvRows = try await deletedRows(add)
        if mask != nil {
            guard dvRows.isEmpty else {
                throw LetheError(.unsupported, "file \(path) has a deletion vector: a mask rewrites files without one (run OPTIMIZE or PURGE first)", at: root)
            }
            var job = RewriteJob(path: path, add: add, key: key, file: file, drop: subjectRows, newlyDeleted: subjectRows, version: version, partial: nil)
            job.mask = mask
            job.scrub = scrub
            job.toRead = file.source.size
            return job
        }
        let dvSet = Set(dvRows)
        let drop = dvRows.isEmpty ? subjectRows : Array(dvSet.union(subjectRows)).sorted()
        let newlyDeleted = dvRows.isEmpty ? subjectRows : subjectRows.filter { !dvSet.contains($0) }
        var job = RewriteJob(
            path: path, add: add, key: key, file: file, drop: drop, newlyDeleted: newlyDeleted, version: version, partial: partial)
        job.scrub = scrub
        job.toRead = try job.bytesToRead()
        return job
    }

    /// Reads `ranges` of `key` (at `version`) into `source`, skipping those it holds.
    func fetch(_ ranges: [Range<Int64>], of key: String, version: String, into source: inout SparseSource) async throws {
        for r in ranges where !r.isEmpty && !source.covers(r) {
            guard r.lowerBound >= 0, r.upperBound <= source.size else {
                throw LetheError(.corrupt, "byte range \(r) lies outside the \(source.size)-byte file", at: key)
            }
            source.add(r.lowerBound, try await store.read(key, range: r, ifVersion: version))
        }
    }

    /// A Parquet file opened from `source`, its errors as `.corrupt` naming `key`.
    static func open(_ source: any ParquetSource, _ key: String) throws -> ParquetFile {
        do { return try ParquetFile(source: source, name: key) } catch { throw LetheError(.corrupt, "\(error)", at: key) }
    }

    /// Rewrites the files, one per core at a time, and gathers the actions and row counts, in waves
    /// (`waves(of:workers:)`: one file per core, more when small): each wave is rewritten, its files
    /// announced to `tracker` (journaled before any of them is created), then written to the store —
    /// the writing of a wave overlapping the rewriting of the next, so at most two waves are held;
    /// then one durability pass for every file written, and their publication in one batch — instead
    /// of an fsync per file and per folder. Nothing is published before every file is durable; on
    /// failure (a rewrite's or a write's) the next wave's rewrite is cancelled and awaited, every
    /// writer opened is aborted and the first error is thrown (the caller deletes the keys announced,
    /// which no version names).
    /// Each file is read and its rows chosen by `select` in its wave's task, just before its rewrite
    /// (nil: nothing to drop, no outcome).
    ///
    /// `prepare(batch)` runs once every file is written: a file written but not committed (the
    /// erasure's commit, `prepareErasureCommit`) that the replacements' pass makes durable too. The
    /// replacements are new keys nothing names (journaled by `tracker`), so the pass links them into
    /// place and syncs their bytes and folders at once (`commitNew`). On a failure the prepared file
    /// is aborted with the writers.
    ///
    /// The writers stay with this task: only the rewriting of the next wave (its outcomes are
    /// `Sendable`) runs beside the writing, in a child task the writing never outlives.
    func rewriteAll(
        _ jobs: [PendingRewrite], select: @escaping @Sendable (String, AddFile) async throws -> RewriteJob?,
        changeDataFeed cdf: Bool, now: Int64, written tracker: WrittenKeys,
        workers: Int = DeltaTable.rewriteWorkers, waveBytes: Int64 = 32 << 20,
        prepare: (ErasureBatch) async throws -> PreparedCommit?
    ) async throws -> (batch: ErasureBatch, prepared: PreparedCommit?) {
        let waves = Self.waves(of: jobs.map(\.bytes), workers: workers, maxBytes: waveBytes)
        var batch = ErasureBatch()
        var writers: [any ObjectWriteStream] = []
        var prepared: PreparedCommit? = nil
        do {
            var wave: [(RewriteOutcome, [RewrittenFile])]? = nil
            if let first = waves.first {
                wave = try await rewriteWave(jobs[first], select: select, changeDataFeed: cdf, now: now, written: tracker, workers: workers)
            }
            var n = 1
            while let outcomes = wave {
                guard n < waves.count else {
                    try await writeWave(outcomes, into: &writers, batch: &batch)
                    break
                }
                let next = waves[n]
                n += 1
                // The next wave is rewritten (and journaled) while this one is written. On a throw
                // here, leaving the scope cancels and awaits it.
                async let rewritten = rewriteWave(jobs[next], select: select, changeDataFeed: cdf, now: now, written: tracker, workers: workers)
                try await writeWave(outcomes, into: &writers, batch: &batch)
                let t0 = ContinuousClock.now
                wave = try await rewritten
                Trace.mark("delta erase: next wave awaited", since: t0)
            }
            prepared = try await prepare(batch)
            _ = try await Trace.span("delta erase: replacements in place and durable") {
                try await store.commitNew(writers, makingDurable: prepared.map { [$0.writer] } ?? [])
            }
        } catch {
            for w in writers { await w.abort() }
            if let prepared { await prepared.writer.abort() }
            throw error
        }
        return (batch, prepared)
    }

    /// Rewrite tasks at a time: one per core, at most 8.
    static var rewriteWorkers: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8)) }

    /// Files of a wave written at a time (`writeWave`): their system calls wait on the I/O threads.
    static let writeWorkers = 4

    /// The waves of `rewriteAll`, as ranges of `jobs`: at least `workers` files each, more while they
    /// are small (up to `maxFiles` files or `maxBytes` to read), so thousands of small files do not
    /// pay a task group and a hop each.
    static func waves(of sizes: [Int64], workers: Int, maxFiles: Int = 256, maxBytes: Int64 = 32 << 20) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        while start < sizes.count {
            var end = min(start + max(1, workers), sizes.count)
            var bytes = sizes[start..<end].reduce(Int64(0), +)
            while end < sizes.count && end - start < maxFiles && bytes + sizes[end] <= maxBytes {
                bytes += sizes[end]
                end += 1
            }
            out.append(start..<end)
            start = end
        }
        return out
    }

    /// One wave rewritten (`workers` files at a time), then its files announced to `tracker` together
    /// (one journal transaction) before any of them is written.
    func rewriteWave(
        _ wave: ArraySlice<PendingRewrite>, select: @escaping @Sendable (String, AddFile) async throws -> RewriteJob?,
        changeDataFeed cdf: Bool, now: Int64, written tracker: WrittenKeys, workers: Int
    ) async throws -> [(RewriteOutcome, [RewrittenFile])] {
        let t0 = ContinuousClock.now
        // The files past the last full round of `workers` (the wave's tail, or a wave of fewer files
        // than cores) are rewritten with their columns spread over the cores the others leave idle.
        let jobs = Array(wave), full = jobs.count / max(1, workers) * max(1, workers)
        let outcomes = try await boundedMap(Array(jobs.indices), limit: workers) { i -> (RewriteOutcome, [RewrittenFile])? in
            guard let job = try await select(jobs[i].path, jobs[i].add) else { return nil }
            return try await self.rewrite(job, changeDataFeed: cdf, now: now, chunkWorkers: i >= full ? workers : 1)
        }.compactMap { $0 }
        Trace.mark("delta erase: wave of \(wave.count) rewritten", since: t0)
        let t1 = ContinuousClock.now
        try await tracker.add(outcomes.flatMap { $0.1.map(\.key) })
        Trace.mark("delta erase: wave journaled", since: t1)
        return outcomes
    }

    /// Writes a wave's files (opened together: the store journals their temporary files in one go;
    /// each writer added to `writers` once opened, so a failure aborts it too) and adds its outcomes to `batch`.
    func writeWave(_ outcomes: [(RewriteOutcome, [RewrittenFile])], into writers: inout [any ObjectWriteStream], batch: inout ErasureBatch) async throws {
        let t0 = ContinuousClock.now
        defer { Trace.mark("delta erase: wave written", since: t0) }
        let opened = try await store.openWrites(outcomes.flatMap { $0.1.map { ($0.key, WritePrecondition.absent) } }, durability: .deferred)
        writers += opened
        // The files side by side (their writes are system calls on the store's I/O threads; five
        // files of a wave one after another took ~5.5 ms, one subject's erase). Each writer is
        // written by one task only, and every task has ended when this returns or throws (then
        // the caller aborts every writer opened).
        let contents = outcomes.flatMap { $0.1.map(\.content) }
        let store = self.store
        _ = try await boundedMap(Array(zip(opened.map(HandedWriter.init), contents)), limit: Self.writeWorkers) { w, content in
            switch content {
            case .bytes(let b): try await w.writer.write(b)
            case .planned(let steps, let from, let version):
                for step in steps {
                    switch step {
                    case .bytes(let b): try await w.writer.write(b)
                    case .copy(let r): try await w.writer.copyRange(from: from, version: version, range: r, in: store)
                    }
                }
            }
        }
        for (o, _) in outcomes {
            batch.dropped += o.dropped
            batch.masked += o.masked
            batch.purged += o.purged
            batch.kept += o.kept
            batch.removes.append(o.remove)
            batch.rewrites.append(o.rewrite)
            if let a = o.add { batch.adds.append(a) }
            if let c = o.change { batch.changes.append(c) }
        }
    }

    /// Commits the batch at the version after `snap`; when another writer committed first, rebases
    /// (up to `maxAttempts`) unless one of the removed files was touched (`.conflict`: re-plan).
    /// `prepared`: the first attempt's commit file (at the version after `start`), written and made
    /// durable already: the attempt only links it (then syncs the log's folder).
    func commitErasure(
        _ batch: ErasureBatch, on start: Snapshot, operationParameters: [String: JSONValue], now: Int64,
        maxAttempts: Int, prepared: PreparedCommit? = nil
    ) async throws -> DeltaEraseResult {
        var snap = start
        var attempt = 0
        var prepared = prepared
        while true {
            attempt += 1
            let version = snap.version + 1
            let actions: [DeltaAction]
            if let p = prepared, p.version == version {
                actions = p.actions
            } else {
                actions = try await erasureActions(batch, snap: snap, version: version, operationParameters: operationParameters, now: now)
            }
            do {
                if let p = prepared {
                    prepared = nil
                    try await commitPrepared(p)
                } else {
                    try await commit(actions, version: version)
                }
                let added = actions.compactMap { a -> AddFile? in if case .add(let f) = a { return f } else { return nil } }
                var result = DeltaEraseResult(
                    version: version, removed: batch.removes.map(\.path), added: added, changeData: batch.changes,
                    droppedRows: batch.dropped, keptRows: batch.kept, purgedRows: batch.purged)
                result.maskedRows = batch.masked
                return result
            } catch let e as LetheError where e.code == .conflict && attempt < maxAttempts {
                // Someone committed first: rebase if none of our files was touched.
                let newer = try await snapshot()
                try checkWritable(newer)
                for r in batch.removes where newer.files[r.path]?.logicalKey != r.logicalKey {
                    throw LetheError(.conflict, "file \(r.path) was removed by a concurrent commit (version ≤ \(newer.version)); re-plan", at: root)
                }
                snap = newer
            }
        }
    }
}

/// A writer handed to the one task that writes its file (`DeltaTable.writeWave`): a stream is used
/// by one task at a time, and the task that opened it waits for that task before using it again.
struct HandedWriter: @unchecked Sendable {
    let writer: any ObjectWriteStream
}

/// An erasure's commit file, written but not committed (`DeltaTable.prepareErasureCommit`).
struct PreparedCommit {
    var writer: any ObjectWriteStream
    var version: Int64
    var actions: [DeltaAction]
}

extension DeltaTable {
    /// The commit actions of an erasure batch at `version` on top of `snap` (`commitActions` with the
    /// batch's metrics: a `DELETE`, or an `UPDATE` when it masked rows).
    func erasureActions(
        _ batch: ErasureBatch, snap: Snapshot, version: Int64, operationParameters: [String: JSONValue], now: Int64
    ) async throws -> [DeltaAction] {
        let masks = batch.masked > 0
        let operationMetrics: [String: JSONValue] = [
            "numRemovedFiles": .int(Int64(batch.removes.count)), "numAddedFiles": .int(Int64(batch.adds.count)),
            (masks ? "numUpdatedRows" : "numDeletedRows"): .int(masks ? batch.masked : batch.dropped),
            "numCopiedRows": .int(masks ? batch.kept - batch.masked : batch.kept),
        ]
        return try await commitActions(
            snap: snap, version: version, removes: batch.removes, adds: batch.adds,
            changes: batch.changes, operationParameters: operationParameters,
            metrics: operationMetrics, copiedRows: batch.kept, now: now, operation: masks ? "UPDATE" : "DELETE")
    }

    /// Links a prepared commit file into the log (its bytes are durable: only the log's folder is
    /// synced). Another writer's commit at its version first: `.conflict`, and the file is discarded.
    func commitPrepared(_ p: PreparedCommit) async throws {
        do {
            _ = try await store.commit([p.writer])
        } catch let e as LetheError where e.code == .conflict {
            await p.writer.abort()
            throw LetheError(.conflict, "version \(p.version) was committed by another writer", at: root)
        } catch {
            await p.writer.abort()
            throw error
        }
    }
}

/// The rewritten files of an erasure, before its commit.
struct ErasureBatch: Sendable {
    var removes: [RemoveFile] = []
    var adds: [AddFile] = []
    var changes: [CDCFile] = []
    var rewrites: [DeltaFileRewrite] = []
    var dropped: Int64 = 0, kept: Int64 = 0, purged: Int64 = 0, masked: Int64 = 0
}

extension DeltaTable {
    /// The actions of an erasure commit at `version` on top of `snap`: commitInfo first (with an
    /// in-commit timestamp when the table has them on), the removes, the adds (with fresh Row IDs
    /// and commit versions when row tracking is supported, and a new Row ID high water mark), and
    /// the change data files. Built again for each attempt: a rebase changes the version, the
    /// previous in-commit timestamp and the high water mark.
    func commitActions(
        snap: Snapshot, version: Int64, removes: [RemoveFile], adds: [AddFile], changes: [CDCFile],
        operationParameters: [String: JSONValue], metrics: [String: JSONValue],
        copiedRows: Int64, now: Int64, operation: String = "DELETE"
    ) async throws -> [DeltaAction] {
        var info: [String: JSONValue] = [
            "timestamp": .int(now), "operation": .string(operation),
            "operationParameters": .object(operationParameters),
            "engineInfo": .string("Lethe/0.1"), "isBlindAppend": .bool(false),
            "operationMetrics": .object(metrics),
        ]
        var newAdds = adds
        var extra: [DeltaAction] = []
        if snap.assignsRowIDs {
            var hwm = snap.rowIDHighWaterMark
            for i in newAdds.indices {
                let n = Self.numRecords(newAdds[i]) ?? 0
                newAdds[i].raw["baseRowId"] = .int(hwm + 1)
                newAdds[i].raw["defaultRowCommitVersion"] = .int(version)
                hwm += n
            }
            if hwm != snap.rowIDHighWaterMark {
                extra.append(
                    .other(
                        "domainMetadata",
                        .object([
                            "domain": .string("delta.rowTracking"),
                            "configuration": .string(JSONValue.object(["rowIdHighWaterMark": .int(hwm)]).encodedText),
                            "removed": .bool(false),
                        ])))
            }
            if snap.metadata.rowTrackingEnabled {
                // Copied rows get fresh Row IDs: their stable ones are not preserved (no materialized column is written).
                info["tags"] = .object(["delta.rowTracking.preserved": .string(copiedRows == 0 ? "true" : "false")])
            }
        }
        info = try await stamped(info, version: version, now: now, enabled: snap.metadata.inCommitTimestamps)
        return [.commitInfo(info)] + removes.map(DeltaAction.remove) + newAdds.map(DeltaAction.add) + extra + changes.map(DeltaAction.cdc)
    }

    /// The record count in an `add` action's statistics, if any.
    public static func numRecords(_ add: AddFile) -> Int64? {
        guard let s = add.stats, let j = try? JSONValue.parse(Array(s.utf8)) else { return nil }
        return j["numRecords"]?.int
    }
}

/// A file of an erasure commit for `rewriteAll`, to be read and its rows chosen by the task that
/// rewrites it.
struct PendingRewrite: Sendable {
    var path: String
    var add: AddFile

    /// What its wave counts it for (`DeltaTable.waves`): the whole file's bytes (before it is selected).
    var bytes: Int64 { add.size }
}

/// One file of an erasure commit: its rows to drop, read and chosen.
struct RewriteJob: Sendable {
    var path: String
    var add: AddFile
    var key: String
    var file: ParquetFile
    /// Rows to drop (the subjects' and a deletion vector's), increasing.
    var drop: [Int64]
    /// The subjects' rows the table still showed (for counts and the change data).
    var newlyDeleted: [Int64]
    /// The store version of the bytes read.
    var version: String?
    /// The bytes of the file read so far when `file` is not held whole (its footer and what the
    /// selection read); nil when `file` holds all of it.
    var partial: SparseSource? = nil
    /// Bytes the rewrite reads (the file, less the row groups it copies unread when `partial`).
    var toRead: Int64 = 0
    /// Mask `drop`'s rows instead of dropping them (the file is then held whole; `scrub` applies too).
    var mask: DeltaMask? = nil
    /// Chunks to scrub of their unreferenced dictionary entries (row group → columns).
    var scrub: [Int: Set<Int>] = [:]

    /// The row groups that lose rows or are scrubbed.
    var touchedGroups: Set<Int> { Set(drop.compactMap { file.rowGroup(ofRow: $0) }).union(scrub.keys) }

    /// The byte ranges of the row groups the rewrite copies without reading them (none when the
    /// file is held whole), in file order.
    func copiedRanges() throws -> [Range<Int64>] {
        guard partial != nil else { return [] }
        let touched = touchedGroups
        var out: [Range<Int64>] = []
        for g in 0..<file.rowGroups.count where !touched.contains(g) {
            let r: Range<Int64>?
            do { r = try file.rowGroupByteRange(g) } catch { throw LetheError(.corrupt, "\(error)", at: key) }
            if let r { out.append(r) }
        }
        return out.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// The ranges of the file the rewrite reads: all but the row groups copied unread.
    func rangesToRead() throws -> [Range<Int64>] {
        let size = file.source.size
        var out: [Range<Int64>] = []
        var at: Int64 = 0
        for r in try copiedRanges() {
            if r.lowerBound > at { out.append(at..<r.lowerBound) }
            at = max(at, r.upperBound)
        }
        if at < size { out.append(at..<size) }
        return out
    }

    func bytesToRead() throws -> Int64 {
        guard partial != nil else { return file.source.size }
        return try rangesToRead().reduce(0) { $0 + Int64($1.count) }
    }
}

/// What rewriting one file produced.
struct RewriteOutcome: Sendable {
    var remove: RemoveFile
    var add: AddFile?
    var change: CDCFile?
    var dropped: Int64, purged: Int64, kept: Int64
    var masked: Int64 = 0
    var rewrite: DeltaFileRewrite
}

/// Keys written by an erasure so far, deleted if it fails (tasks add to it concurrently).
final class WrittenKeys: Sendable {
    private let list = Mutex<[String]>([])
    private let willWrite: (@Sendable ([String]) async throws -> Void)?
    init(willWrite: (@Sendable ([String]) async throws -> Void)? = nil) { self.willWrite = willWrite }
    /// Announces keys about to be written (the caller journals them), then tracks them.
    func add(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await willWrite?(keys)
        list.withLock { $0 += keys }
    }
    var keys: [String] { list.withLock { $0 } }
}

extension DeltaTable {
    /// Rewrites one file without `job.drop` (and its change data when the feed is on): the outcome
    /// and the files to write. A file not held whole is rewritten from everything but its untouched
    /// row groups, which the replacement's plan copies; a rewrite that reads outside those bytes is
    /// done again on the whole file.
    /// `chunkWorkers`: threads the rewrite of one row group's columns may use (the cores no other
    /// file's rewrite is using).
    func rewrite(_ job: RewriteJob, changeDataFeed: Bool, now: Int64, chunkWorkers: Int = 1) async throws -> (RewriteOutcome, [RewrittenFile]) {
        var job = job
        var pageOptions = PageRewriteOptions()
        pageOptions.chunkWorkers = chunkWorkers
        if let mask = job.mask { return try rewriteMasking(job, mask, changeDataFeed: changeDataFeed, now: now) }
        if let partial = job.partial, let version = job.version {
            var source = partial
            try await fetch(try job.rangesToRead(), of: job.key, version: version, into: &source)
            let fetched = MissRecordingSource(source)
            let file = try Self.open(fetched, job.key).sharingDictionaryPages(with: job.file)
            do {
                var sink = PlannedSink()
                let result = try file.rewrite(droppingRows: job.drop, scrubbing: job.scrub, to: &sink, pageOptions: pageOptions)
                let cdc = changeDataFeed && !job.newlyDeleted.isEmpty ? try ChangeData.deletes(from: file, rows: job.newlyDeleted) : nil
                var replacement: (RewrittenContent, Int64, ParquetFile)? = nil
                if !result.isEmpty {
                    // The replacement's statistics from its footer (the end of the plan): it is not read again.
                    guard let footer = sink.footerSource() else { throw WholeFileNeeded() }
                    replacement = (.planned(sink.steps, from: job.key, version: version), sink.size, try Self.open(footer, job.key))
                }
                // A read outside them that did not throw: the rewrite left out what it could not read (a
                // copied row group's page index or bloom filter) where the whole file's keeps it.
                if fetched.missed { throw WholeFileNeeded() }
                job.file = file
                return try rewriteOutcome(job, result, changeData: cdc, replacement: replacement, now: now)
            } catch  where fetched.missed || error is WholeFileNeeded {
                // A bloom filter or page index inside an untouched row group's range, say: nothing is
                // written yet, so do it the whole-file way.
                Trace.mark("delta erase: \(job.path) rewritten from the whole file (\(fetched.missed ? "read outside the ranges fetched" : "\(error)"))")
            } catch let e as LetheError {
                throw e
            } catch {
                throw LetheError(.corrupt, "\(error)", at: job.key)
            }
            job.file = try Self.open(InMemorySource(try await store.read(job.key, range: nil, ifVersion: version)), job.key)
                .sharingDictionaryPages(with: file)
            job.partial = nil
        }
        var sink = InMemorySink()
        let result: RewriteResult
        let cdc: [UInt8]?
        do {
            result = try job.file.rewrite(droppingRows: job.drop, scrubbing: job.scrub, to: &sink, pageOptions: pageOptions)
            cdc = changeDataFeed && !job.newlyDeleted.isEmpty ? try ChangeData.deletes(from: job.file, rows: job.newlyDeleted) : nil
        } catch {
            throw LetheError(.corrupt, "\(error)", at: job.key)
        }
        let bytes = sink.bytes
        let replacement = result.isEmpty ? nil : (RewrittenContent.bytes(bytes), Int64(bytes.count), try Self.open(InMemorySource(bytes), job.key))
        return try rewriteOutcome(job, result, changeData: cdc, replacement: replacement, now: now)
    }

    /// The outcome of a file's rewrite and the files to write: its change data (`changeData`, the
    /// feed's record of the deleted rows) and its replacement (content, size, and the replacement
    /// opened at least for its footer, whose statistics the `add` takes); none when no row is kept.
    func rewriteOutcome(
        _ job: RewriteJob, _ result: RewriteResult, changeData: [UInt8]?, replacement: (RewrittenContent, Int64, ParquetFile)?, now: Int64
    ) throws -> (RewriteOutcome, [RewrittenFile]) {
        let path = job.path, add = job.add
        let masks = job.mask != nil
        var out = RewriteOutcome(
            remove: RemoveFile(removing: add, at: now), add: nil, change: nil,
            dropped: masks ? 0 : Int64(job.newlyDeleted.count), purged: masks ? 0 : result.droppedRows - Int64(job.newlyDeleted.count),
            kept: result.keptRows, masked: masks ? Int64(job.drop.count) : 0,
            rewrite: DeltaFileRewrite(
                removed: path, added: nil, readVersion: job.version, physicalRows: job.file.numRows, dropped: masks ? [] : job.drop,
                keptRows: result.keptRows, rowGroups: result.rowGroups, groupRows: job.file.rowGroups.map(\.numRows)))
        out.rewrite.scrubbed = !job.scrub.isEmpty
        var files: [RewrittenFile] = []
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) + "/" : ""
        if let bytes = changeData {
            // The feed's record of the deleted rows (a later targeted vacuum rewrites it without them).
            let cdcPath = "_change_data/" + dir + "cdc-00000-lethe-\(UUID().uuidString.lowercased()).c000.parquet"
            files.append(RewrittenFile(key: key(forLogPath: cdcPath), content: .bytes(bytes)))
            out.change = CDCFile(
                path: cdcPath, size: Int64(bytes.count),
                raw: [
                    "path": .string(cdcPath), "size": .int(Int64(bytes.count)), "dataChange": .bool(false),
                    "partitionValues": .object(add.partitionValues.mapValues { $0.map(JSONValue.string) ?? .null }),
                ])
        }
        guard let (content, size, newFile) = replacement else { return (out, files) }
        let newPath = dir + "part-00000-lethe-\(UUID().uuidString.lowercased()).c000.parquet"
        // A clustered file stays clustered without some of its rows: its clustering provider is kept.
        var extra: [String: JSONValue] = [:]
        if let provider = add.raw["clusteringProvider"], !provider.isNull { extra["clusteringProvider"] = provider }
        out.add = AddFile(
            path: newPath, partitionValues: add.partitionValues, size: size,
            modificationTime: now, dataChange: true, stats: DeltaStats.json(for: newFile), extra: extra)
        files.append(RewrittenFile(key: key(forLogPath: newPath), content: content))
        out.rewrite.added = newPath
        return (out, files)
    }
}

extension DeltaTable {
    /// A file with its subjects' rows masked (read whole) and the chunks of `job.scrub` scrubbed of
    /// their unreferenced dictionary entries, and the change data of the update (`update_preimage`
    /// and `update_postimage` rows) when the feed is on and rows were masked.
    func rewriteMasking(_ job: RewriteJob, _ mask: DeltaMask, changeDataFeed: Bool, now: Int64) throws -> (RewriteOutcome, [RewrittenFile]) {
        // Only entries to scrub: no cell changes, so no mask is checked against the columns.
        let plan: (columns: Set<Int>, replace: @Sendable (Int, OldCell) -> CellValue) =
            job.drop.isEmpty ? ([], { _, _ in .keep }) : try mask.plan(job.file)
        var sink = InMemorySink()
        let result: RewriteResult
        do {
            result = try job.file.rewrite(masking: job.drop, columns: plan.columns, replace: plan.replace, scrubbing: job.scrub, to: &sink)
        } catch let e where e.code == .invalidArgument || e.code == .unsupported {
            throw LetheError(.unsupported, "cannot mask: \(e)", at: job.key)
        } catch {
            throw LetheError(.corrupt, "\(error)", at: job.key)
        }
        let bytes = sink.bytes
        let newFile = try Self.open(InMemorySource(bytes), job.key)
        let cdc: [UInt8]?
        do {
            cdc = changeDataFeed && !job.drop.isEmpty ? try ChangeData.updates(before: job.file, after: newFile, rows: job.drop) : nil
        } catch {
            throw LetheError(.corrupt, "\(error)", at: job.key)
        }
        return try rewriteOutcome(job, result, changeData: cdc, replacement: (.bytes(bytes), Int64(bytes.count), newFile), now: now)
    }
}

/// A partial rewrite that cannot finish (its footer is not in its written bytes): done on the whole file.
struct WholeFileNeeded: Error {}

/// What an erasure writes of a file: its bytes, or a plan of bytes and ranges of the file read (`from`
/// at `version`) that the store copies.
enum RewrittenContent: Sendable {
    case bytes([UInt8])
    case planned([PlannedSink.Step], from: String, version: String)
}

/// A file an erasure writes: its key and content.
struct RewrittenFile: Sendable {
    var key: String
    var content: RewrittenContent
}
