import Foundation
import LetheCore
import NIOCore
import NIOSSL

/// A small SMTP client (RFC 5321) on SwiftNIO: EHLO (HELO if refused), STARTTLS when the server
/// offers it (required with `?tls=require`), implicit TLS for `smtps://`, AUTH PLAIN with the URL's
/// user info (only over TLS or to a loopback server), MAIL FROM, RCPT TO for each recipient, DATA
/// with CRLF line ends and dot-stuffing, QUIT. Each reply has a deadline; a refusal throws an error
/// that quotes the server's reply.
///
/// The URL: `smtp://[user:password@]host[:port][?tls=require|none][&ca=/path/ca.pem]` (port 25) or
/// `smtps://…` (port 465). `ca` adds a PEM file of trusted certificates to the system's.
public struct SMTPClient: Sendable {
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var implicitTLS: Bool
        public enum StartTLS: String, Sendable { case opportunistic, require, none }
        public var startTLS: StartTLS
        public var user: String?
        public var password: String?
        public var caFile: String?

        /// Parses the `notify.email.smtp` URL; errors name `field` and never repeat the password.
        public init(_ text: String, field: String = "notify.email.smtp") throws {
            guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased() else {
                throw LetheError.badInput("not a URL (expected smtp://host:port or smtps://host:port)", at: field)
            }
            guard scheme == "smtp" || scheme == "smtps" else { throw LetheError.badInput("scheme `\(scheme)` is not smtp:// or smtps://", at: field) }
            guard let h = c.host, !h.isEmpty else { throw LetheError.badInput("the SMTP URL has no host", at: field) }
            host = h
            implicitTLS = scheme == "smtps"
            port = c.port ?? (implicitTLS ? 465 : 25)
            guard (1...65535).contains(port) else { throw LetheError.badInput("port \(port) is out of range", at: field) }
            user = c.user.flatMap { $0.isEmpty ? nil : $0 }
            password = c.password
            if user != nil && password == nil { throw LetheError.badInput("the SMTP URL names a user but no password", at: field) }
            startTLS = .opportunistic
            caFile = nil
            for q in c.queryItems ?? [] {
                switch q.name {
                case "tls":
                    guard let v = q.value.flatMap(StartTLS.init(rawValue:)), v != .opportunistic || q.value == "opportunistic" else {
                        throw LetheError.badInput("`tls` is one of require, none, opportunistic", at: field)
                    }
                    startTLS = v
                case "ca": caFile = q.value
                default: throw LetheError.badInput("unknown URL parameter `\(q.name)` (tls, ca)", at: field)
                }
            }
        }

