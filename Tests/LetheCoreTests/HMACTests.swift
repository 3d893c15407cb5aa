import Testing
import Crypto
import CLetheSHA
@testable import LetheCore

private func ours(_ key: [UInt8], _ msg: [UInt8]) -> [UInt8] {
    var k = lethe_hmac_sha256_key()
    key.withUnsafeBufferPointer { lethe_hmac_sha256_init(&k, $0.baseAddress, $0.count) }
    var out = [UInt8](repeating: 0, count: 32)
    msg.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { lethe_hmac_sha256(&k, m.baseAddress, m.count, $0.baseAddress!) } }
    return out
}

private func checkAgainstSwiftCrypto() {
    var rng = SystemRandomNumberGenerator()
    for keyLen in [0, 1, 32, 64, 65, 100] {
        let key = (0..<keyLen).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for len in Array(0...130) + [200, 1000, 4096] {
            let msg = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let expected = Array(HMAC<SHA256>.authenticationCode(for: msg, using: SymmetricKey(data: key)))
            #expect(ours(key, msg) == expected, "key \(keyLen) msg \(len)")
        }
    }
    var out = [UInt8](repeating: 0, count: 32)
    Array("abc".utf8).withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { lethe_sha256(m.baseAddress, m.count, $0.baseAddress!) } }
    #expect(Hex.encode(out) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

/// Both compression paths (SHA extensions when present, then the portable code) equal swift-crypto.
@Test func hmacMatchesSwiftCryptoOnBothPaths() {
    checkAgainstSwiftCrypto()
    lethe_sha256_force_portable()
    #expect(lethe_sha256_uses_sha_ni() == 0)
    checkAgainstSwiftCrypto()
}

@Test func subjectKeyStorageRoundTrips() {
    let bytes = (0..<32).map { UInt8($0 * 7 & 255) }
    let k = SubjectKey(bytes: bytes)
    #expect(k.bytes == bytes)
    #expect(SubjectKey(hex: k.hex) == k)
    #expect(k.prefix64 == Int64(bitPattern: 0x00070E151C232A31))
    #expect(SubjectKey(bytes: [0] + Array(repeating: 255, count: 31)) < SubjectKey(bytes: [1] + Array(repeating: 0, count: 31)))
}
