import Testing
import LetheCore

/// SipHash-2-4 against the reference vectors of the SipHash paper (key 00..0f,
/// message i = bytes 00..i-1), outputs as little-endian byte strings.
@Suite struct SipHashTests {
    static let vectors: [[UInt8]] = [
        [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72],
        [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74],
        [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d],
        [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85],
        [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf],
        [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18],
        [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb],
        [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab],
        [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93],
        [0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e],
        [0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a],
        [0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4],
        [0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75],
        [0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14],
        [0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7],
        [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1],
    ]

    @Test(arguments: 0..<16)
    func referenceVector(_ length: Int) {
        let h = SipHash24(key: Array(0..<16))
        let tag = h.hash(Array(0..<UInt8(length)))
        let le = (0..<8).map { UInt8(truncatingIfNeeded: tag >> (8 * UInt64($0))) }
        #expect(le == Self.vectors[length])
    }

    @Test func keyWordsAreLittleEndian() {
        let a = SipHash24(key: Array(0..<16))
        #expect(a == SipHash24(k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908))
    }

    @Test func bufferAndArrayAgreeAndKeysMatter() {
        let msg = Array("user-42".utf8)
        let a = SipHash24(key: Array(repeating: 7, count: 16))
        let b = SipHash24(key: Array(repeating: 8, count: 16))
        #expect(a.hash(msg) == msg.withUnsafeBytes { a.hash($0) })
        #expect(a.hash(msg) != b.hash(msg))
    }

    @Test func streamTagUsesTheStreamKey() {
        let secret = [UInt8](repeating: 1, count: 32), req = [UInt8](repeating: 2, count: 32)
        let s1 = StateSecrets(installationSecret: secret, requestKey: req, streamKey: Array(0..<32))
        let s2 = StateSecrets(installationSecret: secret, requestKey: req, streamKey: Array(1..<33))
        let subject = SubjectID("u-42")
        #expect(s1.streamTag(subject) == SipHash24(key: Array(0..<16)).hash(subject.bytes))
        #expect(s1.streamTag(subject) != s2.streamTag(subject))
        #expect(subject.bytes.withUnsafeBytes { s1.streamTag(bytes: $0) } == s1.streamTag(subject))
    }
}
