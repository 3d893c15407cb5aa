import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting
import DeltaLake

// Issue 12 part C: a run's verification of a Delta table at index cost (Verification/DeltaIndexCost.swift),
// on tables delta-rs wrote (scripts/delta_tables.py make-files: one file per append, file 3 holds target-0003).

private struct FilesTable {
    let dir: String
    let lethe: Lethe
    var table: String { dir + "/files" }

    init(files: Int, cdf: Bool = false) throws {
        dir = NSTemporaryDirectory() + "lethe-dic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try deltaPy(["make-files", dir, "\(files)"] + (cdf ? ["cdf"] : []))
        let yaml = """
            lake: .
            datasets:
              - name: files
                path: files
                format: delta
                subject: user_id
            """
        lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
            stateFolder: nil)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    func approved(_ subject: String) async throws -> ErasureRequest {
        let r = try await lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
        return try await lethe.approve([r.id], by: "bob")[0]
    }

    /// The index-cost verification a run's settle makes, for requests already erased or verified.
    func verifyAtIndexCost(_ r: ErasureRequest) async throws -> Verification {
        let current = try await lethe.request(r.id)
        return try await Verifier(lethe).verify([current], dryRun: false, indexCost: IndexCostRun(rewritten: [:], touched: []))[0]
    }

    /// The object keys the index names for `subject`.
    func holders(_ subject: String) async throws -> [String] {
        try await lethe.locate(SubjectID(subject)).map(\.object.key).sorted()
    }

    func bytes(_ key: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + key)) }
    func write(_ key: String, _ data: Data) throws { try data.write(to: URL(fileURLWithPath: dir + "/" + key)) }
}

@Test func aDeltaRunIsVerifiedAtIndexCostReadingOnlyTheFilesItWrote() async throws {
    let l = try FilesTable(files: 12)
    defer { l.remove() }
    _ = try await l.lethe.index()
    #expect(try await l.holders("target-0003").count == 1)
    let r = try await l.approved("target-0003")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    // Twelve live files: eleven unchanged since indexed (proven by their postings), one replacement the commit wrote (read).
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(v.objectsListed == 12 && v.objectsReread == 1 && v.objectsUnchanged == 11 && v.objectsIndexedNow == 0, "\(v)")
    #expect(v.objectsScanned == 1 && (v.logsExamined ?? 0) >= 1, "\(v)")
    #expect(try await l.lethe.request(r.id).status == .verified)
    #expect(try await l.lethe.request(r.id).proof == "index")
    #expect(try rows(l.table).count == 120 && !(try rows(l.table)).contains("target-0003"))  // delta-rs reads the result
    // What the run wrote was read: the record of it is gone, and the replacement is indexed.
    #expect(try await l.lethe.meta.setting(DeltaWritten.setting("files")) == nil)
    #expect(try await l.lethe.meta.objects(dataset: "files").count == 12)

    // Another writer appends the subject again after the run: the new file and the new commit (its
    // statistics name the subject) are what the index has not seen, and both are read.
    _ = try deltaPy(["make-files-append", l.table, "target-0003"])
    let again = try await l.verifyAtIndexCost(r)
    #expect(!again.clean && again.proof == "index" && again.objectsIndexedNow == 1 && again.objectsUnchanged == 12, "\(again)")
    #expect(again.found.count == 1 && (again.logHits ?? []).contains { $0.hasSuffix("00000000000000000015.json") }, "\(again)")
}

@Test func aDeltaFileChangedBehindTheIndexIsReadAtIndexCost() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try await l.lethe.index()
    let holder = try #require(try await l.holders("target-0003").first)
    let held = try l.bytes(holder)
    let r = try await l.approved("target-0003")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    // Another live file is overwritten in place with the bytes that held the subject: a new store version.
    let other = try #require(try await l.lethe.meta.objects(dataset: "files").map(\.key).filter { $0 != holder }.sorted().first)
    try l.write(other, held)
    let v = try await l.verifyAtIndexCost(r)
    #expect(!v.clean && v.proof == "index" && v.objectsIndexedNow == 1 && v.objectsReread == 0, "\(v)")
    #expect(v.found.map(\.object) == [other], "\(v)")
    #expect(try await l.lethe.request(r.id).status == .failed)
}

