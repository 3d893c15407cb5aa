import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

extension Verifier {
    /// A run's own verification of a Delta table at index cost (see `IndexCostRun` for object
    /// datasets): the verification set is every file a retained version reaches (live, history,
    /// change data) plus the Parquet files no version names, from one snapshot replay joined with
    /// one paged listing of the table (`DeltaDatasetDriver.verificationSet`). Each file is then
    ///
    /// - read (keyed) when Lethe wrote it since the last verification (`DeltaWritten`: the erasure
    ///   commit's replacements and change data, the change data its vacuum rewrote), when a sweep
    ///   found one of the batch's subjects in it (`ErasureRequest.sweepFindings`), when no
    ///   version names it (it is never indexed), or when the index does not know it at its listed
    ///   store version (new or changed behind the index: indexed now);
    /// - proven by its postings when the index has it at the same store version, indexed cleanly;
    ///   one whose postings name a subject of the batch is read again, never assumed clean;
    /// - a problem when the index quarantined it.
    ///
    /// The log is checked field-aware for the raw ids in the files the run wrote or scrubbed: every
    /// commit from the first one Lethe wrote (else the first one the index has not read), the
    /// checkpoints, checksums and compactions from there on, and the commits and checkpoints the
    /// targeted vacuum rewrote, and those a sweep found naming a subject of the batch; the whole log
    /// for a table partitioned by a subject column. Older log
    /// files (e.g. another tool's DELETE predicate naming the subject) are the sweep's.
    ///
    /// A replacement file an erasure commit wrote, whose step journaled its `RewriteEvidence` (by store
    /// versions), gets its index entry derived from the removed file's (`putDerivedObject(…replacing:)`:
    /// the removed file's entry renamed, its postings kept, the dropped physical rows remapped) after a
    /// clean read of only the rows its rewrite re-encoded, as for a plain object (`derivablePlans`) —
    /// when the removed file is gone from the table's folder (vacuumed) and the index held it at the
    /// version the erasure read with as many physical rows. Otherwise it is read whole and indexed.
    ///
    /// A table whose index cursor does not match it now (other protocol checks, subject or
    /// partition columns) is verified by the full scan (`proof: "full"`).
    func verifyDeltaAtIndexCost(
        _ d: DatasetSpec, _ batch: Batch, scope: Scope, evidence: [RewriteEvidence] = [], temporaries: Set<String>, dryRun: Bool,
        into findings: inout Findings
    ) async throws {
        let driver = DeltaDatasetDriver(spec: d)
        let f: any RecordFormat
        let set: DeltaDatasetDriver.VerificationSet
        do {
            f = try lake.format(for: d)
            set = try await Trace.span("verify delta: verification set") { try await driver.verificationSet(lake) }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            findings.problems[d.name] = "dataset `\(d.name)` could not be read: \(DatasetIssue.oneLine(error: error))"
            return
        }
        guard set.indexVouches else {
            findings.proof[d.name] = "full"
            try await scanDataset(d, batch, scope: scope, temporaries: temporaries, dryRun: dryRun, into: &findings)
            return
        }
        guard let opts = set.options else { return }
        findings.logsExamined[d.name] = 1  // its snapshot was replayed: the log was read
        let objects = set.objects.filter { !temporaries.contains($0.key) }
        let known = Dictionary(set.indexed.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let listed = Set(objects.map(\.key))
        // Replacement key → the removed file's entry it may take (left in the index until then).
        let replacing = dryRun ? [:] : Self.replacements(evidence, objects: objects, known: known, listed: listed)
        let gone = known.keys.filter { !listed.contains($0) }.sorted()
        if !dryRun {
            // Files gone from the table leave the index (their keys may name the subject); the removed
            // files a replacement may take the entry of, after its read.
            let taken = Set(replacing.values.map(\.entry.key))
            try await state.removeObjects(dataset: d.name, keys: gone.filter { !taken.contains($0) })
        }
        Trace.mark("verify delta: gone files out of the index")
        // What a sweep found of these requests in the table is read again (files) and checked (log files).
        let swept = driver.sweepFindings(batch.requests)
        // The log files the run wrote or scrubbed, and those the index has not read, checked for the raw
        // ids beside the reads and index writes below (they read only the log; awaited before the end).
        let logNames = Array(Set(set.logNames).union(swept.log)).sorted(), raws = Array(Set(batch.raws.values))
        async let logResidue: Result<[SubjectID: [LogResidue]], any Error> = {
            guard !raws.isEmpty else { return .success([:]) }
            do { return .success(try await driver.logFilesNaming(raws, names: logNames, snapshot: set.snapshot, lake)) } catch { return .failure(error) }
        }()
        var (unchanged, toRead, rereadKeys) = classify(
            d, objects, known: known,
            mustRead: { set.written.objects.contains($0.version) || set.unnamed.contains($0.key) || swept.objects.contains($0.key) },
            into: &findings)
        // Unchanged files whose postings name a subject of the batch are read again: residue, or a
        // 64-bit prefix collision the read tells apart.
        let keys = Set(batch.requests.map { lake.subjectKey(of: $0, in: d, batch.nfc) })
        let replacedBy = Dictionary(replacing.map { ($0.value.entry.key, $0.key) }, uniquingKeysWith: { a, _ in a })
        var batchRows: [String: [Int64]] = [:]  // by replacement key: the batch's rows in the removed file
        Trace.mark("verify delta: classify")
        let located = try await postings(in: d, keys: keys, scope: scope)  // the scope's read of the batch's postings
        Trace.mark("verify delta: postings of \(keys.count) subjects")
        for (_, k) in keys.map({ ($0.hex, $0) }).sorted(by: { $0.0 < $1.0 }) {
            for p in located[k.prefix64] ?? [] {
                if let new = replacedBy[p.object.key] { batchRows[new, default: []] += p.rows }
                guard let o = unchanged.removeValue(forKey: p.object.key) else { continue }
                toRead.append(o)
                rereadKeys.insert(o.key)
            }
        }
        let plans = derivablePlans(
            d, toRead.filter { replacing[$0.key] != nil }, known: replacing.mapValues(\.entry),
            evidence: replacing.mapValues(\.evidence), batchRows: batchRows, matcher: matcher(d, batch, keys: keys), dryRun: dryRun)
        Trace.mark("verify delta: classified, \(toRead.count) to read, \(plans.count) derivable")
        // The reads made ahead of this one beside the vacuum (`ReadAhead`) stand for those of the same
        // object version with the same plan; the rest are read now.
        let ahead = dryRun ? nil : await lake.readAhead.take(dataset: d.name)
        var (reads, taken) = try await Trace.span("verify delta: keyed reads") {
            try await keyedReads(d, f, toRead, options: opts, keys: keys, plans: plans.mapValues(\.plan), ahead: ahead)
        }
        lake.readAhead.noteTaken(taken)
        Trace.mark("verify delta: \(taken) of them made ahead")
        // Derived only after a clean read (the records the entry says, none of the batch's): the
        // removed file's entry becomes the replacement's in one transaction. A crash before leaves
        // the removed file's entry (the next verification removes it and reads the replacement whole).
        var derive: [(object: IndexedObject, from: String, dropped: [Int64], replacing: String)] = []
        for r in reads where r.issue == nil && !r.recordsMismatch && r.clean {
            if let p = plans[r.object.key], let old = replacing[r.object.key] { derive.append((p.entry, p.from, p.dropped, old.entry.key)) }
        }
        var derived = Set<String>()
        if !derive.isEmpty {
            for (x, stored) in zip(derive, try await state.putDerivedObjects(derive)) where stored != nil { derived.insert(x.object.key) }
        }
        Trace.mark("verify delta: \(derive.count) entries derived, stored")
        if !dryRun {
            // The removed files whose entry no replacement took leave the index now.
            try await state.removeObjects(dataset: d.name, keys: replacedBy.filter { !derived.contains($0.value) }.keys.sorted())
        }
        // Not derived and read only in part: read whole now, the read is the entry.
        let partial = reads.indices.filter { reads[$0].rowsRead != nil && !derived.contains(reads[$0].object.key) }
        if !partial.isEmpty {
            let again = try await keyedReads(d, f, partial.map { reads[$0].object }, options: opts, keys: keys)
            for (i, r) in zip(partial, again) {
                findings.bytesRead[d.name, default: 0] += reads[i].bytesRead ?? 0
                findings.records[d.name, default: 0] += reads[i].rowsRead ?? 0
                reads[i] = r
            }
        }
        Trace.mark("verify delta: derived \(derived.count), partial \(partial.count)")
        var unread = Set<String>()
        var entries = EntryBatch(dataset: d.name, dryRun: dryRun)
        for r in reads {
            let o = r.object
            findings.objectsScanned[d.name, default: 0] += 1
            findings.bytesRead[d.name, default: 0] += r.bytesRead ?? o.size
            if rereadKeys.contains(o.key) {
                findings.reread[d.name, default: 0] += 1
            } else {
                findings.indexedNow[d.name, default: 0] += 1
            }
            let isUnnamed = set.unnamed.contains(o.key)
            if let issue = r.issue {
                unread.insert(o.version)
                try await recordUnreadable(d, o, issue, quarantine: !isUnnamed, dryRun: dryRun, into: &findings)
                continue
            }
            findings.records[d.name, default: 0] += r.rowsRead ?? r.records
            for (k, n) in r.hits.sorted(by: { $0.key.hex < $1.key.hex }) {
                // A file under the table that no version names (an interrupted write left it) still holds the rows.
                let why =
                    isUnnamed
                    ? "\(n) rows in a file the Delta log does not name (an interrupted write left it; `lethe run` removes Lethe's own, `lethe vacuum --retain` others)"
                    : nil
                findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n, issue: why))
            }
            for k in r.unreferenced { findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: Self.unreferencedIssue)) }
            // A file no version names is read every time, never indexed (the index holds what the log reaches);
            // a derived entry is the file's index entry already.
            guard !isUnnamed, !derived.contains(o.key) else { continue }
            try await entries.add(o, records: r.records, postings: r.postings, at: now(), state)
        }
        try await entries.flush(state)
        findings.listed[d.name, default: 0] += objects.count
        findings.unchanged[d.name, default: 0] += unchanged.count
        // A key that names the subject (e.g. a `user_id=…/` folder) is residue too.
        Trace.mark("verify delta: entries")
        keysNamingSubjects(d, objects, batch, into: &findings)
        Trace.mark("verify delta: keys naming subjects")
        // The log files the run wrote or scrubbed, and those the index has not read.
        if !batch.raws.isEmpty {
            do {
                let residue = try await logResidue.get()
                for (raw, files) in residue { findings.logScan[d.name, default: [:]][raw.bytes] = files.map(\.key) }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                findings.problems[d.name] =
                    "dataset `\(d.name)`: the log could not be read: \(DatasetIssue.oneLine(error: error))"
                return
            }
        }
        Trace.mark("verify delta: log files")
        if !dryRun && !set.written.isEmpty { try await driver.forgetWritten(keeping: unread, lake) }
    }

    /// The replacement files whose index entry may follow from a removed file's, by replacement key:
    /// per evidence, the one listed file at the version written (not in the index) and the one file
    /// the index holds at the version the erasure read that is gone from the table's folder (a
    /// removed file still there keeps its own entry). Versions matching more than one file are skipped.
    static func replacements(
        _ evidence: [RewriteEvidence], objects: [ObjectInfo], known: [String: IndexedObject], listed: Set<String>
    ) -> [String: (entry: IndexedObject, evidence: RewriteEvidence)] {
        guard !evidence.isEmpty else { return [:] }
        var byVersion: [String: [ObjectInfo]] = [:]
        for o in objects { byVersion[o.version, default: []].append(o) }
        var goneByVersion: [String: [IndexedObject]] = [:]
        for o in known.values where !listed.contains(o.key) { goneByVersion[o.version, default: []].append(o) }
        var out: [String: (entry: IndexedObject, evidence: RewriteEvidence)] = [:]
        var usedOld = Set<String>()
        for e in evidence where e.exact && !e.removed {
            guard let w = e.written, let news = byVersion[w], news.count == 1, let olds = goneByVersion[e.from], olds.count == 1
            else { continue }
            let new = news[0], old = olds[0]
            guard known[new.key] == nil, out[new.key] == nil, usedOld.insert(old.key).inserted else { continue }
            out[new.key] = (old, e)
        }
        return out
    }
}
