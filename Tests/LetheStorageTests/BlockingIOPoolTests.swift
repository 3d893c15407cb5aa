import Dispatch
import Foundation
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
