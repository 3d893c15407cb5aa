import Foundation
import GRDB
import LetheCore
public import LetheCatalog
import Synchronization

/// One SQLite write transaction seen through `StateTransaction`: one writer per capability, all on
/// the same connection inside `BEGIN IMMEDIATE`.
struct SQLiteTransaction: StateTransaction {
    let db: Database
    let path: String
    let auditKey: [UInt8]?
    let segmentMinimum: Int

    var index: any SubjectIndexWriter { SQLiteIndexWriter(db: db, path: path, segmentMinimum: segmentMinimum) }
    var requests: any RequestWriter { SQLiteRequestWriter(db: db, path: path) }
    var audit: any AuditWriter { SQLiteAuditWriter(db: db, auditKey: auditKey) }
    var journal: any JournalWriter { SQLiteJournalWriter(db: db) }
    var cursors: any CursorWriter { SQLiteCursorWriter(db: db) }
    var tokens: any TokenWriter { SQLiteTokenWriter(db: db, path: path) }
    var outbox: any OutboxWriter { SQLiteOutboxWriter(db: db) }
    var vault: any VaultKeyWriter { SQLiteVaultWriter(db: db) }

    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int {
        guard !bytes.isEmpty else { return 0 }
        return try SQLiteStateStore.purge(db, rawID: bytes, substring: substring, key: auditKey)
    }

    func purge(rawIDs: [[UInt8]]) throws -> Int {
        try SQLiteStateStore.purge(db, rawIDs: rawIDs, key: auditKey)
    }
}

struct SQLiteIndexWriter: SubjectIndexWriter {
    let db: Database
    let path: String
    let segmentMinimum: Int

    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [IndexedObject] {
        guard !batch.isEmpty else { return [] }
        return try SQLiteStateStore.storeIndexed(db, try SQLiteStateStore.encodePostings(batch), path: path, segmentMinimum: segmentMinimum)
    }
    func quarantine(_ object: IndexedObject) throws -> IndexedObject { try SQLiteStateStore.quarantine(db, object, path: path) }
    func removeObjects(dataset: String, keys: [String]) throws {
        try SQLiteStateStore.removeObjects(db, dataset: dataset, keys: keys, path: path)
    }
    func purgeDeadPostings(force: Bool) throws -> Int { try SQLiteStateStore.purgeDeadPostings(db, force: force, path: path, segmentMinimum: segmentMinimum) }
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject? {
        try SQLiteStateStore.putDerived(db, object, from: version, dropped: dropped, path: path, segmentMinimum: segmentMinimum)
    }
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String) throws -> IndexedObject? {
        try SQLiteStateStore.putDerived(
            db, object, from: version, dropped: dropped, replacing: oldKey, path: path, segmentMinimum: segmentMinimum)
    }
    func objectRefs(dataset: String, keys: [String]) throws -> [String: Int64] {
        try SQLiteStateStore.objectRefs(db, dataset: dataset, keys: keys)
    }
}

struct SQLiteRequestWriter: RequestWriter {
    let db: Database
    let path: String