        var isLoopback: Bool { host == "localhost" || host.hasPrefix("127.") || host == "::1" }
        var address: String { "\(host):\(port)" }
    }

    /// A server reply: its code and the text of its lines.
    public struct Reply: Sendable, Equatable, CustomStringConvertible {
        public var code: Int
        public var lines: [String]
        public var description: String { lines.isEmpty ? String(code) : lines.map { "\(code) \($0)" }.joined(separator: " / ") }
    }

    /// What a `send` did: the recipients the server accepted and those it refused for good (5xx).
    public struct Receipt: Sendable, Equatable {
        public var accepted: [String]
        public var refused: [(recipient: String, reply: String)]
        public static func == (a: Receipt, b: Receipt) -> Bool {
            a.accepted == b.accepted && a.refused.map(\.recipient) == b.refused.map(\.recipient) && a.refused.map(\.reply) == b.refused.map(\.reply)
        }
    }

    public let endpoint: Endpoint
    /// The name given in EHLO.
    public let helo: String
    /// Seconds for the connect and for each reply (RFC 5321 suggests minutes for DATA; mail here is small).
    public let timeout: Double

    public init(url: String, helo: String? = nil, timeout: Double = 30, field: String = "notify.email.smtp") throws {
        endpoint = try Endpoint(url, field: field)
        if endpoint.user != nil, endpoint.implicitTLS == false, endpoint.startTLS == .none, !endpoint.isLoopback {
            throw LetheError.badInput("AUTH over a connection without TLS is refused: use smtps:// or drop `tls=none`", at: field)
        }
        let h = helo ?? ProcessInfo.processInfo.hostName
        self.helo = h.isEmpty || h.contains(where: { $0.isWhitespace }) ? "lethe.localdomain" : h
        self.timeout = timeout
    }

    /// Sends one message (the full RFC 5322 text, headers and body; any line ends) from `from` to
    /// `recipients`. Returns when the server accepted it for delivery to at least one recipient; a
    /// recipient refused for good (5xx) is reported in the receipt, a transient refusal (4xx) of any
    /// recipient throws so that the whole message is retried.
    @discardableResult
    public func send(from: String, to recipients: [String], message: [UInt8]) async throws -> Receipt {
        for a in [from] + recipients where !Self.isPlainAddress(a) {
            throw LetheError.badInput("`\(a)` is not a plain e-mail address")
        }
        guard !recipients.isEmpty else { throw LetheError.badInput("no recipients") }
        let e = endpoint
        let tls = try tlsConfiguration()
        let t = TimeAmount.nanoseconds(Int64(timeout * 1e9))
        return try await ByteConnection.with(
            host: e.host, port: e.port, tls: e.implicitTLS ? tls : nil, what: "SMTP server", connectTimeout: t, timeout: t
        ) { io in
            let session = Session(io: io)
            try await session.expect(220, "the greeting")
            var ext = try await session.hello(helo)
            var secure = e.implicitTLS
            if !secure && e.startTLS != .none {
                if ext.keys.contains("STARTTLS") {
                    try await session.command("STARTTLS", expect: 220)
                    try await io.startTLS(tls, host: e.host)
                    secure = true
                    ext = try await session.hello(helo)
                } else if e.startTLS == .require {
                    throw LetheError(.failure, "\(io.peer) does not offer STARTTLS (required by tls=require)")
                }
            }
            if let user = e.user, let password = e.password {
                guard secure || e.isLoopback else {
                    throw LetheError(.failure, "\(io.peer) offers no TLS: AUTH refused over plain text to a non-loopback server")
                }
                guard let mechanisms = ext["AUTH"], mechanisms.uppercased().split(separator: " ").contains("PLAIN") else {
                    throw LetheError(.failure, "\(io.peer) does not offer AUTH PLAIN (offers: \(ext["AUTH"] ?? "no AUTH"))")
                }
                let token = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                try await session.command("AUTH PLAIN " + token, expect: 235, shown: "AUTH PLAIN")
            }
            try await session.command("MAIL FROM:<\(from)>", expect: 250)
            var receipt = Receipt(accepted: [], refused: [])
            for r in recipients {
                let reply = try await session.send("RCPT TO:<\(r)>")
                switch reply.code {
                case 250, 251: receipt.accepted.append(r)
                case 500..<600: receipt.refused.append((r, reply.description))
                default: throw LetheError(.failure, "\(io.peer) refused RCPT TO:<\(r)>: \(reply)")
                }
            }
            guard !receipt.accepted.isEmpty else {
                throw LetheError(
                    .failure, "\(io.peer) refused every recipient: " + receipt.refused.map { "\($0.recipient): \($0.reply)" }.joined(separator: "; "))
            }
            try await session.command("DATA", expect: 354)
            try await io.write(ByteBuffer(bytes: Self.dataBlock(message)))
            try await session.expect(250, "the message")
            _ = try? await session.send("QUIT")
            return receipt
        }
    }

    /// The message as a DATA block: CRLF line ends, a dot doubled at the start of a line, ended by `.`.
    static func dataBlock(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 40 + 5)
        var atLineStart = true
        var i = 0
        while i < message.count {
            let c = message[i]
            if atLineStart && c == UInt8(ascii: ".") { out.append(c) }
            if c == 13 {  // CR, CRLF: one line end
                out += [13, 10]
                if i + 1 < message.count && message[i + 1] == 10 { i += 1 }
                atLineStart = true
            } else if c == 10 {
                out += [13, 10]
                atLineStart = true
            } else {
                out.append(c)
                atLineStart = false
            }
            i += 1
        }
        if !atLineStart { out += [13, 10] }
        out += Array(".\r\n".utf8)
        return out
    }

    /// `local@domain` with no spaces, angle brackets, or control characters (no header or command injection).
    static func isPlainAddress(_ a: String) -> Bool {
        let parts = a.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, a.utf8.count <= 254 else { return false }
        return !a.unicodeScalars.contains { $0.value < 33 || $0.value == 127 || "<>()[],;:\\\"".unicodeScalars.contains($0) }
    }

    private func tlsConfiguration() throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        if let ca = endpoint.caFile {
            do {
                let certs = try NIOSSLCertificate.fromPEMFile(ca)
                c.additionalTrustRoots = [.certificates(certs)]
            } catch {
                throw LetheError.badInput("cannot read the CA certificates `\(ca)`: \(error)", at: "notify.email.smtp")
            }
        }
        return c
    }

    /// The command/reply exchange on one connection.
    final class Session {
        let io: ByteConnection
        init(io: ByteConnection) { self.io = io }

        /// Reads one reply (all its `ddd-` lines and the last `ddd ` line).
        func reply() async throws -> Reply {
            var lines: [String] = []
            while true {
                let line = try await io.readLine(limit: 4096)
                let text = String(decoding: line, as: UTF8.self)
                guard line.count >= 3, let code = Int(String(decoding: line[0..<3], as: UTF8.self)), (200..<600).contains(code) else {
                    throw LetheError(.failure, "\(io.peer) sent a malformed reply: \(text.prefix(200))")
                }
                lines.append(line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : "")
                if line.count == 3 || line[3] == UInt8(ascii: " ") { return Reply(code: code, lines: lines) }
                guard line[3] == UInt8(ascii: "-") else {
                    throw LetheError(.failure, "\(io.peer) sent a malformed reply: \(text.prefix(200))")
                }
                if lines.count > 200 { throw LetheError(.failure, "\(io.peer) sent a reply of more than 200 lines") }
            }
        }

        func send(_ command: String) async throws -> Reply {
            try await io.write(ByteBuffer(string: command + "\r\n"))
            return try await reply()
        }

        func expect(_ code: Int, _ what: String) async throws {
            let r = try await reply()
            guard r.code == code else { throw LetheError(.failure, "\(io.peer) refused \(what): \(r)") }
        }

        /// Sends a command and expects `code`; `shown` replaces the command in errors (AUTH's secret).
        func command(_ command: String, expect code: Int, shown: String? = nil) async throws {
            let r = try await send(command)
            guard r.code == code else { throw LetheError(.failure, "\(io.peer) refused \(shown ?? command): \(r)") }
        }

        /// EHLO (HELO if the server refuses it); the extensions offered, keyword → parameters.
        func hello(_ name: String) async throws -> [String: String] {
            let r = try await send("EHLO " + name)
            if r.code == 250 {
                var ext: [String: String] = [:]
                for line in r.lines.dropFirst() {
                    let parts = line.split(separator: " ", maxSplits: 1)
                    guard let k = parts.first else { continue }
                    ext[k.uppercased()] = parts.count > 1 ? String(parts[1]) : ""
                }
                return ext
            }
            try await command("HELO " + name, expect: 250)
            return [:]
        }
    }
}
