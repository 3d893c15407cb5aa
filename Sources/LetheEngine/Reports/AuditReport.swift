import Foundation
import LetheCore
import LetheCatalog

extension Lethe {
    /// An audit entry as people read it: the texts it references (reasons, actors' names) resolved,
    /// or `[erased]` where erasure purged them.
    public struct AuditLine: Sendable {
        public var entry: AuditEntry
        public var actor: String?
        public var details: String
    }
}
