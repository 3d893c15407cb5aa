public import Foundation
public import LetheCatalog
import LetheCore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Delivers the notification outbox to each `NotificationSink` (issue 14), as a `Service` of
/// `lethe serve`:
/// - at least once: a message is recorded delivered only after the sink accepted it, in its own
///   transaction; once that commits it is never sent to that sink again (a crash in between sends it again);
/// - in order per request: a message is not attempted while an earlier message of the same request is
///   undelivered to that sink (messages about no request are not held back);
/// - failures are retried with exponential backoff and jitter (`Backoff`: 1 s doubling to 10 min by
///   default), the attempts, next attempt time and last error kept per sink and message in the state;
/// - a message a sink does not `want` counts as delivered to it;
/// - a new sink starts after the messages written before it was first registered (no history);
/// - `onDelivery(sink, event, ok)` is called for each attempt (the server's metrics);
/// - a graceful shutdown lets the delivery under way finish, then stops.
///
/// Each sink is served by its own task, so a slow or failing sink delays no other. One dispatcher per
/// state: two dispatchers on one state may both send a message (still at least once, but twice).
public final class OutboxDispatcher: Service, Sendable {
    /// How long to wait before the next attempt after `attempts` failed ones.
    public struct Backoff: Sendable {
        /// The wait after the first failure (ms).
        public var initial: Int64
        /// The longest wait (ms).
        public var cap: Int64
        public init(initial: Int64 = 1_000, cap: Int64 = 600_000) { self.initial = initial; self.cap = cap }

        /// `min(cap, initial · 2^(attempts-1))`, of which a random half is taken off ("equal jitter"):
        /// retries of many messages failing together spread out.
        public func delay(afterAttempts attempts: Int, random: Double = Double.random(in: 0...1)) -> Int64 {
            let exp = min(max(attempts - 1, 0), 40)
            let full = initial > cap >> Int64(exp) ? cap : min(cap, initial << Int64(exp))
            return full / 2 + Int64(Double(full / 2) * min(max(random, 0), 1))
        }
    }

    let state: any StateStore
    let sinks: [any NotificationSink]
    let backoff: Backoff
    let poll: Duration
    let batch: Int
    let logger: Logger
    let now: @Sendable () -> Int64
    let onDelivery: @Sendable (_ sink: String, _ event: String, _ ok: Bool) -> Void
    /// Each sink's floor as this dispatcher knows it (every message at or below it is settled).
    private let floors = Mutex<[String: Int64]>([:])

    /// - Parameters:
    ///   - poll: how long an idle sink waits before it looks at the outbox again.
    ///   - batch: messages read per look.
    public init(
        state: any StateStore, sinks: [any NotificationSink], backoff: Backoff = Backoff(), poll: Duration = .milliseconds(500),
        batch: Int = 200, logger: Logger = Logger(label: "lethe.outbox"),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        onDelivery: @escaping @Sendable (_ sink: String, _ event: String, _ ok: Bool) -> Void = { _, _, _ in }
    ) {
        self.state = state; self.sinks = sinks; self.backoff = backoff; self.poll = poll; self.batch = max(1, batch)
        self.logger = logger; self.now = now; self.onDelivery = onDelivery
    }

