import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheSQLite

// Issue 15: `erase: mask | blank` on Parquet files pyarrow and DuckDB wrote (scripts/mask_peers.py),
// read back by both.

private struct ParquetRead: Decodable {
    struct Row: Decodable, Equatable {
        var user_id: String?, email: String?, ip: String?, age: Int64?, n: Int32?
    }
    var rows: [Row]
    var schema: [String]
    var row_groups: Int
    var duckdb: [Row]
}

@discardableResult private func peers(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("mask_peers.py")] + args, what: "mask_peers.py \(args[0])")
}

private func read(_ path: String) throws -> ParquetRead {
    try JSONDecoder().decode(ParquetRead.self, from: Data(try peers(["read-parquet", path]).utf8))
}

private let secret = Array(repeating: UInt8(7), count: 32)

private func lake(_ yaml: String) throws -> (dir: String, lethe: Lethe) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-mask-pq-\(UUID().uuidString)").path
    try peers(["write-parquet", dir + "/lake"])
    let config = try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir)
    let secrets = StateSecrets(installationSecret: secret, requestKey: Array(repeating: 8, count: 32))
    let lethe = Lethe(
        config: config, store: LocalObjectStore(root: dir + "/lake"), meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    return (dir, lethe)
}

private let yaml = """
    lake: ./lake
    datasets:
      - name: pa
        path: pa
        format: parquet
        subject: user_id
        pii: [email, ip, age]
        erase: mask
        mask: {user_id: hash, email: null, ip: redact, age: hash}
      - name: duck
        path: duck
        format: parquet
        subject: user_id
        pii: [email]
        erase: blank
    """

@Test func parquetFilesOfPyarrowAndDuckDBAreMaskedAndBlankedInPlace() async throws {
    let (dir, lethe) = try lake(yaml)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let beforeA = try read(dir + "/lake/pa/a.parquet"), beforeB = try read(dir + "/lake/duck/b.parquet")
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-1")], reason: "ticket", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(String(describing: done.failure))")
    #expect(run.rowsMasked == 4 && run.rowsBlanked == 4 && run.rowsDropped == 0)

    let key = MaskKey(installation: SubjectHasher(secret: secret))
    let a = try read(dir + "/lake/pa/a.parquet")
    #expect(a.schema == beforeA.schema && a.row_groups == beforeA.row_groups && a.rows.count == beforeA.rows.count)
    #expect(a.duckdb == a.rows)
    for (old, new) in zip(beforeA.rows, a.rows) {
        if old.user_id == "u-1" {
            let expected = ParquetRead.Row(
                user_id: String(decoding: key.pseudonym(Array("u-1".utf8)), as: UTF8.self), email: nil, ip: "[redacted]",
                age: key.pseudonymInteger(Array(String(old.age!).utf8)), n: old.n)
            #expect(new == expected)
        } else {
            #expect(new == old)
        }
    }
    let b = try read(dir + "/lake/duck/b.parquet")
    #expect(b.schema == beforeB.schema && b.rows.count == beforeB.rows.count && b.duckdb == b.rows)
    for (old, new) in zip(beforeB.rows, b.rows) {
        #expect(new == (old.user_id == "u-1" ? ParquetRead.Row() : old))
    }
    // Nothing left to mask: a second run changes no byte.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/lake/pa/a.parquet"))
    let again = try await lethe.forget([SubjectID("u-1")], reason: "again", by: "alice")[0]
    _ = try await lethe.approve([again.id], by: "bob")
    let second = try await lethe.run()
    let after = try Data(contentsOf: URL(fileURLWithPath: dir + "/lake/pa/a.parquet"))
    #expect(second.rowsMasked == 0 && after == bytes)
    #expect(try await lethe.request(again.id).status == .verified)
}

@Test func aParquetMaskTheColumnCannotHoldIsRefusedAtPlanTimeNamingDatasetAndColumn() async throws {
    let (dir, lethe) = try lake(
        """
        lake: ./lake
        datasets:
          - name: pa
            path: pa
            format: parquet
            subject: user_id
            pii: [age]
            erase: mask
            mask: {user_id: hash, age: redact}
          - name: duck
            path: duck
            format: parquet
            subject: user_id
        """)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/lake/pa/a.parquet"))
    _ = try await lethe.index()
    do {
        _ = try await lethe.forget([SubjectID("u-1")], reason: "ticket", by: "alice")
        Issue.record("filed a request whose mask the column cannot take")
    } catch let e as LetheError {
        #expect(e.code == .unsupported, "\(e)")
        #expect(
            e.message.contains("dataset `pa`") && e.message.contains("`age`") && e.message.contains("redact") && e.message.contains("nothing was filed"), "\(e)"
        )
    }
    #expect(try await lethe.requests(status: nil).isEmpty)
    #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/lake/pa/a.parquet")) == before)
}

