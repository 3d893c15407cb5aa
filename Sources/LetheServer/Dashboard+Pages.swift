import Foundation
import Hummingbird
import LetheCatalog
import LetheCore
import LetheEngine
import NIOCore

// The dashboard's pages: the requests (deadline, at risk first, filters), one request (plan, lineage
// graph, approve/reject, certificate, its audit trail), the audit log (paged, chain check), the index
// coverage, the charts.

extension Dashboard {
    static let dayMillis: Int64 = 86_400_000
    /// Open requests this close to their deadline (ms) are at risk (as `lethe_requests_near_deadline`).
    static let riskWindow: Int64 = ServerMetrics.nearDeadlineSeconds * 1000
    /// Rows a page of requests shows.
    static let requestsPage = 100
    /// Entries a page of the audit log shows.
    static let auditPage: Int64 = 100

    /// A request's legal deadline (ms): filing + `serve.deadline_days`.
    func deadline(_ r: ErasureRequest) -> Int64 { r.filedAt + Int64(api.serve.deadlineDays) * Self.dayMillis }

    /// `overdue` (open, past its deadline), `at-risk` (open, within a week of it) or nil.
    func risk(_ r: ErasureRequest, now: Int64) -> String? {
        guard !r.status.isTerminal else { return nil }
        let left = deadline(r) - now
        return left < 0 ? "overdue" : left <= Self.riskWindow ? "at-risk" : nil
    }

    /// The requests a viewer may see (a requester: its own), ordered: overdue and at-risk first by
    /// deadline, then the rest newest first.
    func orderedRequests(for v: Viewer, status: RequestStatus?, onlyAtRisk: Bool, now: Int64) async throws -> [ErasureRequest] {
        var all = try await lethe.requests(status: status)
        if v.role == .requester { all = all.filter { $0.requestedBy == v.name } }
        if onlyAtRisk { all = all.filter { risk($0, now: now) != nil } }
        return all.sorted { a, b in
            let ra = risk(a, now: now) != nil, rb = risk(b, now: now) != nil
            if ra != rb { return ra }
            if ra { return deadline(a) != deadline(b) ? deadline(a) < deadline(b) : a.id < b.id }
            return a.filedAt != b.filedAt ? a.filedAt > b.filedAt : a.id > b.id
        }
    }

    // MARK: Requests

