import Foundation
public import LetheCatalog
public import LetheCore
import NIOCore
import PostgresNIO

extension PostgresStateStore {
    // MARK: Requests

    static let requestColumns = """
        id, subject_key, sealed_subject, status, reason, requested_by, filed_at, updated_at, \
        decided_by, decision_reason, plan, verification, failure, attempts, stream_tag, requested_by_hmac, \
        proof, swept_at, raw_due_at, raw_destroyed_at, raw_destroyed_why, sweep_findings
        """
    static let requestColumnCount = 22

    static func request(_ r: PGRow) throws -> ErasureRequest {
        let id = try r.str(0)
        let key = r.bytes(1) ?? []
        guard key.count == 32 else { throw LetheError(.corrupt, "request \(id) has a subject key of \(key.count) bytes") }
        let statusText = try r.str(3)
        guard let status = RequestStatus(rawValue: statusText) else {
            throw LetheError(.corrupt, "request \(id) has unknown status \(statusText)")
        }
        var q = ErasureRequest(
            id: id, subjectKey: SubjectKey(bytes: key), sealedSubject: r.bytes(2), reason: try r.str(4), requestedBy: try r.str(5),
            at: try r.int(6))
        q.status = status
        q.updatedAt = try r.int(7)
        q.decidedBy = try r.optStr(8)
        q.decisionReason = try r.optStr(9)
        q.plan = r.bytes(10)
        q.verification = r.bytes(11)
        q.failure = try r.optStr(12)
        q.attempts = Int(try r.int(13))
        q.streamTag = try r.optInt(14).map { UInt64(bitPattern: $0) }
        q.requesterDigest = try r.optStr(15)
        q.proof = try r.optStr(16)
        q.sweptAt = try r.optInt(17)
        q.rawDueAt = try r.optInt(18)
        q.rawDestroyedAt = try r.optInt(19)
        q.rawDestroyedWhy = try r.optStr(20)
        q.sweepFindings = r.bytes(21)
        return q
    }

    /// A request's values in `requestColumns` order.
    static func bind(_ r: ErasureRequest, _ b: inout PostgresBindings) {
        b.append(r.id); b.bytes(r.subjectKey.bytes); b.bytes(r.sealedSubject); b.append(r.status.rawValue); b.append(r.reason)
        b.append(r.requestedBy); b.append(r.filedAt); b.append(r.updatedAt); b.append(r.decidedBy); b.append(r.decisionReason)
        b.bytes(r.plan); b.bytes(r.verification); b.append(r.failure); b.append(Int64(r.attempts))
        b.append(r.streamTag.map { Int64(bitPattern: $0) }); b.append(r.requesterDigest); b.append(r.proof); b.append(r.sweptAt)
        b.append(r.rawDueAt); b.append(r.rawDestroyedAt); b.append(r.rawDestroyedWhy); b.bytes(r.sweepFindings)
    }

    static let insertRequestSQL =
        "INSERT INTO requests(\(requestColumns)) VALUES (\((1...requestColumnCount).map { "$\($0)" }.joined(separator: ", "))) ON CONFLICT (id) DO NOTHING"

    static func insertRequest(_ s: PGSession, _ r: ErasureRequest) throws {
        guard try s.exec(.sql(insertRequestSQL) { bind(r, &$0) }) == 1 else {
            throw LetheError(.conflict, "request \(r.id) already exists")
        }
    }

    /// Texts a purge replaced (`purgedMark`) stay purged, whatever an older copy of the request holds;
    /// a requester's digest once known stays; a destroyed raw id stays destroyed.
    static let updateRequestSQL = """
        UPDATE requests SET subject_key = $2,
            sealed_subject = CASE WHEN raw_destroyed_at IS NOT NULL AND sealed_subject IS NULL THEN NULL ELSE $3::bytea END,
            status = $4,
            reason = CASE WHEN strpos(reason, '\(AuditTexts.purgedMark)') > 0 THEN reason ELSE $5 END,
            requested_by = CASE WHEN strpos(requested_by, '\(AuditTexts.purgedMark)') > 0 THEN requested_by ELSE $6 END,
            filed_at = $7, updated_at = $8,
            decided_by = CASE WHEN strpos(decided_by, '\(AuditTexts.purgedMark)') > 0 THEN decided_by ELSE $9 END,
            decision_reason = $10, plan = $11, verification = $12, failure = $13, attempts = $14, stream_tag = $15,
            requested_by_hmac = coalesce($16, requested_by_hmac), proof = $17, swept_at = $18, raw_due_at = $19,
            raw_destroyed_at = coalesce(raw_destroyed_at, $20), raw_destroyed_why = coalesce(raw_destroyed_why, $21), sweep_findings = $22
        WHERE id = $1 AND status = $23
        """

    static func updateRequest(_ s: PGSession, _ r: ErasureRequest, expecting expected: RequestStatus) throws {
        let n = try s.exec(
            .sql(updateRequestSQL) {
                bind(r, &$0)
                $0.append(expected.rawValue)
            })
        try checkUpdated(s, n, r.id, expecting: expected)
    }

