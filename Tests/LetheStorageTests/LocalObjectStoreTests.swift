import Synchronization
import Testing
import Foundation
@testable import LetheStorage
import LetheCore

private func tempDir() -> String {
    let d = NSTemporaryDirectory() + "lethe-store-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Test func listsRecursivelySortedWithSizesAndTempNamedFilesAsData() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    try await s.put("raw/events/b.jsonl", Array("bb\n".utf8))
    try await s.put("raw/events/2024/a.jsonl", Array("a\n".utf8))
    try await s.put("raw/eventsX/c.jsonl", Array("c\n".utf8))
    // A file with a temporary-looking name is data: only the engine's journal says what is a temporary file.
    _ = FileManager.default.createFile(atPath: root + "/raw/events/.x.lethe-tmp-1", contents: Data([1]))
    let l = try await s.list(prefix: "raw/events")
    #expect(l.map(\.key) == ["raw/events/.x.lethe-tmp-1", "raw/events/2024/a.jsonl", "raw/events/b.jsonl"])
    #expect(l.map(\.size) == [1, 2, 3])
    #expect(try await s.read("raw/events/b.jsonl", range: 1..<3) == Array("b\n".utf8))
}

@Test func streamingReadYieldsAllBytesInChunks() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let data = (0..<10_000).map { UInt8($0 % 251) }
    try await s.put("x.bin", data)
    let r = try await s.openRead("x.bin", chunkSize: 333)
    var got: [UInt8] = []
    while let c = try await r.next() { #expect(c.count <= 333); got += c }
    #expect(got == data)
}

@Test func conditionalCommitRefusesWhenTheObjectChanged() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let v1 = try await s.put("o", Array("one\n".utf8))
    let w = try await s.openWrite("o", precondition: .matches(version: v1.version))
    try await w.write(Array("rewritten\n".utf8))
    // An outside writer appends meanwhile.
    let h = FileHandle(forWritingAtPath: root + "/o")!
    h.seekToEndOfFile(); h.write(Data("two\n".utf8)); h.closeFile()
    await #expect(throws: LetheError.self) { _ = try await w.commit() }
    #expect(try await s.read("o") == Array("one\ntwo\n".utf8))
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: root)
    #expect(leftovers == ["o"])
}

@Test func putIfAbsentIsExclusive() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    try await s.put("log/00.json", [1], precondition: .absent)
    await #expect(throws: LetheError.self) { try await s.put("log/00.json", [2], precondition: .absent) }
    #expect(try await s.read("log/00.json") == [1])
}

@Test func abortLeavesTheOriginal() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    try await s.put("o", [1, 2, 3])
    let w = try await s.openWrite("o", precondition: .none)
    try await w.write([9, 9])
    await w.abort()
    #expect(try await s.read("o") == [1, 2, 3])
    #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["o"])
}

@Test func inMemoryStoreHasTheSameSemantics() async throws {
    let s = InMemoryObjectStore()
    let v = try await s.put("a/b", [1])
    s.set("a/b", [2])
    let w = try await s.openWrite("a/b", precondition: .matches(version: v.version))
    try await w.write([3])
    await #expect(throws: LetheError.self) { _ = try await w.commit() }
    #expect(try await s.list(prefix: "a").map(\.key) == ["a/b"])
    #expect(try await s.list(prefix: "a/b").map(\.key) == ["a/b"])
}

// MARK: Issue 10 item 9: links, special files and names that are not UTF-8 are objects, never skipped.

