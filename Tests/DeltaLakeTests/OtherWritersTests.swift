import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
import Parquet
import Synchronization

/// Runs scripts/delta_writers.py (tables shaped as Spark, Databricks and delta-kernel write them).
func writersPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_writers.py")] + args, what: "delta_writers.py \(args.prefix(2).joined(separator: " "))")
}

/// A fresh folder with `delta_writers.py KIND DIR [extra]` written into it (table at DIR/t).
func writersTable(_ kind: String, _ extra: [String] = []) throws -> (dir: String, out: String) {
    let dir = tempDir()
    let out = try writersPy([kind, dir] + extra)
    return (dir, out)
}

func logNames(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir + "/t/_delta_log").sorted()
}

func logText(_ dir: String, _ name: String) throws -> String {
    try String(contentsOfFile: dir + "/t/_delta_log/" + name, encoding: .utf8)
}

struct SparkDV: Decodable { var A: String; var deleted: [Int64] }

@Test func replayKeysLogicalFilesByPathAndDeletionVectorAsSparkWritesThem() async throws {
    let (dir, out) = try writersTable("spark-dv"); defer { try? FileManager.default.removeItem(atPath: dir) }
    let fx = try JSONDecoder().decode(SparkDV.self, from: Data(out.utf8))
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "t")
    // From the checkpoint (add(A, dv2) listed before the tombstones remove(A) and remove(A, dv1)).
    let fromCheckpoint = try await table.snapshot()
    #expect(fromCheckpoint.checkpoint?.version == 3)
    let a = try #require(fromCheckpoint.files[fx.A], "the live file was taken for history")
    #expect(try await table.deletedRows(a) == fx.deleted)
    #expect(fromCheckpoint.tombstones[fx.A] == nil)  // live with another DV: not a history file
    #expect(fromCheckpoint.removed.keys.filter { $0.path == fx.A }.count == 2)
    // From the JSON log alone (commits list add before remove in the same commit).
    try FileManager.default.removeItem(atPath: dir + "/t/_delta_log/" + String(format: "%020d.checkpoint.parquet", 3))
    try FileManager.default.removeItem(atPath: dir + "/t/_delta_log/_last_checkpoint")
    let fromJSON = try await table.snapshot()
    #expect(fromJSON.checkpoint == nil)
    #expect(Set(fromJSON.files.keys) == Set(fromCheckpoint.files.keys))
    #expect(fromJSON.files[fx.A]?.logicalKey == a.logicalKey)
    #expect(Set(fromJSON.removed.keys) == Set(fromCheckpoint.removed.keys))
    // Every version as delta-rs sees it.
    for v in try await table.versions() {
        let theirs = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/t", String(v)]).utf8))
        #expect(try await table.snapshot(version: v).files.keys.map(decodeDeltaPath).sorted() == theirs.files.map(decodeDeltaPath).sorted(), "v\(v)")
    }
}

@Test func aTargetedVacuumNeverDeletesAFileTheLogStillReaches() async throws {
    let (dir, out) = try writersTable("spark-dv"); defer { try? FileManager.default.removeItem(atPath: dir) }
    let fx = try JSONDecoder().decode(SparkDV.self, from: Data(out.utf8))
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    let before = try writersPy(["rows", dir + "/t"])
    // Whatever an index says, the live file is not history: it is kept and reported.
    let r = try await table.vacuumTargeted(paths: [fx.A], now: 1)
    #expect(r.keptReachable == [fx.A] && r.deleted.isEmpty)
    #expect(FileManager.default.fileExists(atPath: dir + "/t/" + fx.A))
    #expect(try writersPy(["rows", dir + "/t"]) == before)
}

