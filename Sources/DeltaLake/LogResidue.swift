import Foundation
public import LetheCore
import LetheStorage
import Parquet

/// The values that name subjects, and the columns that hold them, for a field-aware search of
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
///
/// A composite subject (one value per column) is found where one action (or commitInfo) holds
/// every part, each in its own column: a part alone (a tenant id shared by many people) names
/// no one.
public struct SubjectValues: Sendable, Equatable {
    /// The subject's columns as physical paths (statistics and partition values use them).
    public let columns: [[String]]
    /// The subjects, each one value per column, in canonical text form.
    public let subjects: [[String]]
    /// Every value of column `i`, and those that are plain decimal numbers (JSON statistics write numbers).
    let perColumn: [Set<String>]
    let numbers: [[String: Double]]
    /// The type of column `i` when known (the table schema): a string in the log (a partition
    /// value `2021-01-03 04:05:06.123`, a bound `…06.123000Z`) is compared in its canonical form.
    public var types: [Int: CanonicalType] = [:]
    /// Every value as bytes, for `commitInfoHits`' prefilter: a text that holds none of them as a
    /// substring cannot hold one as a token (nil: no subject).
    let anyValue: NeedleSet?

    public init(columns: [[String]], subjects: [[String]]) {
        self.columns = columns
        let valid = subjects.filter { $0.count == columns.count && $0.allSatisfy { !$0.isEmpty } }
        self.subjects = Array(Set(valid)).sorted { $0.lexicographicallyPrecedes($1) }
        let per = columns.indices.map { i in Set(valid.map { $0[i] }) }
        self.perColumn = per
        self.numbers = per.map { vs in Dictionary(uniqueKeysWithValues: vs.compactMap { v in Self.number(v).map { (v, $0) } }) }
        self.anyValue = valid.isEmpty ? nil : NeedleSet(Set(valid.flatMap { $0 }).map { Array($0.utf8) })
    }

    public static func == (a: SubjectValues, b: SubjectValues) -> Bool {
        a.columns == b.columns && a.subjects == b.subjects && a.types == b.types
    }

    /// Subjects of one column (each value one subject).
    public init(columns: [[String]], values: Set<String>) {
        self.init(columns: columns, subjects: columns.count == 1 ? values.sorted().map { [$0] } : [])
    }

    /// No subject: matches nothing.
    public static let none = SubjectValues(columns: [], subjects: [])

    public var isEmpty: Bool { subjects.isEmpty }
    /// Every value of every subject (for a byte prefilter).
    public var allValues: Set<String> { Set(subjects.flatMap { $0 }) }

    /// The values as they stand in JSON statistics text, for a byte prefilter: a text without a
    /// backslash (no escape can spell a value another way) that holds none of them has no bound
    /// `matching` finds. Nil when a value may stand otherwise: a column compared in canonical
    /// form (a timestamp, a date, a number), or a value that is a plain number (`5` is `5.0`).
    var literalStatsNeedles: NeedleSet? {
        guard !subjects.isEmpty else { return nil }
        for i in columns.indices {
            if let t = types[i], t != .string { return nil }
            if !numbers[i].isEmpty { return nil }
        }
        return NeedleSet(allValues.map { Array($0.utf8) })
    }

    /// The name of a subject in hits: its parts joined by U+001F.
    public static func name(_ subject: [String]) -> String { subject.joined(separator: "\u{1F}") }

