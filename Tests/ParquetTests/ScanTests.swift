import Foundation
import Testing
@testable import Parquet

@Suite struct ScanTests {
    /// scanColumn yields, per row, the value as people write it: the canonical text
    /// parquet_fixtures.py computes independently from the logical values pyarrow reads
    /// (dates, times, timestamps with and without `Z`, INT96, decimals on every physical
    /// type, UUIDs, unsigned integers; floats as text that parses back to the same bits).
    @Test func scanMatchesTheCanonicalTextOfWhatPyarrowReads() throws {
        var scanned = 0
        var forms = Set<String>()
        for f in try fixtures() {
            let file = try ParquetFile(source: try LocalFileSource(path: f.path), name: f.name)
            let expected = try expectedCanonical(f)
            for desc in file.schema.columns where desc.isFlat {
                let oracle = try #require(expected[desc.dottedPath], "\(f.name) \(desc.dottedPath): no oracle")
                var got: [[UInt8]?] = []
                var rows: [Int64] = []
                for g in 0..<file.rowGroups.count {
                    try file.scanColumn(path: desc.path, rowGroup: g) { row, v in
                        rows.append(row)
                        got.append(v.map { Array($0) })
                    }
                }
                #expect(rows == Array(0..<file.numRows), "\(f.name) \(desc.dottedPath)")
                #expect(got.count == oracle.count, "\(f.name) \(desc.dottedPath)")
                for (i, (g, o)) in zip(got, oracle).enumerated() {
                    guard let text = o as? String else {
                        #expect(g == nil, "\(f.name) \(desc.dottedPath) row \(i): expected null")
                        continue
                    }
                    guard let g else { Issue.record("\(f.name) \(desc.dottedPath) row \(i): null, expected \(text)"); continue }
                    #expect(
                        CanonicalOracle.matches(g, text),
                        "\(f.name) \(desc.dottedPath) row \(i): \(String(decoding: g, as: UTF8.self)) vs \(CanonicalOracle.describe(text))")
                }
                forms.insert("\(CanonicalText.form(of: desc))")
                scanned += 1
            }
        }
        #expect(scanned > 300)
        // Every form is exercised.
        for form in [
            "raw", "signed", "unsigned", "boolean", "float", "double", "float16", "decimal(scale: 2)", "date",
            "time(digits: 9)", "timestamp(digits: 3, utc: false)", "timestamp(digits: 6, utc: true)", "int96", "uuid",
        ] {
            #expect(forms.contains(form), "no fixture column renders as \(form)")
        }
    }

    /// A column inside a list: each row gives the one value its elements hold; a row whose
    /// elements differ belongs to several subjects and is refused by name (`unsupported`).
    @Test func repeatedColumnsGiveEachRowItsOneValue() throws {
        let f = try fixture("lists_one_subject")
        let file = try ParquetFile(bytes: f.bytes, name: f.name)
        func scan(_ column: String) throws -> [String?] {
            var out: [String?] = []
            for g in 0..<file.rowGroups.count {
                try file.scanColumn(path: [column, "list", "element"], rowGroup: g) { _, v in out.append(v.map { String(decoding: $0, as: UTF8.self) }) }
            }
            return out
        }
        #expect(try scan("one") == ["u1", "u1", nil, nil, "u2", nil, "u3", "u2"])
        #expect(try scan("dates") == ["2021-01-03", nil, "2021-01-03", nil, nil, "1999-12-31", "2000-02-29", nil])
        do {
            _ = try scan("many")
            Issue.record("a row of two subjects was keyed")
        } catch let e as ParquetError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains("many.list.element") && e.message.contains("row 0"), "\(e)")
        }
        // Every repeated fixture column either agrees with the oracle row by row or is refused.
        for fx in try fixtures() {
            let file = try ParquetFile(source: try LocalFileSource(path: fx.path), name: fx.name)
            let expected = try expectedCanonical(fx)
            for desc in file.schema.columns where !desc.isFlat {
                let oracle = try #require(expected[desc.dottedPath])
                var single: [String?] = []
                var shared = false
                func leaves(_ x: Any?) -> [String] {
                    if let s = x as? String { return [s] }
                    if let a = x as? [Any?] { return a.flatMap(leaves) }
                    return []
                }
                for o in oracle {
                    let items = Set(leaves(o))
                    if items.count > 1 { shared = true }
                    single.append(items.first)
                }
                var got: [[UInt8]?] = []
                do {
                    for g in 0..<file.rowGroups.count {
                        try file.scanColumn(desc.index, rowGroup: g) { _, v in got.append(v.map { Array($0) }) }
                    }
                    #expect(!shared, "\(fx.name) \(desc.dottedPath): rows of several values were keyed")
                    #expect(got.count == single.count)
                    for (g, o) in zip(got, single) {
                        if let o, let g { #expect(CanonicalOracle.matches(g, o)) } else { #expect(g == nil && o == nil) }
                    }
                } catch let e as ParquetError {
                    #expect(shared && e.code == .unsupported, "\(fx.name) \(desc.dottedPath): \(e) oracle \(oracle.prefix(3))")
                }
            }
        }
    }

    @Test func scanRefusesWhatIsNotAColumn() throws {
        let file = try ParquetFile(bytes: try fixture("nested_v1").bytes)
        #expect(throws: ParquetError.self) { try file.scanColumn(path: ["nope"], rowGroup: 0) { _, _ in } }
        #expect(throws: ParquetError.self) { try file.scanColumn(path: ["subject"], rowGroup: 99) { _, _ in } }
    }

    @Test func canonicalIntegersAreDecimalText() throws {
        let f = try fixture("flat_snappy_v1")
        let file = try ParquetFile(bytes: f.bytes)
        let u64 = try file.column(["u64"])
        #expect(u64.sortOrder == .unsigned)
        var sawLarge = false
        try file.scanColumn(path: ["u64"], rowGroup: 0) { _, v in
            guard let v else { return }
            let s = String(decoding: v, as: UTF8.self)
            #expect(UInt64(s) != nil, "\(s)")
            if let x = UInt64(s), x > UInt64(Int64.max) { sawLarge = true }
        }
        #expect(sawLarge)
    }
}

