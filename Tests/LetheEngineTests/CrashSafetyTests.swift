import Testing
import Foundation
import Synchronization
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheRuntime
import LetheSQLite
import LetheTesting

// Issue 10: the request state machine under kill -9 (items 1, 2, 3), concurrency (5),
// raw ids in the state (10), lost keys (11), the keyed audit chain (12), secure_delete (13).

private func event(_ u: String, _ n: Int) -> String { userEvent(u, n) }

/// A lake and a state folder on disk, opened as the CLI opens them (`Lethe.open`).
struct DiskLake {
    let dir: String
    static let yaml = """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: raw
            path: raw
            format: jsonl
            subject: user.id
          - name: exports
            path: exports
            format: jsonl
            subject: user_id
        """

    init(_ yaml: String = DiskLake.yaml) throws {
        dir = NSTemporaryDirectory() + "lethe-disk-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/lake", withIntermediateDirectories: true)
        if yaml == DiskLake.yaml {
            // Every configured dataset's folder exists (a missing one is a dataset issue).
            for d in ["raw", "exports"] { try FileManager.default.createDirectory(atPath: dir + "/lake/" + d, withIntermediateDirectories: true) }
        }
        try yaml.write(toFile: dir + "/lethe.yaml", atomically: true, encoding: .utf8)
    }
    var state: String { dir + "/.lethe" }
    func open() throws -> Lethe { try Runtime.open(config: try LakeConfig.load(path: dir + "/lethe.yaml")) }
    func put(_ key: String, _ text: String) throws {
        let path = dir + "/lake/" + key
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }
    func text(_ key: String) throws -> String { try String(contentsOfFile: dir + "/lake/" + key, encoding: .utf8) }
    func exists(_ key: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/lake/" + key) }
    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

private func approved(_ lethe: Lethe, _ subject: String, reason: String = "ticket 4711") async throws -> ErasureRequest {
    let r = try await lethe.forget([SubjectID(subject)], reason: reason, by: "alice")[0]
    return try await lethe.approve([r.id], by: "bob")[0]
}

// MARK: Item 1: claim and job in one transaction

@Test func aRequestLeftRunningWithoutAJobIsTakenBackAndErased() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    _ = try await f.lethe.index()
    let r = try await approved(f.lethe, "u-1")
    // What a run killed between claiming and journaling left, before the two were one transaction.
    try await f.lethe.meta.updateRequest(try RequestLifecycle.apply(.start(at: 5), to: r).get(), expecting: .approved)
    let run = try await f.lethe.run()
    #expect(run.requeued == [r.id])
    #expect(run.failed.isEmpty)
    #expect(try await f.text("raw/a.jsonl") == event("u-2", 2))
    #expect(try await f.lethe.request(r.id).status == .verified)
    #expect(try await f.lethe.meta.auditEntries().contains { $0.event == "requeued" && $0.requestID == r.id })
}

@Test func aClaimedRequestAndItsJobAreCommittedTogether() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1))
    _ = try await f.lethe.index()
    let r = try await approved(f.lethe, "u-1")
    let audit = try await f.lethe.meta.auditEntries().count
    struct Killed: Error {}
    // A claim that dies after updating the request and the audit log, before the job: nothing stays.
    await #expect(throws: Killed.self) {
        try await f.lethe.meta.transaction("claim") { tx in
            let n = try RequestLifecycle.apply(.start(at: 9), to: try tx.request(id: r.id)!).get()
            try tx.updateRequest(n, expecting: .approved)
            try tx.appendAudit(event: .started, requestID: r.id, actor: "lethe", details: "{}", at: 9)
            throw Killed()
        }
    }
    #expect(try await f.lethe.request(r.id).status == .approved)
    #expect(try await f.lethe.meta.auditEntries().count == audit)
    // A whole claim: the request is running and a job with a pending step names it.
    try await f.lethe.meta.transaction("claim") { tx in
        let n = try RequestLifecycle.apply(.start(at: 9), to: try tx.request(id: r.id)!).get()
        try tx.updateRequest(n, expecting: .approved)
        try tx.createJob([JournalStep(job: "j", ordinal: 0, dataset: "", objectKey: "", requestIDs: [r.id], subjectKeys: [r.subjectKey])])
    }
    #expect(try await f.lethe.meta.transaction("read") { tx in try tx.pendingRequestIDs() } == [r.id])
    let run = try await f.lethe.run()
    #expect(run.requeued.isEmpty && run.jobs == ["j"])
}

// MARK: Item 2: killed during verification

