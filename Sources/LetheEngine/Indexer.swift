public import Foundation
import Synchronization
public import LetheCore
import LetheStorage
import LetheFormats
public import LetheCatalog
import Logging

/// Progress of an index run, for a progress bar.
public struct IndexProgress: Sendable {
    public var objectsTotal = 0, objectsDone = 0
    public var bytesTotal: Int64 = 0, bytesDone: Int64 = 0
    public var records: Int64 = 0
    public var startedAt = Date()
}

/// Brings the subject index up to date (see `Lethe.index`): lists each dataset through its driver,
/// scans what is new or changed with one task per core, and records what it found in batches.
struct Indexer: Sendable {
    let config: LakeConfig
    let store: any ObjectStore
    let state: any StateStore
    let hasher: SubjectHasher
    let logger: Logger
    let now: @Sendable () -> Int64
    /// What the dataset drivers read the lake through (listings, scan options, formats).
    let lake: Lethe

    init(_ lake: Lethe) {
        config = lake.config; store = lake.store; state = lake.meta; hasher = lake.secrets.hasher
        logger = lake.logger; now = lake.now; self.lake = lake
    }

    /// What one index run scans, and what it records once the scan is done.
    struct Work {
        var objects: [(DatasetSpec, ObjectInfo, FormatOptions)] = []
        /// Delta tables: the cursor to record, so the next run reads only the commits after it.
        var cursors: [Lethe.IndexListing.Cursor] = []
        /// Delta tables: the commit index to store with the cursor (`DeltaCommitIndex`), by dataset.
        var commitIndexes: [String: DeltaCommitIndex.Update] = [:]
        /// Datasets listed cleanly (any issue recorded before goes).
        var clean: [String] = []
        /// Object datasets whose every object is indexed under this spec fingerprint once the run is done.
        var specs: [String: String] = [:]
        var progress = IndexProgress()
    }