    static func checkUpdated(_ s: PGSession, _ changed: Int, _ id: String, expecting expected: RequestStatus) throws {
        guard changed == 1 else {
            guard let row = try s.query(.sql("SELECT status FROM requests WHERE id = $1") { $0.append(id) }).rows.first else {
                throw LetheError(.notFound, "no request \(id)")
            }
            let stored = try PGRow(row).str(0)
            guard stored == expected.rawValue else {
                throw LetheError(.conflict, "request \(id) is \(stored), not \(expected.rawValue): it changed meanwhile")
            }
            throw LetheError(.conflict, "request \(id) changed meanwhile")
        }
    }

    static let saveDecisionSQL = """
        UPDATE requests SET status = $1, updated_at = $2,
            decided_by = CASE WHEN strpos(decided_by, '\(AuditTexts.purgedMark)') > 0 THEN decided_by ELSE $3 END,
            decision_reason = $4
        WHERE id = $5 AND status = $6
        """

    static func saveDecisions(_ s: PGSession, _ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        for r in rs {
            let n = try s.exec(
                .sql(saveDecisionSQL) {
                    $0.append(r.status.rawValue); $0.append(r.updatedAt); $0.append(r.decidedBy); $0.append(r.decisionReason)
                    $0.append(r.id); $0.append(expected.rawValue)
                })
            try checkUpdated(s, n, r.id, expecting: expected)
        }
    }

    static func fetchRequest(_ s: PGSession, id: String) throws -> ErasureRequest? {
        try s.query(.sql("SELECT \(requestColumns) FROM requests WHERE id = $1") { $0.append(id) }).rows.first.map { try request(PGRow($0)) }
    }

    static func fetchRequests(_ s: PGSession, status: RequestStatus?) throws -> [ErasureRequest] {
        let q: PostgresQuery
        if let status {
            q = .sql("SELECT \(requestColumns) FROM requests WHERE status = $1 ORDER BY filing") { $0.append(status.rawValue) }
        } else {
            q = try .sql("SELECT \(requestColumns) FROM requests ORDER BY filing")
        }
        return try s.query(q).rows.map { try request(PGRow($0)) }
    }

    static func pendingRequestIDs(_ s: PGSession) throws -> Set<String> {
        var out = Set<String>()
        for row in try s.query("SELECT request_ids FROM journal WHERE job IN (SELECT job FROM journal WHERE state = 'pending')").rows {
            let t = try PGRow(row).str(0)
            guard let ids = try? JSONDecoder().decode([String].self, from: Data(t.utf8)) else {
                throw LetheError(.corrupt, "a journal step has unreadable request ids")
            }
            out.formUnion(ids)
        }
        return out
    }

    // MARK: Readers

    public func request(id: String) async throws -> ErasureRequest? {
        try await read("cannot read request \(id)") { s in try Self.fetchRequest(s, id: id) }
    }

