import DeltaLake
import Foundation
import LetheCatalog
import LetheCore
import LetheFormats
import LetheStorage

/// Versioned buckets: an object rewritten or removed by an erasure stays readable as a noncurrent
/// version (the hole AWS's own Find-and-Forget leaves open). On a store that keeps versions, a
/// run deletes the noncurrent versions of the objects it rewrote that hold one of the job's
/// subjects, and the verification reads them (issue 13).
extension Lethe {
    /// The store's versions capability when it keeps versions now (or did: a suspended bucket
    /// keeps those it has); nil otherwise.
    func keptVersions() async throws -> (any VersionedObjectStore)? {
        guard let versioned = store as? any VersionedObjectStore, try await versioned.keepsVersions() else { return nil }
        return versioned
    }

    /// What reading the noncurrent versions of some objects found.
    struct NoncurrentScan: Sendable {
        var examined = 0
        /// The versions holding a subject, with the subjects' keys and their rows.
        var holding: [(version: ObjectVersion, keys: [SubjectKey: Int64])] = []
        /// Versions that could not be read, with the reason.
        var unreadable: [(version: ObjectVersion, reason: String)] = []
    }

    /// Reads every noncurrent version of `keys` (dataset `d`) with the dataset's format and keys,
    /// noting those holding one of `subjects`. Delete markers hold nothing.
    func scanNoncurrent(
        _ d: DatasetSpec, keys: Set<String>, subjects: Set<SubjectKey>, in versioned: any VersionedObjectStore
    ) async throws -> NoncurrentScan {
        var out = NoncurrentScan()
        guard !keys.isEmpty, !subjects.isEmpty, let options = try await scanOptions(for: d) else { return out }
        let format = try format(for: d)
        let keyer = keyer(for: d)
        for key in keys.sorted() {
            for v in try await versioned.versions(prefix: key) where v.key == key && !v.isLatest && !v.isDeleteMarker {
                out.examined += 1
                let pinned = NoncurrentVersionStore(base: versioned, version: v)
                var found: [SubjectKey: Int64] = [:]
                do {
                    _ = try await format.scan(pinned.info, in: pinned, options: options, keyer: keyer) { _, k in
                        if subjects.contains(k) { found[k, default: 0] += 1 }
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    out.unreadable.append((v, DatasetIssue.oneLine(error: error)))
                    continue
                }
                if !found.isEmpty { out.holding.append((v, found)) }
            }
        }
        return out
    }

    /// Deletes the noncurrent versions of `keys` holding one of `subjects`; returns what was read
    /// and deleted. Nothing to do on a store that keeps no versions.
    func purgeNoncurrent(_ d: DatasetSpec, keys: Set<String>, subjects: Set<SubjectKey>) async throws -> NoncurrentScan? {
        guard let versioned = try await keptVersions() else { return nil }
        let scan = try await scanNoncurrent(d, keys: keys, subjects: subjects, in: versioned)
        if !scan.holding.isEmpty {
            try await versioned.deleteVersions(scan.holding.map { ($0.version.key, $0.version.versionID) })
        }
        return scan
    }
}

/// One noncurrent version of an object, read as the object itself: `head` and `read` answer for
/// that version (by its id); nothing can be listed or written through it.
struct NoncurrentVersionStore: ObjectStore {
    let base: any VersionedObjectStore
    let version: ObjectVersion

    /// The version as an object (its version string is the version id, so reads are pinned to it).
    var info: ObjectInfo {
        ObjectInfo(key: version.key, size: version.size, modifiedNanos: version.modifiedNanos, version: version.versionID)
    }

    var location: String { base.location + " (version \(version.versionID) of \(version.key))" }

    func list(prefix: String, startAfter: String?) -> ObjectListing { .empty }

    func head(_ key: String) async throws -> ObjectInfo? { key == version.key ? info : nil }

    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        guard key == version.key, ifVersion == nil || ifVersion == version.versionID else {
            throw LetheError(.notFound, "no such object in version \(version.versionID)", at: key)
        }
        return try await base.read(key, versionID: version.versionID, range: range)
    }

    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        throw LetheError(.unsupported, "a noncurrent version cannot be written", at: key)
    }

    func delete(_ keys: [String]) async throws {
        throw LetheError(.unsupported, "a noncurrent version cannot be deleted through the object store", at: version.key)
    }
}

