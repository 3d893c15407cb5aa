import Foundation
import Hummingbird
import JWTKit
public import LetheCore
public import Logging
import Synchronization

/// `serve.oidc`: bearer JWTs of an OpenID Connect provider, beside the tokens of `lethe token create`.
///
/// A bearer of three dot-separated base64url parts is verified as a JWT: its header's `alg` must be an
/// asymmetric signature (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA; never `none` or HMAC), its
/// `kid` must name a key of the JWKS file that fits that algorithm, the signature must verify with it
/// (jwt-kit), `iss` must equal the issuer, `aud` contain the audience, `exp` be in the future and `nbf`/`iat`
/// not, each within the leeway. Any other bearer goes to `tokens` (the engine's token store).
///
/// The principal is `oidc:<principal claim>@<issuer host>`: a name no token can have (`lethe token create`
/// refuses the `oidc:` prefix), so a person holding both a token and a JWT is two principals. The role
/// claim (a string or a list) names Lethe roles; the principal acts in the least of them the route allows.
///
/// The JWKS file is read when the service starts (a missing or malformed file stops it) and again, at
/// most every `reloadInterval` seconds, when its bytes have changed: a rotated key is used without a
/// restart; a file that no longer parses keeps the keys last read (and says so in the log).
public final class OIDCAuthenticator: BearerAuthenticator {
    public let config: ServeConfig.OIDC
    let tokens: any BearerAuthenticator
    let reloadInterval: Duration
    let logger: Logger
    let state: Mutex<State>

    struct State {
        var keys: JWKSet
        var bytes: [UInt8]
        var nextCheck: ContinuousClock.Instant
        var checking = false
    }

    /// Reads the JWKS file: a missing, unreadable or malformed one is a `.badInput` error naming it.
    public init(
        config: ServeConfig.OIDC, tokens: any BearerAuthenticator, reloadInterval: Double = 3, logger: Logger = Logger(label: "lethe.oidc")
    ) async throws {
        self.config = config; self.tokens = tokens; self.logger = logger
        self.reloadInterval = .milliseconds(Int64(max(0, reloadInterval) * 1000))
        guard let bytes = Self.read(config.jwks) else {
            throw LetheError(.badInput, "serve.oidc.jwks: \(Self.unreadable(config.jwks))", at: config.jwks)
        }
        let keys: JWKSet
        do {
            keys = try await JWKSet(bytes)
        } catch {
            throw LetheError(.badInput, "serve.oidc.jwks: \(error.message)", at: config.jwks)
        }
        state = Mutex(State(keys: keys, bytes: bytes, nextCheck: .now + self.reloadInterval))
    }

    /// The kids of the keys in use (the JWKS file as last read).
    public var keyIDs: [String] { state.withLock { $0.keys.keys.keys.sorted() } }

    public func principal(bearer token: String) async throws -> Principal? {
        try await principal(bearer: token, for: nil)
    }

