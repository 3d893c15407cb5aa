import Foundation
import LetheCatalog
import LetheCore
import LetheNotify
import LetheTestSupport
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The SMTP client and the e-mail sink against aiosmtpd (a real SMTP server, on loopback).
@Suite(.timeLimit(.minutes(10))) struct SMTPTests {
    static let message = """
        From: lethe@example.com
        To: a@example.com
        Subject: dots

        first line
        .starts with a dot
        .
        ..two dots
        last line without a newline
        """

    @Test("a message reaches every recipient intact: CRLF line ends, dot-stuffing undone by the server")
    func sends() async throws {
        let server = try SMTPReceiver()
        defer { server.stop() }
        let client = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)", timeout: 60)
        let receipt = try await client.send(from: "lethe@example.com", to: ["a@example.com", "b@example.com"], message: Array(Self.message.utf8))
        #expect(receipt.accepted == ["a@example.com", "b@example.com"] && receipt.refused.isEmpty)
        let got = server.messages
        try #require(got.count == 1)
        #expect(got[0]["mail_from"] as? String == "lethe@example.com")
        #expect(got[0]["rcpt_tos"] as? [String] == ["a@example.com", "b@example.com"])
        let data = got[0]["data"] as? String ?? ""
        #expect(data.contains("\r\n.starts with a dot\r\n.\r\n..two dots\r\n"))
        #expect(data.replacingOccurrences(of: "\r\n", with: "\n").hasSuffix(Self.message + "\n"))
        #expect(!data.replacingOccurrences(of: "\r\n", with: "").contains("\n"))  // no bare LF on the wire
    }

    @Test("AUTH PLAIN with the URL's user info; a wrong password or none fails, quoting the server's reply")
    func auth() async throws {
        let server = try SMTPReceiver(auth: "lethe:pa ss")
        defer { server.stop() }
        let ok = try SMTPClient(url: "smtp://lethe:pa%20ss@127.0.0.1:\(server.port)")
        try await ok.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
        #expect(server.messages.count == 1)
        // aiosmtpd 1.4.6 does not answer a failed AUTH PLAIN until the connection closes: the client's deadline ends it.
        let wrong = try SMTPClient(url: "smtp://lethe:nope@127.0.0.1:\(server.port)", timeout: 3)
        do {
            let e = await thrown {
                try await wrong.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
            }
            #expect((e.contains("535") || e.contains("timed out")) && !e.contains("nope"), "\(e)")
        }
        let none = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)")
        do {
            let e = await thrown {
                try await none.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("MAIL FROM") && e.contains("530"))
        }
        #expect(server.messages.count == 1)
    }

    @Test("a recipient refused for good is reported and the rest get the message; all refused or one busy throws")
    func recipients() async throws {
        let server = try SMTPReceiver()
        defer { server.stop() }
        let client = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)")
        let receipt = try await client.send(from: "lethe@example.com", to: ["nobody@example.com", "ok@example.com"], message: Array(Self.message.utf8))
        #expect(receipt.accepted == ["ok@example.com"])
        #expect(receipt.refused.map(\.recipient) == ["nobody@example.com"] && receipt.refused[0].reply.contains("550"))
        #expect(server.messages.map { $0["rcpt_tos"] as? [String] } == [["ok@example.com"]])
        do {
            let e = await thrown {
                try await client.send(from: "lethe@example.com", to: ["nobody@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("refused every recipient") && e.contains("550 5.1.1"))
        }
        do {
            let e = await thrown {
                try await client.send(from: "lethe@example.com", to: ["ok@example.com", "busy@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("451"))
        }
        #expect(server.messages.count == 1)
        // Addresses that could inject commands or headers are refused before connecting.
        await #expect(throws: LetheError.self) {
            try await client.send(from: "lethe@example.com", to: ["a@example.com>\r\nRCPT TO:<b@example.com"], message: [])
        }
    }

    @Test("STARTTLS when offered (the server requires it), verified against the configured CA")
    func startTLS() async throws {
        let tls = try SMTPReceiver.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: tls.cert).deletingLastPathComponent().path) }
        let server = try SMTPReceiver(starttls: tls)
        defer { server.stop() }
        let client = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)?ca=\(tls.cert)")
        try await client.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
        #expect(server.messages.map { $0["tls"] as? Bool } == [true])
        // Without trusting the certificate the handshake fails; with TLS off the server refuses the mail.
        let untrusted = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)")
        await #expect(throws: LetheError.self) {
            try await untrusted.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
        }
        let plain = try SMTPClient(url: "smtp://127.0.0.1:\(server.port)?tls=none")
        do {
            let e = await thrown {
                try await plain.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("530"))
        }
        #expect(server.messages.count == 1)
    }

    @Test("smtps:// speaks TLS from the first byte")
    func implicitTLS() async throws {
        let tls = try SMTPReceiver.selfSignedCertificate()
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: tls.cert).deletingLastPathComponent().path) }
        let server = try SMTPReceiver(smtps: tls)
        defer { server.stop() }
        let client = try SMTPClient(url: "smtps://127.0.0.1:\(server.port)?ca=\(tls.cert)")
        try await client.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
        #expect(server.messages.map { $0["tls"] as? Bool } == [true])
        let required = try SMTPReceiver()  // no STARTTLS offered: tls=require refuses to send
        defer { required.stop() }
        let strict = try SMTPClient(url: "smtp://127.0.0.1:\(required.port)?tls=require")
        do {
            let e = await thrown {
                try await strict.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("STARTTLS"))
        }
    }

    @Test("a server that accepts the connection and says nothing times out")
    func timeout() async throws {
        // A listening socket nobody accepts from: the kernel completes the handshake, nothing is sent.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        try #require(ok)
        let client = try SMTPClient(url: "smtp://127.0.0.1:\(UInt16(bigEndian: addr.sin_port))", timeout: 1)
        do {
            let e = await thrown {
                try await client.send(from: "lethe@example.com", to: ["a@example.com"], message: Array(Self.message.utf8))
            }
            #expect(e.contains("timed out"))
        }
    }

    @Test("bad SMTP URLs are refused naming the setting, without the password")
    func badURLs() {
        for url in ["http://x", "smtp://", "smtp://h:99999", "smtp://u@h", "smtp://h?tls=maybe", "smtp://h?x=1", "smtp://u:secretpw@mail.example.com?tls=none"]
        {
            do {
                let e = thrown {
                    try SMTPClient(url: url)
                }
                #expect(e.contains("notify.email.smtp") && !e.contains("secretpw"))
            }
        }
    }

    // MARK: the e-mail sink

    static let key = String(repeating: "5a", count: 32)

    static func plannedMessage() -> OutboxMessage {
        OutboxMessage(
            seq: 41, requestID: "r-0042", event: "planned",
            payload: .object([
                "event": .string("planned"), "request_id": .string("r-0042"), "subject_key": .string(key), "status": .string("planned"),
                "at": .int(1_764_560_000_000),
                "plan": .object([
                    "objects": .int(4), "rows": .int(16),
                    "datasets": .array([
                        .object(["name": .string("raw_events"), "objects": .int(3), "rows": .int(12), "derived_from": .array([]), "rebuild": .bool(false)]),
                        .object([
                            "name": .string("silver_sessions"), "objects": .int(1), "rows": .int(4), "derived_from": .array([.string("raw_events")]),
                            "rebuild": .bool(false),
                        ]),
                        .object([
                            "name": .string("gold_daily"), "objects": .int(0), "rows": .int(0), "derived_from": .array([.string("silver_sessions")]),
                            "rebuild": .bool(true),
                        ]),
                    ]),
                ]),
            ]), createdAt: 1_764_560_000_000)
    }

    /// The parts of a received message as Python's `email` package reads them.
    static func parse(_ data: String) throws -> [String: Any] {
        let folder = try PythonPeer.temporaryFolder("mail")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try data.write(toFile: folder + "/m.eml", atomically: true, encoding: .utf8)
        let script = """
            import email, email.policy, json, sys
            m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)
            out = {'subject': str(m['subject']), 'to': str(m['to']), 'message_id': str(m['message-id']), 'type': m.get_content_type(),
                   'text': m.get_body(('plain',)).get_content(), 'html': (m.get_body(('html',)) or m).get_content(),
                   'defects': len(m.defects)}
            print(json.dumps(out))
            """
        let out = try Peers.python(["-c", script, folder + "/m.eml"], what: "parsing the e-mail")
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
    }

    @Test("planned: the purge report (datasets, objects, rows, lineage, link) to every approver")
    func purgeReport() async throws {
        let server = try SMTPReceiver()
        defer { server.stop() }
        let sink = try EmailSink(
            .init(smtp: "smtp://127.0.0.1:\(server.port)", from: "lethe@example.com", approvers: ["ann@example.com", "bob@example.com"]),
            publicURL: "https://lethe.example.com/", logger: Logger(label: "test"))
        #expect(sink.wants("planned") && sink.wants("failed") && !sink.wants("filed") && !sink.wants("verified"))
        try await sink.deliver(Self.plannedMessage())
        let got = server.messages
        try #require(got.count == 1)
        #expect(got[0]["rcpt_tos"] as? [String] == ["ann@example.com", "bob@example.com"])
        let m = try Self.parse(got[0]["data"] as? String ?? "")
        #expect(m["defects"] as? Int == 0)
        #expect(m["type"] as? String == "multipart/alternative")
        #expect((m["subject"] as? String ?? "").contains("r-0042"))
        #expect(m["message_id"] as? String == "<lethe.41.r-0042@example.com>")
        let text = m["text"] as? String ?? ""
        for needle in [
            "raw_events", "silver_sessions", "gold_daily", "derived from raw_events", "derived from silver_sessions; rebuilt by its command",
            "Total: 4 objects, 16 rows in 3 datasets", "https://lethe.example.com/ui/requests/r-0042", Self.key,
        ] {
            #expect(text.contains(needle), "missing \(needle)")
        }
        #expect(text.contains(where: { $0 == "\r" }) == false)
        let row = text.split(separator: "\n").first { $0.contains("raw_events") && $0.contains("source") }
        #expect(row?.split(separator: " ").contains("12") == true)
        let html = m["html"] as? String ?? ""
        #expect(html.contains("<td>silver_sessions</td>") && html.contains("href=\"https://lethe.example.com/ui/requests/r-0042\""))
    }

    @Test("failed: a short alert with the reason; no link without a public URL")
    func failedAlert() async throws {
        let server = try SMTPReceiver()
        defer { server.stop() }
        let sink = try EmailSink(
            .init(smtp: "smtp://127.0.0.1:\(server.port)", from: "lethe@example.com", approvers: ["ann@example.com"]), publicURL: nil,
            logger: Logger(label: "test"))
        let failed = OutboxMessage(
            seq: 50, requestID: "r-0042", event: "failed",
            payload: .object([
                "event": .string("failed"), "request_id": .string("r-0042"), "subject_key": .string(Self.key), "status": .string("failed"),
                "at": .int(1_764_560_000_000), "reason": .string("gold_daily: the rebuild command exited with 1"),
            ]), createdAt: 1_764_560_000_000)
        try await sink.deliver(failed)
        let m = try Self.parse(server.messages.first?["data"] as? String ?? "")
        #expect(m["subject"] as? String == "[Lethe] Request r-0042 failed")
        let text = m["text"] as? String ?? ""
        #expect(text.contains("Reason: gold_daily: the rebuild command exited with 1") && !text.contains("http"))
    }

    @Test("bad e-mail settings are startup errors naming the field")
    func badSettings() {
        do {
            let e = thrown {
                try EmailSink(.init(smtp: "smtp://127.0.0.1:25", from: "lethe", approvers: ["a@example.com"]), publicURL: nil, logger: Logger(label: "t"))
            }
            #expect(e.contains("notify.email.from"))
        }
        do {
            let e = thrown {
                try EmailSink(.init(smtp: "smtp://127.0.0.1:25", from: "l@example.com", approvers: []), publicURL: nil, logger: Logger(label: "t"))
            }
            #expect(e.contains("notify.email.approvers"))
        }
        do {
            let e = thrown {
                try EmailSink(
                    .init(smtp: "smtp://127.0.0.1:25", from: "l@example.com", approvers: ["a@example.com", "b c@example.com"]), publicURL: nil,
                    logger: Logger(label: "t"))
            }
            #expect(e.contains("notify.email.approvers[1]"))
        }
    }
}
