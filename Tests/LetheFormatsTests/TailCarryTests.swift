import Foundation
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats

// Issue 10 item 6: a writer that opened a lake file before Lethe's rename writes into the replaced
// file. Simulated without timing: before each of the first `rounds` commits a second name (hard link)
// is made for the file being replaced, and right after the commit `late[i]` is appended through it —
// exactly what an appender holding the old file sees.

/// A local store whose writers append `late[i]` to the file the i-th commit replaced, after the rename.
struct LateAppenderStore: ObjectStore {
    let inner: LocalObjectStore
    let late: [[UInt8]]
    let commits = Counter()

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n - 1 }
    }

    var location: String { inner.location }
    func list(prefix: String, startAfter: String?) -> ObjectListing { inner.list(prefix: prefix, startAfter: startAfter) }
    func head(_ key: String) async throws -> ObjectInfo? { try await inner.head(key) }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] { try await inner.read(key, range: range, ifVersion: ifVersion) }
    func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream { try await inner.openRead(key, chunkSize: chunkSize) }
    func delete(_ keys: [String]) async throws { try await inner.delete(keys) }
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        Writer(try await inner.openWrite(key, precondition: precondition), path: inner.root + "/" + key, store: self)
    }

    final class Writer: ObjectWriteStream {
        let inner: any ObjectWriteStream
        let path: String
        let store: LateAppenderStore
        init(_ inner: any ObjectWriteStream, path: String, store: LateAppenderStore) { self.inner = inner; self.path = path; self.store = store }
        func write(_ bytes: [UInt8]) async throws { try await inner.write(bytes) }
        func write(_ bytes: UnsafeRawBufferPointer) async throws { try await inner.write(bytes) }
        func abort() async { await inner.abort() }
        func replacedTail(from offset: Int64) async throws -> [UInt8] { try await inner.replacedTail(from: offset) }
        func commit() async throws -> ObjectInfo {
            let i = store.commits.next()
            let held = path + ".held-\(i)"
            let appends = i < store.late.count
            if appends { #expect(link(path, held) == 0) }
            let info = try await inner.commit()
            if appends {
                // O_CLOEXEC: a process another test spawns meanwhile must not inherit the write handle
                // (the store would rightly see the file open for writing elsewhere).
                let fd = open(held, O_WRONLY | O_APPEND | O_CLOEXEC)
                #expect(fd >= 0)
                _ = store.late[i].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                close(fd)
                unlink(held)
            }
            return info
        }
    }
}

private func lake(_ files: [String: [UInt8]], late: [[UInt8]]) throws -> (LateAppenderStore, String) {
    let root = NSTemporaryDirectory() + "lethe-tail-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    // Written with O_CLOEXEC: Foundation's `createFile` writes through a descriptor without it, which a
    // process another test starts meanwhile (a fork, a server) inherits — and the store then rightly
    // refuses to replace a file open for writing elsewhere (seen once in a loaded full run).
    for (k, v) in files {
        let fd = open(root + "/" + k, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(v.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == v.count)
        close(fd)
    }
    return (LateAppenderStore(inner: LocalObjectStore(root: root), late: late), root)
}

private func erase(_ format: any RecordFormat, _ store: LateAppenderStore, _ object: String, _ opts: FormatOptions, _ drop: [String]) async throws
    -> EraseOutcome
{
    let info = try #require(try await store.head(object))
    return try await format.erase(info, in: store, options: opts, keyer: SubjectKeyer(hasher: hasher), drop: Set(drop.map { key($0) }))
}

@Test func jsonLinesAppendedDuringTheRewriteAreCarriedAndFiltered() async throws {
    let original = "{\"id\":\"u-1\",\"n\":1}\n{\"id\":\"u-2\",\"n\":2}\n"
    let late = ["{\"id\":\"u-3\",\"n\":3}\n{\"id\":\"u-1\",\"n\":4}\n", "{\"id\":\"u-4\",\"n\":5}\n"]
    let (store, root) = try lake(["a.jsonl": original.bytes], late: late.map(\.bytes))
    defer { try? FileManager.default.removeItem(atPath: root) }
    let out = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), ["u-1"])
    // Two carries: the late u-1 record is dropped too; nothing anyone appended is lost.
    #expect(try await store.inner.read("a.jsonl") == "{\"id\":\"u-2\",\"n\":2}\n{\"id\":\"u-3\",\"n\":3}\n{\"id\":\"u-4\",\"n\":5}\n".bytes)
    #expect(out.dropped == [key("u-1"): 2])
    #expect(out.kept == 3)
    #expect(out.written == (try await store.inner.head("a.jsonl")))
    #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["a.jsonl"])
}

