import Testing
import Foundation
import LetheTestSupport
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import LetheSQLite

/// A Parquet lake written by pyarrow (scripts/parquet_lake.py), erased through the
/// engine over a local folder, then read back by pyarrow and DuckDB.
private enum PyLake {
    static let script = Peers.script("parquet_lake.py")

    struct Failed: Error, CustomStringConvertible { var description: String }

    /// Runs scripts/parquet_lake.py; returns its stdout.
    static func run(_ args: [String]) throws -> String {
        try Peers.python([script] + args, what: "parquet_lake.py \(args.first ?? "")")
    }

    /// What `parquet_lake.py write` reports about the lake it wrote.
    struct Manifest: Decodable {
        var rows: [String: [Int64]]
        var records: Int64
        var objects: Int
        var removed: [String]
        var untouched: [String]
    }

    /// Writes the lake into a new temporary folder.
    static func write(subject: String) throws -> (dir: String, manifest: Manifest) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pqlake-\(UUID().uuidString)").path
        let out = try run(["write", dir, subject])
        return (dir, try JSONDecoder().decode(Manifest.self, from: Data(out.utf8)))
    }

    /// A `Lethe` over the lake folder, with the SQLite metastore in memory.
    static func lethe(_ dir: String) throws -> Lethe {
        let file = dir + "/lethe.yaml"
        let config = try LakeConfig.parse(try String(contentsOfFile: file, encoding: .utf8), file: file, baseDir: dir)
        guard case .folder(let lake) = config.lake else { throw Failed(description: "the lake is not a folder") }
        let secrets = StateSecrets(installationSecret: Array(repeating: 7, count: 32), requestKey: Array(repeating: 8, count: 32))
        return Lethe(
            config: config, store: LocalObjectStore(root: lake), meta: try SQLiteStateStore(inMemory: nil),
            secrets: secrets, stateFolder: nil)
    }
}

@Suite struct ParquetLakeTests {
    @Test func indexLocateForgetRunVerifyOnAPyarrowLake() async throws {
        let subject = "u-00042"
        let (dir, manifest) = try PyLake.write(subject: subject)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lethe = try PyLake.lethe(dir)

        // Index: every object scanned, nothing quarantined.
        let ir = try await lethe.index()
        #expect(ir.quarantined.isEmpty, "quarantined: \(ir.quarantined.map { "\($0.object): \($0.issue)" })")
        #expect(ir.objectsScanned == manifest.objects)
        #expect(ir.records == manifest.records)

        // Locate: exactly the rows pyarrow sees for the subject, in each object.
        let hits = try await lethe.locate(SubjectID(subject))
        var located: [String: [Int64]] = [:]
        for h in hits { located[h.object.key] = h.rows }
        #expect(located == manifest.rows)
        #expect(Set(hits.map(\.object.dataset)) == ["events", "events_csv"])
        #expect(try await lethe.locate(SubjectID("u-0004")).isEmpty)  // a prefix of the subject is someone else

        // Forget, four eyes, run.
        let r = try await lethe.forget([SubjectID(subject)], reason: "ticket 1", by: "alice")[0]
        let planBytes = try #require(r.plan)
        let plan = try #require(ErasurePlan.decode(planBytes))
        #expect(plan.datasets.map(\.name) == ["events", "events_csv"])
        let total = manifest.rows.values.reduce(0) { $0 + Int64($1.count) }
        #expect(plan.totalRows == total)
        #expect(plan.totalObjects == manifest.rows.count)
        await #expect(throws: LetheError.self) { _ = try await lethe.approve([r.id], by: "alice") }
        _ = try await lethe.approve([r.id], by: "bob")
        let run = try await lethe.run()
        #expect(run.failed.isEmpty, "failed: \(run.failed.map(\.reason))")
        #expect(run.rowsDropped == total)
        #expect(run.objectsRemoved == manifest.removed.count)
        #expect(run.objectsRewritten == manifest.rows.count - manifest.removed.count)

        // The file that was all the subject's is gone; a file without the subject is untouched.
        for key in manifest.removed {
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/lake/\(key)"), "\(key) should be removed")
        }
        #expect(!manifest.untouched.isEmpty)
        for key in manifest.untouched {
            #expect(
                FileManager.default.contents(atPath: "\(dir)/lake/\(key)") == FileManager.default.contents(atPath: "\(dir)/orig/\(key)"),
                "\(key) held no row of the subject and must stay byte for byte")
        }

        // pyarrow and DuckDB: every object reads as the original minus the subject's rows, same schema.
        #expect(try PyLake.run(["check", dir, subject]).trimmingCharacters(in: .whitespacesAndNewlines) == "ok")

        // Verified clean, by the run and by an explicit residue scan.
        let done = try await lethe.request(r.id)
        #expect(done.status == .verified)
        let v = try await lethe.verify(ids: [r.id])
        #expect(v.count == 1)
        #expect(v.first?.clean == true)
        #expect(v.first?.found.isEmpty == true && v.first?.unreadable.isEmpty == true)
        #expect(v.first?.recordsScanned == manifest.records - total)  // both datasets, after erasure
        #expect(try await lethe.locate(SubjectID(subject)).isEmpty)

        // The index is current: others are still located, and nothing is rescanned.
        #expect(try await lethe.locate(SubjectID("u-00007")).contains { $0.object.key.hasSuffix(".parquet") })
        let again = try await lethe.index()
        #expect(again.objectsScanned == 0 && again.objectsRemoved == 0)
        #expect(!(try await lethe.meta.auditEntries()).contains { $0.details.contains(subject) })
    }

    @Test func theOracleRejectsALakeThatStillHoldsTheSubject() throws {
        // The pyarrow/DuckDB check must be able to fail: before erasure it names the leftovers.
        let (dir, manifest) = try PyLake.write(subject: "u-00042")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(!manifest.removed.isEmpty)
        do {
            _ = try PyLake.run(["check", dir, "u-00042"])
            Issue.record("check passed on a lake that was not erased")
        } catch let e as Peers.Failure {
            #expect(e.description.contains("still exists"))
            #expect(e.description.contains("DuckDB finds"))
        }
    }
}
