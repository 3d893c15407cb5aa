import Testing
import Synchronization
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import DeltaLake
import LetheSQLite
import LetheTesting

/// Runs scripts/delta_tables.py (delta-rs) with the project's venv Python.
func deltaPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_tables.py")] + args, what: "delta_tables.py \(args.joined(separator: " "))")
}

/// A fresh folder holding the tables `delta_tables.py MAKE DIR` writes (the caller removes it).
func deltaTables(_ tag: String, _ make: String) throws -> String {
    let dir = NSTemporaryDirectory() + "lethe-\(tag)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    _ = try deltaPy([make, dir])
    return dir
}

func rows(_ table: String) throws -> [String] {
    try JSONDecoder().decode([String].self, from: Data(try deltaPy(["rows", table]).utf8))
}

@Test func deltaTablesWrittenByDeltaRsAreErasedByANormalCommit() async throws {
    let dir = try deltaTables("deltaflow", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let yaml = """
        lake: .
        datasets:
          - name: plain
            path: plain
            format: delta
            subject: user_id
          - name: parted
            path: parted
            format: delta
            subject: user_id
          - name: named
            path: named
            format: delta
            subject: user_id
        """
    let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir)
    let lethe = Lethe(
        config: config, store: LocalObjectStore(root: dir), meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    let before = (plain: try rows(dir + "/plain"), parted: try rows(dir + "/parted"))
    _ = try await lethe.index()
    let hits = try await lethe.locate(SubjectID("u-1"))
    #expect(Set(hits.map(\.object.dataset)) == ["plain", "parted"])
    let roles = try await lethe.deltaRoles(dataset: "plain")
    #expect(roles.values.contains(.history))  // delta-rs's own DELETE left superseded files

    let r = try await lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let expectedDropped = before.plain.filter { $0 == "u-1" }.count + before.parted.filter { $0 == "u-1" }.count
    #expect(run.rowsDropped == Int64(expectedDropped))
    #expect(try rows(dir + "/plain") == before.plain.filter { $0 != "u-1" })
    #expect(try rows(dir + "/parted") == before.parted.filter { $0 != "u-1" })
    let history = try deltaPy(["history", dir + "/plain"])
    #expect(history.contains("DELETE") && history.contains("VACUUM END"))
    // The superseded files that held u-1 are gone, the log no longer describes them, and the request is proven clean.
    #expect(try await lethe.request(r.id).status == .verified)
    let audit = try await lethe.meta.auditEntries()
    #expect(audit.contains { $0.event == "delta_vacuum" && $0.details.contains("unreadable_versions") })
    for h in try await lethe.locate(SubjectID("u-1")) { Issue.record("u-1 still indexed in \(h.object.key)") }

    // The other tool's own DELETE named a subject in its commitInfo: the log holds the raw id until Lethe scrubs it.
    let named = try await lethe.forget([SubjectID("customer-000004")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([named.id], by: "bob")
    let runNamed = try await lethe.run()
    #expect(runNamed.failed.isEmpty, "\(runNamed.failed)")
    #expect(try await lethe.request(named.id).status == .verified)
    for f in try FileManager.default.contentsOfDirectory(atPath: dir + "/named/_delta_log") {
        let text = try String(contentsOfFile: dir + "/named/_delta_log/" + f, encoding: .utf8)
        #expect(!text.contains("customer-000004"), "\(f) still names the subject")
    }
    #expect(try rows(dir + "/named").allSatisfy { $0 != "customer-000004" })

    // delta-rs appends afterwards; Lethe erases again from the grown table.
    _ = try deltaPy(["append", dir + "/plain", "100", "14"])
    _ = try await lethe.index()
    let r2 = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r2.id], by: "bob")
    _ = try await lethe.run()
    let after = try rows(dir + "/plain")
    #expect(!after.contains("u-2"))
    #expect(after.filter { $0 == "u-1" }.count == 2)  // the append wrote u-1 back: new data, a new request's job
    let survivors = before.plain.filter { $0 != "u-1" && $0 != "u-2" }.count
    let appendedSurvivors = (100..<114).filter { $0 % 7 != 2 }.count
    #expect(after.count == survivors + appendedSurvivors)

    // Standard vacuum: refused below the table's retention unless forced; a dry run changes nothing;
    // an unreferenced file older than the retention goes, a recent one and every live file stay.
    let old = dir + "/parted/country=DE/orphan-old.parquet", fresh = dir + "/parted/country=DE/orphan-new.parquet"
    _ = FileManager.default.createFile(atPath: old, contents: Data("x".utf8))
    _ = FileManager.default.createFile(atPath: fresh, contents: Data("y".utf8))
    try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-10 * 86_400)], ofItemAtPath: old)
    await #expect(throws: LetheError.self) { _ = try await lethe.vacuum(dataset: "parted", retainHours: 24, dryRun: false, force: false) }
    let partedBefore = try rows(dir + "/parted")
    let dry = try await lethe.vacuum(dataset: "parted", retainHours: 24, dryRun: true, force: true)
    #expect(dry[0].deleted == ["parted/country=DE/orphan-old.parquet"])
    #expect(FileManager.default.fileExists(atPath: old))
    let real = try await lethe.vacuum(dataset: "parted", retainHours: 24, dryRun: false, force: true)
    #expect(real[0].deleted == dry[0].deleted)
    #expect(!FileManager.default.fileExists(atPath: old) && FileManager.default.fileExists(atPath: fresh))
    #expect(try rows(dir + "/parted") == partedBefore)
    #expect(try deltaPy(["history", dir + "/parted"]).contains("VACUUM END"))

    // No raw id in the log Lethe wrote.
    let log = try FileManager.default.contentsOfDirectory(atPath: dir + "/plain/_delta_log").filter { $0.hasSuffix(".json") }.sorted()
    let lethesCommits = try log.map { try String(contentsOfFile: dir + "/plain/_delta_log/" + $0, encoding: .utf8) }
        .filter { $0.contains("Lethe/") }
    #expect(lethesCommits.filter { $0.contains("\"DELETE\"") }.count == 2)
    #expect(lethesCommits.filter { $0.contains("VACUUM END") }.count == 2)
    for c in lethesCommits {
        #expect(!c.contains("u-1") && !c.contains("u-2"))
    }
}

