import Foundation
import LetheEngine
import LetheRuntime
import Logging
import ServiceLifecycle

/// The index watcher of `lethe serve`: S3's event notifications when `s3.events_queue` is set, else a
/// refresh every `interval` seconds. Unlike `lethe index --watch`, a pass that fails is logged and tried
/// again after the interval: the index being unreachable for a while must not stop the HTTP service.
struct WatchService: Service {
    let lethe: Lethe
    let interval: Double
    let logger: Logger

    func run() async throws {
        let log = logger
        if let events = try S3EventIndexService.configured(lethe: lethe, datasets: nil, onEvent: { e in log.debug("index: \(e)") }) {
            return try await events.run()
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let r = try await lethe.index()
                if r.objectsScanned > 0 || r.objectsRemoved > 0 {
                    logger.info("index: \(r.objectsScanned) object(s) indexed, \(r.objectsRemoved) removed")
                }
            } catch {
                logger.error("index refresh failed: \(error)")
            }
            do {
                let nanoseconds = UInt64(max(0.01, interval) * 1e9)
                try await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: nanoseconds) }
            } catch is CancellationError {
                return
            }
        }
    }
}
