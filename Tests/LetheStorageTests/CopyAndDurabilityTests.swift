import Synchronization
import Testing
import Foundation
@testable import LetheStorage
import LetheCore

// Issue 12 part B (§2.8): ranged copies between objects in the kernel, and one durability pass for many writes.

private func tempRoot() -> String {
    let d = NSTemporaryDirectory() + "lethe-copy-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Test func copyRangeUsesTheKernelOnLocalFiles() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let src = try await s.put("src.bin", data)
    let w = try await s.openWrite("dst.bin", precondition: .none)
    try await w.write(Array("head".utf8))
    try await w.copyRange(from: "src.bin", version: src.version, range: 1_000..<250_000, in: s)
    try await w.copyRange(from: "src.bin", version: src.version, range: 10..<20, in: s)  // small: on the caller
    try await w.write(Array("tail".utf8))
    _ = try await w.commit()
    #expect(try await s.read("dst.bin") == Array("head".utf8) + Array(data[1_000..<250_000]) + Array(data[10..<20]) + Array("tail".utf8))
    #expect(s.counters.bytesCopiedInKernel.load(ordering: .relaxed) == 249_010)
}

@Test func copyRangeRefusesAnotherVersion() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let v1 = try await s.put("src.bin", Array(repeating: 1, count: 100))
    try await s.put("src.bin", Array(repeating: 2, count: 100))
    let w = try await s.openWrite("dst.bin", precondition: .none)
    await #expect(throws: LetheError.self) { try await w.copyRange(from: "src.bin", version: v1.version, range: 0..<10, in: s) }
    await w.abort()
}

@Test func copyRangeThroughAnotherStoreReadsAndWrites() async throws {
    // The default (any store): ranged reads pinned to the version, then writes.
    let m = InMemoryObjectStore()
    let src = try await m.put("a", Array(0..<200).map { UInt8($0) })
    let w = try await m.openWrite("b", precondition: .none)
    try await w.copyRange(from: "a", version: src.version, range: 50..<60, in: m)
    _ = try await w.commit()
    #expect(try await m.read("b") == Array(50..<60).map { UInt8($0) })
}

@Test func deferredWritesAreMadeDurableInOnePass() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    var writers: [any ObjectWriteStream] = []
    for i in 0..<7 {
        let w = try await s.openWrite("t/f\(i)", precondition: .none, durability: .deferred)
        try await w.write(Array("file \(i)".utf8))
        writers.append(w)
    }
    try await s.makeDurable(writers)
    #expect(s.counters.durabilityPasses.load(ordering: .relaxed) == 1)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 7)
    for w in writers { _ = try await w.commit() }
    // The commits renamed without another fsync of the data.
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 7)
    for i in 0..<7 { #expect(try await s.read("t/f\(i)") == Array("file \(i)".utf8)) }

    // A deferred write that was not made durable is fsynced by its commit; an immediate one always is.
    let late = try await s.openWrite("t/late", precondition: .none, durability: .deferred)
    try await late.write([1])
    _ = try await late.commit()
    _ = try await s.put("t/now", [2])
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 9)
}

/// Many deferred writes (a Delta erasure of thousands of small files) are made durable by one
/// `syncfs(2)` of their file system, not one fsync each; their commits fsync nothing more.
@Test func manyDeferredWritesAreMadeDurableByOneFileSystemSync() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let n = LocalObjectStore.filesystemSyncThreshold
    var writers: [any ObjectWriteStream] = []
    for i in 0..<n {
        let w = try await s.openWrite("t/f\(i)", precondition: .none, durability: .deferred)
        try await w.write(Array("file \(i)".utf8))
        writers.append(w)
    }
    try await s.makeDurable(writers)
    #expect(s.counters.filesystemSyncs.load(ordering: .relaxed) == 1)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 0)
    _ = try await s.commit(writers)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 0)
    for i in 0..<n { #expect(try await s.read("t/f\(i)") == Array("file \(i)".utf8)) }
}

/// A hundred deferred writes (a Delta erasure rewriting 100 files) are fsynced each, in parallel: a
/// `syncfs(2)` would also wait for every other dirty page of the file system.
@Test func aHundredDeferredWritesAreFsyncedEachNotTheFileSystem() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    var writers: [any ObjectWriteStream] = []
    for i in 0..<100 {
        let w = try await s.openWrite("t/f\(i)", precondition: .none, durability: .deferred)
        try await w.write(Array("file \(i)".utf8))
        writers.append(w)
    }
    try await s.makeDurable(writers)
    #expect(s.counters.filesystemSyncs.load(ordering: .relaxed) == 0)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 100)
    _ = try await s.commit(writers)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 100)
    for i in 0..<100 { #expect(try await s.read("t/f\(i)") == Array("file \(i)".utf8)) }
}

