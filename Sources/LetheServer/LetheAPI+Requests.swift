import Foundation
import Hummingbird
import LetheCatalog
import LetheCore
import LetheEngine

// Erasure requests: file, list (paged), show, approve, reject, certificate.

extension LetheAPI {
    /// Requests one page of `GET /v1/requests` returns unless `limit` says otherwise, and at most.
    static let defaultPage: Int64 = 100
    static let maxPage: Int64 = 1_000

    func addRequestRoutes(_ router: Router<Context>) {
        on(router, .fileRequest) { request, _, p in try await fileRequests(request, by: p!) }
        on(router, .listRequests) { request, _, p in try await listRequests(request, for: p!) }
        on(router, .showRequest) { _, context, p in
            var r = try await visibleRequest(context, to: p!)
            if let plan = r.plan.flatMap(ErasurePlan.decode) { r.plan = try await lethe.resolvedPlan(plan).json }
            return Self.json(report: RequestView(r, withPlan: true))
        }
        on(router, .approve) { request, context, p in
            _ = try await objectBody(request, allowed: [], optional: true)
            let id = try requestID(context)
            let approved = try await lethe.approve([id], by: p!.name)
            trigger.wake()
            return Self.json(approved.first.map { RequestView($0, withPlan: false).jsonLine } ?? "{}")
        }
        on(router, .reject) { request, context, p in
            let body = try await objectBody(request, allowed: ["reason"])
            guard case .string(let reason)? = body["reason"], !reason.isEmpty else {
                throw APIError.badRequest("`reason` is required: a non-empty string")
            }
            let r = try await lethe.reject(try requestID(context), by: p!.name, reason: reason)
            return Self.json(RequestView(r, withPlan: false).jsonLine)
        }
        on(router, .certificate) { _, context, p in
            let r = try await visibleRequest(context, to: p!)
            return Self.json(try await lethe.certificate(id: r.id).text)
        }
    }

