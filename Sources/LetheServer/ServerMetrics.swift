import Foundation
import LetheCatalog
import LetheCore
public import LetheEngine
import Metrics
import Prometheus

/// The service's Prometheus figures (`/metrics`), every name prefixed `lethe_`.
///
/// Two sources: what this process saw (HTTP latency by route template, the scheduler's runs) kept in
/// a registry of its own through swift-metrics, and what the state holds (requests by status, past or
/// near their deadline, time from filing to verified, the index's size) computed afresh at each scrape,
/// so the figures are true across restarts and for requests filed through the CLI or other processes.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Requests this close to their deadline (and not yet verified or rejected) count as near it.
    public static let nearDeadlineSeconds: Int64 = 7 * 86_400

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets["lethe_http_request_duration_seconds"] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
            .seconds(5), .seconds(10), .seconds(30),
        ]
        factory = f
    }

    /// One HTTP request served: its route template (never the concrete path, which may hold an id).
    func observe(route: String, method: String, status: Int, nanoseconds: UInt64) {
        Metrics.Timer(
            label: "lethe_http_request_duration_seconds",
            dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory
        ).recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// One scheduled run: its outcome and what it rewrote.
    public func record(run r: RunReport) {
        let outcome = r.failed.isEmpty && r.problems.isEmpty ? "ok" : "failed"
        Metrics.Counter(label: "lethe_runs_total", dimensions: [("outcome", outcome)], factory: factory).increment()
        Metrics.Counter(label: "lethe_objects_rewritten_total", factory: factory).increment(by: r.objectsRewritten)
        Metrics.Counter(label: "lethe_objects_removed_total", factory: factory).increment(by: r.objectsRemoved)
        Metrics.Counter(label: "lethe_rows_dropped_total", factory: factory).increment(by: Int(clamping: r.rowsDropped))
        Metrics.Counter(label: "lethe_requests_erased_total", factory: factory).increment(by: r.erased.count)
        Metrics.Counter(label: "lethe_requests_failed_total", factory: factory).increment(by: r.failed.count)
    }

    /// One delivery attempt of an outbox message to a sink (`webhook:URL` or `email`): labelled by the
    /// sink's kind and index-free name part only (`webhook`, `email`), never its URL (which may carry a token).
    public func record(delivery sink: String, event: String, ok: Bool) {
        let kind = sink.split(separator: ":", maxSplits: 1).first.map(String.init) ?? sink
        Metrics.Counter(
            label: ok ? "lethe_notification_deliveries_total" : "lethe_notification_failures_total",
            dimensions: [("sink", kind), ("event", event)], factory: factory
        ).increment()
    }

    /// A scheduled run that threw (the lake or the state did not answer).
    public func recordRunError() {
        Metrics.Counter(label: "lethe_runs_total", dimensions: [("outcome", "error")], factory: factory).increment()
    }

    /// A metric's name and help text (swift-prometheus' descriptor, no namespace or unit parts).
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The exposition text: the state's figures, then this process's.
    func text(lethe: Lethe, deadlineDays: Int) async throws -> [UInt8] {
        let state = PrometheusCollectorRegistry()
        var byStatus: [RequestStatus: Int] = [:]
        var past = 0, near = 0
        let now = lethe.now() / 1000
        let window = Int64(deadlineDays) * 86_400
        let toVerified = state.makeValueHistogram(
            descriptor: Self.name("lethe_request_time_to_verified_seconds", "Time from filing to verified, per verified request"),
            buckets: [60, 600, 3_600, 21_600, 86_400, 259_200, 604_800, 1_209_600, 2_592_000, 5_184_000])
        var after: String?
        repeat {
            let page = try await lethe.requestPage(status: nil, after: after, limit: 1_000)
            for r in page.items {
                byStatus[r.status, default: 0] += 1
                if r.status == .verified, let v = RequestView.Proofs(r).verified {
                    toVerified.record(Double(max(0, v.at - r.filedAt)) / 1000)
                }
                guard !r.status.isTerminal else { continue }
                let due = r.filedAt / 1000 + window
                if now > due { past += 1 } else if due - now <= Self.nearDeadlineSeconds { near += 1 }
            }
            after = page.next
        } while after != nil
        for s in RequestStatus.allCases {
            state.makeGauge(descriptor: Self.name("lethe_requests", "Erasure requests by status"), labels: [("status", s.rawValue)])
                .set(Double(byStatus[s] ?? 0))
        }
        state.makeGauge(descriptor: Self.name("lethe_requests_past_deadline", "Requests neither verified nor rejected whose legal deadline passed"))
            .set(Double(past))
        state.makeGauge(descriptor: Self.name("lethe_requests_near_deadline", "Requests neither verified nor rejected within 7 days of their legal deadline"))
            .set(Double(near))
        let index = try await lethe.indexStats()
        state.makeGauge(descriptor: Self.name("lethe_index_objects", "Objects the subject index holds")).set(Double(index.objects))
        state.makeGauge(descriptor: Self.name("lethe_index_quarantined_objects", "Objects the index could not read")).set(Double(index.quarantined))
        state.makeGauge(descriptor: Self.name("lethe_index_entries", "Subject index entries")).set(Double(index.entries))
        var out: [UInt8] = []
        state.emit(into: &out)
        registry.emit(into: &out)
        return out
    }
}