private func expectUnsupported(
    _ words: String..., sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("no error", sourceLocation: sourceLocation)
    } catch let e as LetheError {
        #expect(e.code == .unsupported, "\(e)", sourceLocation: sourceLocation)
        for w in words { #expect(e.description.contains(w), "\(e)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

@Test func linksAndSpecialFilesAreListedAndRefusedWhenRead() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let outside = tempDir(); defer { try? FileManager.default.removeItem(atPath: outside) }
    let s = LocalObjectStore(root: root)
    try await s.put("ds/a.jsonl", Array("a\n".utf8))
    _ = FileManager.default.createFile(atPath: outside + "/secret.jsonl", contents: Data("s\n".utf8))
    try FileManager.default.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: outside + "/dir/x.jsonl", contents: Data("x\n".utf8))
    #expect(symlink(outside + "/secret.jsonl", root + "/ds/link.jsonl") == 0)
    #expect(symlink(outside + "/dir", root + "/ds/linked-dir") == 0)
    #expect(mkfifo(root + "/ds/pipe", 0o644) == 0)
    // Listed, not skipped: an object Lethe will not read stays visible to the indexer and verifier.
    #expect(try await s.list(prefix: "ds").map(\.key) == ["ds/a.jsonl", "ds/link.jsonl", "ds/linked-dir", "ds/pipe"])
    #expect(try await s.listKeys(prefix: "ds") == ["ds/a.jsonl", "ds/link.jsonl", "ds/linked-dir", "ds/pipe"])
    #expect(try await s.head("ds/link.jsonl") != nil)
    await expectUnsupported("ds/link.jsonl", "symbolic link", outside + "/secret.jsonl") { _ = try await s.read("ds/link.jsonl") }
    await expectUnsupported("symbolic link") { _ = try await s.openRead("ds/linked-dir") }
    await expectUnsupported("FIFO") { _ = try await s.openRead("ds/pipe") }  // and no hang
    // A key through a linked folder is refused, not followed out of the lake.
    await expectUnsupported("ds/linked-dir", "symbolic link") { _ = try await s.read("ds/linked-dir/x.jsonl") }
    await expectUnsupported("symbolic link") { _ = try await s.openWrite("ds/linked-dir/y.jsonl", precondition: .none) }
    #expect(!FileManager.default.fileExists(atPath: outside + "/dir/y.jsonl"))
}

@Test func aLinkedDatasetRootIsRefusedWhenListed() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let outside = tempDir(); defer { try? FileManager.default.removeItem(atPath: outside) }
    _ = FileManager.default.createFile(atPath: outside + "/x.jsonl", contents: Data("x\n".utf8))
    try FileManager.default.createDirectory(atPath: root + "/raw", withIntermediateDirectories: true)
    #expect(symlink(outside, root + "/raw/events") == 0)
    #expect(symlink(outside, root + "/bronze") == 0)
    let s = LocalObjectStore(root: root)
    await expectUnsupported("raw/events", "symbolic link") { _ = try await s.list(prefix: "raw/events") }
    await expectUnsupported("bronze", "symbolic link") { _ = try await s.listKeys(prefix: "bronze/users") }
    #expect(try await s.list(prefix: "nope").isEmpty)
    // The lake root itself may be a link (it is what the config names).
    let viaLink = tempDir() + "-link"
    #expect(symlink(root, viaLink) == 0)
    defer { unlink(viaLink) }
    try await LocalObjectStore(root: viaLink).put("raw/x.jsonl", [1])
    #expect(try await LocalObjectStore(root: viaLink).list(prefix: "raw").map(\.key).contains("raw/x.jsonl"))
}

@Test func namesThatAreNotUTF8AreObjectsWithExactKeys() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root + "/ds", withIntermediateDirectories: true)
    let names: [[UInt8]] = [
        Array("caf".utf8) + [0xE9] + Array(".jsonl".utf8),  // Latin-1
        Array("caf".utf8) + [0xEF, 0xBF, 0xBD] + Array(".jsonl".utf8),  // a literal U+FFFD
        Array("café.jsonl".utf8),
    ]
    for (i, n) in names.enumerated() {
        let path = Array((root + "/ds/").utf8) + n
        let fd = open(path.map { CChar(bitPattern: $0) } + [0], O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        _ = write(fd, [UInt8(0x30 + i), 0x0A], 2)
        close(fd)
    }
    let s = LocalObjectStore(root: root)
    let keys = try await s.list(prefix: "ds").map(\.key)
    #expect(Set(keys) == ["ds/caf\u{FFFD}E9.jsonl", "ds/caf\u{FFFD}EF\u{FFFD}BF\u{FFFD}BD.jsonl", "ds/café.jsonl"])
    // Each key reads its own file, and a rewrite replaces that file, not a lossily named twin.
    #expect(try await s.read("ds/caf\u{FFFD}E9.jsonl") == Array("0\n".utf8))
    #expect(try await s.read("ds/caf\u{FFFD}EF\u{FFFD}BF\u{FFFD}BD.jsonl") == Array("1\n".utf8))
    let info = try #require(try await s.head("ds/caf\u{FFFD}E9.jsonl"))
    try await s.put("ds/caf\u{FFFD}E9.jsonl", Array("new\n".utf8), precondition: .matches(version: info.version))
    #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/ds").count == 3)
    #expect(try await s.read("ds/caf\u{FFFD}E9.jsonl") == Array("new\n".utf8))
    #expect(LocalObjectStore.cName(Substring(LocalObjectStore.keyComponent(names[0]))).dropLast().map { UInt8(bitPattern: $0) } == names[0])
}

