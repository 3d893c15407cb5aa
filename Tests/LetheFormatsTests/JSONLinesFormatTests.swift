import Foundation
import Synchronization
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting

/// A JSON Lines body with every kind of line ending and blank line.
let mixedJSONL =
    "{\"user\":{\"id\":\"u-1\"},\"item\":{\"id\":\"u-12\"},\"n\":1}\n"
    + "{\"item\":{\"id\":\"u-1\"},\"user\":{\"id\":\"u-12\"},\"n\":2}\r\n"
    + "\n"
    + "   \t\r\n"
    + "{\"user\":{\"profile\":{\"id\":\"u-1\"},\"id\":\"u-2\"},\"note\":\"{\\\"user\\\":{\\\"id\\\":\\\"u-1\\\"}}\"}\n"
    + "{\"user\":{\"id\":null}}\r\n"
    + "{\"us\\u0065r\":{\"id\":\"u-1\"},\"n\":5}\n"
    + "\r\n"
    + "{\"user\":{\"id\":\"u-3\"}}"

struct JSONLinesFormatTests {
    @Test(arguments: [1, 2, 3, 7, 16, 61, 1 << 20])
    func scanFindsExactPathsAcrossChunkBoundaries(chunkSize: Int) async throws {
        let store = FaultInjectingStore()
        store.set("e/a.jsonl", mixedJSONL.bytes)
        let r = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, "e/a.jsonl", options("user.id"))
        #expect(r.keys == [key("u-1"), key("u-12"), key("u-2"), key("u-1"), key("u-3")])
        #expect(r.ordinals == [0, 1, 2, 4, 5])
        #expect(r.summary.records == 6)
        #expect(r.summary.recordsWithoutSubject == 1)
        #expect(r.summary.bytes == Int64(mixedJSONL.utf8.count))
    }

    @Test func numberAndStringAreTheSameSubject() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", "{\"user_id\":123}\n{\"user_id\":\"123\"}\n{\"user_id\":\"\"}\n{\"user_id\":1230}\n".bytes)
        let r = try await scan(JSONLinesFormat(), store, "a.jsonl", options("user_id"))
        #expect(r.keys == [key("123"), key("123"), key("1230")])
        #expect(r.summary.recordsWithoutSubject == 1)
    }

    @Test func compositeSubjects() async throws {
        let store = FaultInjectingStore()
        store.set(
            "a.jsonl",
            """
            {"tenant":"t1","user":{"id":"u-1"}}
            {"user":{"id":"u-1"},"tenant":"t2"}
            {"tenant":7,"user":{"id":"u\\u002d1"}}
            {"tenant":null,"user":{"id":"u-1"}}
            """.bytes)
        let opts = options("tenant", "user.id")
        let r = try await scan(JSONLinesFormat(chunkSize: 5), store, "a.jsonl", opts)
        #expect(r.keys == [key(parts: ["t1", "u-1"]), key(parts: ["t2", "u-1"]), key(parts: ["7", "u-1"])])
        #expect(r.summary.recordsWithoutSubject == 1)
        let out = try await erase(JSONLinesFormat(), store, "a.jsonl", opts, [key(parts: ["t2", "u-1"])])
        #expect(out.droppedTotal == 1)
        #expect(out.kept == 3)
        #expect(
            String(decoding: store.get("a.jsonl")!, as: UTF8.self) == """
                {"tenant":"t1","user":{"id":"u-1"}}
                {"tenant":7,"user":{"id":"u\\u002d1"}}
                {"tenant":null,"user":{"id":"u-1"}}
                """)
    }

    /// Lines of `mixedJSONL` whose subject is u-1 removed, every other byte kept.
    static let mixedWithoutU1 =
        "{\"item\":{\"id\":\"u-1\"},\"user\":{\"id\":\"u-12\"},\"n\":2}\r\n"
        + "\n"
        + "   \t\r\n"
        + "{\"user\":{\"profile\":{\"id\":\"u-1\"},\"id\":\"u-2\"},\"note\":\"{\\\"user\\\":{\\\"id\\\":\\\"u-1\\\"}}\"}\n"
        + "{\"user\":{\"id\":null}}\r\n"
        + "\r\n"
        + "{\"user\":{\"id\":\"u-3\"}}"

    @Test(arguments: [1, 3, 16, 1 << 20])
    func eraseKeepsEveryOtherByte(chunkSize: Int) async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", mixedJSONL.bytes)
        let out = try await erase(JSONLinesFormat(chunkSize: chunkSize), store, "a.jsonl", options("user.id"), [key("u-1")])
        #expect(out.dropped == [key("u-1"): 2])
        #expect(out.kept == 4)
        #expect(out.written != nil)
        #expect(store.get("a.jsonl") == Self.mixedWithoutU1.bytes)
        #expect(out.written?.size == Int64(Self.mixedWithoutU1.utf8.count))
    }

    @Test func droppingTheLastLineWithoutNewline() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", "{\"id\":\"a\"}\r\n{\"id\":\"b\"}".bytes)
        _ = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), [key("b")])
        #expect(store.get("a.jsonl") == "{\"id\":\"a\"}\r\n".bytes)
    }

    @Test func nothingMatchedWritesNothing() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", mixedJSONL.bytes)
        let before = try await store.head("a.jsonl")
        let out = try await erase(JSONLinesFormat(), store, "a.jsonl", options("user.id"), [key("u-4"), key("item")])
        #expect(out.written == nil)
        #expect(out.droppedTotal == 0)
        #expect(out.kept == 6)
        #expect(store.commits == 0)
        #expect(try await store.head("a.jsonl") == before)
    }

    @Test func everyRecordDroppedLeavesAnEmptyObject() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", "{\"id\":\"a\"}\n\n{\"id\":\"a\"}\n".bytes)
        let out = try await erase(JSONLinesFormat(), store, "a.jsonl", options("id"), [key("a")])
        #expect(out.kept == 0)
        #expect(out.removed == false)
        #expect(out.written?.size == 1)
        #expect(store.get("a.jsonl") == "\n".bytes)
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        let content: String
        let line: Int
        let messageHas: String
        var testDescription: String { messageHas }
    }

    static let badInputs: [BadInput] = [
        .init(content: "{\"user_id\":\"s3cret\"}\n{\"user_id\":\"s3cret\"\n", line: 2, messageHas: "malformed JSON: unexpected end"),
        .init(content: "{\"user_id\":\"s3cret\"}\n\n{\"user_id\":\"s3cret\"}}\n", line: 3, messageHas: "unexpected data after the end"),
        .init(content: "{\"user_id\":\"s3cret}\n", line: 1, messageHas: "unterminated string"),
        .init(content: "{\"user_id\":\"s3\u{01}cret\"}\n", line: 1, messageHas: "control character"),
        .init(content: "{\"user_id\":\"s3cret\"}\r\n{\"item_id\":\"s3cret\"}\r\n", line: 2, messageHas: "no subject field `user_id`"),
        .init(content: "{\"user_id\":true}", line: 1, messageHas: "subject field `user_id` holds a boolean"),
        .init(content: "{\"user_id\":{\"id\":\"s3cret\"}}", line: 1, messageHas: "subject field `user_id` holds an object"),
        .init(content: "{\"user_id\":[\"s3cret\"]}", line: 1, messageHas: "subject field `user_id` holds an array"),
        .init(content: "{\"user_id\":\"s3cret\",\"user_id\":\"s3cret2\"}", line: 1, messageHas: "appears twice"),
        .init(content: "[1,2]\n", line: 1, messageHas: "no subject field"),
    ]

    @Test(arguments: badInputs)
    func badInputIsCorruptWithLocation(_ bad: BadInput) async throws {
        for chunkSize in [2, 1 << 20] {
            let store = FaultInjectingStore()
            store.set("raw/x.jsonl", bad.content.bytes)
            let e = await letheError { _ = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, "raw/x.jsonl", options("user_id")) }
            #expect(e?.code == .corrupt)
            #expect(e?.location == "raw/x.jsonl:line \(bad.line)")
            #expect(e?.message.contains(bad.messageHas) == true, "\(String(describing: e))")
            #expect(e?.description.contains("s3cret") == false)
            // Erase refuses too, leaving the object untouched.
            let e2 = await letheError { _ = try await erase(JSONLinesFormat(chunkSize: chunkSize), store, "raw/x.jsonl", options("user_id"), [key("s3cret")]) }
            #expect(e2?.code == .corrupt)
            #expect(store.get("raw/x.jsonl") == bad.content.bytes)
            #expect(store.commits == 0)
        }
    }

    /// Subjects are keyed a batch at a time (two HMACs at once while the keyer's cache is bypassed):
    /// near-unique ids, then ids that repeat, then blank lines, records without a subject and a
    /// normalising keyer's non-ASCII ids visit the same rows with the same keys as keying each alone; a
    /// malformed line visits every record before it, then fails.
    @Test(arguments: [false, true]) func batchedKeysAreThoseOfEachRecordInOrder(normalising: Bool) async throws {
        var lines: [String] = []
        var expected: [(Int64, SubjectKey)] = []
        let normalization: Normalization = normalising ? .nfc : .none
        let reference = SubjectKeyer(hasher: hasher, normalization: normalization, adaptive: false)
        var record: Int64 = 0
        for i in 0..<60_000 {
            let id = i < 45_000 ? "user-\(i)" : i % 7 == 0 ? "cafe\u{301}-\(i % 50)" : "hot-\(i % 100)"
            if i % 1000 == 999 { lines.append("") }
            if i % 777 == 0 {
                lines.append("{\"user_id\":null,\"n\":\(i)}")
            } else {
                lines.append("{\"n\":\(i),\"user_id\":\"\(id)\"}")
                expected.append((record, reference.key(Array(id.utf8))))
            }
            record += 1
        }
        let store = FaultInjectingStore()
        store.set("a.jsonl", (lines.joined(separator: "\n") + "\n").bytes)
        let keyer = SubjectKeyer(hasher: hasher, normalization: normalization, adaptive: true)
        var seen: [(Int64, SubjectKey)] = []
        let info = try await store.head("a.jsonl")!
        let summary = try await JSONLinesFormat(chunkSize: 1 << 16).scan(info, in: store, options: options("user_id"), keyer: keyer) {
            seen.append(($0, $1))
        }
        #expect(summary.records == record)
        #expect(seen.count == expected.count)
        #expect(seen.map(\.0) == expected.map(\.0), "rows differ")
        #expect(seen.map(\.1) == expected.map(\.1), "keys differ")
        #expect(keyer.misses > 45_000)  // the near-unique ids were not all cached

        // A malformed record after 1,000 good ones (mid-batch): each of them is visited, once, then the error.
        var bad = Array(lines.prefix(1000))
        bad.append("{\"user_id\":")
        store.set("b.jsonl", (bad.joined(separator: "\n") + "\n").bytes)
        var before: [Int64] = []
        let infoB = try await store.head("b.jsonl")!
        let e = await letheError {
            _ = try await JSONLinesFormat().scan(infoB, in: store, options: options("user_id"), keyer: keyer) { row, _ in before.append(row) }
        }
        #expect(e?.location == "b.jsonl:line 1001")  // the blank line counts as a line
        // (the first 1,000 lines: records 0–998 and a blank line; records 0 and 777 have no subject)
        let wanted = expected.prefix { $0.0 < 999 }.map(\.0)
        #expect(before.count == 997 && before == wanted)
    }

    /// A scan reads the lines a chunk holds whole together (`JSONFieldScanner.scanLines`): for every chunk
    /// size, an object of records with escaped, numeric, empty and null subjects, decoys at other paths,
    /// blank, whitespace-only and `{}` lines, CRLF endings, leading whitespace and a last line without a
    /// newline visits the rows and keys, and counts the records, that classifying each line alone gives.
    @Test(arguments: [1, 3, 200, 4096, 1 << 20])
    func linesScannedTogetherVisitWhatEachLineAloneVisits(chunkSize: Int) async throws {
        var g = SplitMix64(seed: UInt64(chunkSize))
        var lines: [String] = []
        for i in 0..<3_000 {
            let id = ["\"u-\(g.next(500))\"", "\(g.next(900))", "\"caf\\u00e9-\(g.next(9))\"", "\"\"", "null", "\"\\\"q\\\\\""][g.next(6)]
            let pad = String(repeating: "y", count: g.next(g.chance(5) ? 400 : 70))
            switch g.next(20) {
            case 0: lines.append("")
            case 1: lines.append(String(repeating: [" ", "\t", "\r"][g.next(3)], count: 1 + g.next(3)))
            case 2: lines.append(" {} ")
            case 3: lines.append("{\"ref\":{\"user\":{\"id\":\"decoy\"}},\"user\":{\"id\":\(id)},\"pad\":\"\(pad)\"}\r")
            default: lines.append(String(repeating: " ", count: g.next(3)) + "{\"n\":\(i),\"pad\":\"\(pad)\",\"user\":{\"email\":\"e\",\"id\":\(id)}}")
            }
        }
        lines.append("{\"user\":{\"id\":\"last\"}}")  // no final newline
        let text = lines.joined(separator: "\n")
        // The reference: each line alone.
        let opts = options("user.id")
        let alone = JSONLineKeyer(options: opts, keyer: SubjectKeyer(hasher: hasher), objectKey: "a.jsonl")
        var want: [(Int64, SubjectKey)] = []
        var records: Int64 = 0
        for (i, line) in lines.enumerated() {
            let outcome = try Array(line.utf8).withUnsafeBytes { try alone.classify($0, Int64(i + 1)) }
            switch outcome {
            case .blank: continue
            case .noSubject: break
            case .subject(let k): want.append((records, k))
            }
            records += 1
        }
        let store = FaultInjectingStore()
        store.set("a.jsonl", text.bytes)
        let r = try await scan(JSONLinesFormat(chunkSize: chunkSize), store, "a.jsonl", opts)
        #expect(r.summary.records == records)
        #expect(r.ordinals == want.map(\.0), "rows differ")
        #expect(r.keys == want.map(\.1), "keys differ")
        #expect(want.count > 1_500 && want.last?.1 == key("last"))
    }

    /// A plain object in a local folder is scanned from the store's mapped windows (no copy): lines
    /// cut by a window's end, a last line without a newline and a malformed line past the first
    /// window give the rows, keys, counts and error location of a scan of copied chunks.
    @Test func aMappedObjectScansAsCopiedChunksDo() async throws {
        let root = NSTemporaryDirectory() + "lethe-mapped-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var text = ""
        for i in 0..<12_000 {
            let pad = String(repeating: "x", count: (i * 37) % 90)
            text += i % 500 == 3 ? "\n" : "{\"pad\":\"\(pad)\",\"user\":{\"id\":\"u-\\u00e9-\(i % 3000)\"},\"n\":\(i)}\n"
        }
        text += "{\"user\":{\"id\":\"last\"}}"
        #expect(text.utf8.count > 4 * (256 << 10))  // mapped from 256 KiB on
        let local = LocalObjectStore(root: root)
        _ = FileManager.default.createFile(atPath: root + "/a.jsonl", contents: Data(text.utf8))
        let copied = FaultInjectingStore()
        copied.set("a.jsonl", text.bytes)
        let format = JSONLinesFormat(chunkSize: 64 << 10)
        let viaChunks = try await scan(format, copied, "a.jsonl", options("user.id"))
        var rows: [(Int64, SubjectKey)] = []
        let info = try #require(try await local.head("a.jsonl"))
        let summary = try await format.scan(info, in: local, options: options("user.id"), keyer: SubjectKeyer(hasher: hasher)) { rows.append(($0, $1)) }
        #expect(local.counters.mappedReads.load(ordering: .relaxed) == 1)
        #expect(rows.count == viaChunks.rows.count && rows.count > 11_000)
        #expect(rows.map(\.0) == viaChunks.ordinals, "rows differ")
        #expect(rows.map(\.1) == viaChunks.keys, "keys differ")
        #expect(rows.last?.1 == key("last"))
        #expect(summary.records == viaChunks.summary.records)
        #expect(summary.bytes == Int64(text.utf8.count) && viaChunks.summary.bytes == summary.bytes)

        var bad = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        bad[9_000] = "{\"user\":{\"id\":\"s3cret\"},"
        let badText = bad.joined(separator: "\n")
        _ = FileManager.default.createFile(atPath: root + "/b.jsonl", contents: Data(badText.utf8))
        let infoB = try #require(try await local.head("b.jsonl"))
        let e = await letheError {
            _ = try await format.scan(infoB, in: local, options: options("user.id"), keyer: SubjectKeyer(hasher: hasher)) { _, _ in }
        }
        #expect(e?.code == .corrupt)
        #expect(e?.location == "b.jsonl:line 9001")
        #expect(local.counters.mappedReads.load(ordering: .relaxed) == 2)
    }

    @Test func errorAfterADroppedRecordAbortsTheWrite() async throws {
        let store = FaultInjectingStore()
        let content = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\n{\"id\":\"c\"}\n"
        store.set("a.jsonl", content.bytes)
        let e = await letheError { _ = try await erase(JSONLinesFormat(chunkSize: 4), store, "a.jsonl", options("id"), [key("a")]) }
        #expect(e?.location == "a.jsonl:line 3")
        #expect(store.get("a.jsonl") == content.bytes)
        #expect(store.commits == 0)
    }

    @Test func unreadableObjectIsCorrupt() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", mixedJSONL.bytes)
        store.failReads(afterChunks: 2, key: "a.jsonl")
        let e = await letheError { _ = try await scan(JSONLinesFormat(chunkSize: 8), store, "a.jsonl", options("user.id")) }
        #expect(e?.code == .corrupt)
        #expect(e?.location == "a.jsonl")
        let e2 = await letheError { _ = try await erase(JSONLinesFormat(chunkSize: 8), store, "a.jsonl", options("user.id"), [key("u-1")]) }
        #expect(e2?.code == .corrupt)
        #expect(store.get("a.jsonl") == mixedJSONL.bytes)
    }

    @Test func concurrentChangeIsAConflict() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", mixedJSONL.bytes)
        let stale = try await store.head("a.jsonl")!
        store.set("a.jsonl", mixedJSONL.bytes + "\n{\"user\":{\"id\":\"u-9\"}}\n".bytes)
        let e = await letheError {
            _ = try await JSONLinesFormat().erase(stale, in: store, options: options("user.id"), keyer: SubjectKeyer(hasher: hasher), drop: [key("u-1")])
        }
        #expect(e?.code == .conflict)
        #expect(store.commits == 0)
    }

    @Test func lineLongerThanTheLimitIsCorrupt() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl", ("{\"id\":\"a\"}\n{\"id\":\"" + String(repeating: "x", count: 100) + "\"}\n").bytes)
        let e = await letheError { _ = try await scan(JSONLinesFormat(chunkSize: 8, maxLineLength: 64), store, "a.jsonl", options("id")) }
        #expect(e?.location == "a.jsonl:line 2")
    }

    @Test func zstdIsRefusedClearly() async throws {
        let store = FaultInjectingStore()
        store.set("a.jsonl.zst", [0x28, 0xB5, 0x2F, 0xFD])
        let e = await letheError { _ = try await scan(JSONLinesFormat(), store, "a.jsonl.zst", options("id")) }
        #expect(e?.message.contains("zstd") == true)
    }

    @Test func factoryNamesFormats() {
        #expect(Formats.named("jsonl")?.name == "jsonl")
        #expect(Formats.named("csv")?.name == "csv")
        #expect(Formats.named("avro") == nil)
    }
}
