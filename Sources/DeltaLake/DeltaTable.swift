import Foundation
public import LetheCore
public import LetheStorage
import Synchronization

/// A table's state at one version: the result of replaying its log.
public struct Snapshot: Sendable {
    public var version: Int64
    public var tableProtocol: TableProtocol
    public var metadata: TableMetadata
    /// Live data files by log path (the protocol's `add` collection: one logical file per path).
    public var files: [String: AddFile]
    /// The protocol's `remove` collection: tombstones by logical file (path and deletion vector id).
    /// A data file can be live with one deletion vector and a tombstone with another.
    public var removed: [LogicalFileKey: RemoveFile]
    /// Removed data files that are not live with any deletion vector, by log path: readable
    /// only by time travel until vacuumed.
    public var tombstones: [String: RemoveFile]
    /// Change data files written by the replayed commits.
    public var cdcFiles: [CDCFile]
    /// commitInfo of each replayed version.
    public var commitInfos: [Int64: [String: JSONValue]]
    /// Live domain metadata by domain (`delta.rowTracking`, `delta.clustering`, …).
    public var domainMetadata: [String: [String: JSONValue]] = [:]
    /// The checkpoint the replay started from, if any.
    public var checkpoint: DeltaLogListing.Checkpoint?
    /// Per log path of a data or change data file, the replayed JSON commits whose `add`,
    /// `remove` or `cdc` names it, ascending (what a targeted vacuum reads instead of every commit).
    public var namedIn: [String: [Int64]] = [:]
}

/// A Delta table under a prefix of an object store.
public struct DeltaTable: Sendable {
    public let store: any ObjectStore
    /// The table root's key prefix (no trailing slash).
    public let root: String

    /// Reader features Lethe implements; a table needing any other is refused by name.
    public static let supportedReaderFeatures: Set<String> = [
        "timestampNtz", "vacuumProtocolCheck", "columnMapping", "variantType", "variantType-preview", "deletionVectors", "v2Checkpoint",
    ]
    /// Writer features whose rules an erasure commit keeps (it only deletes rows): in-commit
    /// timestamps and row tracking are written, clustered files keep their clustering provider
    /// and statistics of the clustering columns (`liquid` is the preview name of `clustering`).
    public static let supportedWriterFeatures: Set<String> = [
        "appendOnly", "invariants", "checkConstraints", "generatedColumns", "identityColumns", "allowColumnDefaults",
        "timestampNtz", "vacuumProtocolCheck", "domainMetadata", "columnMapping", "changeDataFeed", "variantType", "variantType-preview",
        "deletionVectors", "v2Checkpoint", "inCommitTimestamp", "rowTracking", "clustering", "liquid", "icebergCompatV1", "icebergCompatV2",
    ]

    /// Latest snapshots kept between calls (nil: every `snapshot()` replays the log).
    public let snapshots: SnapshotCache?

    public init(store: any ObjectStore, root: String, snapshots: SnapshotCache? = nil) {
        var r = root
        while r.hasSuffix("/") { r.removeLast() }
        self.store = store
        self.root = r
        self.snapshots = snapshots
    }

    var logPrefix: String { root.isEmpty ? "_delta_log" : root + "/_delta_log" }
    func logKey(_ name: String) -> String { logPrefix + "/" + name }
    /// The object key of a file named in the log.
    public func key(forLogPath path: String) -> String {
        let p = decodeDeltaPath(path)
        return root.isEmpty ? p : root + "/" + p
    }

    public static func commitName(_ v: Int64) -> String { versionDigits(v) + ".json" }

    /// `v` in the log's 20 digits, zero-padded (`%020lld` for the non-negative versions of a log),
    /// written digit by digit: a listing of a 5,000-commit log names every version.
    static func versionDigits(_ v: Int64) -> String {
        if v < 0 { return "-" + versionDigits(v == .min ? .max : -v).dropFirst() }
        return String(unsafeUninitializedCapacity: 20) { buf in
            var x = UInt64(v)
            for i in stride(from: 19, through: 0, by: -1) {
                buf[i] = UInt8(truncatingIfNeeded: x % 10) &+ 48
                x /= 10
            }
            return 20
        }
    }

