import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import LetheCore
public import LetheEngine
public import Logging
import NIOCore
import NIOPosix
public import NIOSSL
public import ServiceLifecycle

/// `lethe serve`: the HTTP API, the scheduler and the index watcher as the services of one group,
/// with room for more (`extra`: the notification outbox dispatcher, the Redis deletion-set sink).
public enum LetheServe {
    /// The token store of `lethe`'s state.
    public static func authenticator(for lethe: Lethe) -> any BearerAuthenticator { lethe }

    /// The token store, behind an `OIDCAuthenticator` when `serve.oidc` is set (its JWKS file is read
    /// here: a missing or malformed one is a `.badInput` error naming it).
    public static func authenticator(for lethe: Lethe, serve: ServeConfig, logger: Logger) async throws -> any BearerAuthenticator {
        guard let oidc = serve.oidc else { return lethe }
        return try await OIDCAuthenticator(config: oidc, tokens: lethe, logger: logger)
    }

    /// With `LETHE_SERVE_EXECUTOR=nio`, makes NIO's event loops (the threads the HTTP server's sockets are
    /// served on) Swift concurrency's global executor, so that a request's task runs on an event loop
    /// instead of hopping to the cooperative pool and back for every read and write of its connection
    /// (one thread pool, not two; a task woken on an event loop stays on it). Off by default: in the
    /// session-15 debug measurements it did not lower the CPU per call and it lengthened the latency tail
    /// (request work then competes with socket I/O on the same threads); to be measured in release.
    /// For `lethe serve` on the embedded state only, once, before its services start; never where a
    /// thread may block on an event loop's future (the PostgreSQL store's sessions do). Returns whether it
    /// was installed.
    public static func takeOverConcurrencyExecutor() -> Bool {
        guard ProcessInfo.processInfo.environment["LETHE_SERVE_EXECUTOR"] == "nio" else { return false }
        return NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Refuses a `serve.host` that is not a loopback address unless `serve.tls` is set (bearer tokens
    /// never travel in clear text beyond this machine).
    public static func checkListen(_ s: ServeConfig) throws {
        guard s.tls == nil, !isLoopback(s.host) else { return }
        throw LetheError(
            .badUsage, "serve.host `\(s.host)` is not a loopback address: serving beyond this machine needs `serve.tls` (cert and key)")
    }

    /// `localhost`, `127.0.0.0/8` or `::1`.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    /// The TLS configuration of `serve.tls`: a PEM certificate chain and its private key. A file that
    /// cannot be read is a one-line error naming it.
    public static func tlsConfiguration(_ t: ServeConfig.TLSFiles) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(t.cert)
        } catch {
            throw LetheError(.badInput, "cannot read the TLS certificate chain (PEM): \(error)", at: t.cert)
        }
        guard !chain.isEmpty else { throw LetheError(.badInput, "no certificate in the file (PEM)", at: t.cert) }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: t.key, format: .pem)
        } catch {
            throw LetheError(.badInput, "cannot read the TLS private key (PEM): \(error)", at: t.key)
        }
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { NIOSSLCertificateSource.certificate($0) }, privateKey: .privateKey(key))
    }

    /// The HTTP server of `api` as a service: HTTPS when `serve.tls` is set. `onRunning` gets the bound
    /// port (useful with port 0).
    public static func application(
        _ api: LetheAPI, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try checkListen(api.serve)
        let server: HTTPServerBuilder = try api.serve.tls.map { try HTTPServerBuilder.tls(.http1(), tlsConfiguration: tlsConfiguration($0)) } ?? .http1()
        return Application(
            router: api.router(), server: server,
            configuration: ApplicationConfiguration(address: .hostname(api.serve.host, port: api.serve.port), serverName: "lethe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? api.serve.port) },
            logger: api.logger)
    }

    /// Every service of `lethe serve`: the HTTP server, the scheduler (`run_every`, `batch_max`), the
    /// index watcher (`watch`: seconds between refreshes; nil: none), then `extra`; `leading` before them all. The HTTP server
    /// stops the group when it ends; a graceful shutdown stops them all, each finishing what it does.
    public static func services(
        _ api: LetheAPI, watch: Double?, leading: [any Service] = [], extra: [any Service] = [],
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        onRun: @escaping @Sendable (RunReport) -> Void = { _ in }
    ) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        // Started in this order, stopped in the reverse: `leading` (the access audit) outlives the HTTP server.
        var out: [ServiceGroupConfiguration.ServiceConfiguration] = leading.map { .init(service: $0) }
        out.append(.init(service: try application(api, onRunning: onRunning), successTerminationBehavior: .gracefullyShutdownGroup))
        out.append(
            .init(
                service: SchedulerService(
                    lethe: api.lethe, every: api.serve.runEvery, batchMax: api.serve.batchMax, trigger: api.trigger,
                    metrics: api.metrics, logger: api.logger, onRun: onRun),
                successTerminationBehavior: .gracefullyShutdownGroup))
        if let watch {
            out.append(.init(service: WatchService(lethe: api.lethe, interval: watch, logger: api.logger)))
        }
        out += extra.map { .init(service: $0) }
        return out
    }
}
