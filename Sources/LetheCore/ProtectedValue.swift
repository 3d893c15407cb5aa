public import Crypto
import CLetheSeal
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One crypto-shredded value (docs/crypto-shredding.md): a PII field's value encrypted with its
/// subject's data key (AES-256-GCM, a fresh random nonce per value), written as text:
///
///     lethe:v1:<base64url without padding of: key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag (16)>
///
/// The plaintext is one kind byte (`s` text, `n` JSON number, `b` JSON literal `true`/`false`)
/// followed by the value's bytes (text: UTF-8, unescaped). The associated data binds the value to
/// its dataset, field and subject (`associatedData`): moved to another field, dataset or subject,
/// it no longer opens. The key id names the data key that sealed it: a subject whose key was
/// destroyed and who was protected again later has a new key id, and old values stay unreadable.
public enum ProtectedValue {
    /// The text every protected value starts with.
    public static let prefix: [UInt8] = Array("lethe:v1:".utf8)
    public static let keyIDSize = 8
    public static let nonceSize = 12
    public static let tagSize = 16
    /// The smallest payload (an empty value still has its kind byte).
    static let minimumPayload = keyIDSize + nonceSize + 1 + tagSize

    /// What the plaintext's value is, so that `reveal` writes it back as it was.
    public enum Kind: UInt8, Sendable {
        /// Text (a JSON string's unescaped content, a CSV field).
        case text = 0x73
        /// A JSON number's literal.
        case number = 0x6E
        /// A JSON literal (`true`, `false`).
        case literal = 0x62
    }

    /// A subject's data key: its id (recorded in each value it seals) and the AES-256 key.
    public struct DataKey: Sendable {
        public let id: [UInt8]
        public let key: SymmetricKey
        public init(id: [UInt8], key: SymmetricKey) {
            precondition(id.count == ProtectedValue.keyIDSize, "a data key id has 8 bytes")
            self.id = id
            self.key = key
        }
        /// A data key from its 32 bytes.
        public init(id: [UInt8], bytes: [UInt8]) {
            precondition(bytes.count == 32, "a data key has 32 bytes")
            self.init(id: id, key: SymmetricKey(data: bytes))
        }
    }

    /// The associated data of a value: `lethe:v1`, then the dataset name and the field path, each
    /// as a 4-byte big-endian length and its UTF-8 bytes, then the subject key's 32 bytes and the
    /// key id's 8.
    public static func associatedData(dataset: String, field: String, subject: SubjectKey, keyID: [UInt8]) -> [UInt8] {
        var b = Array("lethe:v1".utf8)
        for part in [Array(dataset.utf8), Array(field.utf8)] {
            let n = UInt32(part.count)
            b += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            b += part
        }
        return b + subject.bytes + keyID
    }

    /// True when `bytes` start with `lethe:v1:` (a value `protect` leaves as it is).
    public static func isProtected(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        for i in 0..<prefix.count where bytes[i] != prefix[i] { return false }
        return true
    }

    public static func isProtected(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { isProtected($0) } }

    /// Seals `value` of `kind` with `key`; appends the text form to `out`. The nonce comes from
    /// `nonces` (a stream's buffer of random bytes) when given, else from the system's generator.
    public static func seal(
        _ value: UnsafeRawBufferPointer, kind: Kind, key: DataKey, dataset: String, field: String, subject: SubjectKey,
        nonces: NonceSource? = nil, into out: inout [UInt8]
    ) throws {
        var plain = [UInt8]()
        plain.reserveCapacity(value.count + 1)
        plain.append(kind.rawValue)
        plain.append(contentsOf: value)
        let aad = associatedData(dataset: dataset, field: field, subject: subject, keyID: key.id)
        let box: AES.GCM.SealedBox
        do {
            if let nonces {
                box = try AES.GCM.seal(plain, using: key.key, nonce: try nonces.take(), authenticating: aad)
            } else {
                box = try AES.GCM.seal(plain, using: key.key, authenticating: aad)
            }
        } catch {
            throw LetheError(.failure, "cannot encrypt a value of field `\(field)` (dataset `\(dataset)`): \(error)")
        }
        var payload = key.id
        payload.reserveCapacity(keyIDSize + nonceSize + plain.count + tagSize)
        payload += box.nonce.withUnsafeBytes { Array($0) }
        payload += box.ciphertext
        payload += box.tag
        out += prefix
        Base64URL.encode(payload, into: &out)
    }

