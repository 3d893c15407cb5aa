import Foundation
import LetheCatalog
import LetheCore
import LetheEngine
import LethePostgres
import LetheRuntime
import LetheTestSupport
import Testing

/// The engine on a PostgreSQL state, opened through `Runtime` from a `lethe.yaml` (`state:
/// postgres://…`, `keys:`): a local JSON Lines lake indexed, a subject forgotten, approved, erased
/// and verified; other subjects' records kept; the audit chain intact; the state's residue scan
/// (every table and the keys folder) finds no raw id; a second open with the keys works, one with
/// other keys is refused.
@Suite struct PostgresEngineFlowTests {
    @Test func forgetApproveRunVerifiedWithAPostgresState() async throws {
        let server = try PostgresServer.get()
        let schema = server.freshSchema("flow")
        let dir = NSTemporaryDirectory() + "lethe-pg-flow-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lake/raw/events", withIntermediateDirectories: true)
        func user(_ i: Int) -> String { "user-\(1000 + i % 7)" }
        for part in 0..<3 {
            var lines = ""
            for j in 0..<30 { lines += #"{"n":\#(j),"user":{"id":"\#(user(part + j))"}}"# + "\n" }
            try lines.write(toFile: dir + "/lake/raw/events/p\(part).jsonl", atomically: true, encoding: .utf8)
        }
        let yaml = """
            lake: lake
            state: "\(server.url(schema: schema, withPassword: false))"
            keys: keys
            datasets:
              - {name: events, path: raw/events, format: jsonl, subject: user.id}
            """
        setenv("PGPASSWORD", server.password, 1)
        let config = try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
        let lethe = try Runtime.open(config: config)
        #expect(lethe.stateFolder == nil)
        #expect(FileManager.default.fileExists(atPath: dir + "/keys/secret.key"))

        let idx = try await lethe.index()
        #expect(idx.quarantined.isEmpty)
        let filed = try await lethe.forget([SubjectID("user-1003")], reason: "erasure request", by: "alice")
        _ = try await lethe.approve(filed.map(\.id), by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty)
        let r = try await lethe.request(filed[0].id)
        #expect(r.status == .verified)
        var kept = 0, gone = 0
        for part in 0..<3 {
            let text = try String(contentsOfFile: dir + "/lake/raw/events/p\(part).jsonl", encoding: .utf8)
            for l in text.split(separator: "\n") { if l.contains("user-1003") { gone += 1 } else { kept += 1 } }
        }
        #expect(gone == 0)
        let expectedKept = (0..<3).reduce(0) { a, p in a + (0..<30).filter { user(p + $0) != "user-1003" }.count }
        #expect(kept == expectedKept)
        let audit = try await lethe.checkAudit()
        #expect(audit.ok, "\(audit.reason ?? "")")
        let scanner = try #require(lethe.meta.residueScanner)
        #expect(try scanner.search(for: [Array("user-1003".utf8)]).hits.isEmpty)
        let full = try await lethe.verify(ids: [filed[0].id])
        #expect(full.count == 1 && full[0].clean)
        (lethe.meta as? PostgresStateStore)?.close()

        // Reopened read-only with the same keys: the request reads back.
        let again = try Runtime.open(config: config, readOnly: true)
        #expect(try await again.request(filed[0].id).status == .verified)
        (again.meta as? PostgresStateStore)?.close()
        // Other keys are refused, naming the keys folder.
        var other = config
        other.keysFolder = dir + "/other-keys"
        #expect(throws: LetheError.self) { _ = try Runtime.open(config: other) }
    }

    /// `state: postgres://…` without `keys:` is refused when the config is read.
    @Test func aPostgresStateNeedsAKeysFolder() throws {
        #expect(throws: LetheError.self) {
            _ = try LakeConfig.parse(
                """
                lake: /tmp
                state: postgres://lethe@127.0.0.1:5432/db
                datasets:
                  - {name: events, path: raw/events, format: jsonl, subject: user.id}
                """, file: "lethe.yaml", baseDir: "/tmp")
        }
    }
}
