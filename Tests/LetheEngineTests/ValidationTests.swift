import Testing
import Foundation
import LetheEngine
import LetheCore
import LetheFormats
import LetheStorage

// Issue 15: `schema:` validation and the quarantine writer.

private let schemaYAML = """
    lake: ./lake
    datasets:
      - name: users
        path: users
        format: jsonl
        subject: user_id
        pii: [email]
        schema:
          user_id: {type: string, required: true}
          age: {type: int}
          country: {enum: [DE, FR]}
          email: {regex: "[^@ ]+@[^@ ]+"}
      - name: people
        path: people
        format: csv
        subject: user_id
        schema:
          user_id: {type: string, required: true}
          age: {type: int, required: true}
          ok: {type: bool}
    """

private func dataset(_ name: String) throws -> DatasetSpec {
    try #require(try LakeConfig.parse(schemaYAML, file: "lethe.yaml", baseDir: "/tmp").dataset(named: name))
}

@Test func jsonRecordsAreCheckedRuleByRuleAndTheQuarantineHoldsNoValue() async throws {
    let d = try dataset("users")
    let input =
        #"{"user_id":"u-1","age":41,"country":"DE","email":"a@x.org"}"# + "\n"  // valid
        + #"{"user_id":"u-2","age":4.5,"country":"US","email":"secret-b"}"# + "\n"  // type, enum, regex
        + "\n"
        + #"{"age":3}"# + "\n"  // required
        + #"{"user_id":"u-4", oops}"# + "\n"  // not JSON
        + #"{"user_id":null,"email":null}"#  // required (null)
    let result = try DatasetValidator(dataset: d).validate(Array(input.utf8), name: "in.jsonl")
    #expect(result.records == 5 && result.rejectedRecords == 4)
    #expect(
        result.violations == [
            SchemaViolation(line: 2, field: "age", rule: "type:int"), SchemaViolation(line: 2, field: "country", rule: "enum"),
            SchemaViolation(line: 2, field: "email", rule: "regex"), SchemaViolation(line: 4, field: "user_id", rule: "required"),
            SchemaViolation(line: 5, field: "-", rule: "json"), SchemaViolation(line: 6, field: "user_id", rule: "required"),
        ])
    #expect(String(decoding: result.accepted, as: UTF8.self) == #"{"user_id":"u-1","age":41,"country":"DE","email":"a@x.org"}"# + "\n\n")

    let store = InMemoryObjectStore()
    let summary = try await QuarantineWriter(store: store).write(result, dataset: d, run: "r1")
    #expect(summary.quarantined == 4 && summary.accepted == 1 && summary.byRule["required"] == 2)
    #expect(summary.recordsObject == "_quarantine/users/r1/records.jsonl" && summary.reasonsObject == "_quarantine/users/r1/reasons.jsonl")
    let reasons = String(decoding: try await store.read("_quarantine/users/r1/reasons.jsonl"), as: UTF8.self)
    #expect(reasons.hasPrefix(#"{"line":2,"field":"age","rule":"type:int"}"# + "\n"))
    #expect(!reasons.contains("secret-b") && !reasons.contains("u-2") && !reasons.contains("US"))
    let quarantined = String(decoding: try await store.read("_quarantine/users/r1/records.jsonl"), as: UTF8.self)
    #expect(quarantined.split(separator: "\n").count == 2 && quarantined.contains("secret-b"))
    // The records that are not JSON, or lack the subject field, are kept apart (indexing could not read them).
    #expect(summary.unparsedObject == "_quarantine/users/r1/unparsed.jsonl")
    #expect(try await store.read("_quarantine/users/r1/unparsed.jsonl") == Array((#"{"age":3}"# + "\n" + #"{"user_id":"u-4", oops}"# + "\n").utf8))
    // A run id is written once: the same run again is refused, nothing overwritten.
    await #expect(throws: (any Error).self) { _ = try await QuarantineWriter(store: store).write(result, dataset: d, run: "r1") }
    // Nothing rejected: nothing written.
    let clean = try DatasetValidator(dataset: d).validate(Array(#"{"user_id":"u"}"#.utf8), name: "c")
    let none = try await QuarantineWriter(store: store).write(clean, dataset: d, run: "r2")
    let reasons2 = try await store.head("_quarantine/users/r2/reasons.jsonl")
    #expect(none.quarantined == 0 && none.recordsObject == nil && reasons2 == nil)
}

@Test func csvRecordsAreCheckedByHeaderAndTheQuarantineKeepsTheHeader() async throws {
    let d = try dataset("people")
    let input = "user_id,age,ok\nu-1,41,true\nu-2,x,maybe\n,3,false\nu-4,5\n"
    let result = try DatasetValidator(dataset: d).validate(Array(input.utf8), name: "in.csv")
    #expect(result.records == 4 && result.rejectedRecords == 3)
    #expect(
        result.violations == [
            SchemaViolation(line: 3, field: "age", rule: "type:int"), SchemaViolation(line: 3, field: "ok", rule: "type:bool"),
            SchemaViolation(line: 4, field: "user_id", rule: "required"), SchemaViolation(line: 5, field: "-", rule: "fields"),
        ])
    #expect(String(decoding: result.accepted, as: UTF8.self) == "user_id,age,ok\nu-1,41,true\n")
    #expect(String(decoding: result.rejected, as: UTF8.self) == "user_id,age,ok\nu-2,x,maybe\n,3,false\n")
    #expect(String(decoding: result.unparsed, as: UTF8.self) == "user_id,age,ok\nu-4,5\n" && result.unparsedRecords == 1)
}

@Test func aDatasetWithoutASchemaCannotBeValidated() throws {
    let c = try LakeConfig.parse("lake: l\ndatasets:\n  - {name: a, path: a, format: jsonl, subject: id}\n", file: "lethe.yaml", baseDir: "/t")
    #expect(throws: LetheError.self) { _ = try DatasetValidator(dataset: c.datasets[0]) }
}
