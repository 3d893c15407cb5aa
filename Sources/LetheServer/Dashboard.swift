import Foundation
import Hummingbird
import LetheCore
import LetheEngine
import Logging
import NIOCore
import Synchronization

/// The dashboard of `lethe serve` (docs/dashboard.md): server-rendered HTML under `/ui/`, no script.
/// A person logs in by pasting an API token; the session cookie names the token by id (see
/// `DashboardSession`) and every page re-checks that the token is live. Roles apply as in the API;
/// every action is the API's engine call, and every page is in the access audit like an API call.
struct Dashboard: Sendable {
    let api: LetheAPI
    /// Signs sessions and CSRF tokens (derived from the installation secret).
    let key: [UInt8]
    var lethe: Lethe { api.lethe }

    init(api: LetheAPI) {
        self.api = api
        self.key = DashboardSession.key(tokenKey: api.lethe.secrets.tokenKey)
    }

    typealias Context = LetheAPI.Context

    // Who may see which page: as the API's routes.
    static let requestPages = APIRoute.readRequests
    static let decide = APIRoute.decide
    static let certificates = APIRoute.certificates
    static let audit = APIRoute.audit
    /// The index coverage and the charts: everyone who reads all requests (a requester sees only its own).
    static let overview: Set<Role> = [.approver, .auditor, .admin]
    /// The largest form body accepted.
    static let maxForm = 64 * 1024

    /// The person behind a page: the token's principal, the session, its CSRF token.
    struct Viewer {
        var principal: Principal
        var session: DashboardSession
        var csrf: String
        var name: String { principal.name }
        var role: Role { principal.role }
    }

    /// A page's outcome other than its HTML: go elsewhere (303).
    struct Redirect: Error { var location: String }

    func add(to router: Router<Context>) {
        router.get("/") { _, _ in Self.redirect("/ui/requests") }
        router.get("/ui") { _, _ in Self.redirect("/ui/requests") }
        router.get("/ui/style.css") { _, _ in Self.asset(DashboardTemplates.css, "text/css; charset=utf-8") }
        router.get("/ui/favicon.svg") { _, _ in Self.asset(DashboardTemplates.favicon, "image/svg+xml") }
        router.get("/ui/login") { request, _ in
            await page(request, audited: false) { _ in Self.html(DashboardTemplates.login(error: nil)) }
        }
        router.post("/ui/login") { request, _ in await page(request, audited: false) { _ in try await login(request) } }
        router.post("/ui/logout") { request, _ in
            await page(request) { v in
                try await checkPost(request, v)
                return Self.redirect("/ui/login", cookie: clearCookie())
            }
        }
        router.get("/ui/requests") { request, _ in
            await page(request, roles: Self.requestPages) { v in Self.html(try await requestsPage(request, v!)) }
        }
        router.get("/ui/requests/{id}") { request, context in
            await page(request, roles: Self.requestPages) { v in Self.html(try await requestPage(try id(context), v!)) }
        }
        router.get("/ui/requests/{id}/certificate") { request, context in
            await page(request, roles: Self.certificates) { v in try await certificateDownload(try id(context), v!) }
        }
        router.post("/ui/requests/{id}/approve") { request, context in
            await page(request, roles: Self.decide) { v in
                try await checkPost(request, v)
                let id = try id(context)
                _ = try await visible(id, to: v!)
                _ = try await lethe.approve([id], by: v!.name)
                api.trigger.wake()
                APICallScope.current?.state.withLock { $0.redirectedAfterSuccess = true }
                return Self.redirect("/ui/requests/\(HTML.query(id))")
            }
        }
        router.post("/ui/requests/{id}/reject") { request, context in
            await page(request, roles: Self.decide) { v in
                let form = try await checkPost(request, v)
                let id = try id(context)
                let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                guard !reason.isEmpty else { throw APIError.badRequest("a rejection needs a reason") }
                _ = try await visible(id, to: v!)
                _ = try await lethe.reject(id, by: v!.name, reason: reason)
                APICallScope.current?.state.withLock { $0.redirectedAfterSuccess = true }
                return Self.redirect("/ui/requests/\(HTML.query(id))")
            }
        }
        router.get("/ui/audit") { request, _ in
            await page(request, roles: Self.audit) { v in Self.html(try await auditPage(request, v!)) }
        }
        router.get("/ui/index") { request, _ in
            await page(request, roles: Self.overview) { v in Self.html(try await indexPage(v!)) }
        }
        router.get("/ui/charts") { request, _ in
            await page(request, roles: Self.overview) { v in Self.html(try await chartsPage(v!)) }
        }
    }

