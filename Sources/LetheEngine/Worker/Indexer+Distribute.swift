import Foundation
import LetheCore
import LetheStorage
import LetheFormats
public import LetheCatalog
import Logging

/// What `lethe index --distribute` enqueued.
public struct IndexDistribution: Sendable, Equatable {
    /// The items' batch (`Lethe.indexBatchReport`).
    public var batch: String
    /// Items enqueued for workers.
    public var items: Int
    /// The coordinator's share: datasets, objects seen, unchanged and removed, dataset issues.
    public var report: IndexReport
}

extension Indexer {
    /// Tests: runs after an object item's scan, before its fenced end (a holder stalled past its lease).
    @TaskLocal static var beforeItemEnd: (@Sendable () async throws -> Void)?

    /// The most objects, and bytes, of one index item.
    static let itemObjects = 64
    static let itemBytes: Int64 = 256 << 20

    /// The coordinator of a distributed index: lists each dataset, removes the objects gone, and
    /// cuts the new or changed ones into items (a Delta table is one item); a dataset with nothing
    /// to scan is recorded as indexed at once.
    func distribute(datasets names: [String]?, batch: String) async throws -> (items: [IndexItem], report: IndexReport) {
        var report = IndexReport()
        var items: [IndexItem] = []
        let temporaries = try await lake.knownTemporaries()
        for d in try chosen(names) where d.subject != nil {
            report.datasets.append(d.name)
            if lake.driver(for: d).hasTransactionLog {
                items.append(IndexItem(batch: batch, ordinal: Int64(items.count), dataset: d.name, keys: [], table: true))
                continue
            }
            var work = Work()
            try await plan(d, temporaries: temporaries, into: &work, report: &report)
            guard work.clean.contains(d.name) else { continue }  // an issue, recorded and reported
            let fp = work.specs[d.name]
            if work.objects.isEmpty {
                try await markIndexed(d.name, fingerprint: fp)
                continue
            }
            var keys: [String] = [], bytes: Int64 = 0
            for (_, o, _) in work.objects {
                if !keys.isEmpty && (keys.count >= Self.itemObjects || bytes + o.size > Self.itemBytes) {
                    items.append(IndexItem(batch: batch, ordinal: Int64(items.count), dataset: d.name, keys: keys, fingerprint: fp))
                    keys = []; bytes = 0
                }
                keys.append(o.key); bytes += o.size
            }
            items.append(IndexItem(batch: batch, ordinal: Int64(items.count), dataset: d.name, keys: keys, fingerprint: fp))
        }
        if report.objectsRemoved > 0 { report.purgedObjects = try await state.purgeDeadPostings(force: false) }
        return (items, report)
    }

    /// A dataset listed and indexed cleanly: any issue recorded before goes.
    private func markIndexed(_ name: String, fingerprint: String?) async throws {
        let at = String(now())
        try await state.transaction("cannot record dataset \(name) as indexed") { tx in
            try Self.markIndexed(tx, name, fingerprint: fingerprint, at: at)
        }
    }

    static func markIndexed(_ tx: any StateTransaction, _ name: String, fingerprint: String?, at: String) throws {
        try tx.cursors.removeSetting(Lethe.issueSetting(name))
        try tx.cursors.setSetting(Lethe.indexedSetting(name), at)
        if let fingerprint { try tx.cursors.setSetting(IndexSpec.setting(name), fingerprint) }
    }

