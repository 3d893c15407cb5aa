import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// What Lethe wrote to a Delta table since its last per-run verification, which that verification
/// reads again whatever the index says (`DeltaIndexCost.swift`): the data and change data files its
/// commits added or its vacuum rewrote (by store version, never by key: a key may name a subject's
/// partition), the log files it scrubbed or rewrote, and the first commit it wrote (every commit
/// from there on is checked). Kept in the setting `delta.<dataset>.written`, written in the
/// transaction that records the commit or the vacuum.
struct DeltaWritten: Sendable, Equatable {
    /// Store versions of the files written.
    var objects: Set<String> = []
    /// Log files (names under `_delta_log`) scrubbed or rewritten.
    var log: Set<String> = []
    /// The first commit version written since the last verification.
    var since: Int64?

    var isEmpty: Bool { objects.isEmpty && log.isEmpty && since == nil }

    static func setting(_ dataset: String) -> String { "delta.\(dataset).written" }

    init() {}

    init(text: String?) {
        guard let text, let j = try? JSONValue.parse(Array(text.utf8)) else { return }
        objects = Set((j["objects"]?.array ?? []).compactMap(\.string))
        log = Set((j["log"]?.array ?? []).compactMap(\.string))
        since = j["since"]?.int
    }

    var text: String {
        var o: [String: JSONValue] = [
            "objects": .array(objects.sorted().map(JSONValue.string)), "log": .array(log.sorted().map(JSONValue.string)),
        ]
        if let since { o["since"] = .int(since) }
        return JSONValue.object(o).text
    }

    /// Adds what `other` names to the record.
    mutating func merge(_ other: DeltaWritten) {
        objects.formUnion(other.objects)
        log.formUnion(other.log)
        if let s = other.since { since = min(since ?? s, s) }
    }

    /// Merges `w` into the record of `dataset` inside a state transaction.
    static func note(_ w: DeltaWritten, dataset: String, _ tx: any StateTransaction) throws {
        guard !w.isEmpty else { return }
        var cur = DeltaWritten(text: try tx.cursors.setting(setting(dataset)))
        cur.merge(w)
        try tx.cursors.setSetting(setting(dataset), cur.text)
    }
}

extension DeltaDatasetDriver {
    /// What a per-run verification at index cost reads of a Delta table (`Verifier.verifyDeltaAtIndexCost`):
    /// every file a retained version reaches (live, history, change data) and the Parquet files no version
    /// names, from one snapshot replay and one paged listing of the table; whether the index was made
    /// under the table's subject columns as they are now; and the log files to check for the subject.
    struct VerificationSet: Sendable {
        var objects: [ObjectInfo]
        var unnamed: Set<String>
        var options: FormatOptions?
        /// The index's cursor matches the table now (same protocol checks, subject columns and
        /// partition columns): its entries can vouch for the files it lists unchanged.
        var indexVouches: Bool
        /// Names under `_delta_log` to check for the subject: the commits from the first one Lethe
        /// wrote since the last verification (else the first one the index has not read), checkpoints,
        /// checksums and compactions from that version on, and the log files Lethe scrubbed.
        var logNames: [String]
        var written: DeltaWritten
        var snapshot: Snapshot
        /// The index's entries of the table, read once for the set and its classification.
        var indexed: [IndexedObject]
    }

