import Foundation
import LetheTestSupport
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats

// Issue 12 (§2.2): a Parquet object's own evidence about a subject (bloom filters, full
// dictionaries, statistics) agrees with a keyed scan: never `absent` for a subject the scan finds.

private let writeScript = #"""
    import sys, pyarrow as pa, pyarrow.parquet as pq
    n = 4000
    kind = sys.argv[2]
    if kind == "int":
        ids = pa.array([(i * 7) % 400 if i % 11 else None for i in range(n)], pa.int64())
    else:
        ids = pa.array(["u%d" % ((i * 7) % 400) if i % 11 else None for i in range(n)], pa.string())
    t = pa.table({"user_id": ids, "value": pa.array(range(n), pa.int64())})
    opts = {"bloom_filter_options": {"user_id": {"ndv": 400, "fpp": 0.01}}} if kind == "bloom" else {}
    pq.write_table(t, sys.argv[1], row_group_size=1000, **opts)
    """#

private func stored(_ kind: String) async throws -> (InMemoryObjectStore, ObjectInfo) {
    let path = NSTemporaryDirectory() + "lethe-evidence-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(["-c", writeScript, path, kind], what: "Parquet evidence test (\(kind))")
    let store = InMemoryObjectStore()
    try await store.put("d/p.parquet", [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    return (store, try #require(try await store.head("d/p.parquet")))
}

@Test(arguments: ["bloom", "dictionary", "int"])
func parquetEvidenceNeverRulesOutASubjectTheScanFinds(_ kind: String) async throws {
    let (store, info) = try await stored(kind)
    let format = ParquetFormat()
    var found = Set<SubjectKey>()
    _ = try await format.scan(info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher)) { _, k in found.insert(k) }
    // Every id of the file, ids between them in sort order, and some outside.
    let ids = (0..<600).map { kind == "int" ? "\($0)" : "u\($0)" } + (kind == "int" ? ["-1", "007", "x"] : ["u1a", "a", "zz"])
    let evidence = try await format.evidence(info, in: store, options: options("user_id"), normalized: false, rawIDs: ids.map { Array($0.utf8) })
    var absent = 0
    for (id, e) in zip(ids, evidence) {
        if found.contains(key(id)) {
            #expect(e == .present || e == .unknown, "\(id) is in the file, evidence says \(e)")
        } else if case .absent = e {
            absent += 1
        }
    }
    let missing = ids.filter { !found.contains(key($0)) }.count
    #expect(found.count == 400)
    // Ids that cannot be a plain integer's text ("007", "x") are unknown, not absent.
    let floor = kind == "int" ? missing - 2 : Int(Double(missing) * 0.95)
    #expect(absent >= floor, "\(absent) of \(missing) absent ids ruled out")
    if kind == "dictionary" { #expect(evidence[0...399].allSatisfy { $0 == .present }) }
}

@Test func parquetEvidenceIsUnknownWhereStoredBytesAreNotTheKeyedBytes() async throws {
    let (store, info) = try await stored("bloom")
    let format = ParquetFormat()
    let ids = [Array("u1".utf8), Array("nobody".utf8)]
    // NFC: other byte forms of an id match it. Composite subjects: the id is not one column's value.
    #expect(try await format.evidence(info, in: store, options: options("user_id"), normalized: true, rawIDs: ids) == [.unknown, .unknown])
    #expect(try await format.evidence(info, in: store, options: options("user_id", "value"), normalized: false, rawIDs: ids) == [.unknown, .unknown])
    #expect(try await format.evidence(info, in: store, options: options("absent_column"), normalized: false, rawIDs: ids) == [.unknown, .unknown])
    let e = try await format.evidence(info, in: store, options: options("user_id"), normalized: false, rawIDs: ids)
    #expect(e[0] == .present)  // pyarrow dictionary-encodes the column too
    guard case .absent(let by) = e[1] else {
        Issue.record("`nobody` not ruled out: \(e[1])")
        return
    }
    #expect(!by.isEmpty)
}

@Test func parquetEvidenceReadsAChangedObjectAsAConflictNotAnAnswer() async throws {
    let (store, info) = try await stored("dictionary")
    try await store.put("d/p.parquet", try await store.read("d/p.parquet") + [])  // same bytes, new version
    await #expect(throws: (any Error).self) {
        _ = try await ParquetFormat().evidence(info, in: store, options: options("user_id"), normalized: false, rawIDs: [Array("u1".utf8)])
    }
}