@Test func concurrentAppendsByDeltaRsAreNeverLost() async throws {
    let dir = try deltaTables("deltaconc", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = try LakeConfig.parse(
        "lake: .\ndatasets:\n  - name: plain\n    path: plain\n    format: delta\n    subject: user_id\n",
        file: "lethe.yaml", baseDir: dir)
    let lethe = Lethe(
        config: config, store: LocalObjectStore(root: dir), meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    let before = try rows(dir + "/plain")
    _ = try await lethe.index()
    let subjects = ["u-0", "u-1", "u-2", "u-4", "u-5"]
    let appends = 25
    // delta-rs appends in a loop while Lethe erases one subject at a time.
    let writer = Task.detached { try deltaPy(["append-loop", dir + "/plain", String(appends)]) }
    for s in subjects {
        let r = try await lethe.forget([SubjectID(s)], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([r.id], by: "bob")
        var report = try await lethe.run()
        // A concurrent remove cannot happen here (delta-rs only appends), so every run succeeds;
        // a commit conflict with an append is rebased inside the run.
        if !report.failed.isEmpty { report = try await lethe.run() }
        #expect(report.failed.isEmpty, "\(report.failed)")
    }
    _ = try await writer.value
    let after = try rows(dir + "/plain")
    #expect(after.filter { $0.hasPrefix("w-") }.count == appends * 3)  // no appended row lost
    #expect(after.filter { !$0.hasPrefix("w-") } == before.filter { !subjects.contains($0) })
}

/// A Lethe over `dir` (in-memory index) with one Delta dataset per name, each at `dir/<name>`.
func deltaLethe(_ dir: String, _ names: [String]) throws -> Lethe {
    let yaml = "lake: .\ndatasets:\n" + names.map { "  - name: \($0)\n    path: \($0)\n    format: delta\n    subject: user_id\n" }.joined()
    return Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
        meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
}

/// Every file under `dir` (data, change data, log) whose bytes contain `needle`.
func filesHolding(_ needle: String, under dir: String) throws -> [String] {
    let n = Array(needle.utf8)
    var out: [String] = []
    for case let rel as String in FileManager.default.enumerator(atPath: dir)! {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
        let b = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel)))
        if b.count >= n.count, (0...(b.count - n.count)).contains(where: { b[$0] == n[0] && Array(b[$0..<($0 + n.count)]) == n }) { out.append(rel) }
    }
    return out
}

@Test func columnMappedAndChangeFeedTablesAreErasedAndStayReadable() async throws {
    let dir = try deltaTables("deltafeat", "make-features")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let lethe = try deltaLethe(dir, ["mapped", "cdf"])
    let before = (mapped: try rows(dir + "/mapped"), cdf: try rows(dir + "/cdf"))
    let feedBefore = try deltaPy(["cdf", dir + "/cdf", "1"])
    #expect(feedBefore.contains("\"u-3\", \"delete\", 1") && feedBefore.contains("\"u-5\", \"delete\", 1"))
    _ = try await lethe.index()
    // Column mapping: the subject is found under its physical column name.
    #expect(Set(try await lethe.locate(SubjectID("u-5")).map(\.object.dataset)) == ["mapped", "cdf"])

    let r = try await lethe.forget([SubjectID("u-5")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try rows(dir + "/mapped") == before.mapped.filter { $0 != "u-5" })
    #expect(try rows(dir + "/cdf") == before.cdf.filter { $0 != "u-5" })

    // The feed: Lethe's DELETE wrote a cdc action. After the targeted vacuum, the change data
    // files keep the other subject's records (delta-rs's DELETE of u-3) and hold no u-5, and
    // the feed reads from Lethe's commit on. (Versions whose data files held u-5 are gone
    // from the feed as from time travel: their files were deleted.)
    let log = try FileManager.default.contentsOfDirectory(atPath: dir + "/cdf/_delta_log").filter { $0.hasSuffix(".json") }.sorted()
    let lethesDelete = try log.first { try String(contentsOfFile: dir + "/cdf/_delta_log/" + $0, encoding: .utf8).contains("Lethe/") }
    let deleteText = try lethesDelete.map { try String(contentsOfFile: dir + "/cdf/_delta_log/" + $0, encoding: .utf8) } ?? ""
    #expect(deleteText.contains("\"DELETE\"") && deleteText.contains("{\"cdc\":"))
    let cdcRows = try deltaPy(["cdc-rows", dir + "/cdf"])
    #expect(cdcRows.components(separatedBy: "[\"u-3\", \"delete\"]").count - 1 == 4, "\(cdcRows)")
    #expect(!cdcRows.contains("u-5"))
    let feed = try deltaPy(["cdf", dir + "/cdf", String(Int(lethesDelete!.prefix(20))!)])
    #expect(!feed.contains("u-5"))
    for table in ["mapped", "cdf"] {
        #expect(try filesHolding("u-5", under: dir + "/" + table) == [], "\(table)")
    }
    // Both stay writable by delta-rs, and Lethe erases again.
    _ = try deltaPy(["append", dir + "/mapped", "100", "14"])
    _ = try await lethe.index()
    let r2 = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r2.id], by: "bob")
    #expect(try await lethe.run().failed.isEmpty)
    #expect(try await lethe.request(r2.id).status == .verified)
    #expect(try !rows(dir + "/mapped").contains("u-2"))
}

