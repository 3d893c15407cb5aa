import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import LetheSQLite
import LetheTesting

// Issue 12 part A: a run's verification at index cost (IndexCostVerifier) for object datasets.

private func event(_ u: String, _ n: Int) -> String { userEvent(u, n) }

private let twoDatasets = rawAndOtherDatasets

/// A lake in memory behind a `FaultInjectingStore` (byte and listing counters), SQLite in memory.
private struct CountingLake {
    let store: FaultInjectingStore
    let meta: SQLiteStateStore
    let lethe: Lethe
    static let secrets = StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32))

    init(_ yaml: String = twoDatasets, store: FaultInjectingStore = FaultInjectingStore(), meta: SQLiteStateStore? = nil) throws {
        self.store = store
        self.meta = try meta ?? SQLiteStateStore(inMemory: nil)
        lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp"), store: store, meta: self.meta,
            secrets: Self.secrets, stateFolder: nil)
    }

    /// The same lake and state opened under another configuration.
    func reopened(_ yaml: String) throws -> CountingLake { try CountingLake(yaml, store: store, meta: meta) }

    func put(_ key: String, _ text: String) { store.set(key, Array(text.utf8)) }

    func approved(_ subject: String) async throws -> ErasureRequest {
        let r = try await lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
        return try await lethe.approve([r.id], by: "bob")[0]
    }

    /// The index-cost verification a run's settle makes, for requests already erased or verified.
    func verifyAtIndexCost(_ rs: [ErasureRequest]) async throws -> [Verification] {
        var current: [ErasureRequest] = []
        for r in rs { current.append(try await lethe.request(r.id)) }
        return try await Verifier(lethe).verify(current, dryRun: false, indexCost: IndexCostRun(rewritten: [:], touched: []))
    }
}

