import Foundation
import LetheCore
import LetheStorage
import Parquet

/// What a targeted vacuum did.
public struct DeltaVacuumResult: Sendable {
    /// Object keys of the history files deleted.
    public var deleted: [String]
    /// Object keys of the change data files rewritten in place without the subjects' rows.
    public var rewrittenChangeData: [String] = []
    /// Versions that can no longer be read by time travel (their files are gone).
    public var unreadableVersions: [ClosedRange<Int64>]
    /// Commit files rewritten to scrub statistics or commitInfo.
    public var scrubbedCommits: [Int64]
    /// Checkpoint files removed because they held scrubbed statistics.
    public var removedCheckpoints: [String]

    public init(deleted: [String], unreadableVersions: [ClosedRange<Int64>], scrubbedCommits: [Int64], removedCheckpoints: [String]) {
        self.deleted = deleted; self.unreadableVersions = unreadableVersions
        self.scrubbedCommits = scrubbedCommits; self.removedCheckpoints = removedCheckpoints
    }
}

extension DeltaTable {
    /// Targeted physical erasure: deletes the given non-live data files (`paths`),
    /// rewrites each change data file in `changeData` without the given rows (in
    /// place, so the feed stays readable for every version; its `cdc` action's size
    /// follows), then scrubs the log of what still describes the deleted files: the
    /// `stats` of every `add`/`remove` action
    /// for those paths lose their bounds (min/max/null counts), and any commitInfo
    /// whose text holds one of `needles` (raw ids, while Lethe still has them) has
    /// its operation parameters replaced. Each commit file is rewritten atomically
    /// (compare-and-swap on its version). Checkpoints that hold the old statistics
    /// are removed, with `_last_checkpoint`, when the JSON log alone can be replayed.
    /// Writes VACUUM START / VACUUM END commits so other tools see it in history.
    public func vacuumTargeted(paths: Set<String>, changeData: [String: [Int64]] = [:], needles: [[UInt8]],
                               now: Int64) async throws -> DeltaVacuumResult {
        var result = DeltaVacuumResult(deleted: [], unreadableVersions: [], scrubbedCommits: [], removedCheckpoints: [])
        let snap = try await snapshot()
        for p in paths where snap.files[p] != nil {
            throw LetheError(.conflict, "file \(p) is live at version \(snap.version): a targeted vacuum removes only history", at: root)
        }
        try await commitNext([.commitInfo([
            "timestamp": .int(now), "operation": .string("VACUUM START"), "engineInfo": .string("Lethe/0.1"),
            "operationParameters": .object(["mode": .string("targeted"), "numFiles": .int(Int64(paths.count + changeData.count))]),
        ])])
        // Change data files first: each is replaced atomically; a crash before the log
        // is scrubbed leaves a stale `size` that the re-run sets right (rows == []).
        var cdcSize: [String: Int64] = [:]
        for (p, rows) in changeData.sorted(by: { $0.key < $1.key }) {
            let k = key(forLogPath: p)
            guard let head = try await store.head(k) else { continue }
            if rows.isEmpty { cdcSize[p] = head.size; continue }
            let bytes = try await store.read(k)
            var sink = InMemorySink()
            do {
                let file = try ParquetFile(bytes: bytes, name: k)
                _ = try file.rewrite(droppingRows: rows, to: &sink)
            } catch { throw LetheError(.corrupt, "\(error)", at: k) }
            try await store.put(k, sink.bytes, precondition: .matches(version: head.version))
            cdcSize[p] = Int64(sink.bytes.count)
            result.rewrittenChangeData.append(k)
        }
        // Which versions each file was live in.
        var addedAt: [String: Int64] = [:]
        var ranges: [ClosedRange<Int64>] = []
        let versions = try await versions()
        // Only commits whose bytes name an affected file or hold a raw id are parsed.
        let names = paths.map { Array(($0.split(separator: "/").last.map(String.init) ?? $0).utf8) }
            + changeData.keys.map { Array(($0.split(separator: "/").last.map(String.init) ?? $0).utf8) }
        let prefilter = NeedleSet(names + needles)
        let idNeedles = NeedleSet(needles)
        var scrubs: [(v: Int64, key: String, bytes: [UInt8], version: String)] = []
        // Read (several at a time) and keep the commits the prefilter matches, then go through them in order.
        let read = try await boundedMap(versions, limit: 8) { [self] v -> [UInt8]? in
            let name = Self.commitName(v)
            let bytes: [UInt8]
            do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound {
                throw DeltaError.corrupt(root, "commit \(v) is missing", file: name)
            }
            return prefilter.containsAny(bytes) ? bytes : nil
        }
        var matching: [Int64: [UInt8]] = [:]
        for (v, bytes) in zip(versions, read) { if let bytes { matching[v] = bytes } }
        for v in versions {
            guard let bytes = matching[v] else { continue }
            let name = Self.commitName(v)
            let actions = try parseCommit(bytes, name: name)
            var changed = false
            var rewritten: [DeltaAction] = []
            for a in actions {
                switch a {
                case .add(var f) where paths.contains(f.path):
                    addedAt[f.path] = v
                    if f.stats != nil { f.raw["stats"] = .string(Self.boundsFree(f.stats!)); changed = true }
                    rewritten.append(.add(f))
                case .remove(var r) where paths.contains(r.path):
                    if let from = addedAt[r.path] { ranges.append(from...(v - 1)) }
                    if r.raw["stats"] != nil, let s = r.raw["stats"]?.string { r.raw["stats"] = .string(Self.boundsFree(s)); changed = true }
                    rewritten.append(.remove(r))
                case .cdc(var c) where cdcSize[c.path] != nil:
                    if c.raw["stats"] != nil || c.raw["size"]?.int != cdcSize[c.path] {
                        c.raw["stats"] = nil
                        c.raw["size"] = .int(cdcSize[c.path]!)
                        c.size = cdcSize[c.path]!
                        changed = true
                    }
                    rewritten.append(.cdc(c))
                case .commitInfo(var info) where idNeedles.containsAny(Array(DeltaJSON.object(info).text.utf8)):
                    info["operationParameters"] = .object(["predicate": .string("[scrubbed by Lethe: named an erased subject]")])
                    rewritten.append(.commitInfo(info))
                    changed = true
                default:
                    rewritten.append(a)
                }
            }
            if changed {
                guard let head = try await store.head(logKey(name)) else { continue }
                let text = rewritten.map(\.line).joined(separator: "\n") + "\n"
                scrubs.append((v, logKey(name), Array(text.utf8), head.version))
            }
        }
        // Each commit is replaced atomically (compare-and-swap on the version read); several at a time.
        _ = try await boundedMap(scrubs.map { ($0.key, $0.bytes, $0.version) }, limit: 8) { [store] w in
            _ = try await store.put(w.0, w.1, precondition: .matches(version: w.2))
        }
        result.scrubbedCommits = scrubs.map(\.v)
        // Checkpoints carry the same statistics; the JSON log from version 0 still replays without them.
        if versions.first == 0, !result.scrubbedCommits.isEmpty {
            for k in try await store.listKeys(prefix: logPrefix) where k.contains(".checkpoint.") {
                try await store.delete(k)
                result.removedCheckpoints.append(k)
            }
            if !result.removedCheckpoints.isEmpty { try await store.delete(logKey("_last_checkpoint")) }
        }
        let victims = paths.sorted().map { key(forLogPath: $0) }
        _ = try await boundedMap(victims, limit: 8) { [store] k in try await store.delete(k) }
        result.deleted = victims
        result.unreadableVersions = Self.merge(ranges)
        try await commitNext([.commitInfo([
            "timestamp": .int(now), "operation": .string("VACUUM END"), "engineInfo": .string("Lethe/0.1"),
            "operationParameters": .object(["status": .string("COMPLETED")]),
            "operationMetrics": .object(["numDeletedFiles": .int(Int64(result.deleted.count)),
                                         "numRewrittenChangeDataFiles": .int(Int64(result.rewrittenChangeData.count))]),
        ])])
        return result
    }

