import Foundation
public import LetheCore
public import LetheCatalog

extension Lethe {
    /// An audit entry as people read it: the texts it references (reasons, actors' names) resolved,
    /// or `[erased]` where erasure purged them.
    public struct AuditLine: Sendable {
        public var entry: AuditEntry
        public var actor: String?
        public var details: String
    }
}

/// One audit entry in `audit --json`: the chain's fields, with the texts it references resolved
/// (`[erased]` where erasure purged them) and its details as a JSON object.
public struct AuditLineView: Codable, Sendable, Equatable {
    public var seq: Int64
    public var at: Int64
    public var event: String
    public var request: String?
    public var actor: String?
    public var details: JSONValue
    public var prevHash: String
    public var hash: String

    public init(_ l: Lethe.AuditLine) {
        seq = l.entry.seq; at = l.entry.at; event = l.entry.event; request = l.entry.requestID; actor = l.actor
        details = JSONValue.document(Array(l.details.utf8)) ?? .string(l.details)  // always JSON in practice
        prevHash = l.entry.prevHash; hash = l.entry.hash
    }

    enum CodingKeys: String, CodingKey { case seq, at, event, request, actor, details, prevHash = "prev_hash", hash }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seq = try c.decode(Int64.self, forKey: .seq)
        at = try c.decode(Int64.self, forKey: .at)
        event = try c.decode(String.self, forKey: .event)
        request = try c.decodeIfPresent(String.self, forKey: .request)
        actor = try c.decodeIfPresent(String.self, forKey: .actor)
        details = try c.decodeDocument(forKey: .details) ?? .null
        prevHash = try c.decode(String.self, forKey: .prevHash)
        hash = try c.decode(String.self, forKey: .hash)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seq, forKey: .seq)
        try c.encode(at, forKey: .at)
        try c.encode(event, forKey: .event)
        try c.encode(request, forKey: .request)  // null, not absent
        try c.encode(actor, forKey: .actor)
        try c.encodeDocument(details, forKey: .details)
        try c.encode(prevHash, forKey: .prevHash)
        try c.encode(hash, forKey: .hash)
    }
}

/// `audit --check`: whether the chain and its texts verify, how many entries, the head to record
/// (`SEQ:HASH`, `-` for an empty log), and the first broken entry with the reason.
public struct AuditCheckReport: Codable, Sendable, Equatable {
    public var ok: Bool
    public var entries: Int
    public var head: String
    public var firstBroken: Int64?
    public var reason: String?

    public init(ok: Bool, entries: Int, head: String, firstBroken: Int64?, reason: String?) {
        self.ok = ok; self.entries = entries; self.head = head; self.firstBroken = firstBroken; self.reason = reason
    }

    /// The report for a checked log; with `expectHead` (`SEQ:HASH` recorded earlier, a hash prefix of at
    /// least 16 digits), an intact chain must still hold that entry: removal of the newest entries is
    /// caught. Throws `.badUsage` when `expectHead` is not `SEQ:HASH`.
    public init(entries: [AuditEntry], ok: Bool, firstBroken: Int64?, reason: String?, expectHead: String?) throws {
        try self.init(
            count: entries.count, last: entries.last, entry: { seq in entries.first { $0.seq == seq } },
            ok: ok, firstBroken: firstBroken, reason: reason, expectHead: expectHead)
    }

    enum CodingKeys: String, CodingKey { case ok, entries, head, firstBroken = "first_broken", reason }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(entries, forKey: .entries)
        try c.encode(head, forKey: .head)
        try c.encode(firstBroken, forKey: .firstBroken)  // null, not absent
        try c.encode(reason, forKey: .reason)
    }
}
