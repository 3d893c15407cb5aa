import Foundation
import Testing
import GRDB
import LetheCore
@testable import LetheSQLite
import LetheCatalog

/// Measures the subject index: file bytes per posting and per indexed record,
/// and `locate` latency. Opt-in (it writes a few hundred MB and takes minutes):
///
///     LETHE_PROBE=1 swift test --filter IndexSizeProbe
///
/// Knobs: `LETHE_PROBE_POSTINGS` (default 10,000,000), `LETHE_PROBE_OBJECTS`
/// (default 2,000), `LETHE_PROBE_VARIANTS` (default `one,three,objectIndex`),
/// `LETHE_PROBE_DIR` (default the temp folder). Prints one line per figure.
@Suite struct IndexSizeProbe {
    static let env = ProcessInfo.processInfo.environment
    static var enabled: Bool { env["LETHE_PROBE"] == "1" }

    struct Figures: CustomStringConvertible {
        var variant: String
        var postings: Int
        var records: Int
        var fileBytes: Int64
        var vacuumedBytes: Int64
        var loadSeconds: Double
        var p50: Double, p99: Double, max: Double
        var replaceMillis: Double, removeMillis: Double
        var description: String {
            func f(_ x: Double) -> String { String(format: "%.2f", x) }
            return """
                [probe] \(variant): postings=\(postings) records=\(records) load=\(f(loadSeconds))s \
                file=\(fileBytes)B (\(f(Double(fileBytes) / Double(postings))) B/posting, \
                \(f(Double(fileBytes) / Double(records))) B/record) \
                vacuumed=\(vacuumedBytes)B (\(f(Double(vacuumedBytes) / Double(postings))) B/posting, \
                \(f(Double(vacuumedBytes) / Double(records))) B/record) \
                locate p50=\(f(p50 * 1e6))µs p99=\(f(p99 * 1e6))µs max=\(f(max * 1e6))µs \
                replace-object=\(f(replaceMillis))ms remove-object=\(f(removeMillis))ms
                """
        }
    }

