import Foundation
public import LetheCore
import LetheStorage

/// What a table's `_delta_log` folder holds, from one listing (protocol: "Delta Log Entries",
/// "Checkpoints", "Version Checksum File", "Log Compaction Files", "Last Checkpoint File").
public struct DeltaLogListing: Sendable {
    /// A checkpoint of one version: the files that make it up.
    public struct Checkpoint: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// `n.checkpoint.parquet` (V1 or V2 spec).
            case classic
            /// `n.checkpoint.o.p.parquet` (V1 spec, deprecated).
            case multiPart
            /// `n.checkpoint.<uuid>.json|parquet` (V2 spec, may name sidecars).
            case uuid
        }
        public var version: Int64
        public var kind: Kind
        /// Names under `_delta_log` (parts in order for a multi-part checkpoint).
        public var names: [String]
    }

    /// Commit versions present, ascending.
    public var versions: [Int64] = []
    /// Complete checkpoints (a multi-part one with a part missing is left out, as the protocol says).
    public var checkpoints: [Checkpoint] = []
    /// Version checksum files (`n.crc`), by version.
    public var checksums: [Int64: String] = [:]
    /// Log compaction files (`x.y.compacted.json`).
    public var compactions: [String] = []
    /// Sidecar files (`_sidecars/…`), names under `_delta_log`.
    public var sidecars: [String] = []
    /// Whether `_last_checkpoint` exists.
    public var hasLastCheckpoint = false

    /// Every name under `_delta_log` that can hold a copy of file actions or commit information:
    /// commits, checkpoints (with their sidecars), checksums, compactions and `_last_checkpoint`.
    public var logFiles: [String] {
        versions.map(DeltaTable.commitName) + checkpoints.flatMap(\.names) + sidecars
            + checksums.keys.sorted().map { checksums[$0]! } + compactions + (hasLastCheckpoint ? ["_last_checkpoint"] : [])
    }

    /// Whether `name` (a name under `_delta_log`) is one of the log's files that can hold file
    /// actions or commit information (see `logFiles`): a commit, a checkpoint file or part, a
    /// sidecar, a version checksum, a log compaction or `_last_checkpoint`. For one file met on
    /// its own, e.g. a noncurrent version of it in a bucket that keeps versions.
    public static func holdsActions(_ name: String) -> Bool {
        let fields = name.split(separator: ".", omittingEmptySubsequences: false)
        if fields.count == 5, fields[0].count == 20, Int64(fields[0]) != nil, fields[1] == "checkpoint", fields[4] == "parquet" {
            return Int(fields[2]) != nil && Int(fields[3]) != nil  // a part of a multi-part checkpoint
        }
        return DeltaLogListing(names: [name]).logFiles == [name]
    }

    init(names: [String]) {
        var multi: [Int64: [Int: [Int: String]]] = [:]  // version → parts → part → name
        for name in names {
            // Most names are commits: read on bytes (a log of thousands is listed several times a run).
            if let v = Self.commitVersion(name) {
                versions.append(v)
                continue
            }
            if name == "_last_checkpoint" { hasLastCheckpoint = true; continue }
            if name.hasPrefix("_sidecars/") {
                // Sidecars are Parquet files; hidden files (a local file system's `.x.crc`) are not.
                let file = name.dropFirst("_sidecars/".count)
                if !file.contains("/"), !file.hasPrefix("."), file.hasSuffix(".parquet") { sidecars.append(name) }
                continue
            }
            guard !name.contains("/") else { continue }
            let fields = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let first = fields.first, first.count == 20, let v = Int64(first) else { continue }
            switch fields.count {
            case 2 where fields[1] == "json": versions.append(v)
            case 2 where fields[1] == "crc": checksums[v] = name
            case 3 where fields[1] == "checkpoint" && fields[2] == "parquet":
                checkpoints.append(Checkpoint(version: v, kind: .classic, names: [name]))
            case 4 where fields[1] == "checkpoint" && (fields[3] == "json" || fields[3] == "parquet") && UUID(uuidString: fields[2]) != nil:
                checkpoints.append(Checkpoint(version: v, kind: .uuid, names: [name]))
            case 5 where fields[1] == "checkpoint" && fields[4] == "parquet":
                if let o = Int(fields[2]), let p = Int(fields[3]), p > 1, (1...p).contains(o) { multi[v, default: [:]][p, default: [:]][o] = name }
            case 4 where fields[2] == "compacted" && fields[3] == "json" && fields[1].count == 20:
                compactions.append(name)
            default:
                break
            }
        }
        for (v, byParts) in multi {
            for (p, parts) in byParts where parts.count == p {
                checkpoints.append(Checkpoint(version: v, kind: .multiPart, names: (1...p).map { parts[$0]! }))
            }
        }
        versions.sort()
        // Newest first; at one version a UUID-named checkpoint, then a classic one, then multi-part.
        let rank: (Checkpoint.Kind) -> Int = { $0 == .uuid ? 0 : $0 == .classic ? 1 : 2 }
        checkpoints.sort { $0.version != $1.version ? $0.version > $1.version : rank($0.kind) < rank($1.kind) }
        compactions.sort()
        sidecars.sort()
    }

    /// The version of a commit's name (`NNNNNNNNNNNNNNNNNNNN.json`, twenty digits), nil for any other
    /// name (which the general reading then decides, e.g. a version that does not fit 64 bits).
    static func commitVersion(_ name: String) -> Int64? {
        var name = name
        return name.withUTF8 { b -> Int64? in
            guard b.count == 25, b[20] == 0x2E, b[21] == 0x6A, b[22] == 0x73, b[23] == 0x6F, b[24] == 0x6E else { return nil }
            var v: Int64 = 0
            for i in 0..<20 {
                let d = b[i] &- 0x30
                guard d < 10 else { return nil }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(d))
                guard !o1, !o2 else { return nil }
                v = a
            }
            return v
        }
    }
}