// MARK: Issue 10 item 14: a rewrite keeps the file's mode, owner and group.

@Test func aReplacementKeepsModeOwnerAndGroup() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    try await s.put("ds/a.jsonl", Array("a\n".utf8))
    #expect(chmod(root + "/ds/a.jsonl", 0o640) == 0)
    let canChown = geteuid() == 0
    if canChown { #expect(chown(root + "/ds/a.jsonl", 1234, 1235) == 0) }
    let v = try #require(try await s.head("ds/a.jsonl"))
    try await s.put("ds/a.jsonl", Array("b\n".utf8), precondition: .matches(version: v.version))
    var st = stat()
    #expect(stat(root + "/ds/a.jsonl", &st) == 0)
    #expect(st.st_mode & 0o7777 == 0o640)
    if canChown { #expect(st.st_uid == 1234 && st.st_gid == 1235) }
    // A new object gets the default mode (0644 less the umask).
    try await s.put("ds/new.jsonl", [1])
    let mask = umask(0); umask(mask)
    #expect(stat(root + "/ds/new.jsonl", &st) == 0 && st.st_mode & 0o7777 == 0o644 & ~mask)
}

// MARK: Issue 10 item 6: a writer holding the object open.

@Test func aReplaceIsRefusedWhileAnotherHolderWritesTheObject() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let v = try await s.put("ds/a.jsonl", Array("a\n".utf8))
    let writer = try #require(FileHandle(forWritingAtPath: root + "/ds/a.jsonl"))  // like `exec 3>>a.jsonl`
    let w = try await s.openWrite("ds/a.jsonl", precondition: .matches(version: v.version))
    try await w.write(Array("rewritten\n".utf8))
    do {
        _ = try await w.commit()
        Issue.record("replaced a file another holder writes")
    } catch let e as LetheError {
        #expect(e.code == .conflict && e.message.contains("open for writing"), "\(e)")
    }
    writer.seekToEndOfFile(); writer.write(Data("b\n".utf8)); try writer.close()
    #expect(try await s.read("ds/a.jsonl") == Array("a\nb\n".utf8))
    #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/ds") == ["a.jsonl"])
    // Once the writer has closed it, the replace goes through.
    let v2 = try #require(try await s.head("ds/a.jsonl"))
    try await s.put("ds/a.jsonl", Array("c\n".utf8), precondition: .matches(version: v2.version))
    #expect(try await s.read("ds/a.jsonl") == Array("c\n".utf8))
}

@Test func bytesAppendedToTheReplacedFileAreReturnedAsItsTail() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let v = try await s.put("ds/a.jsonl", Array("a\n".utf8))
    // A second name for the same file: what a writer that opened it before the rename still reaches.
    #expect(link(root + "/ds/a.jsonl", root + "/old") == 0)
    let w = try await s.openWrite("ds/a.jsonl", precondition: .matches(version: v.version))
    try await w.write(Array("A\n".utf8))
    #expect(try await w.replacedTail(from: 2).isEmpty)
    _ = try await w.commit()
    #expect(try await w.replacedTail(from: 2).isEmpty)
    let h = try #require(FileHandle(forWritingAtPath: root + "/old"))
    h.seekToEndOfFile(); h.write(Data("late\n".utf8)); try h.close()
    #expect(try await w.replacedTail(from: 2) == Array("late\n".utf8))
    #expect(try await w.replacedTail(from: 7).isEmpty)
    #expect(try await s.read("ds/a.jsonl") == Array("A\n".utf8))
}

@Test func keysCannotLeaveTheRoot() async throws {
    // Keys also come from files (a Delta log's paths): `..`, `.`, empty and absolute keys name nothing.
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root + "/lake")
    try await s.put("t/a.parquet", [1])
    _ = FileManager.default.createFile(atPath: root + "/outside", contents: Data([2]))
    for key in ["t/../../outside", "../outside", "/outside", "t//a.parquet", "./t/a.parquet", "t/a.parquet/"] {
        await #expect(throws: LetheError.self, "\(key)") { _ = try await s.read(key) }
        await #expect(throws: LetheError.self, "\(key)") { _ = try await s.openWrite(key, precondition: .none) }
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/outside")) == Data([2]))
}

