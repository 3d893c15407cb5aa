import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import LetheCatalog
import LetheCore
import LetheEngine
import LetheRuntime
import LetheServer
import LetheTestSupport
import Testing

/// A stand-in OpenID Connect provider: `scripts/jwt_issuer.py` (PyJWT, `cryptography`) with an RSA key
/// `rsa-1` and an EC P-256 key `ec-1`, publishing their public keys in a JWKS file it rewrites on request.
final class TestIssuer: @unchecked Sendable {
    static let url = "https://idp.example.test/realms/lethe"
    static let audience = "lethe"
    let peer: PythonPeer
    let folder: String
    let jwks: String

    init() throws {
        folder = try PythonPeer.temporaryFolder("oidc")
        peer = try PythonPeer(script: "jwt_issuer.py", arguments: [folder], timeout: 120)
        guard let j = peer.ready["jwks"] as? String else { throw FixtureError(message: "jwt_issuer.py printed no jwks") }
        jwks = j
    }

    func stop() {
        peer.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    static var now: Double { Date().timeIntervalSince1970 }

    /// Claims of a valid token for `sub` with `role` (a string, a list, or nil for none); `change` edits them.
    static func claims(_ sub: String, _ role: Any?, _ change: (inout [String: Any]) -> Void = { _ in }) -> [String: Any] {
        var c: [String: Any] = ["iss": url, "aud": audience, "sub": sub, "iat": Int(now), "exp": Int(now) + 600]
        if let role { c["lethe_role"] = role }
        change(&c)
        return c
    }

    /// A token PyJWT signs with the key `kid` (the header names `asKid` when given).
    func mint(_ claims: [String: Any], kid: String = "rsa-1", alg: String = "RS256", asKid: String? = nil) throws -> String {
        var req: [String: Any] = ["op": "mint", "kid": kid, "alg": alg, "claims": claims]
        if let asKid { req["as_kid"] = asKid }
        return try token(req)
    }

    /// `alg: none`, or HS256 keyed with the RSA key's public PEM (`hs256-pem`) or JWK JSON (`hs256-jwk`).
    func forge(_ kind: String, _ claims: [String: Any], kid: String = "rsa-1") throws -> String {
        try token(["op": "forge", "kind": kind, "kid": kid, "claims": claims])
    }

    func add(kid: String, kty: String) throws { _ = try peer.exchange(["op": "add", "kid": kid, "kty": kty]) }
    func remove(kid: String) throws { _ = try peer.exchange(["op": "remove", "kid": kid]) }

    func token(_ req: [String: Any]) throws -> String {
        let reply = try peer.exchange(req)
        guard let t = reply["token"] as? String else { throw FixtureError(message: "jwt_issuer.py answered \(reply)") }
        return t
    }
}

/// Claims as jwt-kit signs them (the tokens a Swift service would mint).
struct KitClaims: JWTPayload {
    var iss: String
    var aud: [String]
    var sub: String
    var exp: Int
    var lethe_role: [String]
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// `serve.oidc`: JWTs of an OpenID Connect provider (minted by PyJWT and by jwt-kit) beside the engine's
/// tokens; every check that refuses one (401 `invalid_token`, saying which), the roles, four eyes, key
/// rotation without a restart, and the access audit.
@Suite(.timeLimit(.minutes(10))) struct OIDCTests {
    static func config(_ jwks: String, roleClaim: String = ServeConfig.OIDC.defaultRoleClaim) -> ServeConfig.OIDC {
        ServeConfig.OIDC(issuer: TestIssuer.url, audience: TestIssuer.audience, jwks: jwks, roleClaim: roleClaim, leewaySeconds: 60)
    }

    static func api(_ f: ServerFixture, _ auth: OIDCAuthenticator) -> LetheAPI {
        LetheAPI(lethe: f.lethe, authenticator: auth, serve: f.api().serve, logger: f.api().logger)
    }

    static let alice = "oidc:alice@idp.example.test"

    @Test func pyJWTTokensVerifyWithRS256PS256AndES256() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe)
        #expect(auth.keyIDs == ["ec-1", "rsa-1"])
        let rs = try issuer.mint(TestIssuer.claims("alice", "requester"))
        let ps = try issuer.mint(TestIssuer.claims("alice", "requester"), alg: "PS256")
        let es = try issuer.mint(TestIssuer.claims("bob", ["approver"]), kid: "ec-1", alg: "ES256")
        try await f.app(Self.api(f, auth)).test(.router) { client in
            let id = try await client.file("u-1", token: rs)
            #expect(try await !client.file("u-2", token: ps).isEmpty)
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: es).status == 200)
        }
        #expect(try await auth.principal(bearer: rs) == Principal(name: Self.alice, role: .requester))
        #expect(try await auth.principal(bearer: es) == Principal(name: "oidc:bob@idp.example.test", role: .approver))
    }

    @Test func jwtKitTokensVerifyWithES256AndEdDSA() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let ec = ES256PrivateKey(), ed = try EdDSA.PrivateKey(curve: .ed25519)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: ec, kid: "kit-ec")
        await signer.add(eddsa: ed, kid: "kit-ed")
        guard let p = ec.publicKey.parameters else { throw FixtureError(message: "no EC parameters") }
        let x = ed.publicKey.rawRepresentation.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let jwks = f.dir + "/jwks.json"
        try
            #"{"keys":[{"kty":"EC","crv":"P-256","kid":"kit-ec","x":"\#(p.x)","y":"\#(p.y)"},{"kty":"OKP","crv":"Ed25519","kid":"kit-ed","alg":"EdDSA","x":"\#(x)"}]}"#
            .write(toFile: jwks, atomically: true, encoding: .utf8)
        let auth = try await OIDCAuthenticator(config: Self.config(jwks), tokens: f.lethe)
        let claims = KitClaims(
            iss: TestIssuer.url, aud: ["other", TestIssuer.audience], sub: "carol", exp: Int(TestIssuer.now) + 600, lethe_role: ["auditor"])
        let viaEC = try await signer.sign(claims, kid: "kit-ec")
        let viaEd = try await signer.sign(claims, kid: "kit-ed")
        try await f.app(Self.api(f, auth)).test(.router) { client in
            #expect(try await client.call(.get, "/v1/audit/head", token: viaEC).status == 200)
            #expect(try await client.call(.get, "/v1/audit/head", token: viaEd).status == 200)
            // An EdDSA signature presented as ES256 (the header lies about the algorithm): refused.
            let parts = viaEd.split(separator: ".")
            let lying = try await signer.sign(claims, kid: "kit-ec").split(separator: ".")[0] + "." + parts[1] + "." + parts[2]
            let r = try await client.call(.get, "/v1/audit/head", token: String(lying))
            #expect(r.status == 401 && r.text.contains("bad signature"), "\(r.text)")
        }
    }

    /// Every check a JWT must pass, each failing alone: 401, `WWW-Authenticate: Bearer error="invalid_token"`,
    /// the one error shape, a message naming the check, and never the token.
    @Test func everyFailedCheckIsA401SayingWhich() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe)
        try issuer.add(kid: "gone", kty: "RSA")
        try issuer.remove(kid: "gone")
        let now = Int(TestIssuer.now)
        let valid = try issuer.mint(TestIssuer.claims("alice", "auditor"))
        let parts = valid.split(separator: ".")
        let admin = try issuer.mint(TestIssuer.claims("alice", "admin"))
        let cases: [(String, String)] = [
            ("expired", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["exp"] = now - 3600 })),
            ("wrong audience", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["aud"] = ["someone-else"] })),
            ("wrong issuer", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["iss"] = "https://evil.example.test/realms/lethe" })),
            ("no expiry", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["exp"] = nil })),
            ("not valid yet", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["nbf"] = now + 3600 })),
            ("issued in the future", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["iat"] = now + 3600 })),
            ("unknown key", try issuer.mint(TestIssuer.claims("alice", "auditor"), kid: "gone")),
            ("does not fit", try issuer.mint(TestIssuer.claims("alice", "auditor"), kid: "ec-1", alg: "ES256", asKid: "rsa-1")),
            ("bad signature", String(parts[0] + "." + admin.split(separator: ".")[1] + "." + parts[2])),
            ("alg none", try issuer.forge("none", TestIssuer.claims("alice", "admin"))),
            ("HMAC", try issuer.forge("hs256-pem", TestIssuer.claims("alice", "admin"))),
            ("HMAC", try issuer.forge("hs256-jwk", TestIssuer.claims("alice", "admin"))),
            ("malformed token", "e30.e30.AAAA"),
            ("missing or not a name", try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["sub"] = nil })),
        ]
        try await f.app(Self.api(f, auth)).test(.router) { client in
            #expect(try await client.call(.get, "/v1/audit/head", token: valid).status == 200)
            for (check, token) in cases {
                let r = try await client.call(.get, "/v1/audit/head", token: token)
                #expect(r.status == 401, "\(check): \(r.status) \(r.text)")
                #expect(r.errorCode == "unauthorized", "\(check): \(r.text)")
                #expect(r.text.contains("invalid token: ") && r.text.contains(check), "\(check): \(r.text)")
                #expect(r.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true, "\(check)")
                let signature = token.split(separator: ".", omittingEmptySubsequences: false)[2]
                #expect(signature.isEmpty || !r.text.contains(signature), "\(check): the token is echoed")
                #expect(!r.text.contains(token.split(separator: ".")[1]), "\(check): the payload is echoed")
            }
            // Leeway (60 s): a token expired 30 s ago, or valid from 30 s ahead, still passes ("ago" from
            // now: a starved full run can take minutes to get here).
            let later = Int(TestIssuer.now)
            let lateExp = try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["exp"] = later - 30 })
            let earlyNbf = try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["nbf"] = later + 30 })
            #expect(try await client.call(.get, "/v1/audit/head", token: lateExp).status == 200)
            #expect(try await client.call(.get, "/v1/audit/head", token: earlyNbf).status == 200)
            // `aud` as a list containing the audience passes.
            let listAud = try issuer.mint(TestIssuer.claims("alice", "auditor") { $0["aud"] = ["a", "lethe", "b"] })
            #expect(try await client.call(.get, "/v1/audit/head", token: listAud).status == 200)
        }
    }

    /// Every route × every role as JWT principals, with the statuses of the token matrix; a role claim
    /// naming several roles acts in one the route allows; none, or only unknown names: 403.
    @Test func roleMatrixWithJWTPrincipals() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe)
        var jwts: [Role: String] = [:]
        for role in Role.allCases { jwts[role] = try issuer.mint(TestIssuer.claims("p-\(role.rawValue)", role.rawValue)) }
        let both = try issuer.mint(TestIssuer.claims("dana", ["auditor", "approver", "unknown-role"]))
        let unknown = try issuer.mint(TestIssuer.claims("eve", ["superuser"]))
        let none = try issuer.mint(TestIssuer.claims("eve", nil))
        let number = try issuer.mint(TestIssuer.claims("eve", 7))
        try await f.app(Self.api(f, auth)).test(.router) { [jwts] client in
            let filer = jwts[.requester]!
            let verified = try await client.file("u-1", token: filer)
            #expect(try await client.call(.post, "/v1/requests/\(verified)/approve", token: jwts[.approver]!).status == 200)
            #expect(try await f.lethe.run().verifications.allSatisfy(\.clean))
            var n = 0
            for route in APIRoute.all where route.roles != nil {
                for role in Role.allCases {
                    n += 1
                    let r = try await client.callRoute(route, n: n, verified: verified, filer: filer, token: jwts[role]!)
                    #expect(r.status == RoleMatrixTests.expected(route, role), "\(route.method) \(route.path) as \(role): \(r.status) \(r.text)")
                }
            }
            // Several roles: the approver's route and the auditor's both pass; a requester's does not.
            let id = try await client.file("u-3", token: filer)
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: both).status == 200)
            #expect(try await client.call(.get, "/v1/audit/head", token: both).status == 200)
            #expect(try await client.call(.post, "/v1/requests", token: both, body: #"{"subjects":["u-4"]}"#).status == 403)
            for (what, token) in [("names no Lethe role", unknown), ("has no `lethe_role` claim", none), ("names no Lethe role", number)] {
                let r = try await client.call(.get, "/v1/audit/head", token: token)
                #expect(r.status == 403 && r.errorCode == "forbidden" && r.text.contains(what), "\(r.text)")
            }
        }
        // A role claim as a dotted path into an object (`realm_access.roles`, as Keycloak has it).
        let keycloak = try await OIDCAuthenticator(config: Self.config(issuer.jwks, roleClaim: "realm_access.roles"), tokens: f.lethe)
        let nested = try issuer.mint(TestIssuer.claims("frank", nil) { $0["realm_access"] = ["roles": ["offline_access", "stream"]] })
        #expect(try await keycloak.principal(bearer: nested, for: nil) == Principal(name: "oidc:frank@idp.example.test", role: .stream))
    }

    /// Four eyes binds JWT principals: the JWT that filed cannot approve, whatever its roles; another
    /// person's JWT can. A token of `lethe token create` is another principal by design, even with the
    /// same name; and no token may be named as an OIDC principal.
    @Test func fourEyesWithJWTPrincipals() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe)
        let alice = try issuer.mint(TestIssuer.claims("alice", ["requester", "approver", "admin"]))
        let aliceAgain = try issuer.mint(TestIssuer.claims("alice", "approver"), kid: "ec-1", alg: "ES256")
        let bob = try issuer.mint(TestIssuer.claims("bob", "approver"))
        let aliceToken = try await f.token("alice", .approver)
        await #expect(throws: LetheError.self) { try await f.lethe.createToken(name: Self.alice, role: .approver) }
        try await f.app(Self.api(f, auth)).test(.router) { client in
            let id = try await client.file("u-1", token: alice)
            for token in [alice, aliceAgain] {
                let r = try await client.call(.post, "/v1/requests/\(id)/approve", token: token)
                #expect(r.status == 409 && r.errorCode == "four_eyes", "\(r.text)")
            }
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: bob).status == 200)
            // The token named `alice` is not the JWT principal `oidc:alice@…`: it may approve what that one filed.
            let other = try await client.file("u-2", token: alice)
            #expect(try await client.call(.post, "/v1/requests/\(other)/approve", token: aliceToken).status == 200)
            // …and the engine's tokens keep working beside the JWTs.
            #expect(try await client.call(.get, "/v1/requests", token: aliceToken).status == 200)
            #expect(try await client.call(.get, "/v1/requests", token: "lethe_not-a-token").status == 401)
        }
    }

    /// A key added to the JWKS file is accepted without a restart, a key removed from it is refused,
    /// and a file that stops parsing keeps the keys last read.
    @Test func jwksRotationWithoutRestart() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe, reloadInterval: 0.2)
        try issuer.add(kid: "rsa-2", kty: "RSA")
        let old = try issuer.mint(TestIssuer.claims("alice", "auditor"))
        let new = try issuer.mint(TestIssuer.claims("alice", "auditor"), kid: "rsa-2")
        #expect(try await Self.eventually { (try? await auth.principal(bearer: new))?.role == .auditor })
        #expect(auth.keyIDs == ["ec-1", "rsa-1", "rsa-2"])
        try issuer.remove(kid: "rsa-1")
        #expect(
            try await Self.eventually {
                do {
                    _ = try await auth.principal(bearer: old)
                    return false
                } catch let e as APIError {
                    return e.status == .unauthorized && e.message.contains("unknown key")
                }
            })
        #expect(auth.keyIDs == ["ec-1", "rsa-2"])
        // A broken file: the keys last read stay.
        try #"{"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]}"#.write(toFile: issuer.jwks, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .seconds(1))
        _ = try await auth.principal(bearer: new)
        #expect(auth.keyIDs == ["ec-1", "rsa-2"])
    }

    /// The access audit names the JWT principal of each call (refused ones too).
    @Test func theAccessAuditRecordsJWTPrincipals() async throws {
        let f = try await ServerFixture()
        let issuer = try TestIssuer()
        defer { f.remove(); issuer.stop() }
        let auth = try await OIDCAuthenticator(config: Self.config(issuer.jwks), tokens: f.lethe)
        let access = AccessAuditService(lethe: f.lethe)
        var api = Self.api(f, auth)
        api.access = access
        let alice = try issuer.mint(TestIssuer.claims("alice", "requester"))
        let root = try await f.token("root", .admin)
        try await f.app(api).test(.router) { client in
            _ = try await client.file("u-1", token: alice)
            #expect(try await client.call(.get, "/v1/audit/head", token: alice).status == 403)
            await access.flush()
            let r = try await client.call(.get, "/v1/audit?after=0&limit=1000", token: root)
            #expect(r.status == 200 && r.text.contains("api_calls") && r.text.contains(Self.alice), "\(r.text)")
        }
        let calls = try await f.lethe.meta.audit.entries(from: 1, limit: 1_000).filter { $0.event == "api_calls" }
        #expect(!calls.isEmpty)
    }

    /// A missing, unreadable or malformed JWKS file, and bad `serve.oidc` keys: one-line errors naming them.
    @Test func badJWKSFilesAndConfigsAreClearErrors() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let path = f.dir + "/jwks.json"
        let files: [(String?, String)] = [
            (nil, "no such JWKS file"),
            ("{not json", "not JSON"),
            (#"{"kids": []}"#, "must be a JSON Web Key Set"),
            (#"{"keys": []}"#, "no signature keys"),
            (#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#, "has no `kid`"),
            (#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#, "secret key material"),
            (#"{"keys": [{"kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]}"#, "private or secret key material"),
            (#"{"keys": [{"kty": "RSA", "kid": "r", "alg": "HS256", "n": "AQAB", "e": "AQAB"}]}"#, "alg `HS256` does not fit"),
            (#"{"keys": [{"kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA"}]}"#, "is not a valid EC public key"),
            (#"{"keys": [{"kty": "OKP", "kid": "o", "crv": "X25519", "x": "AA"}]}"#, "curve `X25519` is not supported"),
        ]
        for (text, message) in files {
            try? FileManager.default.removeItem(atPath: path)
            if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
            let e = await #expect(throws: LetheError.self) { try await OIDCAuthenticator(config: Self.config(path), tokens: f.lethe) }
            #expect(e?.code == .badInput, "\(message)")
            let text = e?.description ?? ""
            #expect(text.contains(message) && text.contains(path) && !text.contains("\n"), "\(message): \(text)")
        }
        let yamls: [(String, String)] = [
            ("{issuer: https://idp.example.test, jwks: k.json}", "needs `audience`"),
            ("{audience: lethe, jwks: k.json}", "needs `issuer`"),
            ("{issuer: https://idp.example.test, audience: lethe}", "needs `jwks`"),
            ("{issuer: idp.example.test, audience: lethe, jwks: k.json}", "`serve.oidc.issuer` must be"),
            ("{issuer: https://idp.example.test, audience: lethe, jwks: k.json, leeway_seconds: -1}", "`serve.oidc.leeway_seconds`"),
            ("{issuer: https://idp.example.test, audience: lethe, jwks: k.json, role: admin}", "unknown key `role` in `serve.oidc`"),
            ("{issuer: https://idp.example.test, audience: lethe, jwks: k.json, role_claim: a..b}", "`serve.oidc.role_claim`"),
        ]
        for (oidc, message) in yamls {
            let yaml = ServerFixture.yaml + "\nserve: {oidc: \(oidc)}\n"
            let e = #expect(throws: LetheError.self) { try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: f.dir) }
            #expect(e?.description.contains(message) == true, "\(message): \(e?.description ?? "")")
        }
        let ok = try LakeConfig.parse(
            ServerFixture.yaml + "\nserve: {oidc: {issuer: 'https://idp.example.test:8443/realms/x', audience: lethe, jwks: k.json}}\n",
            file: "lethe.yaml", baseDir: f.dir)
        #expect(ok.serve.oidc?.jwks == f.dir + "/k.json")
        #expect(ok.serve.oidc?.issuerHost == "idp.example.test:8443")
        #expect(ok.serve.oidc?.roleClaim == "lethe_role" && ok.serve.oidc?.principalClaim == "sub" && ok.serve.oidc?.leewaySeconds == 60)
    }

    /// Polls `condition` (up to 120 s: the machine may be loaded).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<600 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}