@Test func theLogIsSearchedAndScrubbedByFieldNotByBytes() async throws {
    let (dir, _) = try writersTable("short-ids"); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    let five = SubjectValues(columns: [["id"]], values: ["5"])
    // Every commit's timestamp holds a 5; only version 1 (a file whose ids are 5…9), version 3
    // (a predicate naming id 5) and the checksums that list version 1's file hold the value.
    let hits = try await table.logResidue(five)
    let names = hits.map { String($0.key.split(separator: "/").last!) }
    #expect(
        names == [
            "00000000000000000001.json", "00000000000000000003.json",
            "00000000000000000001.crc", "00000000000000000002.crc", "00000000000000000003.crc",
        ], "\(hits)")
    #expect(hits[0].fields == ["add.stats.minValues.id"])
    #expect(hits[1].fields == ["commitInfo.operationParameters"])
    #expect(try await table.logResidue(SubjectValues(columns: [["id"]], values: ["55"])).isEmpty)
    // Scrubbing touches those files and no other.
    let untouched = try ["00000000000000000000.json", "00000000000000000002.json", "00000000000000000000.crc"].map { ($0, try logText(dir, $0)) }
    let r = try await table.vacuumTargeted(paths: [], subject: five, now: 1)
    #expect(r.scrubbedCommits == [1, 3])
    #expect(
        r.removedLogFiles.map { String($0.split(separator: "/").last!) } == [
            "00000000000000000001.crc", "00000000000000000002.crc", "00000000000000000003.crc",
        ])
    for (name, text) in untouched { #expect(try logText(dir, name) == text, "\(name) was rewritten") }
    #expect(try await table.logResidue(five).isEmpty)
    #expect(try writersPy(["rows", dir + "/t", "id"]) == "[0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 8, 9]\n")  // the log only: rows stay
}

/// The `make-features` table in `dir` after a targeted vacuum died past its VACUUM START (a change data file it
/// must rewrite made unreadable): the store, the table, the change data file and its bytes before.
private func aVacuumDiedAfterItsStart(_ dir: String) async throws -> (store: LocalObjectStore, table: DeltaTable, cdc: CDCFile, good: [UInt8]) {
    _ = try deltaPy(["make-features", dir])
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "cdf")
    let cdc = try #require(try await table.snapshot().cdcFiles.first)
    let key = table.key(forLogPath: cdc.path)
    let good = try await store.read(key)
    _ = try await store.put(key, Array("not parquet".utf8))
    await #expect(throws: LetheError.self) { _ = try await table.vacuumTargeted(paths: [], changeData: [cdc.path: [0]], runID: "job-1", now: 1) }
    return (store, table, cdc, good)
}

@Test func aResumedVacuumWritesOneVacuumStart() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    // The first attempt dies after VACUUM START (a change data file it must rewrite is unreadable).
    let (store, table, cdc, good) = try await aVacuumDiedAfterItsStart(dir)
    let key = table.key(forLogPath: cdc.path)
    // The open START is found from the snapshot and from the log's files alike, also behind more
    // commits of other writers than one window of reads holds.
    #expect(try await table.hasOpenVacuumStart())
    for i in 0..<40 {
        _ = try await table.commitNext(["operation": .string("WRITE"), "engineInfo": .string("other/\(i)")], now: 1, inCommitTimestamps: false)
    }
    #expect(try await table.hasOpenVacuumStart())
    #expect(try await table.hasOpenVacuumStart(try await table.snapshot()))
    _ = try await store.put(key, good)
    _ = try await table.vacuumTargeted(paths: [], changeData: [cdc.path: [0]], runID: "job-1", now: 2)
    #expect(try await !table.hasOpenVacuumStart())
    var starts = 0, ends = 0
    for v in try await table.versions() {
        for case .commitInfo(let c) in try await table.commit(v) {
            if c["operation"]?.string == "VACUUM START" { starts += 1 }
            if c["operation"]?.string == "VACUUM END" { ends += 1 }
        }
    }
    #expect(starts == 1 && ends == 1)
    // Another run writes its own.
    _ = try await table.vacuumTargeted(paths: [], runID: "job-2", now: 3)
    var starts2 = 0
    for v in try await table.versions() {
        for case .commitInfo(let c) in try await table.commit(v) where c["operation"]?.string == "VACUUM START" { starts2 += 1 }
    }
    #expect(starts2 == 2)
}

