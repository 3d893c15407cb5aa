import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import Logging

/// A run's own verification (called by `settle`): what the job wrote, so that object datasets the
/// index can vouch for are verified at index cost instead of by reading every object (`lethe verify
/// ID` keeps the full scan).
///
/// Per object dataset D whose index can be trusted (`indexCostApplies`), the objects listed after
/// the job's last write are classified against the index: an object this job rewrote, or new or
/// changed since it was indexed, is read now by a keyed scan (which is also its new index entry);
/// an object unchanged since it was indexed (same store version, indexed cleanly under the same
/// spec) is proven by its postings, and one whose postings name the subject (residue, or a 64-bit
/// prefix collision) is read again, never assumed clean. A quarantined object is unreadable: never
/// clean. Keys and hidden files are searched for the raw ids as in the full scan. Datasets the
/// index cannot vouch for (a Delta table, a dataset issue, a missing or different spec
/// fingerprint) are verified by the full scan in the same verdict (`proof: "index+full"`).
///
/// A rewritten object whose step journaled exact evidence (`RewriteEvidence`) gets its new index
/// entry derived from the old one (`derivablePlans`, the state store's `putDerivedObjects`) after a
/// clean read, instead of collected by a whole read; a Parquet one is read only in the row groups
/// its rewrite re-encoded, the copied ones proven by the old version's postings. Without evidence,
/// with residue, or when the store cannot derive, the object is read whole and the read is its entry.
///
/// What this does not see: an object rewritten in place that keeps its store version (local store:
/// size, mtime and inode); and Lethe's own state is purged of the raw ids but not searched byte by
/// byte. Both are the sweep's (`lethe sweep`).
struct IndexCostRun: Sendable {
    /// Per dataset, the object keys the job's steps rewrote (or tried to).
    var rewritten: [String: Set<String>]
    /// Datasets with a subject column the job changed: their index is brought up to date.
    var touched: Set<String>
    /// Per dataset and object key, what the step's rewrite journaled (`RewriteEvidence`): an object
    /// with none is read in full and indexed by that read.
    var evidence: [String: [String: RewriteEvidence]] = [:]
    /// Per Delta table, what its step journaled of each replacement file (`RewriteEvidence` by store
    /// versions: the removed file's as read, the replacement's): the replacement's index entry may
    /// follow from the removed file's.
    var deltaEvidence: [String: [RewriteEvidence]] = [:]

    init(rewritten: [String: Set<String>], touched: Set<String>, evidence: [String: [String: RewriteEvidence]] = [:]) {
        self.rewritten = rewritten
        self.touched = touched
        self.evidence = evidence
    }

    /// The touched datasets the verification will not index itself (full scan) are re-indexed
    /// first, as before issue 12: a dataset that cannot be indexed is logged, not fatal.
    /// Returns the coverage it read when it re-indexed nothing (it is still the index's: the scope
    /// takes it instead of reading it again); nil when it re-indexed a dataset.
    @discardableResult
    func reindexFullScanned(_ v: Verifier) async throws -> Coverage? {
        let coverage = try await v.lake.coverage()
        var names: [String] = []
        for name in touched.sorted() {
            guard let d = v.config.dataset(named: name) else { continue }
            if try await !v.indexCostApplies(d, coverage: coverage) { names.append(name) }
        }
        try await reindex(names, v)
        return names.isEmpty ? coverage : nil
    }

    /// The touched datasets no request was verified in are re-indexed after the verification.
    func reindexUnverified(_ v: Verifier, verified: Set<String>) async throws {
        try await reindex(touched.subtracting(verified).sorted(), v)
    }

    private func reindex(_ names: [String], _ v: Verifier) async throws {
        guard !names.isEmpty else { return }
        do {
            _ = try await v.lake.index(datasets: names)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            try v.state.checkIntact()
            v.lake.logger.warning("re-indexing after the job failed", metadata: ["datasets": "\(names)", "error": "\(error)"])
        }
    }
}

extension Verifier {
    /// Why a run's verification says nothing of Lethe's state folder.
    static let stateLeftToTheSweep =
        "a run purges the raw id from Lethe's state but does not search the state folder: `lethe sweep` and `lethe verify ID` do"

