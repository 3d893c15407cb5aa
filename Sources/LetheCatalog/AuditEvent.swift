/// What an audit entry records. The raw value is the text stored in the chain (and hashed into it),
/// so a case's raw value never changes once entries carry it.
public enum AuditEvent: String, Sendable, Codable, CaseIterable {
    // A request's lifecycle.
    case filed, planned, approved, rejected, started, requeued, retry, erased, failed, verified
    case verificationFailed = "verification_failed"
    case verificationClean = "verification_clean"
    /// Many requests filed (and planned) at once: one entry per chunk, listing request ids and subject keys.
    case filedBatch = "filed_batch"
    /// Many requests approved at once: one entry per chunk, listing request ids and subject keys.
    case approvedBatch = "approved_batch"
    /// A sweep of the lake and the state found nothing of the subject; its raw id was destroyed.
    case swept
    /// A sweep found records of a verified request's subject: the request failed again.
    case sweepFound = "sweep_found"
    /// Sealed raw ids destroyed (one entry per chunk; `why`: `deadline`, …).
    case rawIDDestroyed = "raw_id_destroyed"
    // What a run did to the lake.
    case objectRewritten = "object_rewritten"
    case objectRemoved = "object_removed"
    case objectFailed = "object_failed"
    case rebuild
    case deltaCommit = "delta_commit"
    case deltaVacuum = "delta_vacuum"
    /// Noncurrent versions of rewritten objects deleted on a bucket that keeps versions.
    case versionsDeleted = "versions_deleted"
    /// Requests filed from a change feed (`deletes_from: change_feed`).
    case propagated
    /// The chain switched from unkeyed to keyed hashes (once per state).
    case auditKeyed = "audit_keyed"
    // `lethe serve` (issue 14).
    /// An API token was created (its name by reference, its role; never the secret).
    case tokenCreated = "token_created"
    /// An API token was revoked.
    case tokenRevoked = "token_revoked"
    /// Calls of the HTTP API, batched (principal, method, route, status; never a body).
    case apiCalls = "api_calls"
    // Crypto-shredding (issue 15).
    /// Subjects' data keys destroyed before their erasure (subject keys and key count; never a key).
    case keysDestroyed = "keys_destroyed"
    /// Data keys re-wrapped under a new key-encryption key (`lethe vault rotate-kek`: KEK names and a count).
    case keysRewrapped = "keys_rewrapped"
}