// Delta tables delta-rs wrote (change data feed on and off): a mask is an `UPDATE` commit (remove +
// add, statistics recomputed, `update_preimage`/`update_postimage` change data), read back by delta-rs.

private struct DeltaRead: Decodable {
    struct Change: Decodable, Equatable {
        var user_id: String?, email: String?, ip: String?, age: Int64?, n: Int32?
        var _change_type: String
        var _commit_version: Int64
    }
    var rows: [ParquetRead.Row]
    var version: Int64
    var operations: [String: String]
    var cdf: [Change]?
}

private func readDelta(_ dir: String, cdfFrom: Int64? = nil) throws -> DeltaRead {
    try JSONDecoder().decode(DeltaRead.self, from: Data(try peers(["read-delta", dir] + (cdfFrom.map { [String($0)] } ?? [])).utf8))
}

@Test func deltaTablesOfDeltaRsAreMaskedAndBlankedByAnUpdateCommit() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-mask-delta-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try peers(["write-delta", dir + "/lake/masked", "cdf"])
    try peers(["write-delta", dir + "/lake/blanked"])
    let config = try LakeConfig.parse(
        """
        lake: ./lake
        datasets:
          - name: masked
            path: masked
            format: delta
            subject: user_id
            pii: [email, ip]
            erase: mask
            mask: {user_id: hash, email: null, ip: redact}
          - name: blanked
            path: blanked
            format: delta
            subject: user_id
            erase: blank
        """, file: dir + "/lethe.yaml", baseDir: dir)
    let secrets = StateSecrets(installationSecret: secret, requestKey: Array(repeating: 8, count: 32))
    let lethe = Lethe(
        config: config, store: LocalObjectStore(root: dir + "/lake"), meta: try SQLiteStateStore(inMemory: nil), secrets: secrets, stateFolder: nil)
    let before = try readDelta(dir + "/lake/masked"), beforeBlank = try readDelta(dir + "/lake/blanked")
    _ = try await lethe.index()
    let r = try await lethe.forget([SubjectID("u-1")], reason: "ticket", by: "alice")[0]
    _ = try await lethe.approve([r.id], by: "bob")
    let run = try await lethe.run()
    let done = try await lethe.request(r.id)
    #expect(done.status == .verified, "\(String(describing: done.failure)) \(run.failed)")
    #expect(run.rowsMasked == 4 && run.rowsBlanked == 4 && run.rowsDropped == 0)

    let key = MaskKey(installation: SubjectHasher(secret: secret))
    let p = String(decoding: key.pseudonym(Array("u-1".utf8)), as: UTF8.self)
    let after = try readDelta(dir + "/lake/masked", cdfFrom: before.version + 1)
    // The mask's commit, then the targeted vacuum's (VACUUM START/END).
    #expect(after.operations[String(before.version + 1)] == "UPDATE", "\(after.operations)")
    #expect(after.rows.count == before.rows.count)
    for (old, new) in zip(before.rows, after.rows) {
        #expect(new == (old.user_id == "u-1" ? ParquetRead.Row(user_id: p, email: nil, ip: "[redacted]", age: old.age, n: old.n) : old))
    }
    // The change feed of the mask: the rows as they are now; the pre-images (which held the subject)
    // were vacuumed with the history.
    let changes = try #require(after.cdf)
    #expect(!changes.isEmpty && changes.allSatisfy { $0.user_id != "u-1" && $0.email?.hasPrefix("u-1") != true })
    #expect(changes.filter { $0._change_type == "update_postimage" }.map(\.user_id) == Array(repeating: p, count: 4))

    let blank = try readDelta(dir + "/lake/blanked")
    #expect(blank.operations[String(beforeBlank.version + 1)] == "UPDATE", "\(blank.operations)")
    #expect(blank.rows.filter { $0 != ParquetRead.Row() } == beforeBlank.rows.filter { $0.user_id != "u-1" })
    #expect(blank.rows.filter { $0 == ParquetRead.Row() }.count == 4)
}
