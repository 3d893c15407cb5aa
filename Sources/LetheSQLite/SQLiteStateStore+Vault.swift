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

    /// `v13-vault-prefix` (the key store's size, ≤ 64 B a subject): compact rows keyed by the first 12
    /// bytes of the subject key (key id, KEK id, the file KEK's 32-byte wrapping; no creation time), and
    /// `vault_keys_exact` keyed by the whole subject key for the rows that need it (KMS blobs, wrappings
    /// written before v13, a subject whose prefix is taken). Existing rows are converted: a file-KEK row
    /// moves to its prefix when no other row claims it, every other row to `vault_keys_exact` as it was.
    static let vaultPrefixMigration = """
        CREATE TABLE vault_keys_exact(
            subject_key BLOB NOT NULL PRIMARY KEY CHECK(length(subject_key) = 32),
            key_id BLOB NOT NULL CHECK(length(key_id) = 8),
            kek_id INTEGER NOT NULL REFERENCES vault_keks(id),
            wrapped BLOB NOT NULL,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE vault_keys_v13(
            subject_prefix BLOB NOT NULL PRIMARY KEY CHECK(length(subject_prefix) = 12),
            key_id BLOB NOT NULL CHECK(length(key_id) = 8),
            kek_id INTEGER NOT NULL REFERENCES vault_keks(id),
            wrapped BLOB NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO vault_keys_exact(subject_key, key_id, kek_id, wrapped, created_at)
            SELECT k.subject_key, k.key_id, k.kek_id, k.wrapped, k.created_at FROM vault_keys k JOIN vault_keks e ON e.id = k.kek_id
            WHERE e.name NOT LIKE 'file:%' OR length(k.wrapped) <> 32;
        INSERT OR IGNORE INTO vault_keys_v13(subject_prefix, key_id, kek_id, wrapped)
            SELECT substr(k.subject_key, 1, 12), k.key_id, k.kek_id, k.wrapped FROM vault_keys k JOIN vault_keks e ON e.id = k.kek_id
            WHERE e.name LIKE 'file:%' AND length(k.wrapped) = 32 ORDER BY k.subject_key;
        INSERT INTO vault_keys_exact(subject_key, key_id, kek_id, wrapped, created_at)
            SELECT k.subject_key, k.key_id, k.kek_id, k.wrapped, k.created_at FROM vault_keys k JOIN vault_keks e ON e.id = k.kek_id
            WHERE e.name LIKE 'file:%' AND length(k.wrapped) = 32 AND NOT EXISTS (
                SELECT 1 FROM vault_keys_v13 n WHERE n.subject_prefix = substr(k.subject_key, 1, 12) AND n.key_id = k.key_id AND n.wrapped = k.wrapped);
        DROP TABLE vault_keys;
        ALTER TABLE vault_keys_v13 RENAME TO vault_keys;
        """

    /// The id of a KEK's name in `vault_keks`, added when new.
    static func kekID(_ db: Database, _ name: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM vault_keks WHERE name = ?", arguments: [name]) { return id }
        try db.execute(sql: "INSERT INTO vault_keks(name) VALUES (?)", arguments: [name])
        return db.lastInsertedRowID
    }

    /// Subjects a vault read asks for in one statement (the statements are prepared once a connection,
    /// a short last batch padded with NULLs, which match no row).
    static let vaultReadBatch = 512

    /// A subject key's first `WrappedDataKey.prefixSize` (12) bytes, as a dictionary key without an array.
    struct VaultPrefix: Hashable {
        var high: UInt64
        var low: UInt32
        init(_ s: SubjectKey) {
            let b = s.bytes
            high = b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            low = b[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
        }
        init(_ b: UnsafeRawBufferPointer) {
            high = b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            low = b[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    /// Each subject's row: its exact row, else the compact row of its prefix (`exact == false`). One
    /// statement a table per `vaultReadBatch` subjects; rows read through a cursor without copying their
    /// blobs twice; KEK names from one read of `vault_keks`.
    static func fetchVaultKeys(_ db: Database, _ subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] {
        var out: [SubjectKey: WrappedDataKey] = [:]
        let unique = Array(Set(subjects))
        out.reserveCapacity(unique.count)
        guard !unique.isEmpty else { return out }
        // A vault with no key (no crypto-shredding here): nothing to look up, key by key (100,000
        // subjects of a `forget --from` were ~0.17 s of lookups).
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM vault_keys_exact) OR EXISTS(SELECT 1 FROM vault_keys)") == true else { return out }
        var keks: [Int64: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, name FROM vault_keks") { keks[r[0]] = r[1] }
        func kek(_ id: Int64) throws -> String {
            guard let name = keks[id] else { throw LetheError(.corrupt, "a vault key row names KEK id \(id), which `vault_keks` does not hold") }
            return name
        }
        /// A blob column's bytes, copied once (no intermediate `Data`).
        func blob(_ r: Row, _ i: Int) throws -> [UInt8] { try r.withUnsafeData(atIndex: i) { d in d.map { [UInt8]($0) } ?? [] } }
        let batch = vaultReadBatch
        let marks = Array(repeating: "?", count: batch).joined(separator: ",")
        let exactStatement = try db.cachedStatement(
            sql: "SELECT subject_key, key_id, kek_id, wrapped, created_at FROM vault_keys_exact WHERE subject_key IN (\(marks))")
        let compactStatement = try db.cachedStatement(sql: "SELECT subject_prefix, key_id, kek_id, wrapped FROM vault_keys WHERE subject_prefix IN (\(marks))")
        let n = WrappedDataKey.prefixSize
        var start = 0
        while start < unique.count {
            let part = unique[start..<min(unique.count, start + batch)]
            start += part.count
            var args: [(any DatabaseValueConvertible)?] = part.map { Data($0.bytes) }
            args += repeatElement(nil, count: batch - args.count)
            let exact = try Row.fetchCursor(exactStatement, arguments: StatementArguments(args))
            while let r = try exact.next() {
                let s = SubjectKey(bytes: try blob(r, 0))
                out[s] = WrappedDataKey(subject: s, keyID: try blob(r, 1), kek: try kek(r[2]), wrapped: try blob(r, 3), createdAt: r[4])
            }
            var byPrefix: [VaultPrefix: [SubjectKey]] = [:]
            var prefixes: [(any DatabaseValueConvertible)?] = []
            for s in part where out[s] == nil {
                let p = VaultPrefix(s)
                if byPrefix[p] == nil { prefixes.append(Data(s.bytes.prefix(n))) }
                byPrefix[p, default: []].append(s)
            }
            guard !prefixes.isEmpty else { continue }
            prefixes += repeatElement(nil, count: batch - prefixes.count)
            let compact = try Row.fetchCursor(compactStatement, arguments: StatementArguments(prefixes))
            while let r = try compact.next() {
                let p = try r.withUnsafeData(atIndex: 0) { d -> VaultPrefix? in
                    guard let d, d.count == n else { return nil }
                    return d.withUnsafeBytes { VaultPrefix($0) }
                }
                guard let p, let owners = byPrefix[p] else { continue }
                let keyID = try blob(r, 1), wrapped = try blob(r, 3)
                let name = try kek(r[2])
                for s in owners { out[s] = WrappedDataKey(subject: s, keyID: keyID, kek: name, wrapped: wrapped, createdAt: 0, exact: false) }
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
        try await read("cannot read the vault's keys") { db in
            try Int64.fetchOne(db, sql: "SELECT (SELECT count(*) FROM vault_keys) + (SELECT count(*) FROM vault_keys_exact)") ?? 0
        }
    }

    public func vaultKeyCountsByKEK() async throws -> [String: Int64] {
        try await read("cannot read the vault's keys") { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT e.name, (SELECT count(*) FROM vault_keys k WHERE k.kek_id = e.id) + (SELECT count(*) FROM vault_keys_exact k WHERE k.kek_id = e.id)
                    FROM vault_keks e
                    """)
            var out: [String: Int64] = [:]
            for r in rows { let n: Int64 = r[1]; if n > 0 { out[r[0]] = n } }
            return out
        }
    }

    public func vaultRows(kek: String, after: VaultRow?, limit: Int) async throws -> [VaultRow] {
        try await read("cannot read the vault's keys") { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM vault_keks WHERE name = ?", arguments: [kek]) else { return [] }
            var out: [VaultRow] = []
            // Exact rows first (row keys of 32 bytes), then compact rows.
            if after == nil || after?.exact == true {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT subject_key, key_id, wrapped FROM vault_keys_exact WHERE kek_id = ? AND subject_key > ? ORDER BY subject_key LIMIT ?",
                    arguments: [id, Data(after?.rowKey ?? []), limit])
                for r in rows { out.append(VaultRow(rowKey: [UInt8](r[0] as Data), keyID: [UInt8](r[1] as Data), kek: kek, wrapped: [UInt8](r[2] as Data))) }
            }
            if out.count < limit {
                let from = after.map { $0.exact ? [] : $0.rowKey } ?? []
                let rows = try Row.fetchAll(
                    db, sql: "SELECT subject_prefix, key_id, wrapped FROM vault_keys WHERE kek_id = ? AND subject_prefix > ? ORDER BY subject_prefix LIMIT ?",
                    arguments: [id, Data(from), limit - out.count])
                for r in rows { out.append(VaultRow(rowKey: [UInt8](r[0] as Data), keyID: [UInt8](r[1] as Data), kek: kek, wrapped: [UInt8](r[2] as Data))) }
            }
            return out
        }
    }
}

struct SQLiteVaultWriter: VaultKeyWriter {
    let db: Database

    func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] { try SQLiteStateStore.fetchVaultKeys(db, subjects) }

    func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey] {
        let exact = try db.cachedStatement(
            sql: "INSERT INTO vault_keys_exact(subject_key, key_id, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(subject_key) DO NOTHING")
        let compact = try db.cachedStatement(
            sql: "INSERT INTO vault_keys(subject_prefix, key_id, kek_id, wrapped) VALUES (?, ?, ?, ?) ON CONFLICT(subject_prefix) DO NOTHING")
        var ids: [String: Int64] = [:]
        for k in keys {
            let id: Int64
            if let known = ids[k.kek] {
                id = known
            } else {
                id = try SQLiteStateStore.kekID(db, k.kek)
                ids[k.kek] = id
            }
            if k.exact {
                try exact.execute(arguments: [Data(k.subject.bytes), Data(k.keyID), id, Data(k.wrapped), k.createdAt])
            } else {
                try compact.execute(arguments: [Data(k.rowKey), Data(k.keyID), id, Data(k.wrapped)])
            }
        }
        return try SQLiteStateStore.fetchVaultKeys(db, keys.map(\.subject))
    }

    func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey] {
        let exact = try db.cachedStatement(sql: "DELETE FROM vault_keys_exact WHERE subject_key = ?")
        let compact = try db.cachedStatement(sql: "DELETE FROM vault_keys WHERE subject_prefix = ?")
        var gone: [SubjectKey] = []
        for s in Set(subjects) {
            try exact.execute(arguments: [Data(s.bytes)])
            if db.changesCount == 0 { try compact.execute(arguments: [Data(s.bytes.prefix(WrappedDataKey.prefixSize))]) }
            if db.changesCount > 0 { gone.append(s) }
        }
        return gone.sorted()
    }

    func destroyKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey] {
        let exact = try db.cachedStatement(sql: "DELETE FROM vault_keys_exact WHERE subject_key = ? AND key_id = ? AND wrapped = ?")
        let compact = try db.cachedStatement(sql: "DELETE FROM vault_keys WHERE subject_prefix = ? AND key_id = ? AND wrapped = ?")
        var gone: Set<SubjectKey> = []
        for k in keys {
            try (k.exact ? exact : compact).execute(arguments: [Data(k.rowKey), Data(k.keyID), Data(k.wrapped)])
            if db.changesCount > 0 { gone.insert(k.subject) }
        }
        return gone.sorted()
    }

    func rewrapKey(_ row: VaultRow, kek: String, wrapped: [UInt8]) throws -> Bool {
        let id = try SQLiteStateStore.kekID(db, kek)
        let sql =
            row.exact
            ? "UPDATE vault_keys_exact SET kek_id = ?, wrapped = ? WHERE subject_key = ? AND key_id = ? AND wrapped = ?"
            : "UPDATE vault_keys SET kek_id = ?, wrapped = ? WHERE subject_prefix = ? AND key_id = ? AND wrapped = ?"
        try db.cachedStatement(sql: sql).execute(arguments: [id, Data(wrapped), Data(row.rowKey), Data(row.keyID), Data(row.wrapped)])
        return db.changesCount > 0
    }
}
