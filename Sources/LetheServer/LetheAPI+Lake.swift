import Foundation
import Hummingbird
import LetheCatalog
import LetheCore
import LetheEngine
import NIOCore

// The lake and the logs: locate, the audit log and its head, the stream deletion set, index now.

extension LetheAPI {
    static let defaultAuditPage: Int64 = 1_000
    static let maxAuditPage: Int64 = 10_000

    func addLakeRoutes(_ router: Router<Context>) {
        on(router, .locateSubject) { request, _, _ in
            // The subject in the body, never in the URL: URLs end up in proxy and access logs.
            let body = try await objectBody(request, allowed: ["subject"])
            guard let given = body["subject"] else { throw APIError.badRequest("`subject` is required") }
            let s = try subject(given, origin: "subject")
            return Self.json(LocateReport(try await lethe.locateRows(s)).jsonText)
        }
        on(router, .auditLog) { request, _, _ in
            let after = try Self.intQuery(request, "after", 0...Int64.max) ?? 0
            let limit = Int(try Self.intQuery(request, "limit", 1...Self.maxAuditPage) ?? Self.defaultAuditPage)
            let lines = try await lethe.auditLines(after: after, limit: limit)
            let entries = lines.map { ReportEncoder.text(AuditLineView($0)) }.joined(separator: ",")
            let next = lines.count == limit ? lines.last.map { String($0.entry.seq) } ?? "null" : "null"
            return Self.json(#"{"entries":[\#(entries)],"next_after":\#(next)}"#)
        }
        on(router, .auditHead) { _, _, _ in
            let head = try await lethe.auditHead()
            return Self.json(
                JSONValue.object([
                    "seq": .int(head?.seq ?? 0), "hash": head.map { .string($0.hash) } ?? .null,
                    "head": .string(head.map { "\($0.seq):\($0.hash)" } ?? "-"),
                ]).text)
        }
        on(router, .deletions) { request, _, _ in
            var cursor = Int64.min
            if let since = request.uri.queryParameters["since"] {
                if let ms = Int64(String(since)), ms >= 0 {
                    cursor = ms
                } else if let d = ISO8601DateFormatter().date(from: String(since)) {
                    cursor = Int64(d.timeIntervalSince1970 * 1000)
                } else {
                    throw APIError.badRequest("`since` takes milliseconds since the epoch (0 or more) or an ISO 8601 time")
                }
            }
            return Self.json(report: DeletionsReport(try await lethe.deletionTags(since: cursor), since: cursor))
        }
        on(router, .index) { request, _, _ in
            let body = try await objectBody(request, allowed: ["datasets"], optional: true)
            var only: [String]?
            switch body["datasets"] {
            case nil, .null?: break
            case .array(let a)?:
                only = try a.map { v -> String in
                    guard case .string(let name) = v else { throw APIError.badRequest("`datasets` must be an array of dataset names") }
                    guard lethe.config.datasets.contains(where: { $0.name == name }) else {
                        throw APIError.badRequest("unknown dataset `\(name)`")
                    }
                    return name
                }
            default: throw APIError.badRequest("`datasets` must be an array of dataset names")
            }
            return Self.json(report: try await lethe.index(datasets: only))
        }
    }

    func addServiceRoutes(_ router: Router<Context>) {
        on(router, .keys) { _, _, _ in
            let key: [UInt8]
            do {
                key = try lethe.signingPublicKey
            } catch let e as LetheError {
                throw APIError(.serviceUnavailable, "unavailable", e.description)
            }
            // As `lethe certificate key --json` prints it, in a list (room for a key rotated out).
            let k = JSONValue.object([
                "alg": .string("Ed25519"), "public_key": .string(Data(key).base64EncodedString()),
                "key_fingerprint": .string(Lethe.keyFingerprint(key)),
            ])
            return Self.json(JSONValue.object(["keys": .array([k])]).text)
        }
        on(router, .healthz) { _, _, _ in Self.json(#"{"status":"ok"}"#) }
        on(router, .readyz) { _, _, _ in
            do {
                try await lethe.checkReachable()
            } catch {
                let why = (error as? LetheError)?.description ?? "\(error)"
                throw APIError(.serviceUnavailable, "unavailable", "not ready: \(why)")
            }
            return Self.json(#"{"status":"ready"}"#)
        }
        on(router, .metrics) { _, _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            let text = try await metrics.text(lethe: lethe, deadlineDays: serve.deadlineDays)
            return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
        on(router, .openapi) { _, _, _ in
            var h = HTTPFields()
            h[.contentType] = "application/yaml"
            return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
    }
}
