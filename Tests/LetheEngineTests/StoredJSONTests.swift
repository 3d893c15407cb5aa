import Foundation
import Testing
import LetheCore
@testable import DeltaLake
@testable import LetheEngine

/// The byte writers and readers of what a run stores per request (plans, verification results)
/// against Foundation's `JSONEncoder`/`JSONDecoder`, which they replace on the run's serial path.
@Suite struct StoredJSONTests {
    struct Rng: RandomNumberGenerator {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }
        mutating func text() -> String {
            let pieces = ["events", "/", "part-0", ".parquet", "é", "😀", "\"", "\\", "\n", "\t", "x y", "u-123", "%20", ":", ","]
            return (0..<Int.random(in: 0...5, using: &self)).map { _ in pieces.randomElement(using: &self)! }.joined()
        }
        mutating func maybe(_ percent: Int = 50) -> String? { chance(percent) ? text() : nil }
        mutating func int() -> Int64 { chance(20) ? Int64.random(in: -5...5, using: &self) : Int64.random(in: 0...(1 << 40), using: &self) }
    }

    static func randomPlan(_ r: inout Rng) -> ErasurePlan {
        let datasets = (0..<Int.random(in: 0...3, using: &r)).map { _ in
            ErasurePlan.Dataset(
                name: r.text(), format: "delta", role: ["holds", "derived", "rebuild", "may_hold"].randomElement(using: &r)!,
                derivedFrom: (0..<Int.random(in: 0...2, using: &r)).map { _ in r.text() },
                objects: (0..<Int.random(in: 0...4, using: &r)).map { _ in
                    ErasurePlan.Object(
                        key: r.maybe(), ref: r.chance(70) ? r.int() : nil, rows: r.int(), state: r.text(), issue: r.maybe(20))
                }, rows: r.int(), rebuild: r.maybe(20), state: r.maybe(30), issue: r.maybe(20), action: r.chance(20) ? "mask" : nil)
        }
        let shred: [ErasurePlan.ShredKey]? =
            r.chance(40)
            ? (0..<Int.random(in: 0...2, using: &r)).map { _ in
                .init(subjectKey: r.text(), keyID: r.maybe(), kek: r.maybe(), state: r.chance(50) ? "held" : "destroyed")
            } : nil
        return ErasurePlan(
            subjectKey: r.text(), plannedAt: r.int(), datasets: datasets, totalObjects: datasets.reduce(0) { $0 + $1.objects.count }, totalRows: r.int(),
            nfcSubjectKey: r.maybe(30), shred: shred)
    }

    @Test func plansReadByTheByteParserEqualJSONDecodersReading() throws {
        var r = Rng(s: 12)
        for _ in 0..<2_000 {
            let p = Self.randomPlan(&r)
            #expect(ErasurePlan.decode(p.json) == p)
            #expect(ErasurePlan.decode(p.encodedJSON) == p)
            #expect(ErasurePlan.decodedByFoundation(p.json) == p)
        }
    }

    /// Documents that are not plans: both readers refuse them, and both accept what is a plan.
    @Test func notQuitePlansAreRefusedByBothReaders() throws {
        var r = Rng(s: 7)
        var refused = 0
        for _ in 0..<1_500 {
            let p = Self.randomPlan(&r)
            guard case .object(var o) = try JSONValue.parse(p.json) else { Issue.record("not an object"); return }
            // One change a document: a key dropped, a value of another type, null, or an unknown key.
            let change = Int.random(in: 0..<6, using: &r)
            let keys = o.keys.sorted()
            let k = keys.randomElement(using: &r)!
            switch change {
            case 0: o[k] = nil
            case 1: o[k] = .string("x")
            case 2: o[k] = .null
            case 3: o["unknown_key"] = .int(1)
            case 4:
                // Inside a dataset or an object.
                if case .array(var ds)? = o["datasets"], !ds.isEmpty, case .object(var d) = ds[0] {
                    if case .array(var os)? = d["objects"], !os.isEmpty, case .object(var x) = os[0], r.chance(50) {
                        let xk = x.keys.sorted().randomElement(using: &r)!
                        x[xk] = r.chance(50) ? .null : .bool(true)
                        os[0] = .object(x)
                        d["objects"] = .array(os)
                    } else {
                        let dk = d.keys.sorted().randomElement(using: &r)!
                        d[dk] = r.chance(50) ? .null : (r.chance(50) ? .int(3) : nil)
                    }
                    ds[0] = .object(d)
                    o["datasets"] = .array(ds)
                }
            default: o[k] = .array([])
            }
            let bytes = Array(JSONValue.object(o).text.utf8)
            let mine = ErasurePlan.decode(bytes), theirs = ErasurePlan.decodedByFoundation(bytes)
            #expect(mine == theirs, "\(String(decoding: bytes, as: UTF8.self))")
            if theirs == nil { refused += 1 }
        }
        #expect(refused > 300, "the changes must reach refusals")
        for bad in ["", "[]", "{", "null", #"{"subject_key":1}"#] { #expect(ErasurePlan.decode(Array(bad.utf8)) == nil) }
    }

    static func randomVerification(_ r: inout Rng) -> Verification {
        func founds(_ n: Int) -> [Verification.Found] {
            (0..<Int.random(in: 0...n, using: &r)).map { _ in .init(dataset: r.text(), object: r.text(), rows: r.int(), issue: r.maybe(30)) }
        }
        func opt(_ x: Int) -> Int? { r.chance(50) ? x : nil }
        var v = Verification(
            id: r.text(), subjectKey: r.text(), clean: r.chance(50), at: r.int(), datasets: (0..<Int.random(in: 0...3, using: &r)).map { _ in r.text() },
            objectsScanned: Int(r.int()), logsExamined: opt(Int(r.int())), listingsExamined: opt(Int(r.int())), recordsScanned: r.int(),
            found: founds(3), unreadable: founds(2), stateFilesScanned: Int(r.int()), stateHits: (0..<Int.random(in: 0...2, using: &r)).map { _ in r.text() },
            stateScanSkipped: r.maybe(30), logHits: r.chance(40) ? [r.text()] : nil, problems: r.chance(40) ? [r.text(), r.text()] : nil)
        v.versionsExamined = opt(Int(r.int()))
        v.proof = r.maybe()
        v.objectsListed = opt(Int(r.int()))
        v.objectsUnchanged = opt(Int(r.int()))
        v.objectsReread = opt(Int(r.int()))
        v.objectsRereadInPart = opt(Int(r.int()))
        v.objectsIndexedNow = opt(Int(r.int()))
        v.bytesRead = r.chance(50) ? r.int() : nil
        v.mentions = r.chance(30) ? founds(2) : nil
        v.evidence = r.chance(40) ? .init(asked: Int(r.int()), ruledOut: Int(r.int()), by: [r.text()]) : nil
        v.keyDestroyed = r.chance(50) ? r.chance(50) : nil
        return v
    }

    @Test func verificationsAreWrittenAsJSONEncoderWritesThemButForSlashes() throws {
        var r = Rng(s: 99)
        for _ in 0..<2_000 {
            let v = Self.randomVerification(&r)
            let mine = String(decoding: v.json, as: UTF8.self), theirs = String(decoding: v.encodedJSON, as: UTF8.self)
            #expect(mine.replacingOccurrences(of: "/", with: "\\/") == theirs)
            #expect(try JSONDecoder().decode(Verification.self, from: Data(v.json)) == v)
        }
    }

    @Test func commitNamesAreTheLogsTwentyDigits() {
        var r = Rng(s: 3)
        let values: [Int64] =
            [0, 1, 9, 10, 99, 100, 5_000, 12_345_678_901_234, Int64.max, -1, -42] + (0..<500).map { _ in Int64.random(in: 0...Int64.max, using: &r) }
        for v in values {
            #expect(DeltaTable.commitName(v) == String(format: "%020lld.json", v))
            #expect(DeltaTable.versionDigits(v) == String(format: "%020lld", v))
        }
    }

    @Test func visibleParquetFilesAreTheOnesTheSplitRuleNamed() {
        func old(_ key: String, _ folder: String) -> Bool {
            let base = key.dropFirst(folder.count).split(separator: "/").last.map(String.init) ?? ""
            return !base.hasPrefix(".") && base.hasSuffix(".parquet")
        }
        var r = Rng(s: 5)
        let parts = ["a", ".b", "x.parquet", ".x.parquet", "p=1", "é.parquet", "parquet", ".parquet", "y.parquet.crc", "_delta_log"]
        for folder in ["", "events/", "lake/t é/"] {
            for _ in 0..<3_000 {
                let key = folder + (0..<Int.random(in: 1...3, using: &r)).map { _ in parts.randomElement(using: &r)! }.joined(separator: "/")
                #expect(DeltaDatasetDriver.isVisibleParquet(key, under: folder) == old(key, folder), "\(key)")
            }
        }
    }
}
