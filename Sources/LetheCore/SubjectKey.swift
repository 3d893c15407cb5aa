import Foundation
import CLetheSHA

/// A data subject's identifier in its canonical form: the raw bytes that identify
/// one person (for a composite subject, the parts joined by U+001F).
///
/// This is personal data. It is held only in memory, in an encrypted request
/// field, or in the lake itself; never in logs, errors, the audit log or the index.
public struct SubjectID: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    /// A composite subject from its parts.
    public init(parts: [[UInt8]]) {
        var out: [UInt8] = []
        for (i, p) in parts.enumerated() {
            if i > 0 { out.append(SubjectID.partSeparator) }
            out.append(contentsOf: p)
        }
        self.bytes = out
    }
    /// The byte between the parts of a composite subject.
    public static let partSeparator: UInt8 = 0x1F
    /// The identifier as text (for the encrypted request field and the residue scan only).
    public var string: String { String(decoding: bytes, as: UTF8.self) }
    /// Splits a composite subject as typed on the command line (`a|b`) into canonical form.
    public static func parse(_ text: String, separator: Character = "|") -> SubjectID {
        let parts = text.split(separator: separator, omittingEmptySubsequences: false).map { Array($0.utf8) }
        return SubjectID(parts: parts)
    }
}

/// The keyed hash of a subject: HMAC-SHA-256 of its canonical bytes under the
/// installation secret. This is what Lethe stores and prints instead of the id.
///
/// Stored inline as four big-endian words (no heap allocation): keys are made
/// and compared once per record on the hot paths.
public struct SubjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a subject key has 32 bytes")
        self = bytes.withUnsafeBytes { SubjectKey(digest: $0) }
    }

    /// From 32 bytes of digest.
    init(digest b: UnsafeRawBufferPointer) {
        w0 = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        w1 = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        w3 = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    /// Parses the 64 hex digits that `description` prints.
    public init?(hex: String) {
        guard let b = Hex.decode(hex), b.count == 32 else { return nil }
        self.init(bytes: b)
    }

    /// The 32 bytes of the HMAC.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        for (i, w) in [w0, w1, w2, w3].enumerated() {
            for j in 0..<8 { out[i * 8 + j] = UInt8(truncatingIfNeeded: w >> (56 - 8 * UInt64(j))) }
        }
        return out
    }

    /// The first 8 bytes as a signed integer: what the subject index stores.
    public var prefix64: Int64 { Int64(bitPattern: w0) }

    public var hex: String { Hex.encode(bytes) }
    /// The short form used in reports and logs (first 16 hex digits).
    public var short: String { String(hex.prefix(16)) }
    public var description: String { hex }

    public static func < (a: SubjectKey, b: SubjectKey) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }

    /// The hash a `Set` or `Dictionary` of keys uses (a `forget --from` of 100,000 subjects looks keys up
    /// a dozen times each): the key is itself a keyed hash (HMAC under the installation secret, so no
    /// one outside chooses it), so its four words are folded with the table's per-process seed by
    /// multiply-xorshift rounds instead of SipHash over 32 bytes. Every word counts (keys a test
    /// builds by hand differ in one byte anywhere); `hash(into:)` (a key inside another hashed value)
    /// stays the synthesized one.
    public func _rawHashValue(seed: Int) -> Int {
        var x = UInt64(UInt(bitPattern: seed))
        x = (x ^ w0) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 29) ^ w1) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 31) ^ w2) &* 0x94D0_49BB_1331_11EB
        x = (x ^ (x >> 29) ^ w3) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: x ^ (x >> 32))
    }
}

/// Computes subject keys under the installation secret: HMAC-SHA-256 with the key's
/// inner and outer states computed once, so each key costs two SHA-256 blocks
/// (SHA extensions where the CPU has them).
public struct SubjectHasher: Sendable {
    private let prepared: lethe_hmac_sha256_key

    public init(secret: [UInt8]) {
        precondition(secret.count >= 32, "the installation secret has at least 32 bytes")
        var k = lethe_hmac_sha256_key()
        secret.withUnsafeBufferPointer { lethe_hmac_sha256_init(&k, $0.baseAddress, $0.count) }
        self.prepared = k
    }

