import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog
import LetheSQLite

/// R1: `forget`/`locate` of an id typed in a form a typed subject column never holds (`3.5` for a
/// decimal(5,2) column, a space in a UTC timestamp, `1e3` for an integer) warns with the dataset, the
/// column and the canonical form expected. Nothing typed is normalised: without the warning such a
/// request plans nothing there and is certified clean while the rows stay.
@Test func idsTypedInAFormATypedColumnNeverHoldsGetTheCanonicalFormSuggested() async throws {
    let dir = NSTemporaryDirectory() + "lethe-hints-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Peers.python(
        [
            "-c",
            """
            import sys, os, datetime, decimal, pyarrow as pa, pyarrow.parquet as pq, deltalake as dl
            d = sys.argv[1]
            dl.write_deltalake(d + "/amounts", pa.table({"amount": pa.array([decimal.Decimal("3.50"), decimal.Decimal("7.25")], pa.decimal128(5, 2)), "n": [1, 2]}))
            ts = pa.array([datetime.datetime(2021, 1, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)], pa.timestamp("us", tz="UTC"))
            dl.write_deltalake(d + "/events", pa.table({"ts": ts, "n": [1]}), partition_by=["ts"])
            os.makedirs(d + "/ids")
            pq.write_table(pa.table({"n": pa.array([1000, 2], pa.int64())}), d + "/ids/a.parquet")
            sys.stdout.flush()
            os._exit(0)
            """, dir,
        ], what: "typed lake")
    let yaml = """
        lake: .
        datasets:
          - {name: amounts, path: amounts, format: delta, subject: amount}
          - {name: events, path: events, format: delta, subject: ts}
          - {name: ids, path: ids, format: parquet, subject: n}
        """
    let lethe = Lethe(
        config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
        meta: try SQLiteStateStore(inMemory: nil),
        secrets: StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32)),
        stateFolder: nil)
    _ = try await lethe.index()
    func hints(_ id: String) async -> [String] {
        await lethe.canonicalHints(for: SubjectID(id)).map { "\($0.dataset).\($0.column) \($0.suggestion ?? "-")" }.sorted()
    }
    // The canonical forms find the rows; the typed-as-people-might forms get the canonical one suggested.
    #expect(try await lethe.locate(SubjectID("3.50")).count == 1)
    #expect(try await lethe.locate(SubjectID("3.5")).isEmpty)
    #expect(await hints("3.5") == ["amounts.amount 3.50", "ids.n -"])  // no dataset takes 3.5: the integer column says so too
    #expect(await hints("2021-01-03 04:05:06") == ["events.ts 2021-01-03T04:05:06Z"])
    #expect(await hints("2021-01-03T04:05:06") == ["events.ts 2021-01-03T04:05:06Z"])
    #expect(await hints("1e3") == ["amounts.amount 1000.00", "ids.n 1000"])
    #expect(await hints("3.555") == ["amounts.amount -", "ids.n -"])
    // Canonical for one dataset: no word about the columns it cannot be a value of (a closer form is still
    // suggested: 1000 may have meant the amount 1000.00); an id meant for no typed column: silence.
    for quiet in ["3.50", "2021-01-03T04:05:06Z", "u-1"] { #expect(await hints(quiet).isEmpty, "\(quiet)") }
    #expect(await hints("1000") == ["amounts.amount 1000.00"])
    let h = try #require(await lethe.canonicalHints(for: SubjectID("3.5")).first { $0.dataset == "amounts" })
    #expect(h.description.contains("dataset `amounts`, column `amount` (decimal(scale 2))") && h.description.contains("did you mean 3.50?"))
}
