import Foundation
import LetheCore
import LetheStorage
import Parquet

/// The values that name a subject, and the columns that hold them, for a field-aware search of
/// a table's log. The log is parsed and *values* are compared (never bytes), so a short id such
/// as `5` or `Mino` is found where it is a value and nowhere else (not inside a timestamp, a
/// size or a file name):
///
/// - the bounds (`minValues`, `maxValues`) of the subject's columns in an `add`/`remove`/`cdc`
///   action's `stats` (JSON commits, `.crc` `allFiles`, checkpoints and sidecars, `stats_parsed`
///   included), and the action's `partitionValues` for those columns;
/// - the string fields of a commitInfo's `operationParameters` and its `userMetadata`, where the
///   value must stand as a whole token (another tool's `DELETE … WHERE id = 5`): the characters
///   on either side are not letters, digits, `_`, `.` or `-`.
public struct SubjectValues: Sendable, Equatable {
    /// The subject's columns as physical paths (statistics and partition values use them).
    public var columns: [[String]]
    /// The subject's values in canonical text form (each part of a composite subject).
    public var values: Set<String>

    public init(columns: [[String]], values: Set<String>) {
        self.columns = columns
        self.values = values.filter { !$0.isEmpty }
        self.numbers = Dictionary(uniqueKeysWithValues: self.values.compactMap { v in Self.number(v).map { (v, $0) } })
    }

    /// Values that are plain decimal numbers, as doubles (JSON statistics write numbers).
    private var numbers: [String: Double] = [:]

    public var isEmpty: Bool { values.isEmpty }

    /// No subject: matches nothing.
    public static let none = SubjectValues(columns: [], values: [])

    static func number(_ s: String) -> Double? {
        guard !s.isEmpty, s.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }) else { return nil }
        return Double(s)
    }

    /// The values a statistics or partition value is (one at most, but numbers written
    /// differently, `5` and `5.0`, are the same number).
    func matching(_ v: DeltaJSON) -> [String] {
        switch v {
        case .string(let s): return values.contains(s) ? [s] : []
        case .int(let i):
            let text = String(i)
            return values.contains(text) ? [text] : numbers.filter { $0.value == Double(i) }.map(\.key)
        case .double(let d): return numbers.filter { $0.value == d }.map(\.key)
        default: return []
        }
    }

    /// True when a statistics or partition value is one of the values.
    func matches(_ v: DeltaJSON) -> Bool { !matching(v).isEmpty }

    /// The values `text` holds as whole tokens.
    func named(in text: String) -> [String] {
        let hay = Array(text.utf8)
        return values.filter { Self.containsToken(hay, Array($0.utf8)) }
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2E || b == 0x2D
    }

    static func containsToken(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, hay.count >= needle.count else { return false }
        var i = 0
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == needle[0], hay[i..<(i + needle.count)].elementsEqual(needle) {
                let before = i == 0 || !isTokenByte(hay[i - 1]) || !isTokenByte(needle[0])
                let afterIndex = i + needle.count
                let after = afterIndex == hay.count || !isTokenByte(hay[afterIndex]) || !isTokenByte(needle[needle.count - 1])
                if before && after { return true }
            }
            i += 1
        }
        return false
    }

    // MARK: fields of actions

    /// The fields of a statistics object (parsed `stats` or `stats_parsed`) that hold a value.
    func statsHits(_ stats: DeltaJSON, prefix: String) -> [LogHit] {
        var out: [LogHit] = []
        for bound in ["minValues", "maxValues"] {
            guard let b = stats[bound] else { continue }
            for col in columns {
                var v: DeltaJSON? = b
                for p in col { v = v?[p] }
                for value in v.map(matching) ?? [] { out.append(LogHit(field: "\(prefix).\(bound).\(col.joined(separator: "."))", value: value)) }
            }
        }
        return out
    }

    /// The fields of an `add`, `remove` or `cdc` action (or a `.crc` `allFiles` entry) that hold a value.
    func fileActionHits(_ o: [String: DeltaJSON]) -> [LogHit] {
        var out: [LogHit] = []
        if let s = o["stats"]?.string, let j = try? DeltaJSON.parse(Array(s.utf8)) { out += statsHits(j, prefix: "stats") }
        if let j = o["stats_parsed"], j.object != nil { out += statsHits(j, prefix: "stats_parsed") }
        for col in columns where col.count == 1 {
            for field in ["partitionValues", "partitionValues_parsed"] {
                for value in o[field]?[col[0]].map(matching) ?? [] { out.append(LogHit(field: "\(field).\(col[0])", value: value)) }
            }
        }
        return out
    }

    /// The fields of a commitInfo that name a value.
    func commitInfoHits(_ info: [String: DeltaJSON]) -> [LogHit] {
        var out: [LogHit] = []
        for field in ["operationParameters", "userMetadata"] {
            guard let v = info[field] else { continue }
            for value in Set(Self.strings(v).flatMap(named(in:))) { out.append(LogHit(field: "commitInfo.\(field)", value: value)) }
        }
        return out
    }

    static func strings(_ v: DeltaJSON) -> [String] {
        switch v {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap(strings)
        case .object(let o): return o.values.flatMap(strings)
        default: return []
        }
    }

    /// The fields of one log action that hold a value.
    func actionHits(_ a: DeltaAction) -> [LogHit] {
        switch a {
        case .add(let f): return fileActionHits(f.raw).map { $0.under("add") }
        case .remove(let r): return fileActionHits(r.raw).map { $0.under("remove") }
        case .cdc(let c): return fileActionHits(c.raw).map { $0.under("cdc") }
        case .commitInfo(let c): return commitInfoHits(c)
        default: return []
        }
    }
}

