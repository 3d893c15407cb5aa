import Foundation
import Hummingbird
import LetheCore
import LetheEngine
import LetheServer
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// `lethe serve`'s services together: the HTTP server on a free loopback port, the scheduler, graceful
/// shutdown, the loopback rule and TLS.
@Suite(.timeLimit(.minutes(10))) struct ServeTests {
    static func group(_ services: [ServiceGroupConfiguration.ServiceConfiguration]) -> ServiceGroup {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        return ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: quiet))
    }

    /// Runs `curl` with `args`; its output and exit status. Awaited, never waited for on a thread of the
    /// cooperative pool: the server under test answers on that pool.
    static func curl(_ args: [String]) async throws -> (out: String, status: Int32) {
        let file = NSTemporaryDirectory() + "lethe-curl-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        // A hang guard, not a latency bound: the whole parallel run starves 2 cores for minutes (a full run here saw a filing wait over 20 s).
        p.arguments = ["-sS", "--max-time", "120", "-o", file] + args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { c in
            p.terminationHandler = { c.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { c.resume(throwing: error) }
        }
        return ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "", status)
    }

    @Test func aHostBeyondLoopbackNeedsTLS() throws {
        var s = ServeConfig()
        for host in ["127.0.0.1", "localhost", "::1", "127.1.2.3"] {
            s.host = host
            #expect(throws: Never.self) { try LetheServe.checkListen(s) }
        }
        for host in ["0.0.0.0", "10.0.0.1", "example.com", "127.0.0.1.example.com"] {
            s.host = host
            #expect(throws: LetheError.self) { try LetheServe.checkListen(s) }
        }
        s.host = "0.0.0.0"
        s.tls = .init(cert: "c.pem", key: "k.pem")
        #expect(throws: Never.self) { try LetheServe.checkListen(s) }
    }

    @Test func approvedRequestsRunAtOnceAndShutdownIsGraceful() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        var serve = ServeConfig()
        serve.port = 0
        serve.runEvery = 0
        let api = f.api(serve: serve)
        let port = Mutex(0)
        let runs = Mutex<[RunReport]>([])
        let group = Self.group(
            try LetheServe.services(api, watch: 0.2, onRunning: { p in port.withLock { $0 = p } }, onRun: { r in runs.withLock { $0.append(r) } }))
        let running = Task { try await group.run() }
        while port.withLock({ $0 }) == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        let base = "http://127.0.0.1:\(port.withLock { $0 })"
        let filed = try await Self.curl([
            "-X", "POST", "-H", "Authorization: Bearer \(alice)", "-H", "Content-Type: application/json", "--data", #"{"subjects":["u-5"]}"#,
            base + "/v1/requests",
        ])
        guard let id = filed.out.firstMatch(of: /"id":"([a-z0-9-]+)"/)?.1 else { Issue.record("filing: \(filed.out)"); return }
        let approved = try await Self.curl(["-X", "POST", "-H", "Authorization: Bearer \(bob)", base + "/v1/requests/\(id)/approve"])
        #expect(approved.out.contains(#""status":"approved""#))
        // run_every 0: the scheduler runs it at once (woken by the approval), without anyone calling `lethe run`.
        while !runs.withLock({ $0.contains { $0.erased.contains(String(id)) } }) { try await Task.sleep(nanoseconds: 20_000_000) }
        let shown = try await Self.curl(["-H", "Authorization: Bearer \(bob)", base + "/v1/requests/\(id)"])
        #expect(shown.out.contains(#""status":"verified""#))
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try await Self.curl([base + "/healthz"]).status != 0, "the server still answers after the shutdown")
    }

    @Test func servesHTTPSWithTheConfiguredCertificate() async throws {
        let f = try await ServerFixture(users: 1)
        defer { f.remove() }
        let cert = f.dir + "/cert.pem", key = f.dir + "/key.pem"
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        #expect(openssl.terminationStatus == 0)
        var serve = ServeConfig()
        serve.port = 0
        serve.tls = .init(cert: cert, key: key)
        let port = Mutex(0)
        let group = Self.group(try LetheServe.services(f.api(serve: serve), watch: nil, onRunning: { p in port.withLock { $0 = p } }))
        let running = Task { try await group.run() }
        while port.withLock({ $0 }) == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        let p = port.withLock { $0 }
        let ok = try await Self.curl(["--cacert", cert, "https://127.0.0.1:\(p)/healthz"])
        #expect(ok.status == 0 && ok.out == #"{"status":"ok"}"#)
        // Plain HTTP is not served, and a client that does not trust the certificate refuses it.
        #expect(try await Self.curl(["http://127.0.0.1:\(p)/healthz"]).out != #"{"status":"ok"}"#)
        #expect(try await Self.curl(["https://127.0.0.1:\(p)/healthz"]).status != 0)
        await group.triggerGracefulShutdown()
        try await running.value
        // A key file that is not PEM: one line naming it.
        try "nope".write(toFile: key, atomically: true, encoding: .utf8)
        #expect(throws: LetheError.self) { _ = try LetheServe.tlsConfiguration(.init(cert: cert, key: key)) }
    }
}
