import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCore
import LetheEngine
import LetheServer
import Testing

@Suite(.timeLimit(.minutes(10))) struct APITests {
    @Test func fileApproveRunAndShowTheVerifiedRequest() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        let api = f.api()
        try await f.app(api).test(.router) { client in
            let filed = try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects":["u-2"],"reason":"ticket 1"}"#)
            #expect(filed.status == 201)
            guard case .object(let o)? = filed.json, case .array(let rs)? = o["requests"], case .object(let r)? = rs.first,
                case .string(let id)? = r["id"]
            else { Issue.record("no request in \(filed.text)"); return }
            // The same report the CLI prints: the subject as its keyed hash, never the id.
            #expect(r["status"] == .string("planned") && r["objects"] == .int(1) && r["rows"] == .int(1))
            #expect(r["subject_key"] == .string(f.lethe.key(for: SubjectID("u-2")).hex))
            #expect(!filed.text.contains("u-2"))
            let approved = try await client.call(.post, "/v1/requests/\(id)/approve", token: bob)
            #expect(approved.status == 200 && approved.string("status") == "approved" && approved.string("decided_by") == "bob")
            // The scheduler's run (one batch), then the request as `lethe show --json` prints it.
            let report = try await Lethe.$runBatchMax.withValue(10) { try await f.lethe.run() }
            #expect(report.erased == [id])
            let shown = try await client.call(.get, "/v1/requests/\(id)", token: alice)
            #expect(shown.status == 200 && shown.string("status") == "verified")
            guard case .object(let s)? = shown.json else { return }
            #expect(s["plan"] != nil && s["plan"] != .null && s["verification"] != nil && s["verification"] != .null)
            let located = try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":"u-2"}"#)
            #expect(located.status == 200 && located.json == .array([]))
            let other = try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":{"fields":{"uid":"u-3","tenant":"t1"}}}"#)
            #expect(other.status == 200)
            if case .array(let entries)? = other.json { #expect(entries.count == 1) } else { Issue.record("locate: \(other.text)") }
        }
    }

    @Test func errorsHaveOneShapeAndTheRightStatus() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), admin = try await f.token("root", .admin), bob = try await f.token("bob", .approver)
        try await f.app(f.api(maxBody: 4096)).test(.router) { client in
            func expectError(_ r: Reply, _ status: Int, _ code: String, _ what: String) {
                #expect(r.status == status && r.errorCode == code, "\(what): \(r.status) \(r.text)")
            }
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects": ["#), 400, "bad_request", "malformed JSON")
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: #"{"reason":"x"}"#), 400, "bad_request", "missing subjects")
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects":[]}"#), 400, "bad_request", "no subjects")
            expectError(try await client.call(.post, "/v1/requests", token: alice), 400, "bad_request", "no body")
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: "[1]"), 400, "bad_request", "not an object")
            expectError(
                try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects":["u-1"],"resaon":"x"}"#), 400, "bad_request", "unknown field")
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects":[7]}"#), 400, "bad_request", "a number subject")
            expectError(
                try await client.call(.post, "/v1/requests", token: alice, body: #"{"subjects":["u-1"],"reason":"about u-1"}"#), 400, "bad_request",
                "the reason holds the id")
            expectError(
                try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":{"fields":{"email":"a@b"}}}"#), 422,
                "unknown_subject_field", "unknown subject field")
            expectError(
                try await client.call(.post, "/v1/locate", token: alice, body: #"{"subject":["a","b","c"]}"#), 422, "subject_mismatch",
                "three parts where datasets have one or two")
            expectError(try await client.call(.get, "/v1/requests?cursor=bm9wZQ", token: bob), 400, "bad_request", "bad cursor")
            expectError(try await client.call(.get, "/v1/requests?cursor=cjE6", token: bob), 400, "bad_request", "empty cursor id")
            expectError(try await client.call(.get, "/v1/requests?limit=0", token: bob), 400, "bad_request", "limit 0")
            expectError(try await client.call(.get, "/v1/requests?status=gone", token: bob), 400, "bad_request", "unknown status")
            expectError(try await client.call(.get, "/v1/audit?after=-1", token: admin), 400, "bad_request", "negative after")
            expectError(try await client.call(.get, "/v1/deletions?since=yesterday", token: admin), 400, "bad_request", "bad since")
            expectError(try await client.call(.get, "/v1/requests/nope", token: bob), 404, "not_found", "unknown request")
            expectError(try await client.call(.get, "/v2/nothing", token: bob), 404, "not_found", "unknown route")
            let wrong = try await client.call(.delete, "/v1/requests", token: bob)
            expectError(wrong, 405, "method_not_allowed", "DELETE on a GET/POST route")
            #expect(wrong.headers[.allow] == "POST, GET")
            let big = #"{"subjects":["u-1"],"reason":""# + String(repeating: "x", count: 5000) + #""}"#
            expectError(try await client.call(.post, "/v1/requests", token: alice, body: big), 413, "payload_too_large", "body beyond the limit")
            expectError(try await client.call(.get, "/v1/requests", token: "t-nobody"), 401, "unauthorized", "unknown token")
            _ = try await f.lethe.revokeToken(name: "bob")
            expectError(try await client.call(.get, "/v1/requests", token: bob), 401, "unauthorized", "revoked token")
            expectError(try await client.call(.post, "/v1/requests/x/reject", token: admin, body: "{}"), 400, "bad_request", "reject without reason")

            // Four eyes on the principal's name: an admin that filed can never approve.
            let own = try await client.file("u-3", token: admin)
            expectError(try await client.call(.post, "/v1/requests/\(own)/approve", token: admin), 409, "four_eyes", "the filer approving")
            // Wrong state: approving twice, rejecting an approved request.
            let other = try await f.token("carol", .approver)
            #expect(try await client.call(.post, "/v1/requests/\(own)/approve", token: other).status == 200)
            expectError(try await client.call(.post, "/v1/requests/\(own)/approve", token: other), 409, "conflict", "approving an approved request")
        }
    }

    @Test func requestsArePagedWithACursorAndRequestersSeeTheirOwn() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), dave = try await f.token("dave", .requester), bob = try await f.token("bob", .approver)
        try await f.app().test(.router) { client in
            var mine: [String] = []
            for i in 1...5 { mine.append(try await client.file("p-\(i)", token: alice)) }
            let theirs = try await client.file("p-9", token: dave)
            func page(_ token: String, _ cursor: String?) async throws -> (ids: [String], next: String?) {
                let r = try await client.call(.get, "/v1/requests?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: token)
                #expect(r.status == 200, "\(r.text)")
                guard case .object(let o)? = r.json, case .array(let rs)? = o["requests"] else { return ([], nil) }
                let ids = rs.compactMap { v -> String? in if case .object(let x) = v, case .string(let id)? = x["id"] { return id } else { return nil } }
                if case .string(let c)? = o["next_cursor"] { return (ids, c) }
                return (ids, nil)
            }
            func all(_ token: String) async throws -> [String] {
                var out: [String] = [], cursor: String? = nil
                repeat {
                    let p = try await page(token, cursor)
                    #expect(p.ids.count <= 2)
                    out += p.ids
                    cursor = p.next
                } while cursor != nil
                return out
            }
            #expect(try await all(bob) == mine + [theirs])
            #expect(try await all(alice) == mine)
            #expect(try await all(dave) == [theirs])
            // A requester cannot read another's request (404: its existence is not told).
            #expect(try await client.call(.get, "/v1/requests/\(theirs)", token: alice).status == 404)
        }
    }

    @Test func auditDeletionsIndexAndMetrics() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver), admin = try await f.token("root", .admin)
        try await f.app().test(.router) { client in
            let id = try await client.file("u-4", token: alice)
            #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: bob).status == 200)
            _ = try await f.lethe.run()
            let head = try await client.call(.get, "/v1/audit/head", token: admin)
            guard case .object(let h)? = head.json, case .int(let seq)? = h["seq"] else { Issue.record("head: \(head.text)"); return }
            #expect(seq > 3)
            // The log in pages: every entry once, in order, ending at the head.
            var seqs: [Int64] = [], after: Int64 = 0
            while true {
                let r = try await client.call(.get, "/v1/audit?after=\(after)&limit=2", token: admin)
                guard case .object(let o)? = r.json, case .array(let es)? = o["entries"] else { Issue.record("audit: \(r.text)"); return }
                for case .object(let e) in es { if case .int(let s)? = e["seq"] { seqs.append(s) } }
                guard case .int(let n)? = o["next_after"] else { break }
                after = n
            }
            #expect(seqs == Array(1...seq))
            let deletions = try await client.call(.get, "/v1/deletions", token: admin)
            guard case .object(let d)? = deletions.json, case .array(let added)? = d["added"] else { Issue.record("deletions: \(deletions.text)"); return }
            #expect(added.count == 1)
            let index = try await client.call(.post, "/v1/index", token: admin, body: #"{"datasets":["ev"]}"#)
            #expect(index.status == 200 && index.text.contains(#""objects_seen""#))
            #expect(try await client.call(.post, "/v1/index", token: admin, body: #"{"datasets":["nope"]}"#).status == 400)
            let metrics = try await client.call(.get, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains(#"lethe_requests{status="verified"} 1"#), "\(metrics.text.prefix(2000))")
            #expect(metrics.text.contains("lethe_request_time_to_verified_seconds_count 1"))
            #expect(metrics.text.contains("lethe_requests_past_deadline 0"))
            #expect(metrics.text.contains("lethe_index_entries"))
            // Latency by route template, never the concrete path (which holds an id).
            #expect(metrics.text.contains(#"lethe_http_request_duration_seconds_bucket{route="/v1/requests/{id}/approve""#))
            #expect(!metrics.text.contains(id))
            #expect(try await client.call(.get, "/healthz").status == 200)
            #expect(try await client.call(.get, "/readyz").status == 200)
            try FileManager.default.removeItem(atPath: f.dir + "/lake")
            let notReady = try await client.call(.get, "/readyz")
            #expect(notReady.status == 503 && notReady.errorCode == "unavailable")
        }
    }

    @Test func aRunTakesAtMostBatchMaxRequests() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        try await f.app().test(.router) { client in
            var ids: [String] = []
            for u in 1...3 { ids.append(try await client.file("u-\(u)", token: alice)) }
            for id in ids { #expect(try await client.call(.post, "/v1/requests/\(id)/approve", token: bob).status == 200) }
        }
        let first = try await Lethe.$runBatchMax.withValue(2) { try await f.lethe.run() }
        #expect(first.erased.count == 2)
        #expect(try await f.lethe.requests(status: .approved).count == 1)
        let second = try await Lethe.$runBatchMax.withValue(2) { try await f.lethe.run() }
        #expect(second.erased.count == 1)
    }
}
