import Foundation
public import LetheCore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Keeps a Redis set (`stream: {redis, key}`) equal to the stream deletion set: the stream tags of
/// every forgotten subject, as 16 lowercase hex digits (never a raw id), so Spark/Flink jobs that
/// already look subjects up in Redis can drop forgotten subjects' events (docs/notifications.md).
///
/// A `Service`: at start (and after every reconnect) a full sync builds the set under a temporary
/// key and swaps it in with one `RENAME` inside `MULTI`/`EXEC` (readers never see a half-built set);
/// then every `interval` it reads the changes since its cursor from `source` and applies them with
/// `SADD`/`SREM` in batches, checking `SCARD` against the count it expects: a Redis restarted or
/// flushed behind its back is resynced. A lost connection is retried with backoff (full jitter, up
/// to `maxBackoff`), then resynced. Errors of `source` (the state store) are logged and retried at
/// the next tick. Stops at graceful shutdown or cancellation.
public final class RedisDeletionSink: Service, Sendable {
    /// The deletion set's changes since a cursor (`RequestReader.deletionTags(since:)`; `Int64.min`: the whole set).
    public typealias Source = @Sendable (Int64) async throws -> DeletionChanges

    public struct Options: Sendable {
        /// Between two incremental updates.
        public var interval: Double = 1
        /// Members per `SADD`/`SREM`.
        public var batch = 1000
        /// Commands written per round trip in a full sync.
        public var pipelineDepth = 32
        /// How far (ms) the cursor is moved back before each read: a request committed late with an
        /// older `updated_at` (another process's clock) is still seen; re-adding is idempotent.
        public var overlap: Int64 = 5_000
        /// The longest wait between reconnect attempts, seconds.
        public var maxBackoff: Double = 30
        /// Deadline of the connect and of each reply, seconds.
        public var timeout: Double = 10
        /// A full resync this often (seconds) even when nothing looks wrong; nil: only at (re)connect
        /// and when `SCARD` disagrees.
        public var fullSyncEvery: Double? = 3600
        public init() {}
    }

    /// What the sink has done (for `/readyz`, metrics and tests).
    public struct Status: Sendable, Equatable {
        /// Connected and synced at least once since the last connection failure.
        public var synced = false
        /// Members the Redis set holds, as the sink counts them.
        public var members = 0
        public var fullSyncs = 0
        /// Incremental updates that changed the set.
        public var updates = 0
        /// Connection failures (each followed by a reconnect and a full sync).
        public var reconnects = 0
        /// The cursor: the newest `updated_at` (ms) applied.
        public var cursor = Int64.min
        /// The last error, if the sink is not synced now or a source read failed since.
        public var lastError: String?
        public init() {}
    }

    public let url: RedisURL
    public let key: String
    let source: Source
    let options: Options
    let logger: Logger
    private let state = Mutex(Status())
    /// The temporary key of a full sync that was cut short (a lost connection, a timeout): the next
    /// full sync deletes it first. It also carries a TTL from its first batch on.
    private let unfinishedSync = Mutex<String?>(nil)

    /// Fails (bad input naming `stream.redis` / `stream.key`) on a malformed URL or an empty key.
    public init(config: StreamSinkConfig, options: Options = Options(), logger: Logger, source: @escaping Source) throws {
        url = try RedisURL(config.redis)
        guard !config.key.isEmpty, !config.key.contains(where: { $0.isNewline }) else {
            throw LetheError.badInput("the Redis key must be a non-empty single line", at: "stream.key")
        }
        key = config.key
        self.source = source
        self.options = options
        self.logger = logger
    }

    public var status: Status { state.withLock { $0 } }

    /// A tag as a set member: 16 lowercase hex digits (the `stream_tag` of `lethe show --json`).
    public static func member(_ tag: UInt64) -> String {
        let h = String(tag, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            await self.loop()
        }
    }

