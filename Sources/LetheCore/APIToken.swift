// An API token of `lethe serve` (issue 14); stored by the state as a keyed hash (see LetheCatalog/Tokens.swift).

/// An API token as stored: who it names and what it may do, never its secret.
public struct APIToken: Sendable, Equatable, Codable {
    /// Its row (ascending, never reused).
    public var id: Int64
    public var name: String
    public var role: Role
    /// When it was created, revoked and last used (ms since the epoch; nil: never).
    public var createdAt: Int64
    public var revokedAt: Int64?
    public var lastUsedAt: Int64?

    public init(id: Int64, name: String, role: Role, createdAt: Int64, revokedAt: Int64? = nil, lastUsedAt: Int64? = nil) {
        self.id = id; self.name = name; self.role = role; self.createdAt = createdAt
        self.revokedAt = revokedAt; self.lastUsedAt = lastUsedAt
    }

    /// True until it is revoked.
    public var isLive: Bool { revokedAt == nil }

    /// The principal a live token authenticates.
    public var principal: Principal { Principal(name: name, role: role) }
}
