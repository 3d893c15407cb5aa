import Foundation
import GRDB
import GRDBSQLite
public import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    // MARK: Requests

    static let requestColumns = """
        id, subject_key, sealed_subject, status, reason, requested_by, filed_at, updated_at, \
        decided_by, decision_reason, plan, verification, failure, attempts, stream_tag, requested_by_hmac, \
        proof, swept_at, raw_due_at, raw_destroyed_at, raw_destroyed_why, sweep_findings
        """
    /// How many columns `requestColumns` names (the next one of a select is at this index).
    static let requestColumnCount = 22
    /// `INSERT INTO requests(requestColumns, filing) VALUES (?, …)`.
    static let insertRequestSQL =
        "INSERT INTO requests(\(requestColumns), filing) VALUES (\(Array(repeating: "?", count: requestColumnCount + 1).joined(separator: ", ")))"

    static func request(_ row: Row, at path: String) throws -> ErasureRequest {
        let id: String = row[0]
        let keyData: Data = row[1]
        guard keyData.count == 32 else {
            throw LetheError(.corrupt, "request \(id) has a subject key of \(keyData.count) bytes", at: path)
        }
        let statusText: String = row[3]
        guard let status = RequestStatus(rawValue: statusText) else {
            throw LetheError(.corrupt, "request \(id) has unknown status \(statusText)", at: path)
        }
        let sealed = try row.withUnsafeData(atIndex: 2) { $0.map { Array($0) } }
        var r = ErasureRequest(
            id: id, subjectKey: SubjectKey(bytes: Array(keyData)), sealedSubject: sealed,
            reason: row[4], requestedBy: row[5], at: row[6])
        r.status = status
        r.updatedAt = row[7]
        r.decidedBy = row[8]
        r.decisionReason = row[9]
        r.plan = try row.withUnsafeData(atIndex: 10) { $0.map { Array($0) } }
        r.verification = try row.withUnsafeData(atIndex: 11) { $0.map { Array($0) } }
        r.failure = row[12]
        r.attempts = row[13]
        r.streamTag = (row[14] as Int64?).map { UInt64(bitPattern: $0) }
        r.requesterDigest = row[15]
        r.proof = row[16]
        r.sweptAt = row[17]
        r.rawDueAt = row[18]
        r.rawDestroyedAt = row[19]
        r.rawDestroyedWhy = row[20]
        r.sweepFindings = try row.withUnsafeData(atIndex: 21) { $0.map { Array($0) } }
        return r
    }

    /// The values of a request in `requestColumns` order.
    static func arguments(_ r: ErasureRequest) -> StatementArguments {
        [
            r.id, Data(r.subjectKey.bytes), r.sealedSubject.map { Data($0) }, r.status.rawValue, r.reason, r.requestedBy,
            r.filedAt, r.updatedAt, r.decidedBy, r.decisionReason, r.plan.map { Data($0) },
            r.verification.map { Data($0) }, r.failure, r.attempts, r.streamTag.map { Int64(bitPattern: $0) }, r.requesterDigest,
            r.proof, r.sweptAt, r.rawDueAt, r.rawDestroyedAt, r.rawDestroyedWhy, r.sweepFindings.map { Data($0) },
        ]
    }

    // MARK: Inside a transaction

    /// One request (prepared statements kept by the connection: the service files one per call).
    static func insertRequest(_ db: Database, _ r: ErasureRequest) throws {
        if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM requests WHERE id = ?"), arguments: [r.id]) == true {
            throw LetheError(.conflict, "request \(r.id) already exists")
        }
        var args = Self.arguments(r)
        args += [try Int64.fetchOne(db.cachedStatement(sql: "SELECT coalesce(max(filing), 0) + 1 FROM requests")) ?? 1]
        try db.cachedStatement(sql: Self.insertRequestSQL).execute(arguments: args)
    }

    /// Files many requests with consecutive filing numbers: one prepared statement, each request's
    /// values bound straight from its fields (`bind`) — a `StatementArguments` of 23 boxed values a row
    /// was a fifth of the writer's time in a `forget --from` of 100,000 — and stepped by GRDB.
    static func insertRequests(_ db: Database, _ rs: [ErasureRequest]) throws {
        if rs.isEmpty { return }
        var filing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT coalesce(max(filing), 0) + 1 FROM requests")) ?? 1
        let stmt = try db.cachedStatement(sql: Self.insertRequestSQL)
        // No arguments of GRDB's own: `execute()` steps what `bind` bound.
        stmt.setUncheckedArguments([])
        defer { sqlite3_clear_bindings(stmt.sqliteStatement) }
        for r in rs {
            try bind(r, filing: filing, to: stmt.sqliteStatement, sql: Self.insertRequestSQL)
            filing += 1
            do {
                try stmt.execute()
            } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
                throw LetheError(.conflict, "request \(r.id) already exists")
            }
        }
    }

    /// Binds a request's values in `requestColumns` order and its filing number to an insert of
    /// `insertRequestSQL` (reset first: the statement may have been stepped), as `arguments(r)` would.
    static func bind(_ r: ErasureRequest, filing: Int64, to h: OpaquePointer, sql: String) throws {
        var b = Binder(h)
        b.text(1, r.id)
        bindColumns(r, from: 2, &b)
        b.int(23, filing)
        try b.check("cannot bind request \(r.id)", sql: sql)
    }

    /// A request's columns after its id (`requestColumns` from `subject_key` to `sweep_findings`),
    /// bound at the positions `first`, `first + 1`, … (21 of them).
    static func bindColumns(_ r: ErasureRequest, from first: Int32, _ b: inout Binder) {
        b.blob(first, r.subjectKey.bytes)
        b.blob(first + 1, r.sealedSubject)
        b.text(first + 2, r.status.rawValue)
        b.text(first + 3, r.reason)
        b.text(first + 4, r.requestedBy)
        b.int(first + 5, r.filedAt)
        b.int(first + 6, r.updatedAt)
        b.text(first + 7, r.decidedBy)
        b.text(first + 8, r.decisionReason)
        b.blob(first + 9, r.plan)
        b.blob(first + 10, r.verification)
        b.text(first + 11, r.failure)
        b.int(first + 12, Int64(r.attempts))
        b.int(first + 13, r.streamTag.map { Int64(bitPattern: $0) })
        b.text(first + 14, r.requesterDigest)
        b.text(first + 15, r.proof)
        b.int(first + 16, r.sweptAt)
        b.int(first + 17, r.rawDueAt)
        b.int(first + 18, r.rawDestroyedAt)
        b.text(first + 19, r.rawDestroyedWhy)
        b.blob(first + 20, r.sweepFindings)
    }

    static func updateRequest(_ db: Database, _ r: ErasureRequest, expecting expected: RequestStatus) throws {
        let stmt = try db.cachedStatement(sql: Self.updateRequestSQL)
        // No arguments of GRDB's own: `execute()` steps what `bindUpdate` bound (no boxed argument
        // array and `Data` copy of the plan a request: a sixth of a 1,000-request claim or close).
        stmt.setUncheckedArguments([])
        defer { sqlite3_clear_bindings(stmt.sqliteStatement) }
        try bindUpdate(r, expecting: expected, to: stmt.sqliteStatement)
        try stmt.execute()
        try checkUpdated(db, r.id, expecting: expected)
    }

    /// Binds `updateArguments(r, expecting:)` to a statement of `updateRequestSQL` (reset first), value
    /// for value (an empty blob stays an empty blob, as an empty `Data` argument of GRDB's does).
    static func bindUpdate(_ r: ErasureRequest, expecting expected: RequestStatus, to h: OpaquePointer) throws {
        var b = Binder(h)
        bindColumns(r, from: 1, &b)
        b.text(22, r.id)
        b.text(23, expected.rawValue)
        try b.check("cannot bind request \(r.id)", sql: Self.updateRequestSQL)
    }

    /// After a compare-and-set update of request `id`: `.notFound` or `.conflict` unless it changed one row.
    static func checkUpdated(_ db: Database, _ id: String, expecting expected: RequestStatus) throws {
        guard db.changesCount == 1 else {
            guard let stored = try String.fetchOne(db, sql: "SELECT status FROM requests WHERE id = ?", arguments: [id]) else {
                throw LetheError(.notFound, "no request \(id)")
            }
            guard stored == expected.rawValue else {
                throw LetheError(.conflict, "request \(id) is \(stored), not \(expected.rawValue): it changed meanwhile")
            }
            throw LetheError(.conflict, "request \(id) changed meanwhile")
        }
    }

    /// Saves many requests (compare-and-set on each one's status; one prepared statement).
    static func updateRequests(_ db: Database, _ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        for r in rs { try updateRequest(db, r, expecting: expected) }
    }

    /// Saves the decision on many requests (`RequestWriter.saveDecisions`): four columns, so SQLite
    /// rewrites only the indexes holding `status` or `updated_at` (an approval of 100,000 requests).
    /// Each request's values are bound straight to the statement (`Binder`), as in `insertRequests`.
    static func saveDecisions(_ db: Database, _ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        let stmt = try db.cachedStatement(sql: Self.saveDecisionSQL)
        stmt.setUncheckedArguments([])
        defer { sqlite3_clear_bindings(stmt.sqliteStatement) }
        for r in rs {
            var b = Binder(stmt.sqliteStatement)
            b.text(1, r.status.rawValue)
            b.int(2, r.updatedAt)
            b.text(3, r.decidedBy)
            b.text(4, r.decisionReason)
            b.text(5, r.id)
            b.text(6, expected.rawValue)
            try b.check("cannot bind the decision on request \(r.id)", sql: Self.saveDecisionSQL)
            try stmt.execute()
            try checkUpdated(db, r.id, expecting: expected)
        }
    }

    static let saveDecisionSQL = """
        UPDATE requests SET status = ?, updated_at = ?,
            decided_by = CASE WHEN instr(decided_by, '\(purgedMark)') > 0 THEN decided_by ELSE ? END,
            decision_reason = ?
        WHERE id = ? AND status = ?
        """

    // Texts a purge replaced (`purgedMark`) stay purged, whatever an older copy of the request holds;
    // a requester's digest once known stays; a destroyed raw id stays destroyed.
    static let updateRequestSQL = """
        UPDATE requests SET subject_key = ?, sealed_subject = CASE WHEN raw_destroyed_at IS NOT NULL AND sealed_subject IS NULL THEN NULL ELSE ? END,
            status = ?,
            reason = CASE WHEN instr(reason, '\(purgedMark)') > 0 THEN reason ELSE ? END,
            requested_by = CASE WHEN instr(requested_by, '\(purgedMark)') > 0 THEN requested_by ELSE ? END,
            filed_at = ?, updated_at = ?,
            decided_by = CASE WHEN instr(decided_by, '\(purgedMark)') > 0 THEN decided_by ELSE ? END,
            decision_reason = ?, plan = ?, verification = ?,
            failure = ?, attempts = ?, stream_tag = ?, requested_by_hmac = coalesce(?, requested_by_hmac),
            proof = ?, swept_at = ?, raw_due_at = ?, raw_destroyed_at = coalesce(raw_destroyed_at, ?),
            raw_destroyed_why = coalesce(raw_destroyed_why, ?), sweep_findings = ?
        WHERE id = ? AND status = ?
        """

    static func updateArguments(_ r: ErasureRequest, expecting expected: RequestStatus) -> StatementArguments {
        [
            Data(r.subjectKey.bytes), r.sealedSubject.map { Data($0) }, r.status.rawValue, r.reason,
            r.requestedBy, r.filedAt, r.updatedAt, r.decidedBy, r.decisionReason,
            r.plan.map { Data($0) }, r.verification.map { Data($0) }, r.failure, r.attempts,
            r.streamTag.map { Int64(bitPattern: $0) }, r.requesterDigest,
            r.proof, r.sweptAt, r.rawDueAt, r.rawDestroyedAt, r.rawDestroyedWhy, r.sweepFindings.map { Data($0) },
            r.id, expected.rawValue,
        ]
    }

    /// One request by id, decoded from the statement's row as it is stepped (`Row.fetchOne` would copy
    /// the row and index its column names first: a third of a 1,000-request claim).
    static func fetchRequest(_ db: Database, id: String, at path: String) throws -> ErasureRequest? {
        let st = try db.cachedStatement(sql: "SELECT \(Self.requestColumns) FROM requests WHERE id = ?")
        st.setUncheckedArguments([id])
        // The row reads the statement: the cursor (which resets it when it goes) lives until the row is decoded.
        let rows = try Row.fetchCursor(st)
        return try withExtendedLifetime(rows) {
            guard let row = try rows.next() else { return nil }
            return try Self.request(row, at: path)
        }
    }

    static func fetchRequests(_ db: Database, status: RequestStatus?, at path: String) throws -> [ErasureRequest] {
        if let status {
            return try requests(
                db, sql: "SELECT \(Self.requestColumns) FROM requests WHERE status = ? ORDER BY filing", [status.rawValue], at: path
            ).items
        }
        return try requests(db, sql: "SELECT \(Self.requestColumns) FROM requests ORDER BY filing", [], at: path).items
    }

    /// The requests a select of `requestColumns` (and, optionally, `filing` after them) returns, decoded
    /// from the statement row by row (no copied `Row` each), and the last filing number when selected.
    static func requests(_ db: Database, sql: String, _ arguments: StatementArguments, at path: String) throws -> (
        items: [ErasureRequest], lastFiling: Int64?
    ) {
        let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
        var out: [ErasureRequest] = []
        var last: Int64?
        while let row = try rows.next() {
            out.append(try Self.request(row, at: path))
            if row.count > Self.requestColumnCount { last = row[Self.requestColumnCount] }
        }
        return (out, last)
    }

    public func request(id: String) async throws -> ErasureRequest? {
        let path = databasePath
        return try await read("cannot read request \(id)") { db in try Self.fetchRequest(db, id: id, at: path) }
    }

    public func requests(ids: [String]) async throws -> [ErasureRequest] {
        guard !ids.isEmpty else { return [] }
        let path = databasePath
        return try await read("cannot read \(ids.count) request(s)") { db in try Self.fetchRequests(db, ids: ids, at: path) }
    }

    /// Requests by id in the order given (absent ones left out, a repeated id repeated): one select per
    /// 500 ids (`id IN (…)`), not one per request.
    static func fetchRequests(_ db: Database, ids: [String], at path: String) throws -> [ErasureRequest] {
        let unique = Array(Set(ids))
        var found: [String: ErasureRequest] = [:]
        found.reserveCapacity(unique.count)
        for start in stride(from: 0, to: unique.count, by: 500) {
            let chunk = unique[start..<min(start + 500, unique.count)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            let rs = try requests(
                db, sql: "SELECT \(Self.requestColumns) FROM requests WHERE id IN (\(marks))", StatementArguments(Array(chunk)), at: path
            ).items
            for r in rs { found[r.id] = r }
        }
        return ids.compactMap { found[$0] }
    }

    public func requests(status: RequestStatus?) async throws -> [ErasureRequest] {
        let path = databasePath
        return try await read("cannot list requests") { db in try Self.fetchRequests(db, status: status, at: path) }
    }

    public func openRequests(subjectKeys: [SubjectKey]) async throws -> [SubjectKey: ErasureRequest] {
        let keys = Array(Set(subjectKeys))
        guard !keys.isEmpty else { return [:] }
        let path = databasePath
        let terminal = RequestStatus.allCases.filter(\.isTerminal).map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let openStatuses = RequestStatus.allCases.filter { !$0.isTerminal }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return try await read("cannot look up requests by subject") { db in
            var out: [SubjectKey: ErasureRequest] = [:]
            // Fewer open requests than keys (a `forget --from` of 100,000 while a few await approval): all
            // of them read by status (the status index), kept where their key is asked for — instead of a
            // select per 500 keys. In filing order either way, so a subject with several open requests
            // (none today) maps to its last one.
            let open = try Int.fetchOne(db, sql: "SELECT count(*) FROM requests WHERE status IN (\(openStatuses))") ?? 0
            if open < keys.count {
                let wanted = Set(keys)
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT \(Self.requestColumns) FROM requests WHERE status IN (\(openStatuses)) ORDER BY filing")
                while let row = try rows.next() {
                    let r = try Self.request(row, at: path)
                    if wanted.contains(r.subjectKey) { out[r.subjectKey] = r }
                }
                return out
            }
            for chunk in stride(from: 0, to: keys.count, by: 500).map({ keys[$0..<min($0 + 500, keys.count)] }) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                let rows = try Self.requests(
                    db,
                    sql: """
                        SELECT \(Self.requestColumns) FROM requests INDEXED BY requests_subject
                        WHERE subject_key IN (\(marks)) AND status NOT IN (\(terminal)) ORDER BY filing
                        """, StatementArguments(chunk.map { Data($0.bytes) }), at: path
                ).items
                for r in rows { out[r.subjectKey] = r }
            }
            return out
        }
    }

    /// A page in filing order; the cursor is the last request's filing number.
    public func requests(status: RequestStatus?, after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        if after == nil && limit == Int.max { return Page(items: try await requests(status: status), next: nil) }
        guard limit > 0 else { throw LetheError(.badUsage, "a page holds at least one request") }
        let from: Int64
        if let after {
            guard let n = Int64(after) else { throw LetheError(.badUsage, "not a cursor of the request listing: \(after)") }
            from = n
        } else {
            from = 0
        }
        let path = databasePath
        return try await read("cannot list requests") { db in
            let (items, last) = try Self.requests(
                db,
                sql: """
                    SELECT \(Self.requestColumns), filing FROM requests
                    WHERE filing > ?\(status == nil ? "" : " AND status = ?") ORDER BY filing LIMIT ?
                    """, status.map { [from, $0.rawValue, limit] } ?? [from, limit], at: path)
            return Page(items: items, next: items.count == limit ? last.map { String($0) } : nil)
        }
    }

    public func insertRequests(_ rs: [ErasureRequest]) async throws {
        if rs.isEmpty { return }
        try await write("cannot file \(rs.count) requests") { db in try Self.insertRequests(db, rs) }
    }

    public func unswept(after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        guard limit > 0 else { throw LetheError(.badUsage, "a page holds at least one request") }
        let from: Int64
        if let after {
            guard let n = Int64(after) else { throw LetheError(.badUsage, "not a cursor of the request listing: \(after)") }
            from = n
        } else {
            from = 0
        }
        let path = databasePath
        return try await read("cannot list the unswept requests") { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.requestColumns), filing FROM requests INDEXED BY requests_unswept
                    WHERE status = 'verified' AND swept_at IS NULL AND filing > ? ORDER BY filing LIMIT ?
                    """, arguments: [from, limit])
            let items = try rows.map { try Self.request($0, at: path) }
            let last: Int64? = rows.last?[Self.requestColumnCount]
            return Page(items: items, next: rows.count == limit ? last.map { String($0) } : nil)
        }
    }

    public func sweepMarks(requestID: String) async throws -> [SweepMark] {
        try await read("cannot read the sweep marks of request \(requestID)") { db in
            try Row.fetchAll(
                db, sql: "SELECT scope, sweep_id, at FROM request_sweeps WHERE request_id = ? ORDER BY scope", arguments: [requestID]
            ).map { SweepMark(requestID: requestID, scope: $0[0], sweepID: $0[1], at: $0[2]) }
        }
    }

    public func sweep(id: String) async throws -> SweepRecord? {
        try await read("cannot read sweep \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT id, started_at, finished_at, scope, objects, bytes, result FROM sweeps WHERE id = ?", arguments: [id])
                .map { SweepRecord(id: $0[0], startedAt: $0[1], finishedAt: $0[2], scope: $0[3], objects: $0[4], bytes: $0[5], result: $0[6]) }
        }
    }

    public func rawIDsDue(now: Int64, limit: Int) async throws -> [ErasureRequest] {
        guard limit > 0 else { return [] }
        let path = databasePath
        return try await read("cannot list the raw ids due") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.requestColumns) FROM requests INDEXED BY requests_raw_due
                    WHERE sealed_subject IS NOT NULL AND raw_due_at IS NOT NULL AND raw_due_at <= ?
                    ORDER BY raw_due_at, id LIMIT ?
                    """, arguments: [now, limit]
            ).map { try Self.request($0, at: path) }
        }
    }

    /// Statuses from approval on (`RequestStatus.isForgotten`), as an SQL list.
    static let forgottenStatuses = RequestStatus.allCases.filter(\.isForgotten).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    public func deletionTags(since: Int64) async throws -> DeletionChanges {
        try await read("cannot read the deletion set") { db in
            let latest = try Int64.fetchOne(db, sql: "SELECT max(updated_at) FROM requests") ?? Int64.min
            var added: [UInt64] = []
            // The whole set: a scan of the covering stream-tag index; changes: the update-time index.
            let cursor =
                since == Int64.min
                ? try Int64.fetchCursor(
                    db,
                    sql: """
                        SELECT stream_tag FROM requests INDEXED BY requests_by_stream_tag
                        WHERE stream_tag IS NOT NULL AND status IN (\(Self.forgottenStatuses))
                        """)
                : try Int64.fetchCursor(
                    db,
                    sql: """
                        SELECT stream_tag FROM requests INDEXED BY requests_by_update
                        WHERE updated_at >= ? AND stream_tag IS NOT NULL AND status IN (\(Self.forgottenStatuses))
                        """, arguments: [since])
            while let t = try cursor.next() { added.append(UInt64(bitPattern: t)) }
            let removed = try Int64.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT r.stream_tag FROM requests r
                    WHERE r.updated_at >= ? AND r.stream_tag IS NOT NULL AND r.status = 'rejected'
                      AND NOT EXISTS (SELECT 1 FROM requests f WHERE f.stream_tag = r.stream_tag
                                      AND f.status IN (\(Self.forgottenStatuses)))
                    """, arguments: [since]
            ).map { UInt64(bitPattern: $0) }
            return DeletionChanges(added: added, removed: removed, latest: latest)
        }
    }

    public func requestsWithoutStreamTag() async throws -> [ErasureRequest] {
        let path = databasePath
        return try await read("cannot list requests") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.requestColumns) FROM requests
                    WHERE stream_tag IS NULL AND sealed_subject IS NOT NULL ORDER BY filing
                    """
            ).map { try Self.request($0, at: path) }
        }
    }

    /// Frees SQLite's page caches and other memory it can give back (e.g. after a
    /// long-running process, such as `lethe filter`, read the whole deletion set once).
    public func releaseMemory() {
        if let pool = writer as? DatabasePool { pool.releaseMemory() }
        if let queue = writer as? DatabaseQueue { queue.releaseMemory() }
    }
}
