import CLetheSHA
import Crypto
import Foundation

/// What a data key is wrapped for: its subject (keyed hash) and its id. A wrapping binds both
/// (associated data, or KMS's encryption context): a wrapped key copied to another subject's row
/// does not unwrap.
public struct WrapContext: Sendable, Equatable {
    public var subject: SubjectKey
    public var keyID: [UInt8]
    public init(subject: SubjectKey, keyID: [UInt8]) {
        self.subject = subject
        self.keyID = keyID
    }
}

/// The key-encryption key (KEK) that wraps the per-subject data keys: a local key file
/// (`FileKeyEncryptionKey`, the embedded default) or AWS KMS (`KMSKeyEncryptionKey`, LetheS3).
/// Data keys live wrapped in the state store; only a holder of the KEK can use them.
public protocol KeyEncryptionKey: Sendable {
    /// How the state records the KEK a key was wrapped by: `file:<fingerprint>`, `kms:<key id>`.
    var name: String { get }
    /// A new 32-byte data key, in plain and wrapped.
    func generateDataKey(_ context: WrapContext) async throws -> (plain: [UInt8], wrapped: [UInt8])
    /// Unwraps a data key this KEK wrapped (`.corrupt` when it does not open under `context`).
    func unwrap(_ wrapped: [UInt8], _ context: WrapContext) async throws -> [UInt8]
    /// A new data key for `subject`, as the vault stores it: its id, the key, its wrapping, and
    /// whether its row is keyed by the whole subject key (`exact`) or by a prefix (see `WrappedDataKey`).
    func newDataKey(subject: SubjectKey) async throws -> NewDataKey
    /// KEK rotation: `row`'s wrapping under `target` (a KEK of the same kind), the key id unchanged.
    func rewrap(_ row: VaultRow, to target: any KeyEncryptionKey) async throws -> [UInt8]
}

/// A data key just made (`KeyEncryptionKey.newDataKey`).
public struct NewDataKey: Sendable {
    public var keyID: [UInt8]
    public var plain: [UInt8]
    public var wrapped: [UInt8]
    public var exact: Bool
    public init(keyID: [UInt8], plain: [UInt8], wrapped: [UInt8], exact: Bool) {
        self.keyID = keyID; self.plain = plain; self.wrapped = wrapped; self.exact = exact
    }
}

extension KeyEncryptionKey {
    /// A random 8-byte key id, the key from `generateDataKey`, an exact row (KMS: the blob is bound to
    /// the whole subject key by its encryption context).
    public func newDataKey(subject: SubjectKey) async throws -> NewDataKey {
        var id = [UInt8](repeating: 0, count: ProtectedValue.keyIDSize)
        var rng = SystemRandomNumberGenerator()
        for i in id.indices { id[i] = UInt8.random(in: 0...255, using: &rng) }
        let (plain, wrapped) = try await generateDataKey(WrapContext(subject: subject, keyID: id))
        return NewDataKey(keyID: id, plain: plain, wrapped: wrapped, exact: true)
    }
}

/// A stored row's key and id, as KEK rotation reads them (no subject: a compact row holds a prefix).
public struct VaultRow: Sendable, Equatable {
    /// 32 bytes (a row keyed by the whole subject key) or `prefixSize` (a compact row).
    public var rowKey: [UInt8]
    public var keyID: [UInt8]
    public var kek: String
    public var wrapped: [UInt8]
    public var exact: Bool { rowKey.count == 32 }
    public static let prefixSize = 12
    public init(rowKey: [UInt8], keyID: [UInt8], kek: String, wrapped: [UInt8]) {
        self.rowKey = rowKey; self.keyID = keyID; self.kek = kek; self.wrapped = wrapped
    }
}

/// Looks up (and for `protect`, creates) subjects' data keys: the vault (`LetheEngine.Vault`).
public protocol DataKeySource: Sendable {
    /// The current data key of each subject that has one; with `create`, a subject without a key
    /// gets a new one (wrapped and stored first). Subjects absent from the answer have no key
    /// (never protected, or forgotten).
    func dataKeys(for subjects: [SubjectKey], create: Bool) async throws -> [SubjectKey: ProtectedValue.DataKey]
    /// The same answer laid out in `batch`, aligned with `subjects` (subject `i`'s key at index `i`):
    /// the hot path's form (no dictionary, no object per key). A default lays out `dataKeys(for:create:)`.
    func dataKeys(for subjects: [SubjectKey], create: Bool, into batch: inout DataKeyBatch) async throws
}