    private func loop() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await RedisConnection.with(url, timeout: options.timeout) { redis in
                    try await self.fullSync(redis)
                    failures = 0
                    try await self.follow(redis)
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                state.withLock {
                    $0.synced = false
                    $0.reconnects += 1
                    $0.lastError = "\(error)"
                }
                let cap = min(options.maxBackoff, 0.1 * pow(2.0, Double(min(failures, 20))))
                let wait = Double.random(in: (cap / 2)...cap)
                logger.warning(
                    "the Redis deletion set is out of reach; retrying",
                    metadata: ["redis": "\(url)", "key": "\(key)", "retry_in_s": "\(String(format: "%.2f", wait))", "error": "\(error)"])
                do { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) } catch { return }
            }
        }
    }

    /// Builds the whole set under a temporary key, then swaps it in atomically.
    func fullSync(_ redis: RedisConnection) async throws {
        let all = try await source(Int64.min)
        let members = Set(all.added.map(Self.member))
        let temporary = "\(key):sync:\(Self.member(UInt64.random(in: 0...UInt64.max)))"
        let previous = unfinishedSync.withLock { old in
            defer { old = temporary }
            return old
        }
        var commands: [[String]] = [["DEL", temporary] + (previous.map { [$0] } ?? [])]
        var batch: [String] = []
        batch.reserveCapacity(options.batch + 2)
        var expiring = false
        for m in members {
            if batch.isEmpty { batch = ["SADD", temporary] }
            batch.append(m)
            if batch.count - 2 == options.batch {
                commands.append(batch)
                batch = []
                if !expiring {
                    // A sync cut short after this leaves no temporary key behind for long.
                    commands.append(["EXPIRE", temporary, "3600"])
                    expiring = true
                }
            }
            if commands.count >= options.pipelineDepth {
                try check(try await redis.pipeline(commands), commands)
                commands = []
            }
        }
        if !batch.isEmpty { commands.append(batch) }
        if members.isEmpty {
            commands += [["DEL", key], ["SCARD", key]]
        } else {
            commands += [["EXPIRE", temporary, "3600"], ["MULTI"], ["RENAME", temporary, key], ["PERSIST", key], ["EXEC"], ["SCARD", key]]
        }
        let replies = try await redis.pipeline(commands)
        try check(replies, commands)
        if let exec = replies.dropLast().last, case .array(let results) = exec {
            for r in results { if case .error(let e) = r { throw LetheError(.failure, "\(url): swapping in the synced set failed: \(e)") } }
        } else if !members.isEmpty {
            throw LetheError(.failure, "\(url): the swap transaction was aborted (EXEC gave \(replies.dropLast().last.map { "\($0)" } ?? "nothing"))")
        }
        unfinishedSync.withLock { if $0 == temporary { $0 = nil } }
        let count = Int(replies.last?.integer ?? -1)
        guard count == members.count else {
            throw LetheError(.failure, "\(url): after a full sync `\(key)` holds \(count) members, expected \(members.count)")
        }
        state.withLock {
            $0.synced = true
            $0.members = count
            $0.fullSyncs += 1
            $0.lastError = nil
            if all.latest > $0.cursor || $0.cursor == Int64.min { $0.cursor = all.latest }
        }
        logger.info("the Redis deletion set is synced", metadata: ["key": "\(key)", "members": "\(count)"])
    }

    /// Applies changes every `interval` until cancelled; returns only by throwing.
    private func follow(_ redis: RedisConnection) async throws {
        var lastFull = Date()
        while true {
            try await Task.sleep(nanoseconds: UInt64(options.interval * 1e9))
            if let every = options.fullSyncEvery, Date().timeIntervalSince(lastFull) >= every {
                try await fullSync(redis)
                lastFull = Date()
                continue
            }
            let cursor = state.withLock { $0.cursor }
            let changes: DeletionChanges
            do {
                changes = try await source(cursor == Int64.min ? Int64.min : cursor &- options.overlap)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                state.withLock { $0.lastError = "\(error)" }
                logger.warning("cannot read the deletion set's changes; retrying", metadata: ["error": "\(error)"])
                continue
            }
            if try await apply(changes, redis) == false {
                logger.warning(
                    "the Redis deletion set changed behind Lethe's back (a restart or a flush?): resyncing",
                    metadata: ["key": "\(key)"])
                try await fullSync(redis)
                lastFull = Date()
            }
        }
    }

    /// Applies one batch of changes; false when `SCARD` disagrees with the count expected.
    func apply(_ changes: DeletionChanges, _ redis: RedisConnection) async throws -> Bool {
        var commands: [[String]] = []
        func batches(_ verb: String, _ tags: [UInt64]) {
            var i = 0
            while i < tags.count {
                let j = min(tags.count, i + options.batch)
                commands.append([verb, key] + tags[i..<j].map(Self.member))
                i = j
            }
        }
        batches("SADD", changes.added)
        batches("SREM", changes.removed)
        commands.append(["SCARD", key])
        let replies = try await redis.pipeline(commands)
        try check(replies, commands)
        var delta = 0
        for (c, r) in zip(commands, replies) where c[0] != "SCARD" {
            delta += (c[0] == "SADD" ? 1 : -1) * Int(r.integer ?? 0)
        }
        let scard = Int(replies.last?.integer ?? -1)
        return state.withLock {
            let expected = $0.members + delta
            $0.members = scard
            if delta != 0 { $0.updates += 1 }
            if changes.latest > $0.cursor { $0.cursor = changes.latest }
            $0.lastError = nil
            return scard == expected
        }
    }

    /// Throws on the first error reply, naming its command.
    private func check(_ replies: [RESPValue], _ commands: [[String]]) throws {
        for (c, r) in zip(commands, replies) {
            if case .error(let e) = r { throw LetheError(.failure, "\(url): \(c[0]) on `\(c.count > 1 ? c[1] : "")` failed: \(e)") }
        }
    }
}