/// The identity of a logical file in log replay (protocol: "Action Reconciliation"): the data
/// file's `path` and the unique id of its deletion vector (nil without one).
public struct LogicalFileKey: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var dvID: String?

    public init(path: String, deletionVector: JSONValue?) {
        self.path = path
        self.dvID = deletionVector.flatMap(Self.uniqueID)
    }

    /// `<storageType><pathOrInlineDv>` or, with an offset, `<storageType><pathOrInlineDv>@<offset>`.
    static func uniqueID(_ dv: JSONValue) -> String? {
        guard let o = dv.object, let st = o["storageType"]?.string, let p = o["pathOrInlineDv"]?.string else { return nil }
        if let off = o["offset"], !off.isNull, let n = off.int { return "\(st)\(p)@\(n)" }
        return st + p
    }

    public var description: String { dvID.map { "\(path) (deletion vector \($0))" } ?? path }
}

extension AddFile {
    public var logicalKey: LogicalFileKey { LogicalFileKey(path: path, deletionVector: deletionVector) }
}

extension RemoveFile {
    public var logicalKey: LogicalFileKey { LogicalFileKey(path: path, deletionVector: deletionVector) }
}

extension DeltaTable {
    /// The actions of commit `version`, nil when the log no longer holds it (cleaned up).
    public func commitIfPresent(_ version: Int64) async throws -> [DeltaAction]? {
        let name = Self.commitName(version)
        let bytes: [UInt8]
        do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound { return nil }
        return try parseCommit(bytes, name: name)
    }

    /// Lists `_delta_log` once.
    public func listLog() async throws -> DeltaLogListing {
        let names = try await store.listKeys(prefix: logPrefix).map { String($0.dropFirst(logPrefix.count + 1)) }
        return DeltaLogListing(names: names)
    }

    /// The log from the checkpoint `_last_checkpoint` names on (`from`: its version), listed after
    /// that version's name (keys sort by their UTF-8 bytes: the zero-padded versions in order, then
    /// `_last_checkpoint` and `_sidecars/`), so a long log costs one listing page instead of one per
    /// thousand files. The pointer is a hint (protocol: "Last Checkpoint File"): nil when it is
    /// absent or does not read, or when the listing holds no complete checkpoint of its version
    /// (stale): then the whole log must be listed (`listLog`).
    public func listLogTail() async throws -> (listing: DeltaLogListing, from: Int64)? {
        let pointer: [UInt8]
        do { pointer = try await store.read(logKey("_last_checkpoint")) } catch let e as LetheError where e.code == .notFound { return nil }
        guard let j = try? JSONValue.parse(pointer), let v = j["version"]?.int, v >= 0 else { return nil }
        var names: [String] = []
        for try await page in store.list(prefix: logPrefix, startAfter: logKey(Self.versionDigits(v))) {
            for o in page { names.append(String(o.key.dropFirst(logPrefix.count + 1))) }
        }
        let listing = DeltaLogListing(names: names)
        guard listing.checkpoints.contains(where: { $0.version == v }) else { return nil }
        return (listing, v)
    }
}

/// The data and change data files a table's retained log names besides its latest snapshot's.
public struct DeltaHistory: Sendable {
    /// Log paths of data files no longer live, by tombstone or by a retained commit's `add`/`remove`.
    public var dataFiles: Set<String>
    /// Change data files named by any retained commit.
    public var changeData: [CDCFile]
    /// The partition values the log gives each of `dataFiles` (an `add`'s, or a `remove`'s when it has them).
    public var partitionValues: [String: [String: String?]] = [:]
    /// Per log path, every retained JSON commit whose `add`, `remove` or `cdc` names it, ascending:
    /// the snapshot's replayed commits and those before its checkpoint.
    public var namedIn: [String: [Int64]] = [:]
    /// The retained commits whose commitInfo is Lethe's VACUUM START or VACUUM END
    /// (`DeltaTable.isLetheVacuum`), ascending; complete only for a history read without `naming`.
    public var letheVacuums: [Int64] = []
}