    @Test(.enabled(if: IndexSizeProbe.enabled, "set LETHE_PROBE=1 to measure the subject index"))
    func measure() async throws {
        let postings = Int(Self.env["LETHE_PROBE_POSTINGS"] ?? "") ?? 10_000_000
        let objects = Int(Self.env["LETHE_PROBE_OBJECTS"] ?? "") ?? 2_000
        let variants = (Self.env["LETHE_PROBE_VARIANTS"] ?? "one,three,objectIndex").split(separator: ",").map(String.init)
        let base = (Self.env["LETHE_PROBE_DIR"] ?? NSTemporaryDirectory()) + "/lethe-probe-\(getpid())"
        defer { removeFolder(base) }
        print("[probe] \(postings) postings over \(objects) objects; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        fflush(nil)
        for v in variants {
            let figures: Figures
            switch v {
            case "one": figures = try await measureStore(folder: base + "/one", postings: postings, objects: objects, maxRows: 1)
            case "three": figures = try await measureStore(folder: base + "/three", postings: postings, objects: objects, maxRows: 5)
            case "objectIndex": figures = try await measureObjectIndex(folder: base + "/oi", postings: postings, objects: objects)
            default: Issue.record("unknown probe variant \(v)"); continue
            }
            print(figures)
            fflush(nil)
            #expect(figures.postings == postings)
        }
    }

    /// The postings of object `o`: random 64-bit prefixes, each with 1...maxRows rows
    /// (uniform, so the mean is (1 + maxRows) / 2).
    static func postings(object o: Int, count: Int, maxRows: Int, seed: UInt64 = 42) -> [Int64: [Int64]] {
        var rng = SplitMix64(seed: seed &* 1_000_003 &+ UInt64(o))
        var out: [Int64: [Int64]] = [:]
        out.reserveCapacity(count)
        var row: Int64 = 0
        while out.count < count {
            let n = maxRows == 1 ? 1 : Int.random(in: 1...maxRows, using: &rng)
            var rows: [Int64] = []
            for _ in 0..<n {
                row += Int64.random(in: 1...40, using: &rng)
                rows.append(row)
            }
            out[Int64(bitPattern: rng.next())] = rows
        }
        return out
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    func measureStore(folder: String, postings: Int, objects: Int, maxRows: Int) async throws -> Figures {
        let store = try SQLiteStateStore(folder: folder)
        let perObject = postings / objects
        var sample: [Int64] = []
        var records = 0
        let clock = ContinuousClock()
        let start = clock.now
        for o in 0..<objects {
            let p = Self.postings(object: o, count: perObject, maxRows: maxRows)
            records += p.values.reduce(0) { $0 + $1.count }
            if o % max(1, objects / 100) == 0 { sample += p.keys.prefix(100) }
            try await store.putIndexedObject(sampleObject("ds\(o % 4)", "obj-\(o)", records: 1_000_000), postings: p)
        }
        let load = clock.now - start
        let stats = try await store.indexStats()
        #expect(stats.postings == Int64(perObject * objects))

        try await store.writer.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        let bytes = Self.fileSize(store.databasePath)

        var rng = SplitMix64(seed: 5)
        var lat: [Double] = []
        lat.reserveCapacity(10_000)
        for _ in 0..<10_000 {
            let k = sample.randomElement(using: &rng)!
            let t = clock.now
            let hits = try await store.locate(prefix: k, dataset: nil)
            lat.append((clock.now - t).seconds)
            #expect(hits.count == 1)
        }
        lat.sort()

        // Replacing and removing one full object (perObject postings).
        let o = objects / 2
        var t = clock.now
        try await store.putIndexedObject(
            sampleObject("ds\(o % 4)", "obj-\(o)", records: 1_000_000),
            postings: Self.postings(object: o, count: perObject, maxRows: maxRows, seed: 43))
        let replace = (clock.now - t).seconds * 1000
        t = clock.now
        try await store.removeObject(dataset: "ds\(o % 4)", key: "obj-\(o)")
        let remove = (clock.now - t).seconds * 1000
        #expect(try await store.indexStats().postings == Int64(perObject * (objects - 1)))

        try await store.writer.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM")
            _ = try db.checkpoint(.truncate)
        }
        let vacuumed = Self.fileSize(store.databasePath) * Int64(objects) / Int64(objects - 1)

        return Figures(
            variant: maxRows == 1 ? "one row per posting (bucket lists)" : "1-\(maxRows) rows per posting (bucket lists)",
            postings: perObject * objects, records: records, fileBytes: bytes, vacuumedBytes: vacuumed,
            loadSeconds: load.seconds, p50: Self.percentile(lat, 0.5), p99: Self.percentile(lat, 0.99),
            max: lat.last!, replaceMillis: replace, removeMillis: remove)
    }

    /// The alternative design: no bucket lists, a second index on `postings(object)`.
    func measureObjectIndex(folder: String, postings: Int, objects: Int) async throws -> Figures {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/alt.sqlite"
        let pool = try DatabasePool(path: path)
        try await pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE postings(k INTEGER NOT NULL, object INTEGER NOT NULL, rows BLOB NOT NULL,
                                          PRIMARY KEY(k, object)) WITHOUT ROWID;
                    CREATE INDEX postings_object ON postings(object);
                    """)
        }
        let perObject = postings / objects
        let clock = ContinuousClock()
        let start = clock.now
        var sample: [Int64] = []
        for o in 0..<objects {
            let p = Self.postings(object: o, count: perObject, maxRows: 1).map { ($0.key, Data(PostingCodec.encodeRows($0.value))) }
                .sorted { $0.0 < $1.0 }
            if o % max(1, objects / 100) == 0 { sample += p.prefix(100).map(\.0) }
            try await pool.write { db in
                let s = try db.cachedStatement(sql: "INSERT INTO postings(k, object, rows) VALUES (?, ?, ?)")
                for (k, rows) in p { try s.execute(arguments: [k, o + 1, rows]) }
            }
        }
        let load = clock.now - start
        try await pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        let bytes = Self.fileSize(path)
        var rng = SplitMix64(seed: 5)
        var lat: [Double] = []
        for _ in 0..<10_000 {
            let k = sample.randomElement(using: &rng)!
            let t = clock.now
            let n = try await pool.read { db in
                try Row.fetchAll(db.cachedStatement(sql: "SELECT object, rows FROM postings WHERE k = ?"), arguments: [k]).count
            }
            lat.append((clock.now - t).seconds)
            #expect(n == 1)
        }
        lat.sort()
        let t = clock.now
        try await pool.write { db in try db.execute(sql: "DELETE FROM postings WHERE object = ?", arguments: [objects / 2 + 1]) }
        let remove = (clock.now - t).seconds * 1000
        try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM")
            _ = try db.checkpoint(.truncate)
        }
        let vacuumed = Self.fileSize(path) * Int64(objects) / Int64(objects - 1)
        return Figures(
            variant: "one row per posting (second index on object, no bucket lists)", postings: perObject * objects,
            records: perObject * objects, fileBytes: bytes, vacuumedBytes: vacuumed, loadSeconds: load.seconds,
            p50: Self.percentile(lat, 0.5), p99: Self.percentile(lat, 0.99), max: lat.last!,
            replaceMillis: .nan, removeMillis: remove)
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
