import Foundation
import Parquet

/// Change data files (protocol: "Change Data Files"): a DELETE on a table with the
/// change data feed on writes the deleted rows, each with `_change_type = "delete"`,
/// so readers of the feed (`table_changes`, delta-rs `load_cdf`) see the change.
enum ChangeData {
    /// A Parquet file holding `rows` of `file` (file row indexes, increasing) plus a
    /// required string column `_change_type` set to `delete`. Same column names,
    /// types and codec as the data file, one row group per source row group.
    static func deletes(from file: ParquetFile, rows: [Int64]) throws -> [UInt8] {
        var root = file.schema.root
        root.children.append(.leaf("_change_type", .byteArray, .required, logicalType: .string, convertedType: .utf8))
        root.element.raw[5] = .i32(Int32(root.children.count))
        let schema = try ParquetSchema(root: root)
        var options = WriterOptions()
        options.createdBy = "Lethe (change data of an erasure)"
        if let codec = file.metadata.rowGroups.first?.columns.first?.metaData?.codec { options.columns.codec = codec }
        var w = try ParquetWriter(sink: InMemorySink(), schema: schema, options: options)
        for var cols in try file.selectRows(rows) {
            let n = cols.first?.rowCount ?? 0
            cols.append(ColumnData(values: .byteArray(ByteArrayValues(repeatElement(Array("delete".utf8), count: n)))))
            try w.writeRowGroup(cols)
        }
        try w.close()
        return w.sink.bytes
    }
}