@Test func residueInAnUnchangedDeltaFileTheIndexNamesIsCaught() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try await l.lethe.index()
    let holder = try #require(try await l.holders("target-0003").first)
    let held = try l.bytes(holder)
    let r = try await l.approved("target-0003")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    // The removed file comes back (its commit's `remove` still names it: history) and the index records
    // it at that version, subject included: unchanged since indexed, but its postings name the subject.
    try l.write(holder, held)
    try await l.lethe.reindex(l.lethe.config.dataset(named: "files")!, key: holder)
    #expect(try await l.holders("target-0003") == [holder])
    let v = try await l.verifyAtIndexCost(r)
    #expect(!v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsIndexedNow == 0, "\(v)")
    #expect(v.found.map(\.object) == [holder], "\(v)")
}

@Test func changeDataHoldingTheSubjectIsReadAtIndexCost() async throws {
    let l = try FilesTable(files: 6, cdf: true)
    defer { l.remove() }
    // delta-rs deletes the subject itself: its change data file holds the deleted row.
    _ = try deltaPy(["delete", l.table, "user_id = 'target-0003'"])
    _ = try await l.lethe.index()
    let cdc = try #require(try await l.holders("target-0003").first { $0.contains("_change_data/") })
    let held = try l.bytes(cdc)
    let r = try await l.approved("target-0003")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    // The vacuum rewrote the change data file without the row: the run's verification read it again.
    #expect(v.clean && v.proof == "index" && (v.objectsReread ?? 0) >= 1, "\(v)")
    #expect(try await l.lethe.meta.setting(DeltaWritten.setting("files")) == nil)
    // The old change data comes back behind the index: read, and the subject found in it.
    try l.write(cdc, held)
    let again = try await l.verifyAtIndexCost(r)
    #expect(!again.clean && again.proof == "index" && again.found.map(\.object) == [cdc], "\(again)")
}

@Test func aTargetedVacuumReadsOnlyTheCommitsNamingItsFiles() async throws {
    let l = try FilesTable(files: 12)
    defer { l.remove() }
    // delta-rs deletes the subject: file 3 (added by commit 3) is removed by commit 12, history now.
    _ = try deltaPy(["delete", l.table, "user_id = 'target-0003'"])
    let copy = l.dir + "/copy"
    try FileManager.default.copyItem(atPath: l.table, toPath: copy)
    func vacuum(_ root: String, narrowed: Bool) async throws -> (DeltaVacuumResult, reads: Int) {
        let store = FaultInjectingStore(base: LocalObjectStore(root: l.dir))
        let t = DeltaTable(store: store, root: root)
        let s = try await t.snapshot()
        let h = try await t.history(of: s)
        let victim = try #require(h.dataFiles.first)
        #expect(h.dataFiles.count == 1 && h.namedIn[victim] == [3, 12], "\(h.namedIn)")
        store.resetCounters()
        let r = try await t.vacuumTargeted(paths: [victim], commits: narrowed ? Set(h.namedIn[victim]!) : nil, now: 1)
        return (r, store.reads)
    }
    let full = try await vacuum("files", narrowed: false)
    let narrowed = try await vacuum("copy", narrowed: true)
    // The same work (file deleted, the same commits scrubbed, the same versions no longer readable) ...
    #expect(narrowed.0.deleted.count == 1 && narrowed.0.scrubbedCommits == full.0.scrubbedCommits, "\(narrowed.0.scrubbedCommits)")
    #expect(narrowed.0.unreadableVersions == full.0.unreadableVersions && full.0.unreadableVersions == [3...11])
    // ... reading the two commits that name the file instead of the log's 13 (the replays read the log
    // either way; the vacuum's own VACUUM START, committed beside these reads, is not among them).
    #expect(full.reads - narrowed.reads >= 11, "full \(full.reads), narrowed \(narrowed.reads)")
    #expect(try rows(copy).count == 120)  // delta-rs reads the vacuumed table
}

