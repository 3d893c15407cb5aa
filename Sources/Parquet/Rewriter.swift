import Dispatch
import Synchronization

/// The erasure rewrite: drop rows from a file, copying untouched row groups byte
/// for byte and re-encoding only the row groups that held dropped rows.

/// What happened to one row group of the original file.
public enum RowGroupOutcome: Sendable, Equatable {
    /// Copied byte for byte; `newIndex` is its index in the new file.
    case copied(newIndex: Int)
    /// Re-encoded without `droppedRows` rows.
    case reencoded(newIndex: Int, droppedRows: Int64)
    /// Every row was dropped; the row group is gone.
    case removed(droppedRows: Int64)
}

/// How the rewrite wrote the column chunks of the row groups that lost rows.
public struct PageRewriteCounts: Sendable, Equatable {
    /// Chunks written page by page (untouched pages copied).
    public var pageLevelChunks = 0
    /// Chunks decoded and re-encoded whole (a shape the page-level rewrite leaves alone).
    public var wholeChunks = 0
    public var copiedPages = 0
    public var reencodedPages = 0
    /// Pages every row of which was dropped.
    public var removedPages = 0
    /// Dictionary entries overwritten because only dropped rows referenced them.
    public var neutralisedEntries = 0
    /// Re-encoded pages of flat columns written from the runs between drops.
    public var flatPages = 0
    /// Of those, pages edited in place (the runs and values that held dropped slots, the Snappy
    /// elements around them) rather than encoded and compressed again.
    public var splicedPages = 0
    /// Re-encoded pages whose old bounds still held (no lost value reached one).
    public var keptPageStatistics = 0
    /// Neutralised Snappy dictionary pages patched in place instead of compressed again.
    public var patchedDictionaries = 0
    /// Page-level chunks whose old min/max still held.
    public var keptChunkStatistics = 0
    public init() {}
}

/// The result of `ParquetFile.rewrite(droppingRows:to:)`.
public struct RewriteResult: Sendable, Equatable {
    public var keptRows: Int64
    public var droppedRows: Int64
    /// One entry per row group of the original file.
    public var rowGroups: [RowGroupOutcome]
    /// Bytes written to the sink.
    public var bytesWritten: Int64
    /// How the chunks of the row groups that lost rows were written.
    public var pages = PageRewriteCounts()
    /// The file lost all its rows; the caller should delete it instead of
    /// storing the (valid, empty) file that was written.
    public var isEmpty: Bool { keptRows == 0 }
}

extension ColumnData {
    /// The data without the given rows (`dropped`: sorted row indexes within this chunk);
    /// with `keeping`, only the given rows.
    func droppingRows(_ dropped: [Int], maxDefinitionLevel maxDef: Int, keeping: Bool = false) -> ColumnData {
        let n = slotCount
        var def: [UInt16]? = definitionLevels == nil ? nil : []
        var rep: [UInt16]? = repetitionLevels == nil ? nil : []
        def?.reserveCapacity(n)
        rep?.reserveCapacity(n)
        var keepValues: [Int] = []
        keepValues.reserveCapacity(values.count)
        var row = -1, vi = 0, di = 0
        var keep = true
        for s in 0..<n {
            let r = repetitionLevels?[s] ?? 0
            if r == 0 {
                row += 1
                while di < dropped.count && dropped[di] < row { di += 1 }
                keep = (di < dropped.count && dropped[di] == row) == keeping
            }
            let d = definitionLevels?[s]
            let hasValue = d == nil || Int(d!) == maxDef
            if keep {
                if let d { def!.append(d) }
                if repetitionLevels != nil { rep!.append(r) }
                if hasValue { keepValues.append(vi) }
            }
            if hasValue { vi += 1 }
        }
        return ColumnData(values: values.gather(keepValues), definitionLevels: def, repetitionLevels: rep)
    }
}

extension ParquetFile {
    /// Writes to `sink` a copy of this file without the rows at the given file
    /// row indexes (strictly increasing, each in `0..<numRows`).
    ///
    /// Row groups without dropped rows are copied byte for byte (offsets in the
    /// footer adjusted); row groups with dropped rows are re-encoded with the
    /// same schema, codec, encodings and page version, with dictionaries rebuilt
    /// from the surviving values, statistics recomputed, page indexes rebuilt and
    /// bloom filters dropped; row groups that lose every row are removed. The
    /// footer (schema, key/value metadata, created_by, column orders) is kept.
    public func rewrite<S: ParquetSink>(droppingRows rows: [Int64], to sink: inout S) throws(ParquetError) -> RewriteResult {
        try rewrite(droppingRows: rows, to: &sink, pageOptions: PageRewriteOptions())
    }

