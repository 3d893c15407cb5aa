import LetheCore
public import LetheCatalog

extension Lethe {
    /// Audit entries read at a time by `checkAudit`.
    static let auditPage = 10_000

    /// The audit log with its texts resolved.
    public func auditLog() async throws -> [AuditLine] {
        let entries = try await meta.auditEntries()
        let texts = try await meta.auditTexts()
        return entries.map { e in
            let (actor, details) = resolveAuditTexts(e, texts)
            return AuditLine(entry: e, actor: actor, details: details)
        }
    }

    /// Checks the audit log: the keyed hash chain, then every text an entry references (a text
    /// still held must match the digest the chain commits to; a purged one is accepted).
    /// The chain is read by range (`auditPage` entries a read) and verified as it comes.
    public func checkAudit() async throws -> (entries: [AuditEntry], ok: Bool, firstBroken: Int64?, reason: String?) {
        var verifier = AuditChainVerifier(key: secrets.auditKey)
        var entries: [AuditEntry] = []
        var from: Int64 = 1
        while true {
            let page = try await meta.audit.entries(from: from, limit: Self.auditPage)
            entries += page
            verifier.feed(page)
            guard page.count == Self.auditPage, let last = page.last else { break }
            from = last.seq + 1
        }
        let chain = verifier.finish()
        guard chain.ok else { return (entries, false, chain.firstBroken, chain.reason) }
        let texts = verifyAuditTexts(entries, texts: try await meta.auditTexts(), key: secrets.auditKey)
        return (entries, texts.ok, texts.firstBroken, texts.reason)
    }
}
