import Foundation
import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats
import Parquet
import LetheTesting

/// A small Parquet file: `v` INT64 and `tags` LIST<STRING>.
func parquetFile(values: [Int64], tags: [[String]]) throws -> [UInt8] {
    let schema = try ParquetSchema(
        root: .root([.leaf("v", .int64, .required), .list("tags", .required, element: .leaf("element", .byteArray, .required, logicalType: .string))]))
    var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
    var defs: [UInt16] = [], reps: [UInt16] = [], items: [[UInt8]] = []
    for t in tags {
        if t.isEmpty { defs.append(0); reps.append(0); continue }
        for (i, x) in t.enumerated() { defs.append(1); reps.append(i == 0 ? 0 : 1); items.append(Array(x.utf8)) }
    }
    _ = try w.writeRowGroup([
        ColumnData(values: .int64(values)),
        ColumnData(values: .byteArray(ByteArrayValues(items)), definitionLevels: defs, repetitionLevels: reps),
    ])
    _ = try w.close()
    return w.sink.bytes
}

/// Subject parts held in partition values (Hive `field=value` folders, Delta
/// `partitionValues`): taken from `FormatOptions.constants`, never looked up in the
/// records, and an object that wholly belongs to an erased subject is deleted.
@Suite struct PartitionTests {
    func hive(_ fields: String..., prefix: String = "lake/events") -> FormatOptions {
        var o = FormatOptions(subject: SubjectSpec(fields: fields.map(FieldPath.init)))
        o.partitions = .hive(prefix: prefix)
        return o
    }

    @Test func hiveFolderValues() {
        let v = FormatOptions.hiveValues("lake/events/year=2021/user_id=A%2FA/x=__HIVE_DEFAULT_PARTITION__/user.id=u%3D1/part=0.json", below: "lake/events")
        #expect(v[FieldPath("year")] == .value(Array("2021".utf8)))
        #expect(v[FieldPath("user_id")] == .value(Array("A/A".utf8)))
        #expect(v[FieldPath("x")] == .null)
        #expect(v[FieldPath("user.id")] == .value(Array("u=1".utf8)))
        #expect(v[FieldPath("part")] == nil)  // the file name is not a folder
        #expect(FormatOptions.hiveValues("other/user_id=u1/a.json", below: "lake/events").isEmpty)
        // Only subject fields become constants.
        let o = hive("user_id").resolved(for: "lake/events/year=2021/user_id=u1/a.json")
        #expect(o.constants == [FieldPath("user_id"): .value(Array("u1".utf8))])
    }

    // h6: a folder named in Latin-1 (`user_id=caf\xE9`) has the local store's key `user_id=caf\u{FFFD}E9` (each byte
    // that is not UTF-8 written U+FFFD and two hex digits). Its value is the byte E9, as for `user_id=caf%E9`; it
    // was the escape's own text, so `--hex 636166e9` found only the %-escaped twin and verified the subject clean
    // while the Latin-1 folder's rows stayed.
    @Test func hiveFolderValuesUndoTheStoresEscapeOfBytesThatAreNotUTF8() {
        let v = FormatOptions.hiveValues("lake/events/user_id=caf\u{FFFD}E9/a.json", below: "lake/events")
        #expect(v[FieldPath("user_id")] == .value([0x63, 0x61, 0x66, 0xE9]))
        // A literal U+FFFD in a name is escaped byte by byte by the store.
        let w = FormatOptions.hiveValues("lake/events/user_id=\u{FFFD}EF\u{FFFD}BF\u{FFFD}BD/a.json", below: "lake/events")
        #expect(w[FieldPath("user_id")] == .value([0xEF, 0xBF, 0xBD]))
        #expect(FormatOptions.hiveValues("lake/events/user_id=caf%E9/a.json", below: "lake/events")[FieldPath("user_id")] == .value([0x63, 0x61, 0x66, 0xE9]))
    }

