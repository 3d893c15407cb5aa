import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCore
import LetheEngine
import LetheServer
import NIOCore
import Testing

/// The bearer check on the service's hot path (issue 14): the `Authorization` header parsed on its bytes,
/// and tokens kept by the state's read connections until the database changes — a token revoked, or a
/// new one created, between two calls is seen by the second.
@Suite(.timeLimit(.minutes(10))) struct TokenCacheAPITests {
    func raw(_ client: some TestClientProtocol, authorization: String) async throws -> Reply {
        var h = HTTPFields()
        h[.authorization] = authorization
        h[.contentType] = "application/json"
        return try await client.execute(uri: "/v1/locate", method: .post, headers: h, body: ByteBuffer(string: #"{"subject":"u-1"}"#)) { r in
            Reply(status: Int(r.status.code), headers: r.headers, text: String(buffer: r.body))
        }
    }

    @Test func authorizationHeadersAreParsedAsBefore() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester)
        try await f.app(f.api()).test(.router) { client in
            for ok in ["Bearer \(alice)", "bearer \(alice)", "BEARER \(alice)", "Bearer   \(alice)  ", "Bearer \t\(alice)\t"] {
                #expect(try await raw(client, authorization: ok).status == 200, "\(ok.prefix(12))")
            }
            for (header, why) in [
                ("Basic \(alice)", "must be `Bearer TOKEN`"), ("Bearer", "must be `Bearer TOKEN`"), ("Bearer\(alice)", "must be `Bearer TOKEN`"),
                // HTTP drops a value's trailing spaces: `Bearer   ` arrives as `Bearer`.
                ("Bearer   ", "must be `Bearer TOKEN`"), ("Bearer x\(alice)", "unknown or revoked token"), ("Bear \(alice)", "must be `Bearer TOKEN`"),
            ] {
                let r = try await raw(client, authorization: header)
                #expect(r.status == 401 && r.text.contains(why), "\(header.prefix(12)): \(r.status) \(r.text)")
            }
        }
    }

    @Test func aRevokedTokenIsRefusedAtTheNextCallAndANewOneAcceptedAtTheFirst() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester)
        try await f.app(f.api()).test(.router) { client in
            // Warm: the token is read once and kept by the read connection.
            for _ in 0..<3 { #expect(try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":"u-1"}"#).status == 200) }
            try await f.lethe.revokeToken(name: "alice")
            let refused = try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":"u-1"}"#)
            #expect(refused.status == 401 && refused.errorCode == "unauthorized")
            // The same name again: a new secret works at once, the old one stays refused.
            let again = try await f.token("alice", .approver)
            #expect(try await client.call(.get, "/v1/requests", token: again).status == 200)
            #expect(try await client.call(.get, "/v1/requests", token: alice).status == 401)
        }
    }
}
