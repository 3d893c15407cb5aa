import Foundation
import LetheTestSupport
import Testing
import LetheCore
import LetheStorage
import LetheTesting
@testable import LetheFormats

/// Runs the repo's venv Python (pyarrow) for the Parquet format tests.
private enum Py {

    static let script = #"""
        import sys, pyarrow as pa, pyarrow.parquet as pq
        cmd = sys.argv[1]
        if cmd == "write":
            d = sys.argv[2]
            t = pa.table({
                "user_id": pa.array(["u1", "u2", "u1", None, "u3", "u2", "u1", "u4", "u3"], pa.string()),
                "value": pa.array(range(9), pa.int64()),
                "name": pa.array(["n%d" % i for i in range(9)], pa.string()),
            })
            pq.write_table(t, d + "/users.parquet", row_group_size=3)
            t = pa.table({
                "uid": pa.array([123, 7, 123, 9, None, 7], pa.int64()),
                "info": pa.array([{"a": i, "b": "s%d" % i} if i != 3 else None for i in range(6)],
                                 pa.struct([("a", pa.int32()), ("b", pa.string())])),
            })
            pq.write_table(t, d + "/ints.parquet", row_group_size=2, compression="zstd")
            t = pa.table({
                "tenant": pa.array(["t1", "t2", "t1", "t1", "t1"], pa.string()),
                "user_id": pa.array(["a", "a", "a", None, "b"], pa.string()),
                "n": pa.array([1.5, 2.5, 3.5, 4.5, 5.5], pa.float64()),
            })
            pq.write_table(t, d + "/composite.parquet", row_group_size=2, compression="snappy")
        elif cmd == "check":
            orig, res = sys.argv[2], sys.argv[3]
            dropped = set(int(x) for x in sys.argv[4].split(",") if x)
            a = pq.read_table(orig)
            b = pq.read_table(res)
            kept = [i for i in range(a.num_rows) if i not in dropped]
            expected = a.take(pa.array(kept, pa.int64()))
            if not b.equals(expected):
                sys.exit("tables differ:\n%s\nvs\n%s" % (b.to_pydict(), expected.to_pydict()))
            if str(pq.read_schema(orig)) != str(pq.read_schema(res)):
                sys.exit("schemas differ:\n%s\nvs\n%s" % (pq.read_schema(res), pq.read_schema(orig)))
            def phys(p):
                s = pq.ParquetFile(p).schema
                return [(s.column(i).path, s.column(i).physical_type, s.column(i).logical_type.to_json()) for i in range(len(s))]
            if phys(orig) != phys(res):
                sys.exit("physical schemas differ: %s vs %s" % (phys(res), phys(orig)))
            print("ok")
        """#

    @discardableResult
    static func run(_ args: [String]) throws -> String {
        try Peers.python(["-c", script] + args, what: "Parquet format tests (python \(args.first ?? ""))")
    }

    /// The three test files, written once per process.
    static let files: Result<[String: [UInt8]], any Error> = Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pqfmt-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try run(["write", dir.path])
        var out: [String: [UInt8]] = [:]
        for name in ["users", "ints", "composite"] {
            out[name] = [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(name).parquet")))
        }
        return out
    }

    static func file(_ name: String) throws -> [UInt8] { try files.get()[name]! }

    /// Checks with pyarrow that `result` reads as `original` without `dropped` rows, with an identical schema.
    static func check(original: [UInt8], result: [UInt8], dropped: [Int64]) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pqfmt-check-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.parquet"), b = dir.appendingPathComponent("b.parquet")
        try Data(original).write(to: a)
        try Data(result).write(to: b)
        let out = try run(["check", a.path, b.path, dropped.map(String.init).joined(separator: ",")])
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
    }
}

@Suite struct ParquetFormatTests {
    let format = ParquetFormat()

    private func store(_ name: String) throws -> (FaultInjectingStore, String) {
        let s = FaultInjectingStore()
        let k = "lake/\(name).parquet"
        s.set(k, try Py.file(name))
        return (s, k)
    }

    @Test func registered() {
        #expect(Formats.named("parquet")?.name == "parquet")
        #expect(Formats.names.contains("parquet"))
    }

    @Test func scanStringColumnAcrossRowGroups() async throws {
        let (s, k) = try store("users")
        let r = try await scan(format, s, k, options("user_id"))
        #expect(r.ordinals == [0, 1, 2, 4, 5, 6, 7, 8])
        #expect(r.keys == ["u1", "u2", "u1", "u3", "u2", "u1", "u4", "u3"].map { key($0) })
        #expect(r.summary.records == 9)
        #expect(r.summary.recordsWithoutSubject == 1)
        #expect(r.summary.bytes == Int64(try Py.file("users").count))
    }

    @Test func scanInt64KeysMatchStrings() async throws {
        let (s, k) = try store("ints")
        let r = try await scan(format, s, k, options("uid"))
        #expect(r.ordinals == [0, 1, 2, 3, 5])
        #expect(r.keys == ["123", "7", "123", "9", "7"].map { key($0) })
        #expect(r.summary.records == 6)
        #expect(r.summary.recordsWithoutSubject == 1)
        // A nested leaf can be the subject too; null struct → no subject.
        let nested = try await scan(format, s, k, options("info.b"))
        #expect(nested.ordinals == [0, 1, 2, 4, 5])
        #expect(nested.keys == ["s0", "s1", "s2", "s4", "s5"].map { key($0) })
    }

    @Test func scanComposite() async throws {
        let (s, k) = try store("composite")
        let r = try await scan(format, s, k, options("tenant", "user_id"))
        #expect(r.ordinals == [0, 1, 2, 4])
        #expect(r.keys == [["t1", "a"], ["t2", "a"], ["t1", "a"], ["t1", "b"]].map { key(parts: $0) })
        #expect(r.summary.records == 5)
        #expect(r.summary.recordsWithoutSubject == 1)
    }

    @Test func eraseOneSubject() async throws {
        let (s, k) = try store("users")
        let original = s.get(k)!
        let out = try await erase(format, s, k, options("user_id"), [key("u1")])
        #expect(out.dropped == [key("u1"): 3])
        #expect(out.kept == 6)
        #expect(!out.removed)
        let written = try #require(out.written)
        let now = s.get(k)!
        #expect(written.size == Int64(now.count))
        try Py.check(original: original, result: now, dropped: [0, 2, 6])
        // A second pass finds nothing and writes nothing.
        let commits = s.commits
        let again = try await erase(format, s, k, options("user_id"), [key("u1")])
        #expect(again.written == nil && again.dropped.isEmpty && again.kept == 6)
        #expect(s.commits == commits)
    }

    @Test func eraseInt64SubjectWithNestedColumn() async throws {
        let (s, k) = try store("ints")
        let original = s.get(k)!
        let out = try await erase(format, s, k, options("uid"), [key("123"), key("9")])
        #expect(out.dropped == [key("123"): 2, key("9"): 1])
        #expect(out.kept == 3)
        #expect(out.written != nil)
        try Py.check(original: original, result: s.get(k)!, dropped: [0, 2, 3])
    }

    @Test func eraseComposite() async throws {
        let (s, k) = try store("composite")
        let original = s.get(k)!
        let out = try await erase(format, s, k, options("tenant", "user_id"), [key(parts: ["t1", "a"])])
        #expect(out.dropped == [key(parts: ["t1", "a"]): 2])
        #expect(out.kept == 3)
        try Py.check(original: original, result: s.get(k)!, dropped: [0, 2])
    }

    @Test func eraseNothingWritesNothing() async throws {
        let (s, k) = try store("users")
        let out = try await erase(format, s, k, options("user_id"), [key("nobody")])
        #expect(out.written == nil && out.dropped.isEmpty && !out.removed)
        #expect(out.kept == 9)
        #expect(s.commits == 0)
        #expect(s.get(k) == (try Py.file("users")))
    }

    @Test func eraseAllRowsRemovesObject() async throws {
        let (s, k) = try store("ints")
        // Every subject erased, but row 4 has a null uid: it stays, the object stays.
        let partial = try await erase(format, s, k, options("uid"), [key("123"), key("7"), key("9")])
        #expect(partial.kept == 1 && !partial.removed && partial.written != nil)
        // A file whose every row has an erased subject is removed.
        let (s2, k2) = try store("composite")
        let all = try await erase(format, s2, k2, options("tenant"), [key("t1"), key("t2")])
        #expect(all.removed)
        #expect(all.written == nil)
        #expect(all.kept == 0)
        #expect(all.droppedTotal == 5)
        #expect(try await s2.head(k2) == nil)
    }

    @Test func missingColumn() async throws {
        let (s, k) = try store("users")
        let e = await letheError { _ = try await scan(format, s, k, options("email")) }
        #expect(e?.code == .corrupt)
        #expect(e?.location == k)
        #expect(e?.message.contains("no column `email`") == true)
        #expect(e?.message.contains("user_id") == true)
    }

    @Test func corruptFile() async throws {
        let s = FaultInjectingStore()
        var bytes = try Py.file("users")
        s.set("bad/truncated.parquet", Array(bytes[0..<(bytes.count / 2)]))
        let e = await letheError { _ = try await scan(format, s, "bad/truncated.parquet", options("user_id")) }
        #expect(e?.code == .corrupt)
        #expect(e?.location == "bad/truncated.parquet")
        // Damage the first data page of row group 0: the footer reads, the page does not.
        for i in 4..<40 { bytes[i] = 0xFF }
        s.set("bad/page.parquet", bytes)
        let e2 = await letheError { _ = try await erase(format, s, "bad/page.parquet", options("user_id"), [key("u1")]) }
        #expect(e2?.code == .corrupt)
        #expect(e2?.location == "bad/page.parquet")
        #expect(s.commits == 0)
    }

    @Test func conflictingVersion() async throws {
        let (s, k) = try store("users")
        let stale = try await s.head(k)!
        s.set(k, try Py.file("users"))  // someone rewrote it: new version
        let before = s.get(k)!
        let e = await letheError {
            _ = try await format.erase(stale, in: s, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher), drop: [key("u1")])
        }
        #expect(e?.code == .conflict)
        #expect(s.get(k) == before)
        #expect(s.commits == 0)

        // Also when the erase would remove the object.
        let (s2, k2) = try store("composite")
        let stale2 = try await s2.head(k2)!
        s2.set(k2, try Py.file("composite"))
        let e2 = await letheError {
            _ = try await format.erase(stale2, in: s2, options: options("tenant"), keyer: SubjectKeyer(hasher: hasher), drop: [key("t1"), key("t2")])
        }
        #expect(e2?.code == .conflict)
        #expect(s2.get(k2) == (try Py.file("composite")))
    }

    @Test func sparseScanReadsOnlyFooterAndSubjectChunks() async throws {
        let cases: [(String, FormatOptions)] = [
            ("users", options("user_id")), ("ints", options("uid")), ("ints", options("info.b")),
            ("composite", options("tenant", "user_id")),
        ]
        for tailGuess: Int64 in [8, 64, 1 << 16] {
            for gap: Int64 in [0, 1 << 20] {
                let sparse = ParquetFormat(wholeObjectLimit: 0, tailGuess: tailGuess, coalesceGap: gap)
                for (name, opts) in cases {
                    let (s, k) = try store(name)
                    let whole = try await scan(format, s, k, opts)
                    let rec = FaultInjectingStore(base: s)  // counts the bytes read
                    var r = ScanResult()
                    r.summary = try await sparse.scan(try await rec.head(k)!, in: rec, options: opts, keyer: SubjectKeyer(hasher: hasher)) { row, key in
                        r.rows.append((row, key))
                    }
                    #expect(r.ordinals == whole.ordinals, "\(name) \(opts.subject)")
                    #expect(r.keys == whole.keys, "\(name) \(opts.subject)")
                    #expect(r.summary == whole.summary, "\(name) \(opts.subject)")
                    if gap == 0 && name == "users" && tailGuess <= 64 {
                        #expect(rec.bytesRead < Int64(try Py.file(name).count), "read \(rec.bytesRead) bytes")
                    }
                }
            }
        }
        // Errors are the same as for a whole read.
        let sparse = ParquetFormat(wholeObjectLimit: 0, tailGuess: 64)
        let (s, k) = try store("users")
        let e = await letheError { _ = try await scan(sparse, s, k, options("email")) }
        #expect(e?.code == .corrupt && e?.location == k && e?.message.contains("no column `email`") == true)
        let bytes = try Py.file("users")
        for cut in [5, 11, bytes.count / 2, bytes.count - 1] {
            s.set("bad.parquet", Array(bytes[0..<cut]))
            let e2 = await letheError { _ = try await scan(sparse, s, "bad.parquet", options("user_id")) }
            #expect(e2?.code == .corrupt && e2?.location == "bad.parquet", "cut at \(cut): \(String(describing: e2))")
        }
    }
}