extension Verifier {
    /// On a store that keeps versions: the noncurrent versions of the wanted object datasets are
    /// read for the batch's subjects. A run's own verification (`rewritten` given) reads those of
    /// the objects it rewrote; `lethe verify` reads every noncurrent version of the datasets. A
    /// version holding a subject is residue; one that cannot be read leaves its dataset unverified.
    func scanNoncurrentVersions(
        _ batch: Batch, scope: Scope, rewritten: [String: Set<String>]?, into findings: inout Findings
    ) async throws {
        guard let versioned = try await lake.keptVersions() else { return }
        for d in config.datasets where scope.wanted.contains(d.name) {
            // A Delta table: every noncurrent version of it, data and log (a run's too: its vacuum
            // and scrub leave versions of files it did not name as rewritten).
            if lake.driver(for: d).hasTransactionLog {
                try await scanNoncurrentTableVersions(d, batch, in: versioned, into: &findings)
                continue
            }
            let keys: Set<String>
            if let rewritten {
                keys = rewritten[d.name] ?? []
            } else {
                keys = Set(try await versioned.versions(prefix: d.path).filter { !$0.isLatest && !$0.isDeleteMarker }.map(\.key))
            }
            var subjects: [SubjectKey: [String]] = [:]
            for r in batch.requests { subjects[lake.subjectKey(of: r, in: d, batch.nfc), default: []].append(r.id) }
            let scan = try await lake.scanNoncurrent(d, keys: keys, subjects: Set(subjects.keys), in: versioned)
            findings.versionsExamined[d.name, default: 0] += scan.examined
            for h in scan.holding {
                for (k, n) in h.keys {
                    findings.found[k, default: []].append(
                        .init(dataset: d.name, object: h.version.key, rows: n, issue: "a noncurrent version (\(h.version.versionID)) holds \(n) rows"))
                }
            }
            for u in scan.unreadable {
                findings.unreadable[d.name, default: []].append(
                    .init(dataset: d.name, object: u.version.key, rows: 0, issue: "noncurrent version \(u.version.versionID): \(u.reason)"))
            }
        }
    }
}

extension Executor {
    /// On a store that keeps versions, the noncurrent versions of the objects the job rewrote that
    /// hold one of its subjects are deleted for good (audited as `versions_deleted`, objects by
    /// reference), before the verification reads what is left.
    func purgeNoncurrentVersions(job: String, steps: [JournalStep], report: inout RunReport) async throws {
        guard let versioned = try await lake.keptVersions() else { return }
        var keys: [String: Set<String>] = [:]
        var subjects: [String: Set<SubjectKey>] = [:]
        var requests: [String: Set<String>] = [:]
        for s in steps where s.kind == .object && s.state == .done {
            keys[s.dataset, default: []].insert(s.objectKey)
            subjects[s.dataset, default: []].formUnion(s.subjectKeys)
            requests[s.dataset, default: []].formUnion(s.requestIDs)
        }
        var examined = 0, deleted = 0
        for (name, ks) in keys.sorted(by: { $0.key < $1.key }) {
            guard let d = config.dataset(named: name) else { continue }
            let scan = try await lake.scanNoncurrent(d, keys: ks, subjects: subjects[name] ?? [], in: versioned)
            examined += scan.examined
            for u in scan.unreadable { report.problems.append("\(name): \(u.version.key), noncurrent version \(u.version.versionID): \(u.reason)") }
            guard !scan.holding.isEmpty else { continue }
            try await versioned.deleteVersions(scan.holding.map { ($0.version.key, $0.version.versionID) })
            deleted += scan.holding.count
            let details: [String: JSONValue] = [
                "dataset": .string(name), "job": .string(job),
                "objects": try await lake.refsJSON(name, Array(Set(scan.holding.map(\.version.key))).sorted()),
                "versions": .int(Int64(scan.holding.count)),
                "requests": .array((requests[name] ?? []).sorted().map(JSONValue.string)),
            ]
            try await lake.commit("cannot audit the noncurrent versions deleted in dataset \(name)", audit: [AuditNote(.versionsDeleted, details)]) { _ in }
        }
        // Added to what the job's Delta steps read and deleted (`DeltaDatasetDriver.purgeNoncurrentVersions`).
        report.noncurrentVersionsExamined = (report.noncurrentVersionsExamined ?? 0) + examined
        report.noncurrentVersionsDeleted = (report.noncurrentVersionsDeleted ?? 0) + deleted
    }
}

