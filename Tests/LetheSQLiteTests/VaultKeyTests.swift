import Foundation
import LetheCatalog
import LetheCore
import LetheSQLite
import LetheTesting
import Testing

/// The destroyed key leaves no byte in the state folder's files (`secure_delete` + a WAL checkpoint).
@Suite("SQLite vault keys")
struct VaultKeyTests {
    @Test func aDestroyedKeyLeavesNoByteInTheStateFolder() async throws {
        let folder = NSTemporaryDirectory() + "lethe-vault-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStateStore(folder: folder)
        #expect(try store.pragma("secure_delete") == "1")
        var rng = SystemRandomNumberGenerator()
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        let keys = (1...50).map { i in
            WrappedDataKey(subject: StateStoreContract.subjectKey(UInt8(i)), keyID: random(8), kek: "file:t", wrapped: random(60), createdAt: 1)
        }
        _ = try await store.transaction("insert") { tx in try tx.vault.insertKeys(keys) }
        _ = await store.checkpoint()
        func folderBytes() throws -> [UInt8] {
            var all: [UInt8] = []
            for f in try FileManager.default.contentsOfDirectory(atPath: folder) {
                all += [UInt8](FileManager.default.contents(atPath: folder + "/" + f) ?? Data())
            }
            return all
        }
        func holds(_ needle: [UInt8], _ hay: [UInt8]) -> Bool {
            guard hay.count >= needle.count else { return false }
            for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return true }
            return false
        }
        let victim = keys[17]
        #expect(holds(victim.wrapped, try folderBytes()))
        let gone = try await store.transaction("destroy") { tx in try tx.vault.destroyKeys(subjects: [victim.subject]) }
        #expect(gone == [victim.subject])
        #expect(await store.checkpoint())
        let after = try folderBytes()
        #expect(!holds(victim.wrapped, after))
        #expect(!holds(victim.keyID, after))
        #expect(holds(keys[18].wrapped, after))  // the others stay

        // v13's compact rows (12-byte prefix, 32-byte wrapping): the same, row by row as read.
        let compact = (60...110).map { i in
            WrappedDataKey(
                subject: StateStoreContract.subjectKey(UInt8(i)), keyID: random(8), kek: "file:t", wrapped: random(32), createdAt: 0, exact: false)
        }
        _ = try await store.transaction("insert compact") { tx in try tx.vault.insertKeys(compact) }
        _ = await store.checkpoint()
        let target = compact[23]
        let before = try folderBytes()
        #expect(holds(target.wrapped, before) && holds(target.rowKey, before))
        #expect(try await store.transaction("destroy compact") { tx in try tx.vault.destroyKeys([target]) } == [target.subject])
        #expect(await store.checkpoint())
        let scanned = try folderBytes()
        #expect(!holds(target.wrapped, scanned) && !holds(target.keyID, scanned) && !holds(target.rowKey, scanned))
        #expect(holds(compact[24].wrapped, scanned))
    }
}