    func verificationSet(_ lethe: Lethe) async throws -> VerificationSet {
        let t = table(lethe)
        let s = try await Trace.span("verify delta: snapshot") { try await t.snapshot() }
        try t.checkReadable(s)
        var o = try await scanOptions(lethe, snapshot: s)
        let partitions = try subjectPartitions(s.metadata)
        let cursor = try await lethe.meta.cursors.deltaIndex(dataset: spec.name)
        let columns = (o?.subject.fields ?? []).map { $0.components.map { String(decoding: $0, as: UTF8.self) } }
        let vouches =
            cursor.map { c in
                c.checks == Self.checkRules && c.columns == columns && c.partitions == partitions.mapValues(\.deltaName)
                    && c.version <= s.version
            } ?? false
        // Without the index's word the caller scans the table whole (`scanDataset`): nothing to list here.
        guard vouches else {
            return VerificationSet(
                objects: [], unnamed: [], options: o, indexVouches: false, logNames: [], written: DeltaWritten(), snapshot: s, indexed: [])
        }
        // What Lethe wrote to the table and its log, read before the log is listed (a log file
        // recorded here is then in the listing too).
        let written = DeltaWritten(text: try await lethe.meta.setting(DeltaWritten.setting(spec.name)))
        // The table's listing, its index entries and the log's listing, side by side (three waits on
        // the store and the state; a table of 5,000 files: ~17, 9 and 9 ms one after the other).
        let path = spec.path, name = spec.name
        async let listed = Trace.span("verify delta: table listing") { try await TableListing(path, lethe.store) }
        async let entries = Trace.span("verify delta: index entries") { try await lethe.meta.objects(dataset: name) }
        async let logListed = Trace.span("verify delta: list log") { try await t.listLog() }
        let listing = try await listed, indexed = try await entries
        let (named, unnamed) = try await Trace.span("verify delta: named files") {
            try await namedAndUnnamed(t, s, listing: listing, indexed: indexed, lethe)
        }
        Self.applyHivePartitions(to: &o, t, columns: partitions, keys: unnamed.map(\.key))
        let from = written.since ?? ((cursor?.version ?? -1) + 1)
        let log = try await logListed
        var names = written.log.isEmpty ? [] : written.log.intersection(log.logFiles)  // `logFiles` names every commit: built only when needed
        for v in log.versions where v >= from { names.insert(DeltaTable.commitName(v)) }
        let newCheckpoints = log.checkpoints.filter { $0.version >= from }
        for c in newCheckpoints { names.formUnion(c.names) }
        if !newCheckpoints.isEmpty {
            names.formUnion(log.sidecars)
            if log.hasLastCheckpoint { names.insert("_last_checkpoint") }
        }
        for (v, n) in log.checksums where v >= from { names.insert(n) }
        for n in log.compactions {
            // `x.y.compacted.json`: commits x through y.
            let parts = n.split(separator: ".")
            if parts.count == 4, let y = Int64(parts[1]), y >= from { names.insert(n) }
        }
        // A table partitioned by a subject column: the partition scrub rewrites commits of any age
        // (the subject's partition names), so the whole log is checked.
        if !partitions.isEmpty { names = Set(log.logFiles) }
        return VerificationSet(
            objects: named + unnamed, unnamed: Set(unnamed.map(\.key)), options: o, indexVouches: vouches,
            logNames: names.sorted(), written: written, snapshot: s, indexed: indexed)
    }

    /// The files of the verification set from the table's listing, without reading the log's history:
    /// `named`, every listed file the index holds or the snapshot names (live, tombstones, change data
    /// of the replayed commits, files the replayed commits name), and `unnamed`, every other listed
    /// Parquet file (not hidden by name). Each listed file is thus either proven by the index at its
    /// listed store version or read: a file the log reaches only through commits from before the
    /// snapshot's checkpoint that the index does not hold is read as unnamed (every time, never
    /// indexed) instead of from the log. Named files outside the table's folder (absolute paths) are
    /// looked up alone; a live file the store lacks is an error naming the table, version and file.
    func namedAndUnnamed(_ t: DeltaTable, _ s: Snapshot, listing: TableListing, indexed: [IndexedObject], _ lethe: Lethe) async throws
        -> (named: [ObjectInfo], unnamed: [ObjectInfo])
    {
        var named: [String: ObjectInfo] = [:]
        var outside = Set<String>()
        func note(_ key: String) {
            if let o = listing.objects[key] {
                named[key] = o
                return
            }
            switch listing.covers(key) {
            case .some(true): named[key] = listing.objects[key]
            case .some(false): break
            case .none: outside.insert(key)
            }
        }
        var missing: [String] = []  // live files the listing lacks (the first by name is reported)
        for path in s.files.keys {
            let key = t.key(forLogPath: path)
            if listing.objects[key] == nil, listing.covers(key) == false { missing.append(path) }
            note(key)
        }
        if let path = missing.min(by: keyPrecedes) {
            throw LetheError(.corrupt, "version \(s.version) names data file \(path), which the store lacks", at: spec.path)
        }
        for p in s.tombstones.keys { note(t.key(forLogPath: p)) }
        for c in s.cdcFiles { note(t.key(forLogPath: c.path)) }
        for p in s.namedIn.keys { note(t.key(forLogPath: p)) }
        for x in indexed { note(x.key) }
        for key in outside.sorted() {
            if let i = try await lethe.store.head(key) {
                named[key] = i
            } else if s.files.keys.contains(where: { t.key(forLogPath: $0) == key }) {
                throw LetheError(.corrupt, "version \(s.version) names data file \(key), which the store lacks", at: spec.path)
            }
        }
        let unnamed = listing.objects.values.filter { o in
            named[o.key] == nil && Self.isVisibleParquet(o.key, under: listing.folder)
        }.sorted { keyPrecedes($0.key, $1.key) }
        let sorted = named.values.sorted { keyPrecedes($0.key, $1.key) }
        return (sorted, unnamed)
    }

