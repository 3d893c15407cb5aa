import Foundation
import JWTKit
import LetheCore

/// The public keys of a JSON Web Key Set file (RFC 7517) by `kid`, each with one jwt-kit verifier per
/// algorithm it fits: RSA keys RS256/384/512 and PS256/384/512, EC keys the ES algorithm of their curve,
/// OKP (Ed25519) keys EdDSA; a key's `alg`, when set, narrows that to one. Keys marked `use: enc` are
/// skipped. Symmetric (`oct`) keys, private key material and keys without a `kid` are refused: the
/// file holds an issuer's public keys, and a token chooses its key by `kid`.
struct JWKSet: Sendable {
    struct Key: Sendable {
        /// `RSA`, `EC P-256`, `OKP Ed25519`…
        var type: String
        /// A verifier per algorithm (a collection holding only this key, with that algorithm).
        var verifiers: [String: JWTKeyCollection]
    }

    struct Failure: Error, Sendable {
        var message: String
    }

    /// The algorithms accepted, in the order error messages list them.
    static let algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
    static let rsa = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    static let curves = ["P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"]

    var keys: [String: Key]

    /// Parses a JWKS document; a one-line `Failure` naming the key (by position and kid) otherwise.
    init(_ bytes: [UInt8]) async throws(Failure) {
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            throw Failure(message: "the JWKS file is not JSON (\(error))")
        }
        guard case .object(let top) = document, case .array(let list)? = top["keys"] else {
            throw Failure(message: #"the JWKS file must be a JSON Web Key Set: {"keys": [{"kty": "RSA", "kid": …, "n": …, "e": …}]}"#)
        }
        var keys: [String: Key] = [:]
        for (i, item) in list.enumerated() {
            guard case .object(var jwk) = item else { throw Failure(message: "key #\(i + 1) is not a JSON object") }
            guard case .string(let kid)? = jwk["kid"], !kid.isEmpty else {
                throw Failure(message: "key #\(i + 1) has no `kid` (a token chooses its key by kid)")
            }
            let at = "key #\(i + 1) (kid \(kid))"
            if case .string(let use)? = jwk["use"], use != "sig" { continue }
            guard keys[kid] == nil else { throw Failure(message: "\(at): another key has the same kid") }
            for p in ["d", "p", "q", "dp", "dq", "qi", "k"] where jwk[p] != nil {
                throw Failure(message: "\(at) holds private or secret key material (`\(p)`): the JWKS file takes the issuer's public keys only")
            }
            guard case .string(let kty)? = jwk["kty"] else { throw Failure(message: "\(at) has no `kty`") }
            var crv: String?
            if case .string(let c)? = jwk["crv"] { crv = c }
            let fits: [String]
            switch kty {
            case "RSA": fits = Self.rsa
            case "EC", "OKP":
                guard let crv, let alg = Self.curves[crv], (kty == "OKP") == (crv == "Ed25519") else {
                    throw Failure(message: "\(at): curve `\(crv ?? "none")` is not supported for kty \(kty) (P-256, P-384, P-521; OKP: Ed25519)")
                }
                fits = [alg]
            default:
                throw Failure(message: "\(at): kty `\(kty)` is not a public signature key (RSA, EC, OKP)")
            }
            var algs = fits
            if case .string(let alg)? = jwk["alg"] {
                guard fits.contains(alg) else { throw Failure(message: "\(at): alg `\(alg)` does not fit kty \(kty) (\(fits.joined(separator: ", ")))") }
                algs = [alg]
            }
            var verifiers: [String: JWTKeyCollection] = [:]
            for alg in algs {
                jwk["alg"] = .string(alg)
                do {
                    let decoded = try JSONDecoder().decode(JWK.self, from: Data(JSONValue.object(jwk).text.utf8))
                    verifiers[alg] = try await JWTKeyCollection().add(jwk: decoded)
                } catch {
                    let needs =
                        kty == "RSA"
                        ? "`n` and `e` in base64url, 2048 bits or more"
                        : kty == "EC" ? "`x` and `y` in base64url, a point of the curve" : "`x` in base64url, 32 bytes"
                    throw Failure(message: "\(at) is not a valid \(kty) public key (\(needs)): \(error)")
                }
            }
            keys[kid] = Key(type: crv.map { "\(kty) \($0)" } ?? kty, verifiers: verifiers)
        }
        guard !keys.isEmpty else { throw Failure(message: "the JWKS file has no signature keys") }
        self.keys = keys
    }
}

/// What jwt-kit decodes of a payload: nothing. The signature is jwt-kit's to check; the claims are
/// `OIDCAuthenticator.check`'s, from the payload's JSON (the role claim's name is configured).
struct SignedPayload: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
