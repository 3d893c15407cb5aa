import LetheCore
public import LetheCatalog

extension Lethe {
    /// Audit entries read at a time by `checkAudit`, `auditReport` and `auditLog` (task-local: tests read
    /// in small pages).
    @TaskLocal static var auditPage = 10_000

    /// Calls `body` with each page of the audit log (in order) as it is read, with the texts its
    /// entries reference. The texts are read once, and again when a page names one the copy lacks
    /// (an entry appended meanwhile: its texts were committed with it).
    func forEachAuditPage(_ body: ([AuditEntry], AuditTexts) async throws -> Void) async throws {
        var texts = try await meta.audit.texts()
        var from: Int64 = 1
        while true {
            let page = try await meta.audit.entries(from: from, limit: Self.auditPage)
            let named = page.flatMap { auditTextMentions(in: $0.details).map(\.ref.id) }
            if named.contains(where: { texts.texts[$0] == nil && !texts.purged.contains($0) }) {
                texts = try await meta.audit.texts()
            }
            try await body(page, texts)
            guard page.count == Self.auditPage, let last = page.last else { break }
            from = last.seq + 1
        }
    }

    /// The audit log with its texts resolved.
    public func auditLog() async throws -> [AuditLine] {
        var lines: [AuditLine] = []
        try await auditLog { lines += $0 }
        return lines
    }

    /// The audit log with its texts resolved, a page at a time (`lethe audit`).
    public func auditLog(_ body: ([AuditLine]) async throws -> Void) async throws {
        try await forEachAuditPage { page, texts in
            try await body(
                page.map { e in
                    let (actor, details) = resolveAuditTexts(e, texts)
                    return AuditLine(entry: e, actor: actor, details: details)
                })
        }
    }

    /// Every audit entry about one request, texts resolved, in order: its own entries and the batch
    /// entries listing it (`filed_batch`, `approved_batch`, `raw_id_destroyed`), found through the
    /// state's per-request index (`AuditReader.entries(requestID:)`), not by reading the whole log.
    public func auditTrail(of requestID: String) async throws -> [AuditLine] {
        let entries = try await meta.audit.entries(requestID: requestID)
        guard !entries.isEmpty else { return [] }
        let texts = try await meta.audit.texts()
        return entries.map { e in
            let (actor, details) = resolveAuditTexts(e, texts)
            return AuditLine(entry: e, actor: actor, details: details)
        }
    }

    /// Checks the audit log: the keyed hash chain, then every text an entry references (a text
    /// still held must match the digest the chain commits to; a purged one is accepted).
    /// The chain is read by range (`auditPage` entries a read) and verified as it comes; every
    /// entry is returned (tests; `audit --check` keeps none: `auditReport(expectHead:)`).
    public func checkAudit() async throws -> (entries: [AuditEntry], ok: Bool, firstBroken: Int64?, reason: String?) {
        var entries: [AuditEntry] = []
        let check = try await checkAuditPaged { entries += $0 }
        return (entries, check.ok, check.firstBroken, check.reason)
    }

    /// `audit --check`: the chain and its texts checked a page at a time, holding only the newest
    /// entry and the one `expectHead` (`SEQ:HASH` recorded earlier) names; see `AuditCheckReport`.
    public func auditReport(expectHead: String?) async throws -> AuditCheckReport {
        let expectedSeq = expectHead.flatMap { h in h.split(separator: ":", maxSplits: 1).first.flatMap { Int64($0) } }
        var count = 0
        var last: AuditEntry?
        var expected: AuditEntry?
        let check = try await checkAuditPaged { page in
            count += page.count
            last = page.last ?? last
            if let expectedSeq, let e = page.first(where: { $0.seq == expectedSeq }) { expected = e }
        }
        return try AuditCheckReport(
            count: count, last: last, entry: { seq in expected?.seq == seq ? expected : nil },
            ok: check.ok, firstBroken: check.firstBroken, reason: check.reason, expectHead: expectHead)
    }

    /// The chain verified page by page, then (when it holds) the texts; `body` sees every page.
    private func checkAuditPaged(_ body: ([AuditEntry]) -> Void) async throws -> (ok: Bool, firstBroken: Int64?, reason: String?) {
        var verifier = AuditChainVerifier(key: secrets.auditKey)
        var textFailure: (ok: Bool, firstBroken: Int64?, reason: String?)?
        let key = secrets.auditKey
        try await forEachAuditPage { page, texts in
            body(page)
            verifier.feed(page)
            if textFailure == nil, case let t = verifyAuditTexts(page, texts: texts, key: key), !t.ok { textFailure = t }
        }
        let chain = verifier.finish()
        guard chain.ok else { return (false, chain.firstBroken, chain.reason) }
        return textFailure ?? (true, nil, nil)
    }
}

extension AuditCheckReport {
    /// The report for a log checked a page at a time: `count` entries, the newest `last`, and `entry`
    /// looking up the one `expectHead` names (see `init(entries:ok:firstBroken:reason:expectHead:)`).
    public init(
        count: Int, last: AuditEntry?, entry: (Int64) -> AuditEntry?, ok: Bool, firstBroken: Int64?,
        reason: String?, expectHead: String?
    ) throws {
        var v = (ok: ok, firstBroken: firstBroken, reason: reason)
        if v.ok, let expectHead {
            let parts = expectHead.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let seq = Int64(parts[0]), parts[1].count >= 16 else {
                throw LetheError(.badUsage, "--expect-head takes SEQ:HASH (as `lethe audit --check` prints it)")
            }
            let hash = String(parts[1])
            if let e = entry(seq) {
                if !e.hash.hasPrefix(hash) {
                    v = (false, seq, "entry \(seq) has hash \(e.hash.prefix(16))…, not the recorded \(hash.prefix(16))…")
                }
            } else {
                v = (false, seq, "entry \(seq) is missing: the log ends at \(last?.seq ?? 0) (entries were removed from its end)")
            }
        }
        self.init(
            ok: v.ok, entries: count, head: last.map { "\($0.seq):\($0.hash)" } ?? "-",
            firstBroken: v.firstBroken, reason: v.reason)
    }
}
