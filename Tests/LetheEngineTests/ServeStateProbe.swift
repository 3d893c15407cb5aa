import Foundation
import Testing
import LetheCore
import LetheEngine
import LetheCatalog

/// CPU cost of the per-call state work of `lethe serve` on the embedded store: authenticating a
/// bearer token, and writing access-audit batches. Run with LETHE_PROBE=1 (prints figures; CPU time
/// of the process from getrusage, so other processes on the machine do not count).
@Suite struct ServeStateProbe {
    static let enabled = ProcessInfo.processInfo.environment["LETHE_PROBE"] == "1"

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    @Test(.enabled(if: ServeStateProbe.enabled, "set LETHE_PROBE=1 to measure"))
    func perCallStateCost() async throws {
        let lake = try ServeLake(.sqlite)
        defer { lake.remove() }
        let l = lake.lethe
        var secrets: [String] = []
        for i in 0..<20 { secrets.append(try await l.createToken(name: "t\(i)", role: .requester).secret) }
        let n = 10_000
        var c0 = Self.cpuSeconds()
        for i in 0..<n { _ = try await l.principal(bearer: secrets[i % secrets.count]) }
        let auth = (Self.cpuSeconds() - c0) / Double(n)
        c0 = Self.cpuSeconds()
        for i in 0..<n { _ = try await l.meta.request(id: "r-\(i)") }
        let read = (Self.cpuSeconds() - c0) / Double(n)
        let calls = (0..<n).map { i in
            APICall(principal: Principal(name: "t\(i % 20)", role: .requester), method: "POST", route: "/v1/locate", status: 200, at: Int64(i))
        }
        c0 = Self.cpuSeconds()
        for start in stride(from: 0, to: n, by: 1_000) { try await l.recordAPICalls(Array(calls[start..<(start + 1_000)])) }
        let audit = (Self.cpuSeconds() - c0) / Double(n)
        print(
            "probe: principal(bearer:) \(String(format: "%.1f", auth * 1e6)) µs CPU a call (a request read by id: \(String(format: "%.1f", read * 1e6)) µs); access audit \(String(format: "%.1f", audit * 1e6)) µs CPU a call (batches of 1,000)"
        )
    }
}
