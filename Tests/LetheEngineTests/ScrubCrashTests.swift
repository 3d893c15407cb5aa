import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheTestSupport

// Issue 12 under kill -9 (session 18): a run that rewrites a file only to neutralise a dictionary entry no
// row references (no row dropped), killed at each point the journal knows — right before a write is
// committed (its temporary written and journaled), right after it is committed (before the journal
// records the step), when verification starts — leaves each file as it was or as the erasure makes it;
// the next run resumes, ends verified, and no other subject's row is lost. The kills are real: the
// package's `lethe` binary runs with the failpoints `LETHE_FAILPOINT_EXIT_BEFORE_COMMIT=N` (LocalObjectStore),
// `LETHE_FAILPOINT_EXIT_AFTER_WRITES=N` and `LETHE_FAILPOINT_EXIT_IN_VERIFY=1` (Executor.swift), which
// end the process with `_exit(86)`: no handler, no cleanup, as a kill.

/// Writes into argv[1]: c.parquet, u-100001 only as a dictionary entry no row references (the erasure
/// rewrites it only to scrub it); b.parquet, a row of u-100001 and one of u-400004.
private let crashFiles = """
    import sys, pyarrow as pa, pyarrow.parquet as pq
    vals = pa.array(['u-100001', 'u-200002', 'u-300003'])
    d = pa.DictionaryArray.from_arrays(pa.array([1, 2, 1], type=pa.int32()), vals)
    pq.write_table(pa.table({'user_id': d, 'v': pa.array([1, 2, 3], pa.int64())}), sys.argv[1] + '/c.parquet', store_schema=False)
    pq.write_table(pa.table({'user_id': pa.array(['u-100001', 'u-400004']), 'v': pa.array([4, 5], pa.int64())}),
                   sys.argv[1] + '/b.parquet', store_schema=False)
    """