@Test func aBatchCommitSyncsEachFolderOnce() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    var writers: [any ObjectWriteStream] = []
    for i in 0..<6 {
        let w = try await s.openWrite("\(i % 2 == 0 ? "a" : "b")/f\(i)", precondition: .absent, durability: .deferred)
        try await w.write(Array("file \(i)".utf8))
        writers.append(w)
    }
    try await s.makeDurable(writers)
    let infos = try await s.commit(writers)
    #expect(infos.map(\.key) == (0..<6).map { "\($0 % 2 == 0 ? "a" : "b")/f\($0)" })
    #expect(s.counters.folderSyncs.load(ordering: .relaxed) == 2)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 6)
    for i in 0..<6 { #expect(try await s.read(infos[i].key) == Array("file \(i)".utf8)) }
}

@Test func aBatchCommitThatFailsPartwayKeepsTheOnesBeforeAndLeavesTheRest() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let old = try await s.put("t/b", Array("old".utf8))
    var writers: [any ObjectWriteStream] = []
    for (key, pre) in [("t/a", WritePrecondition.absent), ("t/b", .matches(version: old.version)), ("t/c", .absent)] {
        let w = try await s.openWrite(key, precondition: pre, durability: .deferred)
        try await w.write(Array("new \(key)".utf8))
        writers.append(w)
    }
    try await s.put("t/b", Array("changed meanwhile".utf8))  // the compare-and-swap of the second write fails
    await #expect(throws: LetheError.self) { _ = try await s.commit(writers) }
    for w in writers { await w.abort() }
    #expect(try await s.read("t/a") == Array("new t/a".utf8))
    #expect(try await s.read("t/b") == Array("changed meanwhile".utf8))
    #expect(try await s.head("t/c") == nil)
    // No temporary file is left behind.
    let names = try FileManager.default.contentsOfDirectory(atPath: root + "/t").sorted()
    #expect(names == ["a", "b"], "\(names)")
}

/// A deferred write starts the kernel's writeback of what it wrote every `writebackChunk` bytes
/// (written or copied in the kernel), not waited for; an immediate write (fsynced by its commit)
/// does not. The bytes committed are those written, whenever the hints run.
@Test func deferredWritesStartTheirWritebackAsTheyGo() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    var s = LocalObjectStore(root: root)
    s.directWrites = .never  // the page cache's writeback (direct writes have none to start)
    let chunk = Int(LocalObjectStore.writebackChunk)
    let data = (0..<(3 * chunk + 1_000)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    let src = try await s.put("src.bin", data)

    let immediate = try await s.openWrite("t/immediate", precondition: .none)
    try await immediate.write(data)
    _ = try await immediate.commit()
    #expect(s.counters.writebackStarts.load(ordering: .relaxed) == 0)

    let w = try await s.openWrite("t/deferred", precondition: .none, durability: .deferred)
    try await w.write(Array(data[0..<(chunk / 2)]))  // under a chunk: no hint yet
    #expect(s.counters.writebackStarts.load(ordering: .relaxed) == 0)
    try await w.write(Array(data[(chunk / 2)..<(2 * chunk)]))  // past one chunk since the start
    #expect(s.counters.writebackStarts.load(ordering: .relaxed) == 1)
    try await w.copyRange(from: "src.bin", version: src.version, range: Int64(2 * chunk)..<Int64(data.count), in: s)
    #expect(s.counters.writebackStarts.load(ordering: .relaxed) == 2)
    try await s.makeDurable([w])
    _ = try await w.commit()
    let deferred = try await s.read("t/deferred"), immediate2 = try await s.read("t/immediate")
    #expect(deferred == data && immediate2 == data)
}

/// Many keys (a vacuum deleting hundreds of replaced files) are unlinked in parallel parts: every one
/// is gone, the folders they emptied are removed, a kept folder and the files not named stay.
@Test func manyDeletesInParallelPartsRemoveEveryFileAndTheEmptiedFolders() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    var s = LocalObjectStore(root: root)
    s.keptFolders = ["kept"]
    var doomed: [String] = []
    for i in 0..<150 {
        for folder in ["a/x", "b", "kept"] {
            let key = "\(folder)/f\(i)"
            _ = try await s.put(key, Array(key.utf8))
            doomed.append(key)
        }
    }
    _ = try await s.put("b/other", [1])
    #expect(doomed.count >= LocalObjectStore.parallelUnlinkThreshold)
    try await s.delete(doomed.shuffled())
    for key in doomed { #expect(try await s.head(key) == nil) }
    #expect(try await s.read("b/other") == [1])
    #expect(!FileManager.default.fileExists(atPath: root + "/a"))  // emptied: a/x, then a
    #expect(FileManager.default.fileExists(atPath: root + "/kept"))
}