    /// True when dataset `d` can be verified at index cost: indexed cleanly, with no dataset issue, under the spec it has now (`IndexSpec`).
    func indexCostApplies(_ d: DatasetSpec, coverage: Coverage) async throws -> Bool {
        guard d.subject != nil else { return false }
        guard coverage.issues[d.name] == nil, !coverage.unindexed.contains(d.name) else { return false }
        guard try await state.cursors.setting(Lethe.indexedSetting(d.name)) != nil else { return false }
        guard let fp = IndexSpec.fingerprint(d, options: lake.options(for: d)) else { return false }
        return try await state.cursors.setting(IndexSpec.setting(d.name)) == fp
    }

    /// One object read by a keyed scan: its records, its postings (its new index entry) and the
    /// batch's keys found in it; or why it could not be read.
    struct KeyedRead: Sendable {
        var object: ObjectInfo
        var records: Int64 = 0
        var postings: [Int64: [Int64]] = [:]
        var hits: [SubjectKey: Int64] = [:]
        var issue: (text: String, code: String)?
        /// The raw ids whose bytes the object holds (nil: not searched).
        var needleHits: Set<[UInt8]>?
        /// Records read when only some were (`ReadPlan.rows`); nil when every record was.
        var rowsRead: Int64?
        /// Bytes read when fewer than the object's (nil: its size).
        var bytesRead: Int64?
        /// The object does not hold the records its derived entry says (`ReadPlan.records`).
        var recordsMismatch = false
        /// The batch's keys whose value the object holds where no record does (`RowsMatch.unreferenced`).
        var unreferenced: [SubjectKey] = []
        /// Nothing of the batch's found: no record, no unreferenced value.
        var clean: Bool { hits.isEmpty && unreferenced.isEmpty }
    }

    /// How a rewritten object whose index entry may be derived (`derivablePlans`) is read: only
    /// `rows` when given (the rest proven by the index for the version erased from), else whole.
    struct ReadPlan: Sendable, Equatable {
        /// The records the new version holds by the derived entry.
        var records: Int64
        /// The rows to read (nil: every record, its postings collected as for any read).
        var rows: [Range<Int64>]?
        var matcher: SubjectMatcher
    }

    /// A rewritten object whose index entry may be derived, with how it is read first.
    struct DerivablePlan: Sendable {
        var plan: ReadPlan
        /// The new version's index row (records from the evidence).
        var entry: IndexedObject
        var from: String
        var dropped: [Int64]
    }

    /// The rewritten objects of `objects` whose index entry may follow from the entry of the version
    /// erased from (`RewriteEvidence`: exact, still listed at the version written, the index still
    /// at the version erased from with as many records as the rewrite read), and how each is read
    /// first: only its rewritten rows when the index's postings of the batch's keys (`batchRows`,
    /// old version) were dropped or lie in them; every record otherwise. The caller asks the state
    /// store to derive (`putDerivedObjects`) only after a clean read; a store that cannot derive
    /// (nil) leaves the object to a whole read, which is its entry. Nothing in a dry run.
    func derivablePlans(
        _ d: DatasetSpec, _ objects: [ObjectInfo], known: [String: IndexedObject], evidence: [String: RewriteEvidence],
        batchRows: [String: [Int64]], matcher: SubjectMatcher, dryRun: Bool
    ) -> [String: DerivablePlan] {
        guard !dryRun else { return [:] }
        var out: [String: DerivablePlan] = [:]
        for o in objects {
            guard let e = evidence[o.key], e.exact, !e.removed, e.written == o.version, let k = known[o.key], k.status == .indexed,
                k.version == e.from, e.dropped.allSatisfy({ $0 >= 0 && $0 < k.records }),
                PostingDerivation.records(old: k.records, dropped: e.dropped) == e.records
            else { continue }
            let entry = IndexedObject(
                dataset: d.name, key: o.key, size: o.size, modifiedNanos: o.modifiedNanos, version: o.version,
                records: e.records, status: .indexed, indexedAt: now())
            out[o.key] = DerivablePlan(
                plan: ReadPlan(records: e.records, rows: e.rowsToRead(batchRows: batchRows[o.key] ?? []), matcher: matcher),
                entry: entry, from: e.from, dropped: e.dropped)
        }
        return out
    }

