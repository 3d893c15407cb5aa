import Foundation
public import Logging
public import LetheCore
import LetheStorage
public import LetheCatalog
import LetheSQLite
public import LetheEngine

/// The one bootstrap: turns a config's `lake:` and `state:` into an object store and a state store,
/// and wires them into a `Lethe`. Every door (the CLI, benchmarks, later the HTTP service and
/// workers) opens a lake here; nothing else picks a back end.
///
/// Back ends today: a local lake folder (`LocalObjectStore`) and a local state folder (SQLite).
/// `s3://` lakes and `postgres://` states are parsed by `LakeConfig` and refused here (exit 2)
/// until their back ends exist; this is the one place that maps them.
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
        var local = try lakeStore(config)
        let state = try openState(config: config, readOnly: readOnly)
        // Every temporary file is journaled before it exists: the next run removes what a killed one left.
        let owner = getpid()
        let meta = state.state
        local.onTemporary = { key in try await meta.recordTemporary(key, owner: owner) }
        return Lethe(config: config, store: local, meta: meta, secrets: state.secrets, stateFolder: state.folder, logger: logger)
    }

    /// Opens the state a config names (for doors that need no lake: `filter`, `deletions`).
    public static func openState(config: LakeConfig, readOnly: Bool = false) throws -> StateHandle {
        switch config.state {
        case .folder(let p):
            let (secrets, meta) = try openState(folder: p, readOnly: readOnly)
            return StateHandle(secrets: secrets, state: meta, folder: p)
        case .postgres:
            // Where a PostgreSQL state store will be opened (issue 13).
            throw LetheError(.badInput, "`state: postgres://…` is not supported by this build yet; use a folder", at: config.file)
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

    /// The lake's object store.
    static func lakeStore(_ config: LakeConfig) throws -> LocalObjectStore {
        switch config.lake {
        case .folder(let p):
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else {
                throw LetheError(.badInput, "the lake folder does not exist: \(p)", at: config.file)
            }
            var local = LocalObjectStore(root: p)
            local.keptFolders = Set(config.datasets.map(\.path))
            return local
        case .s3:
            // Where an S3 object store will be opened (issue 13).
            throw LetheError(.badInput, "`lake: s3://…` is not supported by this build yet; use a folder", at: config.file)
        }
    }
}
