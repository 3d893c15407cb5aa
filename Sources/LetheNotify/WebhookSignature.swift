import Crypto
import LetheCore
public import Foundation

/// The `Lethe-Signature` header of a webhook delivery: `t=<unix seconds>,v1=<hex HMAC-SHA-256>`,
/// the HMAC over `"<t>.<body>"` (the timestamp, a dot, the exact body bytes) under the hook's secret.
///
/// A receiver recomputes it over the body as received and refuses a timestamp older (or newer)
/// than a tolerance: a delivery captured on the wire cannot be replayed later. During a secret
/// rotation a header may carry several `v1=` values; one match is enough.
public enum WebhookSignature {
    /// The default tolerance of `verify`, seconds.
    public static let defaultTolerance: Double = 300

    /// The hex HMAC-SHA-256 of `"<timestamp>.<body>"` under `secret`.
    public static func mac(timestamp: Int64, body: [UInt8], secret: [UInt8]) -> String {
        var h = HMAC<SHA256>(key: SymmetricKey(data: secret))
        h.update(data: Array("\(timestamp).".utf8))
        h.update(data: body)
        return h.finalize().map { b in
            let s = String(b, radix: 16)
            return b < 16 ? "0" + s : s
        }.joined()
    }

    /// The header value for `body` sent at `timestamp` (unix seconds).
    public static func header(timestamp: Int64, body: [UInt8], secret: [UInt8]) -> String {
        "t=\(timestamp),v1=\(mac(timestamp: timestamp, body: body, secret: secret))"
    }

    /// True if `header` carries a `v1` signature of `body` under `secret` whose timestamp is within
    /// `tolerance` seconds of `now`. Compares in constant time; a malformed header is false.
    public static func verify(
        header: String, body: [UInt8], secret: [UInt8], now: Date = Date(), tolerance: Double = defaultTolerance
    ) -> Bool {
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "t": timestamp = Int64(kv[1])
            case "v1": if let b = Hex.decode(String(kv[1])) { signatures.append(b) }
            default: continue  // other schemes are ignored
            }
        }
        guard let t = timestamp, !signatures.isEmpty, abs(now.timeIntervalSince1970 - Double(t)) <= tolerance else { return false }
        var h = HMAC<SHA256>(key: SymmetricKey(data: secret))
        h.update(data: Array("\(t).".utf8))
        h.update(data: body)
        let expected = h.finalize()
        let mac = Array(expected)
        return signatures.contains { constantTimeEqual(mac, $0) }
    }

    /// `verify` for a body held as text (its UTF-8 bytes) and a secret as text.
    public static func verify(header: String, body: String, secret: String, now: Date = Date(), tolerance: Double = defaultTolerance) -> Bool {
        verify(header: header, body: Array(body.utf8), secret: Array(secret.utf8), now: now, tolerance: tolerance)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool { LetheCore.constantTimeEqual(a, b) }
}
