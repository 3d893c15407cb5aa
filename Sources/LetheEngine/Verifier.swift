import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// Residue scan for a batch of requests, independent of the index (see `Lethe.verify`): every
/// object of every dataset that may hold their subjects is read once for all their keys, object
/// keys and hidden files are searched for the raw ids, then Lethe's own state and the Delta logs.
struct Verifier: Sendable {
    let config: LakeConfig
    let store: any ObjectStore
    let state: any StateStore
    let secrets: StateSecrets
    let now: @Sendable () -> Int64
    /// The engine the verifier reads the lake (drivers, formats, keys) and moves requests through.
    let lake: Lethe

    init(_ lake: Lethe) {
        config = lake.config; store = lake.store; state = lake.meta; secrets = lake.secrets; now = lake.now; self.lake = lake
    }

    /// Verifies requests by id (or every erased/verified request with `all`).
    func verify(ids: [String], all: Bool, dryRun: Bool) async throws -> [Verification] {
        var rs: [ErasureRequest] = []
        if all {
            rs = try await Lethe.verifiableRequests(in: state)
        } else {
            let found = Dictionary(try await state.requests(ids: ids).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for id in ids {
                guard let r = found[id] else { throw LetheError(.notFound, "no request \(id)") }
                rs.append(r)
            }
            for r in rs where !(r.status == .erased || r.status == .verified || (r.status == .failed && r.verification != nil)) {
                throw LetheError(.conflict, "request \(r.id) is \(r.status.rawValue): only erased requests can be verified (run `lethe run` first)")
            }
        }
        return try await verify(rs, dryRun: dryRun)
    }

    /// Which datasets each request is verified in, and every dataset any of them needs read.
    struct Scope {
        var coverage: Coverage
        /// Per request: the datasets that may hold its subject, in config order.
        var datasetsOf: [String: [String]] = [:]
        /// Per request: datasets where its plan named objects to erase.
        var erasedIn: [String: Set<String>] = [:]
        /// Per request: the subject keys whose data key its plan's `shred` listed (held or destroyed).
        var shredListed: [String: Set<SubjectKey>] = [:]
        var wanted: Set<String> = []
        /// The index's postings of every subject key of the batch (`Lethe.postings(_:nfc:)`), read by `scope`.
        var postings: [SubjectKey: [Posting]] = [:]
    }

    /// What the batch's scans found, by dataset (and by subject key for residue).
    struct Findings {
        var found: [SubjectKey: [Verification.Found]] = [:]
        var unreadable: [String: [Verification.Found]] = [:]
        var problems: [String: String] = [:]
        var objectsScanned: [String: Int] = [:]
        var logsExamined: [String: Int] = [:]
        var emptiedListings: Set<String> = []
        var records: [String: Int64] = [:]
        /// Noncurrent versions read, by dataset (a bucket that keeps versions).
        var versionsExamined: [String: Int] = [:]
        /// The Delta logs: dataset → raw id → files naming it.
        var logScan: [String: [[UInt8]: [String]]] = [:]
        /// Lethe's own state: files read, and per raw id where it was found (nil: not searched).
        var stateScan: (files: Int, hits: [[UInt8]: [String]])?
        /// Subjects of the batch whose crypto-shredding data key is still in the key store.
        var heldKeys: Set<SubjectKey> = []
        /// How each dataset was verified: `index` or `full` (see `Verification.proof`).
        var proof: [String: String] = [:]
        /// Datasets verified at index cost: objects listed, unchanged (proven by the index), read
        /// again, indexed now, and the bytes read.
        var listed: [String: Int] = [:]
        var unchanged: [String: Int] = [:]
        var reread: [String: Int] = [:]
        /// Of those read again, objects read only in their rewritten rows (`RewriteEvidence`).
        var rereadInPart: [String: Int] = [:]
        /// Unchanged objects asked for the format's own evidence, those it ruled out, and how.
        var evidenceAsked: [String: Int] = [:]
        var evidenceRuledOut: [String: Int] = [:]
        var evidenceKinds: [String: Set<String>] = [:]
        var indexedNow: [String: Int] = [:]
        var bytesRead: [String: Int64] = [:]
        /// Per request id: rewritten objects holding its raw id's bytes outside its records.
        var mentions: [String: [Verification.Found]] = [:]
        /// A run's own verification (`IndexCostRun`): Lethe's state is purged, not searched.
        var indexCostRun = false
    }

    /// The requests of one batch with what they are checked for: raw ids (unsealed in memory only),
    /// NFC keys, and each by id.
    struct Batch {
        var requests: [ErasureRequest]
        var raws: [String: SubjectID]
        var nfc: [String: SubjectKey]
        var byID: [String: ErasureRequest]
    }

    /// A request is clean only when something was examined, every object was read, no dataset is
    /// unreadable or unsupported, and nothing was found. Results are stored on the requests and in
    /// the audit log (not with `dryRun`).
    /// With `indexCost` (a run's own verification, see `IndexCostRun`), object datasets the index can
    /// vouch for are verified at index cost (`verifyAtIndexCost`), the others by the full scan.
    func verify(_ requests: [ErasureRequest], dryRun: Bool, indexCost: IndexCostRun? = nil) async throws -> [Verification] {
        guard !requests.isEmpty else { return [] }
        if !dryRun { Failpoint.verifying() }
        // The coverage the re-index pass read, when it changed nothing, is the scope's too (not read twice).
        var coverage: Coverage?
        if let indexCost { coverage = try await Trace.span("verify: reindex full-scanned") { try await indexCost.reindexFullScanned(self) } }
        let scope = try await Trace.span("verify: scope of \(requests.count) requests") { try await self.scope(requests, coverage: coverage) }
        let batch = try batch(of: requests)
        var findings = Findings()
        findings.indexCostRun = indexCost != nil
        let temporaries = try await lake.knownTemporaries()
        for d in config.datasets where scope.wanted.contains(d.name) {
            if let indexCost, try await indexCostApplies(d, coverage: scope.coverage) {
                findings.proof[d.name] = "index"
                if lake.driver(for: d).hasTransactionLog {  // a Delta table: Verification/DeltaIndexCost.swift
                    let t0 = ContinuousClock.now
                    try await verifyDeltaAtIndexCost(
                        d, batch, scope: scope, evidence: indexCost.deltaEvidence[d.name] ?? [], temporaries: temporaries, dryRun: dryRun,
                        into: &findings)
                    Trace.mark("verify: Delta table at index cost", since: t0)
                    continue
                }
                try await verifyAtIndexCost(
                    d, batch, scope: scope, rewritten: indexCost.rewritten[d.name] ?? [], evidence: indexCost.evidence[d.name] ?? [:],
                    temporaries: temporaries,
                    dryRun: dryRun, into: &findings)
            } else {
                findings.proof[d.name] = "full"
                try await scanDataset(d, batch, scope: scope, temporaries: temporaries, dryRun: dryRun, into: &findings)
            }
        }
        if let indexCost {
            try await Trace.span("verify: reindex unverified") { try await indexCost.reindexUnverified(self, verified: scope.wanted) }
            try await Trace.span("verify: purge state") { try await purgeState(batch, dryRun: dryRun) }
        } else {
            try await scanState(batch, dryRun: dryRun, into: &findings)
        }
        let t1 = ContinuousClock.now
        try await scanLogs(batch, scope: scope, into: &findings)
        // Crypto-shredding: the subject's data key must be gone from the key store (one read for the batch).
        findings.heldKeys = Set(try await lake.heldDataKeys(requests.map(\.subjectKey) + Array(batch.nfc.values)).keys)
        try await scanNoncurrentVersions(batch, scope: scope, rewritten: indexCost?.rewritten, into: &findings)
        Trace.mark("verify: logs, noncurrent versions", since: t1)
        let t2 = ContinuousClock.now
        var out: [Verification] = []
        var changes: [Lethe.RequestChange] = []
        // The requests as stored now, in one read (a verdict applies to the current status).
        let current = dryRun ? [:] : Dictionary(try await state.requests(ids: requests.map(\.id)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for r in requests {
            let v = verification(r, batch, scope: scope, findings)
            out.append(v)
            if !dryRun {
                guard let now = current[r.id] else { throw LetheError(.notFound, "no request \(r.id)") }
                changes.append(try verdict(v, of: now))
            }
        }
        // The verdicts land together: a few transactions for the batch, not one per request.
        try await lake.apply(changes, actor: "lethe")
        Trace.mark("verify: \(requests.count) verdicts recorded", since: t2)
        return out
    }

    /// The datasets to read for each request: its plan's, every dataset the index cannot vouch for,
    /// wherever the index finds the subject now, and every dataset with a subject column when none of these.
    /// `coverage`: the index's coverage when the caller has just read it (else it is read here).
    func scope(_ requests: [ErasureRequest], coverage known: Coverage? = nil) async throws -> Scope {
        let coverage: Coverage
        if let known { coverage = known } else { coverage = try await lake.coverage() }
        var scope = Scope(coverage: coverage)
        let subjectDatasets = config.datasets.filter { $0.subject != nil }.map(\.name)
        let nfcOf = lake.nfcKeys(requests)
        // The index's postings of every subject of the batch, in one read per key kind.
        let nfcByKey = Dictionary(requests.compactMap { r in nfcOf[r.id].map { (r.subjectKey, $0) } }, uniquingKeysWith: { a, _ in a })
        let postings = try await lake.postings(Array(Set(requests.map(\.subjectKey))), nfc: nfcByKey)
        scope.postings = postings
        for r in requests {
            let plan = lake.planMemo.plan(of: r) ?? r.plan.flatMap(ErasurePlan.decode)
            scope.erasedIn[r.id] = Set((plan?.datasets ?? []).filter { !$0.objects.isEmpty }.map(\.name))
            scope.shredListed[r.id] = Set((plan?.shred ?? []).compactMap { SubjectKey(hex: $0.subjectKey) })
            var names = Set((plan?.datasets ?? []).map(\.name).filter { config.dataset(named: $0)?.subject != nil })
                .union(scope.coverage.incomplete)
            // And wherever the index finds the subject now: it may have come back since the plan was made.
            for p in postings[r.subjectKey] ?? [] where config.dataset(named: p.object.dataset)?.subject != nil {
                names.insert(p.object.dataset)
            }
            // The index found the subject nowhere: only reading every dataset proves it absent.
            if names.isEmpty { names = Set(subjectDatasets) }
            scope.datasetsOf[r.id] = subjectDatasets.filter(names.contains)
            scope.wanted.formUnion(names)
        }
        return scope
    }

    /// The postings of the batch's `keys` in dataset `d`, by key prefix, as `locate(prefixes:dataset:)`
    /// returns them: taken from the scope's read of the batch's postings where they are the same (a
    /// dataset without `normalize: nfc`, whose keys are the requests' own), instead of a second read of
    /// the index. Between the two reads only the verification's own writes touch `d`'s entries: objects
    /// gone from `d`'s listing leave the index, and a caller uses postings only of listed objects and of
    /// removed ones whose entry it keeps (a replacement's), whose postings are unchanged.
    func postings(in d: DatasetSpec, keys: Set<SubjectKey>, scope: Scope) async throws -> [Int64: [Posting]] {
        guard d.normalization != .nfc, keys.allSatisfy({ scope.postings[$0] != nil }) else {
            return try await state.index.locate(prefixes: Array(Set(keys.map(\.prefix64))), dataset: d.name)
        }
        var out: [Int64: [Posting]] = [:]
        for k in keys where out[k.prefix64] == nil {
            let found = scope.postings[k, default: []].filter { $0.object.dataset == d.name }
            if !found.isEmpty { out[k.prefix64] = found }
        }
        return out
    }

    /// Lists dataset `d` through its driver and scans every object in it for the batch's keys, and
    /// its hidden files for the raw ids. Objects gone from the lake leave the index (not with `dryRun`).
    func scanDataset(
        _ d: DatasetSpec, _ batch: Batch, scope: Scope, temporaries: Set<String>, dryRun: Bool,
        into findings: inout Findings
    ) async throws {
        if let issue = scope.coverage.issues[d.name] {
            findings.problems[d.name] = issue.description
            return
        }
        let f: any RecordFormat
        let listing: DatasetObjects
        switch try await lake.formatAndObjects(d) {
        case .success(let r): (f, listing) = r
        case .failure(let error):
            findings.problems[d.name] = "dataset `\(d.name)` could not be read: \(DatasetIssue.oneLine(error: error))"
            return
        }
        guard let opts = listing.options else { return }
        if lake.driver(for: d).hasTransactionLog {
            findings.logsExamined[d.name] = 1
        }  // its snapshot was replayed: the log was read
        else if listing.objects.isEmpty {
            findings.emptiedListings.insert(d.name)
        }  // listed, and no object is left
        if !dryRun {
            // Objects gone from the lake leave the index (their keys may name the subject).
            let listed = Set(listing.objects.map(\.key))
            let gone = try await state.objects(dataset: d.name).map(\.key).filter { !listed.contains($0) }
            try await state.removeObjects(dataset: d.name, keys: gone)
        }
        try await scanObjects(d, f, listing, options: opts, batch, temporaries: temporaries, into: &findings)
        try await searchHidden(d, listing.hidden, batch, temporaries: temporaries, into: &findings)
    }

    /// Every object of the listing read as records (on a bounded task group, see `keyedReads`): rows
    /// under the batch's keys, and object keys naming a raw id.
    private func scanObjects(
        _ d: DatasetSpec, _ f: any RecordFormat, _ listing: DatasetObjects, options opts: FormatOptions,
        _ batch: Batch, temporaries: Set<String>, into findings: inout Findings
    ) async throws {
        let keys = Set(batch.requests.map { lake.subjectKey(of: $0, in: d, batch.nfc) })
        let objects = listing.objects.filter { !temporaries.contains($0.key) }
        for r in try await keyedReads(d, f, objects, options: opts, keys: keys, postings: false) {
            let o = r.object
            if let issue = r.issue {
                findings.unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: issue.text))
            } else {
                findings.records[d.name, default: 0] += r.records
            }
            findings.objectsScanned[d.name, default: 0] += 1
            for (k, n) in r.hits.sorted(by: { $0.key.hex < $1.key.hex }) {
                // A file under a Delta table that no version names (an interrupted write left it) still holds the rows.
                let why =
                    listing.unnamed.contains(o.key)
                    ? "\(n) rows in a file the Delta log does not name (an interrupted write left it; `lethe run` removes Lethe's own, `lethe vacuum --retain` others)"
                    : nil
                findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n, issue: why))
            }
            for k in r.unreferenced { findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: Self.unreferencedIssue)) }
            // A key that names the subject (e.g. a `user_id=…/` folder) is residue too.
            for (id, raw) in batch.raws where Residue.key(o.key, names: raw, fields: d.subject?.fields) {
                findings.found[lake.subjectKey(of: batch.byID[id]!, in: d, batch.nfc), default: []]
                    .append(.init(dataset: d.name, object: o.key, rows: 0, issue: "the object's key names the subject"))
            }
        }
    }

    /// Hidden files (`_SUCCESS`, `.crc` sidecars, `_metadata`): not records, but their bytes and keys may hold an id.
    func searchHidden(
        _ d: DatasetSpec, _ hidden: [ObjectInfo], _ batch: Batch, temporaries: Set<String>,
        into findings: inout Findings
    ) async throws {
        let raws = batch.raws
        let needles = Array(Set(raws.values.map(\.bytes).filter { $0.count >= Residue.minimumNeedle }))
        for o in hidden where !temporaries.contains(o.key) {
            var named = Set(raws.filter { Residue.key(o.key, names: $0.value, fields: d.subject?.fields) }.map(\.key))
            if !needles.isEmpty {
                do {
                    let held = Residue.search(try await store.read(o.key), for: needles)
                    for (id, raw) in raws where held.contains(raw.bytes) { named.insert(id) }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    let why = DatasetIssue.oneLine(error: error)
                    findings.unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: "hidden file not searched: \(why)"))
                }
            }
            for id in named.sorted() {
                findings.found[lake.subjectKey(of: batch.byID[id]!, in: d, batch.nfc), default: []]
                    .append(.init(dataset: d.name, object: o.key, rows: 0, issue: "a hidden file (not read as records) holds the subject's id"))
            }
        }
    }

    /// Lethe's own state: what may be purged of the raw ids goes first (object names, texts on
    /// requests, settings), and the write-ahead log is emptied (not with `dryRun`); then the state
    /// is searched for them, where the store can be searched from here.
    private func scanState(_ batch: Batch, dryRun: Bool, into findings: inout Findings) async throws {
        let searchable = Array(Set(batch.raws.values.map(\.bytes).filter { $0.count >= Residue.minimumNeedle }))
        if !dryRun {
            let raws = Array(Set(batch.raws.values.map(\.bytes)).filter { !$0.isEmpty })
            if !raws.isEmpty {
                _ = try await state.transaction("cannot purge the erased ids from the state") { tx in try tx.purge(rawIDs: raws) }
            }
            lake.refCache.clear()
            await state.checkpoint()
        }
        if let scanner = state.residueScanner, !searchable.isEmpty {
            findings.stateScan = try scanner.search(for: searchable)
        }
    }

    /// The Delta logs of the plans' tables, field-aware (values of statistics, partition values and
    /// commitInfo parameters, whatever the id's length).
    private func scanLogs(_ batch: Batch, scope: Scope, into findings: inout Findings) async throws {
        guard !batch.raws.isEmpty else { return }
        // A Delta table verified at index cost had its log checked there (the files the run wrote or scrubbed).
        for d in config.datasets where scope.wanted.contains(d.name) && findings.problems[d.name] == nil && findings.proof[d.name] != "index" {
            do {
                guard let residue = try await lake.driver(for: d).logResidue(Array(Set(batch.raws.values)), lake) else { continue }
                for (raw, files) in residue {
                    findings.logScan[d.name, default: [:]][raw.bytes] = files.map(\.key)
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                findings.problems[d.name] =
                    "dataset `\(d.name)`: the log could not be read: \(DatasetIssue.oneLine(error: error))"
            }
        }
    }

    /// A request's residue: found under its key, and in `normalize: nfc` datasets under its NFC key.
    private func residue(_ r: ErasureRequest, _ batch: Batch, _ found: [SubjectKey: [Verification.Found]]) -> [Verification.Found] {
        guard let k = batch.nfc[r.id] else { return found[r.subjectKey] ?? [] }
        func normalizing(_ f: Verification.Found) -> Bool { config.dataset(named: f.dataset)?.normalization == .nfc }
        return (found[r.subjectKey] ?? []).filter { !normalizing($0) } + (found[k] ?? []).filter(normalizing)
    }

    /// One request's result from the batch's findings over the datasets of its scope.
    private func verification(_ r: ErasureRequest, _ batch: Batch, scope: Scope, _ f: Findings) -> Verification {
        let names = scope.datasetsOf[r.id] ?? []
        var v = Verification(
            id: r.id, subjectKey: r.subjectKey.hex, clean: true, at: now(), datasets: names,
            objectsScanned: names.reduce(0) { $0 + (f.objectsScanned[$1] ?? 0) },
            recordsScanned: names.reduce(0) { $0 + (f.records[$1] ?? 0) },
            found: residue(r, batch, f.found),
            unreadable: names.flatMap { f.unreadable[$0] ?? [] },
            stateFilesScanned: 0, stateHits: [], stateScanSkipped: nil, logHits: nil)
        let indexed = names.filter { f.proof[$0] == "index" }
        let kinds = Set(names.compactMap { f.proof[$0] })
        v.proof = kinds.count > 1 ? "index+full" : kinds.first ?? (f.indexCostRun ? "index" : "full")
        if !indexed.isEmpty {
            v.objectsListed = indexed.reduce(0) { $0 + (f.listed[$1] ?? 0) }
            v.objectsUnchanged = indexed.reduce(0) { $0 + (f.unchanged[$1] ?? 0) }
            v.objectsReread = indexed.reduce(0) { $0 + (f.reread[$1] ?? 0) }
            let inPart = indexed.reduce(0) { $0 + (f.rereadInPart[$1] ?? 0) }
            v.objectsRereadInPart = inPart > 0 ? inPart : nil
            v.objectsIndexedNow = indexed.reduce(0) { $0 + (f.indexedNow[$1] ?? 0) }
            let asked = indexed.reduce(0) { $0 + (f.evidenceAsked[$1] ?? 0) }
            if asked > 0 {
                v.evidence = .init(
                    asked: asked, ruledOut: indexed.reduce(0) { $0 + (f.evidenceRuledOut[$1] ?? 0) },
                    by: indexed.reduce(into: Set<String>()) { $0.formUnion(f.evidenceKinds[$1] ?? []) }.sorted())
            }
            v.bytesRead = indexed.reduce(0) { $0 + (f.bytesRead[$1] ?? 0) }
        }
        if let m = f.mentions[r.id], !m.isEmpty { v.mentions = m }
        let logs = names.reduce(0) { $0 + (f.logsExamined[$1] ?? 0) }
        v.logsExamined = logs > 0 ? logs : nil
        let versions = names.reduce(0) { $0 + (f.versionsExamined[$1] ?? 0) }
        v.versionsExamined = versions > 0 ? versions : nil
        // An empty listing counts only where this request's plan named objects to erase (now gone).
        let listings = names.filter { f.emptiedListings.contains($0) && scope.erasedIn[r.id, default: []].contains($0) }.count
        v.listingsExamined = listings > 0 ? listings : nil
        var why = names.compactMap { f.problems[$0] }
        if v.objectsScanned == 0 && (v.objectsListed ?? 0) == 0 && logs == 0 && listings == 0 && why.isEmpty {
            why.append(
                names.isEmpty
                    ? "no dataset with a subject column to examine: nothing proves the subject gone"
                    : "no object was examined in \(names.map { "`\($0)`" }.joined(separator: ", ")): nothing proves the subject gone")
        }
        // A verdict on the key is earned: true only when the plan listed a data key to shred and the
        // key store holds none of the subject's now; nil when the subject never had a key.
        if let listed = scope.shredListed[r.id], !listed.isEmpty { v.keyDestroyed = true }
        if f.heldKeys.contains(r.subjectKey) || batch.nfc[r.id].map(f.heldKeys.contains) == true {
            v.keyDestroyed = false
            why.append("the subject's crypto-shredding data key is still in the key store: its protected values can be revealed")
        }
        v.problems = why.isEmpty ? nil : why
        if let raw = batch.raws[r.id] {
            // The Delta logs of the plan's tables: stats and commitInfo must not name the subject.
            v.logHits = names.flatMap { f.logScan[$0]?[raw.bytes] ?? [] }
            if f.indexCostRun {
                v.stateScanSkipped = Self.stateLeftToTheSweep
            } else if raw.bytes.count >= Residue.minimumNeedle {
                if let stateScan = f.stateScan {
                    v.stateFilesScanned = stateScan.files
                    v.stateHits = stateScan.hits[raw.bytes] ?? []
                } else {
                    v.stateScanSkipped = "the state is not a local folder"
                }
            } else {
                v.stateScanSkipped = "the id is shorter than \(Residue.minimumNeedle) bytes: a byte search would match at random"
            }
        } else {
            v.stateScanSkipped = "the raw id was destroyed at an earlier verification"
        }
        v.clean = v.found.isEmpty && v.unreadable.isEmpty && v.stateHits.isEmpty && (v.logHits ?? []).isEmpty && v.problems == nil
        return v
    }

    /// Stores the result on the request with its audit entry: erased requests become verified (or
    /// fail verification); a failed request keeps its status (the next run retries it).
    /// The stored change a verdict makes: verified or failed for an erased (or verified) request,
    /// otherwise its last verification kept with an audit entry.
    /// The verdict on `current` (the request as stored now).
    private func verdict(_ v: Verification, of current: ErasureRequest) throws -> Lethe.RequestChange {
        let r = current
        let details: [String: JSONValue] = [
            "subject_key": .string(r.subjectKey.hex), "clean": .bool(v.clean),
            "objects_scanned": .int(Int64(v.objectsScanned)), "records_scanned": .int(v.recordsScanned),
            "residue_objects": .int(Int64(v.found.count)), "unreadable_objects": .int(Int64(v.unreadable.count)),
            "state_hits": .int(Int64(v.stateHits.count)), "problems": .int(Int64(v.problems?.count ?? 0)),
        ]
        if v.clean && (current.status == .erased || current.status == .verified) {
            return try .init(current, .verified(result: v.json, at: now(), proof: v.proof), audit: .verified, details)
        } else if current.status == .erased || current.status == .verified {
            return try .init(current, .verificationFailed(result: v.json, reason: v.summary, at: now()), audit: .verificationFailed, details)
        }
        var c = current
        c.verification = v.json
        return .init(storing: c, audit: v.clean ? .verificationClean : .verificationFailed, details)
    }
}

