import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
import Parquet

/// Runs scripts/delta_tables.py (delta-rs) with the project's venv Python.
func deltaPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_tables.py")] + args, what: "delta_tables.py \(args.joined(separator: " "))")
}

struct DeltaFiles: Decodable { var version: Int64; var files: [String] }

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "lethe-delta-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Test func replayMatchesDeltaRsAtEveryVersion() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make", dir])
    let store = LocalObjectStore(root: dir)
    for name in ["plain", "parted"] {
        let table = DeltaTable(store: store, root: name)
        let versions = try await table.versions()
        #expect(versions.first == 0)
        for v in versions {
            let theirs = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/" + name, String(v)]).utf8))
            let mine = try await table.snapshot(version: v)
            #expect(mine.version == theirs.version)
            #expect(mine.files.keys.map(decodeDeltaPath).sorted() == theirs.files.map(decodeDeltaPath).sorted(), "\(name)@\(v)")
            try table.checkReadable(mine)
        }
    }
    let plain = try await DeltaTable(store: store, root: "plain").snapshot()
    #expect(plain.version == 3)
    #expect(!plain.tombstones.isEmpty)  // the delete's superseded files stay reachable by time travel
    #expect(plain.commitInfos[2]?["operation"]?.string == "DELETE")
    let parted = try await DeltaTable(store: store, root: "parted").snapshot()
    #expect(parted.metadata.partitionColumns == ["country"])
    #expect(parted.files.values.allSatisfy { $0.partitionValues["country"] != nil })
    for f in parted.files.values {
        #expect(try await store.head(DeltaTable(store: store, root: "parted").key(forLogPath: f.path)) != nil)
    }
}

@Test func aCommitWrittenByLetheIsReadByDeltaRsAndCommitsAreExclusive() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make", dir])
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "plain")
    let s = try await table.snapshot()
    try table.checkWritable(s)
    // Remove one live file (a whole-file delete) with a DELETE commitInfo.
    let victim = s.files.values.sorted { $0.path < $1.path }[0]
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let actions: [DeltaAction] = [
        .commitInfo([
            "timestamp": .int(now), "operation": .string("DELETE"),
            "operationParameters": .object(["predicate": .string("lethe erasure")]),
        ]),
        .remove(RemoveFile(removing: victim, at: now)),
    ]
    try await table.commit(actions, version: s.version + 1)
    await #expect(throws: LetheError.self) { try await table.commit(actions, version: s.version + 1) }
    let theirs = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/plain"]).utf8))
    #expect(theirs.version == s.version + 1)
    #expect(!theirs.files.map(decodeDeltaPath).contains(decodeDeltaPath(victim.path)))
    #expect(try deltaPy(["history", dir + "/plain"]).contains("DELETE"))
    let after = try await table.snapshot()
    #expect(after.files.count == s.files.count - 1)
    #expect(after.tombstones[victim.path] != nil)
}

