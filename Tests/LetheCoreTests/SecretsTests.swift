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

@Test func keyFilesAreCreatedOnceWithMode0600AndSealingIsBoundToTheRequest() throws {
    let dir = NSTemporaryDirectory() + "lethe-secrets-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try StateSecrets.ensureFolder(dir)
    #expect(try StateSecrets.readKey(dir + "/secret.key") == nil)
    let secret = try StateSecrets.createKey(dir + "/secret.key")
    #expect(try StateSecrets.readKey(dir + "/secret.key") == secret)
    // Never created over an existing file.
    #expect(throws: LetheError.self) { _ = try StateSecrets.createKey(dir + "/secret.key") }
    #expect(try StateSecrets.readKey(dir + "/secret.key") == secret)
    let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/secret.key")
    #expect((attrs[.posixPermissions] as? Int) == 0o600)
    let request = try StateSecrets.createKey(dir + "/request.key")
    let s1 = StateSecrets(installationSecret: secret, requestKey: request)
    let s2 = StateSecrets(installationSecret: try StateSecrets.readKey(dir + "/secret.key")!, requestKey: try StateSecrets.readKey(dir + "/request.key")!)
    #expect(s1.hasher.key(for: SubjectID("x")) == s2.hasher.key(for: SubjectID("x")))
    let sealed = try s1.seal(SubjectID("alice@example.com"), requestID: "r1")
    #expect(!String(decoding: sealed, as: UTF8.self).contains("alice"))
    #expect(try s2.unseal(sealed, requestID: "r1") == SubjectID("alice@example.com"))
    #expect(throws: LetheError.self) { try s2.unseal(sealed, requestID: "r2") }
    var tampered = sealed
    tampered[tampered.count - 1] ^= 1
    #expect(throws: LetheError.self) { try s2.unseal(tampered, requestID: "r1") }
}

@Test func fingerprintsTellKeysApartWithoutRevealingThem() {
    let a = Array(repeating: UInt8(1), count: 32), b = Array(repeating: UInt8(2), count: 32)
    #expect(StateSecrets.fingerprint(a) == StateSecrets.fingerprint(a))
    #expect(StateSecrets.fingerprint(a) != StateSecrets.fingerprint(b))
    #expect(StateSecrets.fingerprint(a).count == 32)
    #expect(!StateSecrets.fingerprint(a).contains(Hex.encode(a).prefix(8)))
}

@Test func auditChainHashCoversEveryField() {
    let h = AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: "r", actor: "a", details: "{}", prevHash: AuditChain.genesis)
    #expect(h.count == 64)
    #expect(h != AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: "r", actor: "b", details: "{}", prevHash: AuditChain.genesis))
    #expect(h != AuditChain.hash(seq: 1, at: 2, event: "filed", requestID: nil, actor: "a", details: "{}", prevHash: AuditChain.genesis))
    #expect(h != AuditChain.hash(seq: 2, at: 2, event: "filed", requestID: "r", actor: "a", details: "{}", prevHash: AuditChain.genesis))
}

@Test func keyedAuditHashesNeedTheKeyAndKeepTheUnkeyedForm() {
    let args = (seq: Int64(1), at: Int64(2), event: "filed", req: "r", actor: "a", details: "{}")
    let plain = AuditChain.hash(
        seq: args.seq, at: args.at, event: args.event, requestID: args.req, actor: args.actor, details: args.details, prevHash: AuditChain.genesis)
    let k1 = AuditChain.hash(
        seq: args.seq, at: args.at, event: args.event, requestID: args.req, actor: args.actor, details: args.details, prevHash: AuditChain.genesis,
        key: Array(repeating: 1, count: 32))
    let k2 = AuditChain.hash(
        seq: args.seq, at: args.at, event: args.event, requestID: args.req, actor: args.actor, details: args.details, prevHash: AuditChain.genesis,
        key: Array(repeating: 2, count: 32))
    #expect(plain != k1 && k1 != k2 && k1.count == 64)
    // The unkeyed form is the SHA-256 older chains used: length-prefixed fields, 0xFF for nil.
    var bytes: [UInt8] = []
    for f in ["1", "2", "filed", "r", "a", "{}", AuditChain.genesis] {
        let b = Array(f.utf8)
        bytes += [0, 0, 0, UInt8(b.count)] + b
    }
    #expect(plain == Hex.encode(Array(SHA256.hash(data: bytes))))
}

