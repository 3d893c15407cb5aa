import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LethePostgres
import LetheRuntime
import LetheTestSupport
import Testing

/// `lethe index --distribute`: index backfill items on a PostgreSQL state, claimed by workers.
@Suite struct IndexItemTests {
    /// The config of the lake in `dir` on a fresh schema (`WorkQueueEngineTests.lake` writes the lake).
    static func config(_ dir: String, _ hint: String) throws -> LakeConfig {
        let server = try PostgresServer.get()
        let yaml = """
            lake: lake
            state: "\(server.url(schema: server.freshSchema(hint), withPassword: false))"
            keys: keys
            datasets:
              - {name: events, path: raw/events, format: jsonl, subject: user.id}
            """
        return try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
    }

    /// What the index holds: every object (key, version, records, status) and every user's postings.
    static func snapshot(_ lethe: Lethe) async throws -> ([String], [String: [String]]) {
        let objects = try await lethe.meta.objects(dataset: "events").map { "\($0.key) \($0.version) \($0.records) \($0.status)" }.sorted()
        var postings: [String: [String]] = [:]
        for i in 0..<60 {
            let u = WorkQueueEngineTests.user(i)
            postings[u] = try await lethe.locate(SubjectID(u)).map { "\($0.object.key) \($0.rows)" }.sorted()
        }
        return (objects, postings)
    }

