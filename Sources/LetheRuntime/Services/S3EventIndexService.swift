import Foundation
public import ServiceLifecycle
import LetheCore
public import LetheEngine
public import LetheS3

/// `lethe index --watch` on an S3 lake with `s3: {events_queue: URL}`: the real-time index. It
/// receives S3 event notifications from the SQS queue (long polling), maps their keys to the lake
/// (other buckets and keys outside the lake's prefix are ignored), keeps the latest event of each
/// key (`sequencer`), indexes those keys (`Lethe.index(changes:)`) and deletes the messages only
/// once that is committed: a crash in between means the messages come back (at least once), and
/// indexing them again is harmless (the index compares versions). A full incremental listing at
/// start and every `rescan` seconds catches what a lost notification missed. A message that is
/// no S3 event document (a poison message) is reported and deleted; the service goes on.
/// A graceful shutdown (SIGTERM, SIGINT) cuts a long poll short; messages received and not yet
/// indexed come back after the queue's visibility timeout. An indexing error ends the service.
public struct S3EventIndexService: Service {
    /// What the service did, for the caller to print.
    public enum Event: Sendable {
        /// A batch of messages indexed (`messages` received and deleted).
        case indexed(ChangesIndexReport, messages: Int)
        /// A full incremental listing (at start and every `rescan` seconds).
        case rescanned(IndexReport)
        /// A message that is not an S3 event document: reported (its id and why, never its body) and deleted.
        case poison(messageID: String, reason: String)
    }

    let lethe: Lethe
    let store: S3ObjectStore
    let queue: SQSClient
    let datasets: [String]?
    let rescan: Double
    let waitSeconds: Int
    let progress: @Sendable (IndexProgress) -> Void
    let onEvent: @Sendable (Event) -> Void

    /// - Parameters:
    ///   - rescan: seconds between full incremental listings (the config's `watch.rescan`).
    ///   - waitSeconds: the long poll's wait (1–20 s).
    public init(
        lethe: Lethe, queue: SQSClient, datasets: [String]?, rescan: Double, waitSeconds: Int = 20,
        progress: @escaping @Sendable (IndexProgress) -> Void = { _ in }, onEvent: @escaping @Sendable (Event) -> Void
    ) throws {
        guard let store = lethe.store as? S3ObjectStore else {
            throw LetheError(.badUsage, "`s3.events_queue` needs an S3 lake (`lake: s3://bucket/prefix`)", at: lethe.config.file)
        }
        self.lethe = lethe; self.store = store; self.queue = queue; self.datasets = datasets
        self.rescan = max(1, rescan); self.waitSeconds = min(20, max(1, waitSeconds))
        self.progress = progress; self.onEvent = onEvent
    }

    /// The service a config asks for: nil without `s3.events_queue` (then `--watch` polls). The
    /// queue is reached with the lake's credentials and region.
    public static func configured(
        lethe: Lethe, datasets: [String]?, progress: @escaping @Sendable (IndexProgress) -> Void = { _ in },
        onEvent: @escaping @Sendable (Event) -> Void
    ) throws -> S3EventIndexService? {
        guard let url = lethe.config.eventsQueue else { return nil }
        guard case .s3(_, _, let endpoint, let region, _, let profile) = lethe.config.lake else {
            throw LetheError(.badUsage, "`s3.events_queue` needs an S3 lake (`lake: s3://bucket/prefix`)", at: lethe.config.file)
        }
        let settings = try AWSSettings.resolve(profile: profile, region: region, endpoint: endpoint, service: "sqs")
        let queue = try SQSClient(queueURL: url, credentials: settings.credentials, region: settings.region)
        return try S3EventIndexService(
            lethe: lethe, queue: queue, datasets: datasets, rescan: lethe.config.watchRescan, progress: progress, onEvent: onEvent)
    }

    public func run() async throws {
        let clock = ContinuousClock()
        var nextRescan = clock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if clock.now >= nextRescan {
                onEvent(.rescanned(try await lethe.index(datasets: datasets, progress: progress)))
                nextRescan = clock.now.advanced(by: .seconds(rescan))
            }
            let left = clock.now.duration(to: nextRescan)
            let wait = min(waitSeconds, max(0, Int((Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18).rounded(.up))))
            let messages: [SQSMessage]
            do {
                messages = try await cancelWhenGracefulShutdown { try await receiveBatch(wait: wait) }
            } catch is CancellationError {
                return
            }
            if !messages.isEmpty { try await handle(messages) }
        }
    }

    /// Up to 100 messages: one long poll, then whatever more is there at once (a burst of events
    /// becomes one index pass).
    func receiveBatch(wait: Int) async throws -> [SQSMessage] {
        var out = try await queue.receive(max: 10, waitSeconds: wait)
        while out.count >= 10 && out.count < 100 {
            let more = try await queue.receive(max: 10, waitSeconds: 0)
            if more.isEmpty { break }
            out += more
        }
        return out
    }

    /// Indexes the keys of `messages`, then deletes them (after the commit: at least once).
    func handle(_ messages: [SQSMessage]) async throws {
        var events: [S3ObjectEvent] = []
        for m in messages {
            do {
                switch try S3EventMessage.parse(Array(m.body.utf8)) {
                case .events(let e): events += e
                case .test: break
                case .unrelated(let what): onEvent(.poison(messageID: m.id, reason: "not an S3 event notification (\(what))"))
                }
            } catch let e as LetheError {
                onEvent(.poison(messageID: m.id, reason: e.message))
            }
        }
        let changed = S3ObjectEvent.coalesce(events.filter { $0.kind != .other })
        let keys = changed.compactMap { store.lakeKey(of: $0) }
        var report = try await lethe.index(changes: keys, datasets: datasets)
        report.ignoredKeys += changed.count - keys.count
        onEvent(.indexed(report, messages: messages.count))
        try await queue.delete(messages)
    }
}