    public func principal(bearer token: String, for allowed: Set<Role>?) async throws -> Principal? {
        guard Self.looksLikeJWT(token) else { return try await tokens.principal(bearer: token, for: allowed) }
        let (name, roles) = try await verify(token)
        guard let role = Role.allCases.first(where: { roles.contains($0) && (allowed?.contains($0) ?? true) }) ?? roles.min(by: Self.order)
        else {
            throw APIError.forbidden(
                "the token's `\(config.roleClaim)` claim names no Lethe role (\(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return Principal(name: name, role: role)
    }

    static func order(_ a: Role, _ b: Role) -> Bool {
        Role.allCases.firstIndex(of: a)! < Role.allCases.firstIndex(of: b)!
    }

    /// Three dot-separated parts of base64url characters, the first two non-empty.
    static func looksLikeJWT(_ token: String) -> Bool {
        var dots = 0, partLength = 0
        for c in token.utf8 {
            switch c {
            case UInt8(ascii: "."):
                if dots < 2 && partLength == 0 { return false }
                dots += 1; partLength = 0
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                partLength += 1
            default: return false
            }
        }
        return dots == 2
    }

    /// Verifies `token` as a JWT: the principal's name and the Lethe roles its role claim names (empty
    /// when it names none: the caller answers 403). A failed check throws a 401 saying which.
    func verify(_ token: String) async throws -> (name: String, roles: Set<Role>) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64url(parts[0]), case .object(let header)? = try? JSONValue.parse(headerBytes) else {
            throw Self.invalid("malformed token (its header is not base64url JSON)")
        }
        guard case .string(let alg)? = header["alg"] else { throw Self.invalid("malformed token (its header has no `alg`)") }
        if alg.lowercased() == "none" { throw Self.invalid("unsigned tokens (alg none) are not accepted") }
        if alg.uppercased().hasPrefix("HS") {
            throw Self.invalid("HMAC-signed tokens (alg \(Self.printable(alg))) are not accepted: only the issuer's public keys verify")
        }
        guard JWKSet.algorithms.contains(alg) else {
            throw Self.invalid("algorithm \(Self.printable(alg)) is not accepted (\(JWKSet.algorithms.joined(separator: ", ")))")
        }
        if header["crit"] != nil { throw Self.invalid("critical header extensions (crit) are not supported") }
        let keys = await currentKeys()
        let kid: String
        switch header["kid"] {
        case .string(let k)?: kid = k
        case nil:
            guard keys.keys.count == 1, let only = keys.keys.keys.first else {
                throw Self.invalid("the token names no key (kid) and the JWKS file has \(keys.keys.count)")
            }
            kid = only
        default: throw Self.invalid("malformed token (its `kid` is not a string)")
        }
        guard let key = keys.keys[kid] else { throw Self.invalid("unknown key (the token's kid is not in the JWKS file)") }
        guard let verifier = key.verifiers[alg] else {
            throw Self.invalid("algorithm \(alg) does not fit the token's key (\(key.type), \(key.verifiers.keys.sorted().joined(separator: ", ")))")
        }
        do {
            _ = try await verifier.verify(token, as: SignedPayload.self)
        } catch {
            throw Self.invalid((error as? JWTError)?.errorType == .signatureVerificationFailed ? "bad signature" : "malformed token")
        }
        guard let payloadBytes = Self.base64url(parts[1]), case .object(let claims)? = try? JSONValue.parse(payloadBytes) else {
            throw Self.invalid("malformed token (its payload is not a JSON object)")
        }
        try check(claims, now: Date().timeIntervalSince1970)
        guard case .string(let subject)? = Self.claim(claims, config.principalClaim), !subject.isEmpty, subject.utf8.count <= 256,
            subject.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) })
        else {
            throw Self.invalid("the token's `\(config.principalClaim)` claim is missing or not a name (a string of 1 to 256 characters)")
        }
        var names: [String] = []
        switch Self.claim(claims, config.roleClaim) {
        case .string(let s)?: names = [s]
        case .array(let a)?: names = a.compactMap { if case .string(let s) = $0 { s } else { nil } }
        case nil: throw APIError.forbidden("the token has no `\(config.roleClaim)` claim (the caller's Lethe role)")
        default: break
        }
        return ("oidc:\(subject)@\(config.issuerHost)", Set(names.compactMap(Role.init(rawValue:))))
    }

    /// The registered claims: `iss`, `aud`, `exp` (required), `nbf` and `iat` (when present), at `now`.
    func check(_ claims: [String: JSONValue], now: Double) throws {
        let leeway = Double(config.leewaySeconds)
        guard case .string(let iss)? = claims["iss"], iss == config.issuer else {
            throw Self.invalid("wrong issuer (`iss` is not serve.oidc.issuer)")
        }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let a)?: audiences = [a]
        case .array(let a)?: audiences = a.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: audiences = []
        }
        guard audiences.contains(config.audience) else { throw Self.invalid("wrong audience (`aud` does not contain serve.oidc.audience)") }
        guard let exp = Self.seconds(claims["exp"]) else { throw Self.invalid("the token has no expiry (`exp`)") }
        guard now < exp + leeway else { throw Self.invalid("expired") }
        if claims["nbf"] != nil {
            guard let nbf = Self.seconds(claims["nbf"]) else { throw Self.invalid("malformed token (`nbf` is not a number)") }
            guard nbf <= now + leeway else { throw Self.invalid("not valid yet (`nbf` is in the future)") }
        }
        if claims["iat"] != nil {
            guard let iat = Self.seconds(claims["iat"]) else { throw Self.invalid("malformed token (`iat` is not a number)") }
            guard iat <= now + leeway else { throw Self.invalid("issued in the future (`iat`)") }
        }
    }

    /// The keys: re-read from the file when the reload interval has passed and its bytes changed.
    func currentKeys() async -> JWKSet {
        let due = state.withLock { s -> Bool in
            guard !s.checking, ContinuousClock.now >= s.nextCheck else { return false }
            s.checking = true
            return true
        }
        guard due else { return state.withLock { $0.keys } }
        var fresh: (keys: JWKSet, bytes: [UInt8])?
        let old = state.withLock { $0.bytes }
        if let bytes = Self.read(config.jwks) {
            do {
                if bytes != old { fresh = (try await JWKSet(bytes), bytes) }
            } catch {
                logger.warning("serve.oidc.jwks \(config.jwks): \(error.message); the keys last read stay in use")
            }
        } else {
            logger.warning("serve.oidc.jwks \(config.jwks): \(Self.unreadable(config.jwks)); the keys last read stay in use")
        }
        if let fresh { logger.info("serve.oidc.jwks \(config.jwks): reloaded, keys \(fresh.keys.keys.keys.sorted())") }
        return state.withLock { s in
            if let fresh { s.keys = fresh.keys; s.bytes = fresh.bytes }
            s.checking = false
            s.nextCheck = .now + reloadInterval
            return s.keys
        }
    }

    /// A 401 for a bearer that looked like a JWT and failed `check`: `WWW-Authenticate` says `invalid_token`.
    static func invalid(_ check: String) -> APIError {
        var h = HTTPFields()
        h[.wwwAuthenticate] = #"Bearer realm="lethe", error="invalid_token", error_description="\#(check.filter { $0 != "\"" && $0 != "\\" })""#
        return APIError(.unauthorized, "unauthorized", "invalid token: \(check)", headers: h)
    }

    /// `a.b.c` in nested objects (the claim named `a.b.c` itself first).
    static func claim(_ claims: [String: JSONValue], _ path: String) -> JSONValue? {
        if let v = claims[path] { return v }
        var current: JSONValue = .object(claims)
        for part in path.split(separator: ".") {
            guard case .object(let o) = current, let next = o[String(part)] else { return nil }
            current = next
        }
        return current
    }

    /// A NumericDate claim in seconds.
    static func seconds(_ v: JSONValue?) -> Double? {
        switch v {
        case .int(let i)?: Double(i)
        case .double(let d)? where d.isFinite: d
        default: nil
        }
    }

    /// Base64url without padding (RFC 7515) to bytes; nil when malformed.
    static func base64url(_ s: Substring) -> [UInt8]? { Base64URL.decode(String(s)) }

    /// Text from a token's header, bounded and without control characters, for an error message.
    static func printable(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" }.prefix(16).map(Character.init))
    }

    /// A file's bytes; nil when it cannot be read.
    static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    /// Why `read` failed, in a few words.
    static func unreadable(_ path: String) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return "no such JWKS file" }
        return isDir.boolValue ? "the JWKS path is a folder, not a file" : "cannot read the JWKS file"
    }
}
