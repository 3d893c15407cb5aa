import Foundation
import LetheCore
import LetheFormats
import LetheStorage
import Synchronization

/// The keyed reads a run's verification will make of a Delta table's replacement files, made as
/// soon as the erasure commit is recorded, beside the targeted vacuum (which mostly waits for the
/// disk), instead of after it, the settle and the verification's scope — on one core fewer than
/// there are (the vacuum's work between its waits needs a thread of the cooperative pool).
///
/// A read made ahead is the same read the verification makes (`Verifier.plannedRead`: the rows the
/// rewrite re-encoded, matched against the batch's raw ids or keys), of the file as committed. The
/// verification takes it only for an object it lists at the same store version and size, read with
/// the same plan (records, rows, matcher), the same keys and the same scan options; anything else
/// is read then, as before. A file changed behind the run after the read has another version and is
/// read again. Only a run that verifies its own job allows it (`allow(job:)`), and what is held goes
/// when the run ends (`clear`).
final class ReadAhead: Sendable {
    /// What was read ahead of one dataset's verification.
    struct Reads: Sendable {
        var options: FormatOptions
        var keys: Set<SubjectKey>
        /// By object key: the object as read, the plan it was read with and what the read found.
        var byKey: [String: (object: ObjectInfo, plan: Verifier.ReadPlan, read: Verifier.KeyedRead)] = [:]
    }

    private struct Held {
        var job: String?
        var tasks: [String: Task<Reads?, Never>] = [:]
    }
    private let held = Mutex(Held())
    private let takenCount = Mutex(0)

    /// Reads made ahead that verifications took, since this engine started (for tests and traces).
    var taken: Int { takenCount.withLock { $0 } }

    /// Counts `n` reads made ahead taken by a verification.
    func noteTaken(_ n: Int) { takenCount.withLock { $0 += n } }

    /// Reads ahead may be started for the steps of `job` (the job this run executes and verifies).
    func allow(job: String) {
        let old = held.withLock { h in
            defer { h = Held(job: job) }
            return Array(h.tasks.values)
        }
        for t in old { t.cancel() }
    }

    /// Starts `body` for `dataset` when reads ahead are allowed for `job`; returns whether it started.
    @discardableResult
    func start(job: String, dataset: String, _ body: @escaping @Sendable () async -> Reads?) -> Bool {
        held.withLock { h in
            guard h.job == job else { return false }
            h.tasks[dataset]?.cancel()
            h.tasks[dataset] = Task { await body() }
            return true
        }
    }

    /// What was read ahead for `dataset` (awaited when still reading; then let go); nil when nothing was.
    func take(dataset: String) async -> Reads? {
        guard let t = held.withLock({ $0.tasks.removeValue(forKey: dataset) }) else { return nil }
        return await withTaskCancellationHandler {
            await t.value
        } onCancel: {
            t.cancel()
        }
    }

    /// Waits for the reads ahead of `dataset` to end, leaving them held.
    func settled(dataset: String) async {
        if let t = held.withLock({ $0.tasks[dataset] }) { _ = await t.value }
    }

    /// Drops everything held (cancelling reads still running) and allows none.
    func clear() {
        let old = held.withLock { h in
            defer { h = Held() }
            return Array(h.tasks.values)
        }
        for t in old { t.cancel() }
    }
}

extension Verifier {
    /// The requests of a batch with their raw ids unsealed (in memory only) and their NFC keys.
    func batch(of requests: [ErasureRequest]) throws -> Batch {
        var raws: [String: SubjectID] = [:]
        for r in requests {
            if let sealed = r.sealedSubject { raws[r.id] = try secrets.unseal(sealed, requestID: r.id) }
        }
        return Batch(
            requests: requests, raws: raws, nfc: lake.nfcKeys(requests),
            byID: Dictionary(uniqueKeysWithValues: requests.map { ($0.id, $0) }))
    }

    /// A replacement file of a Delta erasure commit, for a read ahead: its key, the removed file's
    /// key, and the step's evidence.
    struct ReplacementFile: Sendable {
        var key: String
        var removed: String
        var evidence: RewriteEvidence
    }

