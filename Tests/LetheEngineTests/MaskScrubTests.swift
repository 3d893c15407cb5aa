import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheTestSupport

// Issue 12 for `erase: mask | blank` (session 18): a dictionary entry of the subject column that no row
// references (another writer's leftover, pyarrow's Arrow dictionary array with an unused value) is
// scrubbed by a masking or blanking run as by a deleting one, and so is an entry the mask itself leaves
// unreferenced (the masked rows held it). Plain Parquet datasets and Delta tables; read back by pyarrow
// and DuckDB (delta-rs for the table) with every other row and value as it was.

/// Writes argv[2]'s files (comma-separated) into the folder argv[1]:
/// `a`: two row groups, [u-200002, u-300003, u-200002] and [u-100001, u-400004, u-100001], each with
/// the whole dictionary (so u-100001 is an entry no row of group 0 references);
/// `c`: one group [u-200002, u-300003, u-200002] whose dictionary holds u-100001 too (no row of it);
/// `b`: u-100001 in a row, no dictionary trick.
private let maskFiles = """
    import sys, pyarrow as pa, pyarrow.parquet as pq
    names = sys.argv[2].split(',')
    vals = pa.array(['u-100001', 'u-200002', 'u-300003', 'u-400004'])
    def mails(ix): return pa.array([['a@one.example', 'b@two.example', 'c@three.example', 'd@four.example'][i] for i in ix])
    if 'a' in names:
        ix = [1, 2, 1, 0, 3, 0]
        d = pa.DictionaryArray.from_arrays(pa.array(ix, type=pa.int32()), vals)
        t = pa.table({'user_id': d, 'email': mails(ix), 'v': pa.array([1, 2, 3, 4, 5, 6], pa.int64())})
        pq.write_table(t, sys.argv[1] + '/a.parquet', row_group_size=3, store_schema=False)
    if 'c' in names:
        ix = [1, 2, 1]
        d = pa.DictionaryArray.from_arrays(pa.array(ix, type=pa.int32()), vals)
        t = pa.table({'user_id': d, 'email': mails(ix), 'v': pa.array([7, 8, 9], pa.int64())})
        pq.write_table(t, sys.argv[1] + '/c.parquet', store_schema=False)
    if 'b' in names:
        t = pa.table({'user_id': pa.array(['u-100001', 'u-400004']), 'email': pa.array(['a@one.example', 'd@four.example']),
                      'v': pa.array([10, 11], pa.int64())})
        pq.write_table(t, sys.argv[1] + '/b.parquet', store_schema=False)
    """

/// What the peers read of a Parquet file: pyarrow's rows (user_id, email, v), DuckDB's, and the row
/// groups whose `user_id` dictionary (every entry, as pyarrow reads it) holds argv[2].
private let readBack = """
    import sys, json, duckdb, pyarrow.parquet as pq
    path, value = sys.argv[1], sys.argv[2]
    t = pq.read_table(path)
    rows = [[r['user_id'], r['email'], r['v']] for r in t.to_pylist()]
    duck = [list(r) for r in duckdb.connect().execute(f"SELECT user_id, email, v FROM read_parquet('{path}')").fetchall()]
    f = pq.ParquetFile(path, read_dictionary=['user_id'])
    holding = [g for g in range(f.num_row_groups)
               if value in (f.read_row_group(g).column('user_id').chunks[0].dictionary.to_pylist() if f.metadata.num_rows else [])]
    print(json.dumps({'rows': rows, 'duckdb': duck, 'holding': holding}))
    """

private struct PeerRead: Decodable, Equatable {
    var rows: [Row]
    var duckdb: [Row]
    var holding: [Int]
    /// A row as [user_id, email, v], nulls as nil.
    struct Row: Decodable, Equatable, CustomStringConvertible {
        var user: String?, email: String?, v: Int64?
        init(_ user: String?, _ email: String?, _ v: Int64?) { (self.user, self.email, self.v) = (user, email, v) }
        init(from decoder: any Decoder) throws {
            var c = try decoder.unkeyedContainer()
            user = try c.decodeIfPresent(String.self)
            email = try c.decodeIfPresent(String.self)
            v = try c.decodeIfPresent(Int64.self)
        }
        var description: String { "[\(user ?? "null"), \(email ?? "null"), \(v.map(String.init) ?? "null")]" }
    }
}