    func index(
        datasets names: [String]?, workers requested: Int?,
        progress: (@Sendable (IndexProgress) -> Void)?
    ) async throws -> IndexReport {
        let started = Date()
        var report = IndexReport()
        var work = Work()
        let temporaries = try await lake.knownTemporaries()
        for d in try chosen(names) where d.subject != nil {  // aggregates without a subject column hold no one
            report.datasets.append(d.name)
            try await plan(d, temporaries: temporaries, into: &work, report: &report)
        }
        work.progress.objectsTotal = work.objects.count
        progress?(work.progress)
        try await scan(work.objects, workers: workers(requested), progress: work.progress, report: &report, onProgress: progress)
        try await finish(work, report: &report)
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// The datasets `names` asks for (all when nil); an unknown name is a usage error.
    func chosen(_ names: [String]?) throws -> [DatasetSpec] {
        guard let names else { return config.datasets }
        for n in names where config.dataset(named: n) == nil {
            throw LetheError(.badUsage, "no dataset named `\(n)` in \(config.file)")
        }
        return config.datasets.filter { names.contains($0.name) }
    }

    /// One task per core (`LETHE_WORKERS`, or `requested`), 16 at most.
    private func workers(_ requested: Int?) -> Int {
        let env = ProcessInfo.processInfo.environment["LETHE_WORKERS"].flatMap(Int.init)
        return max(1, min(requested ?? env ?? ProcessInfo.processInfo.activeProcessorCount, 16))
    }

    /// Lists dataset `d` and adds what is new or changed to `work`; known objects no longer listed
    /// leave the index (a full listing). A dataset that cannot be listed is recorded as an issue.
    func plan(_ d: DatasetSpec, temporaries: Set<String>, into work: inout Work, report: inout IndexReport) async throws {
        guard let listing = try await Trace.span("index: list \(d.name)", { try await listing(d, report: &report) }), let opts = listing.options
        else { return }
        if let c = listing.cursor { work.cursors.append(c) }
        if let ci = listing.commitIndex { work.commitIndexes[ci.dataset] = ci.update }
        work.clean.append(d.name)
        var listed = listing.objects.filter { !temporaries.contains($0.key) }
        // An incremental listing with nothing new (a Delta table without a commit since the cursor)
        // needs only the objects quarantined earlier, not every object the index knows (a table of
        // thousands of files is refreshed at the start of every run).
        let known = try await Trace.span("index: known objects of \(d.name)") {
            listing.incremental && listed.isEmpty
                ? try await state.quarantinedObjects().filter { $0.dataset == d.name }
                : try await state.objects(dataset: d.name)
        }
        var knownByKey: [String: IndexedObject] = [:]
        for o in known { knownByKey[o.key] = o }
        // A full listing under a spec other than the one the entries were made under (or unknown):
        // every object is scanned again, so the fingerprint recorded at the end vouches for all of them.
        var rescan = false
        if !listing.incremental, let fp = IndexSpec.fingerprint(d, options: opts) {
            rescan = try await state.cursors.setting(IndexSpec.setting(d.name)) != fp
            work.specs[d.name] = fp
        }
        if listing.incremental {
            // Objects quarantined earlier are tried again, as a full listing would.
            for o in known where o.status == .quarantined && !listed.contains(where: { $0.key == o.key }) {
                if let info = try await store.head(o.key) { listed.append(info) }
            }
        } else {
            let listedKeys = Set(listed.map(\.key))
            let gone = known.filter { !listedKeys.contains($0.key) }.map(\.key)
            try await state.removeObjects(dataset: d.name, keys: gone)
            report.objectsRemoved += gone.count
        }
        for o in listed {
            report.objectsSeen += 1
            if !rescan, let k = knownByKey[o.key], k.version == o.version, k.status == .indexed {
                report.objectsUnchanged += 1
                continue
            }
            work.objects.append((d, o, opts))
            work.progress.bytesTotal += o.size
        }
    }

    /// The dataset's listing from its driver; nil (the issue recorded and reported) when it cannot be listed.
    private func listing(_ d: DatasetSpec, report: inout IndexReport) async throws -> Lethe.IndexListing? {
        do {
            _ = try lake.format(for: d)
            return try await lake.indexListing(d)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            try state.checkIntact()
            let issue = DatasetIssue(dataset: d.name, error: error)
            try await state.setSetting(Lethe.issueSetting(d.name), issue.settingValue)
            report.datasetIssues.append(issue)
            logger.warning("dataset not indexed", metadata: ["dataset": "\(d.name)", "issue": "\(issue.message)"])
            return nil
        }
    }

    /// Scans `work` with one task per worker, each with its own key cache (a subject seen in many
    /// objects is hashed once per worker); results are written in batches, one transaction for many objects.
    private func scan(
        _ work: [(DatasetSpec, ObjectInfo, FormatOptions)], workers: Int, progress start: IndexProgress,
        report: inout IndexReport, onProgress: (@Sendable (IndexProgress) -> Void)?
    ) async throws {
        let pool = KeyerPool(hasher: hasher)
        var next = 0
        var prog = start
        var batch = Batch()
        try await withThrowingTaskGroup(of: ScanResult.self) { group in
            func launch() {
                guard next < work.count else { return }
                let (d, o, opts) = work[next]
                next += 1
                group.addTask {
                    let keyer = pool.take(d.normalization)
                    defer { pool.give(keyer) }
                    return try await self.scanOne(d, o, options: opts, keyer: keyer)
                }
            }
            for _ in 0..<workers { launch() }
            do {
                while let r = try await group.next() {
                    launch()
                    prog.objectsDone += 1
                    prog.bytesDone += r.object.size
                    try await record(r, batch: &batch, progress: &prog, report: &report)
                    onProgress?(prog)
                }
                try await batch.flush(state)
            } catch {
                // A failure leaves no write running behind it (the one in flight commits or fails whole).
                _ = try? await batch.settle()
                throw error
            }
        }
        try await batch.settle()
    }

    /// Index entries waiting to be written, with how many postings they hold. A full batch is written
    /// while the next one is scanned (its transaction, and the WAL syncs of the checkpoints it sets
    /// off, overlap the scan instead of stopping it); at most one write is in flight, so memory stays
    /// bounded by two batches, and batches commit in the order they filled.
    private struct Batch {
        var objects: [(IndexedObject, PostingList)] = []
        var postings = 0
        /// The previous batch's write (nil when none is in flight).
        var writing: Task<Void, any Error>?
        var isFull: Bool { objects.count >= 256 || postings >= 500_000 }

        /// Starts the batch's write once the previous one has committed (its error thrown here).
        mutating func flush(_ state: any StateStore) async throws {
            guard !objects.isEmpty else { return }
            try await settle()
            let full = objects
            writing = Task { try await state.putIndexedObjects(flat: full) }
            objects = []
            postings = 0
        }

        /// Waits for the write in flight (if any) and throws its error.
        mutating func settle() async throws {
            guard let w = writing else { return }
            writing = nil
            try await w.value
        }
    }

    /// Records one object's scan: its entries into the batch (written once it is full), or the object quarantined.
    private func record(_ r: ScanResult, batch: inout Batch, progress prog: inout IndexProgress, report: inout IndexReport) async throws {
        switch r.outcome {
        case .indexed(let records, let postings):
            batch.objects.append(
                (
                    IndexedObject(
                        dataset: r.dataset, key: r.object.key, size: r.object.size,
                        modifiedNanos: r.object.modifiedNanos, version: r.object.version,
                        records: records, status: .indexed, indexedAt: now()), postings
                ))
            batch.postings += postings.count
            if batch.isFull { try await batch.flush(state) }
            report.records += records
            prog.records += records
            report.bytesScanned += r.object.size
            report.objectsScanned += 1
        case .quarantined(let issue, let code):
            try await state.quarantine(
                IndexedObject(
                    dataset: r.dataset, key: r.object.key, size: r.object.size,
                    modifiedNanos: r.object.modifiedNanos, version: r.object.version,
                    records: 0, status: .quarantined, issue: issue, issueCode: code, indexedAt: now()))
            report.quarantined.append(.init(dataset: r.dataset, object: r.object.key, issue: issue))
            logger.warning("quarantined object", metadata: ["object": "\(r.object.key)", "issue": "\(issue)"])
        }
    }

    /// After the scan: the Delta cursors, the datasets' clean marks, and the postings of large removed objects.
    private func finish(_ work: Work, report: inout IndexReport) async throws {
        // Delta tables: the version indexed, so the next run reads only the commits after it; and the
        // datasets that indexed cleanly lose any issue recorded before. One transaction per dataset
        // (its cursor, commit index and marks together), not one per setting.
        let at = String(now())
        let cursors = Dictionary(work.cursors.map { ($0.dataset, $0.cursor) }, uniquingKeysWith: { _, b in b })
        var named = Set<String>()
        for name in work.cursors.map(\.dataset) + work.clean where named.insert(name).inserted {
            let cursor = cursors[name], update = work.commitIndexes[name]
            let clean = work.clean.contains(name), fp = work.specs[name]
            let what = cursor != nil ? "cannot save setting delta.\(name).indexed" : "cannot save setting \(Lethe.indexedSetting(name))"
            try await state.transaction(what) { tx in
                if let cursor {
                    try tx.cursors.setDeltaIndex(cursor, dataset: name)
                    if let u = update {
                        try DeltaCommitIndex.note(u.entries, from: u.from, through: u.through, complete: u.complete, dataset: name, tx)
                    }
                }
                guard clean else { return }
                try tx.cursors.removeSetting(Lethe.issueSetting(name))
                try tx.cursors.setSetting(Lethe.indexedSetting(name), at)
                if let fp { try tx.cursors.setSetting(IndexSpec.setting(name), fp) }
            }
        }
        // Postings of large removed objects, in one pass once they weigh enough (or the pass's
        // segments merged into one).
        report.purgedObjects = try await Trace.span("index: purge dead postings, merge segments") {
            try await state.purgeDeadPostings(force: false)
        }
    }

    struct ScanResult: Sendable {
        /// The records and the postings (sorted by the scanning task, see `PostingList.sort`).
        enum Outcome: Sendable { case indexed(Int64, PostingList), quarantined(String, code: String) }
        var dataset: String
        var object: ObjectInfo
        var outcome: Outcome
    }

    /// Scans one object for its subject keys; an object that cannot be read is quarantined, never fatal.
    func scanOne(_ d: DatasetSpec, _ o: ObjectInfo, options opts: FormatOptions, keyer: SubjectKeyer? = nil) async throws -> ScanResult {
        let f = try lake.format(for: d)
        let keyer = keyer ?? SubjectKeyer(hasher: hasher, normalization: d.normalization)
        var postings = PostingList()
        // About one posting a 200-byte record: one allocation for most objects.
        postings.reserveCapacity(Int(min(max(o.size / 160, 16), 1 << 20)))
        do {
            let summary = try await f.scan(o, in: store, options: opts, keyer: keyer) { row, key in
                postings.append(key.prefix64, row: row)
            }
            // A subject whose value a dictionary entry holds where no row does: the object is named for it.
            for key in summary.unreferenced { postings.append(key.prefix64, row: RecordOrdinal.unreferencedEntry) }
            postings.sort()  // here, in the scanning task (one per core), not in the writer
            return ScanResult(dataset: d.name, object: o, outcome: .indexed(summary.records, postings))
        } catch let e as LetheError {
            return ScanResult(dataset: d.name, object: o, outcome: .quarantined(DatasetIssue.oneLine(e.description), code: e.code.description))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return ScanResult(
                dataset: d.name, object: o, outcome: .quarantined(DatasetIssue.oneLine("\(o.key): \(error)"), code: LetheError.Code.failure.description))
        }
    }

    /// Re-indexes one object after Lethe rewrote it (or forgets it if it is gone).
    /// `options`: the dataset's scan options when the caller has them (see `scanOptions`).
    func reindex(_ d: DatasetSpec, key: String, options: FormatOptions?) async throws {
        var opts = options
        if opts == nil { opts = try await lake.scanOptions(for: d) }
        guard let opts else { return }
        guard let info = try await store.head(key) else {
            try await state.removeObject(dataset: d.name, key: key)
            return
        }
        let r = try await scanOne(d, info, options: opts)
        switch r.outcome {
        case .indexed(let records, let postings):
            try await state.putIndexedObjects(flat: [
                (
                    IndexedObject(
                        dataset: d.name, key: key, size: info.size, modifiedNanos: info.modifiedNanos,
                        version: info.version, records: records, status: .indexed, indexedAt: now()),
                    postings
                )
            ])
        case .quarantined(let issue, let code):
            try await state.quarantine(
                IndexedObject(
                    dataset: d.name, key: key, size: info.size, modifiedNanos: info.modifiedNanos,
                    version: info.version, records: 0, status: .quarantined, issue: issue, issueCode: code, indexedAt: now()))
        }
    }
}

extension Lethe {
    /// Brings the subject index up to date: scans objects that are new or changed
    /// since the last run, drops entries of objects that are gone, and quarantines
    /// objects that cannot be read (reported, never fatal). A dataset that cannot be
    /// listed or read as a whole (e.g. a corrupt Delta log, an unsupported table feature)
    /// is recorded as a `DatasetIssue` and the others are indexed. Temporary files the
    /// journal knows are not data; any other file is.
    public func index(
        datasets names: [String]? = nil, workers requested: Int? = nil,
        progress: (@Sendable (IndexProgress) -> Void)? = nil
    ) async throws -> IndexReport {
        return try await durably {
            forgetDeltaSnapshots()  // Delta snapshots are reused within one operation only
            try await destroyExpiredRawIDs()  // every writing entry point first (sweep.raw_id_days)
            return try await Indexer(self).index(datasets: names, workers: requested, progress: progress)
        }
    }

