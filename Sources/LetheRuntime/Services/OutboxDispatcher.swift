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
/// Each sink is served by its own task, so a slow or failing sink delays no other.
///
/// Several dispatchers on one state (several `lethe serve` sharing a PostgreSQL state): one at a time
/// delivers to a sink, the holder of the sink's **lease** (`OutboxLease`: holder and expiry, `leaseTTL`).
/// The holder renews it while it dispatches (at every commit, and every `renewEvery` while a delivery
/// is under way); another dispatcher takes it over once it has expired (the holder died) or was
/// released (a graceful stop). Every write of a pass is **fenced** by the lease: it commits only while
/// this dispatcher still holds it, so a stale holder marks nothing (its message is delivered again by
/// the new holder: at least once, with the same `seq`, the idempotency id receivers deduplicate on).
///
/// With `keepDelivered` set, messages settled for every sink of this dispatcher and older than that are
/// deleted every `pruneEvery` (`prune`); a message some sink has not had is never deleted.
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
    /// This dispatcher's id in the sinks' leases (host, process, and a random part).
    public let holder: String
    let leaseTTL: Int64
    let renewEvery: Duration
    let keepDelivered: Int64?
    let pruneEvery: Duration
    /// Each sink's floor as this dispatcher knows it (every message at or below it is settled).
    private let floors = Mutex<[String: Int64]>([:])
    /// The sinks whose lease this dispatcher holds, and until when it last set it (ms).
    private let held = Mutex<[String: Int64]>([:])

    /// - Parameters:
    ///   - poll: how long an idle sink waits before it looks at the outbox again (a dispatcher that does
    ///     not hold a sink's lease looks whether it can take it over as often).
    ///   - batch: messages read per look.
    ///   - leaseTTL: how long a sink's lease lasts without renewal (a dead holder's sinks wait that long).
    ///   - renewEvery: how often the lease is renewed while a delivery is under way (default: a third of `leaseTTL`).
    ///   - keepDelivered: delete messages settled for every sink once older than this (nil: keep them).
    ///   - pruneEvery: how often to prune (and once at start).
    public init(
        state: any StateStore, sinks: [any NotificationSink], backoff: Backoff = Backoff(), poll: Duration = .milliseconds(500),
        batch: Int = 200, logger: Logger = Logger(label: "lethe.outbox"),
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        holder: String = OutboxDispatcher.newHolder(), leaseTTL: Duration = .seconds(30), renewEvery: Duration? = nil,
        keepDelivered: Duration? = nil, pruneEvery: Duration = .seconds(3600),
        onDelivery: @escaping @Sendable (_ sink: String, _ event: String, _ ok: Bool) -> Void = { _, _, _ in }
    ) {
        self.state = state; self.sinks = sinks; self.backoff = backoff; self.poll = poll; self.batch = max(1, batch)
        self.logger = logger; self.now = now; self.onDelivery = onDelivery
        self.holder = holder
        self.leaseTTL = max(1, Self.ms(leaseTTL))
        self.renewEvery = renewEvery ?? leaseTTL / 3
        self.keepDelivered = keepDelivered.map { max(0, Self.ms($0)) }
        self.pruneEvery = pruneEvery
    }

    /// A new holder id: `host:pid:random`.
    public static func newHolder() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func ms(_ d: Duration) -> Int64 { d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }

    public func run() async throws {
        guard !sinks.isEmpty else { return }
        try await register()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sink in sinks {
                group.addTask { try await self.serve(sink) }
            }
            if keepDelivered != nil {
                group.addTask { await self.pruneLoop() }
            }
            try await group.waitForAll()
        }
    }

    /// Prunes at start and every `pruneEvery` until a shutdown.
    private func pruneLoop() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let n = try await prune()
                if n > 0 { logger.info("outbox pruned", metadata: ["deleted": "\(n)"]) }
            } catch {
                logger.error("cannot prune the outbox", metadata: ["error": "\(error)"])
            }
            let pause = pruneEvery
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch {
                return
            }
        }
    }

    /// Deletes the messages settled for every sink of this dispatcher and older than `keepDelivered`,
    /// 10,000 a transaction; returns how many. Nothing without `keepDelivered`.
    @discardableResult
    public func prune() async throws -> Int {
        guard let keep = keepDelivered else { return 0 }
        let names = sinks.map(\.name), before = now() - keep, chunk = 10_000
        var total = 0
        while true {
            let n = try await state.transaction("cannot prune the outbox") { tx in try tx.outbox.prune(sinks: names, before: before, limit: chunk) }
            total += n
            if n < chunk { return total }
        }
    }

    /// Whether this dispatcher holds `sink`'s lease now: renewed when a third of it is gone, taken when
    /// it is free or expired (read first: a lease another holds costs no write).
    public func holdsLease(_ sink: String) async throws -> Bool {
        let t = now()
        if let until = held.withLock({ $0[sink] }), until - t > leaseTTL * 2 / 3 { return true }
        if let l = try await state.outbox.lease(sink: sink), let h = l.holder, h != holder, l.until > t {
            held.withLock { $0[sink] = nil }
            return false
        }
        let until = t + leaseTTL, me = holder
        let got = try await state.transaction("cannot take the dispatch lease of \(sink)") { tx in
            try tx.outbox.takeLease(sink: sink, holder: me, until: until, now: t)
        }
        held.withLock { $0[sink] = got ? until : nil }
        if got { logger.debug("dispatch lease taken", metadata: ["sink": "\(sink)", "holder": "\(me)"]) }
        return got
    }

    /// The fence of every write of a pass: renews the lease, or throws when another dispatcher holds it
    /// (the transaction then lands nothing).
    private func fence(_ tx: any StateTransaction, _ sink: String, until: Int64) throws {
        guard try tx.outbox.holdLease(sink: sink, holder: holder, until: until) else {
            throw LetheError(.conflict, "the dispatch lease of \(sink) was taken over by another dispatcher: this one records nothing")
        }
    }

    /// Records that a fenced write renewed the lease (or that it is lost).
    private func renewed(_ sink: String, until: Int64?) { held.withLock { $0[sink] = until } }

    /// Gives up the leases this dispatcher holds (of `only` these sinks, when given): another takes them at once.
    public func releaseLeases(only: [String]? = nil) async {
        let names = held.withLock { m in
            let names = only.map { o in m.keys.filter { o.contains($0) } } ?? Array(m.keys)
            for n in names { m[n] = nil }
            return names
        }
        guard !names.isEmpty else { return }
        let me = holder, state = state
        // Detached: a cancelled task may not be able to write.
        await Task.detached {
            _ = try? await state.transaction("cannot release the dispatch leases") { tx in
                for n in names { try tx.outbox.releaseLease(sink: n, holder: me) }
            }
        }.value
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
            } catch let e as LetheError where e.code == .conflict {
                logger.notice("the dispatch lease was lost: another dispatcher delivers", metadata: ["sink": "\(sink.name)"])
                renewed(sink.name, until: nil)
                r = PassResult(attempted: 0, more: false, nextDue: nil)
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
                break
            }
        }
        await releaseLeases(only: [sink.name])
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
        // Another dispatcher delivers to this sink (it holds the lease): nothing to do here.
        guard try await holdsLease(name) else { return PassResult(attempted: 0, more: false, nextDue: nil) }
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
                try await deliverRenewing(sink, m)
            } catch {
                let attempts = p.attempts + 1
                let next = now() + backoff.delay(afterAttempts: attempts)
                let why = Self.oneLine(error)
                let until = now() + leaseTTL
                try await state.transaction("cannot record a failed delivery to \(name)") { tx in
                    try self.fence(tx, name, until: until)
                    try tx.outbox.deliveryFailed(sink: name, seq: m.seq, attempts: attempts, nextAttemptAt: next, error: why)
                }
                renewed(name, until: until)
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
            let floorNow = settledTo, until = done + leaseTTL
            try await state.transaction("cannot record a delivery to \(name)") { tx in
                try self.fence(tx, name, until: until)
                try tx.outbox.delivered(sink: name, seqs: skipped + [m.seq], at: done)
                if floorNow > start { try tx.outbox.setFloor(sink: name, seq: floorNow) }
            }
            renewed(name, until: until)
            onDelivery(name, m.event, true)
        }
        if !unwanted.isEmpty || settledTo > start {
            let skipped = unwanted, floorNow = settledTo, at = now(), until = at + leaseTTL
            try await state.transaction("cannot record deliveries to \(name)") { tx in
                try self.fence(tx, name, until: until)
                if !skipped.isEmpty { try tx.outbox.delivered(sink: name, seqs: skipped, at: at) }
                if floorNow > start { try tx.outbox.setFloor(sink: name, seq: floorNow) }
            }
        }
        floors.withLock { $0[name] = max($0[name] ?? settledTo, settledTo) }
        return result
    }

    /// `sink.deliver(m)`, renewing the lease every `renewEvery` while it is under way (a slow receiver
    /// does not let the lease lapse). A renewal that finds the lease lost stops renewing: the fence of
    /// the commit then refuses to record the delivery.
    private func deliverRenewing(_ sink: any NotificationSink, _ m: OutboxMessage) async throws {
        let name = sink.name, every = renewEvery, me = holder, ttl = leaseTTL
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await sink.deliver(m) }
            group.addTask {
                var holding = true
                while true {
                    try await Task.sleep(for: every)
                    guard holding else { continue }
                    let until = self.now() + ttl
                    let still = try? await self.state.transaction("cannot renew the dispatch lease of \(name)") { tx in
                        try tx.outbox.holdLease(sink: name, holder: me, until: until)
                    }
                    if still == false { holding = false }
                    if still == true { self.renewed(name, until: until) }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// An error as one line of at most 300 characters (stored as the delivery's last error).
    static func oneLine(_ error: any Error) -> String {
        let s = String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
        return s.count > 300 ? String(s.prefix(297)) + "..." : s
    }
}
