import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LetheFormats
import LetheStorage
import LetheRuntime
import LetheStream
import LetheTestSupport
import Testing

// Issue 15: `protect`/`ingest` check the dataset's `schema:` and quarantine what fails, and a forget
// reaches the quarantine (it is part of its dataset: `DatasetSpec.quarantinePrefix`).

private let yaml = """
    lake: ./lake
    datasets:
      - name: users
        path: users
        format: jsonl
        subject: user_id
        pii: [email, ip]
        schema:
          user_id: {type: string}
          age: {type: int}
          country: {enum: [DE, FR]}
      - name: people
        path: people
        format: csv
        subject: user_id
        pii: [email]
        schema:
          age: {type: int, required: true}
      - name: users2
        path: users2
        format: jsonl
        subject: user_id
    """

private struct QFixture {
    let f: Fixture
    let vault: Vault
    let lethe: Lethe

    init() throws {
        f = try Fixture(yaml)
        let folder = NSTemporaryDirectory() + "lethe-quarantine-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        vault = Vault(kek: try FileKeyEncryptionKey.load(path: folder + "/vault.key", create: true), state: f.lethe.meta, cacheSize: 100)
        var l = f.lethe
        l.vault = vault
        lethe = l
    }

    func crypter(_ name: String) throws -> RecordCrypter {
        let d = lethe.config.dataset(named: name)!
        let c = try RecordCrypter(
            dataset: d.name, format: d.format == .csv ? .csv(delimiter: d.delimiter) : .jsonl, mode: .protect, subject: d.subject!.fields,
            pii: d.pii, hasher: lethe.secrets.hasher, keys: vault)
        c.validator = try SchemaRecordValidator(dataset: d, name: "in")
        return c
    }

