/// `serve: {…}` in `lethe.yaml`: how `lethe serve` listens and when it runs approved requests.
public struct ServeConfig: Sendable, Equatable {
    /// The address to listen on. Without `tls` only a loopback address is accepted.
    public var host = "127.0.0.1"
    public var port = 8080
    /// Seconds between scheduled runs of approved requests; 0 runs them as soon as they are approved.
    public var runEvery: Double = 600
    /// At most this many requests per scheduled run.
    public var batchMax = 10_000
    /// The legal deadline, in days from filing, the dashboard and metrics measure requests against (GDPR: a month).
    public var deadlineDays = 30
    /// The service's address as people reach it (links in e-mails), e.g. `https://lethe.example.com`.
    public var publicURL: String?
    /// PEM certificate chain and private key: HTTPS instead of HTTP.
    public var tls: TLSFiles?
    /// `serve.oidc`: bearer JWTs of an OpenID Connect provider accepted beside `lethe token create`'s tokens.
    public var oidc: OIDC?

    public struct TLSFiles: Sendable, Equatable {
        public var cert: String
        public var key: String
        public init(cert: String, key: String) { self.cert = cert; self.key = key }
    }

    /// `serve.oidc: {issuer, audience, jwks, role_claim, principal_claim, leeway_seconds}`: which JWTs
    /// `lethe serve` accepts (signed by a key of the JWKS file, for this issuer and audience) and how a
    /// token's claims become a principal and a role.
    public struct OIDC: Sendable, Equatable {
        public static let defaultRoleClaim = "lethe_role"
        public static let defaultPrincipalClaim = "sub"
        public static let defaultLeeway = 60
        /// The `iss` every token must carry, exactly (an http:// or https:// URL).
        public var issuer: String
        /// The value the token's `aud` (a string or a list) must contain.
        public var audience: String
        /// The JSON Web Key Set file (public keys), re-read when it changes.
        public var jwks: String
        /// The claim naming the caller's Lethe role(s): a string or a list of strings; a dotted path
        /// (`realm_access.roles`) reaches into objects.
        public var roleClaim: String
        /// The claim whose string value identifies the caller (the principal is `oidc:VALUE@ISSUER-HOST`).
        public var principalClaim: String
        /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
        public var leewaySeconds: Int

        public init(
            issuer: String, audience: String, jwks: String, roleClaim: String = OIDC.defaultRoleClaim,
            principalClaim: String = OIDC.defaultPrincipalClaim, leewaySeconds: Int = OIDC.defaultLeeway
        ) {
            self.issuer = issuer; self.audience = audience; self.jwks = jwks; self.roleClaim = roleClaim
            self.principalClaim = principalClaim; self.leewaySeconds = leewaySeconds
        }

        /// The issuer's host (`idp.example.com`, with `:port` when it names one): the principal's domain.
        public var issuerHost: String {
            guard let r = issuer.firstRange(of: "://") else { return issuer }
            let rest = issuer[r.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            return String(authority.split(separator: "@").last ?? authority)
        }
    }
    public init() {}
}

/// `notify: {…}` in `lethe.yaml`: where request events go.
public struct NotifyConfig: Sendable, Equatable {
    /// The request events a notification is sent on.
    public static let events = ["filed", "planned", "approved", "rejected", "erased", "verified", "failed"]

    public struct Webhook: Sendable, Equatable {
        public var url: String
        /// The environment variable holding the hook's HMAC-SHA-256 signing secret (never the secret in the file).
        public var secretEnv: String
        /// The events sent to this hook (empty: all of them).
        public var events: [String]
        public init(url: String, secretEnv: String, events: [String] = []) { self.url = url; self.secretEnv = secretEnv; self.events = events }
    }

    public struct Email: Sendable, Equatable {
        /// `smtp://host:port` (plain; STARTTLS when the server offers it) or `smtps://host:port`.
        public var smtp: String
        public var from: String
        /// Who receives purge reports (the `planned` event).
        public var approvers: [String]
        public init(smtp: String, from: String, approvers: [String]) { self.smtp = smtp; self.from = from; self.approvers = approvers }
    }

    public var webhooks: [Webhook] = []
    public var email: Email?
    /// Messages delivered to every sink are deleted from the outbox once older than this (`notify.keep_delivered_days`).
    public var keepDeliveredDays = NotifyConfig.defaultKeepDeliveredDays
    public static let defaultKeepDeliveredDays = 7
    public init() {}
}

/// `stream: {redis: URL, key: K}`: the deletion set's stream tags mirrored into a Redis set.
public struct StreamSinkConfig: Sendable, Equatable {
    public static let defaultKey = "lethe:deletions"
    public var redis: String
    public var key: String
    public init(redis: String, key: String = StreamSinkConfig.defaultKey) { self.redis = redis; self.key = key }
}
