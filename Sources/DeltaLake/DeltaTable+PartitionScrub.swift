import Foundation
import LetheCore
import LetheStorage
import Parquet
import Synchronization

/// Test hook: `LETHE_FAILPOINT_EXIT_AFTER_SCRUB_WRITES=N` ends the process abruptly (exit 86, as a
/// `kill -9` would leave it) right after the partition scrub's N-th change of the lake.
enum ScrubFailpoint {
    static let limit: Int? = ProcessInfo.processInfo.environment["LETHE_FAILPOINT_EXIT_AFTER_SCRUB_WRITES"].flatMap(Int.init)
    static let writes = Atomic<Int>(0)
    static func changed() {
        guard let limit else { return }
        if writes.add(1, ordering: .relaxed).newValue >= limit { _exit(86) }
    }
}

extension DeltaTable {
    /// Takes the names of erased partitions out of the log: a file whose partition value
    /// is a subject (`year=2021/part-….parquet` in a table partitioned by the subject) is
    /// named by every `add`/`remove` of it. Each such action gets the new path `renamed`
    /// gives (a keyed, non-identifying name: the file itself is gone, so time travel to a
    /// version that read it fails as after any vacuum, and the replay still pairs each
    /// `add` with its `remove`) and null for the partition values in `columns`; the change
    /// data files of `dropChangeData` (every row of them is the subject's) are deleted, and
    /// their `cdc` actions name an empty file of the same schema under the keyed name instead
    /// (`_change_data/` + the new name), so the change feed of those versions still reads.
    /// Commits are replaced atomically (compare-and-swap on the version read), in three passes
    /// ordered so that the log any cut between two replacements leaves replays to the same live
    /// files (every reader can read the table), and a resumed call finishes the work; checkpoints
    /// holding the old names are removed with `_last_checkpoint` when the JSON log replays from
    /// version 0. Returns the object keys deleted. Live files are never renamed (the caller
    /// passes history only).
    public func scrubPartitionNames(
        renamed: [String: String], dropChangeData: Set<String>,
        columns: Set<String>
    ) async throws -> [String] {
        guard !renamed.isEmpty || !dropChangeData.isEmpty else { return [] }
        let snap = try await snapshot()
        let checkpointed = try await checkpointedPaths()
        for p in renamed.keys where snap.files[p] != nil {
            throw LetheError(.conflict, "file \(p) is live at version \(snap.version): only history is renamed", at: root)
        }
        let versions = try await versions()
        // A checkpoint that stands for commits already cleaned up holds the names of the files it
        // lists; renaming them only in the commits after it would unpair an `add` from its `remove`
        // and corrupt the table. Files the checkpoints do not name (added after them) are renamed.
        let wanted = renamed
        let renamed = versions.first == 0 ? renamed : renamed.filter { !checkpointed.contains($0.key) }
        // Change data files of erased partitions hold only the subject's rows: each is replaced by
        // an empty one (same schema) under a keyed name, so a version whose changes were read from
        // it still reads (no change) instead of falling back to its removed, renamed data files.
        var emptied: [String: (path: String, size: Int64)] = [:]
        for p in dropChangeData.sorted() {
            guard let name = renamed[p] else { continue }
            let newPath = "_change_data/" + name
            let newKey = key(forLogPath: newPath)
            if let done = try await store.head(newKey) { emptied[p] = (newPath, done.size); continue }
            let k = key(forLogPath: p)
            guard try await store.head(k) != nil else { continue }
            let file: ParquetFile
            do { file = try ParquetFile(bytes: try await store.read(k), name: k) } catch { continue }
            var sink = InMemorySink()
            do { _ = try file.rewrite(droppingRows: Array(0..<file.numRows), to: &sink) } catch { continue }
            try await store.put(newKey, sink.bytes, precondition: .absent)
            ScrubFailpoint.changed()
            emptied[p] = (newPath, Int64(sink.bytes.count))
        }
        func base(_ p: String) -> [UInt8] { Array((p.split(separator: "/").last.map(String.init) ?? p).utf8) }
        let prefilter = NeedleSet(renamed.keys.map(base) + dropChangeData.map(base))
        // Three passes over the commits, each commit replaced atomically, so that a cut between any two
        // replacements (a crash, a full disk) leaves a log every reader replays to the same live files:
        //  1. beside each `remove` of a renamed file, a `remove` of its new name (a tombstone of a file
        //     never added is harmless), and `cdc` actions of dropped change data name their empty copy;
        //  2. each `add` of a renamed file takes the new name (it stays paired with the new `remove`);
        //     then the checkpoints that still hold the old names go, `_last_checkpoint` first (the JSON
        //     log from version 0 replays without them);
        //  3. the `remove`s of the old names go (no `add` names them any more).
        // A resumed run finds the old names still in the log and finishes the passes; each is idempotent.
        for pass in 1...3 {
            if pass == 3, !renamed.isEmpty, versions.first == 0 {
                let checkpoints = try await store.listKeys(prefix: logPrefix).filter { $0.contains(".checkpoint.") }
                if !checkpoints.isEmpty {
                    if try await store.head(logKey("_last_checkpoint")) != nil {
                        try await store.delete(logKey("_last_checkpoint"))
                        ScrubFailpoint.changed()
                    }
                    for k in checkpoints {
                        try await store.delete(k)
                        ScrubFailpoint.changed()
                    }
                }
            }
            for v in versions {
                let name = Self.commitName(v)
                guard let head = try await store.head(logKey(name)) else { continue }
                let bytes = try await store.read(logKey(name))
                guard prefilter.containsAny(bytes) else { continue }
                let actions = try parseCommit(bytes, name: name)
                guard
                    let out = Self.scrubPass(
                        pass, actions, renamed: renamed, emptied: emptied, dropChangeData: dropChangeData,
                        columns: columns)
                else { continue }
                let text = out.map(\.line).joined(separator: "\n") + (out.isEmpty ? "" : "\n")
                try await store.put(logKey(name), Array(text.utf8), precondition: .matches(version: head.version))
                ScrubFailpoint.changed()
            }
        }
        // The folders of erased partitions empty out once the Hadoop checksum files beside their data files go too.
        for p in wanted.keys.sorted() { try await deleteChecksumSidecar(of: key(forLogPath: p)) }
        var deleted: [String] = []
        for p in dropChangeData.sorted() {
            let k = key(forLogPath: p)
            if try await store.head(k) != nil {
                try await store.delete(k)
                ScrubFailpoint.changed()
                deleted.append(k)
            }
            try await deleteChecksumSidecar(of: k)
        }
        if renamed.count != wanted.count {
            throw LetheError(
                .unsupported,
                "the table's commits before version \(versions.first ?? 0) are cleaned up, so its checkpoint names \(wanted.count - renamed.count) file(s) of erased partitions; Lethe does not rewrite checkpoints' paths, so those names stay in the log",
                at: root)
        }
        return deleted
    }

