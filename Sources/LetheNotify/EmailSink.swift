public import Foundation
public import LetheCatalog
public import LetheCore
public import Logging

/// E-mails the approvers (`notify.email`): on `planned` the purge report (datasets, objects, rows,
/// lineage, a link to the request in the dashboard when `serve.public_url` is set), on `failed` a
/// short alert with the reason. Plain text with an HTML alternative; the subject line carries the
/// request id. Only what the outbox payload holds is shown: the subject's keyed hash, never a raw id.
///
/// The `Message-ID` is derived from the outbox sequence number, so a message the dispatcher sends
/// twice (at least once delivery) can be recognised as the same one.
public struct EmailSink: NotificationSink {
    public let client: SMTPClient
    public let from: String
    public let approvers: [String]
    public let publicURL: String?
    public let events: Set<String>
    let logger: Logger

    public var name: String { "email" }

    /// Checks the addresses and the SMTP URL; errors name `notify.email.*`.
    public init(
        _ config: NotifyConfig.Email, publicURL: String?, events: Set<String> = ["planned", "failed"], timeout: Double = 30, logger: Logger
    ) throws {
        client = try SMTPClient(url: config.smtp, timeout: timeout)
        guard SMTPClient.isPlainAddress(config.from) else {
            throw LetheError.badInput("`\(config.from)` is not a plain e-mail address (local@domain)", at: "notify.email.from")
        }
        guard !config.approvers.isEmpty else { throw LetheError.badInput("no approvers to send purge reports to", at: "notify.email.approvers") }
        for (i, a) in config.approvers.enumerated() where !SMTPClient.isPlainAddress(a) {
            throw LetheError.badInput("`\(a)` is not a plain e-mail address (local@domain)", at: "notify.email.approvers[\(i)]")
        }
        from = config.from
        approvers = config.approvers
        self.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.events = events
        self.logger = logger
    }

    public func wants(_ event: String) -> Bool { events.contains(event) }

    public func deliver(_ message: OutboxMessage) async throws {
        let mail = compose(message)
        let receipt = try await client.send(from: from, to: approvers, message: mail.rendered)
        for r in receipt.refused {
            logger.warning("an approver's address was refused by the SMTP server", metadata: ["recipient": "\(r.recipient)", "reply": "\(r.reply)"])
        }
    }

    /// The e-mail for one outbox message.
    public func compose(_ message: OutboxMessage, date: Date = Date()) -> MailMessage {
        let p = message.payload
        let id = message.requestID ?? p["request_id"]?.string ?? "?"
        let link = publicURL.map { "\($0)/ui/requests/\(id)" }
        let key = p["subject_key"]?.string
        let at = Self.time(p["at"]) ?? WebhookSink.iso8601(ms: message.createdAt)
        var text = ""
        var html = "<!doctype html><html><body style=\"font-family: sans-serif\">"
        let subject: String
        switch message.event {
        case "planned":
            let plan = p["plan"]
            let datasets = plan?["datasets"]?.array ?? []
            let objects = plan?["objects"]?.int ?? datasets.reduce(0) { $0 + ($1["objects"]?.int ?? 0) }
            let rows = plan?["rows"]?.int ?? datasets.reduce(0) { $0 + ($1["rows"]?.int ?? 0) }
            subject = "[Lethe] Purge report for request \(id): \(objects) objects, \(rows) rows — approval needed"
            text += "Erasure request \(id) is planned and waits for a second person's approval.\n\n"
            if let key { text += "Subject key:  \(key) (keyed hash; Lethe keeps no raw identifier)\n" }
            text += "Planned at:   \(at)\n\n"
            text += "What the erasure will touch:\n\n"
            let rowsOut = datasets.map { d -> [String] in
                let name = d["name"]?.string ?? "?"
                let from = (d["derived_from"]?.array ?? []).compactMap(\.string)
                var lineage = from.isEmpty ? "source" : "derived from " + from.joined(separator: ", ")
                if d["rebuild"]?.bool == true { lineage += "; rebuilt by its command" }
                return [name, d["objects"]?.int.map { String($0) } ?? "-", d["rows"]?.int.map { String($0) } ?? "-", lineage]
            }
            text += Self.table(["dataset", "objects", "rows", "lineage"], rowsOut)
            text += "\nTotal: \(objects) objects, \(rows) rows in \(datasets.count) dataset\(datasets.count == 1 ? "" : "s").\n\n"
            text += "Review it and approve or reject it (the person who filed it cannot approve it):\n"
            if let link { text += "  \(link)\n" }
            text += "  lethe show \(id)\n  lethe approve \(id) --by YOUR-NAME\n  lethe reject \(id) --by YOUR-NAME --reason REASON\n"

            html += "<h2>Erasure request \(Self.escape(id)) waits for approval</h2>"
            if let key { html += "<p>Subject key: <code>\(Self.escape(key))</code> (keyed hash)<br>Planned at: \(Self.escape(at))</p>" }
            html += "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>dataset</th><th>objects</th><th>rows</th><th>lineage</th></tr>"
            for r in rowsOut {
                html += "<tr><td>\(Self.escape(r[0]))</td><td align=\"right\">\(r[1])</td><td align=\"right\">\(r[2])</td><td>\(Self.escape(r[3]))</td></tr>"
            }
            html += "</table><p>Total: \(objects) objects, \(rows) rows.</p>"
            if let link { html += "<p><a href=\"\(Self.escape(link))\">Review request \(Self.escape(id))</a></p>" }
        case "failed":
            let reason = p["reason"]?.string ?? "(no reason recorded)"
            subject = "[Lethe] Request \(id) failed"
            text += "Erasure request \(id) failed at \(at).\n\nReason: \(reason)\n"
            if let key { text += "Subject key: \(key)\n" }
            text += "\nSee it with `lethe show \(id)`" + (link.map { " or at \($0)" } ?? "") + ". A failed request is retried by `lethe run`.\n"
            html += "<h2>Erasure request \(Self.escape(id)) failed</h2><p>Reason: \(Self.escape(reason))</p>"
            if let link { html += "<p><a href=\"\(Self.escape(link))\">Open request \(Self.escape(id))</a></p>" }
        default:
            let status = p["status"]?.string ?? message.event
            subject = "[Lethe] Request \(id): \(message.event)"
            text += "Erasure request \(id) is now \(status) (\(at)).\n"
            if let link { text += "\n  \(link)\n" }
            html += "<p>Erasure request \(Self.escape(id)) is now \(Self.escape(status)).</p>"
        }
        html += "</body></html>"
        return MailMessage(
            from: from, to: approvers, subject: subject, text: text, html: html,
            headers: [("X-Lethe-Request", id), ("X-Lethe-Event", message.event)],
            messageID: "<lethe.\(message.seq).\(id.filter { $0.isLetter || $0.isNumber || $0 == "-" })@\(from.split(separator: "@").last ?? "lethe")>",
            date: date)
    }

    /// A text table with left-aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ r: [String]) -> String {
            var s = "  "
            for (i, c) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                s += (i == 1 || i == 2) ? pad + c : c + (i == r.count - 1 ? "" : pad)
                if i < r.count - 1 { s += "  " }
            }
            return s + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    /// An `at` field: ms since the epoch (as ISO 8601), or a string as given.
    static func time(_ v: JSONValue?) -> String? {
        if let s = v?.string { return s }
        if let ms = v?.int { return WebhookSink.iso8601(ms: ms) }
        return nil
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "&": o += "&amp;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }
}
