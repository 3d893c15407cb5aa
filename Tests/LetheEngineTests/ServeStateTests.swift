import Foundation
import Synchronization
import Testing
import ServiceLifecycle
import LetheCore
import LetheStorage
import LetheCatalog
import LetheEngine
import LetheRuntime
import LetheTestSupport

/// The state side of `lethe serve` (issue 14) through the engine, on both state stores: API tokens,
/// the notification outbox and its dispatcher, certificates of erasure.
enum ServeStore: String, CaseIterable, Sendable {
    case sqlite, postgres
}

/// A small lake (`ev`: JSON Lines, subject `id`) with users u-1…u-4, its engine on a fresh state of
/// `kind` (a state folder, or a schema of the test PostgreSQL server with its keys in a folder).
struct ServeLake {
    let dir: String
    let lethe: Lethe

    init(_ kind: ServeStore, outbox: Bool = true, now: (@Sendable () -> Int64)? = nil) throws {
        dir = NSTemporaryDirectory() + "lethe-serve-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/lake/ev", withIntermediateDirectories: true)
        var lines = ""
        for i in 0..<12 { lines += #"{"id":"u-\#(i % 4 + 1)","n":\#(i)}"# + "\n" }
        try lines.write(toFile: dir + "/lake/ev/a.jsonl", atomically: true, encoding: .utf8)
        let yaml = "lake: ./lake\ndatasets:\n  - {name: ev, path: ev, format: jsonl, subject: id}\n"
        let config = try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
        let opened: (secrets: StateSecrets, meta: any StateStore)
        switch kind {
        case .sqlite:
            opened = try Runtime.openState(folder: dir + "/state")
        case .postgres:
            let server = try PostgresServer.get()
            opened = try Runtime.openPostgresState(url: server.url(schema: server.freshSchema("serve")), keys: dir + "/keys")
        }
        var l = Lethe(
            config: config, store: LocalObjectStore(root: dir + "/lake"), meta: opened.meta, secrets: opened.secrets,
            stateFolder: kind == .sqlite ? dir + "/state" : nil, now: now ?? { Int64(Date().timeIntervalSince1970 * 1000) })
        l.outboxAlways = outbox
        lethe = l
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

/// A sink that records what it receives and fails on purpose: the first `failFirst[seq]` attempts of a message throw.
final class RecordingSink: NotificationSink, Sendable {
    let name: String
    let events: Set<String>?
    private let state = Mutex<(received: [OutboxMessage], attempts: [Int64: Int], failFirst: [Int64: Int], failEvents: [String: Int])>(
        ([], [:], [:], [:]))
    struct Refused: Error, CustomStringConvertible { var description: String { "HTTP 503 from the test receiver" } }

    init(name: String, events: Set<String>? = nil) { self.name = name; self.events = events }

    func wants(_ event: String) -> Bool { events?.contains(event) ?? true }
    func deliver(_ message: OutboxMessage) async throws {
        let fail = state.withLock { s -> Bool in
            s.attempts[message.seq, default: 0] += 1
            if let n = s.failEvents[message.event], n > 0 {
                s.failEvents[message.event] = n - 1
                return true
            }
            if let n = s.failFirst[message.seq], n > 0 {
                s.failFirst[message.seq] = n - 1
                return true
            }
            s.received.append(message)
            return false
        }
        if fail { throw Refused() }
    }
    /// The first `n` attempts of message `seq` fail.
    func fail(seq: Int64, times n: Int) { state.withLock { $0.failFirst[seq] = n } }
    /// The first `n` attempts of messages of `event` fail (counted over all such messages).
    func failEvent(_ event: String, times n: Int) { state.withLock { $0.failEvents[event] = n } }
    var received: [OutboxMessage] { state.withLock { $0.received } }
    var attempts: [Int64: Int] { state.withLock { $0.attempts } }
}

/// What several sinks received, in order, each message tagged with the sink that delivered it.
final class DeliveryLog: Sendable {
    private let entries = Mutex<[(by: String, message: OutboxMessage)]>([])
    func append(_ by: String, _ m: OutboxMessage) { entries.withLock { $0.append((by, m)) } }
    var all: [(by: String, message: OutboxMessage)] { entries.withLock { $0 } }
    var count: Int { entries.withLock { $0.count } }
}

/// A sink that appends what it receives, tagged with who delivered it, to a log shared by several.
final class SharedLogSink: NotificationSink, Sendable {
    let name: String
    let tag: String
    let log: DeliveryLog
    init(name: String, tag: String, log: DeliveryLog) { self.name = name; self.tag = tag; self.log = log }
    func wants(_ event: String) -> Bool { true }
    func deliver(_ message: OutboxMessage) async throws { log.append(tag, message) }
}

/// A sink whose receiver accepts the first message, and then the process "dies" before recording
/// it: `deliver` does not return until `open()`.
final class BlockingSink: NotificationSink, Sendable {
    let name: String
    private let got = Mutex<[OutboxMessage]>([])
    private let gate = AsyncStream<Void>.makeStream()
    init(name: String) { self.name = name }
    func wants(_ event: String) -> Bool { true }
    func deliver(_ message: OutboxMessage) async throws {
        got.withLock { $0.append(message) }
        for await _ in gate.stream { break }
    }
    func open() { gate.continuation.yield(); gate.continuation.finish() }
    var received: [OutboxMessage] { got.withLock { $0 } }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let t = Atomic<Int64>(1_800_000_000_000)
    var now: Int64 { t.load(ordering: .relaxed) }
    func advance(_ ms: Int64) { _ = t.add(ms, ordering: .relaxed) }
}

/// Passes until a pass sends nothing and read no full page.
func drain(_ d: OutboxDispatcher, _ sink: any NotificationSink) async throws {
    for _ in 0..<50 {
        let r = try await d.pass(sink)
        if r.attempted == 0 && !r.more { return }
    }
    Issue.record("the outbox of \(sink.name) did not drain")
}

@Suite(.timeLimit(.minutes(10))) struct ServeStateTests {
    // MARK: Tokens

    @Test(arguments: ServeStore.allCases)
    func tokensAuthenticateUntilRevokedAndAreStoredOnlyAsAKeyedHash(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        let (bob, secret) = try await l.createToken(name: "bob", role: .approver)
        #expect(secret.hasPrefix("lethe_") && secret.count == 6 + 43)
        #expect(bob.name == "bob" && bob.role == .approver && bob.isLive)
        #expect(try await l.principal(bearer: secret) == Principal(name: "bob", role: .approver))
        #expect(try await l.tokens().first?.lastUsedAt != nil)
        // A wrong, truncated, altered or foreign token is nobody.
        #expect(try await l.principal(bearer: "lethe_" + String(repeating: "A", count: 43)) == nil)
        #expect(try await l.principal(bearer: String(secret.dropLast())) == nil)
        var altered = Array(secret)
        altered[10] = altered[10] == "x" ? "y" : "x"
        #expect(try await l.principal(bearer: String(altered)) == nil)
        #expect(try await l.principal(bearer: "") == nil)
        // The name is unique among live tokens.
        await #expect(throws: LetheError.self) { _ = try await l.createToken(name: "bob", role: .admin) }
        // Stored as HMAC under a key of the installation: the token itself is no key of the table, and its bytes are nowhere in the state.
        #expect(try await l.meta.tokens.token(hash: Array(secret.utf8)) == nil)
        if let scanner = l.meta.residueScanner {
            #expect(try scanner.search(for: [Array(secret.utf8), Array(secret.utf8.dropFirst(6))]).hits.isEmpty)
        }
        // Revoked: nobody, and the name is free again.
        let revoked = try await l.revokeToken(name: "bob")
        #expect(revoked.revokedAt != nil)
        #expect(try await l.principal(bearer: secret) == nil)
        await #expect(throws: LetheError.self) { try await l.revokeToken(name: "bob") }
        let (_, second) = try await l.createToken(name: "bob", role: .requester)
        #expect(try await l.principal(bearer: second) == Principal(name: "bob", role: .requester))
        #expect(second != secret)
        // Each creation and revocation is audited, without the secret.
        let entries = try await l.meta.audit.entries()
        #expect(entries.map(\.event).filter { $0.hasPrefix("token_") } == ["token_created", "token_revoked", "token_created"])
        #expect(!entries.contains { $0.details.contains(secret) || $0.details.contains(second) })
        #expect(try await l.checkAudit().ok)
    }

    // MARK: The outbox

    /// Each notification event is written with its change: filed and planned at forget (one and many
    /// subjects), approved (one and a batch), erased and verified by the run, rejected, failed after a
    /// sweep finds data again is left to the sweep tests; payloads hold no raw id.
    @Test(arguments: ServeStore.allCases)
    func requestChangesWriteTheirNotificationsInTheirTransaction(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let one = try await l.forget([l.subject("u-1")], reason: "ticket 1", by: "alice")[0]
        let many = try await l.forget([l.subject("u-2"), l.subject("u-3"), l.subject("u-4")], reason: "ticket 2", by: "alice")
        _ = try await l.approve([one.id], by: "bob")
        _ = try await l.approve([many[0].id, many[1].id], by: "bob")
        _ = try await l.reject(many[2].id, by: "bob", reason: "duplicate")
        _ = try await l.run()
        let messages = try await l.meta.outbox.messages(after: 0, limit: 1000)
        func events(_ id: String) -> [String] { messages.filter { $0.requestID == id }.map(\.event) }
        #expect(events(one.id) == ["filed", "planned", "approved", "erased", "verified"])
        #expect(events(many[0].id) == ["filed", "planned", "approved", "erased", "verified"])
        #expect(events(many[2].id) == ["filed", "planned", "rejected"])
        let planned = try #require(messages.first { $0.requestID == one.id && $0.event == "planned" })
        #expect(planned.payload["subject_key"]?.string == one.subjectKey.hex && planned.payload["status"]?.string == "planned")
        let plan = try #require(planned.payload["plan"])
        #expect(plan["rows"]?.int == 3 && plan["objects"]?.int == 1)
        #expect(plan["datasets"]?.array?.first?["name"]?.string == "ev" && plan["datasets"]?.array?.first?["rebuild"] == .bool(false))
        for m in messages {
            #expect(Set(m.payload.object.map { Array($0.keys) } ?? []).isSuperset(of: ["event", "request_id", "subject_key", "status", "at"]))
            let text = m.payload.text
            #expect(!text.contains("u-1") && !text.contains("u-2") && !text.contains("ticket") && !text.contains("alice") && !text.contains("duplicate"))
        }
        // Without a sink configured (and no `outboxAlways`), nothing is written.
        var quiet = l
        quiet.outboxAlways = false
        let before = messages.count
        _ = try await quiet.forget([quiet.subject("u-4")], reason: "t", by: "alice")
        #expect(try await l.meta.outbox.messages(after: 0, limit: 1000).count == before)
    }

    /// The dispatcher with a sink that fails on purpose: in order per request (a later message of a
    /// request waits for an earlier one), other requests go on meanwhile, retries back off (not
    /// attempted before their time), a sink's unwanted events count as delivered, a new dispatcher
    /// resumes where the last stopped and nothing delivered is sent again.
    @Test(arguments: ServeStore.allCases)
    func dispatcherDeliversInOrderPerRequestWithRetriesAndResumes(_ kind: ServeStore) async throws {
        let clock = TestClock()
        let lake = try ServeLake(kind, now: { clock.now })
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let hook = RecordingSink(name: "webhook:test")
        let mail = RecordingSink(name: "email", events: ["planned"])
        let backoff = OutboxDispatcher.Backoff(initial: 1_000, cap: 8_000)
        let outcomes = Mutex<[String]>([])
        func dispatcher() -> OutboxDispatcher {
            OutboxDispatcher(
                state: l.meta, sinks: [hook, mail], backoff: backoff, batch: 3, now: { clock.now },
                onDelivery: { s, e, ok in outcomes.withLock { $0.append("\(s) \(e) \(ok)") } })
        }
        let first = dispatcher()
        try await first.register()  // the sinks start here: nothing written before is theirs
        let a = try await l.forget([l.subject("u-1")], reason: "t", by: "alice")[0]
        let b = try await l.forget([l.subject("u-2")], reason: "t", by: "alice")[0]
        // a's `filed` (the first message) fails twice: a's `planned` waits; b's messages go on.
        let aFiled = try #require(try await l.meta.outbox.messages(after: 0, limit: 10).first { $0.requestID == a.id && $0.event == "filed" })
        hook.fail(seq: aFiled.seq, times: 2)
        try await first.pass(hook)
        try await first.pass(hook)
        #expect(hook.received.map { "\($0.requestID!) \($0.event)" } == ["\(b.id) filed", "\(b.id) planned"])
        #expect(hook.attempts[aFiled.seq] == 1)  // not retried before its time
        let d = try await l.meta.outbox.deliveries(seq: aFiled.seq).first { $0.sink == hook.name }
        #expect(d?.attempts == 1 && d?.deliveredAt == nil && d?.lastError == "HTTP 503 from the test receiver")
        #expect(d.map { $0.nextAttemptAt >= clock.now + 500 && $0.nextAttemptAt <= clock.now + 1_000 } == true)
        clock.advance(1_000)
        try await first.pass(hook)  // the second failure: the wait doubles (1 to 2 s)
        #expect(hook.attempts[aFiled.seq] == 2)
        clock.advance(999)
        try await first.pass(hook)
        #expect(hook.attempts[aFiled.seq] == 2)
        clock.advance(1_001)
        // A new dispatcher (a restart after a graceful stop, which gives the lease up) takes over.
        await first.releaseLeases()
        let second = dispatcher()
        try await drain(second, hook)
        try await drain(second, mail)
        let got = hook.received.map { "\($0.requestID!) \($0.event)" }
        #expect(got == ["\(b.id) filed", "\(b.id) planned", "\(a.id) filed", "\(a.id) planned"])
        #expect(mail.received.map(\.event) == ["planned", "planned"])
        // Nothing is pending or sent again; the floors cover everything.
        await second.releaseLeases()
        let third = dispatcher()
        let r = try await third.pass(hook)
        try await drain(third, mail)
        #expect(r.attempted == 0 && hook.received.count == 4 && mail.received.count == 2)
        #expect(try await l.meta.outbox.pending(sink: hook.name, after: 0, limit: 100).isEmpty)
        #expect(try await l.meta.outbox.pending(sink: mail.name, after: 0, limit: 100).isEmpty)
        #expect(try await l.meta.outbox.floor(sink: hook.name) ?? 0 >= aFiled.seq)
        #expect(outcomes.withLock { $0.filter { $0.hasSuffix("false") } } == ["webhook:test filed false", "webhook:test filed false"])
    }

    /// The dispatcher as a service: delivers what is written while it runs, and a graceful shutdown stops it.
    @Test(arguments: ServeStore.allCases)
    func dispatcherServiceDeliversAndStopsOnShutdown(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let hook = RecordingSink(name: "webhook:svc")
        hook.failEvent("planned", times: 1)
        let dispatcher = OutboxDispatcher(state: l.meta, sinks: [hook], backoff: .init(initial: 20, cap: 40), poll: .milliseconds(20))
        try await dispatcher.register()
        let group = ServiceTests.group([.init(service: dispatcher)])
        let running = Task { try await group.run() }
        let rs = try await l.forget([l.subject("u-1"), l.subject("u-2")], reason: "t", by: "alice")
        try await ServiceTests.eventually { hook.received.count == 4 }
        await group.triggerGracefulShutdown()
        try await running.value
        for r in rs { #expect(hook.received.filter { $0.requestID == r.id }.map(\.event) == ["filed", "planned"]) }
    }

    // MARK: Several dispatchers on one state (lease), deliveries not recorded, pruning

    /// Two dispatchers (two `lethe serve`) on one state, each with the same sink: one at a time holds
    /// the sink's lease and delivers; when the holder stops gracefully the other takes over. Every
    /// message is delivered exactly once (no failures here), in order per request, none lost.
    @Test(arguments: ServeStore.allCases)
    func twoDispatchersOnOneStateDeliverEveryMessageOnceInOrderPerRequest(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let log = DeliveryLog()
        let sinks = ["A", "B"].map { SharedLogSink(name: "webhook:shared", tag: $0, log: log) }
        let dispatchers = sinks.map { OutboxDispatcher(state: l.meta, sinks: [$0], poll: .milliseconds(20), holder: "holder-" + $0.tag) }
        try await dispatchers[0].register()
        let groups = dispatchers.map { ServiceTests.group([.init(service: $0)]) }
        let running = groups.map { g in Task { try await g.run() } }
        let first = try await l.forget([l.subject("u-1"), l.subject("u-2")], reason: "t", by: "alice")
        try await ServiceTests.eventually { log.count >= 4 }
        // One dispatcher delivered them all: the holder. It stops (a graceful shutdown gives the lease up).
        let holders = Set(log.all.map(\.by))
        #expect(holders.count == 1)
        let stopped = try #require(holders.first)
        let i = stopped == "A" ? 0 : 1
        #expect(try await l.meta.outbox.lease(sink: "webhook:shared")?.holder == "holder-" + stopped)
        await groups[i].triggerGracefulShutdown()
        try await running[i].value
        let before = log.count
        let second = try await l.forget([l.subject("u-3"), l.subject("u-4")], reason: "t", by: "alice")
        _ = try await l.approve((first + second).map(\.id), by: "bob")
        let all = try await l.meta.outbox.messages(after: 0, limit: 1_000)
        #expect(all.count == 12)
        try await ServiceTests.eventually { log.count >= all.count }
        await groups[1 - i].triggerGracefulShutdown()
        try await running[1 - i].value
        let got = log.all
        // Every message once; after the stop, only the other delivered; in order per request.
        #expect(got.map(\.message.seq).sorted() == all.map(\.seq))
        #expect(Set(got[before...].map(\.by)) == [stopped == "A" ? "B" : "A"])
        for r in first + second {
            let seqs = got.filter { $0.message.requestID == r.id }.map(\.message.seq)
            #expect(seqs == seqs.sorted() && seqs.count == 3)
        }
        #expect(try await l.meta.outbox.pending(sink: "webhook:shared", after: 0, limit: 100).isEmpty)
        #expect(try await l.meta.outbox.lease(sink: "webhook:shared")?.holder == nil)  // released by the last one too
    }

    /// A dispatcher that dies between a delivery and its commit (here: blocked there, its lease let
    /// lapse): the next holder takes the lease over once it has expired and delivers the message
    /// again, with the same `seq` (the idempotency id: `Lethe-Delivery`); the stale holder's commit,
    /// when it comes, is fenced off and records nothing.
    @Test(arguments: ServeStore.allCases)
    func aDeliveryNotRecordedIsSentAgainByTheNextHolderAndTheStaleCommitIsFenced(_ kind: ServeStore) async throws {
        let clock = TestClock()
        let lake = try ServeLake(kind, now: { clock.now })
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let stuck = BlockingSink(name: "webhook:k")
        let dead = OutboxDispatcher(
            state: l.meta, sinks: [stuck], now: { clock.now }, holder: "dead", leaseTTL: .seconds(30), renewEvery: .seconds(86_400))
        try await dead.register()
        let r = try await l.forget([l.subject("u-1")], reason: "t", by: "alice")[0]
        let deadPass = Task { try await dead.pass(stuck) }
        try await ServiceTests.eventually { stuck.received.count == 1 }
        let sent = stuck.received[0]
        #expect(try await l.meta.outbox.lease(sink: "webhook:k")?.holder == "dead")
        // Before the lease expires, nobody else delivers.
        let hook = RecordingSink(name: "webhook:k")
        let next = OutboxDispatcher(state: l.meta, sinks: [hook], now: { clock.now }, holder: "next")
        #expect(try await next.pass(hook).attempted == 0 && hook.received.isEmpty)
        clock.advance(30_001)
        try await drain(next, hook)
        #expect(hook.received.count == 2 && hook.received.first == sent)  // the same message, the same seq
        #expect(hook.received.map(\.event) == ["filed", "planned"] && hook.received.allSatisfy { $0.requestID == r.id })
        // The stale holder wakes up: its commit is refused, nothing of it lands.
        stuck.open()
        do {
            _ = try await deadPass.value
            Issue.record("the stale holder's commit was not fenced")
        } catch let e as LetheError {
            #expect(e.code == .conflict)
        }
        let d = try await l.meta.outbox.deliveries(seq: sent.seq)
        #expect(d.count == 1 && d[0].attempts == 1 && d[0].deliveredAt != nil)
        #expect(try await l.meta.outbox.lease(sink: "webhook:k")?.holder == "next")
        #expect(stuck.received.count == 1)
    }

    /// `keep_delivered_days`: messages settled for every sink and older than the age are deleted; one
    /// a sink has not had (failing, retried later) is never, nor what follows it for that sink.
    @Test(arguments: ServeStore.allCases)
    func dispatcherPrunesDeliveredMessagesOlderThanTheAgeAndNeverUndeliveredOnes(_ kind: ServeStore) async throws {
        let clock = TestClock()
        let lake = try ServeLake(kind, now: { clock.now })
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let hook = RecordingSink(name: "webhook:p")
        let mail = RecordingSink(name: "email", events: ["planned"])
        let d = OutboxDispatcher(state: l.meta, sinks: [hook, mail], now: { clock.now }, keepDelivered: .seconds(86_400))
        try await d.register()
        let a = try await l.forget([l.subject("u-1")], reason: "t", by: "alice")[0]
        clock.advance(1_000)
        let b = try await l.forget([l.subject("u-2")], reason: "t", by: "alice")[0]
        let bFiled = try #require(try await l.meta.outbox.messages(after: 0, limit: 10).first { $0.requestID == b.id && $0.event == "filed" })
        hook.fail(seq: bFiled.seq, times: 1_000)
        try await drain(d, hook)
        try await drain(d, mail)
        #expect(hook.received.map(\.requestID) == [a.id, a.id])
        // Younger than a day: nothing goes.
        #expect(try await d.prune() == 0)
        clock.advance(2 * 86_400_000)
        // a's two messages go (delivered to both sinks); b's stay: its `filed` fails at the hook.
        #expect(try await d.prune() == 2)
        let left = try await l.meta.outbox.messages(after: 0, limit: 100)
        #expect(left.map(\.requestID) == [b.id, b.id])
        #expect(try await l.meta.outbox.pending(sink: hook.name, after: 0, limit: 10).first?.lastError != nil)
        // Once delivered, they go too; a dispatcher without the setting prunes nothing.
        hook.fail(seq: bFiled.seq, times: 0)
        clock.advance(3_600_000)
        try await drain(d, hook)
        #expect(try await OutboxDispatcher(state: l.meta, sinks: [hook, mail], now: { clock.now }).prune() == 0)
        clock.advance(2 * 86_400_000)
        #expect(try await d.prune() == 2)
        #expect(try await l.meta.outbox.messages(after: 0, limit: 100).isEmpty)
        // New messages get new seqs, and are delivered as usual.
        _ = try await l.forget([l.subject("u-3")], reason: "t", by: "alice")
        try await drain(d, hook)
        #expect(hook.received.count == 6 && hook.received.map(\.seq) == hook.received.map(\.seq).sorted())
    }

    // MARK: Certificates

    @Test(arguments: ServeStore.allCases)
    func certificatesAreSignedCanonicalAndFailWhenTamperedOrFromAnotherInstallation(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let r = try await l.forget([l.subject("u-1")], reason: "ticket 7", by: "alice")[0]
        // Not verified: a conflict.
        await #expect(throws: LetheError.self) { _ = try await l.certificate(id: r.id) }
        _ = try await l.approve([r.id], by: "bob")
        _ = try await l.run()
        let cert = try await l.certificate(id: r.id)
        let body = try #require(cert["certificate"])
        #expect(body["request_id"]?.string == r.id && body["subject_key"]?.string == r.subjectKey.hex)
        #expect(body["erased"]?["rows"]?.int == 3 && body["erased"]?["datasets"]?.array?.first?["name"]?.string == "ev")
        #expect(body["verification"]?["proof"]?.string != nil && body["lethe_version"]?.string == Lethe.version)
        let verified = try #require(try await l.meta.audit.entries(requestID: r.id).last { $0.event == "verified" })
        #expect(body["audit_head"]?["seq"]?.int == verified.seq && body["audit_head"]?["hash"]?.string == verified.hash)
        let text = cert.text
        #expect(!text.contains("u-1") && !text.contains("ticket") && !text.contains("alice"))
        let key = try l.signingPublicKey
        #expect(Lethe.verifyCertificate(Array(text.utf8), publicKey: key) == nil)
        // Pretty-printed (other whitespace, other key order) it still verifies: the canonical form is signed.
        let pretty = try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: Data(text.utf8)), options: [.prettyPrinted])
        #expect(Lethe.verifyCertificate(Array(pretty), publicKey: key) == nil)
        // One byte changed in a value fails.
        let rows = #""rows":3"#
        #expect(text.contains(rows))
        let tampered = text.replacingOccurrences(of: rows, with: #""rows":2"#)
        #expect(Lethe.verifyCertificate(Array(tampered.utf8), publicKey: key) == .badSignature)
        // Another installation's key fails, naming the key it was signed with.
        let other = try ServeLake(kind)
        defer { other.remove() }
        let otherKey = try other.lethe.signingPublicKey
        #expect(otherKey != key)
        #expect(
            Lethe.verifyCertificate(Array(text.utf8), publicKey: otherKey)
                == .otherKey(signedWith: Lethe.keyFingerprint(key), expected: Lethe.keyFingerprint(otherKey)))
        // Not a certificate at all.
        guard case .malformed? = Lethe.verifyCertificate(Array("{}".utf8), publicKey: key) else {
            Issue.record("an empty object was not refused as malformed")
            return
        }
    }

    /// `signing.key`: created with the state (mode 0600, fingerprint recorded), the same key on the next
    /// open; a missing file leaves the state usable but issuing a certificate fails naming it; another
    /// key in its place is refused like any other key file.
    @Test func theSigningKeyIsKeptCheckedAndNeverReplacedSilently() throws {
        let lake = try ServeLake(.sqlite)
        defer { lake.remove() }
        let state = lake.dir + "/state", path = state + "/signing.key"
        let key = try lake.lethe.signingPublicKey
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try Runtime.openState(folder: state).secrets.signingKey == lake.lethe.secrets.signingKey)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".aside")
        let opened = try Runtime.openState(folder: state)
        #expect(opened.secrets.signingKey == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        let without = Lethe(config: lake.lethe.config, store: lake.lethe.store, meta: opened.meta, secrets: opened.secrets, stateFolder: state)
        #expect(throws: LetheError.self) { _ = try without.signingPublicKey }
        _ = try StateSecrets.createKey(path)
        #expect(throws: LetheError.self) { _ = try Runtime.openState(folder: state) }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: path + ".aside", toPath: path)
        let back = try Runtime.openState(folder: state)
        let again = Lethe(config: lake.lethe.config, store: lake.lethe.store, meta: back.meta, secrets: back.secrets, stateFolder: state)
        #expect(try again.signingPublicKey == key)
    }

    // MARK: Access audit

    /// 2,500 calls recorded while the service runs (and some just before it stops) are all in the audit
    /// log, in a few `api_calls` entries (batches, not one commit each), with principals by reference, the
    /// request a call was about finding the entry, no body; the chain still verifies.
    @Test(arguments: ServeStore.allCases)
    func apiCallsAreAuditedInBatchesAndFlushedOnShutdown(_ kind: ServeStore) async throws {
        let lake = try ServeLake(kind)
        defer { lake.remove() }
        let l = lake.lethe
        _ = try await l.index()
        let r = try await l.forget([l.subject("u-1")], reason: "t", by: "alice")[0]
        let before = try await l.meta.audit.entries().count
        let access = AccessAuditService(lethe: l, interval: .milliseconds(50), maxBatch: 500)
        let group = ServiceTests.group([.init(service: access)])
        let running = Task { try await group.run() }
        let bob = Principal(name: "bob", role: .approver), svc = Principal(name: "pipeline", role: .stream)
        for i in 0..<2_500 {
            let p = i % 3 == 0 ? nil : (i % 3 == 1 ? bob : svc)
            access.record(
                APICall(principal: p, method: "POST", route: "/v1/locate", status: p == nil ? 401 : 200, requestID: i == 7 ? r.id : nil, at: Int64(i)))
            if i % 500 == 0 { await Task.yield() }
        }
        try await Task.sleep(for: .milliseconds(200))
        for i in 0..<10 { access.record(APICall(principal: bob, method: "GET", route: "/v1/audit/head", status: 200, at: Int64(10_000 + i))) }
        await group.triggerGracefulShutdown()
        try await running.value
        let entries = try await l.meta.audit.entries().dropFirst(before).filter { $0.event == "api_calls" }
        var total = 0
        for e in entries {
            let d = try JSONValue.parse(Array(e.details.utf8))
            total += d["calls"]?.array?.count ?? 0
            #expect(d["count"]?.int == Int64(d["calls"]?.array?.count ?? -1))
            #expect(!e.details.contains("\"bob\"") && !e.details.contains("pipeline"))
        }
        #expect(total == 2_510)
        #expect(entries.count >= 6 && entries.count <= 60)
        #expect(try await l.meta.audit.entries(requestID: r.id).contains { $0.event == "api_calls" })
        #expect(try await l.checkAudit().ok)
    }
}
