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

    public struct TLSFiles: Sendable, Equatable {
        public var cert: String
        public var key: String
        public init(cert: String, key: String) { self.cert = cert; self.key = key }
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