/// A field of a log file that holds one of the values.
public struct LogHit: Sendable, Hashable {
    /// E.g. `add.stats.minValues.user_id`, `commitInfo.operationParameters`.
    public var field: String
    /// The value it holds.
    public var value: String

    func under(_ prefix: String) -> LogHit { LogHit(field: prefix + "." + field, value: value) }
}

/// A log file with fields that hold a subject's value.
public struct LogResidue: Sendable, Equatable {
    /// The object key of the log file.
    public var key: String
    /// The fields, e.g. `add.stats.minValues.user_id`, `commitInfo.operationParameters`.
    public var fields: [String]
    /// The values found (one file can hold several subjects' values).
    public var values: Set<String>
}

extension DeltaTable {
    /// Every log file whose fields hold one of the subject's values (see `SubjectValues`):
    /// commits, checkpoints and their sidecars, version checksums (`.crc`), log compactions and
    /// `_last_checkpoint`. Nothing is written.
    public func logResidue(_ subject: SubjectValues) async throws -> [LogResidue] {
        guard !subject.isEmpty else { return [] }
        let listing = try await listLog()
        let names = listing.logFiles
        let found = try await boundedMap(names, limit: 8) { [self] name -> LogResidue? in
            let k = logKey(name)
            let bytes: [UInt8]
            do { bytes = try await store.read(k) } catch let e as LetheError where e.code == .notFound { return nil }
            let hits = try residueFields(bytes, name: name, subject: subject)
            return hits.isEmpty ? nil : LogResidue(key: k, fields: Array(Set(hits.map(\.field))).sorted(), values: Set(hits.map(\.value)))
        }
        return found.compactMap { $0 }
    }

    /// The fields of one log file (by its name under `_delta_log`) that hold a value.
    func residueFields(_ bytes: [UInt8], name: String, subject: SubjectValues) throws -> [LogHit] {
        if name.hasSuffix(".parquet") {
            return try CheckpointReader.residue(bytes, name: name, table: root, subject: subject)
        }
        if name.hasSuffix(".crc") {
            guard let j = try? DeltaJSON.parse(bytes) else {
                throw DeltaError.corrupt(root, "version checksum is not valid JSON", file: name)
            }
            return (j["allFiles"]?.array ?? []).compactMap(\.object).flatMap { subject.fileActionHits($0).map { $0.under("allFiles") } }
        }
        if name == "_last_checkpoint" {
            guard let j = try? DeltaJSON.parse(bytes) else { return [] }
            var out: [LogHit] = []
            for a in j["v2Checkpoint"]?["nonFileActions"]?.array ?? [] {
                guard let o = a.object, o.count == 1, let (kind, body) = o.first else { continue }
                if let b = body.object, ["add", "remove"].contains(kind) { out += subject.fileActionHits(b).map { $0.under("v2Checkpoint.\(kind)") } }
            }
            return out
        }
        return try parseCommit(bytes, name: name).flatMap(subject.actionHits)
    }
}

