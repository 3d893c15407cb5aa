import Foundation
import GRDB
import LetheCore
import LetheCatalog
import Synchronization

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

    /// Writes a batch's entries as segment `segment`, in order of key, then object id: the batch's entries
    /// sorted at once by a radix pass on the keys' top bits (keys are uniform HMAC prefixes: about one
    /// entry a bucket) and an insertion sort a bucket, which costs a few predictable steps an entry where a
    /// heap merge of the objects' lists took a mispredicted comparison per level.
    static func writeSegment(_ db: Database, _ segment: Int64, _ work: [EncodedObject], ids: [Int64]) throws {
        // A backfill writes a batch of ~500,000 entries after another: its arrays (tens of megabytes) are
        // reused from the batch before (fresh ones are faulted in and zeroed by the kernel, page by page).
        var scratch = SegmentScratch.take()
        defer { SegmentScratch.keep(scratch) }
        // Every object's rows end to end, each entry naming where its rows end.
        scratch.rowEnds.removeAll(keepingCapacity: true)
        scratch.rows.removeAll(keepingCapacity: true)
        scratch.entries.removeAll(keepingCapacity: true)
        let n = work.reduce(0) { $0 + $1.keys.count }
        scratch.entries.reserveCapacity(n)
        scratch.rowEnds.reserveCapacity(n)
        for (o, p) in work.enumerated() where !p.keys.isEmpty {
            let rowBase = scratch.rows.count
            for (i, k) in p.keys.enumerated() {
                scratch.entries.append(BatchEntry(key: k, object: ids[o], at: Int32(scratch.rowEnds.count)))
                scratch.rowEnds.append(rowBase + p.ends[i])
            }
            scratch.rows.append(contentsOf: p.rows)
        }
        BatchEntry.sort(&scratch.entries, scratch: &scratch.sort)
        var writer = PostingSegment.Writer()
        let entries = scratch.entries
        try scratch.rows.withUnsafeBytes { r in
            try scratch.rowEnds.withUnsafeBufferPointer { ends in
                for e in entries {
                    let at = Int(e.at)
                    let start = at == 0 ? 0 : ends[at - 1]
                    writer.add(key: e.key, object: e.object, rows: UnsafeRawBufferPointer(rebasing: r[start..<ends[at]]))
                    if writer.pendingBlocks >= 256 { try storeBlocks(db, segment, &writer) }
                }
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

    /// Merges `inputs` into one new segment with one k-way merge (a heap over the inputs' next
    /// entries), leaving out dead entries (an object's entries are live while its row names their
    /// segment); an entry's encoded rows are copied as bytes, never decoded. Returns the new
    /// segment's id (nil when nothing was live). The caller's transaction covers the whole merge:
    /// the inputs are deleted in it, so a merge that fails or is killed leaves them as they were.
    @discardableResult
    static func mergeSegments(_ db: Database, _ inputs: [Int64]) throws -> Int64? {
        guard !inputs.isEmpty else { return nil }
        let started = ContinuousClock.now
        let list = inputs.map(String.init).joined(separator: ", ")
        let live = try LiveObjects(db, segments: list)
        let segment = try newSegment(db)
        var writer = PostingSegment.Writer()
        // Blocks read a time per input: bounded memory however many inputs a merge has.
        let perLoad = max(4, min(64, 4_096 / inputs.count))
        var readers = inputs.map { SegmentReader(segment: $0, blocksPerLoad: perLoad) }
        defer { for i in readers.indices { readers[i].free() } }
        for i in readers.indices { _ = try readers[i].advance(db) }
        let tree = MergeTree(readers)
        defer { tree.free() }
        // The readers through a buffer pointer: an element's mutating call on the array itself copied
        // the reader (retaining and releasing its arrays) for every entry merged.
        try readers.withUnsafeMutableBufferPointer { rp in
            while let i = tree.winner {
                if live.segment(of: rp[i].object) == rp[i].segment {
                    writer.add(key: rp[i].key, object: rp[i].object, rows: rp[i].rows)
                    if writer.pendingBlocks >= 256 { try storeBlocks(db, segment, &writer) }
                }
                _ = try rp[i].advance(db)
                tree.replay(i, key: rp[i].key, object: rp[i].object, exhausted: rp[i].exhausted)
            }
        }
        writer.close()
        try storeBlocks(db, segment, &writer)
        try finishSegment(db, segment, writer)
        Trace.mark("merge segments: \(inputs.count) inputs, \(writer.entries) entries, \(writer.blocksWritten) blocks written", since: started)
        let merged = ContinuousClock.now
        // Nothing live left: the objects that named these segments (with no postings there) name none.
        try db.execute(sql: "UPDATE objects SET segment = ? WHERE segment IN (\(list))", arguments: [writer.entries == 0 ? nil : segment])
        try deleteBlocks(db, of: list)
        try db.execute(sql: "DELETE FROM segments WHERE id IN (\(list))")
        Trace.mark("merge segments: inputs deleted", since: merged)
        return writer.entries == 0 ? nil : segment
    }

    /// Deletes the blocks of the segments in `list` (ids joined by commas). Their pages are freed
    /// without being overwritten with zeros (`secure_delete` is off for this statement only): a
    /// block holds keyed-hash prefixes, object ids and row ordinals, never a raw identifier, and
    /// zeroing them wrote every freed page once more (a backfill's batch segments: as many pages as
    /// the index itself, into the WAL and again at its checkpoint).
    static func deleteBlocks(_ db: Database, of list: String) throws {
        try db.execute(sql: "PRAGMA secure_delete = OFF")
        do {
            try db.execute(sql: "DELETE FROM segment_blocks WHERE segment IN (\(list))")
        } catch {
            try? db.execute(sql: "PRAGMA secure_delete = ON")
            throw error
        }
        // Back on before anything else is deleted (a failure here fails the merge's transaction).
        try db.execute(sql: "PRAGMA secure_delete = ON")
    }

    /// The segment each object of some segments names (`objects.segment`), looked up once an entry
    /// of a merge: a flat table over the ids when they are dense (a backfill's are), else a dictionary.
    struct LiveObjects {
        private var base: Int64 = 0
        private var flat: [Int64] = []
        private var sparse: [Int64: Int64] = [:]

        init(_ db: Database, segments list: String) throws {
            var pairs: [(Int64, Int64)] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT id, segment FROM objects WHERE segment IN (\(list))")
            while let r = try cursor.next() { pairs.append((r[0], r[1])) }
            guard let lo = pairs.lazy.map(\.0).min(), let hi = pairs.lazy.map(\.0).max() else { return }
            let span = hi.subtractingReportingOverflow(lo)
            if !span.overflow && span.partialValue < Int64(4 * pairs.count + 4_096) {
                base = lo
                flat = Array(repeating: -1, count: Int(span.partialValue) + 1)
                for (id, s) in pairs { flat[Int(id - lo)] = s }
            } else {
                for (id, s) in pairs { sparse[id] = s }
            }
        }

        /// The segment object `id` names (-1 for none, or an object not in the merged segments).
        @inline(__always)
        func segment(of id: Int64) -> Int64 {
            if !flat.isEmpty {
                let i = id &- base
                return i >= 0 && i < Int64(flat.count) ? flat[Int(i)] : -1
            }
            return sparse[id] ?? -1
        }
    }

    /// Reads one segment's entries in order, `blocksPerLoad` blocks at a time copied end to end into
    /// one buffer of its own (no statement stays open while the merge writes), decoding one entry an
    /// `advance` straight from the buffer's memory (no array access, bounds checks only at a block's
    /// end). The buffer is allocated by hand: `free()` it (the merge does, whatever happens).
    struct SegmentReader {
        let segment: Int64
        let blocksPerLoad: Int
        private var buffer: UnsafeMutableRawPointer? = nil
        private var capacity = 0
        /// Where each loaded block ends in `buffer`.
        private var blockEnds: [Int] = []
        private var block = 0
        /// The next entry's offset and the end of its block.
        private var at = 0
        private var end = 0
        private var lastKey: Int64? = nil
        private var done = false
        /// No entry left: `key` and `object` are then `Int64.max` (an entry's object id is below it).
        private(set) var exhausted = false
        private(set) var key: Int64 = 0
        private(set) var object: Int64 = 0
        /// The current entry's encoded rows (valid until the next `advance`).
        private(set) var rows = UnsafeRawBufferPointer(start: nil, count: 0)

        init(segment: Int64, blocksPerLoad: Int = 64) {
            self.segment = segment
            self.blocksPerLoad = blocksPerLoad
        }

        mutating func free() {
            buffer?.deallocate()
            buffer = nil
            capacity = 0
        }

        /// Moves to the next entry; false at the end of the segment (then `exhausted`).
        @inline(__always)
        mutating func advance(_ db: Database) throws -> Bool {
            if at < end {
                try decode()
                return true
            }
            return try nextBlock(db)
        }

        /// Decodes the entry at `at` (before `end`) and moves past it.
        @inline(__always)
        private mutating func decode() throws {
            guard let p = buffer else { throw LetheError(.corrupt, "posting segment block: truncated entry") }
            var i = at
            let delta = try Self.varint(p, &i, end)
            let o = try Self.varint(p, &i, end)
            let length = try Self.varint(p, &i, end)
            guard length <= UInt64(end - i) else { throw LetheError(.corrupt, "posting segment block: truncated entry") }
            guard o < UInt64(Int64.max) else {
                throw LetheError(.corrupt, "posting segment block: an entry's object id is out of range (\(o))")
            }
            key = key &+ Int64(bitPattern: delta)
            object = Int64(o)
            rows = UnsafeRawBufferPointer(start: p + i, count: Int(length))
            at = i + Int(length)
        }

        /// A varint at `p + i` of a block ending at `end`: ten bytes read without a bound check when
        /// the block has them (every entry but a block's last few bytes).
        @inline(__always)
        static func varint(_ p: UnsafeMutableRawPointer, _ i: inout Int, _ end: Int) throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            let limit = end - i >= 10 ? i + 10 : end
            var j = i
            while j < limit {
                let b = p.load(fromByteOffset: j, as: UInt8.self)
                j += 1
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 {
                    if shift == 63 && b > 1 { throw LetheError(.corrupt, "varint overflows 64 bits") }
                    i = j
                    return value
                }
                shift += 7
            }
            throw LetheError(.corrupt, limit == end ? "truncated varint" : "varint overflows 64 bits")
        }

        /// The first entry of the next block (loading more blocks when these are read); false at the end.
        private mutating func nextBlock(_ db: Database) throws -> Bool {
            while true {
                if block + 1 < blockEnds.count {
                    block += 1
                    try openBlock()
                } else if done {
                    exhausted = true
                    key = .max
                    object = .max
                    rows = UnsafeRawBufferPointer(start: nil, count: 0)
                    return false
                } else {
                    try load(db)
                    if blockEnds.isEmpty { continue }
                }
                if at < end {
                    try decode()
                    return true
                }
            }
        }

        /// Reads the header of block `block` (its format byte and first key).
        private mutating func openBlock() throws {
            let start = block == 0 ? 0 : blockEnds[block - 1]
            end = blockEnds[block]
            guard end - start >= 9, let p = buffer, p.load(fromByteOffset: start, as: UInt8.self) == PostingSegment.format else {
                throw LetheError(.corrupt, "posting segment block: bad header")
            }
            key = Int64(littleEndian: p.loadUnaligned(fromByteOffset: start + 1, as: Int64.self))
            at = start + 9
        }

        private mutating func load(_ db: Database) throws {
            blockEnds.removeAll(keepingCapacity: true)
            block = 0
            at = 0
            end = 0
            var used = 0
            let sql =
                lastKey == nil
                ? "SELECT last_k, data FROM segment_blocks WHERE segment = ? ORDER BY last_k LIMIT ?"
                : "SELECT last_k, data FROM segment_blocks WHERE segment = ? AND last_k > ? ORDER BY last_k LIMIT ?"
            let arguments: StatementArguments = lastKey.map { [segment, $0, blocksPerLoad] } ?? [segment, blocksPerLoad]
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            while let r = try cursor.next() {
                lastKey = r[0] as Int64
                try r.withUnsafeData(atIndex: 1) { d in
                    guard let d, !d.isEmpty else { return }
                    if used + d.count > capacity { grow(to: used + d.count, keeping: used) }
                    d.withUnsafeBytes { b in (buffer! + used).copyMemory(from: b.baseAddress!, byteCount: b.count) }
                    used += d.count
                }
                blockEnds.append(used)
            }
            if blockEnds.count < blocksPerLoad { done = true }
            if !blockEnds.isEmpty { try openBlock() }
        }

        private mutating func grow(to needed: Int, keeping used: Int) {
            let size = max(needed, capacity * 2, 64 * 1_024)
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            if let old = buffer {
                bigger.copyMemory(from: old, byteCount: used)
                old.deallocate()
            }
            buffer = bigger
            capacity = size
        }
    }

    /// (segments, their blocks, rows of the `postings` table): how the index is laid out (tests, benches).
    func segmentLayout() async throws -> (segments: Int, blocks: Int, tableRows: Int) {
        try await writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM segments") ?? 0, try Int.fetchOne(db, sql: "SELECT count(*) FROM segment_blocks") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM postings") ?? 0
            )
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

    /// The segments' ids, ascending (`cache`: kept by a `readNow` connection while the database is unchanged).
    static func segmentIDs(_ db: Database, cache: HotCache? = nil) throws -> [Int64] {
        if let known = cache?.segments { return known }
        let ids = try Int64.fetchAll(db.cachedStatement(sql: "SELECT id FROM segments ORDER BY id"))
        cache?.segments = ids
        return ids
    }

    /// The postings of `prefix` held in segments, live ones only, as `locate` returns them (unordered).
    static func segmentPostings(
        _ db: Database, prefix: Int64, dataset: String?, path: String, dropped: inout DroppedCache, cache: HotCache? = nil
    ) throws -> [Posting] {
        var found: [SegmentEntry] = []
        for segment in try segmentIDs(db, cache: cache) {
            var cursor = BlockCursor()
            guard let block = try cursor.block(db, segment: segment, for: prefix) else { continue }
            for e in try entries(of: prefix, in: block, path: path) {
                found.append(SegmentEntry(key: prefix, segment: segment, object: e.object, rows: e.rows))
            }
        }
        var out: [Posting] = []
        if let cache {
            try livePostings(db, found, dataset: dataset, path: path, cache: cache) { _, p in out.append(p) }
        } else {
            try livePostings(db, found, dataset: dataset, path: path, dropped: &dropped) { _, p in out.append(p) }
        }
        return out
    }

    /// An object as `livePostings` joins it to segment entries: the segment its postings are in (nil:
    /// the `postings` table), the object, its dropped ordinals (a derived object's).
    struct LiveObject {
        var segment: Int64?
        var object: IndexedObject
        var dropped: [Int64]?
    }

    /// `livePostings` with the objects kept in a `readNow` connection's cache: the ids it does not
    /// know are read (any dataset, so that an absent row means no such object), the rest are not.
    static func livePostings(
        _ db: Database, _ entries: [SegmentEntry], dataset: String?, path: String, cache: HotCache,
        _ body: (SegmentEntry, Posting) throws -> Void
    ) throws {
        guard !entries.isEmpty else { return }
        var missing: [Int64] = []
        for e in entries where cache.objects.index(forKey: e.object) == nil && !missing.contains(e.object) { missing.append(e.object) }
        if !missing.isEmpty {
            if cache.objects.count + missing.count > HotCache.maxObjects { cache.objects = [:] }
            for id in missing { cache.objects[id] = .some(nil) }
            try objects(db, ids: missing, path: path) { o in cache.objects[o.object.id] = o }
        }
        for e in entries {
            guard let known = cache.objects[e.object], let o = known, o.segment == e.segment else { continue }
            if let dataset, o.object.dataset != dataset { continue }
            var rows = e.rows
            if let dropped = o.dropped {
                rows = remap(rows, dropped: dropped)
                if rows.isEmpty { continue }
            }
            try body(e, Posting(object: o.object, rows: rows))
        }
    }

    /// The objects of `ids` that exist (any dataset), one statement per `objectBatch` ids.
    static func objects(_ db: Database, ids: [Int64], path: String, _ body: (LiveObject) throws -> Void) throws {
        let droppedIndex = 1 + objectColumnCount
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(start + objectBatch, ids.count)]
            start += chunk.count
            var arity = 1
            while arity < chunk.count { arity <<= 1 }
            var arguments = Array(chunk)
            while arguments.count < arity { arguments.append(chunk.last!) }
            let cursor = try Row.fetchCursor(db.cachedStatement(sql: objectJoinSQL[0][arity.trailingZeroBitCount]), arguments: StatementArguments(arguments))
            while let row = try cursor.next() {
                let object = try Self.object(row, base: 1, at: path)
                let dropped = row.hasNull(atIndex: droppedIndex) ? nil : try decodeDropped(row[droppedIndex], object: object.id, path: path)
                try body(LiveObject(segment: row[0], object: object, dropped: dropped))
            }
        }
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
/// One entry of a batch being written: its key, object id and rows (by index into the batch's row ends).
struct BatchEntry: TopBitsKeyed {
    var key: Int64
    var object: Int64
    var at: Int32

