import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog

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
    let lethe = Lethe(config: config, store: LocalObjectStore(root: dir), meta: try SQLiteMetastore(inMemory: nil),
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
    let config = try LakeConfig.parse("lake: .\ndatasets:\n  - name: plain\n    path: plain\n    format: delta\n    subject: user_id\n",
                                      file: "lethe.yaml", baseDir: dir)
    let lethe = Lethe(config: config, store: LocalObjectStore(root: dir), meta: try SQLiteMetastore(inMemory: nil),
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
    return Lethe(config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
                 meta: try SQLiteMetastore(inMemory: nil),
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
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func first() -> Bool { lock.lock(); defer { lock.unlock() }; if done { return false }; done = true; return true }
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
    let lethe = Lethe(config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
                      meta: try SQLiteMetastore(inMemory: nil),
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
    let lethes = try log.map { try String(contentsOfFile: dir + "/dv/_delta_log/" + $0, encoding: .utf8) }.first { $0.contains("\"DELETE\"") && $0.contains("Lethe/") }
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
    let lethe = Lethe(config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
                      meta: try SQLiteMetastore(inMemory: nil),
                      secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
                      stateFolder: nil)
    do { _ = try await lethe.propagate(); Issue.record("a table without a change feed was followed") } catch let e as LetheError {
        #expect(e.code == .badInput && e.message.contains("delta.enableChangeDataFeed") && e.location == "lethe.yaml:3", "\(e)")
    }
}
