import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCore
import LetheEngine
import LetheServer
import Testing

/// Every route × every role (and no token) → the status docs/serve.md documents: 401 without a known
/// token, 403 for a role the route does not allow, and for an allowed role the route's own success
/// (a certificate for a verified request). Each call is a valid one, with real tokens made by the
/// engine, so the status is the role's doing and nothing else's.
@Suite(.timeLimit(.minutes(10))) struct RoleMatrixTests {
    /// The status an allowed caller gets for a valid call.
    static func success(_ route: APIRoute) -> Int {
        switch route {
        case .fileRequest: 201
        default: 200
        }
    }

    static func expected(_ route: APIRoute, _ role: Role?) -> Int {
        guard let roles = route.roles else { return success(route) }
        guard let role else { return 401 }
        return roles.contains(role) ? success(route) : 403
    }

    @Test func everyRouteForEveryRole() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let names: [Role: String] = [.requester: "req", .approver: "appr", .auditor: "aud", .stream: "str", .admin: "adm"]
        var tokens: [Role: String] = [:]
        for role in Role.allCases { tokens[role] = try await f.token(names[role]!, role) }
        let filer = tokens[.requester]!, approver = tokens[.approver]!
        try await f.app().test(.router) { [tokens] client in
            // A verified request filed by `req`, for the certificate (issued for verified requests only).
            let verified = try await client.file("u-1", token: filer)
            #expect(try await client.call(.post, "/v1/requests/\(verified)/approve", token: approver).status == 200)
            #expect(try await f.lethe.run().verifications.allSatisfy(\.clean))
            var n = 0
            for route in APIRoute.all {
                for role in [nil] + Role.allCases.map(Optional.some) {
                    n += 1
                    let r = try await client.callRoute(route, n: n, verified: verified, filer: filer, token: role.map { tokens[$0]! })
                    #expect(
                        r.status == Self.expected(route, role),
                        "\(route.method) \(route.path) as \(role?.rawValue ?? "no token"): \(r.status) \(r.text.prefix(200))")
                    if r.status >= 400 {
                        #expect(r.errorCode != nil, "\(route.method) \(route.path): not the error shape: \(r.text.prefix(200))")
                    }
                    if r.status == 401 { #expect(r.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true) }
                }
            }
        }
    }
}
