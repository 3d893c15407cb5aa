import Foundation
import LetheCatalog
import LetheCore
@testable import LethePostgres
import LetheTestSupport
import LetheTesting
import Testing

/// A store on the test process's PostgreSQL server (`PostgresServer`, started on first use) in a
/// schema of its own, its audit chain keyed with `key`.
func freshStore(_ hint: String, key: [UInt8]? = [UInt8](repeating: 0x42, count: 32), readOnly: Bool = false) throws -> (PostgresStateStore, String) {
    let server = try PostgresServer.get()
    let schema = server.freshSchema(hint)
    let store = try PostgresStateStore(url: server.url(schema: schema), readOnly: readOnly)
    store.setAuditKey(key)
    return (store, schema)
}

@Suite("PostgreSQL state store")
struct PostgresStateStoreTests {
    @Test(arguments: StateStoreContract.Check.allCases)
    func contract(_ check: StateStoreContract.Check) async throws {
        let key = [UInt8](repeating: 0x42, count: 32)
        var opened: PostgresStateStore?
        defer { opened?.close() }
        try await StateStoreContract.run(check, auditKey: key) {
            let (s, _) = try freshStore(check.rawValue, key: key)
            opened = s
            return s
        }
    }

    /// Two store instances (two pools, as two processes would have) append to one audit log at once:
    /// the sequence numbers are contiguous and the chain verifies.
    @Test func auditChainStaysIntactWithConcurrentAppendersFromTwoStores() async throws {
        let server = try PostgresServer.get()
        let schema = server.freshSchema("audit-race")
        let key = [UInt8](repeating: 7, count: 32)
        let a = try PostgresStateStore(url: server.url(schema: schema))
        let b = try PostgresStateStore(url: server.url(schema: schema))
        defer { a.close(); b.close() }
        a.setAuditKey(key)
        b.setAuditKey(key)
        let perTask = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, store) in [a, b, a, b, a, b].enumerated() {
                group.addTask {
                    for i in 0..<perTask {
                        try await store.transaction("append") { tx in
                            _ = try tx.audit.append(.filed, requestID: "r-\(n)-\(i)", actor: "w\(n)", details: "{}", at: Int64(i))
                            if i % 3 == 0 { _ = try tx.audit.append(.planned, requestID: "r-\(n)-\(i)", actor: "w\(n)", details: "{}", at: Int64(i)) }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let entries = try await a.audit.entries()
        let expected = 6 * (perTask + (perTask + 2) / 3)
        #expect(entries.count == expected)
        #expect(entries.map(\.seq) == Array(1...Int64(expected)))
        var v = AuditChainVerifier(key: key)
        v.feed(entries)
        let result = v.finish()
        #expect(result.ok, "\(result.reason ?? "")")
        #expect(try await b.audit.head() == entries.last)
    }

    /// A store opened read-only refuses every write, and refuses a schema that does not exist.
    @Test func aReadOnlyOpenRefusesWrites() async throws {
        let server = try PostgresServer.get()
        let (writer, schema) = try freshStore("read-only")
        defer { writer.close() }
        try await writer.insertRequest(StateStoreContract.filed("r-1", 1))
        let reader = try PostgresStateStore(url: server.url(schema: schema), readOnly: true)
        defer { reader.close() }
        #expect(try await reader.request(id: "r-1")?.id == "r-1")
        await #expect(throws: LetheError.self) { try await reader.insertRequest(StateStoreContract.filed("r-2", 2)) }
        #expect(try await writer.request(id: "r-2") == nil)
        #expect(throws: LetheError.self) { try reader.setSettingNow("x", "1") }
        #expect(try reader.settingNow("x") == nil)
        // A read-only open of a schema that holds no state is refused (nothing is created).
        let missing = server.freshSchema("none")
        #expect(throws: LetheError.self) { _ = try PostgresStateStore(url: server.url(schema: missing), readOnly: true) }
        #expect(throws: LetheError.self) { _ = try PostgresStateStore(url: server.url(schema: missing), readOnly: true) }
    }

    /// Concurrent first opens of one schema migrate it once; reopening finds it applied and keeps the
    /// installation; a dropped schema makes `checkIntact` fail.
    @Test func concurrentOpenersMigrateOnceAndADroppedSchemaIsNoticed() async throws {
        let server = try PostgresServer.get()
        let schema = server.freshSchema("migrate")
        let url = server.url(schema: schema)
        let stores = try await withThrowingTaskGroup(of: PostgresStateStore.self) { group in
            for _ in 0..<4 { group.addTask { try PostgresStateStore(url: url) } }
            var out: [PostgresStateStore] = []
            for try await s in group { out.append(s) }
            return out
        }
        defer { for s in stores { s.close() } }
        for s in stores { try s.checkIntact() }
        try await stores[0].setSetting("k", "v")
        #expect(try await stores[3].setting("k") == "v")
        try server.superuserSQL("DROP SCHEMA \(schema) CASCADE")
        #expect(throws: LetheError.self) { try stores[1].checkIntact() }
    }

    /// The URL: password from the URL or PGPASSWORD, schema parameter, errors never naming the password.
    @Test func urlsParseAndErrorsNeverNameThePassword() throws {
        let l = try PostgresLocation(url: "postgres://bob:s%40cret@db.example:6543/lethe?schema=prod_1", environment: [:])
        #expect(l.host == "db.example" && l.port == 6543 && l.user == "bob" && l.password == "s@cret" && l.database == "lethe" && l.schema == "prod_1")
        #expect(!l.description.contains("cret"))
        let env = try PostgresLocation(url: "postgresql://bob@h/db", environment: ["PGPASSWORD": "pw"])
        #expect(env.password == "pw" && env.port == 5432 && env.schema == "lethe")
        for bad in ["mysql://h/db", "postgres://bob:pw@h:99999/db", "postgres://bob:pw@h/db?schema=Bad-Name", "postgres://bob:pw@h"] {
            #expect(throws: LetheError.self) { _ = try PostgresLocation(url: bad, environment: [:]) }
        }
        // A wrong password: one line naming host:port, without the password.
        let server = try PostgresServer.get()
        let url = "postgres://\(server.user):wrong-secret-123@\(server.host):\(server.port)/\(server.database)"
        do {
            _ = try PostgresStateStore(url: url)
            Issue.record("a wrong password opened the state")
        } catch let e as LetheError {
            let text = "\(e)"
            #expect(text.contains("\(server.host):\(server.port)") && !text.contains("wrong-secret-123") && !text.contains("\n"), "\(text)")
        }
    }

    /// The residue scan reads every table (text and bytea cells) and names `table.column`.
    @Test func residueScanFindsARawIDInAnyTable() async throws {
        let (s, _) = try freshStore("residue")
        defer { s.close() }
        let id = "acct-98765-xyz"
        try await s.setSetting("note", "about \(id)")
        _ = try await s.objectRefs(dataset: "d", keys: ["d/user=\(id)/a.json"])
        var r = StateStoreContract.filed("r-1", 1)
        r.plan = Array("{\"id\":\"\(id)\"}".utf8)
        try await s.insertRequest(r)
        let scanner = try #require(s.residueScanner)
        let (tables, hits) = try scanner.search(for: [Array(id.utf8), Array("absent-id-000".utf8)])
        #expect(tables >= 10)
        #expect(Set(hits[Array(id.utf8)] ?? []) == ["settings.value", "object_names.key", "requests.plan"])
        #expect(hits[Array("absent-id-000".utf8)] == nil)
        let purged = try await s.transaction("t") { tx in try tx.purge(rawIDs: [Array(id.utf8)]) }
        #expect(purged >= 3)
        #expect(try scanner.search(for: [Array(id.utf8)]).hits.isEmpty)
    }

    /// Two transactions that lock two rows in opposite orders deadlock; the server aborts one
    /// (40P01), the store runs its body again, and both commit.
    @Test func aDeadlockIsRetriedAndBothTransactionsCommit() async throws {
        let (s, _) = try freshStore("deadlock")
        defer { s.close() }
        try await s.setSetting("a", "0")
        try await s.setSetting("b", "0")
        let aHeld = LockedFlag(), bHeld = LockedFlag(), attempts = LockedCounter()
        @Sendable func waitFor(_ f: LockedFlag) {
            let deadline = Date().addingTimeInterval(5)
            while !f.value && Date() < deadline { usleep(5_000) }
        }
        async let one: Void = s.transaction("one") { tx in
            attempts.add()
            try tx.cursors.setSetting("a", "1")
            aHeld.set()
            waitFor(bHeld)
            try tx.cursors.setSetting("b", "1")
        }
        async let two: Void = s.transaction("two") { tx in
            attempts.add()
            try tx.cursors.setSetting("b", "2")
            bHeld.set()
            waitFor(aHeld)
            try tx.cursors.setSetting("a", "2")
        }
        _ = try await (one, two)
        #expect(attempts.value >= 3)  // one body ran again (rarely both: each backend may find the cycle)
        let a = try await s.setting("a"), b = try await s.setting("b")
        #expect((a == "1" && b == "1") || (a == "2" && b == "2"), "a=\(a ?? "nil") b=\(b ?? "nil")")
    }

    /// The server ends the connection in the middle of a transaction (`pg_terminate_backend`):
    /// nothing of it lands, and the store runs the body again on a new connection, once.
    @Test func aConnectionLostBeforeCommitIsRetriedAndNothingOfItLands() async throws {
        let server = try PostgresServer.get()
        let (s, _) = try freshStore("terminate")
        defer { s.close() }
        let attempts = LockedCounter()
        try await s.transaction("t") { tx in
            attempts.add()
            try tx.requests.insert(StateStoreContract.filed("r-1", 1))
            if attempts.value == 1 {
                let pid = try PostgresStateStore.backendPID(tx)
                try server.superuserSQL("SELECT pg_terminate_backend(\(pid))")
            }
            try tx.cursors.setSetting("x", "1")
        }
        #expect(attempts.value == 2)
        #expect(try await s.requests.requests(status: nil).map(\.id) == ["r-1"])
        #expect(try await s.setting("x") == "1")
    }

    /// The run lock: a second holder waits until the first releases.
    @Test func runLockExcludesASecondHolder() async throws {
        let server = try PostgresServer.get()
        let schema = server.freshSchema("lock")
        let a = try PostgresStateStore(url: server.url(schema: schema))
        let b = try PostgresStateStore(url: server.url(schema: schema))
        defer { a.close(); b.close() }
        let first = try #require(try await a.acquireRunLock(progress: nil))
        let waited = LockedFlag()
        let second = Task { try await b.acquireRunLock(progress: { _ in waited.set() }) }
        while !waited.value { try await Task.sleep(nanoseconds: 20_000_000) }
        first.release()
        let got = try await second.value
        #expect(got != nil)
        got?.release()
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