@Test func badLogsAreReportedNamingTableVersionAndFile() async throws {
    let store = InMemoryObjectStore()
    let table = DeltaTable(store: store, root: "t")
    let proto = #"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#
    let meta = #"{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{}","partitionColumns":[],"configuration":{}}}"#
    store.set("t/_delta_log/00000000000000000000.json", Array((proto + "\n" + meta + "\n").utf8))
    store.set(
        "t/_delta_log/00000000000000000002.json",
        Array(#"{"add":{"path":"a.parquet","size":1,"modificationTime":0,"dataChange":true,"partitionValues":{}}}"#.utf8))
    do { _ = try await table.snapshot(); Issue.record("gap accepted") } catch let e as LetheError {
        #expect(e.code == .corrupt && e.message.contains("version 1 is missing"))
    }
    store.set("t/_delta_log/00000000000000000001.json", Array("{not json\n".utf8))
    do { _ = try await table.snapshot(); Issue.record("corrupt commit accepted") } catch let e as LetheError {
        #expect(e.code == .corrupt)
        #expect(e.location == "t/_delta_log/00000000000000000001.json")
        #expect(e.message.contains("line 1"))
    }
    store.set(
        "t/_delta_log/00000000000000000001.json",
        Array(#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["catalogManaged"],"writerFeatures":["catalogManaged"]}}"#.utf8))
    let s = try await table.snapshot()
    #expect(throws: LetheError.self) { try table.checkReadable(s) }
    do { try table.checkReadable(s) } catch let e as LetheError { #expect(e.code == .unsupported && e.message.contains("`catalogManaged`")) }
    #expect(try await table.snapshot(version: 0).files.isEmpty)
    await #expect(throws: LetheError.self) { _ = try await table.snapshot(version: 9) }
}

@Test func checkpointsWrittenByDeltaRsReplayLikeTheJSONLog() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make", dir])
    let store = LocalObjectStore(root: dir)
    for name in ["plain", "parted"] {
        let table = DeltaTable(store: store, root: name)
        let fromJSON = try await table.snapshot()
        _ = try deltaPy(["checkpoint", dir + "/" + name])
        let cp = try #require(try await table.lastCheckpoint())
        #expect(cp.version == fromJSON.version)
        let fromCheckpoint = try await table.snapshot()
        #expect(Set(fromCheckpoint.files.keys) == Set(fromJSON.files.keys))
        #expect(fromCheckpoint.files.mapValues(\.size) == fromJSON.files.mapValues(\.size))
        #expect(fromCheckpoint.files.mapValues(\.partitionValues) == fromJSON.files.mapValues(\.partitionValues))
        #expect(fromCheckpoint.metadata.partitionColumns == fromJSON.metadata.partitionColumns)
        #expect(fromCheckpoint.metadata.schemaString == fromJSON.metadata.schemaString)
        #expect(fromCheckpoint.tableProtocol.minReaderVersion == fromJSON.tableProtocol.minReaderVersion)
        #expect(Set(fromCheckpoint.tombstones.keys) == Set(fromJSON.tombstones.keys))
        // The early commits are cleaned up: the checkpoint alone still gives the table, and delta-rs agrees.
        for v in 0...cp.version { try await store.delete("\(name)/_delta_log/" + DeltaTable.commitName(v)) }
        let theirs = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/" + name]).utf8))
        let onlyCheckpoint = try await table.snapshot()
        #expect(onlyCheckpoint.files.keys.map(decodeDeltaPath).sorted() == theirs.files.map(decodeDeltaPath).sorted())
        // `_last_checkpoint` is a hint (the protocol's "Last Checkpoint File"): a `size` that disagrees
        // with the checkpoint does not matter, as for delta-rs.
        let pointer = "\(name)/_delta_log/_last_checkpoint"
        let original = try await store.read(pointer)
        var j = try #require(try JSONSerialization.jsonObject(with: Data(original)) as? [String: Any])
        let size = try #require(j["size"] as? Int)
        j["size"] = size + 1
        _ = try await store.put(pointer, Array(try JSONSerialization.data(withJSONObject: j)))
        #expect(try await table.snapshot().files.keys.sorted() == onlyCheckpoint.files.keys.sorted())
        let theirsAgain = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/" + name]).utf8))
        #expect(theirsAgain.files.sorted() == theirs.files.sorted())
        _ = try await store.put(pointer, original)
        // Without the checkpoint nothing covers the table any more: an error, nothing guessed.
        try await store.delete("\(name)/_delta_log/" + String(format: "%020lld.checkpoint.parquet", cp.version))
        do { _ = try await table.snapshot(); Issue.record("a table without its commits and checkpoint was read") } catch let e as LetheError {
            #expect(e.code == .notFound || e.code == .corrupt, "\(e)")
        }
    }
}

@Test func aVacuumResumedAfterRewritingAChangeDataFileSetsItsLoggedSizeRight() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make-features", dir])
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "cdf")
    let cdc = try #require(try await table.snapshot().cdcFiles.first)
    let key = table.key(forLogPath: cdc.path)
    // A vacuum died after replacing the change data file (here: without its first row) and
    // before scrubbing the log: the `cdc` action's size is stale.
    var sink = InMemorySink()
    _ = try ParquetFile(bytes: try await store.read(key), name: key).rewrite(droppingRows: [0], to: &sink)
    _ = try await store.put(key, sink.bytes)
    #expect(Int64(sink.bytes.count) != cdc.size)
    // The resumed vacuum finds no row left to drop and sets the size from the file.
    let r = try await table.vacuumTargeted(paths: [], changeData: [cdc.path: []], now: 1)
    #expect(r.rewrittenChangeData.isEmpty && r.scrubbedCommits.count == 1)
    let logged = try #require(try await table.snapshot().cdcFiles.first { $0.path == cdc.path })
    #expect(logged.size == Int64(sink.bytes.count))
    #expect(try deltaPy(["cdf", dir + "/cdf", "1"]).contains("\"delete\""))  // delta-rs reads the feed again
}

/// A checkpoint's `stats` texts are parsed only where a subject's value stands in them (or an
/// escape could spell one): the bounds delta-rs wrote are still found, and a value that is no
/// bound is not; a column compared in canonical form (a number) is never prefiltered.
@Test func checkpointStatisticsAreFoundThroughTheBytePrefilter() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make", dir])
    _ = try deltaPy(["checkpoint", dir + "/plain"])
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "plain")
    let checkpoint = try #require(try await table.listLog().checkpoints.first).names[0]
    func checkpointHits(_ s: SubjectValues) async throws -> [String] {
        try await table.logResidue(s, names: [checkpoint]).flatMap(\.fields)
    }
    // u-0 and u-6 are the bounds of the user_id column in every file (ids are u-0 … u-6).
    let bounds = SubjectValues(columns: [["user_id"]], values: ["u-0", "u-6"])
    #expect(bounds.literalStatsNeedles != nil)
    #expect(Set(try await checkpointHits(bounds)) == ["add.stats.maxValues.user_id", "add.stats.minValues.user_id"])
    #expect(try await checkpointHits(SubjectValues(columns: [["user_id"]], values: ["u-3"])).isEmpty)
    // Numbers are compared by value (`5` is `5.0`): no prefilter, the bound is found.
    let numbers = SubjectValues(columns: [["n"]], values: ["0"])
    #expect(numbers.literalStatsNeedles == nil)
    #expect(try await checkpointHits(numbers).contains("add.stats.minValues.n"))
    var typed = SubjectValues(columns: [["user_id"]], values: ["u-0"])
    typed.types = [0: .date]
    #expect(typed.literalStatsNeedles == nil)
}

