/// Reading a whole leaf column of one row group into values and levels.

/// How a column chunk was written, so a rewrite can write it the same way.
struct ChunkLayout {
    var hasDictionary = false
    /// Encoding named in the dictionary page header (PLAIN or PLAIN_DICTIONARY).
    var dictionaryPageEncoding: Encoding = .plain
    /// The index encoding of dictionary-encoded data pages (PLAIN_DICTIONARY or RLE_DICTIONARY).
    var dictionaryIndexEncoding: Encoding?
    /// The non-dictionary value encoding used by data pages, if any page used one.
    var valueEncoding: Encoding?
    /// 1 or 2.
    var pageVersion = 1
    var v1LevelEncoding: Encoding = .rle
    var maxSlotsPerPage = 0
    var dataPageCount = 0
    var pageStatistics = false
    var pageCRC = false
    /// For v2 pages: whether values were compressed.
    var v2Compressed = true
}

extension ParquetFile {
    /// Reads one leaf column of one row group: non-null values plus levels.
    public func readColumn(_ column: Int, rowGroup: Int) throws(ParquetError) -> ColumnData {
        try readColumnWithLayout(column, rowGroup: rowGroup).0
    }

    /// Reads the leaf column at `path` of one row group.
    public func readColumn(path: [String], rowGroup: Int) throws(ParquetError) -> ColumnData {
        try readColumn(try column(path).index, rowGroup: rowGroup)
    }

    func readColumnWithLayout(_ column: Int, rowGroup: Int) throws(ParquetError) -> (ColumnData, ChunkLayout) {
        try checkRowGroup(rowGroup)
        guard column >= 0, column < schema.columns.count else {
            throw ParquetError(.invalidArgument, "no column \(column)", file: name)
        }
        let desc = schema.columns[column]
        let chunkBytes = try columnChunkBytes(column: column, rowGroup: rowGroup)
        let md = metadata.rowGroups[rowGroup].columns[column].metaData!
        var pageIndex = 0
        do throws(ParquetError) {
            return try Self.decodeChunk(
                chunkBytes, desc: desc, codecRaw: md.codecRaw, numValues: md.numValues,
                numRows: metadata.rowGroups[rowGroup].numRows, options: options, pageIndex: &pageIndex)
        } catch {
            throw error.located(file: name, rowGroup: rowGroup, column: desc.dottedPath, page: error.code == .corruptMetadata ? nil : pageIndex)
        }
    }

