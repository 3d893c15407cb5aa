import Foundation
import GRDB
import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    // MARK: Journal

    static let stepColumns = "job, ordinal, dataset, object_key, request_ids, subject_keys, state, outcome, attempts, kind"

    static func step(_ row: Row, at path: String) throws -> JournalStep {
        let job: String = row[0]
        let ordinal: Int64 = row[1]
        let where_ = "journal step \(job)#\(ordinal)"
        let idsText: String = row[4]
        guard let ids = try? JSONDecoder().decode([String].self, from: Data(idsText.utf8)) else {
            throw LetheError(.corrupt, "\(where_) has unreadable request ids", at: path)
        }
        let keyBytes: Data = row[5]
        guard keyBytes.count % 32 == 0 else {
            throw LetheError(.corrupt, "\(where_) has \(keyBytes.count) bytes of subject keys (not a multiple of 32)", at: path)
        }
        let flat = Array(keyBytes)
        let keys = stride(from: 0, to: flat.count, by: 32).map { SubjectKey(bytes: Array(flat[$0..<$0 + 32])) }
        let stateText: String = row[6]
        guard let state = JournalStep.State(rawValue: stateText) else {
            throw LetheError(.corrupt, "\(where_) has unknown state \(stateText)", at: path)
        }
        let kindText: String = row[9]
        guard let kind = JournalStep.Kind(rawValue: kindText) else {
            throw LetheError(.corrupt, "\(where_) has unknown kind \(kindText)", at: path)
        }
        return JournalStep(
            job: job, ordinal: ordinal, dataset: row[2], objectKey: row[3], requestIDs: ids,
            subjectKeys: keys, state: state, outcome: row[7], attempts: row[8], kind: kind)
    }

    /// The statement arguments of steps, encoded outside any transaction.
    static func encodeSteps(_ steps: [JournalStep]) throws -> [StatementArguments] {
        var encoded: [StatementArguments] = []
        encoded.reserveCapacity(steps.count)
        for s in steps {
            let ids = try JSONEncoder().encode(s.requestIDs)
            var keys = Data(capacity: s.subjectKeys.count * 32)
            for k in s.subjectKeys { keys.append(contentsOf: k.bytes) }
            encoded.append([
                s.job, s.ordinal, s.dataset, s.objectKey, String(decoding: ids, as: UTF8.self), keys,
                s.state.rawValue, s.outcome, s.attempts, s.kind.rawValue,
            ])
        }
        return encoded
    }

    static func insertSteps(_ db: Database, _ rows: [StatementArguments]) throws {
        let insert = try db.cachedStatement(
            sql: """
                INSERT OR IGNORE INTO journal(\(Self.stepColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        for args in rows { try insert.execute(arguments: args) }
    }

    /// Ids of the requests named by jobs that still have a pending step.
    static func pendingRequestIDs(_ db: Database, at path: String) throws -> Set<String> {
        var out = Set<String>()
        let texts = try String.fetchAll(
            db,
            sql: """
                SELECT request_ids FROM journal WHERE job IN (SELECT job FROM journal WHERE state = 'pending')
                """)
        for t in texts {
            guard let ids = try? JSONDecoder().decode([String].self, from: Data(t.utf8)) else {
                throw LetheError(.corrupt, "a journal step has unreadable request ids", at: path)
            }
            out.formUnion(ids)
        }
        return out
    }

    public func pendingSteps() async throws -> [JournalStep] {
        let path = databasePath
        return try await read("cannot read the journal") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.stepColumns) FROM journal
                    WHERE job IN (SELECT job FROM journal WHERE state = 'pending')
                    ORDER BY job, ordinal
                    """
            ).map { try Self.step($0, at: path) }
        }
    }

    public func steps(job: String) async throws -> [JournalStep] {
        let path = databasePath
        return try await read("cannot read the journal of job \(job)") { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.stepColumns) FROM journal WHERE job = ? ORDER BY ordinal",
                arguments: [job]
            ).map { try Self.step($0, at: path) }
        }
    }

    static func finishStep(_ db: Database, job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws {
        try db.execute(
            sql: "UPDATE journal SET state = ?, outcome = ? WHERE job = ? AND ordinal = ?",
            arguments: [state.rawValue, outcome, job, ordinal])
        guard db.changesCount == 1 else {
            throw LetheError(.notFound, "no journal step \(job)#\(ordinal)")
        }
    }

    static func beginStep(_ db: Database, job: String, ordinal: Int64) throws -> Int {
        try db.execute(
            sql: "UPDATE journal SET attempts = attempts + 1 WHERE job = ? AND ordinal = ?",
            arguments: [job, ordinal])
        guard db.changesCount == 1,
            let n = try Int.fetchOne(db, sql: "SELECT attempts FROM journal WHERE job = ? AND ordinal = ?", arguments: [job, ordinal])
        else { throw LetheError(.notFound, "no journal step \(job)#\(ordinal)") }
        return n
    }

    static func pruneJob(_ db: Database, _ job: String) throws {
        try db.execute(sql: "DELETE FROM journal WHERE job = ? AND state != 'pending'", arguments: [job])
    }
}
