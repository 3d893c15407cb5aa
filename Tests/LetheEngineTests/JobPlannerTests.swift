import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog

/// `JobPlanner.plan` without any I/O: the steps `run` journals for given requests, postings and coverage.
@Suite struct JobPlannerTests {
    // `users` is listed first but derives from `raw`: lineage order puts `raw` first.
    static let yaml = """
        lake: ./lake
        datasets:
          - name: users
            path: users
            format: csv
            subject: user_id
            derived_from: [raw]
            rebuild: make users
          - name: raw
            path: raw
            format: jsonl
            subject: user.id
          - name: events
            path: events
            format: delta
            subject: uid
          - name: names
            path: names
            format: jsonl
            subject: name
            normalize: nfc
        """

    let config: LakeConfig
    init() throws { config = try LakeConfig.parse(Self.yaml, file: "lethe.yaml", baseDir: "/tmp") }

    static func key(_ n: UInt8) -> SubjectKey { SubjectKey(bytes: Array(repeating: n, count: 32)) }

    static func request(_ id: String, _ n: UInt8, plan: ErasurePlan? = nil) -> ErasureRequest {
        var r = ErasureRequest(id: id, subjectKey: key(n), sealedSubject: nil, reason: "test", requestedBy: "a", at: 1)
        r.status = .approved
        r.plan = plan?.json
        return r
    }

    static func posting(_ dataset: String, _ key: String, rows: [Int64] = [0]) -> Posting {
        Posting(object: object(dataset, key), rows: rows)
    }

    static func object(_ dataset: String, _ key: String, status: IndexedObject.Status = .indexed) -> IndexedObject {
        IndexedObject(dataset: dataset, key: key, size: 1, modifiedNanos: 1, version: "v", records: 1, status: status, indexedAt: 1)
    }

    /// The steps as (dataset, object, request ids, keys) in order.
    static func shape(_ steps: [JournalStep]) -> [String] {
        steps.map { s in "\(s.ordinal) \(s.dataset)|\(s.objectKey)|\(s.requestIDs.joined(separator: ","))|\(s.subjectKeys.map(\.short).joined(separator: ","))"
        }
    }

    func plan(
        _ approved: [ErasureRequest], _ postings: [String: [Posting]], coverage: Coverage = Coverage(),
        nfc: [String: SubjectKey] = [:]
    ) -> JobPlan {
        JobPlanner.plan(job: "j-1", approved: approved, postings: postings, coverage: coverage, config: config, nfc: nfc)
    }

