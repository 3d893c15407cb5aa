import Crypto

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
public struct SubjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 bytes of the HMAC.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a subject key has 32 bytes")
        self.bytes = bytes
    }

    /// Parses the 64 hex digits that `description` prints.
    public init?(hex: String) {
        guard let b = Hex.decode(hex), b.count == 32 else { return nil }
        self.bytes = b
    }

    /// The first 8 bytes as a signed integer: what the subject index stores.
    public var prefix64: Int64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[i]) }
        return Int64(bitPattern: v)
    }

    public var hex: String { Hex.encode(bytes) }
    /// The short form used in reports and logs (first 16 hex digits).
    public var short: String { String(hex.prefix(16)) }
    public var description: String { hex }

    public static func < (a: SubjectKey, b: SubjectKey) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

/// Computes subject keys under the installation secret.
public struct SubjectHasher: Sendable {
    /// HMAC state after the key is absorbed: each key costs only the message's
    /// compressions (hash functions are value types; a copy continues independently).
    private let template: HMACTemplate

    public init(secret: [UInt8]) {
        precondition(secret.count >= 32, "the installation secret has at least 32 bytes")
        self.template = HMACTemplate(HMAC<SHA256>(key: SymmetricKey(data: secret)))
    }

    public func key(for subject: SubjectID) -> SubjectKey {
        key(forBytes: subject.bytes)
    }

    public func key(forBytes bytes: [UInt8]) -> SubjectKey {
        bytes.withUnsafeBytes { key(forBytes: $0) }
    }

    public func key(forBytes buffer: UnsafeRawBufferPointer) -> SubjectKey {
        var h = template.hmac
        h.update(data: buffer)
        return SubjectKey(bytes: Array(h.finalize()))
    }
}

/// An HMAC state that is only ever copied, never mutated in place.
private struct HMACTemplate: @unchecked Sendable {
    let hmac: HMAC<SHA256>
    init(_ h: HMAC<SHA256>) { hmac = h }
}

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