    /// Commits actions that do not depend on the table's state (commitInfo only) at the next free version.
    func commitNext(_ actions: [DeltaAction], attempts: Int = 20) async throws {
        for i in 1...attempts {
            let next = (try await versions().last ?? -1) + 1
            do { try await commit(actions, version: next); return } catch let e as LetheError where e.code == .conflict && i < attempts {
                continue
            }
        }
    }

    /// Statistics without bounds: only the record count survives.
    static func boundsFree(_ stats: String) -> String {
        guard let j = try? DeltaJSON.parse(Array(stats.utf8)), let n = j["numRecords"] else { return "{}" }
        return DeltaJSON.object(["numRecords": n]).text
    }

    static func merge(_ rs: [ClosedRange<Int64>]) -> [ClosedRange<Int64>] {
        var out: [ClosedRange<Int64>] = []
        for r in rs.filter({ $0.lowerBound <= $0.upperBound }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else { out.append(r) }
        }
        return out
    }
}

extension DeltaTable {
    /// The table's `delta.deletedFileRetentionDuration` in hours (default 168: one week).
    public func configuredRetentionHours(_ s: Snapshot) -> Double {
        guard let text = s.metadata.configuration["delta.deletedFileRetentionDuration"] else { return 168 }
        // "interval 7 days", "interval 12 hours", "interval 30 minutes"
        let parts = text.lowercased().split(separator: " ").map(String.init)
        guard parts.count >= 3, parts[0] == "interval", let n = Double(parts[1]) else { return 168 }
        switch parts[2] {
        case let u where u.hasPrefix("week"): return n * 168
        case let u where u.hasPrefix("day"): return n * 24
        case let u where u.hasPrefix("hour"): return n
        case let u where u.hasPrefix("minute"): return n / 60
        case let u where u.hasPrefix("second"): return n / 3600
        default: return 168
        }
    }

