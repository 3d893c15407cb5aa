import Foundation
import Testing
import LetheCore
import LetheStorage
import LetheTesting

/// The stores the contract runs against.
enum StoreKind: String, CaseIterable, Sendable {
    case local, localWithoutIOPool, memory, faultInjectingPassthrough

    /// A fresh store; `folder` is an empty folder for a local one.
    func make(_ folder: String) -> any ObjectStore {
        switch self {
        case .local: return LocalObjectStore(root: folder + "/lake")
        case .localWithoutIOPool:
            var s = LocalObjectStore(root: folder + "/lake")
            s.ioPool = nil
            return s
        case .memory: return InMemoryObjectStore()
        case .faultInjectingPassthrough: return FaultInjectingStore()
        }
    }
}

@Test(arguments: StoreKind.allCases, ObjectStoreContract.Check.allCases)
func objectStoreContract(_ kind: StoreKind, _ check: ObjectStoreContract.Check) async throws {
    let folder = NSTemporaryDirectory() + "lethe-contract-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // A local folder is seeded without an fsync per file (the 10,000-key listing).
    let seed: ((String, [UInt8]) throws -> Void)? =
        kind != .local && kind != .localWithoutIOPool
        ? nil
        : { key, bytes in
            let path = folder + "/lake/" + key
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw LetheError(.io, "cannot seed", at: key) }
        }
    try await ObjectStoreContract.run(check, seed: seed) { kind.make(folder) }
}