/// The rows of a Parquet file (user_id and v, as pyarrow reads them) and whether any row group's
/// `user_id` dictionary holds u-100001.
private func parquetState(_ path: String) throws -> String {
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow.parquet as pq
            t = pq.read_table(sys.argv[1])
            f = pq.ParquetFile(sys.argv[1], read_dictionary=['user_id'])
            held = any('u-100001' in f.read_row_group(g).column('user_id').chunks[0].dictionary.to_pylist() for g in range(f.num_row_groups))
            print(list(zip(t.column('user_id').to_pylist(), t.column('v').to_pylist())), 'holds' if held else 'clean')
            """, path,
        ], what: "read back"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The `lethe` binary of this build: beside the test bundle, else under `.build/debug`.
private func letheBinary() throws -> String {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lethe").path
    for p in [beside, Peers.root.appendingPathComponent(".build/debug/lethe").path] where FileManager.default.isExecutableFile(atPath: p) {
        return p
    }
    throw NoBinary(description: "no `lethe` binary beside \(CommandLine.arguments[0]): build the package (`swift build --build-tests`)")
}

private struct NoBinary: Error, CustomStringConvertible {
    var description: String
}

/// Runs `lethe run` on the lake with `env` added; its exit status.
private func killedRun(_ l: DiskLake, _ env: [String: String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try letheBinary())
    p.arguments = ["run", "--config", l.dir + "/lethe.yaml"]
    p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
    p.currentDirectoryURL = URL(fileURLWithPath: l.dir)
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// Files under `dir` named as temporaries (`.name.lethe-tmp-…`).
private func temporaryFiles(_ dir: String) -> [String] {
    (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter { $0.contains(".lethe-tmp-") }
}

/// The failpoints, each at every count until a run goes through without reaching it.
private let failpoints = ["LETHE_FAILPOINT_EXIT_BEFORE_COMMIT", "LETHE_FAILPOINT_EXIT_AFTER_WRITES", "LETHE_FAILPOINT_EXIT_IN_VERIFY"]

@Test func aScrubOnlyRewriteKilledAtEachJournaledPointIsResumedAndVerified() async throws {
    for failpoint in failpoints {
        var kills = 0
        for n in 1...8 {
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
            defer { l.remove() }
            let dir = l.dir + "/lake/ids"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Peers.python(["-c", crashFiles, dir], what: "orphan dictionary entry")
            let oldC = try Data(contentsOf: URL(fileURLWithPath: dir + "/c.parquet"))
            #expect(try parquetState(dir + "/c.parquet") == "[('u-200002', 1), ('u-300003', 2), ('u-200002', 3)] holds")  // the premise
            let id: String
            do {
                let lethe = try l.open()
                _ = try await lethe.index()
                let r = try await lethe.forget([SubjectID("u-100001")], reason: "ticket 4711", by: "alice")[0]
                _ = try await lethe.approve([r.id], by: "bob")
                id = r.id
            }
            let code = try killedRun(l, [failpoint: "\(n)"])
            let point = "\(failpoint)=\(n)"
            if code == 0 {
                // Past the last such point: the run went through.
                #expect(kills > 0, "\(point): the failpoint never fired")
                #expect(try await l.open().request(id).status == .verified, "\(point)")
                break
            }
            #expect(code == 86, "\(point): exit \(code)")
            kills += 1
            // Each file as it was or as the erasure makes it (rows the same: the scrub drops none).
            let c = try parquetState(dir + "/c.parquet")
            let cAsItWas = try Data(contentsOf: URL(fileURLWithPath: dir + "/c.parquet")) == oldC
            #expect(cAsItWas || c == "[('u-200002', 1), ('u-300003', 2), ('u-200002', 3)] clean", "\(point): \(c)")
            let b = try parquetState(dir + "/b.parquet")
            #expect(["[('u-100001', 4), ('u-400004', 5)] holds", "[('u-400004', 5)] clean"].contains(b), "\(point): \(b)")
            // The next run resumes the job (or verifies what the killed one erased) and ends verified.
            let lethe = try l.open()
            _ = try await lethe.run()
            let done = try await lethe.request(id)
            #expect(done.status == .verified, "\(point): \(done.status) \(done.failure ?? "")")
            #expect(try parquetState(dir + "/c.parquet") == "[('u-200002', 1), ('u-300003', 2), ('u-200002', 3)] clean", "\(point)")
            #expect(try parquetState(dir + "/b.parquet") == "[('u-400004', 5)] clean", "\(point)")
            let journaled = try await lethe.meta.temporaries()
            #expect(temporaryFiles(l.dir + "/lake").isEmpty && journaled.isEmpty, "\(point): \(temporaryFiles(l.dir + "/lake")) \(journaled)")
            #expect(try await lethe.meta.pendingSteps().isEmpty, "\(point)")
            let s = try await lethe.sweep()
            #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(point): \(s.requests)")
            if failpoint == "LETHE_FAILPOINT_EXIT_IN_VERIFY" { break }  // one point
        }
        #expect(kills > 0, "\(failpoint) never fired")
    }
}

// MARK: Delta

/// The rows delta-rs reads from the table (user_id and v, sorted by v).
private func tableRows(_ table: String) throws -> String {
    try Peers.python(
        [
            "-c",
            """
            import sys, os, deltalake
            t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()
            print(sorted(zip(t.column('user_id').to_pylist(), t.column('v').to_pylist()), key=lambda r: r[1]), flush=True); os._exit(0)
            """, table,
        ], what: "delta-rs read"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Parquet files under `dir` whose `user_id` holds u-100001 in a row or a dictionary entry (as pyarrow
/// reads them), and other files (the log) that hold it in their bytes.
private func holdingTheId(_ dir: String) throws -> String {
    try Peers.python(
        [
            "-c",
            """
            import sys, os, pyarrow.parquet as pq
            found = []
            for d, _, names in os.walk(sys.argv[1]):
                for n in names:
                    p = os.path.join(d, n)
                    if n.endswith('.parquet'):
                        f = pq.ParquetFile(p, read_dictionary=['user_id'])
                        if any('u-100001' in (lambda c: c.dictionary.to_pylist() + c.to_pylist())(f.read_row_group(g).column('user_id').chunks[0])
                               for g in range(f.num_row_groups)):
                            found.append(os.path.relpath(p, sys.argv[1]))
                    elif b'u-100001' in open(p, 'rb').read():
                        found.append(os.path.relpath(p, sys.argv[1]))
            print(sorted(found))
            """, dir,
        ], what: "files holding the id"
    ).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The same for a Delta table (delta-rs's `convert_to_deltalake` of the files above): c.parquet is replaced
/// only to scrub its entry. Killed at each point, the table reads as before or as after (delta-rs), the
/// next run ends verified, no file under the table holds the id, and u-400004's and the other rows stay.
@Test func aScrubOnlyDeltaRewriteKilledAtEachJournaledPointIsResumedAndVerified() async throws {
    let before = "[('u-200002', 1), ('u-300003', 2), ('u-200002', 3), ('u-100001', 4), ('u-400004', 5)]"
    let after = "[('u-200002', 1), ('u-300003', 2), ('u-200002', 3), ('u-400004', 5)]"
    for failpoint in failpoints {
        var kills = 0
        for n in 1...12 {
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
            let dir = l.dir + "/lake/t"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Peers.python(["-c", crashFiles + "\nimport deltalake\ndeltalake.convert_to_deltalake(sys.argv[1])\n", dir], what: "orphan Delta table")
            #expect(try tableRows(dir) == before)  // the premise
            let id: String
            do {
                let lethe = try l.open()
                _ = try await lethe.index()
                let r = try await lethe.forget([SubjectID("u-100001")], reason: "ticket 4711", by: "alice")[0]
                _ = try await lethe.approve([r.id], by: "bob")
                id = r.id
            }
            let code = try killedRun(l, [failpoint: "\(n)"])
            let point = "\(failpoint)=\(n)"
            if code == 0 {
                #expect(kills > 0, "\(point): the failpoint never fired")
                #expect(try await l.open().request(id).status == .verified, "\(point)")
                break
            }
            #expect(code == 86, "\(point): exit \(code)")
            kills += 1
            let rows = try tableRows(dir)
            #expect(rows == before || rows == after, "\(point): \(rows)")
            let lethe = try l.open()
            _ = try await lethe.run()
            let done = try await lethe.request(id)
            #expect(done.status == .verified, "\(point): \(done.status) \(done.failure ?? "")")
            #expect(try tableRows(dir) == after, "\(point)")
            #expect(try holdingTheId(dir) == "[]", "\(point)")
            let journaled = try await lethe.meta.temporaries()
            #expect(temporaryFiles(l.dir + "/lake").isEmpty && journaled.isEmpty, "\(point): \(temporaryFiles(l.dir + "/lake")) \(journaled)")
            let s = try await lethe.sweep()
            #expect(s.clean && s.requests.map(\.result) == ["swept"], "\(point): \(s.requests)")
            if failpoint == "LETHE_FAILPOINT_EXIT_IN_VERIFY" { break }
        }
        #expect(kills > 0, "\(failpoint) never fired")
    }
}