/// The embedded KEK: a 32-byte key in a file of mode 0600 next to the state (`vault.key`, created
/// on first use exclusively and whole, as the state's other keys are).
///
/// New data keys (`newDataKey`, v3, 32 bytes): the key id is a check of the key and the whole subject
/// key, `HMAC-SHA256(key: data key, "lethe:key-id:v3" ‖ subject key)` cut to 8 bytes; the wrapping is
/// the data key XOR a one-time pad `HKDF-SHA256(KEK, info: "lethe:dek:v3" ‖ first 12 bytes of the
/// subject key ‖ key id)`. The pad is a PRF output on an input no other row shares (a new key has a
/// new id), so the wrapping reveals nothing without the KEK; unwrapping recomputes the id and refuses
/// a row whose id does not match (altered, or another subject's row sharing the prefix: the odds of a
/// false match are 2^-64). The pad takes the prefix, not the whole subject key, so that rotation
/// (`rewrap`) can re-wrap a compact row without knowing its subject. Every value sealed by the key is
/// authenticated by its own GCM tag, which binds the key, the subject and the key id too.
///
/// Older wrappings still open: AES-256 key wrap (RFC 3394, 40 bytes, `v12-vault-compact`) and the
/// first cut's AES-256-GCM (60 bytes), both under keys bound to the whole subject key.
public struct FileKeyEncryptionKey: KeyEncryptionKey {
    public let name: String
    let key: SymmetricKey
    /// The key file's path (messages only).
    public let path: String
    /// HKDF-SHA256's pseudo-random key of the KEK (extract, no salt), absorbed as an HMAC key once:
    /// a v3 pad is then one HMAC of a 33-byte message (`pad`), in C.
    let padKey: lethe_hmac_sha256_key

    /// The file's name inside the keys folder.
    public static let fileName = "vault.key"

    public init(key: [UInt8], path: String) {
        precondition(key.count == 32, "a KEK has 32 bytes")
        self.key = SymmetricKey(data: key)
        self.path = path
        self.name = "file:" + StateSecrets.fingerprint(key)
        // HKDF-Extract without salt: HMAC under an empty key (RFC 5869 §2.2: HashLen zeros, the same key).
        var empty = lethe_hmac_sha256_key()
        lethe_hmac_sha256_init(&empty, nil, 0)
        var prk = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBufferPointer { k in prk.withUnsafeMutableBufferPointer { lethe_hmac_sha256(&empty, k.baseAddress, k.count, $0.baseAddress!) } }
        var pk = lethe_hmac_sha256_key()
        prk.withUnsafeBufferPointer { lethe_hmac_sha256_init(&pk, $0.baseAddress, 32) }
        prk.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        self.padKey = pk
    }

    /// Reads `path`, or creates it (0600) when it does not exist and `create` is true.
    public static func load(path: String, create: Bool) throws -> FileKeyEncryptionKey {
        if let k = try StateSecrets.readKey(path) { return FileKeyEncryptionKey(key: k, path: path) }
        guard create else {
            throw LetheError(
                .notFound,
                "no vault key file: nothing was protected with this state yet (or the file was lost: then no protected value can be read again)",
                at: path)
        }
        do {
            return FileKeyEncryptionKey(key: try StateSecrets.createKey(path), path: path)
        } catch let e as LetheError where e.code == .conflict {
            // Another process created it meanwhile.
            guard let k = try StateSecrets.readKey(path) else { throw e }
            return FileKeyEncryptionKey(key: k, path: path)
        }
    }

    static func aad(_ c: WrapContext) -> [UInt8] { Array("lethe:dek:v1".utf8) + c.subject.bytes + c.keyID }

