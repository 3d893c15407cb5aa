import Foundation
import LetheCatalog
import LetheCore
import LetheTestSupport
import Testing

@testable import LethePostgres

/// Migration 7 (`v7-vault-compact`) on a schema at migration 6 (the first cut's `vault_keys`, the KEK
/// by name on every row): rows keep their key id, wrapping and date, the name moves to `vault_keks`,
/// and a key of the first cut still unwraps under the file KEK.
@Suite("PostgreSQL vault migration")
struct VaultMigrationTests {
    @Test func migration7KeepsTheKeysOfTheFirstCut() async throws {
        let server = try PostgresServer.get()
        let (first, schema) = try freshStore("vault-mig")
        first.close()
        let kek = FileKeyEncryptionKey(key: [UInt8](repeating: 5, count: 32), path: "vault.key")
        var a = [UInt8](repeating: 0, count: 32)
        a[0] = 1
        let subject = SubjectKey(bytes: a)
        let ctx = WrapContext(subject: subject, keyID: [7, 7, 7, 7, 7, 7, 7, 7])
        let plain = [UInt8](repeating: 0x5A, count: 32)
        let legacy = try kek.wrapLegacyGCM(plain, ctx)
        func hex(_ b: [UInt8]) -> String { "'\\x" + b.map { String(format: "%02x", $0) }.joined() + "'" }
        // Back to migration 6, as the first cut left it, with one row.
        try server.superuserSQL(
            """
            SET search_path = \(schema);
            DROP TABLE vault_keys; DROP TABLE vault_keys_exact; DROP TABLE vault_keks; DELETE FROM lethe_migrations WHERE version >= 7;
            \(PostgresStateStore.vaultMigration);
            ALTER TABLE vault_keys OWNER TO \(server.user);
            INSERT INTO vault_keys(subject_key, key_id, kek, wrapped, created_at)
                VALUES (\(hex(a)), \(hex(ctx.keyID)), '\(kek.name)', \(hex(legacy)), 21);
            """)
        let store = try PostgresStateStore(url: server.url(schema: schema))
        defer { store.close() }
        let keys = try await store.vault.wrappedKeys(subjects: [subject])
        let k = try #require(keys[subject])
        #expect(k == WrappedDataKey(subject: subject, keyID: ctx.keyID, kek: kek.name, wrapped: legacy, createdAt: 21))
        #expect(try await kek.unwrap(k.wrapped, ctx) == plain)
        #expect(try await store.vault.vaultKeyCount() == 1)
        let gone = try await store.transaction("destroy") { tx in try tx.vault.destroyKeys(subjects: [subject]) }
        #expect(gone == [subject])
    }

    /// Migration 8 (`v8-vault-prefix`) on a schema at migration 7: a file-KEK row of the 32-byte
    /// wrapping moves to the compact table by its 12-byte prefix (a second row sharing the prefix keeps
    /// an exact row), the others to `vault_keys_exact`; all read back and unwrap.
    @Test func migration8ConvertsRowsToCompactAndExact() async throws {
        let server = try PostgresServer.get()
        let (first, schema) = try freshStore("vault-mig8")
        first.close()
        let kek = FileKeyEncryptionKey(key: [UInt8](repeating: 6, count: 32), path: "vault.key")
        var p = [UInt8](repeating: 0x44, count: 32)
        let d = SubjectKey(bytes: p)
        p[29] = 0x45
        let e = SubjectKey(bytes: p)
        p[0] = 0x01
        let f = SubjectKey(bytes: p)
        let nd = try await kek.newDataKey(subject: d), ne = try await kek.newDataKey(subject: e)
        let ctxF = WrapContext(subject: f, keyID: [8, 8, 8, 8, 8, 8, 8, 8])
        let (plainF, wrappedF) = try await kek.generateDataKey(ctxF)
        func hex(_ b: [UInt8]) -> String { "'\\x" + b.map { String(format: "%02x", $0) }.joined() + "'" }
        try server.superuserSQL(
            """
            SET search_path = \(schema);
            DROP TABLE vault_keys; DROP TABLE vault_keys_exact; DROP TABLE vault_keks; DELETE FROM lethe_migrations WHERE version >= 7;
            \(PostgresStateStore.vaultMigration);
            \(PostgresStateStore.vaultCompactMigration);
            ALTER TABLE vault_keys OWNER TO \(server.user);
            ALTER TABLE vault_keks OWNER TO \(server.user);
            INSERT INTO vault_keks(id, name) VALUES (1, '\(kek.name)'), (2, 'kms:alias/k');
            INSERT INTO vault_keys(subject_key, key_id, kek_id, wrapped, created_at) VALUES
                (\(hex(d.bytes)), \(hex(nd.keyID)), 1, \(hex(nd.wrapped)), 3),
                (\(hex(e.bytes)), \(hex(ne.keyID)), 1, \(hex(ne.wrapped)), 3),
                (\(hex(f.bytes)), \(hex(ctxF.keyID)), 1, \(hex(wrappedF)), 3);
            INSERT INTO lethe_migrations(version, name) VALUES (7, 'v7-vault-compact');
            """)
        let store = try PostgresStateStore(url: server.url(schema: schema))
        defer { store.close() }
        let keys = try await store.vault.wrappedKeys(subjects: [d, e, f])
        #expect(keys[d]?.exact == false && keys[d]?.wrapped == nd.wrapped)
        #expect(keys[e]?.exact == true && keys[e]?.keyID == ne.keyID && keys[f]?.exact == true)
        #expect(try await kek.unwrap(try #require(keys[d]).wrapped, WrapContext(subject: d, keyID: nd.keyID)) == nd.plain)
        #expect(try await kek.unwrap(try #require(keys[e]).wrapped, WrapContext(subject: e, keyID: ne.keyID)) == ne.plain)
        #expect(try await kek.unwrap(try #require(keys[f]).wrapped, ctxF) == plainF)
        #expect(try await store.vault.vaultKeyCount() == 3)
        #expect(try await store.vault.vaultKeyCountsByKEK() == [kek.name: 3])
    }
}
