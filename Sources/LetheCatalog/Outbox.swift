public import LetheCore

// The notification outbox (issue 14): a message is written in the same transaction as the change it
// tells of, and delivered at least once, in order per request, by a dispatcher to each sink
// (webhooks, e-mail). The store side (tables, readers, writers, the dispatcher) and the sinks
// (transports) meet here.

/// One notification, as written to the outbox.
public struct OutboxMessage: Sendable, Equatable {
    /// Global order of writing (ascending, never reused).
    public var seq: Int64
    /// The request it is about (nil: not about one request).
    public var requestID: String?
    /// One of `NotifyConfig.events` (`filed`, `planned`, `approved`, `rejected`, `erased`, `verified`, `failed`).
    public var event: String
    /// The message body: never a raw subject id (the subject's keyed hash, status, plan summary, …).
    public var payload: JSONValue
    /// When it was written, ms since the epoch.
    public var createdAt: Int64
    public init(seq: Int64, requestID: String?, event: String, payload: JSONValue, createdAt: Int64) {
        self.seq = seq; self.requestID = requestID; self.event = event; self.payload = payload; self.createdAt = createdAt
    }
}

/// Where outbox messages are delivered: a webhook, the approvers' e-mail. `deliver` returns when the
/// receiver has accepted the message; it throws to have the dispatcher retry later with backoff.
public protocol NotificationSink: Sendable {
    /// A stable name (the delivery state is kept per sink name), e.g. `webhook:https://…` or `email`.
    var name: String { get }
    /// Whether this sink wants this event at all (a message it does not want counts as delivered).
    func wants(_ event: String) -> Bool
    func deliver(_ message: OutboxMessage) async throws
}
