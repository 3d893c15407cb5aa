import Foundation
import LetheCore

/// `quickstart --json`: the sample lake, the request it forgot end to end, and the audit log's state.
public struct QuickstartReport: Codable, Sendable, Equatable {
    public var dir: String
    public var events: Int
    public var subjects: Int
    public var request: RequestView
    public var objectsBefore: Int
    public var objectsAfter: Int
    public var rowsDropped: Int64
    public var auditEntries: Int
    public var auditOk: Bool

    public init(
        dir: String, events: Int, subjects: Int, request: RequestView, objectsBefore: Int, objectsAfter: Int,
        rowsDropped: Int64, auditEntries: Int, auditOk: Bool
    ) {
        self.dir = dir; self.events = events; self.subjects = subjects; self.request = request
        self.objectsBefore = objectsBefore; self.objectsAfter = objectsAfter; self.rowsDropped = rowsDropped
        self.auditEntries = auditEntries; self.auditOk = auditOk
    }

    enum CodingKeys: String, CodingKey {
        case dir, events, subjects, request, objectsBefore = "objects_before", objectsAfter = "objects_after"
        case rowsDropped = "rows_dropped", auditEntries = "audit_entries", auditOk = "audit_ok"
    }
}
