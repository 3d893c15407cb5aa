import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage
import Parquet
import Synchronization

// An erasure's rewrites go in waves, each written while the next is rewritten (issue 12, session 22).
// These tests force waves of two files on a table of six (`make-files 6 cdf`: each rewrite writes a
// replacement and a change data file) and check, from what the store sees, the rules the overlap must
// keep: every wave's keys journaled before any of its files is opened, at most one wave rewritten
// ahead of the one written, nothing durable or published before every file is written, and on a
// failure every writer opened aborted, none written after its abort, and the first error thrown.

/// What an erasure did to the store, in order.
enum StoreEvent: Equatable {
    case journal([String])
    case open(String)
    case write(String)
    case abort(String)
    case durable(Int)
    case commit(String)
    /// A write after the writer's abort (never allowed).
    case writeAfterAbort(String)
}

/// A local store that records opens, writes, aborts, the durability pass and commits of its writers,
/// and fails the write of the `failWriteOfOpen`-th writer opened (1 = the first).
final class RecordingStore: ForwardingLocalStore {
    let base: LocalObjectStore
    let log = Mutex<[StoreEvent]>([])
    let opened = Mutex(0)
    let failWriteOfOpen: Int?

    init(_ base: LocalObjectStore, failWriteOfOpen: Int? = nil) {
        self.base = base
        self.failWriteOfOpen = failWriteOfOpen
    }

    func record(_ e: StoreEvent) { log.withLock { $0.append(e) } }
    var events: [StoreEvent] { log.withLock { $0 } }

    func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        let n = opened.withLock {
            $0 += 1; return $0
        }
        record(.open(key))
        let inner = try await base.openWrite(key, precondition: precondition, durability: durability)
        return RecordingWriter(inner, key: key, store: self, fails: n == failWriteOfOpen)
    }
    func makeDurable(_ writers: [any ObjectWriteStream]) async throws {
        record(.durable(writers.count))
        try await base.makeDurable(writers.map { ($0 as! RecordingWriter).inner })
    }
    func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        for w in writers { record(.commit((w as! RecordingWriter).key)) }
        return try await base.commit(writers.map { ($0 as! RecordingWriter).inner })
    }
}

final class RecordingWriter: ObjectWriteStream {
    let inner: any ObjectWriteStream
    let key: String
    let store: RecordingStore
    let fails: Bool
    var aborted = false