/// `history(of:naming:)` parses only the commits before the checkpoint that name the files asked
/// about (or change data), and still gives those files, every change data file and where each is
/// named exactly as the full history does.
@Test func historyNamingSomeFilesAgreesWithTheFullHistoryOnThem() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make-features", dir])
    _ = try deltaPy(["checkpoint", dir + "/cdf"])
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "cdf")
    let s = try await table.snapshot()
    #expect(s.checkpoint != nil)
    let full = try await table.history(of: s)
    let removed = try #require(full.dataFiles.sorted().first)
    let name = String(removed.split(separator: "/").last!)
    let narrow = try await table.history(of: s, naming: [name])
    #expect(narrow.dataFiles.contains(removed))
    #expect(narrow.dataFiles.isSubset(of: full.dataFiles))
    #expect(narrow.namedIn[removed] == full.namedIn[removed])
    #expect(!full.changeData.isEmpty)
    #expect(Set(narrow.changeData.map(\.path)) == Set(full.changeData.map(\.path)))
    for c in full.changeData { #expect(narrow.namedIn[c.path] == full.namedIn[c.path]) }
    // A name no commit holds: only tombstones and change data.
    let none = try await table.history(of: s, naming: ["no-such-file.parquet"])
    #expect(none.dataFiles == Set(s.tombstones.keys).subtracting(s.files.keys))
}