    public func rewrite<S: ParquetSink>(
        droppingRows rows: [Int64], to sink: inout S, pageOptions: PageRewriteOptions
    ) throws(ParquetError) -> RewriteResult {
        try rewrite(droppingRows: rows, scrubbing: [:], to: &sink, pageOptions: pageOptions)
    }

    /// `rewrite(droppingRows:to:)` that also *scrubs* the chunks `scrubbing` names (row group →
    /// leaf column indexes): every dictionary entry of such a chunk that no kept row references is
    /// neutralised, as in a chunk that loses rows (or the chunk is re-encoded, its dictionary rebuilt
    /// from the values kept), even where the row group loses no row. The other chunks of a scrubbed
    /// row group that loses no row are copied byte for byte. What an erasure needs when a subject's
    /// value survives in a dictionary entry no row references (residue with no row to drop).
    public func rewrite<S: ParquetSink>(
        droppingRows rows: [Int64], scrubbing: [Int: Set<Int>], to sink: inout S, pageOptions: PageRewriteOptions = PageRewriteOptions()
    ) throws(ParquetError) -> RewriteResult {
        try checkRowsToDrop(rows)
        try checkChunksToScrub(scrubbing)
        var out = CountingSink(base: sink)
        // The new file is about the old one's size (a few rows fewer, a few edited elements longer).
        out.base.expect(Int(source.size) + Int(source.size) / 32 + 4096)
        try out.write(ParquetLibrary.magic)
        var w = RewrittenGroups()
        w.pageOptions = pageOptions
        w.chunkByChunk = try rowGroupsWithGaps()
        var ri = 0
        for (g, rg) in metadata.rowGroups.enumerated() {
            let first = rowGroupFirstRow[g]
            let end = first + rg.numRows
            var local: [Int] = []
            while ri < rows.count && rows[ri] < end {
                local.append(Int(rows[ri] - first))
                ri += 1
            }
            for c in rg.columns where c.filePath != nil {
                throw ParquetError(.unsupported, "column chunks in external files are not supported", file: name, rowGroup: g)
            }
            if local.count == Int(rg.numRows) && rg.numRows > 0 {
                w.outcomes.append(.removed(droppedRows: rg.numRows))
            } else if local.isEmpty && (scrubbing[g] ?? []).isEmpty {
                try copyRowGroup(g, to: &out, into: &w)
            } else {
                try reencodeRowGroup(g, dropping: local, scrubbing: scrubbing[g] ?? [], to: &out, into: &w)
            }
        }
        try moveBloomFilters(&w, to: &out)
        try writeColumnIndexes(&w, to: &out)
        try writeOffsetIndexes(&w, to: &out)
        var meta = metadata
        meta.rowGroups = w.groups
        meta.numRows = w.kept
        try writeFooter(meta, to: &out)
        sink = out.base
        var result = RewriteResult(keptRows: w.kept, droppedRows: Int64(rows.count), rowGroups: w.outcomes, bytesWritten: out.offset)
        result.pages = w.counts
        return result
    }

    /// The bytes of row group `g`'s column chunks (from the first chunk's start to the last one's
    /// end), which a rewrite copies byte for byte when none of its rows is dropped; nil when it has none.
    public func rowGroupByteRange(_ g: Int) throws(ParquetError) -> Range<Int64>? {
        var lo = Int64.max, hi = Int64.min
        for (ci, c) in metadata.rowGroups[g].columns.enumerated() {
            guard let md = c.metaData, md.totalCompressedSize > 0 else { continue }
            let r = try chunkRange(column: ci, rowGroup: g)
            lo = min(lo, r.lowerBound)
            hi = max(hi, r.upperBound)
        }
        return lo < hi ? lo..<hi : nil
    }

    /// Writes to `sink` a copy of this file in which the cells of `rows` (strictly increasing file
    /// row indexes) in the flat columns `columns` are replaced by what `replace(column, old)` returns
    /// (`.keep` leaves a cell as it was). Row groups without such a row are copied byte for byte; in a
    /// row group with one, the other columns' chunks are copied byte for byte and only the masked
    /// columns' chunks are re-encoded (same physical type, codec, encodings and page version;
    /// statistics, dictionary and page indexes rebuilt, their bloom filters dropped). The row count
    /// and the footer's schema and key/value metadata are kept. A null needs an optional column, a
    /// value the column's physical type (`.invalidArgument` otherwise, nothing written).
    public func rewrite<S: ParquetSink>(
        masking rows: [Int64], columns: Set<Int>, replace: (_ column: Int, _ old: OldCell) -> CellValue, scrubbing: [Int: Set<Int>] = [:],
        to sink: inout S
    ) throws(ParquetError) -> RewriteResult {
        try rewrite(masking: rows, columns: columns, replaceAt: { c, _, old in replace(c, old) }, scrubbing: scrubbing, to: &sink)
    }

