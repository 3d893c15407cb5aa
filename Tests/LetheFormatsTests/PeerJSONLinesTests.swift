import Foundation
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting
import LetheTestSupport

/// JSON Lines written by other tools — DuckDB's `COPY … (FORMAT JSON)` and Python's `json.dumps` with its
/// default `\uXXXX` escaping — scanned through the window scan (`JSONFieldScanner.scanLines`) at several
/// chunk sizes: every record's subject is the one Python's `json.loads` reads from the same line (escaped
/// quotes, backslashes, line feeds and non-ASCII text in strings, numbers, nulls, nested decoys, lists).
@Suite struct PeerJSONLinesTests {
    static let script = #"""
        import json, random, sys, duckdb
        out = sys.argv[1]
        rnd = random.Random(23)
        def name(i):
            parts = ["u-%d" % i, "caf\u00e9", "\u4e2d\u6587", "q\"uote", "back\\slash", "line\nfeed", "tab\t", "\U0001F600", " "]
            return "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 4)))
        rows = []
        for i in range(4000):
            uid = None if i % 97 == 0 else (i * 7 if i % 11 == 0 else name(i))
            rows.append({"n": i, "user": {"id": uid, "email": name(i)}, "ref": {"user": {"id": name(i + 1)}},
                         "tags": [name(i), i, None], "pad": "x" * rnd.randint(0, 300)})
        with open(out + "/python.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        con = duckdb.connect()
        con.execute("CREATE TABLE t AS SELECT * FROM read_json_auto(?)", [out + "/python.jsonl"])
        con.execute("COPY (SELECT * FROM t ORDER BY n) TO '%s/duckdb.jsonl' (FORMAT JSON)" % out)
        expected = {}
        for f in ["python", "duckdb"]:
            ids = []
            for line in open(out + "/" + f + ".jsonl", encoding="utf-8"):
                if not line.strip():
                    continue
                u = json.loads(line)["user"]["id"]
                ids.append(None if u is None or u == "" else str(u))
            expected[f] = ids
        print(json.dumps(expected))
        """#

    @Test(arguments: [4096, 64 << 10, 1 << 20])
    func linesWrittenByOtherToolsHaveTheSubjectsJSONLoadsReads(chunkSize: Int) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-peer-jsonl-\(getpid())-\(chunkSize)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = try Peers.python(["-c", Self.script, dir.path], what: "JSON Lines peers (DuckDB, json.dumps)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [Any]])
        for file in ["python", "duckdb"] {
            let ids = try #require(expected[file])
            #expect(ids.count == 4000, "\(file)")
            let store = FaultInjectingStore()
            store.set("\(file).jsonl", [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(file).jsonl"))))
            let r = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, "\(file).jsonl", options("user.id"))
            var want: [(Int64, SubjectKey)] = []
            for (row, id) in ids.enumerated() { if let s = id as? String { want.append((Int64(row), key(s))) } }
            #expect(r.summary.records == 4000, "\(file)")
            #expect(r.ordinals == want.map(\.0), "\(file): rows differ")
            #expect(r.keys == want.map(\.1), "\(file): keys differ")
            #expect(want.count > 3_900, "\(file)")
        }
    }
}
