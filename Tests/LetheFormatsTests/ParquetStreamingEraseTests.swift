import Foundation
import LetheTestSupport
import Synchronization
import Testing
import LetheCore
import LetheStorage
import LetheTesting
@testable import LetheFormats

// Issue 12 part B (§2.8): an erase of a Parquet object larger than `wholeObjectLimit` streams into the
// store's writer, copying untouched row groups with `copyRange`; it writes the in-memory rewrite's bytes.

private let writeScript = #"""
    import sys, pyarrow as pa, pyarrow.parquet as pq
    n = 2000
    t = pa.table({
        "user_id": pa.array(["u%d" % (i // 50) if i % 13 else None for i in range(n)], pa.string()),
        "value": pa.array(range(n), pa.int64()),
        "name": pa.array(["name-%d-%s" % (i, "x" * (i % 17)) for i in range(n)], pa.string()),
    })
    pq.write_table(t, sys.argv[1], row_group_size=250, compression="snappy", write_page_index=True)
    """#

private func pyarrowFile() throws -> [UInt8] {
    let path = NSTemporaryDirectory() + "lethe-stream-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(["-c", writeScript, path], what: "streamed Parquet erase test (write)")
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Erases `subjects` from a copy of `bytes` in `store` with `format`; the bytes written and the outcome.
private func eraseCopy(
    _ bytes: [UInt8], _ subjects: [String], in store: any ObjectStore, format: ParquetFormat,
    hinted: Bool
) async throws -> ([UInt8]?, EraseOutcome) {
    try await store.put("d/p.parquet", bytes)
    let info = try #require(try await store.head("d/p.parquet"))
    let keyer = SubjectKeyer(hasher: hasher)
    var hint: EraseHint?
    if hinted {
        var rows: [SubjectKey: [Int64]] = [:]
        _ = try await format.scan(info, in: store, options: options("user_id"), keyer: keyer) { row, k in rows[k, default: []].append(row) }
        hint = EraseHint(version: info.version, rows: rows)
    }
    let outcome = try await format.erase(
        info, in: store, options: options("user_id"), keyer: keyer,
        drop: Set(subjects.map { key($0) }), hint: hint)
    return (try await store.head("d/p.parquet") == nil ? nil : try await store.read("d/p.parquet"), outcome)
}

@Test(arguments: [false, true])
func aStreamedParquetEraseWritesTheInMemoryBytes(_ hinted: Bool) async throws {
    let original = try pyarrowFile()
    let root = NSTemporaryDirectory() + "lethe-stream-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let local = LocalObjectStore(root: root)
    let streamed = ParquetFormat(wholeObjectLimit: 0), inMemory = ParquetFormat(wholeObjectLimit: .max)
    for subjects in [["u5"], ["u1", "u20", "u39"], ["nobody"]] {
        let (expected, a) = try await eraseCopy(original, subjects, in: InMemoryObjectStore(), format: inMemory, hinted: hinted)
        let before = local.counters.bytesCopiedInKernel.load(ordering: .relaxed)
        let (kernel, b) = try await eraseCopy(original, subjects, in: local, format: streamed, hinted: hinted)
        let (memory, c) = try await eraseCopy(original, subjects, in: FaultInjectingStore(), format: streamed, hinted: hinted)
        #expect(a.droppedOrdinals == b.droppedOrdinals && a.dropped == b.dropped && a.kept == b.kept && a == c.withWritten(a.written))
        #expect(kernel == expected, "\(subjects): the streamed erase on a local store wrote other bytes")
        #expect(memory == expected, "\(subjects): the streamed erase through read+write copies wrote other bytes")
        if subjects != ["nobody"] {
            #expect(!a.droppedOrdinals.isEmpty)
            // Each subject lies in one row group (50 rows of 250): the others were copied by the kernel.
            #expect(local.counters.bytesCopiedInKernel.load(ordering: .relaxed) > before)
        }
    }
}

/// A local store that counts the bytes read through it (its writers are the local store's own).
private struct CountingLocalStore: ObjectStore {
    let inner: LocalObjectStore
    final class Count: @unchecked Sendable {
        let lock = NSLock()
        var bytes: Int64 = 0
        func add(_ n: Int) { lock.lock(); bytes += Int64(n); lock.unlock() }
    }
    let read = Count()
    var location: String { inner.location }
    func list(prefix: String, startAfter: String?) -> ObjectListing { inner.list(prefix: prefix, startAfter: startAfter) }
    func head(_ key: String) async throws -> ObjectInfo? { try await inner.head(key) }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        let b = try await inner.read(key, range: range, ifVersion: ifVersion)
        read.add(b.count)
        return b
    }
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        try await inner.openWrite(key, precondition: precondition)
    }
    func delete(_ keys: [String]) async throws { try await inner.delete(keys) }
    func localPath(of key: String) -> String? { inner.localPath(of: key) }
}

@Test func aStreamedParquetEraseReadsOnlyWhatItRewrites() async throws {
    let original = try pyarrowFile()
    let root = NSTemporaryDirectory() + "lethe-stream-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let store = CountingLocalStore(inner: LocalObjectStore(root: root))
    try await store.inner.put("d/p.parquet", original)
    let info = try #require(try await store.head("d/p.parquet"))
    var rows: [SubjectKey: [Int64]] = [:]
    _ = try await ParquetFormat(wholeObjectLimit: 0).scan(info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher)) {
        row, k in rows[k, default: []].append(row)
    }
    let hinted = try #require(rows[key("u5")])
    #expect(Set(hinted.map { $0 / 250 }).count < 8, "the subject must leave some of the 8 row groups untouched")
    let readBefore = store.read.bytes
    let outcome = try await ParquetFormat(wholeObjectLimit: 0, tailGuess: 8).erase(
        info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher),
        drop: [key("u5")], hint: EraseHint(version: info.version, rows: rows))
    #expect(outcome.droppedOrdinals == hinted)
    let read = store.read.bytes - readBefore
    let copied = store.inner.counters.bytesCopiedInKernel.load(ordering: .relaxed)
    #expect(copied > 0)
    // 7 of the 8 row groups were copied by the kernel, not read: less than the object was read.
    #expect(copied > Int64(original.count) / 2)
    #expect(read < Int64(original.count) - copied / 2, "read \(read), copied \(copied) of \(original.count) bytes")
}

extension EraseOutcome {
    fileprivate func withWritten(_ w: ObjectInfo?) -> EraseOutcome {
        var o = self
        o.written = w
        return o
    }
}

/// A streamed erase that reads outside what it fetched without failing — the page-level rewrite of
/// row group 2 reads its old column index, which lies (with every other page index and bloom filter)
/// inside row group 0's byte range, copied unread (`delta_relaid.py`'s in-group-0 layout of a
/// delta-rs file) — is done the in-memory way: it writes the in-memory erase's bytes, page indexes
/// included, not a file without the index it could not read.
@Test func aStreamedParquetEraseThatReadsOutsideWhatItFetchedWritesTheInMemoryBytes() async throws {
    let dir = NSTemporaryDirectory() + "lethe-relaid-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Peers.python([Peers.script("delta_relaid.py"), "make", dir, "in-group-0"], what: "delta_relaid.py make in-group-0")
    let name = try #require(try FileManager.default.contentsOfDirectory(atPath: dir + "/t").first { $0.hasSuffix(".parquet") })
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/t/" + name)))
    let streamed = ParquetFormat(wholeObjectLimit: 0), inMemory = ParquetFormat(wholeObjectLimit: .max)
    for hinted in [false, true] {
        let (expected, a) = try await eraseCopy(original, ["target-0"], in: InMemoryObjectStore(), format: inMemory, hinted: hinted)
        let (written, b) = try await eraseCopy(original, ["target-0"], in: InMemoryObjectStore(), format: streamed, hinted: hinted)
        #expect(a.droppedOrdinals == [4321] && b.droppedOrdinals == a.droppedOrdinals && b.kept == a.kept)
        let same = written == expected
        #expect(same, "hinted \(hinted): the streamed erase wrote other bytes than the in-memory one")
        // Row group 0 is copied chunk by chunk: the old column index of row group 2 (its bounds hold the
        // subject's value) stays behind.
        #expect(Data(original).range(of: Data("target-0".utf8)) != nil)
        #expect(Data(written ?? []).range(of: Data("target-0".utf8)) == nil, "hinted \(hinted): the subject's value is left")
    }
}
