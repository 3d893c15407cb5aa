import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCore
import LetheEngine
import LetheRuntime
import LetheServer
import Logging
import NIOCore

/// A lake of two JSON Lines datasets (`ev`: subject `user.id`; `pairs`: composite `tenant`, `uid`) with
/// its SQLite state in a temporary folder, opened the way `lethe serve` opens it; its tokens are the
/// engine's (`Lethe.createToken`, as `lethe token create`), and the API authenticates with them.
struct ServerFixture {
    let dir: String
    let lethe: Lethe

    static let yaml = """
        lake: ./lake
        state: ./state
        datasets:
          - {name: ev, path: ev, format: jsonl, subject: user.id}
          - {name: pairs, path: pairs, format: jsonl, subject: [tenant, uid]}
        """

    init(users: Int = 6) async throws {
        dir = NSTemporaryDirectory() + "lethe-server-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/lake/ev", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/lake/pairs", withIntermediateDirectories: true)
        var ev = "", pairs = ""
        for u in 1...users {
            ev += #"{"n":\#(u),"user":{"id":"u-\#(u)"}}"# + "\n"
            pairs += #"{"tenant":"t1","uid":"u-\#(u)"}"# + "\n"
        }
        try ev.write(toFile: dir + "/lake/ev/a.jsonl", atomically: true, encoding: .utf8)
        try pairs.write(toFile: dir + "/lake/pairs/a.jsonl", atomically: true, encoding: .utf8)
        try Self.yaml.write(toFile: dir + "/lethe.yaml", atomically: true, encoding: .utf8)
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        lethe = try Runtime.open(config: try LakeConfig.load(path: dir + "/lethe.yaml"), logger: quiet)
        _ = try await lethe.index()
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    func api(serve: ServeConfig = ServeConfig(), maxBody: Int = 1 << 20) -> LetheAPI {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        var api = LetheAPI(lethe: lethe, authenticator: lethe, serve: serve, logger: quiet)
        api.maxBody = maxBody
        return api
    }

    func app(_ api: LetheAPI? = nil) -> some ApplicationProtocol {
        Application(router: (api ?? self.api()).router())
    }

    /// A real token for `name` with `role`, made by the engine as `lethe token create` makes it.
    func token(_ name: String, _ role: Role) async throws -> String {
        try await lethe.createToken(name: name, role: role).secret
    }
}

/// A response's parts the tests look at.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPFields
    var text: String
    var json: JSONValue? { try? JSONValue.parse(Array(text.utf8)) }
    /// `error.code` of an error body.
    var errorCode: String? {
        guard case .object(let o)? = json, case .object(let e)? = o["error"], case .string(let c)? = e["code"] else { return nil }
        return c
    }
    /// A top-level string field.
    func string(_ key: String) -> String? {
        guard case .object(let o)? = json, case .string(let s)? = o[key] else { return nil }
        return s
    }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, body: String? = nil) async throws -> Reply {
        var h = HTTPFields()
        if let token { h[.authorization] = "Bearer \(token)" }
        if body != nil { h[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: h, body: body.map { ByteBuffer(string: $0) }) { r in
            Reply(status: Int(r.status.code), headers: r.headers, text: String(buffer: r.body))
        }
    }

    /// Files one request for `subject` as `token`; its id.
    /// Calls `route` with `token` the way the role matrices do: a route naming a request gets a fresh
    /// one filed by `filer` (the certificate route the `verified` one), with a valid body where it needs one.
    func callRoute(_ route: APIRoute, n: Int, verified: String, filer: String, token: String?) async throws -> Reply {
        var path = route.path
        if route == .certificate {
            path = path.replacingOccurrences(of: "{id}", with: verified)
        } else if path.contains("{id}") {
            path = path.replacingOccurrences(of: "{id}", with: try await file("m-\(n)", token: filer))
        }
        let body: String? =
            switch route {
            case .fileRequest: #"{"subjects":["s-\#(n)"]}"#
            case .reject: #"{"reason":"not ours"}"#
            case .locateSubject: #"{"subject":"u-1"}"#
            default: nil
            }
        return try await call(route.method, path, token: token, body: body)
    }

    func file(_ subject: String, token: String) async throws -> String {
        let r = try await call(.post, "/v1/requests", token: token, body: #"{"subjects":["\#(subject)"],"reason":"ticket 7"}"#)
        guard r.status == 201, case .object(let o)? = r.json, case .array(let rs)? = o["requests"], case .object(let first)? = rs.first,
            case .string(let id)? = first["id"]
        else { throw FixtureError(message: "filing failed: \(r.status) \(r.text)") }
        return id
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