    /// Runs `workers` workers (one open each, as processes) claiming index items until none is left;
    /// returns how many items each finished, and how many claims ended otherwise.
    static func drain(_ config: LakeConfig, workers: Int) async throws -> (finished: [Int], other: Int) {
        let opened = try (0..<workers).map { _ in try Runtime.open(config: config) }
        defer { for w in opened { (w.meta as? PostgresStateStore)?.close() } }
        let settings = WorkerSettings(lease: .seconds(30), poll: .milliseconds(20))
        return try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (n, w) in opened.enumerated() {
                group.addTask {
                    let q = try #require(w.meta.workQueue)
                    var done = 0, other = 0
                    while let (result, _) = try await w.workOneIndexItem(q, worker: WorkerID("ix-\(n)"), settings: settings) {
                        if result == .finished { done += 1 } else { other += 1 }
                    }
                    return (done, other)
                }
            }
            var finished: [Int] = [], other = 0
            for try await (d, o) in group { finished.append(d); other += o }
            return (finished, other)
        }
    }

    /// 150 objects make three items (64, 64, 22); three workers claim them, each once; the index
    /// they build equals a plain `index` of the same lake, and so does it after a change (an object
    /// removed, one rewritten, one added: only those are enqueued).
    @Test func itemsAreSplitClaimedOnceAndEqualAPlainIndex() async throws {
        let (dir, base) = try WorkQueueEngineTests.lake("ixsplit", objects: 150)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: base)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let plainConfig = try Self.config(dir, "ixplain")
        let plain = try Runtime.open(config: plainConfig)
        defer { (plain.meta as? PostgresStateStore)?.close() }

        let d = try await lethe.distributeIndex()
        #expect(d.items == 3 && d.report.objectsSeen == 150 && d.report.objectsScanned == 0)
        #expect(try await lethe.meta.objects(dataset: "events").isEmpty)
        let (finished, other) = try await Self.drain(base, workers: 3)
        #expect(finished.reduce(0, +) == 3 && other == 0, "\(finished) \(other)")
        let (pending, r) = try await lethe.indexBatchReport(d.batch, base: d.report)
        #expect(pending == 0 && r.objectsScanned == 150 && r.records == 150 * 30, "\(r)")
        #expect(try await lethe.meta.setting(Lethe.indexedSetting("events")) != nil)
        _ = try await plain.index()
        let (a, ap) = try await Self.snapshot(lethe), (b, bp) = try await Self.snapshot(plain)
        #expect(a == b && ap == bp)
        #expect(a.count == 150 && ap.values.allSatisfy { !$0.isEmpty })

        try FileManager.default.removeItem(atPath: dir + "/lake/raw/events/p3.jsonl")
        try (#"{"n":0,"user":{"id":"user-1001"}}"# + "\n").write(toFile: dir + "/lake/raw/events/p4.jsonl", atomically: true, encoding: .utf8)
        try (#"{"n":0,"user":{"id":"user-1002"}}"# + "\n").write(toFile: dir + "/lake/raw/events/new.jsonl", atomically: true, encoding: .utf8)
        let again = try await lethe.distributeIndex()
        #expect(again.items == 1 && again.report.objectsRemoved == 1 && again.report.objectsUnchanged == 148, "\(again.report)")
        let (finished2, _) = try await Self.drain(base, workers: 2)
        #expect(finished2.reduce(0, +) == 1)
        _ = try await plain.index()
        let (c, cp) = try await Self.snapshot(lethe), (e, ep) = try await Self.snapshot(plain)
        #expect(c == e && cp == ep)
        #expect(c.count == 150)
    }

    /// An item whose holder stalled past its lease (as a `kill -9`ed worker does) is claimed again
    /// at the next epoch; the first holder's commit is refused (nothing recorded, the item pending),
    /// the new holder's lands, and no posting is doubled: the index equals a plain `index`.
    @Test func anExpiredLeasesItemIsRedoneWithoutDuplicatePostings() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixlease", objects: 5)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let d = try await lethe.distributeIndex()
        #expect(d.items == 1)
        let q = try #require(lethe.meta.workQueue as? any IndexItemQueue)
        let old = try #require(try await q.claimIndexItem(WorkerID("w1"), ttl: .seconds(60)))
        #expect(try await q.claimIndexItem(WorkerID("w2"), ttl: .seconds(60)) == nil)  // held
        #expect(try await q.renewIndexItem(old, ttl: .zero))  // expires now
        let again = try #require(try await q.claimIndexItem(WorkerID("w2"), ttl: .seconds(60)))
        #expect(again.item == old.item && again.epoch == old.epoch + 1 && again.attempts == 2)
        do {
            _ = try await Indexer(lethe).execute(old)
            Issue.record("an item under a lost lease committed")
        } catch let e as LetheError {
            #expect(e.code == .conflict, "\(e)")
        }
        #expect(try await lethe.meta.objects(dataset: "events").isEmpty)
        #expect(try await q.indexBatch(d.batch).pending == 1)
        #expect(try await !q.renewIndexItem(old, ttl: .seconds(60)))
        _ = try await Indexer(lethe).execute(again)
        #expect(try await q.indexBatch(d.batch) == IndexBatchStatus(pending: 0, done: 1, reports: try await q.indexBatch(d.batch).reports))
        // The item is done: redoing it under the same lease is refused too.
        await #expect(throws: LetheError.self) { _ = try await Indexer(lethe).execute(again) }
        let plain = try Runtime.open(config: try Self.config(dir, "ixleaseplain"))
        defer { (plain.meta as? PostgresStateStore)?.close() }
        _ = try await plain.index()
        let (a, ap) = try await Self.snapshot(lethe), (b, bp) = try await Self.snapshot(plain)
        #expect(a == b && ap == bp && a.count == 5)
    }

    /// An item claimed a fourth time (three holders died in it) ends with the dataset's issue in its
    /// report instead of being scanned again, so `--wait` ends and says so.
    @Test func anItemClaimedAFourthTimeEndsWithAnIssue() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixstuck", objects: 2)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let d = try await lethe.distributeIndex()
        let q = try #require(lethe.meta.workQueue as? any IndexItemQueue)
        var lease: IndexLease?
        for n in 1...4 {
            if let l = lease { #expect(try await q.renewIndexItem(l, ttl: .zero)) }
            lease = try await q.claimIndexItem(WorkerID("w\(n)"), ttl: .seconds(60))
        }
        let last = try #require(lease)
        #expect(last.attempts == 4)
        let r = try await Indexer(lethe).execute(last)
        #expect(r.datasetIssues.count == 1 && r.datasetIssues[0].message.contains("never finished"), "\(r)")
        let (pending, total) = try await lethe.indexBatchReport(d.batch, base: d.report)
        #expect(pending == 0 && total.datasetIssues.count == 1 && total.objectsScanned == 0)
        #expect(try await lethe.meta.objects(dataset: "events").isEmpty)
    }

    /// 200 items claimed by 4 concurrent claimers (4 opens, as processes): each item claimed once,
    /// and finished once through the fence (a claim of another holder's item would show twice).
    @Test func concurrentClaimersClaimEachItemOnce() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixclaim", objects: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let opened = try (0..<4).map { _ in try Runtime.open(config: config) }
        defer { for w in opened { (w.meta as? PostgresStateStore)?.close() } }
        let q0 = try #require(opened[0].meta.workQueue as? any IndexItemQueue)
        try await q0.enqueueIndexItems((0..<200).map { IndexItem(batch: "b", ordinal: Int64($0), dataset: "events", keys: ["k\($0)"]) })
        let claims = try await withThrowingTaskGroup(of: [IndexLease].self) { group in
            for (n, w) in opened.enumerated() {
                group.addTask {
                    let q = try #require(w.meta.workQueue as? any IndexItemQueue)
                    var got: [IndexLease] = []
                    while let l = try await q.claimIndexItem(WorkerID("c\(n)"), ttl: .seconds(60)) {
                        got.append(l)
                        _ = try await w.meta.transaction("finish") { tx in try tx.journal.finishIndexItem(l, report: "{}") }
                    }
                    return got
                }
            }
            var all: [IndexLease] = []
            for try await g in group { all += g }
            return all
        }
        #expect(claims.count == 200 && Set(claims.map(\.item.ordinal)).count == 200 && claims.allSatisfy { $0.epoch == 1 && $0.attempts == 1 })
        #expect(try await q0.indexBatch("b").done == 200)
    }

    /// A Delta table (delta-rs's `cdf-table`) is one item beside the object items: the worker runs the
    /// table's incremental index; the result equals a plain `index` (objects, and the table's cursor).
    @Test func aDeltaTableIsOneItem() async throws {
        let (dir, _) = try WorkQueueEngineTests.lake("ixdelta", objects: 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "/work/corpora/delta-rs/cdf-table", toPath: dir + "/lake/people")
        func config(_ hint: String) throws -> LakeConfig {
            let server = try PostgresServer.get()
            let yaml = """
                lake: lake
                state: "\(server.url(schema: server.freshSchema(hint), withPassword: false))"
                keys: keys
                datasets:
                  - {name: events, path: raw/events, format: jsonl, subject: user.id}
                  - {name: people, path: people, format: delta, subject: name}
                """
            return try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
        }
        let base = try config("ixdelta1")
        let lethe = try Runtime.open(config: base)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let d = try await lethe.distributeIndex()
        #expect(d.items == 2)
        #expect(try await lethe.meta.objects(dataset: "people").isEmpty)
        let (finished, other) = try await Self.drain(base, workers: 2)
        #expect(finished.reduce(0, +) == 2 && other == 0)
        let (pending, r) = try await lethe.indexBatchReport(d.batch, base: d.report)
        #expect(pending == 0 && r.datasetIssues.isEmpty && r.objectsScanned > 3, "\(r)")
        let plain = try Runtime.open(config: try config("ixdelta2"))
        defer { (plain.meta as? PostgresStateStore)?.close() }
        _ = try await plain.index()
        for name in ["events", "people"] {
            let a = try await lethe.meta.objects(dataset: name).map { "\($0.key) \($0.version) \($0.records) \($0.status)" }.sorted()
            let b = try await plain.meta.objects(dataset: name).map { "\($0.key) \($0.version) \($0.records) \($0.status)" }.sorted()
            #expect(a == b && !a.isEmpty, "\(name)")
        }
        #expect(try await lethe.meta.cursors.deltaIndex(dataset: "people") == plain.meta.cursors.deltaIndex(dataset: "people"))
        #expect(try await lethe.meta.cursors.deltaIndex(dataset: "people") != nil)
    }

    /// On a state folder (SQLite) `--distribute` is a usage error (exit 2), one line.
    @Test func distributeNeedsAPostgreSQLState() async throws {
        let dir = NSTemporaryDirectory() + "lethe-ix-sqlite-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/lake/raw/events", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
            lake: lake
            state: state
            datasets:
              - {name: events, path: raw/events, format: jsonl, subject: user.id}
            """
        let lethe = try Runtime.open(config: try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir))
        do {
            _ = try await lethe.distributeIndex()
            Issue.record("--distribute ran on a state folder")
        } catch let e as LetheError {
            #expect(e.code == .badUsage && e.message.contains("PostgreSQL") && !e.message.contains("\n"))
        }
    }
}