/// The oracle's canonical text per leaf column (dotted path): per row nil, a hex string, or
/// (repeated columns) a list of them.
func expectedCanonical(_ f: Fixture) throws -> [String: [Any?]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: f.expected))
    let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var out: [String: [Any?]] = [:]
    for c in obj["columns"] as! [[String: Any]] {
        out[c["path"] as! String] = (c["canonical"] as! [Any]).map { v -> Any? in
            if v is NSNull { return nil }
            return unwrap(v)
        }
    }
    return out
}

private func unwrap(_ v: Any) -> Any? {
    if v is NSNull { return nil }
    if let a = v as? [Any] { return a.map(unwrap) as [Any?] }
    return v as? String
}

/// Compares scanned bytes with an oracle entry: hex of the expected text, or for floating
/// point `f32:`/`f64:`/`f16:` and the big-endian bits the text must parse back to.
enum CanonicalOracle {
    static func matches(_ got: [UInt8], _ expected: String) -> Bool {
        let text = String(decoding: got, as: UTF8.self)
        if expected.hasPrefix("f32:"), let bits = UInt32(expected.dropFirst(4), radix: 16) {
            guard let v = Float(text) else { return false }
            return v.isNaN ? Float(bitPattern: bits).isNaN : v.bitPattern == bits && text == v.description
        }
        if expected.hasPrefix("f64:"), let bits = UInt64(expected.dropFirst(4), radix: 16) {
            guard let v = Double(text) else { return false }
            return v.isNaN ? Double(bitPattern: bits).isNaN : v.bitPattern == bits && text == v.description
        }
        if expected.hasPrefix("f16:"), let bits = UInt16(expected.dropFirst(4), radix: 16) {
            guard let v = Float16(text) else { return false }
            return v.isNaN ? Float16(bitPattern: bits).isNaN : v.bitPattern == bits && text == v.description
        }
        return hex(got) == expected
    }

    static func describe(_ expected: String) -> String {
        if expected.hasPrefix("f") { return expected }
        var bytes: [UInt8] = []
        var i = expected.startIndex
        while i < expected.endIndex {
            let j = expected.index(i, offsetBy: 2)
            bytes.append(UInt8(expected[i..<j], radix: 16)!)
            i = j
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
