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
        Vault(kek: try keyEncryptionKey(config, create: create), state: state, cacheSize: config.vault.cacheSize)
    }
}
