import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// A Delta table: its files are reached through its log (live, history, change data), its
/// subject's columns are typed and mapped by its schema, and one journal step erases the
/// subjects from the whole table in one commit, followed by a targeted vacuum. The rest of the
/// driver is in `DeltaDatasetDriver+*.swift` (log, partitions, erase, vacuum, scrub, locate).
struct DeltaDatasetDriver: DatasetDriver {
    let spec: DatasetSpec

    /// The version of the protocol checks `index` applies; a table indexed under older rules is replayed (and checked) again.
    static let checkRules: Int64 = 2

    var formatName: String { "parquet" }
    var hasTransactionLog: Bool { true }
    var erasesInOneCommit: Bool { true }

    /// Partition values come from the log per file (see `scanOptions`), never from folder names.
    func baseOptions(_ subject: FormatOptions) -> FormatOptions { subject }

    func scanOptions(_ lethe: Lethe) async throws -> FormatOptions? { try await scanOptions(lethe, snapshot: nil) }

    /// For a table indexed before, only the files added by the commits since the last version
    /// indexed; else every file any retained version reaches.
    func indexListing(_ lethe: Lethe) async throws -> Lethe.IndexListing {
        func cursor(_ version: Int64, _ o: FormatOptions?, _ partitions: [String: CanonicalType]) -> Lethe.IndexListing.Cursor {
            let fields = o?.subject.fields ?? []
            return (
                spec.name,
                DeltaIndexCursor(
                    version: version, columns: fields.map { $0.components.map { String(decoding: $0, as: UTF8.self) } },
                    partitions: partitions.mapValues(\.deltaName), utc: fields.map { o?.timestampUTC[$0] },
                    checks: Self.checkRules)
            )
        }
        let t = table(lethe)
        if let (version, objects, o, partitions, naming) = try await commitsSince(lethe) {
            var listing = Lethe.IndexListing(objects: objects, options: o, incremental: true, cursor: cursor(version, o, partitions))
            // The commit index follows the cursor; one never built (an index made before it existed) is built
            // now from the whole log, once.
            let stored = DeltaCommitIndex.headerVersion(try await lethe.meta.setting(DeltaCommitIndex.setting(spec.name)))
            let last = try await lethe.meta.cursors.deltaIndex(dataset: spec.name)?.version ?? -1
            if let stored, stored >= last {
                if version > last {
                    listing.commitIndex = (spec.name, DeltaCommitIndex.Update(entries: naming, from: last + 1, through: version, complete: false))
                }
            } else {
                let s = try await t.snapshot()
                let entries = DeltaCommitIndex.entries(try await t.history(of: s), t).compactMapValues { vs in
                    let upTo = vs.filter { $0 <= version }
                    return upTo.isEmpty ? nil : upTo
                }
                listing.commitIndex = (spec.name, DeltaCommitIndex.Update(entries: entries, from: 0, through: version, complete: true))
            }
            return listing
        }
        let s = try await t.snapshot()
        // A table Lethe cannot erase from correctly is refused by name here, at `index`, before
        // anyone files or approves a request for it (`.unsupported`, recorded per dataset).
        try t.checkWritable(s)
        let o = try await scanOptions(lethe, snapshot: s)
        let history = try await t.history(of: s)
        var listing = Lethe.IndexListing(
            objects: try await files(lethe, snapshot: s, history: history).map(\.0), options: o, incremental: false,
            cursor: cursor(s.version, o, try subjectPartitions(s.metadata)))
        listing.commitIndex = (
            spec.name, DeltaCommitIndex.Update(entries: DeltaCommitIndex.entries(history, t), from: 0, through: s.version, complete: true)
        )
        return listing
    }

    /// Every file a retained version reaches, plus the Parquet files under the table that no retained
    /// version names (`unnamed`: an interrupted write, Lethe's or another tool's, left them; they may
    /// hold a subject's rows, so verification reads them too).
    func objects(_ lethe: Lethe) async throws -> DatasetObjects {
        let t = table(lethe)
        let s = try await t.snapshot()
        let listing = try await TableListing(spec.path, lethe.store)
        let named = try await files(lethe, snapshot: s, listing: listing).map(\.0)
        let unnamed = unnamedFiles(known: Set(named.map(\.key)), listing)
        var o = try await scanOptions(lethe, snapshot: s)
        // Partition values of an unnamed file: from its Hive-style folders (the log has none for it).
        Self.applyHivePartitions(to: &o, t, columns: try subjectPartitions(s.metadata), keys: unnamed.map(\.key))
        return DatasetObjects(objects: named + unnamed, options: o, unnamed: Set(unnamed.map(\.key)), hidden: [])
    }

    /// The Parquet files under the table, outside its log and not hidden by name, that are not `known`,
    /// in key order.
    private func unnamedFiles(known: Set<String>, _ listing: TableListing) -> [ObjectInfo] {
        listing.objects.values.filter { o in
            !known.contains(o.key) && Self.isVisibleParquet(o.key, under: listing.folder)
        }.sorted { keyPrecedes($0.key, $1.key) }
    }

    /// Whether the last name of `key` (below `folder`, a prefix of it) is a Parquet file's not hidden
    /// by a leading dot: `x.parquet`, not `.x.parquet` nor `x.parquet.crc`. A key ending in `/` has no
    /// last name. On the bytes: a verification of a 5,000-file table asks it of every file.
    static func isVisibleParquet(_ key: String, under folder: String) -> Bool {
        let u = key.utf8
        let suffix = ".parquet".utf8
        guard u.count >= folder.utf8.count + suffix.count, u.suffix(suffix.count).elementsEqual(suffix) else { return false }
        // The last name starts after the last slash past the folder (or at the folder's end).
        var start = u.index(u.startIndex, offsetBy: folder.utf8.count)
        var i = u.endIndex
        while i > start {
            let j = u.index(before: i)
            if u[j] == UInt8(ascii: "/") {
                start = i
                break
            }
            i = j
        }
        return start < u.endIndex && u[start] != UInt8(ascii: ".")
    }

    func roles(_ lethe: Lethe) async throws -> [String: DeltaFileRole] {
        var out: [String: DeltaFileRole] = [:]
        for (o, r) in try await files(lethe) { out[o.key] = r }
        return out
    }

    func logResidue(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]]? {
        try await logFilesNaming(subjects, lethe)
    }

    /// From the table's schema: a Delta `timestamp` holds microseconds, whatever its files store (INT96 is cut to them).
    func subjectColumnTypes(_ subject: SubjectSpec, _ lethe: Lethe) async throws -> [Int: CanonicalType] {
        subjectTypes(try await table(lethe).snapshot().metadata)
    }

    /// One step for the whole table: one commit for every live file holding any of these subjects.
    /// Where the index finds none of them, a quarantined file still gets a step of its own, as a
    /// plain dataset's would (it cannot be read: its requests fail with the reason).
    func planSteps(
        holders: [String: [ErasureRequest]]?, inScope: [ErasureRequest],
        quarantined: [IndexedObject]
    ) -> [(key: String, requests: [ErasureRequest])] {
        guard let held = holders else {
            return ObjectDatasetDriver(spec: spec).planSteps(holders: nil, inScope: inScope, quarantined: quarantined)
        }
        var byID: [String: ErasureRequest] = [:]
        for r in held.values.joined() { byID[r.id] = r }
        return [(JournalStep.deltaTableKey, byID.keys.sorted().map { byID[$0]! })]
    }
}
