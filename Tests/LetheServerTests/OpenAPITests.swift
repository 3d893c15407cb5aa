import Foundation
import Hummingbird
import HummingbirdTesting
import LetheServer
import Testing
import Yams

/// `/openapi.yaml` is true: it is served, it parses, it is OpenAPI 3.1, it lists every route the router
/// has with its method (and no other), every protected route names the bearer scheme and its 401 and
/// 403, and every `$ref` points at a component that exists.
@Suite struct OpenAPITests {
    @Test func theDocumentListsEveryRouteAndOnlyThem() async throws {
        let f = try await ServerFixture(users: 1)
        defer { f.remove() }
        let text = try await f.app().test(.router) { client in
            let r = try await client.call(.get, "/openapi.yaml")
            #expect(r.status == 200 && r.headers[.contentType] == "application/yaml")
            return r.text
        }
        guard let doc = try Yams.load(yaml: text) as? [String: Any], let paths = doc["paths"] as? [String: Any] else {
            Issue.record("not a YAML mapping with paths")
            return
        }
        #expect(doc["openapi"] as? String == "3.1.0")
        var documented = Set<String>()
        for (path, item) in paths {
            for (method, op) in (item as? [String: Any]) ?? [:] {
                documented.insert("\(method.uppercased()) \(path)")
                guard let op = op as? [String: Any], let responses = op["responses"] as? [String: Any] else {
                    Issue.record("\(method) \(path): no responses")
                    continue
                }
                let route = APIRoute.all.first { $0.path == path && $0.method.rawValue == method.uppercased() }
                if route?.roles != nil {
                    #expect(op["security"] == nil, "\(method) \(path) is protected: it must not override the bearer scheme")
                    #expect(responses["401"] != nil && responses["403"] != nil, "\(method) \(path): 401 and 403 are not documented")
                } else {
                    #expect((op["security"] as? [Any])?.isEmpty == true, "\(method) \(path) is public: `security: []`")
                }
            }
        }
        let routed = Set(APIRoute.all.map { "\($0.method.rawValue) \($0.path)" })
        #expect(
            documented == routed, "documented but not routed: \(documented.subtracting(routed)); routed but not documented: \(routed.subtracting(documented))")
        // Every reference resolves.
        let refs = text.matches(of: /\$ref: '#\/components\/(\w+)\/(\w+)'/).map { (String($0.1), String($0.2)) }
        let components = doc["components"] as? [String: Any] ?? [:]
        #expect(!refs.isEmpty)
        for (kind, name) in refs {
            #expect((components[kind] as? [String: Any])?[name] != nil, "dangling $ref \(kind)/\(name)")
        }
    }
}