    /// `seal` into a new array.
    public static func seal(_ value: [UInt8], kind: Kind, key: DataKey, dataset: String, field: String, subject: SubjectKey) throws -> [UInt8] {
        var out: [UInt8] = []
        try value.withUnsafeBytes { try seal($0, kind: kind, key: key, dataset: dataset, field: field, subject: subject, into: &out) }
        return out
    }

    /// The parts of a protected value's text.
    public struct Parsed: Sendable, Equatable {
        public var keyID: [UInt8]
        public var nonce: [UInt8]
        public var ciphertext: [UInt8]
        public var tag: [UInt8]
    }

    /// Parses the text form; `.corrupt` naming what is wrong (never the value).
    public static func parse(_ text: UnsafeRawBufferPointer) throws -> Parsed {
        guard isProtected(text) else { throw LetheError(.corrupt, "not a protected value (no `lethe:v1:` prefix)") }
        guard let payload = Base64URL.decode(UnsafeRawBufferPointer(rebasing: text[prefix.count...])) else {
            throw LetheError(.corrupt, "a protected value is not valid base64url after `lethe:v1:`")
        }
        guard payload.count >= minimumPayload else {
            throw LetheError(.corrupt, "a protected value is too short (\(payload.count) bytes; at least \(minimumPayload))")
        }
        let n = payload.count
        return Parsed(
            keyID: Array(payload[0..<keyIDSize]), nonce: Array(payload[keyIDSize..<(keyIDSize + nonceSize)]),
            ciphertext: Array(payload[(keyIDSize + nonceSize)..<(n - tagSize)]), tag: Array(payload[(n - tagSize)...]))
    }

    public static func parse(_ text: [UInt8]) throws -> Parsed { try text.withUnsafeBytes { try parse($0) } }

    /// Opens a parsed value with its subject's data key. `.notFound` when the value was sealed by
    /// another key (`keyID` differs: a destroyed key's successor); `.corrupt` when the value was
    /// altered or belongs to another dataset, field or subject (the associated data differs).
    public static func open(_ p: Parsed, key: DataKey, dataset: String, field: String, subject: SubjectKey) throws -> (kind: Kind, value: [UInt8]) {
        guard p.keyID == key.id else {
            throw LetheError(.notFound, "the value of field `\(field)` was sealed by data key \(Hex.encode(p.keyID)), not the subject's current key")
        }
        let aad = associatedData(dataset: dataset, field: field, subject: subject, keyID: p.keyID)
        let plain: Data
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: p.nonce), ciphertext: p.ciphertext, tag: p.tag)
            plain = try AES.GCM.open(box, using: key.key, authenticating: aad)
        } catch {
            throw LetheError(
                .corrupt,
                "the value of field `\(field)` (dataset `\(dataset)`) does not open: altered, or moved from another field, dataset or subject")
        }
        guard let first = plain.first, let kind = Kind(rawValue: first) else {
            throw LetheError(.corrupt, "the value of field `\(field)` opens to an unknown kind of value")
        }
        return (kind, Array(plain.dropFirst()))
    }
}

