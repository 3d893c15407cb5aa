import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite
import LetheTesting
import LetheTestSupport

// Issue 12: a Delta data file whose subject column's dictionary holds a forgotten id in an entry no
// row references. The files are pyarrow's (an Arrow dictionary array with an unused value), made a
// table by delta-rs (`convert_to_deltalake`); the result is read back by delta-rs.

/// Writes a.parquet (u-100001 only in an unreferenced dictionary entry) and b.parquet (a row of it)
/// into argv[1] and converts the folder into a Delta table.
private let orphanTable = """
    import sys, pyarrow as pa, pyarrow.parquet as pq, deltalake
    d = pa.DictionaryArray.from_arrays(pa.array([1, 2, 1], type=pa.int32()), pa.array(['u-100001', 'u-200002', 'u-300003']))
    pq.write_table(pa.table({'user_id': d, 'v': pa.array([1, 2, 3], pa.int64())}), sys.argv[1] + '/a.parquet', store_schema=False)
    pq.write_table(pa.table({'user_id': pa.array(['u-100001', 'u-400004']), 'v': pa.array([4, 5], pa.int64())}), sys.argv[1] + '/b.parquet', store_schema=False)
    deltalake.convert_to_deltalake(sys.argv[1])
    """

/// The user ids delta-rs reads from the table, sorted.
private func tableIDs(_ table: String) throws -> String {
    try Peers.python(
        [
            // os._exit: delta-rs's runtime can abort at interpreter exit after the answer is out.
            "-c",
            "import sys, os, deltalake; print(sorted(deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().column('user_id').to_pylist()), flush=True); os._exit(0)",
            table,
        ], what: "delta-rs read"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Files under `dir` that hold `text`: Parquet files in a row or a dictionary entry of `user_id` (as
/// pyarrow reads them, every entry), other files (the log) in their bytes. (Also MaskScrubTests'.)
func filesHoldingUserID(_ dir: String, _ text: String) throws -> [String] {
    let out = try Peers.python(
        [
            "-c",
            """
            import sys, os, json, pyarrow.parquet as pq
            root, text, found = sys.argv[1], sys.argv[2], []
            for d, _, names in os.walk(root):
                for n in names:
                    p = os.path.join(d, n)
                    rel = os.path.relpath(p, root)
                    if n.endswith('.parquet'):
                        f = pq.ParquetFile(p, read_dictionary=['user_id'])
                        for g in range(f.num_row_groups):
                            c = f.read_row_group(g).column('user_id').chunks[0]
                            if text in c.dictionary.to_pylist() or text in c.to_pylist():
                                found.append(rel); break
                    elif text.encode() in open(p, 'rb').read():
                        found.append(rel)
            print(json.dumps(sorted(found)))
            """, dir, text,
        ], what: "files holding")
    return try JSONDecoder().decode([String].self, from: Data(out.utf8))
}

@Test func aDeltaFileHoldingAnIdOnlyInAnUnreferencedEntryIsScrubbed() async throws {
    let l = try DiskLake(
        """
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: t
            path: t
            format: delta
            subject: user_id
        """)
    defer { l.remove() }
    let dir = l.dir + "/lake"
    try FileManager.default.createDirectory(atPath: dir + "/t", withIntermediateDirectories: true)
    try Peers.python(["-c", orphanTable, dir + "/t"], what: "orphan Delta table")
    // The premise (delta-rs's CONVERT commit names it too: b.parquet's statistics).
    #expect(try filesHoldingUserID(dir + "/t", "u-100001").filter { $0.hasSuffix(".parquet") } == ["a.parquet", "b.parquet"])
    let lethe = try l.open()
    _ = try await lethe.index()
    // The index names both files: a.parquet by its unreferenced entry (no row).
    let located = try await lethe.locate(SubjectID("u-100001"))
    #expect(located.map(\.object.key).sorted() == ["t/a.parquet", "t/b.parquet"], "\(located)")
    #expect(located.first { $0.object.key == "t/a.parquet" }?.rows == [RecordOrdinal.unreferencedEntry])
    let r = try await lethe.forget([SubjectID("u-100001")], reason: "t", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    _ = try await lethe.run()
    let after = try await lethe.request(r.id)
    #expect(after.status == .verified, "\(after.failure ?? "")")
    #expect(try tableIDs(dir + "/t") == "['u-200002', 'u-200002', 'u-300003', 'u-400004']")
    // Neither the replacements nor anything left of the files read hold the id.
    let holding = try filesHoldingUserID(dir + "/t", "u-100001")
    #expect(holding.isEmpty, "\(holding)")
    #expect(try await lethe.locate(SubjectID("u-100001")).isEmpty)
    let s = try await lethe.sweep()
    #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(s.requests) \(s.unreadable)")
}
