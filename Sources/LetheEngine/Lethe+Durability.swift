import LetheCatalog
import LetheCore
import Logging

extension Lethe {
    /// Runs one operation that writes the state, then makes what it committed durable before it
    /// returns (`StateStore.makeDurable`: SQLite syncs its write-ahead log once if the operation
    /// wrote, PostgreSQL has nothing to do). Also when it fails: what it committed before the failure
    /// is kept (its error is the one thrown; a failed sync is logged). An operation called inside
    /// another (`run` destroying expired raw ids first, a worker's step) is part of the outer one:
    /// only the outermost syncs, once.
    ///
    /// Every public entry point of the engine that writes the state goes through here, so what a
    /// caller was told (a request id, an approval, a run's report) survives a power loss or an OS crash.
    func durably<T>(_ body: () async throws -> T) async throws -> T {
        if DurableOperation.active { return try await body() }
        return try await DurableOperation.$active.withValue(true) {
            let result: T
            do {
                result = try await body()
            } catch {
                do {
                    try await Trace.span("durable point (after a failure)") { try await meta.makeDurable() }
                } catch let syncError {
                    logger.error("cannot make the state durable after a failed operation: \(syncError)")
                }
                throw error
            }
            // `LETHE_TRACE=1`: the sync's own time (nothing when the operation wrote nothing).
            try await Trace.span("durable point") { try await meta.makeDurable() }
            return result
        }
    }
}

/// Whether the current task runs inside an operation of `Lethe.durably` (which syncs when it ends).
enum DurableOperation {
    @TaskLocal static var active = false
}
