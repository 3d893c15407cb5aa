import Foundation
public import LetheCatalog
import LetheCore
import NIOCore
import PostgresNIO

/// One PostgreSQL transaction seen through `StateTransaction`: every writer on the same connection
/// between `BEGIN` and `COMMIT`.
struct PGTransaction: StateTransaction {
    let session: PGSession
    let store: PostgresStateStore

    var index: any SubjectIndexWriter { PGIndexWriter(s: session) }
    var requests: any RequestWriter { PGRequestWriter(s: session) }
    var audit: any AuditWriter { PGAuditWriter(s: session, key: store.auditKey) }
    var journal: any JournalWriter { PGJournalWriter(s: session) }
    var cursors: any CursorWriter { PGCursorWriter(s: session) }
    var tokens: any TokenWriter { PGTokenWriter(s: session) }
    var outbox: any OutboxWriter { PGOutboxWriter(s: session) }
    var vault: any VaultKeyWriter { PGVaultWriter(s: session) }

    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int {
        guard !bytes.isEmpty else { return 0 }
        return try PostgresStateStore.purge(session, ids: [(bytes, substring)], key: store.auditKey)
    }

    func purge(rawIDs: [[UInt8]]) throws -> Int {
        let ids = Array(Set(rawIDs.filter { !$0.isEmpty }))
        guard !ids.isEmpty else { return 0 }
        return try PostgresStateStore.purge(session, ids: ids.map { ($0, $0.count >= purgeSubstringMinimum) }, key: store.auditKey)
    }
}

struct PGIndexWriter: SubjectIndexWriter {
    let s: PGSession
    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [IndexedObject] {
        try PostgresStateStore.storeIndexed(s, try PostgresStateStore.encode(batch))
    }
    func quarantine(_ object: IndexedObject) throws -> IndexedObject { try PostgresStateStore.quarantine(s, object) }
    func removeObjects(dataset: String, keys: [String]) throws { try PostgresStateStore.removeObjects(s, dataset: dataset, keys: keys) }
    /// Postings of removed objects go with them: nothing is left for later.
    func purgeDeadPostings(force: Bool) throws -> Int { 0 }
    func objectRefs(dataset: String, keys: [String]) throws -> [String: Int64] {
        try PostgresStateStore.objectRefs(s, dataset: dataset, keys: keys)
    }
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject? {
        try PostgresStateStore.putDerived(s, object, from: version, dropped: dropped)
    }
    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String) throws
        -> IndexedObject?
    {
        try PostgresStateStore.putDerived(s, object, from: version, dropped: dropped, replacing: oldKey)
    }
}

struct PGRequestWriter: RequestWriter {
    let s: PGSession
    func request(id: String) throws -> ErasureRequest? { try PostgresStateStore.fetchRequest(s, id: id) }
    func requests(status: RequestStatus?) throws -> [ErasureRequest] { try PostgresStateStore.fetchRequests(s, status: status) }
    func insert(_ r: ErasureRequest) throws { try PostgresStateStore.insertRequest(s, r) }
    func update(_ r: ErasureRequest, expecting expected: RequestStatus) throws {
        try PostgresStateStore.updateRequest(s, r, expecting: expected)
    }
    func pendingRequestIDs() throws -> Set<String> { try PostgresStateStore.pendingRequestIDs(s) }
    func saveDecisions(_ rs: [ErasureRequest], expecting expected: RequestStatus) throws {
        try PostgresStateStore.saveDecisions(s, rs, expecting: expected)
    }
    func markSwept(requestIDs: [String], scope: String, sweepID: String, at: Int64) throws {
        guard !requestIDs.isEmpty else { return }
        try s.exec(
            .sql(
                """
                INSERT INTO request_sweeps(request_id, scope, sweep_id, at) SELECT r, $2, $3, $4 FROM unnest($1::text[]) AS r
                ON CONFLICT (request_id, scope) DO UPDATE SET sweep_id = excluded.sweep_id, at = excluded.at
                WHERE excluded.at >= request_sweeps.at
                """
            ) {
                $0.append(Array(Set(requestIDs))); $0.append(scope); $0.append(sweepID); $0.append(at)
            })
    }
    func recordSweep(_ w: SweepRecord) throws {
        try s.exec(
            .sql(
                """
                INSERT INTO sweeps(id, started_at, finished_at, scope, objects, bytes, result) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, finished_at = excluded.finished_at,
                    scope = excluded.scope, objects = excluded.objects, bytes = excluded.bytes, result = excluded.result
                """
            ) { b in
                b.append(w.id); b.append(w.startedAt); b.append(w.finishedAt); b.append(w.scope); b.append(w.objects); b.append(w.bytes)
                b.append(w.result)
            })
    }
}

struct PGAuditWriter: AuditWriter {
    let s: PGSession
    let key: [UInt8]?
    func append(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try PostgresStateStore.appendAudit(s, event: event, requestID: requestID, actor: actor, details: details, at: at, key: key, requestIDs: [])
    }
    func append(_ event: AuditEvent, requestIDs: [String], actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try PostgresStateStore.appendAudit(
            s, event: event, requestID: requestIDs.count == 1 ? requestIDs[0] : nil, actor: actor, details: details, at: at, key: key,
            requestIDs: requestIDs)
    }
    func text(_ text: String) throws -> AuditTextRef {
        let hmac = AuditChain.textDigest(text, key: key)
        let id = try PGRow(
            s.query(
                .sql("INSERT INTO audit_texts(hmac, text) VALUES ($1, $2) RETURNING id") {
                    $0.append(hmac); $0.append(text)
                }
            ).rows[0]
        ).int(0)
        return AuditTextRef(id: id, hmac: hmac)
    }
}

