import Foundation
import LetheCore
import LetheStorage
import Parquet

/// Change data files (protocol: "Change Data Files"): a DELETE on a table with the
/// change data feed on writes the deleted rows, each with `_change_type = "delete"`,
/// so readers of the feed (`table_changes`, delta-rs `load_cdf`) see the change.
enum ChangeData {
    /// A Parquet file holding `rows` of `file` (file row indexes, increasing) plus a string
    /// column `_change_type` set to `delete`. Same column names, types and codec as the data
    /// file, one row group per source row group. A data file that already has a top-level
    /// `_change_type` column (Databricks writes one, all null, into data files of tables with the
    /// feed on) gets its values set, never a second column of that name.
    static func deletes(from file: ParquetFile, rows: [Int64]) throws -> [UInt8] {
        try changes([(file, rows, "delete")])
    }

    /// The change data of an update (a mask, issue 15): the rows as they were (`update_preimage`,
    /// from `before`) then as they are (`update_postimage`, from `after`, which has the same schema).
    static func updates(before: ParquetFile, after: ParquetFile, rows: [Int64]) throws -> [UInt8] {
        try changes([(before, rows, "update_preimage"), (after, rows, "update_postimage")])
    }

    /// Rows of files of one schema (the first's) with their `_change_type`, in the order given.
    static func changes(_ parts: [(file: ParquetFile, rows: [Int64], type: String)]) throws -> [UInt8] {
        let file = parts[0].file
        var root = file.schema.root
        let existing = root.children.firstIndex { $0.name == "_change_type" }
        var replaceAt: Int?
        var dropAt: Int?
        if let i = existing {
            let node = root.children[i]
            if node.isLeaf, node.element.physicalType == .byteArray {
                replaceAt = file.schema.columns.firstIndex { $0.path == ["_change_type"] }
            } else {
                dropAt = i
            }
        }
        if let i = dropAt { root.children.remove(at: i) }
        if replaceAt == nil {
            root.children.append(.leaf("_change_type", .byteArray, .required, logicalType: .string, convertedType: .utf8))
        }
        root.element.raw[5] = .i32(Int32(root.children.count))
        let schema = try ParquetSchema(root: root)
        // Leaf columns of a dropped non-string `_change_type` (by index in the source schema).
        let dropped = Set(file.schema.columns.filter { $0.path.first == "_change_type" && dropAt != nil }.map(\.index))
        var options = WriterOptions()
        options.createdBy = "Lethe (change data of an erasure)"
        if let codec = file.metadata.rowGroups.first?.columns.first?.metaData?.codec { options.columns.codec = codec }
        var w = try ParquetWriter(sink: InMemorySink(), schema: schema, options: options)
        for (source, rows, type) in parts {
            for group in try source.selectRows(rows) {
                let n = group.first?.rowCount ?? 0
                let deletes = ColumnValues.byteArray(ByteArrayValues(repeatElement(Array(type.utf8), count: n)))
                var cols = group.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
                if let at = replaceAt {
                    let desc = file.schema.columns[at]
                    let defs = desc.maxDefinitionLevel > 0 ? [UInt16](repeating: UInt16(desc.maxDefinitionLevel), count: n) : nil
                    cols[at] = ColumnData(values: deletes, definitionLevels: defs)
                } else {
                    cols.append(ColumnData(values: deletes))
                }
                try w.writeRowGroup(cols)
            }
        }
        try w.close()
        return w.sink.bytes
    }
}

/// What the change feed says another writer deleted.
public struct ChangeFeedDeletes: Sendable {
    /// Subject values (canonical bytes; composite parts joined by U+001F) with a `delete` change.
    public var subjects: Set<[UInt8]> = []
    /// Versions read (commits by the skipped engine excluded).
    public var versions: [Int64] = []
    /// Change data files the log names but the store no longer has (vacuumed).
    public var missingFiles: [String] = []
}

extension DeltaTable {
    /// Reads the change data files of versions `from...to` and returns the subjects
    /// of rows recorded as deleted (`_change_type = delete`). Commits whose commitInfo
    /// `engineInfo` starts with `skippingEngine` (Lethe's own) are passed over.
    /// `subjectColumns`: the subject's Parquet column path(s), physical names.
    public func deletedSubjects(
        from: Int64, to: Int64, subjectColumns: [[String]],
        skippingEngine: String
    ) async throws -> ChangeFeedDeletes {
        var out = ChangeFeedDeletes()
        guard from <= to else { return out }
        let first = max(from, try await versions().first ?? from)
        guard first <= to else { return out }
        for v in first...to {
            let actions = try await commit(v)
            let engine = actions.lazy.compactMap { if case .commitInfo(let c) = $0 { return c["engineInfo"]?.string } else { return nil } }.first
            if let engine, engine.hasPrefix(skippingEngine) { continue }
            out.versions.append(v)
            for case .cdc(let c) in actions {
                let k = key(forLogPath: c.path)
                guard try await store.head(k) != nil else { out.missingFiles.append(k); continue }
                let file: ParquetFile
                do { file = try ParquetFile(bytes: try await store.read(k), name: k) } catch {
                    throw LetheError(.corrupt, "change data file of version \(v): \(error)", at: k)
                }
                do {
                    try Self.collectDeletes(file, subjectColumns: subjectColumns, into: &out.subjects)
                } catch { throw LetheError(.corrupt, "change data file of version \(v): \(error)", at: k) }
            }
        }
        return out
    }

    static func collectDeletes(_ file: ParquetFile, subjectColumns: [[String]], into set: inout Set<[UInt8]>) throws {
        let delete = Array("delete".utf8)
        for g in 0..<file.metadata.rowGroups.count {
            var isDelete: [Bool] = []
            let first = file.rowGroupFirstRow[g]
            try file.scanColumn(path: ["_change_type"], rowGroup: g) { _, v in
                isDelete.append(v.map { $0.elementsEqual(delete) } ?? false)
            }
            guard isDelete.contains(true) else { continue }
            var parts: [[[UInt8]?]] = []
            for path in subjectColumns {
                var col = [[UInt8]?](repeating: nil, count: isDelete.count)
                try file.scanColumn(path: path, rowGroup: g) { row, v in
                    let i = Int(row - first)
                    if isDelete[i], let v, v.count > 0 { col[i] = Array(v) }
                }
                parts.append(col)
            }
            for i in 0..<isDelete.count where isDelete[i] {
                var value: [UInt8] = []
                var complete = true
                for (n, col) in parts.enumerated() {
                    guard let p = col[i] else { complete = false; break }
                    if n > 0 { value.append(SubjectID.partSeparator) }
                    value += p
                }
                if complete { set.insert(value) }
            }
        }
    }
}
