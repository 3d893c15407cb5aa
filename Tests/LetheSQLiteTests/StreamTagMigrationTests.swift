import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// The stream-tag migration on a database written before it: old rows stay readable.
@Test func streamTagMigrationKeepsOldRows() async throws {
    let folder = temporaryStateFolder()
    defer { removeFolder(folder) }
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    do {
        let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
        try SQLiteStateStore.migrator.migrate(pool, upTo: "v1")
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO requests(id, filing, subject_key, sealed_subject, status, reason, requested_by, filed_at,
                        updated_at, decided_by, attempts)
                    VALUES ('r-old', 1, ?, NULL, 'approved', 'why', 'alice', 10, 20, 'bob', 0)
                    """, arguments: [Data(testKey(1).bytes)])
        }
    }
    let store = try SQLiteStateStore(folder: folder)
    let old = try #require(try await store.request(id: "r-old"))
    #expect(old.status == .approved && old.reason == "why" && old.decidedBy == "bob" && old.updatedAt == 20)
    #expect(old.streamTag == nil)
    // Without a tag the old request is not in the stream set; a new one with a tag is.
    var fresh = ErasureRequest(id: "r-new", subjectKey: testKey(2), sealedSubject: nil, reason: "x", requestedBy: "a", at: 30)
    fresh.status = .approved
    fresh.streamTag = 0xFFFF_0000_1234_5678
    try await store.insertRequests([fresh])
    #expect(try await store.request(id: "r-new")?.streamTag == 0xFFFF_0000_1234_5678)
    let ch = try await store.deletionTags(since: Int64.min)
    #expect(ch.added == [0xFFFF_0000_1234_5678] && ch.removed.isEmpty && ch.latest == 30)
    #expect(try await store.deletionTags(since: 31).added.isEmpty)
    let applied = try await store.writer.read { db in try SQLiteStateStore.migrator.appliedIdentifiers(db) }
    #expect(
        applied == [
            "v1", "v2-stream-tags", "v3-dead-objects", "v4-crash-safety", "v5-audit-texts", "v6-seams", "v7-index-cost", "v8-derived-postings", "v9-serve",
            "v10-outbox-lease", "v11-vault", "v12-vault-compact", "v13-vault-prefix", "v14-posting-segments",
        ])
}
