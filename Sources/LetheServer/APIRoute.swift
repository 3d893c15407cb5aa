public import Hummingbird
public import LetheCore

/// One route of the HTTP API: its method, its path template (as `/openapi.yaml` writes it) and who may
/// call it. The one table the router, the role checks, the tests and the docs agree on.
public struct APIRoute: Sendable, Hashable {
    public var method: HTTPRequest.Method
    /// The path template, parameters in braces: `/v1/requests/{id}`.
    public var path: String
    /// The roles that may call it; nil: anyone, without a token.
    public var roles: Set<Role>?

    public init(_ method: HTTPRequest.Method, _ path: String, _ roles: Set<Role>?) {
        self.method = method; self.path = path; self.roles = roles
    }

    // Admin may do everything any other role may; four eyes still binds it (the filer never approves).
    static let fileRequests: Set<Role> = [.requester, .admin]
    static let readRequests: Set<Role> = [.requester, .approver, .auditor, .admin]
    static let decide: Set<Role> = [.approver, .admin]
    static let certificates: Set<Role> = [.requester, .approver, .auditor, .admin]
    static let locate: Set<Role> = [.requester, .approver, .admin]
    static let audit: Set<Role> = [.auditor, .admin]
    static let stream: Set<Role> = [.stream, .admin]
    static let admin: Set<Role> = [.admin]

    public static let fileRequest = APIRoute(.post, "/v1/requests", fileRequests)
    public static let listRequests = APIRoute(.get, "/v1/requests", readRequests)
    public static let showRequest = APIRoute(.get, "/v1/requests/{id}", readRequests)
    public static let approve = APIRoute(.post, "/v1/requests/{id}/approve", decide)
    public static let reject = APIRoute(.post, "/v1/requests/{id}/reject", decide)
    public static let certificate = APIRoute(.get, "/v1/requests/{id}/certificate", certificates)
    public static let locateSubject = APIRoute(.post, "/v1/locate", locate)
    public static let auditLog = APIRoute(.get, "/v1/audit", audit)
    public static let auditHead = APIRoute(.get, "/v1/audit/head", audit)
    public static let deletions = APIRoute(.get, "/v1/deletions", stream)
    public static let index = APIRoute(.post, "/v1/index", admin)
    public static let keys = APIRoute(.get, "/v1/keys", nil)
    public static let healthz = APIRoute(.get, "/healthz", nil)
    public static let readyz = APIRoute(.get, "/readyz", nil)
    public static let metrics = APIRoute(.get, "/metrics", nil)
    public static let openapi = APIRoute(.get, "/openapi.yaml", nil)

    /// Every route, in the order `/openapi.yaml` lists them.
    public static let all: [APIRoute] = [
        fileRequest, listRequests, showRequest, approve, reject, certificate, locateSubject, auditLog, auditHead,
        deletions, index, keys, healthz, readyz, metrics, openapi,
    ]

    /// The template as Hummingbird's router takes it (`{id}` is a capture in both).
    var routerPath: RouterPath { RouterPath(path) }

    /// Whether a concrete path (`/v1/requests/abc`) matches this template.
    func matches(path p: Substring) -> Bool {
        let a = path.split(separator: "/"), b = p.split(separator: "/")
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { t, s in t.hasPrefix("{") || t == s }
    }
}
