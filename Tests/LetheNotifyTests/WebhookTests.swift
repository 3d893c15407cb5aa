import Foundation
import LetheCatalog
import LetheCore
import LetheNotify
import LetheTestSupport
import Testing

/// Signed webhooks, delivered to a real HTTP receiver (Python, on loopback) that checks each
/// signature with the verification code docs/notifications.md shows.
@Suite(.timeLimit(.minutes(10))) struct WebhookTests {
    static let secret = "whsec-test-\(UInt64.random(in: 0...UInt64.max))"

    static func planned(seq: Int64 = 7) -> OutboxMessage {
        OutboxMessage(
            seq: seq, requestID: "r-abc", event: "planned",
            payload: .object([
                "event": .string("planned"), "request_id": .string("r-abc"), "subject_key": .string(String(repeating: "ab", count: 32)),
                "status": .string("planned"), "at": .int(1_764_560_000_000),
                "plan": .object(["objects": .int(3), "rows": .int(12), "datasets": .array([])]),
            ]), createdAt: 1_764_560_000_123)
    }

    @Test("a signature verifies over the exact body and secret, within the tolerance only")
    func signature() {
        let body = Array(#"{"event":"planned"}"#.utf8)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let h = WebhookSignature.header(timestamp: 1_800_000_000, body: body, secret: Array("s3cret".utf8))
        #expect(h.hasPrefix("t=1800000000,v1=") && h.count == "t=1800000000,v1=".count + 64)
        #expect(WebhookSignature.verify(header: h, body: body, secret: Array("s3cret".utf8), now: now))
        #expect(!WebhookSignature.verify(header: h, body: body + [32], secret: Array("s3cret".utf8), now: now))  // body changed
        #expect(!WebhookSignature.verify(header: h, body: body, secret: Array("other".utf8), now: now))  // wrong secret
        // A replay: the same header 301 s later (default tolerance 300 s), or from the future.
        #expect(!WebhookSignature.verify(header: h, body: body, secret: Array("s3cret".utf8), now: now.addingTimeInterval(301)))
        #expect(WebhookSignature.verify(header: h, body: body, secret: Array("s3cret".utf8), now: now.addingTimeInterval(299)))
        #expect(!WebhookSignature.verify(header: h, body: body, secret: Array("s3cret".utf8), now: now.addingTimeInterval(-301)))
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replacingOccurrences(of: "t=1800000000", with: "t=1800000100")
        #expect(!WebhookSignature.verify(header: moved, body: body, secret: Array("s3cret".utf8), now: now))
        // Several v1 values (secret rotation): one match is enough. Malformed headers are false.
        let rotated = "t=1800000000,v1=" + String(repeating: "0", count: 64) + "," + h.split(separator: ",")[1]
        #expect(WebhookSignature.verify(header: rotated, body: body, secret: Array("s3cret".utf8), now: now))
        for bad in ["", "t=1800000000", "v1=abc", "t=x,v1=00", "garbage"] {
            #expect(!WebhookSignature.verify(header: bad, body: body, secret: Array("s3cret".utf8), now: now))
        }
    }

    @Test("the HMAC matches Python's hmac module (the documented receiver code)")
    func interop() throws {
        let body = #"{"data":{"x":"é"},"seq":1}"#
        let mine = WebhookSignature.mac(timestamp: 1_700_000_000, body: Array(body.utf8), secret: Array("k€y".utf8))
        let theirs = try Peers.python(
            [
                "-c",
                "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), b'1700000000.' + sys.argv[2].encode(), hashlib.sha256).hexdigest())",
                "k€y", body,
            ], what: "python hmac")
        #expect(mine == theirs.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("a delivery is POSTed as signed JSON with the delivery id; the receiver verifies it")
    func delivers() async throws {
        let receiver = try WebhookReceiver(secret: Self.secret)
        defer { receiver.stop() }
        let sink = try WebhookSink(.init(url: receiver.url + "/hook", secretEnv: "HOOK_SECRET"), environment: ["HOOK_SECRET": Self.secret])
        #expect(sink.name == "webhook:" + receiver.url + "/hook")
        try await sink.deliver(Self.planned())
        let got = receiver.received
        try #require(got.count == 1)
        let d = got[0]
        #expect(d["path"] as? String == "/hook")
        #expect(d["verified"] as? Bool == true)
        let headers = d["headers"] as? [String: String] ?? [:]
        #expect(headers["lethe-delivery"] == "7")
        #expect(headers["lethe-event"] == "planned")
        #expect(headers["content-type"] == "application/json")
        let body = try JSONValue.parse(Array((d["body"] as? String ?? "").utf8))
        #expect(body["seq"]?.int == 7 && body["event"]?.string == "planned" && body["request_id"]?.string == "r-abc")
        #expect(body["at"]?.string == "2025-12-01T03:33:20.123Z")
        #expect(body["data"] == Self.planned().payload)
        // The exact bytes sent are what the sink documents.
        #expect(d["body"] as? String == String(decoding: WebhookSink.body(Self.planned()), as: UTF8.self))
    }

    @Test("a receiver with another secret rejects the signature")
    func wrongSecret() async throws {
        let receiver = try WebhookReceiver(secret: "not-the-hook-secret")
        defer { receiver.stop() }
        let sink = try WebhookSink(.init(url: receiver.url, secretEnv: "S"), environment: ["S": Self.secret])
        try await sink.deliver(Self.planned())
        #expect(receiver.received.map { $0["verified"] as? Bool } == [false])
    }

    @Test("a 500 answer, a dead port and a slow receiver throw (to be retried), naming the hook")
    func failures() async throws {
        let receiver = try WebhookReceiver(secret: Self.secret)
        defer { receiver.stop() }
        let failing = try WebhookSink(.init(url: receiver.url + "/fail", secretEnv: "S"), environment: ["S": Self.secret])
        do {
            let e = await thrown {
                try await failing.deliver(Self.planned())
            }
            #expect(e.contains("HTTP 500") && e.contains("/fail") && e.contains("boom"))
        }
        #expect(receiver.received.count == 1)  // it did arrive: refused, not lost

        // Nothing listens on port 1: connection refused.
        let dead = try WebhookSink(.init(url: "http://127.0.0.1:1/hook", secretEnv: "S"), environment: ["S": Self.secret])
        await #expect(throws: LetheError.self) { try await dead.deliver(Self.planned()) }

        let slow = try WebhookSink(.init(url: receiver.url + "/slow", secretEnv: "S"), environment: ["S": Self.secret], timeout: 1)
        // The receiver answers after 5 s: only the 1 s timeout makes this throw (no wall-time assertion: a loaded
        // machine's test run starves the cooperative pool; the suite's time limit is the hang guard).
        await #expect(throws: LetheError.self) { try await slow.deliver(Self.planned()) }
    }

    @Test("events filter: an empty list wants all; a list wants only its events")
    func filter() throws {
        let all = try WebhookSink(.init(url: "https://example.com/h", secretEnv: "S"), environment: ["S": "x"])
        #expect(NotifyConfig.events.allSatisfy(all.wants))
        let some = try WebhookSink(.init(url: "https://example.com/h", secretEnv: "S", events: ["verified", "failed"]), environment: ["S": "x"])
        #expect(some.wants("verified") && some.wants("failed"))
        #expect(!some.wants("planned") && !some.wants("filed") && !some.wants("erased"))
    }

    @Test("startup errors name the setting: a missing secret variable, a bad URL, an unknown event")
    func startupErrors() {
        do {
            let e = thrown {
                try WebhookSink(.init(url: "https://example.com/h", secretEnv: "LETHE_NO_SUCH_VAR"), index: 2, environment: [:])
            }
            #expect(e.contains("LETHE_NO_SUCH_VAR") && e.contains("notify.webhooks[2].secret_env"))
        }
        #expect(throws: LetheError.self) { try WebhookSink(.init(url: "https://example.com/h", secretEnv: "S"), environment: ["S": ""]) }
        #expect(throws: LetheError.self) { try WebhookSink(.init(url: "ftp://example.com/h", secretEnv: "S"), environment: ["S": "x"]) }
        #expect(throws: LetheError.self) { try WebhookSink(.init(url: "https://u:p@example.com/h", secretEnv: "S"), environment: ["S": "x"]) }
        do {
            let e = thrown {
                try WebhookSink(.init(url: "https://example.com/h", secretEnv: "S", events: ["deleted"]), environment: ["S": "x"])
            }
            #expect(e.contains("deleted") && e.contains("events"))
        }
    }
}