    /// The log files among `names` that hold a subject's value, field-aware (see `logFilesNaming`).
    func logFilesNaming(_ subjects: [SubjectID], names: [String], snapshot s: Snapshot, _ lethe: Lethe) async throws
        -> [SubjectID: [LogResidue]]
    {
        guard !names.isEmpty else { return [:] }
        let t = table(lethe)
        let subject = try await subjectValues(s, subjects, lethe)
        var byName: [String: [SubjectID]] = [:]
        for id in subjects { if let parts = id.logParts { byName[SubjectValues.name(parts), default: []].append(id) } }
        var out: [SubjectID: [LogResidue]] = [:]
        for r in try await t.logResidue(subject, names: names) {
            for id in Set(r.values.flatMap { byName[$0] ?? [] }) { out[id, default: []].append(r) }
        }
        return out
    }

    /// After a verification read them: the record keeps only the files it could not read.
    func forgetWritten(keeping unread: Set<String>, _ lethe: Lethe) async throws {
        let name = DeltaWritten.setting(spec.name)
        try await lethe.meta.transaction("cannot save setting \(name)") { tx in
            var w = DeltaWritten(text: try tx.cursors.setting(name))
            w.objects.formIntersection(unread)
            w.log = []
            w.since = nil
            if w.isEmpty { try tx.cursors.removeSetting(name) } else { try tx.cursors.setSetting(name, w.text) }
        }
    }

    /// The store versions of the files at these log paths (those the store still has).
    func storeVersions(_ paths: [String], _ lethe: Lethe) async throws -> Set<String> {
        Set(try await storeVersionsByPath(paths, lethe).values)
    }

    /// The store versions of the files at these log paths (those the store still has), by path.
    func storeVersionsByPath(_ paths: [String], _ lethe: Lethe) async throws -> [String: String] {
        let t = table(lethe)
        var out: [String: String] = [:]
        for p in paths { if let i = try await lethe.store.head(t.key(forLogPath: p)) { out[p] = i.version } }
        return out
    }

    /// What the sweep found of these requests in this table (`ErasureRequest.sweepFindings`): the
    /// log files (names under `_delta_log`) and the other objects (keys), which the next run's
    /// vacuum scrubs and its verification reads again.
    func sweepFindings(_ requests: [ErasureRequest]) -> (log: Set<String>, objects: Set<String>) {
        let logFolder = (spec.path.isEmpty ? "" : spec.path + "/") + "_delta_log/"
        var log = Set<String>(), objects = Set<String>()
        for r in requests {
            guard let bytes = r.sweepFindings, let j = try? JSONValue.parse(bytes) else { continue }
            for f in j.array ?? [] where f["dataset"]?.string == spec.name {
                guard let key = f["object"]?.string else { continue }
                if f["kind"]?.string == "log" {
                    if key.hasPrefix(logFolder) { log.insert(String(key.dropFirst(logFolder.count))) }
                } else if f["kind"]?.string != "mention" {
                    objects.insert(key)
                }
            }
        }
        return (log, objects)
    }
}