@Test func theTailContinuesALastLineWithoutNewline() async throws {
    // The original ends in a record without LF; the writer ends that line and adds records.
    let (store, root) = try lake(
        ["a.jsonl": "{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}".bytes],
        late: ["\n{\"id\":\"u-1\"}\r\n{\"id\":\"u-5\"}".bytes])
    defer { try? FileManager.default.removeItem(atPath: root) }
    _ = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), ["u-1"])
    #expect(try await store.inner.read("a.jsonl") == "{\"id\":\"u-2\"}\n{\"id\":\"u-5\"}".bytes)
}

@Test func gzipMembersAppendedDuringTheRewriteAreCarriedAndFiltered() async throws {
    let original = try gzipTool("{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}\n".bytes)
    let late = try gzipTool("{\"id\":\"u-1\"}\n{\"id\":\"u-3\"}\n".bytes)
    let (store, root) = try lake(["a.jsonl.gz": original], late: [late])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let out = try await erase(JSONLinesFormat(), store, "a.jsonl.gz", options("id"), ["u-1"])
    #expect(try gzipTool(try await store.inner.read("a.jsonl.gz"), ["-d"]) == "{\"id\":\"u-2\"}\n{\"id\":\"u-3\"}\n".bytes)
    #expect(out.dropped == [key("u-1"): 2])
}

@Test func csvRowsAppendedDuringTheRewriteAreCarriedAndFiltered() async throws {
    let (store, root) = try lake(["a.csv": "id,n\nu-1,1\nu-2,2\n".bytes], late: ["u-3,3\nu-1,4\n".bytes])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let out = try await erase(CSVFormat(), store, "a.csv", options("id"), ["u-1"])
    #expect(try await store.inner.read("a.csv") == "id,n\nu-2,2\nu-3,3\n".bytes)
    #expect(out.dropped == [key("u-1"): 2])
}

@Test func aTailTheFilterCannotReadIsCarriedVerbatimNotLost() async throws {
    // A writer stopped mid-record (mid gzip member): the bytes are kept; indexing will quarantine the object.
    let (store, root) = try lake(["a.jsonl": "{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}\n".bytes], late: ["{\"id\":\"u-1\",".bytes])
    defer { try? FileManager.default.removeItem(atPath: root) }
    _ = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), ["u-1"])
    #expect(try await store.inner.read("a.jsonl") == "{\"id\":\"u-2\"}\n{\"id\":\"u-1\",".bytes)

    let gz = try gzipTool("{\"id\":\"u-1\"}\n{\"id\":\"u-2\"}\n".bytes)
    let partial = Array(try gzipTool("{\"id\":\"u-3\"}\n".bytes).prefix(12))
    let (zstore, zroot) = try lake(["a.jsonl.gz": gz], late: [partial])
    defer { try? FileManager.default.removeItem(atPath: zroot) }
    _ = try await erase(JSONLinesFormat(), zstore, "a.jsonl.gz", options("id"), ["u-1"])
    let stored = try await zstore.inner.read("a.jsonl.gz")
    #expect(Array(stored.suffix(partial.count)) == partial)
}

@Test func nothingDroppedMeansNothingWrittenAndNoCarry() async throws {
    let (store, root) = try lake(["a.jsonl": "{\"id\":\"u-2\"}\n".bytes], late: ["{\"id\":\"u-3\"}\n".bytes])
    defer { try? FileManager.default.removeItem(atPath: root) }
    let out = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), ["u-1"])
    #expect(out.written == nil)
    #expect(store.commits.next() == 0)
}