    @inline(__always)
    static func < (a: BatchEntry, b: BatchEntry) -> Bool { a.key < b.key || (a.key == b.key && a.object < b.object) }

    var radixKey: Int64 { key }

    /// Sorts by key, then object (`sortByKeyTopBits`), with buffers kept from the sort before.
    static func sort(_ entries: inout [BatchEntry], scratch: inout TopBitsScratch<BatchEntry>) {
        entries.sortByKeyTopBits(maxBits: 20, scratch: &scratch)
    }
}

/// The arrays `writeSegment` builds a batch's segment in, kept for the next batch (one set in the
/// process: a second writer meanwhile makes its own), at most `limit` bytes of them.
struct SegmentScratch: Sendable {
    var entries: [BatchEntry] = []
    var rowEnds: [Int] = []
    var rows: [UInt8] = []
    var sort = TopBitsScratch<BatchEntry>()

    private static let kept = Mutex<SegmentScratch?>(nil)
    /// Enough for a backfill's batches (500,000 postings); larger sets are not kept.
    static let limit = 64 << 20

    var bytes: Int {
        entries.capacity * MemoryLayout<BatchEntry>.stride + rowEnds.capacity * 8 + rows.capacity + sort.bytes
    }

    static func take() -> SegmentScratch {
        kept.withLock { k in
            defer { k = nil }
            return k ?? SegmentScratch()
        }
    }

