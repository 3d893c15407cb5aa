import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LetheRuntime
import LetheStream
import LetheTestSupport
import Testing
@testable import LetheS3

/// AWS KMS as crypto-shredding's key-encryption key, against moto's KMS (signatures checked).
@Suite(.serialized, .timeLimit(.minutes(10))) struct KMSTests {
    let subject = SubjectHasher(secret: [UInt8](repeating: 1, count: 32)).key(for: SubjectID("u-1"))
    let other = SubjectHasher(secret: [UInt8](repeating: 1, count: 32)).key(for: SubjectID("u-2"))

    @Test func generateDataKeyThenDecryptBindsTheSubjectAndKeyID() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let creds = AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey)
        let setup = try KMSKeyEncryptionKey(keyID: "none", region: "us-east-1", endpoint: moto.endpoint, credentials: creds)
        let keyID = try await setup.createKey(description: "lethe test KEK")
        let kek = try KMSKeyEncryptionKey(keyID: keyID, region: "us-east-1", endpoint: moto.endpoint, credentials: creds)
        #expect(kek.name == "kms:" + keyID)
        let ctx = WrapContext(subject: subject, keyID: [1, 2, 3, 4, 5, 6, 7, 8])
        let (plain, wrapped) = try await kek.generateDataKey(ctx)
        #expect(plain.count == 32)
        #expect(!wrapped.isEmpty && wrapped != plain)
        #expect(try await kek.unwrap(wrapped, ctx) == plain)
        // Another subject's context (a wrapped key copied to another row) is refused by KMS.
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(wrapped, WrapContext(subject: other, keyID: ctx.keyID)) }
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(wrapped, WrapContext(subject: subject, keyID: [0, 0, 0, 0, 0, 0, 0, 0])) }
        // A value sealed with the data key opens with the key KMS unwraps.
        let dk = ProtectedValue.DataKey(id: ctx.keyID, bytes: plain)
        let token = try ProtectedValue.seal(Array("a@x".utf8), kind: .text, key: dk, dataset: "d", field: "email", subject: subject)
        let again = ProtectedValue.DataKey(id: ctx.keyID, bytes: try await kek.unwrap(wrapped, ctx))
        #expect(try ProtectedValue.open(try ProtectedValue.parse(token), key: again, dataset: "d", field: "email", subject: subject).value == Array("a@x".utf8))
    }

    @Test func aWrongSignatureOrAnUnknownKeyIsAClearError() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let bad = try KMSKeyEncryptionKey(
            keyID: "alias/none", region: "us-east-1", endpoint: moto.endpoint,
            credentials: AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: "wrong"),
            maxAttempts: 1)
        do {
            _ = try await bad.generateDataKey(WrapContext(subject: subject, keyID: [1, 1, 1, 1, 1, 1, 1, 1]))
            Issue.record("a wrongly signed call succeeded")
        } catch let e as LetheError {
            #expect(e.code == .badInput && e.message.contains("GenerateDataKey") && !e.message.contains("wrong"))
        }
        let creds = AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey)
        let missing = try KMSKeyEncryptionKey(keyID: "alias/none", region: "us-east-1", endpoint: moto.endpoint, credentials: creds, maxAttempts: 1)
        await #expect(throws: LetheError.self) { _ = try await missing.generateDataKey(WrapContext(subject: subject, keyID: [1, 1, 1, 1, 1, 1, 1, 1])) }
    }

    /// `lethe vault rotate-kek --to-kms-key-id` (`Runtime.rotateKMSKEK`): every data key re-encrypted
    /// by KMS under the new key (ReEncrypt, same encryption context), rows exact and larger than a key
    /// file's; with `kms_key_id` then set to the new key, every value protected before still reveals,
    /// and the old key opens none of the rows.
    @Test func rotatingToAnotherKMSKeyKeepsEveryValueReadable() async throws {
        // Without signature checks: `Runtime` reads its AWS credentials from the process's environment,
        // which S3 suites running alongside set to their own moto's keys (a 403 under the full run).
        // The tests above check KMS's signatures.
        let moto = try MotoServer(auth: false)
        defer { moto.stop() }
        if getenv("AWS_ACCESS_KEY_ID") == nil {
            setenv("AWS_ACCESS_KEY_ID", moto.accessKey, 1)
            setenv("AWS_SECRET_ACCESS_KEY", moto.secretKey, 1)
        }
        let creds = AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey)
        let setup = try KMSKeyEncryptionKey(keyID: "none", region: "us-east-1", endpoint: moto.endpoint, credentials: creds)
        let oldID = try await setup.createKey(description: "old KEK"), newID = try await setup.createKey(description: "new KEK")
        let dir = try temporaryFolder("kms-rotate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lake/ev", withIntermediateDirectories: true)
        func config(_ keyID: String) throws -> LakeConfig {
            try LakeConfig.parse(
                """
                lake: ./lake
                state: ./state
                vault: {kek: kms, kms_key_id: "\(keyID)", kms_endpoint: "\(moto.endpoint)", kms_region: us-east-1}
                datasets:
                  - {name: ev, path: ev, format: jsonl, subject: id, pii: [email]}
                """, file: dir + "/lethe.yaml", baseDir: dir)
        }
        let before = try config(oldID)
        let lethe = try Runtime.open(config: before)
        func crypter(_ c: LakeConfig, _ mode: CryptoMode) throws -> RecordCrypter {
            try RecordCrypter(
                dataset: "ev", format: .jsonl, mode: mode, subject: [FieldPath("id")], pii: [FieldPath("email")], hasher: lethe.secrets.hasher,
                keys: try Runtime.vault(c, state: lethe.meta, create: true))
        }
        let text = (1...6).map { #"{"id":"k-\#($0)","email":"e\#($0)@x"}"# + "\n" }.joined()
        let protected = try await crypter(before, .protect).process(Array(text.utf8))
        #expect(try await lethe.meta.vault.vaultKeyCountsByKEK() == ["kms:" + oldID: 6])
        let rows = try await lethe.meta.vault.vaultRows(kek: "kms:" + oldID, after: nil, limit: 10)
        #expect(rows.count == 6 && rows.allSatisfy { $0.exact && $0.wrapped.count > 64 })
        let r = try await Runtime.rotateKMSKEK(before, lethe: lethe, to: newID, batch: 4)
        #expect(r.rewrapped == 6 && r.remaining == 0 && r.to == "kms:" + newID)
        #expect(try await lethe.meta.vault.vaultKeyCountsByKEK() == ["kms:" + newID: 6])
        // Run again: nothing left to move.
        #expect(try await Runtime.rotateKMSKEK(before, lethe: lethe, to: newID).rewrapped == 0)
        let after = try config(newID)
        let revealed = try await crypter(after, .reveal(marker: nil, nullOnError: false)).process(protected)
        #expect(String(decoding: revealed, as: UTF8.self) == text)
        // Every blob was re-encrypted (key ids unchanged).
        let moved = try await lethe.meta.vault.vaultRows(kek: "kms:" + newID, after: nil, limit: 10)
        #expect(Set(moved.map(\.keyID)) == Set(rows.map(\.keyID)))
        #expect(Set(moved.map(\.wrapped)).isDisjoint(with: Set(rows.map(\.wrapped))))
    }
}
