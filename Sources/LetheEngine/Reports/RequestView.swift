import Foundation
public import LetheCore

/// One erasure request as reports show it (`forget`, `requests`, `approve`, `reject`, and with its
/// plan and verification `show` and `quickstart`). Holds the subject's keyed hash, never its id.
public struct RequestView: Codable, Sendable, Equatable {
    public var id: String
    public var subjectKey: String
    public var status: String
    public var reason: String
    public var requestedBy: String
    public var filedAt: Int64
    public var updatedAt: Int64
    public var attempts: Int
    public var decidedBy: String?
    public var failure: String?
    /// The keyed 64-bit stream tag (SipHash-2-4 under stream.key) that stream processors match on, 16 hex digits.
    public var streamTag: String?
    public var forgotten: Bool
    /// Without the plan: the plan's object and row counts (absent when there is no plan).
    public var objects: Int?
    public var rows: Int64?
    /// With the plan (`show`): the plan and the verification as stored (`null` when there is none).
    public var withPlan: Bool
    public var plan: JSONValue?
    public var verification: JSONValue?

    public init(_ r: ErasureRequest, withPlan: Bool) {
        id = r.id; subjectKey = r.subjectKey.hex; status = r.status.rawValue; reason = r.reason
        requestedBy = r.requestedBy; filedAt = r.filedAt; updatedAt = r.updatedAt; attempts = r.attempts
        decidedBy = r.decidedBy; failure = r.failure
        streamTag = r.streamTag.map { String(format: "%016llx", $0) }
        forgotten = r.status.isForgotten
        self.withPlan = withPlan
        if withPlan {
            plan = r.plan.flatMap(JSONValue.document)
            verification = r.verification.flatMap(JSONValue.document)
        } else if let p = r.plan.flatMap(ErasurePlan.decode) {
            objects = p.totalObjects
            rows = p.totalRows
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, subjectKey = "subject_key", status, reason, requestedBy = "requested_by", filedAt = "filed_at"
        case updatedAt = "updated_at", attempts, decidedBy = "decided_by", failure, streamTag = "stream_tag", forgotten
        case objects, rows, plan, verification
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        subjectKey = try c.decode(String.self, forKey: .subjectKey)
        status = try c.decode(String.self, forKey: .status)
        reason = try c.decode(String.self, forKey: .reason)
        requestedBy = try c.decode(String.self, forKey: .requestedBy)
        filedAt = try c.decode(Int64.self, forKey: .filedAt)
        updatedAt = try c.decode(Int64.self, forKey: .updatedAt)
        attempts = try c.decode(Int.self, forKey: .attempts)
        decidedBy = try c.decodeIfPresent(String.self, forKey: .decidedBy)
        failure = try c.decodeIfPresent(String.self, forKey: .failure)
        streamTag = try c.decodeIfPresent(String.self, forKey: .streamTag)
        forgotten = try c.decode(Bool.self, forKey: .forgotten)
        objects = try c.decodeIfPresent(Int.self, forKey: .objects)
        rows = try c.decodeIfPresent(Int64.self, forKey: .rows)
        withPlan = c.contains(.plan)
        plan = try c.decodeDocument(forKey: .plan)
        verification = try c.decodeDocument(forKey: .verification)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(subjectKey, forKey: .subjectKey)
        try c.encode(status, forKey: .status)
        try c.encode(reason, forKey: .reason)
        try c.encode(requestedBy, forKey: .requestedBy)
        try c.encode(filedAt, forKey: .filedAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(decidedBy, forKey: .decidedBy)  // null, not absent
        try c.encode(failure, forKey: .failure)
        try c.encode(streamTag, forKey: .streamTag)
        try c.encode(forgotten, forKey: .forgotten)
        if withPlan {
            try c.encodeDocument(plan, forKey: .plan)
            try c.encodeDocument(verification, forKey: .verification)
        } else {
            try c.encodeIfPresent(objects, forKey: .objects)
            try c.encodeIfPresent(rows, forKey: .rows)
        }
    }
}