/// The listing's order (keys by their bytes, a folder as its name then `/`) and versions, on names
/// chosen to sort differently as folders and files (`a`, `a-b`, `a.b`, `a0`, `é`, `Z`) at several depths.
@Test func aListingIsInKeyByteOrderWithVersionsFromStat() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let parts = ["a", "a-b", "a.b", "a0", "é", "Z", "b c", "😀", "a~"]
    var keys = Set<String>()
    var r = SystemRandomNumberGenerator()
    while keys.count < 300 {
        let depth = Int.random(in: 1...3, using: &r)
        let key = (0..<depth).map { _ in parts.randomElement(using: &r)! }.joined(separator: "/") + "/" + parts.randomElement(using: &r)! + ".f"
        // A key that would need a file where another key needs a folder is left out.
        if keys.contains(where: { $0.hasPrefix(key + "/") || key.hasPrefix($0 + "/") }) { continue }
        keys.insert(key)
    }
    for k in keys { try await s.put(k, Array(k.utf8)) }
    let listed = try await s.list(prefix: "")
    #expect(listed.map(\.key) == keys.sorted(by: keyPrecedes))
    for o in listed {
        var st = stat()
        #expect(stat(root + "/" + o.key, &st) == 0)
        let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #expect(o.version == "\(st.st_size)-\(ns)-\(st.st_ino)")
        #expect(o.size == Int64(o.key.utf8.count))
    }
    for (size, ns, ino) in [(Int64(0), Int64(0), UInt64(0)), (-5, -1_000_000_001, UInt64.max), (.max, .min + 1, 7), (123, 1_700_000_000_123_456_789, 99)] {
        #expect(LocalObjectStore.version(size: size, nanos: ns, inode: ino) == "\(size)-\(ns)-\(ino)")
    }
}

#if os(Linux)
    @Test func largeObjectsAreLentMappedAndABrokenLeaseFallsBackToReads() async throws {
        let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
        let s = LocalObjectStore(root: root)
        let data = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        try await s.put("big.bin", data)
        try await s.put("small.bin", Array(data.prefix(1_000)))
        // A large object: mapped (under a read lease), every byte lent in order.
        var got: [UInt8] = []
        try await s.forEachWindow(of: "big.bin", window: 100_000) { w, _ in
            got += w
            return 0
        }
        #expect(got == data)
        #expect(s.counters.mappedReads.load(ordering: .relaxed) == 1)
        // A small one is read.
        got = []
        try await s.forEachWindow(of: "small.bin", window: 100_000) { w, _ in
            got += w
            return 0
        }
        #expect(got == Array(data.prefix(1_000)))
        #expect(s.counters.mappedReads.load(ordering: .relaxed) == 1)
        // A writer opening the object while it is lent breaks the lease (O_NONBLOCK: it is refused, the
        // break begins): the rest comes from `pread`, the bytes are the same.
        got = []
        var windows = 0
        try await s.forEachWindow(of: "big.bin", window: 100_000) { w, end in
            windows += 1
            if windows == 2 {
                let fd = open(root + "/big.bin", O_WRONLY | O_NONBLOCK)
                #expect(fd < 0 && errno == EWOULDBLOCK)
                if fd >= 0 { close(fd) }
            }
            // Leave a line's worth at each window's end (as the sweep's search does).
            let left = end ? 0 : 77
            got += w.prefix(w.count - left)
            return left
        }
        #expect(got == data)
        #expect(s.counters.mappedReads.load(ordering: .relaxed) == 2)
    }
#endif

