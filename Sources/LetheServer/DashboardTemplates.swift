import LetheCore

/// The dashboard's templates, in the source (an installed binary needs no resource bundle): the page
/// frame, the login form, the error page, the style sheet and the icon. Every value from outside the
/// templates goes through `HTML.escape` (the callers' `e(…)`).
enum DashboardTemplates {
    /// A navigation entry: its path, its label, who sees it.
    static let nav: [(path: String, label: String, roles: Set<Role>)] = [
        ("/ui/requests", "Requests", Dashboard.requestPages),
        ("/ui/charts", "Charts", Dashboard.overview),
        ("/ui/index", "Index", Dashboard.overview),
        ("/ui/audit", "Audit log", Dashboard.audit),
    ]

    static func head(_ title: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title)) · Lethe</title>
        <link rel="stylesheet" href="/ui/style.css"><link rel="icon" href="/ui/favicon.svg" type="image/svg+xml"></head>
        """
    }

    /// A page for a logged-in viewer: the navigation its role may use, who it is, logout, then `body`.
    static func frame(_ title: String, viewer: Dashboard.Viewer, current: String, _ body: String) -> String {
        var s = head(title) + #"<body><header><nav><a class="brand" href="/ui/requests">Lethe</a>"#
        for n in nav where n.roles.contains(viewer.role) {
            s += #"<a href="\#(n.path)"\#(n.path == current ? #" class="current" aria-current="page""# : "")>\#(n.label)</a>"#
        }
        s += #"<span class="who">\#(HTML.escape(viewer.name)) <small>(\#(viewer.role.rawValue))</small></span>"#
        s += #"<form class="logout" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="\#(HTML.escape(viewer.csrf))">"#
        s += #"<button type="submit">Log out</button></form></nav></header>"#
        return s + "<main>\n<h1>\(HTML.escape(title))</h1>\n" + body + "\n</main></body></html>\n"
    }

    static func login(error: String?) -> String {
        var s = head("Log in") + #"<body class="login"><main><h1>Lethe</h1>"#
        if let error { s += #"<p class="error" role="alert">\#(HTML.escape(error))</p>"# }
        s += """
            <form method="post" action="/ui/login" class="login-form">
            <label for="token">API token</label>
            <input id="token" name="token" type="password" autocomplete="off" required placeholder="lethe_…">
            <button type="submit">Log in</button>
            </form>
            <p class="hint">Paste the token <code>lethe token create</code> printed for you. The dashboard keeps a session
            naming the token (never the token itself) for 8 hours or until the token is revoked.</p>
            </main></body></html>

            """
        return s
    }

    static func error(status: Int, message: String) -> String {
        head("Error \(status)")
            + #"<body><main><h1>Error \#(status)</h1><p class="error" role="alert">\#(HTML.escape(message))</p><p><a href="/ui/requests">Back to the requests</a></p></main></body></html>"#
            + "\n"
    }

    static let favicon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#3b6ea8"/><path d="M4 3v10h8" stroke="#fff" stroke-width="2" fill="none"/></svg>
        """

    static let css = """
        :root { --fg: #1d2330; --muted: #5d6675; --line: #d7dce4; --accent: #3b6ea8; --risk: #b3261e; --warn: #8a5a00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f7f8fa; }
        header { background: #1d2330; }
        nav { display: flex; align-items: center; gap: 18px; padding: 8px 20px; color: #fff; }
        nav a { color: #d9e3f0; text-decoration: none; }
        nav a.current, nav a:hover { color: #fff; text-decoration: underline; }
        nav .brand { font-weight: 700; color: #fff; margin-right: 12px; }
        nav .who { margin-left: auto; color: #d9e3f0; }
        nav form.logout { margin: 0; }
        nav button { background: transparent; color: #d9e3f0; border: 1px solid #56627a; border-radius: 4px; padding: 2px 10px; cursor: pointer; }
        main { padding: 16px 24px 40px; max-width: 1280px; }
        h1 { font-size: 20px; margin: 8px 0 16px; }
        h2 { font-size: 16px; margin: 26px 0 10px; }
        table { border-collapse: collapse; background: #fff; width: 100%; }
        th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
        th { background: #eef1f5; font-weight: 600; }
        td.time { white-space: nowrap; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.overdue td { background: #fbe9e7; }
        tr.at-risk td { background: #fff4e0; }
        .badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: #e3e8ef; }
        .badge.verified { background: #dcefdc; } .badge.rejected { background: #eee; } .badge.failed { background: #f6d6d3; }
        .badge.approved, .badge.running, .badge.erased { background: #dbe8f6; }
        .overdue-text { color: var(--risk); font-weight: 600; } .risk-text { color: var(--warn); font-weight: 600; }
        .error { color: var(--risk); font-weight: 600; }
        .ok { color: #1f6f2b; font-weight: 600; }
        .broken { color: var(--risk); font-weight: 700; }
        dl.facts { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; background: #fff; padding: 12px; border: 1px solid var(--line); }
        dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
        form.filter { display: flex; gap: 12px; align-items: center; margin-bottom: 12px; }
        form.decide { display: inline-flex; gap: 8px; align-items: center; margin: 6px 16px 6px 0; }
        form.decide input[type=text] { width: 280px; }
        button { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid #8895a8; background: #fff; cursor: pointer; }
        button.approve { background: var(--accent); color: #fff; border-color: var(--accent); }
        button.reject { color: var(--risk); border-color: var(--risk); }
        .graph { background: #fff; border: 1px solid var(--line); padding: 8px; overflow-x: auto; }
        .charts svg { background: #fff; border: 1px solid var(--line); margin: 0 16px 16px 0; }
        .pager { margin: 10px 0; display: flex; gap: 16px; }
        code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
        .muted { color: var(--muted); }
        body.login main { max-width: 460px; margin: 80px auto; background: #fff; border: 1px solid var(--line); padding: 24px; }
        .login-form { display: flex; flex-direction: column; gap: 8px; }
        .login-form input { font: inherit; padding: 6px; }
        .hint { color: var(--muted); font-size: 13px; }

        """
}
