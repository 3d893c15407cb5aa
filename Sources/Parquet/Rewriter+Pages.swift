import Synchronization

/// The page-level rewrite of one column chunk of a row group that loses rows: pages without a
/// dropped row are copied byte for byte (header and compressed body), pages with one are decoded
/// and written again with the same encoding, codec, page version, checksum and statistics kinds.
///
/// The dictionary page is carried through, with one rule: a dictionary entry that only dropped
/// rows referenced is *neutralised* (its bytes replaced by a filler of the same size that equals no
/// other entry, `PlainDictionary.neutralised`), so no value held only by erased rows survives in the
/// dictionary, every index of every copied page stays valid, and the entries stay distinct (readers
/// that build a dictionary-typed column merge equal entries). Chunk statistics are recomputed from the referenced
/// dictionary entries when every data page is dictionary-encoded, kept when every dropped value
/// lies strictly inside the old bounds, and otherwise dropped (min/max only). Bloom filters and
/// size statistics are dropped as in the whole-chunk re-encode. Whatever this code does not
/// handle (index pages, BIT_PACKED levels, a repeated column whose page starts inside a record,
/// a dictionary no kept row references) returns nil and the caller re-encodes the chunk whole.

/// One piece of a rewritten chunk: bytes to write, or a range of the original file to copy.
enum ChunkPiece: Equatable {
    case bytes([UInt8])
    case copy(Range<Int64>)

    var count: Int64 {
        switch self {
        case .bytes(let b): return Int64(b.count)
        case .copy(let r): return Int64(r.count)
        }
    }
}

/// What the page-level rewrite produced for one column chunk.
struct PageLevelChunk: Sendable {
    var pieces: [ChunkPiece] = []
    /// Chunk metadata; offsets are placed by `metaData(at:)`.
    var meta: ColumnMetaData
    var hasDictionaryPage = false
    /// Offset of the first data page from the chunk's start.
    var dataPageOffset: Int64 = 0
    /// Data pages in output order (offsets from the chunk's start), for the offset index.
    var pages: [PageIndexEntry] = []
    /// The column index for the pages (nil: write none).
    var columnIndex: [UInt8]?
    var copiedPages = 0
    var reencodedPages = 0
    var removedPages = 0
    /// Dictionary entries overwritten because only dropped rows referenced them.
    var neutralisedEntries = 0
    /// Rewritten pages that took the flat-column path (runs between drops, no per-slot arrays).
    var flatPages = 0
    /// Rewritten pages edited in place rather than encoded again.
    var splicedPages = 0
    /// Rewritten pages whose old bounds (column index, header statistics) were kept.
    var keptPageStatistics = 0
    /// Whether the neutralised dictionary page was patched in its compressed form.
    var patchedDictionary = false
    /// Whether the chunk's old min/max were kept (no lost value reached a bound).
    var keptChunkStatistics = false

    var size: Int64 { pieces.reduce(0) { $0 + $1.count } }

    func metaData(at base: Int64) -> ColumnMetaData {
        var m = meta
        m.dataPageOffset = base + dataPageOffset
        m.dictionaryPageOffset = hasDictionaryPage ? base : nil
        return m
    }
}

/// Page-level rewrites made on several threads (`ParquetFile.pageLevelChunks`), by column index.
final class ChunkResults: Sendable {
    private let made = Mutex<[Int: PageLevelChunk?]>([:])
    func set(_ column: Int, _ chunk: PageLevelChunk?) { made.withLock { $0[column] = chunk } }
    var all: [Int: PageLevelChunk?] { made.withLock { $0 } }
}

/// Switches for the page-level rewrite, for tests (deliberately wrong variants prove the tests can
/// fail) and benchmarks (`lethe-bench rewrite --compare` times a path against the one it replaced).
public struct PageRewriteOptions: Sendable {
    public init() {}
    /// Use the page-level rewrite at all (false: today's whole-chunk re-encode).
    public var enabled = true
    /// Overwrite dictionary entries only dropped rows referenced (false only in tests: leaves residue).
    public var neutraliseDictionary = true
    /// Flat columns (no repetition): kept levels and values as the runs between drops (false:
    /// the general per-slot path, which the tests compare it with).
    public var flatFastPath = true
    /// Keep old page and chunk bounds when every lost value lies strictly inside them (false:
    /// always recompute).
    public var keepStatistics = true
    /// Patch a neutralised Snappy dictionary page's literals in place instead of compressing it
    /// again (false: always compress).
    public var patchCompressedDictionary = true
    /// Edit a flat column's page in place — the runs and values that held dropped slots, the Snappy
    /// elements around them (false: decode, encode and compress the page again).
    public var splicePages = true
    /// Threads the page-level rewrites of one row group's columns may use at once (1: one after the
    /// other). A caller rewriting fewer files at a time than it has cores gives the spare ones here.
    public var chunkWorkers = 1
}

/// A page of the original chunk as found by the header walk.
private struct RawPage {
    var header: PageHeader
    var start: Int
    var bodyStart: Int
    var end: Int
    var firstRow: Int = 0
    var rows: Int = 0
    /// Position among the chunk's data pages (the column index's order).
    var ordinal: Int = 0
}

/// A data page decoded down to levels and either dictionary indices or values.
private struct OpenPage {
    var rep: [UInt16]?
    var def: [UInt16]?
    var indices: [UInt32]?
    var indexWidth: UInt8 = 0
    var values: ColumnValues?
    var slots: Int
    var nonNull: Int
    /// The uncompressed body (v2: levels, then the values uncompressed), where its definition
    /// level stream lies (without v1's length prefix) and where its values start: what an edit
    /// of the page in place needs.
    var data: [UInt8] = []
    var defStream: Range<Int>?
    var valuesStart = 0
}

