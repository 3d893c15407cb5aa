import Foundation
public import Hummingbird
public import LetheCore
public import LetheEngine
public import Logging
import NIOCore
import Synchronization
public import LetheRuntime

/// The HTTP API over one engine: the routes of `APIRoute.all`, bearer-token auth with roles, one JSON
/// error shape, bounded bodies, Prometheus metrics. A thin door: every route is one engine call, and the
/// bodies are the report types the CLI prints with `--json`.
public struct LetheAPI: Sendable {
    public let lethe: Lethe
    public let authenticator: any BearerAuthenticator
    public let serve: ServeConfig
    public let metrics: ServerMetrics
    /// Told when a request is approved (the scheduler runs at once with `run_every: 0`).
    public let trigger: RunTrigger
    public let logger: Logger
    /// The largest request body accepted (413 beyond it).
    public var maxBody = 1 << 20
    /// The most subjects one `POST /v1/requests` may file.
    public var maxSubjects = 10_000
    /// Where every call of an authenticated route goes, with its principal (nil: not audited, e.g. in tests).
    public var access: AccessAuditService?
    /// Group commit of `POST /v1/requests`: filings that arrive while others are written are filed together.
    public var filings: FilingGroup

    public init(
        lethe: Lethe, authenticator: any BearerAuthenticator, serve: ServeConfig = ServeConfig(),
        metrics: ServerMetrics = ServerMetrics(), trigger: RunTrigger = RunTrigger(), logger: Logger = Lethe.defaultLogger()
    ) {
        self.lethe = lethe; self.authenticator = authenticator; self.serve = serve; self.metrics = metrics
        self.trigger = trigger; self.logger = logger
        self.filings = FilingGroup(lethe: lethe)
    }

    public typealias Context = BasicRequestContext

    /// The router with every route and the error/metrics middleware.
    public func router() -> Router<Context> {
        let router = Router(context: Context.self)
        router.add(middleware: APIMiddleware(metrics: metrics, logger: logger, access: access, now: { [lethe] in lethe.now() }))
        addRequestRoutes(router)
        addLakeRoutes(router)
        addServiceRoutes(router)
        Dashboard(api: self).add(to: router)
        return router
    }

    /// Adds `route` with its role check: 401 without a known token, 403 for a role it does not allow,
    /// both before the body is read.
    func on(
        _ router: Router<Context>, _ route: APIRoute,
        _ handler: @escaping @Sendable (Request, Context, Principal?) async throws -> Response
    ) {
        router.on(route.routerPath, method: route.method) { request, context in
            var principal: Principal?
            if route.roles != nil {
                let call = APICallScope.current
                call?.state.withLock { $0.audited = true }
                principal = try await authorize(request, route) { p in call?.state.withLock { $0.principal = p } }
            }
            return try await handler(request, context, principal)
        }
    }

