import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

extension Lethe {
    /// Verifies requests by id (or every erased/verified request with `all`). With `dryRun`,
    /// nothing is stored (no result, no status change, no purge): for a state folder Lethe may
    /// not write.
    public func verify(ids: [String], all: Bool = false, dryRun: Bool = false) async throws -> [Verification] {
        var rs: [ErasureRequest] = []
        if all {
            rs = try await meta.requests(status: nil).filter { $0.status == .erased || $0.status == .verified || ($0.status == .failed && $0.verification != nil) }
        } else {
            for id in ids { rs.append(try await request(id)) }
            for r in rs where !(r.status == .erased || r.status == .verified || (r.status == .failed && r.verification != nil)) {
                throw LetheError(.conflict, "request \(r.id) is \(r.status.rawValue): only erased requests can be verified (run `lethe run` first)")
            }
        }
        return try await verify(rs, dryRun: dryRun)
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
        guard !requests.isEmpty else { return [] }
        if !dryRun { Failpoint.verifying() }
        let cov = try await coverage()
        let subjectDatasets = config.datasets.filter { $0.subject != nil }.map(\.name)
        var datasetsOf: [String: [String]] = [:]
        var erasedIn: [String: Set<String>] = [:]   // per request: datasets where its plan named objects to erase
        var wanted: Set<String> = []
        let nfcOf = nfcKeys(requests)
        for r in requests {
            let plan = r.plan.flatMap(ErasurePlan.decode)
            erasedIn[r.id] = Set((plan?.datasets ?? []).filter { !$0.objects.isEmpty }.map(\.name))
            var names = Set((plan?.datasets ?? []).map(\.name).filter { config.dataset(named: $0)?.subject != nil })
                .union(cov.incomplete)
            // And wherever the index finds the subject now: it may have come back since the plan was made.
            for p in try await postings(r.subjectKey, nfc: nfcOf[r.id]) where config.dataset(named: p.object.dataset)?.subject != nil {
                names.insert(p.object.dataset)
            }
            // The index found the subject nowhere: only reading every dataset proves it absent.
            if names.isEmpty { names = Set(subjectDatasets) }
            datasetsOf[r.id] = subjectDatasets.filter(names.contains)
            wanted.formUnion(names)
        }
        // Raw ids, unsealed in memory only.
        var raws: [String: SubjectID] = [:]
        for r in requests {
            if let sealed = r.sealedSubject { raws[r.id] = try secrets.unseal(sealed, requestID: r.id) }
        }
        let nfc = nfcKeys(requests)
        let requestOf = Dictionary(uniqueKeysWithValues: requests.map { ($0.id, $0) })
        let temporaries = try await knownTemporaries()
        var found: [SubjectKey: [Verification.Found]] = [:]
        var unreadable: [String: [Verification.Found]] = [:]
        var problems: [String: String] = [:]
        var objectsScanned: [String: Int] = [:]
        var logsExamined: [String: Int] = [:]
        var emptiedListings: Set<String> = []
        var records: [String: Int64] = [:]
        for d in config.datasets where wanted.contains(d.name) {
            if let issue = cov.issues[d.name] {
                problems[d.name] = issue.description
                continue
            }
            let f: any RecordFormat
            let objects: [ObjectInfo]
            let listedOptions: FormatOptions?
            let unnamed: Set<String>
            let hidden: [ObjectInfo]
            do {
                f = try format(for: d)
                let listing = try await datasetObjects(d)
                (objects, listedOptions, unnamed, hidden) = (listing.objects, listing.options, listing.unnamed, listing.hidden)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                problems[d.name] = "dataset `\(d.name)` could not be read: \(DatasetIssue.oneLine((error as? LetheError)?.description ?? "\(error)"))"
                continue
            }
            guard let opts = listedOptions else { continue }
            if driver(for: d).hasTransactionLog { logsExamined[d.name] = 1 }   // its snapshot was replayed: the log was read
            else if objects.isEmpty { emptiedListings.insert(d.name) }   // listed, and no object is left
            if !dryRun {
                // Objects gone from the lake leave the index (their keys may name the subject).
                let listed = Set(objects.map(\.key))
                let gone = try await meta.objects(dataset: d.name).map(\.key).filter { !listed.contains($0) }
                try await meta.removeObjects(dataset: d.name, keys: gone)
            }
            let keys = Set(requests.map { subjectKey(of: $0, in: d, nfc) })
            let keyer = keyer(for: d)
            for o in objects where !temporaries.contains(o.key) {
                var hits: [SubjectKey: Int64] = [:]
                do {
                    let s = try await f.scan(o, in: store, options: opts, keyer: keyer) { _, k in
                        if keys.contains(k) { hits[k, default: 0] += 1 }
                    }
                    records[d.name, default: 0] += s.records
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    let why = DatasetIssue.oneLine((error as? LetheError)?.description ?? "\(error)")
                    unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: why))
                }
                objectsScanned[d.name, default: 0] += 1
                for (k, n) in hits {
                    // A file under a Delta table that no version names (an interrupted write left it) still holds the rows.
                    let why = unnamed.contains(o.key) ? "\(n) rows in a file the Delta log does not name (an interrupted write left it; `lethe run` removes Lethe's own, `lethe vacuum --retain` others)" : nil
                    found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n, issue: why))
                }
                // A key that names the subject (e.g. a `user_id=…/` folder) is residue too.
                for (id, raw) in raws where Self.key(o.key, names: raw, fields: d.subject?.fields) {
                    found[subjectKey(of: requestOf[id]!, in: d, nfc), default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: "the object's key names the subject"))
                }
            }
            // Hidden files (`_SUCCESS`, `.crc` sidecars, `_metadata`): not records, but their bytes and keys may hold an id.
            let needles = Array(Set(raws.values.map(\.bytes).filter { $0.count >= Self.minimumNeedle }))
            for o in hidden where !temporaries.contains(o.key) {
                var named = Set(raws.filter { Self.key(o.key, names: $0.value, fields: d.subject?.fields) }.map(\.key))
                if !needles.isEmpty {
                    do {
                        let held = Self.search(try await store.read(o.key), for: needles)
                        for (id, raw) in raws where held.contains(raw.bytes) { named.insert(id) }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        let why = DatasetIssue.oneLine((error as? LetheError)?.description ?? "\(error)")
                        unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: "hidden file not searched: \(why)"))
                    }
                }
                for id in named.sorted() {
                    found[subjectKey(of: requestOf[id]!, in: d, nfc), default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: "a hidden file (not read as records) holds the subject's id"))
                }
            }
        }
        let searchable = Array(Set(raws.values.map(\.bytes).filter { $0.count >= Self.minimumNeedle }))
        if !dryRun {
            // What may be purged of the raw ids goes first (object names, texts on requests,
            // settings), and the write-ahead log is emptied: the state scan must find nothing.
            for raw in Set(raws.values.map(\.bytes)) { try await meta.purge(rawID: raw, substring: raw.count >= Self.minimumNeedle) }
            refCache.clear()
            await meta.checkpoint()
        }
        var stateScan: (files: Int, hits: [[UInt8]: [String]])?
        if let scanner = meta.residueScanner, !searchable.isEmpty {
            stateScan = try scanner.search(for: searchable)
        }
        // The Delta logs of the plans' tables, field-aware (values of statistics, partition values and
        // commitInfo parameters, whatever the id's length): dataset → raw id → files.
        var logScan: [String: [[UInt8]: [String]]] = [:]
        if !raws.isEmpty {
            for d in config.datasets where wanted.contains(d.name) && problems[d.name] == nil {
                do {
                    guard let residue = try await driver(for: d).logResidue(Array(Set(raws.values)), self) else { continue }
                    for (raw, files) in residue {
                        logScan[d.name, default: [:]][raw.bytes] = files.map(\.key)
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    problems[d.name] = "dataset `\(d.name)`: the log could not be read: \(DatasetIssue.oneLine((error as? LetheError)?.description ?? "\(error)"))"
                }
            }
        }
        /// A request's residue: found under its key, and in `normalize: nfc` datasets under its NFC key.
        func residue(_ r: ErasureRequest) -> [Verification.Found] {
            guard let k = nfc[r.id] else { return found[r.subjectKey] ?? [] }
            func normalizing(_ f: Verification.Found) -> Bool { config.dataset(named: f.dataset)?.normalization == .nfc }
            return (found[r.subjectKey] ?? []).filter { !normalizing($0) } + (found[k] ?? []).filter(normalizing)
        }
        var out: [Verification] = []
        for r in requests {
            let names = datasetsOf[r.id] ?? []
            var v = Verification(id: r.id, subjectKey: r.subjectKey.hex, clean: true, at: now(), datasets: names,
                                 objectsScanned: names.reduce(0) { $0 + (objectsScanned[$1] ?? 0) },
                                 recordsScanned: names.reduce(0) { $0 + (records[$1] ?? 0) },
                                 found: residue(r),
                                 unreadable: names.flatMap { unreadable[$0] ?? [] },
                                 stateFilesScanned: 0, stateHits: [], stateScanSkipped: nil, logHits: nil)
            let logs = names.reduce(0) { $0 + (logsExamined[$1] ?? 0) }
            v.logsExamined = logs > 0 ? logs : nil
            // An empty listing counts only where this request's plan named objects to erase (now gone).
            let listings = names.filter { emptiedListings.contains($0) && erasedIn[r.id, default: []].contains($0) }.count
            v.listingsExamined = listings > 0 ? listings : nil
            var why = names.compactMap { problems[$0] }
            if v.objectsScanned == 0 && logs == 0 && listings == 0 && why.isEmpty {
                why.append(names.isEmpty
                    ? "no dataset with a subject column to examine: nothing proves the subject gone"
                    : "no object was examined in \(names.map { "`\($0)`" }.joined(separator: ", ")): nothing proves the subject gone")
            }
            v.problems = why.isEmpty ? nil : why
            if let raw = raws[r.id] {
                // The Delta logs of the plan's tables: stats and commitInfo must not name the subject.
                v.logHits = names.flatMap { logScan[$0]?[raw.bytes] ?? [] }
                if raw.bytes.count >= Self.minimumNeedle {
                    if let stateScan {
                        v.stateFilesScanned = stateScan.files
                        v.stateHits = stateScan.hits[raw.bytes] ?? []
                    } else {
                        v.stateScanSkipped = "the state is not a local folder"
                    }
                } else {
                    v.stateScanSkipped = "the id is shorter than \(Self.minimumNeedle) bytes: a byte search would match at random"
                }
            } else {
                v.stateScanSkipped = "the raw id was destroyed at an earlier verification"
            }
            v.clean = v.found.isEmpty && v.unreadable.isEmpty && v.stateHits.isEmpty && (v.logHits ?? []).isEmpty && v.problems == nil
            out.append(v)
            if dryRun { continue }
            let current = try await request(r.id)
            let details: [String: JSONValue] = [
                "subject_key": .string(r.subjectKey.hex), "clean": .bool(v.clean),
                "objects_scanned": .int(Int64(v.objectsScanned)), "records_scanned": .int(v.recordsScanned),
                "residue_objects": .int(Int64(v.found.count)), "unreadable_objects": .int(Int64(v.unreadable.count)),
                "state_hits": .int(Int64(v.stateHits.count)), "problems": .int(Int64(v.problems?.count ?? 0)),
            ]
            if v.clean && (current.status == .erased || current.status == .verified) {
                try await transition(current, .verified(result: v.json, at: now()), audit: .verified, actor: "lethe", details)
            } else if current.status == .erased || current.status == .verified {
                try await transition(current, .verificationFailed(result: v.json, reason: v.summary, at: now()),
                                     audit: .verificationFailed, actor: "lethe", details)
            } else {
                // A failed request keeps its status (the next run retries it); the result is kept.
                var c = current
                c.verification = v.json
                let kept = c, event: AuditEvent = v.clean ? .verificationClean : .verificationFailed
                let at = now(), text = JSONValue.object(details).text
                try await meta.transaction("cannot save request \(r.id)") { tx in
                    try tx.updateRequest(kept, expecting: kept.status)
                    try tx.appendAudit(event: event, requestID: kept.id, actor: "lethe", details: text, at: at)
                }
            }
        }
        return out
    }

    /// Raw ids shorter than this are not searched for as bytes (they would match at random). Longer ones
    /// match as whole tokens (`NeedleSet(wordBounded:)`): `179600` is not found in `1796004080592`.
    static let minimumNeedle = 6

    /// True when an object key names a subject: holds its id as a whole token (ids of at least
    /// `minimumNeedle` bytes), has a path segment that is the id, or a Hive folder `field=value`
    /// of one of the subject's own `fields` whose value (URL-decoded) is the id. A folder of another
    /// column (`country=DE`) says nothing about the subject, whatever its value. `fields` nil: any
    /// folder name counts.
    static func key(_ key: String, names subject: SubjectID, fields: [FieldPath]? = nil) -> Bool {
        let id = subject.bytes
        guard !id.isEmpty, !id.contains(SubjectID.partSeparator) else { return false }
        let k = Array(key.utf8)
        if id.count >= minimumNeedle, !NeedleSet([id], wordBounded: true).matches(in: k).isEmpty { return true }
        for seg in k.split(separator: UInt8(ascii: "/")) where Array(seg) == id { return true }
        for (field, value) in FormatOptions.hiveValues(key, below: "") where value == .value(id) {
            if fields?.contains(field) ?? true { return true }
        }
        return false
    }

    /// `key(_:names:fields:)` with fields given as dotted names.
    static func key(_ key: String, names subject: SubjectID, fields: [String]) -> Bool {
        Self.key(key, names: subject, fields: fields.map { FieldPath($0) })
    }

    /// The needles (each at least `minimumNeedle` bytes) that occur in `hay`.
    static func search(_ hay: [UInt8], for needles: [[UInt8]]) -> Set<[UInt8]> {
        NeedleSet(needles.filter { $0.count >= minimumNeedle }, wordBounded: true).matches(in: hay)
    }
}
