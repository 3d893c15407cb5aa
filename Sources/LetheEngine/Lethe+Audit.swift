import LetheCore
import LetheCatalog

extension Lethe {
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
    public func checkAudit() async throws -> (entries: [AuditEntry], ok: Bool, firstBroken: Int64?, reason: String?) {
        let entries = try await meta.auditEntries()
        let chain = verifyAuditChain(entries, key: secrets.auditKey)
        guard chain.ok else { return (entries, false, chain.firstBroken, chain.reason) }
        let texts = verifyAuditTexts(entries, texts: try await meta.auditTexts(), key: secrets.auditKey)
        return (entries, texts.ok, texts.firstBroken, texts.reason)
    }
}