@Test func aFileLetheWroteIsReadAgainEvenWhenTheIndexWasRefreshedSince() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try await l.lethe.index()
    let r = try await l.approved("target-0003")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    // As after a run killed between its commit and its verification, then an `index`: the record of
    // what Lethe wrote names a file the index now holds at that very version (unchanged, by the index).
    let key = try #require(try await l.lethe.meta.objects(dataset: "files").map(\.key).sorted().first)
    let info = try #require(try await l.lethe.store.head(key))
    var w = DeltaWritten()
    w.objects = [info.version]
    let written = w
    try await l.lethe.meta.transaction("t") { tx in try DeltaWritten.note(written, dataset: "files", tx) }
    _ = try await l.lethe.index()
    let v = try await l.verifyAtIndexCost(r)
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsUnchanged == 5, "\(v)")
    #expect(try await l.lethe.meta.setting(DeltaWritten.setting("files")) == nil)  // read: the record is cleared
    let after = try await l.verifyAtIndexCost(r)
    #expect(after.objectsReread == 0 && after.objectsUnchanged == 6, "\(after)")
}

/// The raw bytes of every file under the table's log holding `needle`, by name.
private func logFilesHolding(_ table: String, _ needle: String) throws -> [String] {
    let log = table + "/_delta_log"
    var out: [String] = []
    for name in try FileManager.default.contentsOfDirectory(atPath: log).sorted() where !name.hasPrefix(".") {
        guard let d = FileManager.default.contents(atPath: log + "/" + name) else { continue }
        if d.range(of: Data(needle.utf8)) != nil { out.append(name) }
    }
    return out
}

/// A deletion delta-rs committed after the commit index (then checkpointed) leaves no residue of the
/// subject's file after a run. It does not prove that the vacuum read the commits after the commit
/// index: delta-rs's `remove` carries no statistics, so this table passes without that read too
/// (checked by mutation, session 8); what covers that read is the whole-log fallback when a located
/// file's `add` is in none of the commits read.
@Test func aDeletionAnotherToolCommittedAfterTheCommitIndexLeavesNoResidue() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try await l.lethe.index()
    let cursor = try #require(try await l.lethe.meta.cursors.deltaIndex(dataset: "files"))
    let index = try #require(try await DeltaCommitIndex.load(dataset: "files", l.lethe.meta))
    #expect(index.version == cursor.version && !index.named.isEmpty)
    // delta-rs deletes the subject after the index, then checkpoints: its commit (removing file 3,
    // after the commit index's version and before the checkpoint, so no replay reads it) is the one
    // only a read of the commits after the commit index finds.
    _ = try deltaPy(["delete", l.table, "user_id = 'target-0003'"])
    _ = try deltaPy(["checkpoint", l.table])
    let before = try logFilesHolding(l.table, "target-0003")
    #expect(!before.isEmpty)
    let parquet = { try FileManager.default.contentsOfDirectory(atPath: l.table).filter { $0.hasSuffix(".parquet") }.count }
    let files = try parquet()
    _ = try await l.approved("target-0003")
    let report = try await l.lethe.run()
    #expect(report.verifications.first?.clean == true, "\(report)")
    // No statistics bound of the file left in any commit or checkpoint: the one naming it before the
    // index and delta-rs's after it; the history file is gone.
    #expect(try logFilesHolding(l.table, "target-0003") == [], "\(before)")
    #expect(try parquet() == files - 1)
    _ = try rows(l.table)  // delta-rs reads the vacuumed table
}

@Test func aCommitIndexThatDoesNotDescribeTheLogIsNotTrusted() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try deltaPy(["delete", l.table, "user_id = 'target-0003'"])
    _ = try deltaPy(["checkpoint", l.table])
    _ = try await l.lethe.index()
    let cursor = try #require(try await l.lethe.meta.cursors.deltaIndex(dataset: "files"))
    // A lying commit index: every file named only by commit 0 (which names none of them).
    let keys = try await l.lethe.meta.objects(dataset: "files").map(\.key)
    let lie = Dictionary(uniqueKeysWithValues: keys.map { ($0, [Int64(0)]) })
    try await l.lethe.meta.transaction("t") { tx in
        try DeltaCommitIndex.note(lie, from: 0, through: cursor.version, complete: true, dataset: "files", tx)
    }
    let before = try logFilesHolding(l.table, "target-0003")
    #expect(!before.isEmpty)
    _ = try await l.approved("target-0003")
    let report = try await l.lethe.run()
    #expect(report.verifications.first?.clean == true, "\(report)")
    // The vacuum searched the log instead: the commit adding the file is scrubbed too.
    #expect(try logFilesHolding(l.table, "target-0003") == [], "\(before)")
    // And the commit index was built again from the log.
    let rebuilt = try #require(try await DeltaCommitIndex.load(dataset: "files", l.lethe.meta))
    // Every file but the one commit 0 itself added is named by a later commit (which file that is
    // depends on how delta-rs names files, so every key is checked, not the first).
    let firstCommit = try String(contentsOfFile: l.table + "/_delta_log/00000000000000000000.json", encoding: .utf8)
    for k in keys where !firstCommit.contains("\"\(k.split(separator: "/").last ?? "")\"") {
        #expect(rebuilt.versions(of: k) != [0], "\(k)")
    }
    #expect(keys.contains { rebuilt.versions(of: $0) != [0] })
}