/// With the whole log from version 0, a targeted vacuum reads only the checkpoints from the first
/// commit that adds a deleted file on: an older one cannot describe it (here it is made unreadable
/// to prove it is not read), and the newer one holding its statistics is removed.
@Test func aTargetedVacuumReadsOnlyTheCheckpointsThatCanDescribeTheFiles() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make-files", dir, "2"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-target"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "files")
    let added = try #require(try await table.commit(2).compactMap { a -> String? in if case .add(let f) = a { return f.path } else { return nil } }.first)
    _ = try deltaPy(["delete", dir + "/files", "user_id = 'zz-target'"])
    let older = "files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 1)
    #expect(try await store.head(older) != nil)
    try await store.put(older, Array("not a checkpoint".utf8))
    let subject = SubjectValues(columns: [["user_id"]], values: ["zz-target"])
    let r = try await table.vacuumTargeted(paths: [added], subject: subject, now: 1)
    #expect(r.deleted == ["files/" + added])
    // The newest checkpoint held its statistics: scrubbed and kept (readers start from it).
    #expect(r.rewrittenCheckpoints.contains("files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 2)), "\(r.rewrittenCheckpoints)")
    #expect(!r.removedCheckpoints.contains(older))
    #expect(try await table.logResidue(subject, names: try await table.listLog().logFiles.filter { $0 != String(older.split(separator: "/").last!) }).isEmpty)
}

/// With the whole log from version 0, a checkpoint at a version where a deleted file was live lists
/// that file (a checkpoint is the table's state at its version): an older one is removed without
/// being read (here it is made unreadable to prove it); the newest is scrubbed and kept, so the
/// table's next reader starts from it, and `_last_checkpoint` still names it.
@Test func aCheckpointWhereADeletedFileWasLiveIsRemovedUnread() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make-files", dir, "2"])
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-target"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-other"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "files")
    let added = try #require(try await table.commit(2).compactMap { a -> String? in if case .add(let f) = a { return f.path } else { return nil } }.first)
    _ = try deltaPy(["delete", dir + "/files", "user_id = 'zz-target'"])
    let older = "files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 2)
    let newest = "files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 3)
    #expect(try await store.head(older) != nil)
    #expect(try await store.head(newest) != nil)
    try await store.put(older, Array("not a checkpoint".utf8))
    let subject = SubjectValues(columns: [["user_id"]], values: ["zz-target"])
    let r = try await table.vacuumTargeted(paths: [added], subject: subject, now: 1)
    #expect(r.deleted == ["files/" + added])
    #expect(r.removedCheckpoints == [older], "\(r.removedCheckpoints)")
    #expect(r.rewrittenCheckpoints == [newest], "\(r.rewrittenCheckpoints)")
    #expect(try await store.head(older) == nil)
    let s = try await table.snapshot()
    #expect(s.files[added] == nil && s.checkpoint?.version == 3)
    #expect(try await table.logResidue(subject, names: try await table.listLog().logFiles).isEmpty)
    // delta-rs reads the table from the scrubbed checkpoint: every row but the target's.
    let rows = try deltaPy(["rows", dir + "/files"])
    #expect(!rows.contains("zz-target") && rows.contains("zz-other"), "\(rows)")
}

