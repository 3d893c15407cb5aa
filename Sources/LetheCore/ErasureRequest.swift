/// The states of an erasure request.
///
/// ```
/// filed → planned → approved → running → erased → verified
///                 ↘ rejected      ↘ failed ↗ (retry: failed → approved)
///                          ↖ requeue ↙        (a `running` request whose job was never created)
/// ```
public enum RequestStatus: String, Sendable, CaseIterable, Codable {
    case filed, planned, approved, rejected, running, erased, verified, failed

    /// True once no further step will happen by itself.
    public var isTerminal: Bool { self == .rejected || self == .verified }
    /// True from approval on: the subject must be filtered from streams.
    public var isForgotten: Bool {
        switch self {
        case .approved, .running, .erased, .verified, .failed: return true
        case .filed, .planned, .rejected: return false
        }
    }
}

/// An erasure request as stored. It holds the subject only as its keyed hash and, until the
/// request is swept (or rejected, or its raw id deadline passes), as a sealed (AES-GCM encrypted) copy.
public struct ErasureRequest: Sendable, Equatable, Codable {
    public var id: String
    public var subjectKey: SubjectKey
    /// The raw subject, sealed under the state folder's request key; nil once destroyed (swept,
    /// rejected, or at `rawDueAt`; see `rawDestroyedAt`).
    public var sealedSubject: [UInt8]?
    public var status: RequestStatus
    public var reason: String
    public var requestedBy: String
    public var filedAt: Int64
    public var updatedAt: Int64
    public var decidedBy: String?
    public var decisionReason: String?
    /// The plan as JSON (see `ErasurePlan`).
    public var plan: [UInt8]?
    /// The last verification result as JSON.
    public var verification: [UInt8]?
    public var failure: String?
    public var attempts: Int
    /// The subject's stream tag (`StateSecrets.streamTag`, SipHash-2-4 under `stream.key`),
    /// computed when the request is filed so that stream filters never need the raw id.
    /// Nil for requests filed before stream filtering existed.
    public var streamTag: UInt64?
    /// The keyed digest of `requestedBy` (`AuditChain.textDigest`), so that the four-eyes rule holds
    /// after erasure purged the name (a requester whose name is an erased subject's id). Nil for
    /// requests filed before it existed (the store computes it before it purges the name).
    public var requesterDigest: String?
    /// How the last verification proved the erasure: `index`, `full` or `index+full` (nil: before v7, or never verified).
    public var proof: String?
    /// When a sweep of the whole lake and Lethe's state found nothing of the subject (nil: not swept).
    public var sweptAt: Int64?
    /// When the sealed raw id is destroyed at the latest: `filedAt` + `sweep.raw_id_days` (nil: filed before v7 without one).
    public var rawDueAt: Int64?
    /// When the sealed raw id was destroyed (nil while it is held).
    public var rawDestroyedAt: Int64?
    /// Why it was destroyed: `swept`, `deadline`, `rejected`, or `verified` (requests verified before v7).
    public var rawDestroyedWhy: String?
    /// What the last sweep found that the index did not (JSON, no raw id: object references and log file names).
    public var sweepFindings: [UInt8]?

    /// Milliseconds in a day (for `rawDueAt`).
    public static let dayMillis: Int64 = 86_400_000

    public init(id: String, subjectKey: SubjectKey, sealedSubject: [UInt8]?, reason: String, requestedBy: String, at: Int64) {
        self.id = id
        self.subjectKey = subjectKey
        self.sealedSubject = sealedSubject
        self.status = .filed
        self.reason = reason
        self.requestedBy = requestedBy
        self.filedAt = at
        self.updatedAt = at
        self.attempts = 0
    }
}

extension ErasureRequest {
    /// True while the sealed raw id is held.
    public var rawIDHeld: Bool { sealedSubject != nil }

    /// Forgets the sealed raw id, recording when and why (a first destruction only).
    mutating func destroyRawID(at: Int64, why: String) {
        if sealedSubject != nil || rawDestroyedAt == nil {
            rawDestroyedAt = at
            rawDestroyedWhy = why
        }
        sealedSubject = nil
    }

    /// True when the raw id is held and its deadline (`rawDueAt`) is at or before `now`.
    public func rawIDExpired(now: Int64) -> Bool {
        guard rawIDHeld, let due = rawDueAt else { return false }
        return due <= now
    }
}

/// What changed in the deletion set (the stream tags of forgotten subjects) since a cursor.
public struct DeletionChanges: Sendable, Equatable {
    /// Tags of requests that are forgotten (approved or later) and were updated at or after the cursor.
    public var added: [UInt64]
    /// Tags of requests rejected at or after the cursor whose subject has no other forgotten request.
    public var removed: [UInt64]
    /// The newest `updated_at` (ms) of any request: the next cursor.
    public var latest: Int64

    public init(added: [UInt64], removed: [UInt64], latest: Int64) {
        self.added = added; self.removed = removed; self.latest = latest
    }
}

extension SubjectKey: Codable {
    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let k = SubjectKey(hex: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a subject key"))
        }
        self = k
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}

