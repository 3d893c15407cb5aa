import Foundation
public import ServiceLifecycle
import LetheCore
public import LetheEngine

/// `lethe index --watch`: refreshes the subject index, then waits `interval` seconds, until the
/// service group shuts down. A graceful shutdown (SIGTERM, SIGINT) lets the pass under way finish
/// and report, and cuts the wait short; a pass's error ends the service (and the group) with it.
public struct IndexWatchService: Service {
    let lethe: Lethe
    let datasets: [String]?
    let interval: Double
    let progress: @Sendable (IndexProgress) -> Void
    let onPass: @Sendable (IndexReport) -> Void

    /// - Parameters:
    ///   - datasets: only these datasets (nil: all).
    ///   - interval: seconds between the end of a pass and the next.
    ///   - progress: called during a pass (a progress bar).
    ///   - onPass: called with each pass's report.
    public init(
        lethe: Lethe, datasets: [String]?, interval: Double,
        progress: @escaping @Sendable (IndexProgress) -> Void = { _ in },
        onPass: @escaping @Sendable (IndexReport) -> Void
    ) {
        self.lethe = lethe; self.datasets = datasets; self.interval = interval
        self.progress = progress; self.onPass = onPass
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            onPass(try await lethe.index(datasets: datasets, progress: progress))
            do {
                let nanoseconds = UInt64(max(0, interval) * 1e9)
                try await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: nanoseconds) }
            } catch is CancellationError {
                return
            }
        }
    }
}