    /// What a re-read of part of an object looks for: the raw ids by value (no keyed hash per
    /// record) when every request of the batch still has its raw id, the dataset keys without
    /// normalisation, and each raw id keys to its request's key (so a value match is the keyed
    /// predicate); otherwise the keys.
    func matcher(_ d: DatasetSpec, _ batch: Batch, keys: Set<SubjectKey>) -> SubjectMatcher {
        guard d.normalization == .none else { return .keys(keys) }
        var values = Set<[UInt8]>()
        for r in batch.requests {
            guard let raw = batch.raws[r.id], secrets.hasher.key(forBytes: raw.bytes) == lake.subjectKey(of: r, in: d, batch.nfc) else {
                return .keys(keys)
            }
            values.insert(raw.bytes)
        }
        return .values(values)
    }

    /// Verifies dataset `d` at index cost for the batch (see `IndexCostRun`).
    func verifyAtIndexCost(
        _ d: DatasetSpec, _ batch: Batch, scope: Scope, rewritten: Set<String>, evidence: [String: RewriteEvidence] = [:],
        temporaries: Set<String>, dryRun: Bool, into findings: inout Findings
    ) async throws {
        let f: any RecordFormat
        let listing: DatasetObjects
        var t = ContinuousClock.now
        switch try await lake.formatAndObjects(d) {
        case .success(let r): (f, listing) = r
        case .failure(let error):
            findings.problems[d.name] = "dataset `\(d.name)` could not be listed: \(DatasetIssue.oneLine(error: error))"
            return
        }
        guard let opts = listing.options else { return }
        let objects = listing.objects.filter { !temporaries.contains($0.key) }
        if objects.isEmpty { findings.emptiedListings.insert(d.name) }
        Trace.mark("verify \(d.name): listing", since: t)
        t = ContinuousClock.now
        let known = Dictionary(try await state.objects(dataset: d.name).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        Trace.mark("verify \(d.name): index objects", since: t)
        t = ContinuousClock.now
        if !dryRun {
            // Objects gone from the lake leave the index (their keys may name the subject).
            let listed = Set(objects.map(\.key))
            try await state.removeObjects(dataset: d.name, keys: known.keys.filter { !listed.contains($0) }.sorted())
        }
        // Classify each listed object against the index.
        var (unchanged, toRead, rereadKeys) = classify(d, objects, known: known, mustRead: { rewritten.contains($0.key) }, into: &findings)
        // Unchanged objects whose postings name a subject of the batch are read again: residue, or a
        // 64-bit prefix collision the read tells apart. Never assumed clean. The postings of the
        // rewritten objects (still those of the version erased from) are kept for `plans`.
        let keys = Set(batch.requests.map { lake.subjectKey(of: $0, in: d, batch.nfc) })
        var batchRows: [String: [Int64]] = [:]
        let located = try await postings(in: d, keys: keys, scope: scope)  // the scope's read of the batch's postings
        for k in keys.sorted(by: { $0.hex < $1.hex }) {
            for p in located[k.prefix64] ?? [] {
                if rewritten.contains(p.object.key) { batchRows[p.object.key, default: []] += p.rows }
                guard let o = unchanged.removeValue(forKey: p.object.key) else { continue }
                toRead.append(o)
                rereadKeys.insert(o.key)
            }
        }
        // The format's own evidence about the unchanged objects (Parquet: bloom filters, full
        // dictionaries, statistics): a second proof beside the index's, and an object whose metadata
        // shows a subject of the batch (or that changed since the listing) is read again.
        Trace.mark("verify \(d.name): classify, postings", since: t)
        t = ContinuousClock.now
        let evidenceCheck = try await FormatEvidenceCheck.run(
            d, f, Array(unchanged.values), options: opts, rawIDs: Array(Set(batch.raws.values.map(\.bytes))), store: store)
        if evidenceCheck.asked > 0 {
            findings.evidenceAsked[d.name, default: 0] += evidenceCheck.asked
            findings.evidenceRuledOut[d.name, default: 0] += evidenceCheck.ruledOut
            findings.evidenceKinds[d.name, default: []].formUnion(evidenceCheck.kinds)
        }
        for key in evidenceCheck.reread {
            guard let o = unchanged.removeValue(forKey: key) else { continue }
            toRead.append(o)
            rereadKeys.insert(key)
        }
        let plans = derivablePlans(
            d, toRead.filter { rewritten.contains($0.key) }, known: known, evidence: evidence, batchRows: batchRows,
            matcher: matcher(d, batch, keys: keys), dryRun: dryRun)
        let search = Self.byteSearch(f, batch)
        Trace.mark("verify \(d.name): format evidence, plans", since: t)
        t = ContinuousClock.now
        var reads = try await keyedReads(
            d, f, toRead, options: opts, keys: keys, search: search.map { ($0.needles, rereadKeys) },
            plans: plans.mapValues(\.plan))
        // Derived only after a clean read: the records the entry says, none of the batch's. A crash
        // before this leaves the index at the version erased from (the next run reads the object whole).
        Trace.mark("verify \(d.name): keyed reads of \(toRead.count)", since: t)
        t = ContinuousClock.now
        var derive: [(object: IndexedObject, from: String, dropped: [Int64])] = []
        for r in reads where r.issue == nil && !r.recordsMismatch && r.clean {
            if let p = plans[r.object.key] { derive.append((p.entry, p.from, p.dropped)) }
        }
        var derived = Set<String>()
        if !derive.isEmpty {
            for (x, stored) in zip(derive, try await state.putDerivedObjects(derive)) where stored != nil { derived.insert(x.object.key) }
        }
        // Not derived and read only in part: read whole now, the read is the entry (a whole read
        // collected its postings already).
        let partial = reads.indices.filter { reads[$0].rowsRead != nil && !derived.contains(reads[$0].object.key) }
        if !partial.isEmpty {
            let again = try await keyedReads(
                d, f, partial.map { reads[$0].object }, options: opts, keys: keys, search: search.map { ($0.needles, rereadKeys) })
            for (i, r) in zip(partial, again) {
                findings.bytesRead[d.name, default: 0] += reads[i].bytesRead ?? 0
                findings.records[d.name, default: 0] += reads[i].rowsRead ?? 0
                reads[i] = r
            }
        }
        Trace.mark("verify \(d.name): derived entries", since: t)
        t = ContinuousClock.now
        var entries = EntryBatch(dataset: d.name, dryRun: dryRun)
        for r in reads {
            let o = r.object
            findings.objectsScanned[d.name, default: 0] += 1
            findings.bytesRead[d.name, default: 0] += r.bytesRead ?? o.size
            if rereadKeys.contains(o.key) {
                findings.reread[d.name, default: 0] += 1
                if r.rowsRead != nil { findings.rereadInPart[d.name, default: 0] += 1 }
            } else {
                findings.indexedNow[d.name, default: 0] += 1
            }
            if let issue = r.issue {
                try await recordUnreadable(d, o, issue, quarantine: true, dryRun: dryRun, into: &findings)
                continue
            }
            findings.records[d.name, default: 0] += r.rowsRead ?? r.records
            for (k, n) in r.hits { findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n, issue: nil)) }
            for k in r.unreferenced { findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: Self.unreferencedIssue)) }
            // A derived entry is the object's index entry already.
            if derived.contains(o.key) { continue }
            try await entries.add(o, records: r.records, postings: r.postings, at: now(), state)
        }
        try await entries.flush(state)
        Trace.mark("verify \(d.name): entries", since: t)
        t = ContinuousClock.now
        if let search { mentions(d, reads, search.idsByRaw, batch, into: &findings) }
        findings.listed[d.name, default: 0] += objects.count
        findings.unchanged[d.name, default: 0] += unchanged.count
        // A key that names the subject (e.g. a `user_id=…/` folder) is residue too.
        keysNamingSubjects(d, objects, batch, into: &findings)
        try await searchHidden(d, listing.hidden, batch, temporaries: temporaries, into: &findings)
        Trace.mark("verify \(d.name): names, hidden objects", since: t)
    }

    /// The byte search of the objects read again, for text formats (JSON Lines and CSV, decoded when
    /// compressed): the raw ids of at least `Residue.minimumNeedle` bytes, as whole tokens. Nil for
    /// Parquet, whose pages are compressed and typed: there the keyed read of the subject column is
    /// the proof (the sweep searches the decoded strings).
    static func byteSearch(_ f: any RecordFormat, _ batch: Batch) -> (needles: (set: NeedleSet, longest: Int), idsByRaw: [[UInt8]: [String]])? {
        guard f.name == "jsonl" || f.name == "csv" else { return nil }
        var idsByRaw: [[UInt8]: [String]] = [:]
        for (id, raw) in batch.raws where raw.bytes.count >= Residue.minimumNeedle { idsByRaw[raw.bytes, default: []].append(id) }
        guard !idsByRaw.isEmpty else { return nil }
        return ((NeedleSet(Array(idsByRaw.keys), wordBounded: true), idsByRaw.keys.map(\.count).max() ?? 0), idsByRaw)
    }

    /// A raw id's bytes in an object read again where the keyed read found none of that subject's
    /// records is a mention, reported with the verification; where it found records they are
    /// residue already.
    func mentions(_ d: DatasetSpec, _ reads: [KeyedRead], _ idsByRaw: [[UInt8]: [String]], _ batch: Batch, into findings: inout Findings) {
        for r in reads where r.issue == nil {
            for raw in r.needleHits ?? [] {
                for id in idsByRaw[raw] ?? [] {
                    guard let req = batch.byID[id], r.hits[lake.subjectKey(of: req, in: d, batch.nfc)] == nil else { continue }
                    findings.mentions[id, default: []].append(
                        .init(dataset: d.name, object: r.object.key, rows: 0, issue: "the raw id's bytes outside the subject's records"))
                }
            }
        }
    }

    /// Keyed scans of `objects` on a bounded task group (one task per core, 16 at most, or
    /// `workers`), each with its own key cache; results in the order of `objects`. `postings`:
    /// collect each object's postings too (its index entry).
    func keyedReads(
        _ d: DatasetSpec, _ f: any RecordFormat, _ objects: [ObjectInfo], options: FormatOptions, keys: Set<SubjectKey>,
        postings: Bool = true, search: (needles: (set: NeedleSet, longest: Int), keys: Set<String>)? = nil,
        plans: [String: ReadPlan] = [:], workers: Int? = nil
    ) async throws -> [KeyedRead] {
        guard !objects.isEmpty else { return [] }
        let pool = KeyerPool(hasher: secrets.hasher)
        let workers = max(1, workers ?? min(ProcessInfo.processInfo.activeProcessorCount, 16))
        let store = self.store
        var out = [KeyedRead?](repeating: nil, count: objects.count)
        try await withThrowingTaskGroup(of: (Int, KeyedRead).self) { group in
            var next = 0
            func launch() {
                guard next < objects.count else { return }
                let i = next, o = objects[i]
                next += 1
                group.addTask {
                    let keyer = pool.take(d.normalization)
                    defer { pool.give(keyer) }
                    let needles = search.flatMap { $0.keys.contains(o.key) ? $0.needles : nil }
                    guard let plan = plans[o.key] else {
                        return (
                            i,
                            try await Self.keyedRead(
                                o, f, store: store, options: options, keyer: keyer, keys: keys, postings: postings, needles: needles)
                        )
                    }
                    return (i, try await Self.plannedRead(o, f, plan, store: store, options: options, keyer: keyer, keys: keys, needles: needles))
                }
            }
            for _ in 0..<workers { launch() }
            while let (i, r) = try await group.next() {
                out[i] = r
                launch()
            }
        }
        return out.map { $0! }
    }

    /// Objects up to this size are read once into memory when they are also byte-searched.
    static let searchInMemory: Int64 = 64 << 20

    /// One keyed scan: postings of every record, and the records under `keys`. With `needles`, the
    /// object's (decoded) bytes are searched for them too: read once, at the listed version, when
    /// small enough, else read a second time.
    static func keyedRead(
        _ o: ObjectInfo, _ f: any RecordFormat, store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        keys: Set<SubjectKey>, postings collect: Bool = true, needles: (set: NeedleSet, longest: Int)? = nil
    ) async throws -> KeyedRead {
        var r = KeyedRead(object: o)
        var postings: [Int64: [Int64]] = [:]
        var hits: [SubjectKey: Int64] = [:]
        do {
            var source: (store: any ObjectStore, object: ObjectInfo) = (store, o)
            if let needles {
                if o.size <= searchInMemory {
                    let mini = InMemoryObjectStore()
                    mini.set(o.key, try await store.read(o.key, range: nil, ifVersion: o.version))
                    if let info = try await mini.head(o.key) { source = (mini, info) }
                }
                r.needleHits = try await EncodedObject.matches(of: needles.set, overlap: needles.longest, in: o.key, of: source.store)
            }
            let s = try await f.scan(source.object, in: source.store, options: options, keyer: keyer) { row, key in
                if collect { postings[key.prefix64, default: []].append(row) }
                if keys.contains(key) { hits[key, default: 0] += 1 }
            }
            // The read is the object's index entry: a subject held by an unreferenced entry is named too.
            if collect { for k in s.unreferenced { postings[k.prefix64, default: []].append(RecordOrdinal.unreferencedEntry) } }
            r.records = s.records
            r.postings = postings
            r.hits = hits
            r.unreferenced = Set(s.unreferenced.filter { keys.contains($0) }).sorted { $0.hex < $1.hex }
        } catch is CancellationError {
            throw CancellationError()
        } catch let e as LetheError {
            r.issue = (DatasetIssue.oneLine(e.description), e.code.description)
        } catch {
            r.issue = (DatasetIssue.oneLine("\(o.key): \(error)"), LetheError.Code.failure.description)
        }
        return r
    }

    /// The read of an object whose index entry may be derived (`ReadPlan`): its rows in `plan.rows`
    /// matched by `plan.matcher` (a format reads only what holds them), or every record keyed (and
    /// byte-searched with `needles`), its postings collected (the entry if the store cannot derive).
    /// The object's record count must be the derived entry's, else `recordsMismatch`.
    static func plannedRead(
        _ o: ObjectInfo, _ f: any RecordFormat, _ plan: ReadPlan, store: any ObjectStore, options: FormatOptions,
        keyer: SubjectKeyer, keys: Set<SubjectKey>, needles: (set: NeedleSet, longest: Int)?
    ) async throws -> KeyedRead {
        guard let rows = plan.rows else {
            var r = try await keyedRead(o, f, store: store, options: options, keyer: keyer, keys: keys, postings: true, needles: needles)
            r.recordsMismatch = r.issue == nil && r.records != plan.records
            return r
        }
        var r = KeyedRead(object: o)
        do {
            let m = try await f.match(o, in: store, options: options, keyer: keyer, matcher: plan.matcher, rows: rows)
            r.records = m.records
            r.rowsRead = m.rowsRead
            r.bytesRead = m.bytesRead
            for x in m.matches where keys.contains(x.key) { r.hits[x.key, default: 0] += 1 }
            r.unreferenced = m.unreferenced.filter { keys.contains($0) }
            r.recordsMismatch = m.records != plan.records
        } catch is CancellationError {
            throw CancellationError()
        } catch let e as LetheError {
            r.issue = (DatasetIssue.oneLine(e.description), e.code.description)
        } catch {
            r.issue = (DatasetIssue.oneLine("\(o.key): \(error)"), LetheError.Code.failure.description)
        }
        return r
    }

    /// Why an object holding a subject's value in no record is residue (`KeyedRead.unreferenced`).
    static let unreferencedIssue =
        "the subject's value is in a dictionary entry of the subject column that no row references (the bytes are still in the file)"

    /// Lethe's state after a run's verification: the raw ids purged from what may be purged
    /// (object names, texts on requests, settings); no write-ahead-log checkpoint and no byte search
    /// of the state folder (the sweep's).
    func purgeState(_ batch: Batch, dryRun: Bool) async throws {
        guard !dryRun else { return }
        // Every raw id of the batch in one transaction, one pass over each table.
        let raws = Array(Set(batch.raws.values.map(\.bytes)).filter { !$0.isEmpty })
        if !raws.isEmpty {
            _ = try await state.transaction("cannot purge the erased ids from the state") { tx in try tx.purge(rawIDs: raws) }
        }
        lake.refCache.clear()
    }
}