    func requestsPage(_ request: Request, _ v: Viewer) async throws -> String {
        let q = request.uri.queryParameters
        var status: RequestStatus?
        if let s = q["status"], !s.isEmpty {
            guard let st = RequestStatus(rawValue: String(s)) else {
                throw APIError.badRequest("unknown status `\(s)` (known: \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            status = st
        }
        let onlyAtRisk = q["risk"] == "1"
        let pageNo = Int(try LetheAPI.intQuery(request, "page", 1...1_000_000) ?? 1)
        let now = lethe.now()
        let all = try await orderedRequests(for: v, status: status, onlyAtRisk: onlyAtRisk, now: now)
        let shown = all.dropFirst((pageNo - 1) * Self.requestsPage).prefix(Self.requestsPage)

        var s =
            #"<form class="filter" method="get" action="/ui/requests"><label for="status">Status</label><select id="status" name="status"><option value="">any</option>"#
        for st in RequestStatus.allCases {
            s += #"<option value="\#(st.rawValue)"\#(st == status ? " selected" : "")>\#(st.rawValue)</option>"#
        }
        s += #"</select><label><input type="checkbox" name="risk" value="1"\#(onlyAtRisk ? " checked" : "")> at risk only</label>"#
        s += #"<button type="submit">Filter</button></form>"#
        let overdue = all.filter { risk($0, now: now) == "overdue" }.count
        let atRisk = all.filter { risk($0, now: now) == "at-risk" }.count
        s += #"<p class="summary">\#(all.count) request\#(all.count == 1 ? "" : "s")"#
        s += #" · <span class="overdue-text">\#(overdue) overdue</span> · <span class="risk-text">\#(atRisk) due within 7 days</span>"#
        s += #" · legal deadline: \#(api.serve.deadlineDays) days from filing</p>"#
        if all.isEmpty {
            return DashboardTemplates.frame("Requests", viewer: v, current: "/ui/requests", s + "<p>No requests.</p>")
        }
        s +=
            #"<table class="requests"><thead><tr><th>Request</th><th>Status</th><th>Filed</th><th class="num">Age</th><th>Deadline</th><th>Due</th><th>Filed by</th><th>Reason</th></tr></thead><tbody>"#
        for r in shown {
            let rk = risk(r, now: now)
            let left = deadline(r) - now
            let due: String
            if r.status.isTerminal {
                due = #"<span class="muted">done</span>"#
            } else if left < 0 {
                due = #"<span class="overdue-text">overdue by \#(Self.days(-left))</span>"#
            } else {
                due = #"<span class="\#(rk == nil ? "" : "risk-text")">in \#(Self.days(left))</span>"#
            }
            s += #"<tr\#(rk.map { #" class="\#($0)""# } ?? "")><td><a class="mono" href="/ui/requests/\#(HTML.query(r.id))">\#(HTML.escape(r.id))</a></td>"#
            s += #"<td><span class="badge \#(r.status.rawValue)">\#(r.status.rawValue)</span></td><td>\#(Self.time(r.filedAt))</td>"#
            s += #"<td class="num">\#(Self.days(now - r.filedAt))</td><td>\#(Self.date(deadline(r)))</td><td>\#(due)</td>"#
            s += "<td>\(HTML.escape(r.requestedBy))</td><td>\(HTML.escape(r.reason))</td></tr>"
        }
        s += "</tbody></table>"
        s += pager(
            prev: pageNo > 1 ? requestsURL(status, onlyAtRisk, pageNo - 1) : nil,
            next: all.count > pageNo * Self.requestsPage ? requestsURL(status, onlyAtRisk, pageNo + 1) : nil)
        return DashboardTemplates.frame("Requests", viewer: v, current: "/ui/requests", s)
    }

    func requestsURL(_ status: RequestStatus?, _ risk: Bool, _ page: Int) -> String {
        "/ui/requests?status=\(status?.rawValue ?? "")\(risk ? "&risk=1" : "")&page=\(page)"
    }

    func pager(prev: String?, next: String?, labels: (String, String) = ("← Previous", "Next →")) -> String {
        guard prev != nil || next != nil else { return "" }
        var s = #"<p class="pager">"#
        if let prev { s += #"<a rel="prev" href="\#(HTML.escape(prev))">\#(labels.0)</a>"# }
        if let next { s += #"<a rel="next" href="\#(HTML.escape(next))">\#(labels.1)</a>"# }
        return s + "</p>"
    }

    // MARK: One request

    func requestPage(_ id: String, _ v: Viewer) async throws -> String {
        let r = try await visible(id, to: v)
        let now = lethe.now()
        let view = RequestView(r, withPlan: false)
        var s = #"<dl class="facts">"#
        func fact(_ k: String, _ html: String) { s += "<dt>\(k)</dt><dd>\(html)</dd>" }
        fact("Request", #"<span class="mono">\#(HTML.escape(r.id))</span>"#)
        fact("Status", #"<span class="badge \#(r.status.rawValue)" id="status">\#(r.status.rawValue)</span>"#)
        fact("Subject (keyed hash)", #"<span class="mono">\#(HTML.escape(r.subjectKey.hex))</span>"#)
        fact("Filed", "\(Self.time(r.filedAt)) by \(HTML.escape(r.requestedBy)), \(Self.days(now - r.filedAt)) ago")
        let left = deadline(r) - now
        let dueText =
            r.status.isTerminal
            ? Self.date(deadline(r))
            : left < 0
                ? #"\#(Self.date(deadline(r))) <span class="overdue-text">overdue by \#(Self.days(-left))</span>"#
                : "\(Self.date(deadline(r))) (in \(Self.days(left)))"
        fact("Legal deadline", dueText)
        fact("Reason", HTML.escape(r.reason))
        if let d = r.decidedBy { fact(r.status == .rejected ? "Rejected by" : "Approved by", HTML.escape(d)) }
        if let d = r.decisionReason { fact("Decision reason", #"<span id="decision-reason">\#(HTML.escape(d))</span>"#) }
        if let f = r.failure { fact("Failure", #"<span class="error">\#(HTML.escape(f))</span>"#) }
        if let verified = view.proofs.verified { fact("Verified", "\(Self.time(verified.at)) (proof: \(HTML.escape(verified.kind)))") }
        if let swept = view.proofs.swept { fact("Swept", Self.time(swept.at)) }
        fact("Raw id", view.proofs.rawID == "sealed" ? "sealed until swept or its deadline" : "destroyed")
        s += "</dl>"

        // Approve / reject: approvers (and admins) only; approve never for the filer (four eyes), who may still
        // withdraw the request by rejecting it (as the API allows).
        if Self.decide.contains(v.role) && (r.status == .planned || r.status == .filed) {
            s += "<h2>Decision</h2>"
            let action = "/ui/requests/\(HTML.query(r.id))"
            let csrf = #"<input type="hidden" name="csrf" value="\#(HTML.escape(v.csrf))">"#
            if r.requestedBy == v.name {
                s +=
                    #"<p class="muted" id="four-eyes">You filed this request: another approver must approve it (four eyes). You may withdraw it by rejecting it.</p>"#
            } else if r.status == .planned {
                s +=
                    #"<form class="decide" method="post" action="\#(action)/approve">\#(csrf)<button class="approve" id="approve" type="submit">Approve erasure</button></form>"#
            }
            s +=
                #"<form class="decide" method="post" action="\#(action)/reject">\#(csrf)<input type="text" id="reject-reason" name="reason" required maxlength="500" placeholder="Reason for rejecting"><button class="reject" id="reject" type="submit">Reject</button></form>"#
        }

        // The plan: lineage graph, datasets, objects.
        if let stored = r.plan.flatMap(ErasurePlan.decode) {
            let plan = try await lethe.resolvedPlan(stored)
            s +=
                "<h2>Plan</h2><p>\(plan.totalObjects) object\(plan.totalObjects == 1 ? "" : "s"), \(plan.totalRows) rows in \(plan.datasets.count) dataset\(plan.datasets.count == 1 ? "" : "s"), planned \(Self.time(plan.plannedAt)).</p>"
            let nodes = plan.datasets.map {
                LineageGraph.Node(name: $0.name, role: $0.role, derivedFrom: $0.derivedFrom, rows: $0.rows, objects: $0.objects.count)
            }
            if !nodes.isEmpty { s += #"<div class="graph">\#(LineageGraph.svg(nodes))</div>"# }
            s +=
                #"<table class="plan"><thead><tr><th>Dataset</th><th>Format</th><th>Role</th><th>Derived from</th><th class="num">Objects</th><th class="num">Rows</th><th>Index</th></tr></thead><tbody>"#
            for d in plan.datasets {
                let state = d.state.map { HTML.escape($0) + (d.issue.map { ": " + HTML.escape($0) } ?? "") } ?? "indexed"
                s +=
                    "<tr><td>\(HTML.escape(d.name))</td><td>\(HTML.escape(d.format))</td><td>\(HTML.escape(d.role))</td>"
                s +=
                    "<td>\(d.derivedFrom.map(HTML.escape).joined(separator: ", "))</td><td class=\"num\">\(d.objects.count)</td><td class=\"num\">\(d.rows)</td><td>\(state)</td></tr>"
            }
            s += "</tbody></table>"
            let objects = plan.datasets.flatMap { d in d.objects.map { (d.name, $0) } }
            if !objects.isEmpty {
                s +=
                    #"<h2>Objects</h2><table class="objects"><thead><tr><th>Dataset</th><th>Object</th><th class="num">Rows</th><th>State</th></tr></thead><tbody>"#
                for (name, o) in objects.prefix(500) {
                    let key = o.key.map(HTML.escape) ?? (o.ref.map { "#\($0) (purged)" } ?? "?")
                    let state = HTML.escape(o.state) + (o.issue.map { ": " + HTML.escape($0) } ?? "")
                    s += #"<tr><td>\#(HTML.escape(name))</td><td class="mono">\#(key)</td><td class="num">\#(o.rows)</td><td>\#(state)</td></tr>"#
                }
                s += "</tbody></table>"
                if objects.count > 500 { s += "<p class=\"muted\">The first 500 of \(objects.count) objects.</p>" }
            }
        } else {
            s += #"<h2>Plan</h2><p class="muted">Not planned yet.</p>"#
        }

        // The certificate of erasure, with its verification against this installation's key.
        if r.status == .verified && Self.certificates.contains(v.role) {
            s += "<h2>Certificate of erasure</h2>"
            do {
                let cert = try await lethe.certificate(id: r.id)
                let key = try lethe.signingPublicKey
                let problem = Lethe.verifyCertificate(Array(cert.text.utf8), publicKey: key)
                if let problem {
                    s += #"<p class="broken" id="certificate-check">Does not verify: \#(HTML.escape(problem.description))</p>"#
                } else {
                    s +=
                        #"<p class="ok" id="certificate-check">Signature valid (Ed25519, key \#(HTML.escape(Lethe.keyFingerprint(key))), the key of <code>/v1/keys</code>).</p>"#
                }
                if let c = cert["certificate"], let erased = c["erased"] {
                    s += #"<dl class="facts"><dt>Verified at</dt><dd>\#(HTML.escape(c["verified_at"]?.string ?? "?"))</dd>"#
                    s += "<dt>Erased</dt><dd>\(erased["objects"].map { $0.text } ?? "?") objects, \(erased["rows"].map { $0.text } ?? "?") rows</dd>"
                    if let head = c["audit_head"] {
                        s += #"<dt>Audit head</dt><dd class="mono">\#(head["seq"].map { $0.text } ?? "?"):\#(HTML.escape(head["hash"]?.string ?? "?"))</dd>"#
                    }
                    s += "</dl>"
                }
                s +=
                    #"<p><a id="certificate-download" href="/ui/requests/\#(HTML.query(r.id))/certificate" download>Download the certificate (JSON)</a> · verify offline with <code>lethe certificate verify FILE --key KEY</code></p>"#
            } catch let e as LetheError {
                s += #"<p class="error">\#(HTML.escape(e.description))</p>"#
            }
        }

        // The request's audit trail, for those who read the audit log.
        if Self.audit.contains(v.role) {
            let trail = try await lethe.auditTrail(of: r.id)
            if !trail.isEmpty {
                s += "<h2>Audit trail</h2>" + auditTable(trail)
            }
        }
        return DashboardTemplates.frame("Request \(r.id)", viewer: v, current: "/ui/requests", s)
    }

    /// `GET /ui/requests/{id}/certificate`: the certificate as `/v1/requests/{id}/certificate` serves it, as a download.
    func certificateDownload(_ id: String, _ v: Viewer) async throws -> Response {
        let r = try await visible(id, to: v)
        let text = try await lethe.certificate(id: r.id).text
        var h = HTTPFields()
        h[.contentType] = "application/json"
        let safe = String(r.id.unicodeScalars.filter { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") })
        h[.contentDisposition] = #"attachment; filename="certificate-\#(safe).json""#
        Self.securityHeaders(&h)
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Audit log

    func auditTable(_ lines: [Lethe.AuditLine], broken: Int64? = nil) -> String {
        var s =
            #"<table class="audit"><thead><tr><th class="num">#</th><th>Time</th><th>Event</th><th>Request</th><th>Actor</th><th>Details</th><th>Hash</th></tr></thead><tbody>"#
        for l in lines {
            let e = l.entry
            let req = e.requestID.map { #"<a class="mono" href="/ui/requests/\#(HTML.query($0))">\#(HTML.escape($0))</a>"# } ?? ""
            s += #"<tr\#(broken == e.seq ? #" class="overdue" id="broken""# : "")><td class="num">\#(e.seq)</td><td class="time">\#(Self.time(e.at))</td>"#
            s += "<td>\(HTML.escape(e.event))</td><td>\(req)</td><td>\(HTML.escape(l.actor ?? ""))</td>"
            s += #"<td class="mono">\#(HTML.escape(l.details))</td><td class="mono">\#(HTML.escape(String(e.hash.prefix(16))))…</td></tr>"#
        }
        return s + "</tbody></table>"
    }

    func auditPage(_ request: Request, _ v: Viewer) async throws -> String {
        let check = try await lethe.auditReport(expectHead: nil)
        let headSeq = try await lethe.auditHead()?.seq ?? 0
        // Default: the newest page.
        let after = try LetheAPI.intQuery(request, "after", 0...Int64.max) ?? max(0, headSeq - Self.auditPage)
        let lines = try await lethe.auditLines(after: after, limit: Int(Self.auditPage))
        var s = ""
        if check.ok {
            s += #"<p class="ok" id="chain">Chain verified: \#(check.entries) entries, head <span class="mono">\#(HTML.escape(check.head))</span>.</p>"#
        } else {
            let at =
                check.firstBroken.map { n in
                    #" at entry <a href="/ui/audit?after=\#(max(0, n - 1))#broken">\#(n)</a>"#
                } ?? ""
            s += #"<p class="broken" id="chain">Chain broken\#(at): \#(HTML.escape(check.reason ?? "unknown reason"))</p>"#
        }
        s += "<p class=\"muted\">Entries \(lines.last?.entry.seq ?? 0)–\(lines.first?.entry.seq ?? 0) of \(headSeq), newest first.</p>"
        let pages = pager(
            prev: (lines.last?.entry.seq ?? headSeq) < headSeq ? "/ui/audit?after=\(lines.last!.entry.seq)" : nil,
            next: after > 0 ? "/ui/audit?after=\(max(0, after - Self.auditPage))" : nil, labels: ("← Newer", "Older →"))
        s += pages + auditTable(Array(lines.reversed()), broken: check.firstBroken) + pages
        return DashboardTemplates.frame("Audit log", viewer: v, current: "/ui/audit", s)
    }

    // MARK: Index coverage

    func indexPage(_ v: Viewer) async throws -> String {
        let coverage = try await lethe.indexCoverage()
        var s =
            #"<table class="coverage"><thead><tr><th>Dataset</th><th>Format</th><th class="num">Objects</th><th class="num">Records</th><th>Last indexed</th><th class="num">Quarantined</th></tr></thead><tbody>"#
        for c in coverage {
            s +=
                "<tr\(c.quarantined.isEmpty ? "" : #" class="at-risk""#)><td>\(HTML.escape(c.name))</td><td>\(HTML.escape(c.format))</td><td class=\"num\">\(c.objects)</td>"
            s +=
                "<td class=\"num\">\(c.records)</td><td>\(c.lastIndexedAt.map(Self.time) ?? #"<span class="muted">never</span>"#)</td><td class=\"num\">\(c.quarantined.count)</td></tr>"
        }
        s += "</tbody></table>"
        let q = coverage.flatMap { c in c.quarantined.map { (c.name, $0) } }
        s += "<h2>Quarantined objects</h2>"
        if q.isEmpty {
            s += #"<p class="ok">None: every object the index knows was read.</p>"#
        } else {
            s += #"<p class="muted">The index cannot vouch for these objects: every plan lists them as possibly holding the subject.</p>"#
            s += #"<table class="quarantined"><thead><tr><th>Dataset</th><th>Object</th><th>Reason</th><th>Since</th></tr></thead><tbody>"#
            for (name, o) in q {
                s +=
                    #"<tr><td>\#(HTML.escape(name))</td><td class="mono">\#(HTML.escape(o.key))</td><td>\#(HTML.escape(o.issue))\#(o.code == "unsupported" ? " (unsupported)" : "")</td><td>\#(Self.time(o.at))</td></tr>"#
            }
            s += "</tbody></table>"
        }
        return DashboardTemplates.frame("Index coverage", viewer: v, current: "/ui/index", s)
    }

    // MARK: Charts

    func chartsPage(_ v: Viewer) async throws -> String {
        let now = lethe.now()
        let all = try await lethe.requests(status: nil)
        let perDay = SVGChart.perDay(filedAt: all.map(\.filedAt), now: now, days: 30)
        let durations = all.compactMap { r -> Int64? in
            guard r.status == .verified, let at = RequestView.Proofs(r).verified?.at else { return nil }
            return max(0, at - r.filedAt)
        }
        var s = #"<div class="charts">"#
        s += SVGChart.bars(perDay, title: "Requests filed per day (last 30 days, UTC)")
        s += SVGChart.bars(SVGChart.timeToErasure(durations), title: "Time from filing to verified (\(durations.count) requests)")
        s += "</div>"
        let sorted = durations.sorted()
        if !sorted.isEmpty {
            s += "<p>Median time to verified: \(Self.duration(sorted[sorted.count / 2])); slowest: \(Self.duration(sorted.last!)).</p>"
        }
        return DashboardTemplates.frame("Charts", viewer: v, current: "/ui/charts", s)
    }

    // MARK: Formatting

    static func time(_ ms: Int64) -> String { utc(ms, "yyyy-MM-dd HH:mm 'UTC'") }

    static func date(_ ms: Int64) -> String { utc(ms, "yyyy-MM-dd") }

    /// `ms` since the epoch in UTC, formatted by `format` (POSIX locale).
    private static func utc(_ ms: Int64, _ format: String) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = format
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// `3 d`, `5 h`, `12 min` (whole units, rounded down).
    static func days(_ ms: Int64) -> String { duration(ms) }

    static func duration(_ ms: Int64) -> String {
        let m = max(0, ms)
        if m >= dayMillis { return "\(m / dayMillis) d" }
        if m >= 3_600_000 { return "\(m / 3_600_000) h" }
        return "\(m / 60_000) min"
    }
}
