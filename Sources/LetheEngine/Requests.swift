import Foundation
public import LetheCore
public import LetheCatalog

extension Lethe {
    /// Files and plans one erasure request per subject. A subject that already has
    /// an open request (not rejected, not verified) gets that request back.
    ///
    /// Refused before anything is stored: a reason that holds the raw id (it would enter the
    /// append-only audit log; `.badInput`), and any subject whose plan reaches data Lethe cannot
    /// handle (`.unsupported`, naming the dataset). Each request is filed and planned in one
    /// transaction, so a kill leaves none half-filed.
    public func forget(_ subjects: [SubjectID], reason: String, by requester: String) async throws -> [ErasureRequest] {
        return try await durably {
            try await forget(subjects, reason: reason, by: requester, checkReason: true)
        }
    }

    /// `checkReason: false` for reasons and requesters Lethe writes itself (propagation names versions
    /// and datasets, which a short id could match).
    func forget(_ subjects: [SubjectID], reason: String, by requester: String, checkReason: Bool) async throws -> [ErasureRequest] {
        try await forget(calls: [FilingCall(subjects, reason: reason, by: requester)], checkReason: checkReason)[0].get()
    }

    /// The refusals of one caller's filing that need no state: no requester, an empty id, a reason or
    /// requester's name that holds a subject's id.
    func checkFiling(_ c: FilingCall, checkReason: Bool) throws {
        guard !c.requester.isEmpty else { throw LetheError(.badUsage, "name who files the request (--by)") }
        let reasonBytes = Self.lowered(c.reason), requesterBytes = Self.lowered(c.requester)
        for s in c.subjects {
            guard !s.bytes.isEmpty else { throw LetheError(.badInput, "an empty subject id") }
            if checkReason && Self.text(lowered: reasonBytes, holds: s) {
                throw LetheError(
                    .badInput,
                    "the reason holds the subject's id (\(key(for: s).short)); it would stay in the append-only audit log: describe the request without it (e.g. a ticket number); nothing was filed"
                )
            }
            if checkReason && Self.text(lowered: requesterBytes, holds: s) {
                throw LetheError(
                    .badInput,
                    "the requester's name (--by) holds the subject's id (\(key(for: s).short)); it would stay in the append-only audit log and the request could never be verified: name who files it without the id (a person or a ticket system); nothing was filed"
                )
            }
        }
    }

    /// A request ready to be written: the request as stored (planned), and the writes of its
    /// transaction (the request, its audit entries and outbox notes).
    struct PreparedFiling: Sendable {
        var stored: [ErasureRequest]
        var write: @Sendable (any StateTransaction) throws -> Void
    }

    /// One request: `filed` and `planned` entries.
    func prepareOne(_ r: ErasureRequest, _ plan: ErasurePlan) throws -> PreparedFiling {
        let at = now(), reason = r.reason, requester = r.requestedBy
        let planned = try RequestLifecycle.apply(.planned(plan: plan.json), to: r).get()
        // Built only when someone reads them (a sink is configured): the payload costs a few % of a filing.
        let notes = writesOutbox ? Self.notifications(from: nil, to: planned, plan: plan) : []
        let plannedDetails = JSONValue.object([
            "subject_key": .string(r.subjectKey.hex), "datasets": .int(Int64(plan.datasets.count)),
            "objects": .int(Int64(plan.totalObjects)), "rows": .int(plan.totalRows),
        ]).text
        return PreparedFiling(stored: [planned]) { [self] tx in
            try tx.insertRequest(r)
            let (actor, details) = try Self.auditDetails(
                tx, actor: requester, texts: ["reason": reason],
                ["subject_key": .string(r.subjectKey.hex)])
            try tx.appendAudit(event: .filed, requestID: r.id, actor: actor, details: details, at: at)
            try tx.updateRequest(planned, expecting: .filed)
            try tx.appendAudit(event: .planned, requestID: r.id, actor: "lethe", details: plannedDetails, at: at)
            try enqueue(notes, tx, at: at)
        }
    }

