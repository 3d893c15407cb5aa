import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
import Synchronization

// An erasure's commit file is written once its replacements are and made durable in their pass
// (issue 12, session 29); it enters the log only after that pass returned, i.e. once every
// replacement's bytes and name are durable. The replacements themselves are linked into place before
// their bytes are durable (new keys nothing names, journaled: `ObjectStore.commitNew`). These tests
// check, from what the store sees, that the commit file is never published in the pass nor before it.

/// What an erasure's publication did to the store, in order.
enum CommitOrderEvent: Equatable {
    /// A `commitNew` pass began: the writes it publishes and the ones it only makes durable.
    case pass(published: [String], durable: [String])
    case passDone
    case makeDurable([String])
    /// A batch commit (`commit(_:)`) of these keys began, and returned.
    case commit([String])
    case committed([String])
    /// A writer's own `commit()` (a put).
    case put(String)
}

/// A local store recording the durability passes and publications of its writers.
final class CommitOrderStore: ForwardingLocalStore {
    let base: LocalObjectStore
    let log = Mutex<[CommitOrderEvent]>([])

    init(_ base: LocalObjectStore) { self.base = base }

    func record(_ e: CommitOrderEvent) { log.withLock { $0.append(e) } }
    var events: [CommitOrderEvent] { log.withLock { $0 } }

    func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        CommitOrderWriter(try await base.openWrite(key, precondition: precondition, durability: durability), key: key, store: self)
    }
    func makeDurable(_ writers: [any ObjectWriteStream]) async throws {
        let ws = writers.map { $0 as! CommitOrderWriter }
        record(.makeDurable(ws.map(\.key)))
        try await base.makeDurable(ws.map(\.inner))
    }
    func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let ws = writers.map { $0 as! CommitOrderWriter }
        record(.commit(ws.map(\.key)))
        let out = try await base.commit(ws.map(\.inner))
        record(.committed(ws.map(\.key)))
        return out
    }
    func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let ws = writers.map { $0 as! CommitOrderWriter }, os = others.map { $0 as! CommitOrderWriter }
        record(.pass(published: ws.map(\.key), durable: os.map(\.key)))
        let out = try await base.commitNew(ws.map(\.inner), makingDurable: os.map(\.inner))
        record(.passDone)
        return out
    }
}

final class CommitOrderWriter: ObjectWriteStream {
    let inner: any ObjectWriteStream
    let key: String
    let store: CommitOrderStore

    init(_ inner: any ObjectWriteStream, key: String, store: CommitOrderStore) {
        self.inner = inner; self.key = key; self.store = store
    }
    func write(_ bytes: [UInt8]) async throws { try await inner.write(bytes) }
    func write(_ bytes: UnsafeRawBufferPointer) async throws { try await inner.write(bytes) }
    func commit() async throws -> ObjectInfo {
        store.record(.put(key))
        return try await inner.commit()
    }
    func abort() async { await inner.abort() }
    func copyRange(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws {
        try await inner.copyRange(from: key, version: version, range: range, in: store)
    }
}

/// A table of six files with the change data feed on (`make-files 6 cdf`), through a recording store.
func commitOrderTable() async throws -> (dir: String, store: CommitOrderStore, table: DeltaTable, snap: Snapshot) {
    let dir = tempDir()
    _ = try deltaPy(["make-files", dir, "6", "cdf"])
    let store = CommitOrderStore(LocalObjectStore(root: dir))
    let table = DeltaTable(store: store, root: "files")
    return (dir, store, table, try await table.snapshot())
}

@Test func anErasuresCommitFileIsMadeDurableWithItsReplacementsAndLinkedOnlyAfterThem() async throws {
    let t = try await commitOrderTable(); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let commitKey = "files/_delta_log/" + DeltaTable.commitName(t.snap.version + 1)
    let r = try await t.table.erase(
        files: Array(t.snap.files.keys), selecting: { _, _ in [0] }, operationParameters: [:], now: 1)
    #expect(r.version == t.snap.version + 1 && r.removed.count == 6 && r.added.count == 6 && r.changeData.count == 6)

    let events = t.store.events
    // One pass: the 12 replacement and change data files published, the commit file only made durable.
    let passes = events.compactMap { if case .pass(let p, let d) = $0 { (p, d) } else { nil } }
    #expect(passes.count == 1, "\(events)")
    let (published, durable) = try #require(passes.first)
    #expect(durable == [commitKey], "\(events)")
    #expect(Set(published) == Set((r.added.map(\.path) + r.changeData.map(\.path)).map(t.table.key(forLogPath:))), "\(published)")
    #expect(!published.contains { $0.contains("_delta_log") }, "\(published)")
    // The commit file is linked after the pass returned, by itself, and never put.
    let done = try #require(events.firstIndex(of: .passDone), "\(events)")
    let linked = try #require(events.firstIndex(of: .commit([commitKey])), "\(events)")
    #expect(done < linked, "the commit file was published before its replacements were durable: \(events)")
    #expect(!events.contains(.put(commitKey)), "\(events)")

    // delta-rs reads the table without the first row of each file; nothing temporary is left.
    let ids = try JSONDecoder().decode([String].self, from: Data(try deltaPy(["rows", t.dir + "/files"]).utf8))
    #expect(ids.count == 61 - 6 && !ids.contains { $0.hasSuffix("-0") } && ids.contains("target-0003"))
    #expect(try await t.store.base.listKeys(prefix: "files").allSatisfy { !$0.contains(".lethe-tmp-") })
}

@Test func anErasureWhoseVersionAnotherWriterTookDiscardsItsCommitFileAndCommitsAtTheNext() async throws {
    let t = try await commitOrderTable(); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let taken = "files/_delta_log/" + DeltaTable.commitName(t.snap.version + 1)
    let other = Array(#"{"commitInfo":{"operation":"WRITE","engineInfo":"other"}}"#.utf8) + [0x0A]
    let base = t.store.base
    let r = try await t.table.erase(
        files: Array(t.snap.files.keys), selecting: { _, _ in [0] }, operationParameters: [:], now: 1,
        beforeCommit: { _ = try await base.put(taken, other, precondition: .absent) })
    #expect(r.version == t.snap.version + 2)
    #expect(try await base.read(taken) == other)
    for case .commitInfo(let c) in try await t.table.commit(r.version) { #expect(c["operation"]?.string == "DELETE") }
    #expect(t.store.events.contains(.put("files/_delta_log/" + DeltaTable.commitName(t.snap.version + 2))), "\(t.store.events)")
    let ids = try JSONDecoder().decode([String].self, from: Data(try deltaPy(["rows", t.dir + "/files"]).utf8))
    #expect(ids.count == 61 - 6 && !ids.contains { $0.hasSuffix("-0") })
    #expect(try await base.listKeys(prefix: "files").allSatisfy { !$0.contains(".lethe-tmp-") })
}
