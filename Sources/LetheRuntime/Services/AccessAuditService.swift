public import LetheEngine
public import Logging
public import ServiceLifecycle
import Synchronization

/// Batches the HTTP API's calls into the audit log (issue 14): `record` is cheap (a lock and an
/// append) and never waits for the state; the service writes what was recorded every `interval`
/// (200 ms), or at once when `maxBatch` calls wait, each batch one transaction (`Lethe.recordAPICalls`),
/// so 10,000 calls are a few dozen commits, not 10,000. A graceful shutdown writes what is left. List
/// it before the HTTP server in the service group: the group stops services in reverse order, so the
/// server's last calls are recorded before this service's final flush.
///
/// A batch that cannot be written (the state unreachable) is kept and written with the next one; at
/// most `maxBuffered` calls are kept (the oldest beyond are dropped, counted in `dropped` and logged).
public final class AccessAuditService: Service, Sendable {
    let lethe: Lethe
    let interval: Duration
    let maxBatch: Int
    let maxBuffered: Int
    let logger: Logger
    private let buffer = Mutex<[APICall]>([])
    private let droppedCount = Atomic<Int>(0)
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    public init(
        lethe: Lethe, interval: Duration = .milliseconds(200), maxBatch: Int = 1_000, maxBuffered: Int = 100_000,
        logger: Logger = Logger(label: "lethe.access")
    ) {
        self.lethe = lethe; self.interval = interval; self.maxBatch = max(1, maxBatch); self.maxBuffered = max(maxBatch, maxBuffered)
        self.logger = logger
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Calls dropped because the buffer was full (the state unreachable for long).
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Records one call (written with the next batch).
    public func record(_ call: APICall) {
        let (full, over) = buffer.withLock { b -> (Bool, Int) in
            b.append(call)
            let over = b.count - maxBuffered
            if over > 0 { b.removeFirst(over) }
            return (b.count >= maxBatch, max(0, over))
        }
        if over > 0 { _ = droppedCount.add(over, ordering: .relaxed) }
        if full { wake.yield() }
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // Wakes the loop every `interval` (the stream also wakes it when a batch is full).
            group.addTask { [interval, wake] in
                while !Task.isCancelled {
                    do { try await Task.sleep(for: interval) } catch { return }
                    wake.yield()
                }
            }
            await cancelWhenGracefulShutdown {
                for await _ in self.wakes {
                    await self.flush()
                    if Task.isCancelled { break }
                }
            }
            group.cancelAll()
        }
        await flush()
    }

    /// Writes everything recorded so far (in batches of `maxBatch`); what fails stays for the next flush.
    public func flush() async {
        while true {
            let batch = buffer.withLock { b -> [APICall] in
                let n = min(b.count, maxBatch)
                let out = Array(b.prefix(n))
                b.removeFirst(n)
                return out
            }
            if batch.isEmpty { return }
            do {
                try await lethe.recordAPICalls(batch)
            } catch {
                buffer.withLock { $0.insert(contentsOf: batch, at: 0) }
                logger.error("cannot write API calls to the audit log; kept for the next flush", metadata: ["calls": "\(batch.count)", "error": "\(error)"])
                return
            }
        }
    }
}
