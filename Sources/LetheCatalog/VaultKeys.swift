public import LetheCore

// Crypto-shredding's key store (issue 15): each subject's data key, wrapped by the key-encryption key,
// keyed by the subject's keyed hash (never the raw id). Destroying a subject's row is what forgets its
// protected values everywhere (docs/crypto-shredding.md).

/// One subject's wrapped data key as stored.
///
/// Two kinds of rows (`v13-vault-prefix`, docs/crypto-shredding.md "Key store size"): a compact row
/// keyed by the first `prefixSize` bytes of the subject key (`exact == false`: the file KEK's 32-byte
/// wrapping, whose key id is a check of the full subject key, proves which subject owns it), and an
/// exact row keyed by the whole subject key (`exact == true`: KMS blobs, wrappings written before
/// v13, and the rare subject whose prefix another subject's row already holds).
public struct WrappedDataKey: Sendable, Equatable {
    /// The subject asked for (a compact row matched by its prefix: ownership is the KEK's to prove).
    public var subject: SubjectKey
    /// The key's id (8 bytes), recorded in every value it seals.
    public var keyID: [UInt8]
    /// The KEK that wrapped it (`KeyEncryptionKey.name`).
    public var kek: String
    public var wrapped: [UInt8]
    /// When the key was made (exact rows; 0 for compact rows, which do not store it).
    public var createdAt: Int64
    /// True: the row is keyed by the whole subject key; false: by its first `prefixSize` bytes.
    public var exact: Bool
    public init(subject: SubjectKey, keyID: [UInt8], kek: String, wrapped: [UInt8], createdAt: Int64, exact: Bool = true) {
        self.subject = subject; self.keyID = keyID; self.kek = kek; self.wrapped = wrapped; self.createdAt = createdAt; self.exact = exact
    }
    /// The bytes of the subject key a compact row is keyed by.
    public static let prefixSize = VaultRow.prefixSize
    /// The row's key: the whole subject key, or its prefix.
    public var rowKey: [UInt8] { exact ? subject.bytes : Array(subject.bytes.prefix(Self.prefixSize)) }
}

/// The key store, read.
public protocol VaultKeyReader: Sendable {
    /// The wrapped keys of those subjects that have one.
    func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey]
    /// How many subjects hold a key.
    func vaultKeyCount() async throws -> Int64
    /// How many keys each KEK wraps (by name).
    func vaultKeyCountsByKEK() async throws -> [String: Int64]
    /// Up to `limit` rows wrapped by KEK `kek`, in row-key order after `after` (exact rows, then compact).
    func vaultRows(kek: String, after: VaultRow?, limit: Int) async throws -> [VaultRow]
}

/// The key store, written inside a transaction.
public protocol VaultKeyWriter {
    func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey]
    /// Stores the keys of subjects that hold none; a subject that holds one keeps it. Returns the
    /// key each subject holds afterwards (the stored one where another writer came first).
    func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey]
    /// Destroys the keys of these subjects (their rows deleted; the store overwrites freed space where
    /// it can): a subject's exact row, or when it has none the compact row of its prefix. Returns the
    /// subjects that held one. `destroyKeys(_:)` is the form that never touches another subject's row.
    func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey]
    /// Destroys exactly these rows (as read: same row key, key id and wrapping; a row changed since
    /// is left). Returns the subjects whose row was deleted.
    func destroyKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey]
    /// KEK rotation: replaces `row`'s wrapping and KEK when the row is still as read. True when replaced.
    func rewrapKey(_ row: VaultRow, kek: String, wrapped: [UInt8]) throws -> Bool
}

/// A store without a key store (in-memory doubles): reads find nothing, writes are refused.
public struct NoVaultKeys: VaultKeyReader, VaultKeyWriter {
    public init() {}
    public func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey] { [:] }
    public func vaultKeyCount() async throws -> Int64 { 0 }
    public func vaultKeyCountsByKEK() async throws -> [String: Int64] { [:] }
    public func vaultRows(kek: String, after: VaultRow?, limit: Int) async throws -> [VaultRow] { [] }
    public func destroyKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey] { [] }
    public func rewrapKey(_ row: VaultRow, kek: String, wrapped: [UInt8]) throws -> Bool { false }
    public func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] { [:] }
    public func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey] {
        throw LetheError(.unsupported, "this state store keeps no crypto-shredding keys")
    }
    public func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey] { [] }
}

extension StateStore {
    public var vault: any VaultKeyReader { NoVaultKeys() }
}

extension StateTransaction {
    public var vault: any VaultKeyWriter { NoVaultKeys() }
}
