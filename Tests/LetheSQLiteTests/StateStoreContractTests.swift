import Foundation
import Testing
import LetheCatalog
import LetheCore
import LetheSQLite
import LetheTesting

/// The SQLite stores the state store contract runs against.
enum SQLiteStoreKind: String, CaseIterable, Sendable {
    /// `segmented`: a file store writing every batch of postings as a sorted segment (issue 16).
    case file, memory, faultInjectingPassthrough, segmented

    /// A fresh store keyed with `key`; `folder` is a path for a file store (not created).
    func make(_ folder: String, key: [UInt8]) throws -> any StateStore {
        switch self {
        case .file:
            let s = try SQLiteStateStore(folder: folder)
            s.setAuditKey(key)
            return s
        case .memory:
            let s = try SQLiteStateStore(inMemory: nil)
            s.setAuditKey(key)
            return s
        case .segmented:
            let s = try SQLiteStateStore(folder: folder, segmentMinimum: 1)
            s.setAuditKey(key)
            return s
        case .faultInjectingPassthrough:
            return FaultInjectingStateStore(base: try SQLiteStoreKind.memory.make(folder, key: key))
        }
    }
}

@Test(arguments: SQLiteStoreKind.allCases, StateStoreContract.Check.allCases)
func stateStoreContract(_ kind: SQLiteStoreKind, _ check: StateStoreContract.Check) async throws {
    let folder = temporaryStateFolder("contract-\(kind.rawValue)-\(check.rawValue)")
    defer { removeFolder(folder) }
    let key = [UInt8](repeating: 0x42, count: 32)
    try await StateStoreContract.run(check, auditKey: key) { try kind.make(folder, key: key) }
}