    public func requests(ids: [String]) async throws -> [ErasureRequest] {
        guard !ids.isEmpty else { return [] }
        let found = try await read("cannot read \(ids.count) request(s)") { s in
            try s.query(.sql("SELECT \(Self.requestColumns) FROM requests WHERE id = ANY($1)") { $0.append(ids) }).rows.map { try Self.request(PGRow($0)) }
        }
        let byID = Dictionary(found.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return ids.compactMap { byID[$0] }
    }

    public func requests(status: RequestStatus?, after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        if after == nil && limit == Int.max {
            return Page(items: try await read("cannot list requests") { s in try Self.fetchRequests(s, status: status) }, next: nil)
        }
        guard limit > 0 else { throw LetheError(.badUsage, "a page holds at least one request") }
        let from = try Self.cursor(after)
        return try await read("cannot list requests") { s in
            let q = PostgresQuery.sql(
                "SELECT \(Self.requestColumns), filing FROM requests WHERE filing > $1\(status == nil ? "" : " AND status = $3") ORDER BY filing LIMIT $2"
            ) { b in
                b.append(from); b.append(Int64(limit))
                if let status { b.append(status.rawValue) }
            }
            return try Self.page(s.query(q).rows, limit: limit)
        }
    }

    static func cursor(_ after: String?) throws -> Int64 {
        guard let after else { return 0 }
        guard let n = Int64(after) else { throw LetheError(.badUsage, "not a cursor of the request listing: \(after)") }
        return n
    }

    static func page(_ rows: [PostgresRow], limit: Int) throws -> Page<ErasureRequest> {
        var items: [ErasureRequest] = []
        var last: Int64?
        for row in rows {
            let r = PGRow(row)
            items.append(try request(r))
            last = try r.int(requestColumnCount)
        }
        return Page(items: items, next: items.count == limit ? last.map { String($0) } : nil)
    }

    public func openRequests(subjectKeys: [SubjectKey]) async throws -> [SubjectKey: ErasureRequest] {
        let keys = Array(Set(subjectKeys)).map { ByteBuffer(bytes: $0.bytes) }
        guard !keys.isEmpty else { return [:] }
        let terminal = RequestStatus.allCases.filter(\.isTerminal).map(\.rawValue)
        return try await read("cannot look up requests by subject") { s in
            var out: [SubjectKey: ErasureRequest] = [:]
            let rows = try s.query(
                .sql("SELECT \(Self.requestColumns) FROM requests WHERE subject_key = ANY($1) AND NOT (status = ANY($2)) ORDER BY filing") {
                    $0.append(keys); $0.append(terminal)
                }
            ).rows
            for row in rows {
                let r = try Self.request(PGRow(row))
                out[r.subjectKey] = r
            }
            return out
        }
    }

    public func unswept(after: String?, limit: Int) async throws -> Page<ErasureRequest> {
        guard limit > 0 else { throw LetheError(.badUsage, "a page holds at least one request") }
        let from = try Self.cursor(after)
        return try await read("cannot list the unswept requests") { s in
            try Self.page(
                s.query(
                    .sql(
                        """
                        SELECT \(Self.requestColumns), filing FROM requests
                        WHERE status = 'verified' AND swept_at IS NULL AND filing > $1 ORDER BY filing LIMIT $2
                        """
                    ) {
                        $0.append(from); $0.append(Int64(limit))
                    }
                ).rows, limit: limit)
        }
    }

    public func sweepMarks(requestID: String) async throws -> [SweepMark] {
        try await read("cannot read the sweep marks of request \(requestID)") { s in
            try s.query(.sql("SELECT scope, sweep_id, at FROM request_sweeps WHERE request_id = $1 ORDER BY scope") { $0.append(requestID) }).rows.map {
                let r = PGRow($0)
                return SweepMark(requestID: requestID, scope: try r.str(0), sweepID: try r.str(1), at: try r.int(2))
            }
        }
    }

    public func sweep(id: String) async throws -> SweepRecord? {
        try await read("cannot read sweep \(id)") { s in
            try s.query(.sql("SELECT id, started_at, finished_at, scope, objects, bytes, result FROM sweeps WHERE id = $1") { $0.append(id) }).rows
                .first.map {
                    let r = PGRow($0)
                    return SweepRecord(
                        id: try r.str(0), startedAt: try r.int(1), finishedAt: try r.optInt(2), scope: try r.str(3), objects: try r.int(4),
                        bytes: try r.int(5), result: try r.optStr(6))
                }
        }
    }

    public func rawIDsDue(now: Int64, limit: Int) async throws -> [ErasureRequest] {
        guard limit > 0 else { return [] }
        return try await read("cannot list the raw ids due") { s in
            try s.query(
                .sql(
                    """
                    SELECT \(Self.requestColumns) FROM requests
                    WHERE sealed_subject IS NOT NULL AND raw_due_at IS NOT NULL AND raw_due_at <= $1 ORDER BY raw_due_at, id LIMIT $2
                    """
                ) {
                    $0.append(now); $0.append(Int64(limit))
                }
            ).rows.map { try Self.request(PGRow($0)) }
        }
    }

    static let forgottenStatuses = RequestStatus.allCases.filter(\.isForgotten).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    public func deletionTags(since: Int64) async throws -> DeletionChanges {
        try await read("cannot read the deletion set", consistent: true) { s in
            let latest = try PGRow(s.query("SELECT max(updated_at) FROM requests").rows[0]).optInt(0) ?? Int64.min
            let added = try s.query(
                .sql(
                    """
                    SELECT stream_tag FROM requests WHERE updated_at >= $1 AND stream_tag IS NOT NULL AND status IN (\(Self.forgottenStatuses))
                    """
                ) { $0.append(since) }
            ).rows.map { UInt64(bitPattern: try PGRow($0).int(0)) }
            let removed = try s.query(
                .sql(
                    """
                    SELECT DISTINCT r.stream_tag FROM requests r
                    WHERE r.updated_at >= $1 AND r.stream_tag IS NOT NULL AND r.status = 'rejected'
                      AND NOT EXISTS (SELECT 1 FROM requests f WHERE f.stream_tag = r.stream_tag AND f.status IN (\(Self.forgottenStatuses)))
                    """
                ) { $0.append(since) }
            ).rows.map { UInt64(bitPattern: try PGRow($0).int(0)) }
            return DeletionChanges(added: added, removed: removed, latest: latest)
        }
    }

    public func requestsWithoutStreamTag() async throws -> [ErasureRequest] {
        try await read("cannot list requests") { s in
            try s.query(
                "SELECT \(unescaped: Self.requestColumns) FROM requests WHERE stream_tag IS NULL AND sealed_subject IS NOT NULL ORDER BY filing"
            ).rows.map { try Self.request(PGRow($0)) }
        }
    }
}
