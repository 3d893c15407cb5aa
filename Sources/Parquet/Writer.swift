/// Writing new Parquet files.

extension SchemaNode {
    /// The root of a schema (`name` is conventionally "schema").
    public static func root(_ children: [SchemaNode], name: String = "schema") -> SchemaNode {
        SchemaNode(element: SchemaElement(name: name, repetition: nil, numChildren: Int32(children.count)), children: children)
    }

    /// A leaf column.
    public static func leaf(
        _ name: String, _ type: PhysicalType, _ repetition: Repetition = .optional,
        logicalType: LogicalType? = nil, convertedType: ConvertedType? = nil,
        typeLength: Int32? = nil, scale: Int32? = nil, precision: Int32? = nil, fieldID: Int32? = nil
    ) -> SchemaNode {
        SchemaNode(
            element: SchemaElement(
                name: name, type: type, typeLength: typeLength, repetition: repetition,
                convertedType: convertedType, scale: scale, precision: precision,
                fieldID: fieldID, logicalType: logicalType), children: [])
    }

    /// A group (struct; or with `.list` / `.map` logical types, a list or map).
    public static func group(
        _ name: String, _ repetition: Repetition = .optional, logicalType: LogicalType? = nil,
        convertedType: ConvertedType? = nil, _ children: [SchemaNode]
    ) -> SchemaNode {
        SchemaNode(
            element: SchemaElement(
                name: name, repetition: repetition, numChildren: Int32(children.count),
                convertedType: convertedType, logicalType: logicalType), children: children)
    }

    /// A standard three-level list: `<rep> group name (LIST) { repeated group list { element } }`.
    public static func list(_ name: String, _ repetition: Repetition = .optional, element: SchemaNode) -> SchemaNode {
        var e = element
        e.element.raw[4] = .binary(Array("element".utf8))
        return .group(name, repetition, logicalType: .list, convertedType: .list, [.group("list", .repeated, [e])])
    }
}

/// Options for `ParquetWriter`.
public struct WriterOptions: Sendable {
    /// Encoding options for every column…
    public var columns = ColumnWriteOptions()
    /// …except those overridden here, by dotted path.
    public var perColumn: [String: ColumnWriteOptions] = [:]
    public var createdBy = "parquet-swift (Lethe)"
    public init() {}
}

/// Writes a Parquet file row group by row group into a sink.
///
/// ```swift
/// var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
/// try w.writeRowGroup([ColumnData(values: .int64([1, 2]))])
/// let meta = try w.close()
/// let bytes = w.sink.bytes
/// ```
public struct ParquetWriter<S: ParquetSink> {
    private var out: CountingSink<S>
    public let schema: ParquetSchema
    public let options: WriterOptions
    public var keyValueMetadata: [KeyValue]
    private var rowGroups: [RowGroup] = []
    private var indexes: [[(columnIndex: [UInt8]?, offsetIndex: [UInt8]?)]] = []
    private var numRows: Int64 = 0
    private var closed = false

    /// The sink (after `close()`, it holds the whole file).
    public var sink: S { out.base }

    public init(sink: S, schema: ParquetSchema, options: WriterOptions = WriterOptions(), keyValueMetadata: [KeyValue] = []) throws(ParquetError) {
        out = CountingSink(base: sink)
        self.schema = schema
        self.options = options
        self.keyValueMetadata = keyValueMetadata
        try out.write(ParquetLibrary.magic)
    }

    /// Writes one row group: one `ColumnData` per leaf column, in schema order.
    @discardableResult
    public mutating func writeRowGroup(_ columns: [ColumnData]) throws(ParquetError) -> RowGroup {
        guard !closed else { throw ParquetError(.invalidArgument, "writer is closed") }
        guard columns.count == schema.columns.count else {
            throw ParquetError(.invalidArgument, "row group has \(columns.count) columns, schema has \(schema.columns.count)")
        }
        var rows: Int64? = nil
        var chunks: [ColumnChunk] = []
        var idx: [(columnIndex: [UInt8]?, offsetIndex: [UInt8]?)] = []
        let start = out.offset
        var totalUncompressed: Int64 = 0
        for (c, data) in columns.enumerated() {
            let desc = schema.columns[c]
            let o = options.perColumn[desc.dottedPath] ?? options.columns
            let enc = try ChunkWriter.encode(data, desc: desc, options: o)
            let r = Int64(data.rowCount)
            if let rows, rows != r {
                throw ParquetError(.invalidArgument, "column has \(r) rows, earlier columns have \(rows)", column: desc.dottedPath)
            }
            rows = r
            let base = out.offset
            try out.write(enc.bytes)
            var chunk = ColumnChunk(raw: ThriftStruct())
            chunk.fileOffset = base
            chunk.metaData = enc.metaData(at: base)
            totalUncompressed += enc.meta.totalUncompressedSize
            chunks.append(chunk)
            idx.append(o.pageIndex ? (ChunkWriter.columnIndex(enc.pages), ChunkWriter.offsetIndex(enc.pages, base: base)) : (nil, nil))
        }
        var rg = try RowGroup(raw: ThriftStruct([ThriftField(id: 1, value: .list(.structure, []))]))
        rg.columns = chunks
        rg.numRows = rows ?? 0
        rg.totalByteSize = totalUncompressed
        rg.fileOffset = start
        rg.totalCompressedSize = out.offset - start
        rg.ordinal = Int16(truncatingIfNeeded: rowGroups.count)
        rowGroups.append(rg)
        indexes.append(idx)
        numRows += rg.numRows
        return rg
    }

    /// Writes the page indexes and footer; returns the footer.
    @discardableResult
    public mutating func close() throws(ParquetError) -> FileMetaData {
        guard !closed else { throw ParquetError(.invalidArgument, "writer is already closed") }
        closed = true
        for (g, cols) in indexes.enumerated() {
            for (c, i) in cols.enumerated() {
                if let ci = i.columnIndex {
                    rowGroups[g].columns[c].columnIndexOffset = out.offset
                    rowGroups[g].columns[c].columnIndexLength = Int32(ci.count)
                    try out.write(ci)
                }
            }
        }
        for (g, cols) in indexes.enumerated() {
            for (c, i) in cols.enumerated() {
                if let oi = i.offsetIndex {
                    rowGroups[g].columns[c].offsetIndexOffset = out.offset
                    rowGroups[g].columns[c].offsetIndexLength = Int32(oi.count)
                    try out.write(oi)
                }
            }
        }
        var meta = try FileMetaData(raw: ThriftStruct([ThriftField(id: 2, value: .list(.structure, schema.elements.map { .structure($0.raw) }))]))
        meta.raw[1] = .i32(2)
        meta.numRows = numRows
        meta.rowGroups = rowGroups
        meta.keyValueMetadata = keyValueMetadata
        meta.createdBy = options.createdBy
        // Column orders: TYPE_DEFINED_ORDER for every leaf.
        meta.raw[7] = .list(
            .structure,
            schema.columns.map { _ in
                .structure(ThriftStruct([ThriftField(id: 1, value: .structure(ThriftStruct()))]))
            })
        try writeFooter(meta, to: &out)
        return meta
    }
}

func writeFooter<S>(_ meta: FileMetaData, to out: inout CountingSink<S>) throws(ParquetError) {
    let footer = meta.encoded()
    var tail = footer
    withUnsafeBytes(of: UInt32(footer.count).littleEndian) { tail.append(contentsOf: $0) }
    tail += ParquetLibrary.magic
    try out.write(tail)
}