    static func number(_ s: String) -> Double? {
        guard !s.isEmpty, s.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }) else { return nil }
        return Double(s)
    }

    /// The values of column `i` a statistics or partition value is (numbers written
    /// differently, `5` and `5.0`, are the same number).
    func matching(_ v: JSONValue, column i: Int) -> [String] {
        switch v {
        case .string(let s):
            if perColumn[i].contains(s) { return [s] }
            if let t = types[i], let c = CanonicalValue.fromText(s, as: t).map({ String(decoding: $0, as: UTF8.self) }),
                perColumn[i].contains(c)
            {
                return [c]
            }
            return []
        case .int(let n):
            let text = String(n)
            return perColumn[i].contains(text) ? [text] : numbers[i].filter { $0.value == Double(n) }.map(\.key)
        case .double(let d): return numbers[i].filter { $0.value == d }.map(\.key)
        default: return []
        }
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

    /// What one file action holds: per column index, the values found and the fields they are in.
    struct Matches {
        var values: [Int: Set<String>] = [:]
        var fields: [Int: Set<String>] = [:]
        mutating func add(_ i: Int, _ value: String, _ field: String) {
            values[i, default: []].insert(value)
            fields[i, default: []].insert(field)
        }
    }

    /// The subjects every part of which `m` holds, as hits.
    func hits(_ m: Matches) -> [LogHit] {
        guard !m.values.isEmpty else { return [] }
        var out: [LogHit] = []
        for s in subjects where s.indices.allSatisfy({ m.values[$0]?.contains(s[$0]) == true }) {
            let fields = s.indices.flatMap { m.fields[$0] ?? [] }
            for f in Set(fields).sorted() { out.append(LogHit(field: f, value: Self.name(s))) }
        }
        return out
    }

    /// Adds the bounds of a statistics object (parsed `stats` or `stats_parsed`) to `m`.
    func collectStats(_ stats: JSONValue, prefix: String, into m: inout Matches) {
        for bound in ["minValues", "maxValues"] {
            guard let b = stats[bound] else { continue }
            for (i, col) in columns.enumerated() {
                var v: JSONValue? = b
                for p in col { v = v?[p] }
                for value in v.map({ matching($0, column: i) }) ?? [] { m.add(i, value, "\(prefix).\(bound).\(col.joined(separator: "."))") }
            }
        }
    }

    /// The subjects a statistics object's bounds hold.
    func statsHits(_ stats: JSONValue, prefix: String) -> [LogHit] {
        var m = Matches()
        collectStats(stats, prefix: prefix, into: &m)
        return hits(m)
    }

    /// The fields of an `add`, `remove` or `cdc` action (or a `.crc` `allFiles` entry) that hold a subject.
    func fileActionHits(_ o: [String: JSONValue]) -> [LogHit] {
        var m = Matches()
        if let s = o["stats"]?.string, let j = try? JSONValue.parse(Array(s.utf8)) { collectStats(j, prefix: "stats", into: &m) }
        if let j = o["stats_parsed"], j.object != nil { collectStats(j, prefix: "stats_parsed", into: &m) }
        for (i, col) in columns.enumerated() where col.count == 1 {
            for field in ["partitionValues", "partitionValues_parsed"] {
                for value in o[field]?[col[0]].map({ matching($0, column: i) }) ?? [] { m.add(i, value, "\(field).\(col[0])") }
            }
        }
        return hits(m)
    }

    /// The fields of a commitInfo that name a subject (every part as a whole token).
    func commitInfoHits(_ info: [String: JSONValue]) -> [LogHit] {
        var out: [LogHit] = []
        for field in ["operationParameters", "userMetadata"] {
            guard let v = info[field] else { continue }
            let texts = Self.strings(v).map { Array($0.utf8) }
            // Most commitInfos (another writer's appends) name no one: one multi-needle pass each,
            // instead of every subject against every text.
            guard let anyValue, texts.contains(where: anyValue.containsAny) else { continue }
            for s in subjects where s.allSatisfy({ part in texts.contains { Self.containsToken($0, Array(part.utf8)) } }) {
                out.append(LogHit(field: "commitInfo.\(field)", value: Self.name(s)))
            }
        }
        return out
    }

    static func strings(_ v: JSONValue) -> [String] {
        switch v {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap(strings)
        case .object(let o): return o.values.flatMap(strings)
        default: return []
        }
    }

    /// The fields of one log action that hold a subject.
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
    /// The subjects found (one file can hold several), each its parts joined by U+001F.
    public var values: Set<String>
}

extension DeltaTable {
    /// Every log file whose fields hold one of the subject's values (see `SubjectValues`):
    /// commits, checkpoints and their sidecars, version checksums (`.crc`), log compactions and
    /// `_last_checkpoint`. Nothing is written.
    public func logResidue(_ subject: SubjectValues) async throws -> [LogResidue] {
        guard !subject.isEmpty else { return [] }
        return try await logResidue(subject, names: try await listLog().logFiles)
    }

