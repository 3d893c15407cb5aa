import Foundation
public import ServiceLifecycle
public import LetheCore
public import LetheStream

/// Keeps a stream filter's deletion set current: `SharedDeletionSet.follow` as a service, every
/// `interval` seconds, until the service group shuts down (gracefully or not). A failed refresh
/// is reported through `onError` and retried at the next interval; the set in use stays.
public struct DeletionSetRefresher: Service {
    let set: SharedDeletionSet
    let source: @Sendable (Int64) async throws -> DeletionChanges
    let interval: Double
    let onError: @Sendable (any Error) -> Void

    public init(
        set: SharedDeletionSet, interval: Double,
        source: @escaping @Sendable (Int64) async throws -> DeletionChanges,
        onError: @escaping @Sendable (any Error) -> Void
    ) {
        self.set = set; self.interval = interval; self.source = source; self.onError = onError
    }

    public func run() async {
        let (set, source, interval, onError) = (set, source, interval, onError)
        await cancelWhenGracefulShutdown { await set.follow(source, interval: interval, onError: onError) }
    }
}