    /// The key that wraps one subject's data key: HKDF-SHA256 of the KEK with the subject and key id
    /// as info. AES key wrap (RFC 3394) takes no associated data; deriving the wrapping key from the
    /// context binds the wrapping to it all the same (a wrapped key copied to another row fails the
    /// wrap's integrity check).
    func wrappingKey(_ c: WrapContext) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("lethe:dek:v2".utf8) + c.subject.bytes + c.keyID, outputByteCount: 32)
    }

    public func generateDataKey(_ context: WrapContext) async throws -> (plain: [UInt8], wrapped: [UInt8]) {
        let plain = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return (plain, try wrap(plain, context))
    }

    /// AES-256 key wrap (RFC 3394) of the 32-byte data key: 40 bytes.
    public func wrap(_ plain: [UInt8], _ context: WrapContext) throws -> [UInt8] {
        Array(try AES.KeyWrap.wrap(SymmetricKey(data: plain), using: wrappingKey(context)))
    }

    /// The wrapping of the first cut (AES-256-GCM, 60 bytes): rows written before `v12-vault-compact`
    /// keep it and still open.
    public func wrapLegacyGCM(_ plain: [UInt8], _ context: WrapContext) throws -> [UInt8] {
        let box = try AES.GCM.seal(plain, using: key, authenticating: Self.aad(context))
        guard let combined = box.combined else { throw LetheError.failure("wrapping a data key failed") }
        return Array(combined)
    }

    /// The key id of a v3 data key: a check of the key and the whole subject key.
    /// `HMAC-SHA256(key: plain, "lethe:key-id:v3" ‖ subject key)` cut to 8 bytes (in C: no
    /// swift-crypto generic path per key; `keyIDReference` is the swift-crypto form, for tests).
    public static func keyID(_ plain: [UInt8], subject: SubjectKey) -> [UInt8] {
        precondition(plain.count == 32, "a data key has 32 bytes")
        var k = lethe_hmac_sha256_key()
        plain.withUnsafeBufferPointer { lethe_hmac_sha256_init(&k, $0.baseAddress, 32) }
        var msg = [UInt8](repeating: 0, count: 47)
        msg.withUnsafeMutableBytes { m in
            keyIDLabel.withUnsafeBytes { m.copyMemory(from: $0) }
            m.storeBytes(of: subject.w0.bigEndian, toByteOffset: 15, as: UInt64.self)
            m.storeBytes(of: subject.w1.bigEndian, toByteOffset: 23, as: UInt64.self)
            m.storeBytes(of: subject.w2.bigEndian, toByteOffset: 31, as: UInt64.self)
            m.storeBytes(of: subject.w3.bigEndian, toByteOffset: 39, as: UInt64.self)
        }
        var mac = [UInt8](repeating: 0, count: 32)
        msg.withUnsafeBufferPointer { m in mac.withUnsafeMutableBufferPointer { lethe_hmac_sha256(&k, m.baseAddress, 47, $0.baseAddress!) } }
        withUnsafeMutableBytes(of: &k) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        return Array(mac.prefix(ProtectedValue.keyIDSize))
    }
    static let keyIDLabel: [UInt8] = Array("lethe:key-id:v3".utf8)
    static let padLabel: [UInt8] = Array("lethe:dek:v3".utf8)

    /// `keyID` through swift-crypto (tests: the C path gives the same bytes).
    public static func keyIDReference(_ plain: [UInt8], subject: SubjectKey) -> [UInt8] {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("lethe:key-id:v3".utf8) + subject.bytes, using: SymmetricKey(data: plain))
        return Array(Array(mac).prefix(ProtectedValue.keyIDSize))
    }

    /// The v3 one-time pad of a row: HKDF-SHA256 of the KEK (no salt) with info `lethe:dek:v3` ‖ the
    /// row's subject-key prefix (12 bytes) ‖ key id, 32 bytes: one HMAC of `info ‖ 0x01` under the
    /// prepared pseudo-random key (HKDF-Expand's first block).
    func pad(prefix: [UInt8], keyID: [UInt8]) -> [UInt8] {
        var msg = Self.padLabel
        msg += prefix.prefix(VaultRow.prefixSize)
        msg += keyID
        msg.append(1)
        var out = [UInt8](repeating: 0, count: 32)
        withUnsafePointer(to: padKey) { k in
            msg.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { lethe_hmac_sha256(k, m.baseAddress, m.count, $0.baseAddress!) } }
        }
        return out
    }

    /// `pad` through swift-crypto's HKDF (tests: the C path gives the same bytes).
    public func padReference(prefix: [UInt8], keyID: [UInt8]) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("lethe:dek:v3".utf8) + prefix.prefix(VaultRow.prefixSize) + keyID, outputByteCount: 32
        ).withUnsafeBytes { Array($0) }
    }

    /// `pad` (tests).
    public func padForTests(prefix: [UInt8], keyID: [UInt8]) -> [UInt8] { pad(prefix: prefix, keyID: keyID) }

    static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { zip(a, b).map { $0 ^ $1 } }

    public func newDataKey(subject: SubjectKey) async throws -> NewDataKey {
        let plain = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let id = Self.keyID(plain, subject: subject)
        return NewDataKey(keyID: id, plain: plain, wrapped: Self.xor(plain, pad(prefix: subject.bytes, keyID: id)), exact: false)
    }

    public func rewrap(_ row: VaultRow, to target: any KeyEncryptionKey) async throws -> [UInt8] {
        guard let target = target as? FileKeyEncryptionKey else {
            throw LetheError(.badInput, "a key file's data keys rotate to another key file (`\(target.name)` is not one)")
        }
        if row.wrapped.count == 32 {
            let plain = Self.xor(row.wrapped, pad(prefix: row.rowKey, keyID: row.keyID))
            return Self.xor(plain, target.pad(prefix: row.rowKey, keyID: row.keyID))
        }
        guard row.exact else { throw LetheError(.corrupt, "a compact key row holds a \(row.wrapped.count)-byte wrapping", at: path) }
        let context = WrapContext(subject: SubjectKey(bytes: row.rowKey), keyID: row.keyID)
        return try target.wrap(try await unwrap(row.wrapped, context), context)
    }

    public func unwrap(_ wrapped: [UInt8], _ context: WrapContext) async throws -> [UInt8] {
        do {
            switch wrapped.count {
            case 32:
                let plain = Self.xor(wrapped, pad(prefix: context.subject.bytes, keyID: context.keyID))
                guard Self.keyID(plain, subject: context.subject) == context.keyID else { throw LetheError(.corrupt, "check") }
                return plain
            case 40:
                return try AES.KeyWrap.unwrap(wrapped, using: wrappingKey(context)).withUnsafeBytes { Array($0) }
            case 60:
                let box = try AES.GCM.SealedBox(combined: wrapped)
                return Array(try AES.GCM.open(box, using: key, authenticating: Self.aad(context)))
            default:
                throw LetheError(.corrupt, "a wrapped data key has \(wrapped.count) bytes")
            }
        } catch {
            throw LetheError(
                .corrupt, "a wrapped data key (subject \(context.subject.short)) does not open under this vault key: another `vault.key`, or altered",
                at: path)
        }
    }
}
