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
        for d in config.datasets where scope.wanted.contains(d.name) && !lake.driver(for: d).hasTransactionLog {
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
        report.noncurrentVersionsExamined = examined
        report.noncurrentVersionsDeleted = deleted
    }
}
