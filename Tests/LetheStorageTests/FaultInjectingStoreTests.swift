import Foundation
import Testing
import LetheCore
import LetheStorage
import LetheTesting

private func code(_ body: () async throws -> Void) async -> LetheError.Code? { await ObjectStoreContract.errorCode(body) }

@Test func theNthWriteCommitAndDeleteFailAndNothingElse() async throws {
    let s = FaultInjectingStore()
    s.failWrite(at: 2)
    let w = try await s.openWrite("a", precondition: .none)
    try await w.write([1])
    #expect(await code { try await w.write([2]) } == .io)
    await w.abort()
    try await s.put("a", [3])  // the third write passes
    #expect(s.get("a") == [3])

    s.failCommit(at: 2)
    try await s.put("b", [1])
    #expect(await code { try await s.put("b", [2]) } == .io)
    #expect(s.get("b") == [1])
    try await s.put("b", [4])
    #expect(s.get("b") == [4] && s.commits == 3)

    s.failDelete(at: 1)
    #expect(await code { try await s.delete(["a", "b"]) } == .io)
    #expect(s.get("a") != nil && s.get("b") != nil)
    try await s.delete(["a", "b"])
    #expect(s.get("a") == nil && s.get("b") == nil && s.deletedKeys == 2)
}

@Test func aTornWriteIsLostOrLandsCut() async throws {
    let s = FaultInjectingStore()
    try await s.put("o", [0])
    s.tearWrites(afterBytes: 3, .lost, key: "o")
    #expect(await code { try await s.put("o", [1, 2, 3, 4, 5]) } == .io)
    #expect(s.get("o") == [0])
    try await s.put("other", [1, 2, 3, 4, 5])  // another key is not torn
    #expect(s.get("other") == [1, 2, 3, 4, 5])
    s.tearWrites(afterBytes: 3, .landed)
    #expect(await code { try await s.put("o", [1, 2, 3, 4, 5]) } == .io)
    #expect(s.get("o") == [1, 2, 3])
    try await s.put("o", [9, 9])  // within the limit: not torn
    #expect(s.get("o") == [9, 9])
}

@Test func readsFailAfterNChunksAndAreCounted() async throws {
    let s = FaultInjectingStore()
    s.set("k", Array(repeating: 1, count: 100))
    s.set("j", Array(repeating: 2, count: 100))
    s.failReads(afterChunks: 2, key: "k")
    let r = try await s.openRead("k", chunkSize: 10)
    #expect(try await r.next()?.count == 10)
    #expect(try await r.next()?.count == 10)
    #expect(await code { _ = try await r.next() } == .io)
    let other = try await s.openRead("j", chunkSize: 40)
    var n = 0
    while let c = try await other.next() { n += c.count }
    #expect(n == 100)
    _ = try await s.read("j", range: 0..<5)
    #expect(s.bytesRead == 20 + 100 + 5 && s.reads == 1)
    s.slowReads(.milliseconds(1))
    #expect(try await s.read("j", range: 0..<1) == [2])
    s.resetCounters()
    #expect(s.bytesRead == 0)
}

@Test func listingsAreCounted() async throws {
    let s = FaultInjectingStore()
    try await s.put("p/a", [1])
    let listing = s.list(prefix: "p", startAfter: nil)
    #expect(s.listings == 0)  // nothing listed until iterated
    _ = try await listing.all()
    _ = try await s.listKeys(prefix: "p")
    #expect(s.listings == 2)
}

@Test func aCutArmedByACommitLetsNChangesThroughAndRefusesEveryLaterOne() async throws {
    let s = FaultInjectingStore()
    s.cut(afterChanges: 2) { key, _ in key.hasPrefix("arm") }
    try await s.put("x", [1])  // not armed yet: not counted
    try await s.put("arm", [1])  // change 1 (arms)
    #expect(!s.wasCut)
    #expect(await code { try await s.delete(["x", "y"]) } == .io)  // x: change 2; y: refused
    #expect(s.wasCut)
    #expect(await code { try await s.put("z", [1]) } == .io)
    #expect(s.get("z") == nil && s.get("arm") == [1] && s.get("x") == nil)
    s.clearFaults()
    try await s.put("z", [1])
    #expect(s.get("z") == [1])
}
