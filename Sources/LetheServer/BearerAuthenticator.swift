public import LetheCore
public import LetheEngine

/// Resolves a bearer token to the principal it stands for (nil: unknown or revoked). The service
/// uses the engine's token store (`Lethe.principal(bearer:)`), and with `serve.oidc` an
/// `OIDCAuthenticator` in front of it; the seam keeps the routes independent of them.
public protocol BearerAuthenticator: Sendable {
    func principal(bearer token: String) async throws -> Principal?
    /// The principal for a call of a route `allowed` these roles (nil: any): a bearer that carries
    /// several roles (an OIDC token's role claim) acts in one the route allows. By default `principal(bearer:)`.
    func principal(bearer token: String, for allowed: Set<Role>?) async throws -> Principal?
}

extension BearerAuthenticator {
    public func principal(bearer token: String, for allowed: Set<Role>?) async throws -> Principal? {
        try await principal(bearer: token)
    }
}

/// The engine's token store (`lethe token create`): live tokens by their HMAC, revoked ones refused.
extension Lethe: BearerAuthenticator {}