/// Base64url (RFC 4648 §5) without padding, on bytes.
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let reverse: [UInt8] = {
        var r = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { r[Int(c)] = UInt8(i) }
        return r
    }()

    public static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        bytes.withUnsafeBytes { encode($0, into: &out) }
    }

    /// Appends the encoding of `bytes` to `out`, written in place (no per-character append).
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let n = bytes.count
        let m = n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: m))
        alphabet.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { o in
                var j = start
                var i = 0
                while i + 3 <= n {
                    let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                    o[j + 2] = a[Int(v >> 6 & 63)]
                    o[j + 3] = a[Int(v & 63)]
                    i += 3
                    j += 4
                }
                if n - i == 1 {
                    let v = UInt32(bytes[i]) << 16
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                } else if n - i == 2 {
                    let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
                    o[j] = a[Int(v >> 18)]
                    o[j + 1] = a[Int(v >> 12 & 63)]
                    o[j + 2] = a[Int(v >> 6 & 63)]
                }
            }
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for a character outside the alphabet, padding, or a length of 1 mod 4.
    public static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        var out: [UInt8] = []
        return decode(text, into: &out) ? out : nil
    }

    /// Decodes into `out` (replacing its content, keeping its capacity); false when `text` is not
    /// base64url without padding (see `decode`).
    public static func decode(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        let n = text.count
        out.removeAll(keepingCapacity: true)
        guard n % 4 != 1 else { return false }
        let m = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1)
        out.append(contentsOf: repeatElement(0, count: m))
        let ok = reverse.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o -> Bool in
                var acc: UInt32 = 0, bits = 0, j = 0
                for c in text {
                    let v = r[Int(c)]
                    if v == 0xFF { return false }
                    acc = acc << 6 | UInt32(v)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        o[j] = UInt8(truncatingIfNeeded: acc >> UInt32(bits))
                        j += 1
                    }
                }
                // Leftover bits must be zero (one encoding per payload).
                return !(bits > 0 && acc & ((1 << UInt32(bits)) - 1) != 0)
            }
        }
        if !ok { out.removeAll(keepingCapacity: true) }
        return ok
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        return u.withUnsafeBytes { decode($0) }
    }
}

/// Random 96-bit GCM nonces for one stream (one `RecordCrypter`), from the C sealer's generator
/// (`lethe_nonces`, docs/crypto-shredding.md "Nonces"): AES-256 in counter mode under a key drawn from the
/// kernel's CSPRNG (`getrandom(2)`), a new key every 4,096 refills of 340 nonces, each nonce 12 bytes of
/// keystream used once. Its memory is wiped on `fork` (`MADV_WIPEONFORK`): a forked child draws from the
/// kernel instead of repeating the parent's nonces. Without AES-NI or without `MADV_WIPEONFORK` (and with
/// `kernelOnly`), every 340 nonces are drawn from `getrandom(2)` as before. Either way each nonce is
/// indistinguishable from uniform, so the bound stays that of random nonces: 2^32 values a key. Not shared
/// between threads.
public final class NonceSource {
    let state: UnsafeMutablePointer<lethe_nonces>

    /// `kernelOnly`: every nonce from `getrandom(2)` (tests, the earlier behaviour).
    public init(kernelOnly: Bool = false) {
        guard let s = lethe_nonces_new(kernelOnly ? 1 : 0) else { fatalError("cannot allocate a nonce source") }
        state = s
    }

    deinit { lethe_nonces_free(state) }

    /// Whether this source makes its nonces in user space (AES-256-CTR) rather than drawing each batch
    /// from the kernel.
    public var isUserSpace: Bool { lethe_nonces_user_space(state) != 0 }

    /// The next nonce's 12 bytes, valid until the next call.
    @inline(__always)
    public func nextNonce() throws -> UnsafePointer<UInt8> {
        guard let p = lethe_nonce_next(state) else { throw LetheError(.failure, "cannot draw random nonces (getrandom: errno \(errno))") }
        return p
    }

    func take() throws -> AES.GCM.Nonce {
        let p = try nextNonce()
        return try AES.GCM.Nonce(data: UnsafeRawBufferPointer(start: p, count: ProtectedValue.nonceSize))
    }
}

