import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LetheFormats
import LetheStorage
import LetheTestSupport
import Parquet
import Testing

// Issue 15: protect and reveal a Parquet file's PII string/binary columns through the Parquet library.

private let yaml = """
    lake: ./lake
    datasets:
      - name: events
        path: events
        format: parquet
        subject: user_id
        pii: [email, ip, user_id]
    """

/// Writes a Parquet file with `tool`'s defaults: `user_id` (string), `email` (string, some null),
/// `ip` (binary), `n` (int64), `city` (string); rows of u-1 … u-3, three row groups with pyarrow.
private func write(_ tool: String, to path: String) throws {
    let script = """
        import sys, pyarrow as pa, pyarrow.parquet as pq, duckdb
        rows = {
            "user_id": ["u-1", "u-2", "u-1", "u-3", "u-2", "u-1", "u-3"],
            "email": ["one@x.org", "two@x.org", None, "three@x.org", "two-again@x.org", "one-again@x.org", None],
            "ip": [b"10.0.0.1", b"10.0.0.2", b"10.0.0.3", None, b"10.0.0.5", b"10.0.0.6", b"10.0.0.7"],
            "n": [1, 2, 3, 4, 5, 6, 7],
            "city": ["Paris", "Oslo", "Paris", "Rome", "Oslo", "Paris", "Rome"],
        }
        t = pa.table(rows)
        if sys.argv[1] == "pyarrow":
            pq.write_table(t, sys.argv[2], row_group_size=3)
        else:
            duckdb.sql("SELECT * FROM t").write_parquet(sys.argv[2])
        """
    _ = try Peers.python(["-c", script, tool, path], what: "writing Parquet with \(tool)")
}

