import Crypto
import Foundation
import LetheCore

/// The dashboard's session: a cookie that names an API token by its id (never the token itself) and
/// when the session ends, signed with HMAC-SHA-256 under a key derived from the installation secret
/// (through `StateSecrets.tokenKey`, with its own label). Every page re-reads the token: a revoked
/// token ends its sessions at once. The CSRF token of a session is derived from the cookie under the
/// same key, so it needs no server-side storage and differs per session.
///
/// The cookie's value: `v1.<token id>.<expiry ms>.<nonce>.<mac>` (nonce: 16 random bytes, base64url;
/// mac: base64url of the HMAC of everything before it).
public struct DashboardSession: Sendable, Equatable {
    /// The API token's id (`APIToken.id`).
    public var tokenID: Int64
    /// When the session ends (ms since the epoch).
    public var expiresAt: Int64
    /// Random bytes that make two sessions of one token differ (base64url).
    public var nonce: String

    public init(tokenID: Int64, expiresAt: Int64, nonce: String) {
        self.tokenID = tokenID; self.expiresAt = expiresAt; self.nonce = nonce
    }

    /// The cookie's name.
    public static let cookieName = "lethe_session"
    /// How long a session lasts (ms): 8 hours, a working day.
    public static let lifetime: Int64 = 8 * 3_600_000

    /// A new session of `tokenID` ending `lifetime` after `now`.
    public static func make(tokenID: Int64, now: Int64, lifetime: Int64 = lifetime) -> DashboardSession {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return DashboardSession(tokenID: tokenID, expiresAt: now + lifetime, nonce: base64url(bytes))
    }

    /// The signing key of sessions and CSRF tokens: HMAC-SHA-256 of a fixed label under `tokenKey`
    /// (itself derived from the installation secret).
    public static func key(tokenKey: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("lethe dashboard session v1".utf8), using: SymmetricKey(data: tokenKey)))
    }

    /// The cookie's value, signed under `key`.
    public func cookieValue(key: [UInt8]) -> String {
        let body = "v1.\(tokenID).\(expiresAt).\(nonce)"
        return body + "." + Self.mac(body, key: key)
    }

    /// The session a cookie value names, if its signature holds under `key` and it has not expired at `now`.
    public static func parse(_ value: String, key: [UInt8], now: Int64) -> DashboardSession? {
        guard value.utf8.count <= 200 else { return nil }
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "v1", let id = Int64(parts[1]), let exp = Int64(parts[2]), !parts[3].isEmpty else { return nil }
        let body = parts[0..<4].joined(separator: ".")
        guard constantTimeEqual(Array(mac(body, key: key).utf8), Array(parts[4].utf8)) else { return nil }
        guard exp > now else { return nil }
        return DashboardSession(tokenID: id, expiresAt: exp, nonce: String(parts[3]))
    }

    /// The session's CSRF token: HMAC of the cookie's value under `key` with its own label.
    public func csrfToken(key: [UInt8]) -> String {
        Self.mac("csrf:" + cookieValue(key: key), key: key)
    }

    /// True when `given` is this session's CSRF token (constant time).
    public func checkCSRF(_ given: String?, key: [UInt8]) -> Bool {
        guard let given else { return false }
        return Self.constantTimeEqual(Array(csrfToken(key: key).utf8), Array(given.utf8))
    }

    static func mac(_ text: String, key: [UInt8]) -> String {
        base64url(Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))))
    }

    static func base64url(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool { LetheCore.constantTimeEqual(a, b) }
}
