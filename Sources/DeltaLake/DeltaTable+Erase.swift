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
    public func erase(
        files: [String], selecting: (String, ParquetFile) throws -> [Int64],
        operationParameters: [String: JSONValue], now: Int64, maxAttempts: Int = 20,
        beforeCommit: (@Sendable () async throws -> Void)? = nil,
        willWrite: (@Sendable ([String]) async throws -> Void)? = nil
    ) async throws -> DeltaEraseResult {
        let snap = try await Trace.span("delta erase: snapshot") { try await snapshot() }
        try checkWritable(snap)
        let tracker = WrittenKeys(willWrite: willWrite)
        do {
            let jobs = try await Trace.span("delta erase: read and select \(files.count) files") {
                try await rewriteJobs(files, in: snap, selecting: selecting)
            }
            let batch = try await Trace.span("delta erase: rewrite \(jobs.count) files") {
                try await rewriteAll(jobs, changeDataFeed: snap.metadata.changeDataFeed, now: now, written: tracker)
            }
            guard !batch.removes.isEmpty else {
                return DeltaEraseResult(version: snap.version, removed: [], added: [], changeData: [], droppedRows: 0, keptRows: 0)
            }
            try await beforeCommit?()
            var result = try await Trace.span("delta erase: commit") {
                try await commitErasure(batch, on: snap, operationParameters: operationParameters, now: now, maxAttempts: maxAttempts)
            }
            result.rewrites = batch.rewrites
            return result
        } catch {
            for k in tracker.keys { try? await store.delete(k) }
            throw error
        }
    }

    /// Reads each file and chooses its rows (in order: `selecting` need not be Sendable); a file
    /// with no row to drop gets no job.
    func rewriteJobs(_ files: [String], in snap: Snapshot, selecting: (String, ParquetFile) throws -> [Int64]) async throws -> [RewriteJob] {
        var jobs: [RewriteJob] = []
        for path in Set(files).sorted() {
            guard let add = snap.files[path] else {
                throw LetheError(.conflict, "file \(path) is no longer live at version \(snap.version)", at: root)
            }
            let key = key(forLogPath: path)
            // Read at the version seen (a file changed in between is a conflict: re-plan), which the
            // result reports so a caller can tell whether what it knew of the file was of these bytes.
            let version = try await store.head(key)?.version
            let bytes = try await store.read(key, range: nil, ifVersion: version)
            let file: ParquetFile
            do { file = try ParquetFile(bytes: bytes, name: key) } catch {
                throw LetheError(.corrupt, "\(error)", at: key)
            }
            let subjectRows = try selecting(path, file)
            guard !subjectRows.isEmpty else { continue }
            // Rows a deletion vector already deleted go too: the replacement has no DV.
            let dvRows = try await deletedRows(add)
            let dvSet = Set(dvRows)
            let drop = dvRows.isEmpty ? subjectRows : Array(dvSet.union(subjectRows)).sorted()
            let newlyDeleted = dvRows.isEmpty ? subjectRows : subjectRows.filter { !dvSet.contains($0) }
            jobs.append(RewriteJob(path: path, add: add, key: key, file: file, drop: drop, newlyDeleted: newlyDeleted, version: version))
        }
        return jobs
    }

    /// Rewrites the files, one per core at a time, and gathers the actions and row counts. Each wave of
    /// rewritten files (one per core, more when small: 32 MB at most) is written to the store before
    /// the next is rewritten (memory stays bounded by a wave); then one durability pass for every file written, and their
    /// publication in one batch — instead of an fsync per file and per folder. Nothing is published
    /// before every file is durable; on failure the unpublished ones are aborted (the caller deletes
    /// the published ones, which no version names).
    func rewriteAll(_ jobs: [RewriteJob], changeDataFeed cdf: Bool, now: Int64, written tracker: WrittenKeys) async throws -> ErasureBatch {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        var batch = ErasureBatch()
        var writers: [any ObjectWriteStream] = []
        do {
            var start = 0
            while start < jobs.count {
                // A wave: at least one file per core, more while they are small (up to 256 files or
                // 32 MB read), so thousands of small files do not pay a task group and a hop each.
                var end = min(start + workers, jobs.count)
                var bytes = jobs[start..<end].reduce(Int64(0)) { $0 + $1.add.size }
                while end < jobs.count && end - start < 256 && bytes + jobs[end].add.size <= 32 << 20 {
                    bytes += jobs[end].add.size
                    end += 1
                }
                let wave = Array(jobs[start..<end])
                start += wave.count
                let outcomes = try await boundedMap(wave, limit: workers) { job in
                    try self.rewrite(job, changeDataFeed: cdf, now: now)
                }
                // The wave's files are announced together (one journal transaction), then written.
                try await tracker.add(outcomes.flatMap { $0.1.map(\.key) })
                for (o, files) in outcomes {
                    for f in files {
                        let w = try await store.openWrite(f.key, precondition: .absent, durability: .deferred)
                        writers.append(w)
                        try await w.write(f.bytes)
                    }
                    batch.dropped += o.dropped
                    batch.purged += o.purged
                    batch.kept += o.kept
                    batch.removes.append(o.remove)
                    batch.rewrites.append(o.rewrite)
                    if let a = o.add { batch.adds.append(a) }
                    if let c = o.change { batch.changes.append(c) }
                }
            }
            try await store.makeDurable(writers)
            _ = try await store.commit(writers)
        } catch {
            for w in writers { await w.abort() }
            throw error
        }
        return batch
    }

    /// Commits the batch at the version after `snap`; when another writer committed first, rebases
    /// (up to `maxAttempts`) unless one of the removed files was touched (`.conflict`: re-plan).
    func commitErasure(
        _ batch: ErasureBatch, on start: Snapshot, operationParameters: [String: JSONValue], now: Int64,
        maxAttempts: Int
    ) async throws -> DeltaEraseResult {
        let operationMetrics: [String: JSONValue] = [
            "numRemovedFiles": .int(Int64(batch.removes.count)), "numAddedFiles": .int(Int64(batch.adds.count)),
            "numDeletedRows": .int(batch.dropped), "numCopiedRows": .int(batch.kept),
        ]
        var snap = start
        var attempt = 0
        while true {
            attempt += 1
            let version = snap.version + 1
            let actions = try await commitActions(
                snap: snap, version: version, removes: batch.removes, adds: batch.adds,
                changes: batch.changes, operationParameters: operationParameters,
                metrics: operationMetrics, copiedRows: batch.kept, now: now)
            do {
                try await commit(actions, version: version)
                let added = actions.compactMap { a -> AddFile? in if case .add(let f) = a { return f } else { return nil } }
                return DeltaEraseResult(
                    version: version, removed: batch.removes.map(\.path), added: added, changeData: batch.changes,
                    droppedRows: batch.dropped, keptRows: batch.kept, purgedRows: batch.purged)
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

/// The rewritten files of an erasure, before its commit.
struct ErasureBatch: Sendable {
    var removes: [RemoveFile] = []
    var adds: [AddFile] = []
    var changes: [CDCFile] = []
    var rewrites: [DeltaFileRewrite] = []
    var dropped: Int64 = 0, kept: Int64 = 0, purged: Int64 = 0
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
        copiedRows: Int64, now: Int64
    ) async throws -> [DeltaAction] {
        var info: [String: JSONValue] = [
            "timestamp": .int(now), "operation": .string("DELETE"),
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
}

/// What rewriting one file produced.
struct RewriteOutcome: Sendable {
    var remove: RemoveFile
    var add: AddFile?
    var change: CDCFile?
    var dropped: Int64, purged: Int64, kept: Int64
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
    /// Rewrites one file without `job.drop` (and its change data when the feed is on), in memory:
    /// the outcome and the files to write (key, bytes).
    func rewrite(_ job: RewriteJob, changeDataFeed: Bool, now: Int64) throws -> (RewriteOutcome, [RewrittenFile]) {
        var sink = InMemorySink()
        let result: RewriteResult
        do { result = try job.file.rewrite(droppingRows: job.drop, to: &sink) } catch {
            throw LetheError(.corrupt, "\(error)", at: job.key)
        }
        let path = job.path, add = job.add
        var out = RewriteOutcome(
            remove: RemoveFile(removing: add, at: now), add: nil, change: nil,
            dropped: Int64(job.newlyDeleted.count), purged: result.droppedRows - Int64(job.newlyDeleted.count),
            kept: result.keptRows,
            rewrite: DeltaFileRewrite(
                removed: path, added: nil, readVersion: job.version, physicalRows: job.file.numRows, dropped: job.drop,
                keptRows: result.keptRows, rowGroups: result.rowGroups, groupRows: job.file.rowGroups.map(\.numRows)))
        var files: [RewrittenFile] = []
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) + "/" : ""
        if changeDataFeed && !job.newlyDeleted.isEmpty {
            // The feed's record of the deleted rows (a later targeted vacuum rewrites it without them).
            let bytes: [UInt8]
            do { bytes = try ChangeData.deletes(from: job.file, rows: job.newlyDeleted) } catch {
                throw LetheError(.corrupt, "\(error)", at: job.key)
            }
            let cdcPath = "_change_data/" + dir + "cdc-00000-lethe-\(UUID().uuidString.lowercased()).c000.parquet"
            files.append(RewrittenFile(key: key(forLogPath: cdcPath), bytes: bytes))
            out.change = CDCFile(
                path: cdcPath, size: Int64(bytes.count),
                raw: [
                    "path": .string(cdcPath), "size": .int(Int64(bytes.count)), "dataChange": .bool(false),
                    "partitionValues": .object(add.partitionValues.mapValues { $0.map(JSONValue.string) ?? .null }),
                ])
        }
        guard !result.isEmpty else { return (out, files) }
        let newPath = dir + "part-00000-lethe-\(UUID().uuidString.lowercased()).c000.parquet"
        let newKey = key(forLogPath: newPath)
        let newFile = try ParquetFile(bytes: sink.bytes, name: newKey)
        // A clustered file stays clustered without some of its rows: its clustering provider is kept.
        var extra: [String: JSONValue] = [:]
        if let provider = add.raw["clusteringProvider"], !provider.isNull { extra["clusteringProvider"] = provider }
        out.add = AddFile(
            path: newPath, partitionValues: add.partitionValues, size: Int64(sink.bytes.count),
            modificationTime: now, dataChange: true, stats: DeltaStats.json(for: newFile), extra: extra)
        files.append(RewrittenFile(key: newKey, bytes: sink.bytes))
        out.rewrite.added = newPath
        return (out, files)
    }
}

/// A file an erasure writes: its key and bytes.
struct RewrittenFile: Sendable {
    var key: String
    var bytes: [UInt8]
}
