import LetheCore
import LetheStorage

/// A test store over a local one that passes its reads, listings, deletes and paths through as they
/// are: the recording stores of these tests (`RecordingStore`, `CommitOrderStore`, `VacuumOrderStore`)
/// implement only the writes they watch (and a delete, where they watch it).
protocol ForwardingLocalStore: ObjectStore {
    var base: LocalObjectStore { get }
}

extension ForwardingLocalStore {
    var location: String { base.location }
    func list(prefix: String, startAfter: String?) -> ObjectListing { base.list(prefix: prefix, startAfter: startAfter) }
    func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        try await base.read(key, range: range, ifVersion: ifVersion)
    }
    /// A write of the plain `openWrite` is made durable by its own commit, as the local store's.
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        try await openWrite(key, precondition: precondition, durability: .immediate)
    }
    func delete(_ keys: [String]) async throws { try await base.delete(keys) }
    func localPath(of key: String) -> String? { base.localPath(of: key) }
    func key(forLocalPath path: String) -> String? { base.key(forLocalPath: path) }
    func prefixStatus(_ prefix: String) async throws -> PrefixStatus { try await base.prefixStatus(prefix) }
}
