public import LetheCore

// Crypto-shredding's key store (issue 15): each subject's data key, wrapped by the key-encryption key,
// keyed by the subject's keyed hash (never the raw id). Destroying a subject's row is what forgets its
// protected values everywhere (docs/crypto-shredding.md).

/// One subject's wrapped data key as stored.
public struct WrappedDataKey: Sendable, Equatable {
    public var subject: SubjectKey
    /// The key's id (8 bytes), recorded in every value it seals.
    public var keyID: [UInt8]
    /// The KEK that wrapped it (`KeyEncryptionKey.name`).
    public var kek: String
    public var wrapped: [UInt8]
    public var createdAt: Int64
    public init(subject: SubjectKey, keyID: [UInt8], kek: String, wrapped: [UInt8], createdAt: Int64) {
        self.subject = subject; self.keyID = keyID; self.kek = kek; self.wrapped = wrapped; self.createdAt = createdAt
    }
}

/// The key store, read.
public protocol VaultKeyReader: Sendable {
    /// The wrapped keys of those subjects that have one.
    func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey]
    /// How many subjects hold a key.
    func vaultKeyCount() async throws -> Int64
}

/// The key store, written inside a transaction.
public protocol VaultKeyWriter {
    func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey]
    /// Stores the keys of subjects that hold none; a subject that holds one keeps it. Returns the
    /// key each subject holds afterwards (the stored one where another writer came first).
    func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey]
    /// Destroys the keys of these subjects (their rows deleted; the store overwrites freed space where
    /// it can). Returns the subjects that held one.
    func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey]
}

/// A store without a key store (in-memory doubles): reads find nothing, writes are refused.
public struct NoVaultKeys: VaultKeyReader, VaultKeyWriter {
    public init() {}
    public func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey] { [:] }
    public func vaultKeyCount() async throws -> Int64 { 0 }
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