extension ParquetFile {
    /// The page-level rewrite of column `ci` of row group `g` without the rows `local` (sorted,
    /// within the row group); nil when the chunk has a shape this code leaves to the whole-chunk path.
    func rewriteChunkByPages(
        column ci: Int, rowGroup g: Int, dropping local: [Int], original: ColumnChunk,
        options po: PageRewriteOptions, scrub: Bool = false
    ) throws(ParquetError) -> PageLevelChunk? {
        let rg = metadata.rowGroups[g]
        let desc = schema.columns[ci]
        guard let md = original.metaData, md.totalCompressedSize > 0, let codec = md.codec, !local.isEmpty || scrub else { return nil }
        let maxDef = desc.maxDefinitionLevel, maxRep = desc.maxRepetitionLevel
        let chunk = try columnChunkBytes(column: ci, rowGroup: g)
        let base = md.chunkStart
        var reader = try PageIterator(chunk: chunk, codecRaw: md.codecRaw, options: options)

        // 1. Walk the page headers; rows per page.
        var dictPage: RawPage?
        var pages: [RawPage] = []
        var opened: [Int: OpenPage] = [:]
        var pos = 0
        var row = 0
        while pos < chunk.count {
            let (raw, bodyStart) = try ThriftStruct.decode(chunk, from: pos, to: nil)
            let h = try PageHeader(raw: raw)
            let end = bodyStart + h.compressedSize
            guard end <= chunk.count else { return nil }
            var p = RawPage(header: h, start: pos, bodyStart: bodyStart, end: end)
            switch h.type {
            case .indexPage:
                return nil
            case .dictionaryPage:
                guard dictPage == nil, pages.isEmpty else { return nil }
                dictPage = p
            case .dataPage, .dataPageV2:
                guard Encoding(rawValue: h.encoding) != nil else { return nil }
                if h.type == .dataPage {
                    if maxDef > 0 && h.defLevelEncoding != Encoding.rle.rawValue { return nil }
                    if maxRep > 0 && h.repLevelEncoding != Encoding.rle.rawValue { return nil }
                }
                p.ordinal = pages.count
                p.firstRow = row
                if maxRep == 0 {
                    p.rows = h.numValues
                    if h.type == .dataPageV2 && h.numRows != h.numValues { return nil }
                } else if h.type == .dataPageV2 && h.numRows > 0 {
                    p.rows = h.numRows
                } else {
                    guard let o = try open(p, &reader, desc: desc, dictionary: nil, valuesToo: false) else { return nil }
                    guard let r = o.rep, r.isEmpty || r[0] == 0 else { return nil }
                    p.rows = r.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
                    opened[pages.count] = o
                }
                row += p.rows
                pages.append(p)
            }
            pos = end
        }
        guard Int64(row) == rg.numRows, !pages.isEmpty else { return nil }

        // 2. The dictionary (decoded only when needed).
        let dictCount = dictPage?.header.numValues ?? 0
        var plainDictionary: PlainDictionary?
        var plainDictionaryRead = false
        /// The dictionary page's body as bytes (nil: no dictionary page, or a type not kept as bytes).
        func plainDict() throws(ParquetError) -> PlainDictionary? {
            if plainDictionaryRead { return plainDictionary }
            plainDictionaryRead = true
            guard let dp = dictPage, let e = Encoding(rawValue: dp.header.encoding), e == .plain || e == .plainDictionary else { return nil }
            // A read of this file that came before (an erasure's keying of the candidate rows) may
            // have decompressed the page already.
            let data: [UInt8]
            if let kept = dictionaryMemo?.take(rowGroup: g, column: ci, size: dp.header.uncompressedSize) {
                data = kept
            } else {
                reader.pos = dp.start
                guard let page = try reader.next() else { return nil }
                data = page.data
            }
            plainDictionary = try PlainDictionary(data, count: dp.header.numValues, type: desc.physicalType, typeLength: desc.typeLength)
            return plainDictionary
        }
        var dictionary: ColumnValues?
        func dict() throws(ParquetError) -> ColumnValues? {
            if let dictionary { return dictionary }
            guard let dp = dictPage else { return nil }
            if let pd = try plainDict() {
                var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
                try withBytes(pd.bytes) { (p) throws(ParquetError) in _ = try acc.appendPlain(p, count: dp.header.numValues) }
                dictionary = acc.result()
                return dictionary
            }
            reader.pos = dp.start
            guard let page = try reader.next() else { return nil }
            guard let e = Encoding(rawValue: dp.header.encoding), e == .plain || e == .plainDictionary else { return nil }
            var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
            try withBytes(page.data) { (p) throws(ParquetError) in _ = try acc.appendPlain(p, count: dp.header.numValues) }
            dictionary = acc.result()
            return dictionary
        }
        let cmp = Self.statisticsComparator(desc)
        /// Whether every value of `lost` lies strictly inside [lo, hi] in the column's order: then
        /// bounds that held before the rows went still hold, and stay exact if they were.
        func strictlyInside(_ lost: [[UInt8]], _ lo: [UInt8]?, _ hi: [UInt8]?) -> Bool {
            if lost.isEmpty { return true }
            guard let cmp, let lo, let hi else { return false }
            for v in lost {
                guard let a = cmp(lo, v), a < 0, let b = cmp(v, hi), b < 0 else { return false }
            }
            return true
        }
        // The old column index, for page bounds kept through a rewrite.
        let oldCI = original.columnIndexOffset.flatMap { o in original.columnIndexLength.map { (o, $0) } }
        var oldPageBounds: [(min: [UInt8], max: [UInt8], nullPage: Bool)]?
        if let (off, len) = oldCI, let raw = try? readIndexBytes(off, len), let (ci, _) = try? ThriftStruct.decode(raw),
            let nulls = ci.list(1), let mins = ci.list(2), let maxs = ci.list(3), nulls.count == pages.count, mins.count == pages.count,
            maxs.count == pages.count
        {
            var b: [(min: [UInt8], max: [UInt8], nullPage: Bool)] = []
            for k in 0..<pages.count {
                guard case .bool(let np) = nulls[k], case .binary(let mn) = mins[k], case .binary(let mx) = maxs[k] else { b = []; break }
                b.append((mn, mx, np))
            }
            if b.count == pages.count { oldPageBounds = b }
        }

        // 3. Data pages: copy, or decode and write again without the dropped rows.
        var out = PageLevelChunk(meta: md)
        var dataPieces: [ChunkPiece] = []
        var dataBytes: Int64 = 0
        var keptRef = [Bool](repeating: false, count: dictCount)
        var droppedRef: [UInt32] = []
        var droppedValues: [ColumnValues] = []
        var droppedNulls: Int64 = 0
        var keptSlots: Int64 = 0
        var uncompressed: Int64 = 0
        var allDictionary = true
        var pageStats: [(PageType, Encoding)] = []
        var entries: [PageIndexEntry] = []
        var fromPage: [Int?] = []  // per output page: the original ordinal when copied
        let needIndexStats = oldCI != nil
        var di = 0
        for (k, p) in pages.enumerated() {
            let h = p.header
            let enc = Encoding(rawValue: h.encoding)!
            if !enc.isDictionary { allDictionary = false }
            while di < local.count && local[di] < p.firstRow { di += 1 }
            var pageDrops: [Int] = []
            while di < local.count && local[di] < p.firstRow + p.rows {
                pageDrops.append(local[di] - p.firstRow)
                di += 1
            }
            if pageDrops.isEmpty {
                if enc.isDictionary && dictCount > 0 {
                    guard let o = try open(p, &reader, desc: desc, dictionary: nil, valuesToo: true, cached: opened[k]),
                        let idx = o.indices
                    else { return nil }
                    if let bad = Self.mark(idx, runs: [0..<idx.count], in: &keptRef) {
                        throw ParquetError(.corruptPage, "dictionary index \(bad) out of range")
                    }
                }
                let r = (base + Int64(p.start))..<(base + Int64(p.end))
                if case .copy(let last)? = dataPieces.last, last.upperBound == r.lowerBound {
                    dataPieces[dataPieces.count - 1] = .copy(last.lowerBound..<r.upperBound)
                } else {
                    dataPieces.append(.copy(r))
                }
                entries.append(
                    PageIndexEntry(
                        offset: Int(dataBytes), size: p.end - p.start, firstRow: Int64(keptRowsBefore(p.firstRow, local)), nullPage: false,
                        min: [], max: [], nullCount: 0))
                fromPage.append(p.ordinal)
                dataBytes += Int64(p.end - p.start)
                uncompressed += Int64(p.bodyStart - p.start + h.uncompressedSize)
                keptSlots += Int64(h.numValues)
                pageStats.append((h.type, enc))
                out.copiedPages += 1
                continue
            }
            // A page holding dropped rows.
            guard var o = try open(p, &reader, desc: desc, dictionary: nil, valuesToo: true, cached: opened[k]) else { return nil }
            if enc.isDictionary && o.indices == nil { return nil }
            var newRep: [UInt16]? = o.rep == nil ? nil : []
            var newDef: [UInt16]? = o.def == nil ? nil : []
            // Positions (among the page's values) of the values kept, as runs, and of those dropped.
            var keptRuns: [Range<Int>] = []
            var droppedValueIdx: [Int] = []
            var nulls = 0
            if maxRep == 0 && po.flatFastPath {
                // A flat column: a slot is a row, and what survives is the runs between the drops.
                guard o.slots == p.rows, !pageDrops.isEmpty, pageDrops.last! < o.slots else { return nil }
                var vi = 0, prev = 0, ok = true
                if let d = o.def {
                    let top = UInt16(maxDef)
                    newDef!.reserveCapacity(o.slots - pageDrops.count)
                    d.withUnsafeBufferPointer { dp in
                        func run(_ from: Int, _ to: Int) {
                            var n = 0
                            for k in from..<to where dp[k] == top { n += 1 }
                            if n > 0 { keptRuns.append(vi..<(vi + n)) }
                            vi += n
                            newDef!.append(contentsOf: dp[from..<to])
                        }
                        for s in pageDrops {
                            guard s >= prev else { ok = false; return }
                            run(prev, s)
                            if dp[s] == top {
                                droppedValueIdx.append(vi)
                                vi += 1
                            } else {
                                droppedNulls += 1
                            }
                            prev = s + 1
                        }
                        run(prev, o.slots)
                    }
                } else {
                    for s in pageDrops {
                        guard s >= prev else { ok = false; break }
                        if s > prev { keptRuns.append(prev..<s) }
                        droppedValueIdx.append(s)
                        prev = s + 1
                    }
                    if prev < o.slots { keptRuns.append(prev..<o.slots) }
                    vi = o.slots
                }
                guard ok, vi == o.nonNull else { return nil }
                nulls = o.slots - pageDrops.count - (o.nonNull - droppedValueIdx.count)
                out.flatPages += 1
            } else {
                // Which slots survive.
                var keep = [Bool](repeating: true, count: o.slots)
                var rowInPage = -1, dj = 0
                var keepRow = true
                var rowsSeen = 0
                for s in 0..<o.slots {
                    let r = o.rep?[s] ?? 0
                    if r == 0 {
                        rowInPage += 1
                        rowsSeen += 1
                        while dj < pageDrops.count && pageDrops[dj] < rowInPage { dj += 1 }
                        keepRow = !(dj < pageDrops.count && pageDrops[dj] == rowInPage)
                    }
                    keep[s] = keepRow
                }
                guard rowsSeen == p.rows else { return nil }
                var vi = 0
                for s in 0..<o.slots {
                    let hasValue = o.def.map { Int($0[s]) == maxDef } ?? true
                    if keep[s] {
                        if let r = o.rep { newRep!.append(r[s]) }
                        if let d = o.def { newDef!.append(d[s]) }
                        if hasValue {
                            if let last = keptRuns.last, last.upperBound == vi {
                                keptRuns[keptRuns.count - 1] = last.lowerBound..<(vi + 1)
                            } else {
                                keptRuns.append(vi..<(vi + 1))
                            }
                        } else {
                            nulls += 1
                        }
                    } else {
                        if hasValue { droppedValueIdx.append(vi) } else { droppedNulls += 1 }
                    }
                    if hasValue { vi += 1 }
                }
                guard vi == o.nonNull else { return nil }
            }
            let keptCount = keptRuns.reduce(0) { $0 + $1.count }
            let slots = keptCount + nulls
            if slots == 0 {
                out.removedPages += 1
                continue
            }
            // The kept values, and the values this page loses (for the statistics).
            var keptValues: ColumnValues?
            var keptIndexRuns: [Range<Int>]?  // dictionary-encoded: the runs of indices kept
            var pageMinMax = MinMax()
            let oldHeaderStats = Self.pageHeaderStatistics(h)
            let wantStats = oldHeaderStats != nil || needIndexStats
            var keptHeaderStats: ThriftStruct?
            // Distinct values the page no longer holds (nil: unknown); the page's old bounds are
            // kept when each lies strictly inside them.
            var lost: [[UInt8]]?
            var compute: () throws(ParquetError) -> MinMax? = { MinMax() }
            if let idx = o.indices {
                var marks = [Bool](repeating: false, count: wantStats ? dictCount : 0)
                if let bad = Self.mark(idx, runs: keptRuns, in: &keptRef) ?? (wantStats ? Self.mark(idx, runs: keptRuns, in: &marks) : nil) {
                    throw ParquetError(.corruptPage, "dictionary index \(bad) out of range")
                }
                var pageLost: [Int] = []
                for v in droppedValueIdx {
                    let i = idx[v]
                    guard Int(i) < dictCount else { throw ParquetError(.corruptPage, "dictionary index \(i) out of range") }
                    droppedRef.append(i)
                    if wantStats && !marks[Int(i)] {
                        marks[Int(i)] = true  // counted once
                        pageLost.append(Int(i))
                    }
                }
                if wantStats {
                    if po.keepStatistics, let pd = try plainDict() { lost = pageLost.map { pd.value($0) } }
                    for i in pageLost { marks[i] = false }
                    compute = { () throws(ParquetError) -> MinMax? in
                        if let pd = try plainDict(), let mm = pd.minMax(marked: marks, type: desc.physicalType, order: desc.sortOrder) { return mm }
                        guard let d = try dict() else { return nil }
                        return Self.minMax(ofMarked: marks, in: d, order: desc.sortOrder)
                    }
                }
                keptIndexRuns = keptRuns
            } else {
                guard let v = o.values else { return nil }
                let k = v.gather(keptRuns.flatMap { $0 })
                let dv = v.gather(droppedValueIdx)
                droppedValues.append(dv)
                if wantStats && po.keepStatistics {
                    if dv.count == 0 {
                        lost = []
                    } else {
                        let lm = MinMax.compute(dv, 0..<dv.count, order: desc.sortOrder)
                        if let a = lm.min, let b = lm.max { lost = [a, b] }
                    }
                }
                compute = { MinMax.compute(k, 0..<k.count, order: desc.sortOrder) }
                keptValues = k
            }
            if wantStats {
                // (A page left with nulls only gets fresh, empty bounds.)
                var reuse = lost != nil && keptCount > 0
                if let lost, reuse, needIndexStats {
                    if let e = oldPageBounds?[p.ordinal] {
                        reuse = lost.isEmpty || (!e.nullPage && strictlyInside(lost, e.min, e.max))
                        pageMinMax = MinMax(min: e.min, max: e.max)
                    } else {
                        reuse = false
                    }
                }
                if let lost, reuse, var hs = oldHeaderStats {
                    if hs[5] != nil || hs[6] != nil { reuse = strictlyInside(lost, hs.binary(6), hs.binary(5)) }
                    if reuse && (hs[1] != nil || hs[2] != nil) {
                        reuse = lost.isEmpty || (desc.sortOrder == .signed && strictlyInside(lost, hs.binary(2), hs.binary(1)))
                    }
                    if hs[3] != nil { hs[3] = .i64(Int64(nulls)) }
                    hs[4] = nil
                    keptHeaderStats = hs
                }
                if reuse {
                    out.keptPageStatistics += 1
                } else {
                    keptHeaderStats = nil
                    guard let mm = try compute() else { return nil }
                    pageMinMax = mm
                }
            }
            o.rep = newRep
            o.def = newDef
            let rows = newRep.map { $0.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } } ?? slots
            let bytes: [UInt8]
            let uncompressedSize: Int
            if maxRep == 0 && po.flatFastPath && po.splicePages,
                let spliced = splicePage(
                    p, o, chunk: chunk, drops: pageDrops, droppedValues: droppedValueIdx, slots: slots, nulls: nulls, desc: desc,
                    codec: codec, statistics: Self.rewrittenPageStatistics(h, pageMinMax, nulls: nulls, kept: keptHeaderStats, desc: desc))
            {
                (bytes, uncompressedSize) = spliced
                out.splicedPages += 1
            } else {
                if let runs = keptIndexRuns, let idx = o.indices {
                    var kept = [UInt32]()
                    kept.reserveCapacity(keptCount)
                    for r in runs { kept.append(contentsOf: idx[r]) }
                    o.indices = kept
                }
                (bytes, uncompressedSize) = try encodePage(
                    h, o, keptValues: keptValues, slots: slots, nulls: nulls, rows: rows, desc: desc, codec: codec,
                    minMax: pageMinMax, headerStatistics: keptHeaderStats)
            }
            dataPieces.append(.bytes(bytes))
            entries.append(
                PageIndexEntry(
                    offset: Int(dataBytes), size: bytes.count, firstRow: Int64(keptRowsBefore(p.firstRow, local)),
                    nullPage: slots == nulls, min: pageMinMax.min ?? [], max: pageMinMax.max ?? [], nullCount: Int64(nulls)))
            fromPage.append(nil)
            dataBytes += Int64(bytes.count)
            uncompressed += Int64(uncompressedSize)
            keptSlots += Int64(slots)
            pageStats.append((h.type, enc))
            out.reencodedPages += 1
        }
        guard !entries.isEmpty else { return nil }

