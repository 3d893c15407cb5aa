import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
@testable import LethePostgres
import LetheRuntime
import LetheTestSupport
import Synchronization
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
    /// A plain `lethe index` of the same lake into schema `schema`: the objects and postings `lethe`
    /// holds, and how many objects they are.
    static func plainIndex(_ dir: String, _ schema: String) async throws -> (objects: [String], postings: [String: [String]]) {
        let plain = try Runtime.open(config: try config(dir, schema))
        defer { (plain.meta as? PostgresStateStore)?.close() }
        _ = try await plain.index()
        return try await snapshot(plain)
    }

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
        let (a, ap) = try await Self.snapshot(lethe), (b, bp) = try await Self.plainIndex(dir, "ixleaseplain")
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

    /// Runs one statement in the schema of `lethe`'s state (tests: triggers, probes); the rows it
    /// returned or changed.
    @discardableResult
    static func sql(_ lethe: Lethe, _ statement: String) async throws -> Int {
        try await lethe.meta.transaction("test sql") { tx in try (tx as! PGTransaction).session.exec(.sql(statement)) }
    }

    /// The audit of item ends and object writes: triggers record, in the transaction that makes
    /// them, each item's move to `done` and each write of an `objects` row (with its transaction id).
    static func installEndAudit(_ lethe: Lethe) async throws {
        for statement in [
            "CREATE TABLE audit_item_ends(batch text, ordinal bigint, epoch bigint, owner text)",
            "CREATE TABLE audit_object_writes(key text, tx bigint)",
            """
            CREATE FUNCTION audit_item_end() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.state = 'done' AND OLD.state <> 'done' THEN
                INSERT INTO audit_item_ends VALUES (NEW.batch, NEW.ordinal, NEW.lease_epoch, NEW.done_by);
              END IF;
              RETURN NEW;
            END $$
            """,
            "CREATE TRIGGER audit_item_end AFTER UPDATE ON index_items FOR EACH ROW EXECUTE FUNCTION audit_item_end()",
            """
            CREATE FUNCTION audit_object_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO audit_object_writes VALUES (NEW.key, txid_current());
              RETURN NEW;
            END $$
            """,
            "CREATE TRIGGER audit_object_write AFTER INSERT OR UPDATE ON objects FOR EACH ROW EXECUTE FUNCTION audit_object_write()",
        ] {
            _ = try await sql(lethe, statement)
        }
    }

    /// After a holder's end commits, its own lease's renewal (one that waited for the end's row lock)
    /// answers "held", not "lost": the worker reports the item finished, not lost to another. A lease
    /// that expired and was claimed again, or was released, still answers "lost".
    @Test func aRenewalMeetingItsOwnEndIsNoLostLease() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixrenew", objects: 1)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let q = try #require(lethe.meta.workQueue as? any IndexItemQueue)
        try await q.enqueueIndexItems((0..<3).map { IndexItem(batch: "r", ordinal: Int64($0), dataset: "events", keys: ["k\($0)"]) })
        func end(_ l: IndexLease) async throws { _ = try await lethe.meta.transaction("end") { tx in try tx.journal.finishIndexItem(l, report: "{}") } }

        let mine = try #require(try await q.claimIndexItem(WorkerID("w1"), ttl: .seconds(60)))
        try await end(mine)
        #expect(try await q.renewIndexItem(mine, ttl: .seconds(60)), "a renewal after the holder's own end reported a lost lease")
        let ended = "batch = 'r' AND ordinal = \(mine.item.ordinal) AND state = 'done' AND lease_until IS NULL"
        #expect(try await Self.sql(lethe, "SELECT 1 FROM index_items WHERE \(ended)") == 1)

        let stale = try #require(try await q.claimIndexItem(WorkerID("w1"), ttl: .seconds(60)))
        #expect(try await q.renewIndexItem(stale, ttl: .zero))  // expires now
        let taken = try #require(try await q.claimIndexItem(WorkerID("w2"), ttl: .seconds(60)))
        #expect(taken.item == stale.item && taken.epoch == stale.epoch + 1)
        try await end(taken)
        #expect(try await !q.renewIndexItem(stale, ttl: .seconds(60)))
        #expect(try await q.renewIndexItem(taken, ttl: .seconds(60)))

        let given = try #require(try await q.claimIndexItem(WorkerID("w1"), ttl: .seconds(60)))
        try await q.releaseIndexItem(given)
        #expect(try await !q.renewIndexItem(given, ttl: .seconds(60)))
    }

    /// An error a worker meets in an item after its lease expired and another worker took the item
    /// over (a Delta table's postings written meanwhile by the next holder) is a lost lease, not the
    /// worker's end; the same error under a lease still held ends the worker.
    @Test func anErrorAfterTheLeaseWasLostIsALostLease() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixerr", objects: 2)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        let wq = try #require(lethe.meta.workQueue)
        let q = try #require(wq as? any IndexItemQueue)
        _ = try await lethe.distributeIndex()
        let settings = WorkerSettings(lease: .seconds(60), poll: .milliseconds(20))
        let takeOver: @Sendable () async throws -> Void = {
            try await Self.sql(lethe, "UPDATE index_items SET lease_until = now() - interval '1 second'")
            #expect(try await q.claimIndexItem(WorkerID("w2"), ttl: .seconds(60)) != nil)
            throw LetheError(.io, "met after the lease was lost")
        }
        let lost = try await Indexer.$beforeItemEnd.withValue(takeOver) {
            try await lethe.workOneIndexItem(wq, worker: WorkerID("w1"), settings: settings)
        }
        #expect(lost?.result == .leaseLost)

        try await q.enqueueIndexItems([IndexItem(batch: "e", ordinal: 0, dataset: "events", keys: ["raw/events/p0.jsonl"])])
        let held: @Sendable () async throws -> Void = { throw LetheError(.io, "met under a held lease") }
        await #expect(throws: LetheError.self) {
            _ = try await Indexer.$beforeItemEnd.withValue(held) {
                try await lethe.workOneIndexItem(wq, worker: WorkerID("w3"), settings: settings)
            }
        }
    }

    /// Four concurrent claimers (four opens, as processes) on 24 items of 2 objects. Every third
    /// item's first holder stalls past its lease (its lease expires mid-item): it waits until another
    /// claimer has taken the item over — for even items also until that holder has ended it, for odd
    /// ones while the new holder is still in it — then tries to end it. Triggers audit, in the
    /// transactions that make them, each item's end and each write of an object's row: every item
    /// ends once, every object is written by one transaction, every stale holder is refused, exactly
    /// one holder per item reports it finished, and the index equals a plain `index`.
    @Test func leasesExpiringMidItemEndEachItemOnceAndWriteItsPostingsOnce() async throws {
        let (dir, config) = try WorkQueueEngineTests.lake("ixstale", objects: 48)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try Runtime.open(config: config)
        defer { (lethe.meta as? PostgresStateStore)?.close() }
        try await Self.installEndAudit(lethe)
        let (cut, _) = try await Indexer(lethe).distribute(datasets: nil, batch: "stale")
        let keys = cut.flatMap(\.keys).sorted()
        #expect(keys.count == 48)
        let items = stride(from: 0, to: keys.count, by: 2).map {
            IndexItem(batch: "stale", ordinal: Int64($0 / 2), dataset: "events", keys: Array(keys[$0..<$0 + 2]), fingerprint: cut[0].fingerprint)
        }
        let q0 = try #require(lethe.meta.workQueue as? any IndexItemQueue)
        try await q0.enqueueIndexItems(items)

        let opened = try (0..<4).map { _ in try Runtime.open(config: config) }
        defer { for w in opened { (w.meta as? PostgresStateStore)?.close() } }
        // (ordinal, epoch, finished) of every claim.
        let outcomes = Locked<[(Int64, Int64, Bool)]>([])
        try await withThrowingTaskGroup(of: Void.self) { claimers in
            for (n, w) in opened.enumerated() {
                claimers.addTask {
                    let q = try #require(w.meta.workQueue as? any IndexItemQueue)
                    try await withThrowingTaskGroup(of: Void.self) { holders in
                        while true {
                            guard let lease = try await q.claimIndexItem(WorkerID("s\(n)"), ttl: .seconds(60)) else {
                                if try await q.indexBatch("stale").pending == 0 { break }
                                try await Task.sleep(for: .milliseconds(5))
                                continue
                            }
                            let ordinal = lease.item.ordinal
                            let stalls = lease.attempts == 1 && ordinal % 3 == 0
                            if stalls { #expect(try await q.renewIndexItem(lease, ttl: .zero)) }  // its lease runs out mid-item
                            let hook: @Sendable () async throws -> Void = {
                                if stalls {
                                    // Until another holder has the item (even items: until it has ended it).
                                    let until = ordinal % 2 == 0 ? "state = 'done'" : "lease_epoch > \(lease.epoch)"
                                    for _ in 0..<4000 {
                                        if try await Self.sql(w, "SELECT 1 FROM index_items WHERE batch = 'stale' AND ordinal = \(ordinal) AND \(until)") == 1 {
                                            return
                                        }
                                        try await Task.sleep(for: .milliseconds(5))
                                    }
                                } else if lease.attempts > 1 && ordinal % 2 == 1 {
                                    try await Task.sleep(for: .milliseconds(100))  // the stale holder comes while this one is in it
                                }
                            }
                            holders.addTask {
                                let finished: Bool
                                do {
                                    _ = try await Indexer.$beforeItemEnd.withValue(hook) { try await Indexer(w).execute(lease) }
                                    finished = true
                                } catch let e as LetheError where e.code == .conflict {
                                    finished = false
                                }
                                outcomes.withLock { $0.append((ordinal, lease.epoch, finished)) }
                            }
                        }
                        try await holders.waitForAll()
                    }
                }
            }
            try await claimers.waitForAll()
        }

        let all = outcomes.withLock { $0 }
        for ordinal in 0..<Int64(24) {
            let mine = all.filter { $0.0 == ordinal }
            #expect(mine.filter(\.2).count == 1, "item \(ordinal): \(mine)")
            if ordinal % 3 == 0 {
                #expect(mine.count == 2 && mine.contains { $0.1 == 1 && !$0.2 } && mine.contains { $0.1 == 2 && $0.2 }, "item \(ordinal): \(mine)")
            }
        }
        // Each item ended once; a stalled item by its second holder.
        #expect(try await Self.sql(lethe, "SELECT 1 FROM audit_item_ends WHERE batch = 'stale'") == 24)
        #expect(try await Self.sql(lethe, "SELECT ordinal FROM audit_item_ends WHERE batch = 'stale' GROUP BY ordinal") == 24)
        #expect(try await Self.sql(lethe, "SELECT 1 FROM audit_item_ends WHERE batch = 'stale' AND ordinal % 3 = 0 AND epoch <> 2") == 0)
        // Each object's row (and its postings, replaced with it) written by one transaction.
        #expect(try await Self.sql(lethe, "SELECT DISTINCT key FROM audit_object_writes") == 48)
        #expect(try await Self.sql(lethe, "SELECT key FROM audit_object_writes GROUP BY key HAVING count(DISTINCT tx) <> 1") == 0)
        #expect(try await q0.indexBatch("stale").pending == 0)
        #expect(try await lethe.meta.setting(Lethe.indexedSetting("events")) != nil)

        let (a, ap) = try await Self.snapshot(lethe), (b, bp) = try await Self.plainIndex(dir, "ixstaleplain")
        #expect(a == b && ap == bp && a.count == 48)
    }

    /// A Delta table (delta-rs's `cdf-table`) is one item beside the object items: the worker runs the
    /// table's incremental index; the result equals a plain `index` (objects, and the table's cursor).
    @Test func aDeltaTableIsOneItem() async throws {
        let (dir, _) = try WorkQueueEngineTests.lake("ixdelta", objects: 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: try Corpora.deltaRsTable("cdf-table"), toPath: dir + "/lake/people")
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
