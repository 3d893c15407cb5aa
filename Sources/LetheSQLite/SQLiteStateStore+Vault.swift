import Foundation
import GRDB
public import LetheCore
public import LetheCatalog

// Crypto-shredding's key store on SQLite (issue 15): `vault_keys`, one row per subject (its keyed
// hash, 32 bytes), WITHOUT ROWID. The state's connections run with `secure_delete = ON`: a destroyed
// key's page is overwritten with zeros in the database file; the WAL still holds earlier page images
// until it is checkpointed (`Lethe.shred` checkpoints after destroying).
//
// `v12-vault-compact` (the key store's size): the KEK's name moves to `vault_keks` and each row
// carries its small integer id; new wrappings are AES key wrap (40 bytes, not GCM's 60). Existing
// rows are copied with their wrapping as it was (the file KEK still opens a 60-byte GCM wrapping).

extension SQLiteStateStore {
    static let vaultSchema = """
        CREATE TABLE vault_keys(
            subject_key BLOB NOT NULL PRIMARY KEY CHECK(length(subject_key) = 32),
            key_id BLOB NOT NULL CHECK(length(key_id) = 8),
            kek TEXT NOT NULL,
            wrapped BLOB NOT NULL,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        """

    static let vaultCompactMigration = """
        CREATE TABLE vault_keks(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        INSERT INTO vault_keks(name) SELECT DISTINCT kek FROM vault_keys ORDER BY kek;
        CREATE TABLE vault_keys_v12(
            subject_key BLOB NOT NULL PRIMARY KEY CHECK(length(subject_key) = 32),
            key_id BLOB NOT NULL CHECK(length(key_id) = 8),
            kek_id INTEGER NOT NULL REFERENCES vault_keks(id),
            wrapped BLOB NOT NULL,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO vault_keys_v12(subject_key, key_id, kek_id, wrapped, created_at)
            SELECT k.subject_key, k.key_id, e.id, k.wrapped, k.created_at FROM vault_keys k JOIN vault_keks e ON e.name = k.kek;
        DROP TABLE vault_keys;
        ALTER TABLE vault_keys_v12 RENAME TO vault_keys;
        """

    /// The id of a KEK's name in `vault_keks`, added when new.
    static func kekID(_ db: Database, _ name: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM vault_keks WHERE name = ?", arguments: [name]) { return id }
        try db.execute(sql: "INSERT INTO vault_keks(name) VALUES (?)", arguments: [name])
        return db.lastInsertedRowID
    }

    static func fetchVaultKeys(_ db: Database, _ subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] {
        var out: [SubjectKey: WrappedDataKey] = [:]
        var start = 0
        let unique = Array(Set(subjects))
        while start < unique.count {
            let part = unique[start..<min(unique.count, start + 500)]
            start += part.count
            let marks = Array(repeating: "?", count: part.count).joined(separator: ",")
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT k.subject_key, k.key_id, e.name, k.wrapped, k.created_at FROM vault_keys k JOIN vault_keks e ON e.id = k.kek_id WHERE k.subject_key IN (\(marks))",
                arguments: StatementArguments(part.map { Data($0.bytes) }))
            for r in rows {
                let s = SubjectKey(bytes: [UInt8](r[0] as Data))
                out[s] = WrappedDataKey(subject: s, keyID: [UInt8](r[1] as Data), kek: r[2], wrapped: [UInt8](r[3] as Data), createdAt: r[4])
            }
        }
        return out
    }
}

extension SQLiteStateStore: VaultKeyReader {
    public var vault: any VaultKeyReader { self }

    public func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey] {
        guard !subjects.isEmpty else { return [:] }
        return try await read("cannot read the vault's keys") { db in try Self.fetchVaultKeys(db, subjects) }
    }

    public func vaultKeyCount() async throws -> Int64 {
        try await read("cannot read the vault's keys") { db in try Int64.fetchOne(db, sql: "SELECT count(*) FROM vault_keys") ?? 0 }
    }
}

struct SQLiteVaultWriter: VaultKeyWriter {
    let db: Database

    func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] { try SQLiteStateStore.fetchVaultKeys(db, subjects) }

    func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey] {
        let st = try db.cachedStatement(
            sql: "INSERT INTO vault_keys(subject_key, key_id, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(subject_key) DO NOTHING")
        var ids: [String: Int64] = [:]
        for k in keys {
            let id: Int64
            if let known = ids[k.kek] {
                id = known
            } else {
                id = try SQLiteStateStore.kekID(db, k.kek)
                ids[k.kek] = id
            }
            try st.execute(arguments: [Data(k.subject.bytes), Data(k.keyID), id, Data(k.wrapped), k.createdAt])
        }
        return try SQLiteStateStore.fetchVaultKeys(db, keys.map(\.subject))
    }

    func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey] {
        let st = try db.cachedStatement(sql: "DELETE FROM vault_keys WHERE subject_key = ?")
        var gone: [SubjectKey] = []
        for s in Set(subjects) {
            try st.execute(arguments: [Data(s.bytes)])
            if db.changesCount > 0 { gone.append(s) }
        }
        return gone.sorted()
    }
}