        // 4. The dictionary page: carried, or with the entries only dropped rows held neutralised.
        // Every entry no kept row references, not only those the dropped rows did: an earlier erasure's
        // neutralised entry (a filler, or in files of Lethe before session 17 a copy of a value kept
        // then, which must go when that value's subject is erased in turn) is rewritten too.
        // A chunk to scrub (`rewrite(droppingRows:scrubbing:…)`) loses them whether or not rows went.
        var orphans: [Int] = []
        if dictCount > 0 && (!droppedRef.isEmpty || scrub) {
            keptRef.withUnsafeBufferPointer { k in
                for i in 0..<dictCount where !k[i] { orphans.append(i) }
            }
        }
        if let dp = dictPage {
            if orphans.isEmpty || !po.neutraliseDictionary {
                out.pieces.append(.copy((base + Int64(dp.start))..<(base + Int64(dp.end))))
                uncompressed += Int64(dp.bodyStart - dp.start + dp.header.uncompressedSize)
            } else {
                // The changed spans only: the new body is built only when the page must be compressed again.
                guard let pd = try plainDict(),
                    let changes = pd.neutralisedChanges(orphans, type: desc.physicalType, outsideRange: Self.fillersMayLieOutside(desc))
                else {
                    // No filler fits (or the page is not PLAIN bytes): the chunk is re-encoded whole,
                    // its dictionary rebuilt from the values kept.
                    return nil
                }
                let bodySize = pd.bytes.count  // a filler has its entry's size
                var patched: [UInt8]?
                if changes.isEmpty {
                    // Every orphan is already a filler: the page's bytes hold as they are.
                    patched = Array(chunk[dp.bodyStart..<dp.end])
                } else if codec == .snappy, po.patchCompressedDictionary {
                    patched = chunk.withUnsafeBytes { c in
                        let compressed = UnsafeRawBufferPointer(rebasing: c[dp.bodyStart..<dp.end])
                        guard po.splicePages else { return Snappy.patch(compressed, changes: changes) }
                        // One walk of the block: literals take the changed bytes, a copy producing or
                        // reading one becomes a literal, every other element is kept.
                        let edits = changes.map { ByteEdit(range: $0.at..<($0.at + $0.bytes.count), bytes: $0.bytes) }
                        return pd.bytes.withUnsafeBytes { Snappy.splice(compressed, original: $0, edits: edits) }
                    }
                }
                let comp: [UInt8]
                if let patched {
                    comp = patched
                } else {
                    comp = try withBytes(pd.applying(changes)) { (p) throws(ParquetError) in try Codecs.compress(codec, p) }
                }
                out.patchedDictionary = patched != nil
                var hs = dp.header.raw
                hs[2] = .i32(Int32(bodySize))
                hs[3] = .i32(Int32(comp.count))
                if hs[4] != nil { hs[4] = .i32(Int32(bitPattern: comp.withUnsafeBytes { Codecs.crc32($0) })) }
                if var dh = hs.structure(7) {
                    if dh[3] != nil { dh[3] = .bool(false) }  // no longer sorted
                    hs[7] = .structure(dh)
                }
                let hb = hs.encoded()
                out.pieces.append(.bytes(hb))
                out.pieces.append(.bytes(comp))
                uncompressed += Int64(hb.count + bodySize)
                out.neutralisedEntries = orphans.count
            }
            out.hasDictionaryPage = true
        }
        let dictSize = out.pieces.reduce(Int64(0)) { $0 + $1.count }
        for piece in dataPieces {
            if case .copy(let r) = piece, case .copy(let last)? = out.pieces.last, last.upperBound == r.lowerBound {
                out.pieces[out.pieces.count - 1] = .copy(last.lowerBound..<r.upperBound)
            } else {
                out.pieces.append(piece)
            }
        }
        out.dataPageOffset = dictSize
        for i in entries.indices { entries[i].offset += Int(dictSize) }