    func request(id: String) throws -> ErasureRequest? { try SQLiteStateStore.fetchRequest(db, id: id, at: path) }
    func requests(ids: [String]) throws -> [ErasureRequest] { try SQLiteStateStore.fetchRequests(db, ids: ids, at: path) }
    func requests(status: RequestStatus?) throws -> [ErasureRequest] { try SQLiteStateStore.fetchRequests(db, status: status, at: path) }
    func insert(_ r: ErasureRequest) throws { try SQLiteStateStore.insertRequest(db, r) }
    func update(_ r: ErasureRequest, expecting expected: RequestStatus) throws {
        try SQLiteStateStore.updateRequest(db, r, expecting: expected)
    }
    func pendingRequestIDs() throws -> Set<String> { try SQLiteStateStore.pendingRequestIDs(db, at: path) }
    func insert(_ rs: [ErasureRequest]) throws { try SQLiteStateStore.insertRequests(db, rs) }
    func markSwept(requestIDs: [String], scope: String, sweepID: String, at: Int64) throws {
        let st = try db.cachedStatement(
            sql: """
                INSERT INTO request_sweeps(request_id, scope, sweep_id, at) VALUES (?, ?, ?, ?)
                ON CONFLICT(request_id, scope) DO UPDATE SET sweep_id = excluded.sweep_id, at = excluded.at WHERE excluded.at >= at
                """)
        for id in requestIDs { try st.execute(arguments: [id, scope, sweepID, at]) }
    }
    func recordSweep(_ s: SweepRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO sweeps(id, started_at, finished_at, scope, objects, bytes, result) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at, finished_at = excluded.finished_at,
                    scope = excluded.scope, objects = excluded.objects, bytes = excluded.bytes, result = excluded.result
                """, arguments: [s.id, s.startedAt, s.finishedAt, s.scope, s.objects, s.bytes, s.result])
    }
    func update(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        try SQLiteStateStore.updateRequests(db, rs, expecting: expected)
    }
    func saveDecisions(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        try SQLiteStateStore.saveDecisions(db, rs, expecting: expected)
    }
}

struct SQLiteAuditWriter: AuditWriter {
    let db: Database
    let auditKey: [UInt8]?

    func append(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try SQLiteStateStore.appendAudit(db, event: event, requestID: requestID, actor: actor, details: details, at: at, key: auditKey)
    }
    func append(_ event: AuditEvent, requestIDs: [String], actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try SQLiteStateStore.appendAudit(
            db, event: event, requestID: requestIDs.count == 1 ? requestIDs[0] : nil, actor: actor, details: details, at: at,
            key: auditKey, requestIDs: requestIDs)
    }
    func append(_ entries: [AuditAppend]) throws -> [AuditEntry] { try SQLiteStateStore.appendAudit(db, entries, key: auditKey) }
    func text(_ text: String) throws -> AuditTextRef { try SQLiteStateStore.insertAuditText(db, text, key: auditKey) }
}

struct SQLiteJournalWriter: JournalWriter {
    let db: Database

    func createJob(_ steps: [JournalStep]) throws { try SQLiteStateStore.insertSteps(db, try SQLiteStateStore.encodeSteps(steps)) }
    func beginStep(job: String, ordinal: Int64) throws -> Int { try SQLiteStateStore.beginStep(db, job: job, ordinal: ordinal) }
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws {
        try SQLiteStateStore.finishStep(db, job: job, ordinal: ordinal, state: state, outcome: outcome)
    }
    func pruneJob(_ job: String) throws { try SQLiteStateStore.pruneJob(db, job) }
    func recordTemporary(_ key: String, owner: Int32, table: String?) throws {
        let at = Int64(Date().timeIntervalSince1970 * 1000)
        try db.execute(
            sql: "INSERT OR REPLACE INTO temp_files(key, owner, at, table_root) VALUES (?, ?, ?, ?)",
            arguments: [key, owner, at, table])
    }
    func forgetTemporaries(_ keys: [String]) throws { try SQLiteStateStore.forgetTemporaries(db, keys) }
}

struct SQLiteCursorWriter: CursorWriter {
    let db: Database

    func deltaIndex(dataset: String) throws -> DeltaIndexCursor? { try SQLiteStateStore.deltaIndex(db, dataset: dataset) }
    func setDeltaIndex(_ cursor: DeltaIndexCursor, dataset: String) throws {
        try SQLiteStateStore.storeCursor(db, .deltaIndex(dataset: dataset), version: cursor.version, detail: cursor.text)
    }
    func propagation(dataset: String) throws -> Int64? { try SQLiteStateStore.propagation(db, dataset: dataset) }
    func setPropagation(_ version: Int64, dataset: String) throws {
        try SQLiteStateStore.storeCursor(db, .propagation(dataset: dataset), version: version, detail: nil)
    }
    func setting(_ name: String) throws -> String? { try SQLiteStateStore.readSetting(db, name) }
    func setSetting(_ name: String, _ value: String) throws { try SQLiteStateStore.setSetting(db, name, value) }
    func removeSetting(_ name: String) throws { try SQLiteStateStore.removeSetting(db, name) }
}

/// The store reads through itself: each reader method is one read transaction.
extension SQLiteStateStore: SubjectIndexReader, RequestReader, AuditReader, JournalReader, CursorReader {
    public var index: any SubjectIndexReader { self }
    public var requests: any RequestReader { self }
    public var audit: any AuditReader { self }
    public var journal: any JournalReader { self }
    public var cursors: any CursorReader { self }
    public func texts() async throws -> AuditTexts { try await auditTexts() }
}

extension SQLiteStateStore {
    // MARK: Units of work

    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        let path = databasePath, key = auditKey, segmentMinimum = self.segmentMinimum
        // The body's own errors (other than the database's) come back as they were thrown.
        let thrown = LockedValue<(any Error)?>(nil)
        do {
            return try await write(what) { db in
                do {
                    return try body(SQLiteTransaction(db: db, path: path, auditKey: key, segmentMinimum: segmentMinimum))
                } catch {
                    if !(error is DatabaseError) { thrown.value = error }
                    throw error
                }
            }
        } catch {
            if let e = thrown.value { throw e }
            throw error
        }
    }

    // MARK: Temporary files

    public func temporaries() async throws -> [TemporaryFile] {
        try await read("cannot read the temporary files") { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT key, owner, table_root FROM temp_files ORDER BY key")).map {
                TemporaryFile(key: $0[0], owner: $0[1], table: $0[2])
            }
        }
    }

    // MARK: Free text of the audit log

    public func textDigest(_ text: String) -> String { AuditChain.textDigest(text, key: auditKey) }

    static func insertAuditText(_ db: Database, _ text: String, key: [UInt8]?) throws -> AuditTextRef {
        let hmac = AuditChain.textDigest(text, key: key)
        try db.cachedStatement(sql: "INSERT INTO audit_texts(hmac, text) VALUES (?, ?)").execute(arguments: [hmac, text])
        return AuditTextRef(id: db.lastInsertedRowID, hmac: hmac)
    }

    public func auditTexts() async throws -> AuditTexts {
        try await read("cannot read the audit log's texts") { db in
            var out = AuditTexts()
            for row in try Row.fetchAll(db, sql: "SELECT id, text FROM audit_texts") {
                if let t = row[1] as String? { out.texts[row[0]] = t } else { out.purged.insert(row[0]) }
            }
            return out
        }
    }

    static func forgetTemporaries(_ db: Database, _ keys: [String]) throws {
        let delete = try db.cachedStatement(sql: "DELETE FROM temp_files WHERE key = ?")
        for k in keys { try delete.execute(arguments: [k]) }
    }

    // MARK: Object names

    static func objectRefs(_ db: Database, dataset: String, keys: [String]) throws -> [String: Int64] {
        let find = try db.cachedStatement(sql: "SELECT id FROM object_names WHERE dataset = ? AND key = ?")
        let insert = try db.cachedStatement(sql: "INSERT INTO object_names(dataset, key) VALUES (?, ?)")
        var out: [String: Int64] = [:]
        for k in Set(keys) {
            if let id = try Int64.fetchOne(find, arguments: [dataset, k]) {
                out[k] = id
            } else {
                try insert.execute(arguments: [dataset, k])
                out[k] = db.lastInsertedRowID
            }
        }
        return out
    }

    public func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)] {
        guard !refs.isEmpty else { return [:] }
        let found = try await read("cannot read object names") { db -> [(Int64, String, String)] in
            let find = try db.cachedStatement(sql: "SELECT id, dataset, key FROM object_names WHERE id = ?")
            var out: [(Int64, String, String)] = []
            for r in Set(refs) {
                if let row = try Row.fetchOne(find, arguments: [r]) { out.append((row[0], row[1], row[2])) }
            }
            return out
        }
        var out: [Int64: (dataset: String, key: String)] = [:]
        for (id, d, k) in found { out[id] = (d, k) }
        return out
    }

    // MARK: Purging a raw id

    /// The text `purge` puts where a raw id was.
    public static let purgedMark = AuditTexts.purgedMark

    static func purge(_ db: Database, rawID bytes: [UInt8], substring: Bool, key: [UInt8]?) throws -> Int {
        let needle = Data(bytes)
        var changed = 0
        // Object names: a key holding the id (or, for a short id, a path segment that is the id).
        for row in try Row.fetchAll(db, sql: "SELECT id, key FROM object_names WHERE instr(CAST(key AS BLOB), ?) > 0", arguments: [needle]) {
            let key: String = row[1]
            if (substring && Self.holdsToken(Array(key.utf8), bytes)) || Self.segmentNames(key, bytes) {
                try db.execute(sql: "DELETE FROM object_names WHERE id = ?", arguments: [row[0] as Int64])
                changed += 1
            }
        }
        // Free text people typed: the audit log's texts (reasons, actors' names) and the names on
        // requests. One holding the id as a whole token (ids of `substring` length), or being the
        // id (any length), is purged: the audit log keeps its digest, the request `[erased]`.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func names(_ text: String) -> Bool {
            let t = Array(text.utf8)
            return t == bytes || (substring && Self.holdsToken(t, bytes))
        }
        for row in try Row.fetchAll(
            db, sql: "SELECT id, text FROM audit_texts WHERE text IS NOT NULL AND instr(CAST(text AS BLOB), ?) > 0", arguments: [needle])
        {
            guard names(row[1]) else { continue }
            try db.execute(sql: "UPDATE audit_texts SET text = NULL, purged_at = ? WHERE id = ?", arguments: [now, row[0] as Int64])
            changed += 1
        }
        for column in ["requested_by", "decided_by"] {
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT id, \(column) FROM requests WHERE \(column) IS NOT NULL AND instr(CAST(\(column) AS BLOB), ?) > 0
                    """, arguments: [needle])
            {
                let name: String = row[1]
                guard names(name) else { continue }
                if column == "requested_by" {
                    // The four-eyes rule compares digests once the name is gone.
                    try db.execute(
                        sql: "UPDATE requests SET requested_by_hmac = coalesce(requested_by_hmac, ?) WHERE id = ?",
                        arguments: [AuditChain.textDigest(name, key: key), row[0] as String])
                }
                try db.execute(sql: "UPDATE requests SET \(column) = ? WHERE id = ?", arguments: [Self.purgedMark, row[0] as String])
                changed += 1
            }
        }
        guard substring else { return changed }
        // Free text of requests (reasons, failures, plans and verification results) and settings.
        let mark = Array(Self.purgedMark.utf8)
        for column in ["reason", "decision_reason", "failure", "plan", "verification"] {
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, CAST(\(column) AS BLOB) FROM requests WHERE \(column) IS NOT NULL AND instr(CAST(\(column) AS BLOB), ?) > 0
                    """, arguments: [needle])
            for row in rows {
                let old: Data = row[1]
                let new = Data(NeedleSet.replacingTokens(bytes, in: Array(old), with: mark))
                let isText = column == "reason" || column == "decision_reason" || column == "failure"
                let value: any DatabaseValueConvertible = isText ? String(decoding: new, as: UTF8.self) : new
                try db.execute(sql: "UPDATE requests SET \(column) = ? WHERE id = ?", arguments: [value, row[0] as String])
                changed += 1
            }
        }
        for row in try Row.fetchAll(db, sql: "SELECT name, CAST(value AS BLOB) FROM settings WHERE instr(CAST(value AS BLOB), ?) > 0", arguments: [needle]) {
            let old: Data = row[1]
            let new = String(decoding: NeedleSet.replacingTokens(bytes, in: Array(old), with: mark), as: UTF8.self)
            try db.execute(sql: "UPDATE settings SET value = ? WHERE name = ?", arguments: [new, row[0] as String])
            changed += 1
        }
        // Cursors were settings before v6: their text is searched as it was.
        for row in try Row.fetchAll(
            db, sql: "SELECT dataset, kind, CAST(detail AS BLOB) FROM cursors WHERE instr(CAST(detail AS BLOB), ?) > 0", arguments: [needle])
        {
            let old: Data = row[2]
            let new = String(decoding: NeedleSet.replacingTokens(bytes, in: Array(old), with: mark), as: UTF8.self)
            try db.execute(sql: "UPDATE cursors SET detail = ? WHERE dataset = ? AND kind = ?", arguments: [new, row[0] as String, row[1] as String])
            changed += 1
        }
        return changed
    }

    /// `purge(_:rawID:substring:key:)` for many ids (`substring` for ids of `purgeSubstringMinimum`
    /// bytes or more), one pass over each table: every row is read once and searched for all the ids
    /// at once (`NeedleSet`), then each id found is checked by the single-id rule.
    static func purge(_ db: Database, rawIDs: [[UInt8]], key: [UInt8]?) throws -> Int {
        let ids = Array(Set(rawIDs.filter { !$0.isEmpty }))
        guard !ids.isEmpty else { return 0 }
        if ids.count == 1 { return try purge(db, rawID: ids[0], substring: ids[0].count >= purgeSubstringMinimum, key: key) }
        let all = NeedleSet(ids)
        let long = ids.filter { $0.count >= purgeSubstringMinimum }
        let longSet = NeedleSet(long)
        var changed = 0
        func names(_ t: [UInt8], _ id: [UInt8]) -> Bool {
            t == id || (id.count >= purgeSubstringMinimum && Self.holdsToken(t, id))
        }
        // Object names.
        var dead: [Int64] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, CAST(key AS BLOB) FROM object_names") {
            let k = Array(row[1] as Data)
            let hit = all.matches(in: k)
            guard !hit.isEmpty else { continue }
            let keyText = String(decoding: k, as: UTF8.self)
            if hit.contains(where: { ($0.count >= purgeSubstringMinimum && Self.holdsToken(k, $0)) || Self.segmentNames(keyText, $0) }) {
                dead.append(row[0])
            }
        }
        let deleteName = try db.cachedStatement(sql: "DELETE FROM object_names WHERE id = ?")
        for id in dead { try deleteName.execute(arguments: [id]) }
        changed += dead.count
        // The audit log's texts.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var texts: [Int64] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, CAST(text AS BLOB) FROM audit_texts WHERE text IS NOT NULL") {
            let t = Array(row[1] as Data)
            if all.matches(in: t).contains(where: { names(t, $0) }) { texts.append(row[0]) }
        }
        let purgeText = try db.cachedStatement(sql: "UPDATE audit_texts SET text = NULL, purged_at = ? WHERE id = ?")
        for id in texts { try purgeText.execute(arguments: [now, id]) }
        changed += texts.count
        // Names on requests, then their free text (long ids only), in one read of the table.
        let mark = Array(Self.purgedMark.utf8)
        let textColumns = ["reason", "decision_reason", "failure", "plan", "verification"]
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT id, CAST(requested_by AS BLOB), CAST(decided_by AS BLOB), \(textColumns.map { "CAST(\($0) AS BLOB)" }.joined(separator: ", "))
                FROM requests
                """)
        for row in rows {
            let rid: String = row[0]
            for (i, column) in ["requested_by", "decided_by"].enumerated() {
                guard let v = row[1 + i] as Data? else { continue }
                let t = Array(v)
                guard all.matches(in: t).contains(where: { names(t, $0) }) else { continue }
                if column == "requested_by" {
                    try db.execute(
                        sql: "UPDATE requests SET requested_by_hmac = coalesce(requested_by_hmac, ?) WHERE id = ?",
                        arguments: [AuditChain.textDigest(String(decoding: t, as: UTF8.self), key: key), rid])
                }
                try db.execute(sql: "UPDATE requests SET \(column) = ? WHERE id = ?", arguments: [Self.purgedMark, rid])
                changed += 1
            }
            guard !long.isEmpty else { continue }
            for (i, column) in textColumns.enumerated() {
                guard let v = row[3 + i] as Data? else { continue }
                let old = Array(v)
                let hit = longSet.matches(in: old)
                guard !hit.isEmpty else { continue }
                var new = old
                for id in hit.sorted(by: { $0.lexicographicallyPrecedes($1) }) { new = NeedleSet.replacingTokens(id, in: new, with: mark) }
                let isText = column == "reason" || column == "decision_reason" || column == "failure"
                let value: any DatabaseValueConvertible = isText ? String(decoding: new, as: UTF8.self) : Data(new)
                try db.execute(sql: "UPDATE requests SET \(column) = ? WHERE id = ?", arguments: [value, rid])
                changed += 1
            }
        }
        guard !long.isEmpty else { return changed }
        for row in try Row.fetchAll(db, sql: "SELECT name, CAST(value AS BLOB) FROM settings") {
            let old = Array(row[1] as Data)
            let hit = longSet.matches(in: old)
            guard !hit.isEmpty else { continue }
            var new = old
            for id in hit.sorted(by: { $0.lexicographicallyPrecedes($1) }) { new = NeedleSet.replacingTokens(id, in: new, with: mark) }
            try db.execute(sql: "UPDATE settings SET value = ? WHERE name = ?", arguments: [String(decoding: new, as: UTF8.self), row[0] as String])
            changed += 1
        }
        for row in try Row.fetchAll(db, sql: "SELECT dataset, kind, CAST(detail AS BLOB) FROM cursors WHERE detail IS NOT NULL") {
            let old = Array(row[2] as Data)
            let hit = longSet.matches(in: old)
            guard !hit.isEmpty else { continue }
            var new = old
            for id in hit.sorted(by: { $0.lexicographicallyPrecedes($1) }) { new = NeedleSet.replacingTokens(id, in: new, with: mark) }
            try db.execute(
                sql: "UPDATE cursors SET detail = ? WHERE dataset = ? AND kind = ?",
                arguments: [String(decoding: new, as: UTF8.self), row[0] as String, row[1] as String])
            changed += 1
        }
        return changed
    }

    /// True when a `/`-separated segment of `key` is `id`, or `name=id` (a Hive partition folder).
    static func segmentNames(_ key: String, _ id: [UInt8]) -> Bool {
        for seg in key.utf8.split(separator: UInt8(ascii: "/")) {
            let s = Array(seg)
            if s == id { return true }
            if let eq = s.firstIndex(of: UInt8(ascii: "=")), Array(s[(eq + 1)...]) == id { return true }
        }
        return false
    }

    /// Whether `needle` occurs in `hay` as a whole token (see `NeedleSet(wordBounded:)`).
    static func holdsToken(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        !NeedleSet([needle], wordBounded: true).matches(in: hay).isEmpty
    }

    /// Moves the write-ahead log into the database and empties it, so superseded page images
    /// (which may hold purged text) do not linger in `lethe.sqlite-wal`. Best effort: a reader in
    /// another process keeps the log; returns false then.
    @discardableResult
    public func checkpoint() async -> Bool {
        guard let pool = writer as? DatabasePool else { return true }
        do {
            _ = try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            return true
        } catch {
            return false
        }
    }

    /// The batch's transactions commit as always (synchronous stays NORMAL), but the writer connection's
    /// automatic checkpoint (after a commit that leaves the WAL over 1,000 pages: fsync of the WAL, copy,
    /// fsync of the database) is off meanwhile; one passive checkpoint at the end copies every page
    /// once — a random-keyed index touched by each of ten chunks was copied ten times — with two fsyncs
    /// instead of twenty. Nested or concurrent batches: the last one to end restores and checkpoints.
    public func batchWrites<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard !readOnly, writer is DatabasePool else { return try await body() }
        let first = batchDepth.withLock { d in
            d += 1
            return d == 1
        }
        if first {
            let pages = try? await writer.writeWithoutTransaction { db -> Int in
                let pages = try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 1000
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                return pages
            }
            batchCheckpointPages.value = pages ?? 1000
        }
        do {
            let result = try await body()
            await endBatch()
            return result
        } catch {
            await endBatch()
            throw error
        }
    }

    private func endBatch() async {
        let last = batchDepth.withLock { d in
            d -= 1
            return d == 0
        }
        guard last else { return }
        let pages = batchCheckpointPages.value
        _ = try? await writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(pages)")
            _ = try db.checkpoint(.passive)
        }
    }
}
