import Foundation
import LetheTestSupport
import Testing
@testable import LetheEngine
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheCatalog
import LetheSQLite
import LetheTesting

// Issue 12: a rewritten object is verified and re-indexed at the cost of what was re-encoded. The
// erase journals what it did (`RewriteEvidence`); the index entry of the new version is derived from
// the old one (`putDerivedObjects`), and a Parquet object is read again only in the row groups the
// rewrite re-encoded, the copied ones proven by the old version's postings.

private let writeScript = #"""
    import sys, pyarrow as pa, pyarrow.parquet as pq
    n = 3200
    users = ["u-%d" % (i % 800) for i in range(n)]
    users[5] = users[6] = "target-1"          # two rows, both in row group 0 (rows 0-399)
    for i in range(400, 800): users[i] = "whole-group"   # all of row group 1
    t = pa.table({
        "user_id": pa.array(users, pa.string()),
        "n": pa.array(range(n), pa.int64()),
        "note": pa.array(["note %d %s" % (i, "x" * (i % 7)) for i in range(n)], pa.string()),
    })
    pq.write_table(t, sys.argv[1], row_group_size=400, compression="snappy")
    """#

/// Puts `target-1` into row `row` of the file (a new version), keeping its 400-row row groups.
private let plantScript = #"""
    import sys, pyarrow as pa, pyarrow.parquet as pq
    t = pq.read_table(sys.argv[1])
    users = t.column("user_id").to_pylist()
    users[int(sys.argv[2])] = "target-1"
    t = t.set_column(0, "user_id", pa.array(users, pa.string()))
    pq.write_table(t, sys.argv[1] + ".tmp", row_group_size=400, compression="snappy")
    import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    """#

private let readBackScript = #"""
    import sys, pyarrow.parquet as pq
    f = pq.ParquetFile(sys.argv[1])
    t = f.read()
    users = t.column("user_id").to_pylist()
    assert t.num_rows == 3198, t.num_rows
    assert "target-1" not in users
    assert t.column("n").to_pylist() == [i for i in range(3200) if i not in (5, 6)]
    assert f.metadata.num_row_groups == 8, f.metadata.num_row_groups
    print("ok")
    """#

/// A local lake holding one pyarrow-written Parquet object (8 row groups of 400 rows) and a state
/// in memory whose index derives entries (`DerivingStateStore`); the format counts rows keyed and
/// rows read by `match(…rows:)`.
private struct ParquetLake {
    let root: String
    let store: LocalObjectStore
    let derive: DerivingStateStore
    let keyed = KeyedRowCounter(), matched = KeyedRowCounter()
    var lethe: Lethe
    static let key = "ds/p.parquet"

    init(streamed: Bool, meta: ((DerivingStateStore) -> any StateStore)? = nil) throws {
        root = NSTemporaryDirectory() + "lethe-derived-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/ds", withIntermediateDirectories: true)
        try Peers.python(["-c", writeScript, root + "/" + Self.key], what: "derived verification test (write)")
        store = LocalObjectStore(root: root)
        derive = DerivingStateStore(base: try SQLiteStateStore(inMemory: nil))
        let yaml = "lake: ./lake\ndatasets:\n  - {name: events, path: ds, format: parquet, subject: user_id}\n"
        lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp"), store: store, meta: meta?(derive) ?? derive,
            secrets: StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32)),
            stateFolder: nil)
        let keyed = self.keyed, matched = self.matched
        lethe.formatHook = { name in
            guard name == "parquet" else { return nil }
            var f = ParquetFormat(wholeObjectLimit: streamed ? 0 : .max, tailGuess: 64, coalesceGap: 0)
            f.keyedRows = keyed
            f.matchedRows = matched
            return f
        }
    }

    var path: String { root + "/" + Self.key }
    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    func approved(_ subject: String) async throws -> ErasureRequest {
        let r = try await lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
        return try await lethe.approve([r.id], by: "bob")[0]
    }

    /// The object's index entry against a fresh scan of it: same version and records, and for
    /// every key prefix the scan finds, the rows the index locates there.
    func expectIndexEqualsAFreshScan() async throws {
        let info = try #require(try await store.head(Self.key))
        let known = try #require(try await lethe.meta.objects(dataset: "events").first { $0.key == Self.key })
        var fresh: [Int64: [Int64]] = [:]
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher)
        let s = try await ParquetFormat().scan(info, in: store, options: FormatOptions(subject: SubjectSpec("user_id")), keyer: keyer) {
            row, k in fresh[k.prefix64, default: []].append(row)
        }
        #expect(known.version == info.version && known.records == s.records && known.status == .indexed)
        let located = try await lethe.meta.index.locate(prefixes: Array(fresh.keys), dataset: "events")
        for (prefix, rows) in fresh {
            let got = (located[prefix] ?? []).filter { $0.object.key == Self.key }.flatMap(\.rows).sorted()
            #expect(got == rows.sorted(), "prefix \(prefix)")
        }
    }
}

@Test(arguments: [false, true])
func aRunReadsOnlyTheReencodedRowGroupOfARewrittenParquetObject(_ streamed: Bool) async throws {
    let l = try ParquetLake(streamed: streamed)
    defer { l.cleanup() }
    _ = try await l.lethe.index()
    #expect(l.keyed.count == 3200)
    _ = try await l.approved("target-1")
    let keyed = l.keyed.count, matched = l.matched.count
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(run.rowsDropped == 2)
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsRereadInPart == 1, "\(v)")
    // The erase keys the 2 hinted rows; the verification compares the 398 rows of the one re-encoded
    // row group by value (no keyed hash) and reads nothing of the 7 copied ones.
    #expect(l.keyed.count - keyed == 2, "keyed \(l.keyed.count - keyed) rows in the run")
    #expect(l.matched.count - matched == 398 && v.recordsScanned == 398, "\(v)")
    #expect((v.bytesRead ?? .max) < (try await l.store.head(ParquetLake.key))!.size)
    #expect(l.derive.derivations.derived == 1)
    // The derived entry is what a scan of the new version gives.
    try await l.expectIndexEqualsAFreshScan()
    #expect(try await l.lethe.locate(SubjectID("target-1")).isEmpty)
    #expect(try await l.lethe.locate(SubjectID("u-100")).first?.rows == [100, 900, 1700, 2500].map { $0 - 2 })
    // pyarrow reads the result.
    #expect(try Peers.python(["-c", readBackScript, l.path], what: "derived verification test (read back)").contains("ok"))
}

@Test func aRewrittenObjectChangedBehindTheIndexIsReadInFull() async throws {
    var l = try ParquetLake(streamed: true)
    defer { l.cleanup() }
    _ = try await l.lethe.index()
    _ = try await l.approved("target-1")
    // After the erase, before its verification, another writer puts the subject into a row group the
    // erase copied (row 2000, group 5): the object's version is no longer the one the erase wrote.
    let path = l.path
    l.lethe.beforeRunVerification = {
        try Peers.python(["-c", plantScript, path, "2000"], what: "derived verification test (plant)")
    }
    let matched = l.matched.count
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(!v.clean && v.found.map(\.object) == [ParquetLake.key] && v.found.first?.rows == 1, "\(v)")
    #expect(v.objectsRereadInPart == nil && v.recordsScanned == 3198, "\(v)")
    #expect(l.matched.count == matched && l.derive.derivations.derived == 0)
    // The full read is the object's new index entry: it holds the planted row.
    #expect(try await l.lethe.locate(SubjectID("target-1")).first?.rows == [2000])
}

@Test func aResumedJobWithoutItsOutcomeReadsTheRewrittenObjectInFull() async throws {
    let l = try ParquetLake(streamed: false) { FaultInjectingStateStore(base: $0) }
    defer { l.cleanup() }
    let faulty = try #require(l.lethe.meta as? FaultInjectingStateStore)
    _ = try await l.lethe.index()
    _ = try await l.approved("target-1")
    let before = try #require(try await l.store.head(ParquetLake.key))
    // The object is rewritten, then the step's end (with its journaled outcome) cannot be recorded:
    // the run stops with the step pending (audit appends: `started`, then `object_rewritten`).
    faulty.failAuditAppend(nth: 2)
    await #expect(throws: (any Error).self) { _ = try await l.lethe.run() }
    #expect(try await l.store.head(ParquetLake.key)?.version != before.version)
    faulty.heal()
    // The next run resumes the job: the step finds nothing left to drop and writes nothing, so it
    // has no evidence of what was re-encoded: the verification reads the whole object and indexes it.
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsRereadInPart == nil, "\(v)")
    #expect(v.recordsScanned == 3198)
    #expect(l.derive.derivations.derived == 0)
    try await l.expectIndexEqualsAFreshScan()
}

@Test func aDerivedJSONLinesEntryEqualsAFreshScanAndTheObjectIsReadWhole() async throws {
    let store = InMemoryObjectStore()
    let derive = DerivingStateStore(base: try SQLiteStateStore(inMemory: nil))
    let yaml = "lake: ./lake\ndatasets:\n  - {name: raw, path: raw, format: jsonl, subject: user.id}\n"
    let lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp"), store: store, meta: derive,
        secrets: StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32)),
        stateFolder: nil)
    let users = (0..<60).map { $0 % 7 == 3 ? "target-9" : "u-\($0 % 11)" }
    store.set("raw/a.jsonl", Array(users.enumerated().map { #"{"n":\#($0.offset),"user":{"id":"\#($0.element)"}}"# + "\n" }.joined().utf8))
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("target-9")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.objectsReread == 1 && v.objectsRereadInPart == nil && v.recordsScanned == 51, "\(v)")
    #expect(derive.derivations.derived == 1)
    let info = try #require(try await store.head("raw/a.jsonl"))
    var fresh: [Int64: [Int64]] = [:]
    _ = try await JSONLinesFormat().scan(
        info, in: store, options: FormatOptions(subject: SubjectSpec("user.id")), keyer: SubjectKeyer(hasher: lethe.secrets.hasher)
    ) { row, k in fresh[k.prefix64, default: []].append(row) }
    let located = try await lethe.meta.index.locate(prefixes: Array(fresh.keys), dataset: "raw")
    for (prefix, rows) in fresh { #expect((located[prefix] ?? []).flatMap(\.rows).sorted() == rows) }
    #expect(try await lethe.meta.objects(dataset: "raw").first?.version == info.version)
}

@Test func evidenceNamesTheRowsToReadOnlyWhenTheIndexPutsTheBatchThere() throws {
    var o = EraseOutcome()
    o.exact = true
    o.droppedOrdinals = [5, 6]
    o.kept = 3198
    o.rewrittenRows = [0..<398]
    o.written = ObjectInfo(key: "k", size: 1, modifiedNanos: 0, version: "v2")
    let e = RewriteEvidence(from: "v1", o)
    // Journaled and read back with the step's other outcome members.
    let text = JSONValue.object(["dropped": .object([:]), "verify": e.json]).text
    #expect(RewriteEvidence.parse(text) == e)
    #expect(RewriteEvidence.parse(#"{"dropped":{},"kept":3}"#) == nil)  // a step journaled by an older build
    #expect(RewriteEvidence.parse("dataset `x` is gone") == nil)
    // The batch's postings in the old version: dropped rows, or rows now in the re-encoded range.
    #expect(e.rowsToRead(batchRows: [5, 6]) == [0..<398])
    #expect(e.rowsToRead(batchRows: [5, 6, 399]) == [0..<398])  // old 399 is new 397
    // A posting in a copied row group (a collision the erase kept, or an index the erase disagreed
    // with): everything is read.
    #expect(e.rowsToRead(batchRows: [5, 6, 400]) == nil)
    var whole = o
    whole.rewrittenRows = nil
    #expect(RewriteEvidence(from: "v1", whole).rowsToRead(batchRows: [5]) == nil)
}

@Test func aRewriteThatReencodedNothingIsProvenByTheIndexAndSaysSo() async throws {
    let l = try ParquetLake(streamed: true)
    defer { l.cleanup() }
    _ = try await l.lethe.index()
    _ = try await l.approved("whole-group")
    let matched = l.matched.count
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(run.rowsDropped == 400)
    // Row group 1 is gone, the other 7 copied: no record was re-encoded, none is read again. The footer is
    // read (the record count must be the derived entry's) and the old postings put every row of the subject
    // in the removed group: the proof is the index's, and the report says no record was read.
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsRereadInPart == 1 && v.recordsScanned == 0, "\(v)")
    #expect(l.matched.count == matched && l.derive.derivations.derived == 1)
    try await l.expectIndexEqualsAFreshScan()
    #expect(try await l.lethe.locate(SubjectID("whole-group")).isEmpty)
}