    @Test func jsonLinesSubjectFromTheFolder() async throws {
        let s = FaultInjectingStore()
        let k = "lake/events/user_id=u-1/part-0.jsonl"
        s.set(k, Array("{\"n\":1}\n{\"n\":2,\"user_id\":\"u-1\"}\n\n{\"n\":3,\"user_id\":null}\n".utf8))
        let r = try await scan(JSONLinesFormat(), s, k, hive("user_id"))
        #expect(r.keys == [key("u-1"), key("u-1"), key("u-1")])  // the folder's value; a record may repeat it
        #expect(r.summary.records == 3)
        // Composite: the tenant from the folder, the user from the record.
        let c = try await scan(JSONLinesFormat(), s, k, hive("user_id", "n"))
        #expect(c.keys == ["1", "2", "3"].map { key(parts: ["u-1", $0]) })
        // A record naming another subject than its folder is ambiguous: refused, naming the line and field.
        s.set(k, Array("{\"n\":1}\n{\"n\":2,\"user_id\":\"someone-else\"}\n".utf8))
        let e = await letheError { _ = try await scan(JSONLinesFormat(), s, k, hive("user_id")) }
        #expect(
            e?.code == .corrupt && e?.description.contains("user_id=u-1/part-0.jsonl:line 2") == true
                && e?.description.contains("`user_id`") == true && e?.description.contains("someone-else") == false, "\(String(describing: e))")
        #expect(await letheError { _ = try await erase(JSONLinesFormat(), s, k, hive("user_id"), [key("u-1")]) }?.code == .corrupt)
        #expect(s.get(k) == Array("{\"n\":1}\n{\"n\":2,\"user_id\":\"someone-else\"}\n".utf8))
        // Malformed records are still found.
        s.set(k, Array("{\"n\":1}\n{oops\n".utf8))
        #expect(await letheError { _ = try await scan(JSONLinesFormat(), s, k, hive("user_id")) }?.code == .corrupt)
    }

    @Test func nullPartitionHasNoSubject() async throws {
        let s = FaultInjectingStore()
        let k = "lake/events/user_id=__HIVE_DEFAULT_PARTITION__/a.csv"
        s.set(k, Array("n,user_id\n1,\n2,\n".utf8))
        let r = try await scan(CSVFormat(), s, k, hive("user_id"))
        #expect(r.keys.isEmpty && r.summary.recordsWithoutSubject == 2)
        let out = try await erase(CSVFormat(), s, k, hive("user_id"), [key("u-9")])
        #expect(out.dropped.isEmpty && out.written == nil && !out.removed && s.get(k) != nil)
        // A record holding a subject in the null partition's folder would be no one's: refused, naming it.
        s.set(k, Array("n,user_id\n1,\n2,u-9\n".utf8))
        let e = await letheError { _ = try await scan(CSVFormat(), s, k, hive("user_id")) }
        #expect(e?.code == .corrupt && e?.description.contains("a.csv:line 3") == true && e?.description.contains("u-9") == false)
    }

    @Test func csvWithoutTheColumnAndComposite() async throws {
        let s = FaultInjectingStore()
        let k = "lake/events/tenant=t1/a.csv"
        s.set(k, Array("user,v\nu1,1\nu2,2\n,3\n".utf8))
        let r = try await scan(CSVFormat(), s, k, hive("tenant", "user"))
        #expect(r.keys == [key(parts: ["t1", "u1"]), key(parts: ["t1", "u2"])] && r.summary.recordsWithoutSubject == 1)
        let out = try await erase(CSVFormat(), s, k, hive("tenant", "user"), [key(parts: ["t1", "u1"])])
        #expect(out.dropped == [key(parts: ["t1", "u1"]): 1] && !out.removed)
        #expect(s.get(k) == Array("user,v\nu2,2\n,3\n".utf8))
    }

    /// Every record of an object in the subject's folder is the subject's: the object is
    /// deleted (with the `.crc` sidecar Spark writes), not rewritten empty.
    @Test(arguments: ["jsonl", "csv"]) func eraseDeletesTheSubjectsObject(format: String) async throws {
        let f = Formats.named(format)!
        let s = FaultInjectingStore()
        let k = "lake/events/user_id=u-1/part-0.\(format)", other = "lake/events/user_id=u-2/part-0.\(format)"
        let body = format == "csv" ? "v\n1\n2\n" : "{\"v\":1}\n{\"v\":2}\n"
        s.set(k, Array(body.utf8)); s.set(other, Array(body.utf8))
        s.set("lake/events/user_id=u-1/.part-0.\(format).crc", [1, 2, 3])
        let out = try await erase(f, s, k, hive("user_id"), [key("u-1")])
        #expect(out.removed && out.dropped == [key("u-1"): 2] && out.written == nil)
        #expect(s.get(k) == nil && s.get("lake/events/user_id=u-1/.part-0.\(format).crc") == nil)
        let keep = try await erase(f, s, other, hive("user_id"), [key("u-1")])
        #expect(!keep.removed && keep.kept == 2 && s.get(other) == Array(body.utf8))
    }

    @Test func parquetSubjectFromTheFolderAndListsOfOneSubject() async throws {
        let s = FaultInjectingStore()
        let k = "lake/events/user_id=u-1/part-0.parquet", other = "lake/events/user_id=u-2/part-0.parquet"
        let bytes = try parquetFile(values: [1, 2, 3], tags: [["a"], ["a", "a"], []])
        s.set(k, bytes); s.set(other, bytes)
        let r = try await scan(ParquetFormat(), s, k, hive("user_id"))
        #expect(r.keys == [key("u-1"), key("u-1"), key("u-1")] && r.summary.records == 3)
        // A composite of the folder and a list column holding one value per row (the cheap case).
        let c = try await scan(ParquetFormat(), s, k, hive("user_id", "tags.list.element"))
        #expect(c.ordinals == [0, 1] && c.keys == [key(parts: ["u-1", "a"]), key(parts: ["u-1", "a"])])
        let out = try await erase(ParquetFormat(), s, k, hive("user_id"), [key("u-1")])
        #expect(out.removed && out.dropped == [key("u-1"): 3] && s.get(k) == nil && s.get(other) == bytes)
        // A list holding two subjects in one row is refused by name, not quarantined as corrupt.
        s.set(k, try parquetFile(values: [1, 2], tags: [["a"], ["a", "b"]]))
        let e = await letheError { _ = try await scan(ParquetFormat(), s, k, options("tags.list.element")) }
        #expect(e?.code == .unsupported && e?.message.contains("tags.list.element") == true, "\(String(describing: e))")
        // A group named as the subject is refused by name, its leaves listed.
        let g = await letheError { _ = try await scan(ParquetFormat(), s, k, options("tags")) }
        #expect(g?.code == .unsupported && g?.message.contains("tags.list.element") == true, "\(String(describing: g))")
    }

    /// Delta-style constants given per object key.
    @Test func perObjectConstants() {
        var o = FormatOptions(subject: SubjectSpec(fields: [FieldPath("year"), FieldPath("id")]))
        o.partitions = .perObject(["t/a.parquet": [FieldPath("year"): .value(Array("2021".utf8))]])
        let r = o.resolved(for: "t/a.parquet")
        #expect(r.recordFields == [FieldPath("id")])
        #expect(o.resolved(for: "t/b.parquet").constants.isEmpty)
        #expect(hadoopChecksumKey("t/y=1/a.parquet") == "t/y=1/.a.parquet.crc" && hadoopChecksumKey("a") == ".a.crc")
    }
}