    /// Many requests of one caller: one `filed_batch` entry listing their ids and subject keys (and
    /// the counts of their plans; the reason and the requester stored once as audit texts).
    func prepareBatch(_ chunk: ArraySlice<(ErasureRequest, ErasurePlan)>, reason: String, by requester: String) throws -> PreparedFiling {
        var planned: [ErasureRequest] = []
        planned.reserveCapacity(chunk.count)
        var objects = 0, rows: Int64 = 0
        var ids: [JSONValue] = [], keys: [JSONValue] = [], counts: [JSONValue] = []
        var notes: [OutboxNote] = []
        for (r, plan) in chunk {
            planned.append(try RequestLifecycle.apply(.planned(plan: plan.json), to: r).get())
            if writesOutbox { notes += Self.notifications(from: nil, to: planned[planned.count - 1], plan: plan) }
            objects += plan.totalObjects
            rows += plan.totalRows
            ids.append(.string(r.id))
            keys.append(.string(r.subjectKey.hex))
            counts.append(.array([.int(Int64(plan.datasets.count)), .int(Int64(plan.totalObjects)), .int(plan.totalRows)]))
        }
        // The long lists rendered here, beside the writes of the chunk before, not in the transaction
        // (the same text: `.raw` is inserted as it is).
        let details: [String: JSONValue] = [
            "count": .int(Int64(planned.count)), "requests": .raw(JSONValue.array(ids).text),
            "subject_keys": .raw(JSONValue.array(keys).text),
            "objects": .int(Int64(objects)), "rows": .int(rows), "plans": .raw(JSONValue.array(counts).text),
        ]
        let batch = planned, at = now(), batchNotes = notes
        return PreparedFiling(stored: batch) { [self] tx in
            try tx.requests.insert(batch)
            let (actor, d) = try Self.auditDetails(tx, actor: requester, texts: ["reason": reason], details)
            try tx.audit.append(.filedBatch, requestIDs: batch.map(\.id), actor: actor, details: d, at: at)
            try enqueue(batchNotes, tx, at: at)
        }
    }

    /// Files one request: `filed` and `planned` entries, one transaction.
    func fileOne(_ r: ErasureRequest, _ plan: ErasurePlan) async throws -> ErasureRequest {
        let p = try prepareOne(r, plan)
        try await meta.transaction("cannot file request \(r.id)") { tx in try p.write(tx) }
        return p.stored[0]
    }