    /// A worker's share: scans an item's objects (one task per core, one key cache each), then in one
    /// transaction the fence, the postings, the item's end and — the dataset's last item — its
    /// indexed mark. A Delta table item runs the table's incremental index, then ends fenced.
    func execute(_ lease: IndexLease) async throws -> IndexReport {
        let item = lease.item
        let started = Date()
        // An item no worker can finish (its dataset gone from the config, or its holders died in it
        // three times) ends with the dataset's issue in its report, so `--wait` ends and says so.
        var stuck: String?
        if lease.attempts > Lethe.maxStepAttempts {
            stuck = "index item \(item.batch)#\(item.ordinal): started \(lease.attempts - 1) times and never finished (the worker was killed or crashed in it)"
        } else if config.dataset(named: item.dataset) == nil {
            stuck = "index item \(item.batch)#\(item.ordinal): no dataset named `\(item.dataset)` in \(config.file)"
        }
        guard let d = config.dataset(named: item.dataset), stuck == nil else {
            var r = IndexReport()
            r.datasetIssues = [DatasetIssue(dataset: item.dataset, error: LetheError(.failure, stuck ?? ""))]
            let json = try Self.json(r)
            try await state.transaction("cannot record index item \(item.batch)#\(item.ordinal)") { tx in
                _ = try tx.journal.finishIndexItem(lease, report: json)
            }
            return r
        }
        if item.table {
            var r = try await index(datasets: [d.name], workers: nil, progress: nil)
            r.seconds = Date().timeIntervalSince(started)
            let json = try Self.json(r)
            try await state.transaction("cannot record index item \(item.batch)#\(item.ordinal)") { tx in
                _ = try tx.journal.finishIndexItem(lease, report: json)
            }
            return r
        }
        if let ms = SlowStepFailpoint.ms { try await Task.sleep(for: .milliseconds(ms)) }  // e2e: a window to kill in
        var report = IndexReport()  // the coordinator counted the item's objects seen
        var results: [ScanResult] = [], gone: [String] = []
        if let opts = try await lake.scanOptions(for: d) {
            var infos: [ObjectInfo] = []
            for key in item.keys {
                if let info = try await store.head(key) { infos.append(info) } else { gone.append(key) }
            }
            let pool = KeyerPool(hasher: hasher)
            let width = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16))
            results = try await withThrowingTaskGroup(of: ScanResult.self) { group in
                var next = 0, out: [ScanResult] = []
                func launch() {
                    guard next < infos.count else { return }
                    let o = infos[next]
                    next += 1
                    group.addTask {
                        let keyer = pool.take(d.normalization)
                        defer { pool.give(keyer) }
                        return try await self.scanOne(d, o, options: opts, keyer: keyer)
                    }
                }
                for _ in 0..<width { launch() }
                while let r = try await group.next() {
                    launch()
                    out.append(r)
                }
                return out
            }
        }
        let at = now()
        var indexed: [(IndexedObject, [Int64: [Int64]])] = [], quarantined: [IndexedObject] = []
        report.objectsRemoved = gone.count
        for r in results {
            switch r.outcome {
            case .indexed(let records, let postings):
                indexed.append(
                    (
                        IndexedObject(
                            dataset: r.dataset, key: r.object.key, size: r.object.size, modifiedNanos: r.object.modifiedNanos,
                            version: r.object.version, records: records, status: .indexed, indexedAt: at), postings.dictionary
                    ))
                report.records += records
                report.bytesScanned += r.object.size
                report.objectsScanned += 1
            case .quarantined(let issue, let code):
                quarantined.append(
                    IndexedObject(
                        dataset: r.dataset, key: r.object.key, size: r.object.size, modifiedNanos: r.object.modifiedNanos,
                        version: r.object.version, records: 0, status: .quarantined, issue: issue, issueCode: code, indexedAt: at))
                report.quarantined.append(.init(dataset: r.dataset, object: r.object.key, issue: issue))
            }
        }
        report.seconds = Date().timeIntervalSince(started)
        let json = try Self.json(report)
        let (name, fp) = (d.name, item.fingerprint)
        if let hook = Self.beforeItemEnd { try await hook() }
        try await state.transaction("cannot record index item \(item.batch)#\(item.ordinal)") { [indexed, quarantined, gone] tx in
            let last = try tx.journal.finishIndexItem(lease, report: json)
            if !indexed.isEmpty { try tx.index.putIndexedObjects(indexed) }
            for o in quarantined { try tx.index.quarantine(o) }
            if !gone.isEmpty { try tx.index.removeObjects(dataset: name, keys: gone) }
            if last { try Self.markIndexed(tx, name, fingerprint: fp, at: String(at)) }
        }
        return report
    }

    static func json(_ r: IndexReport) throws -> String { String(decoding: try JSONEncoder().encode(r), as: UTF8.self) }
}

