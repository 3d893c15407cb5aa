import Foundation
public import LetheCatalog
import LetheCore
import PostgresNIO

extension PostgresStateStore {
    // MARK: Audit log

    static let auditColumns = "seq, at, event, request_id, actor, details, prev_hash, hash"

    static func entry(_ r: PGRow) throws -> AuditEntry {
        AuditEntry(
            seq: try r.int(0), at: try r.int(1), event: try r.str(2), requestID: try r.optStr(3), actor: try r.optStr(4), details: try r.str(5),
            prevHash: try r.str(6), hash: try r.str(7))
    }

    /// Appends in the caller's transaction: the head row is locked (`FOR UPDATE`) until it commits
    /// or rolls back, so appenders on any number of connections or machines chain one after another.
    static func appendAudit(
        _ s: PGSession, event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64, key: [UInt8]?,
        requestIDs: [String]
    ) throws -> AuditEntry {
        let head = PGRow(try s.query("SELECT seq, hash FROM audit_head FOR UPDATE").rows[0])
        let seq = try head.int(0) + 1
        let prev = try head.str(1)
        let hash = AuditChain.hash(
            seq: seq, at: at, event: event.rawValue, requestID: requestID, actor: actor, details: details, prevHash: prev, key: key)
        var ids = requestIDs.filter { $0 != requestID }
        if let requestID { ids.insert(requestID, at: 0) }
        try s.exec(
            .sql(
                """
                WITH a AS (
                    INSERT INTO audit(seq, at, event, request_id, actor, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ), r AS (
                    INSERT INTO audit_requests(request_id, seq) SELECT DISTINCT i, $1 FROM unnest($9::text[]) AS i ON CONFLICT DO NOTHING
                )
                UPDATE audit_head SET seq = $1, hash = $8
                """
            ) { b in
                b.append(seq); b.append(at); b.append(event.rawValue); b.append(requestID); b.append(actor); b.append(details); b.append(prev)
                b.append(hash); b.append(ids)
            })
        return AuditEntry(seq: seq, at: at, event: event.rawValue, requestID: requestID, actor: actor, details: details, prevHash: prev, hash: hash)
    }

    public func entries(from seq: Int64, limit: Int) async throws -> [AuditEntry] {
        let n = Int64(min(limit, Int(Int64.max)))
        return try await read("cannot read the audit log") { s in
            try s.query(
                .sql("SELECT \(Self.auditColumns) FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2") {
                    $0.append(seq); $0.append(n)
                }
            ).rows
                .map { try Self.entry(PGRow($0)) }
        }
    }

    public func entries(requestID: String) async throws -> [AuditEntry] {
        try await read("cannot read the audit log") { s in
            try s.query(
                .sql(
                    """
                    SELECT a.seq, a.at, a.event, a.request_id, a.actor, a.details, a.prev_hash, a.hash
                    FROM audit_requests r JOIN audit a ON a.seq = r.seq WHERE r.request_id = $1 ORDER BY r.seq
                    """
                ) { $0.append(requestID) }
            ).rows.map { try Self.entry(PGRow($0)) }
        }
    }

    public func head() async throws -> AuditEntry? {
        try await read("cannot read the audit log") { s in
            try s.query("SELECT \(unescaped: Self.auditColumns) FROM audit ORDER BY seq DESC LIMIT 1").rows.first.map { try Self.entry(PGRow($0)) }
        }
    }

    public func texts() async throws -> AuditTexts {
        try await read("cannot read the audit log's texts") { s in
            var out = AuditTexts()
            for row in try s.query("SELECT id, text FROM audit_texts").rows {
                let r = PGRow(row)
                if let t = try r.optStr(1) { out.texts[try r.int(0)] = t } else { out.purged.insert(try r.int(0)) }
            }
            return out
        }
    }

    public func textDigest(_ text: String) -> String { AuditChain.textDigest(text, key: auditKey) }

    // MARK: Journal

    static let stepColumns = "job, ordinal, dataset, object_key, request_ids, subject_keys, state, outcome, attempts, kind"

    static func step(_ r: PGRow) throws -> JournalStep {
        let job = try r.str(0), ordinal = try r.int(1)
        let at = "journal step \(job)#\(ordinal)"
        guard let ids = try? JSONDecoder().decode([String].self, from: Data(try r.str(4).utf8)) else {
            throw LetheError(.corrupt, "\(at) has unreadable request ids")
        }
        let flat = r.bytes(5) ?? []
        guard flat.count % 32 == 0 else { throw LetheError(.corrupt, "\(at) has \(flat.count) bytes of subject keys (not a multiple of 32)") }
        let keys = stride(from: 0, to: flat.count, by: 32).map { SubjectKey(bytes: Array(flat[$0..<$0 + 32])) }
        let stateText = try r.str(6)
        guard let state = JournalStep.State(rawValue: stateText) else { throw LetheError(.corrupt, "\(at) has unknown state \(stateText)") }
        let kindText = try r.str(9)
        guard let kind = JournalStep.Kind(rawValue: kindText) else { throw LetheError(.corrupt, "\(at) has unknown kind \(kindText)") }
        return JournalStep(
            job: job, ordinal: ordinal, dataset: try r.str(2), objectKey: try r.str(3), requestIDs: ids, subjectKeys: keys, state: state,
            outcome: try r.optStr(7), attempts: Int(try r.int(8)), kind: kind)
    }

    public func pendingSteps() async throws -> [JournalStep] {
        try await read("cannot read the journal") { s in
            try s.query(
                """
                SELECT \(unescaped: Self.stepColumns) FROM journal WHERE job IN (SELECT job FROM journal WHERE state = 'pending') ORDER BY job, ordinal
                """
            ).rows.map { try Self.step(PGRow($0)) }
        }
    }