extension CheckpointReader {
    /// The fields of a Parquet checkpoint (or sidecar) that hold a value: `add`/`remove` `stats`
    /// (JSON text), `stats_parsed` bounds and `partitionValues(_parsed)` of the subject's columns.
    static func residue(_ bytes: [UInt8], name: String, table: String, subject: SubjectValues) throws -> [LogHit] {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: name) } catch {
            throw DeltaError.corrupt(table, "checkpoint is not readable Parquet: \(error)", file: name)
        }
        var out: Set<LogHit> = []
        for c in file.schema.columns {
            guard let top = c.path.first, top == "add" || top == "remove", c.path.count >= 2 else { continue }
            let field = c.path[1]
            var wanted = false
            var isStatsText = false
            switch field {
            case "stats": isStatsText = c.path.count == 2
            case "stats_parsed":
                wanted = c.path.count >= 4 && ["minValues", "maxValues"].contains(c.path[2]) && subject.columns.contains(Array(c.path.dropFirst(3)))
            case "partitionValues_parsed":
                wanted = c.path.count == 3 && subject.columns.contains([c.path[2]])
            case "partitionValues":
                wanted = c.path.last == "value"
            default: break
            }
            guard wanted || isStatsText else { continue }
            for rg in 0..<file.rowGroups.count {
                let data: ColumnData
                do { data = try file.readColumn(c.index, rowGroup: rg) } catch {
                    throw DeltaError.corrupt(table, "checkpoint column \(c.dottedPath): \(error)", file: name)
                }
                if isStatsText {
                    guard case .byteArray(let a) = data.values else { continue }
                    for i in 0..<a.count {
                        guard let j = try? DeltaJSON.parse(Array(a[i])) else { continue }
                        for h in subject.statsHits(j, prefix: "stats") { out.insert(h.under(top)) }
                    }
                } else if field == "partitionValues" {
                    // Map values: the key column tells which partition column each value is for.
                    guard let keyColumn = file.schema.columns.first(where: { $0.path == Array(c.path.dropLast()) + ["key"] }) else { continue }
                    let keys = try? file.readColumn(keyColumn.index, rowGroup: rg)
                    guard case .byteArray(let ks)? = keys?.values, case .byteArray(let vs) = data.values,
                          let kd = keys?.definitionLevels, let vd = data.definitionLevels else { continue }
                    var ki = 0, vi = 0
                    for (dk, dv) in zip(kd, vd) {
                        let hasKey = Int(dk) == keyColumn.maxDefinitionLevel, hasValue = Int(dv) == c.maxDefinitionLevel
                        if hasKey, hasValue, ki < ks.count, vi < vs.count {
                            let k = String(decoding: ks[ki], as: UTF8.self), v = String(decoding: vs[vi], as: UTF8.self)
                            if subject.columns.contains([k]), subject.matches(.string(v)) { out.insert(LogHit(field: "\(top).partitionValues.\(k)", value: v)) }
                        }
                        if hasKey { ki += 1 }
                        if hasValue { vi += 1 }
                    }
                } else {
                    for v in Self.rendered(data.values, c) {
                        for value in subject.matching(v) { out.insert(LogHit(field: c.path.joined(separator: "."), value: value)) }
                    }
                }
            }
        }
        return out.sorted { ($0.field, $0.value) < ($1.field, $1.value) }
    }

    /// Typed checkpoint values as the JSON statistics would write them (dates as `YYYY-MM-DD`).
    static func rendered(_ v: ColumnValues, _ c: ColumnDescriptor) -> [DeltaJSON] {
        if case .int32(let a) = v, c.logicalType == .date || c.convertedType == .date {
            return a.map { .string(DeltaStats.dateText(Int64($0))) }
        }
        return Table.json(v)
    }
}