// Issue 12, session 29: `commitNew` links new files into place before their bytes are durable and syncs
// them, the other writes' bytes and the folders in one pass (one wait instead of two).

@Test func newFilesAreLinkedThenSyncedWithTheirFoldersAndTheOtherWritesInOnePass() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    var writers: [any ObjectWriteStream] = []
    for i in 0..<5 {
        let w = try await s.openWrite("\(i % 2 == 0 ? "a" : "b")/f\(i)", precondition: .absent, durability: .deferred)
        try await w.write(Array("file \(i)".utf8))
        writers.append(w)
    }
    // A file made durable in the same pass but not published (an erasure's commit file).
    let other = try await s.openWrite("log/00001.json", precondition: .absent, durability: .deferred)
    try await other.write(Array("commit".utf8))
    let infos = try await s.commitNew(writers, makingDurable: [other])
    #expect(infos.map(\.key) == (0..<5).map { "\($0 % 2 == 0 ? "a" : "b")/f\($0)" })
    for i in 0..<5 { #expect(try await s.read(infos[i].key) == Array("file \(i)".utf8)) }
    #expect(try await s.head(infos[0].key)?.version == infos[0].version)
    // Every file's bytes (the five and the other) and each folder linked into, once, in one pass.
    #expect(s.counters.durabilityPasses.load(ordering: .relaxed) == 1)
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 6)
    #expect(s.counters.folderSyncs.load(ordering: .relaxed) == 2)
    // The other write is durable, not published: its commit only links it (no second fsync of its bytes).
    #expect(try await s.head("log/00001.json") == nil)
    try await s.makeDurable([other])
    #expect(s.counters.durabilityPasses.load(ordering: .relaxed) == 1)
    _ = try await s.commit([other])
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 6)
    #expect(try await s.read("log/00001.json") == Array("commit".utf8))
    #expect(try await s.listKeys(prefix: "").allSatisfy { !$0.contains(LocalObjectStore.tempMarker) })
}

@Test func aReplacementIsRenamedByCommitNewOnlyOnceItsBytesAreDurable() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let a = try await s.put("t/a", Array("old a".utf8))
    let b = try await s.put("t/b", Array("old b".utf8))
    // `a`'s replacement made durable first: renamed in the pass; `b`'s not: the pass goes the ordered way
    // (bytes synced, then renamed), never renaming it over the old bytes before they are durable.
    let wa = try await s.openWrite("t/a", precondition: .matches(version: a.version), durability: .deferred)
    try await wa.write(Array("new a".utf8))
    try await s.makeDurable([wa])
    let fresh = try await s.openWrite("t/c", precondition: .absent, durability: .deferred)
    try await fresh.write(Array("c".utf8))
    _ = try await s.commitNew([wa, fresh], makingDurable: [])
    #expect(try await s.read("t/a") == Array("new a".utf8))
    #expect(try await s.read("t/c") == Array("c".utf8))
    let wb = try await s.openWrite("t/b", precondition: .matches(version: b.version), durability: .deferred)
    try await wb.write(Array("new b".utf8))
    _ = try await s.commitNew([wb], makingDurable: [])
    #expect(try await s.read("t/b") == Array("new b".utf8))
    #expect(s.counters.dataSyncs.load(ordering: .relaxed) == 5)  // 2 puts, `a`, `c`, `b`: each once
}

@Test func aNewFileWhoseKeyIsTakenFailsCommitNewWithAConflict() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    _ = try await s.put("t/taken", Array("someone else's".utf8))
    var writers: [any ObjectWriteStream] = []
    for k in ["t/first", "t/taken", "t/last"] {
        let w = try await s.openWrite(k, precondition: .absent, durability: .deferred)
        try await w.write(Array(k.utf8))
        writers.append(w)
    }
    do {
        _ = try await s.commitNew(writers, makingDurable: [])
        Issue.record("a taken key was not refused")
    } catch let e as LetheError {
        #expect(e.code == .conflict, "\(e)")
    }
    for w in writers { await w.abort() }
    // The one linked before stays (its key is the caller's to remove), the taken key keeps its bytes,
    // nothing is left of the others.
    #expect(try await s.read("t/taken") == Array("someone else's".utf8))
    #expect(try await s.read("t/first") == Array("t/first".utf8))
    #expect(try await s.head("t/last") == nil)
    #expect(try await s.listKeys(prefix: "").allSatisfy { !$0.contains(LocalObjectStore.tempMarker) })
}
