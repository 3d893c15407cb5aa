import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LetheFormats
import LetheStorage
import LetheTestSupport
import Testing

// Issue 15: `schema:` validation of Parquet files (`ParquetSchemaValidator`): rows checked rule by rule
// on files pyarrow writes, the failing rows quarantined as a Parquet file pyarrow reads back with the
// input's types, and a forget reaching that quarantine.

private let yaml = """
    lake: ./lake
    datasets:
      - name: events
        path: events
        format: parquet
        subject: user_id
        pii: [email]
        schema:
          user_id: {type: string, required: true}
          age: {type: int}
          score: {type: number}
          country: {enum: [DE, FR]}
          email: {regex: "[^@ ]+@[^@ ]+"}
          active: {type: bool}
          day: {type: string, regex: "2024-.*"}
          amount: {type: number}
          qty: {type: int}
          rank: {type: string}
    """

/// Eight rows in two row groups of four (pyarrow, its defaults: snappy, dictionaries; `country`'s
/// entries recur across rows, and entry 0 is `DE` in the first group, `US` in the second: a verdict
/// kept per entry must not outlive its chunk). Rows 1 and 7 pass; row 2 breaks `enum` and `regex`, 3
/// `required`, 4 `type:string` (an integer in `rank`), 5 `type:number` (NaN) and `enum`, 6 `enum`, 8
/// `regex` (a DATE's text).
private let writer = """
    import sys, datetime, decimal
    import pyarrow as pa, pyarrow.parquet as pq
    D = decimal.Decimal
    t = pa.table({
      "user_id": pa.array(["u-1", "u-2", None, "u-4", "u-5", "u-6", "u-7", "u-8"]),
      "age": pa.array([41, 7, 3, None, 5, 6, 7, 8], pa.int64()),
      "score": pa.array([1.5, 2.0, 3.0, 4.0, float("nan"), 6.0, 7.0, 8.0], pa.float64()),
      "country": pa.array(["DE", "US", "DE", "FR", "US", "US", "FR", "DE"]),
      "email": pa.array(["a@x.org", "secret-b", None, "d@x.org", "e@x.org", "f@x.org", "g@x.org", "h@x.org"]),
      "active": pa.array([True, False, True, None, True, False, True, True]),
      "day": pa.array([datetime.date(2024, 1, d) for d in range(1, 8)] + [datetime.date(2023, 5, 1)]),
      "amount": pa.array([D("1.25"), D("2.00"), D("3.00"), D("4.00"), D("5.00"), D("6.50"), D("7.00"), D("8.00")], pa.decimal128(5, 2)),
      "qty": pa.array([D(n) for n in range(1, 9)], pa.decimal128(5, 0)),
      "rank": pa.array([None, None, None, 9, None, None, None, None], pa.int32()),
    })
    pq.write_table(t, sys.argv[1], row_group_size=4)
    """

private let reader = """
    import sys, json, pyarrow.parquet as pq
    out = {}
    for name in sys.argv[1:]:
        t = pq.read_table(name)
        out[name] = {"users": t.column("user_id").to_pylist(), "types": [str(f.type) for f in t.schema], "rows": t.num_rows}
    print(json.dumps(out))
    """

private func events(_ text: String = yaml) throws -> DatasetSpec {
    try #require(try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/tmp").dataset(named: "events"))
}