/// Runs a body once, however often it is called.
final class Once: Sendable {
    private let done = Atomic<Bool>(false)
    func first() -> Bool { !done.exchange(true, ordering: .relaxed) }
}

@Test func aFileRemovedConcurrentlyWhileLetheRewritesItIsReplanned() async throws {
    let dir = try deltaTables("deltareplan", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var lethe = try deltaLethe(dir, ["plain"])
    let before = try rows(dir + "/plain")
    _ = try await lethe.index()
    // delta-rs compacts the table after Lethe wrote its replacements and before it commits:
    // every file Lethe rewrote is removed by the other writer.
    let once = Once()
    let table = dir + "/plain"
    lethe.deltaCommitHook = { if once.first() { _ = try deltaPy(["compact", table]) } }
    let r = try await lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try rows(table) == before.filter { $0 != "u-1" })
    let audit = try await lethe.meta.auditEntries()
    #expect(audit.contains { $0.event == "delta_commit" && $0.details.contains("\"replans\":1") })
    // The first attempt's replacements were deleted: every data file on disk is live or was vacuumed.
    let onDisk = Set(try FileManager.default.contentsOfDirectory(atPath: table).filter { $0.hasSuffix(".parquet") })
    struct Files: Decodable { var files: [String] }
    let live = Set(try JSONDecoder().decode(Files.self, from: Data(try deltaPy(["files", table]).utf8)).files)
    #expect(onDisk.filter { $0.contains("lethe") }.isSubset(of: live), "\(onDisk.subtracting(live))")
}

@Test func deletesByAnotherToolPropagateThroughTheChangeFeed() async throws {
    let dir = try deltaTables("deltaprop", "make-propagation")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let yaml = """
        lake: .
        datasets:
          - name: bronze
            path: bronze
            format: delta
            subject: user_id
            deletes_from: change_feed
          - name: silver
            path: silver
            format: delta
            subject: user_id
            derived_from: [bronze]
        """
    let lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
        meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    _ = try await lethe.index()
    let silverBefore = try rows(dir + "/silver")
    // Nothing deleted yet: the first run reads the feed from the start and files nothing.
    #expect(try await lethe.run().propagation.filed == 0)
    // Another tool erases u-4 from bronze, and removes some of u-2's rows (de-duplication, not an erasure).
    _ = try deltaPy(["delete", dir + "/bronze", "user_id = 'u-4'"])
    _ = try deltaPy(["delete", dir + "/bronze", "user_id = 'u-2' AND n < 10"])
    let run = try await lethe.run()
    #expect(run.failed.isEmpty, "\(run.failed)")
    let source = try #require(run.propagation.sources.first { $0.dataset == "bronze" })
    #expect(source.deleted == 2 && source.stillLive == 1 && source.filed.count == 1)
    let r = try await lethe.request(source.filed[0])
    #expect(r.subjectKey == lethe.key(for: SubjectID("u-4")))
    #expect(r.requestedBy == "change-feed:bronze" && r.decidedBy == Lethe.propagationPrincipal)
    #expect(r.status == .verified)
    // Erased from the derived table; bronze's history and change data no longer hold u-4; u-2 is untouched.
    #expect(try rows(dir + "/silver") == silverBefore.filter { $0 != "u-4" })
    #expect(try filesHolding("u-4", under: dir + "/bronze") == [])
    #expect(try filesHolding("u-4", under: dir + "/silver") == [])
    #expect(try rows(dir + "/silver").filter { $0 == "u-2" }.count == silverBefore.filter { $0 == "u-2" }.count)
    // The feed is followed from the last version seen; Lethe's own commits are not read as deletes.
    let again = try await lethe.run()
    #expect(again.propagation.filed == 0 && again.jobs.isEmpty)
    let audit = try await lethe.meta.auditEntries()
    #expect(audit.filter { $0.event == "propagated" }.count == 3)
    #expect(!audit.contains { $0.details.contains("u-4") })
}

