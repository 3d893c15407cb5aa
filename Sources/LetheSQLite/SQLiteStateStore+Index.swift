import Foundation
import GRDB
import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    // MARK: Subject index

    static let objectColumns = "id, dataset, key, size, mtime, version, records, status, issue, indexed_at, issue_code"
    static let objectColumnCount = objectColumns.split(separator: ",").count

    /// Decodes `objectColumns` starting at column `base`.
    static func object(_ row: Row, base: Int = 0, at path: String) throws -> IndexedObject {
        let statusText: String = row[base + 7]
        guard let status = IndexedObject.Status(rawValue: statusText) else {
            throw LetheError(.corrupt, "object \(row[base] as Int64) has unknown status \(statusText)", at: path)
        }
        return IndexedObject(
            id: row[base], dataset: row[base + 1], key: row[base + 2], size: row[base + 3],
            modifiedNanos: row[base + 4], version: row[base + 5], records: row[base + 6],
            status: status, issue: row[base + 8], issueCode: row[base + 10], indexedAt: row[base + 9])
    }

    public func objects(dataset: String) async throws -> [IndexedObject] {
        let path = databasePath
        return try await read("cannot list the objects of dataset \(dataset)") { db in
            // Decoded from the cursor's rows (no copied `Row` per object): a 5,000-file table's verification lists them all.
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT \(Self.objectColumns) FROM objects WHERE dataset = ? ORDER BY key"), arguments: [dataset])
            var out: [IndexedObject] = []
            while let row = try rows.next() { out.append(try Self.object(row, at: path)) }
            return out
        }
    }

    public func quarantinedObjects() async throws -> [IndexedObject] {
        let path = databasePath
        return try await read("cannot list quarantined objects") { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.objectColumns) FROM objects WHERE status = 'quarantined' ORDER BY dataset, key"))
                .map { try Self.object($0, at: path) }
        }
    }

    public func datasetsWithObjects() async throws -> Set<String> {
        try await read("cannot list indexed datasets") { db in
            Set(try String.fetchAll(db.cachedStatement(sql: "SELECT DISTINCT dataset FROM objects")))
        }
    }

    @discardableResult
    public func putIndexedObject(_ object: IndexedObject, postings: [Int64: [Int64]]) async throws -> IndexedObject {
        try await putIndexedObjects([(object, postings)])[0]
    }

    @discardableResult
    public func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) async throws -> [IndexedObject] {
        guard !batch.isEmpty else { return [] }
        return try await put(try Self.encodePostings(batch), batch.map(\.0))
    }

    @discardableResult
    public func putIndexedObjects(flat batch: [(IndexedObject, PostingList)]) async throws -> [IndexedObject] {
        guard !batch.isEmpty else { return [] }
        return try await put(try batch.map { try Self.encode($0.0, $0.1) }, batch.map(\.0))
    }

    /// Writes encoded objects in one transaction (encoded outside it: the write lock is held only for SQL).
    private func put(_ work: [EncodedObject], _ objects: [IndexedObject]) async throws -> [IndexedObject] {
        let path = databasePath, segmentMinimum = self.segmentMinimum
        let what = objects.count == 1 ? "cannot index object \(objects[0].key) of dataset \(objects[0].dataset)" : "cannot index \(objects.count) objects"
        return try await write(what) { db in try Self.storeIndexed(db, work, path: path, segmentMinimum: segmentMinimum) }
    }

    /// An object to index with its postings encoded: its distinct keys ascending, each key's rows
    /// (`PostingCodec.encodeRows`) end to end in `rows` (key `i`'s end at `ends[i]`), and its key buckets.
    struct EncodedObject: Sendable {
        var object: IndexedObject
        var keys: [Int64] = []
        var rows: [UInt8] = []
        var ends: [Int] = []
        var buckets = Data()
        func start(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }
    }

    static func encodePostings(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [EncodedObject] {
        try batch.map { try encode($0.0, PostingList($0.1)) }
    }

    /// One object's postings encoded in one pass over its sorted pairs.
    static func encode(_ object: IndexedObject, _ list: PostingList) throws -> EncodedObject {
        var list = list
        list.sort()
        var stored = object
        stored.status = .indexed
        stored.issue = nil
        stored.issueCode = nil
        var e = EncodedObject(object: stored)
        try list.pairs.withUnsafeBufferPointer { p in
            e.keys.reserveCapacity(p.count)
            e.ends.reserveCapacity(p.count)
            e.rows.reserveCapacity(p.count * 2)
            var i = 0
            while i < p.count {
                let k = p[i].key
                var previous: Int64 = -1
                while i < p.count && p[i].key == k {
                    let r = p[i].row
                    guard r > previous else {
                        throw LetheError.badInput("negative row ordinal in the postings of \(object.key)", at: object.dataset)
                    }
                    PostingCodec.appendVarint(UInt64(r - previous - 1), to: &e.rows)
                    previous = r
                    i += 1
                }
                e.keys.append(k)
                e.ends.append(e.rows.count)
            }
        }
        e.buckets = Data(PostingCodec.encodeBuckets(e.keys))
        return e
    }

    static func storeIndexed(
        _ db: Database, _ work: [EncodedObject], path: String, segmentMinimum: Int = PostingSegment.minimumPostings
    ) throws -> [IndexedObject] {
        var results: [IndexedObject] = []
        let total = work.reduce(0) { $0 + $1.keys.count }
        // Many postings: one sorted segment (a row per block of entries); few: a B-tree row per key.
        let segment: Int64? = total > 0 && total >= segmentMinimum ? try newSegment(db) : nil
        var ids: [Int64] = []
        for p in work {
            let id = try Self.upsertObject(
                db, p.object, postings: Int64(p.keys.count), buckets: p.buckets, segment: p.keys.isEmpty ? nil : segment, path: path)
            var r = p.object
            r.id = id
            results.append(r)
            ids.append(id)
        }
        if let segment {
            try writeSegment(db, segment, work, ids: ids)
            try mergeTiers(db, path: path)
            return results
        }
        var rows: [(k: Int64, id: Int64, object: Int, i: Int)] = []
        rows.reserveCapacity(total)
        for (o, p) in work.enumerated() {
            for (i, k) in p.keys.enumerated() { rows.append((k, ids[o], o, i)) }
        }
        // In key order: neighbouring inserts land on the same B-tree pages.
        rows.sort { $0.k < $1.k || ($0.k == $1.k && $0.id < $1.id) }
        let insert = try db.cachedStatement(sql: "INSERT INTO postings(k, object, rows) VALUES (?, ?, ?)")
        for r in rows {
            let p = work[r.object]
            try insert.execute(arguments: [r.k, r.id, Data(p.rows[p.start(r.i)..<p.ends[r.i]])])
        }
        return results
    }

    static func quarantine(_ db: Database, _ object: IndexedObject, path: String) throws -> IndexedObject {
        var stored = object
        stored.status = .quarantined
        stored.id = try Self.upsertObject(db, stored, postings: 0, buckets: nil, segment: nil, path: path)
        return stored
    }

    static func removeObjects(_ db: Database, dataset: String, keys: [String], path: String) throws {
        let find = try db.cachedStatement(sql: "SELECT id, buckets, postings, segment FROM objects WHERE dataset = ? AND key = ?")
        for key in keys {
            guard let row = try Row.fetchOne(find, arguments: [dataset, key]) else { continue }
            try retirePostings(db, object: row[0], buckets: row[1], postings: row[2], segment: row[3], path: path)
            try db.execute(sql: "DELETE FROM objects WHERE id = ?", arguments: [row[0] as Int64])
        }
    }

    /// Objects with more postings than this leave their postings for `purgeDeadPostings`:
    /// deleting them one key at a time costs a B-tree seek per distinct subject.
    static let deferredPostings: Int64 = 20_000

    /// Deletes an object's postings now, or for a large object or one whose postings are in a
    /// segment records it as dead (its postings, no longer joined to any object, are invisible to
    /// `locate`; a segment's dead entries go when it is merged).
    static func retirePostings(_ db: Database, object id: Int64, buckets: Data?, postings: Int64, segment: Int64?, path: String) throws {
        if postings > deferredPostings || segment != nil {
            try db.execute(sql: "INSERT INTO dead_objects(id, postings, buckets) VALUES (?, ?, ?)", arguments: [id, postings, buckets])
        } else {
            try deletePostings(db, object: id, buckets: buckets, path: path)
        }
    }

    /// Deletes the postings of dead objects in one pass over the postings table; returns
    /// how many objects were purged. `index` calls it when dead postings outweigh a quarter
    /// of the live ones. With `force`, also compacts every derived object (see `putDerived`).
    static func purgeDeadPostings(
        _ db: Database, force: Bool, path: String, segmentMinimum: Int = PostingSegment.minimumPostings
    ) throws -> Int {
        if force { _ = try compactDerived(db, path: path, segmentMinimum: segmentMinimum) }
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT (SELECT count(*) FROM dead_objects), (SELECT coalesce(sum(postings), 0) FROM dead_objects),
                           (SELECT coalesce(sum(postings), 0) FROM objects)
                    """)
        else { return 0 }
        let objects: Int = row[0], dead: Int64 = row[1], live: Int64 = row[2]
        guard objects > 0, force || dead * 4 >= live else {
            try consolidateSegments(db)
            return 0
        }
        // Segments first: their dead entries go by a merge of all of them (before the dead ids may be reused).
        let segments = try Int64.fetchAll(db, sql: "SELECT id FROM segments ORDER BY id")
        if !segments.isEmpty { _ = try mergeSegments(db, segments) }
        try db.execute(sql: "DELETE FROM postings WHERE object IN (SELECT id FROM dead_objects)")
        try db.execute(sql: "DELETE FROM dead_objects")
        return objects
    }

    /// At the end of an index pass (the writer is idle): merges every segment into one when the
    /// segments besides the largest hold at least an eighth of its entries. A backfill, which leaves
    /// one segment a tier or more, ends with one segment, so `locate` reads one block; small refreshes
    /// add segments that wait until they weigh enough, so an entry is rewritten a bounded number of
    /// times (each merge at least adds an eighth to the largest segment).
    static func consolidateSegments(_ db: Database) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT id, entries FROM segments ORDER BY id")
        guard rows.count >= 2 else { return }
        let sizes: [Int64] = rows.map { $0[1] }
        let largest = sizes.max() ?? 0
        let rest = sizes.reduce(0, +) - largest
        guard rest * Int64(consolidationRatio) >= largest else { return }
        _ = try mergeSegments(db, rows.map { $0[0] })
    }

    /// `consolidateSegments` merges when the segments besides the largest hold 1/ratio of its entries.
    static let consolidationRatio = 8

    public func locate(prefix: Int64, dataset: String?) async throws -> [Posting] {
        let path = databasePath
        // One subject (`locate`, the service's `POST /v1/locate`): read on the caller's thread, prepared statement cached.
        return try readNow("cannot look up the subject index") { db, cache in
            try Self.locate(db, prefix: prefix, dataset: dataset, at: path, cache: cache)
        }
    }

    /// Many prefixes in one read transaction, in ascending order (one prepared statement).
    public func locate(prefixes: [Int64], dataset: String?) async throws -> [Int64: [Posting]] {
        let sorted = Set(prefixes).sorted()
        guard !sorted.isEmpty else { return [:] }
        let path = databasePath
        return try await read("cannot look up the subject index") { db in
            var out: [Int64: [Posting]] = [:]
            var dropped = DroppedCache()
            // One statement per `locateBatch` prefixes (`k IN (…)`), not one cursor per prefix.
            var start = 0
            while start < sorted.count {
                let chunk = sorted[start..<min(start + Self.locateBatch, sorted.count)]
                start += chunk.count
                let marks = chunk.count == Self.locateBatch ? Self.locateBatchMarks : Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                let sql = """
                    SELECT p.k, p.rows, \(Self.locateObjectColumns)
                    FROM postings p JOIN objects o ON o.id = p.object
                    WHERE p.k IN (\(marks))\(dataset == nil ? "" : " AND o.dataset = ?")
                    ORDER BY p.k, o.dataset, o.key
                    """
                var arguments = StatementArguments(Array(chunk))
                if let dataset { arguments += [dataset] }
                let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
                while let row = try rows.next() {
                    let k: Int64 = row[0]
                    if let p = try Self.posting(row, base: 1, at: path, dropped: &dropped) { out[k, default: []].append(p) }
                }
            }
            // Segments: each one's blocks met in ascending key order, each read once.
            var touched = Set<Int64>()
            var found: [SegmentEntry] = []
            for segment in try Self.segmentIDs(db) {
                var cursor = BlockCursor()
                for k in sorted {
                    guard let block = try cursor.block(db, segment: segment, for: k) else { break }
                    for e in try Self.entries(of: k, in: block, path: path) {
                        found.append(SegmentEntry(key: k, segment: segment, object: e.object, rows: e.rows))
                    }
                }
            }
            try Self.livePostings(db, found, dataset: dataset, path: path, dropped: &dropped) { e, p in
                out[e.key, default: []].append(p)
                touched.insert(e.key)
            }
            for k in touched { Self.sortPostings(&out[k]!) }
            return out
        }
    }

    /// How many prefixes one statement of `locate(prefixes:)` looks up.
    static let locateBatch = 500
    static let locateBatchMarks = Array(repeating: "?", count: locateBatch).joined(separator: ", ")

    /// The object columns `locate` reads after a posting's `rows`: `objectColumns`, then `dropped`.
    static let locateObjectColumns = "o." + (objectColumns + ", dropped").replacingOccurrences(of: ", ", with: ", o.")

    /// Decoded `dropped` lists of the derived objects one `locate` met, by object id.
    typealias DroppedCache = [Int64: [Int64]]

    /// A posting from a row holding its `rows` blob at `base` and `locateObjectColumns` after it;
    /// a derived object's rows are remapped through its dropped ordinals (nil when none is left).
    static func posting(_ row: Row, base: Int, at path: String, dropped cache: inout DroppedCache) throws -> Posting? {
        let decoded: [Int64]
        do {
            decoded = try row.withUnsafeData(atIndex: base) { data in
                try PostingCodec.decodeRows(data ?? Data())
            }
        } catch let e as LetheError {
            let object = try Self.object(row, base: base + 1, at: path)
            throw LetheError(.corrupt, "postings of object \(object.key): \(e.message)", at: path)
        }
        return try posting(rows: decoded, row, base: base + 1, at: path, dropped: &cache)
    }

    /// A posting of decoded `rows` whose object is the row's `locateObjectColumns` from `base` on.
    static func posting(rows: [Int64], _ row: Row, base: Int, at path: String, dropped cache: inout DroppedCache) throws -> Posting? {
        let object = try Self.object(row, base: base, at: path)
        var decoded = rows
        let droppedIndex = base + objectColumnCount
        if !row.hasNull(atIndex: droppedIndex) {
            let dropped: [Int64]
            if let known = cache[object.id] {
                dropped = known
            } else {
                dropped = try decodeDropped(row[droppedIndex], object: object.id, path: path)
                cache[object.id] = dropped
            }
            decoded = remap(decoded, dropped: dropped)
            if decoded.isEmpty { return nil }
        }
        return Posting(object: object, rows: decoded)
    }

    /// `locate`'s statement, for any dataset and for one (built once: a batch looks up 100,000 prefixes).
    static let locateSQL = (
        any: locateSQL(oneDataset: false), one: locateSQL(oneDataset: true)
    )
    static func locateSQL(oneDataset: Bool) -> String {
        """
        SELECT p.rows, \(Self.locateObjectColumns)
        FROM postings p JOIN objects o ON o.id = p.object
        WHERE p.k = ?\(oneDataset ? " AND o.dataset = ?" : "")
        ORDER BY o.dataset, o.key
        """
    }

    /// `cache`: the connection's `HotCache` (the segment list and the segments' objects kept between reads).
    static func locate(_ db: Database, prefix: Int64, dataset: String?, at path: String, cache: HotCache? = nil) throws -> [Posting] {
        let sql = dataset == nil ? locateSQL.any : locateSQL.one
        let arguments: StatementArguments = dataset.map { [prefix, $0] } ?? [prefix]
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        var out: [Posting] = []
        var dropped = DroppedCache()
        while let row = try rows.next() {
            if let p = try Self.posting(row, base: 0, at: path, dropped: &dropped) { out.append(p) }
        }
        let segmented = try segmentPostings(db, prefix: prefix, dataset: dataset, path: path, dropped: &dropped, cache: cache)
        if !segmented.isEmpty {
            out += segmented
            sortPostings(&out)
        }
        return out
    }

    public func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64) {
        let counts = try await read("cannot count the subject index") { db -> [Int64] in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*), coalesce(sum(status = 'quarantined'), 0), coalesce(sum(postings), 0) FROM objects
                    """)
            return [row?[0] ?? 0, row?[1] ?? 0, row?[2] ?? 0]
        }
        return (counts[0], counts[1], counts[2])
    }

    // MARK: Helpers (inside a write transaction)

    /// Inserts or updates the object row by (dataset, key); an existing object's
    /// postings are deleted first. Returns the object id.
    /// `segment`: the segment the new postings are written to (nil: the `postings` table).
    static func upsertObject(_ db: Database, _ o: IndexedObject, postings: Int64, buckets: Data?, segment: Int64?, path: String) throws -> Int64 {
        let existing = try db.cachedStatement(sql: "SELECT id, buckets, postings, segment FROM objects WHERE dataset = ? AND key = ?")
        if let existing = try Row.fetchOne(existing, arguments: [o.dataset, o.key]) {
            let id: Int64 = existing[0]
            let old: Int64 = existing[2]
            let oldSegment: Int64? = existing[3]
            if old > deferredPostings || oldSegment != nil {
                // A large object (or one in a segment) indexed anew gets a new id; the old postings are dead.
                try retirePostings(db, object: id, buckets: existing[1], postings: old, segment: oldSegment, path: path)
                try db.execute(sql: "DELETE FROM objects WHERE id = ?", arguments: [id])
                return try insertObject(db, o, postings: postings, buckets: buckets, segment: segment)
            }
            try deletePostings(db, object: id, buckets: existing[1], path: path)
            try db.execute(
                sql: """
                    UPDATE objects SET size = ?, mtime = ?, version = ?, records = ?, status = ?, issue = ?,
                        indexed_at = ?, postings = ?, buckets = ?, issue_code = ?, dropped = NULL, segment = ?
                    WHERE id = ?
                    """,
                arguments: [
                    o.size, o.modifiedNanos, o.version, o.records, o.status.rawValue, o.issue,
                    o.indexedAt, postings, buckets, o.issueCode, segment, id,
                ])
            return id
        }
        return try insertObject(db, o, postings: postings, buckets: buckets, segment: segment)
    }

    /// Inserts an object under an id no dead object holds (dead postings must never join a new object).
    static func insertObject(_ db: Database, _ o: IndexedObject, postings: Int64, buckets: Data?, segment: Int64?) throws -> Int64 {
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO objects(id, dataset, key, size, mtime, version, records, status, issue, indexed_at, postings, buckets, issue_code, segment)
                VALUES (max(coalesce((SELECT max(id) FROM objects), 0), coalesce((SELECT max(id) FROM dead_objects), 0)) + 1,
                        ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        try insert.execute(arguments: [
            o.dataset, o.key, o.size, o.modifiedNanos, o.version, o.records, o.status.rawValue,
            o.issue, o.indexedAt, postings, buckets, o.issueCode, segment,
        ])
        return db.lastInsertedRowID
    }

    /// Deletes one object's postings through its bucket list: one primary-key range per bucket.
    static func deletePostings(_ db: Database, object id: Int64, buckets: Data?, path: String) throws {
        guard let buckets, !buckets.isEmpty else { return }
        let ranges: [ClosedRange<Int64>]
        do {
            ranges = try PostingCodec.decodeBuckets(buckets)
        } catch let e as LetheError {
            throw LetheError(.corrupt, "key buckets of object \(id): \(e.message)", at: path)
        }
        let delete = try db.cachedStatement(sql: "DELETE FROM postings WHERE k BETWEEN ? AND ? AND object = ?")
        for r in ranges {
            try delete.execute(arguments: [r.lowerBound, r.upperBound, id])
        }
    }
}
