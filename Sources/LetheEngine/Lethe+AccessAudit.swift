import Foundation
public import LetheCore
import LetheCatalog

// Access audit (issue 14: "every API call is audited with the principal"): the server hands each
// HTTP call to `AccessAuditService` (LetheRuntime), which writes them in batches through
// `recordAPICalls`: one `api_calls` audit entry per batch, one transaction.

/// One call of the HTTP API as the audit log records it: never a body, a query string or a subject.
public struct APICall: Sendable, Equatable {
    /// Who called (nil: not authenticated, e.g. a 401).
    public var principal: Principal?
    /// `GET`, `POST`, …
    public var method: String
    /// The route template (`/v1/requests/{id}`), never the URL as sent.
    public var route: String
    /// The HTTP status answered.
    public var status: Int
    /// The erasure request the call was about, if any (`/v1/requests/{id}/approve`).
    public var requestID: String?
    /// When it was answered (ms since the epoch).
    public var at: Int64

    public init(principal: Principal?, method: String, route: String, status: Int, requestID: String? = nil, at: Int64) {
        self.principal = principal; self.method = method; self.route = route; self.status = status
        self.requestID = requestID; self.at = at
    }
}

extension Lethe {
    /// Writes calls of the HTTP API to the audit log: one `api_calls` entry in one transaction. The
    /// entry's details: `count`; `principals`, each `{"name": {"text", "hmac"}, "role"}` (a token's name
    /// by reference: it may be a person's name, and erasure can purge it); `calls`, each
    /// `[at, principal index or null, method, route, status, request id or null]`. The requests named
    /// find the entry through `AuditReader.entries(requestID:)`.
    public func recordAPICalls(_ calls: [APICall]) async throws {
        try await durably {
            guard !calls.isEmpty else { return }
            let at = now()
            var index: [Principal: Int] = [:]
            var principals: [Principal] = []
            for c in calls {
                if let p = c.principal, index[p] == nil {
                    index[p] = principals.count
                    principals.append(p)
                }
            }
            let rows: [JSONValue] = calls.map { c in
                .array([
                    .int(c.at), c.principal.flatMap { index[$0] }.map { .int(Int64($0)) } ?? .null, .string(c.method), .string(c.route),
                    .int(Int64(c.status)), c.requestID.map(JSONValue.string) ?? .null,
                ])
            }
            let ids = Array(Set(calls.compactMap(\.requestID))).sorted()
            let known = Set(try await meta.requests(ids: ids).map(\.id))
            let requestIDs = ids.filter { known.contains($0) }
            let people = principals
            try await meta.transaction("cannot record \(calls.count) API call(s) in the audit log") { tx in
                var ps: [JSONValue] = []
                for p in people {
                    let ref = try tx.auditText(p.name)
                    ps.append(.object(["name": .object(["text": .int(ref.id), "hmac": .string(ref.hmac)]), "role": .string(p.role.rawValue)]))
                }
                let details = JSONValue.object(["count": .int(Int64(rows.count)), "principals": .array(ps), "calls": .array(rows)]).text
                try tx.audit.append(.apiCalls, requestIDs: requestIDs, actor: "lethe", details: details, at: at)
            }
        }
    }
}
