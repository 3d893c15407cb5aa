import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting
import LetheTestSupport

// Issue 12 (§2.2): a run's verification also asks the unchanged Parquet objects what their own
// metadata says (bloom filters, dictionaries, statistics) — a second proof beside the index, and one
// that catches an index that lies.

private let yaml = """
    lake: ./lake
    datasets:
      - name: facts
        path: facts
        format: parquet
        subject: user_id
    """

/// `n` Parquet objects written by pyarrow (dictionary-encoded, with statistics): object `i` holds users `u-i-0` … `u-i-19`.
private func parquetLake(_ n: Int, extra: [Int: [String]] = [:]) throws -> FaultInjectingStore {
    let dir = NSTemporaryDirectory() + "lethe-evidence-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var spec: [[String]] = []
    for i in 0..<n { spec.append((0..<20).map { "u-\(i)-\($0)" } + (extra[i] ?? [])) }
    let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
    try Peers.python(
        [
            "-c",
            """
            import json, sys, pyarrow as pa, pyarrow.parquet as pq
            for i, users in enumerate(json.loads(sys.argv[2])):
                pq.write_table(pa.table({'user_id': users, 'v': list(range(len(users)))}), '%s/f%03d.parquet' % (sys.argv[1], i))
            """, dir, json,
        ], what: "pyarrow writes the facts")
    let store = FaultInjectingStore()
    for i in 0..<n {
        let name = String(format: "f%03d.parquet", i)
        store.set("facts/" + name, [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))))
    }
    return store
}

private func open(_ store: FaultInjectingStore, _ meta: SQLiteStateStore) throws -> Lethe {
    Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/tmp"), store: store, meta: meta,
        secrets: StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32)), stateFolder: nil)
}

@Test func unchangedParquetObjectsAreAlsoRuledOutByTheirOwnMetadata() async throws {
    let store = try parquetLake(6, extra: [2: ["target-7"]])
    let meta = try SQLiteStateStore(inMemory: nil)
    let lethe = try open(store, meta)
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("target-7")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let v = try #require(run.verifications.first)
    #expect(v.clean && v.proof == "index", "\(v)")
    #expect(v.objectsUnchanged == 5 && v.objectsReread == 1, "\(v)")
    let e = try #require(v.evidence, "no evidence asked: \(v)")
    #expect(e.asked == 5 && e.ruledOut == 5 && !e.by.isEmpty, "\(e)")
}

@Test func anIndexThatLiesIsCaughtByTheFilesOwnDictionary() async throws {
    // The subject is in objects 1 and 4; the index is then made to forget object 4's rows of it.
    let store = try parquetLake(6, extra: [1: ["target-9"], 4: ["target-9"]])
    let meta = try SQLiteStateStore(inMemory: nil)
    let lethe = try open(store, meta)
    _ = try await lethe.index()
    let liar = try #require(try await meta.objects(dataset: "facts").first { $0.key == "facts/f004.parquet" })
    _ = try await meta.putIndexedObjects([(liar, [Int64: [Int64]]())])  // same version, no postings at all
    let r = try await lethe.forget([SubjectID("target-9")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let v = try #require(run.verifications.first)
    // Without the evidence, object 4 would be "unchanged, postings clean": a false `verified`.
    #expect(!v.clean, "\(v)")
    #expect(v.found.contains { $0.object == "facts/f004.parquet" }, "\(v.found)")
    #expect(try await lethe.request(r.id).status != .verified)
}
