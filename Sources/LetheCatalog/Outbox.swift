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

/// One outbox message not yet delivered to a sink, with that sink's delivery state of it.
public struct OutboxPending: Sendable, Equatable {
    public var message: OutboxMessage
    /// Attempts so far (0: never tried).
    public var attempts: Int
    /// Not to be tried before this time (ms since the epoch; 0: at once).
    public var nextAttemptAt: Int64
    /// The last attempt's error (one line, no personal data).
    public var lastError: String?
    public init(message: OutboxMessage, attempts: Int, nextAttemptAt: Int64, lastError: String?) {
        self.message = message; self.attempts = attempts; self.nextAttemptAt = nextAttemptAt; self.lastError = lastError
    }
}

/// A sink's delivery state of one message (`OutboxReader.deliveries`).
public struct OutboxDelivery: Sendable, Equatable {
    public var sink: String
    public var seq: Int64
    public var attempts: Int
    public var nextAttemptAt: Int64
    /// When it was delivered (nil: not yet).
    public var deliveredAt: Int64?
    public var lastError: String?
    public init(sink: String, seq: Int64, attempts: Int, nextAttemptAt: Int64, deliveredAt: Int64?, lastError: String?) {
        self.sink = sink; self.seq = seq; self.attempts = attempts; self.nextAttemptAt = nextAttemptAt
        self.deliveredAt = deliveredAt; self.lastError = lastError
    }
}

/// A sink's dispatch lease: when several servers share one state, one dispatcher at a time delivers
/// to a sink. The holder renews it while it dispatches; another takes it over once it has expired.
public struct OutboxLease: Sendable, Equatable {
    /// Who holds it (a dispatcher's own id); nil: nobody (never taken, or released).
    public var holder: String?
    /// Held until this time (ms since the epoch); taken over by another once past.
    public var until: Int64
    public init(holder: String?, until: Int64) { self.holder = holder; self.until = until }
}

/// The outbox, read.
public protocol OutboxReader: Sendable {
    /// Messages in order of writing, at most `limit` with `seq > after`.
    func messages(after: Int64, limit: Int) async throws -> [OutboxMessage]
    /// Messages with `seq > after` not delivered to `sink`, in order of writing, at most `limit`, each
    /// with the sink's delivery state.
    func pending(sink: String, after: Int64, limit: Int) async throws -> [OutboxPending]
    /// The delivery state of a message at every sink that has one.
    func deliveries(seq: Int64) async throws -> [OutboxDelivery]
    /// A sink's floor: every message at or below it is delivered to the sink (or older than the sink).
    /// Nil for a sink never registered.
    func floor(sink: String) async throws -> Int64?
    /// A sink's dispatch lease (nil for a sink never registered).
    func lease(sink: String) async throws -> OutboxLease?
}

/// The outbox, written inside a transaction (a message always lands with the change it tells of).
public protocol OutboxWriter {
    /// Appends a message; returns its `seq`.
    @discardableResult
    func enqueue(requestID: String?, event: String, payload: JSONValue, at: Int64) throws -> Int64
    /// Registers a sink: a new one starts after the last message written so far (it is not sent the
    /// history). Returns its floor.
    func registerSink(_ sink: String) throws -> Int64
    /// Moves a sink's floor forward (never back).
    func setFloor(sink: String, seq: Int64) throws
    /// Records messages as delivered to a sink (a later attempt never sends them again).
    func delivered(sink: String, seqs: [Int64], at: Int64) throws
    /// Records a failed attempt: its count, when to try again, and the error (one line, no personal data).
    func deliveryFailed(sink: String, seq: Int64, attempts: Int, nextAttemptAt: Int64, error: String) throws
    /// Takes a registered sink's dispatch lease for `holder` until `until` when it is free, expired
    /// (`until <= now`) or already `holder`'s (a renewal). Returns whether `holder` holds it now.
    func takeLease(sink: String, holder: String, until: Int64, now: Int64) throws -> Bool
    /// The fence of a dispatcher's writes: renews the lease to `until` if `holder` still holds it and
    /// returns true; false when another took it over (the caller then throws, so that nothing of its
    /// transaction lands). Written in the transaction that records a delivery, it orders that
    /// transaction after any takeover (the row is locked until commit).
    func holdLease(sink: String, holder: String, until: Int64) throws -> Bool
    /// Gives the lease up if `holder` holds it (a graceful stop): another takes it at once.
    func releaseLease(sink: String, holder: String) throws
    /// Deletes at most `limit` messages written before `before` (ms) that are settled for every sink
    /// named (`seq` at or below each one's floor: delivered, or older than the sink), with their
    /// delivery rows, oldest first. A message some named sink has not had is never deleted, nor any
    /// message when a named sink is not registered. Returns how many were deleted.
    func prune(sinks: [String], before: Int64, limit: Int) throws -> Int
}
