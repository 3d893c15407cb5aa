import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// `v6-seams` on a state written by the build before it (schema v5): cursors move out of the
/// settings into typed rows, journal steps get their kind, and everything reads back as before.
@Suite struct MigrationV6Tests {
    /// A Delta index cursor as the engine wrote it into `delta.<d>.indexed` under v5.
    static let deltaText = #"{"checks":2,"columns":[["user","id"]],"partitions":{"user_id":"string"},"utc":[null],"version":12}"#

    /// The steps of one pending job, one of every kind, as v5 stored them (no kind column).
    static let v5Steps: [(dataset: String, key: String, kind: JournalStep.Kind)] = [
        ("raw", "raw/a.jsonl", .object), ("tbl", "_delta_log", .deltaTable), ("users", "", .rebuild),
        ("bad", "!dataset-issue", .datasetIssue), ("", "", .settle),
    ]

    func v5State() async throws -> String {
        let folder = temporaryStateFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pool = try DatabasePool(path: folder + "/" + SQLiteStateStore.fileName)
        try SQLiteStateStore.migrator.migrate(pool, upTo: "v5-audit-texts")
        try await pool.write { db in
            for (name, value) in [
                ("delta.tbl.indexed", Self.deltaText), ("delta.odd.name.indexed", "not json"),
                ("propagation.tbl.version", "41"), ("propagation.weird.version", "x"),
                ("dataset.raw.indexed", "1700000000000"), ("key.secret.key.fingerprint", "ab"),
            ] {
                try db.execute(sql: "INSERT INTO settings(name, value) VALUES (?, ?)", arguments: [name, value])
            }
            for (i, s) in Self.v5Steps.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO journal(job, ordinal, dataset, object_key, request_ids, subject_keys, state, outcome, attempts)
                        VALUES ('j-1', ?, ?, ?, '["r-1"]', ?, 'pending', NULL, 0)
                        """, arguments: [i, s.dataset, s.key, Data(testKey(1).bytes)])
            }
            try db.execute(
                sql: """
                    INSERT INTO requests(id, filing, subject_key, sealed_subject, status, reason, requested_by, filed_at, updated_at, attempts)
                    VALUES ('r-1', 1, ?, NULL, 'running', 'why', 'alice', 10, 20, 0)
                    """, arguments: [Data(testKey(1).bytes)])
        }
        return folder
    }

    @Test func aV5StateOpensWithCursorsAndKindsReadingBackEqual() async throws {
        let folder = try await v5State()
        defer { removeFolder(folder) }
        // Read-only, the unmigrated state is refused naming a writing command (as for every migration).
        do {
            _ = try SQLiteStateStore(folder: folder, readOnly: true)
            Issue.record("a v5 state opened read-only")
        } catch let e as LetheError {
            #expect(e.code == .badInput && e.message.contains("run a writing command"))
        }

        let store = try SQLiteStateStore(folder: folder)
        // Cursors: typed, and under their old setting names with the same text.
        let cursor = try #require(try await store.cursors.deltaIndex(dataset: "tbl"))
        #expect(cursor == DeltaIndexCursor(version: 12, columns: [["user", "id"]], partitions: ["user_id": "string"], utc: [nil], checks: 2))
        #expect(cursor.text == Self.deltaText)
        #expect(try await store.setting("delta.tbl.indexed") == Self.deltaText)
        #expect(try await store.cursors.deltaIndex(dataset: "odd.name") == nil)  // kept, unreadable: a full listing next time
        #expect(try await store.setting("delta.odd.name.indexed") == "not json")
        #expect(try await store.cursors.propagation(dataset: "tbl") == 41)
        #expect(try await store.setting("propagation.tbl.version") == "41")
        #expect(try await store.cursors.propagation(dataset: "weird") == nil)
        #expect(try await store.setting("propagation.weird.version") == "x")
        #expect(try await store.setting("dataset.raw.indexed") == "1700000000000")
        #expect(try await store.settings(prefix: "delta.") == ["delta.tbl.indexed": Self.deltaText, "delta.odd.name.indexed": "not json"])
        // The cursors left the settings table (what stayed there: the plain settings and the odd propagation value).
        let left = try await store.writer.read { db in try String.fetchAll(db, sql: "SELECT name FROM settings ORDER BY name") }
        #expect(left == ["dataset.raw.indexed", "key.secret.key.fingerprint", "propagation.weird.version"])

        // Journal kinds: stored, equal to what the sentinels implied.
        let steps = try await store.pendingSteps()
        #expect(steps.map(\.kind) == Self.v5Steps.map(\.kind))
        #expect(steps.map(\.objectKey) == Self.v5Steps.map(\.key))
        let stored = try await store.writer.read { db in try String.fetchAll(db, sql: "SELECT kind FROM journal ORDER BY ordinal") }
        #expect(stored == ["object", "delta_table", "rebuild", "dataset_issue", "settle"])
        // Requests by subject: indexed.
        let indexes = try await store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'")
        }
        #expect(indexes.contains("requests_subject"))
        // Now migrated, a read-only open works and reads the same.
        let ro = try SQLiteStateStore(folder: folder, readOnly: true)
        #expect(try await ro.cursors.deltaIndex(dataset: "tbl") == cursor)
        #expect(try await ro.pendingSteps() == steps)
    }

    @Test func cursorsWrittenByTypeOrBySettingNameAreTheSame() async throws {
        let store = try SQLiteStateStore(inMemory: nil)
        let c = DeltaIndexCursor(version: 3, columns: [["a"], ["b", "c"]], partitions: [:], utc: [true, nil], checks: 2)
        try await store.transaction("t") { tx in
            try tx.cursors.setDeltaIndex(c, dataset: "d")
            try tx.cursors.setPropagation(9, dataset: "d")
        }
        #expect(try await store.setting("delta.d.indexed") == c.text)
        #expect(try await store.setting("propagation.d.version") == "9")
        try await store.setSetting("propagation.d.version", "10")
        #expect(try await store.cursors.propagation(dataset: "d") == 10)
        var later = c
        later.version = 4
        try await store.setSetting("delta.d.indexed", later.text)
        #expect(try await store.cursors.deltaIndex(dataset: "d") == later)
        try await store.removeSetting("delta.d.indexed")
        #expect(try await store.cursors.deltaIndex(dataset: "d") == nil)
        #expect(try await store.setting("delta.d.indexed") == nil)
        // A step's kind is stored as given.
        let step = JournalStep(job: "j", ordinal: 0, dataset: "raw", objectKey: "raw/a", requestIDs: [], subjectKeys: [], kind: .rebuild)
        try await store.createJob([step])
        #expect(try await store.steps(job: "j").map(\.kind) == [.rebuild])
    }
}