    init(_ inner: any ObjectWriteStream, key: String, store: RecordingStore, fails: Bool) {
        self.inner = inner; self.key = key; self.store = store; self.fails = fails
    }
    func write(_ bytes: [UInt8]) async throws {
        store.record(aborted ? .writeAfterAbort(key) : .write(key))
        if fails { throw LetheError(.io, "injected write failure", at: key) }
        try await inner.write(bytes)
    }
    func write(_ bytes: UnsafeRawBufferPointer) async throws { try await write(Array(bytes)) }
    func commit() async throws -> ObjectInfo {
        store.record(.commit(key))
        return try await inner.commit()
    }
    func abort() async {
        aborted = true
        store.record(.abort(key))
        await inner.abort()
    }
    func copyRange(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws {
        self.store.record(aborted ? .writeAfterAbort(self.key) : .write(self.key))
        try await inner.copyRange(from: key, version: version, range: range, in: store)
    }
}

/// A table of six files (`make-files 6 cdf`), its store recording what an erasure does.
func sixFileTable(failWriteOfOpen: Int? = nil) async throws -> (dir: String, store: RecordingStore, table: DeltaTable, snap: Snapshot) {
    let dir = tempDir()
    _ = try deltaPy(["make-files", dir, "6", "cdf"])
    let store = RecordingStore(LocalObjectStore(root: dir), failWriteOfOpen: failWriteOfOpen)
    let table = DeltaTable(store: store, root: "files")
    let snap = try await table.snapshot()
    #expect(snap.files.count == 6 && snap.metadata.changeDataFeed)
    return (dir, store, table, snap)
}

/// The erasure's rewrites of the table's files (the first row of each, and of `bad` a row it does
/// not have, which its rewrite refuses), in waves of two files; the store's events, and the keys of
/// each `willWrite` call.
func rewriteInWavesOfTwo(
    _ t: (dir: String, store: RecordingStore, table: DeltaTable, snap: Snapshot), bad: String? = nil, waveBytes: Int64 = 0
) async throws -> ErasureBatch {
    let store = t.store, table = t.table
    let tracker = WrittenKeys(willWrite: { keys in
        for k in keys {
            let existing = try await store.head(k)
            #expect(existing == nil, "\(k) existed before it was announced")
        }
        store.record(.journal(keys))
    })
    return try await t.table.rewriteAll(
        t.snap.files.keys.sorted().map { PendingRewrite(path: $0, add: t.snap.files[$0]!) },
        select: { path, add in try await table.rewriteJob(path, add, reading: nil, selecting: { path, _ in path == bad ? [1_000_000] : [0] }) },
        changeDataFeed: true, now: 1, written: tracker, workers: 2, waveBytes: waveBytes
    ) { _ in nil }.batch
}

/// The rules every erasure keeps, successful or not: each key journaled before it is opened, one
/// wave at most journaled ahead of the one written, nothing written after its abort, nothing made
/// durable or published before every file is written.
func checkWaveOrder(_ events: [StoreEvent]) {
    var journaled: [[String]] = []
    var written: Set<String> = []
    var durableAt: Int? = nil
    for (i, e) in events.enumerated() {
        switch e {
        case .journal(let keys):
            // A wave is rewritten (and journaled) while the one before it is written: once the one
            // before that is written whole, never earlier (at most two waves held).
            if journaled.count >= 2 {
                let twoBefore = journaled[journaled.count - 2]
                #expect(twoBefore.allSatisfy(written.contains), "wave \(journaled.count + 1) journaled before wave \(journaled.count - 1) was written")
            }
            journaled.append(keys)
        case .open(let k), .write(let k):
            #expect(journaled.contains { $0.contains(k) }, "\(k) opened or written before it was journaled")
            #expect(durableAt == nil, "\(k) written after the durability pass")
            if case .write = e { written.insert(k) }
        case .writeAfterAbort(let k):
            Issue.record("\(k) written after its abort")
        case .durable:
            durableAt = i
        case .commit(let k):
            #expect(durableAt != nil, "\(k) published before the durability pass")
        case .abort:
            break
        }
    }
}

@Test func wavesOfRewritesWrittenWhileTheNextIsRewrittenGiveTheSameFilesAsOneWave() async throws {
    // The same erasure in one wave (the default for small files), then in three waves of two files
    // (the first one's files stay in the store, named by no version).
    let t = try await sixFileTable(); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let single = try await rewriteInWavesOfTwo(t, waveBytes: 32 << 20)
    #expect(t.store.events.filter { if case .journal = $0 { true } else { false } }.count == 1)
    t.store.log.withLock { $0 = [] }
    let batch = try await rewriteInWavesOfTwo(t)
    let events = t.store.events
    checkWaveOrder(events)
    let journals = events.compactMap { if case .journal(let k) = $0 { k } else { nil } }
    #expect(journals.map(\.count) == [4, 4, 4], "\(journals)")
    #expect(!events.contains { if case .abort = $0 { true } else { false } })
    #expect(events.filter { if case .commit = $0 { true } else { false } }.count == 12)
    #expect(events.last { if case .durable = $0 { true } else { false } } == .durable(12))

    // The same outcomes, in the same order, and the same bytes written.
    #expect(batch.removes.map(\.path) == single.removes.map(\.path))
    #expect(batch.removes.map(\.path) == t.snap.files.keys.sorted())
    #expect(batch.dropped == 6 && batch.dropped == single.dropped && batch.kept == single.kept && batch.purged == single.purged)
    func unnamed(_ r: [DeltaFileRewrite]) -> [DeltaFileRewrite] {
        r.map {
            var r = $0; r.added = nil; return r
        }
    }
    #expect(unnamed(batch.rewrites) == unnamed(single.rewrites) && batch.rewrites.allSatisfy { $0.added != nil })
    #expect(batch.adds.map(\.size) == single.adds.map(\.size) && batch.adds.map(\.stats) == single.adds.map(\.stats))
    for (a, b) in zip(batch.adds, single.adds) {
        #expect(try await t.store.read(t.table.key(forLogPath: a.path)) == (try await t.store.read(t.table.key(forLogPath: b.path))))
    }
    for (a, b) in zip(batch.changes, single.changes) {
        #expect(try await t.store.read(t.table.key(forLogPath: a.path)) == (try await t.store.read(t.table.key(forLogPath: b.path))))
    }

    // Committed, delta-rs reads the table without the first row of each file, and its change feed.
    _ = try await t.table.commitErasure(batch, on: t.snap, operationParameters: [:], now: 1, maxAttempts: 1)
    let ids = try JSONDecoder().decode([String].self, from: Data(try deltaPy(["rows", t.dir + "/files"]).utf8))
    #expect(ids.count == 61 - 6 && !ids.contains { $0.hasSuffix("-0") } && ids.contains("target-0003"))
    #expect(try deltaPy(["cdf", t.dir + "/files", "6"]).components(separatedBy: "\"delete\"").count - 1 == 6)
}

/// The keys under the table's root, temporaries included.
func keysOf(_ t: (dir: String, store: RecordingStore, table: DeltaTable, snap: Snapshot)) async throws -> [String] {
    try await t.store.base.listKeys(prefix: "files").sorted()
}

/// After a failed erasure: every writer opened was aborted (none committed, no durability pass), the
/// table reads back as before (its files, and delta-rs's rows), and no file was left.
func checkNothingLeft(_ t: (dir: String, store: RecordingStore, table: DeltaTable, snap: Snapshot), before: [String]) async throws {
    let events = t.store.events
    checkWaveOrder(events)
    let opened = events.compactMap { if case .open(let k) = $0 { k } else { nil } }
    let aborted = events.compactMap { if case .abort(let k) = $0 { k } else { nil } }
    #expect(!opened.isEmpty && Set(aborted) == Set(opened), "opened \(opened.count), aborted \(aborted.count)")
    #expect(!events.contains { if case .commit = $0 { true } else if case .durable = $0 { true } else { false } })
    let after = try await t.table.snapshot()
    #expect(after.version == t.snap.version && Set(after.files.keys) == Set(t.snap.files.keys))
    #expect(try await keysOf(t) == before)
    let ids = try JSONDecoder().decode([String].self, from: Data(try deltaPy(["rows", t.dir + "/files"]).utf8))
    #expect(ids.count == 61)
}

@Test func aRewriteFailingInTheSecondWaveAbortsTheFirstWavesWritersAndPublishesNothing() async throws {
    let t = try await sixFileTable(); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let before = try await keysOf(t)
    let bad = t.snap.files.keys.sorted()[2]  // the first file of the second wave
    do {
        _ = try await rewriteInWavesOfTwo(t, bad: bad)
        Issue.record("a rewrite failed and the erasure went on")
    } catch let e as LetheError {
        #expect(e.location == t.table.key(forLogPath: bad), "\(e)")
    }
    // The first wave was written (while the second was rewritten), then aborted.
    let opened = t.store.events.compactMap { if case .open(let k) = $0 { k } else { nil } }
    #expect(opened.count == 4, "\(opened)")
    try await checkNothingLeft(t, before: before)
}

@Test func aWriteFailingInTheSecondWaveAbortsEveryWriterOpenedAndPublishesNothing() async throws {
    // Writers 1–4 are the first wave's, 5–8 the second's (a wave's writers are opened together, their
    // temporary files journaled in one go, then written); the 6th is the second file of the second wave's.
    let t = try await sixFileTable(failWriteOfOpen: 6); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let before = try await keysOf(t)
    do {
        _ = try await rewriteInWavesOfTwo(t)
        Issue.record("a write failed and the erasure went on")
    } catch let e as LetheError {
        #expect(e.code == .io && e.message.contains("injected write failure"), "\(e)")
    }
    let opened = t.store.events.compactMap { if case .open(let k) = $0 { k } else { nil } }
    #expect(opened.count == 8, "\(opened)")
    try await checkNothingLeft(t, before: before)
}

@Test func aSelectionFailingInTheSecondWaveAbortsTheFirstWavesWritersAndPublishesNothing() async throws {
    // The erasure selects each file in the task that rewrites it (`PendingRewrite`): a file of
    // the second wave that cannot be read fails the erasure once the first wave is being written.
    let t = try await sixFileTable(); defer { try? FileManager.default.removeItem(atPath: t.dir) }
    let before = try await keysOf(t)
    let paths = t.snap.files.keys.sorted(), bad = paths[2]  // the first file of the second wave
    let table = t.table, snap = t.snap, store = t.store
    let tracker = WrittenKeys(willWrite: { keys in store.record(.journal(keys)) })
    let selected = Mutex(0)
    do {
        _ = try await table.rewriteAll(
            paths.map { PendingRewrite(path: $0, add: snap.files[$0]!) },
            select: { path, add in
                selected.withLock { $0 += 1 }
                if path == bad { throw LetheError(.corrupt, "injected unreadable file", at: table.key(forLogPath: path)) }
                return try await table.rewriteJob(path, add, reading: nil, selecting: { _, _ in [0] })
            }, changeDataFeed: true, now: 1, written: tracker, workers: 2, waveBytes: 0
        ) { _ in nil }
        Issue.record("a selection failed and the erasure went on")
    } catch let e as LetheError {
        #expect(e.location == table.key(forLogPath: bad) && e.message.contains("injected unreadable file"), "\(e)")
    }
    // The first wave was selected, rewritten and written (its two files and their change data), then aborted.
    #expect(selected.withLock { $0 } >= 3)
    let opened = t.store.events.compactMap { if case .open(let k) = $0 { k } else { nil } }
    #expect(opened.count == 4, "\(opened)")
    try await checkNothingLeft(t, before: before)
}
