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
    /// How far the erasure is proven, and where the raw id is (issue 12 §2.11; issue 14's certificate embeds it).
    public var proofs: Proofs

    /// The proofs of a request: its last clean verification (when verified), its sweep, and its raw id.
    public struct Proofs: Codable, Sendable, Equatable {
        public struct Verified: Codable, Sendable, Equatable {
            public var at: Int64
            /// `index`, `full` or `index+full`.
            public var kind: String
        }
        public struct Swept: Codable, Sendable, Equatable {
            public var at: Int64
        }
        /// Null unless the request is verified.
        public var verified: Verified?
        /// Null unless a sweep found the lake and the state clean of the subject.
        public var swept: Swept?
        /// `sealed` while the sealed raw id is held, else `destroyed`.
        public var rawID: String
        /// When the raw id is destroyed at the latest (filing + `sweep.raw_id_days`; null for requests filed before v7 without one).
        public var rawIDDueAt: Int64?
        public var rawDestroyedAt: Int64?
        /// `swept`, `deadline`, `rejected`, `verified` (before v7), …
        public var rawDestroyedWhy: String?

        enum CodingKeys: String, CodingKey {
            case verified, swept, rawID = "raw_id", rawIDDueAt = "raw_id_due_at", rawDestroyedAt = "raw_destroyed_at"
            case rawDestroyedWhy = "raw_destroyed_why"
        }

        public init(_ r: ErasureRequest) {
            if r.status == .verified {
                // The verification's own record of how it proved the erasure, else the request's.
                var at = r.updatedAt, kind = r.proof ?? "full"
                if case .object(let o)? = r.verification.flatMap(JSONValue.document) {
                    if case .int(let t)? = o["at"] { at = t }
                    if case .string(let k)? = o["proof"] { kind = k }
                }
                verified = Verified(at: at, kind: kind)
            }
            swept = r.sweptAt.map { Swept(at: $0) }
            rawID = r.sealedSubject == nil ? "destroyed" : "sealed"
            rawIDDueAt = r.rawDueAt
            rawDestroyedAt = r.rawDestroyedAt
            rawDestroyedWhy = r.rawDestroyedWhy
        }

        var jsonValue: JSONValue {
            .object([
                "verified": verified.map { .object(["at": .int($0.at), "kind": .string($0.kind)]) } ?? .null,
                "swept": swept.map { .object(["at": .int($0.at)]) } ?? .null, "raw_id": .string(rawID),
                "raw_id_due_at": rawIDDueAt.map(JSONValue.int) ?? .null, "raw_destroyed_at": rawDestroyedAt.map(JSONValue.int) ?? .null,
                "raw_destroyed_why": rawDestroyedWhy.map(JSONValue.string) ?? .null,
            ])
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(verified, forKey: .verified)  // null, not absent
            try c.encode(swept, forKey: .swept)
            try c.encode(rawID, forKey: .rawID)
            try c.encode(rawIDDueAt, forKey: .rawIDDueAt)
            try c.encode(rawDestroyedAt, forKey: .rawDestroyedAt)
            try c.encode(rawDestroyedWhy, forKey: .rawDestroyedWhy)
        }
    }

    public init(_ r: ErasureRequest, withPlan: Bool) {
        id = r.id; subjectKey = r.subjectKey.hex; status = r.status.rawValue; reason = r.reason
        requestedBy = r.requestedBy; filedAt = r.filedAt; updatedAt = r.updatedAt; attempts = r.attempts
        decidedBy = r.decidedBy; failure = r.failure
        // 16 lowercase hex digits (`String(format:)` was a fifth of printing 100,000 filings).
        streamTag = r.streamTag.map { t in
            let hex = String(t, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
        forgotten = r.status.isForgotten
        proofs = Proofs(r)
        self.withPlan = withPlan
        if withPlan {
            plan = r.plan.flatMap(JSONValue.document)
            verification = r.verification.flatMap(JSONValue.document)
        } else if let plan = r.plan, let t = ErasurePlan.totals(plan) ?? ErasurePlan.decode(plan).map({ ($0.totalObjects, $0.totalRows) }) {
            objects = t.0
            rows = t.1
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, subjectKey = "subject_key", status, reason, requestedBy = "requested_by", filedAt = "filed_at"
        case updatedAt = "updated_at", attempts, decidedBy = "decided_by", failure, streamTag = "stream_tag", forgotten
        case objects, rows, plan, verification, proofs
    }

    /// The view as one line of JSON, as `ReportEncoder.text` writes it (same keys, sorted, and values;
    /// written byte by byte without `JSONEncoder`: `forget --from` and `approve --all` print 100,000 of them).
    public var jsonLine: String {
        var w = JSONLineWriter()
        w.key("attempts", first: true); w.int(Int64(attempts))
        w.key("decided_by"); w.string(decidedBy)
        w.key("failure"); w.string(failure)
        w.key("filed_at"); w.int(filedAt)
        w.key("forgotten"); w.raw(forgotten ? "true" : "false")
        w.key("id"); w.string(id)
        if !withPlan, let objects { w.key("objects"); w.int(Int64(objects)) }
        if withPlan { w.key("plan"); w.raw((plan ?? .null).text) }
        w.key("proofs")
        w.key("raw_destroyed_at", open: true); w.int(proofs.rawDestroyedAt)
        w.key("raw_destroyed_why"); w.string(proofs.rawDestroyedWhy)
        w.key("raw_id"); w.string(proofs.rawID)
        w.key("raw_id_due_at"); w.int(proofs.rawIDDueAt)
        w.key("swept")
        if let sw = proofs.swept {
            w.key("at", open: true); w.int(sw.at); w.close()
        } else {
            w.raw("null")
        }
        w.key("verified")
        if let v = proofs.verified {
            w.key("at", open: true); w.int(v.at); w.key("kind"); w.string(v.kind); w.close()
        } else {
            w.raw("null")
        }
        w.close()
        w.key("reason"); w.string(reason)
        w.key("requested_by"); w.string(requestedBy)
        if !withPlan, let rows { w.key("rows"); w.int(rows) }
        w.key("status"); w.string(status)
        w.key("stream_tag"); w.string(streamTag)
        w.key("subject_key"); w.string(subjectKey)
        w.key("updated_at"); w.int(updatedAt)
        if withPlan { w.key("verification"); w.raw((verification ?? .null).text) }
        w.close()
        return String(decoding: w.bytes, as: UTF8.self)
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
        proofs = try c.decode(Proofs.self, forKey: .proofs)
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
        try c.encode(proofs, forKey: .proofs)
        if withPlan {
            try c.encodeDocument(plan, forKey: .plan)
            try c.encodeDocument(verification, forKey: .verification)
        } else {
            try c.encodeIfPresent(objects, forKey: .objects)
            try c.encodeIfPresent(rows, forKey: .rows)
        }
    }
}

/// Compact JSON written into bytes, keys in the order given (`RequestView.jsonLine`).
struct JSONLineWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(640) }

    /// `"k":`, after `{` (`open`), the object's first key (`first`, the `{` written too) or a comma.
    mutating func key(_ k: String, first: Bool = false, open: Bool = false) {
        if first || open { bytes.append(UInt8(ascii: "{")) } else { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        bytes += k.utf8
        bytes += [UInt8(ascii: "\""), UInt8(ascii: ":")]
    }
    mutating func close() { bytes.append(UInt8(ascii: "}")) }
    mutating func raw(_ t: String) { bytes += t.utf8 }
    mutating func int(_ v: Int64?) {
        guard let v else { return raw("null") }
        bytes += String(v).utf8
    }
    /// A JSON string (`null` for nil): `"`, `\\` and control characters escaped, the rest as is (slashes too).
    mutating func string(_ v: String?) {
        guard let v else { return raw("null") }
        bytes.append(UInt8(ascii: "\""))
        for c in v.utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), c]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), c]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