    /// Commit versions present in the log, ascending; throws on a gap.
    public func versions() async throws -> [Int64] {
        var vs: [Int64] = []
        for key in try await store.listKeys(prefix: logPrefix) {
            let name = String(key.dropFirst(logPrefix.count + 1))
            guard name.count == 25, name.hasSuffix(".json"), let v = Int64(name.prefix(20)) else { continue }
            vs.append(v)
        }
        vs.sort()
        for (a, b) in zip(vs, vs.dropFirst()) where b != a + 1 {
            throw DeltaError.corrupt(root, "gap in the log: version \(a + 1) is missing (found \(a) and \(b))")
        }
        return vs
    }

    /// The newest commit version (nil for an empty log), listing only the log after the
    /// checkpoint `_last_checkpoint` names: that pointer is a hint, so when it is absent, does not
    /// read, or no commit is listed from its version on, the whole log is listed (as `versions()`).
    /// Throws on a gap among the versions it lists.
    public func latestVersion() async throws -> Int64? {
        if let c = try? await lastCheckpoint(), c.version >= 0, let last = try await versions(from: c.version).last {
            return last
        }
        return try await versions().last
    }

    /// Commit versions from `first` on, ascending, from a listing that starts there (keys sort by
    /// their UTF-8 bytes: the zero-padded versions in order, `_last_checkpoint` and `_sidecars/` after them).
    public func versions(from first: Int64) async throws -> [Int64] { try await commits(from: first).map(\.version) }

    /// `versions(from:)` with each commit file's store metadata.
    func commits(from first: Int64) async throws -> [(version: Int64, info: ObjectInfo)] {
        var vs: [(version: Int64, info: ObjectInfo)] = []
        for try await page in store.list(prefix: logPrefix, startAfter: logKey(Self.versionDigits(first))) {
            for o in page {
                let name = o.key.dropFirst(logPrefix.count + 1)
                guard name.count == 25, name.hasSuffix(".json"), let v = Int64(name.prefix(20)), v >= first else { continue }
                vs.append((v, o))
            }
        }
        vs.sort { $0.version < $1.version }
        for (a, b) in zip(vs, vs.dropFirst()) where b.version != a.version + 1 {
            throw DeltaError.corrupt(root, "gap in the log: version \(a.version + 1) is missing (found \(a.version) and \(b.version))")
        }
        return vs
    }

    /// The checkpoint `_last_checkpoint` names, if any. A hint only (protocol: "Last Checkpoint
    /// File"): replay finds checkpoints by listing the log.
    public func lastCheckpoint() async throws -> (version: Int64, parts: Int?, size: Int64?)? {
        guard try await store.head(logKey("_last_checkpoint")) != nil else { return nil }
        let bytes = try await store.read(logKey("_last_checkpoint"))
        guard let j = try? JSONValue.parse(bytes), let v = j["version"]?.int else {
            throw DeltaError.corrupt(root, "not a valid checkpoint pointer", file: "_last_checkpoint")
        }
        return (v, j["parts"]?.int.map { Int($0) }, j["size"]?.int)
    }

    /// The actions of one commit.
    public func commit(_ version: Int64) async throws -> [DeltaAction] {
        let name = Self.commitName(version)
        let bytes: [UInt8]
        do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound {
            throw DeltaError.corrupt(root, "commit \(version) is missing", file: name)
        }
        return try parseCommit(bytes, name: name)
    }