private func peerRead(_ path: String, holding value: String = "u-100001") throws -> PeerRead {
    try JSONDecoder().decode(PeerRead.self, from: Data(try Peers.python(["-c", readBack, path, value], what: "read back").utf8))
}

/// What a row of the subject becomes: `mask` (user_id redacted, email null) or `blank` (every column null).
private func erasedRow(_ mode: String, _ old: PeerRead.Row) -> PeerRead.Row {
    mode == "mask" ? PeerRead.Row("[redacted]", nil, old.v) : PeerRead.Row(nil, nil, nil)
}

/// A lake of one Parquet dataset `ids` (`lake/ids`, subject `user_id`, pii `email`) erased by `mode`.
private func maskLake(_ mode: String, format: String = "parquet") throws -> DiskLake {
    let l = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: ids
            path: ids
            format: \(format)
            subject: user_id
            pii: [email]
            erase: \(mode)
        \(mode == "mask" ? "    mask: {user_id: redact, email: null}" : "")
        """)
    try FileManager.default.createDirectory(atPath: l.dir + "/lake/ids", withIntermediateDirectories: true)
    return l
}

private func erased(_ lethe: Lethe, _ subject: String) async throws -> ErasureRequest {
    let r = try await lethe.forget([SubjectID(subject)], reason: "ticket 4711", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try await lethe.run()
    return try await lethe.request(r.id)
}

/// The rows each peer reads after the erasure: the subject's changed by `mode`, every other as before.
private func expectErased(_ before: PeerRead, _ after: PeerRead, _ mode: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let expected = before.rows.map { $0.user == "u-100001" ? erasedRow(mode, $0) : $0 }
    #expect(after.rows == expected, sourceLocation: sourceLocation)
    #expect(after.duckdb == expected, sourceLocation: sourceLocation)
    #expect(after.holding.isEmpty, "row groups whose dictionary still holds the id: \(after.holding)", sourceLocation: sourceLocation)
}

/// The index names a.parquet (rows in group 1, an unreferenced entry in group 0) and c.parquet (the entry
/// only); the masking run rewrites both, neither file's dictionaries hold the id afterwards (group 0's
/// entry neutralised, group 1's chunk re-encoded by the mask), the request is verified and the sweep clean.
@Test(arguments: ["mask", "blank"])
func aMaskingRunScrubsTheSubjectsUnreferencedDictionaryEntries(_ mode: String) async throws {
    let l = try maskLake(mode)
    defer { l.remove() }
    let dir = l.dir + "/lake/ids"
    try Peers.python(["-c", maskFiles, dir, "a,c"], what: "orphan dictionary entries")
    let beforeA = try peerRead(dir + "/a.parquet"), beforeC = try peerRead(dir + "/c.parquet")
    #expect(beforeA.holding == [0, 1] && beforeC.holding == [0])  // the premise
    let lethe = try l.open()
    _ = try await lethe.index()
    let located = try await lethe.locate(SubjectID("u-100001"))
    #expect(located.first { $0.object.key == "ids/c.parquet" }?.rows == [RecordOrdinal.unreferencedEntry], "\(located)")
    #expect(located.first { $0.object.key == "ids/a.parquet" }?.rows.contains(RecordOrdinal.unreferencedEntry) == true, "\(located)")
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    expectErased(beforeA, try peerRead(dir + "/a.parquet"), mode)
    expectErased(beforeC, try peerRead(dir + "/c.parquet"), mode)
    #expect(try await lethe.locate(SubjectID("u-100001")).isEmpty)
    let s = try await lethe.sweep()
    #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(s.requests)")
}

/// The entry written behind the index's back after a masking run: the sweep finds it and fails the request,
/// the next (masking) run scrubs it, the sweep after is clean.
@Test(arguments: ["mask", "blank"])
func anUnreferencedEntryTheSweepFindsIsScrubbedByTheNextMaskingRun(_ mode: String) async throws {
    let l = try maskLake(mode)
    defer { l.remove() }
    let dir = l.dir + "/lake/ids"
    try Peers.python(["-c", maskFiles, dir, "b"], what: "a row of the subject")
    let beforeB = try peerRead(dir + "/b.parquet")
    let lethe = try l.open()
    _ = try await lethe.index()
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    expectErased(beforeB, try peerRead(dir + "/b.parquet"), mode)
    try Peers.python(["-c", maskFiles, dir, "c"], what: "orphan dictionary entry")
    let beforeC = try peerRead(dir + "/c.parquet")
    #expect(beforeC.holding == [0])  // the premise
    let s = try await lethe.sweep()
    let q = try #require(s.requests.first { $0.id == r.id })
    #expect(q.result == "residue" && q.found.contains { $0.object == "ids/c.parquet" && $0.rows == 0 }, "\(q.found)")
    #expect(try await lethe.request(r.id).status == .failed)
    _ = try await lethe.run()
    let after = try await lethe.request(r.id)
    #expect(after.status == .verified, "\(after.failure ?? "")")
    expectErased(beforeC, try peerRead(dir + "/c.parquet"), mode)
    let again = try await lethe.sweep()
    #expect(again.clean && again.requests.map(\.result) == ["swept"], "\(again.requests)")
}

// MARK: Delta

/// The rows delta-rs reads from the table (user_id, email, v), sorted by v (nulls last).
private func deltaRows(_ table: String) throws -> [PeerRead.Row] {
    let out = try Peers.python(
        [
            // os._exit: delta-rs's runtime can abort at interpreter exit after the answer is out.
            "-c",
            """
            import sys, os, json, deltalake
            t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().to_pylist()
            rows = sorted(([r['user_id'], r['email'], r['v']] for r in t), key=lambda r: (r[2] is None, r[2] or 0))
            print(json.dumps(rows), flush=True); os._exit(0)
            """, table,
        ], what: "delta-rs read")
    return try JSONDecoder().decode([PeerRead.Row].self, from: Data(out.utf8))
}

/// A Delta table (pyarrow's a.parquet and b.parquet made a table by delta-rs's `convert_to_deltalake`):
/// a.parquet holds u-100001 in group 1's rows and only as an unreferenced entry in group 0, b.parquet in a
/// row. The masking run's UPDATE commit replaces both files; no file left under the table holds the id.
@Test(arguments: ["mask", "blank"])
func aMaskingDeltaRunScrubsTheSubjectsUnreferencedDictionaryEntries(_ mode: String) async throws {
    let l = try maskLake(mode, format: "delta")
    defer { l.remove() }
    let dir = l.dir + "/lake/ids"
    try Peers.python(["-c", maskFiles + "\nimport deltalake\ndeltalake.convert_to_deltalake(sys.argv[1])\n", dir, "a,b"], what: "orphan Delta table")
    #expect(try filesHoldingUserID(dir, "u-100001").filter { $0.hasSuffix(".parquet") } == ["a.parquet", "b.parquet"])  // the premise
    let before = try deltaRows(dir)
    let lethe = try l.open()
    _ = try await lethe.index()
    let located = try await lethe.locate(SubjectID("u-100001"))
    #expect(located.first { $0.object.key == "ids/a.parquet" }?.rows.contains(RecordOrdinal.unreferencedEntry) == true, "\(located)")
    let r = try await erased(lethe, "u-100001")
    #expect(r.status == .verified, "\(r.failure ?? "")")
    let expected = before.map { $0.user == "u-100001" ? erasedRow(mode, $0) : $0 }
    #expect(try deltaRows(dir) == expected.sorted { ($0.v == nil ? 1 : 0, $0.v ?? 0) < ($1.v == nil ? 1 : 0, $1.v ?? 0) })
    let holding = try filesHoldingUserID(dir, "u-100001")
    #expect(holding.isEmpty, "\(holding)")
    #expect(try await lethe.locate(SubjectID("u-100001")).isEmpty)
    let s = try await lethe.sweep()
    #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(s.requests) \(s.unreadable)")
}
