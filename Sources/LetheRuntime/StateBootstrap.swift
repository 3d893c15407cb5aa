public import Foundation
public import LetheCore
public import LetheCatalog
import LethePostgres
import LetheSQLite

/// What opening a state needs of its store before any task runs: settings, emptiness, and keying
/// the audit chain in one locked transaction (SQLite: its write lock; PostgreSQL: an advisory lock).
protocol KeyedStateOpening: AnyObject {
    func settingNow(_ name: String) throws -> String?
    func setSettingNow(_ name: String, _ value: String) throws
    func isEmptyNow() throws -> Bool
    func hasStreamTagsNow() throws -> Bool
    func keyAuditChain(fingerprintSetting: String, at: Int64, newKey: () throws -> (key: [UInt8], fingerprint: String)) throws -> Bool
    func setAuditKey(_ key: [UInt8]?)
}

extension SQLiteStateStore: KeyedStateOpening {}
extension PostgresStateStore: KeyedStateOpening {}

extension Runtime {
    /// The setting that holds a key file's fingerprint.
    public static func fingerprintSetting(_ file: String) -> String { "key.\(file).fingerprint" }

    /// Opens a local state folder: the database, then each key file checked against the
    /// fingerprint the state recorded (`StateSecrets.fingerprint`).
    ///
    /// - A new state (no object, request or audit entry yet) gets new keys.
    /// - A key that is missing, or not the one the state recorded, is refused (exit 2) naming the
    ///   file and how to restore it: Lethe never makes a new key over an existing state.
    /// - A state from before fingerprints has them recorded from its key files; one from before
    ///   `audit.key` gets the key and an `audit_keyed` entry that keys its chain from there on.
    /// - `readOnly` writes nothing (for commands that only read, on a folder they may not write);
    ///   without a database there is nothing to read, and the state is opened for writing.
    ///
    /// The store comes back as `any StateStore`: a caller that holds the concrete SQLite type without
    /// importing LetheSQLite would call the protocol's generic defaults instead of the store's own
    /// methods (MemberImportVisibility hides those), e.g. `insertRequests` row by row.
    public static func openState(
        folder: String, readOnly requested: Bool = false,
        now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws -> (secrets: StateSecrets, meta: any StateStore) {
        let (secrets, meta) = try openSQLiteState(folder: folder, readOnly: requested, now: now)
        return (secrets, meta)
    }

    /// `openState(folder:)` with the concrete store.
    static func openSQLiteState(
        folder: String, readOnly requested: Bool = false,
        now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws -> (secrets: StateSecrets, meta: SQLiteStateStore) {
        let readOnly = requested && FileManager.default.fileExists(atPath: folder + "/" + SQLiteStateStore.fileName)
        if !readOnly { try StateSecrets.ensureFolder(folder) }
        let meta = try SQLiteStateStore(folder: folder, readOnly: readOnly)
        let secrets = try openKeys(folder: folder, meta: meta, readOnly: readOnly, now: now)
        return (secrets, meta)
    }

    /// Opens a PostgreSQL state (`state: postgres://…`) with its key files in `keys`: the same checks
    /// as a folder state (`openState(folder:)`). `readOnly` opens the schema read-only when it exists
    /// (else for writing: there is nothing to read yet).
    public static func openPostgresState(
        url: String, keys: String, readOnly requested: Bool = false,
        now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) throws -> (secrets: StateSecrets, meta: any StateStore) {
        var meta: PostgresStateStore
        var readOnly = requested
        do {
            meta = try PostgresStateStore(url: url, readOnly: requested)
        } catch let e as LetheError where requested && e.code == .notFound {
            meta = try PostgresStateStore(url: url)
            readOnly = false
        }
        if !readOnly { try StateSecrets.ensureFolder(keys) }
        do {
            let secrets = try openKeys(folder: keys, meta: meta, readOnly: readOnly, now: now, place: "keys folder")
            meta.setKeysFolder(keys)
            return (secrets, meta)
        } catch {
            meta.close()
            throw error
        }
    }

    /// Each key file of `folder` checked against the fingerprint the state recorded (created for a
    /// new state); the audit key set on the store. `place` names the folder in messages.
    static func openKeys(
        folder: String, meta: some KeyedStateOpening, readOnly: Bool, now: Int64, place: String = "state folder"
    ) throws -> StateSecrets {
        let fresh = try meta.isEmptyNow()
        var keys: [String: [UInt8]] = [:]
        for name in ["secret.key", "request.key", "stream.key"] {
            let path = folder + "/" + name
            let setting = fingerprintSetting(name)
            let recorded = try meta.settingNow(setting)
            if let k = try StateSecrets.readKey(path) {
                try check(k, recorded: recorded, path: path, folder: folder, place: place)
                if recorded == nil && !readOnly { try meta.setSettingNow(setting, StateSecrets.fingerprint(k)) }
                keys[name] = k
                continue
            }
            if let recorded { throw missingKey(path, folder: folder, fingerprint: recorded, place: place) }
            // `stream.key` came later than the others: a state whose requests hold no stream tag may get it.
            let mayCreate = name == "stream.key" ? !(try meta.hasStreamTagsNow()) : fresh
            guard mayCreate else { throw missingKey(path, folder: folder, fingerprint: nil, place: place) }
            guard !readOnly else {
                throw LetheError(
                    .badInput, "the key is missing and this command only reads the state: run a writing command (e.g. `lethe index`) first", at: path)
            }
            let k = try createOrRead(path)
            try check(k, recorded: try meta.settingNow(setting), path: path, folder: folder, place: place)
            try meta.setSettingNow(setting, StateSecrets.fingerprint(k))
            keys[name] = k
        }
        let auditKey = try openAuditKey(folder: folder, meta: meta, readOnly: readOnly, now: now, place: place)
        meta.setAuditKey(auditKey)
        let signingKey = try openSigningKey(folder: folder, meta: meta, readOnly: readOnly, place: place)
        return StateSecrets(
            installationSecret: keys["secret.key"]!, requestKey: keys["request.key"]!,
            streamKey: keys["stream.key"], auditKey: auditKey, signingKey: signingKey)
    }

    /// `signing.key`, the Ed25519 private key that signs certificates of erasure: checked against its
    /// recorded fingerprint like the others, and created (mode 0600, fingerprint recorded) when the
    /// state has none yet, whatever the state holds (it signs only what is issued from then on).
    /// Missing while a fingerprint is recorded, or read-only: nil (issuing a certificate then fails
    /// naming the file; everything else works).
    static func openSigningKey(folder: String, meta: some KeyedStateOpening, readOnly: Bool, place: String) throws -> [UInt8]? {
        let name = "signing.key"
        let path = folder + "/" + name, setting = fingerprintSetting(name)
        let recorded = try meta.settingNow(setting)
        if let k = try StateSecrets.readKey(path) {
            try check(k, recorded: recorded, path: path, folder: folder, place: place)
            if recorded == nil && !readOnly { try meta.setSettingNow(setting, StateSecrets.fingerprint(k)) }
            return k
        }
        guard recorded == nil, !readOnly else { return nil }
        let k = try createOrRead(path)
        try check(k, recorded: try meta.settingNow(setting), path: path, folder: folder, place: place)
        try meta.setSettingNow(setting, StateSecrets.fingerprint(k))
        return k
    }

    /// `audit.key`: checked like the others; created for a state that has none, in one write
    /// transaction of the database (a concurrent opener waits, then uses the same key): the key
    /// is written as `audit.key.new`, its fingerprint and (for a chain with entries) the
    /// `audit_keyed` entry are committed, then the file is renamed into place. A crash before the
    /// commit leaves a stale `.new` (replaced next time); after it, the next open renames it.
    static func openAuditKey(
        folder: String, meta: some KeyedStateOpening, readOnly: Bool, now: Int64, place: String = "state folder"
    ) throws -> [UInt8]? {
        let name = "audit.key"
        let path = folder + "/" + name, pending = path + ".new"
        let setting = fingerprintSetting(name)
        if let k = try StateSecrets.readKey(path) {
            let recorded = try meta.settingNow(setting)
            try check(k, recorded: recorded, path: path, folder: folder, place: place)
            // A fingerprint gone from the database is recorded again; the chain itself shows
            // whether entries were rewritten without the key.
            if recorded == nil && !readOnly { try meta.setSettingNow(setting, StateSecrets.fingerprint(k)) }
            return k
        }
        if try meta.settingNow(setting) == nil {
            guard !readOnly else { return nil }  // an older state, read as it is: its chain is unkeyed
            _ = try meta.keyAuditChain(fingerprintSetting: setting, at: now) {
                // The database's write lock is held: a `.new` without a recorded fingerprint is stale.
                if FileManager.default.fileExists(atPath: pending) { try? FileManager.default.removeItem(atPath: pending) }
                let k = try StateSecrets.createKey(pending)
                return (k, StateSecrets.fingerprint(k))
            }
        }
        // Keyed in the database (by this process or another); the file may still be `.new`.
        let recorded = try meta.settingNow(setting)
        if let k = try StateSecrets.readKey(path) {
            try check(k, recorded: recorded, path: path, folder: folder, place: place)
            return k
        }
        if let k = try StateSecrets.readKey(pending), StateSecrets.fingerprint(k) == recorded {
            if !readOnly {
                if Foundation.rename(pending, path) != 0 && !(errno == ENOENT && FileManager.default.fileExists(atPath: path)) {
                    throw LetheError.io("cannot rename the key file", at: pending, errno: errno)
                }
                StateSecrets.syncFolder(of: path)
            }
            return k
        }
        // Another opener may have renamed `.new` into place between the two reads above.
        if let k = try StateSecrets.readKey(path) {
            try check(k, recorded: recorded, path: path, folder: folder, place: place)
            return k
        }
        throw missingKey(path, folder: folder, fingerprint: recorded, place: place)
    }

    static func check(_ key: [UInt8], recorded: String?, path: String, folder: String, place: String = "state folder") throws {
        let fp = StateSecrets.fingerprint(key)
        guard let recorded, recorded != fp else { return }
        throw LetheError(
            .badInput,
            "this is not the key the state was made with (fingerprint \(fp.prefix(16)), the state expects \(recorded.prefix(16))): restore the original file from a backup of the \(place) \(folder)",
            at: path)
    }

    static func missingKey(_ path: String, folder: String, fingerprint: String?, place: String = "state folder") -> LetheError {
        let which = fingerprint.map { " (fingerprint \($0.prefix(16)))" } ?? ""
        return LetheError(
            .badInput,
            "the key is missing, but the state \(place == "state folder" ? "in \(folder)" : "using \(folder)") was made with it\(which): restore the file from a backup of the \(place); Lethe never makes a new key over an existing state (subject keys, sealed ids and the audit chain depend on it)",
            at: path)
    }

    static func createOrRead(_ path: String) throws -> [UInt8] {
        do {
            return try StateSecrets.createKey(path)
        } catch let e as LetheError where e.code == .conflict {
            // Another process created it meanwhile.
            guard let k = try StateSecrets.readKey(path) else { throw e }
            return k
        }
    }
}
