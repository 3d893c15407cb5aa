import Foundation
import Synchronization
import LetheCore
import LetheStorage
import LetheCatalog
import LetheFormats
#if canImport(Glibc)
    import Glibc
    import Logging
#endif

extension Lethe {
    // MARK: Object references

    /// References for object keys of a dataset (see `StateStore.objectRefs`), cached.
    func objectRefs(_ dataset: String, _ keys: [String]) async throws -> [String: Int64] {
        var (out, missing) = refCache.lookup(dataset, keys)
        if !missing.isEmpty {
            let got = try await meta.objectRefs(dataset: dataset, keys: missing)
            refCache.store(dataset, got)
            out.merge(got) { a, _ in a }
        }
        return out
    }

    /// Object keys as JSON references for the audit log.
    func refsJSON(_ dataset: String, _ keys: [String]) async throws -> JSONValue {
        let refs = try await objectRefs(dataset, keys)
        return .array(keys.map { refs[$0].map(JSONValue.int) ?? .null })
    }

    /// Text for the append-only audit log: object keys it names become `object #ref`, and any
    /// other word that looks like a path (a `/` or a `name=value` segment, which may name a
    /// subject) becomes `[path]`. The full text stays on the request, where it can be purged.
    func auditText(_ text: String, refs: [String: Int64]) -> String {
        var t = text
        for (k, r) in refs.sorted(by: { $0.key.count > $1.key.count }) where !k.isEmpty {
            t = t.replacingOccurrences(of: k, with: "object #\(r)")
        }
        let words = t.split(separator: " ", omittingEmptySubsequences: false).map { w -> String in
            guard w.contains("/") || w.contains("=") else { return String(w) }
            let trim = CharacterSet(charactersIn: "()[]{}'\"`,;:.")
            let core = String(w).trimmingCharacters(in: trim)
            guard !core.isEmpty else { return String(w) }
            return String(w).replacingOccurrences(of: core, with: "[path]")
        }
        return words.joined(separator: " ")
    }

    // MARK: Dataset folders

    /// A dataset whose folder is missing from a local lake is an error naming it (a typo in `path`,
    /// or a lake mounted wrong), never a dataset that silently holds nothing. An empty folder is fine.
    func checkFolderExists(_ d: DatasetSpec) throws {
        guard let path = store.localPath(of: d.path) else { return }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) { return }
        throw LetheError(
            .notFound, "its folder `\(d.path)` does not exist in the lake (\(path)): create it, or correct the dataset's `path`",
            at: "\(config.file):\(d.line)")
    }

    // MARK: Hidden files

    /// True when an object of a plain dataset is hidden by name, as Spark and Hadoop read a
    /// folder: a path segment below the dataset's `prefix` starts with `.` (`.part-0.parquet.crc`,
    /// Lethe's own `.x.lethe-tmp-…`), or with `_` and holds no `=` (`_SUCCESS`, `_metadata`,
    /// `_temporary/`; `_col=x/` is a partition folder). Such files are not records: indexing and
    /// record scans skip them, and verification searches their bytes for the raw id instead.
    static func isHidden(_ key: String, below prefix: String) -> Bool {
        var rel = Substring(key)
        if !prefix.isEmpty {
            let p = prefix.hasSuffix("/") ? prefix : prefix + "/"
            guard rel.hasPrefix(p) else { return false }
            rel = rel.dropFirst(p.count)
        }
        return rel.split(separator: "/").contains { $0.hasPrefix(".") || ($0.hasPrefix("_") && !$0.contains("=")) }
    }

    // MARK: Temporary files

    /// Keys of temporary files the journal knows (not data: index and verification skip them).
    /// Files a Delta erasure journaled (`table` set) are not among them: once a commit adopts one
    /// it is data, and until then verification must see it (it may hold a subject's rows).
    func knownTemporaries() async throws -> Set<String> {
        Set(try await meta.temporaries().filter { $0.table == nil }.map(\.key))
    }

    /// The journal hook of a Delta erasure: each replacement and change data file is recorded
    /// with its table before it is created, a wave of rewrites in one transaction (see `removeLeftTemporaries`).
    func journalDeltaWrite(_ d: DatasetSpec) -> @Sendable ([String]) async throws -> Void {
        let meta = self.meta, owner = getpid(), table = d.path
        return { keys in
            try await meta.transaction("cannot record \(keys.count) temporary file(s) of table \(table)") { tx in
                for k in keys { try tx.journal.recordTemporary(k, owner: owner, table: table) }
            }
        }
    }

    /// Removes the temporary files that runs no longer alive left (killed mid-write) and forgets
    /// them; a live process's files are left alone. Returns how many files were removed.
    ///
    /// A file a Delta erasure journaled is removed only when no retained version of its table
    /// names it (the run died before the commit that was to adopt it); one a commit names is data
    /// and is only forgotten. A table whose log cannot be read keeps its files for a later run.
    /// `keepingOwn`: this process's files are in use too (a worker's coordinator pass while steps run).
    func removeLeftTemporaries(keepingOwn: Bool = false) async throws -> Int {
        let temps = try await meta.temporaries()
        guard !temps.isEmpty else { return 0 }
        let me = getpid()
        var removed = 0
        var done: [String] = []
        var named: [String: Set<String>?] = [:]  // table root → keys its log names (nil: unreadable)
        for t in temps {
            if t.owner == me && keepingOwn { continue }
            if t.owner != me && (kill(t.owner, 0) == 0 || errno == EPERM) { continue }
            if let root = t.table {
                if named[root] == nil { named[root] = .some(try? await DeltaDatasetDriver.namedKeys(root, store)) }
                guard let keys = named[root] ?? nil else {
                    logger.warning("kept a file of an interrupted Delta erasure: the table's log cannot be read", metadata: ["table": "\(root)"])
                    continue
                }
                if keys.contains(t.key) { done.append(t.key); continue }
            }
            if try await store.head(t.key) != nil {
                try await store.delete([t.key])
                try? await store.delete([hadoopChecksumKey(t.key)])  // its `.crc`, if a tool wrote one
                removed += 1
                logger.info("removed a file a killed run left", metadata: ["object": "\(t.key)"])
            }
            done.append(t.key)
        }
        try await meta.forgetTemporaries(done)
        return removed
    }

    /// Forgets this process's temporary files that no longer exist (renamed into place or removed).
    /// Files of a Delta erasure stay recorded until a commit adopts them or the next run's cleanup
    /// (which checks the log) has seen them gone.
    func forgetFinishedTemporaries() async throws {
        let me = getpid()
        var gone: [String] = []
        for t in try await meta.temporaries() where t.owner == me && t.table == nil {
            if try await store.head(t.key) == nil { gone.append(t.key) }
        }
        try await meta.forgetTemporaries(gone)
    }
}