/// A lake of `objects` JSONL objects in `raw` of `rows` records each, users `u-<object>-<row>`;
/// `other` holds one object.
private func lake(objects: Int, rows: Int = 20) -> CountingLake {
    let l = try! CountingLake()
    for o in 0..<objects {
        l.put("raw/part-\(String(format: "%03d", o)).jsonl", (0..<rows).map { event("u-\(o)-\($0)", $0) }.joined())
    }
    l.put("other/o.jsonl", #"{"uid":"w-1"}"# + "\n")
    return l
}

@Test func runReadsOnlyTheObjectsItRewrote() async throws {
    let l = lake(objects: 50)
    // The subject is in two objects.
    for o in [7, 31] {
        let key = "raw/part-\(String(format: "%03d", o)).jsonl"
        l.put(key, String(decoding: l.store.get(key)!, as: UTF8.self) + event("target-1", 99))
    }
    _ = try await l.lethe.index()
    let r = try await l.approved("target-1")
    let two = Int64(l.store.get("raw/part-007.jsonl")!.count + l.store.get("raw/part-031.jsonl")!.count)
    var total: Int64 = 0
    for o in 0..<50 { total += Int64(l.store.get("raw/part-\(String(format: "%03d", o)).jsonl")!.count) }
    l.store.resetCounters()
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(v.datasets == ["raw"] && v.objectsListed == 50 && v.objectsReread == 2 && v.objectsUnchanged == 48 && v.objectsIndexedNow == 0, "\(v)")
    #expect(v.objectsScanned == 2 && (v.bytesRead ?? 0) <= two, "\(v)")
    #expect(try await l.lethe.request(r.id).status == .verified)
    #expect(try await l.lethe.request(r.id).proof == "index")  // the proof kind is stored on the request
    // The whole run read the two objects to erase them and once more to verify (and index) them: nothing else.
    #expect(l.store.bytesRead <= 2 * two, "read \(l.store.bytesRead) bytes; the two objects hold \(two), the lake \(total)")
    // The index holds the rewritten objects' new versions, without the subject.
    #expect(try await l.lethe.locate(SubjectID("target-1")).isEmpty)
    let known = try await l.meta.objects(dataset: "raw")
    for o in [7, 31] {
        let info = try #require(try await l.store.head("raw/part-\(String(format: "%03d", o)).jsonl"))
        #expect(known.first { $0.key == info.key }?.version == info.version)
    }
}

@Test func anObjectChangedAfterIndexingIsIndexedAndScannedBeforeTheProof() async throws {
    let l = lake(objects: 5)
    l.put("raw/part-001.jsonl", String(decoding: l.store.get("raw/part-001.jsonl")!, as: UTF8.self) + event("target-2", 1))
    _ = try await l.lethe.index()
    let r = try await l.approved("target-2")
    let run = try await l.lethe.run()
    #expect(run.verifications.first?.clean == true)
    // After the run indexed the lake, another writer puts the subject into an untouched object (a new version).
    l.put("raw/part-003.jsonl", String(decoding: l.store.get("raw/part-003.jsonl")!, as: UTF8.self) + event("target-2", 2))
    let v = try #require(try await l.verifyAtIndexCost([r]).first)
    #expect(!v.clean && v.proof == "index" && v.objectsIndexedNow == 1, "\(v)")
    #expect(v.found.map(\.object) == ["raw/part-003.jsonl"] && v.found.first?.rows == 1, "\(v)")
    #expect(try await l.lethe.request(r.id).status == .failed)
    // The object was indexed on the way: the index has its posting now.
    #expect(try await l.lethe.meta.locate(prefix: r.subjectKey.prefix64, dataset: "raw").map(\.object.key) == ["raw/part-003.jsonl"])
}

@Test func aPostingCollisionIsReReadNotAssumed() async throws {
    let l = lake(objects: 4)
    _ = try await l.lethe.index()
    let r = try await l.approved("target-3")
    _ = try await l.lethe.run()
    // The index says an unchanged object holds a record under the subject's key prefix (as a 64-bit
    // prefix collision would): the verification reads it again rather than trust or fail on the posting.
    let key = "raw/part-002.jsonl"
    let info = try #require(try await l.store.head(key))
    var postings: [Int64: [Int64]] = [:]
    _ = try await JSONLinesFormat().scan(
        info, in: l.store, options: try #require(l.lethe.options(for: l.lethe.config.dataset(named: "raw")!)),
        keyer: l.lethe.keyer(for: l.lethe.config.dataset(named: "raw")!)
    ) { row, k in
        postings[k.prefix64, default: []].append(row)
    }
    postings[r.subjectKey.prefix64] = [0]
    _ = try await l.meta.putIndexedObjects([
        (
            IndexedObject(
                dataset: "raw", key: key, size: info.size, modifiedNanos: info.modifiedNanos, version: info.version, records: 20, status: .indexed,
                indexedAt: 1), postings
        )
    ])
    l.store.resetCounters()
    let v = try #require(try await l.verifyAtIndexCost([r]).first)
    #expect(v.clean && v.proof == "index" && v.objectsReread == 1 && v.objectsUnchanged == 3, "\(v)")
    #expect(l.store.bytesRead == info.size)
    // A real record under the posting is residue.
    l.put(key, String(decoding: l.store.get(key)!, as: UTF8.self) + event("target-3", 5))
    _ = try await l.lethe.index()
    let again = try #require(try await l.verifyAtIndexCost([r]).first)
    #expect(!again.clean && again.found.map(\.object) == [key] && again.objectsReread == 1 && again.objectsIndexedNow == 0, "\(again)")
}

@Test func aQuarantinedObjectBlocksTheIndexProof() async throws {
    let l = lake(objects: 3)
    l.put("raw/part-000.jsonl", String(decoding: l.store.get("raw/part-000.jsonl")!, as: UTF8.self) + event("target-4", 1))
    _ = try await l.lethe.index()
    let r = try await l.approved("target-4")
    #expect(try await l.lethe.run().verifications.first?.clean == true)
    // An object the index cannot read: it may hold anyone.
    l.put("raw/part-009.jsonl", "{not json\n")
    let ir = try await l.lethe.index()
    #expect(ir.quarantined.map(\.object) == ["raw/part-009.jsonl"])
    let v = try #require(try await l.verifyAtIndexCost([r]).first)
    #expect(!v.clean && v.proof == "index" && v.unreadable.map(\.object) == ["raw/part-009.jsonl"], "\(v)")
    #expect(v.unreadable.first?.issue?.contains("quarantined") == true, "\(v)")
}

@Test func aChangedSubjectSpecFallsBackToTheFullScan() async throws {
    let l = lake(objects: 3)
    _ = try await l.lethe.index()
    let r = try await l.approved("target-5")
    let first = try #require(try await l.lethe.run().verifications.first)
    #expect(first.clean && first.proof == "index" && first.objectsScanned == 0, "\(first)")
    // `raw`'s fingerprint recorded at indexing is not the spec's: its index says nothing; `other`'s still holds.
    try await l.meta.setSetting(IndexSpec.setting("raw"), "0000")
    let v = try #require(try await l.verifyAtIndexCost([r]).first)
    #expect(v.clean && v.proof == "index+full" && v.objectsScanned == 3 && v.objectsListed == 1, "\(v)")
    // The configuration changed since indexing (`normalize: nfc`): both datasets are read in full.
    let nfc = try l.reopened(twoDatasets.replacingOccurrences(of: "subject: uid", with: "subject: uid\n    normalize: nfc"))
    let w = try #require(
        try await Verifier(nfc.lethe).verify([try await nfc.lethe.request(r.id)], dryRun: false, indexCost: IndexCostRun(rewritten: [:], touched: [])).first)
    #expect(w.proof == "full" && w.objectsScanned == 4 && w.objectsListed == nil, "\(w)")
    // `index` rescans a dataset whose fingerprint is not the spec's, and the index proof holds again.
    let ir = try await l.lethe.index()
    #expect(ir.objectsScanned == 3, "\(ir)")
    #expect(try await l.verifyAtIndexCost([r]).first?.proof == "index")
}

@Test func nothingExaminedIsNeverVerifiedAtIndexCost() async throws {
    let l = try CountingLake(twoDatasets)
    // Both folders exist and are empty: listed, nothing in them, and the plan named no object.
    l.put("raw/_SUCCESS", "")
    l.put("other/_SUCCESS", "")
    _ = try await l.lethe.index()
    let r = try await l.approved("target-6")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(!v.clean && v.proof == "index" && v.objectsListed == 0, "\(v)")
    #expect(v.problems?.first?.contains("no object was examined") == true, "\(v)")
    #expect(try await l.lethe.request(r.id).status == .failed)
}

