import Foundation
import LetheCatalog
import LetheCore
@testable import LetheEngine
import LetheSQLite
import LetheStream
import LetheTestSupport
import Synchronization
import Testing

/// A lake in memory, SQLite in memory, and a vault whose KEK is a key file in a temporary folder.
private struct ShredFixture {
    let f: Fixture
    let vault: Vault
    let lethe: Lethe
    let folder: String

    static let yaml = """
        lake: ./lake
        datasets:
          - name: raw
            path: raw
            format: jsonl
            subject: user.id
            pii: [user.email, ip, age, vip]
          - name: users
            path: users
            format: csv
            subject: user_id
            pii: [email, user_id]
        """

    init(yaml: String = Self.yaml) throws {
        f = try Fixture(yaml)
        folder = NSTemporaryDirectory() + "lethe-shred-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let kek = try FileKeyEncryptionKey.load(path: folder + "/vault.key", create: true)
        vault = Vault(kek: kek, state: f.lethe.meta, cacheSize: 100)
        var l = f.lethe
        l.vault = vault
        lethe = l
    }

    func crypter(_ dataset: String, _ mode: CryptoMode) throws -> RecordCrypter {
        let d = lethe.config.dataset(named: dataset)!
        let format: CryptoRecordFormat = d.format == .csv ? .csv(delimiter: d.delimiter) : .jsonl
        return try RecordCrypter(
            dataset: d.name, format: format, mode: mode, subject: d.subject!.fields, pii: d.pii, hasher: lethe.secrets.hasher,
            normalization: d.normalization, keys: vault)
    }

    func protect(_ dataset: String, _ text: String) async throws -> String {
        String(decoding: try await crypter(dataset, .protect).process(Array(text.utf8)), as: UTF8.self)
    }

    func reveal(_ dataset: String, _ text: String, marker: String? = nil) async throws -> String {
        let c = try crypter(dataset, .reveal(marker: marker.map { Array($0.utf8) }, nullOnError: false))
        return String(decoding: try await c.process(Array(text.utf8)), as: UTF8.self)
    }
}

private func ev(_ u: String, _ n: Int, email: String) -> String {
    #"{"n":\#(n),"user":{"id":"\#(u)","email":"\#(email)"},"ip":"10.0.0.\#(n)","age":3\#(n),"vip":true,"note":"keep \#(n)"}"# + "\n"
}