    public func key(for subject: SubjectID) -> SubjectKey {
        key(forBytes: subject.bytes)
    }

    public func key(forBytes bytes: [UInt8]) -> SubjectKey {
        bytes.withUnsafeBytes { key(forBytes: $0) }
    }

    public func key(forBytes buffer: UnsafeRawBufferPointer) -> SubjectKey {
        var out: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &out) { o in
            withUnsafePointer(to: prepared) { k in
                lethe_hmac_sha256(
                    k, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count,
                    o.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            return SubjectKey(digest: UnsafeRawBufferPointer(o))
        }
    }

    /// The keys of `offsets.count - 1` values stored back to back in `bytes` (value i is
    /// `bytes[offsets[i]..<offsets[i + 1]]`), in order: short values two at a time (`lethe_hmac_sha256_many`).
    public func keys(bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>) -> [SubjectKey] {
        let n = max(0, offsets.count - 1)
        guard n > 0 else { return [] }
        // The digests written straight into the keys' storage (32 bytes each), then each key made from
        // its own digest in place: no digest array.
        precondition(MemoryLayout<SubjectKey>.stride == 32)
        return [SubjectKey](unsafeUninitializedCapacity: n) { keys, count in
            let raw = UnsafeRawPointer(keys.baseAddress!)
            withUnsafePointer(to: prepared) { k in
                keys.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: 32 * n) { d in
                    lethe_hmac_sha256_many(k, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), offsets.baseAddress, n, d)
                }
            }
            for i in 0..<n {
                let key = SubjectKey(digest: UnsafeRawBufferPointer(start: raw + 32 * i, count: 32))
                (keys.baseAddress! + i).initialize(to: key)
            }
            count = n
        }
    }

    /// The same keys appended to `out` (emptied first), the digests going through `scratch`: both keep
    /// their capacity from one call to the next (a stream's chunks allocate nothing here).
    public func keys(bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>, scratch: inout [UInt8], into out: inout [SubjectKey]) {
        out.removeAll(keepingCapacity: true)
        let n = max(0, offsets.count - 1)
        guard n > 0 else { return }
        if scratch.count < 32 * n { scratch.append(contentsOf: repeatElement(0, count: 32 * n - scratch.count)) }
        scratch.withUnsafeMutableBufferPointer { d in
            withUnsafePointer(to: prepared) { k in
                lethe_hmac_sha256_many(k, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), offsets.baseAddress, n, d.baseAddress)
            }
        }
        out.reserveCapacity(n)
        scratch.withUnsafeBytes { d in
            for i in 0..<n { out.append(SubjectKey(digest: UnsafeRawBufferPointer(rebasing: d[(32 * i)..<(32 * i + 32)]))) }
        }
    }
}

extension lethe_hmac_sha256_key: @retroactive @unchecked Sendable {}

/// Lower-case hexadecimal.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
    public static func decode(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// How a dataset's subject values (and a request's subject, when matched against that dataset) are
/// normalised before they are keyed. `lethe.yaml`: `normalize: nfc` on a dataset.
public enum Normalization: String, Sendable, Hashable, CaseIterable {
    /// The bytes as they are (the default): `é` as U+00E9 and as `e` + U+0301 are different subjects.
    case none
    /// Unicode canonical composition (NFC): text that is the same to a reader is the same subject.
    /// Bytes that are not UTF-8 are keyed as they are.
    case nfc

    /// The bytes to key.
    public func apply(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { apply($0) } ?? bytes
    }

    /// The bytes to key, or nil when they are the input unchanged (ASCII, already NFC, not UTF-8, or `.none`).
    public func apply(_ b: UnsafeRawBufferPointer) -> [UInt8]? {
        guard self == .nfc, b.contains(where: { $0 >= 0x80 }),
            let s = String(validating: b, as: UTF8.self)
        else { return nil }
        let n = Array(s.precomposedStringWithCanonicalMapping.utf8)
        return n.elementsEqual(b) ? nil : n
    }
}
