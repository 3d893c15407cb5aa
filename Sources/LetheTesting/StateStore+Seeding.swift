public import LetheCatalog

extension StateStore {
    /// Appends one audit entry in a transaction of its own, recording no change: for tests that
    /// seed a log (an older state, a long chain). The store offers no lone append: every entry
    /// Lethe writes lands in the transaction of the change it records.
    @discardableResult
    public func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) async throws -> AuditEntry {
        try await transaction("cannot append to the audit log") { tx in
            try tx.audit.append(event, requestID: requestID, actor: actor, details: details, at: at)
        }
    }
}
