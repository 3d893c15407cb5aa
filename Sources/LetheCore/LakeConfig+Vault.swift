import Yams

/// `vault: {kek: file | kms, key_file: PATH, kms_key_id: ID, kms_endpoint: URL, kms_region: R, cache: N}`:
/// the key-encryption key that wraps crypto-shredding's per-subject data keys
/// (docs/crypto-shredding.md). Absent: a key file `vault.key` next to the state's other keys.
public struct VaultConfig: Sendable, Hashable {
    public enum KEK: Sendable, Hashable {
        /// A local key file: `path`, or nil for `vault.key` in the keys folder (`LakeConfig.keysLocation`).
        case file(path: String?)
        /// AWS KMS: a key id, key ARN or alias; the endpoint (nil: AWS's for the region) and region
        /// (nil: the AWS settings' region).
        case kms(keyID: String, endpoint: String?, region: String?)
    }
    public var kek: KEK = .file(path: nil)
    /// Unwrapped data keys kept in memory, at most.
    public var cacheSize: Int = VaultConfig.defaultCacheSize
    public static let defaultCacheSize = 10_000
    public init() {}
}

extension LakeConfig {
    /// The path of the local KEK file (nil for KMS, or a remote state without `keys`).
    public var vaultKeyFile: String? {
        switch vault.kek {
        case .file(let p?): return p
        case .file(nil): return keysLocation.map { $0 + "/" + FileKeyEncryptionKey.fileName }
        case .kms: return nil
        }
    }
}

extension ConfigReader {
    func vault(_ node: Node) throws -> VaultConfig {
        var c = VaultConfig()
        var kind = "file"
        var keyFile: String?, keyID: String?, endpoint: String?, region: String?
        let known = ["kek", "key_file", "kms_key_id", "kms_endpoint", "kms_region", "cache"]
        for (k, v) in try entries(node, "vault", known: known, example: "{kek: kms, kms_key_id: alias/lethe}") {
            switch k {
            case "kek":
                kind = try str(v, "vault.kek")
                guard kind == "file" || kind == "kms" else { throw err("`vault.kek` must be `file` (a local key file) or `kms` (AWS KMS)", v) }
            case "key_file": keyFile = resolve(try str(v, "vault.key_file"))
            case "kms_key_id": keyID = try str(v, "vault.kms_key_id")
            case "kms_endpoint":
                let e = try str(v, "vault.kms_endpoint")
                guard e.hasPrefix("http://") || e.hasPrefix("https://") else { throw err("`vault.kms_endpoint` must be an http(s) URL", v) }
                endpoint = e
            case "kms_region": region = try str(v, "vault.kms_region")
            default: c.cacheSize = try int(v, "vault.cache", 1...10_000_000)
            }
        }
        if kind == "kms" {
            guard let keyID, !keyID.isEmpty else {
                throw err("`vault: {kek: kms}` needs `kms_key_id` (a KMS key id, ARN or alias/NAME)", node)
            }
            guard keyFile == nil else { throw err("`vault.key_file` is for `kek: file`", node) }
            c.kek = .kms(keyID: keyID, endpoint: endpoint, region: region)
        } else {
            guard keyID == nil, endpoint == nil, region == nil else { throw err("`kms_*` keys need `vault: {kek: kms}`", node) }
            c.kek = .file(path: keyFile)
        }
        return c
    }
}
