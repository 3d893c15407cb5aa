public import LetheCore
public import LetheEngine

/// Resolves a bearer token to the principal it stands for (nil: unknown or revoked). The service
/// uses the engine's token store (`Lethe.principal(bearer:)`); the seam keeps the routes independent of it.
public protocol BearerAuthenticator: Sendable {
    func principal(bearer token: String) async throws -> Principal?
}

/// The engine's token store (`lethe token create`): live tokens by their HMAC, revoked ones refused.
extension Lethe: BearerAuthenticator {}
