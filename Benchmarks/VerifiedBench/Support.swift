import BenchSupport
import LetheEngine

/// Timestamped events of `Lethe.run(events:)`.
typealias EventLog = TimedLog<EngineEvent>