struct PGJournalWriter: JournalWriter {
    let s: PGSession
    func createJob(_ steps: [JournalStep]) throws {
        guard !steps.isEmpty else { return }
        var jobs: [String] = [], ordinals: [Int64] = [], datasets: [String] = [], keys: [String] = [], ids: [String] = []
        var subjects: [ByteBuffer] = [], states: [String] = [], outcomes: [String?] = [], attempts: [Int64] = [], kinds: [String] = []
        for st in steps {
            jobs.append(st.job); ordinals.append(st.ordinal); datasets.append(st.dataset); keys.append(st.objectKey)
            ids.append(String(decoding: try JSONEncoder().encode(st.requestIDs), as: UTF8.self))
            var flat: [UInt8] = []
            for k in st.subjectKeys { flat += k.bytes }
            subjects.append(ByteBuffer(bytes: flat)); states.append(st.state.rawValue); outcomes.append(st.outcome)
            attempts.append(Int64(st.attempts)); kinds.append(st.kind.rawValue)
        }
        let outcomeTexts = outcomes.map { $0 ?? "" }, outcomeNull = outcomes.map { $0 == nil }
        try s.exec(
            .sql(
                """
                INSERT INTO journal(job, ordinal, dataset, object_key, request_ids, subject_keys, state, outcome, attempts, kind)
                SELECT j, o, d, k, r, sk, st, CASE WHEN n THEN NULL ELSE oc END, a, kd
                FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::bool[],
                            $10::bigint[], $11::text[]) AS x(j, o, d, k, r, sk, st, oc, n, a, kd)
                ON CONFLICT (job, ordinal) DO NOTHING
                """
            ) { b in
                b.append(jobs); b.append(ordinals); b.append(datasets); b.append(keys); b.append(ids); b.append(subjects); b.append(states)
                b.append(outcomeTexts); b.append(outcomeNull); b.append(attempts); b.append(kinds)
            })
    }
    func beginStep(job: String, ordinal: Int64) throws -> Int {
        guard
            let row = try s.query(
                .sql("UPDATE journal SET attempts = attempts + 1 WHERE job = $1 AND ordinal = $2 RETURNING attempts") {
                    $0.append(job); $0.append(ordinal)
                }
            ).rows.first
        else { throw LetheError(.notFound, "no journal step \(job)#\(ordinal)") }
        return Int(try PGRow(row).int(0))
    }
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws {
        let n = try s.exec(
            .sql("UPDATE journal SET state = $1, outcome = $2 WHERE job = $3 AND ordinal = $4") {
                $0.append(state.rawValue); $0.append(outcome); $0.append(job); $0.append(ordinal)
            })
        guard n == 1 else { throw LetheError(.notFound, "no journal step \(job)#\(ordinal)") }
    }
    func pruneJob(_ job: String) throws {
        try s.exec(.sql("DELETE FROM journal WHERE job = $1 AND state <> 'pending'") { $0.append(job) })
    }
    func recordTemporary(_ key: String, owner: Int32, table: String?) throws {
        let at = Int64(Date().timeIntervalSince1970 * 1000)
        try s.exec(
            .sql(
                """
                INSERT INTO temp_files(key, owner, at, table_root) VALUES ($1, $2, $3, $4)
                ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, at = excluded.at, table_root = excluded.table_root
                """
            ) {
                $0.append(key); $0.append(Int64(owner)); $0.append(at); $0.append(table)
            })
    }
    func forgetTemporaries(_ keys: [String]) throws {
        guard !keys.isEmpty else { return }
        try s.exec(.sql("DELETE FROM temp_files WHERE key = ANY($1)") { $0.append(keys) })
    }
}

struct PGCursorWriter: CursorWriter {
    let s: PGSession
    func deltaIndex(dataset: String) throws -> DeltaIndexCursor? { try PostgresStateStore.deltaIndex(s, dataset: dataset) }
    func setDeltaIndex(_ cursor: DeltaIndexCursor, dataset: String) throws {
        try PostgresStateStore.storeCursor(s, .deltaIndex(dataset: dataset), version: cursor.version, detail: cursor.text)
    }
    func propagation(dataset: String) throws -> Int64? { try PostgresStateStore.propagation(s, dataset: dataset) }
    func setPropagation(_ version: Int64, dataset: String) throws {
        try PostgresStateStore.storeCursor(s, .propagation(dataset: dataset), version: version, detail: nil)
    }
    func setting(_ name: String) throws -> String? { try PostgresStateStore.readSetting(s, name) }
    func setSetting(_ name: String, _ value: String) throws { try PostgresStateStore.setSetting(s, name, value) }
    func removeSetting(_ name: String) throws { try PostgresStateStore.removeSetting(s, name) }
}

/// The store reads through itself: each reader method is one statement (or one read-only snapshot).
extension PostgresStateStore: SubjectIndexReader, RequestReader, AuditReader, JournalReader, CursorReader {
    public var index: any SubjectIndexReader { self }
    public var requests: any RequestReader { self }
    public var audit: any AuditReader { self }
    public var journal: any JournalReader { self }
    public var cursors: any CursorReader { self }
}
