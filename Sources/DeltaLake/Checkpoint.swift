import Foundation
import LetheCore
import LetheStorage
import Parquet

/// Reads classic Delta checkpoints (single file or multi-part Parquet) back into actions.
///
/// A checkpoint row holds one action in one of its top-level struct columns (`add`,
/// `remove`, `metaData`, `protocol`, `txn`, …). Struct fields are read leaf by leaf:
/// a value is present where its definition level is the maximum; maps and lists
/// (partition values, configuration, partition columns, features) are rebuilt from
/// repetition levels.
enum CheckpointReader {
    /// The checkpoint files of `version` named by `_last_checkpoint`'s `parts`.
    static func files(version: Int64, parts: Int?) -> [String] {
        guard let parts, parts > 1 else { return [String(format: "%020lld.checkpoint.parquet", version)] }
        return (1...parts).map { String(format: "%020lld.checkpoint.%010d.%010d.parquet", version, $0, parts) }
    }

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
                    out.append(.add(try AddFile(raw: t.object("add", i, maps: ["partitionValues", "tags"], structs: ["deletionVector"])
                                                    .merging(["path": .string(path)]) { $1 },
                                                table: table, file: name)))
                } else if t.value(["remove", "path"], i)?.string != nil {
                    out.append(.remove(try RemoveFile(raw: t.object("remove", i, maps: ["partitionValues", "tags"], structs: ["deletionVector"]),
                                                      table: table, file: name)))
                } else if t.value(["metaData", "id"], i)?.string != nil {
                    var o = t.object("metaData", i, maps: ["configuration"], lists: ["partitionColumns"])
                    if o["configuration"] == nil { o["configuration"] = .object([:]) }
                    if o["partitionColumns"] == nil { o["partitionColumns"] = .array([]) }
                    out.append(.metadata(try TableMetadata(raw: o, table: table, file: name)))
                } else if t.value(["protocol", "minReaderVersion"], i) != nil {
                    out.append(.protocol(try TableProtocol(raw: t.object("protocol", i, lists: ["readerFeatures", "writerFeatures"]),
                                                           table: table, file: name)))
                }
            }
        }
        return (out, file.numRows)
    }

    /// The leaf columns of one row group, decoded into per-row values.
    struct Table {
        var flat: [[String]: [DeltaJSON?]] = [:]
        /// Repeated leaves (map keys/values, list elements): per row, the entries (nil inside = a null element).
        var repeated: [[String]: [[DeltaJSON?]?]] = [:]

        init(file: ParquetFile, rowGroup: Int, rows: Int, name: String, table: String) throws {
            for c in file.schema.columns {
                guard ["add", "remove", "metaData", "protocol"].contains(c.path.first ?? "") else { continue }
                let data: ColumnData
                do { data = try file.readColumn(c.index, rowGroup: rowGroup) } catch {
                    throw DeltaError.corrupt(table, "checkpoint column \(c.dottedPath): \(error)", file: name)
                }
                let values = Self.json(data.values)
                let defs = data.definitionLevels ?? [UInt16](repeating: UInt16(c.maxDefinitionLevel), count: values.count)
                var next = 0
                if c.maxRepetitionLevel == 0 {
                    var col: [DeltaJSON?] = []
                    col.reserveCapacity(rows)
                    for d in defs {
                        if Int(d) == c.maxDefinitionLevel, next < values.count { col.append(values[next]); next += 1 } else { col.append(nil) }
                    }
                    flat[c.path] = col
                } else {
                    let reps = data.repetitionLevels ?? [UInt16](repeating: 0, count: defs.count)
                    var col: [[DeltaJSON?]?] = []
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

        func value(_ path: [String], _ row: Int) -> DeltaJSON? {
            guard let col = flat[path], row < col.count else { return nil }
            return col[row]
        }

        /// The struct column `top` of one row as a JSON object: its flat fields, the named maps and
        /// lists, and the named nested structs of flat fields (`deletionVector`; absent when null).
        func object(_ top: String, _ row: Int, maps: [String] = [], lists: [String] = [], structs: [String] = []) -> [String: DeltaJSON] {
            var o: [String: DeltaJSON] = [:]
            for (path, col) in flat where path.count == 2 && path[0] == top {
                if row < col.count, let v = col[row] { o[path[1]] = v }
            }
            for s in structs {
                var fields: [String: DeltaJSON] = [:]
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
                var map: [String: DeltaJSON] = [:]
                for (i, k) in ks.enumerated() {
                    guard let key = k?.string else { continue }
                    map[key] = (i < vs.count ? vs[i] : nil) ?? .null
                }
                o[m] = .object(map)
            }
            for l in lists {
                guard let col = repeated.first(where: { $0.key.count >= 3 && $0.key[0] == top && $0.key[1] == l })?.value,
                      row < col.count, let items = col[row] else { continue }
                o[l] = .array(items.map { $0 ?? .null })
            }
            return o
        }

        static func json(_ v: ColumnValues) -> [DeltaJSON] {
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