/// What can happen to a request.
public enum RequestEvent: Sendable, Equatable {
    case planned(plan: [UInt8])
    case approve(by: String, at: Int64)
    case reject(by: String, reason: String, at: Int64)
    case start(at: Int64)
    case erased(at: Int64)
    case fail(reason: String, at: Int64)
    /// Back to approved after a failure, to run again.
    case retry(at: Int64)
    /// Re-plan (e.g. after a failure, before running again).
    case replanned(plan: [UInt8])
    /// Back to approved with a new plan: the request was claimed (`running`) but no job
    /// holds it (the process died between the two, before they were one transaction).
    case requeue(plan: [UInt8], at: Int64)
    /// A clean verification. `proof`: how it was proven (`index`, `full`, `index+full`). The raw id
    /// stays sealed: the sweep (or the deadline) destroys it.
    case verified(result: [UInt8], at: Int64, proof: String? = nil)
    /// A verification that found residue: the request fails with what was found.
    case verificationFailed(result: [UInt8], reason: String, at: Int64)
    /// A sweep of the lake and the state found nothing of a verified request's subject: it stays
    /// verified, is marked swept, and its sealed raw id is destroyed.
    case swept(at: Int64)
    /// A sweep found records of a verified request's subject that the index missed: the request fails
    /// (the next run retries it), keeps its raw id, and stores what was found (`findings`, JSON, no raw id).
    case sweepFound(reason: String, findings: [UInt8], at: Int64)
    /// Destroys the sealed raw id (the deadline passed, or on demand), at any status but `running`.
    /// `why`: `deadline`, `swept`, `rejected`, … Idempotent: an id destroyed already keeps its first time and reason.
    case destroyRawID(at: Int64, why: String)
}

/// The request lifecycle as a pure function: a state and an event give the next
/// request or the reason the event is not allowed. No I/O.
public enum RequestLifecycle {
    public static func apply(_ event: RequestEvent, to r: ErasureRequest) -> Result<ErasureRequest, LetheError> {
        var n = r
        func refuse(_ what: String) -> Result<ErasureRequest, LetheError> {
            .failure(LetheError(.conflict, "request \(r.id) is \(r.status.rawValue): cannot \(what)"))
        }
        switch event {
        case .planned(let plan):
            guard r.status == .filed else { return refuse("plan") }
            n.status = .planned
            n.plan = plan
        case .replanned(let plan):
            guard r.status == .planned || r.status == .approved || r.status == .failed else { return refuse("re-plan") }
            n.plan = plan
        case .approve(let by, let at):
            guard r.status == .planned else { return refuse("approve") }
            guard by != r.requestedBy else {
                return .failure(LetheError(.forbidden, "request \(r.id): \(by) filed it and cannot also approve it (four eyes)"))
            }
            guard !by.isEmpty else { return .failure(.badInput("an approver must be named (--by)")) }
            n.status = .approved
            n.decidedBy = by
            n.updatedAt = at
        case .reject(let by, let reason, let at):
            // A failed request can be closed by a decision too (e.g. a subject the lake never held).
            guard r.status == .planned || r.status == .filed || r.status == .approved || r.status == .failed else { return refuse("reject") }
            guard !by.isEmpty else { return .failure(.badInput("a rejecter must be named (--by)")) }
            n.status = .rejected
            n.decidedBy = by
            n.decisionReason = reason
            n.destroyRawID(at: at, why: "rejected")
            n.updatedAt = at
        case .start(let at):
            guard r.status == .approved || r.status == .running else { return refuse("run") }
            n.status = .running
            n.attempts += 1
            n.failure = nil
            n.updatedAt = at
        case .erased(let at):
            guard r.status == .running else { return refuse("mark erased") }
            n.status = .erased
            n.updatedAt = at
        case .fail(let reason, let at):
            guard r.status == .running || r.status == .approved || r.status == .erased else { return refuse("fail") }
            n.status = .failed
            n.failure = reason
            n.updatedAt = at
        case .requeue(let plan, let at):
            guard r.status == .running else { return refuse("requeue") }
            n.status = .approved
            n.plan = plan
            n.updatedAt = at
        case .retry(let at):
            guard r.status == .failed else { return refuse("retry") }
            n.status = .approved
            n.updatedAt = at
        case .verified(let result, let at, let proof):
            guard r.status == .erased || r.status == .verified else { return refuse("verify") }
            n.status = .verified
            n.verification = result
            n.proof = proof ?? "full"
            // The raw id stays sealed: the sweep proves the whole lake and the state, then destroys it.
            n.sweepFindings = nil
            n.updatedAt = at
        case .verificationFailed(let result, let reason, let at):
            guard r.status == .erased || r.status == .verified else { return refuse("verify") }
            n.status = .failed
            n.verification = result
            n.failure = reason
            n.updatedAt = at
        case .swept(let at):
            guard r.status == .verified else { return refuse("mark swept") }
            n.sweptAt = at
            n.sweepFindings = nil
            n.destroyRawID(at: at, why: "swept")
            n.updatedAt = at
        case .sweepFound(let reason, let findings, let at):
            guard r.status == .verified else { return refuse("fail after a sweep") }
            n.status = .failed
            n.failure = reason
            n.sweepFindings = findings
            n.sweptAt = nil
            n.updatedAt = at
        case .destroyRawID(let at, let why):
            guard r.status != .running else { return refuse("destroy its raw id") }
            guard n.rawIDHeld || n.rawDestroyedAt == nil else { return .success(n) }
            n.destroyRawID(at: at, why: why)
            n.updatedAt = max(r.updatedAt, at)
        }
        return .success(n)
    }
}
