import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheFormats
import LetheTesting

// `lethe sweep` (issue 12 §2.9): the whole lake and the state, without the index, for verified requests.

private let twoDatasets = """
    lake: ./lake
    state: ./.lethe
    datasets:
      - name: raw
        path: raw
        format: jsonl
        subject: user.id
      - name: exports
        path: exports
        format: jsonl
        subject: user_id
    """

private func event(_ u: String, _ n: Int, ref: String? = nil) -> String {
    #"{"n":\#(n),"user":{"id":"\#(u)"}"# + (ref.map { #","ref":{"user":{"id":"\#($0)"}}"# } ?? "") + "}\n"
}
private func export(_ u: String, _ n: Int) -> String { #"{"n":\#(n),"user_id":"\#(u)"}"# + "\n" }

/// Files, approves (four eyes) and runs the erasure of `subject`; the request as it ends.
private func erased(_ lethe: Lethe, _ subject: String) async throws -> ErasureRequest {
    let r = try await lethe.forget([SubjectID(subject)], reason: "ticket 4711", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try await lethe.run()
    return try await lethe.request(r.id)
}

private func lake(_ yaml: String = twoDatasets) throws -> DiskLake {
    let l = try DiskLake(yaml)
    for d in ["raw", "exports"] { try FileManager.default.createDirectory(atPath: l.dir + "/lake/" + d, withIntermediateDirectories: true) }
    return l
}

/// A lake of one Parquet dataset `ids` (folder `lake/ids`, subject `user_id`), state in `.lethe`.
private func parquetIDsLake() throws -> DiskLake {
    let l = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: ids
            path: ids
            format: parquet
            subject: user_id
        """)
    try FileManager.default.createDirectory(atPath: l.dir + "/lake/ids", withIntermediateDirectories: true)
    return l
}

@Test func sweepFindsWhatTheIndexMissedAndTheNextRunErasesIt() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    try l.put("raw/b.jsonl", event("u-300003", 3))
    try l.put("exports/e.jsonl", export("u-300003", 4))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    // Behind the index's back: the subject's record lands in an object the index will not look at again
    // (same size, and its modification time restored: the store's version is unchanged).
    let path = l.dir + "/lake/raw/b.jsonl"
    let before = try FileManager.default.attributesOfItem(atPath: path)
    try l.put("raw/b.jsonl", event("u-100001", 3))
    try FileManager.default.setAttributes([.modificationDate: before[.modificationDate]!], ofItemAtPath: path)
    let s = try await lethe.sweep()
    #expect(!s.clean)
    let q = try #require(s.requests.first { $0.id == r.id })
    #expect(q.result == "residue")
    #expect(q.found.contains { $0.kind == "record" && $0.object == "raw/b.jsonl" && $0.rows == 1 })
    let failed = try await lethe.request(r.id)
    #expect(failed.status == .failed && failed.sweepFindings != nil && failed.sealedSubject != nil)
    // The object was indexed again: the next run plans it, erases the record and verifies.
    #expect(try await lethe.locate(SubjectID("u-100001")).contains { $0.object.key == "raw/b.jsonl" })
    _ = try await lethe.run()
    #expect(try await lethe.request(r.id).status == .verified)
    #expect(!(try l.text("raw/b.jsonl")).contains("u-100001"))
    let again = try await lethe.sweep()
    #expect(again.clean && again.requests.map(\.result) == ["swept"])
}

@Test func sweepFindsANumericIdInsideSnappyParquet() async throws {
    let l = try parquetIDsLake()
    defer { l.remove() }
    // pyarrow writes int64 ids, snappy (its default): the id's digits appear nowhere in the file's bytes.
    let code = """
        import sys, pyarrow as pa, pyarrow.parquet as pq
        for name, ids in (("a", [7, 12345678, 9]), ("b", [5, 6])):
            refs = ["ref %d" % (12345678 if i == 9 else i) for i in ids]  # user 9's row names 12345678: a mention
            pq.write_table(pa.table({"user_id": pa.array(ids, pa.int64()), "n": pa.array(range(len(ids)), pa.int64()),
                                     "note": pa.array(refs, pa.string())}), sys.argv[1] + "/" + name + ".parquet")
        """
    _ = try Peers.python(["-c", code, l.dir + "/lake/ids"], what: "pyarrow write")
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "12345678")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    // Another tool writes the id back in a new file, not indexed.
    let code2 = """
        import sys, pyarrow as pa, pyarrow.parquet as pq
        pq.write_table(pa.table({"user_id": pa.array([1, 12345678], pa.int64()), "n": pa.array([0, 1], pa.int64())}), sys.argv[1])
        """
    _ = try Peers.python(["-c", code2, l.dir + "/lake/ids/c.parquet"], what: "pyarrow write")
    #expect(!(try Data(contentsOf: URL(fileURLWithPath: l.dir + "/lake/ids/c.parquet"))).contains(Data("12345678".utf8)))
    let s = try await lethe.sweep()
    let q = try #require(s.requests.first)
    #expect(q.result == "residue" && q.found.contains { $0.kind == "record" && $0.object == "ids/c.parquet" && $0.rows == 1 })
    // The id in another column of a compressed page: a mention, found in the decoded strings.
    #expect(q.found.contains { $0.kind == "mention" && $0.object == "ids/a.parquet" })
    #expect(!q.found.contains { $0.object == "ids/b.parquet" })
}

@Test func sweepMarksSweptAndDestroysTheRawID() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified && r.sealedSubject != nil && r.sweptAt == nil)
    let s = try await lethe.sweep()
    #expect(s.clean && s.requests.map(\.result) == ["swept"] && s.rawIDsDestroyedSwept == 1 && s.objects == 1)
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified && done.sealedSubject == nil && done.sweptAt != nil && done.rawDestroyedWhy == "swept")
    let audit = try await lethe.meta.auditEntries().filter { $0.requestID == r.id }
    #expect(audit.last?.event == AuditEvent.swept.rawValue)
    let details = audit.last?.details ?? ""
    #expect(!details.contains("u-100001"))
    // Nothing left to sweep.
    #expect(try await lethe.sweep().requests.isEmpty)
}

@Test func aMentionIsReportedNotFailed() async throws {
    let l = try lake()
    defer { l.remove() }
    // u-200002's record names u-100001 under `ref.user.id`: another subject's data, kept by the erasure.
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2, ref: "u-100001"))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    #expect(try l.text("raw/a.jsonl") == event("u-200002", 2, ref: "u-100001"))
    let s = try await lethe.sweep()
    #expect(s.clean)
    let q = try #require(s.requests.first)
    #expect(q.result == "swept" && q.found == [.init(dataset: "raw", object: "raw/a.jsonl", kind: "mention")])
}

@Test func gzipObjectsDecodedAheadAndMappedObjectsFindEveryMention() async throws {
    // Several gzip objects (each decoded on its own task while the one before is searched) and a plain
    // object large enough to be lent mapped (the mention in its last line, past several windows).
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    let store = LocalObjectStore(root: l.dir + "/lake")
    for (i, mention) in [false, true, false, true, false].enumerated() {
        var text = ""
        for n in 0..<200 { text += event("u-30\(i)\(1000 + n)", n) }
        if mention { text += event("u-200002", 9, ref: "u-100001") }
        try await EncodedObject.write(Array(text.utf8), to: "raw/g\(i).jsonl.gz", in: store)
    }
    var big = ""
    while big.utf8.count < 9 << 20 { big += event("u-40\(big.utf8.count % 10_000)", big.utf8.count) }
    big += event("u-200002", 10, ref: "u-100001")
    try l.put("raw/z.jsonl", big)
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    let s = try await lethe.sweep(dataset: "raw")
    #expect(s.clean)
    let q = try #require(s.requests.first)
    #expect(
        q.found.filter { $0.kind == "mention" }.map(\.object)
            == ["raw/a.jsonl", "raw/g1.jsonl.gz", "raw/g3.jsonl.gz", "raw/z.jsonl"].filter {
                $0 != "raw/a.jsonl"
            })
    #expect(!q.found.contains { $0.kind == "record" })
}

@Test func sweepByDatasetAccumulatesMarks() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    try l.put("exports/e.jsonl", export("u-100001", 3) + export("u-200002", 4))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    let first = try await lethe.sweep(dataset: "raw")
    #expect(first.datasets == ["raw"] && first.requests.map(\.result) == ["partial"] && first.clean)
    #expect(try await lethe.request(r.id).sweptAt == nil)
    // The same dataset again adds nothing.
    #expect(try await lethe.sweep(dataset: "raw").requests.map(\.result) == ["partial"])
    let second = try await lethe.sweep(dataset: "exports")
    #expect(second.requests.map(\.result) == ["swept"])
    let done = try await lethe.request(r.id)
    #expect(done.sweptAt != nil && done.sealedSubject == nil)
    // The marks live in the state's `request_sweeps`, one per scope (the dataset, or `!state`), moved forward by each sweep.
    let marks = try await lethe.meta.requests.sweepMarks(requestID: r.id)
    #expect(marks.map(\.scope) == ["!state", "exports", "raw"])
    #expect(marks.first { $0.scope == "exports" }?.sweepID == second.sweepID)
    #expect(marks.first { $0.scope == "!state" }?.sweepID == second.sweepID)
    #expect(try await lethe.meta.cursors.settings(prefix: Sweeper.legacyMarkPrefix).isEmpty)
    // One `sweeps` row per sweep, with its scope, what it read and how it ended.
    let row = try #require(try await lethe.meta.requests.sweep(id: second.sweepID))
    #expect(row.scope == "exports" && row.result == "clean" && row.objects == Int64(second.objects) && row.bytes == second.bytes)
    #expect(row.startedAt == second.startedAt && (row.finishedAt ?? 0) >= row.startedAt)
    #expect(try await lethe.meta.requests.sweep(id: first.sweepID)?.scope == "raw")
    await #expect(throws: LetheError.self) { try await lethe.sweep(dataset: "nope") }
}

@Test func aWholeLakeSweepWritesItsRowAndMarks() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    let s = try await lethe.sweep()
    #expect(s.requests.map(\.result) == ["swept"])
    let row = try #require(try await lethe.meta.requests.sweep(id: s.sweepID))
    #expect(row == SweepRecord(id: s.sweepID, startedAt: s.startedAt, finishedAt: row.finishedAt, scope: "lake", objects: 1, bytes: s.bytes, result: "clean"))
    #expect(try await lethe.meta.requests.sweepMarks(requestID: r.id).map { "\($0.scope) \($0.sweepID)" } == ["lake \(s.sweepID)"])
}

/// A sweep that dies before its last transaction (the one that marks requests swept) leaves them unswept,
/// their raw ids sealed and no mark of this sweep; its row is not `clean`. The next sweep completes the work.
@Test func aKilledSweepLeavesRequestsUnswept() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    try l.put("exports/e.jsonl", export("u-200002", 4))
    let base = try l.open()
    _ = try await base.index()
    let r = try await erased(base, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    let faulty = FaultInjectingStateStore(base: base.meta)
    let lethe = base.over(faulty)
    let first = try await lethe.sweep(dataset: "raw")
    #expect(first.requests.map(\.result) == ["partial"])
    // The swept transition's transaction (its audit entry) fails.
    faulty.failAuditAppend()
    await #expect(throws: LetheError.self) { _ = try await lethe.sweep(dataset: "exports") }
    #expect(faulty.faultsThrown == 1)
    let after = try await lethe.request(r.id)
    #expect(after.status == .verified && after.sweptAt == nil && after.sealedSubject != nil)
    #expect(try await lethe.meta.requests.sweepMarks(requestID: r.id).allSatisfy { $0.sweepID == first.sweepID })
    let rows = try Peers.python(
        [
            "-c", "import sqlite3, sys; print([r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT result FROM sweeps WHERE id <> ?', (sys.argv[2],))])",
            l.state + "/lethe.sqlite", first.sweepID,
        ], what: "sqlite3 read")
    #expect(rows.trimmingCharacters(in: .whitespacesAndNewlines) == "['failed']")
    #expect(try await lethe.meta.auditEntries().filter { $0.event == AuditEvent.swept.rawValue }.isEmpty)
    // Unarmed, the next sweep of the same dataset finishes the work.
    #expect(try await lethe.sweep(dataset: "exports").requests.map(\.result) == ["swept"])
    #expect(try await lethe.request(r.id).sweptAt != nil)
}

/// Marks an earlier version kept in settings (`sweep.mark.<request>.<dataset>`) count once, moved into the state, and are removed.
@Test func legacySettingsMarksAreMovedIntoTheState() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    try l.put("exports/e.jsonl", export("u-200002", 4))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    try await lethe.meta.setSetting(Sweeper.legacyMarkPrefix + r.id + ".raw", String(lethe.now()))
    let s = try await lethe.sweep(dataset: "exports")
    #expect(s.requests.map(\.result) == ["swept"])
    #expect(try await lethe.meta.cursors.settings(prefix: Sweeper.legacyMarkPrefix).isEmpty)
    #expect(try await lethe.meta.requests.sweepMarks(requestID: r.id).map(\.scope) == ["!state", "exports", "raw"])
}

@Test func sweepFindsTheIdInLethesStateAndInACommitInfoPredicate() async throws {
    let l = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: named
            path: named
            format: delta
            subject: user_id
        """)
    defer { l.remove() }
    _ = try deltaPy(["make", l.dir + "/lake"])
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "customer-000001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    // Another tool's commit whose commitInfo predicate names the subject, and a file in Lethe's state folder.
    let log = l.dir + "/lake/named/_delta_log"
    let last = try FileManager.default.contentsOfDirectory(atPath: log).filter { $0.hasSuffix(".json") }.sorted().last!
    let next = String(format: "%020d.json", Int(last.prefix(20))! + 1)
    let commit =
        #"{"commitInfo":{"timestamp":1767225600000,"operation":"DELETE","operationParameters":{"predicate":"user_id = 'customer-000001'"}}}"#
        + "\n"
    try commit.write(toFile: log + "/" + next, atomically: false, encoding: .utf8)
    try "exported for customer-000001\n".write(toFile: l.state + "/notes.txt", atomically: false, encoding: .utf8)
    let s = try await lethe.sweep()
    let q = try #require(s.requests.first)
    #expect(q.result == "residue")
    #expect(q.found.contains { $0.kind == "log" && $0.object.hasSuffix(next) })
    #expect(q.found.contains { $0.kind == "state" && $0.object == "notes.txt" })
    #expect(!ReportEncoder.text(s).contains("customer-000001"))
    #expect(try await lethe.request(r.id).status == .failed)
}

@Test func anObjectKeyNamingTheSubjectIsResidueAndNotRepeated() async throws {
    let l = try lake()
    defer { l.remove() }
    try l.put("raw/a.jsonl", event("u-100001", 1) + event("u-200002", 2))
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    // Another tool leaves a folder named after the subject, holding someone else's record.
    try l.put("raw/export-u-100001/part-0.jsonl", event("u-200002", 3))
    let s = try await lethe.sweep()
    let q = try #require(s.requests.first)
    #expect(q.result == "residue" && q.found.map(\.kind) == ["key"])
    #expect(!ReportEncoder.text(s).contains("u-100001"))
    let failed = try await lethe.request(r.id)
    #expect(failed.status == .failed && !String(decoding: failed.sweepFindings ?? [], as: UTF8.self).contains("u-100001"))
}

/// Issue 12: a Parquet dictionary entry no row references that holds a forgotten id is residue. The
/// index names the object for that subject (an unreferenced-entry mark, 0 rows), so the run scrubs the
/// entry and the request is verified, then swept. The files are pyarrow's (an Arrow dictionary array
/// with an unused value).
@Test func aDictionaryEntryNoRowReferencesIsIndexedAndScrubbedByTheRun() async throws {
    let l = try parquetIDsLake()
    defer { l.remove() }
    try Peers.python(["-c", orphanFiles, l.dir + "/lake/ids", "a,b"], what: "orphan dictionary entry")
    #expect(try dictionaryHolds(l.dir + "/lake/ids/a.parquet", "u-100001"))  // the premise
    let lethe = try l.open()
    _ = try await lethe.index()
    let located = try await lethe.locate(SubjectID("u-100001"))
    #expect(located.first { $0.object.key == "ids/a.parquet" }?.rows == [RecordOrdinal.unreferencedEntry], "\(located)")
    let report = LocateReport(try await lethe.locateRows(SubjectID("u-100001")))
    #expect(report.entries.first { $0.object == "ids/a.parquet" }.map { ($0.rows, $0.positions) } ?? (-1, []) == (0, []))
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    #expect(try dictionaryHolds(l.dir + "/lake/ids/a.parquet", "u-100001") == false)
    #expect(try readIDs(l.dir + "/lake/ids/a.parquet") == "['u-200002', 'u-300003', 'u-200002']")
    #expect(try await lethe.locate(SubjectID("u-100001")).isEmpty)
    let s = try await lethe.sweep()
    #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(s.requests)")
}

/// Issue 12: the same entry written behind the index's back after the run: the full verification and
/// the sweep find it (a `record` with no row, not a mention), the sweep fails the request again and
/// re-indexes the object, and the next run scrubs it.
@Test func aDictionaryEntryNoRowReferencesFoundByTheSweepIsScrubbedByTheNextRun() async throws {
    let l = try parquetIDsLake()
    defer { l.remove() }
    try Peers.python(["-c", orphanFiles, l.dir + "/lake/ids", "b"], what: "orphan dictionary entry")
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    try Peers.python(["-c", orphanFiles, l.dir + "/lake/ids", "a"], what: "orphan dictionary entry")
    #expect(try dictionaryHolds(l.dir + "/lake/ids/a.parquet", "u-100001"))  // the premise
    let s = try await lethe.sweep()
    #expect(!s.clean)
    let q = try #require(s.requests.first { $0.id == r.id })
    #expect(q.result == "residue")
    #expect(q.found.contains { $0.kind == "record" && $0.object == "ids/a.parquet" && $0.rows == 0 }, "\(q.found)")
    #expect(!q.found.contains { $0.kind == "mention" }, "\(q.found)")
    #expect(try await lethe.request(r.id).status == .failed)
    // Reading every dataset finds it too.
    let v = try #require(try await lethe.verify(ids: [r.id]).first)
    #expect(!v.clean)
    #expect(v.found.contains { $0.object == "ids/a.parquet" && $0.rows == 0 && ($0.issue ?? "").contains("no row references") }, "\(v.found)")
    // Indexed again by the sweep: the next run plans the object and scrubs the entry.
    #expect(try await lethe.locate(SubjectID("u-100001")).contains { $0.object.key == "ids/a.parquet" })
    _ = try await lethe.run()
    let after = try await lethe.request(r.id)
    #expect(after.status == .verified, "\(after.failure ?? "")")
    #expect(try dictionaryHolds(l.dir + "/lake/ids/a.parquet", "u-100001") == false)
    #expect(try readIDs(l.dir + "/lake/ids/a.parquet") == "['u-200002', 'u-300003', 'u-200002']")
    let again = try await lethe.sweep()
    #expect(again.clean && again.requests.map(\.result) == ["swept"], "\(again.requests)")
}

/// Writes argv[2]'s files (comma-separated: `a`, `b`) into the folder argv[1]: a.parquet holds
/// u-100001 only in a dictionary entry no row references; b.parquet a row of it.
private let orphanFiles = """
    import sys, pyarrow as pa, pyarrow.parquet as pq
    names = sys.argv[2].split(',')
    if 'a' in names:
        d = pa.DictionaryArray.from_arrays(pa.array([1, 2, 1], type=pa.int32()), pa.array(['u-100001', 'u-200002', 'u-300003']))
        pq.write_table(pa.table({'user_id': d, 'v': [1, 2, 3]}), sys.argv[1] + '/a.parquet')
    if 'b' in names:
        pq.write_table(pa.table({'user_id': ['u-100001', 'u-400004'], 'v': [4, 5]}), sys.argv[1] + '/b.parquet')
    """

/// Whether a row group's dictionary of `user_id` (every entry, as pyarrow reads it) holds `value`.
private func dictionaryHolds(_ path: String, _ value: String) throws -> Bool {
    let out = try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow.parquet as pq
            f = pq.ParquetFile(sys.argv[1], read_dictionary=['user_id'])
            print(any(sys.argv[2] in f.read_row_group(g).column('user_id').chunks[0].dictionary.to_pylist() for g in range(f.num_row_groups)))
            """, path, value,
        ], what: "dictionaries")
    return out.trimmingCharacters(in: .whitespacesAndNewlines) == "True"
}

/// The user ids pyarrow reads from a Parquet file, as Python prints the list.
private func readIDs(_ path: String) throws -> String {
    try Peers.python(
        ["-c", "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).column('user_id').to_pylist())", path], what: "read back"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
}
