import Foundation
import LetheCore
import LetheStorage
import Parquet

/// Reads Parquet Delta checkpoints (classic, multi-part, V2 with `sidecar` rows, and sidecar
/// files) back into actions.
///
/// A checkpoint row holds one action in one of its top-level struct columns (`add`,
/// `remove`, `metaData`, `protocol`, `txn`, …). Struct fields are read leaf by leaf:
/// a value is present where its definition level is the maximum; maps and lists
/// (partition values, configuration, partition columns, features) are rebuilt from
/// repetition levels.
enum CheckpointReader {
    /// The checkpoint's actions Lethe models, and its row count (every action, for `_last_checkpoint.size`).
    static func actions(_ bytes: [UInt8], name: String, table: String) throws -> (actions: [DeltaAction], rows: Int64) {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: name) } catch {
            throw DeltaError.corrupt(table, "checkpoint is not readable Parquet: \(error)", file: name)
        }
        var out: [DeltaAction] = []
        for rg in 0..<file.rowGroups.count {
            let n = Int(file.rowGroups[rg].numRows)
            let t = try Table(file: file, rowGroup: rg, rows: n, name: name, table: table)
            for i in 0..<n {
                if let path = t.value(["add", "path"], i)?.string {
                    out.append(
                        .add(
                            try AddFile(
                                raw: t.object("add", i, maps: ["partitionValues", "tags"], structs: ["deletionVector"])
                                    .merging(["path": .string(path)]) { $1 },
                                table: table, file: name)))
                } else if t.value(["remove", "path"], i)?.string != nil {
                    out.append(
                        .remove(
                            try RemoveFile(
                                raw: t.object("remove", i, maps: ["partitionValues", "tags"], structs: ["deletionVector"]),
                                table: table, file: name)))
                } else if t.value(["metaData", "id"], i)?.string != nil {
                    var o = t.object("metaData", i, maps: ["configuration"], lists: ["partitionColumns"])
                    if o["configuration"] == nil { o["configuration"] = .object([:]) }
                    if o["partitionColumns"] == nil { o["partitionColumns"] = .array([]) }
                    out.append(.metadata(try TableMetadata(raw: o, table: table, file: name)))
                } else if t.value(["protocol", "minReaderVersion"], i) != nil {
                    out.append(
                        .protocol(
                            try TableProtocol(
                                raw: t.object("protocol", i, lists: ["readerFeatures", "writerFeatures"]),
                                table: table, file: name)))
                } else if t.value(["sidecar", "path"], i)?.string != nil {
                    out.append(.other("sidecar", .object(t.object("sidecar", i, maps: ["tags"]))))
                } else if t.value(["domainMetadata", "domain"], i)?.string != nil {
                    out.append(.other("domainMetadata", .object(t.object("domainMetadata", i))))
                }
            }
        }
        return (out, file.numRows)
    }

    /// The leaf columns of one row group, decoded into per-row values.
    struct Table {
        var flat: [[String]: [JSONValue?]] = [:]
        /// Repeated leaves (map keys/values, list elements): per row, the entries (nil inside = a null element).
        var repeated: [[String]: [[JSONValue?]?]] = [:]

        init(file: ParquetFile, rowGroup: Int, rows: Int, name: String, table: String) throws {
            for c in file.schema.columns {
                guard ["add", "remove", "metaData", "protocol", "sidecar", "domainMetadata"].contains(c.path.first ?? "") else { continue }
                let data: ColumnData
                do { data = try file.readColumn(c.index, rowGroup: rowGroup) } catch {
                    throw DeltaError.corrupt(table, "checkpoint column \(c.dottedPath): \(error)", file: name)
                }
                let values = Self.json(data.values)
                let defs = data.definitionLevels ?? [UInt16](repeating: UInt16(c.maxDefinitionLevel), count: values.count)
                var next = 0
                if c.maxRepetitionLevel == 0 {
                    var col: [JSONValue?] = []
                    col.reserveCapacity(rows)
                    for d in defs {
                        if Int(d) == c.maxDefinitionLevel, next < values.count { col.append(values[next]); next += 1 } else { col.append(nil) }
                    }
                    flat[c.path] = col
                } else {
                    let reps = data.repetitionLevels ?? [UInt16](repeating: 0, count: defs.count)
                    var col: [[JSONValue?]?] = []
                    for (d, r) in zip(defs, reps) {
                        if r == 0 { col.append(nil) }
                        guard !col.isEmpty else { continue }
                        // An entry exists once the repeated node itself is defined (max - 1 for a nullable leaf).
                        if Int(d) >= c.maxDefinitionLevel - 1 && d > 0 {
                            var entries = col[col.count - 1] ?? []
                            if Int(d) == c.maxDefinitionLevel, next < values.count { entries.append(values[next]); next += 1 } else { entries.append(nil) }
                            col[col.count - 1] = entries
                        }
                    }
                    repeated[c.path] = col
                }
            }
        }

        func value(_ path: [String], _ row: Int) -> JSONValue? {
            guard let col = flat[path], row < col.count else { return nil }
            return col[row]
        }

        /// The struct column `top` of one row as a JSON object: its flat fields, the named maps and
        /// lists, and the named nested structs of flat fields (`deletionVector`; absent when null).
        func object(_ top: String, _ row: Int, maps: [String] = [], lists: [String] = [], structs: [String] = []) -> [String: JSONValue] {
            var o: [String: JSONValue] = [:]
            for (path, col) in flat where path.count == 2 && path[0] == top {
                if row < col.count, let v = col[row] { o[path[1]] = v }
            }
            for s in structs {
                var fields: [String: JSONValue] = [:]
                for (path, col) in flat where path.count == 3 && path[0] == top && path[1] == s {
                    if row < col.count, let v = col[row] { fields[path[2]] = v }
                }
                if !fields.isEmpty { o[s] = .object(fields) }
            }
            for m in maps {
                let keys = repeated.first { $0.key.count >= 3 && $0.key[0] == top && $0.key[1] == m && $0.key.last == "key" }?.value
                let vals = repeated.first { $0.key.count >= 3 && $0.key[0] == top && $0.key[1] == m && $0.key.last == "value" }?.value
                guard let keys, row < keys.count, let ks = keys[row] else { continue }
                let vs = vals.flatMap { row < $0.count ? $0[row] : nil } ?? []
                var map: [String: JSONValue] = [:]
                for (i, k) in ks.enumerated() {
                    guard let key = k?.string else { continue }
                    map[key] = (i < vs.count ? vs[i] : nil) ?? .null
                }
                o[m] = .object(map)
            }
            for l in lists {
                guard let col = repeated.first(where: { $0.key.count >= 3 && $0.key[0] == top && $0.key[1] == l })?.value,
                    row < col.count, let items = col[row]
                else { continue }
                o[l] = .array(items.map { $0 ?? .null })
            }
            return o
        }

        static func json(_ v: ColumnValues) -> [JSONValue] {
            switch v {
            case .boolean(let a): return a.map { .bool($0) }
            case .int32(let a): return a.map { .int(Int64($0)) }
            case .int64(let a): return a.map { .int($0) }
            case .float(let a): return a.map { .double(Double($0)) }
            case .double(let a): return a.map { .double($0) }
            case .byteArray(let a), .fixedLenByteArray(let a):
                return (0..<a.count).map { .string(String(decoding: a[$0], as: UTF8.self)) }
            case .int96(let a): return a.map { _ in .null }
            }
        }
    }
}