    /// Protects `text` a few bytes at a time (records straddle the chunks).
    func protect(_ c: RecordCrypter, _ text: String, chunk: Int = 7) async throws -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = [], pending: [UInt8] = []
        var at = 0
        while true {
            let end = min(at + chunk, bytes.count)
            pending += bytes[at..<end]
            at = end
            let used = try await c.process(pending, isFinal: at == bytes.count, into: &out)
            pending.removeFirst(used)
            if at == bytes.count { break }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private func rec(_ u: String, _ email: String, age: String = "3", country: String = "\"DE\"") -> String {
    #"{"user_id":"\#(u)","email":"\#(email)","ip":"10.0.0.1","age":\#(age),"country":\#(country)}"#
}

@Suite("Protect: validation and quarantine")
struct ProtectQuarantineTests {
    @Test func jsonRecordsThatFailAreKeptAsideAndTheRestProtected() async throws {
        let s = try QFixture()
        let c = try s.crypter("users")
        let input =
            [
                rec("u-1", "one@x"),  // 1 valid
                rec("u-2", "two@x", age: "4.5", country: "\"US\""),  // 2 type:int, enum
                "",  // 3 blank
                #"{"user_id":"u-3","email":"three@x", oops}"#,  // 4 not JSON
                #"{"email":"orphan@x"}"#,  // 5 a PII value without a subject
                #"{"user_id":"u-4","email":{"a":"nested@x"}}"#,  // 6 an object in a PII field
                rec("u-5", "five@x"),  // 7 valid
            ].joined(separator: "\n") + "\n"
        let out = try await s.protect(c, input)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 4 && lines[1] == "" && lines[3] == "")  // two records, the blank line, the end
        #expect(lines[0].contains(#""user_id":"u-1""#) && lines[2].contains(#""user_id":"u-5""#))
        for secret in ["one@x", "five@x", "10.0.0.1", "two@x", "three@x", "orphan@x", "nested@x"] { #expect(!out.contains(secret)) }
        #expect(c.counts.records == 6 && c.counts.quarantined == 4 && c.unparsedRecords == 2)
        #expect(
            c.violations == [
                RecordViolation(line: 2, field: "age", rule: "type:int"), RecordViolation(line: 2, field: "country", rule: "enum"),
                RecordViolation(line: 4, field: "-", rule: "json"), RecordViolation(line: 5, field: "user_id", rule: "subject"),
                RecordViolation(line: 6, field: "email", rule: "pii:scalar"),
            ])
        let rejected = String(decoding: c.rejected, as: UTF8.self)
        #expect(rejected == rec("u-2", "two@x", age: "4.5", country: "\"US\"") + "\n" + #"{"user_id":"u-4","email":{"a":"nested@x"}}"# + "\n")
        // Not JSON, or no subject field at all: not readable as the dataset's records, kept apart.
        #expect(String(decoding: c.unparsed, as: UTF8.self) == #"{"user_id":"u-3","email":"three@x", oops}"# + "\n" + #"{"email":"orphan@x"}"# + "\n")

        // The quarantine: records, unparsed records and the reasons (never a value).
        let d = s.lethe.config.dataset(named: "users")!
        let v = ValidatedRecords(keptAsideBy: c)
        let q = try await QuarantineWriter(store: s.f.store).write(v, dataset: d, run: "p1")
        #expect(q.quarantined == 4 && q.accepted == 2 && q.byRule == ["type:int": 1, "enum": 1, "json": 1, "subject": 1, "pii:scalar": 1])
        #expect(q.recordsObject == "_quarantine/users/p1/records.jsonl" && q.unparsedObject == "_quarantine/users/p1/unparsed.jsonl")
        let reasons = try await s.f.text("_quarantine/users/p1/reasons.jsonl")
        #expect(reasons.split(separator: "\n").count == 5)
        for secret in ["u-2", "two@x", "US", "4.5", "u-3", "orphan", "nested", "u-4"] { #expect(!reasons.contains(secret), "\(secret)") }
        #expect(try await s.f.text("_quarantine/users/p1/records.jsonl") == rejected)
    }

    @Test func csvRecordsThatFailKeepTheHeaderAndTheirPhysicalLines() async throws {
        let s = try QFixture()
        let c = try s.crypter("people")
        // Record 2 spans two physical lines; the failing ones are on lines 4 and 6.
        let input = "user_id,email,age\r\nu-1,\"a\nb@x\",41\r\nu-2,two@x,x\r\n\r\nu-3,three@x\r\nu-4,four@x,7\r\n"
        let out = try await s.protect(c, input, chunk: 5)
        #expect(out.hasPrefix("user_id,email,age\r\nu-1,lethe:v1:") && out.contains("\r\n\r\nu-4,lethe:v1:") && !out.contains("two@x"))
        #expect(c.violations == [RecordViolation(line: 4, field: "age", rule: "type:int"), RecordViolation(line: 6, field: "-", rule: "fields")])
        #expect(String(decoding: c.rejected, as: UTF8.self) == "user_id,email,age\r\nu-2,two@x,x\r\n")
        #expect(String(decoding: c.unparsed, as: UTF8.self) == "user_id,email,age\r\nu-3,three@x\r\n")
        // The same lines as `lethe validate` names for the same file.
        let d = s.lethe.config.dataset(named: "people")!
        let whole = try DatasetValidator(dataset: d).validate(Array(input.utf8), name: "in.csv")
        #expect(whole.violations.map(\.line) == c.violations.map(\.line))
    }

    @Test func withoutAValidatorABadRecordStillStopsTheStream() async throws {
        let s = try QFixture()
        let c = try s.crypter("users")
        c.validator = nil
        await #expect(throws: LetheError.self) { _ = try await c.process(Array((#"{"email":"orphan@x"}"# + "\n").utf8)) }
    }

    /// A quarantined record is personal data: the quarantine is part of its dataset, so indexing finds the
    /// subject there, a forget erases it, and verification is not clean while a copy the index cannot read
    /// (an unparsed record holding the raw id) remains.
    @Test func aForgetReachesTheQuarantine() async throws {
        let s = try QFixture()
        let c = try s.crypter("users")
        let input =
            rec("user-0001", "one@x") + "\n" + rec("user-0001", "again@x", age: "\"x\"") + "\n" + rec("user-0002", "two@x", age: "\"y\"") + "\n"
            + #"{"user_id":"user-0001","email":"broken@x" "#  // not JSON, holds the raw id
        let out = try await s.protect(c, input)
        s.f.put("users/a.jsonl", out)
        let d = s.lethe.config.dataset(named: "users")!
        let v = ValidatedRecords(keptAsideBy: c)
        _ = try await QuarantineWriter(store: s.f.store).write(v, dataset: d, run: "i1")
        // Another dataset whose name starts alike does not take the quarantine for its own.
        s.f.put("users2/b.jsonl", #"{"user_id":"user-0009"}"# + "\n")
        _ = try await s.lethe.index()
        let hits = try await s.lethe.locate(SubjectID("user-0001"))
        #expect(Set(hits.map(\.object.key)) == ["users/a.jsonl", "_quarantine/users/i1/records.jsonl"])
        #expect(hits.allSatisfy { $0.object.dataset == "users" })
        let u2 = try await s.lethe.locate(SubjectID("user-0002"))
        #expect(u2.map(\.object.key) == ["_quarantine/users/i1/records.jsonl"])

        let r = try await s.lethe.forget([SubjectID("user-0001")], reason: "t", by: "alice")[0]
        _ = try await s.lethe.approve([r.id], by: "bob")
        let report = try await s.lethe.run()
        // The quarantined record is erased; user-0002's stays; the unparsed copy holds the raw id: not clean.
        let quarantined = try await s.f.text("_quarantine/users/i1/records.jsonl")
        #expect(!quarantined.contains("user-0001") && quarantined.contains("user-0002"))
        #expect(!(try await s.f.text("users/a.jsonl")).contains("user-0001"))
        let first = try #require(report.verifications.first)
        #expect(!first.clean)
        #expect(first.found.contains { $0.object == "_quarantine/users/i1/unparsed.jsonl" })
        // Once that copy is removed, verification is clean.
        try await s.f.store.delete("_quarantine/users/i1/unparsed.jsonl")
        let again = try await s.lethe.verify(ids: [r.id])
        #expect(again.first?.clean == true)
    }

    @Test func noDatasetMayLieInTheQuarantineFolder() throws {
        for path in ["_quarantine", "_quarantine/users"] {
            let text = "lake: l\ndatasets:\n  - {name: a, path: \(path), format: jsonl, subject: id}\n"
            #expect(throws: LetheError.self) { _ = try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/t") }
        }
        let d = try #require(try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: "/t").dataset(named: "users"))
        #expect(d.holds("_quarantine/users/r/records.jsonl") && !d.holds("_quarantine/users2/r/records.jsonl"))
        #expect(d.isQuarantineRecords("_quarantine/users/r/records.jsonl") && !d.isQuarantineRecords("_quarantine/users/r/reasons.jsonl"))
    }
}
