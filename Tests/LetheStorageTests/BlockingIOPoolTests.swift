import Dispatch
import Foundation
import Synchronization
import Testing
import LetheCore
@testable import LetheStorage

/// As many blocking calls as the machine has cores wait for a signal that only a task on the
/// cooperative pool sends: run inline they would hold every cooperative thread and the signal would
/// never come (each call gives up after a while and says so); on the I/O pool they all see it.
@Test func ioPoolKeepsCooperativePoolFree() async throws {
    let n = max(2, ProcessInfo.processInfo.activeProcessorCount)
    let pool = BlockingIOPool(threads: n)
    let release = DispatchSemaphore(value: 0)
    let released = try await withThrowingTaskGroup(of: Bool.self) { group in
        for _ in 0..<n {
            group.addTask { try await pool.run { release.wait(timeout: .now() + 20) == .success } }
        }
        group.addTask {
            for _ in 0..<n { release.signal() }
            return true
        }
        var all: [Bool] = []
        for try await r in group { all.append(r) }
        return all
    }
    #expect(released.count == n + 1 && released.allSatisfy { $0 })
}

@Test func ioPoolReturnsResultsAndErrorsInOrderOfTheirCalls() async throws {
    let pool = BlockingIOPool(threads: 2)
    let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
        for i in 0..<200 { group.addTask { (i, try await pool.run { i * i }) } }
        var out: [Int: Int] = [:]
        for try await (i, v) in group { out[i] = v }
        return out
    }
    #expect(results.count == 200 && results.allSatisfy { $0.value == $0.key * $0.key })
    await #expect(throws: LetheError.self) { try await pool.run { throw LetheError(.io, "x") } }
}

/// What a job captured is let go of once it ran: the queue kept taken jobs until it was compacted
/// (more than 64 taken), so a job capturing an open state store kept the database open to the end
/// of the process and SQLite's WAL file was left behind by `lethe index` and `lethe run`.
@Test func ioPoolLetsGoOfAJobOnceItRan() async throws {
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .sequentiallyConsistent) }
        var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    }
    final class Held: Sendable {
        let flag: Flag
        init(_ flag: Flag) { self.flag = flag }
        deinit { flag.set() }
    }
    let pool = BlockingIOPool(threads: 1)
    let flag = Flag()
    do {
        let held = Held(flag)
        let n = try await pool.run { held.flag === flag ? 1 : 0 }
        #expect(n == 1)
    }
    // The worker drops its own reference right after the call returns to the caller.
    for _ in 0..<400 where !flag.isSet { try await Task.sleep(nanoseconds: 5_000_000) }
    #expect(flag.isSet, "the pool still holds a job that ran")
}