extension DeltaTable {
    /// True for the commitInfo of Lethe's VACUUM START or VACUUM END (what `hasOpenVacuumStart` looks for).
    public static func isLetheVacuum(_ info: [String: JSONValue]) -> Bool {
        guard (info["engineInfo"]?.string ?? "").hasPrefix("Lethe/") else { return false }
        let op = info["operation"]?.string
        return op == "VACUUM START" || op == "VACUUM END"
    }

    /// Every data file time travel can still reach that is not live in `s`: the snapshot's
    /// tombstones, and the files named by the commits still in the log from before the checkpoint
    /// the snapshot started from (a checkpoint keeps only unexpired tombstones, and no `cdc`
    /// action, while those commits still replay older versions). Change data files likewise.
    ///
    /// `naming`: file names (last path components, as the log spells them) the caller asks about.
    /// Then a commit from before the checkpoint is parsed only when its bytes hold one of them or a
    /// `cdc` action, so `dataFiles` holds the tombstones and those files only, every change data
    /// file is there, `namedIn` is complete for both, and `partitionValues` is not filled in.
    public func history(of s: Snapshot, naming: [String]? = nil) async throws -> DeltaHistory {
        var data = Set(s.tombstones.keys)
        var cdc = s.cdcFiles
        var values: [String: [String: String?]] = [:]
        for (p, r) in s.tombstones { if let v = r.raw["partitionValues"]?.object { values[p] = v.mapValues(\.string) } }
        var namedIn: [String: [Int64]] = [:]
        var vacuums: [Int64] = []
        if let cp = s.checkpoint {
            let older = try await versions().filter { $0 <= cp.version }
            let prefilter = naming.map { NeedleSet(($0 + ["\"cdc\""]).map { Array($0.utf8) }) }
            let commits = try await boundedMap(older, limit: 8) { [self] v -> [DeltaAction] in
                guard let prefilter else { return try await commit(v) }
                let name = Self.commitName(v)
                let bytes: [UInt8]
                do { bytes = try await store.read(logKey(name)) } catch let e as LetheError where e.code == .notFound {
                    throw DeltaError.corrupt(root, "commit \(v) is missing", file: name)
                }
                return prefilter.containsAny(bytes) ? try parseCommit(bytes, name: name) : []
            }
            var seen = Set(cdc.map(\.path))
            func note(_ path: String, _ v: Int64) { if namedIn[path]?.last != v { namedIn[path, default: []].append(v) } }
            for (v, actions) in zip(older, commits) {
                for a in actions {
                    switch a {
                    case .add(let f): data.insert(f.path); values[f.path] = f.partitionValues; note(f.path, v)
                    case .remove(let r):
                        data.insert(r.path)
                        note(r.path, v)
                        if values[r.path] == nil, let v = r.raw["partitionValues"]?.object { values[r.path] = v.mapValues(\.string) }
                    case .cdc(let c):
                        note(c.path, v)
                        if !seen.contains(c.path) { cdc.append(c); seen.insert(c.path) }
                    case .commitInfo(let info): if Self.isLetheVacuum(info) && vacuums.last != v { vacuums.append(v) }
                    default: break
                    }
                }
            }
        }
        for v in s.commitInfos.keys.sorted() where Self.isLetheVacuum(s.commitInfos[v]!) && v > (vacuums.last ?? -1) { vacuums.append(v) }
        for (p, vs) in s.namedIn { namedIn[p, default: []] += vs }
        for p in s.files.keys { data.remove(p) }
        // A `remove` without extended metadata gives no partition values: the file's `add` in a
        // retained commit does (read only when some file lacks them). A file whose add the log no
        // longer holds keeps none (its Hive-style folder names are read instead).
        var missing: Set<String> = naming == nil ? data.filter { values[$0] == nil } : []
        if !missing.isEmpty {
            let after = try await versions().filter { $0 > (s.checkpoint?.version ?? -1) && $0 <= s.version }
            for v in after where !missing.isEmpty {
                for case .add(let f) in try await commit(v) where missing.contains(f.path) {
                    values[f.path] = f.partitionValues
                    missing.remove(f.path)
                }
            }
        }
        return DeltaHistory(
            dataFiles: data, changeData: cdc, partitionValues: values.filter { data.contains($0.key) }, namedIn: namedIn,
            letheVacuums: vacuums)
    }
}