    static func decodeChunk(
        _ chunk: [UInt8], desc: ColumnDescriptor, codecRaw: Int32, numValues: Int64, numRows: Int64,
        options: ReadOptions, pageIndex: inout Int
    ) throws(ParquetError) -> (ColumnData, ChunkLayout) {
        var pages = try PageIterator(chunk: chunk, codecRaw: codecRaw, options: options)
        var layout = ChunkLayout()
        var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
        var defLevels: [UInt16] = []
        var repLevels: [UInt16] = []
        var dictionary: ColumnValues?
        var remaining = numValues
        var rows: Int64 = 0
        let maxDef = desc.maxDefinitionLevel, maxRep = desc.maxRepetitionLevel
        while true {
            pageIndex = pages.index
            guard let page = try pages.next() else { break }
            let h = page.header
            switch h.type {
            case .indexPage:
                continue
            case .dictionaryPage:
                guard dictionary == nil, layout.dataPageCount == 0 else {
                    throw ParquetError(.corruptPage, "dictionary page after the first page")
                }
                guard let e = Encoding(rawValue: h.encoding), e == .plain || e == .plainDictionary else {
                    throw ParquetError(.corruptPage, "dictionary page with encoding \(h.encoding)")
                }
                guard h.numValues <= page.data.count * 8 else { throw ParquetError(.corruptPage, "dictionary page value count does not fit its size") }
                var d = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
                try withBytes(page.data) { (p) throws(ParquetError) in try d.appendPlain(p, count: h.numValues) }
                dictionary = d.result()
                layout.hasDictionary = true
                layout.dictionaryPageEncoding = e
                if h.crc != nil { layout.pageCRC = true }
            case .dataPage, .dataPageV2:
                let n = h.numValues
                guard Int64(n) <= remaining else {
                    throw ParquetError(.corruptPage, "page holds \(n) values but only \(remaining) remain in the column chunk")
                }
                guard n <= options.maxValuesPerPage else { throw ParquetError(.limitExceeded, "page of \(n) values exceeds the limit") }
                remaining -= Int64(n)
                guard let enc = Encoding(rawValue: h.encoding) else { throw ParquetError(.corruptPage, "unknown encoding \(h.encoding)") }
                layout.dataPageCount += 1
                layout.pageVersion = h.type == .dataPageV2 ? 2 : 1
                layout.maxSlotsPerPage = max(layout.maxSlotsPerPage, n)
                if h.hasStatistics { layout.pageStatistics = true }
                if h.crc != nil { layout.pageCRC = true }
                if enc.isDictionary { layout.dictionaryIndexEncoding = enc } else { layout.valueEncoding = enc }
                if h.type == .dataPage, maxDef > 0, let le = Encoding(rawValue: h.defLevelEncoding) { layout.v1LevelEncoding = le }
                if h.type == .dataPageV2 { layout.v2Compressed = h.isCompressed }
                try withBytes(page.data) { (data) throws(ParquetError) in
                    var pos = 0
                    let v2 = h.type == .dataPageV2
                    if maxRep > 0 {
                        let r = try decodeLevels(
                            data, pos: &pos, count: n, maxLevel: maxRep, encoding: h.repLevelEncoding, v2Length: v2 ? h.repLevelsByteLength : nil)
                        for l in r where l == 0 { rows += 1 }
                        if n > 0 && r[0] != 0 { throw ParquetError(.corruptPage, "page does not start at a row boundary") }
                        repLevels.append(contentsOf: r)
                    } else {
                        if v2 { pos += h.repLevelsByteLength }
                        rows += Int64(n)
                    }
                    var nonNull = n
                    if maxDef > 0 {
                        let d = try decodeLevels(
                            data, pos: &pos, count: n, maxLevel: maxDef, encoding: h.defLevelEncoding, v2Length: v2 ? h.defLevelsByteLength : nil)
                        nonNull = 0
                        for l in d where Int(l) == maxDef { nonNull += 1 }
                        defLevels.append(contentsOf: d)
                    } else if v2 {
                        pos += h.defLevelsByteLength
                    }
                    if v2 {
                        guard h.numNulls == n - nonNull else {
                            throw ParquetError(.corruptPage, "v2 page says \(h.numNulls) nulls, levels say \(n - nonNull)")
                        }
                        if maxRep > 0 && h.numRows != 0 {
                            var pr = 0
                            for l in repLevels.suffix(n) where l == 0 { pr += 1 }
                            guard pr == h.numRows else { throw ParquetError(.corruptPage, "v2 page says \(h.numRows) rows, levels say \(pr)") }
                        }
                    }
                    guard pos <= data.count else { throw ParquetError(.corruptPage, "levels run past the end of the page") }
                    try acc.appendEncoded(enc, UnsafeRawBufferPointer(rebasing: data[pos...]), count: nonNull, dictionary: dictionary)
                }
            }
        }
        pageIndex = pages.index
        guard remaining == 0 else {
            throw ParquetError(.corruptPage, "column chunk pages hold \(numValues - remaining) values, metadata says \(numValues)")
        }
        guard rows == numRows else {
            throw ParquetError(.corruptPage, "column chunk holds \(rows) rows, row group says \(numRows)")
        }
        let data = ColumnData(
            values: acc.result(),
            definitionLevels: maxDef > 0 ? defLevels : nil,
            repetitionLevels: maxRep > 0 ? repLevels : nil)
        return (data, layout)
    }
}
