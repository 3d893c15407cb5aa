import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCatalog
import LetheCore
import LetheEngine
import LetheRuntime
import LetheServer
import NIOCore
import Testing

/// The dashboard (docs/dashboard.md): login by token into a signed session cookie, pages by role, CSRF
/// and Origin on every POST, four eyes, HTML escaping, no raw subject id, revocation and expiry, the
/// access audit; the SVG builders on small inputs.
@Suite(.timeLimit(.minutes(10))) struct DashboardTests {
    /// A browser-like client of the dashboard: its session cookie, the site's origin.
    struct Browser {
        var cookie: String?
        static let origin = "http://localhost"  // the test client's authority

        func get(_ client: some TestClientProtocol, _ uri: String) async throws -> Reply {
            var h = HTTPFields()
            if let cookie { h[.cookie] = cookie }
            return try await client.execute(uri: uri, method: .get, headers: h, body: nil) { r in
                Reply(status: Int(r.status.code), headers: r.headers, text: String(buffer: r.body))
            }
        }

        func post(_ client: some TestClientProtocol, _ uri: String, _ form: [String: String], origin: String? = Browser.origin) async throws -> Reply {
            var h = HTTPFields()
            h[.contentType] = "application/x-www-form-urlencoded"
            if let origin { h[.origin] = origin }
            if let cookie { h[.cookie] = cookie }
            let body = form.map { k, v in "\(k)=\(v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            return try await client.execute(uri: uri, method: .post, headers: h, body: ByteBuffer(string: body)) { r in
                Reply(status: Int(r.status.code), headers: r.headers, text: String(buffer: r.body))
            }
        }

        /// Logs in with `token`: the session cookie (`name=value`) and the Set-Cookie header.
        static func login(_ client: some TestClientProtocol, _ token: String) async throws -> (Browser, String) {
            let r = try await Browser().post(client, "/ui/login", ["token": token])
            guard r.status == 303, let set = r.headers[.setCookie], let pair = set.split(separator: ";").first else {
                throw FixtureError(message: "login failed: \(r.status) \(r.text)")
            }
            return (Browser(cookie: String(pair)), set)
        }

        /// The CSRF token of the page's first form.
        static func csrf(_ page: String) -> String? {
            guard let m = page.firstMatch(of: /name="csrf" value="([^"]+)"/) else { return nil }
            return String(m.1)
        }
    }

    @Test func loginGivesASignedHttpOnlyStrictCookieWithoutTheTokenAndPagesCarryTheSecurityHeaders() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let bob = try await f.token("bob", .approver)
        try await f.app().test(.router) { client in
            let root = try await Browser().get(client, "/")
            #expect(root.status == 303 && root.headers[.location] == "/ui/requests")
            let anonymous = try await Browser().get(client, "/ui/requests")
            #expect(anonymous.status == 303 && anonymous.headers[.location] == "/ui/login")
            let form = try await Browser().get(client, "/ui/login")
            #expect(form.status == 200 && form.text.contains(#"name="token""#))

            let wrong = try await Browser().post(client, "/ui/login", ["token": "lethe_" + String(repeating: "x", count: 43)])
            #expect(wrong.status == 401 && wrong.headers[.setCookie] == nil)
            let noOrigin = try await Browser().post(client, "/ui/login", ["token": bob], origin: nil)
            #expect(noOrigin.status == 403 && noOrigin.headers[.setCookie] == nil)

            let (b, set) = try await Browser.login(client, bob)
            #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age=28800") && !set.contains("Secure"))
            #expect(!set.contains(bob) && !set.contains(String(bob.dropFirst(6).prefix(20))), "the cookie holds no token")
            let page = try await b.get(client, "/ui/requests")
            #expect(page.status == 200 && page.text.contains("bob") && page.headers[.contentType] == "text/html; charset=utf-8")
            let csp = page.headers[.contentSecurityPolicy] ?? ""
            #expect(csp.hasPrefix("default-src 'none'") && csp.contains("style-src 'self'") && !csp.contains("script"))
            #expect(page.headers[.init("X-Frame-Options")!] == "DENY" && page.headers[.init("Referrer-Policy")!] == "same-origin")
            #expect(!page.text.contains("<script") && !page.text.contains(" style="))
            let css = try await b.get(client, "/ui/style.css")
            #expect(css.status == 200 && css.headers[.contentType] == "text/css; charset=utf-8")

            // Logout: a POST with the CSRF token clears the cookie.
            let out = try await b.post(client, "/ui/logout", ["csrf": Browser.csrf(page.text) ?? ""])
            #expect(out.status == 303 && out.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func underTLSTheCookieIsSecureAndTheOriginIsHTTPS() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let bob = try await f.token("bob", .approver)
        var serve = ServeConfig()
        serve.tls = .init(cert: "unused.pem", key: "unused.pem")  // the router alone: no TLS is loaded
        try await f.app(f.api(serve: serve)).test(.router) { client in
            #expect(try await Browser().post(client, "/ui/login", ["token": bob]).status == 403)  // http://localhost is not this site
            let r = try await Browser().post(client, "/ui/login", ["token": bob], origin: "https://localhost")
            #expect(r.status == 303 && r.headers[.setCookie]?.hasSuffix("; Secure") == true)
        }
        // Behind a TLS-terminating proxy: `public_url` names the origin, and the cookie is Secure.
        var proxied = ServeConfig()
        proxied.publicURL = "https://lethe.example.com"
        try await f.app(f.api(serve: proxied)).test(.router) { client in
            #expect(try await Browser().post(client, "/ui/login", ["token": bob], origin: "https://elsewhere.example.com").status == 403)
            let r = try await Browser().post(client, "/ui/login", ["token": bob], origin: "https://lethe.example.com")
            #expect(r.status == 303 && r.headers[.setCookie]?.hasSuffix("; Secure") == true)
        }
    }

    @Test func approveAndRejectNeedTheSessionsCSRFTokenAndThisOrigin() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        try await f.app().test(.router) { client in
            let id = try await client.file("u-2", token: alice)
            let (b, _) = try await Browser.login(client, bob)
            let page = try await b.get(client, "/ui/requests/\(id)")
            #expect(page.status == 200 && page.text.contains(#"id="approve""#))
            let csrf = try #require(Browser.csrf(page.text))

            #expect(try await b.post(client, "/ui/requests/\(id)/approve", [:]).status == 403)
            #expect(try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": "forged"]).status == 403)
            #expect(try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": csrf], origin: "http://evil.example").status == 403)
            #expect(try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": csrf], origin: nil).status == 403)
            // Another session's token does not do either.
            let (other, _) = try await Browser.login(client, bob)
            let otherCSRF = try #require(Browser.csrf(try await other.get(client, "/ui/requests/\(id)").text))
            #expect(otherCSRF != csrf)
            #expect(try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": otherCSRF]).status == 403)
            #expect(try await f.lethe.request(id).status == .planned)

            let ok = try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": csrf])
            #expect(ok.status == 303 && ok.headers[.location] == "/ui/requests/\(id)")
            let r = try await f.lethe.request(id)
            #expect(r.status == .approved && r.decidedBy == "bob")

            // Reject: a reason is required; it renders as text.
            let id2 = try await client.file("u-3", token: alice)
            #expect(try await b.post(client, "/ui/requests/\(id2)/reject", ["csrf": csrf, "reason": "  "]).status == 400)
            let evil = #"<script>alert("x")</script> & more"#
            #expect(try await b.post(client, "/ui/requests/\(id2)/reject", ["csrf": csrf, "reason": evil]).status == 303)
            #expect(try await f.lethe.request(id2).status == .rejected)
            let shown = try await b.get(client, "/ui/requests/\(id2)")
            #expect(shown.text.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more"))
            #expect(!shown.text.contains("<script"))
            // No raw subject id in any page of the request (nor in the list).
            let approved = try await b.get(client, "/ui/requests/\(id)"), list = try await b.get(client, "/ui/requests")
            #expect(!shown.text.contains("u-3") && !approved.text.contains("u-2") && !list.text.contains("u-2"))
        }
    }

    @Test func rolesApplyAsInTheAPIAndTheFilerNeverApproves() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), carol = try await f.token("carol", .requester)
        let root = try await f.token("root", .admin), audra = try await f.token("audra", .auditor)
        let stream = try await f.token("spark", .stream)
        try await f.app().test(.router) { client in
            let mine = try await client.file("u-1", token: alice)
            let theirs = try await client.file("u-4", token: carol)
            let byRoot = try await client.file("u-5", token: root)

            // A requester: only its own requests, no decision forms, no audit, charts or index.
            let (a, _) = try await Browser.login(client, alice)
            let list = try await a.get(client, "/ui/requests")
            #expect(list.text.contains(mine) && !list.text.contains(theirs) && !list.text.contains(byRoot))
            #expect(try await a.get(client, "/ui/requests/\(theirs)").status == 404)
            let own = try await a.get(client, "/ui/requests/\(mine)")
            #expect(own.status == 200 && !own.text.contains(#"id="approve""#) && !own.text.contains(#"id="reject""#))
            for path in ["/ui/audit", "/ui/index", "/ui/charts"] { #expect(try await a.get(client, path).status == 403, "\(path)") }
            let csrfA = try #require(Browser.csrf(own.text))
            #expect(try await a.post(client, "/ui/requests/\(theirs)/approve", ["csrf": csrfA]).status == 403)

            // An admin who filed a request: no approve button on it (four eyes); the engine refuses a forged POST.
            let (r, _) = try await Browser.login(client, root)
            let page = try await r.get(client, "/ui/requests/\(byRoot)")
            #expect(page.text.contains(#"id="four-eyes""#) && !page.text.contains(#"id="approve""#) && page.text.contains(#"id="reject""#))
            let csrfR = try #require(Browser.csrf(page.text))
            #expect(try await r.post(client, "/ui/requests/\(byRoot)/approve", ["csrf": csrfR]).status == 409)
            #expect(try await f.lethe.request(byRoot).status == .planned)
            #expect(try await r.get(client, "/ui/requests/\(theirs)").text.contains(#"id="approve""#))

            // An auditor: every request and the audit log (chain verified), but no decisions.
            let (au, _) = try await Browser.login(client, audra)
            let audit = try await au.get(client, "/ui/audit")
            #expect(audit.status == 200 && audit.text.contains(#"id="chain""#) && audit.text.contains("Chain verified"))
            let seen = try await au.get(client, "/ui/requests/\(theirs)")
            #expect(seen.status == 200 && !seen.text.contains(#"id="approve""#) && seen.text.contains("Audit trail"))
            let csrfAu = try #require(Browser.csrf(seen.text))
            #expect(try await au.post(client, "/ui/requests/\(theirs)/approve", ["csrf": csrfAu]).status == 403)
            #expect(try await au.get(client, "/ui/index").status == 200)

            // The stream role has no pages.
            let s = try await Browser().post(client, "/ui/login", ["token": stream])
            #expect(s.status == 403 && s.headers[.setCookie] == nil)
        }
    }

    @Test func revokingTheTokenOrExpiryEndsTheSession() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let bob = try await f.token("bob", .approver)
        try await f.app().test(.router) { client in
            let (b, _) = try await Browser.login(client, bob)
            #expect(try await b.get(client, "/ui/requests").status == 200)
            // An expired session, or one signed with another key, or altered: back to the login page.
            let key = DashboardSession.key(tokenKey: f.lethe.secrets.tokenKey)
            let token = try #require(try await f.lethe.tokens().first { $0.name == "bob" })
            let expired = DashboardSession(tokenID: token.id, expiresAt: f.lethe.now() - 1, nonce: "n")
            let stale = Browser(cookie: "lethe_session=\(expired.cookieValue(key: key))")
            #expect(try await stale.get(client, "/ui/requests").headers[.location] == "/ui/login")
            let live = DashboardSession(tokenID: token.id, expiresAt: f.lethe.now() + 60_000, nonce: "n")
            #expect(try await Browser(cookie: "lethe_session=\(live.cookieValue(key: key))").get(client, "/ui/requests").status == 200)
            let forged = live.cookieValue(key: Array(repeating: 7, count: 32))
            #expect(try await Browser(cookie: "lethe_session=\(forged)").get(client, "/ui/requests").status == 303)
            let altered = live.cookieValue(key: key).replacingOccurrences(of: "v1.\(token.id).", with: "v1.\(token.id + 1).")
            #expect(try await Browser(cookie: "lethe_session=\(altered)").get(client, "/ui/requests").status == 303)
            // Revocation: the next page sends the session to the login page at once.
            try await f.lethe.revokeToken(name: "bob")
            let after = try await b.get(client, "/ui/requests")
            #expect(after.status == 303 && after.headers[.location] == "/ui/login")
        }
    }

    @Test func pagesAreInTheAccessAuditWithTheirPrincipal() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        let access = AccessAuditService(lethe: f.lethe)
        var api = f.api()
        api.access = access
        let id = try await f.app(api).test(.router) { client in
            let id = try await client.file("u-2", token: alice)
            #expect(try await Browser().post(client, "/ui/login", ["token": "lethe_" + String(repeating: "y", count: 43)]).status == 401)
            // Without a session: redirected to the login page; the id from the URL is not recorded.
            #expect(try await Browser().get(client, "/ui/requests/someone%40example.com").status == 303)
            let (b, _) = try await Browser.login(client, bob)
            let csrf = try #require(Browser.csrf(try await b.get(client, "/ui/requests/\(id)").text))
            #expect(try await b.post(client, "/ui/requests/\(id)/approve", ["csrf": csrf]).status == 303)
            await access.flush()
            return id
        }
        var routes: [String] = []
        for e in try await f.lethe.meta.audit.entries(from: 1, limit: 1_000) where e.event == "api_calls" {
            guard case .object(let d) = try JSONValue.parse(Array(e.details.utf8)), case .array(let cs)? = d["calls"] else { continue }
            for case .array(let c) in cs where c.count == 6 { if case .string(let route) = c[3] { routes.append(route) } }
        }
        #expect(routes.contains("/ui/login") && routes.contains("/ui/requests/{id}") && routes.contains("/ui/requests/{id}/approve"), "\(routes)")
        #expect(routes.filter { $0 == "/ui/login" }.count == 2, "the refused login is audited too: \(routes)")
        #expect(try await f.lethe.meta.audit.entries(requestID: id).contains { $0.event == "api_calls" })
        let all = try await f.lethe.meta.audit.entries(from: 1, limit: 1_000).map(\.details).joined()
        #expect(!all.contains("someone") && routes.contains("/ui/requests/{id}"))
    }

    @Test func theIndexCoverageAndTheChartsRender() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        // A quarantined object: not JSON Lines.
        try "not json\n".write(toFile: f.dir + "/lake/ev/broken.jsonl", atomically: true, encoding: .utf8)
        _ = try await f.lethe.index()
        let root = try await f.token("root", .admin)
        try await f.app().test(.router) { client in
            let (r, _) = try await Browser.login(client, root)
            let index = try await r.get(client, "/ui/index")
            #expect(index.status == 200 && index.text.contains("ev/broken.jsonl") && index.text.contains("<td>pairs</td>"))
            let coverage = try await f.lethe.indexCoverage()
            #expect(coverage.map(\.name) == ["ev", "pairs"])
            #expect(coverage[0].objects == 2 && coverage[0].records == 6 && coverage[0].quarantined.map(\.key) == ["ev/broken.jsonl"])
            #expect(coverage[0].quarantined.first.map { !$0.issue.isEmpty } == true && coverage[0].lastIndexedAt != nil)
            #expect(coverage[1].objects == 1 && coverage[1].records == 6 && coverage[1].quarantined.isEmpty)
            let charts = try await r.get(client, "/ui/charts")
            #expect(charts.status == 200 && charts.text.components(separatedBy: "<svg").count == 3)
        }
    }

    @Test func openRequestsPastOrNearTheirDeadlineComeFirstAndFilterByRisk() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester), bob = try await f.token("bob", .approver)
        for (days, expected) in [(0, "overdue"), (3, "at-risk")] {
            var serve = ServeConfig()
            serve.deadlineDays = days
            try await f.app(f.api(serve: serve)).test(.router) { client in
                let open = try await client.file("u-\(days + 1)", token: alice)
                let closed = try await client.file("u-\(days + 2)", token: alice)
                _ = try await f.lethe.reject(closed, by: "bob", reason: "duplicate")
                let (b, _) = try await Browser.login(client, bob)
                let list = try await b.get(client, "/ui/requests").text
                #expect(list.contains(#"<tr class="\#(expected)"><td><a class="mono" href="/ui/requests/\#(open)""#))
                let a = try #require(list.range(of: open)), c = try #require(list.range(of: closed))
                #expect(a.lowerBound < c.lowerBound, "the open request comes first")
                let risky = try await b.get(client, "/ui/requests?risk=1").text
                #expect(risky.contains(open) && !risky.contains(closed))
                let rejected = try await b.get(client, "/ui/requests?status=rejected").text
                #expect(rejected.contains(closed) && !rejected.contains(open))
                #expect(try await b.get(client, "/ui/requests?status=nonsense").status == 400)
            }
        }
    }

    @Test func theAuditPageShowsWhereTheChainBreaks() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let audra = try await f.token("audra", .auditor), alice = try await f.token("alice", .requester)
        try await f.app().test(.router) { client in
            _ = try await client.file("u-1", token: alice)  // more entries: filed, planned
            let (a, _) = try await Browser.login(client, audra)
            #expect(try await a.get(client, "/ui/audit").text.contains("Chain verified"))
            // Alter entry 2 behind Lethe's back (the append-only triggers dropped first).
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            p.arguments = [
                "-c",
                """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1], timeout=30)
                db.execute("DROP TRIGGER audit_no_update")
                db.execute("UPDATE audit SET event = 'tampered' WHERE seq = 2")
                db.commit()
                """,
                f.dir + "/state/lethe.sqlite",
            ]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let page = try await a.get(client, "/ui/audit").text
            #expect(page.contains(#"Chain broken at entry <a href="/ui/audit?after=1#broken">2</a>"#), "\(page)")
            #expect(page.contains(#"<tr class="overdue" id="broken"><td class="num">2</td>"#))
        }
    }

    // MARK: The SVG builders

    @Test func lineageLayoutPutsEachDatasetAfterEverythingItDerivesFrom() {
        let nodes = [
            LineageGraph.Node(name: "raw", role: "holds", derivedFrom: [], rows: 3, objects: 1),
            LineageGraph.Node(name: "silver", role: "derived", derivedFrom: ["raw"], rows: 2, objects: 1),
            LineageGraph.Node(name: "gold", role: "rebuild", derivedFrom: ["silver", "raw"], rows: 0, objects: 0),
            LineageGraph.Node(name: "other<&>", role: "may_hold", derivedFrom: ["elsewhere"], rows: 0, objects: 2),
        ]
        let p = LineageGraph.layout(nodes)
        #expect(p["raw"] == .init(column: 0, row: 0) && p["other<&>"] == .init(column: 0, row: 1))
        #expect(p["silver"] == .init(column: 1, row: 0) && p["gold"] == .init(column: 2, row: 0))
        let svg = LineageGraph.svg(nodes)
        #expect(svg.components(separatedBy: #"class="edge""#).count - 1 == 3)  // raw→silver, silver→gold, raw→gold
        #expect(svg.components(separatedBy: #"class="node""#).count - 1 == 4)
        #expect(svg.contains("other&lt;&amp;&gt;") && !svg.contains("other<&>") && !svg.contains("style="))
        // A cycle (refused by the lineage check) does not hang the layout.
        let cyc = LineageGraph.layout([
            .init(name: "a", role: "holds", derivedFrom: ["b"], rows: 0, objects: 0),
            .init(name: "b", role: "derived", derivedFrom: ["a"], rows: 0, objects: 0),
        ])
        #expect(cyc.count == 2)
    }

    @Test func chartsCountPerDayAndBucketTheTimeToErasure() {
        let day: Int64 = 86_400_000
        let now = 20_000 * day + 5_000
        let bars = SVGChart.perDay(filedAt: [now, now - 10, now - day, now - 29 * day, now - 30 * day, now + day], now: now, days: 30)
        #expect(bars.count == 30 && bars.last!.value == 2 && bars[28].value == 1 && bars[0].value == 1)
        #expect(bars.map(\.value).reduce(0, +) == 4)  // 30 days back and tomorrow are outside
        let t = SVGChart.timeToErasure([0, 3_599_999, 3_600_000, 2 * day, 40 * day])
        #expect(t.map(\.value) == [2, 1, 0, 1, 0, 0, 0, 1])
        let svg = SVGChart.bars(t, title: "A <title>")
        #expect(svg.components(separatedBy: #"class="bar""#).count - 1 == 8 && svg.contains("A &lt;title&gt;"))
    }

    @Test func sessionsAreSignedBoundedAndHaveTheirOwnCSRFToken() {
        let key = DashboardSession.key(tokenKey: Array(repeating: 1, count: 32))
        let s = DashboardSession.make(tokenID: 7, now: 1_000)
        let v = s.cookieValue(key: key)
        #expect(DashboardSession.parse(v, key: key, now: 2_000) == s)
        #expect(DashboardSession.parse(v, key: key, now: s.expiresAt) == nil)
        #expect(DashboardSession.parse(v, key: DashboardSession.key(tokenKey: Array(repeating: 2, count: 32)), now: 2_000) == nil)
        #expect(DashboardSession.parse(v + "x", key: key, now: 2_000) == nil && DashboardSession.parse("v1.7", key: key, now: 0) == nil)
        let other = DashboardSession.make(tokenID: 7, now: 1_000)
        #expect(s.csrfToken(key: key) != other.csrfToken(key: key))
        #expect(s.checkCSRF(s.csrfToken(key: key), key: key) && !s.checkCSRF(other.csrfToken(key: key), key: key) && !s.checkCSRF(nil, key: key))
    }
}
