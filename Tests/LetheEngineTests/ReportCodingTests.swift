import Foundation
import Testing
import LetheCore
import LetheCatalog
@testable import LetheEngine

/// Every report the CLI prints encodes to the JSON the CLI wrote by hand before report types
/// (the `legacy…` trees below are those writers, kept as the oracle), and decodes back to itself.
@Suite struct ReportCodingTests {
    static let key = SubjectKey(bytes: [UInt8](repeating: 0xab, count: 32))

    /// Parsed JSON for comparison: a double with an integral value equals the integer (the hand
    /// writer printed `2.0`, the encoder prints `2`); objects compare by keys and values, so a key
    /// that is null in one and absent in the other differs.
    static func value(_ text: String) throws -> JSONValue {
        func norm(_ v: JSONValue) -> JSONValue {
            switch v {
            case .double(let d) where d == d.rounded() && abs(d) < 9e15: return .int(Int64(d))
            case .array(let a): return .array(a.map(norm))
            case .object(let o): return .object(o.mapValues(norm))
            default: return v
            }
        }
        return norm(try JSONValue.parse(Array(text.utf8)))
    }

    static func expectSame(_ encoded: String, _ legacy: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try value(encoded) == value(legacy.text), "\(encoded)\nwanted \(legacy.text)", sourceLocation: sourceLocation)
    }

    static func roundTrips<T: Codable & Equatable>(_ v: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let text = ReportEncoder.text(v)
        #expect(try ReportEncoder.decode(T.self, from: text) == v, "\(text)", sourceLocation: sourceLocation)
    }

    static func request(plan: Bool, verification: Bool, decided: Bool) -> ErasureRequest {
        var r = ErasureRequest(id: "r-abc", subjectKey: key, sealedSubject: nil, reason: "ticket 7/8", requestedBy: "alice", at: 1000)
        r.status = decided ? .approved : .planned
        r.updatedAt = 2000
        r.attempts = 1
        if decided { r.decidedBy = "bob"; r.streamTag = 0x0012_3456_789a_bcde }
        if plan {
            let p = ErasurePlan(
                subjectKey: key.hex, plannedAt: 1500,
                datasets: [
                    .init(
                        name: "ev", format: "jsonl", role: "holds", derivedFrom: [],
                        objects: [
                            .init(key: "raw/a.jsonl", ref: 3, rows: 2, state: "indexed", issue: nil)
                        ], rows: 2, rebuild: nil, state: nil, issue: nil)
                ], totalObjects: 1, totalRows: 2)
            r.plan = p.json
        }
        if verification { r.verification = sampleVerification.json }
        return r
    }

    static let sampleVerification = Verification(
        id: "r-abc", subjectKey: key.hex, clean: false, at: 3000, datasets: ["ev"], objectsScanned: 4, logsExamined: nil,
        listingsExamined: 1, recordsScanned: 99, found: [.init(dataset: "ev", object: "raw/a.jsonl", rows: 1, issue: nil)],
        unreadable: [], stateFilesScanned: 2, stateHits: [], stateScanSkipped: nil, logHits: nil, problems: ["x"])

    // MARK: the hand-built trees the CLI printed before report types

    static func legacyRequest(_ r: ErasureRequest, withPlan: Bool) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(r.id), "subject_key": .string(r.subjectKey.hex), "status": .string(r.status.rawValue),
            "reason": .string(r.reason), "requested_by": .string(r.requestedBy), "filed_at": .int(r.filedAt),
            "updated_at": .int(r.updatedAt), "attempts": .int(Int64(r.attempts)),
            "decided_by": r.decidedBy.map(JSONValue.string) ?? .null, "failure": r.failure.map(JSONValue.string) ?? .null,
            "stream_tag": r.streamTag.map { .string(String(format: "%016llx", $0)) } ?? .null,
            "forgotten": .bool(r.status.isForgotten),
            // Issue 12: how far the erasure is proven and where the raw id is (new key, both views).
            "proofs": .object([
                "verified": .null, "swept": .null, "raw_id": .string(r.sealedSubject == nil ? "destroyed" : "sealed"),
                "raw_id_due_at": r.rawDueAt.map(JSONValue.int) ?? .null, "raw_destroyed_at": r.rawDestroyedAt.map(JSONValue.int) ?? .null,
                "raw_destroyed_why": r.rawDestroyedWhy.map(JSONValue.string) ?? .null,
            ]),
        ]
        if withPlan {
            o["plan"] = r.plan.map { .raw(String(decoding: $0, as: UTF8.self)) } ?? .null
            o["verification"] = r.verification.map { .raw(String(decoding: $0, as: UTF8.self)) } ?? .null
        } else if let p = r.plan.flatMap(ErasurePlan.decode) {
            o["objects"] = .int(Int64(p.totalObjects))
            o["rows"] = .int(p.totalRows)
        }
        return .object(o)
    }

    // MARK: tests

    @Test(arguments: [(false, false, false), (true, false, true), (true, true, true)])
    func requestViewsEncodeToTodaysKeys(plan: Bool, verification: Bool, decided: Bool) throws {
        let r = Self.request(plan: plan, verification: verification, decided: decided)
        for withPlan in [false, true] {
            let v = RequestView(r, withPlan: withPlan)
            try Self.expectSame(ReportEncoder.text(v), Self.legacyRequest(r, withPlan: withPlan))
            try Self.roundTrips(v)
            // The line `forget`/`approve --json` print without JSONEncoder says the same.
            try Self.expectSame(v.jsonLine, Self.legacyRequest(r, withPlan: withPlan))
        }
        #expect(ReportEncoder.text(RequestView(r, withPlan: true)).contains("\"decided_by\":" + (decided ? "\"bob\"" : "null")))
        #expect(!ReportEncoder.text(RequestView(r, withPlan: true)).contains("\\/"), "slashes are not escaped")
    }

    /// A request's stream tag is printed as 16 lowercase hex digits, zeros in front, whatever its value.
    @Test(arguments: [UInt64(0), 1, 0x2a, 0x0fff_ffff_ffff_ffff, 1 << 63, UInt64.max])
    func streamTagsPrintAsSixteenHexDigits(tag: UInt64) throws {
        var r = Self.request(plan: false, verification: false, decided: true)
        r.streamTag = tag
        #expect(RequestView(r, withPlan: false).streamTag == String(format: "%016llx", tag))
    }

    @Test func aPlanIsStoredAsJSONEncoderWritesItButForSlashes() throws {
        var p = ErasurePlan(
            subjectKey: Self.key.hex, plannedAt: 1500,
            datasets: [
                .init(
                    name: "ev \"quoted\" \\ é", format: "jsonl", role: "holds", derivedFrom: ["a", "b/c"],
                    objects: [
                        .init(key: "raw/a\n.jsonl", ref: 3, rows: 2, state: "indexed", issue: nil),
                        .init(key: nil, ref: nil, rows: 0, state: "unreadable", issue: "bad\tline"),
                    ], rows: 2, rebuild: "python3 x.py", state: "partial", issue: "i"),
                .init(name: "d", format: "csv", role: "derived", derivedFrom: [], objects: [], rows: 0, rebuild: nil, state: nil, issue: nil),
            ], totalObjects: 2, totalRows: 2)
        for nfc in [nil, "ab" + Self.key.hex] {
            p.nfcSubjectKey = nfc
            // The same document (JSONEncoder escapes slashes, `json` does not), decoded back to the same plan.
            #expect(try Self.value(String(decoding: p.json, as: UTF8.self)) == (try Self.value(String(decoding: p.encodedJSON, as: UTF8.self))))
            #expect(String(decoding: p.json, as: UTF8.self).replacingOccurrences(of: "/", with: "\\/") == String(decoding: p.encodedJSON, as: UTF8.self))
            #expect(ErasurePlan.decode(p.json) == p)
        }
    }

    @Test func planTotalsAreReadWithoutDecodingThePlan() throws {
        let tricky = #"raw/"total_rows":7,"total_objects":9}.jsonl"#
        let p = ErasurePlan(
            subjectKey: Self.key.hex, plannedAt: 1500,
            datasets: [
                .init(
                    name: #"ev "total_objects":3"#, format: "jsonl", role: "holds", derivedFrom: [],
                    objects: [.init(key: tricky, ref: 3, rows: 2, state: "indexed", issue: nil)], rows: 2, rebuild: nil, state: nil,
                    issue: nil)
            ], totalObjects: 1, totalRows: 12_345_678_901)
        let t = try #require(ErasurePlan.totals(p.json))
        #expect(t.objects == 1 && t.rows == 12_345_678_901)
        #expect(ErasurePlan.totals(Array("{}".utf8)) == nil)
        var r = Self.request(plan: true, verification: false, decided: false)
        r.plan = p.json
        #expect(RequestView(r, withPlan: false).rows == 12_345_678_901)
    }

    @Test func proofsOfAVerifiedSweptRequest() throws {
        var r = Self.request(plan: true, verification: true, decided: true)
        r = try RequestLifecycle.apply(.start(at: 2100), to: r).get()
        r = try RequestLifecycle.apply(.erased(at: 2200), to: r).get()
        r.rawDueAt = 9_000
        r = try RequestLifecycle.apply(.verified(result: Self.sampleVerification.json, at: 3100, proof: "index"), to: r).get()
        r.sealedSubject = [1]
        var p = RequestView(r, withPlan: false).proofs
        #expect(p.verified == .init(at: 3000, kind: "index") && p.swept == nil && p.rawID == "sealed" && p.rawIDDueAt == 9_000)
        r = try RequestLifecycle.apply(.swept(at: 4000), to: r).get()
        p = RequestView(r, withPlan: false).proofs
        #expect(p.swept == .init(at: 4000) && p.rawID == "destroyed" && p.rawDestroyedAt == 4000 && p.rawDestroyedWhy == "swept")
        try Self.expectSame(
            ReportEncoder.text(p),
            .object([
                "verified": .object(["at": .int(3000), "kind": .string("index")]), "swept": .object(["at": .int(4000)]),
                "raw_id": .string("destroyed"), "raw_id_due_at": .int(9_000), "raw_destroyed_at": .int(4000),
                "raw_destroyed_why": .string("swept"),
            ]))
        try Self.roundTrips(RequestView(r, withPlan: true))
        // The byte-written line equals JSONEncoder's, escapes included.
        r.reason = "a\"b\\c\nd\r\te\u{1}f\u{1F}é/€"
        r.failure = "x/y"
        for withPlan in [false, true] {
            let v = RequestView(r, withPlan: withPlan)
            #expect(try Self.value(v.jsonLine) == (try Self.value(ReportEncoder.text(v))), "\(v.jsonLine)")
        }
    }

    /// `LocateReport.jsonText` (the service's `POST /v1/locate`, written in bytes) equals JSONEncoder's, escapes included.
    @Test func locateReportWrittenInBytesEqualsJSONEncoders() throws {
        let found = [
            LocatedRows(dataset: "ev", object: "raw/a\"b\\c\nd\u{1}\u{1F}é/€.jsonl", role: .live, rows: [0, 3, 7]),
            LocatedRows(dataset: "t", object: "part-0.parquet", role: .history, rows: Array(0..<1_500)),
            LocatedRows(dataset: "t", object: "_change_data/c.parquet", role: .cdc, rows: []),
        ]
        for r in [LocateReport([]), LocateReport(found)] {
            #expect(try Self.value(r.jsonText) == (try Self.value(ReportEncoder.text(r))), "\(r.jsonText)")
        }
        #expect(LocateReport([]).jsonText == "[]")
        #expect(LocateReport(found).entries[1].positions.count == LocateReport.maxPositions)
    }

    @Test func indexReportEncodesToTodaysKeys() throws {
        var r = IndexReport()
        r.datasets = ["ev", "users"]; r.objectsSeen = 5; r.objectsScanned = 3; r.objectsUnchanged = 2; r.objectsRemoved = 1
        r.records = 1234; r.bytesScanned = 99_000; r.seconds = 0.25
        r.quarantined = [.init(dataset: "ev", object: "raw/bad.jsonl", issue: "line 2: malformed JSON")]
        r.datasetIssues = [DatasetIssue(dataset: "gone", kind: .unreadable, message: "folder `gone` does not exist")]
        let legacy = JSONValue.object([
            "datasets": .array(r.datasets.map(JSONValue.string)),
            "objects_seen": .int(5), "objects_scanned": .int(3), "objects_unchanged": .int(2), "objects_removed": .int(1),
            "records": .int(1234), "bytes": .int(99_000), "seconds": .double(0.25),
            "quarantined": .array([.object(["dataset": .string("ev"), "object": .string("raw/bad.jsonl"), "issue": .string("line 2: malformed JSON")])]),
            "dataset_issues": .array([.object(["dataset": .string("gone"), "kind": .string("unreadable"), "issue": .string("folder `gone` does not exist")])]),
        ])
        try Self.expectSame(ReportEncoder.text(r), legacy)
        try Self.roundTrips(r)
        r.seconds = 2  // a whole number of seconds: `2`, the same value as the hand writer's `2.0`
        #expect(try Self.value(ReportEncoder.text(r))["seconds"] == .int(2))
    }

    @Test func locateReportEncodesToTodaysKeys() throws {
        let found = [
            LocatedRows(dataset: "ev", object: "raw/a.jsonl", role: .live, rows: Array(0..<1500)),
            LocatedRows(dataset: "t", object: "part-0.parquet", role: .history, rows: [7]),
        ]
        let legacy = JSONValue.array(
            found.map { p in
                .object([
                    "dataset": .string(p.dataset), "object": .string(p.object), "role": .string(p.role.rawValue),
                    "rows": .int(Int64(p.rows.count)), "positions": .array(p.rows.prefix(1000).map(JSONValue.int)),
                ])
            })
        let report = LocateReport(found)
        try Self.expectSame(ReportEncoder.text(report), legacy)
        try Self.roundTrips(report)
        #expect(ReportEncoder.text(LocateReport([])) == "[]")
    }

    @Test func runReportEncodesToTodaysKeys() throws {
        var r = RunReport()
        r.jobs = ["j-1"]; r.objectsRewritten = 2; r.objectsRemoved = 1; r.rowsDropped = 7; r.erased = ["r-abc"]
        r.rebuilds = [.init(dataset: "gold", command: "python3 jobs/daily.py", exitStatus: 3, seconds: 1.5, output: "boom")]
        r.verifications = [Self.sampleVerification]
        r.failed = [.init(id: "r-x", reason: "ev: raw/b.jsonl: unreadable")]
        r.requeued = ["r-y"]; r.problems = ["feed unreadable"]; r.temporariesRemoved = 4
        r.propagation.sources = [.init(dataset: "bronze", versions: 2...5, deleted: 3, filed: ["r-p"], stillLive: 1, missingFiles: 2)]
        r.datasetIssues = [DatasetIssue(dataset: "gone", kind: .unsupported, message: "no")]
        let legacy = JSONValue.object([
            "jobs": .array([.string("j-1")]), "objects_rewritten": .int(2), "objects_removed": .int(1),
            "rows_dropped": .int(7), "erased": .array([.string("r-abc")]),
            "rebuilds": .array([.object(["dataset": .string("gold"), "exit_status": .int(3), "seconds": .double(1.5)])]),
            "verifications": .array([.raw(String(decoding: Self.sampleVerification.json, as: UTF8.self))]),
            "failed": .array([.object(["id": .string("r-x"), "reason": .string("ev: raw/b.jsonl: unreadable")])]),
            "requeued": .array([.string("r-y")]), "problems": .array([.string("feed unreadable")]),
            "temporaries_removed": .int(4),
            "propagated": .array([
                .object([
                    "dataset": .string("bronze"), "deleted_subjects": .int(3),
                    "requests": .array([.string("r-p")]), "still_live": .int(1),
                ])
            ]),
        ])
        let text = ReportEncoder.text(r)
        try Self.expectSame(text, legacy)
        // What the report leaves out (commands' output, dataset issues, feed versions) does not come back;
        // everything it holds does, and encodes to the same text again.
        let back = try ReportEncoder.decode(RunReport.self, from: text)
        #expect(ReportEncoder.text(back) == text)
        #expect(back.rebuilds[0].output == "" && back.datasetIssues.isEmpty && back.propagation.sources[0].versions == nil)
        #expect(back.verifications == r.verifications && back.failed == r.failed && back.propagation.sources[0].filed == ["r-p"])
    }

    @Test func verificationEncodesAsStored() throws {
        try Self.expectSame(ReportEncoder.text(Self.sampleVerification), .raw(String(decoding: Self.sampleVerification.json, as: UTF8.self)))
        #expect(!ReportEncoder.text(Self.sampleVerification).contains("logs_examined"), "a nil count is absent, not null")
        try Self.roundTrips(Self.sampleVerification)
    }

    @Test func auditLinesEncodeToTodaysKeys() throws {
        for (request, actor) in [("r-abc", "alice"), (nil, nil)] as [(String?, String?)] {
            let e = AuditEntry(
                seq: 4, at: 5000, event: "approved", requestID: request, actor: "digest", details: "{\"by\":\"x/y\",\"n\":2,\"list\":[1,null]}",
                prevHash: String(repeating: "0", count: 64), hash: String(repeating: "f", count: 64))
            let line = Lethe.AuditLine(entry: e, actor: actor, details: e.details)
            let legacy = JSONValue.object([
                "seq": .int(e.seq), "at": .int(e.at), "event": .string(e.event),
                "request": e.requestID.map(JSONValue.string) ?? .null, "actor": line.actor.map(JSONValue.string) ?? .null,
                "details": .raw(line.details), "prev_hash": .string(e.prevHash), "hash": .string(e.hash),
            ])
            let view = AuditLineView(line)
            try Self.expectSame(ReportEncoder.text(view), legacy)
            try Self.roundTrips(view)
        }
    }

    @Test func auditCheckReportsEncodeToTodaysKeysAndCheckTheRecordedHead() throws {
        let entries = (1...3).map {
            AuditEntry(
                seq: $0, at: 0, event: "filed", requestID: nil, actor: nil, details: "{}",
                prevHash: "", hash: String(repeating: "\($0)", count: 64))
        }
        let intact = try AuditCheckReport(entries: entries, ok: true, firstBroken: nil, reason: nil, expectHead: nil)
        try Self.expectSame(
            ReportEncoder.text(intact),
            .object([
                "ok": .bool(true), "entries": .int(3), "head": .string("3:" + String(repeating: "3", count: 64)),
                "first_broken": .null, "reason": .null,
            ]))
        try Self.roundTrips(intact)
        let same = try AuditCheckReport(entries: entries, ok: true, firstBroken: nil, reason: nil, expectHead: "2:" + String(repeating: "2", count: 16))
        #expect(same.ok)
        let other = try AuditCheckReport(entries: entries, ok: true, firstBroken: nil, reason: nil, expectHead: "2:" + String(repeating: "9", count: 16))
        #expect(!other.ok && other.firstBroken == 2 && other.reason?.hasPrefix("entry 2 has hash 2222222222222222…") == true)
        let cut = try AuditCheckReport(entries: entries, ok: true, firstBroken: nil, reason: nil, expectHead: "5:" + String(repeating: "5", count: 16))
        #expect(!cut.ok && cut.firstBroken == 5 && cut.reason == "entry 5 is missing: the log ends at 3 (entries were removed from its end)")
        let broken = try AuditCheckReport(entries: entries, ok: false, firstBroken: 2, reason: "bad", expectHead: "9:" + String(repeating: "9", count: 16))
        #expect(broken == AuditCheckReport(ok: false, entries: 3, head: intact.head, firstBroken: 2, reason: "bad"))
        try Self.roundTrips(broken)
        #expect(throws: LetheError.self) { try AuditCheckReport(entries: entries, ok: true, firstBroken: nil, reason: nil, expectHead: "3:abc") }
        let empty = try AuditCheckReport(entries: [], ok: true, firstBroken: nil, reason: nil, expectHead: nil)
        #expect(empty.head == "-" && empty.entries == 0)
    }

    @Test func vacuumReportsEncodeToTodaysKeys() throws {
        let r = VacuumReport(
            dataset: "bronze", mode: "targeted", deleted: ["part-1.parquet", "_change_data/c-1.parquet"],
            unreadableVersions: [0...3, 5...5], dryRun: true)
        try Self.expectSame(
            ReportEncoder.text(r),
            .object([
                "dataset": .string("bronze"), "mode": .string("targeted"), "dry_run": .bool(true),
                "deleted": .array(r.deleted.map(JSONValue.string)), "unreadable_versions": .array([.string("0-3"), .string("5-5")]),
            ]))
        try Self.roundTrips(r)
    }

    @Test func streamReportsEncodeToTodaysKeys() throws {
        let d = DeletionsReport(DeletionChanges(added: [0x1f, 0xffff_ffff_ffff_ffff], removed: [2], latest: 77), since: Int64.min)
        try Self.expectSame(
            ReportEncoder.text(d),
            .object([
                "added": .array([.string("000000000000001f"), .string("ffffffffffffffff")]), "removed": .array([.string("0000000000000002")]),
                "latest": .int(77), "since": .int(0),
            ]))
        try Self.roundTrips(d)
        #expect(DeletionsReport(DeletionChanges(added: [], removed: [], latest: Int64.min), since: 5).latest == 0)

        var f = FilterReport(passed: 3, dropped: 2, malformed: 1, blank: 1, bytes: 120)
        try Self.expectSame(
            ReportEncoder.text(f), .object(["passed": .int(3), "dropped": .int(2), "malformed": .int(1), "blank": .int(1), "bytes": .int(120)]))
        try Self.roundTrips(f)
        f.failedAtLine = 9
        #expect(try Self.value(ReportEncoder.text(f))["failed_at_line"] == .int(9))
        try Self.roundTrips(f)
        #expect(f.summary == "lethe filter: 3 passed, 2 dropped, 1 malformed, 1 blank line(s); 120 bytes")
    }

    @Test func quickstartReportEncodesToTodaysKeys() throws {
        let r = Self.request(plan: true, verification: true, decided: true)
        let q = QuickstartReport(
            dir: "/tmp/q", events: 10, subjects: 4, request: RequestView(r, withPlan: true), objectsBefore: 3,
            objectsAfter: 0, rowsDropped: 12, auditEntries: 40, auditOk: true)
        try Self.expectSame(
            ReportEncoder.text(q),
            .object([
                "dir": .string("/tmp/q"), "events": .int(10), "subjects": .int(4), "request": Self.legacyRequest(r, withPlan: true),
                "objects_before": .int(3), "objects_after": .int(0), "rows_dropped": .int(12), "audit_entries": .int(40), "audit_ok": .bool(true),
            ]))
        try Self.roundTrips(q)
    }
}
