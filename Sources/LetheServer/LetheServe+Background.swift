public import Foundation
public import LetheCore
public import LetheEngine
public import LetheNotify
public import LetheRuntime
public import Logging
public import ServiceLifecycle

extension LetheServe {
    /// What `lethe serve` runs beside the HTTP API, built from `lethe.yaml`: the access audit (every
    /// API call with its principal, batched), the outbox dispatcher when `notify:` names a sink
    /// (webhooks, e-mail), and the Redis deletion-set sink when `stream: {redis}` is set.
    public struct Background: Sendable {
        public let access: AccessAuditService
        public let dispatcher: OutboxDispatcher?
        public let redis: RedisDeletionSink?

        /// Builds them; a webhook whose secret variable is missing, a bad SMTP or Redis URL: one error naming the key.
        public init(
            config: LakeConfig, lethe: Lethe, metrics: ServerMetrics, logger: Logger,
            environment: [String: String] = ProcessInfo.processInfo.environment
        ) throws {
            access = AccessAuditService(lethe: lethe, logger: logger)
            let sinks = try NotificationSinks.make(config.notify, publicURL: config.serve.publicURL, environment: environment, logger: logger)
            dispatcher =
                sinks.isEmpty
                ? nil
                : OutboxDispatcher(
                    state: lethe.meta, sinks: sinks, logger: logger,
                    keepDelivered: .seconds(Int64(config.notify.keepDeliveredDays) * 86_400),
                    onDelivery: { sink, event, ok in metrics.record(delivery: sink, event: event, ok: ok) })
            redis = try config.streamSink.map { s in
                try RedisDeletionSink(config: s, logger: logger, source: { since in try await lethe.deletionTags(since: since) })
            }
        }

        /// Started before the HTTP server (so stopped after it: its last calls are written), in `leading`.
        public var leading: [any Service] { [access] }
        /// Started after the HTTP server and the scheduler.
        public var trailing: [any Service] { [dispatcher as (any Service)?, redis].compactMap { $0 } }
    }
}
