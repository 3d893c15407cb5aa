import Foundation
import GRDB
import LetheCore
import LetheCatalog

// Derived index entries (issue 12, "no second scan"): an object rewritten without some of its
// records keeps its postings as they were written; its `objects` row gains `dropped`, the ordinals
// (in the postings' numbering) dropped since, and every read of its postings remaps their rows
// through it. Writing the new version's entries costs one row update instead of a B-tree seek per
// key. See docs/state.md, "Derived objects".

extension SQLiteStateStore {
    /// A derived object is compacted (its postings rewritten, `dropped` cleared) once its dropped
    /// list holds more than `compactionOrdinals` ordinals — 16,384, or for an object of more than
    /// a million records 1/64 of them, at most 65,536 (bounds what every read of its postings
    /// decodes, without rewriting millions of postings for a batch that dropped a few percent) —
    /// or at least `compactionMinimum` ordinals and more than `1/compactionFraction` of the records
    /// its postings number (bounds the dead postings and rows it carries).
    static func compactionOrdinals(records: Int64) -> Int { Int(min(65_536, max(16_384, records / 64))) }
    static let compactionFraction: Int64 = 4
    static let compactionMinimum = 64

    /// Whether a dropped list of `dropped` ordinals over postings numbering `records` records is compacted.
    static func needsCompaction(dropped: Int, records: Int64) -> Bool {
        dropped > compactionOrdinals(records: records) || (dropped >= compactionMinimum && Int64(dropped) * compactionFraction > records)
    }

