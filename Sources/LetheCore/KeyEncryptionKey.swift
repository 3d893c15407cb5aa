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
}

/// Looks up (and for `protect`, creates) subjects' data keys: the vault (`LetheEngine.Vault`).
public protocol DataKeySource: Sendable {
    /// The current data key of each subject that has one; with `create`, a subject without a key
    /// gets a new one (wrapped and stored first). Subjects absent from the answer have no key
    /// (never protected, or forgotten).
    func dataKeys(for subjects: [SubjectKey], create: Bool) async throws -> [SubjectKey: ProtectedValue.DataKey]
}

/// The embedded KEK: a 32-byte key in a file of mode 0600 next to the state (`vault.key`, created
/// on first use exclusively and whole, as the state's other keys are), wrapping data keys with
/// AES-256 key wrap (RFC 3394, 40 bytes) under a key derived from the KEK, the subject and the key id.
/// Rows of the first cut hold AES-256-GCM wrappings (60 bytes); they still open.
public struct FileKeyEncryptionKey: KeyEncryptionKey {
    public let name: String
    let key: SymmetricKey
    /// The key file's path (messages only).
    public let path: String

    /// The file's name inside the keys folder.
    public static let fileName = "vault.key"

    public init(key: [UInt8], path: String) {
        precondition(key.count == 32, "a KEK has 32 bytes")
        self.key = SymmetricKey(data: key)
        self.path = path
        self.name = "file:" + StateSecrets.fingerprint(key)
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

    public func unwrap(_ wrapped: [UInt8], _ context: WrapContext) async throws -> [UInt8] {
        do {
            switch wrapped.count {
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
