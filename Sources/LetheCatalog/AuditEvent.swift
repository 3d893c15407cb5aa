/// What an audit entry records. The raw value is the text stored in the chain (and hashed into it),
/// so a case's raw value never changes once entries carry it.
public enum AuditEvent: String, Sendable, Codable, CaseIterable {
    // A request's lifecycle.
    case filed, planned, approved, rejected, started, requeued, retry, erased, failed, verified
    case verificationFailed = "verification_failed"
    case verificationClean = "verification_clean"
    // What a run did to the lake.
    case objectRewritten = "object_rewritten"
    case objectRemoved = "object_removed"
    case objectFailed = "object_failed"
    case rebuild
    case deltaCommit = "delta_commit"
    case deltaVacuum = "delta_vacuum"
    /// Requests filed from a change feed (`deletes_from: change_feed`).
    case propagated
    /// The chain switched from unkeyed to keyed hashes (once per state).
    case auditKeyed = "audit_keyed"
}