@Suite("Protect: Parquet")
struct ParquetProtectTests {
    @Test(arguments: ["pyarrow", "duckdb"])
    func protectEncryptsThePIIColumnsAndRevealGivesThemBack(_ tool: String) async throws {
        let f = try Fixture(yaml)
        let dir = NSTemporaryDirectory() + "lethe-pq-protect-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vault = Vault(kek: try FileKeyEncryptionKey.load(path: dir + "/vault.key", create: true), state: f.lethe.meta, cacheSize: 100)
        var lethe = f.lethe
        lethe.vault = vault
        let d = lethe.config.dataset(named: "events")!
        let crypter = ParquetCrypter(
            dataset: d.name, subject: d.subject!, pii: d.pii, keyer: SubjectKeyer(hasher: lethe.secrets.hasher), keys: vault)

        try write(tool, to: dir + "/in.parquet")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/in.parquet")))
        let p = try await crypter.process(original, name: "in.parquet", mode: .protect)
        #expect(p.values == 11 && p.rows == 7)
        // No PII byte left anywhere in the file (pages, statistics, page indexes, bloom filters).
        for secret in ["one@x.org", "two-again@x.org", "three@x.org", "10.0.0.1", "10.0.0.7"] {
            #expect(Residue.search(p.bytes, for: [Array(secret.utf8)]).isEmpty, "\(secret)")
        }
        // Every other column chunk byte for byte.
        let a = try ParquetFile(bytes: original), b = try ParquetFile(bytes: p.bytes)
        #expect(a.numRows == b.numRows && a.rowGroups.count == b.rowGroups.count)
        for name in ["user_id", "n", "city"] {
            let c = try a.column([name]).index
            for g in 0..<a.rowGroups.count { #expect(try a.columnChunkBytes(column: c, rowGroup: g) == b.columnChunkBytes(column: c, rowGroup: g)) }
        }
        // Protecting again changes nothing; reveal gives the values back.
        let again = try await crypter.process(p.bytes, name: "p.parquet", mode: .protect)
        #expect(again.values == 0 && again.passed == 11 && again.bytes == p.bytes)
        let r = try await crypter.process(p.bytes, name: "p.parquet", mode: .reveal(marker: nil, nullOnError: false))
        #expect(r.values == 11)
        try Data(p.bytes).write(to: URL(fileURLWithPath: dir + "/p.parquet"))
        try Data(r.bytes).write(to: URL(fileURLWithPath: dir + "/r.parquet"))

        // A forget destroys u-1's key: a copy of the protected file taken before reveals null for u-1 only.
        try await f.store.put("events/a.parquet", p.bytes)
        _ = try await lethe.index()
        let req = try await lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        _ = try await lethe.approve([req.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.keysDestroyed == 1 && run.verifications.first?.clean == true)
        let other = Vault(kek: vault.kek, state: lethe.meta)  // another process: nothing cached
        let c2 = ParquetCrypter(dataset: d.name, subject: d.subject!, pii: d.pii, keyer: SubjectKeyer(hasher: lethe.secrets.hasher), keys: other)
        let backup = try await c2.process(p.bytes, name: "backup.parquet", mode: .reveal(marker: nil, nullOnError: false))
        #expect(backup.forgotten == 5 && backup.values == 6)
        try Data(backup.bytes).write(to: URL(fileURLWithPath: dir + "/b.parquet"))

        // pyarrow reads all three back: the schema and types unchanged, the other columns' values unchanged.
        let check = """
            import sys, pyarrow.parquet as pq
            d = sys.argv[1]
            a, p, r, b = (pq.read_table(d + "/" + n) for n in ("in.parquet", "p.parquet", "r.parquet", "b.parquet"))
            assert p.schema == a.schema and r.schema == a.schema and b.schema == a.schema, (a.schema, p.schema)
            assert r.to_pylist() == a.to_pylist(), (r.to_pylist(), a.to_pylist())
            A, P = a.to_pylist(), p.to_pylist()
            for x, y in zip(A, P):
                for k in ("user_id", "n", "city"): assert x[k] == y[k], (x, y)
                assert (x["email"] is None) == (y["email"] is None) and (y["email"] is None or y["email"].startswith("lethe:v1:")), y
                assert (x["ip"] is None) == (y["ip"] is None) and (y["ip"] is None or y["ip"].startswith(b"lethe:v1:")), y
            for x, y in zip(A, b.to_pylist()):
                if x["user_id"] == "u-1": assert y["email"] is None and y["ip"] is None, y
                else: assert y == x, (x, y)
            m = pq.ParquetFile(d + "/p.parquet").metadata
            e = m.schema.to_arrow_schema().get_field_index("email")
            for g in range(m.num_row_groups):
                s = m.row_group(g).column(e).statistics
                if s is not None and s.has_min_max: assert s.min.startswith("lethe:v1:") and s.max.startswith("lethe:v1:"), (s.min, s.max)
            print(len(A))
            """
        let n = try Peers.python(["-c", check, dir], what: "reading back with pyarrow")
        #expect(n.trimmingCharacters(in: .whitespacesAndNewlines) == "7")
    }

    @Test func aPIIColumnThatIsNotStringOrBinaryIsRefused() async throws {
        let f = try Fixture(yaml.replacingOccurrences(of: "pii: [email, ip, user_id]", with: "pii: [email, n]"))
        let dir = NSTemporaryDirectory() + "lethe-pq-refuse-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vault = Vault(kek: try FileKeyEncryptionKey.load(path: dir + "/vault.key", create: true), state: f.lethe.meta, cacheSize: 10)
        let d = f.lethe.config.dataset(named: "events")!
        let crypter = ParquetCrypter(dataset: d.name, subject: d.subject!, pii: d.pii, keyer: SubjectKeyer(hasher: f.lethe.secrets.hasher), keys: vault)
        try write("pyarrow", to: dir + "/in.parquet")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/in.parquet")))
        await #expect(throws: LetheError.self) { _ = try await crypter.process(original, name: "in.parquet", mode: .protect) }
    }
}
