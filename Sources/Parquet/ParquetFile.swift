/// Opening a Parquet file: magic, footer, schema.

/// Safety limits and checks for reading.
public struct ReadOptions: Sendable {
    /// Check page CRCs when the page header carries one.
    public var verifyChecksums = true
    /// Largest footer accepted, in bytes.
    public var maxFooterSize = 64 << 20
    /// Largest (uncompressed) page accepted, in bytes.
    public var maxPageSize = 256 << 20
    /// Largest number of level slots accepted in one page.
    public var maxValuesPerPage = 16 << 20
    public init() {}
}

/// An opened Parquet file: footer, schema, and readers for its column chunks.
public struct ParquetFile: Sendable {
    public private(set) var source: any ParquetSource
    /// The name used in error messages.
    public let name: String
    public let metadata: FileMetaData
    public let schema: ParquetSchema
    public let options: ReadOptions
    /// Offset of the footer (Thrift) = end of the data area.
    public let footerOffset: Int64
    /// Index in the file of each row group's first row.
    public let rowGroupFirstRow: [Int64]
    /// Rows in the file: the sum of the row groups' rows (a footer `num_rows` of 0 with rows
    /// in the row groups, as some writers leave it, is read as that sum).
    public let numRows: Int64
    /// Dictionary pages kept for a rewrite that follows a read (`rememberingDictionaryPages()`).
    var dictionaryMemo: DictionaryMemo?

    public init(source: any ParquetSource, name: String = "<parquet>", options: ReadOptions = ReadOptions()) throws(ParquetError) {
        self.source = source
        self.name = name
        self.options = options
        let size = source.size
        func read(_ r: Range<Int64>) throws(ParquetError) -> [UInt8] {
            try withLocation(file: name) { try source.read(r) }
        }
        guard size >= 12 else { throw ParquetError(.truncated, "file is \(size) bytes, too short for Parquet", file: name) }
        let tail = try read((size - 8)..<size)
        guard tail.count == 8 else { throw ParquetError(.io, "short read of the footer", file: name) }
        guard Array(tail[4..<8]) == ParquetLibrary.magic else {
            if Array(tail[4..<8]) == Array("PARE".utf8) {
                throw ParquetError(.unsupported, "encrypted footer (PARE) is not supported", file: name)
            }
            throw ParquetError(.badMagic, "file does not end with PAR1", file: name)
        }
        let footerLen = Int64(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLen <= size - 12 else {
            throw ParquetError(.truncated, "footer length \(footerLen) runs past the start of the \(size)-byte file", file: name)
        }
        guard footerLen <= Int64(options.maxFooterSize) else {
            throw ParquetError(.limitExceeded, "footer of \(footerLen) bytes exceeds the limit", file: name)
        }
        let head = try read(0..<4)
        guard head == ParquetLibrary.magic else { throw ParquetError(.badMagic, "file does not start with PAR1", file: name) }
        footerOffset = size - 8 - footerLen
        let footer = try read(footerOffset..<(size - 8))
        let meta: FileMetaData
        do throws(ParquetError) {
            let (raw, end) = try ThriftStruct.decode(footer)
            guard end == footer.count else {
                throw ParquetError(.corruptMetadata, "footer has \(footer.count - end) bytes after its end")
            }
            meta = try FileMetaData(raw: raw)
        } catch {
            throw error.located(file: name)
        }
        metadata = meta
        do throws(ParquetError) {
            schema = try ParquetSchema(elements: meta.schema)
        } catch {
            throw error.located(file: name)
        }
        var first: [Int64] = []
        var total: Int64 = 0
        for (g, rg) in meta.rowGroups.enumerated() {
            guard rg.numRows >= 0, rg.columns.count == schema.columns.count else {
                throw ParquetError(
                    .corruptMetadata, "row group has \(rg.columns.count) column chunks for \(schema.columns.count) columns or a negative row count", file: name,
                    rowGroup: g)
            }
            for (c, chunk) in rg.columns.enumerated() {
                let col = schema.columns[c].dottedPath
                guard !chunk.isEncrypted else { throw ParquetError(.unsupported, "encrypted column", file: name, rowGroup: g, column: col) }
                guard let md = chunk.metaData else {
                    throw ParquetError(.corruptMetadata, "column chunk without metadata", file: name, rowGroup: g, column: col)
                }
                guard md.physicalType == schema.columns[c].physicalType else {
                    throw ParquetError(.corruptMetadata, "column chunk type does not match the schema", file: name, rowGroup: g, column: col)
                }
                let start = md.chunkStart
                let (end, overflow) = start.addingReportingOverflow(md.totalCompressedSize)
                guard (start >= 4 || md.totalCompressedSize == 0), md.totalCompressedSize >= 0, !overflow, end <= footerOffset else {
                    throw ParquetError(
                        .corruptMetadata, "column chunk byte range \(start)+\(md.totalCompressedSize) lies outside the data area", file: name, rowGroup: g,
                        column: col)
                }
                guard md.numValues >= 0 else { throw ParquetError(.corruptMetadata, "negative value count", file: name, rowGroup: g, column: col) }
                if schema.columns[c].isFlat && md.numValues != rg.numRows {
                    throw ParquetError(.corruptMetadata, "column chunk has \(md.numValues) values for \(rg.numRows) rows", file: name, rowGroup: g, column: col)
                }
            }
            first.append(total)
            let (t, o) = total.addingReportingOverflow(rg.numRows)
            guard !o else { throw ParquetError(.corruptMetadata, "row count overflow", file: name, rowGroup: g) }
            total = t
        }
        // A footer that says 0 while the row groups hold rows is a writer that left the field unset
        // (pyarrow and DuckDB read the row groups); any other disagreement is corruption.
        if total != meta.numRows && meta.numRows != 0 {
            throw ParquetError(.corruptMetadata, "footer says \(meta.numRows) rows, row groups hold \(total)", file: name)
        }
        rowGroupFirstRow = first
        numRows = total
    }

    /// Opens an in-memory file.
    public init(bytes: [UInt8], name: String = "<parquet>", options: ReadOptions = ReadOptions()) throws(ParquetError) {
        try self.init(source: InMemorySource(bytes), name: name, options: options)
    }

    public var rowGroups: [RowGroup] { metadata.rowGroups }
    public var keyValueMetadata: [KeyValue] { metadata.keyValueMetadata }

    /// The leaf column with this path, or an `invalidArgument` error.
    public func column(_ path: [String]) throws(ParquetError) -> ColumnDescriptor {
        guard let c = schema.column(path) else {
            throw ParquetError(.invalidArgument, "no leaf column \(path.joined(separator: "."))", file: name)
        }
        return c
    }

    func checkRowGroup(_ rowGroup: Int) throws(ParquetError) {
        guard rowGroup >= 0, rowGroup < metadata.rowGroups.count else {
            throw ParquetError(.invalidArgument, "no row group \(rowGroup) (file has \(metadata.rowGroups.count))", file: name)
        }
    }

    /// The raw bytes of one column chunk (all its pages).
    public func columnChunkBytes(column: Int, rowGroup: Int) throws(ParquetError) -> [UInt8] {
        try checkRowGroup(rowGroup)
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        let col = schema.columns[column].dottedPath
        if md.totalCompressedSize == 0 { return [] }
        let range = readRange(column: column, rowGroup: rowGroup)
        var bytes = try withLocation(file: name, rowGroup: rowGroup, column: col) { try source.read(range) }
        guard bytes.count == range.count else {
            throw ParquetError(.io, "short read of a column chunk", file: name, rowGroup: rowGroup, column: col)
        }
        if range.count != Int(md.totalCompressedSize) {
            bytes.removeLast(bytes.count - Self.pagesEnd(bytes, values: md.numValues, stated: Int(md.totalCompressedSize)))
        }
        return bytes
    }

    /// The index of the row group holding file row `row`, or nil when it is past the end.
    public func rowGroup(ofRow row: Int64) -> Int? {
        guard row >= 0 else { return nil }
        var lo = 0, hi = rowGroupFirstRow.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if rowGroupFirstRow[mid] <= row { lo = mid + 1 } else { hi = mid }
        }
        let g = lo - 1
        guard g >= 0, row < rowGroupFirstRow[g] + metadata.rowGroups[g].numRows else { return nil }
        return g
    }