private func folder() throws -> String {
    let dir = NSTemporaryDirectory() + "lethe-pq-validate-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A Parquet file pyarrow writes from `script` (its `sys.argv[1]` is the path).
private func pyarrowFile(_ script: String, _ dir: String, _ name: String = "in.parquet") throws -> [UInt8] {
    try Peers.python(["-c", script, dir + "/" + name], what: "writing a Parquet file with pyarrow")
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
}

private struct Read: Decodable {
    var users: [String?]
    var types: [String]
    var rows: Int
}

@Suite struct ParquetValidationTests {
    @Test func rowsAreCheckedRuleByRuleAndTheFailingRowsQuarantinedAsParquet() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try pyarrowFile(writer, dir)
        let d = try events()
        let result = try DatasetValidator(dataset: d).validate(input, name: "in.parquet")
        #expect(result.records == 8 && result.rejectedRecords == 6)
        #expect(
            result.violations == [
                SchemaViolation(line: 2, field: "country", rule: "enum"), SchemaViolation(line: 2, field: "email", rule: "regex"),
                SchemaViolation(line: 3, field: "user_id", rule: "required"), SchemaViolation(line: 4, field: "rank", rule: "type:string"),
                SchemaViolation(line: 5, field: "score", rule: "type:number"), SchemaViolation(line: 5, field: "country", rule: "enum"),
                SchemaViolation(line: 6, field: "country", rule: "enum"),
                SchemaViolation(line: 8, field: "day", rule: "regex"),
            ])

        let store = InMemoryObjectStore()
        let summary = try await QuarantineWriter(store: store).write(result, dataset: d, run: "r1")
        #expect(summary.quarantined == 6 && summary.accepted == 2 && summary.byRule["enum"] == 3)
        #expect(summary.recordsObject == "_quarantine/events/r1/records.parquet" && summary.reasonsObject == "_quarantine/events/r1/reasons.jsonl")
        let reasons = String(decoding: try await store.read("_quarantine/events/r1/reasons.jsonl"), as: UTF8.self)
        #expect(reasons.hasPrefix(#"{"line":2,"field":"country","rule":"enum"}"# + "\n"))
        #expect(!reasons.contains("secret-b") && !reasons.contains("US") && !reasons.contains("u-2"))

        // pyarrow reads both halves, with the input's types (nothing converted on the way).
        try Data(result.accepted).write(to: URL(fileURLWithPath: dir + "/ok.parquet"))
        try Data(try await store.read("_quarantine/events/r1/records.parquet")).write(to: URL(fileURLWithPath: dir + "/bad.parquet"))
        let text = try Peers.python(["-c", reader, dir + "/in.parquet", dir + "/ok.parquet", dir + "/bad.parquet"], what: "reading back with pyarrow")
        let read = try JSONDecoder().decode([String: Read].self, from: Data(text.utf8))
        let original = try #require(read[dir + "/in.parquet"])
        let ok = try #require(read[dir + "/ok.parquet"]), bad = try #require(read[dir + "/bad.parquet"])
        #expect(ok.users == ["u-1", "u-7"])
        #expect(bad.users == ["u-2", nil, "u-4", "u-5", "u-6", "u-8"])
        #expect(ok.types == original.types && bad.types == original.types)

        // A column of another type fails every row holding a value (`score` is DOUBLE, not a string).
        let asText = try ParquetSchemaValidator(
            schema: DatasetSchema(fields: [FieldRule(field: FieldPath("score"), type: .string)]), objectName: "in.parquet"
        ).validate(input)
        #expect(asText.rejectedRecords == 8 && asText.violations.allSatisfy { $0.field == "score" && $0.rule == "type:string" })
        // A DECIMAL of scale 2 is never an int (its text has a fraction, as a JSON writer gives it); of scale 0 always.
        let decimals = try ParquetSchemaValidator(
            schema: DatasetSchema(fields: [FieldRule(field: FieldPath("amount"), type: .int), FieldRule(field: FieldPath("qty"), type: .int)]),
            objectName: "in.parquet"
        ).validate(input)
        #expect(decimals.violations == (1...8).map { SchemaViolation(line: Int64($0), field: "amount", rule: "type:int") })
        // Every row passing: the input's bytes as they were, nothing to quarantine.
        let clean = try DatasetValidator(dataset: try events(lenientYAML())).validate(input, name: "in.parquet")
        #expect(clean.rejectedRecords == 0 && clean.violations.isEmpty && clean.accepted == input, "\(clean.violations)")
    }

    @Test func aMissingColumnBreaksColumnUnlessAHiveFolderGivesItAndGroupsAreRefused() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try pyarrowFile(
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            t = pa.table({"email": ["a@x", "b@x", None], "tags": pa.array([["a"], [], None], pa.list_(pa.string())),
                          "geo": pa.array([{"city": "B"}, {"city": None}, None], pa.struct([("city", pa.string())]))})
            pq.write_table(t, sys.argv[1])
            """, dir)
        let schema = DatasetSchema(fields: [FieldRule(field: FieldPath("user_id"), type: .string, required: true)])
        let v = try ParquetSchemaValidator(schema: schema, objectName: "in.parquet")
        let lacking = try v.validate(input)
        #expect(lacking.violations == (1...3).map { SchemaViolation(line: Int64($0), field: "user_id", rule: "column") })
        #expect(lacking.rejectedRecords == 3 && lacking.accepted != input)
        // The object's folder (`user_id=u-9/`) gives the field: every row holds it.
        let given = try v.validate(input, constants: [FieldPath("user_id"): .value(Array("u-9".utf8))])
        #expect(given.violations.isEmpty && given.accepted == input)
        // A folder value of null (`__HIVE_DEFAULT_PARTITION__`) breaks `required`.
        let null = try v.validate(input, constants: [FieldPath("user_id"): .null])
        #expect(null.violations.map(\.rule) == ["required", "required", "required"])
        // A struct's leaf is a column; the struct itself, and a list's element, are refused with the field named.
        let city = try ParquetSchemaValidator(
            schema: DatasetSchema(fields: [FieldRule(field: FieldPath("geo.city"), required: true)]), objectName: "in.parquet"
        ).validate(input)
        #expect(
            city.violations == [SchemaViolation(line: 2, field: "geo.city", rule: "required"), SchemaViolation(line: 3, field: "geo.city", rule: "required")])
        for field in ["geo", "tags"] {
            let rule = DatasetSchema(fields: [FieldRule(field: FieldPath(field), type: .string)])
            #expect(throws: LetheError.self) { _ = try ParquetSchemaValidator(schema: rule, objectName: "in.parquet").validate(input) }
        }
        let list = DatasetSchema(fields: [FieldRule(field: FieldPath("tags.list.element"), type: .string)])
        let e = #expect(throws: LetheError.self) { _ = try ParquetSchemaValidator(schema: list, objectName: "in.parquet").validate(input) }
        #expect(e?.code == .unsupported && e?.message.contains("tags.list.element") == true && e?.location == "in.parquet")
    }

    @Test func protectQuarantinesAPIIValueWithoutASubject() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try pyarrowFile(
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            pq.write_table(pa.table({"user_id": ["u-1", None, None], "email": ["a@x", "b@x", None]}), sys.argv[1])
            """, dir)
        let schema = DatasetSchema(fields: [FieldRule(field: FieldPath("email"), type: .string)])
        let subject = SubjectSpec("user_id")
        let keyer = SubjectKeyer(hasher: SubjectHasher(secret: Array(repeating: 7, count: 32)), normalization: .none)
        let check = ParquetSchemaValidator.SubjectCheck(pii: [FieldPath("email")], keyer: keyer, options: FormatOptions(subject: subject))
        let r = try ParquetSchemaValidator(schema: schema, objectName: "in.parquet").validate(input, subjectCheck: check)
        // Row 2 holds an e-mail and no subject; row 3 has neither (nothing to protect): it passes.
        #expect(r.violations == [SchemaViolation(line: 2, field: "email", rule: "subject")])
        #expect(r.rejectedRecords == 1)
        // Without the check (`lethe validate`), the same file passes.
        #expect(try ParquetSchemaValidator(schema: schema, objectName: "in.parquet").validate(input).violations.isEmpty)
    }

    /// The quarantine of a Parquet dataset is part of it: indexing finds the subject in
    /// `records.parquet`, a forget erases the row there (the other subjects' rows stay), verified clean.
    @Test func aForgetReachesTheParquetQuarantine() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = try pyarrowFile(writer, dir)
        let f = try Fixture(yaml)
        let d = try #require(f.lethe.config.dataset(named: "events"))
        let checked = try DatasetValidator(dataset: d).validate(input, name: "in.parquet")
        f.store.set("events/a.parquet", checked.accepted)
        _ = try await QuarantineWriter(store: f.store).write(checked, dataset: d, run: "i1")
        _ = try await f.lethe.index()
        let hits = try await f.lethe.locate(SubjectID("u-2"))
        #expect(hits.map(\.object.key) == ["_quarantine/events/i1/records.parquet"] && hits.allSatisfy { $0.object.dataset == "events" })
        #expect(try await f.lethe.locate(SubjectID("u-1")).map(\.object.key) == ["events/a.parquet"])

        let r = try await f.lethe.forget([SubjectID("u-2")], reason: "t", by: "alice")[0]
        _ = try await f.lethe.approve([r.id], by: "bob")
        let report = try await f.lethe.run()
        #expect(report.failed.isEmpty, "\(report.failed)")
        #expect(report.verifications.first?.clean == true)
        try Data(try await f.store.read("_quarantine/events/i1/records.parquet")).write(to: URL(fileURLWithPath: dir + "/bad.parquet"))
        let text = try Peers.python(["-c", reader, dir + "/bad.parquet"], what: "reading back with pyarrow")
        let read = try #require(try JSONDecoder().decode([String: Read].self, from: Data(text.utf8))[dir + "/bad.parquet"])
        #expect(read.users == [nil, "u-4", "u-5", "u-6", "u-8"])
    }
}

/// The schema with rules every row of `writer`'s file passes.
private func lenientYAML() -> String {
    yaml.replacingOccurrences(of: "country: {enum: [DE, FR]}", with: "country: {enum: [DE, FR, US]}")
        .replacingOccurrences(of: "user_id: {type: string, required: true}", with: "user_id: {type: string}")
        .replacingOccurrences(of: "email: {regex: \"[^@ ]+@[^@ ]+\"}", with: "email: {type: string}")
        .replacingOccurrences(of: "score: {type: number}", with: "score: {required: false}")
        .replacingOccurrences(of: "rank: {type: string}", with: "rank: {type: int}")
        .replacingOccurrences(of: "day: {type: string, regex: \"2024-.*\"}", with: "day: {type: string}")
}
