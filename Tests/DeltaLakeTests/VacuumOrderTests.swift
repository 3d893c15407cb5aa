import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
import Synchronization

// A targeted vacuum overlaps its waits (issue 12, session 25): VACUUM START is committed while the
// log is read and the scrubbed copies are made durable, the scrubbed commits, checkpoint files and
// `_last_checkpoint` are published in one batch, and VACUUM END's bytes are made durable while the
// files are deleted. These tests hold START's publication and each delete back, so that a vacuum that
// did not wait for them would be seen publishing or committing first, and check the order the
// store saw.

/// What a vacuum did to the store, in order.
enum VacuumStoreEvent: Equatable {
    /// Writes made durable in one pass (their keys).
    case durable([String])
    case publishing(String)
    case published(String)
    case deleting([String])
    case deleted([String])
}

/// A local store recording when each write is made durable, published (before and after its
/// commit) and each delete starts and ends. The publication of a write whose bytes hold
/// `holdPublishing` (e.g. `VACUUM START`) and every delete are held back for `hold`; `before(key, bytes)`
/// runs before a write is published (a test plays another writer there).
final class VacuumOrderStore: ForwardingLocalStore {
    let base: LocalObjectStore
    let log = Mutex<[VacuumStoreEvent]>([])
    let holdPublishing: String
    let hold: Duration
    let before: @Sendable (String, [UInt8]) async throws -> Void

    init(
        _ base: LocalObjectStore, holdPublishing: String = "VACUUM START", hold: Duration = .milliseconds(300),
        before: @escaping @Sendable (String, [UInt8]) async throws -> Void = { _, _ in }
    ) {
        self.base = base; self.holdPublishing = holdPublishing; self.hold = hold; self.before = before
    }

    func record(_ e: VacuumStoreEvent) { log.withLock { $0.append(e) } }
    var events: [VacuumStoreEvent] { log.withLock { $0 } }

    func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        VacuumOrderWriter(try await base.openWrite(key, precondition: precondition, durability: durability), key: key, store: self)
    }
    func makeDurable(_ writers: [any ObjectWriteStream]) async throws {
        let ws = writers.map { $0 as! VacuumOrderWriter }
        record(.durable(ws.map(\.key)))
        try await base.makeDurable(ws.map(\.inner))
    }
    func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let ws = writers.map { $0 as! VacuumOrderWriter }
        for w in ws { try await publishing(w) }
        let out = try await base.commit(ws.map(\.inner))
        for w in ws { record(.published(w.key)) }
        return out
    }
    func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let ws = writers.map { $0 as! VacuumOrderWriter }, os = others.map { $0 as! VacuumOrderWriter }
        if !os.isEmpty { record(.durable(os.map(\.key))) }
        for w in ws { try await publishing(w) }
        let out = try await base.commitNew(ws.map(\.inner), makingDurable: os.map(\.inner))
        for w in ws { record(.published(w.key)) }
        return out
    }
    func publishing(_ w: VacuumOrderWriter) async throws {
        record(.publishing(w.key))
        try await before(w.key, w.bytes)
        if String(decoding: w.bytes, as: UTF8.self).contains(holdPublishing) { try await Task.sleep(for: hold) }
    }
    func delete(_ keys: [String]) async throws {
        record(.deleting(keys))
        try await Task.sleep(for: hold)
        try await base.delete(keys)
        record(.deleted(keys))
    }
}

final class VacuumOrderWriter: ObjectWriteStream {
    let inner: any ObjectWriteStream
    let key: String
    let store: VacuumOrderStore
    var bytes: [UInt8] = []

    init(_ inner: any ObjectWriteStream, key: String, store: VacuumOrderStore) {
        self.inner = inner; self.key = key; self.store = store
    }
    func write(_ bytes: [UInt8]) async throws {
        self.bytes += bytes
        try await inner.write(bytes)
    }
    func write(_ bytes: UnsafeRawBufferPointer) async throws { try await write(Array(bytes)) }
    func commit() async throws -> ObjectInfo {
        try await store.publishing(self)
        let info = try await inner.commit()
        store.record(.published(key))
        return info
    }
    func abort() async { await inner.abort() }
}

/// A table whose targeted vacuum of one file scrubs a commit, removes an older checkpoint where the
/// file was live, rewrites the newest checkpoint and `_last_checkpoint`, and deletes the file
/// (`make-files 2`, an appended file, a checkpoint, another append, a checkpoint, a delete by delta-rs).
func vacuumTable(_ dir: String) async throws -> (added: String, older: String, newest: String) {
    _ = try deltaPy(["make-files", dir, "2"])
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-target"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    _ = try deltaPy(["make-files-append", dir + "/files", "zz-other"])
    _ = try deltaPy(["checkpoint", dir + "/files"])
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "files")
    let added = try #require(try await table.commit(2).compactMap { a -> String? in if case .add(let f) = a { return f.path } else { return nil } }.first)
    _ = try deltaPy(["delete", dir + "/files", "user_id = 'zz-target'"])
    return (added, "files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 2), "files/_delta_log/" + String(format: "%020d.checkpoint.parquet", 3))
}

/// The operation of the commitInfo a log key's commit holds.
func operation(_ table: DeltaTable, _ version: Int64) async throws -> String? {
    for case .commitInfo(let c) in try await table.commit(version) { return c["operation"]?.string }
    return nil
}