    /// `POST /v1/requests`: `{"subjects": [...], "reason": "..."}` → `{"requests": [RequestView…]}` (201).
    func fileRequests(_ request: Request, by p: Principal) async throws -> Response {
        let body = try await objectBody(request, allowed: ["subjects", "reason"])
        guard case .array(let given)? = body["subjects"], !given.isEmpty else {
            throw APIError.badRequest("`subjects` is required: a non-empty array of subjects")
        }
        guard given.count <= maxSubjects else {
            throw APIError.badRequest("at most \(maxSubjects) subjects a request; split the list")
        }
        var reason = "erasure request"
        switch body["reason"] {
        case nil, .null?: break
        case .string(let r)?: reason = r
        default: throw APIError.badRequest("`reason` must be a string")
        }
        let ids = try given.enumerated().map { try subject($1, origin: "subjects[\($0)]") }
        let filed = try await filings.forget(ids, reason: reason, by: p.name)
        return Self.json(#"{"requests":["# + filed.map { RequestView($0, withPlan: false).jsonLine }.joined(separator: ",") + "]}", .created)
    }

    /// `GET /v1/requests?status=&cursor=&limit=`: filing order; a requester sees only its own.
    func listRequests(_ request: Request, for p: Principal) async throws -> Response {
        let q = request.uri.queryParameters
        var status: RequestStatus?
        if let s = q["status"] {
            guard let st = RequestStatus(rawValue: String(s)) else {
                throw APIError.badRequest(
                    "unknown status `\(s)` (known: \(RequestStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            status = st
        }
        let limit = Int(try Self.intQuery(request, "limit", 1...Self.maxPage) ?? Self.defaultPage)
        var after = try q["cursor"].map { try RequestCursor.decode(String($0)) }
        let onlyOwn = p.role == .requester
        // Each read asks for no more than the page still lacks, so a page always ends where a read of the
        // state ends, and the state's own cursor (wrapped) is the next page's.
        var items: [ErasureRequest] = []
        var next: String?
        while items.count < limit {
            let page = try await lethe.requestPage(status: status, after: after, limit: limit - items.count)
            items += onlyOwn ? page.items.filter { $0.requestedBy == p.name } : page.items
            next = page.next
            guard let n = page.next else { break }
            after = n
        }
        let views = items.map { RequestView($0, withPlan: false).jsonLine }.joined(separator: ",")
        let cursor = next.map { JSONValue.string(RequestCursor.encode($0)).text } ?? "null"
        return Self.json(#"{"next_cursor":\#(cursor),"requests":[\#(views)]}"#)
    }

    /// The `{id}` path parameter.
    func requestID(_ context: Context) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw APIError.badRequest("a request id is required") }
        return id
    }

    /// The request `{id}` names, if the caller may see it: a requester sees only its own (404 for the
    /// others: their existence is not told).
    func visibleRequest(_ context: Context, to p: Principal) async throws -> ErasureRequest {
        let id = try requestID(context)
        let r = try await lethe.request(id)
        if p.role == .requester && r.requestedBy != p.name { throw APIError.notFound("no request \(id)") }
        return r
    }

    /// A subject as the API takes it: a string (one id, exactly), an array of a composite subject's parts
    /// (each a string or `{"hex": "…"}`), `{"hex": "…"}` (an id's bytes), or `{"fields": {"field": value, …}}`
    /// naming a dataset's subject fields (422 `unknown_subject_field` for a field no dataset's subject has).
    /// 422 `subject_mismatch` when the subject cannot name anyone in this lake (see `LakeConfig.check`).
    func subject(_ v: JSONValue, origin: String) throws -> SubjectID {
        let typed: TypedSubject
        switch v {
        case .string, .array:
            typed = try SubjectInput.json(v.text, origin: origin)
        case .object(let o) where o.count == 1:
            if case .string(let h)? = o["hex"] {
                typed = try SubjectInput.hex(h, origin: origin)
            } else if case .object(let fields)? = o["fields"] {
                typed = try SubjectInput.json(try fieldParts(fields, origin: origin).text, origin: origin)
            } else {
                throw APIError.badRequest("\(origin): an object subject is {\"hex\": \"…\"} or {\"fields\": {…}}")
            }
        default:
            throw APIError.badRequest(
                "\(origin): a subject is a string, an array of a composite subject's parts, {\"hex\": \"…\"} or {\"fields\": {…}}")
        }
        do {
            return try lethe.config.check(typed)
        } catch let e as LetheError {
            throw APIError.unprocessable("subject_mismatch", e.description)
        }
    }

    /// `{"fields": {…}}`: the parts in the order of the dataset whose subject has exactly these fields.
    func fieldParts(_ fields: [String: JSONValue], origin: String) throws -> JSONValue {
        let specs = lethe.config.datasets.compactMap { $0.subject?.fields.map(\.description) }
        let known = Set(specs.joined())
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.unprocessable(
                "unknown_subject_field",
                "\(origin): `\(unknown)` is not a subject field of any dataset (subject fields: \(known.sorted().joined(separator: ", ")))")
        }
        guard let order = specs.first(where: { Set($0) == Set(fields.keys) && $0.count == fields.count }) else {
            throw APIError.unprocessable(
                "subject_mismatch", "\(origin): no dataset's subject has exactly the fields \(fields.keys.sorted().joined(separator: ", "))")
        }
        return .array(
            try order.map { f -> JSONValue in
                switch fields[f]! {
                case .string(let s): return .string(s)
                case .object(let h) where h.count == 1 && h["hex"] != nil: return .object(h)
                default: throw APIError.badRequest("\(origin): field `\(f)` must be a string or {\"hex\": \"…\"}")
                }
            })
    }
}

/// The opaque cursor of `GET /v1/requests`: the state store's cursor after the last request a page
/// examined, base64url-encoded behind a version tag. Anything else is a bad cursor (400).
enum RequestCursor {
    static func encode(_ cursor: String) -> String {
        Data(("r1:" + cursor).utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) throws -> String {
        var b = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        guard text.count <= 256, let data = Data(base64Encoded: b), let s = String(data: data, encoding: .utf8), s.hasPrefix("r1:"),
            s.count > 3, s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { throw APIError.badRequest("bad cursor: pass `next_cursor` of the previous page as it is") }
        return String(s.dropFirst(3))
    }
}
