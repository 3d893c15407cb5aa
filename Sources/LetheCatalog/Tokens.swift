public import LetheCore

// API tokens (issue 14): bearer tokens of `lethe serve`, stored as a keyed hash (never the token).
// A name is unique among live (unrevoked) tokens; a revoked token keeps its row (and its name can
// be given to a new token).

/// API tokens, read.
public protocol TokenReader: Sendable {
    /// Every token, live and revoked, in order of creation.
    func allTokens() async throws -> [APIToken]
    /// The token whose stored hash is `hash` (live or revoked) and that hash as stored, or nil.
    func token(hash: [UInt8]) async throws -> (token: APIToken, hash: [UInt8])?
}

/// API tokens, written inside a transaction.
public protocol TokenWriter {
    /// Stores a new token (`.conflict` when a live token has the name).
    func insertToken(name: String, role: Role, hash: [UInt8], at: Int64) throws -> APIToken
    /// Revokes the live token with this name; nil when there is none.
    func revokeToken(name: String, at: Int64) throws -> APIToken?
    /// Records a use of a token (moves `lastUsedAt` forward only).
    func touchToken(id: Int64, at: Int64) throws
}