    /// The actions of a commit file's bytes.
    func parseCommit(_ bytes: [UInt8], name: String) throws -> [DeltaAction] {
        var out: [DeltaAction] = []
        var n = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            n += 1
            let l = line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : Array(line)
            if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            out.append(try DeltaAction.parse(l, table: root, file: name, line: n))
        }
        return out
    }

    /// Replays the log to `version` (default: the latest): from the newest complete checkpoint
    /// at or before it that reads (found by listing the log; `_last_checkpoint` is only a hint,
    /// so a pointer whose `size` disagrees or that names a missing checkpoint does not matter),
    /// then the JSON commits after it. File actions are reconciled by logical file (path and
    /// deletion vector id), as the protocol's "Action Reconciliation" says.
    public func snapshot(version: Int64? = nil) async throws -> Snapshot {
        guard version == nil, let cache = snapshots else { return try await snapshot(version: version, tail: true) }
        if let s = try await cachedLatest(cache) { return s }
        cache.count { $0.replayed += 1 }
        let s = try await snapshot(version: nil, tail: true)
        if let last = try await commits(from: s.version).first, last.version == s.version { cache.keep(s, commitVersion: last.info.version, root: root) }
        return s
    }

    /// The latest snapshot from the cache: the one kept if its last commit is unchanged (a scrub
    /// that rewrote it, or a table made anew, is a miss) and no commit followed, else that one with
    /// the newer commits replayed on top. Nil on a miss.
    func cachedLatest(_ cache: SnapshotCache) async throws -> Snapshot? {
        guard let (kept, commitVersion) = cache.entry(root) else { return nil }
        // One listing from the kept commit on: it is unchanged, and the newer ones follow it.
        let cs = try await commits(from: kept.version)
        guard let first = cs.first, first.version == kept.version, first.info.version == commitVersion, let last = cs.last else {
            cache.forget(root)
            return nil
        }
        if last.version == kept.version {
            cache.count { $0.reused += 1 }
            return kept
        }
        let s: Snapshot
        do { s = try await replay(from: kept.checkpoint, to: last.version, base: kept) } catch let e as LetheError
            where e.code == .corrupt || e.code == .notFound
        {
            cache.forget(root)
            return nil
        }
        cache.keep(s, commitVersion: last.info.version, root: root)
        cache.count { $0.extended += 1 }
        return s
    }

    /// As `snapshot(version:)`; with `tail`, the latest version (or one at or after the checkpoint
    /// `_last_checkpoint` names) is replayed from a listing of the log's tail (`listLogTail`), and
    /// from the whole log's listing when the hint is absent or stale, or the tail does not replay.
    public func snapshot(version: Int64?, tail: Bool) async throws -> Snapshot {
        if tail, let t = try await listLogTail(), version.map({ $0 >= t.from }) ?? true {
            let vs = t.listing.versions
            if zip(vs, vs.dropFirst()).allSatisfy({ $1 == $0 + 1 }), let latest = [vs.last, t.listing.checkpoints.first?.version].compactMap({ $0 }).max() {
                let target = version ?? latest
                let starts = t.listing.checkpoints.filter { cp in
                    cp.version <= target && (cp.version == target || (vs.first.map { $0 <= cp.version + 1 } ?? false) && (vs.last ?? -1) >= target)
                }
                for start in starts where target <= latest {
                    do {
                        return try await replay(from: start, to: target)
                    } catch let e as LetheError where e.code == .corrupt || e.code == .notFound {
                        // A checkpoint that does not read: the whole log's listing decides (older checkpoints, version 0).
                    }
                }
            }
        }
        let listing = try await listLog()
        let vs = listing.versions
        for (a, b) in zip(vs, vs.dropFirst()) where b != a + 1 {
            throw DeltaError.corrupt(root, "gap in the log: version \(a + 1) is missing (found \(a) and \(b))")
        }
        guard let latest = [vs.last, listing.checkpoints.first?.version].compactMap({ $0 }).max() else {
            throw LetheError(.notFound, "not a Delta table: no commits in _delta_log", at: root)
        }
        let target = version ?? latest
        guard target <= latest else { throw LetheError(.notFound, "version \(target) does not exist (latest is \(latest))", at: root) }
        // Starting points, best first: each checkpoint at or before the target whose following
        // commits exist, then version 0.
        var starts: [DeltaLogListing.Checkpoint?] = listing.checkpoints.filter { cp in
            cp.version <= target && (cp.version == target || (vs.first.map { $0 <= cp.version + 1 } ?? false) && (vs.last ?? -1) >= target)
        }
        if vs.first == 0 { starts.append(nil) }
        guard !starts.isEmpty else {
            if let first = vs.first, first > 0 {
                throw DeltaError.corrupt(root, "commits before \(first) were cleaned up and no checkpoint covers version \(target)")
            }
            throw DeltaError.corrupt(root, "no commit or checkpoint covers version \(target)")
        }
        var firstError: (any Error)?
        for start in starts {
            do {
                return try await replay(from: start, to: target)
            } catch let e as LetheError where e.code == .corrupt || e.code == .notFound {
                // A checkpoint that does not read: an older one (or the JSON log) may.
                if firstError == nil { firstError = e }
                if start == nil { break }
            }
        }
        throw firstError!
    }

    /// Replays from a checkpoint (or from version 0) to `target`.
    /// With `base`, the commits after its version are replayed on top of it (`checkpoint` is then
    /// only recorded as the one the replay started from).
    func replay(from checkpoint: DeltaLogListing.Checkpoint?, to target: Int64, base: Snapshot? = nil) async throws -> Snapshot {
        var proto: TableProtocol? = base?.tableProtocol
        var meta: TableMetadata? = base?.metadata
        var files: [String: AddFile] = base?.files ?? [:]
        var removed: [LogicalFileKey: RemoveFile] = base?.removed ?? [:]
        var cdc: [CDCFile] = base?.cdcFiles ?? []
        var infos: [Int64: [String: JSONValue]] = base?.commitInfos ?? [:]
        var domains: [String: [String: JSONValue]] = base?.domainMetadata ?? [:]
        var namedIn: [String: [Int64]] = base?.namedIn ?? [:]
        func note(_ path: String, _ v: Int64?) {
            guard let v else { return }
            if namedIn[path]?.last != v { namedIn[path, default: []].append(v) }
        }
        func apply(_ a: DeltaAction, at v: Int64?) {
            switch a {
            case .add(let f):
                note(f.path, v)
                // The newest (path, dv id) for a path is the live one; it is no longer a tombstone.
                files[f.path] = f
                removed[f.logicalKey] = nil
            case .remove(let r):
                note(r.path, v)
                let k = r.logicalKey
                if let live = files[r.path], live.logicalKey == k { files[r.path] = nil }
                removed[k] = r
            case .metadata(let m): meta = m
            case .protocol(let p): proto = p
            case .cdc(let c):
                note(c.path, v)
                cdc.append(c)
            case .commitInfo(let c): if let v { infos[v] = c }
            case .other("domainMetadata", let body):
                if let o = body.object, let d = o["domain"]?.string {
                    domains[d] = o["removed"]?.bool == true ? nil : o
                }
            case .other: break
            }
        }
        var from: Int64 = 0
        if let base {
            from = base.version + 1
        } else if let cp = checkpoint {
            for a in try await checkpointActions(cp) { apply(a, at: nil) }
            from = cp.version + 1
        }
        // The commits are read several at a time, a window at a time, and applied in order.
        var next = from
        while next <= target {
            let window = Array(next...min(target, next + 63))
            next = window.last! + 1
            let read = try await boundedMap(window, limit: 8) { [self] v in try await commit(v) }
            for (v, actions) in zip(window, read) {
                // A commit's removes before its adds: a valid commit holds at most one of each per
                // path, and an add and a remove of one path name different deletion vectors.
                for a in actions { if case .remove = a { apply(a, at: v) } }
                for a in actions { if case .remove = a { continue }; apply(a, at: v) }
            }
        }
        guard let proto else { throw DeltaError.corrupt(root, "no `protocol` action up to version \(target)") }
        guard let meta else { throw DeltaError.corrupt(root, "no `metaData` action up to version \(target)") }
        var tombstones: [String: RemoveFile] = [:]
        for (k, r) in removed where files[k.path] == nil { tombstones[k.path] = r }
        return Snapshot(
            version: target, tableProtocol: proto, metadata: meta, files: files, removed: removed,
            tombstones: tombstones, cdcFiles: cdc, commitInfos: infos, domainMetadata: domains, checkpoint: checkpoint,
            namedIn: namedIn)
    }

    /// The actions of a checkpoint: its files (Parquet, or JSON for a UUID-named V2 checkpoint)
    /// and the sidecar files a V2 checkpoint names.
    func checkpointActions(_ cp: DeltaLogListing.Checkpoint) async throws -> [DeltaAction] {
        var out: [DeltaAction] = []
        var sidecars: [String] = []
        for name in cp.names {
            let bytes: [UInt8]
            do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound {
                throw DeltaError.corrupt(root, "checkpoint \(name) is missing", file: name)
            }
            let actions: [DeltaAction]
            if name.hasSuffix(".json") {
                actions = try parseCommit(bytes, name: name)
            } else {
                actions = try CheckpointReader.actions(bytes, name: name, table: root).actions
            }
            for a in actions {
                if case .other("sidecar", let s) = a {
                    guard let p = s["path"]?.string else { throw DeltaError.corrupt(root, "`sidecar` without a path", file: name) }
                    sidecars.append(p)
                } else {
                    out.append(a)
                }
            }
        }
        for p in sidecars {
            let name = Self.sidecarName(p)
            let bytes: [UInt8]
            do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound {
                throw DeltaError.corrupt(root, "sidecar \(name) that checkpoint \(cp.names[0]) names is missing", file: name)
            }
            out += try CheckpointReader.actions(bytes, name: name, table: root).actions
        }
        return out
    }

    /// The name under `_delta_log` of a sidecar a V2 checkpoint names (a file name, or a path
    /// ending in `_sidecars/<file>`).
    static func sidecarName(_ path: String) -> String {
        let decoded = decodeDeltaPath(path)
        return "_sidecars/" + (decoded.split(separator: "/").last.map(String.init) ?? decoded)
    }

    /// The latest version committed at or before `millis` (commit file modification time), for time travel.
    public func version(asOf millis: Int64) async throws -> Int64 {
        var best: Int64?
        for v in try await versions() {
            guard let h = try await store.head(logKey(Self.commitName(v))) else { continue }
            if h.modifiedNanos / 1_000_000 <= millis { best = v } else { break }
        }
        guard let best else { throw LetheError(.notFound, "the table has no version at or before \(millis) ms", at: root) }
        return best
    }

    /// Refuses a table Lethe cannot read correctly, naming the feature.
    public func checkReadable(_ s: Snapshot) throws {
        let p = s.tableProtocol
        if p.minReaderVersion > 3 { throw DeltaError.unsupported(root, "reader version \(p.minReaderVersion) is not supported") }
        if !["none", "name", "id"].contains(s.metadata.columnMappingMode) {
            throw DeltaError.unsupported(root, "column mapping mode `\(s.metadata.columnMappingMode)` is not supported")
        }
        if p.minReaderVersion == 3 {
            for f in p.readerFeatures.sorted() where !Self.supportedReaderFeatures.contains(f) {
                throw DeltaError.unsupported(root, "table feature `\(f)` is not supported yet")
            }
        }
    }

    /// Refuses to write (delete rows) where Lethe cannot keep the table's rules, naming the feature.
    public func checkWritable(_ s: Snapshot) throws {
        try checkReadable(s)
        let p = s.tableProtocol
        if s.metadata.appendOnly {
            throw DeltaError.unsupported(root, "the table is append-only (delta.appendOnly=true): rows cannot be deleted until it is lifted")
        }
        if p.minWriterVersion > 7 { throw DeltaError.unsupported(root, "writer version \(p.minWriterVersion) is not supported") }
        if p.minWriterVersion == 7 {
            for f in p.writerFeatures.sorted() where !Self.supportedWriterFeatures.contains(f) {
                throw DeltaError.unsupported(root, "table feature `\(f)` is not supported for writing yet")
            }
            if p.writerFeatures.contains("clustering") || p.writerFeatures.contains("liquid") {
                // Rewritten files must carry statistics of the clustering columns.
                for col in s.clusteringColumns {
                    guard let type = s.metadata.physicalType(of: col), DeltaStats.boundedTypes.contains(type) else {
                        throw DeltaError.unsupported(
                            root,
                            "table feature `clustering`: Lethe cannot write statistics of clustering column `\(col.joined(separator: "."))` (\(s.metadata.physicalType(of: col) ?? "unknown type"))"
                        )
                    }
                }
            }
        }
    }

    /// Writes commit `version` if no one else has (put-if-absent). Throws `.conflict` when the version exists.
    /// A commit file's bytes: one action a line, every line ended.
    static func commitBytes(_ actions: [DeltaAction]) -> [UInt8] { Array((actions.map(\.line).joined(separator: "\n") + "\n").utf8) }

    public func commit(_ actions: [DeltaAction], version: Int64) async throws {
        do {
            try await store.put(logKey(Self.commitName(version)), Self.commitBytes(actions), precondition: .absent)
        } catch let e as LetheError where e.code == .conflict {
            throw LetheError(.conflict, "version \(version) was committed by another writer", at: root)
        }
    }
}

