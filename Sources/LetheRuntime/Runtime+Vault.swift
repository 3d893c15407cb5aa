import Foundation
public import LetheCore
public import LetheCatalog
import LetheS3
public import LetheEngine

extension Runtime {
    /// The key-encryption key `vault:` names: the local key file (created, mode 0600, when `create`
    /// and it does not exist) or AWS KMS (credentials and region resolved as for S3).
    public static func keyEncryptionKey(_ config: LakeConfig, create: Bool) throws -> any KeyEncryptionKey {
        switch config.vault.kek {
        case .file:
            guard let path = config.vaultKeyFile else {
                throw LetheError(.badInput, "`vault` needs a key file: set `vault.key_file`, or `keys: DIR` with a remote state", at: config.file)
            }
            return try FileKeyEncryptionKey.load(path: path, create: create)
        case .kms(let keyID, let endpoint, let region):
            let settings = try AWSSettings.resolve(region: region, endpoint: endpoint, service: "kms")
            return try KMSKeyEncryptionKey(keyID: keyID, region: settings.region, endpoint: endpoint ?? settings.endpoint, credentials: settings.credentials)
        }
    }

    /// The vault of a lake's state (`protect`, `reveal`, `ingest`). `create`: a missing local key file
    /// is made (protect); reveal opens an existing one only.
    public static func vault(_ config: LakeConfig, state: any StateStore, create: Bool) throws -> Vault {
        Vault(kek: try keyEncryptionKey(config, create: create), others: try rotationTargets(config), state: state, cacheSize: config.vault.cacheSize)
    }

    /// The KEK a rotation under way moves keys to (`vault.key.next` next to a key file), so that
    /// `protect`/`reveal` keep working while `lethe vault rotate-kek` runs.
    static func rotationTargets(_ config: LakeConfig) throws -> [any KeyEncryptionKey] {
        guard case .file = config.vault.kek, let path = config.vaultKeyFile, let k = try StateSecrets.readKey(path + ".next") else { return [] }
        return [FileKeyEncryptionKey(key: k, path: path + ".next")]
    }

    /// The vault of a run (`lethe run`, `verify`, `forget`): with a local key file that exists, so that
    /// a compact key row matched by its prefix is destroyed only when it is the subject's; nil otherwise
    /// (KMS rows are exact: no check needed).
    public static func localVault(_ config: LakeConfig, state: any StateStore) -> Vault? {
        guard case .file = config.vault.kek, let path = config.vaultKeyFile, FileManager.default.fileExists(atPath: path),
            let kek = try? FileKeyEncryptionKey.load(path: path, create: false)
        else { return nil }
        return Vault(kek: kek, others: (try? rotationTargets(config)) ?? [], state: state, cacheSize: config.vault.cacheSize)
    }
}

extension Runtime {
    /// `lethe vault rotate-kek` with a key file (docs/crypto-shredding.md "Rotating the KEK"): makes the
    /// new KEK `vault.key.next` (created exclusively and whole, 0600; an existing one is a rotation killed
    /// midway, and is taken up again), re-wraps every data key under it, and only when no key is left
    /// wrapped by the old KEK renames `vault.key.next` over `vault.key` (atomic; the folder fsynced).
    /// Until then the old file stays, and every vault opens keys of both. Killed at any point, running it
    /// again finishes the same rotation.
    public static func rotateFileKEK(_ config: LakeConfig, lethe: Lethe, batch: Int = 500, progress: (@Sendable (Int) -> Void)? = nil)
        async throws -> KEKRotation
    {
        guard case .file = config.vault.kek, let path = config.vaultKeyFile else {
            throw LetheError(.badUsage, "`vault` is not a key file: for KMS, pass --to-kms-key-id")
        }
        let old = try FileKeyEncryptionKey.load(path: path, create: false)
        let nextPath = path + ".next"
        let next: FileKeyEncryptionKey
        if let k = try StateSecrets.readKey(nextPath) {
            next = FileKeyEncryptionKey(key: k, path: nextPath)
        } else {
            do {
                next = FileKeyEncryptionKey(key: try StateSecrets.createKey(nextPath), path: nextPath)
            } catch let e as LetheError where e.code == .conflict {
                guard let k = try StateSecrets.readKey(nextPath) else { throw e }
                next = FileKeyEncryptionKey(key: k, path: nextPath)
            }
        }
        let r = try await lethe.rotateKEK(from: old, to: next, batch: batch, progress: progress)
        guard r.remaining == 0 else {
            throw LetheError(
                .failure,
                "\(r.remaining) data key(s) are still wrapped by `\(old.name)` (writers kept adding keys): run `lethe vault rotate-kek` again; \(path) is kept until none is left"
            )
        }
        // Every key is wrapped by the new KEK: it replaces the old one (whose bytes are unlinked).
        guard rename(nextPath, path) == 0 else { throw LetheError.io("cannot move the new key file into place", at: path, errno: errno) }
        StateSecrets.syncFolder(of: path)
        return r
    }

    /// `lethe vault rotate-kek --to-kms-key-id ID`: re-wraps every data key of the configured KMS key
    /// under key `ID` (KMS `ReEncrypt`, same encryption context). Then `vault.kms_key_id` is to be set to `ID`.
    public static func rotateKMSKEK(_ config: LakeConfig, lethe: Lethe, to keyID: String, batch: Int = 500, progress: (@Sendable (Int) -> Void)? = nil)
        async throws -> KEKRotation
    {
        guard case .kms(let current, let endpoint, let region) = config.vault.kek else {
            throw LetheError(.badUsage, "--to-kms-key-id needs `vault: {kek: kms}` (a key file rotates without it)")
        }
        let settings = try AWSSettings.resolve(region: region, endpoint: endpoint, service: "kms")
        let from = try KMSKeyEncryptionKey(keyID: current, region: settings.region, endpoint: endpoint ?? settings.endpoint, credentials: settings.credentials)
        let to = try KMSKeyEncryptionKey(keyID: keyID, region: settings.region, endpoint: endpoint ?? settings.endpoint, credentials: settings.credentials)
        return try await lethe.rotateKEK(from: from, to: to, batch: batch, progress: progress)
    }
}
