import Foundation
import LetheCore
import LetheCatalog

extension Lethe {
    /// Files and plans one erasure request per subject. A subject that already has
    /// an open request (not rejected, not verified) gets that request back.
    public func forget(_ subjects: [SubjectID], reason: String, by requester: String) async throws -> [ErasureRequest] {
        guard !requester.isEmpty else { throw LetheError(.badUsage, "name who files the request (--by)") }
        var out: [ErasureRequest] = []
        let open = try await meta.requests(status: nil).filter { !$0.status.isTerminal }
        var openByKey: [SubjectKey: ErasureRequest] = [:]
        for r in open { openByKey[r.subjectKey] = r }
        for s in subjects {
            guard !s.bytes.isEmpty else { throw LetheError(.badInput, "an empty subject id") }
            let k = key(for: s)
            if let existing = openByKey[k] { out.append(existing); continue }
            let id = Self.newRequestID()
            var filed = ErasureRequest(id: id, subjectKey: k, sealedSubject: try secrets.seal(s, requestID: id),
                                       reason: reason, requestedBy: requester, at: now())
            filed.streamTag = secrets.streamTag(s)
            try await meta.insertRequest(filed)
            try await audit("filed", request: id, actor: requester, ["subject_key": .string(k.hex), "reason": .string(reason)])
            let plan = try await plan(k, nfc: nfcKey(for: s))
            let planned = try RequestLifecycle.apply(.planned(plan: plan.json), to: filed).get()
            try await meta.updateRequest(planned, expecting: .filed)
            try await audit("planned", request: id, actor: "lethe", [
                "subject_key": .string(k.hex), "datasets": .int(Int64(plan.datasets.count)),
                "objects": .int(Int64(plan.totalObjects)), "rows": .int(plan.totalRows),
            ])
            openByKey[k] = planned
            out.append(planned)
        }
        return out
    }

    static func newRequestID() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var rng = SystemRandomNumberGenerator()
        return "r-" + String((0..<10).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    /// A request by id, or `.notFound`.
    public func request(_ id: String) async throws -> ErasureRequest {
        guard let r = try await meta.request(id: id) else { throw LetheError(.notFound, "no request \(id)") }
        return r
    }

    /// Applies a lifecycle event to a stored request (compare-and-swap on its status).
    @discardableResult
    func transition(_ r: ErasureRequest, _ e: RequestEvent) async throws -> ErasureRequest {
        let n = try RequestLifecycle.apply(e, to: r).get()
        try await meta.updateRequest(n, expecting: r.status)
        return n
    }

    /// Approves planned requests (four eyes: never by their requester).
    public func approve(_ ids: [String], by approver: String) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        for id in ids {
            let r = try await request(id)
            let n = try await transition(r, .approve(by: approver, at: now()))
            try await audit("approved", request: id, actor: approver, ["subject_key": .string(r.subjectKey.hex)])
            out.append(n)
        }
        return out
    }

    /// Approves every planned request not filed by `approver`; returns them and the ones skipped (own requests).
    public func approveAll(by approver: String) async throws -> (approved: [ErasureRequest], skipped: [ErasureRequest]) {
        let planned = try await meta.requests(status: .planned)
        let mine = planned.filter { $0.requestedBy == approver }
        let ok = try await approve(planned.filter { $0.requestedBy != approver }.map(\.id), by: approver)
        return (ok, mine)
    }

    public func reject(_ id: String, by who: String, reason: String) async throws -> ErasureRequest {
        guard !reason.isEmpty else { throw LetheError(.badUsage, "a rejection needs a reason (--reason)") }
        let r = try await request(id)
        let n = try await transition(r, .reject(by: who, reason: reason, at: now()))
        try await audit("rejected", request: id, actor: who, ["subject_key": .string(r.subjectKey.hex), "reason": .string(reason)])
        return n
    }

    /// Gives stream tags to requests filed before stream filtering existed, from their
    /// sealed subject (requests verified before that have no raw id left and stay without
    /// a tag). Bumps `updated_at` so running filters pick them up. Returns how many.
    @discardableResult
    public static func backfillStreamTags(meta: any Metastore, secrets: StateSecrets, now: Int64) async throws -> Int {
        var n = 0
        for r in try await meta.requestsWithoutStreamTag() {
            guard let sealed = r.sealedSubject else { continue }
            var u = r
            u.streamTag = secrets.streamTag(try secrets.unseal(sealed, requestID: r.id))
            u.updatedAt = max(now, r.updatedAt)
            do {
                try await meta.updateRequest(u, expecting: r.status)
                n += 1
            } catch let e as LetheError where e.code == .conflict {
                continue  // changed meanwhile; the next run tries again
            }
        }
        return n
    }
}
