import Foundation
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// The caches of `readNow`'s connections (`HotCache`: API tokens, the segment list, the segments'
/// objects) are emptied when another connection commits — here a second store on the same state
/// folder, as another process (`lethe token revoke`, `lethe index`) would be: what the next read
/// answers is what the database holds after the commit, never what the cache held before it.
@Suite struct HotCacheTests {
    func object(_ key: String, version: String = "v1", dataset: String = "d") -> IndexedObject {
        IndexedObject(dataset: dataset, key: key, size: 100, modifiedNanos: 1, version: version, records: 10, status: .indexed, indexedAt: 1)
    }

    /// The caches of the idle `readNow` connections of `store`.
    func caches(_ store: SQLiteStateStore) -> [HotCacheSummary] { store.hotReaders.idleCaches() }

    @Test func aTokenRevokedByAnotherConnectionIsRefusedByTheNextRead() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let server = try SQLiteStateStore(folder: folder)
        let cli = try SQLiteStateStore(folder: folder)  // another connection, as `lethe token revoke` is
        let hash = [UInt8](repeating: 7, count: 32)
        _ = try await cli.transaction("create") { tx in try tx.tokens.insertToken(name: "bob", role: .approver, hash: hash, at: 10) }

        let first = try await server.tokens.token(hash: hash)
        #expect(first?.token.isLive == true && first?.token.role == .approver)
        // Kept by the connection that read it (one reader: the reads run one at a time here).
        #expect(caches(server).contains { $0.tokenHashes.contains(hash) })
        #expect(try await server.tokens.token(hash: hash)?.token.isLive == true)

        _ = try await cli.transaction("revoke") { tx in try tx.tokens.revokeToken(name: "bob", at: 20) }
        let after = try await server.tokens.token(hash: hash)
        #expect(after?.token.isLive == false && after?.token.revokedAt == 20)
        #expect(caches(server).contains { $0.invalidations > 0 })

        // A token created after a miss is found (misses are not cached).
        let other = [UInt8](repeating: 9, count: 32)
        #expect(try await server.tokens.token(hash: other) == nil)
        _ = try await cli.transaction("create") { tx in try tx.tokens.insertToken(name: "eve", role: .requester, hash: other, at: 30) }
        #expect(try await server.tokens.token(hash: other)?.token.name == "eve")
    }

    @Test func aWriteOfTheSameStoreEmptiesItsReadersCaches() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let s = try SQLiteStateStore(folder: folder)
        let hash = [UInt8](repeating: 3, count: 32)
        _ = try await s.transaction("create") { tx in try tx.tokens.insertToken(name: "ann", role: .admin, hash: hash, at: 10) }
        #expect(try await s.tokens.token(hash: hash)?.token.isLive == true)
        _ = try await s.transaction("revoke") { tx in try tx.tokens.revokeToken(name: "ann", at: 11) }
        #expect(try await s.tokens.token(hash: hash)?.token.isLive == false)
    }

    @Test func segmentsAndTheirObjectsChangedByAnotherConnectionAreSeenByTheNextLocate() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let writer = try SQLiteStateStore(folder: folder, segmentMinimum: 1)  // every batch a segment
        let reader = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
        let k: Int64 = 0x1234_5678
        func located() async throws -> [String] {
            try await reader.locate(prefix: k, dataset: nil).map { "\($0.object.key)@\($0.object.version):\($0.rows)" }
        }
        _ = try await writer.putIndexedObjects([(object("a"), [k: [1, 2]])])
        #expect(try await located() == ["a@v1:[1, 2]"])
        #expect(caches(reader).contains { $0.segments?.count == 1 && $0.objects == 1 })

        // A second segment (a new object): the segment list is read again.
        _ = try await writer.putIndexedObjects([(object("b"), [k: [5]])])
        #expect(try await located() == ["a@v1:[1, 2]", "b@v1:[5]"])

        // An object indexed again (new version, new id, new segment) and one removed: the objects are read again.
        _ = try await writer.putIndexedObjects([(object("a", version: "v2"), [k: [3]])])
        try await writer.transaction("remove") { tx in try tx.removeObjects(dataset: "d", keys: ["b"]) }
        #expect(try await located() == ["a@v2:[3]"])
        #expect(try await reader.locate(prefix: k, dataset: "other").isEmpty)

        // The same answers as a store without caches (a fresh one) gives.
        let fresh = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
        #expect(try await fresh.locate(prefixes: [k], dataset: nil)[k]?.map { "\($0.object.key)@\($0.object.version):\($0.rows)" } == ["a@v2:[3]"])
    }

    @Test func readersAreCheckedOutOneCallerAtATime() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        let s = try SQLiteStateStore(folder: folder)
        let hash = [UInt8](repeating: 1, count: 32)
        _ = try await s.transaction("create") { tx in try tx.tokens.insertToken(name: "c", role: .requester, hash: hash, at: 1) }
        // Many concurrent readers: each read has a connection of its own, every answer right.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<64 { group.addTask { try await s.tokens.token(hash: hash)?.token.name == "c" } }
            for try await ok in group { #expect(ok) }
        }
        #expect(!caches(s).isEmpty)
    }
}
