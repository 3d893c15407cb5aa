import Foundation
import LetheCore
import LetheEngine
import LetheStorage
import LetheCatalog
import Logging
@testable import LetheRuntime
import LetheTestSupport
import ServiceLifecycle
import Synchronization
import Testing
@testable import LetheS3

/// SQS and S3 event notifications on moto: receive (long poll), batch delete, S3's own delivery of
/// notifications to a queue, and `S3EventIndexService` (the real-time index of `lethe index --watch`).
@Suite(.serialized, .timeLimit(.minutes(10))) struct EventsSQSTests {
    static func credentials(_ moto: MotoServer) -> AWSCredentials { AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey) }

    static func queue(_ moto: MotoServer, _ name: String) async throws -> SQSClient {
        let url = try await SQSClient.createQueue(name: name, endpoint: moto.endpoint, credentials: credentials(moto), region: "us-east-1")
        return try SQSClient(queueURL: url, credentials: credentials(moto), region: "us-east-1")
    }

    /// Messages received until `count` arrived or `seconds` passed (long polls of 1 s).
    static func receive(_ q: SQSClient, count: Int, seconds: Double = 15) async throws -> [SQSMessage] {
        var out: [SQSMessage] = []
        let deadline = Date().addingTimeInterval(seconds)
        while out.count < count && Date() < deadline { out += try await q.receive(max: 10, waitSeconds: 1) }
        return out
    }

    @Test func sendReceiveAndDeleteInBatches() async throws {
        let moto = try MotoServer(auth: true)  // signatures checked
        defer { moto.stop() }
        let q = try await Self.queue(moto, "lake-events")
        for i in 0..<13 { try await q.send(#"{"n":\#(i)}"#) }
        let got = try await Self.receive(q, count: 13)
        #expect(Set(got.map(\.body)).count == 13)
        #expect(got.allSatisfy { $0.receiveCount == 1 })
        #expect(try await q.delete(got).isEmpty)  // two DeleteMessageBatch calls (10 + 3)
        #expect(try await q.receive(max: 10, waitSeconds: 1).isEmpty)
        // A queue that does not exist is a usage error naming the queue, not a retry loop.
        let missing = try SQSClient(queueURL: moto.endpoint + "/123456789012/nope", credentials: Self.credentials(moto), region: "us-east-1")
        let e = await #expect(throws: LetheError.self) { try await missing.receive(waitSeconds: 0) }
        #expect(e?.code == .badInput && e?.description.contains("nope") == true)
        // A wrong secret: refused, never retried as if the server were down.
        let wrong = try SQSClient(
            queueURL: q.queueURL, credentials: AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: "wrong"), region: "us-east-1")
        let w = await #expect(throws: LetheError.self) { try await wrong.receive(waitSeconds: 0) }
        #expect(w?.code == .badInput)
    }

    /// A bucket notification configuration sending ObjectCreated:* and ObjectRemoved:* to the queue.
    /// (`events`: the kinds sent.)
    static func notify(_ store: S3ObjectStore, _ q: SQSClient, events: [String] = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]) async throws {
        let arn = try await q.arn()
        let queue = "<QueueConfiguration><Id>lake-events</Id><Queue>\(arn)</Queue>" + events.map { "<Event>\($0)</Event>" }.joined() + "</QueueConfiguration>"
        let xml = "<NotificationConfiguration>\(queue)</NotificationConfiguration>"
        let r = try await store.client.send("PUT", key: nil, query: [("notification", "")], body: Array(xml.utf8), what: "PutBucketNotification")
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
    }

    @Test func theServerDeliversS3NotificationsThatParse() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let dir = try temporaryFolder("sqs-notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "prod", dir: dir, datasets: "  - {name: events, path: raw/events, format: jsonl, subject: user.id}")
        let store = lethe.store as! S3ObjectStore
        let q = try await Self.queue(moto, "notify")
        try await Self.notify(store, q)
        try await store.put("raw/events/day=1/a b+c.jsonl", Array(#"{"user":{"id":"u-1"}}"#.utf8))
        try await store.delete(["raw/events/day=1/a b+c.jsonl"])
        let got = try await Self.receive(q, count: 3)  // the test event, the put, the delete
        var events: [S3ObjectEvent] = []
        var tests = 0
        for m in got {
            switch try S3EventMessage.parse(Array(m.body.utf8)) {
            case .events(let e): events += e
            case .test: tests += 1
            case .unrelated(let why): Issue.record("unrelated: \(why)")
            }
        }
        #expect(tests == 1)
        #expect(events.map(\.kind) == [.created, .removed])
        #expect(events.compactMap { store.lakeKey(of: $0) } == ["raw/events/day=1/a b+c.jsonl", "raw/events/day=1/a b+c.jsonl"])
    }

    /// Runs `service` in a group until `body` returns, then shuts it down gracefully.
    static func running(_ service: S3EventIndexService, _ body: () async throws -> Void) async throws {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: quiet))
        let task = Task { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            // The service's own error, when it ended first, says more than a missed deadline.
            if case .failure(let serviceError) = await task.result { throw serviceError }
            throw error
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Waits until `condition` holds, up to `seconds` (a deadline, not a sleep); returns the time it took.
    static func until(_ what: String, _ seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Double {
        let start = Date()
        while try await !condition() {
            guard Date().timeIntervalSince(start) < seconds else { throw LetheError.failure("\(what): not within \(seconds) s") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return Date().timeIntervalSince(start)
    }

    @Test func messagesAreDeletedOnlyAfterTheIndexCommitted() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let dir = try temporaryFolder("sqs-once")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "prod", dir: dir, datasets: "  - {name: events, path: raw/events, format: jsonl, subject: user.id}")
        let q = try await Self.queue(moto, "once")
        try await q.send(
            #"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lake"},"object":{"key":"prod/raw/events/a.jsonl"}}}]}"#
        )
        // An index pass that fails (here: a dataset the config does not have) deletes nothing: the message comes back.
        let failing = try S3EventIndexService(lethe: lethe, queue: q, datasets: ["nope"], rescan: 600, waitSeconds: 1) { _ in }
        let first = try await q.receive(max: 10, waitSeconds: 5, visibilityTimeout: 1)
        #expect(first.count == 1)
        await #expect(throws: LetheError.self) { try await failing.handle(first) }
        let again = try await Self.receive(q, count: 1, seconds: 10)
        #expect(again.map(\.id) == first.map(\.id))
        #expect(again.first?.receiveCount == 2)
        // Committed: deleted.
        let working = try S3EventIndexService(lethe: lethe, queue: q, datasets: nil, rescan: 600, waitSeconds: 1) { _ in }
        try await working.handle(again)
        #expect(try await q.receive(max: 10, waitSeconds: 2).isEmpty)
    }

    @Test func theRealTimeIndexFollowsEventsCatchesLostOnesAndSurvivesPoison() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let dir = try temporaryFolder("sqs-watch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try await openS3Lake(
            moto, bucket: "lake", prefix: "prod", dir: dir,
            datasets: """
                  - {name: events, path: raw/events, format: jsonl, subject: user.id}
                  - {name: people, path: raw/people, format: csv, subject: uid}
                """)
        let store = lethe.store as! S3ObjectStore
        try await store.put("raw/events/old.jsonl", Array(#"{"user":{"id":"u-0"}}"#.utf8))
        let q = try await Self.queue(moto, "watch")
        try await Self.notify(store, q)  // moto delivers S3's own documents
        let seen = Mutex<[S3EventIndexService.Event]>([])
        let service = try S3EventIndexService(lethe: lethe, queue: q, datasets: nil, rescan: 4, waitSeconds: 1) { e in
            seen.withLock { $0.append(e) }
        }
        func located(_ u: String) async throws -> [String] { try await lethe.locate(SubjectID(u)).map(\.object.key).sorted() }
        var latencies: [Double] = []
        var rescansBefore = 0
        try await Self.running(service) {
            // The first pass is a full listing: what landed while the watcher was down.
            _ = try await Self.until("the first full pass") { try await located("u-0") == ["raw/events/old.jsonl"] }
            // Put → S3's notification → indexed.
            var t = Date()
            try await store.put("raw/events/new one.jsonl", Array(#"{"user":{"id":"u-1"}}"#.utf8))
            _ = try await Self.until("a put") { try await located("u-1") == ["raw/events/new one.jsonl"] }
            latencies.append(Date().timeIntervalSince(t))
            // Removed → dropped.
            t = Date()
            try await store.delete(["raw/events/new one.jsonl"])
            _ = try await Self.until("a removal") { try await located("u-1").isEmpty }
            latencies.append(Date().timeIntervalSince(t))
            // A poison message and an event of another bucket: reported / ignored; the service goes on.
            try await q.send("this is not JSON")
            try await q.send(
                #"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"elsewhere"},"object":{"key":"prod/raw/events/x.jsonl","sequencer":"01"}}}]}"#
            )
            // Hand-sent documents, as S3 sends them (`+` for a space, duplicates, sequencers out of order).
            try await store.put("raw/people/p q.csv", Array("uid\nu-2\n".utf8))
            let put =
                #"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lake"},"object":{"key":"prod/raw/people/p+q.csv","sequencer":"0A"}}}]}"#
            try await q.send(put)
            try await q.send(put)
            _ = try await Self.until("hand-sent documents") { try await located("u-2") == ["raw/people/p q.csv"] }
            // Both reported before the queue is purged below (under load a rescan may index u-2 first).
            _ = try await Self.until("the poison message and the other bucket's event reported") {
                seen.withLock { events in
                    events.contains { if case .poison = $0 { true } else { false } }
                        && events.contains { if case .indexed(let r, _) = $0 { r.ignoredKeys >= 1 } else { false } }
                }
            }
            // Lost notifications (delivery switched off, the queue purged): the next rescan finds the object.
            rescansBefore = seen.withLock { $0.filter { if case .rescanned = $0 { true } else { false } }.count }
            try await Self.notify(store, q, events: ["s3:ObjectRestore:*"])  // nothing the lake does
            try await q.purge()
            try await store.put("raw/events/lost.jsonl", Array(#"{"user":{"id":"u-3"}}"#.utf8))
            _ = try await Self.until("the rescan") { try await located("u-3") == ["raw/events/lost.jsonl"] }
        }
        let events = seen.withLock { $0 }
        // Found by a rescan (its report comes after its commit: counted once the service stopped).
        #expect(events.filter { if case .rescanned = $0 { true } else { false } }.count > rescansBefore)
        let poison = events.compactMap { if case .poison(_, let reason) = $0 { reason } else { nil } }
        #expect(poison.count == 1 && poison[0].contains("not an S3 event document"))
        #expect(events.contains { if case .indexed(let r, _) = $0 { r.ignoredKeys >= 1 } else { false } })
        // Every message was deleted once indexed: nothing comes back.
        #expect(try await q.receive(max: 10, waitSeconds: 1).isEmpty)
        print("event → locatable on moto: \(latencies.map { String(format: "%.2f s", $0) }.joined(separator: ", "))")
    }
}