/// The latest snapshots of a few tables, kept by one engine between calls (one run reads a table's
/// latest snapshot several times: to plan, erase, vacuum and verify). An entry holds the store
/// version of the snapshot's last commit, which a reader checks before using it.
public final class SnapshotCache: Sendable {
    private let entries = Mutex<[String: (snapshot: Snapshot, commitVersion: String, used: UInt64)]>([:])
    private let clock = Atomic<UInt64>(0)
    private let counts = Mutex(Counts())
    /// Tables kept at most (the least recently used goes first).
    public let capacity: Int

    /// How the latest snapshots were served: the kept one as is, the kept one with newer commits
    /// replayed on top, or a replay from the log (nothing kept, or what was kept no longer held).
    public struct Counts: Sendable, Equatable {
        public var reused = 0, extended = 0, replayed = 0
    }
    public var served: Counts { counts.withLock { $0 } }
    func count(_ f: (inout Counts) -> Void) { counts.withLock { f(&$0) } }

    public init(capacity: Int = 8) { self.capacity = capacity }

    func entry(_ root: String) -> (Snapshot, String)? {
        let t = clock.add(1, ordering: .relaxed).newValue
        return entries.withLock { e in
            guard var x = e[root] else { return nil }
            x.used = t
            e[root] = x
            return (x.snapshot, x.commitVersion)
        }
    }

    func keep(_ s: Snapshot, commitVersion: String, root: String) {
        let t = clock.add(1, ordering: .relaxed).newValue
        entries.withLock { e in
            e[root] = (s, commitVersion, t)
            while e.count > capacity, let oldest = e.min(by: { $0.value.used < $1.value.used })?.key { e[oldest] = nil }
        }
    }

    func forget(_ root: String) { entries.withLock { $0[root] = nil } }

    /// Forgets every table (an engine does at the start of each run, index and verification: a
    /// snapshot is reused within one operation, never across operations hours apart).
    public func clear() { entries.withLock { $0.removeAll() } }

    /// Lethe rewrote commit `version` (statistics scrubbed) from store version `old` to `new`: an
    /// entry ending at that commit, as read at `old`, now expects `new`.
    func commitRewritten(_ root: String, version: Int64, from old: String, to new: String) {
        entries.withLock { e in
            guard var x = e[root], x.snapshot.version == version, x.commitVersion == old else { return }
            x.commitVersion = new
            e[root] = x
        }
    }
}
