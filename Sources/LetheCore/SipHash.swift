/// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
/// a keyed 64-bit pseudo-random function over a byte string, used for the stream
/// filter's deletion-set tags. Written from the paper's specification.
///
/// Allocation-free; the key is two little-endian 64-bit words.
public struct SipHash24: Sendable, Equatable {
    public let k0: UInt64
    public let k1: UInt64

    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A key from its first 16 bytes (little-endian words, as in the paper).
    public init(key: [UInt8]) {
        precondition(key.count >= 16, "SipHash needs a 16-byte key")
        var a: UInt64 = 0, b: UInt64 = 0
        for i in 0..<8 {
            a |= UInt64(key[i]) << (8 * UInt64(i))
            b |= UInt64(key[8 + i]) << (8 * UInt64(i))
        }
        self.init(k0: a, k1: b)
    }

    @inline(__always)
    private static func round(_ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
        v0 = v0 &+ v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
        v2 = v2 &+ v3; v3 = v3.rotl(16); v3 ^= v2
        v0 = v0 &+ v3; v3 = v3.rotl(21); v3 ^= v0
        v2 = v2 &+ v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
    }

    /// The 64-bit tag of `bytes`.
    @inline(__always)
    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1
        let n = bytes.count
        var i = 0
        if let base = bytes.baseAddress {
            while i + 8 <= n {
                let m = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                v3 ^= m
                Self.round(&v0, &v1, &v2, &v3)
                Self.round(&v0, &v1, &v2, &v3)
                v0 ^= m
                i += 8
            }
        }
        // Last block: the remaining bytes, then the length's low byte in the top byte.
        var last = UInt64(truncatingIfNeeded: n) << 56
        var shift: UInt64 = 0
        while i < n {
            last |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        v3 ^= last
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        v0 ^= last
        v2 ^= 0xFF
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        return v0 ^ v1 ^ v2 ^ v3
    }

    /// The 64-bit tag of a byte array.
    public func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotl(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
