import Foundation
import Synchronization
import Testing
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
@testable import LetheSQLite
import LetheTesting

/// Batched requests (`forget --from`, `approve --all`): chunks of `requestChunk` requests per write
/// transaction with one audit entry per chunk, and the raw id's deadline.
@Suite struct BatchRequestsTests {
    /// A lake of one JSONL object holding `u-0000000` … `u-(n-1)`, over an in-memory SQLite state seen
    /// through a counting `FaultInjectingStateStore`, with a clock the test moves.
    struct Lake {
        let store = InMemoryObjectStore()
        let base: SQLiteStateStore
        let meta: FaultInjectingStateStore
        let clock = Clock()
        let lethe: Lethe

        init(users: Int = 10, yaml: String = Fixture.yaml) throws {
            let config = try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp")
            let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))
            base = try SQLiteStateStore(inMemory: nil)
            meta = FaultInjectingStateStore(base: base)
            let clock = self.clock
            lethe = Lethe(config: config, store: store, meta: meta, secrets: secrets, stateFolder: nil, now: { clock.now })
            var text = ""
            for i in 0..<users { text += #"{"user":{"id":"\#(Self.user(i))"}}"# + "\n" }
            store.set("raw/a.jsonl", Array(text.utf8))
        }

        static func user(_ i: Int) -> String { String(format: "u-%07d", i) }
        func advance(days: Double) { clock.advance(Int64(days * 86_400_000)) }
    }

    final class Clock: Sendable {
        let ms = Atomic<Int64>(1_700_000_000_000)
        var now: Int64 { ms.load(ordering: .relaxed) }
        func advance(_ by: Int64) { ms.add(by, ordering: .relaxed) }
    }

    @Test func forgetOf20kUsesAtMostThreeWriteTransactions() async throws {
        let lake = try Lake(users: 100)
        _ = try await lake.lethe.index()
        let before = lake.meta.transactionsCommitted
        let subjects = (0..<20_000).map { SubjectID(Lake.user($0)) }
        let rs = try await lake.lethe.forget(subjects, reason: "ticket 9", by: "alice")
        #expect(rs.count == 20_000 && rs.allSatisfy { $0.status == .planned && $0.rawDueAt == $0.filedAt + 25 * 86_400_000 })
        #expect(lake.meta.transactionsCommitted - before <= 3)
        // One `filed_batch` entry per chunk of 10,000 (not two entries per request), listing ids and keys, no raw id.
        let entries = try await lake.base.auditEntries()
        #expect(entries.map(\.event) == ["filed_batch", "filed_batch"])
        #expect(entries.allSatisfy { $0.requestID == nil && !$0.details.contains("u-00") })
        #expect(entries[0].details.contains(rs[0].id) && entries[0].details.contains(rs[0].subjectKey.hex))
        #expect(entries[1].details.contains(rs[19_999].id) && !entries[0].details.contains(rs[19_999].id))
        // The plan is the one a single forget makes: the 100 present subjects have one row each.
        #expect(rs.prefix(100).allSatisfy { ErasurePlan.decode($0.plan!)?.totalRows == 1 })
        #expect(ErasurePlan.decode(rs[100].plan!)?.totalRows == 0)
        // Filing again returns the open requests: nothing new, nothing written.
        let again = try await lake.lethe.forget(Array(subjects.prefix(50)), reason: "ticket 9", by: "alice")
        #expect(again.map(\.id) == rs.prefix(50).map(\.id))
        #expect(try await lake.base.auditEntries().count == 2)
    }

    /// A batch's `filed_batch` entry, its lists rendered before the transaction: compact JSON with sorted
    /// keys (its text is its own canonical rendering), the requests, subject keys and plan counts in
    /// filing order, the reason and requester by reference.
    @Test func filedBatchDetailsListTheChunkInOrder() async throws {
        let lake = try Lake(users: 10)
        _ = try await lake.lethe.index()
        let subjects = (0..<30).map { SubjectID(Lake.user($0)) }
        let rs = try await Lethe.$requestChunk.withValue(20) { try await lake.lethe.forget(subjects, reason: "ticket 9", by: "alice") }
        let entries = try await lake.base.auditEntries()
        #expect(entries.map(\.event) == ["filed_batch", "filed_batch"])
        let d = try JSONValue.parse(Array(entries[0].details.utf8))
        #expect(d.text == entries[0].details)
        guard case .object(let o) = d else { return #expect(Bool(false), "not an object") }
        #expect(o["count"] == .int(20) && o["objects"] == .int(10) && o["rows"] == .int(10))
        #expect(o["requests"] == .array(rs.prefix(20).map { .string($0.id) }))
        #expect(o["subject_keys"] == .array(rs.prefix(20).map { .string($0.subjectKey.hex) }))
        let plans = rs.prefix(20).map { ErasurePlan.decode($0.plan!)! }
        #expect(o["plans"] == .array(plans.map { .array([.int(Int64($0.datasets.count)), .int(Int64($0.totalObjects)), .int($0.totalRows)]) }))
        #expect(plans[0].totalRows == 1 && plans[10].totalRows == 0)
        #expect(Set(o.keys) == ["actor", "count", "objects", "plans", "reason", "requests", "rows", "subject_keys"])
        let second = try JSONValue.parse(Array(entries[1].details.utf8))
        guard case .object(let o2) = second else { return #expect(Bool(false), "not an object") }
        #expect(o2["requests"] == .array(rs.suffix(10).map { .string($0.id) }))
    }

    /// Request ids drawn in bulk: `r-` and ten letters of the alphabet (no 0/1/i/l/o), each 64-bit draw
    /// spelled as `newRequestID` spells one (least significant letter first), every draw its own id, the
    /// ids of one filing in ascending order (and a filing's requests in that order: filing order).
    @Test func requestIDsInBulkSpellEachDraw() async throws {
        let ids = try Lethe.newRequestIDs(20_000)
        #expect(ids.count == 20_000 && Set(ids).count == 20_000)
        // In ascending order (each chunk's ids in one stretch of the id index), as texts compare.
        #expect(ids == ids.sorted())
        let alphabet = Set("abcdefghjkmnpqrstuvwxyz23456789")
        #expect(ids.allSatisfy { $0.count == 12 && $0.hasPrefix("r-") && $0.dropFirst(2).allSatisfy(alphabet.contains) })
        // Draws 0, 1, 31 and 2^64 - 1 (little-endian bytes).
        var draws = [UInt8](repeating: 0, count: 32)
        draws[8] = 1
        draws[16] = 31
        for i in 24..<32 { draws[i] = 255 }
        let spelled = Lethe.requestIDs(draws: draws)
        let lake = try Lake(users: 3)
        _ = try await lake.lethe.index()
        let filed = try await Lethe.$requestChunk.withValue(7) {
            try await lake.lethe.forget((0..<20).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        }
        #expect(filed.map(\.id) == filed.map(\.id).sorted() && Set(filed.map(\.id)).count == 20)
        #expect(spelled[0] == "r-aaaaaaaaaa" && spelled[1] == "r-baaaaaaaaa" && spelled[2] == "r-abaaaaaaaa")
        // 2^64 - 1 = 18446744073709551615: its ten base-31 digits, least significant first.
        var x = UInt64.max
        let letters = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var want = "r-"
        for _ in 0..<10 {
            want.append(letters[Int(x % 31)])
            x /= 31
        }
        #expect(spelled[3] == want)
    }

    /// Several chunks write inside one `batchWrites` (their commits checkpointed once); a batch of one
    /// chunk, or one request, does not (no extra checkpoint for `lethe approve ID` or a small forget).
    @Test func onlyBatchesOfSeveralChunksHoldCheckpointsBack() async throws {
        let lake = try Lake(users: 10)
        _ = try await lake.lethe.index()
        let subjects = (0..<25).map { SubjectID(Lake.user($0)) }
        try await Lethe.$requestChunk.withValue(10) {
            _ = try await lake.lethe.forget(Array(subjects.prefix(4)), reason: "t", by: "alice")
            #expect(lake.meta.batchWritesCalls == 0)
            _ = try await lake.lethe.forget(Array(subjects.dropFirst(4)), reason: "t", by: "alice")
            #expect(lake.meta.batchWritesCalls == 1)
            let planned = try await lake.lethe.requests(status: .planned)
            _ = try await lake.lethe.approve([planned[0].id, planned[1].id], by: "bob")
            #expect(lake.meta.batchWritesCalls == 1)
            let (approved, _) = try await lake.lethe.approveAll(by: "bob")
            #expect(approved.count == 23 && lake.meta.batchWritesCalls == 2)
        }
    }

    /// A forget stopped between chunks (here: the second chunk's transaction fails, as a kill there
    /// leaves it uncommitted) leaves whole chunks; filing again returns those and files the rest, once each.
    @Test func killMidForgetBatchFilesWholeChunksOnceEach() async throws {
        let lake = try Lake(users: 30)
        _ = try await lake.lethe.index()
        let subjects = (0..<250).map { SubjectID(Lake.user($0)) }
        lake.meta.failAuditAppend(nth: 2)
        await #expect(throws: LetheError.self) {
            _ = try await Lethe.$requestChunk.withValue(100) { try await lake.lethe.forget(subjects, reason: "t", by: "alice") }
        }
        #expect(lake.meta.faultsThrown == 1)
        let first = try await lake.lethe.requests(status: nil)
        #expect(first.count == 100 && Set(first.map(\.subjectKey)) == Set(subjects.prefix(100).map { lake.lethe.key(for: $0) }))
        #expect(try await lake.base.auditEntries().map(\.event) == ["filed_batch"])
        let rs = try await Lethe.$requestChunk.withValue(100) { try await lake.lethe.forget(subjects, reason: "t", by: "alice") }
        #expect(rs.prefix(100).map(\.id) == first.map(\.id))
        let all = try await lake.lethe.requests(status: nil)
        #expect(all.count == 250 && Set(all.map(\.subjectKey)).count == 250 && Set(all.map(\.id)) == Set(rs.map(\.id)))
        #expect(try await lake.base.auditEntries().map(\.event) == ["filed_batch", "filed_batch", "filed_batch"])
        for r in all { #expect(try await lake.lethe.auditTrail(of: r.id).map(\.entry.event) == ["filed_batch"]) }
    }

    @Test func aSingleForgetAndApproveKeepTheirOwnEntries() async throws {
        let lake = try Lake()
        _ = try await lake.lethe.index()
        let r = try await lake.lethe.forget([SubjectID(Lake.user(1))], reason: "t", by: "alice")[0]
        _ = try await lake.lethe.approve([r.id], by: "bob")
        #expect(try await lake.base.auditEntries().map(\.event) == ["filed", "planned", "approved"])
        #expect(try await lake.lethe.auditTrail(of: r.id).map(\.entry.event) == ["filed", "planned", "approved"])
    }

    @Test func approveAllWritesOneAuditEntryPerChunk() async throws {
        let lake = try Lake(users: 50)
        _ = try await lake.lethe.index()
        let rs = try await lake.lethe.forget((0..<250).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        let own = try await lake.lethe.forget([SubjectID("u-mine")], reason: "t", by: "bob")
        // Four eyes: bob's own request is skipped; the check refuses before anything is written.
        await #expect(throws: LetheError.self) { _ = try await lake.lethe.approve([rs[0].id, own[0].id], by: "bob") }
        #expect(try await lake.lethe.request(rs[0].id).status == .planned)
        let before = try await lake.base.auditEntries().count
        let txBefore = lake.meta.transactionsCommitted
        let (approved, skipped) = try await Lethe.$requestChunk.withValue(100) { try await lake.lethe.approveAll(by: "bob") }
        #expect(approved.count == 250 && skipped.map(\.id) == own.map(\.id))
        #expect(lake.meta.transactionsCommitted - txBefore == 3)
        let added = Array(try await lake.base.auditEntries().dropFirst(before))
        #expect(added.map(\.event) == ["approved_batch", "approved_batch", "approved_batch"])
        #expect(added.map { $0.details.components(separatedBy: "\"r-").count - 1 } == [100, 100, 50])
        #expect(try await lake.lethe.requests(status: .approved).count == 250)
        #expect(try await lake.lethe.request(rs[249].id).decidedBy == "bob")
        // The approver's name is stored once per chunk outside the chain, never in it.
        #expect(added.allSatisfy { !$0.details.contains("bob") && $0.actor?.hasPrefix("text#") == true })
    }

    /// From `partThreshold` subjects on, their entries are read and their plans built in parts, one per
    /// core: each plan is the one the same subject gets below the threshold (objects, rows, references).
    @Test func plansBuiltInPartsAreThePlansBuiltOneReadAtATime() async throws {
        let lake = try Lake(users: 3_000)
        // Two more objects: user i also in b.jsonl (every third, twice) and c.jsonl (every fifth).
        var b = "", c = ""
        for i in stride(from: 0, to: 3_000, by: 3) { b += #"{"user":{"id":"\#(Lake.user(i))"}}"# + "\n" + #"{"user":{"id":"\#(Lake.user(i))"}}"# + "\n" }
        for i in stride(from: 0, to: 3_000, by: 5) { c += #"{"user":{"id":"\#(Lake.user(i))"}}"# + "\n" }
        lake.store.set("raw/b.jsonl", Array(b.utf8))
        lake.store.set("raw/c.jsonl", Array(c.utf8))
        _ = try await lake.lethe.index()
        let keys = (0..<(Lethe.partThreshold + 4_000)).map { lake.lethe.key(for: SubjectID(Lake.user($0))) }
        let coverage = try await lake.lethe.coverage()
        let whole = try await lake.lethe.plans(keys, coverage: coverage)
        var one: [SubjectKey: ErasurePlan] = [:]
        for start in stride(from: 0, to: keys.count, by: 1_000) {
            one.merge(try await lake.lethe.plans(Array(keys[start..<min(start + 1_000, keys.count)]), coverage: coverage)) { a, _ in a }
        }
        #expect(whole.count == keys.count && one.count == keys.count)
        var differ = 0
        for k in keys where whole[k]?.json != one[k]?.json { differ += 1 }
        #expect(differ == 0)
        // What was built: user 0 is in all three objects (1 + 2 + 1 rows), user 1 in a.jsonl only, user 3,000 nowhere.
        #expect(whole[keys[0]]?.totalObjects == 3 && whole[keys[0]]?.totalRows == 4)
        #expect(whole[keys[1]]?.totalObjects == 1 && whole[keys[1]]?.totalRows == 1)
        #expect(whole[keys[3_000]]?.totalObjects == 0)
        #expect(Set(whole[keys[0]]!.datasets.flatMap { $0.objects.compactMap(\.ref) }).count == 3)
    }

    /// `approve` of many ids reads them in chunks (not one read each): an unknown id among them is
    /// still refused by name before anything is approved, and an id given twice is approved once.
    @Test func approveOfManyIDsNamesAnUnknownOneAndApprovesEachOnce() async throws {
        let lake = try Lake(users: 20)
        _ = try await lake.lethe.index()
        let rs = try await lake.lethe.forget((0..<2_500).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        var ids = rs.map(\.id)
        ids.insert("r-nosuchrequest", at: 1_700)
        await #expect {
            _ = try await lake.lethe.approve(ids, by: "bob")
        } throws: { error in
            (error as? LetheError)?.code == .notFound && "\(error)".contains("r-nosuchrequest")
        }
        #expect(try await lake.lethe.requests(status: .approved).isEmpty)
        let twice = [rs[7].id, rs[3].id, rs[7].id] + rs[1_000..<2_100].map(\.id)
        let approved = try await lake.lethe.approve(twice, by: "bob")
        #expect(approved.map(\.id) == [rs[7].id, rs[3].id] + rs[1_000..<2_100].map(\.id))
        #expect(try await lake.lethe.requests(status: .approved).count == 1_102)
        #expect(try await lake.lethe.request(rs[2_099].id).status == .approved)
        #expect(try await lake.lethe.request(rs[2_100].id).status == .planned)
    }

    @Test func auditCheckVerifiesBatchEntries() async throws {
        let lake = try Lake(users: 20)
        _ = try await lake.lethe.index()
        _ = try await lake.lethe.forget((0..<30).map { SubjectID(Lake.user($0)) }, reason: "ticket 7", by: "alice")
        _ = try await lake.lethe.approveAll(by: "bob")
        #expect(try await lake.lethe.checkAudit().ok)
        let lines = try await lake.lethe.auditLog()
        #expect(lines.map(\.entry.event) == ["filed_batch", "approved_batch"])
        #expect(lines[0].actor == "alice" && lines[0].details.contains(#""reason":"ticket 7""#) && lines[1].actor == "bob")
        // A batch entry's text altered behind Lethe's back is caught, naming the entry.
        try await lake.base.tamper("UPDATE audit_texts SET text = 'ticket 8' WHERE text = 'ticket 7'")
        let check = try await lake.lethe.checkAudit()
        #expect(!check.ok && check.firstBroken == lines[0].entry.seq)
    }

    @Test func showListsTheBatchEntriesOfARequest() async throws {
        let lake = try Lake(users: 20)
        _ = try await lake.lethe.index()
        let rs = try await lake.lethe.forget((0..<5).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        _ = try await lake.lethe.forget([SubjectID("u-other")], reason: "t", by: "alice")
        _ = try await lake.lethe.approve([rs[1].id, rs[3].id], by: "bob")
        _ = try await lake.lethe.approve([rs[0].id], by: "bob")
        let trail = try await lake.lethe.auditTrail(of: rs[3].id)
        #expect(trail.map(\.entry.event) == ["filed_batch", "approved_batch"])
        #expect(trail.allSatisfy { $0.entry.requestID == nil && $0.details.contains(rs[3].id) })
        #expect(try await lake.lethe.auditTrail(of: rs[0].id).map(\.entry.event) == ["filed_batch", "approved"])
        #expect(try await lake.lethe.auditTrail(of: rs[2].id).map(\.entry.event) == ["filed_batch"])
    }

    @Test func rawIDDestroyedAtTheDeadline() async throws {
        let lake = try Lake(users: 20)
        _ = try await lake.lethe.index()
        let early = try await lake.lethe.forget((0..<3).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        lake.advance(days: 10)
        let late = try await lake.lethe.forget([SubjectID(Lake.user(5))], reason: "t", by: "alice")[0]
        _ = try await lake.lethe.approve([early[0].id], by: "bob")
        lake.advance(days: 15)  // 25 days after the early ones were filed, to the millisecond
        #expect(try await lake.lethe.request(early[1].id).sealedSubject != nil)
        // Any writing command destroys what is due first: here `approve` of another request.
        _ = try await lake.lethe.approve([late.id], by: "bob")
        for r in early {
            let now = try await lake.lethe.request(r.id)
            #expect(now.sealedSubject == nil && now.rawDestroyedWhy == "deadline" && now.rawDestroyedAt == now.rawDueAt)
            #expect(now.status == (r.id == early[0].id ? .approved : .planned))
        }
        #expect(try await lake.lethe.request(late.id).sealedSubject != nil)
        let destroyed = try await lake.base.auditEntries().filter { $0.event == "raw_id_destroyed" }
        #expect(destroyed.count == 1 && destroyed[0].details.contains(#""why":"deadline""#))
        #expect(early.allSatisfy { destroyed[0].details.contains($0.id) })
        #expect(try await lake.lethe.auditTrail(of: early[2].id).map(\.entry.event) == ["filed_batch", "raw_id_destroyed"])
        // Nothing more is due: a second pass writes nothing.
        #expect(try await lake.lethe.destroyExpiredRawIDs() == 0)
        // The erasure still runs and verifies by the keyed hash (the run needs no raw id).
        let run = try await lake.lethe.run()
        #expect(run.failed.isEmpty)
        #expect(try await lake.lethe.request(early[0].id).status == .verified)
        lake.advance(days: 10)
        #expect(try await lake.lethe.destroyExpiredRawIDs() == 1)  // the late one
    }

    @Test(arguments: ["index", "run"])
    func theEngineIndexAndRunDestroyWhatIsDueFirst(_ entry: String) async throws {
        let lake = try Lake(users: 20)
        _ = try await lake.lethe.index()
        let r = try await lake.lethe.forget([SubjectID(Lake.user(1))], reason: "t", by: "alice")[0]
        lake.advance(days: 25)
        if entry == "index" { _ = try await lake.lethe.index() } else { _ = try await lake.lethe.run() }
        let now = try await lake.lethe.request(r.id)
        #expect(now.sealedSubject == nil && now.rawDestroyedWhy == "deadline")
    }

    @Test func aShorterRawIDDeadlineIsConfigured() async throws {
        let lake = try Lake(yaml: "sweep: {raw_id_days: 1}\n" + Fixture.yaml)
        let r = try await lake.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        #expect(r.rawDueAt == r.filedAt + 86_400_000)
        lake.advance(days: 1)
        #expect(try await lake.lethe.destroyExpiredRawIDs() == 1)
    }

    /// A run of 1,000 approved requests closes them (erased), purges their raw ids and records their
    /// verdicts in a few transactions, not one (or two) per request; every request ends verified.
    @Test func aRunOf1000RequestsSettlesInAFewTransactions() async throws {
        let lake = try Lake(users: 1_000)
        _ = try await lake.lethe.index()
        let subjects = (0..<1_000).map { SubjectID(Lake.user($0)) }
        _ = try await lake.lethe.forget(subjects, reason: "ticket 9", by: "alice")
        _ = try await lake.lethe.approveAll(by: "bob")
        let before = lake.meta.transactionsCommitted
        let purgesBefore = lake.meta.purgeCalls
        let report = try await lake.lethe.run()
        #expect(report.erased.count == 1_000 && report.failed.isEmpty)
        #expect(report.verifications.count == 1_000 && report.verifications.allSatisfy(\.clean))
        #expect(try await lake.lethe.requests(status: .verified).count == 1_000)
        // One per-request transaction for closing and one for the verdict would be 2,000 and more.
        #expect(lake.meta.transactionsCommitted - before < 40)
        #expect(lake.meta.purgeCalls.batched - purgesBefore.batched == 1 && lake.meta.purgeCalls.single == purgesBefore.single)
        // Each request still has its own audit entries (erased, verified), and the chain holds.
        let entries = try await lake.base.auditEntries()
        #expect(entries.filter { $0.event == "erased" }.count == 1_000 && entries.filter { $0.event == "verified" }.count == 1_000)
        #expect(try await lake.lethe.checkAudit().ok)
    }

    /// The claim reads the planned requests in one read of its transaction: a request rejected between the
    /// plan and the claim is left alone (rejected, no `started` entry, in no step), the others start, each with
    /// its own `started` entry in the plan's order, and the job's steps name only them.
    @Test func theClaimLeavesARequestRejectedAfterThePlan() async throws {
        let lake = try Lake(users: 3)
        _ = try await lake.lethe.index()
        let rs = try await lake.lethe.forget((0..<3).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        let approved = try await lake.lethe.approve(rs.map(\.id), by: "bob")
        var report = RunReport()
        let executor = Executor(lake.lethe)
        let (job, plan, planned) = try await executor.planJob(approved, report: &report)
        _ = try await lake.lethe.reject(rs[1].id, by: "carol", reason: "duplicate")
        let claimed = try await executor.claimJob(job, plan, planned: planned)
        #expect(claimed == [rs[0].id, rs[2].id].sorted())
        let first = try await lake.lethe.request(rs[0].id), third = try await lake.lethe.request(rs[2].id)
        #expect(first.status == .running && third.status == .running)
        #expect(try await lake.lethe.request(rs[1].id).status == .rejected)
        let started = try await lake.base.auditEntries().filter { $0.event == "started" }
        #expect(started.map(\.requestID) == [rs[0].id, rs[2].id] && started.allSatisfy { $0.details.contains(job) })
        #expect(try await lake.base.audit.entries(requestID: rs[2].id).map(\.event).suffix(1) == ["started"])
        let steps = try await lake.base.steps(job: job)
        #expect(!steps.isEmpty && steps.allSatisfy { !$0.requestIDs.contains(rs[1].id) } && steps.last?.requestIDs.count == 2)
        #expect(try await lake.lethe.checkAudit().ok)
    }

    /// A chunk of changes with a request that moved meanwhile: the others land (each with its audit
    /// entry), and the moved one throws `.conflict` as it would on its own.
    @Test func aChunkWithAMovedRequestLandsTheOthers() async throws {
        let lake = try Lake(users: 3)
        let rs = try await lake.lethe.forget((0..<3).map { SubjectID(Lake.user($0)) }, reason: "t", by: "alice")
        var changes = try rs.map { r in try Lethe.RequestChange(r, .approve(by: "bob", at: 1), audit: .approved, ["by": .string("test")]) }
        changes[1].expecting = .approved  // request 1 is `planned`: this change's compare-and-swap fails
        await #expect(throws: LetheError.self) { try await lake.lethe.apply(changes, actor: "lethe") }
        #expect(try await lake.lethe.request(rs[0].id).status == .approved)
        #expect(try await lake.lethe.request(rs[1].id).status == .planned)
        #expect(try await lake.lethe.request(rs[2].id).status == .approved)
        let approvedEntries = try await lake.base.auditEntries().filter { $0.event == "approved" }
        #expect(approvedEntries.map(\.requestID) == [rs[0].id, rs[2].id])
    }
}