    /// `rewrite(masking:columns:replace:to:)` with each cell's file row index given to `replace`
    /// (protect and reveal seal or open each value with its row's subject key), and chunks to scrub
    /// (row group → leaf columns) as in `rewrite(droppingRows:scrubbing:to:)`: every dictionary entry
    /// of such a chunk that no row references is neutralised (or the chunk re-encoded with its
    /// dictionary rebuilt), in a row group without masked rows too. A masked chunk is re-encoded
    /// from its new values, so its dictionary holds no entry no row references anyway (the entries
    /// only the masked cells held included).
    public func rewrite<S: ParquetSink>(
        masking rows: [Int64], columns: Set<Int>, replaceAt replace: (_ column: Int, _ row: Int64, _ old: OldCell) -> CellValue,
        scrubbing: [Int: Set<Int>] = [:], to sink: inout S
    ) throws(ParquetError) -> RewriteResult {
        try checkRowsToDrop(rows)
        for c in columns {
            guard c >= 0 && c < schema.columns.count else { throw ParquetError(.invalidArgument, "no column \(c)", file: name) }
            guard schema.columns[c].isFlat else {
                throw ParquetError(.unsupported, "column `\(schema.columns[c].dottedPath)` is repeated: masking covers flat columns", file: name)
            }
        }
        try checkChunksToScrub(scrubbing)
        var out = CountingSink(base: sink)
        try out.write(ParquetLibrary.magic)
        var w = RewrittenGroups()
        w.chunkByChunk = try rowGroupsWithGaps()
        var ri = 0
        for (g, rg) in metadata.rowGroups.enumerated() {
            let first = rowGroupFirstRow[g]
            let end = first + rg.numRows
            var local: [Int] = []
            while ri < rows.count && rows[ri] < end {
                local.append(Int(rows[ri] - first))
                ri += 1
            }
            for c in rg.columns where c.filePath != nil {
                throw ParquetError(.unsupported, "column chunks in external files are not supported", file: name, rowGroup: g)
            }
            let scrub = scrubbing[g] ?? []
            if local.isEmpty || columns.isEmpty {
                if scrub.isEmpty {
                    try copyRowGroup(g, to: &out, into: &w)
                } else {
                    try reencodeRowGroup(g, dropping: [], scrubbing: scrub, to: &out, into: &w)
                }
            } else {
                try maskRowGroup(g, rows: local, columns: columns, replace: replace, scrubbing: scrub, to: &out, into: &w)
            }
        }
        try moveBloomFilters(&w, to: &out)
        try writeColumnIndexes(&w, to: &out)
        try writeOffsetIndexes(&w, to: &out)
        var meta = metadata
        meta.rowGroups = w.groups
        meta.numRows = w.kept
        try writeFooter(meta, to: &out)
        sink = out.base
        var result = RewriteResult(keptRows: w.kept, droppedRows: 0, rowGroups: w.outcomes, bytesWritten: out.offset)
        result.pages = w.counts
        return result
    }

    /// Row group `g` with the masked columns' chunks re-encoded, the chunks of `scrub` that are not
    /// masked scrubbed of their unreferenced dictionary entries, and every other chunk copied byte for byte.
    private func maskRowGroup<S>(
        _ g: Int, rows local: [Int], columns: Set<Int>, replace: (Int, Int64, OldCell) -> CellValue, scrubbing scrub: Set<Int>,
        to out: inout CountingSink<S>, into w: inout RewrittenGroups
    ) throws(ParquetError) {
        let rg = metadata.rowGroups[g]
        let newIndex = w.groups.count
        var ng = rg
        var plan: [IndexPlan] = []
        let start = out.offset
        var totalUncompressed: Int64 = 0
        for (ci, desc) in schema.columns.enumerated() {
            let orig = rg.columns[ci]
            guard columns.contains(ci) else {
                // Copied as it is (its offsets shifted to where it lands), or scrubbed.
                let (chunk, chunkPlan, uncompressed) =
                    scrub.contains(ci)
                    ? try rewriteChunk(ci, of: g, dropping: [], scrub: true, to: &out, into: &w)
                    : try copyChunk(ci, of: g, newIndex: newIndex, to: &out, into: &w)
                ng.columns[ci] = chunk
                totalUncompressed += uncompressed
                plan.append(chunkPlan)
                continue
            }
            w.counts.wholeChunks += 1
            let (data, layout) = try readColumnWithLayout(ci, rowGroup: g)
            let first = rowGroupFirstRow[g]
            let masked = try data.masking(local, desc: desc, column: ci, replace: { c, slot, old in replace(c, first + Int64(slot), old) }, file: name)
            let (chunk, uncompressed, chunkPlan) = try writeReencodedChunk(masked, layout: layout, original: orig, rowGroup: g, desc: desc, to: &out)
            ng.columns[ci] = chunk
            totalUncompressed += uncompressed
            plan.append(chunkPlan)
        }
        ng.totalByteSize = totalUncompressed
        if ng.fileOffset != nil { ng.fileOffset = start }
        if ng.totalCompressedSize != nil { ng.totalCompressedSize = out.offset - start }
        if ng.ordinal != nil { ng.ordinal = Int16(truncatingIfNeeded: newIndex) }
        w.groups.append(ng)
        w.plans.append(plan)
        w.outcomes.append(.reencoded(newIndex: newIndex, droppedRows: 0))
        w.kept += rg.numRows
    }

