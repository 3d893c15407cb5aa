import Foundation
import Testing
import LetheCore
@testable import LetheStream

@Suite struct DeletionSnapshotTests {
    func path() -> String { NSTemporaryDirectory() + "lethe-snapshot-\(UUID().uuidString)" }

    @Test(arguments: [1000, 400_000])
    func roundTrip(_ n: Int) throws {
        var rng = SplitMix(seed: UInt64(n))
        let tags = (0..<n).map { _ in rng.next() } + [0]
        let set = DeletionSet(tags: tags)
        let p = path()
        defer { unlink(p) }
        #expect(DeletionSnapshot.save(set, cursor: 1234, key: testStreamKey, to: p))
        let back = try #require(DeletionSnapshot.load(path: p, key: testStreamKey))
        #expect(back.cursor == 1234 && back.set.count == set.count)
        #expect(tags.allSatisfy(back.set.contains))
        #expect(!(0..<1000).map { _ in rng.next() }.contains(where: back.set.contains))
        let attributes = try FileManager.default.attributesOfItem(atPath: p)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func anotherKeyOrADamagedFileIsIgnored() throws {
        let set = DeletionSet(tags: [1, 2, 3, 42])
        let p = path()
        defer { unlink(p) }
        #expect(DeletionSnapshot.save(set, cursor: 7, key: testStreamKey, to: p))
        #expect(DeletionSnapshot.load(path: p, key: SipHash24(k0: 1, k1: 2)) == nil)
        var bytes = try #require(FileManager.default.contents(atPath: p))
        // Truncated.
        try bytes.prefix(bytes.count - 8).write(to: URL(fileURLWithPath: p))
        #expect(DeletionSnapshot.load(path: p, key: testStreamKey) == nil)
        // A slot cleared: the count no longer matches.
        bytes.withUnsafeMutableBytes { b in
            for i in 48..<b.count where b.load(fromByteOffset: i & ~7, as: UInt64.self) != 0 && i % 8 == 0 {
                b.storeBytes(of: 0, toByteOffset: i, as: UInt64.self)
                break
            }
        }
        try bytes.write(to: URL(fileURLWithPath: p))
        #expect(DeletionSnapshot.load(path: p, key: testStreamKey) == nil)
        #expect(DeletionSnapshot.load(path: p + "-missing", key: testStreamKey) == nil)
    }

    @Test func installedSnapshotCatchesUpByRefresh() async throws {
        let p = path()
        defer { unlink(p) }
        #expect(DeletionSnapshot.save(DeletionSet(tags: [tag("a"), tag("b")]), cursor: 1000, key: testStreamKey, to: p))
        let snap = try #require(DeletionSnapshot.load(path: p, key: testStreamKey))
        let shared = SharedDeletionSet()
        shared.install(snap.set, cursor: snap.cursor)
        // Since the snapshot: c approved, b rejected.
        let source: @Sendable (Int64) async throws -> DeletionChanges = { since in
            #expect(since == 1000 - 5000)
            return DeletionChanges(added: [tag("c")], removed: [tag("b")], latest: 2000)
        }
        #expect(try await shared.refresh(from: source))
        #expect(shared.currentCursor == 2000)
        let f = StreamFilter(fields: [FieldPath("u")], streamKey: testStreamKey, set: shared)
        let input = Array("{\"u\":\"a\"}\n{\"u\":\"b\"}\n{\"u\":\"c\"}\n{\"u\":\"d\"}\n".utf8)
        #expect(try f.filter(input) == Array("{\"u\":\"b\"}\n{\"u\":\"d\"}\n".utf8))
    }
}
