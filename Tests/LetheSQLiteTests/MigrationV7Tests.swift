import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// `v7-index-cost` on a state written by the build before it (schema v6): requests get their raw id
/// deadline and what destroyed a raw id before (verification, rejection), audit entries are indexed
/// per request, objects get a nullable `added_version`, and the sweep's tables exist.
@Suite struct MigrationV7Tests {
    static let day: Int64 = 86_400_000

    func v6State() async throws -> String {
        let folder = temporaryStateFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
        try SQLiteStateStore.migrator.migrate(pool, upTo: "v6-seams")
        try await pool.write { db in
            // (id, sealed, status, filed_at, updated_at, verification)
            let rows: [(String, Data?, String, Int64, Int64, Data?)] = [
                ("r-verified", nil, "verified", 1_000, 5_000, Data("{}".utf8)),
                ("r-planned", Data([1, 2, 3]), "planned", 2_000, 2_000, nil),
                ("r-erased", Data([4, 5]), "erased", 3_000, 4_000, nil),
                ("r-rejected", nil, "rejected", 4_000, 6_000, nil),
            ]
            for (i, r) in rows.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO requests(id, filing, subject_key, sealed_subject, status, reason, requested_by, filed_at, updated_at,
                            verification, attempts)
                        VALUES (?, ?, ?, ?, ?, 'why', 'alice', ?, ?, ?, 0)
                        """, arguments: [r.0, i + 1, Data(testKey(UInt8(i + 1)).bytes), r.1, r.2, r.3, r.4, r.5])
            }
            for (seq, request) in [(1, "r-verified"), (2, nil), (3, "r-planned"), (4, "r-verified")] as [(Int64, String?)] {
                try db.execute(
                    sql: "INSERT INTO audit(seq, at, event, request_id, actor, details, prev_hash, hash) VALUES (?, 1, 'filed', ?, NULL, '{}', 'p', 'h')",
                    arguments: [seq, request])
            }
            try db.execute(
                sql: """
                    INSERT INTO objects(dataset, key, size, mtime, version, records, status, indexed_at)
                    VALUES ('tbl', 'part-0.parquet', 10, 1, 'v', 3, 'indexed', 1)
                    """)
        }
        return folder
    }

    @Test func migrationV7() async throws {
        let folder = try await v6State()
        defer { removeFolder(folder) }
        let store = try SQLiteStateStore(folder: folder)

        let verified = try #require(try await store.request(id: "r-verified"))
        #expect(verified.status == .verified && verified.sealedSubject == nil)
        #expect(verified.rawDestroyedAt == 5_000 && verified.rawDestroyedWhy == "verified")
        #expect(verified.proof == "full" && verified.sweptAt == nil && verified.rawDueAt == 1_000 + 25 * Self.day)
        let planned = try #require(try await store.request(id: "r-planned"))
        #expect(planned.sealedSubject == [1, 2, 3] && planned.rawDestroyedAt == nil && planned.rawDestroyedWhy == nil)
        #expect(planned.rawDueAt == 2_000 + 25 * Self.day && planned.proof == nil)
        let rejected = try #require(try await store.request(id: "r-rejected"))
        #expect(rejected.rawDestroyedAt == 6_000 && rejected.rawDestroyedWhy == "rejected")

        // Audit entries of each request, from the back-filled index.
        #expect(try await store.audit.entries(requestID: "r-verified").map(\.seq) == [1, 4])
        #expect(try await store.audit.entries(requestID: "r-planned").map(\.seq) == [3])
        // Verified before v7: unswept (the sweep examines them keyed-only).
        #expect(try await store.requests.unswept(after: nil, limit: 10).items.map(\.id) == ["r-verified"])
        // Raw ids still held are destroyed at filing + 25 days.
        #expect(try await store.requests.rawIDsDue(now: 2_000 + 25 * Self.day, limit: 10).map(\.id) == ["r-planned"])
        #expect(try await store.requests.rawIDsDue(now: 3_000 + 25 * Self.day, limit: 10).map(\.id) == ["r-planned", "r-erased"])

        // The new columns and tables exist (added_version empty).
        let (addedVersion, names) = try await store.writer.read { db in
            (
                try Row.fetchOne(db, sql: "SELECT added_version FROM objects")?[0] as Int64?,
                Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"))
            )
        }
        #expect(addedVersion == nil)
        // (`unswept` and `rawIDsDue` above read through the partial indexes: `INDEXED BY` fails when one cannot serve.)
        #expect(names.isSuperset(of: ["request_sweeps", "sweeps", "audit_requests", "requests_unswept", "requests_raw_due"]))
    }

    @Test func newRequestFieldsReadBackAndADestroyedRawIDStaysDestroyed() async throws {
        let store = try SQLiteStateStore()
        var r = ErasureRequest(id: "r-1", subjectKey: testKey(1), sealedSubject: [9, 9], reason: "t", requestedBy: "alice", at: 10)
        r.status = .verified
        r.rawDueAt = 99
        r.proof = "index"
        try await store.insertRequest(r)
        var swept = r
        swept.sweptAt = 50
        swept.sealedSubject = nil
        swept.rawDestroyedAt = 50
        swept.rawDestroyedWhy = "swept"
        swept.sweepFindings = [1, 2]
        try await store.updateRequest(swept, expecting: .verified)
        #expect(try await store.request(id: "r-1") == swept)
        #expect(try await store.requests.unswept(after: nil, limit: 10).items.isEmpty)
        // An older copy that still holds the raw id does not bring it back, nor its destruction's time and reason.
        try await store.updateRequest(r, expecting: .verified)
        let back = try #require(try await store.request(id: "r-1"))
        #expect(back.sealedSubject == nil && back.rawDestroyedAt == 50 && back.rawDestroyedWhy == "swept")
    }
}