    /// Chunks to scrub name row groups and leaf columns of the file.
    private func checkChunksToScrub(_ scrubbing: [Int: Set<Int>]) throws(ParquetError) {
        for (g, columns) in scrubbing {
            guard g >= 0, g < metadata.rowGroups.count, columns.allSatisfy({ $0 >= 0 && $0 < schema.columns.count }) else {
                throw ParquetError(.invalidArgument, "chunk to scrub out of range (row group \(g), columns \(columns.sorted()))", file: name)
            }
        }
    }

    /// Rows to drop are strictly increasing file row indexes, each in `0..<numRows`.
    private func checkRowsToDrop(_ rows: [Int64]) throws(ParquetError) {
        var prev: Int64 = -1
        for r in rows {
            guard r > prev else { throw ParquetError(.invalidArgument, "rows to drop must be strictly increasing", file: name) }
            guard r < numRows else { throw ParquetError(.invalidArgument, "row \(r) is past the file's \(numRows) rows", file: name) }
            prev = r
        }
    }

    /// The row groups whose byte range (`rowGroupByteRange`) holds bytes that are not their chunks': a
    /// gap between two of its chunks, where another row group's chunks (a file laid out column by
    /// column), page indexes or bloom filters may lie. The writers seen lay a row group's chunks end to end.
    func rowGroupsWithGaps() throws(ParquetError) -> Set<Int> {
        var out = Set<Int>()
        for (g, rg) in metadata.rowGroups.enumerated() {
            var chunks: [Range<Int64>] = []
            for (ci, c) in rg.columns.enumerated() {
                guard let md = c.metaData, md.totalCompressedSize > 0 else { continue }
                chunks.append(try chunkRange(column: ci, rowGroup: g))
            }
            chunks.sort { $0.lowerBound < $1.lowerBound }
            if zip(chunks, chunks.dropFirst()).contains(where: { $0.upperBound != $1.lowerBound }) { out.insert(g) }
        }
        return out
    }

    /// Copies row group `g` byte for byte (its byte range), with the footer's offsets shifted to
    /// where it lands; its page indexes are copied later, and bloom filters outside the range moved.
    /// A row group whose range holds bytes that are not its chunks' (`RewrittenGroups.chunkByChunk`) is
    /// copied chunk by chunk: its range would carry them along — another row group's chunks or page
    /// indexes, which may hold a dropped row's values.
    private func copyRowGroup<S>(_ g: Int, to out: inout CountingSink<S>, into w: inout RewrittenGroups) throws(ParquetError) {
        let rg = metadata.rowGroups[g]
        let newIndex = w.groups.count
        var ng = rg
        var plan: [IndexPlan] = []
        if w.chunkByChunk.contains(g) {
            let start = out.offset
            for ci in rg.columns.indices {
                let (chunk, chunkPlan, _) = try copyChunk(ci, of: g, newIndex: newIndex, to: &out, into: &w)
                ng.columns[ci] = chunk
                plan.append(chunkPlan)
            }
            if let fo = ng.fileOffset, fo >= 4 { ng.fileOffset = start }
            if ng.totalCompressedSize != nil { ng.totalCompressedSize = out.offset - start }
        } else {
            var lo = out.offset, hi = out.offset
            if let r = try rowGroupByteRange(g) { lo = r.lowerBound; hi = r.upperBound }
            let newStart = out.offset
            if hi > lo {
                let src = source
                try withLocation(file: name, rowGroup: g) { try out.copy(from: src, range: lo..<hi) }
            }
            let delta = newStart - lo
            for (ci, chunk) in rg.columns.enumerated() {
                let (c, p) = moved(chunk, column: ci, by: delta, from: lo..<hi, newIndex: newIndex, into: &w)
                ng.columns[ci] = c
                plan.append(p)
            }
            if let fo = ng.fileOffset, fo >= 4 { ng.fileOffset = fo + delta }
        }
        if ng.ordinal != nil { ng.ordinal = Int16(truncatingIfNeeded: newIndex) }
        w.groups.append(ng)
        w.plans.append(plan)
        w.outcomes.append(.copied(newIndex: newIndex))
        w.kept += rg.numRows
    }