    /// Files many requests, already planned: chunks of `requestChunk`, each one transaction with one
    /// `filed_batch` entry listing its request ids and subject keys (and the counts of their plans;
    /// the reason and the requester stored once per chunk as audit texts). A kill leaves whole chunks.
    /// The next chunk is prepared (its requests planned, its plans encoded, its audit entry built) while
    /// this one is written: the same transactions in the same order, the CPU of one beside the other.
    func fileBatch(_ filed: [(ErasureRequest, ErasurePlan)], reason: String, by requester: String) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        out.reserveCapacity(filed.count)
        let chunk = Self.requestChunk
        let starts = Array(stride(from: 0, to: filed.count, by: chunk))
        guard !starts.isEmpty else { return out }
        @Sendable func prepared(_ i: Int) throws -> PreparedFiling {
            try prepareBatch(filed[starts[i]..<min(starts[i] + chunk, filed.count)], reason: reason, by: requester)
        }
        var p = try prepared(0)
        // Several chunks: their commits checkpointed once, at the end (`batchWrites`); one chunk as before.
        try await batchWrites(chunks: starts.count) {
            for i in starts.indices {
                async let next: PreparedFiling? = i + 1 < starts.count ? prepared(i + 1) : nil
                let current = p
                try await meta.transaction("cannot file \(current.stored.count) requests") { tx in try current.write(tx) }
                out += current.stored
                guard let n = try await next else { break }
                p = n
            }
        }
        return out
    }

    /// True when `text` holds the subject's id, or a part of a composite id: anywhere (ignoring
    /// ASCII case) for a part of at least `minimumNeedle` bytes, as a whole word for a shorter one.
    static func text(_ text: String, holds subject: SubjectID) -> Bool {
        Self.text(lowered: lowered(text), holds: subject)
    }

    /// `text`'s bytes, ASCII letters lowered (what `text(lowered:holds:)` searches).
    static func lowered(_ text: String) -> [UInt8] { text.utf8.map(lowerASCII) }

    /// `text(_:holds:)` of a text already `lowered` (one text checked against many subjects).
    static func text(lowered hay: [UInt8], holds subject: SubjectID) -> Bool {
        var parts: [[UInt8]]
        if subject.bytes.contains(SubjectID.partSeparator) {
            parts = subject.bytes.split(separator: SubjectID.partSeparator).map(Array.init)
            if parts.count > 1 { parts.append(subject.bytes) }
        } else {
            parts = [subject.bytes]
        }
        for part in parts where !part.isEmpty && part.count <= hay.count {
            let needle = part.map(lowerASCII)
            var i = 0
            while i + needle.count <= hay.count {
                if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) {
                    if needle.count >= minimumNeedle { return true }
                    let before = i == 0 ? nil : hay[i - 1], after = i + needle.count < hay.count ? hay[i + needle.count] : nil
                    if !(before.map(isWordByte) ?? false) && !(after.map(isWordByte) ?? false) { return true }
                }
                i += 1
            }
        }
        return false
    }

    private static func lowerASCII(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }
    private static func isWordByte(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 97 && b <= 122) || b >= 0x80 }

    static func newRequestID() -> String {
        // Ten letters of 31 from one 64-bit draw (31^10 < 2^64; the modulo bias is below 2^-14 per id),
        // one system random call per request instead of ten (`forget --from` of 100,000 subjects).
        var rng = SystemRandomNumberGenerator()
        let x = rng.next() as UInt64
        return withUnsafeBytes(of: x.littleEndian) { requestIDs(draws: Array($0))[0] }
    }

    /// `count` new request ids, each as `newRequestID` makes one (ten letters of 31 from a 64-bit draw),
    /// the draws read from the system in one call (`forget --from` of 100,000 subjects: one `getrandom`
    /// per id was a fifth of the filing's owners step), in ascending order: a batch's requests are
    /// inserted in filing order, so each chunk's ids land in one stretch of the `requests` id index and
    /// of `audit_requests` instead of all over them (SQLite rewrites ~20 % fewer pages for 100,000).
    /// The ids are as random as before; only their order within one filing follows the filing order.
    static func newRequestIDs(_ count: Int) throws -> [String] {
        let draws = try StateSecrets.randomBytes(count * 8, what: "request ids")
        let ids = requestIDs(draws: draws)
        // Sorted by a number that orders as the texts do (the letters' ASCII ranks, first letter first).
        var rank = [UInt64](repeating: 0, count: 128)
        for (i, c) in requestIDAlphabet.sorted().enumerated() { rank[Int(c)] = UInt64(i) }
        let order = ids.map { id in id.utf8.dropFirst(2).reduce(UInt64(0)) { $0 &* 31 &+ rank[Int($1)] } }
        return zip(order, ids).sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The request ids of 64-bit draws (8 bytes each, little-endian), one id a draw.
    static func requestIDs(draws: [UInt8]) -> [String] {
        draws.withUnsafeBytes { raw in
            (0..<(raw.count / 8)).map { i in
                var x = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
                return String(unsafeUninitializedCapacity: 12) { out in
                    out[0] = UInt8(ascii: "r")
                    out[1] = UInt8(ascii: "-")
                    for j in 2..<12 {
                        out[j] = requestIDAlphabet[Int(x % 31)]
                        x /= 31
                    }
                    return 12
                }
            }
        }
    }

    private static let requestIDAlphabet = Array("abcdefghjkmnpqrstuvwxyz23456789".utf8)

    /// A request by id, or `.notFound`.
    public func request(_ id: String) async throws -> ErasureRequest {
        guard let r = try await meta.request(id: id) else { throw LetheError(.notFound, "no request \(id)") }
        return r
    }

    /// Applies a lifecycle event to a stored request (compare-and-swap on its status) and appends
    /// its audit entry, in one transaction: a kill never leaves one without the other.
    /// `person`: the actor is someone's name (`--by`), and `texts` free text they typed: both go
    /// into the audit log by reference (see `auditDetails`).
    @discardableResult
    func transition(
        _ r: ErasureRequest, _ e: RequestEvent, audit event: AuditEvent, actor: String,
        _ details: [String: JSONValue], person: Bool = false, texts: [String: String] = [:]
    ) async throws -> ErasureRequest {
        let n = try RequestLifecycle.apply(e, to: r).get()
        let at = now(), plain = JSONValue.object(details).text
        let notes = writesOutbox ? Self.notifications(from: r, to: n) : []
        try await meta.transaction("cannot save request \(r.id)") { tx in
            try tx.updateRequest(n, expecting: r.status)
            try enqueue(notes, tx, at: at)
            if person || !texts.isEmpty {
                let (a, d) = try Self.auditDetails(tx, actor: person ? actor : nil, texts: texts, details)
                try tx.appendAudit(event: event, requestID: r.id, actor: person ? a : actor, details: d, at: at)
            } else {
                try tx.appendAudit(event: event, requestID: r.id, actor: actor, details: plain, at: at)
            }
        }
        return n
    }

    /// A change Lethe makes to a stored request by itself (no person's text): the request as it
    /// becomes, the status it must still have (compare-and-swap) and its audit entry.
    struct RequestChange: Sendable {
        var new: ErasureRequest
        var expecting: RequestStatus
        var audit: AuditEvent
        var details: String
        /// The request before a lifecycle event (nil for `storing:`): its notifications come from both.
        var old: ErasureRequest?
        /// The notifications the change is (see `Lethe.notifications`); built only where an outbox is written.
        var notes: [OutboxNote] { old.map { Lethe.notifications(from: $0, to: new) } ?? [] }

        /// A lifecycle event applied to `r`.
        init(_ r: ErasureRequest, _ e: RequestEvent, audit: AuditEvent, _ details: [String: JSONValue]) throws {
            self.new = try RequestLifecycle.apply(e, to: r).get()
            self.expecting = r.status
            self.audit = audit
            self.details = JSONValue.object(details).text
            self.old = r
        }
        /// `new` stored as it is (its status unchanged).
        init(storing new: ErasureRequest, audit: AuditEvent, _ details: [String: JSONValue]) {
            self.new = new
            self.expecting = new.status
            self.audit = audit
            self.details = JSONValue.object(details).text
        }
    }

    /// Many requests' changes, each with its audit entry, in a few transactions (`chunk` changes
    /// each) instead of one per request: a batch of 1,000 requests closing or verified costs a few
    /// commits, not a thousand. A chunk that cannot land whole (a request moved under it) is applied
    /// one change per transaction: the others land, and the first conflict is thrown at the end.
    func apply(_ changes: [RequestChange], actor: String, chunk: Int = 500) async throws {
        var start = 0
        while start < changes.count {
            let part = Array(changes[start..<min(start + chunk, changes.count)])
            start += part.count
            let at = now()
            // Notifications are built only where they are written (an outbox is configured).
            let notes = writesOutbox ? part.map(\.notes) : Array(repeating: [], count: part.count)
            do {
                try await meta.transaction("cannot save \(part.count) request(s)") { tx in
                    for (i, c) in part.enumerated() {
                        try tx.updateRequest(c.new, expecting: c.expecting)
                        try enqueue(notes[i], tx, at: at)
                    }
                    // The entries in the changes' order, the chain's head read once (same transaction: all or none).
                    try tx.audit.append(part.map { AuditAppend($0.audit, requestID: $0.new.id, actor: actor, details: $0.details, at: at) })
                }
            } catch let e as LetheError where e.code == .conflict && part.count > 1 {
                var first: (any Error)?
                for (i, c) in part.enumerated() {
                    do {
                        try await meta.transaction("cannot save request \(c.new.id)") { tx in
                            try tx.updateRequest(c.new, expecting: c.expecting)
                            try tx.appendAudit(event: c.audit, requestID: c.new.id, actor: actor, details: c.details, at: at)
                            try enqueue(notes[i], tx, at: at)
                        }
                    } catch let e as LetheError where e.code == .conflict {
                        first = first ?? e
                    }
                }
                if let first { throw first }
            }
        }
    }

    /// An audit entry's actor column and details for text people typed: the person's name (`actor`)
    /// and each of `texts` are stored in `audit_texts`, where erasure can purge them, and the entry
    /// holds `{"hmac":…,"text":ID}` in their place (the actor column `text#ID`, the details key
    /// `actor`): the append-only chain commits to the keyed digest, never to the text.
    static func auditDetails(
        _ tx: any StateTransaction, actor: String?, texts: [String: String],
        _ details: [String: JSONValue]
    ) throws -> (actor: String?, details: String) {
        var d = details
        func ref(_ t: String) throws -> (AuditTextRef, JSONValue) {
            let r = try tx.auditText(t)
            return (r, .object(["text": .int(r.id), "hmac": .string(r.hmac)]))
        }
        var column: String?
        if let actor {
            let (r, v) = try ref(actor)
            column = r.actor
            d["actor"] = v
        }
        for (k, t) in texts.sorted(by: { $0.key < $1.key }) { d[k] = try ref(t).1 }
        return (column, JSONValue.object(d).text)
    }

    /// True when `who` filed `r`: by name, or by the digest kept once the name was purged (four eyes).
    func isRequester(_ who: String, of r: ErasureRequest) -> Bool {
        who == r.requestedBy || (r.requesterDigest != nil && r.requesterDigest == meta.textDigest(who))
    }

    /// `isRequester` with `who`'s digest computed once (a batch).
    func isRequester(_ who: String, digest: String, of r: ErasureRequest) -> Bool {
        who == r.requestedBy || (r.requesterDigest != nil && r.requesterDigest == digest)
    }

    /// An approver or rejecter (`--by`) named by the request's own subject id would put it in the append-only audit log.
    func refuseActorNamingSubject(_ actor: String, of r: ErasureRequest) throws {
        guard let sealed = r.sealedSubject, Self.text(actor, holds: try secrets.unseal(sealed, requestID: r.id)) else { return }
        throw LetheError(
            .badInput,
            "the name given with --by holds the subject's id of request \(r.id); it would stay in the append-only audit log: name the approver without it")
    }

    /// Approves planned requests (four eyes: never by their requester). One id: one transaction and
    /// its `approved` entry (as always). Several: every one is checked first (refused as a whole,
    /// nothing approved, when one cannot be), then approved in chunks (see `approveBatch`).
    public func approve(_ ids: [String], by approver: String) async throws -> [ErasureRequest] {
        return try await durably {
            try await destroyExpiredRawIDs()
            if ids.count == 1 {
                let r = try await request(ids[0])
                try checkApproval(r, by: approver)
                return [
                    try await transition(
                        r, .approve(by: approver, at: now()), audit: .approved, actor: approver,
                        ["subject_key": .string(r.subjectKey.hex)], person: true)
                ]
            }
            var seen = Set<String>()
            let unique = ids.filter { seen.insert($0).inserted }
            // One read per chunk, not one per request (1,000 reads were ~0.1 s of a 1,000-subject run).
            let rs = try await meta.requests(ids: unique)
            if rs.count != unique.count {
                let found = Set(rs.map(\.id))
                if let missing = unique.first(where: { !found.contains($0) }) { throw LetheError(.notFound, "no request \(missing)") }
            }
            return try await approveBatch(rs, by: approver)
        }
    }

    /// The refusals of `approve`, before anything is written: a `--by` name holding the subject's id,
    /// the requester approving (four eyes), a request that is not planned.
    private func checkApproval(_ r: ErasureRequest, by approver: String, digest: String? = nil) throws {
        try refuseActorNamingSubject(approver, of: r)
        if r.status == .planned && (digest.map { isRequester(approver, digest: $0, of: r) } ?? isRequester(approver, of: r)) {
            throw LetheError(.forbidden, "request \(r.id): \(approver) filed it and cannot also approve it (four eyes)")
        }
    }

    /// Approves many planned requests: each checked (`checkApproval`, the lifecycle), then chunks of
    /// `requestChunk`, each one transaction of compare-and-set updates with one `approved_batch` entry
    /// listing its request ids and subject keys (the approver's name stored once per chunk).
    func approveBatch(_ rs: [ErasureRequest], by approver: String) async throws -> [ErasureRequest] {
        let at = now(), digest = meta.textDigest(approver)
        var approved: [ErasureRequest] = []
        approved.reserveCapacity(rs.count)
        for r in rs {
            try checkApproval(r, by: approver, digest: digest)
            approved.append(try RequestLifecycle.apply(.approve(by: approver, at: at), to: r).get())
        }
        let chunks = (approved.count + Self.requestChunk - 1) / Self.requestChunk
        try await batchWrites(chunks: chunks) { try await writeApprovals(approved, of: rs, at: at, by: approver) }
        return approved
    }

    /// `body` (the transactions of `chunks` chunks) inside `meta.batchWrites` when there are several:
    /// a single transaction is left to the store's own checkpoints, as before (no extra checkpoint and
    /// fsyncs for `lethe approve ID`).
    func batchWrites(chunks: Int, _ body: () async throws -> Void) async throws {
        if chunks > 1 { try await meta.batchWrites(body) } else { try await body() }
    }

    /// `approveBatch`'s transactions: a chunk of `requestChunk` each.
    private func writeApprovals(_ approved: [ErasureRequest], of rs: [ErasureRequest], at: Int64, by approver: String) async throws {
        for start in stride(from: 0, to: approved.count, by: Self.requestChunk) {
            let batch = Array(approved[start..<min(start + Self.requestChunk, approved.count)])
            // The lists rendered here, not in the transaction (the same text: `.raw` is inserted as it is).
            let details: [String: JSONValue] = [
                "count": .int(Int64(batch.count)), "requests": .raw(JSONValue.array(batch.map { .string($0.id) }).text),
                "subject_keys": .raw(JSONValue.array(batch.map { .string($0.subjectKey.hex) }).text),
            ]
            let notes = writesOutbox ? zip(rs[start..<min(start + Self.requestChunk, rs.count)], batch).flatMap { Self.notifications(from: $0, to: $1) } : []
            try await meta.transaction("cannot approve \(batch.count) requests") { tx in
                try tx.requests.saveDecisions(batch, expecting: .planned)
                try enqueue(notes, tx, at: at)
                let (actor, d) = try Self.auditDetails(tx, actor: approver, texts: [:], details)
                try tx.audit.append(.approvedBatch, requestIDs: batch.map(\.id), actor: actor, details: d, at: at)
            }
        }
    }

    /// Approves every planned request not filed by `approver`; returns them and the ones skipped (own requests).
    /// Reads the planned requests a page at a time, then approves them in chunks (`approveBatch`; one
    /// request alone: its own `approved` entry).
    public func approveAll(by approver: String) async throws -> (approved: [ErasureRequest], skipped: [ErasureRequest]) {
        return try await durably {
            try await destroyExpiredRawIDs()
            var todo: [ErasureRequest] = [], mine: [ErasureRequest] = []
            let digest = meta.textDigest(approver)
            try await forEachRequestPage(status: .planned) { planned in
                for r in planned {
                    if isRequester(approver, digest: digest, of: r) { mine.append(r) } else { todo.append(r) }
                }
            }
            if todo.count == 1 { return (try await approve([todo[0].id], by: approver), mine) }
            return (try await approveBatch(todo, by: approver), mine)
        }
    }

    public func reject(_ id: String, by who: String, reason: String) async throws -> ErasureRequest {
        return try await durably {
            guard !reason.isEmpty else { throw LetheError(.badUsage, "a rejection needs a reason (--reason)") }
            let r = try await request(id)
            try refuseActorNamingSubject(who, of: r)
            if let sealed = r.sealedSubject, Self.text(reason, holds: try secrets.unseal(sealed, requestID: r.id)) {
                throw LetheError(.badInput, "the reason holds the subject's id; it would stay in the append-only audit log: give the reason without it")
            }
            let n = try await transition(
                r, .reject(by: who, reason: reason, at: now()), audit: .rejected, actor: who,
                ["subject_key": .string(r.subjectKey.hex)], person: true, texts: ["reason": reason])
            return n
        }
    }

    /// How many requests one write transaction of a batch (forget, approve, raw id destruction) holds.
    @TaskLocal public static var requestChunk = 10_000

    /// Destroys the sealed raw ids whose deadline (`rawDueAt`, filing + `sweep.raw_id_days`) passed,
    /// swept or not: chunks of `requestChunk` requests, each one transaction with one `raw_id_destroyed`
    /// audit entry (reason `deadline`) listing them. Every writing entry point calls it first (`forget`,
    /// `approve`, `reject`, `index`, `run`: the CLI and the service alike). A `running`
    /// request keeps its raw id until its run ends. Returns how many were destroyed.
    @discardableResult
    public func destroyExpiredRawIDs() async throws -> Int {
        return try await durably {
            var total = 0
            var skipped = Set<String>()
            while true {
                let at = now()
                let due = try await meta.requests.rawIDsDue(now: at, limit: Self.requestChunk + skipped.count)
                    .filter { !skipped.contains($0.id) }.prefix(Self.requestChunk)
                var destroyed: [(ErasureRequest, RequestStatus)] = []
                for r in due {
                    guard r.status != .running, let n = try? RequestLifecycle.apply(.destroyRawID(at: at, why: "deadline"), to: r).get() else {
                        skipped.insert(r.id)
                        continue
                    }
                    destroyed.append((n, r.status))
                }
                if destroyed.isEmpty { return total }
                let batch = destroyed
                let details = JSONValue.object([
                    "why": .string("deadline"), "count": .int(Int64(batch.count)),
                    "requests": .array(batch.map { .string($0.0.id) }),
                    "subject_keys": .array(batch.map { .string($0.0.subjectKey.hex) }),
                ]).text
                do {
                    try await meta.transaction("cannot destroy \(batch.count) raw id(s) at their deadline") { tx in
                        for (n, was) in batch { try tx.updateRequest(n, expecting: was) }
                        try tx.audit.append(.rawIDDestroyed, requestIDs: batch.map(\.0.id), actor: "lethe", details: details, at: at)
                    }
                } catch let e as LetheError where e.code == .conflict {
                    return total  // a request changed meanwhile: the next writing command destroys these
                }
                total += batch.count
            }
        }
    }

    /// Destroys one request's sealed raw id now (`why`, e.g. `swept` or `on_demand`), with its audit entry.
    @discardableResult
    public func destroyRawID(_ id: String, why: String) async throws -> ErasureRequest {
        return try await durably {
            let r = try await request(id)
            return try await transition(
                r, .destroyRawID(at: now(), why: why), audit: .rawIDDestroyed, actor: "lethe",
                ["subject_key": .string(r.subjectKey.hex), "why": .string(why)])
        }
    }

    /// Gives stream tags to requests filed before stream filtering existed, from their
    /// sealed subject (requests verified before that have no raw id left and stay without
    /// a tag). Bumps `updated_at` so running filters pick them up. Returns how many.
    @discardableResult
    public static func backfillStreamTags(meta: any StateStore, secrets: StateSecrets, now: Int64) async throws -> Int {
        var n = 0
        for r in try await meta.requestsWithoutStreamTag() {
            guard let sealed = r.sealedSubject else { continue }
            var u = r
            u.streamTag = secrets.streamTag(try secrets.unseal(sealed, requestID: r.id))
            u.updatedAt = max(now, r.updatedAt)
            do {
                try await meta.updateRequest(u, expecting: r.status)
                n += 1
            } catch let e as LetheError where e.code == .conflict {
                continue  // changed meanwhile; the next run tries again
            }
        }
        // No engine here (`lethe filter` opens the state alone): its own durable point.
        if n > 0 { try await meta.makeDurable() }
        return n
    }
}
