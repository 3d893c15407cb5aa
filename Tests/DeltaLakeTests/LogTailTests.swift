import Foundation
import Testing
import Synchronization
@testable import DeltaLake
import LetheCore
import LetheStorage
import LetheTestSupport

/// Forwards to a store and counts the objects its listings yield.
final class ListingCounter: ObjectStore {
    let base: any ObjectStore
    private let count = Mutex(0)
    init(_ base: any ObjectStore) { self.base = base }
    var listed: Int { count.withLock { $0 } }
    func reset() { count.withLock { $0 = 0 } }

    var location: String { base.location }
    func list(prefix: String, startAfter: String?) -> ObjectListing {
        ObjectListing(startAfter: startAfter) { [self] after in
            // The first page of the base listing after `after`.
            var it = base.list(prefix: prefix, startAfter: after).makeAsyncIterator()
            let page = try await it.next() ?? []
            count.withLock { $0 += page.count }
            return (page, !page.isEmpty)
        }
    }
    func listKeys(prefix: String) async throws -> [String] {
        let keys = try await base.listKeys(prefix: prefix)
        count.withLock { $0 += keys.count }
        return keys
    }
    func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        try await base.read(key, range: range, ifVersion: ifVersion)
    }
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        try await base.openWrite(key, precondition: precondition)
    }
    func delete(_ keys: [String]) async throws { try await base.delete(keys) }
}

@Test func theNextCommitListsOnlyTheLogAfterTheLastCheckpoint() async throws {
    let base = InMemoryObjectStore(pageSize: 4)
    let log = "t/_delta_log/"
    for v in Int64(0)...40 { base.set(log + DeltaTable.commitName(v), Array("{\"commitInfo\":{}}\n".utf8)) }
    base.set(log + "00000000000000000030.checkpoint.parquet", [1])  // only listed, never read here
    base.set(log + "_last_checkpoint", Array("{\"version\":30,\"size\":1}".utf8))
    let store = ListingCounter(base)
    let table = DeltaTable(store: store, root: "t")

    #expect(try await table.latestVersion() == 40)
    #expect(store.listed <= 13)  // the checkpoint, commits 30...40, _last_checkpoint
    store.reset()
    #expect(try await table.commitNext(["operation": .string("X")], now: 1, inCommitTimestamps: false) == 41)
    #expect(store.listed <= 14)
    #expect(try await table.versions() == Array(0...41))

    // `_last_checkpoint` is a hint: past the log, unreadable or absent, the whole log is listed.
    for pointer in ["{\"version\":99}", "not json", nil] {
        if let pointer { base.set(log + "_last_checkpoint", Array(pointer.utf8)) } else { try await base.delete(log + "_last_checkpoint") }
        store.reset()
        #expect(try await table.latestVersion() == 41)
        #expect(store.listed >= 42)
    }
    // A gap among the commits listed is still an error.
    try await base.delete(log + DeltaTable.commitName(35))
    base.set(log + "_last_checkpoint", Array("{\"version\":30}".utf8))
    await #expect(throws: LetheError.self) { try await table.latestVersion() }
}

/// The parts of a snapshot a reader acts on, to compare two replays.
private func same(_ a: Snapshot, _ b: Snapshot) -> Bool {
    a.version == b.version && a.tableProtocol == b.tableProtocol && a.metadata == b.metadata && a.files == b.files
        && a.removed == b.removed && a.tombstones == b.tombstones && a.cdcFiles == b.cdcFiles && a.domainMetadata == b.domainMetadata
        && a.checkpoint == b.checkpoint && a.namedIn == b.namedIn && a.commitInfos.keys.sorted() == b.commitInfos.keys.sorted()
}

/// Every table of the delta-rs corpus with a `_last_checkpoint`: the snapshot replayed from a
/// listing of the log's tail equals the one from the whole log's listing (or both fail alike),
/// and lists fewer files where the checkpoint is not the first version.
@Test func theSnapshotFromTheLogTailEqualsTheFullReplayOnTheDeltaRsCorpus() async throws {
    let corpus = try #require(Corpora.deltaRs, "delta-rs's test tables: run scripts/corpus-delta --fetch-only")
    let fm = FileManager.default
    let tables = try fm.contentsOfDirectory(atPath: corpus).filter { fm.fileExists(atPath: "\(corpus)/\($0)/_delta_log/_last_checkpoint") }.sorted()
    #expect(tables.count >= 10, "\(tables)")
    var fewer = 0
    for name in tables {
        let store = ListingCounter(LocalObjectStore(root: corpus))
        let table = DeltaTable(store: store, root: name)
        let everything = try await store.listKeys(prefix: name + "/_delta_log").count
        store.reset()
        let tail: Result<Snapshot, any Error>
        do { tail = .success(try await table.snapshot()) } catch { tail = .failure(error) }
        let tailListed = store.listed
        let full: Result<Snapshot, any Error>
        do { full = .success(try await table.snapshot(version: nil, tail: false)) } catch { full = .failure(error) }
        switch (tail, full) {
        case (.success(let t), .success(let f)):
            #expect(same(t, f), "\(name)")
            #expect(t.checkpoint != nil, "\(name)")
        case (.failure(let t), .failure(let f)):
            #expect("\(t)" == "\(f)", "\(name)")
        default:
            Issue.record("\(name): the tail replay gave \(tail), the full one \(full)")
        }
        if tailListed < everything { fewer += 1 }
    }
    #expect(fewer >= tables.count / 2, "the tail listing listed fewer files for \(fewer) of \(tables.count) tables")
}

/// A stale `_last_checkpoint` (naming a version with no checkpoint, past the log, or before a
/// newer checkpoint) falls back to the whole log's listing, or still finds the newest checkpoint.
@Test func aStaleLastCheckpointFallsBackToTheFullListing() async throws {
    let corpus = try Corpora.deltaRsTable("table_with_deletion_logs")
    let base = InMemoryObjectStore(pageSize: 3)
    let fm = FileManager.default
    for rel in fm.enumerator(atPath: corpus)!.compactMap({ $0 as? String }) {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: corpus + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
        base.set("t/" + rel, [UInt8](try Data(contentsOf: URL(fileURLWithPath: corpus + "/" + rel))))
    }
    let store = ListingCounter(base)
    let table = DeltaTable(store: store, root: "t")
    let full = try await table.snapshot(version: nil, tail: false)
    let everything = store.listed
    let newest = try #require(full.checkpoint?.version)
    store.reset()
    #expect(same(try await table.snapshot(), full))
    #expect(store.listed < everything)
    // No checkpoint at the version named, or past the log: the whole log.
    for pointer in ["{\"version\":\(newest - 1)}", "{\"version\":99999}", "not json"] {
        base.set("t/_delta_log/_last_checkpoint", Array(pointer.utf8))
        store.reset()
        #expect(try await table.listLogTail() == nil, "\(pointer)")
        #expect(same(try await table.snapshot(), full), "\(pointer)")
        #expect(store.listed >= everything, "\(pointer)")
    }
    // An older checkpoint named: the tail still holds the newest one.
    let older = try await table.listLog().checkpoints.map(\.version).filter { $0 < newest }.max()
    if let older {
        base.set("t/_delta_log/_last_checkpoint", Array("{\"version\":\(older)}".utf8))
        #expect(same(try await table.snapshot(), full))
    }
    // Absent: the whole log.
    try await base.delete("t/_delta_log/_last_checkpoint")
    store.reset()
    #expect(same(try await table.snapshot(), full))
    #expect(store.listed >= everything - 1)
}