        // 5. Column index: copied pages keep their entries, rewritten pages get new ones.
        if let (off, len) = oldCI, let raw = try? readIndexBytes(off, len), let (ci, _) = try? ThriftStruct.decode(raw),
            let nulls = ci.list(1), let mins = ci.list(2), let maxs = ci.list(3), nulls.count == pages.count, mins.count == pages.count,
            maxs.count == pages.count
        {
            let counts = ci.list(5)
            var ok = true
            for (j, from) in fromPage.enumerated() {
                guard let k = from else { continue }
                guard case .bool(let np) = nulls[k], case .binary(let mn) = mins[k], case .binary(let mx) = maxs[k] else { ok = false; break }
                entries[j].nullPage = np
                entries[j].min = mn
                entries[j].max = mx
                if let counts, counts.count == pages.count, case .i64(let c) = counts[k] { entries[j].nullCount = c } else { entries[j].nullCount = 0 }
            }
            if ok { out.columnIndex = ChunkWriter.columnIndex(entries) }
        }
        out.pages = entries

        // 6. Chunk metadata.
        var m = md
        m.numValues = keptSlots
        m.totalCompressedSize = out.size
        m.totalUncompressedSize = uncompressed
        m.raw[10] = nil  // index page offset
        m.raw[14] = nil  // bloom filter: not rebuilt
        m.raw[15] = nil
        m.raw[16] = nil  // size statistics would be stale
        m.raw[17] = nil  // geospatial statistics would be stale
        if m.raw[13] != nil {
            var list: [(PageType, Encoding, Int)] = []
            if out.hasDictionaryPage, let dp = dictPage, let e = Encoding(rawValue: dp.header.encoding) { list.append((.dictionaryPage, e, 1)) }
            for (t, e) in pageStats {
                if let i = list.firstIndex(where: { $0.0 == t && $0.1 == e }) { list[i].2 += 1 } else { list.append((t, e, 1)) }
            }
            m.raw[13] = .list(
                .structure,
                list.map { t, e, c in
                    .structure(
                        ThriftStruct([
                            ThriftField(id: 1, value: .i32(t.rawValue)), ThriftField(id: 2, value: .i32(e.rawValue)),
                            ThriftField(id: 3, value: .i32(Int32(c))),
                        ]))
                })
        }
        if var s = md.statistics {
            s.distinctCount = nil
            if let n = s.nullCount { s.nullCount = n - droppedNulls }
            let hadLegacy = s.legacyMin != nil || s.legacyMax != nil
            let hadMinMax = s.minValue != nil || s.maxValue != nil
            var keptOld = false
            if (hadLegacy || hadMinMax) && allDictionary && dictCount > 0 && po.keepStatistics, let pd = try plainDict() {
                // The entries no kept row references lie strictly inside the old bounds: they hold as they were.
                let lost = orphans.map { pd.value($0) }
                keptOld =
                    (!hadMinMax || strictlyInside(lost, s.minValue, s.maxValue))
                    && (!hadLegacy || lost.isEmpty || (desc.sortOrder == .signed && strictlyInside(lost, s.legacyMin, s.legacyMax)))
                out.keptChunkStatistics = keptOld
            }
            if keptOld {
                // As they were (null count updated above).
            } else if (hadLegacy || hadMinMax) && allDictionary && dictCount > 0 {
                // Exact: the entries kept rows reference.
                let mm: MinMax
                if let pd = try plainDict(), let m = pd.minMax(marked: keptRef, type: desc.physicalType, order: desc.sortOrder) {
                    mm = m
                } else {
                    guard let d = try dict() else { return nil }
                    mm = Self.minMax(ofMarked: keptRef, in: d, order: desc.sortOrder)
                }
                let fresh = ChunkWriter.statisticsStruct(mm, nullCount: 0, legacy: hadLegacy && desc.sortOrder == .signed)
                s.legacyMin = hadLegacy ? fresh.legacyMin : nil
                s.legacyMax = hadLegacy ? fresh.legacyMax : nil
                s.minValue = hadMinMax ? fresh.minValue : nil
                s.maxValue = hadMinMax ? fresh.maxValue : nil
                s.isMinValueExact = s.minValue != nil && s.raw[8] != nil ? true : nil
                s.isMaxValueExact = s.maxValue != nil && s.raw[7] != nil ? true : nil
            } else if hadLegacy || hadMinMax {
                // Kept only when every dropped value lies strictly inside the old bounds.
                var lost = droppedValues
                if !droppedRef.isEmpty || (scrub && !orphans.isEmpty) {
                    guard let d = try dict() else { return nil }
                    lost.append(d.gather(droppedRef.map { Int($0) }))
                    // A scrubbed entry's value may be a bound: it must not survive in the statistics.
                    if scrub { lost.append(d.gather(orphans)) }
                }
                let cmp = Self.statisticsComparator(desc)
                func inside(_ lo: [UInt8]?, _ hi: [UInt8]?) -> Bool {
                    guard let lo, let hi, let cmp else { return false }
                    for v in lost where v.count > 0 {
                        let mm = MinMax.compute(v, 0..<v.count, order: desc.sortOrder)
                        guard let a = mm.min, let b = mm.max, let c1 = cmp(lo, a), let c2 = cmp(b, hi), c1 < 0, c2 < 0 else { return false }
                    }
                    return true
                }
                if hadMinMax && !inside(s.minValue, s.maxValue) {
                    s.minValue = nil; s.maxValue = nil; s.raw[7] = nil; s.raw[8] = nil
                }
                if hadLegacy && !(desc.sortOrder == .signed && inside(s.legacyMin, s.legacyMax)) {
                    s.legacyMin = nil; s.legacyMax = nil
                }
            }
            m.statistics = s
        }
        out.meta = m
        return out
    }

    /// Whether an integer column's neutralised entries may take values outside the range of its
    /// other entries: not for a decimal, a time or a narrow integer, whose readers check the range.
    static func fillersMayLieOutside(_ desc: ColumnDescriptor) -> Bool {
        switch desc.logicalType {
        case .decimal?, .time?: return false
        case .integer(let bits, _)?: return bits >= 32
        default: break
        }
        switch desc.convertedType {
        case .decimal?, .timeMillis?, .timeMicros?, .int8?, .int16?, .uint8?, .uint16?: return false
        default: return true
        }
    }

    /// Sets `marks[i]` for each dictionary index `i` of `idx` in `runs`; the first index past the
    /// end of `marks`, if any (then the page is corrupt).
    static func mark(_ idx: [UInt32], runs: [Range<Int>], in marks: inout [Bool]) -> UInt32? {
        let n = marks.count
        return marks.withUnsafeMutableBufferPointer { m in
            idx.withUnsafeBufferPointer { ix in
                for r in runs {
                    for j in r {
                        let i = Int(ix[j])
                        guard i < n else { return ix[j] }
                        m[i] = true
                    }
                }
                return nil
            }
        }
    }

    /// Rows of the row group before `row` that the rewrite keeps.
    private func keptRowsBefore(_ row: Int, _ local: [Int]) -> Int {
        var lo = 0, hi = local.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if local[mid] < row { lo = mid + 1 } else { hi = mid }
        }
        return row - lo
    }

    /// Decompresses one data page and decodes its levels and (with `valuesToo`) its dictionary
    /// indices or values. Nil for an encoding this code does not re-encode.
    private func open(
        _ p: RawPage, _ reader: inout PageIterator, desc: ColumnDescriptor, dictionary: ColumnValues?, valuesToo: Bool,
        cached: OpenPage? = nil
    ) throws(ParquetError) -> OpenPage? {
        if let cached, !valuesToo || cached.indices != nil || cached.values != nil { return cached }
        let h = p.header
        reader.pos = p.start
        guard let page = try reader.next() else { return nil }
        let maxDef = desc.maxDefinitionLevel, maxRep = desc.maxRepetitionLevel
        let n = h.numValues
        let v2 = h.type == .dataPageV2
        guard let enc = Encoding(rawValue: h.encoding) else { return nil }
        let opened = try withBytes(page.data) { (data) throws(ParquetError) -> OpenPage? in
            var pos = 0
            var o = OpenPage(slots: n, nonNull: n)
            if maxRep > 0 {
                o.rep = try decodeLevels(data, pos: &pos, count: n, maxLevel: maxRep, encoding: h.repLevelEncoding, v2Length: v2 ? h.repLevelsByteLength : nil)
            } else if v2 {
                pos += h.repLevelsByteLength
            }
            if maxDef > 0 {
                let from = pos
                let d = try decodeLevels(data, pos: &pos, count: n, maxLevel: maxDef, encoding: h.defLevelEncoding, v2Length: v2 ? h.defLevelsByteLength : nil)
                o.nonNull = d.reduce(0) { $0 + (Int($1) == maxDef ? 1 : 0) }
                o.def = d
                if v2 || h.defLevelEncoding == Encoding.rle.rawValue { o.defStream = (v2 ? from : from + 4)..<pos }
            } else if v2 {
                pos += h.defLevelsByteLength
            }
            o.valuesStart = pos
            if v2 && h.numNulls != n - o.nonNull { throw ParquetError(.corruptPage, "v2 page says \(h.numNulls) nulls, levels say \(n - o.nonNull)") }
            guard valuesToo else { return o }
            guard pos <= data.count else { throw ParquetError(.corruptPage, "levels run past the end of the page") }
            let rest = UnsafeRawBufferPointer(rebasing: data[pos...])
            if enc.isDictionary {
                if o.nonNull == 0 {
                    o.indices = []
                    o.indexWidth = rest.isEmpty ? 0 : rest[0]
                    return o
                }
                guard rest.count >= 1, rest[0] <= 32 else { throw ParquetError(.corruptPage, "dictionary page data is empty") }
                o.indexWidth = rest[0]
                var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: rest[1...]), bitWidth: Int(rest[0]))
                o.indices = try dec.decode(count: o.nonNull)
            } else {
                switch enc {
                case .plain, .rle, .deltaBinaryPacked, .deltaLengthByteArray, .deltaByteArray, .byteStreamSplit: break
                default: return nil
                }
                var acc = ValueAccumulator(type: desc.physicalType, width: desc.typeLength)
                try acc.appendEncoded(enc, rest, count: o.nonNull, dictionary: nil)
                o.values = acc.result()
            }
            return o
        }
        guard var o = opened else { return nil }
        if valuesToo { o.data = page.data }
        return o
    }

    /// Writes one data page again (header and body) like the original: same page type, encoding,
    /// level encoding, codec, checksum and statistics kinds. Returns the bytes and the uncompressed size.
    private func encodePage(
        _ h: PageHeader, _ o: OpenPage, keptValues: ColumnValues?, slots: Int, nulls: Int, rows: Int, desc: ColumnDescriptor,
        codec: CompressionCodec, minMax mm: MinMax, headerStatistics: ThriftStruct? = nil
    ) throws(ParquetError) -> ([UInt8], Int) {
        let enc = Encoding(rawValue: h.encoding)!
        let maxDef = desc.maxDefinitionLevel, maxRep = desc.maxRepetitionLevel
        var repBytes: [UInt8] = [], defBytes: [UInt8] = []
        if maxRep > 0, let r = o.rep { repBytes = RLEEncoder.encode(r, bitWidth: bitWidth(of: UInt64(maxRep))) }
        if maxDef > 0, let d = o.def { defBytes = RLEEncoder.encode(d, bitWidth: bitWidth(of: UInt64(maxDef))) }
        var valueBytes: [UInt8]
        if let idx = o.indices {
            valueBytes = [o.indexWidth]
            valueBytes += RLEEncoder.encode(idx, bitWidth: Int(o.indexWidth))
        } else {
            valueBytes = try ValueEncoder.encode(keptValues!, enc, typeLength: desc.typeLength)
        }
        let stats = Self.rewrittenPageStatistics(h, mm, nulls: nulls, kept: headerStatistics, desc: desc)
        var hs = ThriftStruct()
        var body: [UInt8]
        var uncompressedSize: Int
        if h.type == .dataPageV2 {
            let compress = h.isCompressed && codec != .uncompressed
            let vals = compress ? try withBytes(valueBytes) { (p) throws(ParquetError) in try Codecs.compress(codec, p) } : valueBytes
            body = repBytes + defBytes + vals
            uncompressedSize = repBytes.count + defBytes.count + valueBytes.count
            hs[1] = .i32(PageType.dataPageV2.rawValue)
            var dh = ThriftStruct()
            dh[1] = .i32(Int32(slots))
            dh[2] = .i32(Int32(nulls))
            dh[3] = .i32(Int32(rows))
            dh[4] = .i32(enc.rawValue)
            dh[5] = .i32(Int32(defBytes.count))
            dh[6] = .i32(Int32(repBytes.count))
            dh[7] = .bool(h.isCompressed)
            if let stats { dh[8] = .structure(stats) }
            hs[8] = .structure(dh)
        } else {
            var raw: [UInt8] = []
            func prefixed(_ b: [UInt8]) {
                withUnsafeBytes(of: UInt32(b.count).littleEndian) { raw.append(contentsOf: $0) }
                raw += b
            }
            if maxRep > 0 { prefixed(repBytes) }
            if maxDef > 0 { prefixed(defBytes) }
            raw += valueBytes
            uncompressedSize = raw.count
            body = try withBytes(raw) { (p) throws(ParquetError) in try Codecs.compress(codec, p) }
            hs[1] = .i32(PageType.dataPage.rawValue)
            var dh = ThriftStruct()
            dh[1] = .i32(Int32(slots))
            dh[2] = .i32(enc.rawValue)
            dh[3] = .i32(Encoding.rle.rawValue)
            dh[4] = .i32(Encoding.rle.rawValue)
            if let stats { dh[5] = .structure(stats) }
            hs[5] = .structure(dh)
        }
        hs[2] = .i32(Int32(uncompressedSize))
        hs[3] = .i32(Int32(body.count))
        if h.crc != nil { hs[4] = .i32(Int32(bitPattern: body.withUnsafeBytes { Codecs.crc32($0) })) }
        let hb = hs.encoded()
        return (hb + body, hb.count + uncompressedSize)
    }

    /// The statistics a rewritten data page's header carries: `kept` (old bounds that still hold),
    /// or fresh ones from `mm` of the kinds the original header had; nil when it had none.
    static func rewrittenPageStatistics(_ h: PageHeader, _ mm: MinMax, nulls: Int, kept: ThriftStruct?, desc: ColumnDescriptor) -> ThriftStruct? {
        if let kept { return kept }
        guard let old = pageHeaderStatistics(h) else { return nil }
        let legacy = old[1] != nil || old[2] != nil
        var s = ChunkWriter.statisticsStruct(mm, nullCount: Int64(nulls), legacy: legacy && desc.sortOrder == .signed)
        if old[3] == nil { s.nullCount = nil }
        if old[5] == nil && old[6] == nil {
            s.minValue = nil; s.maxValue = nil; s.raw[7] = nil; s.raw[8] = nil
        }
        return s.raw
    }

    /// Page `p` of a flat column without its slots `drops` (`droppedValues`: their positions among
    /// the page's values), edited in place (`PageSplice.swift`) instead of decoded and encoded
    /// again: the definition levels and the dictionary indices lose only the runs that held a
    /// dropped slot, PLAIN values lose their bytes, a Snappy body is spliced rather than compressed
    /// again, and the header keeps every field but the counts, sizes, checksum and `statistics`.
    /// Nil for a page this code leaves to `encodePage`: BOOLEAN or non-PLAIN values without a
    /// dictionary, a body compressed by another codec than Snappy, a stream it cannot walk.
    private func splicePage(
        _ p: RawPage, _ o: OpenPage, chunk: [UInt8], drops: [Int], droppedValues: [Int], slots: Int, nulls: Int,
        desc: ColumnDescriptor, codec: CompressionCodec, statistics: ThriftStruct?
    ) -> ([UInt8], Int)? {
        let h = p.header
        let v2 = h.type == .dataPageV2
        guard let enc = Encoding(rawValue: h.encoding), !o.data.isEmpty, desc.maxRepetitionLevel == 0 else { return nil }
        guard enc.isDictionary || (enc == .plain && desc.physicalType != .boolean) else { return nil }
        if !v2 && codec != .snappy && codec != .uncompressed { return nil }
        return o.data.withUnsafeBytes { d -> ([UInt8], Int)? in
            var edits: [ByteEdit] = []
            var defLength = 0
            if desc.maxDefinitionLevel > 0 {
                guard let ds = o.defStream, ds.upperBound <= d.count else { return nil }
                guard
                    HybridSplice.dropping(
                        UnsafeRawBufferPointer(rebasing: d[ds]), bitWidth: bitWidth(of: UInt64(desc.maxDefinitionLevel)), count: o.slots,
                        drops: drops, base: ds.lowerBound, edits: &edits) != nil
                else { return nil }
                defLength = ds.count + edits.reduce(0) { $0 + $1.bytes.count - $1.range.count }
                if !v2 && defLength != ds.count {
                    guard ds.lowerBound >= 4 else { return nil }
                    edits.insert(
                        ByteEdit(range: (ds.lowerBound - 4)..<ds.lowerBound, bytes: withUnsafeBytes(of: UInt32(defLength).littleEndian, Array.init)), at: 0)
                }
            }
            let vs = o.valuesStart
            guard vs <= d.count else { return nil }
            if !droppedValues.isEmpty {
                if enc.isDictionary {
                    guard d.count > vs, d[vs] == o.indexWidth else { return nil }
                    guard
                        HybridSplice.dropping(
                            UnsafeRawBufferPointer(rebasing: d[(vs + 1)...]), bitWidth: Int(o.indexWidth), count: o.nonNull, drops: droppedValues,
                            base: vs + 1, edits: &edits) != nil
                    else { return nil }
                } else if desc.physicalType == .byteArray {
                    var pos = vs, di = 0, v = 0
                    let last = droppedValues[droppedValues.count - 1]
                    while v <= last {
                        guard d.count - pos >= 4 else { return nil }
                        let n = Int(d.loadUnaligned(fromByteOffset: pos, as: UInt32.self).littleEndian)
                        guard d.count - pos - 4 >= n else { return nil }
                        if droppedValues[di] == v {
                            if let e = edits.last, e.bytes.isEmpty, e.range.upperBound == pos {
                                edits[edits.count - 1].range = e.range.lowerBound..<(pos + 4 + n)
                            } else {
                                edits.append(ByteEdit(range: pos..<(pos + 4 + n), bytes: []))
                            }
                            di += 1
                        }
                        pos += 4 + n
                        v += 1
                    }
                } else {
                    let w: Int
                    switch desc.physicalType {
                    case .int32, .float: w = 4
                    case .int64, .double: w = 8
                    case .int96: w = 12
                    case .fixedLenByteArray: w = desc.typeLength
                    default: return nil
                    }
                    guard w > 0, d.count - vs >= o.nonNull * w else { return nil }
                    for v in droppedValues {
                        let r = (vs + v * w)..<(vs + v * w + w)
                        if let e = edits.last, e.bytes.isEmpty, e.range.upperBound == r.lowerBound, e.range.lowerBound >= vs {
                            edits[edits.count - 1].range = e.range.lowerBound..<r.upperBound
                        } else {
                            edits.append(ByteEdit(range: r, bytes: []))
                        }
                    }
                }
            }
            let newSize = d.count + edits.reduce(0) { $0 + $1.bytes.count - $1.range.count }
            var body: [UInt8]
            let compressed = chunk.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[p.bodyStart..<p.end]) }
            if v2 {
                let levels = h.repLevelsByteLength + h.defLevelsByteLength
                guard vs == levels, compressed.count >= levels else { return nil }
                let split = edits.firstIndex { $0.range.lowerBound >= vs } ?? edits.count
                body = applyEdits(UnsafeRawBufferPointer(rebasing: d[0..<vs]), Array(edits[..<split]))
                let valueEdits = edits[split...].map { ByteEdit(range: ($0.range.lowerBound - vs)..<($0.range.upperBound - vs), bytes: $0.bytes) }
                let values = UnsafeRawBufferPointer(rebasing: d[vs...])
                if valueEdits.isEmpty {
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: compressed[levels...]))
                } else if h.isCompressed && codec != .uncompressed {
                    guard codec == .snappy,
                        let s = Snappy.splice(UnsafeRawBufferPointer(rebasing: compressed[levels...]), original: values, edits: valueEdits)
                    else { return nil }
                    body += s
                } else {
                    body += applyEdits(values, valueEdits)
                }
            } else if codec == .snappy {
                guard let s = Snappy.splice(compressed, original: d, edits: edits) else { return nil }
                body = s
            } else {
                body = applyEdits(d, edits)
            }
            var hs = h.raw
            hs[2] = .i32(Int32(newSize))
            hs[3] = .i32(Int32(body.count))
            if hs[4] != nil { hs[4] = .i32(Int32(bitPattern: body.withUnsafeBytes { Codecs.crc32($0) })) }
            if v2 {
                guard var dh = hs.structure(8) else { return nil }
                dh[1] = .i32(Int32(slots))
                dh[2] = .i32(Int32(nulls))
                dh[3] = .i32(Int32(slots))
                dh[5] = .i32(Int32(defLength))
                dh[8] = statistics.map { .structure($0) }
                hs[8] = .structure(dh)
            } else {
                guard var dh = hs.structure(5) else { return nil }
                dh[1] = .i32(Int32(slots))
                dh[5] = statistics.map { .structure($0) }
                hs[5] = .structure(dh)
            }
            let hb = hs.encoded()
            return (hb + body, hb.count + newSize)
        }
    }

    /// The statistics in a data page's header (v1 or v2), if any.
    static func pageHeaderStatistics(_ h: PageHeader) -> ThriftStruct? {
        h.type == .dataPageV2 ? h.raw.structure(8)?.structure(8) : h.raw.structure(5)?.structure(5)
    }

    /// Min/max over the dictionary entries marked true.
    static func minMax(ofMarked marks: [Bool], in dictionary: ColumnValues, order: SortOrder) -> MinMax {
        var idx: [Int] = []
        for (i, m) in marks.enumerated() where m { idx.append(i) }
        guard !idx.isEmpty else { return MinMax() }
        let v = dictionary.gather(idx)
        return MinMax.compute(v, 0..<v.count, order: order)
    }

    /// A comparison of PLAIN statistics values in the column's order, where this code knows it
    /// (nil: unknown; the comparison returns nil for a value it cannot order, e.g. NaN).
    static func statisticsComparator(_ desc: ColumnDescriptor) -> (([UInt8], [UInt8]) -> Int?)? {
        func load(_ a: [UInt8], _ n: Int) -> UInt64? {
            guard a.count == n else { return nil }
            var u: UInt64 = 0
            for (i, b) in a.enumerated() { u |= UInt64(b) << (8 * UInt64(i)) }
            return u
        }
        func sign<T: Comparable>(_ x: T, _ y: T) -> Int { x == y ? 0 : (x < y ? -1 : 1) }
        let order = desc.sortOrder
        switch desc.physicalType {
        case .boolean:
            return { a, b in a.count == 1 && b.count == 1 ? sign(a[0], b[0]) : nil }
        case .int32:
            return { a, b in
                guard let x = load(a, 4), let y = load(b, 4) else { return nil }
                return order == .unsigned ? sign(UInt32(x), UInt32(y)) : sign(Int32(truncatingIfNeeded: x), Int32(truncatingIfNeeded: y))
            }
        case .int64:
            return { a, b in
                guard let x = load(a, 8), let y = load(b, 8) else { return nil }
                return order == .unsigned ? sign(x, y) : sign(Int64(bitPattern: x), Int64(bitPattern: y))
            }
        case .float:
            return { a, b in
                guard let x = load(a, 4), let y = load(b, 4) else { return nil }
                let f = Float(bitPattern: UInt32(x)), g = Float(bitPattern: UInt32(y))
                return f.isNaN || g.isNaN ? nil : sign(f, g)
            }
        case .double:
            return { a, b in
                guard let x = load(a, 8), let y = load(b, 8) else { return nil }
                let f = Double(bitPattern: x), g = Double(bitPattern: y)
                return f.isNaN || g.isNaN ? nil : sign(f, g)
            }
        case .byteArray, .fixedLenByteArray:
            guard order == .unsigned else { return nil }
            return { a, b in
                for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
                return sign(a.count, b.count)
            }
        case .int96:
            return nil
        }
    }
}