/// The hot path of `protect` and `reveal` (one per stream, not shared between threads): seals and
/// opens values in the format of `ProtectedValue` with no heap allocation per value. Each distinct
/// subject of a chunk has its data key prepared once into a *slot* (AES key schedule and H^1..H^4, and
/// the associated data's subject-and-key-id tail; ≈ 65 ns); each value then costs one call into
/// `CLetheSeal` (its own AES-256-GCM on AES-NI + PCLMULQDQ, OpenSSL's EVP otherwise) that writes the
/// `lethe:v1:` text straight into the caller's buffer. The associated data's dataset-and-field part is
/// made once per field. Slots are not kept across chunks (preparing a key costs less than finding it
/// again): after a chunk the sealer holds only that chunk's keys. Same bytes as `ProtectedValue.seal`/
/// `open`, which stay on swift-crypto (ProtectedValueTests check the two against each other).
public final class ValueSealer {
    /// A prepared key (the C sealer's) and the associated data's tail (subject key ‖ key id).
    public struct Slot {
        let key: OpaquePointer
        let tail: UnsafeMutablePointer<UInt8>
    }

    let dataset: String
    let fields: [String]
    /// Per field: `lethe:v1` ‖ len ‖ dataset ‖ len ‖ field (the associated data without subject and key id).
    let aadPrefix: UnsafeMutablePointer<UInt8>
    let aadStart: [Int]
    let aadLength: [Int]
    /// The prepared keys (slot `i` for the `i`-th subject of a chunk); grown, never shrunk.
    public private(set) var slots: [Slot] = []
    /// `open`'s value when it is called with a key rather than a slot (prepared each call).
    var scratch: [UInt8] = []

    /// Whether this sealer's keys take the AES-NI route (else OpenSSL's EVP interface).
    public let usesAESNI: Bool
    let evp: Bool

    /// `evp`: take OpenSSL's EVP route even when the CPU has AES-NI (tests: both routes, same bytes).
    public init(dataset: String, fields: [String], evp: Bool = false) {
        self.evp = evp
        self.usesAESNI = !evp && Self.cpuHasAESNI
        self.dataset = dataset
        self.fields = fields
        let prefixes = fields.map { f in
            let full = ProtectedValue.associatedData(
                dataset: dataset, field: f, subject: SubjectKey(bytes: [UInt8](repeating: 0, count: 32)), keyID: [UInt8](repeating: 0, count: 8))
            return Array(full.dropLast(40))
        }
        var start: [Int] = []
        var at = 0
        for p in prefixes {
            start.append(at)
            at += p.count
        }
        aadPrefix = .allocate(capacity: max(at, 1))
        for (i, p) in prefixes.enumerated() { (aadPrefix + start[i]).initialize(from: p, count: p.count) }
        aadStart = start
        aadLength = prefixes.map(\.count)
    }

    deinit {
        for s in slots {
            lethe_seal_key_free(s.key)
            s.tail.deallocate()
        }
        aadPrefix.deallocate()
    }

    /// Whether the CPU has AES-NI, PCLMULQDQ, SSSE3 and SSE4.1: values are then sealed by the C sealer's
    /// own GCM, else through OpenSSL's EVP interface.
    public static var cpuHasAESNI: Bool { lethe_seal_uses_aesni() != 0 }

    /// The length of the text form of a value of `count` bytes.
    public static func sealedLength(_ count: Int) -> Int { lethe_seal_text_len(count) }

