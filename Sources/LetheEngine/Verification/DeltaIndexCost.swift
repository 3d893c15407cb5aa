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
    /// A table whose index cursor does not match it now (other protocol checks, subject or
    /// partition columns) is verified by the full scan (`proof: "full"`).
    func verifyDeltaAtIndexCost(
        _ d: DatasetSpec, _ batch: Batch, scope: Scope, temporaries: Set<String>, dryRun: Bool,
        into findings: inout Findings
    ) async throws {
        let driver = DeltaDatasetDriver(spec: d)
        let f: any RecordFormat
        let set: DeltaDatasetDriver.VerificationSet
        do {
            f = try lake.format(for: d)
            set = try await driver.verificationSet(lake)
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
        let known = Dictionary(try await state.objects(dataset: d.name).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        if !dryRun {
            // Files gone from the table leave the index (their keys may name the subject).
            let listed = Set(objects.map(\.key))
            try await state.removeObjects(dataset: d.name, keys: known.keys.filter { !listed.contains($0) }.sorted())
        }
        // What a sweep found of these requests in the table is read again (files) and checked (log files).
        let swept = driver.sweepFindings(batch.requests)
        var (unchanged, toRead, rereadKeys) = classify(
            d, objects, known: known,
            mustRead: { set.written.objects.contains($0.version) || set.unnamed.contains($0.key) || swept.objects.contains($0.key) },
            into: &findings)
        // Unchanged files whose postings name a subject of the batch are read again: residue, or a
        // 64-bit prefix collision the read tells apart.
        let keys = Set(batch.requests.map { lake.subjectKey(of: $0, in: d, batch.nfc) })
        for k in keys.sorted(by: { $0.hex < $1.hex }) {
            for p in try await state.locate(prefix: k.prefix64, dataset: d.name) {
                guard let o = unchanged.removeValue(forKey: p.object.key) else { continue }
                toRead.append(o)
                rereadKeys.insert(o.key)
            }
        }
        var unread = Set<String>()
        var entries = EntryBatch(dataset: d.name, dryRun: dryRun)
        for r in try await keyedReads(d, f, toRead, options: opts, keys: keys) {
            let o = r.object
            findings.objectsScanned[d.name, default: 0] += 1
            findings.bytesRead[d.name, default: 0] += o.size
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
            findings.records[d.name, default: 0] += r.records
            for (k, n) in r.hits.sorted(by: { $0.key.hex < $1.key.hex }) {
                // A file under the table that no version names (an interrupted write left it) still holds the rows.
                let why =
                    isUnnamed
                    ? "\(n) rows in a file the Delta log does not name (an interrupted write left it; `lethe run` removes Lethe's own, `lethe vacuum --retain` others)"
                    : nil
                findings.found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n, issue: why))
            }
            // A file no version names is read every time, never indexed (the index holds what the log reaches).
            guard !isUnnamed else { continue }
            try await entries.add(o, records: r.records, postings: r.postings, at: now(), state)
        }
        try await entries.flush(state)
        findings.listed[d.name, default: 0] += objects.count
        findings.unchanged[d.name, default: 0] += unchanged.count
        // A key that names the subject (e.g. a `user_id=…/` folder) is residue too.
        keysNamingSubjects(d, objects, batch, into: &findings)
        // The log files the run wrote or scrubbed, and those the index has not read.
        if !batch.raws.isEmpty {
            do {
                let residue = try await driver.logFilesNaming(
                    Array(Set(batch.raws.values)), names: Array(Set(set.logNames).union(swept.log)).sorted(), snapshot: set.snapshot, lake)
                for (raw, files) in residue { findings.logScan[d.name, default: [:]][raw.bytes] = files.map(\.key) }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                findings.problems[d.name] =
                    "dataset `\(d.name)`: the log could not be read: \(DatasetIssue.oneLine(error: error))"
                return
            }
        }
        if !dryRun && !set.written.isEmpty { try await driver.forgetWritten(keeping: unread, lake) }
    }
}
