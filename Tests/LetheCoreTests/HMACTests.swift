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
/// The portable code is chosen for this test's thread only (a synchronous test stays on one thread):
/// the tests running beside it and after it keep the machine's path.
@Test func hmacMatchesSwiftCryptoOnBothPaths() {
    checkAgainstSwiftCrypto()
    let detected = lethe_sha256_uses_sha_ni()
    lethe_sha256_portable_on_this_thread(1)
    #expect(lethe_sha256_uses_sha_ni() == 0)
    checkAgainstSwiftCrypto()
    lethe_sha256_portable_on_this_thread(0)
    #expect(lethe_sha256_uses_sha_ni() == detected)
}

@Test func subjectKeyStorageRoundTrips() {
    let bytes = (0..<32).map { UInt8($0 * 7 & 255) }
    let k = SubjectKey(bytes: bytes)
    #expect(k.bytes == bytes)
    #expect(SubjectKey(hex: k.hex) == k)
    #expect(k.prefix64 == Int64(bitPattern: 0x00070E151C232A31))
    #expect(SubjectKey(bytes: [0] + Array(repeating: 255, count: 31)) < SubjectKey(bytes: [1] + Array(repeating: 0, count: 31)))
}

/// Sets and dictionaries of keys hash them with `_rawHashValue(seed:)` (the words folded, no SipHash):
/// keys one byte apart — anywhere in the 32 — hash apart, also in the low bits a table's buckets use;
/// the hash follows the table's seed; equal keys hash alike, and a set keeps every distinct key.
@Test func subjectKeysHashByEveryWordAndTheSeed() {
    let base = [UInt8](repeating: 0xA5, count: 32)
    var keys: [SubjectKey] = [SubjectKey(bytes: base)]
    for i in 0..<32 {
        for v: UInt8 in [0, 1, 0x80] where v != 0xA5 {
            var b = base
            b[i] = v
            keys.append(SubjectKey(bytes: b))
        }
    }
    for seed in [0, 1, -7, 0x5EED_5EED] {
        let hashes = keys.map { $0._rawHashValue(seed: seed) }
        #expect(Set(hashes).count == keys.count)
        // 97 keys in 1,024 buckets: a byte outside the folded words would put its keys in one bucket each time.
        #expect(Set(hashes.map { $0 & 1023 }).count > 80)
    }
    #expect(keys.filter { $0._rawHashValue(seed: 1) == $0._rawHashValue(seed: 2) }.count <= 1)
    #expect(SubjectKey(bytes: base)._rawHashValue(seed: 3) == keys[0]._rawHashValue(seed: 3))
    #expect(Set(keys + keys).count == keys.count)
}

/// `SubjectHasher.keys(bytes:offsets:)` (two short messages at a time with the SHA extensions) equals one
/// key at a time for every length around the one-block limit (55 bytes), odd counts, empty values, and
/// NFC normalisation through `SubjectKeyer.uncachedKeys`; the form with reused buffers gives the same keys.
@Test func manyKeysAtOnceEqualOneAtATime() {
    let hasher = SubjectHasher(secret: Array(repeating: 3, count: 32))
    var rng = SplitMix64(seed: 16)
    // The form that reuses its buffers (a stream's chunks): the same keys, nothing left of a larger batch.
    var scratch: [UInt8] = []
    var reused: [SubjectKey] = []
    for count in [1, 2, 3, 7, 64, 301, 5, 1] {
        var bytes: [UInt8] = []
        var offsets = [0]
        for i in 0..<count {
            let len = i % 5 == 0 ? Int(rng.next() % 130) : Int(rng.next() % 60)
            for _ in 0..<len { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
            offsets.append(bytes.count)
        }
        let many = bytes.withUnsafeBytes { b in offsets.withUnsafeBufferPointer { hasher.keys(bytes: b, offsets: $0) } }
        let one = (0..<count).map { hasher.key(forBytes: Array(bytes[offsets[$0]..<offsets[$0 + 1]])) }
        #expect(many == one, "\(count) values")
        bytes.withUnsafeBytes { b in offsets.withUnsafeBufferPointer { hasher.keys(bytes: b, offsets: $0, scratch: &scratch, into: &reused) } }
        #expect(reused == one, "\(count) values, buffers reused")
    }
    // NFC: "é" decomposed keys as composed; ASCII and other values as they are.
    let values = ["jose\u{301}", "jos\u{E9}", "u-1", "", "x"].map { Array($0.utf8) }
    let bytes = values.flatMap { $0 }
    var offsets = [0]
    for v in values { offsets.append(offsets.last! + v.count) }
    let keyer = SubjectKeyer(hasher: hasher, normalization: .nfc)
    let keys = bytes.withUnsafeBytes { b in offsets.withUnsafeBufferPointer { keyer.uncachedKeys(bytes: b, offsets: $0) } }
    #expect(keys == values.map { keyer.key($0) })
    #expect(keys[0] == keys[1] && keys[0] == hasher.key(forBytes: Array("jos\u{E9}".utf8)))
    #expect(keyer.misses == 5)
}

/// `lethe_hmac_sha256_many` against swift-crypto, message by message, where its two-at-a-time path reads a
/// short message straight from the caller's buffer (64 bytes from the message's start, the bytes past it
/// masked off) and where it copies it first (within 64 bytes of the furthest message end): every length
/// up to the one-block limit and past it, at every distance from the end of the values, odd and even
/// positions in a pair, the bytes after each message random (what a broken mask would hash).
@Test func manyHMACsReadInPlaceOrCopiedEqualSwiftCrypto() {
    let secret = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 5) }
    var k = lethe_hmac_sha256_key()
    secret.withUnsafeBufferPointer { lethe_hmac_sha256_init(&k, $0.baseAddress, $0.count) }
    let reference = SymmetricKey(data: secret)
    var rng = SplitMix64(seed: 23)
    func check(_ lengths: [Int], lead: Int, _ what: String) {
        var bytes = (0..<lead).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var offsets = [lead]
        for len in lengths {
            for _ in 0..<len { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
            offsets.append(bytes.count)
        }
        var out = [UInt8](repeating: 0, count: 32 * lengths.count)
        bytes.withUnsafeBufferPointer { b in
            offsets.withUnsafeBufferPointer { o in
                out.withUnsafeMutableBufferPointer { lethe_hmac_sha256_many(&k, b.baseAddress, o.baseAddress, lengths.count, $0.baseAddress) }
            }
        }
        for i in lengths.indices {
            let expected = Array(HMAC<SHA256>.authenticationCode(for: Array(bytes[offsets[i]..<offsets[i + 1]]), using: reference))
            #expect(Array(out[(32 * i)..<(32 * i + 32)]) == expected, "\(what): message \(i) of \(lengths.count), \(lengths[i]) bytes")
        }
    }
    // Each length 0...64 as the last message, after 0...3 others (the pair it falls in; in place or copied by
    // how far from the end it starts), the others' lengths random.
    for len in 0...64 {
        for before in 0...3 {
            let lengths = (0..<before).map { _ in Int(rng.next() % 56) } + [len]
            check(lengths, lead: Int(rng.next() % 3), "\(len) bytes after \(before)")
        }
    }
    // Many short messages (most read in place), long ones between them, an odd count.
    check((0..<301).map { i in i % 17 == 0 ? 56 + Int(rng.next() % 80) : Int(rng.next() % 56) }, lead: 1, "mixed")
    check([Int](repeating: 13, count: 64), lead: 0, "ids of 13 bytes")
    check([Int](repeating: 55, count: 9), lead: 0, "the one-block limit")
}