extension Lethe {
    /// `lethe index --distribute`: the coordinator's pass of a distributed index (see
    /// `Indexer.distribute`); its items are then claimed by `lethe worker` processes
    /// (`workOneIndexItem`). Needs a state with a work queue (PostgreSQL): `.badUsage` otherwise.
    public func distributeIndex(datasets names: [String]? = nil) async throws -> IndexDistribution {
        return try await durably {
            guard let queue = meta.workQueue as? any IndexItemQueue else {
                throw LetheError(
                    .badUsage, "lethe index --distribute needs a shared PostgreSQL state (`state: postgres://…`) in \(config.file)")
            }
            forgetDeltaSnapshots()
            try await destroyExpiredRawIDs()
            let started = Date()
            let batch = "ix-\(now())-\(UUID().uuidString.prefix(8).lowercased())"
            var (items, report) = try await Indexer(self).distribute(datasets: names, batch: batch)
            try await queue.enqueueIndexItems(items)
            report.seconds = Date().timeIntervalSince(started)
            return IndexDistribution(batch: batch, items: items.count, report: report)
        }
    }

    /// Where a distributed index stands: its pending items, and the coordinator's report (`base`)
    /// with the reports of the items done added.
    public func indexBatchReport(_ batch: String, base: IndexReport) async throws -> (pending: Int, report: IndexReport) {
        guard let queue = meta.workQueue as? any IndexItemQueue else {
            throw LetheError(.badUsage, "this state has no work queue (`state: postgres://…`)")
        }
        let status = try await queue.indexBatch(batch)
        var r = base
        for text in status.reports {
            let o = try JSONDecoder().decode(IndexReport.self, from: Data(text.utf8))
            r.objectsSeen += o.objectsSeen
            r.objectsUnchanged += o.objectsUnchanged
            r.objectsRemoved += o.objectsRemoved
            r.objectsScanned += o.objectsScanned
            r.records += o.records
            r.bytesScanned += o.bytesScanned
            r.quarantined += o.quarantined
            r.purgedObjects += o.purgedObjects
            r.datasetIssues += o.datasetIssues
        }
        return (status.pending, r)
    }

    /// Claims one index item and executes it under its lease (renewed while it runs; a lost lease
    /// ends it, and its commit is fenced). nil when no item was claimable or the queue has none.
    public func workOneIndexItem(
        _ queue: any WorkQueue, worker: WorkerID, settings: WorkerSettings
    ) async throws -> (result: StepResult, report: IndexReport)? {
        return try await durably {
            guard let items = queue as? any IndexItemQueue, let lease = try await items.claimIndexItem(worker, ttl: settings.lease) else {
                return nil
            }
            let ttl = settings.lease
            let indexer = Indexer(self)
            do {
                let report = try await withThrowingTaskGroup(of: IndexReport?.self) { group -> IndexReport in
                    group.addTask { try await indexer.execute(lease) }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: ttl / 3)
                            if try await !items.renewIndexItem(lease, ttl: ttl) { throw LeaseLost() }
                        }
                    }
                    defer { group.cancelAll() }
                    while let r = try await group.next() {
                        if let r { return r }
                    }
                    throw LeaseLost()
                }
                return (.finished, report)
            } catch is LeaseLost {
                logger.warning("lease lost: another worker holds the index item", metadata: ["item": "\(lease.item.batch)#\(lease.item.ordinal)"])
                return (.leaseLost, IndexReport())
            } catch let e as LetheError where e.code == .conflict && e.message.contains("lease") {
                return (.leaseLost, IndexReport())
            } catch is CancellationError {
                try? await items.releaseIndexItem(lease)
                return (.released, IndexReport())
            } catch {
                // What a holder meets after its lease was lost (e.g. a Delta table item's postings written
                // meanwhile by the item's next holder) is not this worker's to report; any other error
                // (the state unreachable) ends the worker.
                if let held = try? await items.renewIndexItem(lease, ttl: ttl), !held {
                    logger.warning("lease lost: another worker holds the index item", metadata: ["item": "\(lease.item.batch)#\(lease.item.ordinal)"])
                    return (.leaseLost, IndexReport())
                }
                throw error
            }
        }
    }
}
