import Foundation
public import LetheCatalog
public import LetheCore
import NIOCore
import PostgresNIO

// Crypto-shredding's key store on PostgreSQL (issue 15, migration 6): `vault_keys`, one row per
// subject keyed by its keyed hash. A destroyed row is a dead tuple until VACUUM reclaims it; even then
// PostgreSQL does not zero the page space, and WAL segments, replicas and base backups keep earlier
// copies (docs/crypto-shredding.md: what this guarantees and what it does not).

extension PostgresStateStore {
    static let vaultMigration = """
        CREATE TABLE vault_keys(
            subject_key bytea PRIMARY KEY CHECK (length(subject_key) = 32),
            key_id bytea NOT NULL CHECK (length(key_id) = 8),
            kek text NOT NULL,
            wrapped bytea NOT NULL,
            created_at bigint NOT NULL
        )
        """

    static func fetchVaultKeys(_ s: PGSession, _ subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] {
        var out: [SubjectKey: WrappedDataKey] = [:]
        let unique = Array(Set(subjects))
        var start = 0
        while start < unique.count {
            let part = unique[start..<min(unique.count, start + 1000)].map(\.hex)
            start += part.count
            let rows = try s.query(
                .sql(
                    """
                    SELECT subject_key, key_id, kek, wrapped, created_at FROM vault_keys
                    WHERE subject_key IN (SELECT decode(h, 'hex') FROM unnest($1::text[]) AS h)
                    """
                ) { $0.append(Array(part)) }
            ).rows
            for row in rows {
                let r = PGRow(row)
                let subject = SubjectKey(bytes: r.bytes(0) ?? [])
                out[subject] = WrappedDataKey(
                    subject: subject, keyID: r.bytes(1) ?? [], kek: try r.str(2), wrapped: r.bytes(3) ?? [], createdAt: try r.int(4))
            }
        }
        return out
    }
}

extension PostgresStateStore: VaultKeyReader {
    public var vault: any VaultKeyReader { self }

    public func wrappedKeys(subjects: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey] {
        guard !subjects.isEmpty else { return [:] }
        return try await read("cannot read the vault's keys") { s in try Self.fetchVaultKeys(s, subjects) }
    }

    public func vaultKeyCount() async throws -> Int64 {
        try await read("cannot read the vault's keys") { s in try PGRow(s.query("SELECT count(*)::bigint FROM vault_keys").rows[0]).int(0) }
    }
}

struct PGVaultWriter: VaultKeyWriter {
    let s: PGSession

    func wrappedKeys(subjects: [SubjectKey]) throws -> [SubjectKey: WrappedDataKey] { try PostgresStateStore.fetchVaultKeys(s, subjects) }

    func insertKeys(_ keys: [WrappedDataKey]) throws -> [SubjectKey: WrappedDataKey] {
        for k in keys {
            try s.exec(
                .sql(
                    "INSERT INTO vault_keys(subject_key, key_id, kek, wrapped, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_key) DO NOTHING"
                ) {
                    $0.bytes(k.subject.bytes); $0.bytes(k.keyID); $0.append(k.kek); $0.bytes(k.wrapped); $0.append(k.createdAt)
                })
        }
        return try PostgresStateStore.fetchVaultKeys(s, keys.map(\.subject))
    }

    func destroyKeys(subjects: [SubjectKey]) throws -> [SubjectKey] {
        var gone: [SubjectKey] = []
        for subject in Set(subjects) {
            let n = try s.exec(.sql("DELETE FROM vault_keys WHERE subject_key = $1") { $0.bytes(subject.bytes) })
            if n > 0 { gone.append(subject) }
        }
        return gone.sorted()
    }
}
