import LetheCore

/// One object as listed by a store.
public struct ObjectInfo: Hashable, Sendable {
    /// The key: a `/`-separated path relative to the store's root.
    public var key: String
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var modifiedNanos: Int64
    /// A tag that changes whenever the content may have changed (local: size, mtime
    /// and inode; S3: the ETag). Compared by `commit(replacing:)`.
    public var version: String

    public init(key: String, size: Int64, modifiedNanos: Int64, version: String) {
        self.key = key
        self.size = size
        self.modifiedNanos = modifiedNanos
        self.version = version
    }
}

/// Reads an object front to back in chunks.
public protocol ObjectReadStream: AnyObject {
    /// The next chunk, or nil at the end. Chunks are never empty.
    func next() async throws -> [UInt8]?
    func close()
}

/// Writes a new version of an object; nothing is visible until `commit`.
public protocol ObjectWriteStream: AnyObject {
    func write(_ bytes: [UInt8]) async throws
    func write(_ bytes: UnsafeRawBufferPointer) async throws
    /// Makes the written bytes the object's content, atomically (write-temp, fsync,
    /// rename / conditional put). With `expected`, fails with `.conflict` when the
    /// object is no longer at that version (someone else wrote it meanwhile); with
    /// `ifAbsent`, fails with `.conflict` when the object exists.
    func commit() async throws -> ObjectInfo
    /// Discards what was written.
    func abort()
    /// After a `commit` that replaced an object: the bytes appended to the replaced version from
    /// `offset` on (its size when it was read) — by a writer that held it open, which the replace
    /// would otherwise lose. A caller carries them into the new version with another conditional
    /// write, and asks again until nothing more comes. Empty for stores whose objects never grow in
    /// place (S3, memory) and before a commit.
    func replacedTail(from offset: Int64) async throws -> [UInt8]
}

extension ObjectWriteStream {
    public func replacedTail(from offset: Int64) async throws -> [UInt8] { [] }
}

/// Preconditions for a write.
public enum WritePrecondition: Sendable, Equatable {
    case none
    /// The object must still be at this version (compare-and-swap).
    case matches(version: String)
    /// The object must not exist (put-if-absent; Delta commits).
    case absent
}

/// The storage seam: a local folder, S3, or memory.
public protocol ObjectStore: Sendable {
    /// A description of where the store is, for messages.
    var location: String { get }
    /// Every object whose key starts with `prefix` (a folder prefix: `raw/events`
    /// lists `raw/events/…`), recursively, sorted by key. A local folder lists the
    /// temporary files of writes in progress too (see `LocalObjectStore.onTemporary`).
    func list(prefix: String) async throws -> [ObjectInfo]
    /// The keys `list` would return, without their metadata (cheaper where metadata costs a call each).
    func listKeys(prefix: String) async throws -> [String]
    /// The object's metadata, or nil if absent.
    func head(_ key: String) async throws -> ObjectInfo?
    /// The bytes in `range` (or all of them).
    func read(_ key: String, range: Range<Int64>?) async throws -> [UInt8]
    /// A stream over the whole object.
    func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream
    /// Starts writing a new version of `key`.
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream
    /// Removes an object; absent objects are not an error.
    func delete(_ key: String) async throws
}

extension ObjectStore {
    public func listKeys(prefix: String) async throws -> [String] { try await list(prefix: prefix).map(\.key) }
    public func read(_ key: String) async throws -> [UInt8] { try await read(key, range: nil) }
    public func openRead(_ key: String) async throws -> any ObjectReadStream { try await openRead(key, chunkSize: 1 << 20) }

    /// Writes a whole object atomically.
    @discardableResult
    public func put(_ key: String, _ bytes: [UInt8], precondition: WritePrecondition = .none) async throws -> ObjectInfo {
        let w = try await openWrite(key, precondition: precondition)
        do {
            try await w.write(bytes)
            return try await w.commit()
        } catch {
            w.abort()
            throw error
        }
    }
}
