import LetheCore
import LetheStorage
import Parquet

/// Apache Parquet, through the `Parquet` target (see docs/parquet.md).
///
/// The subject field(s) must be flat leaf columns (no repeated ancestor); a nested
/// path such as `user.id` names the leaf `user` → `id`. A value's canonical bytes are
/// its UTF-8 text or decimal digits, so an INT64 `123` and a string `"123"` name the
/// same subject. A composite subject joins its fields' values with 0x1F. A row whose
/// subject value (any part of it) is null has no subject.
///
/// Erase rewrites the file without the subject's rows (untouched row groups copied
/// byte for byte, see `ParquetFile.rewrite(droppingRows:to:)`); a file left with no
/// row is deleted instead.
///
/// Limitation: the whole object is read into memory (`InMemorySource`) for both scan
/// and erase, and the rewritten file is built in memory before it is written. A scan
/// could read only the footer and the subject column chunks by range; that needs a
/// sparse source over the async store and is not done yet.
public struct ParquetFormat: RecordFormat {
    public var name: String { "parquet" }

    public init() {}

    public func scan(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        visit: (Int64, SubjectKey) throws -> Void
    ) async throws -> ScanSummary {
        let bytes = try await store.read(object.key)
        let file = try open(bytes, object.key)
        var summary = ScanSummary()
        summary.bytes = Int64(bytes.count)
        summary.records = file.numRows
        summary.recordsWithoutSubject = try keys(file, object.key, options, keyer) { row, key in
            try visit(row, key)
        }
        return summary
    }

    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>
    ) async throws -> EraseOutcome {
        let bytes = try await store.read(object.key)
        let file = try open(bytes, object.key)
        var outcome = EraseOutcome()
        var rows: [Int64] = []
        _ = try keys(file, object.key, options, keyer) { row, key in
            if drop.contains(key) {
                rows.append(row)
                outcome.dropped[key, default: 0] += 1
            }
        }
        if rows.isEmpty {
            outcome.kept = file.numRows
            return outcome
        }
        var sink = InMemorySink()
        let result: RewriteResult
        do {
            result = try file.rewrite(droppingRows: rows, to: &sink)
        } catch {
            throw LetheError(.corrupt, "\(error)", at: object.key)
        }
        outcome.kept = result.keptRows
        if result.isEmpty {
            guard let current = try await store.head(object.key), current.version == object.version else {
                throw LetheError(.conflict, "object changed since it was read (expected version \(object.version))", at: object.key)
            }
            try await store.delete(object.key)
            outcome.removed = true
            return outcome
        }
        let writer = try await store.openWrite(object.key, precondition: .matches(version: object.version))
        do {
            try await writer.write(sink.bytes)
            outcome.written = try await writer.commit()
            return outcome
        } catch {
            writer.abort()
            throw error
        }
    }

    private func open(_ bytes: [UInt8], _ objectKey: String) throws -> ParquetFile {
        do {
            return try ParquetFile(source: InMemorySource(bytes), name: objectKey)
        } catch {
            throw LetheError(.corrupt, "\(error)", at: objectKey)
        }
    }

    /// Calls `visit(row, key)` for each row with a subject, in row order; returns the
    /// number of rows without one.
    private func keys(
        _ file: ParquetFile, _ objectKey: String, _ options: FormatOptions, _ keyer: SubjectKeyer,
        _ visit: (Int64, SubjectKey) throws -> Void
    ) throws -> Int64 {
        let fields = options.subject.fields
        var columns: [Int] = []
        for field in fields {
            let path = field.components.map { String(decoding: $0, as: UTF8.self) }
            guard let desc = file.schema.column(path) else {
                let names = file.schema.columns.map(\.dottedPath).joined(separator: ", ")
                throw LetheError(.corrupt, "no column `\(field)` (columns: \(names))", at: objectKey)
            }
            guard desc.isFlat else {
                throw LetheError(.corrupt, "subject column `\(field)` is inside a repeated field (list or map)", at: objectKey)
            }
            columns.append(desc.index)
        }
        var withoutSubject: Int64 = 0
        do {
            if columns.count == 1 {
                for g in 0..<file.rowGroups.count {
                    try file.scanColumn(columns[0], rowGroup: g) { row, value in
                        if let value {
                            try visit(row, keyer.key(value))
                        } else {
                            withoutSubject += 1
                        }
                    }
                }
                return withoutSubject
            }
            // Composite: collect each row's parts, joined with 0x1F.
            var joined: [[UInt8]] = []
            var missing: [Bool] = []
            for g in 0..<file.rowGroups.count {
                let first = file.rowGroupFirstRow[g]
                let count = Int(file.rowGroups[g].numRows)
                joined = Array(repeating: [], count: count)
                missing = Array(repeating: false, count: count)
                for (k, column) in columns.enumerated() {
                    try file.scanColumn(column, rowGroup: g) { row, value in
                        let r = Int(row - first)
                        guard r >= 0, r < count else {
                            throw ParquetError(.corruptMetadata, "column chunk holds more rows than its row group (\(count))",
                                               file: objectKey, rowGroup: g)
                        }
                        if let value {
                            if k > 0 { joined[r].append(SubjectID.partSeparator) }
                            joined[r].append(contentsOf: value)
                        } else {
                            missing[r] = true
                        }
                    }
                }
                for r in 0..<count {
                    if missing[r] {
                        withoutSubject += 1
                    } else {
                        try visit(first + Int64(r), keyer.key(joined[r]))
                    }
                }
            }
            return withoutSubject
        } catch let e as ParquetError {
            throw LetheError(.corrupt, "\(e)", at: objectKey)
        }
    }
}
