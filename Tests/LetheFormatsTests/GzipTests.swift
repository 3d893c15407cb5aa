import Foundation
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting

struct GzipTests {
    @Test(arguments: ["a.jsonl.gz", "a.jsonl.gzip", "A.JSONL.GZ"])
    func scanGzipWrittenByTheGzipTool(name: String) async throws {
        let store = FaultInjectingStore()
        store.set(name, try gzipTool(mixedJSONL.bytes))
        for chunkSize in [1, 5, 1 << 20] {
            let r = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, name, options("user.id"))
            #expect(r.keys == [key("u-1"), key("u-12"), key("u-2"), key("u-1"), key("u-3")])
            #expect(r.summary.bytes == Int64(store.get(name)!.count))
        }
    }

    @Test func multiMemberGzip() async throws {
        let store = FaultInjectingStore()
        let a = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n", b = "{\"id\":\"c\"}\n"
        store.set("m.jsonl.gz", try gzipTool(a.bytes) + gzipTool(b.bytes))
        for chunkSize in [3, 1 << 20] {
            let r = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, "m.jsonl.gz", options("id"))
            #expect(r.keys == [key("a"), key("b"), key("c")])
        }
    }

    @Test func largeGzipRoundTrip() async throws {
        var content = ""
        for i in 0..<20_000 {
            content += "{\"n\":\(i),\"user\":{\"id\":\"u-\(i % 97)\"},\"pad\":\"\(String(repeating: "x", count: i % 50))\"}\(i % 3 == 0 ? "\r\n" : "\n")"
        }
        let store = FaultInjectingStore()
        store.set("big.jsonl.gz", try gzipTool(content.bytes))
        let out = try await erase(JSONLinesFormat(chunkSize: 4096), store, "big.jsonl.gz", options("user.id"), [key("u-5"), key("u-50")])
        #expect(out.droppedTotal > 300)
        // Split on LF bytes ("\r\n" is a single Character, so not on Characters).
        let lines = content.bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        let u5 = "\"u-5\"".bytes, u50 = "\"u-50\"".bytes
        let expected = lines.filter { l in
            let s = Array(l)
            return !contains(s, u5) && !contains(s, u50)
        }.flatMap { l -> [UInt8] in Array(l) + [UInt8(0x0A)] }
        func contains(_ h: [UInt8], _ n: [UInt8]) -> Bool {
            guard h.count >= n.count else { return false }
            return (0...(h.count - n.count)).contains { Array(h[$0..<($0 + n.count)]) == n }
        }
        let written = store.get("big.jsonl.gz")!
        #expect(Array(written.prefix(2)) == [0x1F, 0x8B])
        #expect(try gzipTool(written, ["-d"]) == expected)
        let r = try await scan(JSONLinesFormat(chunkSize: 1000), store, "big.jsonl.gz", options("user.id"))
        #expect(r.summary.records == Int64(20_000) - out.droppedTotal)
    }

    @Test func eraseGzipKeepsDecompressedBytes() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl.gz", try gzipTool(mixedJSONL.bytes))
        let out = try await erase(JSONLinesFormat(chunkSize: 7), store, "a.jsonl.gz", options("user.id"), [key("u-1")])
        #expect(out.droppedTotal == 2)
        #expect(try gzipTool(store.get("a.jsonl.gz")!, ["-d"]) == JSONLinesFormatTests.mixedWithoutU1.bytes)
    }

    @Test func everyRecordDroppedStillWritesValidGzip() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl.gz", try gzipTool("{\"id\":\"a\"}".bytes))
        let out = try await erase(JSONLinesFormat(), store, "a.jsonl.gz", options("id"), [key("a")])
        #expect(out.written != nil)
        #expect(try gzipTool(store.get("a.jsonl.gz")!, ["-d"]) == [])
    }

    @Test(arguments: [1, 10, 30])
    func truncatedGzipIsCorrupt(cut: Int) async throws {
        let store = FaultInjectingStore()
        let gz = try gzipTool(mixedJSONL.bytes)
        store.set("a.jsonl.gz", Array(gz.dropLast(cut)))
        let e = await letheError { _ = try await scan(JSONLinesFormat(chunkSize: 16), store, "a.jsonl.gz", options("user.id")) }
        #expect(e?.code == .corrupt)
        #expect(e?.location?.hasPrefix("a.jsonl.gz") == true)
        let e2 = await letheError { _ = try await erase(JSONLinesFormat(chunkSize: 16), store, "a.jsonl.gz", options("user.id"), [key("u-1")]) }
        #expect(e2?.code == .corrupt)
        #expect(store.commits == 0)
    }

    @Test func corruptGzipIsCorrupt() async throws {
        let store = FaultInjectingStore()
        var gz = try gzipTool(mixedJSONL.bytes)
        for i in 12..<min(gz.count - 8, 40) { gz[i] ^= 0x5A }
        store.set("a.jsonl.gz", gz)
        let e = await letheError { _ = try await scan(JSONLinesFormat(), store, "a.jsonl.gz", options("user.id")) }
        #expect(e?.code == .corrupt)
        store.set("b.jsonl.gz", "{\"id\":\"not gzip\"}\n".bytes)
        let e2 = await letheError { _ = try await scan(JSONLinesFormat(), store, "b.jsonl.gz", options("id")) }
        #expect(e2?.code == .corrupt)
        #expect(e2?.message.contains("gzip") == true)
    }

    @Test func gzipCSVRoundTrip() async throws {
        let csv = "id,name\r\nu-1,\"a,b\"\r\nu-2,c\r\n"
        let store = FaultInjectingStore()
        store.set("t.csv.gz", try gzipTool(csv.bytes))
        let out = try await erase(CSVFormat(chunkSize: 5), store, "t.csv.gz", options("id"), [key("u-1")])
        #expect(out.droppedTotal == 1)
        #expect(try gzipTool(store.get("t.csv.gz")!, ["-d"]) == "id,name\r\nu-2,c\r\n".bytes)
    }
}