extension Lethe {
    /// Verifies requests by id (or every erased/verified request with `all`). With `dryRun`,
    /// nothing is stored (no result, no status change, no purge): for a state folder Lethe may
    /// not write.
    public func verify(ids: [String], all: Bool = false, dryRun: Bool = false) async throws -> [Verification] {
        return try await durably {
            forgetDeltaSnapshots()  // Delta snapshots are reused within one operation only
            return try await Verifier(self).verify(ids: ids, all: all, dryRun: dryRun)
        }
    }

    /// Residue scan for a batch of requests, independent of the index: every object of every
    /// dataset that may hold their subjects (their plans' datasets, and every dataset the index
    /// cannot vouch for; every dataset with a subject column when the index found the subject
    /// nowhere) is listed from the store and scanned once for all their subject keys; object
    /// keys are checked for the raw ids; then, after purging the raw ids from the state that
    /// may be purged, Lethe's state folder is searched for them. A request is clean only when
    /// something was examined, every object was read, no dataset is unreadable or unsupported,
    /// and nothing was found. Results are stored on the requests and in the audit log.
    func verify(_ requests: [ErasureRequest], dryRun: Bool = false) async throws -> [Verification] {
        try await Verifier(self).verify(requests, dryRun: dryRun)
    }

    /// See `Residue.minimumNeedle`.
    static var minimumNeedle: Int { Residue.minimumNeedle }

    /// See `Residue.key(_:names:fields:)`.
    static func key(_ key: String, names subject: SubjectID, fields: [FieldPath]? = nil) -> Bool {
        Residue.key(key, names: subject, fields: fields)
    }

    /// See `Residue.key(_:names:fields:)`.
    static func key(_ key: String, names subject: SubjectID, fields: [String]) -> Bool {
        Residue.key(key, names: subject, fields: fields)
    }

    /// See `Residue.search(_:for:)`.
    static func search(_ hay: [UInt8], for needles: [[UInt8]]) -> Set<[UInt8]> {
        Residue.search(hay, for: needles)
    }
}