    /// Copies column `ci` of row group `g` byte for byte where the output ends (a chunk of a scrubbed
    /// row group that loses no row): its offsets shifted, its page indexes copied later, a bloom
    /// filter moved.
    private func copyChunk<S>(
        _ ci: Int, of g: Int, newIndex: Int, to out: inout CountingSink<S>, into w: inout RewrittenGroups
    ) throws(ParquetError) -> (ColumnChunk, IndexPlan, Int64) {
        let chunk = metadata.rowGroups[g].columns[ci]
        guard let md = chunk.metaData else {
            throw ParquetError(.corruptMetadata, "column chunk without metadata", file: name, rowGroup: g)
        }
        let r = try chunkRange(column: ci, rowGroup: g)
        let newStart = out.offset
        if !r.isEmpty {
            let src = source
            try withLocation(file: name, rowGroup: g) { try out.copy(from: src, range: r) }
        }
        let (c, plan) = moved(chunk, column: ci, by: newStart - r.lowerBound, from: r, newIndex: newIndex, into: &w)
        return (c, plan, md.totalUncompressedSize)
    }

    /// A chunk copied byte for byte from the bytes `from` to `delta` bytes further: its offsets
    /// shifted, its page indexes copied later (the plan), a bloom filter outside `from` moved.
    private func moved(
        _ chunk: ColumnChunk, column ci: Int, by delta: Int64, from: Range<Int64>, newIndex: Int, into w: inout RewrittenGroups
    ) -> (ColumnChunk, IndexPlan) {
        var chunk = chunk
        var md = chunk.metaData!
        if md.totalCompressedSize > 0 || md.dataPageOffset >= 4 { md.dataPageOffset += delta }
        if let d = md.dictionaryPageOffset, d >= 4 { md.dictionaryPageOffset = d + delta }
        if let ip = md.indexPageOffset, ip >= 4 { md.indexPageOffset = ip + delta }
        if let bo = md.bloomFilterOffset {
            if from.contains(bo) {
                md.bloomFilterOffset = bo + delta
            } else {
                w.bloomsToMove.append((newIndex, ci, bo, md.bloomFilterLength))
            }
        }
        chunk.metaData = md
        if chunk.fileOffset >= 4 { chunk.fileOffset += delta }
        let cidx = chunk.columnIndexOffset.flatMap { o in chunk.columnIndexLength.map { (o, $0) } }
        let oidx = chunk.offsetIndexOffset.flatMap { o in chunk.offsetIndexLength.map { (o, $0) } }
        chunk.columnIndexOffset = nil; chunk.columnIndexLength = nil
        chunk.offsetIndexOffset = nil; chunk.offsetIndexLength = nil
        return (chunk, cidx == nil && oidx == nil ? .none : .copy(columnIndex: cidx, offsetIndex: oidx, delta: delta))
    }

    /// Re-encodes row group `g` without its `local` rows (sorted indexes within it), column by column;
    /// the chunks of `scrub` lose their unreferenced dictionary entries too. With no row dropped, the
    /// chunks not to scrub are copied byte for byte.
    private func reencodeRowGroup<S>(
        _ g: Int, dropping local: [Int], scrubbing scrub: Set<Int> = [], to out: inout CountingSink<S>,
        into w: inout RewrittenGroups
    ) throws(ParquetError) {
        let rg = metadata.rowGroups[g]
        let newIndex = w.groups.count
        var ng = rg
        var plan: [IndexPlan] = []
        let start = out.offset
        var totalUncompressed: Int64 = 0
        let rewritten = schema.columns.indices.filter { !local.isEmpty || scrub.contains($0) }
        let byPages = pageLevelChunks(rewritten, of: g, dropping: local, scrub: scrub, options: w.pageOptions)
        for ci in schema.columns.indices {
            let (chunk, chunkPlan, uncompressed) =
                local.isEmpty && !scrub.contains(ci)
                ? try copyChunk(ci, of: g, newIndex: newIndex, to: &out, into: &w)
                : try rewriteChunk(ci, of: g, dropping: local, scrub: scrub.contains(ci), byPages: byPages?[ci], to: &out, into: &w)
            ng.columns[ci] = chunk
            totalUncompressed += uncompressed
            plan.append(chunkPlan)
        }
        ng.numRows = rg.numRows - Int64(local.count)
        ng.totalByteSize = totalUncompressed
        if ng.fileOffset != nil { ng.fileOffset = start }
        if ng.totalCompressedSize != nil { ng.totalCompressedSize = out.offset - start }
        if ng.ordinal != nil { ng.ordinal = Int16(truncatingIfNeeded: newIndex) }
        w.groups.append(ng)
        w.plans.append(plan)
        w.outcomes.append(.reencoded(newIndex: newIndex, droppedRows: Int64(local.count)))
        w.kept += ng.numRows
    }

