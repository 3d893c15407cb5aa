import LetheCore

/// Recomputes the audit hash chain: every entry's hash over its own fields, its
/// link to the previous entry's hash (the genesis hash for the first), and the
/// continuity of sequence numbers from 1.
///
/// With `key` (the state's audit key), entries are HMAC-SHA-256 under it: an entry that verifies
/// only as plain SHA-256 is accepted before the first keyed entry (written before the chain was
/// keyed) and refused after it, and a non-empty chain with no keyed entry at all is refused (it
/// was rewritten without the key). Without `key`, every entry must be plain SHA-256.
///
/// Returns `ok == false` with the sequence number of the first entry that does
/// not verify (for a removed entry, the one after the gap) and why. Removing
/// entries from the end leaves a valid, shorter chain: compare the head with a
/// copy kept elsewhere (a certificate, a webhook receiver) to catch that.
public func verifyAuditChain(_ entries: [AuditEntry], key: [UInt8]? = nil) -> (ok: Bool, firstBroken: Int64?, reason: String?) {
    var v = AuditChainVerifier(key: key)
    v.feed(entries)
    return v.finish()
}

/// `verifyAuditChain` one page at a time: feed the entries in order (pages of any size, e.g. read
/// by range from the store), then `finish`. Keeps only the previous hash and what it has seen.
public struct AuditChainVerifier: Sendable {
    let key: [UInt8]?
    var expectedSeq: Int64 = 1
    var prev = AuditChain.genesis
    var keyedSeen = false
    var firstSeq: Int64?
    /// The first failure (then later entries are not examined).
    public private(set) var failure: (seq: Int64, reason: String)?
    /// Entries examined (up to and including a broken one).
    public private(set) var count = 0
    /// The last entry that verified.
    public private(set) var head: AuditEntry?

    public init(key: [UInt8]?) { self.key = key }

    /// Checks the next entries; false once the chain is broken (feeding more changes nothing).
    @discardableResult
    public mutating func feed(_ entries: [AuditEntry]) -> Bool {
        for e in entries {
            guard failure == nil else { return false }
            count += 1
            if firstSeq == nil { firstSeq = e.seq }
            if e.seq != expectedSeq {
                let why =
                    e.seq > expectedSeq
                    ? "entries \(expectedSeq)…\(e.seq - 1) are missing"
                    : "entry \(e.seq) is out of order (expected \(expectedSeq))"
                failure = (e.seq, why)
                return false
            }
            if e.prevHash != prev {
                failure = (e.seq, "entry \(e.seq) does not link to the previous entry's hash")
                return false
            }
            func recompute(_ k: [UInt8]?) -> String {
                AuditChain.hash(
                    seq: e.seq, at: e.at, event: e.event, requestID: e.requestID, actor: e.actor,
                    details: e.details, prevHash: e.prevHash, key: k)
            }
            if let key, recompute(key) == e.hash {
                keyedSeen = true
            } else if recompute(nil) == e.hash {
                if keyedSeen {
                    failure = (
                        e.seq, "entry \(e.seq) is not keyed with the audit key although earlier entries are: it was written or rewritten without the key"
                    )
                    return false
                }
            } else {
                failure = (e.seq, "entry \(e.seq) was altered (its hash does not match its fields\(key == nil ? "" : " under the audit key"))")
                return false
            }
            prev = e.hash
            expectedSeq += 1
            head = e
        }
        return failure == nil
    }

    /// The verdict over everything fed.
    public func finish() -> (ok: Bool, firstBroken: Int64?, reason: String?) {
        if let failure { return (false, failure.seq, failure.reason) }
        if key != nil, count > 0, !keyedSeen {
            return (false, firstSeq, "no entry is keyed with the audit key: the chain was rewritten without it (or audit.key is not this state's)")
        }
        return (true, nil, nil)
    }
}

/// A reference to a text of `audit_texts` inside an entry's details: `{"hmac":"<64 hex>","text":ID}`,
/// with the details key it stands under (`"reason":{…}`), if any.
public struct AuditTextMention: Sendable, Equatable {
    public var key: String?
    public var ref: AuditTextRef
    /// Where the reference object is in the details (UTF-8 offsets).
    public var range: Range<Int>
}

