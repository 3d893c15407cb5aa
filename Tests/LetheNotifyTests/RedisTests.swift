import Foundation
import LetheCatalog
import LetheCore
import LetheNotify
import LetheSQLite
import LetheTestSupport
import Logging
import ServiceLifecycle
import Testing

/// The RESP2 client and the deletion-set sink against a real redis-server on a free loopback port,
/// checked with `redis-cli`.
@Suite(.timeLimit(.minutes(10))) struct RedisTests {
    @Test("commands one at a time and pipelined; error replies; a large value across many reads")
    func commands() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let url = try RedisURL(server.url)
        try await RedisConnection.with(url) { redis in
            #expect(try await redis.command("PING") == .simple("PONG"))
            #expect(try await redis.command("SET", "k", "v") == .simple("OK"))
            #expect(try await redis.command("GET", "k") == .bulk(Array("v".utf8)))
            #expect(try await redis.command("GET", "missing") == .null)
            let replies = try await redis.pipeline((0..<200).map { _ in ["INCR", "n"] } + [["LPUSH", "k", "x"], ["LRANGE", "nothing", "0", "-1"]])
            #expect(replies.prefix(200).map(\.integer) == (1...200).map { Int64($0) })
            if case .error(let e) = replies[200] {
                #expect(e.hasPrefix("WRONGTYPE"))
            } else {
                Issue.record("LPUSH on a string gave \(replies[200]), not an error reply")
            }
            #expect(replies[201] == .array([]))
            do {
                let e = await thrown {
                    try await redis.command("LPUSH", "k", "x")
                }
                #expect(e.contains("LPUSH") && e.contains("WRONGTYPE"))
            }
            let big = String(repeating: "0123456789abcdef", count: 1 << 16)  // 1 MiB
            try await redis.command("SET", "big", big)
            #expect(try await redis.command("GET", "big").string == big)
            #expect(try await redis.command("SADD", "s", "a", "b", "c").integer == 3)
            #expect(Set((try await redis.command("SMEMBERS", "s").array ?? []).compactMap(\.string)) == ["a", "b", "c"])
        }
        #expect(try server.cli(["GET", "n"]).trimmingCharacters(in: .whitespacesAndNewlines) == "200")
    }

    @Test("AUTH and SELECT from the URL; a wrong password fails without repeating it")
    func authAndSelect() async throws {
        let server = try RedisServer(password: "s3cret-pw")
        defer { server.stop() }
        try await RedisConnection.with(try RedisURL("redis://:s3cret-pw@127.0.0.1:\(server.port)/3")) { redis in
            _ = try await redis.command("SET", "where", "db3")
        }
        #expect(try server.cli(["-n", "3", "GET", "where"]).trimmingCharacters(in: .whitespacesAndNewlines) == "db3")
        #expect(try server.cli(["-n", "0", "EXISTS", "where"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        // The default user named explicitly (AUTH user password).
        let pong = try await RedisConnection.with(try RedisURL("redis://default:s3cret-pw@127.0.0.1:\(server.port)")) { redis in
            try await redis.command("PING")
        }
        #expect(pong == .simple("PONG"))
        do {
            let e = await thrown {
                try await RedisConnection.with(try RedisURL("redis://:wrong-pw@127.0.0.1:\(server.port)")) { _ in }
            }
            #expect(e.contains("AUTH") && (e.contains("WRONGPASS") || e.contains("invalid")) && !e.contains("wrong-pw"))
        }
        do {
            let e = await thrown {
                try await RedisConnection.with(try RedisURL("redis://127.0.0.1:\(server.port)")) { redis in try await redis.command("GET", "x") }
            }
            #expect(e.contains("NOAUTH"))
        }
    }

    @Test("Redis URLs: defaults, user info, database; errors name stream.redis and hide the password")
    func urls() throws {
        let u = try RedisURL("redis://alice:pw%40x@cache.local:6380/2")
        #expect(u.host == "cache.local" && u.port == 6380 && u.user == "alice" && u.password == "pw@x" && u.database == 2)
        #expect(u.description == "redis://alice:***@cache.local:6380/2")
        let d = try RedisURL("redis://127.0.0.1")
        #expect(d.port == 6379 && d.database == 0 && d.user == nil && d.password == nil)
        for bad in ["http://x", "redis://", "redis://h/notadb", "rediss://h:1", "redis://h:0"] {
            do {
                let e = thrown {
                    try RedisURL(bad)
                }
                #expect(e.contains("stream.redis"))
            }
        }
    }

    // MARK: the deletion-set sink

    /// A real SQLite state holding requests with stream tags: the sink's source is its `deletionTags`.
    final class Requests: Sendable {
        let store: SQLiteStateStore
        init() throws { store = try SQLiteStateStore(inMemory: nil) }

        static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

        func add(_ id: String, tag: UInt64, status: RequestStatus) async throws {
            try await add([(id, tag)], status: status)
        }

        func add(_ items: [(String, UInt64)], status: RequestStatus) async throws {
            let at = Self.now()
            let rs = items.map { id, tag in
                var key = [UInt8](repeating: 0, count: 32)
                withUnsafeBytes(of: tag.bigEndian) { for (i, b) in $0.enumerated() { key[i] = b } }
                var r = ErasureRequest(id: id, subjectKey: SubjectKey(bytes: key), sealedSubject: nil, reason: "t", requestedBy: "alice", at: at)
                r.streamTag = tag
                r.status = status
                return r
            }
            try await store.transaction("add") { tx in for r in rs { try tx.insertRequest(r) } }
        }

        func move(_ id: String, to status: RequestStatus) async throws {
            guard var r = try await store.request(id: id) else { throw LetheError.failure("no request \(id)") }
            let old = r.status
            r.status = status
            r.updatedAt = Self.now()
            try await store.transaction("move") { [r] tx in try tx.updateRequest(r, expecting: old) }
        }

        var source: RedisDeletionSink.Source { { [store] since in try await store.deletionTags(since: since) } }
    }

    static func members(_ server: RedisServer, _ key: String) throws -> Set<String> {
        Set(try server.cli(["SMEMBERS", key]).split(separator: "\n").map { String($0) })
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    /// Generous: the whole test run on two cores starves the cooperative pool for minutes at a time (CI saw 20 s pass).
    static func eventually(_ seconds: Double = 120, _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return true }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return try condition()
    }

    static func sink(_ server: RedisServer, _ requests: Requests, key: String = "lethe:deletions") throws -> RedisDeletionSink {
        var o = RedisDeletionSink.Options()
        o.interval = 0.05
        o.maxBackoff = 0.5
        o.timeout = 30  // a round trip starved by the whole parallel run must not read as Redis failing
        o.batch = 100
        o.pipelineDepth = 4
        var logger = Logger(label: "redis-sink-test")
        logger.logLevel = .critical
        return try RedisDeletionSink(config: StreamSinkConfig(redis: server.url, key: key), options: o, logger: logger, source: requests.source)
    }

    @Test("full sync replaces what the key held; then approvals are added and tampering is repaired")
    func syncsAndFollows() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let requests = try Requests()
        try await requests.add("r-1", tag: 0x11, status: .approved)
        try await requests.add("r-2", tag: 0x22, status: .planned)  // not forgotten (yet)
        try await requests.add("r-3", tag: 0xabcd_ef00_1234_5678, status: .verified)
        try await requests.add("r-4", tag: 0x44, status: .planned)
        // 2,500 more forgotten subjects: many SADD batches over several round trips.
        try await requests.add((0..<2500).map { ("r-bulk-\($0)", UInt64(0x1_0000_0000) + UInt64($0)) }, status: .erased)
        try server.cli(["SADD", "lethe:deletions", "stale-member"])
        let sink = try Self.sink(server, requests)
        let run = Task { try await sink.run() }
        defer { run.cancel() }

        #expect(try await Self.eventually { sink.status.fullSyncs >= 1 })
        var expected = Set(["0000000000000011", "abcdef0012345678"] + (0..<2500).map { RedisDeletionSink.member(UInt64(0x1_0000_0000) + UInt64($0)) })
        #expect(try Self.members(server, "lethe:deletions") == expected)
        #expect(sink.status.members == 2502)
        // No temporary key left behind.
        #expect(try server.cli(["KEYS", "lethe:deletions:sync:*"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

        // An approval adds its tag; a rejection removes nothing that is forgotten.
        try await requests.move("r-2", to: .approved)
        expected.insert("0000000000000022")
        #expect(try await Self.eventually { try Self.members(server, "lethe:deletions") == expected })
        try await requests.move("r-4", to: .rejected)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try Self.members(server, "lethe:deletions") == expected)

        // Someone adds or removes members behind Lethe's back: SCARD disagrees, a full resync repairs it.
        let syncs = sink.status.fullSyncs
        try server.cli(["SADD", "lethe:deletions", "intruder"])
        #expect(try await Self.eventually { try sink.status.fullSyncs > syncs && Self.members(server, "lethe:deletions") == expected })
        try server.cli(["SREM", "lethe:deletions", "0000000000000011"])
        #expect(try await Self.eventually { try Self.members(server, "lethe:deletions") == expected })
        // A starved pool can time out a round trip (2 s) and reconnect: the sink must come back synced, not stay so throughout.
        #expect(try await Self.eventually { sink.status.synced && sink.status.lastError == nil })
    }

    @Test("a Redis restart mid-run: the sink reconnects with backoff and resyncs, including changes made while Redis was down")
    func survivesRestart() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let requests = try Requests()
        try await requests.add("r-1", tag: 1, status: .approved)
        let sink = try Self.sink(server, requests)
        let run = Task { try await sink.run() }
        defer { run.cancel() }
        #expect(try await Self.eventually { try Self.members(server, "lethe:deletions") == ["0000000000000001"] })

        // Restarted empty (no persistence): the set is rebuilt.
        try server.restart()
        #expect(try await Self.eventually { try Self.members(server, "lethe:deletions") == ["0000000000000001"] })
        #expect(try await Self.eventually { sink.status.reconnects >= 1 && sink.status.fullSyncs >= 2 })

        // Down for a while; a request approved meanwhile is there once Redis is back.
        server.stop()
        try await requests.add("r-2", tag: 2, status: .approved)
        #expect(try await Self.eventually { sink.status.synced == false && sink.status.lastError != nil })
        try server.start()
        #expect(try await Self.eventually { try Self.members(server, "lethe:deletions") == ["0000000000000001", "0000000000000002"] })
        #expect(try await Self.eventually { sink.status.synced })
    }

    @Test("a full sync cut short (Redis out of memory) leaves a temporary key with a TTL, and the next sync deletes it")
    func aSyncCutShortIsCleanedUp() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let requests = try Requests()
        try await requests.add((0..<5000).map { ("r-\($0)", UInt64(0x2_0000_0000) + UInt64($0)) }, status: .erased)
        // Room for a few SADD batches, not for the whole set: Redis refuses the rest with OOM.
        let info = try server.cli(["INFO", "memory"])
        let used = try #require(
            info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
                .flatMap { Int($0.dropFirst("used_memory:".count).trimmingCharacters(in: .whitespaces)) })
        try server.cli(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        try server.cli(["CONFIG", "SET", "maxmemory", "\(used + 150_000)"])
        let sink = try Self.sink(server, requests)
        let run = Task { try await sink.run() }
        defer { run.cancel() }

        #expect(try await Self.eventually { sink.status.lastError?.contains("OOM") == true })
        // Retries go on; at no moment is more than one attempt's key there, and a key there expires.
        var seen = 0
        for _ in 0..<40 {
            let left = try server.cli(["KEYS", "lethe:deletions:sync:*"]).split(whereSeparator: \.isNewline).map(String.init)
            #expect(left.count <= 1)  // each retry deletes the previous attempt's key first
            if let k = left.first, let ttl = Int(try server.cli(["TTL", k]).trimmingCharacters(in: .whitespacesAndNewlines)), ttl != -2 {
                #expect(ttl > 0)
                seen += 1
            }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        #expect(seen > 0)
        #expect(sink.status.fullSyncs == 0)

        try server.cli(["CONFIG", "SET", "maxmemory", "0"])
        #expect(try await Self.eventually { sink.status.fullSyncs >= 1 })
        #expect(try Self.members(server, "lethe:deletions").count == 5000)
        #expect(try server.cli(["KEYS", "lethe:deletions:sync:*"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test("graceful shutdown of its service group ends the sink")
    func gracefulShutdown() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let requests = try Requests()
        let sink = try Self.sink(server, requests, key: "other:key")
        var logger = Logger(label: "group")
        logger.logLevel = .critical
        let group = ServiceGroup(configuration: .init(services: [sink], logger: logger))
        let run = Task { try await group.run() }
        #expect(try await Self.eventually { sink.status.fullSyncs >= 1 })
        #expect(try server.cli(["EXISTS", "other:key"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0")  // empty set: no key
        await group.triggerGracefulShutdown()
        try await run.value  // returns: the sink ended (the suite's time limit is the hang guard)
    }

    @Test("members are 16 lowercase hex digits of the tag")
    func member() {
        #expect(RedisDeletionSink.member(0) == "0000000000000000")
        #expect(RedisDeletionSink.member(0xABC) == "0000000000000abc")
        #expect(RedisDeletionSink.member(UInt64.max) == "ffffffffffffffff")
    }
}
