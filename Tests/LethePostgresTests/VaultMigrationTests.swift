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
            DROP TABLE vault_keys; DROP TABLE vault_keks; DELETE FROM lethe_migrations WHERE version = 7;
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
}