extension CheckpointReader {
    /// A Parquet checkpoint (or sidecar) with the statistics bounds of some file actions removed:
    /// the rows whose `add`/`remove` path is in `paths`, or whose statistics hold one of the
    /// subject's values. Their `stats` JSON keeps only `numRecords`; their `stats_parsed`
    /// `minValues`/`maxValues` leaves become null. Every other value, the schema, the row groups
    /// and the key-value metadata are kept. Returns nil when no row needs it.
    static func scrubbed(
        _ bytes: [UInt8], name: String, table: String, paths: Set<String>,
        subject: SubjectValues, sidecarSizes: [String: Int64] = [:]
    ) throws -> [UInt8]? {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: name) } catch {
            throw DeltaError.corrupt(table, "checkpoint is not readable Parquet: \(error)", file: name)
        }
        var options = WriterOptions()
        options.createdBy = file.metadata.createdBy ?? options.createdBy
        if let codec = file.metadata.rowGroups.first?.columns.first?.metaData?.codec { options.columns.codec = codec }
        var writer = try ParquetWriter(
            sink: InMemorySink(), schema: file.schema, options: options,
            keyValueMetadata: file.keyValueMetadata)
        var changed = false
        do {
            for rg in 0..<file.rowGroups.count {
                var cols = try file.schema.columns.map { try file.readColumn($0.index, rowGroup: rg) }
                let n = Int(file.rowGroups[rg].numRows)
                for top in ["add", "remove"] {
                    // Which rows of this action need their bounds removed.
                    var scrub = [Bool](repeating: false, count: n)
                    if let pc = file.schema.column([top, "path"]) {
                        for (row, v) in Self.flatValues(cols[pc.index], pc, rows: n).enumerated() {
                            if case .byteArray(let a)? = v, paths.contains(String(decoding: a, as: UTF8.self)) { scrub[row] = true }
                        }
                    }
                    for (row, m) in try Self.rowMatches(file, rowGroup: rg, rows: n, top: top, table: table, name: name, subject: subject).enumerated()
                    where !subject.hits(m).isEmpty {
                        scrub[row] = true
                    }
                    guard scrub.contains(true) else { continue }
                    changed = true
                    if let sc = file.schema.column([top, "stats"]) {
                        cols[sc.index] = Self.mapStrings(cols[sc.index], sc, rows: n) { row, text in
                            scrub[row] ? DeltaTable.boundsFree(text) : text
                        }
                    }
                    for c in file.schema.columns where Self.isBound(c, top) {
                        cols[c.index] = Self.nulling(cols[c.index], c, rows: scrub)
                    }
                }
                // A V2 checkpoint's `sidecar` rows: the sizes of the sidecars rewritten before it.
                if !sidecarSizes.isEmpty, let pc = file.schema.column(["sidecar", "path"]), let sc = file.schema.column(["sidecar", "sizeInBytes"]),
                    case .int64(var sizes) = cols[sc.index].values
                {
                    var next = 0
                    for (row, v) in Self.flatValues(cols[pc.index], pc, rows: n).enumerated() {
                        let hasSize = cols[sc.index].definitionLevels.map { row < $0.count && Int($0[row]) == sc.maxDefinitionLevel } ?? true
                        if case .byteArray(let a)? = v, hasSize, next < sizes.count,
                            let size = sidecarSizes[DeltaTable.sidecarName(String(decoding: a, as: UTF8.self))]
                        {
                            sizes[next] = size
                            changed = true
                        }
                        if hasSize { next += 1 }
                    }
                    cols[sc.index].values = .int64(sizes)
                }
                try writer.writeRowGroup(cols)
            }
            try writer.close()
        } catch let e as ParquetError {
            throw DeltaError.corrupt(table, "checkpoint could not be rewritten: \(e)", file: name)
        }
        return changed ? writer.sink.bytes : nil
    }

    /// A `stats_parsed` bound leaf of `add`/`remove`: `top.stats_parsed.minValues|maxValues.…`.
    static func isBound(_ c: ColumnDescriptor, _ top: String) -> Bool {
        c.maxRepetitionLevel == 0 && c.path.count >= 4 && c.path[0] == top && c.path[1] == "stats_parsed"
            && (c.path[2] == "minValues" || c.path[2] == "maxValues")
    }

    /// A flat column's value per row (nil for a null), as raw bytes for byte arrays.
    enum Flat { case byteArray([UInt8]), other(Int) }

    static func flatValues(_ d: ColumnData, _ c: ColumnDescriptor, rows: Int) -> [Flat?] {
        var out: [Flat?] = []
        out.reserveCapacity(rows)
        var next = 0
        for r in 0..<rows {
            let defined = d.definitionLevels.map { r < $0.count && Int($0[r]) == c.maxDefinitionLevel } ?? true
            guard defined else { out.append(nil); continue }
            if case .byteArray(let a) = d.values, next < a.count { out.append(.byteArray(Array(a[next]))) } else { out.append(.other(next)) }
            next += 1
        }
        return out
    }

    /// A flat column's values per row as the JSON statistics would write them.
    static func renderedFlat(_ d: ColumnData, _ c: ColumnDescriptor, rows: Int) -> [JSONValue?] {
        let values = rendered(d.values, c)
        var out: [JSONValue?] = []
        var next = 0
        for r in 0..<rows {
            let defined = d.definitionLevels.map { r < $0.count && Int($0[r]) == c.maxDefinitionLevel } ?? true
            if defined, next < values.count { out.append(values[next]); next += 1 } else { out.append(nil) }
        }
        return out
    }

    /// A flat string column with each row's text replaced by `f(row, text)`.
    static func mapStrings(_ d: ColumnData, _ c: ColumnDescriptor, rows: Int, _ f: (Int, String) -> String) -> ColumnData {
        guard case .byteArray(let a) = d.values else { return d }
        var out = ByteArrayValues()
        var next = 0
        for r in 0..<rows {
            let defined = d.definitionLevels.map { r < $0.count && Int($0[r]) == c.maxDefinitionLevel } ?? true
            guard defined, next < a.count else { continue }
            out.append(Array(f(r, String(decoding: a[next], as: UTF8.self)).utf8))
            next += 1
        }
        return ColumnData(values: .byteArray(out), definitionLevels: d.definitionLevels, repetitionLevels: d.repetitionLevels)
    }

    /// A flat optional leaf with the values of the chosen rows made null (the leaf's parent stays defined).
    static func nulling(_ d: ColumnData, _ c: ColumnDescriptor, rows scrub: [Bool]) -> ColumnData {
        guard var defs = d.definitionLevels, c.maxDefinitionLevel > 0 else { return d }
        var keep: [Int] = []
        var next = 0
        for r in 0..<defs.count {
            guard Int(defs[r]) == c.maxDefinitionLevel else { continue }
            if r < scrub.count && scrub[r] { defs[r] = UInt16(c.maxDefinitionLevel - 1) } else { keep.append(next) }
            next += 1
        }
        return ColumnData(values: gather(d.values, keep), definitionLevels: defs, repetitionLevels: d.repetitionLevels)
    }

    static func gather(_ v: ColumnValues, _ idx: [Int]) -> ColumnValues {
        switch v {
        case .boolean(let a): return .boolean(idx.map { a[$0] })
        case .int32(let a): return .int32(idx.map { a[$0] })
        case .int64(let a): return .int64(idx.map { a[$0] })
        case .int96(let a): return .int96(idx.map { a[$0] })
        case .float(let a): return .float(idx.map { a[$0] })
        case .double(let a): return .double(idx.map { a[$0] })
        case .byteArray(let a): return .byteArray(ByteArrayValues(idx.map { Array(a[$0]) }))
        case .fixedLenByteArray(let a): return .fixedLenByteArray(ByteArrayValues(idx.map { Array(a[$0]) }))
        }
    }
}