@Test func aQuarantinedDeltaFileIsTriedAgainByARefreshWithNoNewCommit() async throws {
    let t = try FilesTable(files: 4)
    defer { t.remove() }
    _ = try await t.lethe.index()
    let key = try #require(try await t.holders("target-0003").first)
    let good = try t.bytes(key)
    // A second state over the same table, made while the file does not read: it is quarantined.
    try t.write(key, Data("not parquet".utf8))
    let other = Lethe(
        config: t.lethe.config, store: LocalObjectStore(root: t.dir), meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    _ = try await other.index()
    #expect(try await other.meta.objects(dataset: "files").first { $0.key == key }?.status == .quarantined)
    #expect(try await other.locate(SubjectID("target-0003")).isEmpty)
    // Mended; the next refresh lists no new commit (incremental) and still reads it again.
    try t.write(key, good)
    let report = try await other.index()
    #expect(report.objectsSeen == 1)
    #expect(try await other.meta.objects(dataset: "files").first { $0.key == key }?.status == .indexed)
    #expect(try await other.locate(SubjectID("target-0003")).map(\.object.key) == [key])
}

/// Lethe's VACUUM START and END commits are in the commit index (extended by `index`, and built whole
/// from the log), so a later vacuum finds whether a START is open from it, not by reading the log back;
/// a second run's vacuum then writes a START of its own (the first run's END closed its START).
@Test func theCommitIndexHoldsLethesVacuumCommitsAndTheNextVacuumFindsNoneOpen() async throws {
    let l = try FilesTable(files: 6)
    defer { l.remove() }
    _ = try await l.lethe.index()
    #expect(try #require(try await DeltaCommitIndex.load(dataset: "files", l.lethe.meta)).letheVacuums.versions == [])
    _ = try await l.approved("target-0003")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    let t = DeltaTable(store: l.lethe.store, root: "files")
    func vacuumCommits() async throws -> (starts: [Int64], ends: [Int64]) {
        var out: (starts: [Int64], ends: [Int64]) = ([], [])
        for v in try await t.versions() {
            for case .commitInfo(let c) in try await t.commit(v) where DeltaTable.isLetheVacuum(c) {
                if c["operation"]?.string == "VACUUM START" { out.starts.append(v) } else { out.ends.append(v) }
            }
        }
        return out
    }
    let first = try await vacuumCommits()
    #expect(first.starts.count == 1 && first.ends.count == 1, "\(first)")
    // Extended by `index` over the commits since its last version.
    _ = try await l.lethe.index()
    let latest = try #require(try await t.latestVersion())
    let extended = try #require(try await DeltaCommitIndex.load(dataset: "files", l.lethe.meta))
    #expect(extended.letheVacuums == LetheVacuumCommits(through: latest, versions: first.starts + first.ends), "\(extended.letheVacuums)")
    // Built whole from the log: from the commits a snapshot replays, then (after a checkpoint) from
    // the commits read from before it.
    for checkpointed in [false, true] {
        if checkpointed { _ = try deltaPy(["checkpoint", l.table]) }
        try await l.lethe.meta.transaction("t") { tx in try DeltaCommitIndex.remove(dataset: "files", tx) }
        _ = try await l.lethe.index()
        let rebuilt = try #require(try await DeltaCommitIndex.load(dataset: "files", l.lethe.meta))
        #expect(rebuilt.letheVacuums == LetheVacuumCommits(through: latest, versions: first.starts + first.ends), "\(checkpointed) \(rebuilt.letheVacuums)")
    }
    // The next run's vacuum, told by the index where the first vacuum's commits are: its own START and END.
    _ = try await l.approved("p1-0")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    let second = try await vacuumCommits()
    #expect(second.starts.count == 2 && second.ends.count == 2, "\(second)")
    _ = try rows(l.table)  // delta-rs reads the table
}
