import Foundation
public import LetheCatalog
import LetheCore
import NIOCore
import PostgresNIO

// The subject index: `objects` (one row per object, with the sorted list of key prefixes it has
// postings under, so its postings are deleted by primary key without a second index) and
// `postings(k, object, rows)` whose `rows` are delta varints (`RowsCodec`). Postings are written
// in bulk: one `INSERT … SELECT FROM unnest(…)` per batch, never a round trip per posting.

extension PostgresStateStore {
    static let objectColumns = "o.id, o.dataset, o.key, o.size, o.mtime, o.version, o.records, o.status, o.issue, o.indexed_at, o.issue_code"

    static func object(_ r: PGRow, base: Int = 0) throws -> IndexedObject {
        let statusText = try r.str(base + 7)
        guard let status = IndexedObject.Status(rawValue: statusText) else {
            throw LetheError(.corrupt, "object \(try r.int(base)) has unknown status \(statusText)")
        }
        return IndexedObject(
            id: try r.int(base), dataset: try r.str(base + 1), key: try r.str(base + 2), size: try r.int(base + 3),
            modifiedNanos: try r.int(base + 4), version: try r.str(base + 5), records: try r.int(base + 6), status: status,
            issue: try r.optStr(base + 8), issueCode: try r.optStr(base + 10), indexedAt: try r.int(base + 9))
    }

    public func objects(dataset: String) async throws -> [IndexedObject] {
        try await read("cannot list the objects of dataset \(dataset)") { s in
            try s.query(.sql("SELECT \(Self.objectColumns) FROM objects o WHERE o.dataset = $1 ORDER BY o.key") { $0.append(dataset) })
                .rows.map { try Self.object(PGRow($0)) }
        }
    }

    public func quarantinedObjects() async throws -> [IndexedObject] {
        try await read("cannot list quarantined objects") { s in
            try s.query("SELECT \(unescaped: Self.objectColumns) FROM objects o WHERE o.status = 'quarantined' ORDER BY o.dataset, o.key")
                .rows.map { try Self.object(PGRow($0)) }
        }
    }

    public func datasetsWithObjects() async throws -> Set<String> {
        try await read("cannot list indexed datasets") { s in
            Set(try s.query("SELECT DISTINCT dataset FROM objects").rows.map { try PGRow($0).str(0) })
        }
    }