    /// Prepares slot `index` for `subject`'s data key `key` and returns it.
    @discardableResult
    public func prepare(slot index: Int, key: ProtectedValue.DataKey, subject: SubjectKey) throws -> Slot {
        while slots.count <= index {
            guard let k = lethe_seal_key_new(evp ? 1 : 0) else { throw LetheError(.failure, "cannot allocate an AES-GCM context") }
            slots.append(Slot(key: k, tail: .allocate(capacity: 40)))
        }
        let slot = slots[index]
        prepared += 1
        live = max(live, index + 1)
        let ok = key.key.withUnsafeBytes { b in b.count == 32 ? lethe_seal_key_set(slot.key, b.baseAddress!.assumingMemoryBound(to: UInt8.self)) : 0 }
        guard ok == 1 else { throw LetheError(.failure, "cannot prepare the data key of subject \(subject.short) (dataset `\(dataset)`)") }
        let t = UnsafeMutableRawPointer(slot.tail)
        t.storeBytes(of: subject.w0.bigEndian, toByteOffset: 0, as: UInt64.self)
        t.storeBytes(of: subject.w1.bigEndian, toByteOffset: 8, as: UInt64.self)
        t.storeBytes(of: subject.w2.bigEndian, toByteOffset: 16, as: UInt64.self)
        t.storeBytes(of: subject.w3.bigEndian, toByteOffset: 24, as: UInt64.self)
        (slot.tail + 32).update(from: key.id, count: ProtectedValue.keyIDSize)
        return slot
    }

    /// Prepares slot `index` from 40 bytes: the 32 key bytes, then the 8 key-id bytes (`DataKeyBatch`).
    public func prepare(slot index: Int, material: UnsafeRawPointer, subject: SubjectKey) throws {
        while slots.count <= index {
            guard let k = lethe_seal_key_new(evp ? 1 : 0) else { throw LetheError(.failure, "cannot allocate an AES-GCM context") }
            slots.append(Slot(key: k, tail: .allocate(capacity: 40)))
        }
        let slot = slots[index]
        prepared += 1
        live = max(live, index + 1)
        guard lethe_seal_key_set(slot.key, material.assumingMemoryBound(to: UInt8.self)) == 1 else {
            throw LetheError(.failure, "cannot prepare the data key of subject \(subject.short) (dataset `\(dataset)`)")
        }
        let t = UnsafeMutableRawPointer(slot.tail)
        t.storeBytes(of: subject.w0.bigEndian, toByteOffset: 0, as: UInt64.self)
        t.storeBytes(of: subject.w1.bigEndian, toByteOffset: 8, as: UInt64.self)
        t.storeBytes(of: subject.w2.bigEndian, toByteOffset: 16, as: UInt64.self)
        t.storeBytes(of: subject.w3.bigEndian, toByteOffset: 24, as: UInt64.self)
        (t + 32).copyMemory(from: material + 32, byteCount: ProtectedValue.keyIDSize)
    }

    // MARK: Slots of a chunk

    /// Keys prepared since the sealer was made (tests, figures).
    public private(set) var prepared = 0
    /// Slots `0..<live` may hold prepared keys (those of the current chunk); the rest are wiped. A
    /// crypter wipes the slots its previous chunk used beyond the current chunk's, so that the sealer
    /// never holds a key its key source did not give for the current chunk (a destroyed key leaves at
    /// the next chunk).
    public private(set) var live = 0

    /// Overwrites the prepared keys of slots `from…` (an all-zero key, then unprepared: sealing with them fails).
    public func wipe(from start: Int = 0) {
        guard start < live else {
            live = max(live, start)
            return
        }
        for i in start..<live { lethe_seal_key_wipe(slots[i].key) }
        live = start
    }

    /// Slots allocated (tests).
    public var slotCount: Int { slots.count }

    /// Seals `value` of `kind` for field `field` (an index into `fields`) with the prepared `slot`;
    /// writes the text form at `out` (room for `sealedLength(value.count)` bytes) and returns its length.
    public func seal(
        _ value: UnsafeRawBufferPointer, kind: ProtectedValue.Kind, slot: Slot, field: Int, nonce: UnsafePointer<UInt8>, to out: UnsafeMutablePointer<UInt8>
    ) throws -> Int {
        let n = lethe_seal(
            slot.key, nonce, aadPrefix + aadStart[field], aadLength[field], slot.tail, kind.rawValue, value.baseAddress?.assumingMemoryBound(to: UInt8.self),
            value.count, out)
        guard n >= 0 else { throw LetheError(.failure, "cannot encrypt a value of field `\(fields[field])` (dataset `\(dataset)`)") }
        return n
    }

