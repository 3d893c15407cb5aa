import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// The scanning half of `lethe sweep`: one pass over every object of the datasets in scope, on a
/// bounded task group, for every request at once, independent of the index.
///
/// - JSON Lines and CSV (plain or gzip, through the codec): one multi-needle search (`NeedleSet`,
///   whole tokens) of the decoded bytes for the raw ids; an object with a hit (or any object, for
///   requests whose id is too short to search, keyed-only requests and `normalize: nfc` datasets)
///   is then read as records with the subject keys: a record whose subject field is the subject is a
///   `record`; a raw id found only elsewhere in the object (another subject's `ref.user.id`) is a `mention`.
/// - Parquet and Delta files (live, history, change data, files no version names): the subject
///   columns read as values and keyed (numbers in binary columns included); the raw ids searched in
///   every decoded BYTE_ARRAY value (`mention` where no record of the subject is).
/// - Every object key (`key`), hidden files (`hidden`, byte search), the Delta log (`log`, field-aware,
///   every commit, checkpoint, `.crc` and `_last_checkpoint`), and Lethe's state folder (`state`).
struct SweepScan: Sendable {
    let lake: Lethe

    /// A request in the sweep, with its raw id when still held (nil: keyed-only).
    struct Target: Sendable {
        var request: ErasureRequest
        var raw: SubjectID?
    }

    struct Result: Sendable {
        /// Findings per request id (records, mentions, keys, hidden files, log files, state files).
        var found: [String: [SweepReport.Found]] = [:]
        /// What could not be read (applies to every request of the dataset).
        var unreadable: [SweepReport.Found] = []
        /// Objects holding records of a request, by dataset (they are re-indexed so the next run plans them).
        var recordObjects: [String: Set<String>] = [:]
        var objects = 0
        var bytes: Int64 = 0
        var workers = 1
    }

    /// What one object task found.
    private struct ObjectHits: Sendable {
        var key: String
        var bytes: Int64
        /// Rows per request id whose subject field is the subject.
        var records: [String: Int64] = [:]
        /// Request ids whose raw id occurs in the object's bytes.
        var mentioned: Set<String> = []
        /// Requests whose value a dictionary entry no row references holds (`ScanSummary.unreferenced`).
        var unreferenced: Set<String> = []
        var unreadable: String?
    }

    /// Sweeps `datasets` (and Lethe's state when `state`) for `targets`.
    func run(_ targets: [Target], datasets: [DatasetSpec], state: Bool, events: EngineEvents?) async throws -> Result {
        var result = Result()
        result.workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard !targets.isEmpty else { return result }
        let temporaries = try await lake.knownTemporaries()
        let nfc = lake.nfcKeys(targets.map(\.request))
        for d in datasets {
            try Task.checkCancellation()
            let (objects, bytes) = (result.objects, result.bytes)
            try await sweepDataset(d, targets, nfc: nfc, temporaries: temporaries, workers: result.workers, into: &result)
            events?(.sweepDataset(dataset: d.name, objects: result.objects - objects, bytes: result.bytes - bytes))
        }
        if state { try sweepState(targets, into: &result) }
        return result
    }