/// A listing after a start key holds exactly the keys after it, whatever the start key is: a key, a key's
/// prefix, a folder with or without its `/`, a key between two, one past every key (folders left out unread).
@Test func aListingAfterAStartKeyHoldsExactlyTheLaterKeys() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let parts = ["a", "a-b", "a.b", "a0", "é", "Z", "00000000000000000099", "00000000000000000100.json", "_last"]
    var keys = Set<String>()
    var r = SystemRandomNumberGenerator()
    // Short keys rule out every longer key under them, so the draws may run out of room: bounded, not "until 200".
    for _ in 0..<5_000 where keys.count < 200 {
        let key = "t/" + (0..<Int.random(in: 1...3, using: &r)).map { _ in parts.randomElement(using: &r)! }.joined(separator: "/")
        if keys.contains(where: { $0.hasPrefix(key + "/") || key.hasPrefix($0 + "/") || $0 == key }) { continue }
        keys.insert(key)
    }
    #expect(keys.count >= 9)  // at least one key under each first part
    for k in keys { try await s.put(k, [1]) }
    let all = keys.sorted(by: keyPrecedes)
    var starts =
        all.prefix(40).map { $0 } + ["", "t", "t/", "t/a", "t/a/", "t/a-", "t/a/a", "t/é", "t/zz", "u", "t/0000000000000000009", "t/00000000000000000100"]
    for k in all.shuffled(using: &r).prefix(30) { starts.append(String(k.dropLast())) }
    for start in starts {
        var got: [String] = []
        for try await page in s.list(prefix: "t", startAfter: start) { got += page.map(\.key) }
        #expect(got == all.filter { keyPrecedes(start, $0) }, "after \(start)")
    }
    let u = Array("a".utf8), after = Array("a/x".utf8)
    u.withUnsafeBufferPointer { a in
        after.withUnsafeBufferPointer { x in
            #expect(LocalObjectStore.mayFollow(a, isDir: true, after: x))  // the folder `a/` holds `a/y`
            #expect(!LocalObjectStore.mayFollow(a, isDir: false, after: x))  // the file `a` sorts before `a/x`
        }
    }
}

/// Writes opened together journal their temporary files in one `onTemporary` call, before any of
/// them exists; one write alone, its own. A write that cannot be opened aborts the ones opened.
@Test func writesOpenedTogetherJournalTheirTemporariesInOneCallBeforeAnyExists() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let calls = Mutex<[[String]]>([])
    var s = LocalObjectStore(root: root)
    s.onTemporary = { keys in
        for k in keys { #expect(!FileManager.default.fileExists(atPath: root + "/" + k), "\(k) existed before it was journaled") }
        calls.withLock { $0.append(keys) }
    }
    let ws = try await s.openWrites([("a/x.json", .absent), ("b/y.json", .absent), ("a/z.json", .absent)], durability: .deferred)
    let journaled = calls.withLock { $0 }
    #expect(journaled.count == 1 && journaled.first?.count == 3, "\(journaled)")
    // The keys journaled are the temporary files the writes made.
    let temporaries = try await s.listKeys(prefix: "").filter { $0.contains(LocalObjectStore.tempMarker) }
    #expect(Set(temporaries) == Set(journaled.first ?? []), "\(temporaries)")
    for (i, w) in ws.enumerated() { try await w.write(Array("\(i)".utf8)) }
    try await s.makeDurable(ws)
    _ = try await s.commit(ws)
    #expect(try await s.read("b/y.json") == Array("1".utf8))
    #expect(try await s.listKeys(prefix: "").sorted() == ["a/x.json", "a/z.json", "b/y.json"])
    let w = try await s.openWrite("c.json", precondition: .absent, durability: .deferred)
    await w.abort()
    #expect(calls.withLock { $0.count } == 2 && calls.withLock { $0.last?.count } == 1)
    // The second write's folder is a file: nothing is journaled, nothing created.
    try await s.put("f", [1])
    let n = calls.withLock { $0.count }
    await #expect(throws: LetheError.self) { _ = try await s.openWrites([("d.json", .absent), ("f/e.json", .absent)], durability: .deferred) }
    #expect(calls.withLock { $0.count } == n)
    #expect(try await s.listKeys(prefix: "").sorted() == ["a/x.json", "a/z.json", "b/y.json", "f"])
}

/// Descriptors of `root`'s files this process holds open after their paths were unlinked.
private func openUnlinked(under root: String) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return false }
        return target.hasPrefix(root + "/") && target.hasSuffix(" (deleted)")
    }.count
}

@Test func theFilesReplacedByCommitsAreClosedOnceTheirWritersAreDropped() async throws {
    let root = tempDir(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = LocalObjectStore(root: root)
    let keys = (0..<20).map { "ds/f\($0).json" }
    for k in keys { try await s.put(k, Array("old\n".utf8)) }
    do {
        var writers: [any ObjectWriteStream] = []
        for k in keys {
            let v = try #require(try await s.head(k))
            let w = try await s.openWrite(k, precondition: .matches(version: v.version))
            try await w.write(Array("new\n".utf8))
            writers.append(w)
        }
        _ = try await s.commit(writers)
        // Held open while the writers live (`replacedTail` reads what is appended to them).
        #expect(openUnlinked(under: root) == 20)
    }
    // Closed off the dropping thread, and none left open.
    await LocalObjectStore.closesDone()
    #expect(openUnlinked(under: root) == 0)
    for k in keys { #expect(try await s.read(k) == Array("new\n".utf8)) }
}
