public import Foundation

/// An RFC 5322 message: a plain-text body and an optional HTML alternative, UTF-8, quoted-printable
/// (safe through any relay: 7-bit, lines under 78 characters).
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var text: String
    public var html: String?
    /// Extra headers (name, value), e.g. `X-Lethe-Request`. Values must be single lines.
    public var headers: [(String, String)]
    /// `<…@…>`: the same for every retry of one notification (receivers can drop duplicates).
    public var messageID: String
    public var date: Date

    public init(
        from: String, to: [String], subject: String, text: String, html: String? = nil, headers: [(String, String)] = [],
        messageID: String, date: Date = Date()
    ) {
        self.from = from; self.to = to; self.subject = subject; self.text = text; self.html = html
        self.headers = headers; self.messageID = messageID; self.date = date
    }

    public static func == (a: MailMessage, b: MailMessage) -> Bool {
        a.from == b.from && a.to == b.to && a.subject == b.subject && a.text == b.text && a.html == b.html
            && a.headers.map(\.0) == b.headers.map(\.0) && a.headers.map(\.1) == b.headers.map(\.1) && a.messageID == b.messageID
            && a.date == b.date
    }

    /// The message's bytes (CRLF line ends).
    public var rendered: [UInt8] {
        var h: [String] = [
            "From: \(from)",
            "To: \(to.joined(separator: ", "))",
            "Subject: \(Self.encodedWord(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Auto-Submitted: auto-generated",
        ]
        for (n, v) in headers { h.append("\(n): \(v.filter { !$0.isNewline })") }
        var s = h.joined(separator: "\r\n") + "\r\n"
        if let html {
            let boundary = "=_lethe_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            s += "Content-Type: multipart/alternative; boundary=\"\(boundary)\"\r\n\r\n"
            s += "This is a MIME message: a plain text part and an HTML part.\r\n"
            s += "--\(boundary)\r\n" + Self.part("text/plain", text)
            s += "--\(boundary)\r\n" + Self.part("text/html", html)
            s += "--\(boundary)--\r\n"
        } else {
            s += Self.part("text/plain", text)
        }
        return Array(s.utf8)
    }

    static func part(_ type: String, _ body: String) -> String {
        "Content-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + quotedPrintable(body) + "\r\n"
    }

    /// Quoted-printable (RFC 2045 §6.7) of UTF-8 text: CRLF line ends, soft breaks before 76 characters.
    static func quotedPrintable(_ text: String) -> String {
        var out = ""
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        for (n, line) in lines.enumerated() {
            if n > 0 { out += "\r\n" }
            var width = 0
            let bytes = Array(line.utf8)
            for (i, b) in bytes.enumerated() {
                let last = i == bytes.count - 1
                let literal = (b >= 33 && b <= 126 && b != 61) || ((b == 32 || b == 9) && !last)
                let piece = literal ? String(UnicodeScalar(b)) : "=" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
                if width + piece.count > 75 {
                    out += "=\r\n"
                    width = 0
                }
                out += piece
                width += piece.count
            }
        }
        return out
    }

    /// The text as is when it is printable ASCII, else an RFC 2047 encoded word (base64 UTF-8).
    static func encodedWord(_ s: String) -> String {
        let plain = s.unicodeScalars.allSatisfy { $0.value >= 32 && $0.value < 127 }
        if plain { return s }
        return "=?utf-8?B?" + Data(s.filter { !$0.isNewline }.utf8).base64EncodedString() + "?="
    }

    static func rfc5322Date(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return f.string(from: d)
    }
}
