import Foundation
import LetheCore
import LetheTestSupport
import Testing
@testable import LetheS3

/// AWS KMS as crypto-shredding's key-encryption key, against moto's KMS (signatures checked).
@Suite(.serialized, .timeLimit(.minutes(5))) struct KMSTests {
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
}