    /// Column `ci` of row group `g` without the `local` rows (sorted indexes within the group), written
    /// where the output ends: page by page where it can (untouched pages copied, the dictionary's
    /// entries no kept row references neutralised when rows go or with `scrub`), else decoded and
    /// re-encoded whole with its dictionary rebuilt from the values kept. The new chunk, its page-index
    /// plan and its uncompressed size.
    /// `byPages`: the chunk's page-level rewrite when it was made beforehand (`pageLevelChunks`).
    private func rewriteChunk<S>(
        _ ci: Int, of g: Int, dropping local: [Int], scrub: Bool, byPages: PageLevelChunk?? = nil, to out: inout CountingSink<S>,
        into w: inout RewrittenGroups
    ) throws(ParquetError) -> (ColumnChunk, IndexPlan, Int64) {
        let orig = metadata.rowGroups[g].columns[ci]
        let desc = schema.columns[ci]
        if w.pageOptions.enabled,
            let pc = byPages
                ?? (try? rewriteChunkByPages(column: ci, rowGroup: g, dropping: local, original: orig, options: w.pageOptions, scrub: scrub))
        {
            let base = out.offset
            for piece in pc.pieces {
                switch piece {
                case .bytes(let b): try out.write(b)
                case .copy(let r):
                    let src = source
                    try withLocation(file: name, rowGroup: g) { try out.copy(from: src, range: r) }
                }
            }
            let chunk = Self.placed(orig, at: base, metaData: pc.metaData(at: base))
            let plan: IndexPlan =
                orig.columnIndexOffset != nil || orig.offsetIndexOffset != nil
                ? .built(
                    columnIndex: orig.columnIndexOffset != nil ? pc.columnIndex : nil,
                    offsetIndex: orig.offsetIndexOffset != nil ? ChunkWriter.offsetIndex(pc.pages, base: base) : nil)
                : .none
            w.counts.pageLevelChunks += 1
            w.counts.copiedPages += pc.copiedPages
            w.counts.reencodedPages += pc.reencodedPages
            w.counts.removedPages += pc.removedPages
            w.counts.neutralisedEntries += pc.neutralisedEntries
            w.counts.flatPages += pc.flatPages
            w.counts.splicedPages += pc.splicedPages
            w.counts.keptPageStatistics += pc.keptPageStatistics
            w.counts.patchedDictionaries += pc.patchedDictionary ? 1 : 0
            w.counts.keptChunkStatistics += pc.keptChunkStatistics ? 1 : 0
            return (chunk, plan, pc.meta.totalUncompressedSize)
        }
        w.counts.wholeChunks += 1
        let (data, layout) = try readColumnWithLayout(ci, rowGroup: g)
        let filtered = data.droppingRows(local, maxDefinitionLevel: desc.maxDefinitionLevel)
        let (chunk, uncompressed, plan) = try writeReencodedChunk(filtered, layout: layout, original: orig, rowGroup: g, desc: desc, to: &out)
        return (chunk, plan, uncompressed)
    }

