import Foundation
import LetheCore
import LetheStorage
import LetheTestSupport
import LetheTesting
import Parquet
import Synchronization
import Testing
@testable import LetheFormats

// Issue 16, session 24: the row groups of a full keying are keyed in a pipeline (`GroupKeys.inOrder`):
// several at once, finishing in any order, each delivered as soon as it and those before it are done.
// These tests fail if that delivers a row group twice, skips one, delivers out of order, claims work
// beyond its window, or returns with a helper still working.

/// Work that takes an uneven time per index (so results finish out of order) and returns a value
/// derived from the index.
private func unevenWork(_ i: Int) -> Int {
    let spin = (i * 7919) % 13
    if spin > 9 { usleep(UInt32(200 * (spin - 9))) }
    return i &* 31 &+ 5
}

@Test(arguments: [2, 3, 8])
func pipelineDeliversEachResultOnceInOrderWithinItsWindow(_ tasks: Int) {
    for count in [0, 1, 2, 7, 64, 301] {
        for window in [1, 2, 5, 16] {
            let delivered = Atomic<Int>(0)
            let beyond = Atomic<Int>(0)  // claims at or beyond delivered + window
            let calls = Atomic<Int>(0)
            let byHelpers = Atomic<Int>(0)
            let caller = pthread_self()
            var got: [(Int, Int)] = []
            GroupKeys.inOrder(count, tasks: tasks, window: window, ownThreads: true) { i in
                calls.add(1, ordering: .relaxed)
                if pthread_equal(pthread_self(), caller) == 0 { byHelpers.add(1, ordering: .relaxed) }
                if i >= delivered.load(ordering: .acquiring) + window { beyond.add(1, ordering: .relaxed) }
                return unevenWork(i)
            } deliver: { i, r in
                got.append((i, r))
                delivered.store(i + 1, ordering: .releasing)
            }
            #expect(got.map(\.0) == Array(0..<count), "tasks \(tasks) window \(window) count \(count): each index once, in order")
            #expect(got.allSatisfy { $0.1 == $0.0 &* 31 &+ 5 }, "each index's own result")
            #expect(calls.load(ordering: .relaxed) == count, "work done once per index")
            #expect(beyond.load(ordering: .relaxed) == 0, "no claim beyond the window")
            if count >= 64 && window >= 5 { #expect(byHelpers.load(ordering: .relaxed) > 0, "helpers did some of the work") }
        }
    }
}

private struct Stop: Error, Equatable { let at: Int }

@Test(arguments: [2, 3, 8])
func pipelineStopsAtAThrowingDeliveryAndWaitsForItsHelpers(_ tasks: Int) {
    for stopAt in [0, 3, 40] {
        let active = Atomic<Int>(0)
        let calls = Atomic<Int>(0)
        var got: [Int] = []
        let window = 4
        #expect(throws: Stop(at: stopAt)) {
            try GroupKeys.inOrder(60, tasks: tasks, window: window, ownThreads: true) { i in
                active.add(1, ordering: .relaxed)
                defer { active.subtract(1, ordering: .relaxed) }
                calls.add(1, ordering: .relaxed)
                usleep(300)
                return i
            } deliver: { i, r in
                got.append(r)
                if i == stopAt { throw Stop(at: i) }
            }
        }
        #expect(got == Array(0...stopAt), "the results before the error, then the failing one")
        #expect(active.load(ordering: .relaxed) == 0, "no helper still working after the call returned")
        #expect(calls.load(ordering: .relaxed) <= stopAt + 1 + window + tasks, "no work claimed after the stop beyond the window")
    }
}

/// A file pyarrow writes as 240 row groups of 1 to ~600 rows (one `write_table` each): near-unique ids,
/// recurring ids, nulls, and groups whose dictionaries differ in size a hundredfold, so that they finish
/// out of order. Returns the file and pyarrow's own read of the column (nil: null).
private func manyGroupsFile() throws -> (path: String, values: [String?]) {
    let path = NSTemporaryDirectory() + "lethe-pipeline-\(UUID().uuidString).parquet"
    let out = try Peers.python(
        [
            "-c",
            """
            import sys, json, random, pyarrow as pa, pyarrow.parquet as pq
            rng = random.Random(24)
            path = sys.argv[1]
            w = None
            for g in range(240):
                n = rng.choice([1, 2, 17, 100, 333, 600]) if g % 9 else 1 + rng.randrange(600)
                kind = g % 4
                def v(i):
                    if rng.random() < 0.07: return None
                    if kind == 0: return 'u-%d-%d-%d' % (g, i, rng.randrange(10**9))   # near-unique
                    if kind == 1: return 'u-%d' % rng.randrange(12)                    # a few recurring
                    return 'u-%d' % rng.randrange(5000)
                t = pa.table({'user_id': pa.array([v(i) for i in range(n)], pa.string()),
                              'n': pa.array(range(n), pa.int64())})
                if w is None: w = pq.ParquetWriter(path, t.schema, compression='snappy')
                w.write_table(t, row_group_size=1000)
            w.close()
            f = pq.ParquetFile(path)
            assert f.metadata.num_row_groups == 240
            print(json.dumps(pq.read_table(path, columns=['user_id']).column('user_id').to_pylist()))
            """,
            path,
        ], what: "pipeline test (many row groups)")
    let list = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [Any]
    return (path, list.map { $0 as? String })
}