@Test func requestsLeftErasedByAKillDuringVerificationAreVerifiedByTheNextRun() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("raw/b.jsonl", event("u-3", 1) + event("u-2", 2))
    _ = try await f.lethe.index()
    let a = try await approved(f.lethe, "u-1"), b = try await approved(f.lethe, "u-3")
    // A job killed in its closing step's verification: requests erased, the closing step pending.
    for r in [a, b] {
        var n = try RequestLifecycle.apply(.start(at: 5), to: r).get()
        try await f.lethe.meta.updateRequest(n, expecting: .approved)
        n = try RequestLifecycle.apply(.erased(at: 6), to: n).get()
        try await f.lethe.meta.updateRequest(n, expecting: .running)
    }
    try await f.store.put("raw/a.jsonl", Array(event("u-2", 2).utf8))
    try await f.lethe.meta.createJob([JournalStep(job: "j-a", ordinal: 0, dataset: "", objectKey: "", requestIDs: [a.id], subjectKeys: [a.subjectKey])])
    // …and one from before the closing step waited for verification: erased, no job at all.
    try await f.store.put("raw/b.jsonl", Array(event("u-2", 2).utf8))
    let run = try await f.lethe.run()
    #expect(Set(run.verifications.map(\.id)) == [a.id, b.id])
    #expect(run.verifications.allSatisfy { $0.clean })
    #expect(try await f.lethe.request(a.id).status == .verified)
    #expect(try await f.lethe.request(b.id).status == .verified)
    #expect(try await f.lethe.meta.pendingSteps().isEmpty)
}

// MARK: Item 3: temporary files

@Test func aTemporaryFileAKilledRunLeftIsRemovedAndAnObjectNamedLikeOneIsData() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/export.lethe-tmp-1.jsonl", event("u-1", 1) + event("u-2", 2))  // a real object
    try lake.put("raw/a.jsonl", event("u-3", 1) + event("u-1", 2))
    let lethe = try lake.open()
    // A rewrite a killed run left: journaled before it was created, never committed.
    let w = try await lethe.store.openWrite("raw/a.jsonl", precondition: .none)
    try await w.write(Array(event("u-3", 1).utf8))
    let temps = try await lethe.meta.temporaries()
    #expect(temps.count == 1 && temps[0].key.hasPrefix("raw/.a.jsonl.lethe-tmp-"), "\(temps)")
    let tmpKey = temps[0].key
    #expect(lake.exists(tmpKey))
    let ir = try await lethe.index()
    #expect(ir.objectsSeen == 2 && ir.objectsScanned == 2)  // the journaled temporary is not data; the look-alike is
    #expect(Set(try await lethe.locate(SubjectID("u-1")).map(\.object.key)) == ["raw/a.jsonl", "raw/export.lethe-tmp-1.jsonl"])
    let r = try await approved(lethe, "u-1")
    let run = try await lethe.run()
    #expect(run.temporariesRemoved == 1)
    #expect(!lake.exists(tmpKey))
    #expect(try lake.text("raw/export.lethe-tmp-1.jsonl") == event("u-2", 2))
    #expect(try lake.text("raw/a.jsonl") == event("u-3", 1))
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try await lethe.meta.temporaries().isEmpty)
    withExtendedLifetime(w) {}
}

// MARK: Item 5: the state scan keeps SQLite's locks

