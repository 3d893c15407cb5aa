import Foundation
import LetheTestSupport
import Testing
import DeltaLake
import LetheCore
import LetheStorage
import LetheTesting
import Parquet
import Synchronization

// Issue 12, Delta one subject: an erasure reads each file's footer and the subject chunks it keys,
// then all but the row groups that keep every row, and the store copies those (copyRange) into the
// replacement. The oracles are delta-rs and pyarrow reading the result.

/// `write DIR`: two delta-rs appends of 40,000 rows in 10,000-row row groups (change data feed on);
/// user_id `target` at rows 15000 and 16000 of the first file and 32000 of the second.
/// `check DIR V FILES…`: the table's ids (delta-rs), its change feed's deleted users from version V,
/// and per file pyarrow's numRecords, nulls and min/max.
private let partialScript = #"""
    import sys, json, datetime, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake, WriterProperties
    if sys.argv[1] == "write":
        for f in range(2):
            n0 = f * 40000
            users = ["u-%d" % (i % 97) for i in range(40000)]
            for r in ([15000, 16000] if f == 0 else [32000]): users[r] = "target"
            data = pa.table({
                "user_id": users,
                "id": pa.array(range(n0, n0 + 40000), pa.int64()),
                "amount": pa.array([(i * 7 % 1000) / 4.0 for i in range(40000)], pa.float64()),
                "note": [None if i % 11 == 0 else "n%d" % (i % 13) for i in range(40000)],
                "day": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=(i + f) % 300) for i in range(40000)], pa.date32()),
            })
            write_deltalake(sys.argv[2], data, mode="append", writer_properties=WriterProperties(max_row_group_size=10000),
                            configuration={"delta.enableChangeDataFeed": "true"})
    else:
        dt = DeltaTable(sys.argv[2])
        ids = sorted(dt.to_pyarrow_table().column("id").to_pylist())
        feed = dt.load_cdf(starting_version=int(sys.argv[3])).read_all()
        deleted = sorted(u for u, t in zip(feed.column("user_id").to_pylist(), feed.column("_change_type").to_pylist()) if t == "delete")
        files = {}
        for p in sys.argv[4:]:
            t = pq.read_table(sys.argv[2] + "/" + p)
            mins, maxs, nulls = {}, {}, {}
            for name in t.column_names:
                c = t.column(name)
                nulls[name] = c.null_count
                mm = pc.min_max(c).as_py()
                lo, hi = mm["min"], mm["max"]
                if isinstance(lo, datetime.date): lo, hi = lo.isoformat(), hi.isoformat()
                mins[name], maxs[name] = lo, hi
            files[p] = {"numRecords": t.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
        print(json.dumps({"ids": ids, "deleted": deleted, "files": files}))
    """#

private func partialTable() throws -> String {
    let dir = NSTemporaryDirectory() + "lethe-partial-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try Peers.python(["-c", partialScript, "write", dir + "/t"], what: "delta-rs table with small row groups")
    return dir
}

/// The rows of `file` whose user_id is `target` (reads only that column).
private func targetRows(_ file: ParquetFile) throws -> [Int64] {
    var rows: [Int64] = []
    for g in 0..<file.rowGroups.count {
        try file.scanColumn(path: ["user_id"], rowGroup: g) { row, v in if let v, Array(v) == Array("target".utf8) { rows.append(row) } }
    }
    return rows
}

/// A JSON value as pyarrow's stats print it, for comparison with Lethe's (numbers as Double).
private func comparable(_ v: JSONValue?) -> String {
    guard let v else { return "nil" }
    if case .double(let d) = v { return "\(d)" }
    if let i = v.int { return "\(Double(i))" }
    return v.encodedText
}

@Test func aOneSubjectErasureOfADeltaRsTableCopiesTheUntouchedRowGroupsUnread() async throws {
    let dir = try partialTable()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let local = LocalObjectStore(root: dir)
    let store = CountingObjectStore(local)
    let table = DeltaTable(store: store, root: "t")
    let snap = try await table.snapshot()
    #expect(snap.files.count == 2)
    var before: [String: [UInt8]] = [:]
    for p in snap.files.keys { before[p] = try await local.read("t/" + p, range: nil, ifVersion: nil) }
    store.reset()
    let r = try await table.erase(
        files: Array(snap.files.keys),
        reading: { _, footer in
            // The user_id chunks only.
            guard let c = footer.schema.column(["user_id"])?.index else { return nil }
            return (0..<footer.rowGroups.count).map { footer.readRange(column: c, rowGroup: $0) }
        },
        selecting: { _, file in try targetRows(file) }, operationParameters: [:], now: 1)
    #expect(r.removed.count == 2 && r.added.count == 2 && r.droppedRows == 3)
    let counts = store.counts
    // Each file: footer, user_id chunks, the touched row group and the tail; the rest copied by the store.
    for p in snap.files.keys {
        let read = counts.readByKey["t/" + p] ?? 0
        #expect(read > 0 && read < Int64(before[p]!.count), "\(p): read \(read) of \(before[p]!.count) bytes")
    }
    var untouched: Int64 = 0
    // The untouched row groups are byte for byte those of the file read.
    for rw in r.rewrites {
        let old = try ParquetFile(bytes: before[rw.removed]!)
        let newBytes = try await local.read("t/" + rw.added!, range: nil, ifVersion: nil)
        let new = try ParquetFile(bytes: newBytes)
        #expect(new.rowGroups.count == old.rowGroups.count)
        var copied = 0
        for (g, o) in rw.rowGroups.enumerated() {
            guard case .copied = o else { continue }
            copied += 1
            let a = try #require(try old.rowGroupByteRange(g)), b = try #require(try new.rowGroupByteRange(g))
            untouched += Int64(a.count)
            #expect(Array(before[rw.removed]![Int(a.lowerBound)..<Int(a.upperBound)]) == Array(newBytes[Int(b.lowerBound)..<Int(b.upperBound)]))
        }
        #expect(copied == 3)
        #expect(try targetRows(new).isEmpty && new.numRows == old.numRows - Int64(rw.dropped.count))
        #expect(rw.physicalRows == 40000 && rw.groupRows == [10000, 10000, 10000, 10000])
    }
    // The store copied the untouched row groups (and their page indexes): a kernel copy on a local store.
    #expect(counts.copies >= 2 && counts.bytesCopied >= untouched, "copied \(counts.bytesCopied), untouched \(untouched), read \(counts.readByKey)")
    // delta-rs reads the table without the subject's rows; its change feed has them; pyarrow's stats are the log's.
    let out = try Peers.python(["-c", partialScript, "check", dir + "/t", String(r.version)] + r.added.map(\.path), what: "delta-rs/pyarrow check")
    let check = try JSONValue.parse(Array(out.utf8))
    let expected = (0..<Int64(80000)).filter { ![15000, 16000, 72000].contains($0) }
    #expect(check["ids"]?.array?.compactMap(\.int) == expected)
    #expect(check["deleted"]?.array?.compactMap(\.string) == ["target", "target", "target"])
    for add in r.added {
        let py = try #require(check["files"]?[add.path])
        let stats = try JSONValue.parse(Array(try #require(add.stats).utf8))
        #expect(stats["numRecords"]?.int == py["numRecords"]?.int)
        for column in ["user_id", "id", "amount", "note", "day"] {
            #expect(stats["nullCount"]?[column]?.int == py["nullCount"]?[column]?.int, "\(column) nulls")
            #expect(comparable(stats["minValues"]?[column]) == comparable(py["minValues"]?[column]), "\(column) min")
            #expect(comparable(stats["maxValues"]?[column]) == comparable(py["maxValues"]?[column]), "\(column) max")
        }
        #expect(add.size == Int64(try await local.read("t/" + add.path, range: nil, ifVersion: nil).count))
    }
}

@Test func aSelectionThatReadsOutsideTheRangesItNamedIsDoneOnTheWholeFile() async throws {
    let dir = try partialTable()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let local = LocalObjectStore(root: dir)
    let store = CountingObjectStore(local)
    let table = DeltaTable(store: store, root: "t")
    let snap = try await table.snapshot()
    let sizes = snap.files.mapValues(\.size)
    let calls = Mutex(0)
    let r = try await table.erase(
        files: Array(snap.files.keys),
        reading: { _, _ in [] },  // names nothing: the selection's reads fall outside
        selecting: { _, file in
            calls.withLock { $0 += 1 }
            return try targetRows(file)
        }, operationParameters: [:], now: 1)
    #expect(r.droppedRows == 3 && r.added.count == 2)
    #expect(calls.withLock { $0 } == 4)  // each file: once on the footer, once whole
    for (p, size) in sizes { #expect((store.counts.readByKey["t/" + p] ?? 0) >= size) }
    let out = try Peers.python(["-c", partialScript, "check", dir + "/t", String(r.version)], what: "delta-rs check")
    #expect(try JSONValue.parse(Array(out.utf8))["ids"]?.array?.count == 79997)
}