/// Object references already known to this process (a reference never changes; the cache is
/// cleared when names are purged).
final class ObjectRefCache: Sendable {
    private let refs = Mutex<[String: [String: Int64]]>([:])

    func lookup(_ dataset: String, _ keys: [String]) -> (found: [String: Int64], missing: [String]) {
        let known = refs.withLock { $0[dataset] ?? [:] }
        var found: [String: Int64] = [:], missing: [String] = []
        for k in keys { if let r = known[k] { found[k] = r } else { missing.append(k) } }
        return (found, missing)
    }

    func store(_ dataset: String, _ got: [String: Int64]) {
        refs.withLock { $0[dataset, default: [:]].merge(got) { _, b in b } }
    }

    func clear() {
        refs.withLock { $0 = [:] }
    }
}

/// The index's postings of the subjects a run just planned (`Executor.run`: read once for the plans),
/// held for the first step of the job it claimed, which runs next in the same run with no index write
/// between: a Delta table's step takes its candidate rows from them instead of reading the index again
/// (`DeltaDatasetDriver.candidateRows`). Taken once (a re-plan after a conflict reads the index), and
/// dropped when the run's job ends; a job resumed by a later run, or a step other than the first, reads.
final class PlannedPostings: Sendable {
    private struct Held {
        var job: String
        var ordinal: Int64
        var byKey: [SubjectKey: [Posting]]
    }
    private let held = Mutex<Held?>(nil)

    /// Holds `byKey` (postings by subject key, as `Lethe.postings(_:nfc:)` returns them) for step `ordinal` of `job`.
    func keep(job: String, ordinal: Int64, _ byKey: [SubjectKey: [Posting]]) {
        held.withLock { $0 = Held(job: job, ordinal: ordinal, byKey: byKey) }
    }

    /// The rows of `keys` in dataset `dataset` by object key, as a `locate(prefixes:dataset:)` of the
    /// keys would give them, when held for this step and holding every key (then let go); else nil.
    func take(_ step: JournalStep, keys: Set<SubjectKey>, dataset: String) -> [String: Set<Int64>]? {
        guard
            let h = held.withLock({ h -> Held? in
                guard let x = h, x.job == step.job, x.ordinal == step.ordinal else { return nil }
                h = nil
                return x
            }), keys.allSatisfy({ h.byKey[$0] != nil })
        else { return nil }
        var out: [String: Set<Int64>] = [:]
        // One pass per 64-bit prefix, as the index is read (two keys of one prefix find the same entries).
        var prefixes = Set<Int64>()
        for k in keys where prefixes.insert(k.prefix64).inserted {
            for p in h.byKey[k, default: []] where p.object.dataset == dataset { out[p.object.key, default: []].formUnion(p.rows) }
        }
        return out
    }

    func clear() { held.withLock { $0 = nil } }
}

/// The plans a run built for the requests it claims (`Executor.planJob`), by request id with the bytes
/// stored on each: the run's verification takes a request's plan from here when the request holds
/// exactly these bytes, instead of decoding them (`ErasurePlan.decode(p.json) == p`: a thousand plans
/// decoded were a fifth of the verification's scope). Replaced by the next plan, dropped when the run's job ends.
final class PlanMemo: Sendable {
    private let held = Mutex<[String: (bytes: [UInt8], plan: ErasurePlan)]>([:])

    func keep(_ plans: [(id: String, bytes: [UInt8], plan: ErasurePlan)]) {
        var byID: [String: (bytes: [UInt8], plan: ErasurePlan)] = [:]
        byID.reserveCapacity(plans.count)
        for p in plans { byID[p.id] = (p.bytes, p.plan) }
        held.withLock { $0 = byID }
    }

    /// `r`'s plan when `r` holds the bytes kept for it; nil otherwise.
    func plan(of r: ErasureRequest) -> ErasurePlan? {
        guard let bytes = r.plan, let kept = held.withLock({ $0[r.id] }), kept.bytes == bytes else { return nil }
        return kept.plan
    }

    func clear() { held.withLock { $0 = [:] } }
}
