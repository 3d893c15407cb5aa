import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LethePostgres
import LetheRuntime
import LetheStream
import LetheTestSupport
import Testing

/// `lethe vault rotate-kek` with a key file on a PostgreSQL state: a rotation killed midway (some rows
/// under the new KEK in `vault.key.next`, the rest under the old) is finished by running it again;
/// `vault.key` is then the new key, every value protected before still reveals, and no key is left
/// under the old KEK.
@Suite struct VaultRotationTests {
    @Test func aKilledRotationIsFinishedByRunningItAgain() async throws {
        let server = try PostgresServer.get()
        let dir = NSTemporaryDirectory() + "lethe-pg-rotate-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lake/ev", withIntermediateDirectories: true)
        let yaml = """
            lake: lake
            state: "\(server.url(schema: server.freshSchema("vault-rotate")))"
            keys: keys
            datasets:
              - {name: ev, path: ev, format: jsonl, subject: id, pii: [email, ip]}
            """
        let config = try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        func crypter(_ mode: CryptoMode) throws -> RecordCrypter {
            try RecordCrypter(
                dataset: "ev", format: .jsonl, mode: mode, subject: [FieldPath("id")], pii: [FieldPath("email"), FieldPath("ip")],
                hasher: lethe.secrets.hasher, keys: try Runtime.vault(config, state: lethe.meta, create: true))
        }
        let text = (1...20).map { #"{"id":"p-\#($0)","email":"e\#($0)@x","ip":"10.0.0.\#($0)"}"# + "\n" }.joined()
        let protected = try await crypter(.protect).process(Array(text.utf8))
        let path = try #require(config.vaultKeyFile)
        let old = try FileKeyEncryptionKey.load(path: path, create: false)
        #expect(try await lethe.meta.vault.vaultKeyCountsByKEK() == [old.name: 20])
        // Killed midway: vault.key.next exists and 7 rows moved under it.
        let next = FileKeyEncryptionKey(key: try StateSecrets.createKey(path + ".next"), path: path + ".next")
        for r in try await lethe.meta.vault.vaultRows(kek: old.name, after: nil, limit: 7) {
            let w = try await old.rewrap(r, to: next)
            #expect(try await lethe.meta.transaction("part") { tx in try tx.vault.rewrapKey(r, kek: next.name, wrapped: w) })
        }
        // Meanwhile protect and reveal work (they open keys of both).
        #expect(String(decoding: try await crypter(.reveal(marker: nil, nullOnError: false)).process(protected), as: UTF8.self) == text)
        let r = try await Runtime.rotateFileKEK(config, lethe: lethe, batch: 5)
        #expect(r.rewrapped == 13 && r.remaining == 0 && r.to == next.name)
        #expect(!FileManager.default.fileExists(atPath: path + ".next"))
        #expect(try FileKeyEncryptionKey.load(path: path, create: false).name == next.name)
        #expect(try await lethe.meta.vault.vaultKeyCountsByKEK() == [next.name: 20])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // With the new vault.key alone, every value reveals as it was.
        #expect(String(decoding: try await crypter(.reveal(marker: nil, nullOnError: false)).process(protected), as: UTF8.self) == text)
        // The old key opens none of them any more.
        let stale = Vault(kek: old, state: lethe.meta)
        await #expect(throws: LetheError.self) { _ = try await stale.dataKeys(for: [lethe.key(for: SubjectID("p-1"))], create: false) }
        let audit = try await lethe.meta.auditEntries()
        #expect(audit.contains { $0.event == "keys_rewrapped" && $0.details.contains(next.name) })
    }
}