/// A store whose listings of one prefix fail once armed.
private final class ListFailingStore: ObjectStore, @unchecked Sendable {
    let base: InMemoryObjectStore
    let prefix: String
    var armed = false
    init(base: InMemoryObjectStore, prefix: String) { self.base = base; self.prefix = prefix }
    var location: String { base.location }
    func list(prefix p: String, startAfter: String?) -> ObjectListing {
        guard armed, p.hasPrefix(prefix) else { return base.list(prefix: p, startAfter: startAfter) }
        return ObjectListing(startAfter: startAfter) { _ in throw LetheError(.io, "injected: listing refused", at: p) }
    }
    func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        try await base.read(key, range: range, ifVersion: ifVersion)
    }
    func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream { try await base.openRead(key, chunkSize: chunkSize) }
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        try await base.openWrite(key, precondition: precondition)
    }
    func delete(_ keys: [String]) async throws { try await base.delete(keys) }
}

@Test func anUnreadableListingIsAProblem() async throws {
    let memory = InMemoryObjectStore()
    let store = ListFailingStore(base: memory, prefix: "raw")
    let lethe = Lethe(
        config: try LakeConfig.parse(twoDatasets, file: "lethe.yaml", baseDir: "/tmp"), store: store,
        meta: try SQLiteStateStore(inMemory: nil), secrets: CountingLake.secrets, stateFolder: nil)
    memory.set("raw/a.jsonl", Array((event("target-7", 1) + event("u-1", 2)).utf8))
    memory.set("other/o.jsonl", Array(#"{"uid":"w-1"}"#.utf8 + [10]))
    _ = try await lethe.index()
    let r = try await lethe.approve([try await lethe.forget([SubjectID("target-7")], reason: "t", by: "alice")[0].id], by: "bob")[0]
    #expect(try await lethe.run().verifications.first?.clean == true)
    store.armed = true
    let v = try #require(
        try await Verifier(lethe).verify([try await lethe.request(r.id)], dryRun: false, indexCost: IndexCostRun(rewritten: [:], touched: [])).first)
    #expect(!v.clean && v.proof == "index", "\(v)")
    #expect(v.problems?.contains { $0.contains("`raw` could not be listed") && $0.contains("injected") } == true, "\(v)")
}

/// A rewritten object is byte-searched for the raw id too: the id left in another record's field
/// (a reference to the subject) is reported as a mention, not residue, and the subject's own
/// records are still what decides the verdict.
@Test func aRewrittenObjectIsByteSearchedAndAReferenceIsAMention() async throws {
    let l = lake(objects: 3)
    let key = "raw/part-001.jsonl"
    l.put(key, String(decoding: l.store.get(key)!, as: UTF8.self) + event("target-1", 99) + #"{"n":100,"user":{"id":"u-9"},"ref":"target-1"}"# + "\n")
    _ = try await l.lethe.index()
    let r = try await l.approved("target-1")
    let run = try await l.lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(v.mentions?.map(\.object) == [key], "\(v)")
    #expect(try await l.lethe.request(r.id).status == .verified)
    // The reference stays (masking is another decision); the subject's own record is gone.
    let text = String(decoding: l.store.get(key)!, as: UTF8.self)
    #expect(text.contains(#""ref":"target-1""#) && !text.contains(#""id":"target-1""#))
    // Without such a reference no mention is reported.
    let l2 = lake(objects: 3)
    l2.put(key, String(decoding: l2.store.get(key)!, as: UTF8.self) + event("target-1", 99))
    _ = try await l2.lethe.index()
    _ = try await l2.approved("target-1")
    let v2 = try #require(try await l2.lethe.run().verifications.first)
    #expect(v2.clean && v2.mentions == nil, "\(v2)")
}

/// The coverage the verification's re-index pass reads reaches the scope only when the pass re-indexed
/// nothing: a touched dataset it re-indexes (here never indexed before) is no longer unindexed in the scope.
@Test func theScopeTakesTheReindexPassCoverageOnlyWhenNothingWasReindexed() async throws {
    let l = lake(objects: 2)
    _ = try await l.lethe.index(datasets: ["raw"])
    let r = try await l.approved("u-0-1")
    let v = Verifier(l.lethe)
    // Only `raw` touched (verified at index cost): the coverage read is handed on, `other` still unindexed.
    let kept = try await IndexCostRun(rewritten: [:], touched: ["raw"]).reindexFullScanned(v)
    #expect(kept?.unindexed == ["other"])
    #expect(try await v.scope([r], coverage: kept).coverage.unindexed == ["other"])
    // `other` touched and never indexed: the pass re-indexes it, and the scope reads the coverage again.
    let after = try await IndexCostRun(rewritten: [:], touched: ["other"]).reindexFullScanned(v)
    #expect(after == nil)
    #expect(try await v.scope([r], coverage: after).coverage.unindexed.isEmpty)
}