@Test func aDataFileTheLogNamesButTheStoreLacksIsAnErrorNamingTableVersionAndFile() async throws {
    let dir = try deltaTables("deltamissing", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    struct Files: Decodable { var version: Int; var files: [String] }
    let live = try JSONDecoder().decode(Files.self, from: Data(try deltaPy(["files", dir + "/plain"]).utf8))
    try FileManager.default.removeItem(atPath: dir + "/plain/" + live.files[0])
    let logBefore = try FileManager.default.contentsOfDirectory(atPath: dir + "/plain/_delta_log").sorted()
    let lethe = try deltaLethe(dir, ["plain"])
    // The table's failure is scoped to its dataset (recorded, reported), not the whole index run.
    let report = try await lethe.index()
    let issue = try #require(report.datasetIssues.first, "a missing data file was accepted")
    #expect(issue.dataset == "plain" && issue.kind == .unreadable)
    #expect(issue.message.hasPrefix("plain: ") && issue.message.contains("version \(live.version)") && issue.message.contains(live.files[0]), "\(issue)")
    #expect(try await lethe.datasetIssues()["plain"] == issue)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/plain/_delta_log").sorted() == logBefore)
}

@Test func indexReadsOnlyTheCommitsSinceTheLastVersionIndexed() async throws {
    let dir = try deltaTables("deltaincr", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let lethe = try deltaLethe(dir, ["plain"])
    let first = try await lethe.index()
    #expect(first.objectsScanned > 0)
    // delta-rs appends; then an early commit is broken: a full replay would now fail,
    // reading only the new commits does not.
    _ = try deltaPy(["append", dir + "/plain", "500", "7"])
    let v0 = dir + "/plain/_delta_log/" + DeltaLakeNames.commit(0)
    let saved = try Data(contentsOf: URL(fileURLWithPath: v0))
    try Data("{broken".utf8).write(to: URL(fileURLWithPath: v0))
    let second = try await lethe.index()
    #expect(second.objectsScanned == 1 && second.objectsRemoved == 0, "\(second)")
    let before = try await lethe.locate(SubjectID("u-3")).count
    #expect(before > 0)
    let third = try await lethe.index()
    #expect(third.objectsScanned == 0 && third.objectsSeen == 0)
    // Without a usable record of the version indexed (as after another tool's VACUUM), the
    // whole log is replayed: the broken commit is reported; mended, every object is listed.
    try await lethe.meta.setSetting("delta.plain.indexed", "{}")
    #expect(try await lethe.index().datasetIssues.map(\.dataset) == ["plain"])
    try saved.write(to: URL(fileURLWithPath: v0))
    let full = try await lethe.index()
    #expect(full.objectsSeen > 1 && full.objectsScanned == 0 && full.objectsRemoved == 0)
    #expect(full.datasetIssues.isEmpty)
    #expect(try await lethe.datasetIssues().isEmpty)
}

/// The files of a table come from one listing of its folder, not a `head` per file the log names
/// (thousands of round trips on an object store); what the listing lacks is still refused.
@Test func deltaObjectsListsInsteadOfHeadingEachFile() async throws {
    let dir = try deltaTables("deltalist", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for i in 0..<6 { _ = try deltaPy(["append", dir + "/plain", "20", "\(i + 11)"]) }
    let plain = try deltaLethe(dir, ["plain"])
    let store = FaultInjectingStore(base: plain.store)
    let lethe = Lethe(config: plain.config, store: store, meta: plain.meta, secrets: plain.secrets, stateFolder: nil)
    let driver = try #require(DatasetDrivers.driver(for: lethe.config.datasets[0]) as? DeltaDatasetDriver)
    store.resetCounters()
    let objects = try await driver.objects(lethe)
    #expect(objects.objects.count >= 7, "\(objects.objects.count)")
    #expect(store.heads == 0, "\(store.heads) heads for \(objects.objects.count) files")
    // Each file's metadata is what a head would say.
    for o in objects.objects { #expect(try await plain.store.head(o.key) == o) }
    let roles = try await driver.roles(lethe)
    #expect(Set(roles.keys) == Set(objects.objects.map(\.key)).subtracting(objects.unnamed))
    #expect(store.heads == 0)
}

/// An erasure rewriting many files of a table makes them durable in one pass and publishes them
/// with one folder sync, not an fsync per file and per folder, and so do the commits its vacuum
/// scrubs; the table stays readable by delta-rs.
@Test func oneDurabilityPassPerErasure() async throws {
    let dir = try deltaTables("deltadurable", "make")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for i in 0..<5 { _ = try deltaPy(["append", dir + "/plain", "\(100 + 7 * i)", "7"]) }
    let lethe = try deltaLethe(dir, ["plain"])
    let store = try #require(lethe.store as? LocalObjectStore)
    let before = try rows(dir + "/plain")
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let passes = store.counters.durabilityPasses.load(ordering: .relaxed)
    let folders = store.counters.folderSyncs.load(ordering: .relaxed)
    let run = try await lethe.run()
    #expect(run.objectsRewritten >= 5, "\(run)")
    // One pass for the replacements, one for the commits the targeted vacuum scrubbed, one for its
    // VACUUM END (made durable while the vacuumed files are deleted, before it is linked).
    #expect(store.counters.durabilityPasses.load(ordering: .relaxed) - passes == 3)
    // One folder sync for the replacements, one for the scrubbed commits, and the commits' own.
    let synced = store.counters.folderSyncs.load(ordering: .relaxed) - folders
    #expect(synced <= 5, "\(synced) folder syncs for \(run.objectsRewritten) files")
    #expect(try rows(dir + "/plain") == before.filter { $0 != "u-1" })
    #expect(try await lethe.request(r.id).status == .verified)
}

enum DeltaLakeNames {
    static func commit(_ v: Int) -> String { String(format: "%020d.json", v) }
}

@Test func tablesWithDeletionVectorsAreLocatedErasedAndLeftWithoutThem() async throws {
    let dir = NSTemporaryDirectory() + "lethe-deltadv-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let dv = { (args: [String]) in try Peers.python([Peers.script("delta_dv.py")] + args, what: "delta_dv.py \(args[0])") }
    // Two files of 40 and 30 rows (user_id u-(row % 7)); deletion vectors: file 0 rows 3, 4, 5
    // (in a DV file), file 1 rows 0, 1 (inline).
    _ = try dv(["make", dir, "40,30"])
    _ = try dv(["delete", dir + "/dv", #"{"dvs":[{"f":0,"rows":[3,4,5],"storage":"u","bin":"b1"},{"f":1,"rows":[0,1],"storage":"i"}]}"#])
    let before = try rows(dir + "/dv")
    #expect(before.count == 65)
    let lethe = try deltaLethe(dir, ["dv"])
    _ = try await lethe.index()
    // locate tells the live rows from the row a deletion vector deleted (time travel still reads it).
    let located = try await lethe.locateRows(SubjectID("u-3"))
    #expect(located.filter { $0.role == .live }.map(\.rows.count).sorted() == [4, 5])
    #expect(located.filter { $0.role == .history }.map(\.rows) == [[3]])
    // A retention vacuum keeps the deletion vector files live files use.
    let wouldDelete = try await lethe.vacuum(dataset: "dv", retainHours: 0, dryRun: true, force: true)[0].deleted
    #expect(!wouldDelete.contains { $0.contains("deletion_vector_") }, "\(wouldDelete)")

    let r = try await lethe.forget([SubjectID("u-3")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(run.rowsDropped == 9)  // the rows the table showed; the DV-deleted one is purged, not counted
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try rows(dir + "/dv") == before.filter { $0 != "u-3" })
    // The replacements carry no deletion vector: the rows it deleted are physically gone.
    let log = try FileManager.default.contentsOfDirectory(atPath: dir + "/dv/_delta_log").filter { $0.hasSuffix(".json") }.sorted()
    let lethes = try log.map { try String(contentsOfFile: dir + "/dv/_delta_log/" + $0, encoding: .utf8) }.first {
        $0.contains("\"DELETE\"") && $0.contains("Lethe/")
    }
    let adds = (lethes ?? "").split(separator: "\n").filter { $0.hasPrefix("{\"add\"") }
    #expect(adds.count == 2 && adds.allSatisfy { !$0.contains("deletionVector") })
    #expect(adds.contains { $0.contains(#"\"numRecords\":32"#) } && adds.contains { $0.contains(#"\"numRecords\":24"#) }, "\(adds)")
    #expect(try await lethe.locateRows(SubjectID("u-3")).isEmpty)
}

@Test func propagationFromATableWithoutAChangeFeedIsRefusedNamingTheSetting() async throws {
    let dir = try deltaTables("deltanofeed", "make-propagation")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // silver has no change data feed: following its deletes cannot work.
    let yaml = "lake: .\ndatasets:\n  - name: silver\n    path: silver\n    format: delta\n    subject: user_id\n    deletes_from: change_feed\n"
    let lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
        meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    do { _ = try await lethe.propagate(); Issue.record("a table without a change feed was followed") } catch let e as LetheError {
        #expect(e.code == .badInput && e.message.contains("delta.enableChangeDataFeed") && e.location == "lethe.yaml:3", "\(e)")
    }
}

// MARK: - Tables other writers shaped (scripts/delta_writers.py)

/// Runs scripts/delta_writers.py.
func writersPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_writers.py")] + args, what: "delta_writers.py \(args.prefix(2).joined(separator: " "))")
}

/// A fresh folder with `delta_writers.py KIND DIR` written into it (table at DIR/t), and a Lethe
/// over it whose dataset `t` has the subject column `subject`.
func writersLake(_ kind: String, subject: String = "user_id", _ extra: [String] = []) throws -> (dir: String, out: String, lethe: Lethe) {
    let dir = NSTemporaryDirectory() + "lethe-writers-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let out = try writersPy([kind, dir] + extra)
    let yaml = "lake: .\ndatasets:\n  - name: t\n    path: t\n    format: delta\n    subject: \(subject)\n"
    let lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
        meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    return (dir, out, lethe)
}

/// Files and fields of the table's log that still hold `value` in a field that can name a
/// subject, as an independent Python reader sees them (scripts/delta_corpus.py residue).
func logResidue(_ table: String, _ column: String, _ value: String) throws -> String {
    try Peers.python([Peers.script("delta_corpus.py"), "residue", table, column, value], what: "residue \(table)")
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// index → forget → approve → run for one subject; the run must not fail.
func forgetAndRun(_ lethe: Lethe, _ subject: String) async throws -> (ErasureRequest, RunReport) {
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    return (try await lethe.request(r.id), run)
}

@Test func sparkDeletionVectorCommitsAndCheckpointsLoseNoRowAndDoNotCrash() async throws {
    // Deletion vectors as Spark writes them: add(A, dv2) and remove(A, dv1) in one commit, and a
    // checkpoint listing the live add(A, dv2) before the tombstones remove(A) and remove(A, dv1).
    // Lethe once took A for history and deleted it (every other row of A lost), or crashed.
    struct SparkDV: Decodable { var A: String }
    let (dir, out, lethe) = try writersLake("spark-dv")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let a = "t/" + (try JSONDecoder().decode(SparkDV.self, from: Data(out.utf8))).A
    let before = try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8))
    // locate: A is live; its row 0 (u-0), deleted by its deletion vector, only time travel reads.
    _ = try await lethe.index()
    let located = try await lethe.locateRows(SubjectID("u-0"))
    #expect(located.filter { $0.object == a && $0.role == .live }.map(\.rows) == [[7, 14]])
    #expect(located.filter { $0.object == a && $0.role == .history }.map(\.rows) == [[0]])
    let (r, run) = try await forgetAndRun(lethe, "u-0")
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(r.status == .verified)
    let after = try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8))
    #expect(after == before.filter { $0 != "u-0" })
    #expect(try logResidue(dir + "/t", "user_id", "u-0") == "{}")
    #expect(try filesHolding("u-0", under: dir + "/t").filter { !$0.hasPrefix("_delta_log") } == [])
    _ = try writersPy(["append", dir + "/t"])
    #expect(try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8)).count == after.count + 1)
}

@Test func shortIdsAreVerifiedAndScrubbedByFieldNeverByBytes() async throws {
    // A one-character id: every commit's timestamp holds it as bytes. Only the statistics that bound
    // it, the predicate that names it and the checksums listing those statistics are scrubbed.
    let (dir, _, lethe) = try writersLake("short-ids", subject: "id")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let log = dir + "/t/_delta_log/"
    let untouched = try ["00000000000000000000.json", "00000000000000000002.json", "00000000000000000000.crc"].map {
        ($0, try String(contentsOfFile: log + $0, encoding: .utf8))
    }
    #expect(try logResidue(dir + "/t", "id", "5") != "{}")
    let (r, run) = try await forgetAndRun(lethe, "5")
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    for (name, text) in untouched { #expect(try String(contentsOfFile: log + name, encoding: .utf8) == text, "\(name) was rewritten") }
    // The other tool's predicate naming 5 is in a commit that names no file of the subject: the run
    // neither reads nor scrubs it (issue 12: the targeted vacuum reads the commits naming the subject's
    // files and Lethe's own); the sweep, which reads the whole log, finds it and fails the request ...
    #expect(try logResidue(dir + "/t", "id", "5").contains("00000000000000000003.json"))
    let sweep = try await lethe.sweep()
    #expect(sweep.requests.first?.result == "residue", "\(sweep.requests)")
    #expect(try await lethe.request(r.id).status == .failed)
    // ... and the next run scrubs the commit the sweep named and verifies the request again.
    let again = try await lethe.run()
    #expect(again.failed.isEmpty, "\(again.failed)")
    #expect(try await lethe.request(r.id).status == .verified)
    for (name, text) in untouched { #expect(try String(contentsOfFile: log + name, encoding: .utf8) == text, "\(name) was rewritten") }
    #expect(try logResidue(dir + "/t", "id", "5") == "{}")
    #expect(try writersPy(["rows", dir + "/t", "id"]) == "[0, 1, 2, 3, 4, 6, 7, 7, 8, 8, 9]\n")
    // Verification reads the log field by field for a short id too: stats naming it again are found.
    let v1 = log + "00000000000000000001.json"
    let text = try String(contentsOfFile: v1, encoding: .utf8)
    try text.replacingOccurrences(of: #"\"numRecords\":5}"#, with: #"\"numRecords\":5,\"minValues\":{\"id\":5}}"#)
        .write(toFile: v1, atomically: true, encoding: .utf8)
    let d = try #require(lethe.config.dataset(named: "t"))
    let found = try await lethe.deltaLogResidue(d, subjects: [SubjectID("5"), SubjectID("42")])
    #expect(found[SubjectID("5")]?.map(\.key) == ["t/_delta_log/00000000000000000001.json"])
    #expect(found[SubjectID("42")] == nil)
}

@Test func changeDataOfFilesWithAChangeTypeColumnIsReadByEveryReader() async throws {
    let (dir, _, lethe) = try writersLake("change-type")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (r, run) = try await forgetAndRun(lethe, "u-2")
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(r.status == .verified)
    let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/t/_delta_log").filter { $0.hasSuffix(".json") }.sorted()
    let lethes = try names.first { try String(contentsOfFile: dir + "/t/_delta_log/" + $0, encoding: .utf8).contains("\"DELETE\"") }
    let version = String(Int(try #require(lethes).prefix(20))!)
    // pyarrow and DuckDB read every change data file (one `_change_type` column); delta-rs reads the feed.
    struct Check: Decodable { var files: Int }
    let check = try JSONDecoder().decode(Check.self, from: Data(try writersPy(["check-cdc", dir + "/t", version]).utf8))
    #expect(check.files == 2)
}

@Test func inCommitTimestampsAndRowTrackingAreKeptByTheErasureCommit() async throws {
    struct Fixture: Decodable { var highWaterMark: Int64; var lastICT: Int64 }
    let (dir, out, lethe) = try writersLake("ict-rows")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let fx = try JSONDecoder().decode(Fixture.self, from: Data(out.utf8))
    let before = try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8))
    let (r, run) = try await forgetAndRun(lethe, "u-2")
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(r.status == .verified)
    #expect(try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8)) == before.filter { $0 != "u-2" })
    let t = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    var previousICT = fx.lastICT
    var sawDelete = false
    for v in try await t.versions() where v >= 2 {
        let actions = try await t.commit(v)
        // commitInfo first, with an in-commit timestamp one millisecond after the previous (they are in the future).
        guard case .commitInfo(let info) = actions.first else { Issue.record("v\(v): commitInfo is not first"); continue }
        let ict = try #require(info["inCommitTimestamp"]?.int, "v\(v) has no inCommitTimestamp")
        #expect(ict == previousICT + 1, "v\(v)")
        previousICT = ict
        guard info["operation"]?.string == "DELETE" else { continue }
        sawDelete = true
        // New files get fresh Row IDs above the high water mark, the commit's version, and a new mark.
        var next = fx.highWaterMark + 1
        for case .add(let a) in actions {
            #expect(a.raw["baseRowId"]?.int == next)
            #expect(a.raw["defaultRowCommitVersion"]?.int == v)
            next += DeltaTable.numRecords(a) ?? 0
        }
        for case .remove(let rm) in actions { #expect(rm.raw["baseRowId"] != nil && rm.raw["defaultRowCommitVersion"] != nil) }
        let mark = actions.compactMap { a -> Int64? in
            guard case .other("domainMetadata", let d) = a, d["domain"]?.string == "delta.rowTracking",
                let c = d["configuration"]?.string
            else { return nil }
            return (try? JSONValue.parse(Array(c.utf8)))?["rowIdHighWaterMark"]?.int
        }
        #expect(mark == [next - 1])
        #expect(info["tags"]?["delta.rowTracking.preserved"]?.string == "false")
    }
    #expect(sawDelete)
}

@Test func columnMappingIdModeTablesAreErasedAndAFileWithOtherFieldIDsIsRefused() async throws {
    let (dir, _, lethe) = try writersLake("id-mode")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let before = try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8))
    let (r, run) = try await forgetAndRun(lethe, "u-3")
    #expect(run.failed.isEmpty, "\(run.failed)")
    #expect(r.status == .verified)
    #expect(try JSONDecoder().decode([String].self, from: Data(try writersPy(["rows", dir + "/t"]).utf8)) == before.filter { $0 != "u-3" })
    // A data file whose column carries another field id than the schema's is refused by name.
    let t = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    let s = try await t.snapshot()
    var schema = try #require(try JSONValue.parse(Array(s.metadata.schemaString.utf8)).object)
    var fields = try #require(schema["fields"]?.array)
    var f0 = try #require(fields[0].object), md = try #require(f0["metadata"]?.object)
    md["delta.columnMapping.id"] = .int(42)
    f0["metadata"] = .object(md); fields[0] = .object(f0); schema["fields"] = .array(fields)
    var meta = s.metadata.raw
    meta["schemaString"] = .string(JSONValue.object(schema).encodedText)
    try await t.commit([.commitInfo(["operation": .string("SET TBLPROPERTIES")]), .other("metaData", .object(meta))], version: s.version + 1)
    let (r2, run2) = try await forgetAndRun(lethe, "u-4")
    #expect(r2.status != .verified)
    #expect(run2.failed.contains { $0.reason.contains("`id`") }, "\(run2.failed)")
}

@Test func anUnsupportedFeatureIsRefusedByNameAtIndexTimeAndTheTableIsLeftAlone() async throws {
    let (dir, _, lethe) = try writersLake("features", ["someFutureWriterFeature"])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func tree() throws -> [String: Data] {
        var out: [String: Data] = [:]
        for case let rel as String in FileManager.default.enumerator(atPath: dir + "/t")! {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/t/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = try Data(contentsOf: URL(fileURLWithPath: dir + "/t/" + rel))
            }
        }
        return out
    }
    let before = try tree()
    let d = try #require(lethe.config.dataset(named: "t"))
    do { _ = try await lethe.indexListing(d); Issue.record("the table was listed for indexing") } catch let e as LetheError {
        #expect(e.code == .unsupported && e.message.contains("`someFutureWriterFeature`"), "\(e)")
    }
    #expect(try tree() == before)
}

@Test func aVacuumThatFailsLeavesTheRequestFailedWithTheReasonAndTheRetryWritesNoSecondStart() async throws {
    let dir = try deltaTables("deltavacfail", "make-features")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let lethe = try deltaLethe(dir, ["cdf"])
    _ = try await lethe.index()
    // u-3's rows are gone from the table's first file (delta-rs deleted them at version 1); its
    // change data file still holds them, and so does the file appended at version 2. An unreadable
    // checkpoint at version 1 (replay falls back to the JSON log; neither file is live there, so
    // the vacuum must read it to know) makes the vacuum fail after its VACUUM START, when it scrubs
    // the log's copies of statistics. (A checkpoint where a deleted file was live goes unread.)
    let t = DeltaTable(store: LocalObjectStore(root: dir), root: "cdf")
    let junkName = String(format: "%020d.checkpoint.parquet", 1)
    let junk = dir + "/cdf/_delta_log/" + junkName
    try Data("not parquet".utf8).write(to: URL(fileURLWithPath: junk))
    let r = try await lethe.forget([SubjectID("u-3")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let first = try await lethe.run()
    #expect(first.failed.contains { $0.id == r.id && $0.reason.contains(junkName) }, "\(first.failed)")
    let failed = try await lethe.request(r.id)
    #expect(failed.status == .failed, "\(failed.status)")
    // Mended, the retry finishes the vacuum the failed attempt started: one START, one END.
    try FileManager.default.removeItem(atPath: junk)
    _ = try await lethe.run()
    if try await lethe.request(r.id).status != .verified { _ = try await lethe.run() }
    #expect(try await lethe.request(r.id).status == .verified)
    var starts = 0, ends = 0
    for v in try await t.versions() {
        for case .commitInfo(let c) in try await t.commit(v) where (c["engineInfo"]?.string ?? "").hasPrefix("Lethe/") {
            if c["operation"]?.string == "VACUUM START" { starts += 1 }
            if c["operation"]?.string == "VACUUM END" { ends += 1 }
        }
    }
    #expect(starts == 1 && ends == 1, "\(starts) START, \(ends) END")
}

/// Copies every file under `from` that `to` lacks (same relative path) into `to`.
private func restoreMissing(from: String, to: String) throws -> [String] {
    var restored: [String] = []
    for case let rel as String in FileManager.default.enumerator(atPath: from)! {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: from + "/" + rel, isDirectory: &isDir), !isDir.boolValue,
            !FileManager.default.fileExists(atPath: to + "/" + rel)
        else { continue }
        try FileManager.default.createDirectory(atPath: ((to + "/" + rel) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: from + "/" + rel, toPath: to + "/" + rel)
        restored.append(rel)
    }
    return restored
}

// h6 D1: `kill -9` after a Delta erasure wrote its replacement and change data files and before it committed
// leaves them in the table folder, referenced by no version: the change data file holds exactly the subject's
// deleted rows. The next run commits anew and verifies "clean" (it reads only files the log references), and
// the orphans stay — found by killing `lethe run` when `_change_data/cdc-*-lethe-*` appears. Here the kill is
// simulated: the files as they were just before the commit are put back after the failed attempt's cleanup.
@Test
func aRunKilledBeforeItsDeltaCommitLeavesNoFileHoldingTheSubject() async throws {
    let dir = try deltaTables("deltaorphan", "make-features")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = dir + "/cdf", aside = dir + "/aside"
    var lethe = try deltaLethe(dir, ["cdf"])
    _ = try await lethe.index()
    struct Killed: Error {}
    let once = Once()
    lethe.deltaCommitHook = {
        guard once.first() else { return }
        try FileManager.default.copyItem(atPath: table, toPath: aside)  // what is on disk at the instant of the kill
        throw Killed()
    }
    let r = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try? await lethe.run()
    let orphans = try restoreMissing(from: aside, to: table)
    #expect(orphans.contains { $0.hasPrefix("_change_data/") }, "\(orphans)")
    for _ in 0..<3 where try await lethe.request(r.id).status != .verified { _ = try? await lethe.run() }
    let status = try await lethe.request(r.id).status
    let holding = try filesHolding("u-2", under: table)
    #expect(status != .verified || holding.isEmpty, "verified while \(holding) hold the subject")
    // D1: the files were journaled before they were written, so the next run removed them and the request is verified.
    let failure = try await lethe.request(r.id).failure ?? ""
    #expect(status == .verified && holding.isEmpty, "\(status) \(holding) \(failure)")
    #expect(try await lethe.meta.temporaries().isEmpty)
    let others = try rows(table)
    #expect(!others.contains("u-2") && others.contains("u-1"))
}

/// A killed erasure whose orphans the journal does not know (e.g. another tool's interrupted write): verification
/// reads Parquet files under the table that no version names, so the request cannot be certified while one holds
/// the subject; such a file is never deleted by Lethe's journal cleanup (it is not Lethe's to delete).
@Test func anUnnamedFileUnderADeltaTableHoldingTheSubjectFailsVerification() async throws {
    let dir = try deltaTables("deltaunnamed", "make-features")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = dir + "/cdf", aside = dir + "/aside"
    var lethe = try deltaLethe(dir, ["cdf"])
    _ = try await lethe.index()
    struct Killed: Error {}
    let once = Once()
    lethe.deltaCommitHook = {
        guard once.first() else { return }
        try FileManager.default.copyItem(atPath: table, toPath: aside)
        throw Killed()
    }
    let r = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try? await lethe.run()
    try await lethe.meta.forgetTemporaries(try await lethe.meta.temporaries().map(\.key))  // the journal lost them
    let orphans = try restoreMissing(from: aside, to: table)
    #expect(orphans.contains { $0.hasPrefix("_change_data/") }, "\(orphans)")
    for _ in 0..<3 where try await lethe.request(r.id).status != .verified { _ = try? await lethe.run() }
    let done = try await lethe.request(r.id)
    let holding = try filesHolding("u-2", under: table)
    #expect(done.status != .verified, "verified while \(holding) hold the subject")
    let v = try await lethe.verify(ids: [r.id], dryRun: true)[0]
    #expect(!v.clean && v.found.contains { ($0.issue ?? "").contains("does not name") }, "\(v.summary)")
    for o in orphans { #expect(FileManager.default.fileExists(atPath: table + "/" + o), "\(o) was deleted") }
    // Once they are gone (e.g. `lethe vacuum --retain`, here by hand), the request verifies.
    for o in orphans { try FileManager.default.removeItem(atPath: table + "/" + o) }
    _ = try await lethe.run()
    let after = try await lethe.request(r.id)
    #expect(after.status == .verified, "\(after.failure ?? "")")
}

/// A file the journal recorded that a committed version names (a kill after the commit, before the journal forgot
/// it) is data: the cleanup of a later run only forgets it, never deletes it.
@Test func aJournaledFileACommitAdoptedIsNeverDeleted() async throws {
    let dir = try deltaTables("deltaadopted", "make-features")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let lethe = try deltaLethe(dir, ["cdf"])
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try await lethe.run()
    #expect(try await lethe.request(r.id).status == .verified)
    let live = try await DeltaTable(store: lethe.store, root: "cdf").snapshot().files.keys.filter { $0.contains("-lethe-") }
    #expect(!live.isEmpty)
    let before = try rows(dir + "/cdf")
    for p in live { try await lethe.meta.recordTemporary("cdf/" + p, owner: 999_999_999, table: "cdf") }
    #expect(try await lethe.removeLeftTemporaries() == 0)
    #expect(try await lethe.meta.temporaries().isEmpty)
    #expect(try rows(dir + "/cdf") == before)
}