    /// Standard vacuum: deletes every data or change-data file under the table that
    /// the latest version does not reference and that was removed (or, for files the
    /// log never named, last modified) more than `retainHours` ago. The log and hidden
    /// files are never touched. With `dryRun`, only lists what it would delete.
    public func vacuumStandard(retainHours: Double, now: Int64, dryRun: Bool) async throws -> [String] {
        let s = try await snapshot()
        let cutoff = now - Int64(retainHours * 3_600_000)
        var live = Set(s.files.keys.map { key(forLogPath: $0) })
        // Deletion vector files of live files are part of the table.
        for add in s.files.values {
            if let dv = try DeletionVectorDescriptor(add, table: root), let k = try dv.fileKey(in: self) { live.insert(k) }
        }
        var removedAt: [String: Int64] = [:]
        for (p, r) in s.tombstones { removedAt[key(forLogPath: p)] = r.deletionTimestamp ?? 0 }
        var victims: [String] = []
        let prefix = root.isEmpty ? "" : root + "/"
        for o in try await store.list(prefix: root) {
            let rel = String(o.key.dropFirst(prefix.count))
            if rel.hasPrefix("_delta_log/") || rel.split(separator: "/").contains(where: { ($0.hasPrefix("_") && $0 != "_change_data") || $0.hasPrefix(".") }) { continue }
            if live.contains(o.key) { continue }
            let when = removedAt[o.key] ?? o.modifiedNanos / 1_000_000
            if when < cutoff { victims.append(o.key) }
        }
        guard !dryRun, !victims.isEmpty else { return victims }
        try await commitNext([.commitInfo([
            "timestamp": .int(now), "operation": .string("VACUUM START"), "engineInfo": .string("Lethe/0.1"),
            "operationParameters": .object(["retentionCheckEnabled": .bool(true), "specifiedRetentionMillis": .int(Int64(retainHours * 3_600_000)),
                                            "defaultRetentionMillis": .int(Int64(configuredRetentionHours(s) * 3_600_000))]),
            "operationMetrics": .object(["numFilesToDelete": .int(Int64(victims.count))]),
        ])])
        for k in victims { try await store.delete(k) }
        try await commitNext([.commitInfo([
            "timestamp": .int(now), "operation": .string("VACUUM END"), "engineInfo": .string("Lethe/0.1"),
            "operationParameters": .object(["status": .string("COMPLETED")]),
            "operationMetrics": .object(["numDeletedFiles": .int(Int64(victims.count))]),
        ])])
        return victims
    }
}