    /// The reads `verifyDeltaAtIndexCost` will make of `files` (the replacements an erasure of
    /// `requests` just committed), made now: each file's plan as `derivablePlans` makes it, with
    /// `candidates` (the rows of the batch's keys in each removed file, by its key) for the index's
    /// postings of the batch. Nil when the batch cannot be built or the table read (the verification
    /// then reads as before); a file that cannot be read is left out.
    /// `options`: the table's scan options when they hold nothing per file (no subject partition
    /// column), else nil (read from a snapshot of the table now).
    func readAheadDelta(
        _ d: DatasetSpec, requests: [ErasureRequest], files: [ReplacementFile], candidates: [String: Set<Int64>],
        options known: FormatOptions? = nil
    ) async -> ReadAhead.Reads? {
        do {
            let batch = try batch(of: requests)
            let keys = Set(batch.requests.map { lake.subjectKey(of: $0, in: d, batch.nfc) })
            let matcher = matcher(d, batch, keys: keys)
            let f = try lake.format(for: d)
            let driver = DeltaDatasetDriver(spec: d)
            let options: FormatOptions
            if let known {
                options = known
            } else {
                guard let o = try await driver.scanOptions(lake, snapshot: nil) else { return nil }
                options = o
            }
            var objects: [ObjectInfo] = []
            var plans: [String: ReadPlan] = [:]
            for x in files where x.evidence.exact && !x.evidence.removed {
                guard let o = try await store.head(x.key), o.version == x.evidence.written else { continue }
                objects.append(o)
                plans[o.key] = ReadPlan(
                    records: x.evidence.records, rows: x.evidence.rowsToRead(batchRows: Array(candidates[x.removed] ?? [])), matcher: matcher)
            }
            // One core fewer than the verification's own reads: the keyed reads run on the cooperative
            // pool's threads, and the vacuum beside them needs one between its waits on the disk.
            let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16) - 1)
            let reads = try await keyedReads(d, f, objects, options: options, keys: keys, plans: plans, workers: workers)
            var out = ReadAhead.Reads(options: options, keys: keys)
            for r in reads where r.issue == nil {
                if let p = plans[r.object.key] { out.byKey[r.object.key] = (r.object, p, r) }
            }
            return out
        } catch {
            return nil
        }
    }

    /// `keyedReads` of `objects` with `plans`, taking the reads `ahead` made that stand for them
    /// (`readsTaken`) and reading the rest now; results in the order of `objects`, with how many were taken.
    func keyedReads(
        _ d: DatasetSpec, _ f: any RecordFormat, _ objects: [ObjectInfo], options: FormatOptions, keys: Set<SubjectKey>,
        plans: [String: ReadPlan], ahead: ReadAhead.Reads?
    ) async throws -> (reads: [KeyedRead], taken: Int) {
        var reads = Self.readsTaken(from: ahead, objects, plans: plans, options: options, keys: keys)
        let taken = reads.count
        let rest = objects.indices.filter { reads[$0] == nil }
        for (i, r) in zip(rest, try await keyedReads(d, f, rest.map { objects[$0] }, options: options, keys: keys, plans: plans)) {
            reads[i] = r
        }
        return (objects.indices.map { reads[$0]! }, taken)
    }

    /// Of `objects` (to be read with `plans`), the reads `ahead` made that stand for this
    /// verification's own: same object version and size, same plan, same keys and scan options.
    /// By index into `objects`; each read carries the object as listed now.
    static func readsTaken(
        from ahead: ReadAhead.Reads?, _ objects: [ObjectInfo], plans: [String: ReadPlan], options: FormatOptions, keys: Set<SubjectKey>
    ) -> [Int: KeyedRead] {
        guard let ahead, ahead.keys == keys, ahead.options == options else { return [:] }
        var out: [Int: KeyedRead] = [:]
        for (i, o) in objects.enumerated() {
            guard let p = plans[o.key], let a = ahead.byKey[o.key], a.object.version == o.version, a.object.size == o.size, a.plan == p
            else { continue }
            var r = a.read
            r.object = o
            out[i] = r
        }
        return out
    }
}
