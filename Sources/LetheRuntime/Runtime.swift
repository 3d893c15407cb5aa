import Foundation
public import Logging
public import LetheCore
import LetheStorage
public import LetheCatalog
import LetheSQLite
import LetheS3
public import LetheEngine

/// The one bootstrap: turns a config's `lake:` and `state:` into an object store and a state store,
/// and wires them into a `Lethe`. Every door (the CLI, benchmarks, later the HTTP service and
/// workers) opens a lake here; nothing else picks a back end.
///
/// Back ends today: a local lake folder (`LocalObjectStore`) or an S3 bucket (`S3ObjectStore`), and
/// a local state folder (SQLite) or a PostgreSQL schema (`state: postgres://…`, its key files in
/// `keys: DIR`); this is the one place that maps them.
public enum Runtime {
    /// An opened state: its keys, its store, and the folder it lives in (nil for a remote state).
    public struct StateHandle: Sendable {
        public let secrets: StateSecrets
        public let state: any StateStore
        public let folder: String?
    }

    /// Opens the lake and state a config names (embedded default: local folder + SQLite).
    /// `readOnly`: for commands that only read the state (`locate`, `requests`, `show`, `audit`,
    /// `verify --dry-run`); nothing is written, so they work on a state folder they cannot write.
    public static func open(config: LakeConfig, readOnly: Bool = false, logger: Logger = Lethe.defaultLogger()) throws -> Lethe {
        // The lake first: a missing folder or unusable S3 settings fail before the state is touched.
        let makeStore = try lakeStore(config)
        let state = try openState(config: config, readOnly: readOnly)
        let meta = state.state
        // Every temporary file of a local lake is journaled before it exists: the next run removes
        // what a killed one left.
        let owner = getpid()
        let store = makeStore { keys in
            try await meta.transaction("cannot record \(keys.count) temporary file(s)") { tx in
                for k in keys { try tx.journal.recordTemporary(k, owner: owner, table: nil) }
            }
        }
        var lethe = Lethe(config: config, store: store, meta: meta, secrets: state.secrets, stateFolder: state.folder, logger: logger)
        lethe.vault = localVault(config, state: meta)
        return lethe
    }

    /// Opens the state a config names (for doors that need no lake: `filter`, `deletions`).
    public static func openState(config: LakeConfig, readOnly: Bool = false) throws -> StateHandle {
        switch config.state {
        case .folder(let p):
            let (secrets, meta) = try openState(folder: p, readOnly: readOnly)
            return StateHandle(secrets: secrets, state: meta, folder: p)
        case .postgres(let url):
            guard let keys = config.keysFolder else {
                throw LetheError(.badInput, "`state: postgres://…` needs `keys: DIR` (the folder of the installation's key files)", at: config.file)
            }
            let (secrets, meta) = try openPostgresState(url: url, keys: keys, readOnly: readOnly)
            return StateHandle(secrets: secrets, state: meta, folder: nil)
        }
    }

    /// Whether this process may write the state a config names: for a folder, the folder and
    /// (if it exists) the database file are writable. A door that only reads opens a state it
    /// cannot write read-only and skips its optional writes.
    public static func stateIsWritable(_ config: LakeConfig) -> Bool {
        guard case .folder(let folder) = config.state else { return true }
        let db = folder + "/" + SQLiteStateStore.fileName
        return access(folder, W_OK) == 0 && (access(db, F_OK) != 0 || access(db, W_OK) == 0)
    }

    /// The lake's object store, once its settings are checked: a function of the hook that journals a
    /// local lake's temporary files (S3 writes leave no temporary objects: nothing is visible before
    /// the put or the multipart completion).
    static func lakeStore(_ config: LakeConfig) throws -> (_ onTemporary: (@Sendable ([String]) async throws -> Void)?) -> any ObjectStore {
        switch config.lake {
        case .folder(let p):
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else {
                throw LetheError(.badInput, "the lake folder does not exist: \(p)", at: config.file)
            }
            var local = LocalObjectStore(root: p)
            local.keptFolders = Set(config.datasets.map(\.path))
            return { onTemporary in
                var l = local
                l.onTemporary = onTemporary
                return l
            }
        case .s3(let bucket, let prefix, let endpoint, let region, let pathStyle, let profile):
            // Credentials, region and endpoint as the AWS CLI finds them (explicit keys first).
            let settings = try AWSSettings.resolve(profile: profile, region: region, endpoint: endpoint)
            let at = try S3Endpoint(url: settings.endpoint, region: settings.region, bucket: bucket, pathStyle: pathStyle)
            let store = S3ObjectStore(client: S3Client(endpoint: at, credentials: settings.credentials), prefix: prefix)
            return { _ in store }
        }
    }
}