    /// Opens the text form of a value of field `field` with the prepared `slot`: writes the value at
    /// `out` (room for `text.count` bytes) and returns its kind and length. `.notFound` for a value
    /// sealed by another key id, `.corrupt` for one that is malformed or does not open.
    public func open(_ text: UnsafeRawBufferPointer, slot: Slot, field: Int, to out: UnsafeMutablePointer<UInt8>) throws -> (ProtectedValue.Kind, Int) {
        var kind: UInt8 = 0
        var other: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &other) { id in
            lethe_open(
                slot.key, text.baseAddress?.assumingMemoryBound(to: UInt8.self), text.count, aadPrefix + aadStart[field], aadLength[field], slot.tail,
                &kind, id.baseAddress!.assumingMemoryBound(to: UInt8.self), out)
        }
        if n >= 0, let k = ProtectedValue.Kind(rawValue: kind) { return (k, n) }
        let name = fields[field]
        if n == Int(LETHE_OPEN_FORMAT) {
            _ = try ProtectedValue.parse(text)  // throws the precise reason
            throw LetheError(.corrupt, "a protected value is malformed")
        } else if n == Int(LETHE_OPEN_OTHER_KEY) {
            let id = withUnsafeBytes(of: &other) { Array($0) }
            throw LetheError(.notFound, "the value of field `\(name)` was sealed by data key \(Hex.encode(id)), not the subject's current key")
        } else if n == Int(LETHE_OPEN_NOMEM) {
            throw LetheError(.failure, "cannot allocate memory to open a value of field `\(name)`")
        } else if n >= 0 {
            throw LetheError(.corrupt, "the value of field `\(name)` opens to an unknown kind of value")
        }
        throw LetheError(
            .corrupt, "the value of field `\(name)` (dataset `\(dataset)`) does not open: altered, or moved from another field, dataset or subject")
    }

    /// Seals `value` of `kind` for field `field` under `key`; appends the text form to `out` (slot 0 is
    /// prepared for the key each call: for tests and single values).
    public func seal(
        _ value: UnsafeRawBufferPointer, kind: ProtectedValue.Kind, key: ProtectedValue.DataKey, field: Int, subject: SubjectKey, nonces: NonceSource,
        into out: inout [UInt8]
    ) throws {
        let slot = try prepare(slot: 0, key: key, subject: subject)
        let start = out.count
        let m = Self.sealedLength(value.count)
        out.append(contentsOf: repeatElement(0, count: m))
        let nonce = try nonces.nextNonce()
        let n = try out.withUnsafeMutableBufferPointer { o in try seal(value, kind: kind, slot: slot, field: field, nonce: nonce, to: o.baseAddress! + start) }
        out.removeLast(m - n)
    }

    /// Opens the text form of a value of field `field` under `key`; `body` gets its kind and bytes
    /// (valid only in the call). Errors as `open(_:slot:field:to:)`.
    public func open<R>(
        _ text: UnsafeRawBufferPointer, key: ProtectedValue.DataKey, field: Int, subject: SubjectKey,
        _ body: (ProtectedValue.Kind, UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        let slot = try prepare(slot: 0, key: key, subject: subject)
        if scratch.count < max(text.count, 16) { scratch = [UInt8](repeating: 0, count: max(text.count, 16)) }
        return try scratch.withUnsafeMutableBufferPointer { s in
            let (kind, n) = try open(text, slot: slot, field: field, to: s.baseAddress!)
            return try body(kind, UnsafeRawBufferPointer(start: s.baseAddress!, count: n))
        }
    }
}