    /// The page-level rewrites of the columns `columns` of row group `g`, made `options.chunkWorkers`
    /// at a time (by column index: nil for a chunk the page-level rewrite leaves to the whole-chunk
    /// path); nil when they are to be made one after the other, as each chunk is written.
    private func pageLevelChunks(
        _ columns: [Int], of g: Int, dropping local: [Int], scrub: Set<Int>, options: PageRewriteOptions
    ) -> [Int: PageLevelChunk?]? {
        guard options.enabled, options.chunkWorkers > 1, columns.count > 1 else { return nil }
        let made = ChunkResults()
        let file = self
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: min(options.chunkWorkers, columns.count)) { _ in
            while true {
                let k = next.add(1, ordering: .relaxed).oldValue
                guard k < columns.count else { return }
                let ci = columns[k]
                let orig = file.metadata.rowGroups[g].columns[ci]
                let pc = try? file.rewriteChunkByPages(
                    column: ci, rowGroup: g, dropping: local, original: orig, options: options, scrub: scrub.contains(ci))
                made.set(ci, pc)
            }
        }
        return made.all
    }

    /// `orig` written anew at `base` with `metaData`: its page indexes are dropped here and written
    /// again by the caller's plan (shared by the page-level and the re-encoded chunk).
    private static func placed(_ orig: ColumnChunk, at base: Int64, metaData: ColumnMetaData) -> ColumnChunk {
        var chunk = orig
        chunk.fileOffset = base
        chunk.metaData = metaData
        chunk.columnIndexOffset = nil; chunk.columnIndexLength = nil
        chunk.offsetIndexOffset = nil; chunk.offsetIndexLength = nil
        return chunk
    }

    /// A chunk's values after a change (`data`), encoded as the original chunk was (its codec and page
    /// layout) and written where the output ends: the new chunk, its uncompressed size, and its page-index
    /// plan (rebuilt where the original had one). Shared by masking and by dropping rows.
    private func writeReencodedChunk<S>(
        _ data: ColumnData, layout: ChunkLayout, original orig: ColumnChunk, rowGroup g: Int, desc: ColumnDescriptor,
        to out: inout CountingSink<S>
    ) throws(ParquetError) -> (chunk: ColumnChunk, uncompressed: Int64, plan: IndexPlan) {
        let md = orig.metaData!
        guard let codec = md.codec else { throw ParquetError(.unsupported, "unknown codec", file: name, rowGroup: g, column: desc.dottedPath) }
        let o = Self.rewriteOptions(orig, codec: codec, layout: layout)
        let enc: EncodedChunk
        do throws(ParquetError) {
            enc = try ChunkWriter.encode(data, desc: desc, options: o, metaTemplate: md)
        } catch {
            throw error.located(file: name, rowGroup: g, column: desc.dottedPath)
        }
        let base = out.offset
        try out.write(enc.bytes)
        let chunk = Self.placed(orig, at: base, metaData: enc.metaData(at: base))
        let plan: IndexPlan =
            o.pageIndex
            ? .built(
                columnIndex: orig.columnIndexOffset != nil ? ChunkWriter.columnIndex(enc.pages) : nil,
                offsetIndex: orig.offsetIndexOffset != nil ? ChunkWriter.offsetIndex(enc.pages, base: base) : nil)
            : .none
        return (chunk, enc.meta.totalUncompressedSize, plan)
    }

    /// The original chunk's codec, encodings, page version and size, statistics, checksums and
    /// page indexes, as options for writing it again.
    private static func rewriteOptions(_ orig: ColumnChunk, codec: CompressionCodec, layout: ChunkLayout) -> ColumnWriteOptions {
        let md = orig.metaData!
        var o = ColumnWriteOptions()
        o.codec = codec
        o.dictionary = layout.hasDictionary
        o.dictionaryForBooleans = layout.hasDictionary
        o.dictionaryIndexEncoding =
            layout.dictionaryIndexEncoding ?? (layout.pageVersion == 1 && layout.dictionaryPageEncoding == .plainDictionary ? .plainDictionary : .rleDictionary)
        o.dictionaryPageEncoding = layout.dictionaryPageEncoding
        o.valueEncoding = layout.valueEncoding ?? .plain
        o.pageVersion = layout.pageVersion
        o.maxSlotsPerPage = max(layout.maxSlotsPerPage, 1)
        o.dictionaryPageSizeLimit = Int.max
        o.statistics = md.statistics != nil
        o.legacyMinMax = md.statistics?.legacyMin != nil
        o.pageStatistics = layout.pageStatistics
        o.pageChecksums = layout.pageCRC
        o.pageIndex = orig.columnIndexOffset != nil || orig.offsetIndexOffset != nil
        o.v2CompressValues = layout.v2Compressed
        return o
    }

    /// Bloom filters of copied row groups that lived outside the copied ranges: appended, or
    /// dropped when unreadable.
    private func moveBloomFilters<S>(_ w: inout RewrittenGroups, to out: inout CountingSink<S>) throws(ParquetError) {
        for b in w.bloomsToMove {
            var md = w.groups[b.group].columns[b.column].metaData!
            if let bytes = try? readBloomFilter(offset: b.offset, length: b.length) {
                md.bloomFilterOffset = out.offset
                md.bloomFilterLength = Int32(bytes.count)
                try out.write(bytes)
            } else {
                md.bloomFilterOffset = nil
                md.bloomFilterLength = nil
            }
            w.groups[b.group].columns[b.column].metaData = md
        }
    }

    /// The column indexes (copied or built), all before the offset indexes.
    private func writeColumnIndexes<S>(_ w: inout RewrittenGroups, to out: inout CountingSink<S>) throws(ParquetError) {
        for (g, plan) in w.plans.enumerated() {
            for (c, p) in plan.enumerated() {
                var bytes: [UInt8]?
                switch p {
                case .none: continue
                case .copy(let ci, _, _):
                    if let (off, len) = ci { bytes = try? readIndexBytes(off, len) }
                case .built(let ci, _):
                    bytes = ci
                }
                if let bytes {
                    w.groups[g].columns[c].columnIndexOffset = out.offset
                    w.groups[g].columns[c].columnIndexLength = Int32(bytes.count)
                    try out.write(bytes)
                }
            }
        }
    }

    /// The offset indexes (copied ones shifted to where their pages landed, or built).
    private func writeOffsetIndexes<S>(_ w: inout RewrittenGroups, to out: inout CountingSink<S>) throws(ParquetError) {
        for (g, plan) in w.plans.enumerated() {
            for (c, p) in plan.enumerated() {
                var bytes: [UInt8]?
                switch p {
                case .none: continue
                case .copy(_, let oi, let delta):
                    if let (off, len) = oi, let raw = try? readIndexBytes(off, len) {
                        bytes = try? shiftOffsetIndex(raw, by: delta)
                    }
                case .built(_, let oi):
                    bytes = oi
                }
                if let bytes {
                    w.groups[g].columns[c].offsetIndexOffset = out.offset
                    w.groups[g].columns[c].offsetIndexLength = Int32(bytes.count)
                    try out.write(bytes)
                }
            }
        }
    }

    func readIndexBytes(_ offset: Int64, _ length: Int32) throws(ParquetError) -> [UInt8] {
        guard offset >= 4, length > 0, offset + Int64(length) <= footerOffset else {
            throw ParquetError(.corruptMetadata, "page index outside the data area", file: name)
        }
        return try withLocation(file: name) { try source.read(offset..<(offset + Int64(length))) }
    }

    private func readBloomFilter(offset: Int64, length: Int32?) throws(ParquetError) -> [UInt8] {
        if let length { return try readIndexBytes(offset, length) }
        // Without a length: parse the BloomFilterHeader to learn the bitset size.
        let probe = try readIndexBytes(offset, Int32(min(Int64(256), footerOffset - offset)))
        let (header, headerLen) = try ThriftStruct.decode(probe)
        guard let n = header.i32(1), n > 0 else { throw ParquetError(.corruptMetadata, "bad bloom filter header", file: name) }
        return try readIndexBytes(offset, Int32(headerLen) + n)
    }
}