@Test func manyUnevenRowGroupsKeyAsPyarrowReadsThemOnAnyNumberOfThreads() async throws {
    let (path, values) = try manyGroupsFile()
    defer { unlink(path) }
    let expectedRows = values.indices.filter { values[$0] != nil }.map(Int64.init)
    let expectedKeys = values.compactMap { $0.map(key) }
    #expect(expectedRows.count > 20_000 && expectedRows.count < values.count)
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let file = try ParquetFile(source: InMemorySource(bytes), name: "many")
    #expect(file.rowGroups.count == 240)
    // Through the store, read whole and sparse (the subject chunks only), as `lethe index` scans.
    let root = NSTemporaryDirectory() + "lethe-pipeline-store-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root + "/t", withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: root + "/t/many.parquet"))
    let store = LocalObjectStore(root: root)
    let info = try await store.head("t/many.parquet")!
    for tasks in [1, 2, 3, 8] {
        var f = ParquetFormat()
        f.keyingTasks = tasks
        f.parallelRowsMinimum = 0
        f.helpersOnOwnThreads = true
        var rows: [Int64] = [], keys: [SubjectKey] = []
        let without = try f.keys(file, "many", options("user_id").resolved(for: "many"), SubjectKeyer(hasher: hasher)) { row, k in
            rows.append(row)
            keys.append(k)
        }
        #expect(rows == expectedRows, "tasks \(tasks): every row with a subject once, in order")
        #expect(keys == expectedKeys, "tasks \(tasks): each row's key from pyarrow's value")
        #expect(without == Int64(values.count - expectedRows.count))
        for limit: Int64 in [1 << 30, 1 << 10] {
            var g = ParquetFormat(wholeObjectLimit: limit, coalesceGap: 0)
            g.keyingTasks = tasks
            g.parallelRowsMinimum = 0
            g.helpersOnOwnThreads = true
            var scanned: [(Int64, SubjectKey)] = []
            let summary = try await g.scan(info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher)) { row, k in
                scanned.append((row, k))
            }
            #expect(scanned.map(\.0) == expectedRows && scanned.map(\.1) == expectedKeys, "scan, tasks \(tasks), whole below \(limit)")
            #expect(summary.records == Int64(values.count) && summary.recordsWithoutSubject == Int64(values.count - expectedRows.count))
        }
    }
    // Chunks that come slowly from the store: row groups are keyed while later chunks are still on their
    // way (a row group keyed before its chunk is there fails the scan: a read outside what was fetched).
    let slow = FaultInjectingStore(base: store)
    slow.slowReads(.milliseconds(2))
    for tasks in [2, 3] {
        var g = ParquetFormat(wholeObjectLimit: 1 << 10, coalesceGap: 0)
        g.keyingTasks = tasks
        g.parallelRowsMinimum = 0
        g.helpersOnOwnThreads = true
        var scanned: [(Int64, SubjectKey)] = []
        _ = try await g.scan(info, in: slow, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher)) { row, k in
            scanned.append((row, k))
        }
        #expect(scanned.map(\.0) == expectedRows && scanned.map(\.1) == expectedKeys, "slow reads, tasks \(tasks)")
    }
    // A damaged chunk (row group 150, mid-chunk): the scan on several threads, its chunks arriving, stops with the
    // one-thread keying's error after the same rows.
    var damaged = bytes
    let chunk = file.readRange(column: 0, rowGroup: 150)
    for k in 0..<16 { damaged[Int(chunk.lowerBound) + Int(chunk.count) / 2 + k] ^= 0x5A }
    try Data(damaged).write(to: URL(fileURLWithPath: root + "/t/damaged.parquet"))
    let damagedInfo = try await store.head("t/damaged.parquet")!
    var outcomes: [(rows: [Int64], error: String)] = []
    for tasks in [1, 2, 3] {
        var g = ParquetFormat(wholeObjectLimit: 1 << 10, coalesceGap: 0)
        g.keyingTasks = tasks
        g.parallelRowsMinimum = 0
        g.helpersOnOwnThreads = true
        var rows: [Int64] = []
        var failure = ""
        do {
            _ = try await g.scan(damagedInfo, in: slow, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher)) { row, _ in rows.append(row) }
        } catch {
            failure = "\(error)"
        }
        outcomes.append((rows, failure))
    }
    let firstOfDamaged = file.rowGroupFirstRow[150]
    #expect(!outcomes[0].error.isEmpty && outcomes[0].error.contains("row group 150"), "\(outcomes[0].error)")
    let endOfDamaged = firstOfDamaged + file.rowGroups[150].numRows
    #expect(outcomes[0].rows.starts(with: expectedRows.filter { $0 < firstOfDamaged }) && outcomes[0].rows.allSatisfy { $0 < endOfDamaged })
    for o in outcomes.dropFirst() { #expect(o.rows == outcomes[0].rows && o.error == outcomes[0].error) }
}