    static func keep(_ s: SegmentScratch) {
        guard s.bytes <= limit else { return }
        kept.withLock { $0 = s }
    }
}

/// A loser tree over a merge's readers' current entries, each as one 128-bit word ordered as (key,
/// then object id): the key's bits with the sign flipped above the object id, so that one unsigned
/// comparison (no branch) orders two entries; an exhausted reader's is all ones, above every entry
/// (an entry's object id is below `Int64.max`). The smallest is `winner`, and replacing it costs one
/// comparison a level (a binary heap took two, and moved entries around). Its memory is allocated by
/// hand (no array's uniqueness check or bounds check an entry): `free()` it.
struct MergeTree {
    /// Per leaf (readers padded to a power of two with exhausted ones): the reader's current entry.
    private let entries: UnsafeMutablePointer<UInt128>
    /// `nodes[0]`: the winner; `nodes[1..<leaves]`: the loser of each match.
    private let nodes: UnsafeMutablePointer<Int32>
    private let leaves: Int

    @inline(__always)
    static func word(key: Int64, object: Int64) -> UInt128 {
        UInt128(UInt64(bitPattern: key) ^ (1 << 63)) << 64 | UInt128(UInt64(bitPattern: object))
    }

    init(_ readers: [SQLiteStateStore.SegmentReader]) {
        var n = 1
        while n < readers.count { n *= 2 }
        leaves = n
        entries = .allocate(capacity: n)
        entries.initialize(repeating: .max, count: n)
        for (i, r) in readers.enumerated() where !r.exhausted { entries[i] = Self.word(key: r.key, object: r.object) }
        nodes = .allocate(capacity: n)
        nodes.initialize(repeating: 0, count: n)
        // Winners of the matches bottom up (the leaves are nodes n..<2n), the losers kept.
        var winners = [Int32](repeating: 0, count: 2 * n)
        for i in 0..<n { winners[n + i] = Int32(i) }
        var node = n - 1
        while node >= 1 {
            let a = winners[2 * node], b = winners[2 * node + 1]
            if entries[Int(b)] < entries[Int(a)] {
                winners[node] = b
                nodes[node] = a
            } else {
                winners[node] = a
                nodes[node] = b
            }
            node -= 1
        }
        nodes[0] = n == 1 ? 0 : winners[1]
    }

    func free() {
        entries.deallocate()
        nodes.deallocate()
    }

    /// The reader holding the smallest entry; nil when every reader is exhausted.
    var winner: Int? {
        let w = Int(nodes[0])
        return entries[w] == .max ? nil : w
    }

    /// Reader `i` (the winner) moved on to the entry (`key`, `object`), or is `exhausted`: its
    /// matches played again, without a branch a level (the winner of a match of random keys is a
    /// coin's toss: a branch on it mispredicted every other level).
    @inline(__always)
    func replay(_ i: Int, key: Int64, object: Int64, exhausted: Bool) {
        let mine = exhausted ? UInt128.max : Self.word(key: key, object: object)
        entries[i] = mine
        var w = Int32(i)
        var we = mine
        var node = (leaves + i) >> 1
        while node > 0 {
            let t = nodes[node]
            let te = entries[Int(t)]
            let lose = te < we
            nodes[node] = lose ? w : t
            w = lose ? t : w
            we = lose ? te : we
            node >>= 1
        }
        nodes[0] = w
    }
}