/// A table read through a snapshot cache: the kept snapshot is used while no commit follows, the
/// newer commits are replayed on top of it (the same snapshot as a full replay), and a commit
/// rewritten by someone else (here: the kept one, by hand) makes it a miss, replayed afresh.
@Test func aCachedSnapshotEqualsTheFullReplay() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try deltaPy(["make-files", dir, "3"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    let store = LocalObjectStore(root: dir)
    let cache = SnapshotCache()
    let cached = DeltaTable(store: store, root: "files", snapshots: cache)
    let plain = DeltaTable(store: store, root: "files")
    func same(_ a: Snapshot, _ b: Snapshot) {
        #expect(a.version == b.version)
        #expect(a.files.mapValues(\.size) == b.files.mapValues(\.size))
        #expect(Set(a.tombstones.keys) == Set(b.tombstones.keys) && Set(a.removed.keys) == Set(b.removed.keys))
        #expect(a.metadata.schemaString == b.metadata.schemaString)
        #expect(Set(a.commitInfos.keys).isSuperset(of: b.commitInfos.keys))
        for (p, vs) in b.namedIn { #expect(a.namedIn[p].map { Set(vs).isSubset(of: $0) } ?? false, "\(p)") }
    }
    let first = try await cached.snapshot()
    same(first, try await plain.snapshot())
    #expect(cache.entry("files")?.0.version == first.version)
    #expect(cache.served == .init(reused: 0, extended: 0, replayed: 1))
    same(try await cached.snapshot(), first)
    #expect(cache.served == .init(reused: 1, extended: 0, replayed: 1))  // nothing new: the kept one
    // Two more commits (an append and a delete): replayed on top of the kept snapshot.
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-target"])
    _ = try deltaPy(["delete", dir + "/files", "user_id = 'p0-1'"])
    let second = try await cached.snapshot()
    #expect(second.version == first.version + 2 && second.checkpoint?.version == first.checkpoint?.version)
    same(second, try await plain.snapshot())
    #expect(cache.served == .init(reused: 1, extended: 1, replayed: 1))  // the two commits on top, not a replay
    // The kept commit rewritten by another hand (same actions, new bytes on disk): a miss.
    let key = "files/_delta_log/" + DeltaTable.commitName(second.version)
    let bytes = try await store.read(key)
    try await store.put(key, bytes + Array("\n".utf8))
    let third = try await cached.snapshot()
    same(third, try await plain.snapshot())
    #expect(cache.served == .init(reused: 1, extended: 1, replayed: 2))
    #expect(try await store.head(key)?.version == cache.entry("files")?.1)
}

@Test func logPathsDecodeAsFoundationDecodesThem() {
    // Generated paths over the bytes that matter: escapes, bad escapes, non-UTF-8 results, `%` at the end.
    let alphabet: [String] = ["a", "/", "=", "%", "%2", "%20", "%2F", "%3d", "%C3%A9", "%C3", "%FF", "%zz", "é", " ", "+", "%25"]
    var rng = SystemRandomNumberGenerator()
    var cases = ["", "part-0.parquet", "x=%", "x=%2", "%", "y=caf%C3%A9/part.parquet", "z=%E2%82%AC"]
    for _ in 0..<5_000 {
        cases.append((0..<Int.random(in: 1...8, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined())
    }
    for path in cases {
        #expect(decodeDeltaPath(path) == (path.removingPercentEncoding ?? path), "\(path)")
    }
}

@Test func commitNamesAreReadOnBytesAsTheGeneralReadingReadsThem() {
    #expect(DeltaLogListing.commitVersion("00000000000000000042.json") == 42)
    #expect(DeltaLogListing.commitVersion("09223372036854775807.json") == Int64.max)
    for name in [
        "99999999999999999999.json", "0000000000000000042.json", "00000000000000000042.jsonx", "0000000000000000004a.json",
        "00000000000000000042.crc", "00000000000000000042.checkpoint.parquet", "-0000000000000000042.json",
    ] {
        #expect(DeltaLogListing.commitVersion(name) == nil, "\(name)")
    }
    let names = ["00000000000000000000.json", "00000000000000000001.json", "00000000000000000001.checkpoint.parquet", "_last_checkpoint"]
    let listing = DeltaLogListing(names: names)
    #expect(listing.versions == [0, 1] && listing.checkpoints.map(\.version) == [1] && listing.hasLastCheckpoint)
}