    public func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64) {
        try await read("cannot count the subject index") { s in
            let r = PGRow(
                try s.query(
                    """
                    SELECT count(*)::bigint, (count(*) FILTER (WHERE status = 'quarantined'))::bigint, coalesce(sum(postings), 0)::bigint FROM objects
                    """
                ).rows[0])
            return (try r.int(0), try r.int(1), try r.int(2))
        }
    }

    public func locate(prefix: Int64, dataset: String?) async throws -> [Posting] {
        try await locate(prefixes: [prefix], dataset: dataset)[prefix] ?? []
    }

    /// Many prefixes, `locateBatch` a statement (`k = ANY($1)`), in (prefix, dataset, key) order.
    public func locate(prefixes: [Int64], dataset: String?) async throws -> [Int64: [Posting]] {
        let sorted = Set(prefixes).sorted()
        guard !sorted.isEmpty else { return [:] }
        return try await read("cannot look up the subject index", consistent: sorted.count > Self.locateBatch) { s in
            var out: [Int64: [Posting]] = [:]
            var start = 0
            while start < sorted.count {
                let chunk = Array(sorted[start..<min(start + Self.locateBatch, sorted.count)])
                start += chunk.count
                let q = PostgresQuery.sql(
                    """
                    SELECT p.k, p.rows, \(Self.objectColumns) FROM postings p JOIN objects o ON o.id = p.object
                    WHERE p.k = ANY($1)\(dataset == nil ? "" : " AND o.dataset = $2") ORDER BY p.k, o.dataset, o.key
                    """
                ) { b in
                    b.append(chunk)
                    if let dataset { b.append(dataset) }
                }
                for row in try s.query(q).rows {
                    let r = PGRow(row)
                    let object = try Self.object(r, base: 2)
                    let rows: [Int64]
                    do {
                        rows = try RowsCodec.decode(r.bytes(1) ?? [])
                    } catch let e as LetheError {
                        throw LetheError(.corrupt, "postings of object \(object.key): \(e.message)")
                    }
                    out[try r.int(0), default: []].append(Posting(object: object, rows: rows))
                }
            }
            return out
        }
    }

    static let locateBatch = 5_000

    public func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)] {
        guard !refs.isEmpty else { return [:] }
        let ids = Array(Set(refs))
        let found = try await read("cannot read object names") { s -> [(Int64, String, String)] in
            try s.query(.sql("SELECT id, dataset, key FROM object_names WHERE id = ANY($1)") { $0.append(ids) }).rows.map {
                let r = PGRow($0)
                return (try r.int(0), try r.str(1), try r.str(2))
            }
        }
        var out: [Int64: (dataset: String, key: String)] = [:]
        for (id, d, k) in found { out[id] = (d, k) }
        return out
    }

    // MARK: Inside a transaction

    /// Postings ready to store: rows normalised and encoded, keys ascending.
    typealias EncodedObject = (object: IndexedObject, keys: [Int64], rows: [[UInt8]])

    static func encode(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [EncodedObject] {
        try batch.map { object, postings in
            var keys: [Int64] = []
            var rows: [[UInt8]] = []
            for k in postings.keys.sorted() {
                guard let list = postings[k], !list.isEmpty else { continue }
                guard let normal = RowsCodec.normalized(list) else {
                    throw LetheError.badInput("negative row ordinal in the postings of \(object.key)", at: object.dataset)
                }
                keys.append(k)
                rows.append(RowsCodec.encode(normal))
            }
            var stored = object
            stored.status = .indexed
            stored.issue = nil
            stored.issueCode = nil
            return (stored, keys, rows)
        }
    }

    /// Deletes the postings of these objects (by dataset and key) through their key lists.
    static func deletePostings(_ s: PGSession, dataset: String, keys: [String]) throws {
        try s.exec(
            .sql(
                """
                DELETE FROM postings p USING (
                    SELECT o.id, unnest(o.keys) AS k FROM objects o WHERE o.dataset = $1 AND o.key = ANY($2)
                ) g WHERE p.k = g.k AND p.object = g.id
                """
            ) {
                $0.append(dataset); $0.append(keys)
            })
    }

    /// Upserts an object row by (dataset, key) with its key list; returns its id.
    static func upsertObject(_ s: PGSession, _ o: IndexedObject, keys: [Int64]?) throws -> Int64 {
        let q = PostgresQuery.sql(
            """
            INSERT INTO objects(dataset, key, size, mtime, version, records, status, issue, issue_code, indexed_at, postings, keys)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (dataset, key) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, version = excluded.version,
                records = excluded.records, status = excluded.status, issue = excluded.issue, issue_code = excluded.issue_code,
                indexed_at = excluded.indexed_at, postings = excluded.postings, keys = excluded.keys
            RETURNING id
            """
        ) { b in
            b.append(o.dataset); b.append(o.key); b.append(o.size); b.append(o.modifiedNanos); b.append(o.version)
            b.append(o.records); b.append(o.status.rawValue); b.append(o.issue); b.append(o.issueCode); b.append(o.indexedAt)
            b.append(Int64(keys?.count ?? 0)); b.append(keys)
        }
        return try PGRow(s.query(q).rows[0]).int(0)
    }

    static func storeIndexed(_ s: PGSession, _ work: [EncodedObject]) throws -> [IndexedObject] {
        guard !work.isEmpty else { return [] }
        var byDataset: [String: [String]] = [:]
        for w in work { byDataset[w.object.dataset, default: []].append(w.object.key) }
        for (d, keys) in byDataset { try deletePostings(s, dataset: d, keys: keys) }
        var results: [IndexedObject] = []
        var ks: [Int64] = [], ids: [Int64] = [], rows: [ByteBuffer] = []
        for w in work {
            let id = try upsertObject(s, w.object, keys: w.keys)
            var r = w.object
            r.id = id
            results.append(r)
            for (k, blob) in zip(w.keys, w.rows) {
                ks.append(k)
                ids.append(id)
                rows.append(ByteBuffer(bytes: blob))
            }
        }
        try insertPostings(s, ks, ids, rows)
        return results
    }

    /// One statement per `postingBatch` postings.
    static func insertPostings(_ s: PGSession, _ ks: [Int64], _ ids: [Int64], _ rows: [ByteBuffer]) throws {
        var start = 0
        while start < ks.count {
            let end = min(start + postingBatch, ks.count)
            let (a, b, c) = (Array(ks[start..<end]), Array(ids[start..<end]), Array(rows[start..<end]))
            try s.exec(
                .sql("INSERT INTO postings(k, object, rows) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])") {
                    $0.append(a); $0.append(b); $0.append(c)
                })
            start = end
        }
    }

    static let postingBatch = 50_000

    static func quarantine(_ s: PGSession, _ object: IndexedObject) throws -> IndexedObject {
        try deletePostings(s, dataset: object.dataset, keys: [object.key])
        var stored = object
        stored.status = .quarantined
        stored.id = try upsertObject(s, stored, keys: nil)
        return stored
    }

    static func removeObjects(_ s: PGSession, dataset: String, keys: [String]) throws {
        guard !keys.isEmpty else { return }
        try s.exec(
            .sql(
                """
                WITH gone AS (DELETE FROM objects WHERE dataset = $1 AND key = ANY($2) RETURNING id, keys)
                DELETE FROM postings p USING (SELECT id, unnest(keys) AS k FROM gone) g WHERE p.k = g.k AND p.object = g.id
                """
            ) {
                $0.append(dataset); $0.append(keys)
            })
    }

    static func objectRefs(_ s: PGSession, dataset: String, keys: [String]) throws -> [String: Int64] {
        let unique = Array(Set(keys))
        guard !unique.isEmpty else { return [:] }
        try s.exec(
            .sql("INSERT INTO object_names(dataset, key) SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT (dataset, key) DO NOTHING") {
                $0.append(dataset); $0.append(unique)
            })
        var out: [String: Int64] = [:]
        for row in try s.query(
            .sql("SELECT key, id FROM object_names WHERE dataset = $1 AND key = ANY($2)") {
                $0.append(dataset); $0.append(unique)
            }
        ).rows {
            let r = PGRow(row)
            out[try r.str(0)] = try r.int(1)
        }
        return out
    }

    /// `SubjectIndexWriter.putDerivedObject`: the postings held for `from` are read, derived
    /// (`PostingDerivation.derive`) and written back under the same object id, in the caller's transaction.
    static func putDerived(_ s: PGSession, _ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject? {
        guard
            let row = try s.query(
                .sql("SELECT id, version, status, records, keys FROM objects WHERE dataset = $1 AND key = $2 FOR UPDATE") {
                    $0.append(object.dataset); $0.append(object.key)
                }
            ).rows.first
        else { return nil }
        let r = PGRow(row)
        let id = try r.int(0)
        let records = try r.int(3)
        guard try r.str(1) == version, try r.str(2) == IndexedObject.Status.indexed.rawValue else { return nil }
        guard let current = RowsCodec.normalized(dropped), current.last.map({ $0 < records }) ?? true else { return nil }
        guard object.records == records - Int64(current.count) else { return nil }
        let keys = try r.ints(4) ?? []
        var old: [Int64: [Int64]] = [:]
        if !keys.isEmpty {
            for p in try s.query(
                .sql("SELECT k, rows FROM postings WHERE object = $1 AND k = ANY($2)") {
                    $0.append(id); $0.append(keys)
                }
            ).rows {
                let pr = PGRow(p)
                old[try pr.int(0)] = try RowsCodec.decode(pr.bytes(1) ?? [])
            }
        }
        var stored = object
        stored.id = id
        let new = current.isEmpty ? old : PostingDerivation.derive(old: old, dropped: current)
        return try storeIndexed(s, try encode([(stored, new)]))[0]
    }
}

extension PostgresStateStore {
    /// `SubjectIndexWriter.putDerivedObject(_:from:dropped:replacing:)`: the old key's row is
    /// renamed to the new key (its id, so its postings, kept), then derived as `putDerived` does;
    /// when that refuses, the rename is undone, all in the caller's transaction.
    static func putDerived(
        _ s: PGSession, _ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String
    ) throws -> IndexedObject? {
        guard oldKey != object.key else { return nil }
        let taken = try s.query(
            .sql("SELECT 1 FROM objects WHERE dataset = $1 AND key = $2") {
                $0.append(object.dataset); $0.append(object.key)
            }
        ).rows.first
        guard taken == nil else { return nil }
        let renamed = try s.exec(
            .sql("UPDATE objects SET key = $3 WHERE dataset = $1 AND key = $2 AND version = $4 AND status = $5") {
                $0.append(object.dataset); $0.append(oldKey); $0.append(object.key); $0.append(version)
                $0.append(IndexedObject.Status.indexed.rawValue)
            })
        guard renamed == 1 else { return nil }
        if let stored = try putDerived(s, object, from: version, dropped: dropped) { return stored }
        _ = try s.exec(
            .sql("UPDATE objects SET key = $2 WHERE dataset = $1 AND key = $3") {
                $0.append(object.dataset); $0.append(oldKey); $0.append(object.key)
            })
        return nil
    }
}

/// Row ordinals as delta varints: the first value as is, every later one as its distance to the
/// previous one minus one (ascending, distinct, non-negative ordinals).
enum RowsCodec {
    static func encode(_ rows: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rows.count + 2)
        var previous: Int64 = -1
        for r in rows {
            var v = UInt64(r - previous - 1)
            while v >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
            previous = r
        }
        return out
    }

    static func decode(_ bytes: [UInt8]) throws -> [Int64] {
        var out: [Int64] = []
        var previous: Int64 = -1
        var i = 0
        while i < bytes.count {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift <= 63 else { throw LetheError(.corrupt, "truncated or overlong varint") }
                let b = bytes[i]
                i += 1
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
            }
            guard value < UInt64(Int64.max), previous < Int64.max - Int64(value) - 1 else { throw LetheError(.corrupt, "posting rows overflow") }
            previous = previous + Int64(value) + 1
            out.append(previous)
        }
        return out
    }

    /// Sorted and de-duplicated; nil if one is negative.
    static func normalized(_ rows: [Int64]) -> [Int64]? {
        if rows.contains(where: { $0 < 0 }) { return nil }
        var out: [Int64] = []
        out.reserveCapacity(rows.count)
        for r in rows.sorted() where out.last != r { out.append(r) }
        return out
    }
}