    public func steps(job: String) async throws -> [JournalStep] {
        try await read("cannot read the journal of job \(job)") { s in
            try s.query(.sql("SELECT \(Self.stepColumns) FROM journal WHERE job = $1 ORDER BY ordinal") { $0.append(job) }).rows.map {
                try Self.step(PGRow($0))
            }
        }
    }

    public func temporaries() async throws -> [TemporaryFile] {
        try await read("cannot read the temporary files") { s in
            try s.query("SELECT key, owner, table_root FROM temp_files ORDER BY key").rows.map {
                let r = PGRow($0)
                return TemporaryFile(key: try r.str(0), owner: Int32(truncatingIfNeeded: try r.int(1)), table: try r.optStr(2))
            }
        }
    }

    // MARK: Cursors and settings

    public func deltaIndex(dataset: String) async throws -> DeltaIndexCursor? {
        try await read("cannot read the index cursor of dataset \(dataset)") { s in try Self.deltaIndex(s, dataset: dataset) }
    }

    public func propagation(dataset: String) async throws -> Int64? {
        try await read("cannot read the propagation cursor of dataset \(dataset)") { s in try Self.propagation(s, dataset: dataset) }
    }

    public func setting(_ name: String) async throws -> String? {
        try await read("cannot read setting \(name)") { s in try Self.readSetting(s, name) }
    }

    public func settings(prefix: String) async throws -> [String: String] {
        try await read("cannot read settings \(prefix)*", consistent: true) { s in
            var out: [String: String] = [:]
            for row in try s.query(.sql("SELECT name, value FROM settings WHERE starts_with(name, $1)") { $0.append(prefix) }).rows {
                let r = PGRow(row)
                out[try r.str(0)] = try r.str(1)
            }
            for row in try s.query("SELECT dataset, kind, version, detail FROM cursors").rows {
                let r = PGRow(row)
                let dataset = try r.str(0), kind = try r.str(1)
                let c: CursorSetting = kind == "propagation" ? .propagation(dataset: dataset) : .deltaIndex(dataset: dataset)
                guard c.kind == kind, c.name.hasPrefix(prefix) else { continue }
                out[c.name] = Self.settingText(c, version: try r.int(2), detail: try r.optStr(3))
            }
            return out
        }
    }

    static func deltaIndex(_ s: PGSession, dataset: String) throws -> DeltaIndexCursor? {
        let c = CursorSetting.deltaIndex(dataset: dataset)
        let detail = try s.query(
            .sql("SELECT detail FROM cursors WHERE dataset = $1 AND kind = $2") {
                $0.append(dataset); $0.append(c.kind)
            }
        ).rows
            .first.flatMap { try PGRow($0).optStr(0) }
        return detail.flatMap(DeltaIndexCursor.init(text:))
    }

    static func propagation(_ s: PGSession, dataset: String) throws -> Int64? {
        let c = CursorSetting.propagation(dataset: dataset)
        return try s.query(
            .sql("SELECT version FROM cursors WHERE dataset = $1 AND kind = $2") {
                $0.append(dataset); $0.append(c.kind)
            }
        ).rows
            .first.map { try PGRow($0).int(0) }
    }

    static func storeCursor(_ s: PGSession, _ c: CursorSetting, version: Int64, detail: String?) throws {
        try s.exec(
            .sql(
                """
                INSERT INTO cursors(dataset, kind, version, detail) VALUES ($1, $2, $3, $4)
                ON CONFLICT (dataset, kind) DO UPDATE SET version = excluded.version, detail = excluded.detail
                """
            ) {
                $0.append(c.dataset); $0.append(c.kind); $0.append(version); $0.append(detail)
            })
    }

    static func settingText(_ c: CursorSetting, version: Int64, detail: String?) -> String? {
        switch c {
        case .deltaIndex: detail
        case .propagation: String(version)
        }
    }

    static func readSetting(_ s: PGSession, _ name: String) throws -> String? {
        if let c = CursorSetting(name: name),
            let row = try s.query(
                .sql("SELECT version, detail FROM cursors WHERE dataset = $1 AND kind = $2") {
                    $0.append(c.dataset); $0.append(c.kind)
                }
            )
            .rows.first
        {
            let r = PGRow(row)
            return settingText(c, version: try r.int(0), detail: try r.optStr(1))
        }
        return try s.query(.sql("SELECT value FROM settings WHERE name = $1") { $0.append(name) }).rows.first.map { try PGRow($0).str(0) }
    }

    static func setSetting(_ s: PGSession, _ name: String, _ value: String) throws {
        if let c = CursorSetting(name: name) {
            switch c {
            case .deltaIndex:
                try storeCursor(s, c, version: DeltaIndexCursor(text: value)?.version ?? -1, detail: value)
                try s.exec(.sql("DELETE FROM settings WHERE name = $1") { $0.append(name) })
                return
            case .propagation:
                if let v = Int64(value) {
                    try storeCursor(s, c, version: v, detail: nil)
                    try s.exec(.sql("DELETE FROM settings WHERE name = $1") { $0.append(name) })
                    return
                }
            }
        }
        try s.exec(
            .sql("INSERT INTO settings(name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value") {
                $0.append(name); $0.append(value)
            })
    }

    static func removeSetting(_ s: PGSession, _ name: String) throws {
        if let c = CursorSetting(name: name) {
            try s.exec(
                .sql("DELETE FROM cursors WHERE dataset = $1 AND kind = $2") {
                    $0.append(c.dataset); $0.append(c.kind)
                })
        }
        try s.exec(.sql("DELETE FROM settings WHERE name = $1") { $0.append(name) })
    }
}
