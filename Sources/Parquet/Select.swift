extension ParquetFile {
    /// The values of the given rows (file row indexes, strictly increasing), one
    /// `[ColumnData]` (every leaf column, in schema order) per row group that holds
    /// any of them, ready for `ParquetWriter.writeRowGroup`.
    public func selectRows(_ rows: [Int64]) throws(ParquetError) -> [[ColumnData]] {
        var prev: Int64 = -1
        for r in rows {
            guard r > prev else { throw ParquetError(.invalidArgument, "rows to select must be strictly increasing", file: name) }
            guard r < numRows else { throw ParquetError(.invalidArgument, "row \(r) is past the file's \(numRows) rows", file: name) }
            prev = r
        }
        var out: [[ColumnData]] = []
        var ri = 0
        for (g, rg) in metadata.rowGroups.enumerated() {
            let first = rowGroupFirstRow[g]
            var local: [Int] = []
            while ri < rows.count && rows[ri] < first + rg.numRows {
                local.append(Int(rows[ri] - first))
                ri += 1
            }
            guard !local.isEmpty else { continue }
            var cols: [ColumnData] = []
            for desc in schema.columns {
                cols.append(try readColumn(desc.index, rowGroup: g).droppingRows(local, maxDefinitionLevel: desc.maxDefinitionLevel, keeping: true))
            }
            out.append(cols)
        }
        return out
    }
}
