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

extension Lethe {
    /// Brings the subject index up to date: scans objects that are new or changed
    /// since the last run, drops entries of objects that are gone, and quarantines
    /// objects that cannot be read (reported, never fatal). A dataset that cannot be
    /// listed or read as a whole (e.g. a corrupt Delta log, an unsupported table feature)
    /// is recorded as a `DatasetIssue` and the others are indexed. Temporary files the
    /// journal knows are not data; any other file is.
    public func index(datasets names: [String]? = nil, workers requested: Int? = nil,
                      progress: (@Sendable (IndexProgress) -> Void)? = nil) async throws -> IndexReport {
        let started = Date()
        var report = IndexReport()
        var chosen = config.datasets
        if let names {
            for n in names where config.dataset(named: n) == nil {
                throw LetheError(.badUsage, "no dataset named `\(n)` in \(config.file)")
            }
            chosen = chosen.filter { names.contains($0.name) }
        }
        // Work list: (dataset, object) to scan.
        var work: [(DatasetSpec, ObjectInfo, FormatOptions)] = []
        var states: [(setting: String, value: String)] = []
        var clean: [String] = []
        var prog = IndexProgress()
        let temporaries = try await knownTemporaries()
        for d in chosen {
            guard d.subject != nil else { continue }  // aggregates without a subject column hold no one
            report.datasets.append(d.name)
            let listing: IndexListing
            do {
                _ = try format(for: d)
                listing = try await indexListing(d)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                try meta.checkIntact()
                let issue = DatasetIssue(dataset: d.name, error: error)
                try await meta.setSetting(Self.issueSetting(d.name), issue.settingValue)
                report.datasetIssues.append(issue)
                logger.warning("dataset not indexed", metadata: ["dataset": "\(d.name)", "issue": "\(issue.message)"])
                continue
            }
            guard let opts = listing.options else { continue }
            if let st = listing.state { states.append(st) }
            clean.append(d.name)
            let known = try await meta.objects(dataset: d.name)
            var knownByKey: [String: IndexedObject] = [:]
            for o in known { knownByKey[o.key] = o }
            var listed = listing.objects.filter { !temporaries.contains($0.key) }
            if listing.incremental {
                // Objects quarantined earlier are tried again, as a full listing would.
                for o in known where o.status == .quarantined && !listed.contains(where: { $0.key == o.key }) {
                    if let info = try await store.head(o.key) { listed.append(info) }
                }
            } else {
                let listedKeys = Set(listed.map(\.key))
                let gone = known.filter { !listedKeys.contains($0.key) }.map(\.key)
                try await meta.removeObjects(dataset: d.name, keys: gone)
                report.objectsRemoved += gone.count
            }
            for o in listed {
                report.objectsSeen += 1
                if let k = knownByKey[o.key], k.version == o.version, k.status == .indexed {
                    report.objectsUnchanged += 1
                    continue
                }
                work.append((d, o, opts))
                prog.bytesTotal += o.size
            }
        }
        prog.objectsTotal = work.count
        progress?(prog)

        // Scan with one task per core, each with its own key cache (a subject seen in many
        // objects is hashed once per worker); results are written in batches, one
        // transaction for many objects.
        let env = ProcessInfo.processInfo.environment["LETHE_WORKERS"].flatMap(Int.init)
        let workers = max(1, min(requested ?? env ?? ProcessInfo.processInfo.activeProcessorCount, 16))
        let pool = KeyerPool(hasher: secrets.hasher)
        var next = 0
        var batch: [(IndexedObject, [Int64: [Int64]])] = []
        var batchPostings = 0
        func flush() async throws {
            guard !batch.isEmpty else { return }
            try await meta.putIndexedObjects(batch)
            batch.removeAll(keepingCapacity: true)
            batchPostings = 0
        }
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
            while let r = try await group.next() {
                launch()
                prog.objectsDone += 1
                prog.bytesDone += r.object.size
                switch r.outcome {
                case .indexed(let records, let postings):
                    batch.append((IndexedObject(dataset: r.dataset, key: r.object.key, size: r.object.size,
                                                modifiedNanos: r.object.modifiedNanos, version: r.object.version,
                                                records: records, status: .indexed, indexedAt: now()), postings))
                    batchPostings += postings.count
                    if batch.count >= 256 || batchPostings >= 500_000 { try await flush() }
                    report.records += records
                    prog.records += records
                    report.bytesScanned += r.object.size
                    report.objectsScanned += 1
                case .quarantined(let issue, let code):
                    try await meta.quarantine(
                        IndexedObject(dataset: r.dataset, key: r.object.key, size: r.object.size,
                                      modifiedNanos: r.object.modifiedNanos, version: r.object.version,
                                      records: 0, status: .quarantined, issue: issue, issueCode: code, indexedAt: now()))
                    report.quarantined.append(.init(dataset: r.dataset, object: r.object.key, issue: issue))
                    logger.warning("quarantined object", metadata: ["object": "\(r.object.key)", "issue": "\(issue)"])
                }
                progress?(prog)
            }
        }
        try await flush()
        // Delta tables: the version indexed, so the next run reads only the commits after it.
        for st in states { try await meta.setSetting(st.setting, st.value) }
        // Datasets that indexed cleanly lose any issue recorded before.
        let at = String(now())
        for name in clean {
            try await meta.removeSetting(Self.issueSetting(name))
            try await meta.setSetting(Self.indexedSetting(name), at)
        }
        // Postings of large removed objects, in one pass once they weigh enough.
        report.purgedObjects = try await meta.purgeDeadPostings(force: false)
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    struct ScanResult: Sendable {
        enum Outcome: Sendable { case indexed(Int64, [Int64: [Int64]]), quarantined(String, code: String) }
        var dataset: String
        var object: ObjectInfo
        var outcome: Outcome
    }

