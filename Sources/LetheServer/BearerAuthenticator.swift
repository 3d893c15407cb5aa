public import LetheCore

/// Resolves a bearer token to the principal it stands for (nil: unknown or revoked). The service
/// uses the engine's token store (`Lethe.principal(bearer:)`); the seam keeps the routes independent of it.
public protocol BearerAuthenticator: Sendable {
    func principal(bearer token: String) async throws -> Principal?
}

/// The authenticator of a service with no token store: every token is unknown (401). Replaced by the
/// engine's token store (`Lethe.principal(bearer:)`) where the state has one.
public struct NoTokens: BearerAuthenticator {
    public init() {}
    public func principal(bearer token: String) async throws -> Principal? { nil }
}