/// The new file's row groups as the rewrite builds them, with what it still has to write after them.
private struct RewrittenGroups {
    var groups: [RowGroup] = []
    /// One per row group of the original file.
    var outcomes: [RowGroupOutcome] = []
    /// Per new row group, per column: how to produce its page indexes.
    var plans: [[IndexPlan]] = []
    /// Bloom filters of copied row groups that lie outside the copied byte range.
    var bloomsToMove: [(group: Int, column: Int, offset: Int64, length: Int32?)] = []
    /// Row groups whose byte range holds more than their chunks (`ParquetFile.rowGroupsWithGaps`): copied chunk by chunk.
    var chunkByChunk: Set<Int> = []
    var kept: Int64 = 0
    var pageOptions = PageRewriteOptions()
    var counts = PageRewriteCounts()
}

/// How the rewriter produces a chunk's page indexes.
private enum IndexPlan {
    case none
    case copy(columnIndex: (Int64, Int32)?, offsetIndex: (Int64, Int32)?, delta: Int64)
    case built(columnIndex: [UInt8]?, offsetIndex: [UInt8]?)
}

/// Shifts every page offset of an OffsetIndex by `delta`.
func shiftOffsetIndex(_ raw: [UInt8], by delta: Int64) throws(ParquetError) -> [UInt8] {
    var (s, _) = try ThriftStruct.decode(raw)
    guard let locs = s.structList(1) else { throw ParquetError(.corruptMetadata, "offset index without page locations") }
    s[1] = .list(
        .structure,
        locs.map { l in
            var l = l
            l[1] = .i64((l.i64(1) ?? 0) + delta)
            return .structure(l)
        })
    return s.encoded()
}
