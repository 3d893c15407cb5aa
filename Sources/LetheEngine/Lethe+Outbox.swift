import Foundation
import LetheCore
import LetheCatalog

// The notification outbox (issue 14), engine side: which request changes are notification events,
// and what their messages say. A message is written in the transaction of the change it tells of
// (`transition`, `apply`, the batch paths of `forget` and `approve`); the dispatcher delivers it.

/// A notification to write with a request change: the outbox message before it has its `seq`.
struct OutboxNote: Sendable {
    var requestID: String
    var event: String
    var payload: JSONValue
}

extension Lethe {
    /// The notification events of a request's change from `old` (nil: filed now) to `new`, in order:
    /// `filed` (and `planned` when it is filed planned), `approved` (from planned), `rejected`,
    /// `erased`, `verified` (from another status: a verification again of a verified request is no
    /// event), `failed`. A request taken back (`running` → `approved`), retried (`failed` → `approved`),
    /// started, swept, or whose raw id is destroyed is no event.
    static func notificationEvents(from old: RequestStatus?, to new: RequestStatus) -> [String] {
        var out: [String] = []
        if old == nil { out.append("filed") }
        guard old != new else { return out }
        switch new {
        case .planned: out.append("planned")
        case .approved where old == .planned: out.append("approved")
        case .rejected: out.append("rejected")
        case .erased: out.append("erased")
        case .verified: out.append("verified")
        case .failed: out.append("failed")
        default: break
        }
        return out
    }

    /// The messages of a request change (see `notificationEvents`). Payload: `event`, `request_id`,
    /// `subject_key` (the keyed hash), `status`, `at` (ISO 8601, UTC); `plan` on `planned` (datasets
    /// with their object and row counts, lineage and whether they are rebuilt; totals); `reason` on
    /// `failed` (a code and a fixed message: never the failure's own text, which may name objects).
    static func notifications(from old: ErasureRequest?, to new: ErasureRequest, plan: ErasurePlan? = nil) -> [OutboxNote] {
        let events = notificationEvents(from: old?.status, to: new.status)
        guard !events.isEmpty else { return [] }
        return events.map { e in
            var p: [String: JSONValue] = [
                "event": .string(e), "request_id": .string(new.id), "subject_key": .string(new.subjectKey.hex),
                "status": .string(e == "filed" ? RequestStatus.filed.rawValue : new.status.rawValue),
                "at": .string(isoTime(e == "filed" ? new.filedAt : new.updatedAt)),
            ]
            if e == "planned", let summary = planSummary(plan ?? new.plan.flatMap(ErasurePlan.decode)) { p["plan"] = summary }
            if e == "failed" {
                let (code, message) = failureCode(from: old, to: new)
                p["reason"] = .object(["code": .string(code), "message": .string(message)])
            }
            return OutboxNote(requestID: new.id, event: e, payload: .object(p))
        }
    }

    /// A plan as a notification tells it: per dataset its name, object and row counts, the datasets
    /// it derives from and whether it is rebuilt; the totals. No object key, no reference.
    static func planSummary(_ plan: ErasurePlan?) -> JSONValue? {
        guard let plan else { return nil }
        return .object([
            "datasets": .array(
                plan.datasets.map { d in
                    .object([
                        "name": .string(d.name), "objects": .int(Int64(d.objects.count)), "rows": .int(d.rows),
                        "derived_from": .array(d.derivedFrom.map(JSONValue.string)), "rebuild": .bool(d.rebuild != nil),
                    ])
                }),
            "objects": .int(Int64(plan.totalObjects)), "rows": .int(plan.totalRows),
        ])
    }

    /// Why a request failed, as a code and a fixed message that hold no personal data.
    static func failureCode(from old: ErasureRequest?, to new: ErasureRequest) -> (String, String) {
        switch old?.status {
        case .verified?:
            return ("residue_found", "a sweep of the lake found data of the subject after verification; the next run erases it")
        case .erased? where new.verification != old?.verification:
            return ("verification_failed", "verification found data of the subject after erasure; the next run erases it again")
        case .erased?:
            return ("interrupted", "the run's verification was interrupted too often; the next run verifies again")
        default:
            return ("erasure_failed", "a step of the erasure failed; the request shows which (lethe show ID), the next run retries")
        }
    }

    static func isoTime(_ ms: Int64) -> String { ISOTime.milliseconds(ms) }

    /// True when this engine writes outbox messages: `notify:` names a sink (webhooks, e-mail), or
    /// `outboxAlways` is set (a server with sinks of its own, tests). Without a sink nothing would
    /// ever read them.
    public var writesOutbox: Bool { outboxAlways || !config.notify.webhooks.isEmpty || config.notify.email != nil }

    /// Writes notes in the transaction of their change (nothing when `writesOutbox` is false).
    func enqueue(_ notes: [OutboxNote], _ tx: any StateTransaction, at: Int64) throws {
        guard writesOutbox else { return }
        for n in notes { try tx.outbox.enqueue(requestID: n.requestID, event: n.event, payload: n.payload, at: at) }
    }
}