    /// The caller's principal, if its token is known and its role may call `route`; `known` learns the
    /// principal before the role check (a refused call is audited with it). An OIDC JWT that fails a check
    /// is a 401 from the authenticator saying which (`WWW-Authenticate: Bearer error="invalid_token"`).
    func authorize(_ request: Request, _ route: APIRoute, known: (Principal) -> Void = { _ in }) async throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("a bearer token is required (Authorization: Bearer TOKEN)")
        }
        guard let token = Self.bearerToken(header) else {
            throw APIError.unauthorized("the Authorization header must be `Bearer TOKEN`")
        }
        guard !token.isEmpty, let p = try await authenticator.principal(bearer: token, for: route.roles) else {
            throw APIError.unauthorized("unknown or revoked token")
        }
        known(p)
        guard let roles = route.roles, roles.contains(p.role) else {
            let allowed = (route.roles ?? []).map(\.rawValue).sorted().joined(separator: ", ")
            throw APIError.forbidden("role \(p.role.rawValue) may not call \(route.method) \(route.path) (roles: \(allowed))")
        }
        return p
    }

    /// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case, spaces and tabs around
    /// the token dropped; empty when there is none); nil for another scheme. On the header's bytes: every
    /// authenticated call parses one (Foundation's `trimmingCharacters` cost 2 % of a locate).
    static func bearerToken(_ header: String) -> String? {
        var header = header
        return header.withUTF8 { b -> String? in
            func blank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
            var i = 0
            while i < b.count && b[i] == 0x20 { i += 1 }
            let scheme = i
            while i < b.count && b[i] != 0x20 { i += 1 }
            guard i - scheme == 6 else { return nil }
            for (j, c) in "bearer".utf8.enumerated() where b[scheme + j] | 0x20 != c { return nil }
            guard i < b.count else { return nil }  // no space after the scheme: not `Bearer TOKEN`
            while i < b.count && blank(b[i]) { i += 1 }
            var end = b.count
            while end > i && blank(b[end - 1]) { end -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: b[i..<end]), as: UTF8.self)
        }
    }

    /// The request's body as JSON: nil when empty; 413 beyond `maxBody`; 400 when it is not JSON.
    func jsonBody(_ request: Request) async throws -> JSONValue? {
        var request = request
        let buffer = try await request.collectBody(upTo: maxBody)
        guard buffer.readableBytes > 0 else { return nil }
        let bytes = Array(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        do {
            return try JSONValue.parse(bytes)
        } catch {
            throw APIError.badRequest("the body is not valid JSON (\(error))")
        }
    }

    /// The body as a JSON object with only the keys `allowed` (an empty body: `{}` when `optional`).
    func objectBody(_ request: Request, allowed: Set<String>, optional: Bool = false) async throws -> [String: JSONValue] {
        guard let body = try await jsonBody(request) else {
            if optional { return [:] }
            throw APIError.badRequest("a JSON object body is required")
        }
        guard case .object(let o) = body else { throw APIError.badRequest("the body must be a JSON object") }
        if let extra = o.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("unknown field `\(extra)` (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        return o
    }

    /// A JSON response.
    static func json(_ text: String, _ status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// A JSON response of a report, as the CLI's `--json` prints it.
    static func json<T: Encodable>(report: T, _ status: HTTPResponse.Status = .ok) -> Response {
        json(ReportEncoder.text(report), status)
    }

    /// A query parameter as an integer in `range` (nil when absent); 400 otherwise.
    static func intQuery(_ request: Request, _ name: String, _ range: ClosedRange<Int64>) throws -> Int64? {
        guard let text = request.uri.queryParameters[name[...]] else { return nil }
        guard let v = Int64(String(text)), range.contains(v) else {
            throw APIError.badRequest("`\(name)` must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }
}

/// What the route handler learnt about the call being served (its route is authenticated; who called),
/// for the middleware's access audit: the handler runs inside the middleware's task, under its task-local.
final class APICallScope: Sendable {
    /// `redirectedAfterSuccess`: a dashboard form succeeded and answers with a redirect (its request id is the engine's).
    struct State { var audited = false, principal: Principal?, redirectedAfterSuccess = false }
    let state = Mutex(State())
    @TaskLocal static var current: APICallScope?
}

/// Turns every error into the one JSON shape (and an unmatched path with a known template into 405),
/// and records each request's latency under its route template.
struct APIMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics
    let logger: Logger
    let access: AccessAuditService?
    let now: @Sendable () -> Int64

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        let call = APICallScope()
        do {
            response = try await APICallScope.$current.withValue(call) { try await next(request, context) }
        } catch {
            response = try errorResponse(error, request, context)
        }
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        let ns = UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000)
        metrics.observe(route: route, method: request.method.rawValue, status: response.status.code, nanoseconds: ns)
        // The access audit: every call of an authenticated route (refused ones too), with its principal; the
        // request id only when the call succeeded (an id the engine made, never text a caller sent in a URL;
        // a dashboard form that succeeded answers with a redirect and says so).
        let (audited, principal, redirected) = call.state.withLock { ($0.audited, $0.principal, $0.redirectedAfterSuccess) }
        if let access, audited {
            let ok = (200..<300).contains(response.status.code) || (redirected && response.status == .seeOther)
            access.record(
                APICall(
                    principal: principal, method: request.method.rawValue, route: route, status: response.status.code,
                    requestID: ok ? context.parameters.get("id") : nil, at: now()))
        }
        return response
    }

    func errorResponse(_ error: any Error, _ request: Request, _ context: Context) throws -> Response {
        let api: APIError
        switch error {
        case let e as APIError: api = e
        case let e as LetheError:
            api = APIError(e)
            if api.status == .internalServerError { logger.error("\(request.method) \(context.endpointPath ?? "?"): \(e.description)") }
        case let e as any HTTPResponseError:  // the router's 404, a body over the limit (NIOTooManyBytesError), …
            switch e.status {
            case .notFound:
                let allowed = APIRoute.all.filter { $0.matches(path: request.uri.path[...]) }.map(\.method.rawValue)
                if !allowed.isEmpty {
                    var h = HTTPFields()
                    h[.allow] = allowed.joined(separator: ", ")
                    api = APIError(
                        .methodNotAllowed, "method_not_allowed", "\(request.method) is not allowed here (allowed: \(allowed.joined(separator: ", ")))",
                        headers: h)
                } else {
                    api = .notFound("no route \(request.uri.path)")
                }
            case .contentTooLarge: api = APIError(.contentTooLarge, "payload_too_large", "the body is larger than the service accepts")
            default:
                api = APIError(e.status, e.status.code < 500 ? "bad_request" : "internal", (e as? HTTPError)?.body ?? e.status.reasonPhrase)
            }
        default:
            logger.error("\(request.method) \(context.endpointPath ?? "?"): \(error)")
            api = APIError(.internalServerError, "internal", "internal error (see the service's log)")
        }
        return try api.response(from: request, context: context)
    }
}
