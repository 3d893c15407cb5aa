import Foundation
import GRDB
import LetheCore
import LetheCatalog

// Sorted posting segments (see PostingSegment.swift and docs/state.md, "Posting segments").

extension SQLiteStateStore {
    /// A new, empty segment's id (its row is filled in by `finishSegment`).
    static func newSegment(_ db: Database) throws -> Int64 {
        try db.execute(sql: "INSERT INTO segments(entries, blocks) VALUES (0, 0)")
        return db.lastInsertedRowID
    }

    /// Writes the blocks `writer` holds to `segment` (and empties them from the writer).
    static func storeBlocks(_ db: Database, _ segment: Int64, _ writer: inout PostingSegment.Writer) throws {
        let insert = try db.cachedStatement(sql: "INSERT INTO segment_blocks(segment, last_k, data) VALUES (?, ?, ?)")
        for b in writer.takeBlocks() { try insert.execute(arguments: [segment, b.lastKey, b.data]) }
    }

    /// Writes a batch's entries as segment `segment`: the objects' sorted keys merged (key, then object id).
    static func writeSegment(_ db: Database, _ segment: Int64, _ work: [EncodedObject], ids: [Int64]) throws {
        // Every object's keys and rows end to end, so the merge reads flat arrays.
        var keys: [Int64] = []
        var rowEnds: [Int] = []
        var rows: [UInt8] = []
        var heads: [MergeHead] = []
        keys.reserveCapacity(work.reduce(0) { $0 + $1.keys.count })
        rowEnds.reserveCapacity(keys.capacity)
        for (o, p) in work.enumerated() where !p.keys.isEmpty {
            let base = keys.count
            let rowBase = rows.count
            keys.append(contentsOf: p.keys)
            for e in p.ends { rowEnds.append(rowBase + e) }
            rows.append(contentsOf: p.rows)
            heads.append(MergeHead(key: p.keys[0], object: ids[o], at: base, end: keys.count))
        }
        var writer = PostingSegment.Writer()
        var heap = MergeHeap(heads)
        try rows.withUnsafeBytes { r in
            while let h = heap.top {
                let start = h.at == 0 ? 0 : rowEnds[h.at - 1]
                writer.add(key: h.key, object: h.object, rows: UnsafeRawBufferPointer(rebasing: r[start..<rowEnds[h.at]]))
                if h.at + 1 < h.end {
                    heap.replaceTop(MergeHead(key: keys[h.at + 1], object: h.object, at: h.at + 1, end: h.end))
                } else {
                    heap.popTop()
                }
                if writer.pendingBlocks >= 256 { try storeBlocks(db, segment, &writer) }
            }
        }
        writer.close()
        try storeBlocks(db, segment, &writer)
        try finishSegment(db, segment, writer)
    }

    static func finishSegment(_ db: Database, _ segment: Int64, _ writer: PostingSegment.Writer) throws {
        if writer.entries == 0 {
            try db.execute(sql: "DELETE FROM segments WHERE id = ?", arguments: [segment])
        } else {
            try db.execute(
                sql: "UPDATE segments SET entries = ?, blocks = ? WHERE id = ?", arguments: [writer.entries, writer.blocksWritten, segment])
        }
    }

    /// Merges segments of one size tier while a tier holds `fanout` of them (bounds the segments a
    /// lookup reads to about `fanout - 1` a tier; each entry is rewritten once a tier).
    static func mergeTiers(_ db: Database, path: String) throws {
        while true {
            let rows = try Row.fetchAll(db, sql: "SELECT id, entries FROM segments ORDER BY id")
            var byTier: [Int: [Int64]] = [:]
            for r in rows { byTier[PostingSegment.tier(r[1]), default: []].append(r[0]) }
            guard let full = byTier.keys.sorted().first(where: { byTier[$0]!.count >= PostingSegment.fanout }) else { return }
            _ = try mergeSegments(db, byTier[full]!)
        }
    }

