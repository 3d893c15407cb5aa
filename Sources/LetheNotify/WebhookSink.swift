import AsyncHTTPClient
public import Foundation
public import LetheCatalog
public import LetheCore
import NIOCore
import NIOHTTP1

/// Delivers outbox messages to one webhook (`notify.webhooks[]`): an HTTP `POST` of
///
///     {"at": "2026-12-01T03:42:10.123Z", "data": {…the outbox payload…}, "event": "planned",
///      "request_id": "r-…", "seq": 42}
///
/// (compact JSON, keys sorted) with the headers `Content-Type: application/json`,
/// `Lethe-Event: <event>`, `Lethe-Delivery: <seq>` (the same on every retry of a message: receivers
/// drop duplicates by it) and `Lethe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256 of "t.body">`
/// under the hook's secret (`WebhookSignature`), signed afresh at each attempt. A 2xx response is
/// accepted; any other status, a redirect, a timeout or a connection error throws (the dispatcher
/// retries with backoff).
public struct WebhookSink: NotificationSink {
    public let url: String
    public let events: Set<String>
    let secret: [UInt8]
    let timeout: Double

    /// `webhook:<url>` (the URL without user info).
    public var name: String { "webhook:" + url }

    /// Reads the secret from the environment variable the hook names. A missing or empty variable,
    /// an URL that is not http(s), or an unknown event is a startup error naming
    /// `notify.webhooks[index]`.
    public init(
        _ hook: NotifyConfig.Webhook, index: Int = 0, environment: [String: String] = ProcessInfo.processInfo.environment,
        timeout: Double = 15
    ) throws {
        let field = "notify.webhooks[\(index)]"
        guard var c = URLComponents(string: hook.url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
            c.host?.isEmpty == false
        else {
            throw LetheError.badInput("`\(hook.url)` is not an http:// or https:// URL", at: field + ".url")
        }
        if c.user != nil || c.password != nil {
            throw LetheError.badInput("the webhook URL must not carry user info (the signature authenticates Lethe)", at: field + ".url")
        }
        c.scheme = scheme
        url = c.string ?? hook.url
        guard !hook.secretEnv.isEmpty else { throw LetheError.badInput("no environment variable named for the signing secret", at: field + ".secret_env") }
        guard let s = environment[hook.secretEnv], !s.isEmpty else {
            throw LetheError.badInput(
                "the environment variable \(hook.secretEnv) (the webhook's signing secret) is not set or empty", at: field + ".secret_env")
        }
        secret = Array(s.utf8)
        for e in hook.events where !NotifyConfig.events.contains(e) {
            throw LetheError.badInput("unknown event `\(e)` (one of \(NotifyConfig.events.joined(separator: ", ")))", at: field + ".events")
        }
        events = Set(hook.events)
        self.timeout = timeout
    }

    public func wants(_ event: String) -> Bool { events.isEmpty || events.contains(event) }

    /// The body of a message as sent (compact JSON, sorted keys).
    public static func body(_ message: OutboxMessage) -> [UInt8] {
        let o: [String: JSONValue] = [
            "seq": .int(message.seq),
            "event": .string(message.event),
            "request_id": message.requestID.map { JSONValue.string($0) } ?? .null,
            "at": .string(iso8601(ms: message.createdAt)),
            "data": message.payload,
        ]
        return Array(JSONValue.object(o).text.utf8)
    }

    public func deliver(_ message: OutboxMessage) async throws {
        let body = Self.body(message)
        var req = HTTPClientRequest(url: url)
        req.method = .POST
        req.headers.add(name: "Content-Type", value: "application/json")
        req.headers.add(name: "User-Agent", value: "lethe-webhook/1")
        req.headers.add(name: "Lethe-Event", value: message.event)
        req.headers.add(name: "Lethe-Delivery", value: String(message.seq))
        let t = Int64(Date().timeIntervalSince1970)
        req.headers.add(name: "Lethe-Signature", value: WebhookSignature.header(timestamp: t, body: body, secret: secret))
        req.body = .bytes(ByteBuffer(bytes: body))
        let status: UInt
        var text = ""
        do {
            let resp = try await Self.http.execute(req, timeout: .nanoseconds(Int64(timeout * 1e9)))
            status = resp.status.code
            // A short excerpt for the error; the rest is read and dropped.
            var got = ByteBuffer()
            for try await chunk in resp.body where got.readableBytes < 512 {
                var c = chunk
                got.writeBuffer(&c)
            }
            text = String(decoding: got.readableBytesView.prefix(200), as: UTF8.self)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw LetheError(.io, "webhook \(url): delivery \(message.seq) failed: \(error)")
        }
        guard (200..<300).contains(status) else {
            let excerpt = text.split(whereSeparator: \.isNewline).joined(separator: " ")
            throw LetheError(.failure, "webhook \(url): delivery \(message.seq) refused with HTTP \(status)" + (excerpt.isEmpty ? "" : ": \(excerpt)"))
        }
    }

    /// The process's HTTP client for webhooks: no redirects (a redirect is a refusal), 5 s to connect.
    static let http: HTTPClient = {
        var c = HTTPClient.Configuration()
        c.redirectConfiguration = .disallow
        c.timeout = .init(connect: .seconds(5), read: .seconds(30))
        c.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }()

    /// `2026-12-01T03:42:10.123Z`.
    static func iso8601(ms: Int64) -> String { ISOTime.milliseconds(ms) }
}
