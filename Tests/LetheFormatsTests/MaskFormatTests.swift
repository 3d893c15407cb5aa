import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting

// Issue 15: the record actions `.transform` and `.blankRecord` on JSON Lines and CSV bytes.

private let maskKey = MaskKey(installation: hasher)

private func mask(
    _ format: any RecordFormat, _ key: String, _ text: String, _ opts: FormatOptions, _ subject: String, _ action: RecordAction
) async throws -> (String, EraseOutcome) {
    let store = FaultInjectingStore()
    try await store.put(key, Array(text.utf8))
    let info = try #require(try await store.head(key))
    let out = try await format.erase(
        info, in: store, options: opts, keyer: SubjectKeyer(hasher: hasher),
        actions: EraseActions(bySubject: [hasher.key(for: SubjectID(subject)): action], maskKey: maskKey))
    return (String(decoding: store.get(key) ?? [], as: UTF8.self), out)
}

@Test func aJSONMaskReplacesWholeValuesOfAnyKindAndLeavesAbsentFieldsAbsent() async throws {
    let line = #"{"u":"a\u002d1","profile":{"tags":["x","}"],"deep":{"k":1}},"age":41,"ok":true}"#
    let (out, outcome) = try await mask(
        JSONLinesFormat(), "d/a.jsonl", line + "\n" + #"{"u":"b"}"# + "\n", options("u"), "a-1",
        .transform([FieldPath("u"): .hash, FieldPath("profile"): .redact, FieldPath("age"): .literal("n/a \"q\""), FieldPath("email"): .null]))
    let p = String(decoding: maskKey.pseudonym(Array("a-1".utf8)), as: UTF8.self)
    #expect(out == #"{"u":"\#(p)","profile":"[redacted]","age":"n/a \"q\"","ok":true}"# + "\n" + #"{"u":"b"}"# + "\n")
    #expect(outcome.transformed.values.reduce(0, +) == 1 && outcome.kept == 2 && outcome.droppedOrdinals.isEmpty)
    // The pseudonym is the escaped and the unescaped spelling's alike, and is not the subject key.
    #expect(p.count == 32 && !hasher.key(for: SubjectID("a-1")).hex.hasPrefix(p))
}

@Test func aCSVMaskQuotesWhatNeedsQuotesAndKeepsOtherFieldsBytes() async throws {
    let csv = "id,name,note\r\n\"a\",\"Ann \"\"A\"\"\",\"x,y\"\r\nb,Bob,z\r\n"
    let (out, _) = try await mask(
        CSVFormat(), "d/a.csv", csv, options("id"), "a", .transform([FieldPath("id"): .hash, FieldPath("name"): .literal("a \"b\"")]))
    let p = String(decoding: maskKey.pseudonym(Array("a".utf8)), as: UTF8.self)
    #expect(out == "id,name,note\r\n\(p),\"a \"\"b\"\"\",\"x,y\"\r\nb,Bob,z\r\n")
}

@Test func aBlankedJSONRecordIsAnEmptyObjectThatScansAsNoSubject() async throws {
    let (out, _) = try await mask(JSONLinesFormat(), "d/a.jsonl", "{\"u\":\"a\"}\r\n  \n{\"u\":\"b\"}", options("u"), "a", .blankRecord)
    #expect(out == "{}\r\n  \n{\"u\":\"b\"}")
    let store = FaultInjectingStore()
    try await store.put("d/b.jsonl", Array(out.utf8))
    let r = try await scan(JSONLinesFormat(), store, "d/b.jsonl", options("u"))
    #expect(r.summary.records == 2 && r.summary.recordsWithoutSubject == 1 && r.keys == [key("b")])
}

@Test func aMaskOfAnObjectWhoseSubjectIsItsFolderIsRefused() async throws {
    var opts = options("u")
    opts.partitions = .hive(prefix: "d")
    let store = FaultInjectingStore()
    try await store.put("d/u=a/x.jsonl", Array("{\"n\":1}\n".utf8))
    let info = try #require(try await store.head("d/u=a/x.jsonl"))
    let e = await letheError {
        _ = try await JSONLinesFormat().erase(
            info, in: store, options: opts, keyer: SubjectKeyer(hasher: hasher),
            actions: EraseActions(bySubject: [key("a"): .blankRecord], maskKey: maskKey))
    }
    #expect(e?.code == .unsupported && e?.message.contains("folder") == true)
    #expect(store.get("d/u=a/x.jsonl") == Array("{\"n\":1}\n".utf8))
}
