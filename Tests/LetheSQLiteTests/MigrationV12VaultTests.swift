import Foundation
import GRDB
import LetheCatalog
import LetheCore
import Testing

@testable import LetheSQLite

/// `v12-vault-compact` on a state written by the first cut of crypto-shredding (`v11-vault`): the
/// KEK's name moves to `vault_keks`, rows keep their key id, wrapping (60-byte GCM) and date, and a
/// key of the first cut still unwraps under the file KEK.
@Suite struct MigrationV12VaultTests {
    @Test func migrationV12KeepsTheKeysOfTheFirstCut() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let kek = FileKeyEncryptionKey(key: [UInt8](repeating: 3, count: 32), path: folder + "/vault.key")
        let a = testKey(1), b = testKey(2)
        let ctxA = WrapContext(subject: a, keyID: [1, 1, 1, 1, 1, 1, 1, 1])
        let plainA = [UInt8](repeating: 0xAA, count: 32)
        let wrappedA = try kek.wrapLegacyGCM(plainA, ctxA)
        do {
            let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
            try SQLiteStateStore.migrator.migrate(pool, upTo: "v11-vault")
            try await pool.write { db in
                let rows: [(SubjectKey, [UInt8], String, [UInt8], Int64)] = [
                    (a, ctxA.keyID, kek.name, wrappedA, 11), (b, [2, 2, 2, 2, 2, 2, 2, 2], "kms:alias/old", [UInt8](repeating: 0xB2, count: 184), 12),
                ]
                for r in rows {
                    try db.execute(
                        sql: "INSERT INTO vault_keys(subject_key, key_id, kek, wrapped, created_at) VALUES (?, ?, ?, ?, ?)",
                        arguments: [Data(r.0.bytes), Data(r.1), r.2, Data(r.3), r.4])
                }
            }
        }
        let store = try SQLiteStateStore(folder: folder)
        let keys = try await store.vault.wrappedKeys(subjects: [a, b, testKey(3)])
        #expect(keys.count == 2)
        let ka = try #require(keys[a])
        #expect(ka == WrappedDataKey(subject: a, keyID: ctxA.keyID, kek: kek.name, wrapped: wrappedA, createdAt: 11))
        #expect(try await kek.unwrap(ka.wrapped, ctxA) == plainA)
        #expect(keys[b]?.kek == "kms:alias/old" && keys[b]?.wrapped.count == 184 && keys[b]?.createdAt == 12)
        // New keys go next to them, under a known KEK name (no second row for it) or a new one.
        let c = testKey(3)
        let (plainC, wrappedC) = try await kek.generateDataKey(WrapContext(subject: c, keyID: [3, 3, 3, 3, 3, 3, 3, 3]))
        _ = try await store.transaction("insert") { tx in
            try tx.vault.insertKeys([WrappedDataKey(subject: c, keyID: [3, 3, 3, 3, 3, 3, 3, 3], kek: kek.name, wrapped: wrappedC, createdAt: 13)])
        }
        let kc = try #require(try await store.vault.wrappedKeys(subjects: [c])[c])
        #expect(kc.wrapped.count == 40 && kc.kek == kek.name)
        #expect(try await kek.unwrap(kc.wrapped, WrapContext(subject: c, keyID: kc.keyID)) == plainC)
        let names = try await store.read("keks") { db in try String.fetchAll(db, sql: "SELECT name FROM vault_keks ORDER BY id") }
        #expect(names == [kek.name, "kms:alias/old"].sorted())
        // v13 moved these rows (wrappings bound to the whole subject key) to `vault_keys_exact`.
        let columns = try await store.read("columns") { db in try db.columns(in: "vault_keys_exact").map(\.name) }
        #expect(columns == ["subject_key", "key_id", "kek_id", "wrapped", "created_at"])
        #expect(keys.values.allSatisfy { $0.exact })
    }

    /// `v13-vault-prefix` on a state at v12: rows with the file KEK's 32-byte wrapping move to the
    /// compact table by their 12-byte prefix (two sharing one: the first keeps it, the other an exact
    /// row), every other row to `vault_keys_exact` as it was; all read back, the compact table holds
    /// prefixes only.
    @Test func migrationV13ConvertsRowsToCompactAndExact() async throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let kek = FileKeyEncryptionKey(key: [UInt8](repeating: 4, count: 32), path: folder + "/vault.key")
        var p = [UInt8](repeating: 0x33, count: 32)
        let d = SubjectKey(bytes: p)
        p[30] = 0x34
        let e = SubjectKey(bytes: p)  // d's 12-byte prefix
        let f = testKey(5), g = testKey(6)
        let nd = try await kek.newDataKey(subject: d), ne = try await kek.newDataKey(subject: e)
        let ctxF = WrapContext(subject: f, keyID: [6, 6, 6, 6, 6, 6, 6, 6])
        let (plainF, wrappedF) = try await kek.generateDataKey(ctxF)
        do {
            let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
            try SQLiteStateStore.migrator.migrate(pool, upTo: "v12-vault-compact")
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO vault_keks(id, name) VALUES (1, ?), (2, 'kms:alias/k')", arguments: [kek.name])
                let rows: [(SubjectKey, [UInt8], Int64, [UInt8])] = [
                    (d, nd.keyID, 1, nd.wrapped), (e, ne.keyID, 1, ne.wrapped), (f, ctxF.keyID, 1, wrappedF),
                    (g, [7, 7, 7, 7, 7, 7, 7, 7], 2, [UInt8](repeating: 0xC1, count: 170)),
                ]
                for r in rows {
                    try db.execute(
                        sql: "INSERT INTO vault_keys(subject_key, key_id, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, 9)",
                        arguments: [Data(r.0.bytes), Data(r.1), r.2, Data(r.3)])
                }
            }
        }
        let store = try SQLiteStateStore(folder: folder)
        let keys = try await store.vault.wrappedKeys(subjects: [d, e, f, g])
        #expect(keys.count == 4)
        #expect(keys[d]?.exact == false && keys[d]?.keyID == nd.keyID && keys[d]?.wrapped == nd.wrapped)
        #expect(keys[e]?.exact == true && keys[e]?.keyID == ne.keyID)
        #expect(keys[f]?.exact == true && keys[f]?.wrapped.count == 40 && keys[g]?.exact == true && keys[g]?.kek == "kms:alias/k")
        #expect(try await kek.unwrap(try #require(keys[d]).wrapped, WrapContext(subject: d, keyID: nd.keyID)) == nd.plain)
        #expect(try await kek.unwrap(try #require(keys[e]).wrapped, WrapContext(subject: e, keyID: ne.keyID)) == ne.plain)
        #expect(try await kek.unwrap(try #require(keys[f]).wrapped, ctxF) == plainF)
        #expect(try await store.vaultKeyCount() == 4)
        let compact = try await store.read("compact") { db in try Data.fetchAll(db, sql: "SELECT subject_prefix FROM vault_keys") }
        #expect(compact == [Data(d.bytes.prefix(12))])
        let columns = try await store.read("columns") { db in try db.columns(in: "vault_keys").map(\.name) }
        #expect(columns == ["subject_prefix", "key_id", "kek_id", "wrapped"])
    }
}