    // MARK: - Pages, sessions, errors

    /// Runs a page: resolves the viewer (when `roles` is given: a login is required and the role must be
    /// one of them; `roles: []` with `audited`: any logged-in viewer), marks the call for the access
    /// audit, and turns every error into an HTML page (a missing or ended session: to the login page).
    func page(
        _ request: Request, roles: Set<Role>? = [], audited: Bool = true, _ body: (Viewer?) async throws -> Response
    ) async -> Response {
        do {
            var viewer: Viewer?
            if audited, let roles {
                APICallScope.current?.state.withLock { $0.audited = true }
                viewer = try await self.viewer(request)
                APICallScope.current?.state.withLock { $0.principal = viewer?.principal }
                if !roles.isEmpty, !roles.contains(viewer!.role) {
                    throw APIError.forbidden("role \(viewer!.role.rawValue) may not see this page")
                }
            }
            return try await body(viewer)
        } catch let r as Redirect {
            return Self.redirect(r.location)
        } catch {
            return errorPage(error, request)
        }
    }

    /// The viewer of a request: its session cookie, signed and unexpired, naming a live token.
    func viewer(_ request: Request) async throws -> Viewer {
        guard let value = request.cookies[DashboardSession.cookieName]?.value,
            let session = DashboardSession.parse(value, key: key, now: lethe.now())
        else { throw Redirect(location: "/ui/login") }
        guard let token = try await lethe.tokens().first(where: { $0.id == session.tokenID }), token.isLive else {
            throw Redirect(location: "/ui/login")
        }
        return Viewer(principal: token.principal, session: session, csrf: session.csrfToken(key: key))
    }