/// With a record of where Lethe's VACUUM START and END commits are (Lethe's commit index), an open
/// START is looked for in the commits the record names only, and in those after it: the log is not read back.
@Test func anOpenVacuumStartIsFoundFromARecordOfTheLogWithoutReadingItBack() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    // An attempt dies after its VACUUM START (a change data file it must rewrite is unreadable).
    let table = try await aVacuumDiedAfterItsStart(dir).table
    let start = try #require(try await table.latestVersion())
    #expect(try await table.commit(start).contains { if case .commitInfo(let c) = $0 { return DeltaTable.isLetheVacuum(c) } else { return false } })
    for i in 0..<40 {
        _ = try await table.commitNext(["operation": .string("WRITE"), "engineInfo": .string("other/\(i)")], now: 1, inCommitTimestamps: false)
    }
    let latest = try #require(try await table.latestVersion())
    // The record names the START: found.
    #expect(try await table.hasOpenVacuumStart(known: LetheVacuumCommits(through: latest, versions: [start])))
    #expect(try await table.hasOpenVacuumStart(try await table.snapshot(), known: LetheVacuumCommits(through: latest, versions: [start])))
    // A record that ends before the START: the commits after it are read, and the START found there.
    #expect(try await table.hasOpenVacuumStart(known: LetheVacuumCommits(through: start - 1, versions: [])))
    // The record is trusted as far as it goes: naming no such commit, it says none is open (the log,
    // which holds one, was not read back); naming one that is not Lethe's vacuum, that one is read and passed over.
    #expect(try await !table.hasOpenVacuumStart(known: LetheVacuumCommits(through: latest, versions: [])))
    #expect(try await !table.hasOpenVacuumStart(known: LetheVacuumCommits(through: latest, versions: [start + 1])))
    // An END after the START closes it: the newest of the two decides (named by the record, or read after it).
    _ = try await table.commitNext(
        DeltaTable.vacuumEndInfo(DeltaVacuumResult(deleted: [], unreadableVersions: [], scrubbedCommits: [], removedCheckpoints: []), now: 2),
        now: 2, inCommitTimestamps: false)
    let end = try #require(try await table.latestVersion())
    #expect(try await !table.hasOpenVacuumStart(known: LetheVacuumCommits(through: end, versions: [start, end])))
    #expect(try await !table.hasOpenVacuumStart(known: LetheVacuumCommits(through: end - 1, versions: [start])))
}

@Test func changeDataOfAFileWithAChangeTypeColumnHasOneAndEveryReaderReadsIt() async throws {
    let (dir, _) = try writersTable("change-type"); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    let snap = try await table.snapshot()
    // Rows 2 and 9 of each file: user_id u-2 in the first file.
    let r = try await table.erase(
        files: Array(snap.files.keys),
        selecting: { _, file in
            var rows: [Int64] = []
            try file.scanColumn(path: ["user_id"], rowGroup: 0) { row, v in if let v, Array(v) == Array("u-2".utf8) { rows.append(row) } }
            return rows
        }, operationParameters: [:], now: 1)
    #expect(r.changeData.count == 2)
    struct Check: Decodable { var files: Int; var rows: [[String]]; var feed: [[JSONAny]] }
    let check = try JSONDecoder().decode(Check.self, from: Data(try writersPy(["check-cdc", dir + "/t", String(r.version)]).utf8))
    #expect(check.files == 2)
    #expect(check.rows == [["u-2", "delete"], ["u-2", "delete"], ["u-2", "delete"]])
    #expect(check.feed.count == 3)
}

/// Any JSON value (for decoding mixed arrays).
struct JSONAny: Decodable {
    init(from decoder: any Decoder) throws { _ = try? decoder.singleValueContainer() }
}

@Test func v2CheckpointsOfEveryKindReplayAndAreScrubbedInPlace() async throws {
    for kind in ["uuid-json", "uuid-parquet", "classic"] {
        let (dir, _) = try writersTable("v2-checkpoint", [kind]); defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = LocalObjectStore(root: dir)
        let table = DeltaTable(store: store, root: "t")
        let s = try await table.snapshot()
        try table.checkWritable(s)
        #expect(s.checkpoint?.kind == (kind == "classic" ? .classic : .uuid))
        let theirs = try JSONDecoder().decode(DeltaFiles.self, from: Data(try deltaPy(["files", dir + "/t"]).utf8))
        #expect(s.files.keys.map(decodeDeltaPath).sorted() == theirs.files.map(decodeDeltaPath).sorted(), "\(kind)")
        // The commits before the checkpoint are gone: a scrub rewrites the checkpoint and its sidecar.
        let subject = SubjectValues(columns: [["user_id"]], values: ["u-0"])
        #expect(try await table.logResidue(subject).contains { $0.key.contains("_sidecars/") }, "\(kind)")
        let before = try writersPy(["rows", dir + "/t"])
        let r = try await table.vacuumTargeted(paths: [], subject: subject, now: 1)
        #expect(r.removedCheckpoints.isEmpty && r.rewrittenCheckpoints.contains { $0.contains("_sidecars/") }, "\(kind): \(r.rewrittenCheckpoints)")
        #expect(try await table.logResidue(subject).isEmpty, "\(kind)")
        #expect(try writersPy(["rows", dir + "/t"]) == before, "\(kind)")  // delta-rs reads the rewritten checkpoint
        #expect(try await table.snapshot().files.keys.sorted() == s.files.keys.sorted())
    }
}

