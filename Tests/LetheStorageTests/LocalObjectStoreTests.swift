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
    w.abort()
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
