import Foundation
import GRDB
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog
import Synchronization

/// `purge(rawIDs:)`: the state it leaves equals purging each id alone, and it reads each table once
/// whatever the number of ids (the per-id purge reads four or more tables per id).
@Suite struct BatchPurgeTests {
    static let ids: [[UInt8]] =
        (0..<300).map { Array(String(format: "u-%07d", $0 * 7).utf8) } + [Array("u7".utf8), Array("x9".utf8), Array("acct-123456".utf8)]

    /// A state with object names, audit texts, requests and settings naming some ids (and near misses).
    func seeded() async throws -> SQLiteStateStore {
        let store = try SQLiteStateStore(inMemory: nil)
        try await store.transaction("seed") { tx in
            var keys: [String] = []
            for i in 0..<600 {
                keys.append(String(format: "raw/user_id=u-%07d/part-0.jsonl", i))
                keys.append(String(format: "raw/p/u-%07d1.jsonl", i))  // a longer id: not a token of u-…
            }
            keys += ["p/u7/a.json", "p/u77/b.json", "p/x9=1/c.json", "k/x9/d.json", "keep.json", "acct-123456.csv"]
            _ = try tx.index.objectRefs(dataset: "d", keys: keys)
            for i in 0..<200 {
                var r = ErasureRequest(
                    id: "r-\(i)", subjectKey: SubjectKey(bytes: [UInt8](repeating: UInt8(i % 250), count: 32)), sealedSubject: [1],
                    reason: String(format: "ticket about u-%07d and u-%07d9", i, i), requestedBy: i % 10 == 0 ? "u7" : "alice", at: Int64(i))
                r.failure = i % 3 == 0 ? String(format: "residue in raw/u-%07d.jsonl", i * 7) : nil
                r.plan = Array(String(format: #"{"objects":["u-%07d"]}"#, i).utf8)
                r.decidedBy = i % 11 == 0 ? "x9" : nil
                try tx.requests.insert(r)
                _ = try tx.audit.text(String(format: "said u-%07d", i))
                _ = try tx.audit.text(i % 2 == 0 ? "u7" : "u77")
            }
            try tx.cursors.setSetting("dataset.d.issue", "unreadable raw/u-0000014.jsonl and acct-123456")
        }
        return store
    }

    /// Everything `purge` may change, as comparable text.
    func snapshot(_ s: SQLiteStateStore) async throws -> [String] {
        try await s.writer.read { db in
            var out: [String] = []
            for (sql, label) in [
                ("SELECT key FROM object_names ORDER BY key", "name"),
                ("SELECT id || ':' || coalesce(text, '-') || ':' || (purged_at IS NOT NULL) FROM audit_texts ORDER BY id", "text"),
                (
                    "SELECT id || ':' || reason || ':' || requested_by || ':' || coalesce(decided_by, '-') || ':' || coalesce(failure, '-') || ':' || coalesce(CAST(plan AS TEXT), '-') || ':' || coalesce(requested_by_hmac, '-') FROM requests ORDER BY filing",
                    "request"
                ),
                ("SELECT name || ':' || value FROM settings ORDER BY name", "setting"),
            ] {
                out += try String.fetchAll(db, sql: sql).map { "\(label) \($0)" }
            }
            return out
        }
    }

    /// Counts the statements that read each table while `body` runs (through SQLite's trace).
    func readsPerTable(_ s: SQLiteStateStore, _ body: () async throws -> Void) async throws -> [String: Int] {
        let counts = Mutex<[String: Int]>([:])
        try await s.writer.write { db in
            db.trace(options: .statement) { event in
                guard case .statement(let st) = event else { return }
                let sql = st.sql
                guard sql.uppercased().hasPrefix("SELECT") else { return }
                for t in ["object_names", "audit_texts", "requests", "settings", "cursors"] where sql.contains("FROM \(t)") {
                    counts.withLock { $0[t, default: 0] += 1 }
                }
            }
        }
        try await body()
        try await s.writer.write { db in db.trace(options: .statement, nil) }
        return counts.withLock { $0 }
    }

    @Test func purgeOfManyIdsIsOnePassPerTable() async throws {
        let batched = try await seeded(), single = try await seeded()
        let reads = try await readsPerTable(batched) {
            _ = try await batched.transaction("t") { tx in try tx.purge(rawIDs: Self.ids) }
        }
        for id in Self.ids { _ = try await single.purge(rawID: id, substring: id.count >= purgeSubstringMinimum) }
        let a = try await snapshot(batched), b = try await snapshot(single)
        #expect(a.count == b.count)
        let differ = zip(a, b).filter { $0 != $1 }
        #expect(differ.isEmpty, "\(differ.prefix(3))")
        #expect(
            a.first { $0.hasPrefix("request r-0:") }
                == "request r-0:ticket about [erased] and u-00000009:[erased]:[erased]:residue in raw/[erased].jsonl:{\"objects\":[\"[erased]\"]}:"
                + batched.textDigest("u7"))
        #expect(!a.contains { $0.hasPrefix("name ") && $0.contains("user_id=u-0000007/") })
        #expect(a.contains("name p/u77/b.json") && a.contains("name keep.json") && !a.contains("name p/u7/a.json"))
        // One read of each table, whatever the number of ids.
        #expect(reads == ["object_names": 1, "audit_texts": 1, "requests": 1, "settings": 1, "cursors": 1])
    }
}