    /// Re-indexes one object after Lethe rewrote it (or forgets it if it is gone).
    /// `options`: the dataset's scan options when the caller has them (see `scanOptions`).
    func reindex(_ d: DatasetSpec, key: String, options: FormatOptions? = nil) async throws {
        try await Indexer(self).reindex(d, key: key, options: options)
    }

    /// Where a subject's records are, from the index alone.
    public func locate(_ subject: SubjectID) async throws -> [Posting] {
        try await postings(key(for: subject), nfc: nfcKey(for: subject))
    }
}

/// Key caches handed to one scanning task at a time (one set per dataset normalisation).
final class KeyerPool: Sendable {
    private let free = Mutex<[Normalization: [SubjectKeyer]]>([:])
    private let hasher: SubjectHasher
    init(hasher: SubjectHasher) { self.hasher = hasher }
    func take(_ normalization: Normalization) -> SubjectKeyer {
        free.withLock { $0[normalization]?.popLast() } ?? SubjectKeyer(hasher: hasher, normalization: normalization)
    }
    func give(_ k: SubjectKeyer) {
        free.withLock { $0[k.normalization, default: []].append(k) }
    }
}

// MARK: Changes (the real-time index)

extension Indexer {
    /// Indexes what changed at `keys` (see `Lethe.index(changes:)`): each key's object as the store
    /// has it now (read again when its version differs from the index's; forgotten when it is gone),
    /// and Delta tables whose log a key is in, incrementally.
    func index(changes keys: [String], datasets names: [String]?) async throws -> ChangesIndexReport {
        let started = Date()
        var out = ChangesIndexReport()
        var report = IndexReport()
        let chosen = try chosen(names).filter { $0.subject != nil }
        // Keys by dataset (in config order), Delta tables by name; a key of no dataset is ignored.
        var objectKeys: [String: [String]] = [:], deltaKeys: [String: [String]] = [:], tables: [String] = []
        var seen = Set<String>()
        for key in keys where seen.insert(key).inserted {
            var held = false
            for d in chosen where d.holds(key) {
                held = true
                if lake.driver(for: d).hasTransactionLog {
                    if key.hasPrefix(d.path + "/_delta_log/") {
                        if !tables.contains(d.name) { tables.append(d.name) }
                    } else {
                        deltaKeys[d.name, default: []].append(key)
                    }
                } else if d.quarantinePrefix.map(key.hasPrefix) == true ? d.isQuarantineRecords(key) : !Lethe.isHidden(key, below: d.path) {
                    objectKeys[d.name, default: []].append(key)
                }
            }
            if !held { out.ignoredKeys += 1 }
        }
        let temporaries = objectKeys.isEmpty && deltaKeys.isEmpty ? [] : try await lake.knownTemporaries()
        var work = Work()
        for d in chosen {
            if let keys = objectKeys[d.name] {
                report.datasets.append(d.name)
                try await plan(d, keys: keys.filter { !temporaries.contains($0) }, into: &work, report: &report)
            } else if let keys = deltaKeys[d.name], !tables.contains(d.name) {
                // A data file of a table is data once a commit names it (its log key follows);
                // one that is gone leaves the index now.
                try await dropGone(d, keys: keys.filter { !temporaries.contains($0) }, report: &report)
            }
        }
        work.progress.objectsTotal = work.objects.count
        try await scan(work.objects, workers: workers(nil), progress: work.progress, report: &report, onProgress: nil)
        if !work.objects.isEmpty || report.objectsRemoved > 0 {
            report.purgedObjects = try await Trace.span("index: purge dead postings, merge segments") {
                try await state.purgeDeadPostings(force: false)
            }
        }
        // A commit (or checkpoint) landed in a table's log: the commits since the version indexed.
        for name in tables {
            let r = try await index(datasets: [name], workers: nil, progress: nil)
            report.datasets += r.datasets
            report.objectsSeen += r.objectsSeen
            report.objectsScanned += r.objectsScanned
            report.objectsUnchanged += r.objectsUnchanged
            report.objectsRemoved += r.objectsRemoved
            report.records += r.records
            report.bytesScanned += r.bytesScanned
            report.quarantined += r.quarantined
            report.purgedObjects += r.purgedObjects
            report.datasetIssues += r.datasetIssues
        }
        out.deltaTables = tables
        report.seconds = Date().timeIntervalSince(started)
        out.index = report
        return out
    }