    /// `POST /ui/login`: the pasted token, checked as the API checks a bearer token; a session of its id.
    func login(_ request: Request) async throws -> Response {
        // The access audit: every login attempt is a call (a refused one without a principal).
        APICallScope.current?.state.withLock { $0.audited = true }
        let form = try await postForm(request)
        guard originAllowed(request) else { throw APIError.forbidden("the form was not sent from this site (Origin)") }
        let token = (form["token"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, let p = try await api.authenticator.principal(bearer: token),
            let t = try await lethe.tokens().first(where: { $0.isLive && $0.name == p.name && $0.role == p.role })
        else {
            return Self.html(DashboardTemplates.login(error: "Unknown or revoked token."), .unauthorized)
        }
        guard p.role != .stream else {
            return Self.html(DashboardTemplates.login(error: "The stream role has no pages in the dashboard."), .forbidden)
        }
        APICallScope.current?.state.withLock { $0.principal = p }
        let session = DashboardSession.make(tokenID: t.id, now: lethe.now())
        return Self.redirect("/ui/requests", cookie: cookie(session))
    }

    /// The form of a POST after its checks: the session's CSRF token in `csrf` and an `Origin` of this site.
    @discardableResult
    func checkPost(_ request: Request, _ v: Viewer?) async throws -> [String: String] {
        let form = try await postForm(request)
        guard originAllowed(request) else { throw APIError.forbidden("the form was not sent from this site (Origin)") }
        guard let v, v.session.checkCSRF(form["csrf"], key: key) else {
            throw APIError.forbidden("the form's CSRF token is missing or not this session's: reload the page and try again")
        }
        return form
    }

    /// The body of an `application/x-www-form-urlencoded` POST.
    func postForm(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: Self.maxForm)
        return Self.parseForm(String(buffer: buffer))
    }

    /// True when the request's `Origin` is this site: the scheme and `Host` it was sent to, or the
    /// origin of `serve.public_url` (behind a proxy). No `Origin` at all is refused: browsers send it
    /// with every POST of a form.
    func originAllowed(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return false }
        var allowed: [String] = []
        if let host = request.head.authority {
            allowed.append((api.serve.tls == nil ? "http://" : "https://") + host)
        }
        if let u = api.serve.publicURL, let url = URL(string: u), let scheme = url.scheme, let host = url.host {
            allowed.append("\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? ""))
        }
        return allowed.contains(origin)
    }

    /// The cookie of a session just made: HttpOnly, SameSite=Strict, `Secure` under TLS (`secureCookie`), for the session's lifetime.
    func cookie(_ s: DashboardSession) -> String {
        let maxAge = DashboardSession.lifetime / 1000  // a session is made only at login
        return "\(DashboardSession.cookieName)=\(s.cookieValue(key: key)); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (secureCookie ? "; Secure" : "")
    }

    func clearCookie() -> String {
        "\(DashboardSession.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secureCookie ? "; Secure" : "")
    }

    /// `Secure` cookies: under `serve.tls`, or behind a TLS-terminating proxy (`serve.public_url` is `https://…`).
    var secureCookie: Bool { api.serve.tls != nil || (api.serve.publicURL?.lowercased().hasPrefix("https://") ?? false) }

    /// The `{id}` path parameter.
    func id(_ context: Context) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw APIError.badRequest("a request id is required") }
        return id
    }

    /// The request `id`, if the viewer may see it: a requester sees only its own (others: 404, as in the API).
    func visible(_ id: String, to v: Viewer) async throws -> ErasureRequest {
        let r = try await lethe.request(id)
        if v.role == .requester && r.requestedBy != v.name { throw APIError.notFound("no request \(id)") }
        return r
    }

    /// An error as an HTML page with the API's status for it.
    func errorPage(_ error: any Error, _ request: Request) -> Response {
        let e: APIError
        switch error {
        case let a as APIError: e = a
        case let l as LetheError:
            e = APIError(l)
            if e.status == .internalServerError { api.logger.error("\(request.method) \(request.uri.path): \(l.description)") }
        case let h as any HTTPResponseError:
            e = APIError(h.status, "bad_request", h.status == .contentTooLarge ? "the form is larger than the dashboard accepts" : h.status.reasonPhrase)
        default:
            api.logger.error("\(request.method) \(request.uri.path): \(error)")
            e = APIError(.internalServerError, "internal", "internal error (see the service's log)")
        }
        return Self.html(DashboardTemplates.error(status: Int(e.status.code), message: e.message), e.status)
    }

    // MARK: - Responses

    /// The headers of every dashboard page: a strict CSP (no script at all, styles from /ui/style.css only),
    /// no framing, no referrer to other sites, no sniffing, no caching.
    static func securityHeaders(_ h: inout HTTPFields) {
        h[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        h[.init("X-Frame-Options")!] = "DENY"
        h[.init("Referrer-Policy")!] = "same-origin"
        h[.xContentTypeOptions] = "nosniff"
        h[.cacheControl] = "no-store"
    }

    static func html(_ text: String, _ status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "text/html; charset=utf-8"
        securityHeaders(&h)
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String, cookie: String? = nil) -> Response {
        var h = HTTPFields()
        h[.location] = location
        if let cookie { h[.setCookie] = cookie }
        securityHeaders(&h)
        return Response(status: .seeOther, headers: h)
    }

    static func asset(_ text: String, _ type: String) -> Response {
        var h = HTTPFields()
        h[.contentType] = type
        h[.cacheControl] = "max-age=3600"
        h[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// `a=1&b=x+y%21` → `["a": "1", "b": "x y!"]` (the last of a repeated name wins).
    static func parseForm(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }
}
