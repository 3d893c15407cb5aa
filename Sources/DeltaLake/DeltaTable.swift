import Foundation
import LetheCore
import LetheStorage

/// A table's state at one version: the result of replaying its log.
public struct Snapshot: Sendable {
    public var version: Int64
    public var tableProtocol: TableProtocol
    public var metadata: TableMetadata
    /// Live data files by log path.
    public var files: [String: AddFile]
    /// Removed files not yet expired, by log path (readable by time travel until vacuumed).
    public var tombstones: [String: RemoveFile]
    /// Change data files written by the replayed commits.
    public var cdcFiles: [CDCFile]
    /// commitInfo of each replayed version.
    public var commitInfos: [Int64: [String: DeltaJSON]]
}

/// A Delta table under a prefix of an object store.
public struct DeltaTable: Sendable {
    public let store: any ObjectStore
    /// The table root's key prefix (no trailing slash).
    public let root: String

    /// Reader features Lethe implements; a table needing any other is refused by name.
    public static let supportedReaderFeatures: Set<String> = ["timestampNtz", "vacuumProtocolCheck", "columnMapping", "variantType", "deletionVectors"]
    /// Writer features whose rules an erasure commit keeps (it only deletes rows).
    public static let supportedWriterFeatures: Set<String> = [
        "appendOnly", "invariants", "checkConstraints", "generatedColumns", "identityColumns",
        "timestampNtz", "vacuumProtocolCheck", "domainMetadata", "columnMapping", "changeDataFeed", "variantType", "deletionVectors",
    ]

    public init(store: any ObjectStore, root: String) {
        var r = root
        while r.hasSuffix("/") { r.removeLast() }
        self.store = store
        self.root = r
    }

    var logPrefix: String { root.isEmpty ? "_delta_log" : root + "/_delta_log" }
    func logKey(_ name: String) -> String { logPrefix + "/" + name }
    /// The object key of a file named in the log.
    public func key(forLogPath path: String) -> String {
        let p = decodeDeltaPath(path)
        return root.isEmpty ? p : root + "/" + p
    }

    public static func commitName(_ v: Int64) -> String { String(format: "%020lld.json", v) }

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

    /// The checkpoint `_last_checkpoint` names, if any.
    public func lastCheckpoint() async throws -> (version: Int64, parts: Int?, size: Int64?)? {
        guard try await store.head(logKey("_last_checkpoint")) != nil else { return nil }
        let bytes = try await store.read(logKey("_last_checkpoint"))
        guard let j = try? DeltaJSON.parse(bytes), let v = j["version"]?.int else {
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

    /// Replays the log to `version` (default: the latest).
    public func snapshot(version: Int64? = nil) async throws -> Snapshot {
        let vs = try await versions()
        let checkpoint = try await lastCheckpoint()
        guard let latest = vs.last ?? checkpoint?.version else {
            throw LetheError(.notFound, "not a Delta table: no commits in _delta_log", at: root)
        }
        let target = version ?? latest
        guard target <= latest else { throw LetheError(.notFound, "version \(target) does not exist (latest is \(latest))", at: root) }
        var proto: TableProtocol?
        var meta: TableMetadata?
        var files: [String: AddFile] = [:]
        var tombstones: [String: RemoveFile] = [:]
        var cdc: [CDCFile] = []
        var infos: [Int64: [String: DeltaJSON]] = [:]
        func apply(_ a: DeltaAction, at v: Int64?) {
            switch a {
            case .add(let f): files[f.path] = f; tombstones[f.path] = nil
            case .remove(let r): files[r.path] = nil; tombstones[r.path] = r
            case .metadata(let m): meta = m
            case .protocol(let p): proto = p
            case .cdc(let c): cdc.append(c)
            case .commitInfo(let c): if let v { infos[v] = c }
            case .other: break
            }
        }
        // Start from the checkpoint `_last_checkpoint` names when it is at or before the target.
        var from: Int64 = 0
        if let cp = checkpoint, cp.version <= target {
            var rows: Int64 = 0
            for name in CheckpointReader.files(version: cp.version, parts: cp.parts) {
                guard try await store.head(logKey(name)) != nil else {
                    throw DeltaError.corrupt(root, "_last_checkpoint names version \(cp.version), but checkpoint \(name) is missing", file: "_last_checkpoint")
                }
                let read = try CheckpointReader.actions(try await store.read(logKey(name)), name: name, table: root)
                rows += read.rows
                for a in read.actions { apply(a, at: nil) }
            }
            if let size = cp.size, size != rows {
                throw DeltaError.corrupt(root, "_last_checkpoint says the checkpoint of version \(cp.version) holds \(size) actions, but it holds \(rows)", file: "_last_checkpoint")
            }
            from = cp.version + 1
        } else if vs.first != 0 {
            throw DeltaError.corrupt(root, "commits before \(vs[0]) were cleaned up and no checkpoint covers version \(target)")
        }
        if from <= target {
            guard from >= (vs.first ?? from) else {
                throw DeltaError.corrupt(root, "commit \(from) is missing after the checkpoint")
            }
            for v in from...target {
                for a in try await commit(v) { apply(a, at: v) }
            }
        }
        guard let proto else { throw DeltaError.corrupt(root, "no `protocol` action up to version \(target)") }
        guard let meta else { throw DeltaError.corrupt(root, "no `metaData` action up to version \(target)") }
        return Snapshot(version: target, tableProtocol: proto, metadata: meta, files: files,
                        tombstones: tombstones, cdcFiles: cdc, commitInfos: infos)
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
        if !["none", "name"].contains(s.metadata.columnMappingMode) {
            throw DeltaError.unsupported(root, "column mapping mode `\(s.metadata.columnMappingMode)` is not supported (only `name`)")
        }
        if p.minReaderVersion == 3 {
            for f in p.readerFeatures where !Self.supportedReaderFeatures.contains(f) {
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
            for f in p.writerFeatures where !Self.supportedWriterFeatures.contains(f) {
                throw DeltaError.unsupported(root, "table feature `\(f)` is not supported for writing yet")
            }
        }
    }

    /// Writes commit `version` if no one else has (put-if-absent). Throws `.conflict` when the version exists.
    public func commit(_ actions: [DeltaAction], version: Int64) async throws {
        let text = actions.map(\.line).joined(separator: "\n") + "\n"
        do {
            try await store.put(logKey(Self.commitName(version)), Array(text.utf8), precondition: .absent)
        } catch let e as LetheError where e.code == .conflict {
            throw LetheError(.conflict, "version \(version) was committed by another writer", at: root)
        }
    }
}
