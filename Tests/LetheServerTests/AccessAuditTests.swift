import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCatalog
import LetheCore
import LetheEngine
import LetheRuntime
import LetheServer
import Testing

/// "Every call is audited with the principal": the calls of authenticated routes (refused ones too)
/// reach the audit log through `AccessAuditService`, batched into `api_calls` entries; public routes
/// (health, metrics) do not; names go in by reference and nothing a caller sent in a URL or body does.
@Suite(.timeLimit(.minutes(10))) struct AccessAuditTests {
    @Test func callsOfAuthenticatedRoutesAreAuditedWithTheirPrincipal() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver), root = try await f.token("root", .admin)
        let access = AccessAuditService(lethe: f.lethe)
        var api = f.api()
        api.access = access
        let id = try await f.app(api).test(.router) { client in
            let id = try await client.file("u-2", token: alice)
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: alice).status == 403)  // a requester may not approve
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: bob).status == 200)
            #expect(try await client.call(.get, "/v1/requests").status == 401)
            #expect(try await client.call(.get, "/v1/requests/r-someone%40example.com", token: bob).status == 404)
            #expect(try await client.call(.post, "/v1/locate", token: bob, body: #"{"subject":"u-3"}"#).status == 200)
            #expect(try await client.call(.get, "/healthz").status == 200)
            #expect(try await client.call(.get, "/metrics").status == 200)
            await access.flush()
            // An auditor reading the log through the API sees the names (resolved from their references).
            let r = try await client.call(.get, "/v1/audit?after=0&limit=1000", token: root)
            #expect(r.status == 200 && r.text.contains("api_calls") && r.text.contains("alice"))
            return id
        }
        // As stored: the chain's entries.
        var calls: [JSONValue] = [], details: [String] = []
        for e in try await f.lethe.meta.audit.entries(from: 1, limit: 1_000) where e.event == "api_calls" {
            details.append(e.details)
            guard case .object(let d) = try JSONValue.parse(Array(e.details.utf8)), case .array(let cs)? = d["calls"] else { continue }
            calls += cs
        }
        // The request the approvals were about finds the entry.
        #expect(try await f.lethe.meta.audit.entries(requestID: id).contains { $0.event == "api_calls" })
        // Six calls of authenticated routes; /healthz and /metrics are not audited.
        #expect(calls.count == 6, "\(details)")
        let routes = calls.compactMap { c -> String? in
            guard case .array(let a) = c, a.count == 6, case .string(let route) = a[3] else { return nil }
            return route
        }
        #expect(routes.filter { $0 == "/v1/requests/{id}/approve" }.count == 2)
        #expect(!routes.contains("/healthz") && !routes.contains("/metrics"))
        let statuses = calls.compactMap { c -> Int64? in
            guard case .array(let a) = c, case .int(let s) = a[4] else { return nil }
            return s
        }
        #expect(statuses.sorted() == [200, 200, 201, 401, 403, 404])
        // The 401 has no principal; the 404's id (text from a URL) is not recorded; names only by reference.
        let text = details.joined()
        #expect(!text.contains("someone") && !text.contains("alice") && !text.contains("\"bob\"") && !text.contains("u-3"), "\(text)")
    }
}
