import Crypto
import Foundation
public import LetheCore
import LetheCatalog

// API tokens of `lethe serve` (issue 14): `lethe token create|list|revoke`, and the server's bearer check.

extension Lethe {
    /// What every token starts with (so a leaked one is recognised by secret scanners and people).
    public static let tokenPrefix = "lethe_"
    /// Random bytes in a token's secret.
    static let tokenBytes = 32
    /// A token's last use is recorded at most this often (ms): authentication stays a read.
    static let tokenTouchInterval: Int64 = 60_000

    /// Creates a token for `name` with `role`: returns it as stored and its secret (`lethe_` and 43
    /// base64url characters of 32 random bytes), which is shown once and stored only as its keyed
    /// hash. `.badInput` for an empty or overlong name, `.conflict` when a live token has the name.
    /// Audited (`token_created`: the name by reference as free text, the role); `by` names who asked
    /// (nil: Lethe itself, e.g. the CLI of the installation's operator).
    public func createToken(name: String, role: Role, by: String? = nil) async throws -> (token: APIToken, secret: String) {
        return try await durably {
            try Self.checkTokenName(name)
            var rng = SystemRandomNumberGenerator()
            let bytes = (0..<Self.tokenBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let secret = Self.tokenPrefix + Self.base64url(bytes)
            let hash = tokenHash(secret), at = now()
            let token = try await meta.transaction("cannot create token \(name)") { tx in
                let t = try tx.tokens.insertToken(name: name, role: role, hash: hash, at: at)
                let (actor, details) = try Self.auditDetails(tx, actor: by, texts: ["name": name], ["role": .string(role.rawValue), "token": .int(t.id)])
                try tx.appendAudit(event: .tokenCreated, requestID: nil, actor: by == nil ? "lethe" : actor, details: details, at: at)
                return t
            }
            return (token, secret)
        }
    }

    /// Every token, live and revoked, in order of creation (never a secret or a hash).
    public func tokens() async throws -> [APIToken] { try await meta.tokens.allTokens() }

    /// Revokes the live token named `name` (`.notFound` when there is none); audited (`token_revoked`).
    @discardableResult
    public func revokeToken(name: String, by: String? = nil) async throws -> APIToken {
        return try await durably {
            let at = now()
            let revoked = try await meta.transaction("cannot revoke token \(name)") { tx -> APIToken? in
                guard let t = try tx.tokens.revokeToken(name: name, at: at) else { return nil }
                let (actor, details) = try Self.auditDetails(tx, actor: by, texts: ["name": name], ["role": .string(t.role.rawValue), "token": .int(t.id)])
                try tx.appendAudit(event: .tokenRevoked, requestID: nil, actor: by == nil ? "lethe" : actor, details: details, at: at)
                return t
            }
            guard let revoked else { throw LetheError(.notFound, "no live token named `\(name)` (see `lethe token list`)") }
            return revoked
        }
    }

    /// The principal a bearer token authenticates: nil for anything that is not a live token of this
    /// installation (malformed, unknown, revoked). The stored hash is compared in constant time; the
    /// token's last use is recorded at most once a minute (a failure to record it is ignored).
    public func principal(bearer: String) async throws -> Principal? {
        let b = Array(bearer.utf8)
        guard b.count >= Self.tokenPrefix.utf8.count + 40, b.count <= 200, bearer.hasPrefix(Self.tokenPrefix) else { return nil }
        let hash = tokenHash(bearer)
        guard let found = try await meta.tokens.token(hash: hash), Self.constantTimeEqual(found.hash, hash), found.token.isLive else {
            return nil
        }
        let token = found.token
        let at = now()
        if (token.lastUsedAt ?? Int64.min) < at - Self.tokenTouchInterval {
            let id = token.id
            _ = try? await meta.transaction("cannot record the use of a token") { tx in try tx.tokens.touchToken(id: id, at: at) }
        }
        return token.principal
    }

    /// The keyed hash a token is stored as: HMAC-SHA-256 under `StateSecrets.tokenKey`.
    func tokenHash(_ token: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(token.utf8), using: SymmetricKey(data: secrets.tokenKey)))
    }

    static func checkTokenName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 100 else { throw LetheError(.badInput, "a token's name must have 1 to 100 characters") }
        guard name.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) && !CharacterSet.whitespacesAndNewlines.contains($0) })
        else { throw LetheError(.badInput, "a token's name cannot hold spaces or control characters") }
        // `oidc:…` names the principals of `serve.oidc` JWTs: no token may pass for one.
        guard !name.hasPrefix("oidc:") else { throw LetheError(.badInput, "a token's name cannot begin with `oidc:` (reserved for OIDC principals)") }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool { LetheCore.constantTimeEqual(a, b) }

    static func base64url(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }
}