@Test func aTargetedVacuumChangesNothingBeforeVacuumStartAndEndsOnlyOnceItsFilesAreGone() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let (added, older, newest) = try await vacuumTable(dir)
    let base = LocalObjectStore(root: dir)
    let store = VacuumOrderStore(base)
    let table = DeltaTable(store: store, root: "files")
    let latest = try #require(try await table.latestVersion())
    let startKey = "files/_delta_log/" + DeltaTable.commitName(latest + 1)
    let endKey = "files/_delta_log/" + DeltaTable.commitName(latest + 2)
    let subject = SubjectValues(columns: [["user_id"]], values: ["zz-target"])
    let passes = base.counters.durabilityPasses.load(ordering: .relaxed)
    let r = try await table.vacuumTargeted(paths: [added], subject: subject, now: 1)

    // What it did: as a vacuum always has.
    #expect(r.deleted == ["files/" + added])
    #expect(r.scrubbedCommits == [2, 4], "\(r.scrubbedCommits)")  // the commit adding the file, delta-rs's removing it
    #expect(r.removedCheckpoints == [older], "\(r.removedCheckpoints)")
    #expect(r.rewrittenCheckpoints == [newest], "\(r.rewrittenCheckpoints)")
    #expect(try await operation(table, latest + 1) == "VACUUM START")
    #expect(try await operation(table, latest + 2) == "VACUUM END")
    #expect(try await table.latestVersion() == latest + 2)
    #expect(try await table.logResidue(subject, names: try await table.listLog().logFiles).isEmpty)
    let pointer = try JSONValue.parse(try await base.read("files/_delta_log/_last_checkpoint"))
    #expect(pointer["version"]?.int == 3)
    #expect(pointer["sizeInBytes"]?.int == (try await base.head(newest))?.size)
    #expect(try await base.listKeys(prefix: "files").allSatisfy { !$0.contains(".lethe-tmp-") })
    let rows = try deltaPy(["rows", dir + "/files"])
    #expect(!rows.contains("zz-target") && rows.contains("zz-other"), "\(rows)")

    // In what order: nothing published, removed or deleted before START is in the log.
    let events = store.events
    let started = try #require(events.firstIndex(of: .published(startKey)), "\(events)")
    for (i, e) in events.enumerated() where i < started {
        switch e {
        case .publishing(let k): #expect(k == startKey, "\(k) published before VACUUM START")
        case .deleting(let ks): Issue.record("\(ks) deleted before VACUUM START")
        default: break
        }
    }
    // The scrubbed commit, the rewritten checkpoint and `_last_checkpoint`: one durability pass, one batch.
    let logKeys = ["files/_delta_log/" + DeltaTable.commitName(2), "files/_delta_log/" + DeltaTable.commitName(4), newest, "files/_delta_log/_last_checkpoint"]
    #expect(events.contains(.durable(logKeys)), "\(events)")
    let published = events.compactMap { if case .publishing(let k) = $0, k != startKey, k != endKey { k } else { nil } }
    #expect(published == logKeys, "\(published)")
    // VACUUM END enters the log only once the file's delete has returned.
    let gone = try #require(events.firstIndex(of: .deleted(["files/" + added])), "\(events)")
    let ending = try #require(events.firstIndex(of: .publishing(endKey)), "\(events)")
    #expect(gone < ending, "VACUUM END published before the file was deleted: \(events)")
    #expect(events.firstIndex(of: .durable([endKey])) != nil, "\(events)")
    // ... and once the log's scrubbed copies are published (beside the delete since issue 12, session
    // 29; END's bytes made durable in their pass).
    for k in logKeys {
        let p = try #require(events.firstIndex(of: .published(k)), "\(events)")
        #expect(p < ending, "VACUUM END published before \(k): \(events)")
    }
    // The log files' pass and END's (START is a put of its own).
    #expect(base.counters.durabilityPasses.load(ordering: .relaxed) - passes == 2)
}

@Test func vacuumEndTakesTheNextVersionWhenAnotherWriterCommitsFirst() async throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let (added, _, _) = try await vacuumTable(dir)
    let base = LocalObjectStore(root: dir)
    let latest = try #require(try await DeltaTable(store: base, root: "files").latestVersion())
    let endKey = "files/_delta_log/" + DeltaTable.commitName(latest + 2)
    // Another writer commits at the version END was written for, just before END is linked.
    let other = Array(#"{"commitInfo":{"operation":"WRITE","engineInfo":"other"}}"#.utf8) + [0x0A]
    let store = VacuumOrderStore(base, hold: .zero) { key, bytes in
        if key == endKey, String(decoding: bytes, as: UTF8.self).contains("VACUUM END") {
            _ = try await base.put(endKey, other, precondition: .absent)
        }
    }
    let table = DeltaTable(store: store, root: "files")
    let r = try await table.vacuumTargeted(paths: [added], subject: SubjectValues(columns: [["user_id"]], values: ["zz-target"]), now: 1)
    #expect(r.deleted == ["files/" + added])
    #expect(try await operation(table, latest + 1) == "VACUUM START")
    #expect(try await operation(table, latest + 2) == "WRITE")
    #expect(try await operation(table, latest + 3) == "VACUUM END")
    #expect(try await table.latestVersion() == latest + 3)
    #expect(try await base.listKeys(prefix: "files").allSatisfy { !$0.contains(".lethe-tmp-") })
    #expect(try await !table.hasOpenVacuumStart())
}