/// Whether another process can reset the WAL of `folder`'s database right now ("1": busy, refused).
private func walResetRefused(_ folder: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [
        "python3", "-c",
        """
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], timeout=0)
        print(c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
        """, folder + "/lethe.sqlite",
    ]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Test func openingTheStateAgainInTheSameProcessLeavesSQLitesLocksInPlace() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    let meta = try #require(try lake.open().meta as? SQLiteStateStore)
    for i in 0..<50 { try await meta.setSetting("pad.\(i)", String(repeating: "x", count: 2000)) }
    let kept = try meta.whileReading { () -> String in
        _ = try SQLiteStateStore(folder: lake.state)  // a second store on the same file (e.g. a filter and a run)
        // Another process opens and closes the database: it may remove the WAL only if it is the
        // last one with the database open, which this process's lock on the file denies.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            """
            import os, sqlite3, sys
            c = sqlite3.connect(sys.argv[1], timeout=0)
            c.execute("SELECT count(*) FROM settings").fetchone()
            c.close()
            print(os.path.exists(sys.argv[1] + "-wal"))
            """, lake.state + "/lethe.sqlite",
        ]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    #expect(kept == "True", "opening the database again dropped this process's lock: another process removed the WAL")
}

@Test func theStateScanLeavesSQLitesLocksInPlace() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    let lethe = try lake.open()
    let meta = try #require(lethe.meta as? SQLiteStateStore)
    for i in 0..<50 { try await meta.setSetting("pad.\(i)", String(repeating: "x-", count: 1000)) }
    let folder = lake.state
    // While this process reads (a WAL read lock), the residue scan reads every state file; then
    // another process tries to reset the WAL. It must be refused (busy): the lock still holds.
    let busy = try meta.whileReading { () -> String in
        _ = try StateFolderScanner.searchFolder(folder, for: [Array("no-such-needle".utf8)])
        return try walResetRefused(folder)
    }
    #expect(busy == "1", "the WAL was reset under a reader: the scan dropped SQLite's locks")
    // The scan still reads the database files' bytes.
    let found = try StateFolderScanner.searchFolder(folder, for: [Array(("-" + String(repeating: "x-", count: 32)).utf8)])
    #expect(found.hits.values.first?.contains { $0.hasPrefix("lethe.sqlite") } == true)
}

// MARK: Item 10: raw ids entering the state

@Test func aReasonHoldingTheRawIdIsRefusedBeforeAnythingIsStored() async throws {
    let f = try Fixture()
    let composite = SubjectID(parts: [Array("t1".utf8), Array("u-00077".utf8)])
    for (subject, reason) in [
        (SubjectID("u-00077"), "customer u-00077 (jane@example.com)"), (SubjectID("u-00077"), "ticket for U-00077."),
        (SubjectID("u7"), "ticket u7"), (composite, "tenant t1, user u-00077"),
    ] {
        do {
            _ = try await f.lethe.forget([subject], reason: reason, by: "alice")
            Issue.record("accepted reason \(reason)")
        } catch let e as LetheError {
            #expect(e.code == .badInput)
            #expect(!e.description.contains("u-00077") && !e.description.contains("u7 "), "\(e)")
        }
    }
    #expect(try await f.lethe.meta.requests(status: nil).isEmpty)
    #expect(try await f.lethe.meta.auditEntries().isEmpty)
    // A short id inside another word is not the id.
    let ok = try await f.lethe.forget([SubjectID("u7")], reason: "ticket u77", by: "alice")[0]
    do {
        _ = try await f.lethe.reject(ok.id, by: "bob", reason: "u7 is a test account")
        Issue.record("a rejection reason holding the id was accepted")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
    }
    #expect(try await f.lethe.request(ok.id).status == .planned)
}

@Test func objectKeysThatNameASubjectStayOutOfTheAuditLogAndThePurgedStateProvesTheIdGone() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("exports/u-00077.jsonl", #"{"user_id":"u-00077","n":1}"# + "\n")
    try lake.put("exports/all.jsonl", #"{"user_id":"u-00077","n":2}"# + "\n" + #"{"user_id":"u-00078","n":3}"# + "\n")
    try lake.put("raw/a.jsonl", event("u-00078", 1))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let r = try await approved(lethe, "u-00077")
    let run = try await lethe.run()
    // The emptied object still has a name that holds the id: not proven gone.
    #expect(run.failed.map(\.id) == [r.id])
    #expect(run.failed.first?.reason.contains("the object's key names the subject") == true, "\(run.failed)")
    let needle = Array("u-00077".utf8)
    func auditHolds() async throws -> Bool {
        try await lethe.meta.auditEntries().contains { !Lethe.search(Array(($0.details + ($0.actor ?? "")).utf8), for: [needle]).isEmpty }
    }
    #expect(try await auditHolds() == false)
    #expect(try await lethe.meta.auditEntries().contains { $0.event == "object_rewritten" && $0.details.contains(#""object":"#) })
    // Once the object is gone, the next run proves the id gone from the lake and from the state.
    try FileManager.default.removeItem(atPath: lake.dir + "/lake/exports/u-00077.jsonl")
    let again = try await lethe.run()
    #expect(again.failed.isEmpty, "\(again.failed)")
    let v = try #require(again.verifications.first)
    // A run verifies at index cost: it purges the raw id from the state but leaves the byte search
    // of the state folder (and the write-ahead-log checkpoint) to the sweep and `lethe verify ID`.
    #expect(v.clean && v.proof == "index" && v.stateHits.isEmpty && v.stateScanSkipped == Verifier.stateLeftToTheSweep, "\(v)")
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try await auditHolds() == false)
    _ = await lethe.meta.checkpoint()
    #expect(try StateFolderScanner.searchFolder(lake.state, for: [needle]).hits.isEmpty)
    // The plan shows objects by reference; a purged name is shown as such.
    let plan = try await lethe.resolvedPlan(try #require(ErasurePlan.decode(try await lethe.request(r.id).plan!)))
    #expect(plan.datasets.flatMap(\.objects).allSatisfy { $0.key != "exports/u-00077.jsonl" })
}

// MARK: Item 11: lost keys

@Test func aMissingOrDifferentKeyIsRefusedNamingTheFileAndNeverRegenerated() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1))
    do {
        let lethe = try lake.open()
        _ = try await lethe.index()
    }
    for name in StateSecrets.keyFiles {
        #expect(FileManager.default.fileExists(atPath: lake.state + "/" + name), "\(name)")
    }
    let secret = lake.state + "/secret.key"
    let saved = try Data(contentsOf: URL(fileURLWithPath: secret))
    try FileManager.default.removeItem(atPath: secret)
    do {
        _ = try lake.open()
        Issue.record("opened a state whose secret.key is gone")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.location == secret && e.message.contains("restore the file from a backup"), "\(e)")
    }
    #expect(!FileManager.default.fileExists(atPath: secret))  // never made anew
    // A different key (say, another installation's) is refused too.
    _ = try StateSecrets.createKey(secret)
    do {
        _ = try lake.open()
        Issue.record("opened a state with another secret.key")
    } catch let e as LetheError {
        #expect(e.code == .badInput && e.message.contains("not the key the state was made with"), "\(e)")
    }
    try FileManager.default.removeItem(atPath: secret)
    try saved.write(to: URL(fileURLWithPath: secret))
    _ = try lake.open()
    // A state from before fingerprints: a missing key is still refused (the state holds data).
    let meta = try SQLiteStateStore(folder: lake.state)
    try await meta.removeSetting(Runtime.fingerprintSetting("request.key"))
    try FileManager.default.removeItem(atPath: lake.state + "/request.key")
    #expect(throws: LetheError.self) { _ = try lake.open() }
    #expect(!FileManager.default.fileExists(atPath: lake.state + "/request.key"))
}

@Test func aStateFolderDeletedMidRunFailsTheRun() async throws {
    let yaml =
        DiskLake.yaml + """

              - name: agg
                path: agg
                format: csv
                derived_from: [raw]
                rebuild: "rm -rf .lethe"
            """
    let lake = try DiskLake(yaml)
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    let lethe = try lake.open()
    _ = try await lethe.index()
    _ = try await approved(lethe, "u-1")
    do {
        _ = try await lethe.run()
        Issue.record("a run whose state folder was deleted ended well")
    } catch let e as LetheError {
        #expect(e.message.contains("state database was deleted"), "\(e)")
    }
}

// MARK: Item 12: the keyed audit chain

@Test func aChainRewrittenWithRecomputedHashesFailsWithoutTheKey() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1))
    let lethe = try lake.open()
    _ = try await lethe.index()
    _ = try await approved(lethe, "u-1")
    let key = try #require(lethe.secrets.auditKey)
    var entries = try await lethe.meta.auditEntries()
    #expect(verifyAuditChain(entries, key: key).ok)
    // A forger edits entry 2 and recomputes every hash after it, as the unkeyed chain allowed.
    entries[1].actor = "mallory"
    var prev = entries[0].hash
    for i in 1..<entries.count {
        entries[i].prevHash = prev
        entries[i].hash = AuditChain.hash(
            seq: entries[i].seq, at: entries[i].at, event: entries[i].event, requestID: entries[i].requestID,
            actor: entries[i].actor, details: entries[i].details, prevHash: prev)
        prev = entries[i].hash
    }
    let v = verifyAuditChain(entries, key: key)
    #expect(!v.ok && v.firstBroken == 2, "\(v)")
    // Rewritten whole without the key: no keyed entry is left.
    var all = entries
    prev = AuditChain.genesis
    for i in all.indices {
        all[i].prevHash = prev
        all[i].hash = AuditChain.hash(
            seq: all[i].seq, at: all[i].at, event: all[i].event, requestID: all[i].requestID,
            actor: all[i].actor, details: all[i].details, prevHash: prev)
        prev = all[i].hash
    }
    #expect(verifyAuditChain(all, key: nil).ok)  // what `audit --check` accepted before the chain was keyed
    #expect(!verifyAuditChain(all, key: key).ok)
    // With another key, nothing verifies either.
    #expect(!verifyAuditChain(try await lethe.meta.auditEntries(), key: Array(repeating: 9, count: 32)).ok)
}

@Test func anUnkeyedChainFromAnOlderStateIsKeyedFromTheSwitchPointOn() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1))
    // An older state: keys without fingerprints, no audit.key, an unkeyed chain.
    try StateSecrets.ensureFolder(lake.state)
    for name in ["secret.key", "request.key", "stream.key"] { _ = try StateSecrets.createKey(lake.state + "/" + name) }
    do {
        let meta = try SQLiteStateStore(folder: lake.state)
        for i in 1...3 { try await meta.appendAudit(event: .filed, requestID: "r-\(i)", actor: "alice", details: "{}", at: Int64(i)) }
    }
    let lethe = try lake.open()
    let key = try #require(lethe.secrets.auditKey)
    _ = try await lethe.index()
    _ = try await approved(lethe, "u-1")
    let entries = try await lethe.meta.auditEntries()
    #expect(entries[3].event == "audit_keyed" && entries[3].details.contains("3:" + entries[2].hash))
    #expect(verifyAuditChain(entries, key: key).ok)
    #expect(!verifyAuditChain(entries, key: nil).ok)
    // The unkeyed part is covered by the switch point: rewriting it breaks the chain.
    var forged = entries
    forged[0].actor = "mallory"
    forged[0].hash = AuditChain.hash(
        seq: 1, at: forged[0].at, event: forged[0].event, requestID: forged[0].requestID,
        actor: "mallory", details: forged[0].details, prevHash: AuditChain.genesis)
    forged[1].prevHash = forged[0].hash
    forged[1].hash = AuditChain.hash(
        seq: 2, at: forged[1].at, event: forged[1].event, requestID: forged[1].requestID,
        actor: forged[1].actor, details: forged[1].details, prevHash: forged[1].prevHash)
    forged[2].prevHash = forged[1].hash
    forged[2].hash = AuditChain.hash(
        seq: 3, at: forged[2].at, event: forged[2].event, requestID: forged[2].requestID,
        actor: forged[2].actor, details: forged[2].details, prevHash: forged[2].prevHash)
    let v = verifyAuditChain(forged, key: key)
    #expect(!v.ok && v.firstBroken == 4, "\(v)")
    // Reopening keeps the one key and the one switch point.
    let again = try lake.open()
    #expect(again.secrets.auditKey == key)
    #expect(try await again.meta.auditEntries().filter { $0.event == "audit_keyed" }.count == 1)
}

// MARK: Item 13: secure_delete

@Test func deletedStateIsOverwrittenNotLeftInFreePages() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    let lethe = try lake.open()
    let meta = try #require(lethe.meta as? SQLiteStateStore)
    #expect(try meta.pragma("secure_delete") == "1")
    let marker = "purge-me-" + String(repeating: "z", count: 40)
    try await meta.setSetting("x", marker)
    try await meta.removeSetting("x")
    await meta.checkpoint()
    #expect(try StateFolderScanner.searchFolder(lake.state, for: [Array(marker.utf8)]).hits.isEmpty)
}

@Test func keyingTheAuditLogSurvivesACrashAtEachPointAndConcurrentOpeners() async throws {
    // A crash after the commit, before the rename: the next open finishes it with the same key.
    let lake = try DiskLake()
    defer { lake.remove() }
    let key = try #require(try lake.open().secrets.auditKey)
    try FileManager.default.moveItem(atPath: lake.state + "/audit.key", toPath: lake.state + "/audit.key.new")
    #expect(try lake.open().secrets.auditKey == key)
    #expect(FileManager.default.fileExists(atPath: lake.state + "/audit.key"))
    #expect(!FileManager.default.fileExists(atPath: lake.state + "/audit.key.new"))

    // A crash before the commit (a stale `.new`, no fingerprint): replaced, and the chain keyed once.
    let old = try DiskLake()
    defer { old.remove() }
    try StateSecrets.ensureFolder(old.state)
    for name in ["secret.key", "request.key", "stream.key"] { _ = try StateSecrets.createKey(old.state + "/" + name) }
    do {
        let meta = try SQLiteStateStore(folder: old.state)
        try await meta.appendAudit(event: .filed, requestID: "r-1", actor: "alice", details: "{}", at: 1)
    }
    let stale = try StateSecrets.createKey(old.state + "/audit.key.new")
    let opened = try old.open()
    let k = try #require(opened.secrets.auditKey)
    #expect(k != stale)
    let entries = try await opened.meta.auditEntries()
    #expect(entries.map(\.event) == ["filed", "audit_keyed"] && verifyAuditChain(entries, key: k).ok)

    // Openers racing on a new state all end with the same keys.
    let fresh = try DiskLake()
    defer { fresh.remove() }
    let folder = fresh.state
    let keys = try await withThrowingTaskGroup(of: [UInt8].self) { group in
        for _ in 0..<6 {
            group.addTask {
                let (secrets, _) = try Runtime.openState(folder: folder)
                return (secrets.auditKey ?? []) + Array(secrets.hasher.key(for: SubjectID("x")).bytes)
            }
        }
        var out: [[UInt8]] = []
        for try await k in group { out.append(k) }
        return out
    }
    #expect(Set(keys).count == 1 && keys[0].count == 64)
    _ = try fresh.open()  // and the state opens cleanly after
}

// MARK: h6: two runs at once

/// Progress lines a run printed.
private final class Said: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    func contains(_ s: String) -> Bool { lock.lock(); defer { lock.unlock() }; return lines.contains { $0.contains(s) } }
}

// Two `lethe run`s at once used to take each other's live job for an interrupted one: both rewrote the same
// objects, one failed every request ("object changed while it was being rewritten"), the other exited 2
// ("no journal step"). A run now waits while another holds the state's run lock, claiming nothing meanwhile.
@Test func aSecondRunWaitsForTheRunInProgressInsteadOfResumingItsJob() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let r = try await approved(lethe, "u-1")
    // The run in progress (another process) holds the lock; flock locks belong to the open file, so this one counts.
    let held = open(lake.state + "/run.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    #expect(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0)
    let said = Said()
    let run = Task { try await lethe.run(events: { said.add($0.message) }) }
    var waited = false
    for _ in 0..<2000 where !waited {
        waited = said.contains("waiting for another `lethe run`")
        if !waited { try await Task.sleep(nanoseconds: 5_000_000) }
    }
    #expect(waited, "the second run did not wait for the lock")
    #expect(try await lethe.request(r.id).status == .approved)  // nothing claimed while it waits
    close(held)
    let report = try await run.value
    #expect(report.failed.isEmpty)
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(try lake.text("raw/a.jsonl") == event("u-2", 2))
}

// h6: a key file that is garbled (truncated, emptied, overwritten) is a different key: refused with exit 2
// naming the file and how to restore it, like a missing one (it exited 1 with "not a 32-byte hex key").
@Test func aGarbledKeyIsRefusedLikeADifferentOne() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("u-1", 1))
    _ = try await lake.open().index()
    for name in StateSecrets.keyFiles {
        let path = lake.state + "/" + name
        let saved = try Data(contentsOf: URL(fileURLWithPath: path))
        for garbage in [Data(), saved.prefix(20), Data(repeating: 0xff, count: 65)] {
            try garbage.write(to: URL(fileURLWithPath: path))
            do {
                _ = try lake.open()
                Issue.record("opened a state whose \(name) is garbled")
            } catch let e as LetheError {
                #expect(e.code == .badInput, "\(name): \(e)")
                #expect(e.location == path && e.message.contains("restore the original file from a backup"), "\(e)")
            }
        }
        try saved.write(to: URL(fileURLWithPath: path))
    }
    _ = try lake.open()
}

// h6 D2: the append-only audit log keeps free text people type — another request's `--reason`, the `--by` of
// whoever files or approves. When that text holds the id of a person in the lake (an approver who signs with
// their e-mail and is a customer too; "duplicate of customer-777777"), that person's request fails at every
// run ("raw id in state files: lethe.sqlite") and can never be verified: nothing can purge it.
@Test
func aRawIdTypedIntoAnotherRequestsReasonOrActorDoesNotBlockItsErasureForever() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("bob.smith@corp.example", 1) + event("customer-777777", 2) + event("u-3", 3) + event("u-4", 4))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let first = try await lethe.forget([SubjectID("u-3")], reason: "duplicate of customer-777777", by: "alice")[0]
    _ = try await lethe.approve([first.id], by: "bob.smith@corp.example")
    _ = try await lethe.run()
    let bob = try await lethe.forget([SubjectID("bob.smith@corp.example")], reason: "ticket 1", by: "alice")[0]
    let customer = try await lethe.forget([SubjectID("customer-777777")], reason: "ticket 2", by: "alice")[0]
    _ = try await lethe.approve([bob.id, customer.id], by: "carol")
    _ = try await lethe.run()
    _ = try await lethe.run()
    #expect(try lake.text("raw/a.jsonl") == event("u-4", 4))
    for id in [bob.id, customer.id] {
        let r = try await lethe.request(id)
        #expect(r.status == .verified, "\(r.failure ?? "")")
    }
    // The chain still verifies (texts purged are accepted, the rest match their digests); people read `[erased]`.
    let check = try await lethe.checkAudit()
    #expect(check.ok, "\(check.reason ?? "")")
    let lines = try await lethe.auditLog()
    let approvedFirst = try #require(lines.first { $0.entry.event == "approved" && $0.entry.requestID == first.id })
    #expect(approvedFirst.actor == "[erased]")
    let filedFirst = try #require(lines.first { $0.entry.event == "filed" && $0.entry.requestID == first.id })
    #expect(filedFirst.actor == "alice" && filedFirst.details.contains(#""reason":"[erased]""#), "\(filedFirst.details)")
    #expect(!lines.contains { $0.details.contains("777777") || $0.details.contains("bob.smith") || ($0.actor ?? "").contains("bob.smith") })
    for e in try await lethe.meta.auditEntries() {
        #expect(!e.details.contains("alice") && e.actor != "alice", "the append-only log holds a name: \(e.details)")
    }
}

// D2: four eyes hold after erasure purged the requester's name (the requester was an erased subject): the request
// keeps the keyed digest of the name, and the same person still cannot approve it.
@Test func fourEyesHoldAfterTheRequestersNameWasPurged() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("dave.jones@corp.example", 1) + event("u-3", 3) + event("u-4", 4))
    let lethe = try lake.open()
    _ = try await lethe.index()
    let pending = try await lethe.forget([SubjectID("u-3")], reason: "ticket 9", by: "dave.jones@corp.example")[0]
    let dave = try await lethe.forget([SubjectID("dave.jones@corp.example")], reason: "ticket 10", by: "alice")[0]
    _ = try await lethe.approve([dave.id], by: "carol")
    _ = try await lethe.run()
    #expect(try await lethe.request(dave.id).status == .verified)
    let purged = try await lethe.request(pending.id)
    #expect(purged.requestedBy == "[erased]" && purged.requesterDigest != nil)
    do {
        _ = try await lethe.approve([pending.id], by: "dave.jones@corp.example")
        Issue.record("the requester approved their own request once their name was purged")
    } catch let e as LetheError {
        #expect(e.code == .forbidden || e.code == .badInput, "\(e)")
    }
    let all = try await lethe.approveAll(by: "dave.jones@corp.example")
    #expect(all.approved.isEmpty && all.skipped.map(\.id) == [pending.id])
    _ = try await lethe.approve([pending.id], by: "carol")
    #expect(try await lethe.request(pending.id).status == .approved)
}

// h6: a person filing their own request (`forget jane@x --by jane@x`, the self-service case) put the raw id into
// the append-only audit log as the actor: the request could never be verified. Refused like a reason holding it,
// before anything is stored; so are an approver or a rejecter named by the request's own subject id.
@Test func aRequesterOrApproverNamedByTheSubjectsIdIsRefusedBeforeAnythingIsStored() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    try lake.put("raw/a.jsonl", event("jane.doe@x.example", 1) + event("u-2", 2))
    let lethe = try lake.open()
    _ = try await lethe.index()
    do {
        _ = try await lethe.forget([SubjectID("jane.doe@x.example")], reason: "ticket 1", by: "Jane.Doe@x.example")
        Issue.record("accepted a requester named by the subject's id")
    } catch let e as LetheError {
        #expect(e.code == .badInput && e.message.contains("--by"), "\(e)")
        #expect(!e.description.lowercased().contains("jane.doe@x.example"), "\(e)")
    }
    #expect(try await lethe.meta.requests(status: nil).isEmpty)
    #expect(try await lethe.meta.auditEntries().isEmpty)
    let r = try await lethe.forget([SubjectID("jane.doe@x.example")], reason: "ticket 1", by: "alice")[0]
    for act in ["approve", "reject"] {
        do {
            if act == "approve" {
                _ = try await lethe.approve([r.id], by: "jane.doe@x.example")
            } else {
                _ = try await lethe.reject(r.id, by: "jane.doe@x.example", reason: "no")
            }
            Issue.record("\(act) by the subject's id was accepted")
        } catch let e as LetheError {
            #expect(e.code == .badInput && e.message.contains("--by"), "\(e)")
        }
    }
    #expect(try await lethe.request(r.id).status == .planned)
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try await lethe.run()
    #expect(try await lethe.request(r.id).status == .verified)
}

// h6 D10: the raw-id searches (the state scan, the Delta log scan, object keys) and the purge matched bytes
// anywhere, so a numeric id of 6+ digits matched inside Lethe's own timestamps and sizes, and a hex-like id inside
// keyed hashes: its request failed at every run ("raw id in state files: lethe.sqlite") and could never be
// verified, and the purge wrote `[erased]` into other requests' plans (`"planned_at":1[erased]4080592`). An id
// that begins or ends with a letter or digit now matches only where the bytes beside it are not letters or digits.
@Test func rawIdSearchesMatchWholeTokensNotDigitsInsideLongerNumbers() {
    let id = [Array("179600".utf8)]
    #expect(Lethe.search(Array(#"{"at":1796004080592,"size":41796001}"#.utf8), for: id).isEmpty)
    #expect(Lethe.search(Array(#"{"reason":"customer 179600 asked"}"#.utf8), for: id) == Set(id))
    #expect(Lethe.search(Array("raw/user_id=179600/a.jsonl".utf8), for: id) == Set(id))
    #expect(Lethe.search(Array(#"{"cid":179600}"#.utf8), for: id) == Set(id))
    #expect(Lethe.search(Array("key b7fdb903cbf65ee9".utf8), for: [Array("903cbf".utf8)]).isEmpty)
    #expect(!Lethe.key("exports/part-00000-1796004080592.jsonl", names: SubjectID("179600")))
    #expect(Lethe.key("exports/179600.jsonl", names: SubjectID("179600")))
}

@Test func aNumericIdFoundInsideTimestampsIsVerifiedAndThePurgeLeavesOtherPlansIntact() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    let lethe = try lake.open()
    // An id made of the digits every timestamp of this era starts with.
    let numeric = String(String(lethe.now()).prefix(7))
    try lake.put("raw/a.jsonl", #"{"user":{"id":\#(numeric)},"n":1}"# + "\n" + event("u-2", 2) + event("u-3", 3))
    _ = try await lethe.index()
    let other = try await approved(lethe, "u-3")
    _ = try await lethe.run()
    let plan = try await lethe.request(other.id).plan
    let r = try await approved(lethe, numeric)
    _ = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(done.failure ?? "")")
    #expect(try lake.text("raw/a.jsonl") == event("u-2", 2))
    #expect(try await lethe.request(other.id).plan == plan, "the purge of \(numeric) rewrote another request's plan")
}

// MARK: A graceful stop between steps (`lethe serve` on SIGTERM)

/// `Lethe.runStop` answering true once a step is done: the run returns `stopped` after that
/// step (journaled done), the job's other steps stay pending and its requests `running`; a stop asked
/// before anything was claimed leaves the requests approved; the next run resumes the job and every
/// request ends verified, every other record kept.
@Test func aRunAskedToStopEndsAfterTheStepUnderWayAndTheNextRunResumesItsJob() async throws {
    let lake = try DiskLake()
    defer { lake.remove() }
    var kept = 0
    for o in 0..<5 {
        var text = ""
        for n in 0..<20 {
            let u = n % 4 == 0 ? "u-gone-\(n % 8 / 4)" : "u-\(o)-\(n)"
            if !u.hasPrefix("u-gone") { kept += 1 }
            text += event(u, n)
        }
        try lake.put("raw/p\(o).jsonl", text)
    }
    let lethe = try lake.open()
    _ = try await lethe.index()
    let rs = [try await approved(lethe, "u-gone-0"), try await approved(lethe, "u-gone-1")]
    // Asked to stop before the run planned anything: nothing claimed.
    let early = try await Lethe.$runStop.withValue(RunStop { true }) { try await lethe.run() }
    #expect(early.stopped && early.jobs.isEmpty)
    for r in rs { #expect(try await lethe.request(r.id).status == .approved) }
    // Asked to stop once an object is erased (the shutdown begins during the first step).
    let erased = Atomic<Bool>(false)
    let stopped = try await Lethe.$runStop.withValue(RunStop { erased.load(ordering: .relaxed) }) {
        try await lethe.run(events: { e in
            if case .objectErased = e { erased.store(true, ordering: .relaxed) }
        })
    }
    #expect(stopped.stopped && stopped.jobs.count == 1)
    let job = try #require(stopped.jobs.first)
    let journal = try await lethe.meta.steps(job: job)
    #expect(journal.contains { $0.state == .done } && journal.contains { $0.state == .pending })
    #expect(!journal.contains { $0.state == .failed })
    for r in rs { #expect(try await lethe.request(r.id).status == .running) }
    // The next run resumes the job.
    let resumed = try await lethe.run()
    #expect(!resumed.stopped && resumed.jobs.first == job && resumed.failed.isEmpty)
    #expect(try await lethe.meta.steps(job: job).allSatisfy { $0.state == .done })
    for r in rs { #expect(try await lethe.request(r.id).status == .verified) }
    var left = 0
    for o in 0..<5 {
        let text = try lake.text("raw/p\(o).jsonl")
        #expect(!text.contains("u-gone"))
        left += text.split(separator: "\n").count
    }
    #expect(left == kept)
}