@Test func aLastCheckpointPointerIsOnlyAHint() async throws {
    let (dir, out) = try writersTable("spark-dv"); defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = out
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "t")
    let expected = try await table.snapshot().files.keys.sorted()
    let pointer = dir + "/t/_delta_log/_last_checkpoint"
    // A size that disagrees, a pointer to a checkpoint that is not there, a pointer that is not JSON:
    // the log is listed and replayed from the checkpoint that exists (or version 0).
    for text in [#"{"version":3,"size":999}"#, #"{"version":2,"size":4}"#, "{broken"] {
        try text.write(toFile: pointer, atomically: true, encoding: .utf8)
        let s = try await table.snapshot()
        #expect(s.files.keys.sorted() == expected, "\(text)")
        #expect(s.checkpoint?.version == 3)
    }
    // With the commits before it cleaned up, a checkpoint that does not read is an error naming it.
    try "junk".write(toFile: dir + "/t/_delta_log/" + String(format: "%020d.checkpoint.parquet", 3), atomically: true, encoding: .utf8)
    for v in 0...2 { try FileManager.default.removeItem(atPath: dir + "/t/_delta_log/" + DeltaTable.commitName(Int64(v))) }
    do { _ = try await table.snapshot(); Issue.record("an unreadable checkpoint was accepted") } catch let e as LetheError {
        #expect(e.code == .corrupt && (e.location ?? "").hasSuffix("00000000000000000003.checkpoint.parquet"), "\(e)")
    }
}

@Test func unsupportedFeaturesAreRefusedByName() async throws {
    for feature in ["catalogManaged", "someFutureWriterFeature"] {
        let (dir, _) = try writersTable("features", [feature]); defer { try? FileManager.default.removeItem(atPath: dir) }
        let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
        let s = try await table.snapshot()
        do { try table.checkWritable(s); Issue.record("\(feature) accepted") } catch let e as LetheError {
            #expect(e.code == .unsupported && e.message.contains("`\(feature)`"), "\(e)")
        }
    }
    // Features whose rules a delete keeps are accepted.
    for feature in ["inCommitTimestamp", "rowTracking", "v2Checkpoint", "clustering", "allowColumnDefaults", "icebergCompatV2"] {
        let (dir, _) = try writersTable("features", [feature]); defer { try? FileManager.default.removeItem(atPath: dir) }
        let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
        try table.checkWritable(try await table.snapshot())
    }
}

/// A wave of rewritten files (small ones: many per wave) is announced to `willWrite` in one call
/// (the engine journals it in one transaction), before any of them is created, and every file the
/// commit adds or writes as change data was announced.
@Test func aWaveOfRewrittenFilesIsAnnouncedInOneCall() async throws {
    let (dir, _) = try writersTable("change-type"); defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "t")
    let snap = try await table.snapshot()
    let calls = Mutex<[[String]]>([])
    let r = try await table.erase(
        files: Array(snap.files.keys),
        selecting: { _, file in
            var rows: [Int64] = []
            try file.scanColumn(path: ["user_id"], rowGroup: 0) { row, v in if let v, Array(v) == Array("u-2".utf8) { rows.append(row) } }
            return rows
        }, operationParameters: [:], now: 1,
        willWrite: { keys in
            for k in keys {
                let existing = try await store.head(k)
                #expect(existing == nil, "\(k) existed before it was announced")
            }
            calls.withLock { $0.append(keys) }
        })
    let announced = calls.withLock { $0 }
    #expect(announced.count == 1, "\(announced)")
    let written = Set(r.added.map { table.key(forLogPath: $0.path) } + r.changeData.map { table.key(forLogPath: $0.path) })
    #expect(written.count >= 3 && written == Set(announced.flatMap { $0 }))
}
