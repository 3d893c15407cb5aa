import ArgumentParser
import Foundation
import LetheCore
import LetheEngine
import LetheRuntime
import LetheServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API, the scheduler of approved requests and the index watcher until SIGTERM.",
        discussion: """
            Listens on `serve.host`:`serve.port` (127.0.0.1:8080 by default); a host that is not a loopback \
            address needs `serve.tls` (cert and key, PEM). Approved requests run every `serve.run_every` \
            (at once with 0), at most `serve.batch_max` a run. Callers authenticate with bearer tokens from \
            `lethe token create`, and with `serve.oidc` also with JWTs of an OpenID Connect provider; every call of an authenticated route is written to the audit log with its \
            principal. Request events go to `notify:` (signed webhooks, e-mail to approvers) and the deletion \
            set to `stream: {redis}` when configured. SIGTERM or SIGINT: requests in flight finish, a run under way finishes, then exit 0. \
            The API is described at /openapi.yaml; see docs/serve.md.
            """)
    @OptionGroup var global: Global
    @Option(help: "The port (overrides serve.port; 0 picks a free one).") var port: Int?
    @Option(help: "The address to listen on (overrides serve.host).") var host: String?
    @Option(help: "Seconds between index refreshes (0: no index watcher).") var watch: Double = 30

    func run() async throws {
        try await guarded {
            let config = try LakeConfig.load(path: global.config)
            // `LETHE_SERVE_EXECUTOR=nio` on the embedded state: the service's tasks on NIO's event loops (see
            // `takeOverConcurrencyExecutor`). Never with PostgreSQL: its sessions wait on event-loop futures.
            if case .folder = config.state { _ = LetheServe.takeOverConcurrencyExecutor() }
            var serve = config.serve
            if let port {
                guard (0...65_535).contains(port) else { throw LetheError(.badUsage, "--port takes 0 to 65535") }
                serve.port = port
            }
            if let host { serve.host = host }
            guard watch >= 0 else { throw LetheError(.badUsage, "--watch takes 0 or more seconds") }
            try LetheServe.checkListen(serve)
            let lethe = try Runtime.open(config: config)
            let authenticator = try await LetheServe.authenticator(for: lethe, serve: serve, logger: Lethe.defaultLogger())
            var api = LetheAPI(lethe: lethe, authenticator: authenticator, serve: serve)
            let background = try LetheServe.Background(config: config, lethe: lethe, metrics: api.metrics, logger: api.logger)
            api.access = background.access
            let scheme = serve.tls == nil ? "http" : "https"
            let json = global.json, host = serve.host
            let services = try LetheServe.services(
                api, watch: watch > 0 ? watch : nil, leading: background.leading, extra: background.trailing,
                onRunning: { bound in
                    if json {
                        out(#"{"listening":"\#(scheme)://\#(host):\#(bound)","port":\#(bound)}"#)
                    } else {
                        out("lethe serve: listening on \(scheme)://\(host):\(bound)")
                    }
                    fflush(nil)
                })
            try await runUntilSignalled(services)
            return 0
        }
    }
}