    /// The log files among `names` (names under `_delta_log`, e.g. from `listLog().logFiles`) whose
    /// fields hold one of the subject's values; a name no longer present is skipped. What a run's
    /// own verification reads of the log (the commits it wrote or scrubbed), the rest being the sweep's.
    public func logResidue(_ subject: SubjectValues, names: [String]) async throws -> [LogResidue] {
        guard !subject.isEmpty, !names.isEmpty else { return [] }
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
            guard let j = try? JSONValue.parse(bytes) else {
                throw DeltaError.corrupt(root, "version checksum is not valid JSON", file: name)
            }
            return (j["allFiles"]?.array ?? []).compactMap(\.object).flatMap { subject.fileActionHits($0).map { $0.under("allFiles") } }
        }
        if name == "_last_checkpoint" {
            guard let j = try? JSONValue.parse(bytes) else { return [] }
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
    /// The fields of a Parquet checkpoint (or sidecar) that hold a subject: `add`/`remove` `stats`
    /// (JSON text), `stats_parsed` bounds and `partitionValues(_parsed)` of the subject's columns,
    /// row by row (a composite subject's parts must all be in one row).
    static func residue(_ bytes: [UInt8], name: String, table: String, subject: SubjectValues) throws -> [LogHit] {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: name) } catch {
            throw DeltaError.corrupt(table, "checkpoint is not readable Parquet: \(error)", file: name)
        }
        var out: Set<LogHit> = []
        for rg in 0..<file.rowGroups.count {
            let n = Int(file.rowGroups[rg].numRows)
            for top in ["add", "remove"] {
                let rows = try rowMatches(file, rowGroup: rg, rows: n, top: top, table: table, name: name, subject: subject)
                for m in rows { for h in subject.hits(m) { out.insert(h.under(top)) } }
            }
        }
        return out.sorted { ($0.field, $0.value) < ($1.field, $1.value) }
    }

    /// Per row of one row group, what the `top` (`add` or `remove`) action's statistics and
    /// partition values hold of the subjects' columns.
    static func rowMatches(
        _ file: ParquetFile, rowGroup rg: Int, rows n: Int, top: String, table: String, name: String,
        subject: SubjectValues
    ) throws -> [SubjectValues.Matches] {
        var out = [SubjectValues.Matches](repeating: SubjectValues.Matches(), count: n)
        func read(_ c: ColumnDescriptor) throws -> ColumnData {
            do { return try file.readColumn(c.index, rowGroup: rg) } catch {
                throw DeltaError.corrupt(table, "checkpoint column \(c.dottedPath): \(error)", file: name)
            }
        }
        if let c = file.schema.column([top, "stats"]) {
            let literal = subject.literalStatsNeedles
            for (row, v) in flatValues(try read(c), c, rows: n).enumerated() {
                guard case .byteArray(let a)? = v else { continue }
                // Most rows name none of the subjects: their text is not parsed.
                if let literal, !a.contains(0x5C), !literal.containsAny(a) { continue }
                guard let j = try? JSONValue.parse(a) else { continue }
                subject.collectStats(j, prefix: "stats", into: &out[row])
            }
        }
        for c in file.schema.columns where c.maxRepetitionLevel == 0 && c.path.count >= 3 && c.path[0] == top {
            let field = c.path[1]
            var column: Int?
            var label = ""
            if field == "stats_parsed", c.path.count >= 4, ["minValues", "maxValues"].contains(c.path[2]) {
                column = subject.columns.firstIndex(of: Array(c.path.dropFirst(3)))
                label = "stats_parsed.\(c.path[2]).\(c.path.dropFirst(3).joined(separator: "."))"
            } else if field == "partitionValues_parsed", c.path.count == 3 {
                column = subject.columns.firstIndex(of: [c.path[2]])
                label = "partitionValues_parsed.\(c.path[2])"
            }
            guard let i = column else { continue }
            for (row, v) in renderedFlat(try read(c), c, rows: n).enumerated() {
                for value in v.map({ subject.matching($0, column: i) }) ?? [] { out[row].add(i, value, label) }
            }
        }
        // Map entries: the key column tells which partition column each value is for.
        if let kc = file.schema.column([top, "partitionValues", "key_value", "key"])
            ?? file.schema.columns.first(where: { $0.path.first == top && $0.path.count >= 3 && $0.path[1] == "partitionValues" && $0.path.last == "key" }),
            let vc = file.schema.columns.first(where: { $0.path == Array(kc.path.dropLast()) + ["value"] })
        {
            let keys = try read(kc), vals = try read(vc)
            guard case .byteArray(let ks) = keys.values, case .byteArray(let vs) = vals.values,
                let kd = keys.definitionLevels, let vd = vals.definitionLevels
            else { return out }
            let reps = keys.repetitionLevels ?? [UInt16](repeating: 0, count: kd.count)
            var row = -1, ki = 0, vi = 0
            for (j, (dk, dv)) in zip(kd, vd).enumerated() {
                if reps[j] == 0 { row += 1 }
                let hasKey = Int(dk) == kc.maxDefinitionLevel, hasValue = Int(dv) == vc.maxDefinitionLevel
                if hasKey, hasValue, ki < ks.count, vi < vs.count, row >= 0, row < n {
                    let k = String(decoding: ks[ki], as: UTF8.self), v = String(decoding: vs[vi], as: UTF8.self)
                    if let i = subject.columns.firstIndex(of: [k]) {
                        for value in subject.matching(.string(v), column: i) { out[row].add(i, value, "partitionValues.\(k)") }
                    }
                }
                if hasKey { ki += 1 }
                if hasValue { vi += 1 }
            }
        }
        return out
    }

    /// Typed checkpoint values as the JSON statistics would write them (dates as `YYYY-MM-DD`).
    static func rendered(_ v: ColumnValues, _ c: ColumnDescriptor) -> [JSONValue] {
        if case .int32(let a) = v, c.logicalType == .date || c.convertedType == .date {
            return a.map { .string(DeltaStats.dateText(Int64($0))) }
        }
        return Table.json(v)
    }
}