    /// Merges `inputs` into one new segment, leaving out dead entries (an object's entries are live
    /// while its row names their segment); returns the new segment's id (nil when nothing was live).
    @discardableResult
    static func mergeSegments(_ db: Database, _ inputs: [Int64]) throws -> Int64? {
        guard !inputs.isEmpty else { return nil }
        let list = inputs.map(String.init).joined(separator: ", ")
        var live: [Int64: Int64] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, segment FROM objects WHERE segment IN (\(list))") {
            let id: Int64 = r[0], seg: Int64 = r[1]
            live[id] = seg
        }
        let segment = try newSegment(db)
        var writer = PostingSegment.Writer()
        var readers = inputs.map { SegmentReader(segment: $0) }
        for i in readers.indices { try readers[i].advance(db) }
        while true {
            // The reader with the smallest (key, object) next (a handful of inputs: a linear pick).
            var best = -1
            for i in readers.indices where readers[i].current != nil {
                if best < 0 { best = i; continue }
                let a = readers[i].current!, b = readers[best].current!
                if a.key < b.key || (a.key == b.key && a.object < b.object) { best = i }
            }
            guard best >= 0 else { break }
            let e = readers[best].current!
            if live[e.object] == readers[best].segment {
                readers[best].withRows(e) { writer.add(key: e.key, object: e.object, rows: $0) }
            }
            try readers[best].advance(db)
            if writer.pendingBlocks >= 256 { try storeBlocks(db, segment, &writer) }
        }
        writer.close()
        try storeBlocks(db, segment, &writer)
        try finishSegment(db, segment, writer)
        // Nothing live left: the objects that named these segments (with no postings there) name none.
        try db.execute(sql: "UPDATE objects SET segment = ? WHERE segment IN (\(list))", arguments: [writer.entries == 0 ? nil : segment])
        try db.execute(sql: "DELETE FROM segment_blocks WHERE segment IN (\(list))")
        try db.execute(sql: "DELETE FROM segments WHERE id IN (\(list))")
        return writer.entries == 0 ? nil : segment
    }

    /// Reads one segment's entries in order, a few blocks at a time (no statement stays open while
    /// the merge writes).
    struct SegmentReader {
        struct Entry { var key: Int64; var object: Int64; var block: Int; var start: Int; var count: Int }
        let segment: Int64
        private var blocks: [Data] = []
        private var entries: [Entry] = []
        private var next = 0
        private var lastKey: Int64? = nil
        private var done = false
        private(set) var current: Entry? = nil

        init(segment: Int64) { self.segment = segment }

        /// Moves to the next entry (nil at the end).
        mutating func advance(_ db: Database) throws {
            if next >= entries.count {
                try load(db)
                if next >= entries.count {
                    current = nil
                    return
                }
            }
            current = entries[next]
            next += 1
        }

        private mutating func load(_ db: Database) throws {
            blocks.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
            next = 0
            guard !done else { return }
            let rows: [Row]
            if let lastKey {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT last_k, data FROM segment_blocks WHERE segment = ? AND last_k > ? ORDER BY last_k LIMIT 64"),
                    arguments: [segment, lastKey])
            } else {
                rows = try Row.fetchAll(
                    db.cachedStatement(sql: "SELECT last_k, data FROM segment_blocks WHERE segment = ? ORDER BY last_k LIMIT 64"), arguments: [segment])
            }
            if rows.count < 64 { done = true }
            for r in rows {
                let last: Int64 = r[0]
                lastKey = last
                let data: Data = r[1]
                let b = blocks.count
                blocks.append(data)
                try data.withUnsafeBytes { bytes in
                    try PostingSegment.forEach(bytes) { key, object, rows in
                        let start = rows.baseAddress.map { bytes.baseAddress!.distance(to: $0) } ?? 0
                        entries.append(Entry(key: key, object: object, block: b, start: start, count: rows.count))
                        return true
                    }
                }
            }
        }

        func withRows<T>(_ e: Entry, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
            try blocks[e.block].withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[e.start..<(e.start + e.count)])) }
        }
    }

    // MARK: Reads

    /// Finds the block of `segment` that may hold `key` (the first whose last key is not below it),
    /// reusing `cached` when it is that block: lookups in ascending key order read each block once.
    struct BlockCursor {
        var lastKey: Int64 = 0
        var data: Data? = nil
        /// No block of the segment at or after the key last sought.
        var exhausted = false

        mutating func block(_ db: Database, segment: Int64, for key: Int64) throws -> Data? {
            if exhausted { return nil }
            if data != nil && lastKey >= key { return data }
            let st = try db.cachedStatement(sql: "SELECT last_k, data FROM segment_blocks WHERE segment = ? AND last_k >= ? ORDER BY last_k LIMIT 1")
            guard let row = try Row.fetchOne(st, arguments: [segment, key]) else {
                exhausted = true
                data = nil
                return nil
            }
            let last: Int64 = row[0], block: Data = row[1]
            lastKey = last
            data = block
            return block
        }
    }

    /// The entries of key `key` in one block: (object, decoded rows).
    static func entries(of key: Int64, in block: Data, path: String) throws -> [(object: Int64, rows: [Int64])] {
        var out: [(object: Int64, rows: [Int64])] = []
        do {
            try block.withUnsafeBytes { bytes in
                try PostingSegment.forEach(bytes) { k, object, rows in
                    if k < key { return true }
                    if k > key { return false }
                    out.append((object, try PostingCodec.decodeRows(rows)))
                    return true
                }
            }
        } catch let e as LetheError {
            throw LetheError(.corrupt, "posting segment: \(e.message)", at: path)
        }
        return out
    }

    /// The segments' ids, ascending.
    static func segmentIDs(_ db: Database) throws -> [Int64] {
        try Int64.fetchAll(db.cachedStatement(sql: "SELECT id FROM segments ORDER BY id"))
    }

    /// The postings of `prefix` held in segments, live ones only, as `locate` returns them (unordered).
    static func segmentPostings(_ db: Database, prefix: Int64, dataset: String?, path: String, dropped: inout DroppedCache) throws -> [Posting] {
        var found: [SegmentEntry] = []
        for segment in try segmentIDs(db) {
            var cursor = BlockCursor()
            guard let block = try cursor.block(db, segment: segment, for: prefix) else { continue }
            for e in try entries(of: prefix, in: block, path: path) {
                found.append(SegmentEntry(key: prefix, segment: segment, object: e.object, rows: e.rows))
            }
        }
        var out: [Posting] = []
        try livePostings(db, found, dataset: dataset, path: path, dropped: &dropped) { _, p in out.append(p) }
        return out
    }

    /// An entry read from a segment, before its object is joined.
    struct SegmentEntry {
        var key: Int64
        var segment: Int64
        var object: Int64
        var rows: [Int64]
    }

    /// Calls `body` with each entry's posting whose object is still live in the entry's segment (and of
    /// `dataset` when given, with rows left), in the entries' order. The objects are read with one
    /// statement per `objectBatch` ids (a subject in many objects: one statement, not one per object).
    static func livePostings(
        _ db: Database, _ entries: [SegmentEntry], dataset: String?, path: String, dropped cache: inout DroppedCache,
        _ body: (SegmentEntry, Posting) throws -> Void
    ) throws {
        guard !entries.isEmpty else { return }
        // Each object decoded once, straight from the statement (no row copies).
        var live: [Int64: (segment: Int64, object: IndexedObject, dropped: [Int64]?)] = [:]
        let droppedIndex = 1 + objectColumnCount
        let ids = Array(Set(entries.map(\.object)))
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(start + objectBatch, ids.count)]
            start += chunk.count
            // A statement a power-of-two arity (padded with a repeated id): a few cached statements serve every size.
            var arity = 1
            while arity < chunk.count { arity <<= 1 }
            var arguments = Array(chunk)
            while arguments.count < arity { arguments.append(chunk.last!) }
            let sql = objectJoinSQL[dataset == nil ? 0 : 1][arity.trailingZeroBitCount]
            var bound = StatementArguments(arguments)
            if let dataset { bound += [dataset] }
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: bound)
            while let row = try cursor.next() {
                guard let segment = row[0] as Int64? else { continue }
                let object = try Self.object(row, base: 1, at: path)
                var dropped: [Int64]? = nil
                if !row.hasNull(atIndex: droppedIndex) {
                    if let known = cache[object.id] {
                        dropped = known
                    } else {
                        let d = try decodeDropped(row[droppedIndex], object: object.id, path: path)
                        cache[object.id] = d
                        dropped = d
                    }
                }
                live[object.id] = (segment, object, dropped)
            }
        }
        for e in entries {
            guard let o = live[e.object], o.segment == e.segment else { continue }
            var rows = e.rows
            if let dropped = o.dropped {
                rows = remap(rows, dropped: dropped)
                if rows.isEmpty { continue }
            }
            try body(e, Posting(object: o.object, rows: rows))
        }
    }

    /// Object ids one statement of `livePostings` reads (a power of two).
    static let objectBatch = 256

    /// `livePostings`' statements, built once: [any dataset, one dataset][log2 of the arity].
    static let objectJoinSQL: [[String]] = [false, true].map { oneDataset in
        (0...objectBatch.trailingZeroBitCount).map { bits in
            let marks = Array(repeating: "?", count: 1 << bits).joined(separator: ", ")
            return "SELECT o.segment, \(locateObjectColumns) FROM objects o WHERE o.id IN (\(marks))\(oneDataset ? " AND o.dataset = ?" : "")"
        }
    }

    /// Orders postings as the `postings` table's `locate` does (dataset, then key, bytewise).
    static func sortPostings(_ ps: inout [Posting]) {
        ps.sort {
            $0.object.dataset != $1.object.dataset
                ? $0.object.dataset.utf8.lexicographicallyPrecedes($1.object.dataset.utf8)
                : $0.object.key.utf8.lexicographicallyPrecedes($1.object.key.utf8)
        }
    }

    /// One object's entries in `segment` (rows as stored), found through its key buckets.
    static func segmentPostings(_ db: Database, object id: Int64, segment: Int64, buckets: Data?, path: String) throws -> [(Int64, [Int64])] {
        guard let buckets, !buckets.isEmpty else { return [] }
        let ranges: [ClosedRange<Int64>]
        do {
            ranges = try PostingCodec.decodeBuckets(buckets)
        } catch let e as LetheError {
            throw LetheError(.corrupt, "key buckets of object \(id): \(e.message)", at: path)
        }
        var out: [(Int64, [Int64])] = []
        var cursor = BlockCursor()
        do {
            // In signed key order (the bucket list is in unsigned order: negative keys last), as the cursor needs.
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                var from = r.lowerBound
                while let block = try cursor.block(db, segment: segment, for: from) {
                    try block.withUnsafeBytes { bytes in
                        try PostingSegment.forEach(bytes) { k, object, rows in
                            if k > r.upperBound { return false }
                            if k >= r.lowerBound && object == id { out.append((k, try PostingCodec.decodeRows(rows))) }
                            return true
                        }
                    }
                    // The block ends within the range: the range goes on in the next block.
                    guard cursor.lastKey < r.upperBound else { break }
                    from = cursor.lastKey + 1
                }
            }
        } catch let e as LetheError {
            throw LetheError(.corrupt, "posting segment of object \(id): \(e.message)", at: path)
        }
        return out
    }
}

/// One object's (or segment's) position in a k-way merge.
struct MergeHead {
    var key: Int64
    var object: Int64
    var at: Int
    var end: Int
    @inline(__always)
    static func < (a: MergeHead, b: MergeHead) -> Bool { a.key < b.key || (a.key == b.key && a.object < b.object) }
}

/// A binary min-heap of merge heads.
struct MergeHeap {
    private var h: [MergeHead]

    init(_ heads: [MergeHead]) {
        h = heads
        var i = h.count / 2 - 1
        while i >= 0 {
            down(i)
            i -= 1
        }
    }

    var top: MergeHead? { h.first }

    mutating func replaceTop(_ x: MergeHead) {
        h[0] = x
        down(0)
    }

    mutating func popTop() {
        let last = h.removeLast()
        if !h.isEmpty {
            h[0] = last
            down(0)
        }
    }

    private mutating func down(_ start: Int) {
        var i = start
        let n = h.count
        while true {
            let l = 2 * i + 1
            if l >= n { return }
            var m = l
            if l + 1 < n && h[l + 1] < h[l] { m = l + 1 }
            if !(h[m] < h[i]) { return }
            h.swapAt(i, m)
            i = m
        }
    }
}
