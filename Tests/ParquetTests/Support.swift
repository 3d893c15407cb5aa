import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// Paths and helpers shared by the tests.
enum Env {
    static let script = Peers.script("parquet_fixtures.py")

    /// Runs the fixture script; returns stdout. Throws if Python is missing or the script fails.
    static func runScript(_ args: [String]) throws -> String {
        try Peers.python([script] + args, what: "parquet_fixtures.py \(args.joined(separator: " "))")
    }

    struct ScriptFailed: Error, CustomStringConvertible { var description: String }

    static func tempDir(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("parquet-tests-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: u)
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

struct Fixture: Sendable, CustomStringConvertible {
    var name: String
    var path: String
    var expected: String
    var writer: String
    var description: String { name }
    var bytes: [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }
}

/// Fixtures generated once per test process by scripts/parquet_fixtures.py.
let fixtureSet: Result<[Fixture], any Error> = Result {
    let dir = Env.tempDir("fixtures")
    _ = try Env.runScript(["generate", dir.path])
    let data = try Data(contentsOf: dir.appendingPathComponent("manifest.json"))
    let list = try JSONSerialization.jsonObject(with: data) as! [[String: String]]
    return list.map { Fixture(name: $0["name"]!, path: $0["path"]!, expected: $0["expected"]!, writer: $0["writer"]!) }
}

func fixtures() throws -> [Fixture] { try fixtureSet.get() }

func fixture(_ name: String) throws -> Fixture {
    guard let f = try fixtures().first(where: { $0.name == name }) else { throw Env.ScriptFailed(description: "no fixture \(name)") }
    return f
}

/// A leaf value or its nesting, in the canonical form parquet_fixtures.py dumps.
indirect enum Proj: Equatable, CustomStringConvertible {
    case null
    case value(String)
    case list([Proj])

    init(json: Any) {
        if let s = json as? String { self = .value(s) } else if let a = json as? [Any] { self = .list(a.map(Proj.init(json:))) } else { self = .null }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .value(let s): return s
        case .list(let l): return "[" + l.map(\.description).joined(separator: ",") + "]"
        }
    }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    var s = ""
    for b in bytes { s += String(b, radix: 16).count == 1 ? "0" + String(b, radix: 16) : String(b, radix: 16) }
    return s
}

/// The canonical string of value `i`.
func canonical(_ v: ColumnValues, _ i: Int) -> String {
    func bits<T: BinaryInteger>(_ x: T, _ width: Int) -> String {
        let s = String(x, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    switch v {
    case .boolean(let a): return a[i] ? "true" : "false"
    case .int32(let a): return String(a[i])
    case .int64(let a): return String(a[i])
    case .int96(let a): return hex(a[i].bytes)
    case .float(let a): return bits(a[i].bitPattern, 8)
    case .double(let a): return bits(a[i].bitPattern, 16)
    case .byteArray(let b), .fixedLenByteArray(let b): return hex(b[i])
    }
}

/// Rebuilds each row's projection of one leaf column from its levels.
func projections(_ data: ColumnData, _ desc: ColumnDescriptor) -> [Proj] {
    let nodes = desc.pathElements
    let k = nodes.count
    var defAt = [Int](repeating: 0, count: k), repAt = [Int](repeating: 0, count: k)
    var d = 0, r = 0
    for (j, n) in nodes.enumerated() {
        if n.repetition != .required { d += 1 }
        if n.repetition == .repeated { r += 1 }
        defAt[j] = d; repAt[j] = r
    }
    let n = data.slotCount
    let def = data.definitionLevels ?? [UInt16](repeating: UInt16(desc.maxDefinitionLevel), count: n)
    let rep = data.repetitionLevels ?? [UInt16](repeating: 0, count: n)
    var pos = 0, vi = 0
    func elem(_ j: Int) -> Proj {
        if j == k - 1 {
            let s = canonical(data.values, vi)
            vi += 1; pos += 1
            return .value(s)
        }
        return node(j + 1)
    }
    func node(_ j: Int) -> Proj {
        let dl = Int(def[pos])
        switch nodes[j].repetition {
        case .repeated?:
            if dl < defAt[j] { pos += 1; return .list([]) }
            var items: [Proj] = []
            repeat { items.append(elem(j)) } while pos < n && Int(rep[pos]) == repAt[j]
            return .list(items)
        case .optional?:
            if dl < defAt[j] { pos += 1; return .null }
            return elem(j)
        default:
            return elem(j)
        }
    }
    var rows: [Proj] = []
    while pos < n { rows.append(node(0)) }
    return rows
}

/// The expected rows per leaf column of a fixture, as pyarrow read them.
func expectedColumns(_ f: Fixture) throws -> (numRows: Int, columns: [(path: String, physical: String, rows: [Proj])]) {
    let data = try Data(contentsOf: URL(fileURLWithPath: f.expected))
    let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let cols = (obj["columns"] as! [[String: Any]]).map { c in
        (path: c["path"] as! String, physical: c["physical"] as! String, rows: (c["rows"] as! [Any]).map(Proj.init(json:)))
    }
    return (obj["num_rows"] as! Int, cols)
}

/// Everything our reader reads, as per-leaf projections over all row groups.
func readAllProjections(_ file: ParquetFile) throws -> [[Proj]] {
    var out: [[Proj]] = Array(repeating: [], count: file.schema.columns.count)
    for g in 0..<file.rowGroups.count {
        for (c, desc) in file.schema.columns.enumerated() {
            out[c] += projections(try file.readColumn(c, rowGroup: g), desc)
        }
    }
    return out
}
