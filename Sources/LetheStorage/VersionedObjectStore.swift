/// One stored version of an object in a store that keeps old versions (an S3 bucket with
/// versioning on): the current one, a noncurrent one, or a delete marker.
public struct ObjectVersion: Hashable, Sendable {
    public var key: String
    public var versionID: String
    public var isLatest: Bool
    public var isDeleteMarker: Bool
    public var size: Int64
    /// The content tag (S3: the ETag), as `ObjectInfo.version`.
    public var etag: String
    public var modifiedNanos: Int64

    public init(key: String, versionID: String, isLatest: Bool, isDeleteMarker: Bool, size: Int64, etag: String, modifiedNanos: Int64) {
        self.key = key
        self.versionID = versionID
        self.isLatest = isLatest
        self.isDeleteMarker = isDeleteMarker
        self.size = size
        self.etag = etag
        self.modifiedNanos = modifiedNanos
    }
}

/// A store that may keep an object's old versions after a replace or delete. Erasure must reach
/// them: an overwritten object's noncurrent versions still hold what was erased (the hole AWS's
/// own Find-and-Forget leaves open). Stores without versions do not conform.
public protocol VersionedObjectStore: ObjectStore {
    /// Whether old versions are kept now (or were: a suspended bucket keeps those it has).
    func keepsVersions() async throws -> Bool
    /// Every version and delete marker of the objects below `prefix` (folder semantics as `list`),
    /// by key in key order, newest first within a key.
    func versions(prefix: String) async throws -> [ObjectVersion]
    /// The bytes of one version (`range` as in `read`).
    func read(_ key: String, versionID: String, range: Range<Int64>?) async throws -> [UInt8]
    /// Deletes these versions for good (not a delete marker); a version already gone is not an error.
    func deleteVersions(_ versions: [(key: String, versionID: String)]) async throws
}
