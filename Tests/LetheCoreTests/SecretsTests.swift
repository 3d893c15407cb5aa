import Testing
import Foundation
import Crypto
@testable import LetheCore

@Test func subjectKeysAreKeyedAndStable() {
    let a = SubjectHasher(secret: Array(repeating: 1, count: 32))
    let b = SubjectHasher(secret: Array(repeating: 2, count: 32))
    #expect(a.key(for: SubjectID("u-1")) == a.key(for: SubjectID("u-1")))
    #expect(a.key(for: SubjectID("u-1")) != a.key(for: SubjectID("u-12")))
    #expect(a.key(for: SubjectID("u-1")) != b.key(for: SubjectID("u-1")))
    let k = a.key(for: SubjectID("u-1"))
    #expect(SubjectKey(hex: k.hex) == k)
    #expect(!k.hex.contains("u-1"))
}

@Test func subjectKeysAreStandardHMACSHA256() {
    let secret = (0..<32).map { UInt8($0) }
    let hasher = SubjectHasher(secret: secret)
    for id in ["", "u-1", String(repeating: "long-id-", count: 40)] {
        let expected = Array(HMAC<SHA256>.authenticationCode(for: Array(id.utf8), using: SymmetricKey(data: secret)))
        #expect(hasher.key(for: SubjectID(id)).bytes == expected)
    }
    // The template is never consumed: the same id keeps the same key.
    #expect(hasher.key(for: SubjectID("u-1")) == hasher.key(for: SubjectID("u-1")))
}

@Test func compositeSubjectsJoinWithUnitSeparator() {
    let s = SubjectID.parse("t1|u-1")
    #expect(s.bytes == Array("t1".utf8) + [0x1F] + Array("u-1".utf8))
    #expect(SubjectID.parse("t1|u-1") != SubjectID.parse("t1u|-1"))
}

@Test func secretsAreCreatedOnceWithMode0600AndSealingIsBoundToTheRequest() throws {
    let dir = NSTemporaryDirectory() + "lethe-secrets-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let s1 = try StateSecrets.open(folder: dir)
    let s2 = try StateSecrets.open(folder: dir)
    #expect(s1.hasher.key(for: SubjectID("x")) == s2.hasher.key(for: SubjectID("x")))
    let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/secret.key")
    #expect((attrs[.posixPermissions] as? Int) == 0o600)
    let sealed = try s1.seal(SubjectID("alice@example.com"), requestID: "r1")
    #expect(!String(decoding: sealed, as: UTF8.self).contains("alice"))
    #expect(try s2.unseal(sealed, requestID: "r1") == SubjectID("alice@example.com"))
    #expect(throws: LetheError.self) { try s2.unseal(sealed, requestID: "r2") }
    var tampered = sealed
    tampered[tampered.count - 1] ^= 1
    #expect(throws: LetheError.self) { try s2.unseal(tampered, requestID: "r1") }
}

@Test func auditChainHashCoversEveryField() {
    let h = AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: "r", actor: "a", details: "{}", prevHash: AuditChain.genesis)
    #expect(h.count == 64)
    #expect(h != AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: "r", actor: "b", details: "{}", prevHash: AuditChain.genesis))
    #expect(h != AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: nil, actor: "a", details: "{}", prevHash: AuditChain.genesis))
    #expect(h != AuditChain.hash(seq: 2, at: 2, event: "filed", requestID: "r", actor: "a", details: "{}", prevHash: AuditChain.genesis))
}