    func scanOne(_ d: DatasetSpec, _ o: ObjectInfo, options opts: FormatOptions, keyer: SubjectKeyer? = nil) async throws -> ScanResult {
        let f = try format(for: d)
        let keyer = keyer ?? self.keyer(for: d)
        var postings: [Int64: [Int64]] = [:]
        do {
            let summary = try await f.scan(o, in: store, options: opts, keyer: keyer) { row, key in
                postings[key.prefix64, default: []].append(row)
            }
            return ScanResult(dataset: d.name, object: o, outcome: .indexed(summary.records, postings))
        } catch let e as LetheError {
            return ScanResult(dataset: d.name, object: o, outcome: .quarantined(DatasetIssue.oneLine(e.description), code: e.code.description))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return ScanResult(dataset: d.name, object: o, outcome: .quarantined(DatasetIssue.oneLine("\(o.key): \(error)"), code: LetheError.Code.failure.description))
        }
    }

    /// Re-indexes one object after Lethe rewrote it (or forgets it if it is gone).
    /// `options`: the dataset's scan options when the caller has them (see `scanOptions`).
    func reindex(_ d: DatasetSpec, key: String, options: FormatOptions? = nil) async throws {
        var opts = options
        if opts == nil { opts = try await scanOptions(for: d) }
        guard let opts else { return }
        guard let info = try await store.head(key) else {
            try await meta.removeObject(dataset: d.name, key: key)
            return
        }
        let r = try await scanOne(d, info, options: opts)
        switch r.outcome {
        case .indexed(let records, let postings):
            try await meta.putIndexedObject(
                IndexedObject(dataset: d.name, key: key, size: info.size, modifiedNanos: info.modifiedNanos,
                              version: info.version, records: records, status: .indexed, indexedAt: now()),
                postings: postings)
        case .quarantined(let issue, let code):
            try await meta.quarantine(
                IndexedObject(dataset: d.name, key: key, size: info.size, modifiedNanos: info.modifiedNanos,
                              version: info.version, records: 0, status: .quarantined, issue: issue, issueCode: code, indexedAt: now()))
        }
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
