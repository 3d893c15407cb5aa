import Foundation
import LetheTestSupport
import Testing
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheFormats
import LetheSQLite
import LetheTesting

// Issue 12, lever 1 for Delta: an erasure commit's replacement file gets its index entry from the
// removed file's (`putDerivedObject(…replacing:)`: the entry renamed, postings kept, the dropped
// physical rows remapped) after the verification reads only the rows the rewrite re-encoded. The
// oracle is a fresh full index of the same table in a new state.

/// Two delta-rs appends of 2,000 rows in 500-row row groups; user_id `u-(i % 40)`, and `target` at
/// rows 7 and 1203 of the first file and row 1999 of the second.
private let rowGroupsScript = #"""
    import sys, pyarrow as pa
    from deltalake import write_deltalake, WriterProperties
    for f in range(2):
        users = ["u-%d" % (i % 40) for i in range(2000)]
        for r in ([7, 1203] if f == 0 else [1999]): users[r] = "target"
        data = pa.table({"user_id": users, "n": pa.array(range(f * 2000, f * 2000 + 2000), pa.int64())})
        write_deltalake(sys.argv[1], data, mode="append", writer_properties=WriterProperties(max_row_group_size=500))
    """#

/// A folder holding Delta table `t` and a Lethe over it whose state (SQLite in memory) counts the
/// derivations (`DerivingStateStore`).
private struct DerivedDeltaLake {
    let dir: String
    let derive: DerivingStateStore
    var lethe: Lethe
    var table: String { dir + "/t" }

    init(_ make: (String) throws -> Void) throws {
        dir = NSTemporaryDirectory() + "lethe-deltaderived-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try make(dir)
        derive = DerivingStateStore(base: try SQLiteStateStore(inMemory: nil))
        lethe = try deltaLethe(dir, ["t"]).over(derive)
    }

    static func rowGroups() throws -> DerivedDeltaLake {
        try DerivedDeltaLake { dir in _ = try Peers.python(["-c", rowGroupsScript, dir + "/t"], what: "delta derived entries (write)") }
    }

    /// Two files of 40 and 30 rows (user_id `u-(row % 7)`) with deletion vectors: file 0 rows 3, 4, 5
    /// (in a DV file), file 1 rows 0, 1 (inline). Written by delta-rs, the DVs by scripts/delta_dv.py.
    static func deletionVectors() throws -> DerivedDeltaLake {
        try DerivedDeltaLake { dir in
            let dv = { (args: [String]) in try Peers.python([Peers.script("delta_dv.py")] + args, what: "delta_dv.py \(args[0])") }
            _ = try dv(["make", dir, "40,30"])
            _ = try dv(["delete", dir + "/dv", #"{"dvs":[{"f":0,"rows":[3,4,5],"storage":"u","bin":"b1"},{"f":1,"rows":[0,1],"storage":"i"}]}"#])
            try FileManager.default.moveItem(atPath: dir + "/dv", toPath: dir + "/t")
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    func approved(_ subject: String) async throws -> ErasureRequest {
        let r = try await lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
        return try await lethe.approve([r.id], by: "bob")[0]
    }

    /// The index against a fresh full index of the same table (a new state): the same objects at the
    /// same versions, record counts and status, and for every subject the same rows in the same files.
    func expectEqualsAFreshIndex(subjects: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let fresh = lethe.over(try SQLiteStateStore(inMemory: nil))
        _ = try await fresh.index()
        func objects(_ l: Lethe) async throws -> [String] {
            try await l.meta.objects(dataset: "t").map { "\($0.key) \($0.version) \($0.records) \($0.status)" }
        }
        #expect(try await objects(lethe) == (try await objects(fresh)), sourceLocation: sourceLocation)
        for s in subjects {
            func held(_ l: Lethe) async throws -> [String] { try await l.locate(SubjectID(s)).map { "\($0.object.key) \($0.rows)" }.sorted() }
            #expect(try await held(lethe) == (try await held(fresh)), "subject \(s)", sourceLocation: sourceLocation)
        }
    }
}

@Test func aDeltaReplacementsEntryIsDerivedFromTheRemovedFilesAndEqualsAFreshIndex() async throws {
    let l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    let removed = Set(try await l.lethe.locate(SubjectID("target")).map(\.object.key))
    #expect(removed.count == 2)
    _ = try await l.approved("target")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(run.rowsDropped == 3 && v.clean && v.proof == "index", "\(v)")
    // Both replacements derived; only their re-encoded row groups were read (3 of 8, not 3,997 rows).
    #expect(l.derive.derivations.derived == 2)
    #expect(v.recordsScanned == 499 * 3, "\(v)")
    let keys = Set(try await l.lethe.meta.objects(dataset: "t").map(\.key))
    #expect(keys.count == 2 && keys.isDisjoint(with: removed))
    #expect(try await l.lethe.locate(SubjectID("target")).isEmpty)
    let subjects = (0..<40).map { "u-\($0)" } + ["target"]
    try await l.expectEqualsAFreshIndex(subjects: subjects)
    #expect(try rows(l.table).count == 3_997)

    // Again on the derived entries (a second rename, the dropped rows in the first replacement's numbering).
    _ = try await l.approved("u-5")
    let again = try await l.lethe.run()
    #expect(again.verifications.first?.clean == true && again.rowsDropped == 100, "\(again.verifications)")
    #expect(l.derive.derivations.derived == 4)
    try await l.expectEqualsAFreshIndex(subjects: subjects)
    #expect(try rows(l.table).count == 3_897 && !(try rows(l.table)).contains("u-5"))
}

@Test func aDeltaReplacementOfAFileChangedSinceItWasIndexedIsReadWholeAndIndexed() async throws {
    let l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    // One holder is written again in place (same bytes, a new store version): its index entry is stale.
    let holder = try #require(try await l.lethe.locate(SubjectID("target")).map(\.object.key).sorted().first)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: l.dir + "/" + holder))
    try FileManager.default.removeItem(atPath: l.dir + "/" + holder)
    try bytes.write(to: URL(fileURLWithPath: l.dir + "/" + holder))
    _ = try await l.approved("target")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index", "\(v)")
    // The other file's replacement is derived (its re-encoded row groups read); the stale one's is
    // read whole and indexed
    #expect(l.derive.derivations.derived == 1)
    // (the first file drops 2 rows in 2 row groups, the second 1: whichever went stale)
    #expect([998 + 1_999, 499 + 1_998].contains(v.recordsScanned), "\(v)")
    try await l.expectEqualsAFreshIndex(subjects: (0..<40).map { "u-\($0)" } + ["target"])
}

@Test func deltaReplacementsOfFilesWithDeletionVectorsAreDerivedInPhysicalRows() async throws {
    let l = try DerivedDeltaLake.deletionVectors()
    defer { l.remove() }
    let before = try rows(l.table)
    _ = try await l.lethe.index()
    _ = try await l.approved("u-3")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(run.failed.isEmpty && v.clean && v.proof == "index", "\(v)")
    // The deletion vectors' rows went with the rewrite: the derived entries dropped them too.
    #expect(l.derive.derivations.derived == 2)
    #expect(try rows(l.table) == before.filter { $0 != "u-3" })
    try await l.expectEqualsAFreshIndex(subjects: (0..<7).map { "u-\($0)" })
}

@Test func aFailedDerivationLeavesTheRemovedFilesEntryAndTheNextVerificationIndexesTheReplacement() async throws {
    let l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    let held = try await l.lethe.meta.objects(dataset: "t")
    let r = try await l.approved("target")
    // The derivation's transaction fails (after the store renamed the entry): nothing of it lands.
    l.derive.failReplacement()
    await #expect(throws: DerivingStateStore.InjectedFailure.self) { _ = try await l.lethe.run() }
    #expect(l.derive.derivations.derived == 0)
    #expect(try await l.lethe.meta.objects(dataset: "t") == held)
    // The next verification finds no entry to take (the job's evidence is gone with its run):
    // the removed files leave the index, the replacements are read whole and indexed.
    let v = try await Verifier(l.lethe).verify(
        [try await l.lethe.request(r.id)], dryRun: false, indexCost: IndexCostRun(rewritten: [:], touched: []))[0]
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(l.derive.derivations.derived == 0)
    try await l.expectEqualsAFreshIndex(subjects: (0..<40).map { "u-\($0)" } + ["target"])
}

@Test func aRunStoppedBeforeItsVerificationLeavesTheNextOneToIndexTheReplacements() async throws {
    var l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    let r = try await l.approved("target")
    // Stopped after the erasure step (commit and vacuum) and before its verification: the removed
    // files' entries are still in the index (only the verification takes or removes them).
    struct Stop: Error {}
    l.lethe.beforeRunVerification = { throw Stop() }
    await #expect(throws: Stop.self) { _ = try await l.lethe.run() }
    #expect(try await l.lethe.request(r.id).status != .verified)
    l.lethe.beforeRunVerification = nil
    // The resumed job has no evidence left (its steps were pruned): the replacements are read whole
    // and indexed, the vacuumed files leave the index.
    let run = try await l.lethe.run()
    #expect(run.verifications.first?.clean == true, "\(run.verifications)")
    #expect(try await l.lethe.request(r.id).status == .verified)
    #expect(l.derive.derivations.derived == 0)
    #expect(try await l.lethe.locate(SubjectID("target")).isEmpty)
    try await l.expectEqualsAFreshIndex(subjects: (0..<40).map { "u-\($0)" } + ["target"])
}

// The verification's reads of the replacements, made ahead beside the vacuum (`ReadAhead`).

@Test func theVerificationTakesTheReadsMadeAheadOfItAndDerivesTheSameEntries() async throws {
    let l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    _ = try await l.approved("target")
    let taken = l.lethe.readAhead.taken
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(run.rowsDropped == 3 && v.clean && v.proof == "index", "\(v)")
    // Both replacements were read beside the vacuum and the verification took both reads: the same
    // re-encoded row groups (3 of 8), the same derived entries as a fresh index.
    #expect(l.lethe.readAhead.taken - taken == 2)
    #expect(l.derive.derivations.derived == 2)
    #expect(v.recordsScanned == 499 * 3, "\(v)")
    try await l.expectEqualsAFreshIndex(subjects: (0..<40).map { "u-\($0)" } + ["target"])
}

/// `dropReadsAhead`: the reads ahead are dropped (cancelled if still reading) instead of awaited, as a
/// read that gave up or a run's end leaves them: the verification has nothing to take.
@Test(arguments: [false, true])
func aReplacementChangedAfterItsReadAheadIsReadAgainAndItsResidueFound(dropReadsAhead: Bool) async throws {
    var l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    // A holder's bytes, kept to put back over a replacement.
    let holder = try #require(try await l.lethe.locate(SubjectID("target")).map(\.object.key).sorted().first)
    let original = try Data(contentsOf: URL(fileURLWithPath: l.dir + "/" + holder))
    _ = try await l.approved("target")
    let taken = l.lethe.readAhead.taken
    // After the reads ahead ended (clean), before the verification: another writer puts the subject's
    // rows back into one replacement (the removed file's bytes under the replacement's name; the
    // vacuum left only the two replacements in the folder).
    let lethe = l.lethe, t = l.table
    l.lethe.beforeRunVerification = {
        if dropReadsAhead { lethe.readAhead.clear() } else { await lethe.readAhead.settled(dataset: "t") }
        let files = try FileManager.default.contentsOfDirectory(atPath: t).filter { $0.hasSuffix(".parquet") }.sorted()
        #expect(files.count == 2)
        try original.write(to: URL(fileURLWithPath: t + "/" + files[0]))
    }
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    // The changed replacement is not the object read ahead: it is read whole and the rows are found;
    // the other replacement's read made ahead is taken (none when they were dropped).
    #expect(!v.clean && v.found.count == 1 && (v.found.first?.rows ?? 0) >= 1, "\(v)")
    #expect(l.lethe.readAhead.taken - taken == (dropReadsAhead ? 0 : 1))
}

@Test func readsAheadDroppedBeforeTheVerificationLeaveItToReadEveryReplacementItself() async throws {
    var l = try DerivedDeltaLake.rowGroups()
    defer { l.remove() }
    _ = try await l.lethe.index()
    _ = try await l.approved("target")
    let taken = l.lethe.readAhead.taken
    // Dropped (cancelled if still reading) just before the verification, as a read that gave up or a
    // run's end leaves them: nothing is taken, and the verification reads the same rows itself.
    let lethe = l.lethe
    l.lethe.beforeRunVerification = { lethe.readAhead.clear() }
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(l.lethe.readAhead.taken - taken == 0)
    #expect(v.recordsScanned == 499 * 3, "\(v)")
    #expect(l.derive.derivations.derived == 2)
    try await l.expectEqualsAFreshIndex(subjects: (0..<40).map { "u-\($0)" } + ["target"])
}

@Test func aReadMadeAheadIsTakenOnlyForTheSameObjectVersionPlanKeysAndOptions() throws {
    let object = ObjectInfo(key: "t/part-0.parquet", size: 100, modifiedNanos: 5, version: "v1")
    let keys: Set<SubjectKey> = [SubjectKey(hex: String(repeating: "ab", count: 32))!]
    let options = FormatOptions(subject: SubjectSpec(fields: [FieldPath("user_id")]))
    let plan = Verifier.ReadPlan(records: 10, rows: [0..<4], matcher: .keys(keys))
    var read = Verifier.KeyedRead(object: ObjectInfo(key: object.key, size: 100, modifiedNanos: 1, version: "v1"))
    read.records = 10
    var ahead = ReadAhead.Reads(options: options, keys: keys)
    ahead.byKey[object.key] = (read.object, plan, read)
    let plans = [object.key: plan]
    // Same version, size, plan, keys and options: taken, carrying the object as listed now.
    let same = Verifier.readsTaken(from: ahead, [object], plans: plans, options: options, keys: keys)
    #expect(same.count == 1 && same[0]?.object == object && same[0]?.records == 10)
    // Anything else: read again.
    var other = object
    other.version = "v2"
    #expect(Verifier.readsTaken(from: ahead, [other], plans: plans, options: options, keys: keys).isEmpty)
    other = object
    other.size = 101
    #expect(Verifier.readsTaken(from: ahead, [other], plans: plans, options: options, keys: keys).isEmpty)
    var otherPlan = plan
    otherPlan.rows = nil
    #expect(Verifier.readsTaken(from: ahead, [object], plans: [object.key: otherPlan], options: options, keys: keys).isEmpty)
    otherPlan = plan
    otherPlan.matcher = .values([Array("target".utf8)])
    #expect(Verifier.readsTaken(from: ahead, [object], plans: [object.key: otherPlan], options: options, keys: keys).isEmpty)
    #expect(Verifier.readsTaken(from: ahead, [object], plans: [:], options: options, keys: keys).isEmpty)
    let moreKeys = keys.union([SubjectKey(hex: String(repeating: "cd", count: 32))!])
    #expect(Verifier.readsTaken(from: ahead, [object], plans: plans, options: options, keys: moreKeys).isEmpty)
    var otherOptions = options
    otherOptions.pii = [FieldPath("email")]
    #expect(Verifier.readsTaken(from: ahead, [object], plans: plans, options: otherOptions, keys: keys).isEmpty)
    #expect(Verifier.readsTaken(from: nil, [object], plans: plans, options: options, keys: keys).isEmpty)
}