/// Versioned buckets under a Delta table: the files a vacuum deletes, the change data it rewrites
/// in place and the log files it (or the partition scrub) rewrites or removes stay readable as
/// noncurrent versions. After the erasure, every version of the files Lethe deleted goes, and so
/// does every other noncurrent version of the table that holds a subject (data and change data
/// files read as records) or names one (log files, field-aware as `LogResidue`); the
/// verification reads the table's noncurrent versions again.
extension DeltaDatasetDriver {
    /// What reading the noncurrent versions of the table found; `all`: the versions of `deleted`
    /// (keys Lethe deleted: every version of them holds what was erased), not read.
    struct NoncurrentTableScan: Sendable {
        var scan = Lethe.NoncurrentScan()
        var all: [ObjectVersion] = []
        /// Log versions naming a subject, with the fields that do.
        var logFields: [ObjectVersion: [String]] = [:]
    }

    /// Reads every noncurrent version of the table (delete markers hold nothing) for `subjects`
    /// (subject key → raw ids, known or not): data and change data files (`.parquet` outside the
    /// log, not hidden) as records under the table's options, log files for the raw ids' values.
    /// Other files (deletion vectors, checksum sidecars) are not read. The versions of `deleted`
    /// are listed in `all` without being read.
    func scanNoncurrent(
        subjects: [SubjectKey: [SubjectID]], deleted: Set<String>, in versioned: any VersionedObjectStore, _ lethe: Lethe
    ) async throws -> NoncurrentTableScan {
        var out = NoncurrentTableScan()
        let logFolder = (spec.path.isEmpty ? "" : spec.path + "/") + "_delta_log/"
        var data: [ObjectVersion] = [], log: [(version: ObjectVersion, name: String)] = []
        for v in try await versioned.versions(prefix: spec.path) where !v.isLatest && !v.isDeleteMarker {
            if deleted.contains(v.key) {
                out.all.append(v)
            } else if v.key.hasPrefix(logFolder) {
                let name = String(v.key.dropFirst(logFolder.count))
                if DeltaLogListing.holdsActions(name) { log.append((v, name)) }
            } else if Self.isDataFile(v.key, below: spec.path) {
                data.append(v)
            }
        }
        guard !subjects.isEmpty, !data.isEmpty || !log.isEmpty else { return out }
        let t = table(lethe)
        let s = try await t.snapshot()
        let keys = Set(subjects.keys)
        if !data.isEmpty {
            var options = try await scanOptions(lethe, snapshot: s)
            Self.applyHivePartitions(to: &options, t, columns: try subjectPartitions(s.metadata), keys: Array(Set(data.map(\.key))))
            if let options {
                let format = try lethe.format(for: spec)
                let keyer = lethe.keyer(for: spec)
                for v in data {
                    out.scan.examined += 1
                    let pinned = NoncurrentVersionStore(base: versioned, version: v)
                    var found: [SubjectKey: Int64] = [:]
                    do {
                        _ = try await format.scan(pinned.info, in: pinned, options: options, keyer: keyer) { _, k in
                            if keys.contains(k) { found[k, default: 0] += 1 }
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        out.scan.unreadable.append((v, DatasetIssue.oneLine(error: error)))
                        continue
                    }
                    if !found.isEmpty { out.scan.holding.append((v, found)) }
                }
            }
        }
        let raws = Array(Set(subjects.values.joined()))
        if !log.isEmpty, !raws.isEmpty {
            let values = try await subjectValues(s, raws, lethe)
            var keysOf: [String: Set<SubjectKey>] = [:]  // a subject's value in the log → its keys
            for (k, ids) in subjects {
                for id in ids { if let parts = id.logParts { keysOf[SubjectValues.name(parts), default: []].insert(k) } }
            }
            for (v, name) in log {
                out.scan.examined += 1
                let pinned = DeltaTable(store: NoncurrentVersionStore(base: versioned, version: v), root: spec.path)
                let residue: [LogResidue]
                do {
                    residue = try await pinned.logResidue(values, names: [name])
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    out.scan.unreadable.append((v, DatasetIssue.oneLine(error: error)))
                    continue
                }
                var found: [SubjectKey: Int64] = [:]
                for r in residue { for value in r.values { for k in keysOf[value] ?? [] { found[k] = 0 } } }
                if !found.isEmpty {
                    out.scan.holding.append((v, found))
                    out.logFields[v] = residue.flatMap(\.fields)
                }
            }
        }
        return out
    }

    /// A data or change data file of the table: Parquet, outside the log, no part of its path hidden.
    static func isDataFile(_ key: String, below root: String) -> Bool {
        let rel = root.isEmpty ? Substring(key) : key.dropFirst(root.count + 1)
        guard key.hasSuffix(".parquet"), !rel.hasPrefix("_delta_log/") else { return false }
        return !rel.split(separator: "/").contains { ($0.hasPrefix("_") && $0 != "_change_data") || $0.hasPrefix(".") }
    }

    /// After an erasure's vacuum and scrub (or `lethe vacuum`): on a store that keeps versions,
    /// every version of the files they deleted and the table's other noncurrent versions holding
    /// or naming one of the requests' subjects are deleted for good, audited as `versions_deleted`
    /// (objects by reference). Returns what was read and deleted (nil on a store without
    /// versions); versions that could not be read are returned as problems, and stay.
    func purgeNoncurrentVersions(
        requestIDs: [String], keys: Set<SubjectKey>, deleted: Set<String>, job: String?, _ lethe: Lethe
    ) async throws -> (examined: Int, deleted: Int, problems: [String])? {
        guard let versioned = try await lethe.keptVersions() else { return nil }
        var subjects: [SubjectKey: [SubjectID]] = Dictionary(uniqueKeysWithValues: keys.map { ($0, []) })
        for r in try await lethe.meta.requests(ids: requestIDs) {
            let k = lethe.subjectKey(of: r, in: spec, lethe.nfcKeys([r]))
            guard keys.contains(k) else { continue }
            if let sealed = r.sealedSubject { subjects[k, default: []].append(try lethe.secrets.unseal(sealed, requestID: r.id)) }
        }
        let found = try await scanNoncurrent(subjects: subjects, deleted: deleted, in: versioned, lethe)
        let doomed = found.all + found.scan.holding.map(\.version)
        let problems = found.scan.unreadable.map { "\(spec.name): \($0.version.key), noncurrent version \($0.version.versionID): \($0.reason)" }
        guard !doomed.isEmpty else { return (found.scan.examined, 0, problems) }
        try await versioned.deleteVersions(doomed.map { ($0.key, $0.versionID) })
        var details: [String: JSONValue] = [
            "dataset": .string(spec.name),
            "objects": try await lethe.refsJSON(spec.name, Array(Set(doomed.map(\.key))).sorted()),
            "versions": .int(Int64(doomed.count)),
            "requests": .array(requestIDs.sorted().map(JSONValue.string)),
        ]
        if let job { details["job"] = .string(job) }
        try await lethe.commit(
            "cannot audit the noncurrent versions deleted in dataset \(spec.name)", audit: [AuditNote(.versionsDeleted, details)]
        ) { _ in }
        return (found.scan.examined, doomed.count, problems)
    }
}

extension Verifier {
    /// The noncurrent versions of a Delta table, read for the batch's subjects (see
    /// `DeltaDatasetDriver.scanNoncurrent`): a version holding or naming a subject is residue; one
    /// that cannot be read leaves the dataset unverified.
    func scanNoncurrentTableVersions(
        _ d: DatasetSpec, _ batch: Batch, in versioned: any VersionedObjectStore, into findings: inout Findings
    ) async throws {
        var subjects: [SubjectKey: [SubjectID]] = [:]
        for r in batch.requests {
            subjects[lake.subjectKey(of: r, in: d, batch.nfc), default: []] += batch.raws[r.id].map { [$0] } ?? []
        }
        let found = try await DeltaDatasetDriver(spec: d).scanNoncurrent(subjects: subjects, deleted: [], in: versioned, lake)
        findings.versionsExamined[d.name, default: 0] += found.scan.examined
        for h in found.scan.holding {
            let fields = found.logFields[h.version].map { Set($0).sorted().joined(separator: ", ") }
            for (k, n) in h.keys {
                let what = fields.map { "of the log names the subject (\($0))" } ?? "holds \(n) rows"
                findings.found[k, default: []].append(
                    .init(dataset: d.name, object: h.version.key, rows: n, issue: "a noncurrent version (\(h.version.versionID)) \(what)"))
            }
        }
        for u in found.scan.unreadable {
            findings.unreadable[d.name, default: []].append(
                .init(dataset: d.name, object: u.version.key, rows: 0, issue: "noncurrent version \(u.version.versionID): \(u.reason)"))
        }
    }
}
