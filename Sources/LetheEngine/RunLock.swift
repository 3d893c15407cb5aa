import LetheCatalog

extension Lethe {
    /// Takes the state's run lock for a `run` (one run at a time per state: a second one would
    /// resume this one's live job as if it were interrupted). The state store decides what the lock
    /// is (SQLite: a `flock` on `<state folder>/run.lock`); a run that finds it taken waits for it
    /// and says so once (`.waitingForRunLock`). nil when the store has nothing to lock.
    func acquireRunLock(events: EngineEvents?) async throws -> (any RunLockHandle)? {
        try await meta.acquireRunLock(progress: events.map { e in { @Sendable _ in e(.waitingForRunLock) } })
    }
}