@Suite("Crypto-shredding")
struct CryptoShreddingTests {
    @Test func protectThenRevealGivesTheRecordsBackAndTouchesNothingElse() async throws {
        let s = try ShredFixture()
        let input =
            ev("u-1", 1, email: "a@x.example") + "\n" + "  \r\n" + ev("u-2", 2, email: "b\\\"q@x") + #"{"user":{"id":7},"ip":null}"# + "\r\n"
            + #"{"n":9}"#
        let protected = try await s.protect("raw", input)
        // No PII left; other bytes as they were.
        for secret in ["a@x.example", "10.0.0.1", "10.0.0.2", "b\\\"q@x", ":31", ":32", "true"] { #expect(!protected.contains(secret)) }
        for kept in [#""note":"keep 1""#, #""n":9"#, #""id":"u-1""#, "\n  \r\n", #""ip":null}"# + "\r\n"] { #expect(protected.contains(kept)) }
        #expect(protected.components(separatedBy: "\"lethe:v1:").count - 1 == 8)
        // Protecting again changes nothing (values already protected are left as they are).
        #expect(try await s.protect("raw", protected) == protected)
        let revealed = try await s.reveal("raw", protected)
        #expect(revealed == input)
    }

    /// The crypter (OpenSSL) and `ProtectedValue` (swift-crypto, the first cut's path) read each other's
    /// values: every value `protect` wrote opens with swift-crypto, and a stream sealed value by value
    /// with swift-crypto reveals through the crypter (text, number and literal kinds, escapes).
    @Test func theCryptersValuesAndSwiftCryptosOpenEachOther() async throws {
        let s = try ShredFixture()
        var input = ""
        for i in 0..<30 { input += ev("u-\(i % 4)", i, email: i % 5 == 0 ? "e\(i)\\\"q\\n@x" : "e\(i)@x") }
        let protected = try await s.protect("raw", input)
        let hasher = s.lethe.secrets.hasher
        let subjects = (0..<4).map { hasher.key(for: SubjectID("u-\($0)")) }
        let keys = try await s.vault.dataKeys(for: subjects, create: false)
        #expect(keys.count == 4)
        var opened = 0
        var sealedByHand = ""
        for (i, line) in protected.split(separator: "\n").enumerated() {
            let subject = subjects[i % 4]
            let key = keys[subject]!
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let user = object["user"] as? [String: Any], let email = user["email"] as? String, let ip = object["ip"] as? String,
                let age = object["age"] as? String, let vip = object["vip"] as? String
            else {
                Issue.record("line \(i + 1) is not the protected record expected")
                continue
            }
            var plain: [String] = []
            for (field, text) in [("user.email", email), ("ip", ip), ("age", age), ("vip", vip)] {
                let (kind, value) = try ProtectedValue.open(
                    try ProtectedValue.parse(Array(text.utf8)), key: key, dataset: "raw", field: field, subject: subject)
                #expect(kind == (field == "age" ? .number : field == "vip" ? .literal : .text))
                plain.append(String(decoding: value, as: UTF8.self))
                opened += 1
            }
            #expect(plain[1] == "10.0.0.\(i)" && plain[2] == "3\(i)" && plain[3] == "true")
            // The same record sealed by swift-crypto, value by value.
            func seal(_ v: String, _ kind: ProtectedValue.Kind, _ field: String) throws -> String {
                String(decoding: try ProtectedValue.seal(Array(v.utf8), kind: kind, key: key, dataset: "raw", field: field, subject: subject), as: UTF8.self)
            }
            sealedByHand +=
                #"{"n":\#(i),"user":{"id":"u-\#(i % 4)","email":"\#(try seal(plain[0], .text, "user.email"))"},"ip":"\#(try seal(plain[1], .text, "ip"))","age":"\#(try seal(plain[2], .number, "age"))","vip":"\#(try seal(plain[3], .literal, "vip"))","note":"keep \#(i)"}"#
                + "\n"
        }
        #expect(opened == 120)
        #expect(try await s.reveal("raw", sealedByHand) == input)
    }

    @Test func chunkBoundariesDoNotChangeTheOutput() async throws {
        let s = try ShredFixture()
        var input = ""
        for i in 0..<40 { input += ev("u-\(i % 7)", i, email: "e\(i)@x") }
        let bytes = Array(input.utf8)
        let c = try s.crypter("raw", .protect)
        var out: [UInt8] = []
        var pending: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let step = min(37, bytes.count - i)
            pending += bytes[i..<(i + step)]
            i += step
            let used = try await c.process(pending, isFinal: i == bytes.count, into: &out)
            pending.removeFirst(used)
        }
        #expect(pending.isEmpty)
        #expect(c.counts.records == 40 && c.counts.values == 160)
        #expect(try await s.reveal("raw", String(decoding: out, as: UTF8.self)) == input)
    }

    /// Values with and without escapes (a quote, backslash or control character at every position of
    /// strings of 0–40 bytes; the quick check for "nothing to escape" reads 8 bytes a step), protected
    /// through the raw-bytes form of `process` (the pipe's: input read into one buffer in uneven pieces,
    /// output lent by the crypter) and revealed through the array form: the input comes back byte for byte.
    @Test func escapedValuesRoundTripThroughTheRawBytesForm() async throws {
        let s = try ShredFixture()
        let escapes = [#"\""#, #"\\"#, #"\n"#, #"\r"#, #"\t"#, #"\u0001"#, #"\u001f"#, "é"]
        var input = ""
        var n = 0
        for length in 0...40 {
            let plain = String(repeating: "a", count: length)
            input += ev("u-\(n % 13)", n, email: plain)
            n += 1
            for at in stride(from: 0, through: length, by: 3) {
                let e = escapes[n % escapes.count]
                let v = String(plain.prefix(at)) + e + String(plain.dropFirst(at))
                input += ev("u-\(n % 13)", n, email: v)
                n += 1
            }
        }
        let bytes = Array(input.utf8)
        let c = try s.crypter("raw", .protect)
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 64, alignment: 16)
        defer { buffer.deallocate() }
        var held = 0
        var at = 0
        var piece = 1
        while true {
            let step = min(piece, bytes.count - at)
            bytes.withUnsafeBytes { (buffer + held).copyMemory(from: $0.baseAddress! + at, byteCount: step) }
            at += step
            held += step
            piece = piece * 7 % 211 + 1
            let (used, o) = try await c.process(UnsafeRawBufferPointer(start: buffer, count: held), isFinal: step == 0)
            out += o
            if used > 0 {
                if held > used { memmove(buffer, buffer + used, held - used) }
                held -= used
            }
            if step == 0 { break }
        }
        #expect(held == 0)
        #expect(c.counts.records == Int64(n) && c.counts.values == Int64(4 * n))
        #expect(!String(decoding: out, as: UTF8.self).contains("aaaa"))  // the emails were sealed
        #expect(try await s.reveal("raw", String(decoding: out, as: UTF8.self)) == input)
    }

    @Test func badInputNamesTheLineAndFieldAndNoSubjectIsRefused() async throws {
        let s = try ShredFixture()
        do {
            _ = try await s.protect("raw", ev("u-1", 1, email: "a") + "{\"user\":")
            Issue.record("malformed JSON accepted")
        } catch let e as LetheError {
            #expect(e.code == .badInput && e.location == "line 2")
        }
        do {
            _ = try await s.protect("raw", #"{"user":{"email":"x@y"}}"#)
            Issue.record("a PII value without a subject was protected")
        } catch let e as LetheError {
            #expect(e.code == .badInput && e.message.contains("user.email") && !e.message.contains("x@y"))
        }
        do {
            _ = try await s.protect("raw", #"{"user":{"id":"u","email":{"a":1}}}"#)
            Issue.record("an object was protected")
        } catch let e as LetheError {
            #expect(e.code == .badInput)
        }
    }

    @Test func aTamperedOrMovedValueStopsRevealUnlessNulled() async throws {
        let s = try ShredFixture()
        let p = try await s.protect("raw", ev("u-1", 1, email: "a@x") + ev("u-2", 2, email: "b@x"))
        let lines = p.split(separator: "\n").map(String.init)
        // Move u-1's email token into u-2's record.
        func token(_ line: String, _ field: String) -> String {
            let r = line.range(of: "\"\(field)\":\"")!
            return String(line[r.upperBound...].prefix { $0 != "\"" })
        }
        // Within u-2's record, its ip token moved into its email field: the same key, another field.
        let moved = lines[1].replacingOccurrences(of: token(lines[1], "email"), with: token(lines[1], "ip")) + "\n"
        do {
            _ = try await s.reveal("raw", lines[0] + "\n" + moved)
            Issue.record("a moved value opened")
        } catch let e as LetheError {
            #expect(e.code == .corrupt && e.location == "line 2, field `user.email`")
        }
        let c = try s.crypter("raw", .reveal(marker: nil, nullOnError: true))
        let out = String(decoding: try await c.process(Array((lines[0] + "\n" + moved).utf8)), as: UTF8.self)
        #expect(c.counts.failed == 1 && out.contains(#""email":null"#) && out.contains("a@x") && out.contains("10.0.0.2"))
        // u-1's email token moved into u-2's record: sealed by another subject's key, it does not open (null, never u-1's value).
        let across = lines[1].replacingOccurrences(of: token(lines[1], "email"), with: token(lines[0], "email")) + "\n"
        let x = try s.crypter("raw", .reveal(marker: nil, nullOnError: false))
        let xout = String(decoding: try await x.process(Array(across.utf8)), as: UTF8.self)
        #expect(!xout.contains("a@x") && xout.contains(#""email":null"#) && x.counts.forgotten == 1)
    }

    @Test func csvRoundTripWithQuotesCRLFAndMultilineFields() async throws {
        let s = try ShredFixture()
        let input = "user_id,email,city\r\nu-1,\"a,b@x\",\"Paris\"\r\nu-2,\"multi\nline \"\"q\"\"\",Oslo\r\n\r\nu-3,,Rome\r\n,orphan-less,\r\nu-4,plain@x,Nice"
        // `,orphan-less,`: a PII value without a subject is refused.
        await #expect(throws: LetheError.self) { _ = try await s.protect("users", input) }
        let ok = input.replacingOccurrences(of: ",orphan-less,\r\n", with: "")
        let protected = try await s.protect("users", ok)
        for secret in ["a,b@x", "multi", "plain@x"] { #expect(!protected.contains(secret)) }
        for kept in ["\"Paris\"", ",Oslo\r\n", "\r\n\r\nu-3,,Rome\r\n", "u-1,lethe:v1:", "u-4,lethe:v1:"] { #expect(protected.contains(kept)) }
        let revealed = try await s.reveal("users", protected)
        #expect(revealed == ok)
    }

    /// A CSV written by pyarrow and another by DuckDB (quoting, line ends of their own) protect and
    /// reveal to the same values, read back by pyarrow.
    @Test(arguments: ["pyarrow", "duckdb"])
    func csvWrittenByOtherTools(_ tool: String) async throws {
        let s = try ShredFixture()
        let dir = s.folder
        let script = """
            import sys, pyarrow as pa, pyarrow.csv as pc, duckdb
            rows = {"user_id": ["u-1", "u-2", "u 3"], "email": ["a@x", "b,\\"q\\"@x", "line\\nbreak"], "n": [1, 2, 3]}
            t = pa.table(rows)
            if sys.argv[1] == "pyarrow":
                pc.write_csv(t, sys.argv[2])
            else:
                duckdb.sql("SELECT * FROM t").write_csv(sys.argv[2])
            """
        try Peers.python(["-c", script, tool, dir + "/in.csv"], what: "writing a CSV with \(tool)")
        let input = try String(contentsOfFile: dir + "/in.csv", encoding: .utf8)
        let protected = try await s.protect("users", input)
        #expect(!protected.contains("a@x") && !protected.contains("line"))
        try protected.write(toFile: dir + "/p.csv", atomically: true, encoding: .utf8)
        let revealed = try await s.reveal("users", protected)
        try revealed.write(toFile: dir + "/r.csv", atomically: true, encoding: .utf8)
        let check = """
            import sys, pyarrow.csv as pc
            a = pc.read_csv(sys.argv[1]).to_pylist(); b = pc.read_csv(sys.argv[2]).to_pylist()
            assert a == b, (a, b)
            p = pc.read_csv(sys.argv[3]).to_pylist()
            assert all(r["email"].startswith("lethe:v1:") for r in p), p
            assert [r["n"] for r in p] == [1, 2, 3]
            print(len(a))
            """
        let n = try Peers.python(["-c", check, dir + "/in.csv", dir + "/r.csv", dir + "/p.csv"], what: "reading back with pyarrow")
        #expect(n.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
    }

    /// forget → approve → run: the key goes first (before any object step), every cache drops it,
    /// verification checks it is gone, and a copy of the lake taken before the request (a backup)
    /// still reveals every other subject and nothing of the forgotten one.
    @Test func forgetShredsTheKeyFirstAndABackupRevealsNothingOfTheSubject() async throws {
        let s = try ShredFixture()
        let lake = ev("u-1", 1, email: "one@x") + ev("u-2", 2, email: "two@x") + ev("u-1", 3, email: "one-again@x") + ev("u-3", 4, email: "three@x")
        let protected = try await s.protect("raw", lake)
        s.f.put("raw/a.jsonl", protected)
        let backup = protected  // the copy Lethe does not manage
        _ = try await s.lethe.index()
        let u1 = s.lethe.key(for: SubjectID("u-1"))
        #expect(try await s.lethe.meta.vault.vaultKeyCount() == 3)
        #expect(s.vault.isCached(u1))

        let r = try await s.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        let filedPlan = try #require(try await s.lethe.meta.request(id: r.id)?.plan)
        let plan = try #require(ErasurePlan.decode(filedPlan))
        #expect(plan.shred?.count == 1 && plan.shred?[0].state == "held" && plan.shred?[0].subjectKey == u1.hex)
        #expect(plan.json == plan.encodedJSON)
        _ = try await s.lethe.approve([r.id], by: "bob")
        let report = try await s.lethe.run()
        #expect(report.keysDestroyed == 1)
        #expect(report.verifications.first?.clean == true)
        #expect(report.verifications.first?.keyDestroyed == true)
        #expect(try await s.lethe.meta.vault.wrappedKeys(subjects: [u1]).isEmpty)
        #expect(try await s.lethe.meta.vault.vaultKeyCount() == 2)
        #expect(!s.vault.isCached(u1))
        // The run's plan says the key was destroyed; the audit entry came before any object step and holds keyed hashes only.
        let runPlan = try #require(try await s.lethe.meta.request(id: r.id)?.plan)
        let stored = try #require(ErasurePlan.decode(runPlan))
        #expect(stored.shred?.first?.state == "destroyed")
        let audit = try await s.lethe.meta.auditEntries()
        let shredAt = try #require(audit.firstIndex { $0.event == "keys_destroyed" })
        let firstWrite = try #require(audit.firstIndex { $0.event == "object_rewritten" })
        #expect(shredAt < firstWrite)
        #expect(audit[shredAt].details.contains(u1.hex) && !audit[shredAt].details.contains("u-1"))

        // The live object lost u-1's records; the backup still has them, but they no longer open.
        let live = try await s.f.text("raw/a.jsonl")
        #expect(live.split(separator: "\n").count == 2)
        let c = try s.crypter("raw", .reveal(marker: nil, nullOnError: false))
        let revealed = String(decoding: try await c.process(Array(backup.utf8)), as: UTF8.self)
        let lines = revealed.split(separator: "\n").map(String.init)
        #expect(lines[1] == String(ev("u-2", 2, email: "two@x").dropLast()))
        #expect(lines[3] == String(ev("u-3", 4, email: "three@x").dropLast()))
        for i in [0, 2] {
            #expect(lines[i].contains(#""email":null"#) && lines[i].contains(#""ip":null"#) && lines[i].contains(#""age":null"#))
            #expect(!lines[i].contains("one") && !lines[i].contains("lethe:v1:"))
        }
        #expect(c.counts.forgotten == 8 && c.counts.values == 8)
        // With a marker, and from another vault (another process: its cache never held the key).
        let other = Vault(kek: s.vault.kek, state: s.lethe.meta)
        let m = try RecordCrypter(
            dataset: "raw", format: .jsonl, mode: .reveal(marker: Array("[erased]".utf8), nullOnError: false), subject: [FieldPath("user.id")],
            pii: s.lethe.config.dataset(named: "raw")!.pii, hasher: s.lethe.secrets.hasher, keys: other)
        let marked = String(decoding: try await m.process(Array(backup.utf8)), as: UTF8.self)
        #expect(marked.components(separatedBy: "\"[erased]\"").count - 1 == 8)
        // u-1 protected again later gets a new key: the backup's old values still do not open.
        _ = try await s.protect("raw", ev("u-1", 9, email: "new@x"))
        let again = String(decoding: try await s.crypter("raw", .reveal(marker: nil, nullOnError: false)).process(Array(backup.utf8)), as: UTF8.self)
        #expect(!again.contains("one@x"))
    }

    /// A dataset with `normalize: nfc`: protect keys a subject's value as the index and a request key it,
    /// so a subject written decomposed and forgotten composed loses its key (before, protect keyed the raw
    /// bytes and the run found no key to destroy).
    @Test func anNFCDatasetsValuesAreKeyedAsTheIndexKeysThem() async throws {
        let yaml = """
            lake: ./lake
            datasets:
              - name: raw
                path: raw
                format: jsonl
                subject: user.id
                pii: [user.email, ip, age, vip]
                normalize: nfc
            """
        let s = try ShredFixture(yaml: yaml)
        let protected = try await s.protect("raw", ev("jose\u{301}", 1, email: "j@x") + ev("u-2", 2, email: "two@x"))
        s.f.put("raw/a.jsonl", protected)
        _ = try await s.lethe.index()
        let r = try await s.lethe.forget([SubjectID("jos\u{E9}")], reason: "t", by: "alice")[0]
        _ = try await s.lethe.approve([r.id], by: "bob")
        let report = try await s.lethe.run()
        #expect(report.keysDestroyed == 1)
        #expect(report.verifications.first?.keyDestroyed == true)
        let lines = try await s.reveal("raw", protected).split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines.first?.contains(#""email":null"#) == true && lines.first?.contains("j@x") == false)
        #expect(lines.last == String(ev("u-2", 2, email: "two@x").dropLast()))
    }

    /// `key_destroyed` is a verdict earned: nil for a subject that never had a data key (nothing was
    /// shredded), true only when the plan listed a key and the store holds it no more, false when a
    /// key of the subject is in the store at verification.
    @Test func keyDestroyedOnlyWhenThePlanListedAKeyThatIsGone() async throws {
        let s = try ShredFixture()
        // u-5 was never protected: its records are plain, it has no key.
        let plain = ev("u-5", 5, email: "five@x") + ev("u-6", 6, email: "six@x")
        s.f.put("raw/plain.jsonl", plain)
        s.f.put("raw/p.jsonl", try await s.protect("raw", ev("u-1", 1, email: "one@x")))
        _ = try await s.lethe.index()
        let never = try await s.lethe.forget([SubjectID("u-5")], reason: "t", by: "alice")[0]
        let neverJSON = try #require(try await s.lethe.meta.request(id: never.id)?.plan)
        let neverPlan = try #require(ErasurePlan.decode(neverJSON))
        #expect(neverPlan.shred == nil)
        _ = try await s.lethe.approve([never.id], by: "bob")
        let report = try await s.lethe.run()
        let v = try #require(report.verifications.first { $0.id == never.id })
        #expect(v.clean == true)
        #expect(v.keyDestroyed == nil)
        #expect(report.keysDestroyed == 0)

        // u-1 had a key: the plan lists it, the run destroys it, the verdict is true.
        let had = try await s.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        _ = try await s.lethe.approve([had.id], by: "bob")
        let second = try await s.lethe.run()
        let w = try #require(second.verifications.first { $0.id == had.id })
        #expect(w.keyDestroyed == true && w.clean == true)

        // The subject protected again afterwards holds a key: verifying again says false, with the reason.
        _ = try await s.protect("raw", ev("u-1", 9, email: "again@x"))
        let again = try #require(try await s.lethe.verify(ids: [had.id], dryRun: true).first)
        #expect(again.keyDestroyed == false)
        #expect(again.problems?.contains { $0.contains("data key is still in the key store") } == true)
        // And the never-keyed subject's verification stays nil when verified again.
        #expect(try await s.lethe.verify(ids: [never.id], dryRun: true).first?.keyDestroyed == nil)
    }

    /// v13's compact rows: two subjects whose keyed hashes share the first 12 bytes (odds n²/2^97 in
    /// real life, forced here) each get their own key: the second finds the first's row, whose key id
    /// is not its check, and gets an exact row. Lookups, the plan's held keys and destruction never
    /// confuse them, and a third subject sharing the prefix has no key.
    @Test func subjectsSharingAKeyPrefixKeepTheirOwnKeys() async throws {
        let s = try ShredFixture()
        var b = [UInt8](repeating: 0x42, count: 32)
        let d = SubjectKey(bytes: b)
        b[20] = 0x43
        let e = SubjectKey(bytes: b)
        b[31] = 0x44
        let z = SubjectKey(bytes: b)
        let kd = try #require(try await s.vault.dataKeys(for: [d], create: true)[d])
        let ke = try #require(try await s.vault.dataKeys(for: [e], create: true)[e])
        #expect(kd.id != ke.id)
        let rows = try await s.lethe.meta.vault.wrappedKeys(subjects: [d, e, z])
        let rowD = try #require(rows[d])
        let plainD = try await s.vault.kek.unwrap(rowD.wrapped, WrapContext(subject: d, keyID: rowD.keyID))
        #expect(kd.id == FileKeyEncryptionKey.keyID(plainD, subject: d))
        #expect(rows[d]?.exact == false && rows[d]?.wrapped.count == 32 && rows[e]?.exact == true)
        #expect(rows[z]?.exact == false)  // the store answers d's row for z: the vault proves it is not z's
        // A vault without a cache reads each subject's own key back; z has none.
        let fresh = Vault(kek: s.vault.kek, state: s.lethe.meta)
        let back = try await fresh.dataKeys(for: [d, e, z], create: false)
        #expect(back[d]?.id == kd.id && back[e]?.id == ke.id && back[z] == nil)
        let sealed = try ProtectedValue.seal(Array("x".utf8), kind: .text, key: kd, dataset: "raw", field: "ip", subject: d)
        let opened = try ProtectedValue.open(try ProtectedValue.parse(sealed), key: try #require(back[d]), dataset: "raw", field: "ip", subject: d)
        #expect(opened.value == Array("x".utf8))
        // The plan's held keys (and so the run's destruction and the verdict) are each subject's own.
        let held = try await s.lethe.heldDataKeys([d, e, z])
        #expect(Set(held.keys) == [d, e])
        // Shredding z (never keyed) destroys nothing; shredding e leaves d's key; then d's goes.
        let heldZ = Array(try await s.lethe.heldDataKeys([z]).values)
        #expect(heldZ.isEmpty)
        _ = try await s.lethe.meta.transaction("z") { tx in try tx.vault.destroyKeys(heldZ) }
        #expect(try await s.lethe.meta.vault.vaultKeyCount() == 2)
        let gone = try await s.lethe.meta.transaction("e") { tx in try tx.vault.destroyKeys([held[e]!]) }
        #expect(gone == [e])
        #expect(try await Vault(kek: s.vault.kek, state: s.lethe.meta).dataKeys(for: [d, e], create: false).keys.sorted() == [d])
        #expect(try await s.lethe.meta.transaction("d") { tx in try tx.vault.destroyKeys([held[d]!]) } == [d])
        #expect(try await s.lethe.meta.vault.vaultKeyCount() == 0)
    }

    /// `rotateKEK` re-wraps every key (compact v3 rows and a legacy 40-byte exact row) under a new KEK,
    /// resumes after a partial pass, and keeps every key id: values sealed before still open.
    @Test func rotatingTheKEKRewrapsEveryKeyAndValuesStillOpen() async throws {
        let s = try ShredFixture()
        let text = (1...12).map { ev("u-\($0)", $0, email: "m\($0)@x") }.joined()
        let protected = try await s.protect("raw", text)
        let old = try #require(s.vault.kek as? FileKeyEncryptionKey)
        // A key as `v12-vault-compact` wrapped it (AES key wrap, 40 bytes, an exact row).
        let legacy = s.lethe.key(for: SubjectID("legacy"))
        let ctx = WrapContext(subject: legacy, keyID: [9, 9, 9, 9, 9, 9, 9, 9])
        let (plainL, wrappedL) = try await old.generateDataKey(ctx)
        _ = try await s.lethe.meta.transaction("legacy") { tx in
            try tx.vault.insertKeys([WrappedDataKey(subject: legacy, keyID: ctx.keyID, kek: old.name, wrapped: wrappedL, createdAt: 1)])
        }
        let next = FileKeyEncryptionKey(key: (0..<32).map { UInt8($0) }, path: s.folder + "/vault.key.next")
        // One pass in batches of 5 moves all 13 rows.
        let part = try await s.lethe.rotateKEK(from: old, to: next, batch: 5, passes: 1)
        #expect(part.rewrapped == 13 && part.remaining == 0)
        // Roll three rows back by hand to play a kill midway, then resume.
        let rows = try await s.lethe.meta.vault.vaultRows(kek: next.name, after: nil, limit: 3)
        for r in rows {
            let back = try await next.rewrap(r, to: old)
            #expect(try await s.lethe.meta.transaction("back") { tx in try tx.vault.rewrapKey(r, kek: old.name, wrapped: back) })
        }
        #expect(try await s.lethe.meta.vault.vaultKeyCountsByKEK() == [old.name: 3, next.name: 10])
        // Meanwhile a vault that holds both KEKs reads every key.
        let both = Vault(kek: old, others: [next], state: s.lethe.meta)
        let subjects = (1...12).map { s.lethe.key(for: SubjectID("u-\($0)")) }
        #expect(try await both.dataKeys(for: subjects + [legacy], create: false).count == 13)
        let resumed = try await s.lethe.rotateKEK(from: old, to: next)
        #expect(resumed.rewrapped == 3 && resumed.remaining == 0)
        #expect(try await s.lethe.meta.vault.vaultKeyCountsByKEK() == [next.name: 13])
        // Under the new KEK alone: every value opens, key ids unchanged; the old KEK opens nothing.
        let after = Vault(kek: next, state: s.lethe.meta)
        let c = try RecordCrypter(
            dataset: "raw", format: .jsonl, mode: .reveal(marker: nil, nullOnError: false), subject: [FieldPath("user.id")],
            pii: s.lethe.config.dataset(named: "raw")!.pii, hasher: s.lethe.secrets.hasher, keys: after)
        #expect(String(decoding: try await c.process(Array(protected.utf8)), as: UTF8.self) == text)
        #expect(c.counts.values == 48 && c.counts.forgotten == 0)
        let l = try #require(try await after.dataKeys(for: [legacy], create: false)[legacy])
        #expect(l.id == ctx.keyID)
        let sealedL = try ProtectedValue.seal(
            Array("v".utf8), kind: .text, key: ProtectedValue.DataKey(id: ctx.keyID, bytes: plainL), dataset: "raw", field: "ip", subject: legacy)
        #expect(try ProtectedValue.open(try ProtectedValue.parse(sealedL), key: l, dataset: "raw", field: "ip", subject: legacy).value == Array("v".utf8))
        await #expect(throws: LetheError.self) { _ = try await Vault(kek: old, state: s.lethe.meta).dataKeys(for: subjects, create: false) }
        let audit = try await s.lethe.meta.auditEntries()
        #expect(audit.filter { $0.event == "keys_rewrapped" }.count == 2)
        #expect(!audit.contains { $0.details.contains("u-1") })
    }

    /// A vault in another process sees a destruction within its revalidation interval: `vault.generation` moved.
    @Test func anotherProcesssCacheDropsADestroyedKey() async throws {
        let s = try ShredFixture()
        let clock = ManualClock()
        let other = Vault(kek: s.vault.kek, state: s.lethe.meta, revalidateEvery: 1000, now: { clock.now })
        _ = try await s.protect("raw", ev("u-1", 1, email: "a@x") + ev("u-2", 2, email: "b@x"))
        let u1 = s.lethe.key(for: SubjectID("u-1")), u2 = s.lethe.key(for: SubjectID("u-2"))
        #expect(try await other.dataKeys(for: [u1, u2], create: false).count == 2)
        #expect(other.isCached(u1))
        let r = try await s.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")[0]
        #expect(try await s.lethe.shredKeys([r]) == [u1])
        #expect(try await s.lethe.shredKeys([r]).isEmpty)  // idempotent
        #expect(try await other.dataKeys(for: [u1], create: false).count == 1)  // within the interval: still cached
        clock.now += 1000
        #expect(try await other.dataKeys(for: [u1, u2], create: false).keys.sorted() == [u2])
        #expect(!other.isCached(u1) && other.isCached(u2))
    }

    /// Crypto-shredding holds across every cache this process keeps: a long-lived reveal crypter holds
    /// the prepared keys of its last chunk (its key slots) and the vault keeps unwrapped keys (flat
    /// slots); after the forget's key destruction, the next chunk opens nothing of the subject, the
    /// crypter holds no prepared key of it, and no byte of the destroyed key is left in the vault's cache.
    @Test func aDestroyedKeyIsServedByNoCacheAcrossChunks() async throws {
        let s = try ShredFixture()
        var lake = ""
        for i in 0..<12 { lake += ev("u-\(i % 3)", i, email: "e\(i)@x") }
        let protected = Array(try await s.protect("raw", lake).utf8)
        let u0 = s.lethe.key(for: SubjectID("u-0")), u1 = s.lethe.key(for: SubjectID("u-1"))
        let key0 = try #require(try await s.vault.dataKeys(for: [u0], create: false)[u0])
        var batch = DataKeyBatch()
        batch.reset(1)
        batch.set(0, key0)
        let key0Bytes = Array(batch.material[0..<32])
        let c = try s.crypter("raw", .reveal(marker: Array("[gone]".utf8), nullOnError: false))
        // Two chunks before the destruction: each prepares its three subjects' keys.
        var out: [UInt8] = []
        _ = try await c.process(protected, isFinal: true, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == lake)
        out.removeAll()
        _ = try await c.process(protected, isFinal: true, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == lake)
        #expect(c.keySlots.prepared == 6 && c.keySlots.live == 3)
        #expect(c.holdsPreparedKey(for: u0) && c.holdsPreparedKey(for: u1))
        func find(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
            (0...(hay.count - needle.count)).contains { Array(hay[$0..<($0 + needle.count)]) == needle }
        }
        #expect(find(s.vault.cachedMaterial, key0Bytes))

        let r = try await s.lethe.forget([SubjectID("u-0")], reason: "t", by: "alice")[0]
        _ = try await s.lethe.approve([r.id], by: "bob")
        #expect(try await s.lethe.shredKeys([try #require(try await s.lethe.meta.request(id: r.id))]) == [u0])
        #expect(!s.vault.isCached(u0) && !find(s.vault.cachedMaterial, key0Bytes))
        // The same crypter, the next chunk: u-0's values come out as the marker, the others open.
        out.removeAll()
        _ = try await c.process(protected, isFinal: true, into: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        for (i, line) in lines.enumerated() {
            if i % 3 == 0 {
                #expect(line.contains(#""email":"[gone]""#) && !line.contains("e\(i)@x") && !line.contains("lethe:v1:"))
            } else {
                #expect(line == String(ev("u-\(i % 3)", i, email: "e\(i)@x").dropLast()))
            }
        }
        #expect(!c.holdsPreparedKey(for: u0) && c.holdsPreparedKey(for: u1))
        #expect(c.keySlots.live == 2)  // u-1 and u-2: the slot u-0's key was prepared in is wiped or reused
        #expect(c.counts.forgotten == 16)
        // Protect with the same long-lived kind of crypter gives u-0 a new key, never the old prepared one.
        let p = try s.crypter("raw", .protect)
        let again = try await p.process(Array(ev("u-0", 99, email: "new@x").utf8))
        let newKey = try #require(try await s.vault.dataKeys(for: [u0], create: false)[u0])
        #expect(newKey.id != key0.id)
        #expect(try await s.reveal("raw", String(decoding: again, as: UTF8.self)) == ev("u-0", 99, email: "new@x"))
    }

    @Test func theCacheIsBounded() async throws {
        let s = try ShredFixture()
        let small = Vault(kek: s.vault.kek, state: s.lethe.meta, cacheSize: 5)
        let keys = (0..<12).map { s.lethe.key(for: SubjectID("s-\($0)")) }
        let made = try await small.dataKeys(for: keys, create: true)
        #expect(made.count == 12)
        #expect(small.cachedCount <= 5)
        // Read back through the store: the same keys.
        let again = try await Vault(kek: s.vault.kek, state: s.lethe.meta).dataKeys(for: keys, create: false)
        #expect(keys.allSatisfy { again[$0]?.id == made[$0]?.id })
    }
}

/// A clock tests move by hand.
private final class ManualClock: Sendable {
    private let value = Mutex<Int64>(1_000_000)
    var now: Int64 {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