    private func sweepDataset(
        _ d: DatasetSpec, _ targets: [Target], nfc: [String: SubjectKey], temporaries: Set<String>, workers: Int,
        into result: inout Result
    ) async throws {
        let f: any RecordFormat
        let listing: DatasetObjects
        switch try await lake.formatAndObjects(d) {
        case .success(let r): (f, listing) = r
        case .failure(let error):
            result.unreadable.append(.init(dataset: d.name, object: "", kind: "unreadable", issue: Self.oneLine(error)))
            return
        }
        guard let opts = listing.options else { return }
        let objects = listing.objects.filter { !temporaries.contains($0.key) }
        let plain = d.format == .jsonl || d.format == .csv
        let linewise = d.format == .jsonl
        let columnar = lake.driver(for: d).formatName == "parquet"  // Parquet objects, and the files of a Delta table
        // Request ids by key in this dataset, and raw ids long enough to search as bytes.
        var idsByKey: [SubjectKey: [String]] = [:]
        for t in targets { idsByKey[lake.subjectKey(of: t.request, in: d, nfc), default: []].append(t.request.id) }
        var idsByRaw: [[UInt8]: [String]] = [:]
        for t in targets { if let raw = t.raw, raw.bytes.count >= Residue.minimumNeedle { idsByRaw[raw.bytes, default: []].append(t.request.id) } }
        // Every object is read as records when a request cannot be found by its bytes.
        let alwaysKeyed =
            !plain || d.normalization == .nfc
            || targets.contains { $0.raw == nil || $0.raw!.bytes.count < Residue.minimumNeedle }
        let needles = NeedleSet(Array(idsByRaw.keys), wordBounded: true)
        let longest = idsByRaw.keys.map(\.count).max() ?? 0
        let hasNeedles = !idsByRaw.isEmpty
        let byRaw = idsByRaw, byKey = idsByKey
        let store = lake.store

        var hits: [ObjectHits] = []
        // Compressed objects are decoded one ahead: the object after the one launched is decoded (whole,
        // libdeflate) on a task of its own while this one is searched, so that a single task searches gzip
        // at about the decoder's speed. At most one decoded object is held ahead.
        let decodesAhead = plain && hasNeedles
        var ahead: [Int: Task<[UInt8]?, Never>] = [:]
        defer { for t in ahead.values { t.cancel() } }
        try await withThrowingTaskGroup(of: ObjectHits.self) { group in
            var next = 0
            func launch() {
                guard next < objects.count else { return }
                let i = next
                let o = objects[next]
                next += 1
                let decoded = ahead.removeValue(forKey: i)
                if decodesAhead, i + 1 < objects.count, Self.compression(objects[i + 1].key) == .compressed {
                    let n = objects[i + 1]
                    ahead[i + 1] = Task { try? await EncodedObject.decodedWhole(n, in: store) }
                }
                group.addTask {
                    let keyer = lake.keyer(for: d)
                    var h = ObjectHits(key: o.key, bytes: o.size)
                    do {
                        var mustKey = alwaysKeyed
                        // What is read as records: the whole object, or (JSON Lines, stored plain) only the lines
                        // holding a hit, under the object's own key (a line is a record; partition folders still apply).
                        var source: (any ObjectStore, ObjectInfo) = (store, o)
                        if plain && hasNeedles {
                            // Streamed a chunk at a time: an object is never held whole.
                            if linewise && !alwaysKeyed && Compression.none == Self.compression(o.key) {
                                let (lines, found) = try await EncodedObject.linesHolding(needles, in: o.key, of: store)
                                for raw in found { h.mentioned.formUnion(byRaw[raw] ?? []) }
                                if !lines.isEmpty {
                                    let mini = InMemoryObjectStore()
                                    mini.set(o.key, lines)
                                    if let info = try await mini.head(o.key) { source = (mini, info) }
                                }
                            } else {
                                let found: Set<[UInt8]>
                                if let decoded, let bytes = await decoded.value {
                                    found = bytes.withUnsafeBufferPointer { needles.matches(in: $0) }
                                } else {
                                    found = try await EncodedObject.matches(of: needles, overlap: longest, in: o.key, of: store)
                                }
                                for raw in found { h.mentioned.formUnion(byRaw[raw] ?? []) }
                            }
                            if !h.mentioned.isEmpty { mustKey = true }
                        } else if columnar && hasNeedles {
                            // Parquet (and Delta's files): the raw id in another column, found in the decoded strings.
                            let strings = try await ParquetFormat().byteArrayValues(o, in: store)
                            for raw in needles.matches(in: strings) { h.mentioned.formUnion(byRaw[raw] ?? []) }
                        }
                        if mustKey {
                            var rows: [String: Int64] = [:]
                            let s = try await f.scan(source.1, in: source.0, options: opts, keyer: keyer) { _, k in
                                if let ids = byKey[k] { for id in ids { rows[id, default: 0] += 1 } }
                            }
                            h.records = rows
                            for k in s.unreferenced { h.unreferenced.formUnion(byKey[k] ?? []) }
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        h.unreadable = Self.oneLine(error)
                    }
                    return h
                }
            }
            for _ in 0..<workers { launch() }
            while let h = try await group.next() {
                hits.append(h)
                launch()
            }
        }
        for h in hits.sorted(by: { $0.key < $1.key }) {
            result.objects += 1
            result.bytes += h.bytes
            if let why = h.unreadable {
                result.unreadable.append(.init(dataset: d.name, object: h.key, kind: "unreadable", issue: why))
                continue
            }
            for (id, n) in h.records.sorted(by: { $0.key < $1.key }) {
                let why = listing.unnamed.contains(h.key) ? "a file the Delta log does not name" : nil
                result.found[id, default: []].append(.init(dataset: d.name, object: h.key, kind: "record", rows: n, issue: why))
                result.recordObjects[d.name, default: []].insert(h.key)
            }
            for id in h.unreferenced.sorted() where h.records[id] == nil {
                // The subject's value in the subject column, in no row: not a mention of another record.
                result.found[id, default: []].append(
                    .init(dataset: d.name, object: h.key, kind: "record", rows: 0, issue: Verifier.unreferencedIssue))
                result.recordObjects[d.name, default: []].insert(h.key)
            }
            for id in h.mentioned.sorted() where h.records[id] == nil && !h.unreferenced.contains(id) {
                result.found[id, default: []].append(.init(dataset: d.name, object: h.key, kind: "mention"))
            }
        }
        // Object keys naming a subject, and hidden files holding a raw id: the candidates of each key found once
        // (its whole tokens, path segments and Hive values against every raw id), each confirmed by `Residue.key`.
        var byRawBytes: [[UInt8]: [Target]] = [:]
        for t in targets { if let raw = t.raw { byRawBytes[raw.bytes, default: []].append(t) } }
        func keyNames(_ key: String) -> [Target] {
            guard !byRawBytes.isEmpty else { return [] }
            let k = Array(key.utf8)
            var cands = hasNeedles ? needles.matches(in: k) : []
            for seg in k.split(separator: UInt8(ascii: "/")) where byRawBytes[Array(seg)] != nil { cands.insert(Array(seg)) }
            for (_, v) in FormatOptions.hiveValues(key, below: "") { if case .value(let b) = v, byRawBytes[b] != nil { cands.insert(b) } }
            return cands.flatMap { byRawBytes[$0] ?? [] }.filter { Residue.key(key, names: $0.raw!, fields: d.subject?.fields) }
        }
        for o in objects {
            for t in keyNames(o.key) {
                result.found[t.request.id, default: []].append(.init(dataset: d.name, object: o.key, kind: "key"))
            }
        }
        for o in listing.hidden where !temporaries.contains(o.key) {
            var named = Set(keyNames(o.key).map(\.request.id))
            if hasNeedles {
                do {
                    for raw in needles.matches(in: try await store.read(o.key)) { named.formUnion(idsByRaw[raw] ?? []) }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    result.unreadable.append(.init(dataset: d.name, object: o.key, kind: "unreadable", issue: "hidden file: " + Self.oneLine(error)))
                }
            }
            for id in named.sorted() { result.found[id, default: []].append(.init(dataset: d.name, object: o.key, kind: "hidden")) }
        }
        // The Delta log: every log file, field-aware.
        let raws = targets.compactMap(\.raw)
        if !raws.isEmpty {
            do {
                if let residue = try await lake.driver(for: d).logResidue(Array(Set(raws)), lake) {
                    for t in targets {
                        guard let raw = t.raw else { continue }
                        for file in residue[raw] ?? [] {
                            result.found[t.request.id, default: []].append(.init(dataset: d.name, object: file.key, kind: "log"))
                        }
                    }
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                result.unreadable.append(.init(dataset: d.name, object: "_delta_log", kind: "unreadable", issue: Self.oneLine(error)))
            }
        }
    }

    /// Lethe's own state folder, searched for the raw ids as bytes (sealed ids are ciphertext: not found).
    private func sweepState(_ targets: [Target], into result: inout Result) throws {
        var idsByRaw: [[UInt8]: [String]] = [:]
        for t in targets { if let raw = t.raw, raw.bytes.count >= Residue.minimumNeedle { idsByRaw[raw.bytes, default: []].append(t.request.id) } }
        guard !idsByRaw.isEmpty else { return }
        guard let scanner = lake.meta.residueScanner else {
            result.unreadable.append(.init(dataset: "", object: "state", kind: "unreadable", issue: "the state is not a local folder"))
            return
        }
        let scan = try scanner.search(for: Array(idsByRaw.keys))
        for (raw, files) in scan.hits {
            for id in idsByRaw[raw] ?? [] {
                for file in files { result.found[id, default: []].append(.init(dataset: "", object: file, kind: "state")) }
            }
        }
    }

    enum Compression { case none, compressed }

    /// Whether the codec decompresses an object (its key's extension).
    static func compression(_ key: String) -> Compression {
        let k = key.lowercased()
        return [".gz", ".gzip", ".zst", ".zstd"].contains { k.hasSuffix($0) } ? .compressed : .none
    }

    static func oneLine(_ error: any Error) -> String { DatasetIssue.oneLine(error: error) }
}
