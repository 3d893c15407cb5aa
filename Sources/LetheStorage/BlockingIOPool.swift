import LetheCore
import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A few threads for blocking system calls, so that file I/O never holds one of the cooperative
/// pool's threads (as many as cores: a slow disk or network mount there stalls every task). A caller
/// hands over a whole batch of calls — open, `fstat`, `pread` of up to a few MiB, close; or write-temp,
/// `fsync`, rename, folder `fsync` — in one `run`, never one call per hop.
///
/// Threads start on first use and live as long as the process.
public final class BlockingIOPool: Sendable {
    /// The process-wide pool the local object store uses.
    public static let shared = BlockingIOPool(threads: 4)

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var started = 0
        var idle = 0
    }
    private let state = Mutex(State())
    private let wakeup: Semaphore
    /// Threads the pool may start.
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        self.wakeup = Semaphore()
    }

    /// Runs `body` on one of the pool's threads and returns its result (or throws its error). The
    /// calling task is suspended meanwhile; cancellation does not interrupt a started call.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            submit { c.resume(with: Result { try body() }) }
        }
    }

    /// Runs `job` on one of the pool's threads without waiting for it (nothing to return, nothing
    /// to throw: a hint such as starting the writeback of written pages).
    public func post(_ job: @escaping @Sendable () -> Void) { submit(job) }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        let startThread = state.withLock { s -> Bool in
            s.jobs.append(job)
            if s.idle > 0 { s.idle -= 1; return false }
            guard s.started < threads else { return false }
            s.started += 1
            return true
        }
        if startThread { spawn() }
        wakeup.signal()
    }

    /// The next job, waiting for one.
    private func take() -> @Sendable () -> Void {
        while true {
            wakeup.wait()
            let job: (@Sendable () -> Void)? = state.withLock { s in
                guard s.head < s.jobs.count else { return nil }
                let j = s.jobs[s.head]
                // The slot lets go of the job at once: a taken job must not keep what it captured
                // (an open store, a buffer) alive until the queue happens to be compacted.
                s.jobs[s.head] = {}
                s.head += 1
                if s.head == s.jobs.count {
                    s.jobs.removeAll(keepingCapacity: true)
                    s.head = 0
                } else if s.head > 64 && s.head * 2 > s.jobs.count {
                    s.jobs.removeFirst(s.head)
                    s.head = 0
                }
                return j
            }
            if let job { return job }
        }
    }

    private func work() -> Never {
        while true {
            let job = take()
            job()
            state.withLock { s in if s.head >= s.jobs.count { s.idle += 1 } }
        }
    }

    private func spawn() {
        let context = Unmanaged.passRetained(self).toOpaque()
        let attributes = UnsafeMutablePointer<pthread_attr_t>.allocate(capacity: 1)
        defer { attributes.deallocate() }
        pthread_attr_init(attributes)
        defer { pthread_attr_destroy(attributes) }
        pthread_attr_setdetachstate(attributes, Int32(PTHREAD_CREATE_DETACHED))
        #if canImport(Glibc)
            var thread = pthread_t()
            let rc = pthread_create(
                &thread, attributes,
                { raw in
                    Unmanaged<BlockingIOPool>.fromOpaque(raw!).takeRetainedValue().work()
                }, context)
        #else
            var thread: pthread_t?
            let rc = pthread_create(
                &thread, attributes,
                { raw in
                    Unmanaged<BlockingIOPool>.fromOpaque(raw).takeRetainedValue().work()
                }, context)
        #endif
        precondition(rc == 0, "cannot start an I/O thread (error \(rc))")
    }
}

/// A counting semaphore (POSIX), for idle threads to sleep on.
final class Semaphore: @unchecked Sendable {
    // `@unchecked`: the sem_t is only ever used through sem_post/sem_wait, which are thread-safe.
    private let sem = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    init() { sem_init(sem, 0, 0) }
    deinit { sem_destroy(sem); sem.deallocate() }
    func signal() { sem_post(sem) }
    func wait() { while sem_wait(sem) != 0 && errno == EINTR {} }
}