    /// The objects named in `keys` of object dataset `d`: gone ones leave the index, new or changed
    /// ones join `work` (all of them when the dataset's spec changed since its last full index).
    private func plan(_ d: DatasetSpec, keys: [String], into work: inout Work, report: inout IndexReport) async throws {
        let opts: FormatOptions?
        do {
            _ = try lake.format(for: d)
            opts = try await lake.scanOptions(for: d)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // Recorded by the next full pass (the rescan), which lists the dataset.
            report.datasetIssues.append(DatasetIssue(dataset: d.name, error: error))
            return
        }
        guard let opts else { return }
        var rescan = false
        if let fp = IndexSpec.fingerprint(d, options: opts) { rescan = try await state.cursors.setting(IndexSpec.setting(d.name)) != fp }
        let known = try await knownObjects(d)
        var gone: [String] = []
        for key in keys {
            report.objectsSeen += 1
            guard let info = try await store.head(key) else {
                if known[key] != nil { gone.append(key) }
                continue
            }
            if !rescan, let k = known[key], k.version == info.version, k.status == .indexed {
                report.objectsUnchanged += 1
                continue
            }
            work.objects.append((d, info, opts))
            work.progress.bytesTotal += info.size
        }
        try await state.removeObjects(dataset: d.name, keys: gone)
        report.objectsRemoved += gone.count
    }

    /// Removes from the index the objects of `keys` it knows that the store no longer has.
    private func dropGone(_ d: DatasetSpec, keys: [String], report: inout IndexReport) async throws {
        let known = try await knownObjects(d)
        var gone: [String] = []
        for key in keys where known[key] != nil {
            if try await store.head(key) == nil { gone.append(key) }
        }
        guard !gone.isEmpty else { return }
        try await state.removeObjects(dataset: d.name, keys: gone)
        report.objectsRemoved += gone.count
        report.purgedObjects += try await state.purgeDeadPostings(force: false)
    }

    private func knownObjects(_ d: DatasetSpec) async throws -> [String: IndexedObject] {
        var out: [String: IndexedObject] = [:]
        for o in try await state.objects(dataset: d.name) { out[o.key] = o }
        return out
    }
}