    @Test func objectStepsFollowLineageOrderThenRebuildThenSettle() {
        let r1 = Self.request("r-1", 1), r2 = Self.request("r-2", 2)
        let p = plan(
            [r1, r2],
            [
                "r-1": [Self.posting("users", "users/b.csv"), Self.posting("raw", "raw/b.jsonl"), Self.posting("raw", "raw/a.jsonl")],
                "r-2": [Self.posting("raw", "raw/a.jsonl")],
            ])
        let k1 = Self.key(1).short, k2 = Self.key(2).short
        let both = [k1, k2].sorted().joined(separator: ",")
        #expect(
            Self.shape(p.steps) == [
                "0 raw|raw/a.jsonl|r-1,r-2|\(both)",
                "1 raw|raw/b.jsonl|r-1|\(k1)",
                "2 users|users/b.csv|r-1|\(k1)",
                // Both requests reach `users` through lineage from `raw`: its rebuild covers both.
                "3 users||r-1,r-2|\(both)",
                "4 ||r-1,r-2|\(k1),\(k2)",
            ])
        #expect(p.steps.map(\.kind) == [.object, .object, .object, .rebuild, .settle])
        #expect(p.steps.allSatisfy { $0.job == "j-1" && $0.state == .pending })
    }

    @Test func aDeltaTableGetsOneStepForAllItsFiles() {
        let r1 = Self.request("r-1", 1), r2 = Self.request("r-2", 2)
        let p = plan(
            [r1, r2],
            [
                "r-1": [Self.posting("events", "events/part-1.parquet"), Self.posting("events", "events/part-2.parquet")],
                "r-2": [Self.posting("events", "events/part-2.parquet")],
            ])
        #expect(p.steps.map(\.kind) == [.deltaTable, .settle])
        #expect(p.steps[0].dataset == "events" && p.steps[0].objectKey == Lethe.deltaStepKey)
        #expect(p.steps[0].requestIDs == ["r-1", "r-2"])
        #expect(p.steps[0].subjectKeys == [Self.key(1), Self.key(2)].sorted())
    }

    @Test func aRetryGoesBackToTheDeltaTablesItsLastPlanHeldItIn() {
        let last = ErasurePlan(
            subjectKey: Self.key(1).hex, plannedAt: 1,
            datasets: [
                .init(name: "events", format: "delta", role: "holds", derivedFrom: [], objects: [], rows: 1),
                .init(name: "raw", format: "jsonl", role: "holds", derivedFrom: [], objects: [], rows: 1),
            ], totalObjects: 2, totalRows: 2)
        let p = plan([Self.request("r-1", 1, plan: last)], [:])
        // The index finds nothing; the Delta table of the last plan still gets its step, `raw` does not.
        #expect(Self.shape(p.steps) == ["0 events|\(Lethe.deltaStepKey)|r-1|\(Self.key(1).short)", "1 ||r-1|\(Self.key(1).short)"])
    }

    /// The last plan is read unless the index finds the subject in every Delta table: a retry held in
    /// two tables and found by the index in one still goes back to the other.
    @Test func aRetryFoundInOneDeltaTableStillGoesBackToTheOther() throws {
        let config = try LakeConfig.parse(
            """
            lake: ./lake
            datasets:
              - name: events
                path: events
                format: delta
                subject: uid
              - name: clicks
                path: clicks
                format: delta
                subject: uid
            """, file: "lethe.yaml", baseDir: "/tmp")
        let last = ErasurePlan(
            subjectKey: Self.key(1).hex, plannedAt: 1,
            datasets: [
                .init(name: "events", format: "delta", role: "holds", derivedFrom: [], objects: [], rows: 1),
                .init(name: "clicks", format: "delta", role: "holds", derivedFrom: [], objects: [], rows: 1),
            ], totalObjects: 2, totalRows: 2)
        let r1 = Self.request("r-1", 1, plan: last), r2 = Self.request("r-2", 2, plan: last)
        let p = JobPlanner.plan(
            job: "j-1", approved: [r1, r2],
            postings: [
                "r-1": [Self.posting("events", "events/part-1.parquet")],
                "r-2": [Self.posting("events", "events/part-1.parquet"), Self.posting("clicks", "clicks/part-1.parquet")],
            ],
            coverage: Coverage(), config: config, nfc: [:])
        let k1 = Self.key(1).short, k2 = Self.key(2).short
        #expect(
            Self.shape(p.steps) == [
                "0 events|\(Lethe.deltaStepKey)|r-1,r-2|\(k1),\(k2)", "1 clicks|\(Lethe.deltaStepKey)|r-1,r-2|\(k1),\(k2)", "2 ||r-1,r-2|\(k1),\(k2)",
            ])
    }

    @Test func quarantinedObjectsAndUnreadableDatasetsReachEveryRequest() {
        var cov = Coverage()
        cov.quarantined["raw"] = [Self.object("raw", "raw/bad.jsonl", status: .quarantined)]
        cov.issues["names"] = DatasetIssue(dataset: "names", kind: .unreadable, message: "cannot read")
        let r1 = Self.request("r-1", 1), r2 = Self.request("r-2", 2)
        let p = plan([r1, r2], ["r-1": [Self.posting("raw", "raw/a.jsonl")]], coverage: cov)
        let k1 = Self.key(1).short
        let both = [k1, Self.key(2).short].sorted().joined(separator: ",")
        #expect(
            Self.shape(p.steps) == [
                "0 raw|raw/a.jsonl|r-1|\(k1)",
                // A quarantined object may hold any subject: every request in the dataset's scope gets it.
                "1 raw|raw/bad.jsonl|r-1,r-2|\(both)",
                // Lineage reaches `users` from where a subject is held (r-1 in `raw`), not from where it may be.
                "2 users||r-1|\(k1)",
                "3 names|\(Lethe.issueStepKey)|r-1,r-2|\(both)",
                "4 ||r-1,r-2|\(k1),\(Self.key(2).short)",
            ])
        #expect(p.steps[3].kind == .datasetIssue)
    }

    @Test func nfcDatasetsAreErasedByTheNFCKey() {
        let r1 = Self.request("r-1", 1)
        let p = plan(
            [r1], ["r-1": [Self.posting("names", "names/a.jsonl"), Self.posting("raw", "raw/a.jsonl")]],
            nfc: ["r-1": Self.key(9)])
        #expect(
            Self.shape(p.steps) == [
                "0 raw|raw/a.jsonl|r-1|\(Self.key(1).short)",
                "1 users||r-1|\(Self.key(1).short)",
                "2 names|names/a.jsonl|r-1|\(Self.key(9).short)",
                "3 ||r-1|\(Self.key(1).short)",
            ])
    }

    @Test func theClaimKeepsOnlyClaimedRequestsAndNumbersStepsAnew() {
        let r1 = Self.request("r-1", 1), r2 = Self.request("r-2", 2)
        let p = plan([r1, r2], ["r-1": [Self.posting("raw", "raw/a.jsonl")], "r-2": [Self.posting("raw", "raw/b.jsonl")]])
        let kept = p.claimed(["r-2"])
        #expect(
            Self.shape(kept) == [
                "0 raw|raw/b.jsonl|r-2|\(Self.key(2).short)",
                "1 users||r-2|\(Self.key(2).short)",
                "2 ||r-2|\(Self.key(2).short)",
            ])
        // Nobody claimed: only the closing step is left (the run then journals nothing).
        #expect(p.claimed([]).map(\.kind) == [.settle])
    }
}