/// The keyed form is HMAC-SHA-256 (as `HMAC<SHA256>` computes it) over the length-prefixed fields:
/// details of every length around SHA-256's block, multi-byte text, nil fields, and keys of 32 and 100 bytes
/// (a long key is hashed first) — chains written before the C HMAC keep verifying.
@Test func keyedAuditHashIsHMACSHA256OverTheFields() {
    for key in [Array(repeating: UInt8(1), count: 32), (0..<100).map { UInt8($0) }] {
        for n in [0, 1, 20, 55, 56, 63, 64, 65, 119, 120, 200, 1_000] {
            let details = "{\"d\":\"" + String(repeating: "é", count: n / 2) + String(repeating: "x", count: n % 2) + "\"}"
            for (req, actor) in [("r-\(n)", "text#\(n)"), (nil, nil), ("r", nil)] as [(String?, String?)] {
                var bytes: [UInt8] = []
                for f in ["\(n + 1)", "1700000000000", "verified", req, actor, details, AuditChain.genesis] as [String?] {
                    guard let f else { bytes.append(0xFF); continue }
                    let b = Array(f.utf8)
                    bytes += [UInt8(b.count >> 24), UInt8(b.count >> 16 & 0xFF), UInt8(b.count >> 8 & 0xFF), UInt8(b.count & 0xFF)] + b
                }
                let expected = Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))))
                let got = AuditChain.hash(
                    seq: Int64(n + 1), at: 1_700_000_000_000, event: "verified", requestID: req, actor: actor, details: details,
                    prevHash: AuditChain.genesis, key: key)
                #expect(got == expected)
            }
        }
    }
}

@Test func sealingManyIsSealingEachWithItsOwnNonce() throws {
    let s = StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 9, count: 32))
    let subjects = (0..<300).map { SubjectID("u-\($0)") } + [SubjectID("u-0")]
    let ids = (0..<subjects.count).map { "r-\($0)" }
    let sealed = try s.seal(subjects, requestIDs: ids)
    #expect(sealed.count == subjects.count)
    for (i, b) in sealed.enumerated() {
        #expect(b.count == 12 + subjects[i].bytes.count + 16)
        #expect(try s.unseal(b, requestID: ids[i]) == subjects[i])
        #expect(throws: LetheError.self) { try s.unseal(b, requestID: ids[(i + 1) % ids.count]) }
    }
    // Every nonce differs (the same subject twice is sealed twice, differently).
    #expect(Set(sealed.map { Array($0.prefix(12)) }).count == sealed.count)
    #expect(sealed[0] != sealed[300])
    #expect(try s.seal([], requestIDs: []).isEmpty)
}

@Test func jsonTextWritesBytesAsItWritesStrings() {
    for v in ["", "plain", "a/b", "q\"b\\s", "nl\ncr\rtab\t", "ctl\u{01}\u{08}\u{0c}\u{1f}\u{7f}", "é ✓ 😀", "\u{2028}"] {
        var s = "", b: [UInt8] = []
        JSONText.quote(v, into: &s)
        JSONText.quote(v, into: &b)
        #expect(String(decoding: b, as: UTF8.self) == s, "\(v)")
    }
    for n: Int64 in [0, 7, 10, 99, 100, 1_234_567, Int64.max, -1, -10, Int64.min] {
        var b: [UInt8] = [1]
        JSONText.append(n, into: &b)
        #expect(String(decoding: b.dropFirst(), as: UTF8.self) == String(n))
    }
}