    public func run() async throws {
        guard !sinks.isEmpty else { return }
        try await register()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sink in sinks {
                group.addTask { try await self.serve(sink) }
            }
            try await group.waitForAll()
        }
    }

    /// Registers every sink (a new one starts after the messages written so far) and reads its floor.
    public func register() async throws {
        let names = sinks.map(\.name)
        guard Set(names).count == names.count else { throw LetheError(.badInput, "two notification sinks have the same name") }
        let got = try await state.transaction("cannot register the notification sinks") { tx in
            try names.map { ($0, try tx.outbox.registerSink($0)) }
        }
        floors.withLock { for (n, f) in got { $0[n] = max($0[n] ?? f, f) } }
    }

    /// One sink's loop: passes while there is work, else waits `poll` (or until the next retry is due).
    private func serve(_ sink: any NotificationSink) async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let r: PassResult
            do {
                r = try await pass(sink)
            } catch {
                // The state is unreachable for now: try again later (the service keeps running).
                logger.error("cannot read or record the outbox", metadata: ["sink": "\(sink.name)", "error": "\(error)"])
                r = PassResult(attempted: 0, more: false, nextDue: nil)
            }
            if r.attempted > 0 && r.more { continue }
            var wait = poll
            if let due = r.nextDue {
                let ms = max(1, due - now())
                if Double(ms) < poll / .milliseconds(1) { wait = .milliseconds(ms) }
            }
            let pause = wait
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch is CancellationError {
                return
            }
        }
    }

    /// What one pass did.
    public struct PassResult: Sendable, Equatable {
        /// Messages sent to the sink (delivered or failed).
        public var attempted: Int
        /// The look read a full batch (more may be waiting).
        public var more: Bool
        /// The earliest retry that is not due yet (ms), if any.
        public var nextDue: Int64?
    }

    /// One look at the outbox for `sink`: every message that is due and not held back by an earlier
    /// undelivered message of its request is sent, in order; each outcome recorded at once.
    @discardableResult
    public func pass(_ sink: any NotificationSink) async throws -> PassResult {
        let name = sink.name
        var floor = floors.withLock { $0[name] }
        if floor == nil {
            try await register()
            floor = floors.withLock { $0[name] } ?? 0
        }
        let start = floor ?? 0
        let pending = try await state.outbox.pending(sink: name, after: start, limit: batch)
        var held = Set<String>()
        var settledTo = start, stuck = false
        var unwanted: [Int64] = []
        var result = PassResult(attempted: 0, more: pending.count == batch, nextDue: nil)
        for p in pending {
            if Task.isShuttingDownGracefully || Task.isCancelled { stuck = true; break }
            let m = p.message
            if let r = m.requestID, held.contains(r) {
                stuck = true
                continue
            }
            if !sink.wants(m.event) {
                unwanted.append(m.seq)
                if !stuck { settledTo = m.seq }
                continue
            }
            let at = now()
            if p.nextAttemptAt > at {
                if let r = m.requestID { held.insert(r) }
                stuck = true
                result.nextDue = min(result.nextDue ?? p.nextAttemptAt, p.nextAttemptAt)
                continue
            }
            result.attempted += 1
            do {
                try await sink.deliver(m)
            } catch {
                let attempts = p.attempts + 1
                let next = now() + backoff.delay(afterAttempts: attempts)
                let why = Self.oneLine(error)
                try await state.transaction("cannot record a failed delivery to \(name)") { tx in
                    try tx.outbox.deliveryFailed(sink: name, seq: m.seq, attempts: attempts, nextAttemptAt: next, error: why)
                }
                onDelivery(name, m.event, false)
                logger.warning(
                    "a notification was not delivered; it is retried", metadata: ["sink": "\(name)", "seq": "\(m.seq)", "attempts": "\(attempts)"])
                if let r = m.requestID { held.insert(r) }
                stuck = true
                result.nextDue = min(result.nextDue ?? next, next)
                continue
            }
            let done = now(), skipped = unwanted
            unwanted = []
            if !stuck { settledTo = m.seq }
            let floorNow = settledTo
            try await state.transaction("cannot record a delivery to \(name)") { tx in
                try tx.outbox.delivered(sink: name, seqs: skipped + [m.seq], at: done)
                if floorNow > start { try tx.outbox.setFloor(sink: name, seq: floorNow) }
            }
            onDelivery(name, m.event, true)
        }
        if !unwanted.isEmpty || settledTo > start {
            let skipped = unwanted, floorNow = settledTo, at = now()
            try await state.transaction("cannot record deliveries to \(name)") { tx in
                if !skipped.isEmpty { try tx.outbox.delivered(sink: name, seqs: skipped, at: at) }
                if floorNow > start { try tx.outbox.setFloor(sink: name, seq: floorNow) }
            }
        }
        floors.withLock { $0[name] = max($0[name] ?? settledTo, settledTo) }
        return result
    }

    /// An error as one line of at most 300 characters (stored as the delivery's last error).
    static func oneLine(_ error: any Error) -> String {
        let s = String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
        return s.count > 300 ? String(s.prefix(297)) + "..." : s
    }
}
