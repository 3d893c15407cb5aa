import Foundation
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting

let sampleCSV =
    "ts,user_id,note\r\n"
    + "1,u-1,plain\r\n"
    + "2,\"u-12\",\"has, comma\"\n"
    + "\r\n"
    + "3,u-1,\"multi\nline \"\"quoted\"\"\"\r\n"
    + "4,,no subject\n"
    + "5,\"u-\"\"q\",x\n"
    + "6,u-2,\"last\""

struct CSVFormatTests {
    @Test(arguments: [1, 2, 5, 13, 1 << 20])
    func scanAcrossChunkBoundaries(chunkSize: Int) async throws {
        let store = FaultInjectingStore()
        store.set("t.csv", sampleCSV.bytes)
        let r = try await scan(CSVFormat(chunkSize: chunkSize), store, "t.csv", options("user_id"))
        #expect(r.keys == [key("u-1"), key("u-12"), key("u-1"), key("u-\"q"), key("u-2")])
        #expect(r.ordinals == [0, 1, 2, 4, 5])
        #expect(r.summary.records == 6)
        #expect(r.summary.recordsWithoutSubject == 1)
    }

    @Test(arguments: [1, 3, 1 << 20])
    func eraseKeepsHeaderAndRecordsByteForByte(chunkSize: Int) async throws {
        let store = FaultInjectingStore()
        store.set("t.csv", sampleCSV.bytes)
        let out = try await erase(CSVFormat(chunkSize: chunkSize), store, "t.csv", options("user_id"), [key("u-1"), key("u-2")])
        #expect(out.dropped == [key("u-1"): 2, key("u-2"): 1])
        #expect(out.kept == 3)
        #expect(
            String(decoding: store.get("t.csv")!, as: UTF8.self) == "ts,user_id,note\r\n"
                + "2,\"u-12\",\"has, comma\"\n"
                + "\r\n"
                + "4,,no subject\n"
                + "5,\"u-\"\"q\",x\n")
    }

    @Test func nothingMatchedWritesNothing() async throws {
        let store = FaultInjectingStore()
        store.set("t.csv", sampleCSV.bytes)
        let out = try await erase(CSVFormat(), store, "t.csv", options("user_id"), [key("u-")])
        #expect(out.written == nil)
        #expect(store.commits == 0)
    }

    @Test func compositeAndDelimiterAndBOM() async throws {
        let store = FaultInjectingStore()
        let content = "\u{FEFF}tenant;user.id;v\nt1;u-1;a\nt2;u-1;b\n;u-1;c\n"
        store.set("t.csv", content.bytes)
        var opts = options("tenant", "user\\.id")
        opts.delimiter = UInt8(ascii: ";")
        let r = try await scan(CSVFormat(), store, "t.csv", opts)
        #expect(r.keys == [key(parts: ["t1", "u-1"]), key(parts: ["t2", "u-1"])])
        #expect(r.summary.recordsWithoutSubject == 1)
        // A dotted path names the column with the dotted name, too.
        var opts2 = options("user.id")
        opts2.delimiter = UInt8(ascii: ";")
        #expect(try await scan(CSVFormat(), store, "t.csv", opts2).keys == [key("u-1"), key("u-1"), key("u-1")])
        _ = try await erase(CSVFormat(), store, "t.csv", opts, [key(parts: ["t2", "u-1"])])
        #expect(store.get("t.csv") == "\u{FEFF}tenant;user.id;v\nt1;u-1;a\n;u-1;c\n".bytes)
    }

    @Test func tabDelimitedQuotedHeader() async throws {
        let store = FaultInjectingStore()
        store.set("t.tsv", "\"id\"\t\"x\"\nu-1\t\"a\tb\"\n".bytes)
        var opts = options("id")
        opts.delimiter = 0x09
        #expect(try await scan(CSVFormat(), store, "t.tsv", opts).keys == [key("u-1")])
    }

    @Test func emptyObjectHasNoRecords() async throws {
        let store = FaultInjectingStore()
        store.set("t.csv", [])
        let r = try await scan(CSVFormat(), store, "t.csv", options("id"))
        #expect(r.summary.records == 0)
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        let content: String
        let line: Int
        let messageHas: String
        var testDescription: String { messageHas }
    }

    static let badInputs: [BadInput] = [
        .init(content: "id,v\nsecret1,a\nsecret2,b,c\n", line: 3, messageHas: "expected 2 fields (as in the header), found 3"),
        .init(content: "id,v\r\n\"se\ncret\",a\r\nsecret2\r\n", line: 4, messageHas: "expected 2 fields (as in the header), found 1"),
        .init(content: "id,v\nsecret1,a\nsecret2,\"b\nc,d\n", line: 3, messageHas: "unclosed quote"),
        .init(content: "user,v\nsecret1,a\n", line: 1, messageHas: "no subject column `id`"),
        .init(content: "id,v,id\nsecret1,a,b\n", line: 1, messageHas: "appears 2 times"),
        .init(content: "id,v\n\"secret1\"x,a\n", line: 2, messageHas: "after the closing quote"),
    ]

    @Test(arguments: badInputs)
    func badInputIsCorruptWithLocation(_ bad: BadInput) async throws {
        for chunkSize in [1, 4, 1 << 20] {
            let store = FaultInjectingStore()
            store.set("g/t.csv", bad.content.bytes)
            let e = await letheError { _ = try await scan(CSVFormat(chunkSize: chunkSize), store, "g/t.csv", options("id")) }
            #expect(e?.code == .corrupt)
            #expect(e?.location == "g/t.csv:line \(bad.line)", "\(String(describing: e))")
            #expect(e?.message.contains(bad.messageHas) == true, "\(String(describing: e))")
            #expect(e?.description.contains("secret") == false)
            let e2 = await letheError { _ = try await erase(CSVFormat(chunkSize: chunkSize), store, "g/t.csv", options("id"), [key("secret1")]) }
            #expect(e2?.code == .corrupt)
            #expect(store.get("g/t.csv") == bad.content.bytes)
            #expect(store.commits == 0)
        }
    }

    /// Random CSV: erase output equals the records kept, as generated, for random chunk sizes.
    @Test func randomizedEraseMatchesModel() async throws {
        var rng = SplitMix(seed: 42)
        for round in 0..<60 {
            var records: [(id: String, text: String)] = []
            var text = "id,payload\n"
            let idField = ["u-1", "u-12", "u-2", "\"u-1\"", "\"u-12\""]
            for _ in 0..<rng.next(40) {
                let raw = idField[rng.next(idField.count)]
                let id = raw.replacingOccurrences(of: "\"", with: "")
                let payload = ["x", "\"a,b\"", "\"l1\nl2\"", "\"q\"\"q\"", "", "\"\""][rng.next(6)]
                let end = ["\n", "\r\n"][rng.next(2)]
                let rec = "\(raw),\(payload)\(end)"
                records.append((id, rec))
                text += rec
            }
            if rng.chance(50), let last = records.popLast() {
                // Drop the final line ending ("\r\n" is one Character).
                text.removeLast()
                records.append((last.id, String(last.text.dropLast())))
            }
            let store = FaultInjectingStore()
            store.set("r.csv", text.bytes)
            let out = try await erase(CSVFormat(chunkSize: 1 + rng.next(9)), store, "r.csv", options("id"), [key("u-1")])
            let kept = records.filter { $0.id != "u-1" }
            #expect(out.kept == Int64(kept.count), "round \(round)")
            if out.written != nil {
                #expect(String(decoding: store.get("r.csv")!, as: UTF8.self) == "id,payload\n" + kept.map(\.text).joined(), "round \(round)")
            } else {
                #expect(kept.count == records.count)
            }
        }
    }
}
