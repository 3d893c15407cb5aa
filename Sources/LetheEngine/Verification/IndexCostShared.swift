import LetheCore
import LetheStorage
import LetheCatalog

/// What the index-cost verifications of object datasets and of Delta tables share: an unreadable
/// object's record, index entries written in batches, and object keys that name the subject.
extension Verifier {
    /// An object that could not be read: a problem of the verification, and quarantined in the index.
    func recordUnreadable(
        _ d: DatasetSpec, _ o: ObjectInfo, _ issue: (text: String, code: String), quarantine: Bool, dryRun: Bool,
        into findings: inout Findings
    ) async throws {
        findings.unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: issue.text))
        guard quarantine && !dryRun else { return }
        _ = try await state.quarantine(
            IndexedObject(
                dataset: d.name, key: o.key, size: o.size, modifiedNanos: o.modifiedNanos, version: o.version,
                records: 0, status: .quarantined, issue: issue.text, issueCode: issue.code, indexedAt: now()))
    }

    /// Index entries collected by reads, written 256 objects at a time (nothing in a dry run).
    struct EntryBatch {
        let dataset: String
        let dryRun: Bool
        private var entries: [(IndexedObject, [Int64: [Int64]])] = []

        init(dataset: String, dryRun: Bool) {
            self.dataset = dataset
            self.dryRun = dryRun
        }

        mutating func add(_ o: ObjectInfo, records: Int64, postings: [Int64: [Int64]], at: Int64, _ state: any StateStore) async throws {
            entries.append(
                (
                    IndexedObject(
                        dataset: dataset, key: o.key, size: o.size, modifiedNanos: o.modifiedNanos, version: o.version,
                        records: records, status: .indexed, indexedAt: at), postings
                ))
            if entries.count >= 256 { try await flush(state) }
        }

        mutating func flush(_ state: any StateStore) async throws {
            if !dryRun && !entries.isEmpty { _ = try await state.putIndexedObjects(entries) }
            entries.removeAll(keepingCapacity: true)
        }
    }

    /// Object keys that name a subject of the batch (e.g. a `user_id=…/` folder): residue too.
    func keysNamingSubjects(_ d: DatasetSpec, _ objects: [ObjectInfo], _ batch: Batch, into findings: inout Findings) {
        let naming = Residue.KeyNaming(batch.raws, fields: d.subject?.fields)
        for o in objects {
            for id in naming.subjects(namedBy: o.key) {
                findings.found[lake.subjectKey(of: batch.byID[id]!, in: d, batch.nfc), default: []]
                    .append(.init(dataset: d.name, object: o.key, rows: 0, issue: "the object's key names the subject"))
            }
        }
    }

    /// The listed objects sorted against the index: read again (`mustRead`: the run wrote them, …),
    /// unchanged (the index has exactly that version, indexed cleanly: proven by its postings),
    /// quarantined by the index at that version (a problem, never clean), or new or changed behind
    /// the index (read now: the read is their entry).
    func classify(
        _ d: DatasetSpec, _ objects: [ObjectInfo], known: [String: IndexedObject], mustRead: (ObjectInfo) -> Bool,
        into findings: inout Findings
    ) -> (unchanged: [String: ObjectInfo], toRead: [ObjectInfo], reread: Set<String>) {
        var unchanged: [String: ObjectInfo] = [:]
        var toRead: [ObjectInfo] = []
        var reread = Set<String>()
        for o in objects {
            let k = known[o.key]
            if mustRead(o) {
                toRead.append(o)
                reread.insert(o.key)
            } else if let k, k.version == o.version, k.status == .indexed {
                unchanged[o.key] = o
            } else if let k, k.version == o.version, k.status == .quarantined {
                findings.unreadable[d.name, default: []].append(
                    .init(dataset: d.name, object: o.key, rows: 0, issue: "quarantined by the index: \(k.issue ?? "unreadable")"))
            } else {
                toRead.append(o)  // new, changed or never indexed: indexed now
            }
        }
        return (unchanged, toRead, reread)
    }
}
