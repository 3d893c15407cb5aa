import Foundation
@_exported import BenchSupport
import LetheEngine

/// Milliseconds since the epoch (the clock of the engine's audit entries).
func wallMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// Progress messages of `Lethe.run`, each with the monotonic time it arrived.
typealias Progress = TimedLog<EngineEvent>