    /// One commit's actions after pass `pass` of the partition scrub (see `scrubPartitionNames`); nil when unchanged.
    static func scrubPass(
        _ pass: Int, _ actions: [DeltaAction], renamed: [String: String],
        emptied: [String: (path: String, size: Int64)], dropChangeData: Set<String>,
        columns: Set<String>
    ) -> [DeltaAction]? {
        func renaming(_ r: RemoveFile, to path: String) -> RemoveFile {
            var r = r
            r.path = path
            r.raw["path"] = .string(path)
            if r.raw["partitionValues"] != nil { r.raw["partitionValues"] = nulling(r.raw["partitionValues"], columns) }
            return r
        }
        let removedPaths = Set(
            actions.compactMap { a -> String? in
                if case .remove(let r) = a { return r.path }; return nil
            })
        var changed = false
        var out: [DeltaAction] = []
        for a in actions {
            switch (pass, a) {
            case (1, .remove(let r)) where renamed[r.path] != nil:
                out.append(a)
                if !removedPaths.contains(renamed[r.path]!) {
                    out.append(.remove(renaming(r, to: renamed[r.path]!)))
                    changed = true
                }
            case (1, .cdc(var c)) where dropChangeData.contains(c.path):
                if let e = emptied[c.path] {
                    c.path = e.path
                    c.size = e.size
                    c.raw["path"] = .string(e.path)
                    c.raw["size"] = .int(e.size)
                    c.raw["partitionValues"] = nulling(c.raw["partitionValues"], columns)
                    out.append(.cdc(c))
                }
                changed = true
            case (2, .add(var f)) where renamed[f.path] != nil:
                f.path = renamed[f.path]!
                f.raw["path"] = .string(f.path)
                f.raw["partitionValues"] = nulling(f.raw["partitionValues"], columns)
                for c in columns where f.partitionValues[c] != nil { f.partitionValues[c] = .some(nil) }
                out.append(.add(f))
                changed = true
            case (3, .remove(let r)) where renamed[r.path] != nil:
                // Its new name's `remove` stands beside it since pass 1; without one (never expected) it is renamed instead.
                if !removedPaths.contains(renamed[r.path]!) { out.append(.remove(renaming(r, to: renamed[r.path]!))) }
                changed = true
            default:
                out.append(a)
            }
        }
        return changed ? out : nil
    }

    /// The data file paths the table's checkpoints (and their sidecars) name in `add`/`remove` actions.
    func checkpointedPaths() async throws -> Set<String> {
        var out = Set<String>()
        for k in try await store.listKeys(prefix: logPrefix) where k.contains(".checkpoint.") || k.contains("/_sidecars/") {
            let name = String(k.dropFirst(logPrefix.count + 1))
            let base = name.split(separator: "/").last.map(String.init) ?? name
            guard !base.hasPrefix("."), base.hasSuffix(".parquet") || base.hasSuffix(".json") else { continue }  // not a .crc
            let bytes = try await store.read(k)
            let actions =
                name.hasSuffix(".json")
                ? try parseCommit(bytes, name: name)
                : try CheckpointReader.actions(bytes, name: name, table: root).actions
            for a in actions {
                switch a {
                case .add(let f): out.insert(f.path)
                case .remove(let r): out.insert(r.path)
                default: break
                }
            }
        }
        return out
    }

    /// Deletes the Hadoop checksum file (`.name.crc`) Spark writes next to a data file, if any.
    public func deleteChecksumSidecar(of key: String) async throws {
        let slash = key.lastIndex(of: "/")
        let sidecar = slash.map { String(key[...$0]) + "." + String(key[key.index(after: $0)...]) + ".crc" } ?? "." + key + ".crc"
        if try await store.head(sidecar) != nil { try await store.delete(sidecar) }
    }

    /// `partitionValues` with the given columns set to null.
    static func nulling(_ values: JSONValue?, _ columns: Set<String>) -> JSONValue? {
        guard var o = values?.object else { return values }
        for c in columns where o[c] != nil { o[c] = .null }
        return .object(o)
    }
}
