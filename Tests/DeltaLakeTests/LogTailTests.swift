import Testing
import Synchronization
@testable import DeltaLake
import LetheCore
import LetheStorage

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