    /// The byte range of one column chunk as stored: what a copy of the chunk must copy.
    public func chunkRange(column: Int, rowGroup: Int) throws(ParquetError) -> Range<Int64> {
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        let start = md.chunkStart
        guard md.totalCompressedSize > 0, omitsDictionaryHeaderSize else { return start..<(start + md.totalCompressedSize) }
        return start..<(start + Int64(try columnChunkBytes(column: column, rowGroup: rowGroup).count))
    }

    /// The bytes to read to be sure of getting one column chunk: its stated range, plus up to
    /// 100 bytes for writers that left the dictionary page header out of the chunk's size.
    public func readRange(column: Int, rowGroup: Int) -> Range<Int64> {
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        let start = md.chunkStart
        let end = start + md.totalCompressedSize
        guard omitsDictionaryHeaderSize, md.totalCompressedSize > 0 else { return start..<end }
        return start..<max(end, min(footerOffset, end + Self.maxDictionaryHeaderSize))
    }

    static let maxDictionaryHeaderSize: Int64 = 100

    /// parquet-mr up to 1.2.8 (PARQUET-816, IMPALA-694) did not count the dictionary page
    /// header in a column chunk's `total_compressed_size`; Arrow reads such files by
    /// reading a little further and stopping once the chunk's values are read. So do we.
    public var omitsDictionaryHeaderSize: Bool {
        guard let by = metadata.createdBy, by.hasPrefix("parquet-mr") else { return false }
        let words = by.split(separator: " ")
        guard let i = words.firstIndex(of: "version"), i + 1 < words.count else { return true }
        let parts = words[i + 1].prefix { $0.isNumber || $0 == "." }.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 3 else { return true }
        return (parts[0], parts[1], parts[2]) < (1, 2, 9)
    }

    /// The end of the pages holding `values` values in a chunk read with padding (never
    /// before the stated size; the padding is cut off).
    static func pagesEnd(_ chunk: [UInt8], values: Int64, stated: Int) -> Int {
        var pos = 0, seen: Int64 = 0
        while seen < values && pos < chunk.count {
            guard let (raw, bodyStart) = try? ThriftStruct.decode(chunk, from: pos, to: nil),
                let h = try? PageHeader(raw: raw), h.compressedSize <= chunk.count - bodyStart
            else { return stated }
            if h.type == .dataPage || h.type == .dataPageV2 { seen += Int64(h.numValues) }
            pos = bodyStart + h.compressedSize
        }
        return max(stated, min(pos, chunk.count))
    }
}

extension ParquetFile {
    /// This file read through `source` (the same file's bytes, held elsewhere), its footer not parsed again.
    public func reading(from source: any ParquetSource) -> ParquetFile {
        var file = self
        file.source = source
        return file
    }
}