/// The text references in an entry's details. Lethe writes details as compact JSON with sorted
/// keys, so a reference always reads `{"hmac":"…","text":N}`; a string value cannot hold that
/// sequence unescaped.
public func auditTextMentions(in details: String) -> [AuditTextMention] {
    let b = Array(details.utf8)
    let open = Array(#"{"hmac":""#.utf8), mid = Array(#"","text":"#.utf8)
    var out: [AuditTextMention] = []
    var i = 0
    func isHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 102) }
    while i + open.count + 64 + mid.count + 2 <= b.count {
        guard b[i] == open[0], Array(b[i..<(i + open.count)]) == open else { i += 1; continue }
        let h = i + open.count
        guard b[h..<(h + 64)].allSatisfy(isHex), Array(b[(h + 64)..<(h + 64 + mid.count)]) == mid else { i += 1; continue }
        var j = h + 64 + mid.count
        let digits = j
        while j < b.count, b[j] >= 48, b[j] <= 57 { j += 1 }
        guard j > digits, j < b.count, b[j] == UInt8(ascii: "}"), let id = Int64(String(decoding: b[digits..<j], as: UTF8.self)) else { i += 1; continue }
        // The key before it: `"name":` right before the brace.
        var key: String?
        if i >= 2, b[i - 1] == UInt8(ascii: ":"), b[i - 2] == UInt8(ascii: "\"") {
            var k = i - 3
            while k >= 0, b[k] != UInt8(ascii: "\"") { k -= 1 }
            if k >= 0 { key = String(decoding: b[(k + 1)..<(i - 2)], as: UTF8.self) }
        }
        out.append(AuditTextMention(key: key, ref: AuditTextRef(id: id, hmac: String(decoding: b[h..<(h + 64)], as: UTF8.self)), range: i..<(j + 1)))
        i = j + 1
    }
    return out
}

/// Checks the texts the entries reference: each text still held must match the digest its entry
/// holds (the chain proves the digest), a purged one is accepted, a missing one is not; an actor
/// column `text#N` must be backed by an `"actor"` reference to text N in the details.
/// Returns the first entry that fails and why.
public func verifyAuditTexts(_ entries: [AuditEntry], texts: AuditTexts, key: [UInt8]?) -> (ok: Bool, firstBroken: Int64?, reason: String?) {
    for e in entries {
        let mentions = auditTextMentions(in: e.details)
        for m in mentions {
            if let t = texts.texts[m.ref.id] {
                if AuditChain.textDigest(t, key: key) != m.ref.hmac {
                    return (false, e.seq, "entry \(e.seq): text #\(m.ref.id) was altered (it does not match the digest the entry holds)")
                }
            } else if !texts.purged.contains(m.ref.id) {
                return (false, e.seq, "entry \(e.seq): text #\(m.ref.id) is missing")
            }
        }
        if let a = e.actor, a.hasPrefix(AuditTextRef.actorPrefix) {
            let id = Int64(a.dropFirst(AuditTextRef.actorPrefix.count))
            guard let id, mentions.contains(where: { $0.key == "actor" && $0.ref.id == id }) else {
                return (false, e.seq, "entry \(e.seq): its actor is \(a), but its details hold no digest of that text")
            }
        }
    }
    return (true, nil, nil)
}

/// An entry as people read it: text references replaced by the text, or `[erased]` where erasure
/// purged it (the actor column too).
public func resolveAuditTexts(_ e: AuditEntry, _ texts: AuditTexts) -> (actor: String?, details: String) {
    func text(_ id: Int64) -> String { texts.texts[id] ?? AuditTexts.purgedMark }
    var actor = e.actor
    if let a = actor, a.hasPrefix(AuditTextRef.actorPrefix), let id = Int64(a.dropFirst(AuditTextRef.actorPrefix.count)) {
        actor = text(id)
    }
    let mentions = auditTextMentions(in: e.details)
    guard !mentions.isEmpty else { return (actor, e.details) }
    var b = Array(e.details.utf8)
    for m in mentions.reversed() {
        b.replaceSubrange(m.range, with: Array(JSONText.quoted(text(m.ref.id)).utf8))
    }
    return (actor, String(decoding: b, as: UTF8.self))
}