    /// `SubjectIndexWriter.putDerivedObject` (inside a write transaction); with `oldKey`, the
    /// object row of `oldKey` becomes `object.key`'s (same id: its postings stay joined to it).
    static func putDerived(
        _ db: Database, _ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String? = nil, path: String,
        segmentMinimum: Int = PostingSegment.minimumPostings
    ) throws -> IndexedObject? {
        if let oldKey {
            guard oldKey != object.key else { return nil }
            let taken = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM objects WHERE dataset = ? AND key = ?"), arguments: [object.dataset, object.key])
            guard taken == nil else { return nil }
        }
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT id, version, status, records, dropped, postings, buckets, segment FROM objects WHERE dataset = ? AND key = ?"),
                arguments: [object.dataset, oldKey ?? object.key])
        else { return nil }
        let id: Int64 = row[0]
        let records: Int64 = row[3]
        guard (row[1] as String) == version, (row[2] as String) == IndexedObject.Status.indexed.rawValue else { return nil }
        // The new ordinals, in the current numbering: each within the old version's records.
        guard let current = PostingCodec.normalizedRows(dropped), current.last.map({ $0 < records }) ?? true else { return nil }
        guard object.records == records - Int64(current.count) else { return nil }
        let earlier = try decodeDropped(row[4], object: id, path: path)
        let all = Self.merge(earlier, Self.lift(current, through: earlier))
        var stored = object
        stored.id = id
        stored.status = .indexed
        stored.issue = nil
        stored.issueCode = nil
        if needsCompaction(dropped: all.count, records: records + Int64(earlier.count)) {
            let postings = try derivedPostings(db, object: id, buckets: row[6], segment: row[7], dropped: all, path: path)
            // Renamed first: the compacted entry replaces this row (by its new key), not a new one beside it.
            if oldKey != nil { try db.execute(sql: "UPDATE objects SET key = ? WHERE id = ?", arguments: [stored.key, id]) }
            return try storeIndexed(db, try encodePostings([(stored, postings)]), path: path, segmentMinimum: segmentMinimum)[0]
        }
        // Statements prepared once a connection (a run derives an entry for each file it rewrote).
        try db.cachedStatement(
            sql: """
                UPDATE objects SET key = ?, size = ?, mtime = ?, version = ?, records = ?, status = ?, issue = NULL, issue_code = NULL,
                    indexed_at = ?, dropped = ?
                WHERE id = ?
                """
        ).execute(
            arguments: [
                stored.key, stored.size, stored.modifiedNanos, stored.version, stored.records, stored.status.rawValue, stored.indexedAt,
                all.isEmpty ? nil : Data(PostingCodec.encodeRows(all)), id,
            ])
        return stored
    }

    /// The postings of object `id` as its readers see them (rows remapped through `dropped`, empty
    /// ones left out), read through its bucket list.
    static func derivedPostings(
        _ db: Database, object id: Int64, buckets: Data?, segment: Int64?, dropped: [Int64], path: String
    ) throws -> [Int64: [Int64]] {
        if let segment {
            var out: [Int64: [Int64]] = [:]
            for (k, rows) in try segmentPostings(db, object: id, segment: segment, buckets: buckets, path: path) {
                let kept = Self.remap(rows, dropped: dropped)
                if !kept.isEmpty { out[k] = kept }
            }
            return out
        }
        guard let buckets, !buckets.isEmpty else { return [:] }
        let ranges: [ClosedRange<Int64>]
        do {
            ranges = try PostingCodec.decodeBuckets(buckets)
        } catch let e as LetheError {
            throw LetheError(.corrupt, "key buckets of object \(id): \(e.message)", at: path)
        }
        var out: [Int64: [Int64]] = [:]
        let select = try db.cachedStatement(sql: "SELECT k, rows FROM postings WHERE k BETWEEN ? AND ? AND object = ?")
        for r in ranges {
            let rows = try Row.fetchCursor(select, arguments: [r.lowerBound, r.upperBound, id])
            while let row = try rows.next() {
                let k: Int64 = row[0]
                let decoded: [Int64]
                do {
                    decoded = try row.withUnsafeData(atIndex: 1) { try PostingCodec.decodeRows($0 ?? Data()) }
                } catch let e as LetheError {
                    throw LetheError(.corrupt, "postings of object \(id): \(e.message)", at: path)
                }
                let kept = Self.remap(decoded, dropped: dropped)
                if !kept.isEmpty { out[k] = kept }
            }
        }
        return out
    }

    /// Compacts every derived object (rewrites its postings, clears `dropped`); returns how many.
    static func compactDerived(_ db: Database, path: String, segmentMinimum: Int = PostingSegment.minimumPostings) throws -> Int {
        let ids = try Int64.fetchAll(db, sql: "SELECT id FROM objects WHERE dropped IS NOT NULL AND status = 'indexed' ORDER BY id")
        // Each row read when its turn comes: compacting one may merge segments, moving the others' postings.
        let select = try db.cachedStatement(sql: "SELECT \(objectColumns), dropped, buckets, segment FROM objects WHERE id = ?")
        for id in ids {
            guard let row = try Row.fetchOne(select, arguments: [id]) else { continue }
            let object = try Self.object(row, at: path)
            let dropped = try decodeDropped(row[11], object: object.id, path: path)
            let postings = try derivedPostings(db, object: object.id, buckets: row[12], segment: row[13], dropped: dropped, path: path)
            _ = try storeIndexed(db, try encodePostings([(object, postings)]), path: path, segmentMinimum: segmentMinimum)
        }
        return ids.count
    }

    /// The ordinals of a `dropped` column (empty for NULL).
    static func decodeDropped(_ blob: Data?, object id: Int64, path: String) throws -> [Int64] {
        guard let blob, !blob.isEmpty else { return [] }
        do {
            return try PostingCodec.decodeRows(blob)
        } catch let e as LetheError {
            throw LetheError(.corrupt, "dropped rows of object \(id): \(e.message)", at: path)
        }
    }

    // MARK: Ordinal arithmetic (pure)

    /// `rows` (ascending) with every ordinal of `dropped` (ascending) removed and the others
    /// shifted down by the number of dropped ordinals before them.
    static func remap(_ rows: [Int64], dropped: [Int64]) -> [Int64] {
        guard !dropped.isEmpty else { return rows }
        var out: [Int64] = []
        out.reserveCapacity(rows.count)
        var j = 0
        for r in rows {
            while j < dropped.count && dropped[j] < r { j += 1 }
            if j < dropped.count && dropped[j] == r { continue }
            out.append(r - Int64(j))
        }
        return out
    }

    /// Ordinals of the current numbering (ascending) in the numbering before `earlier` (ascending)
    /// was dropped: the `c`-th surviving ordinal for each `c`.
    static func lift(_ current: [Int64], through earlier: [Int64]) -> [Int64] {
        guard !earlier.isEmpty else { return current }
        var out: [Int64] = []
        out.reserveCapacity(current.count)
        var j = 0
        for c in current {
            var original = c + Int64(j)
            while j < earlier.count && earlier[j] <= original {
                j += 1
                original += 1
            }
            out.append(original)
        }
        return out
    }

    /// The union of two ascending lists without common values, ascending.
    static func merge(_ a: [Int64], _ b: [Int64]) -> [Int64] {
        guard !a.isEmpty else { return b }
        guard !b.isEmpty else { return a }
        var out: [Int64] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] < b[j]) {
                out.append(a[i])
                i += 1
            } else {
                out.append(b[j])
                j += 1
            }
        }
        return out
    }
}
