import Foundation
import LetheTestSupport
import Testing
import LetheCore
import LetheStorage
import LetheTesting
@testable import LetheFormats

// Issue 12: an erase says which records of the new version it encoded anew (`rewrittenRows`), and
// `match(…rows:)` reads only the row groups holding given rows, by value or by key.

private let script = #"""
    import sys, pyarrow as pa, pyarrow.parquet as pq
    n = 1000
    users = ["u%d" % (i % 97) for i in range(n)]
    for i in range(200, 300): users[i] = "all-of-group-2"   # row group 2 (rows 200-299) entirely one subject
    users[450] = "solo"                                    # row group 4
    t = pa.table({"user_id": pa.array(users, pa.string()), "v": pa.array(range(n), pa.int64())})
    pq.write_table(t, sys.argv[1], row_group_size=100, compression="snappy")
    """#

private func pyarrowObject(in store: InMemoryObjectStore) async throws -> ObjectInfo {
    let path = NSTemporaryDirectory() + "lethe-rowsmatch-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(["-c", script, path], what: "rows match test (write)")
    store.set("d/p.parquet", [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    return try #require(try await store.head("d/p.parquet"))
}

@Test(arguments: [false, true])
func anEraseNamesTheRowsItReencodedAndMatchReadsOnlyThose(_ streamed: Bool) async throws {
    let store = InMemoryObjectStore()
    let info = try await pyarrowObject(in: store)
    let f = ParquetFormat(wholeObjectLimit: streamed ? 0 : .max, tailGuess: 64, coalesceGap: 0)
    let keyer = SubjectKeyer(hasher: hasher)
    // Group 2 goes entirely (removed), group 4 loses one row (re-encoded); groups 0, 1, 3, 5-9 are copied.
    let outcome = try await f.erase(info, in: store, options: options("user_id"), keyer: keyer, drop: [key("all-of-group-2"), key("solo")])
    #expect(outcome.kept == 899 && outcome.exact)
    // New numbering: groups 0, 1 copied (0-199), group 2 removed, group 3 copied (200-299), group 4 re-encoded (300-398).
    #expect(outcome.rewrittenRows == [300..<399])
    let written = try #require(outcome.written)
    let counter = KeyedRowCounter()
    var g = f
    g.matchedRows = counter
    // By value: reads only row group 4 (99 rows) and finds nothing of the erased subjects; u53 is there.
    for matcher in [SubjectMatcher.values([Array("solo".utf8), Array("u53".utf8)]), .keys([key("solo"), key("u53")])] {
        let m = try await g.match(written, in: store, options: options("user_id"), keyer: keyer, matcher: matcher, rows: outcome.rewrittenRows)
        #expect(m.records == 899 && m.rowsRead == 99 && m.bytesRead < written.size)
        // u53 at old row 441 (group 4), 100 rows of group 2 gone before it.
        #expect(m.matches == [SubjectMatch(row: 341, key: key("u53"))], "\(matcher)")
    }
    #expect(counter.count == 198)
    // Every record, by default (nil rows), agrees with a scan.
    let all = try await f.match(written, in: store, options: options("user_id"), keyer: keyer, matcher: .values([Array("u5".utf8)]), rows: nil)
    var scanned: [Int64] = []
    _ = try await f.scan(written, in: store, options: options("user_id"), keyer: keyer) { row, k in if k == key("u5") { scanned.append(row) } }
    #expect(all.matches.map(\.row) == scanned && all.rowsRead == 899)
}

/// A batch of many values (past `ParquetFormat.linearValues`, found by a hash of each row's value)
/// matches what the keyed predicate matches, some of them absent, some of other lengths.
@Test func manyValuesMatchWhatTheirKeysMatch() async throws {
    let store = InMemoryObjectStore()
    let info = try await pyarrowObject(in: store)
    let f = ParquetFormat()
    let keyer = SubjectKeyer(hasher: hasher)
    let subjects = (0..<40).map { "u\($0 * 3)" } + ["solo", "nobody", "all-of-group-2", "u1000"]
    #expect(subjects.count > ParquetFormat.linearValues)
    let byValue = try await f.match(
        info, in: store, options: options("user_id"), keyer: keyer, matcher: .values(Set(subjects.map { Array($0.utf8) })), rows: nil)
    let byKey = try await f.match(
        info, in: store, options: options("user_id"), keyer: keyer, matcher: .keys(Set(subjects.map(key))), rows: nil)
    let found = Set(byValue.matches.map(\.key))
    #expect(byValue.matches.count > 300 && found.contains(key("solo")) && found.contains(key("all-of-group-2")))
    #expect(byValue.matches == byKey.matches)
}
