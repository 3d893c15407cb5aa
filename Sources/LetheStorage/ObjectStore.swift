import LetheCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One object as listed by a store.
public struct ObjectInfo: Hashable, Sendable {
    /// The key: a `/`-separated path relative to the store's root.
    public var key: String
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var modifiedNanos: Int64
    /// A tag that changes whenever the content may have changed (local: size, mtime
    /// and inode; S3: the ETag). Compared by `commit(replacing:)` and `read(_:range:ifVersion:)`.
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
    /// Discards what was written (local: removes the temporary file; S3: aborts the multipart upload).
    /// Never fails; after `commit` it does nothing.
    func abort() async
    /// After a `commit` that replaced an object: the bytes appended to the replaced version from
    /// `offset` on (its size when it was read) — by a writer that held it open, which the replace
    /// would otherwise lose. A caller carries them into the new version with another conditional
    /// write, and asks again until nothing more comes. Empty for stores whose objects never grow in
    /// place (S3, memory) and before a commit.
    func replacedTail(from offset: Int64) async throws -> [UInt8]
    /// Appends the bytes in `range` of `key` at `version` (in `store`) to what is written, as
    /// `write(try await store.read(key, range: range, ifVersion: version))` would, but where the
    /// store can, without copying them through memory (local: `copy_file_range(2)`; S3:
    /// `UploadPartCopy`). `.conflict` when `key` is no longer at `version`. The default reads
    /// and writes (`copyRangeByReading`).
    func copyRange(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws
}

extension ObjectWriteStream {
    public func replacedTail(from offset: Int64) async throws -> [UInt8] { [] }
}

extension ObjectWriteStream {
    /// Ranged reads pinned to `version` (8 MiB at a time), then writes.
    public func copyRange(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws {
        try await copyRangeByReading(from: key, version: version, range: range, in: store)
    }

    /// `copyRange` through memory: ranged reads pinned to `version`, then writes.
    public func copyRangeByReading(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws {
        let piece: Int64 = 8 << 20
        var at = range.lowerBound
        while at < range.upperBound {
            let end = min(range.upperBound, at + piece)
            try await write(try await store.read(key, range: at..<end, ifVersion: version))
            at = end
        }
    }
}

/// When a write's data is made durable.
public enum WriteDurability: Sendable, Equatable {
    /// `commit` makes it durable (fsync before the rename).
    case immediate
    /// `ObjectStore.makeDurable` makes it durable, for many writes in one pass; a `commit` of a
    /// write not yet made durable still makes it durable first (never a rename before it).
    case deferred
}

/// Preconditions for a write.
public enum WritePrecondition: Sendable, Equatable {
    case none
    /// The object must still be at this version (compare-and-swap).
    case matches(version: String)
    /// The object must not exist (put-if-absent; Delta commits).
    case absent
}

/// Whether a key prefix names something in a store that has folders.
public enum PrefixStatus: Sendable, Equatable {
    /// A folder (or an object) is there, possibly empty.
    case exists
    /// Nothing is there: a local dataset folder that is missing (a typo, a lake mounted wrong).
    case missing
    /// The store has no folders (S3, memory): an empty prefix is simply empty.
    case notApplicable
}

/// The storage seam: a local folder, S3, or memory.
///
/// Key order everywhere is the byte order of the keys' UTF-8 (S3's listing order).
public protocol ObjectStore: Sendable {
    /// A description of where the store is, for messages.
    var location: String { get }
    /// Every object whose key starts with `prefix` (a folder prefix: `raw/events`
    /// lists `raw/events/…` and an object named `raw/events` itself), recursively, in key order,
    /// page by page, starting after the key `startAfter` (exclusive) when given. A local folder
    /// lists the temporary files of writes in progress too (see `LocalObjectStore.onTemporary`).
    /// Nothing is read until the listing is iterated; each iteration lists anew.
    func list(prefix: String, startAfter: String?) -> ObjectListing
    /// `list(prefix:startAfter: nil)` without the objects whose keys start with `folder` (a folder
    /// prefix ending in `/`, e.g. a Delta table's `_delta_log/`). The default filters `list`'s pages;
    /// a local folder never opens that folder (no `stat` of the files it holds).
    func list(prefix: String, skippingFolder folder: String) -> ObjectListing
    /// The keys `list` would return, without their metadata. The default collects `list`'s pages;
    /// a store where metadata costs a call per object overrides it (local: no `stat` per file).
    func listKeys(prefix: String) async throws -> [String]
    /// The object's metadata, or nil if absent.
    func head(_ key: String) async throws -> ObjectInfo?
    /// The primitive read: the bytes in `range` (the whole object when nil). With `ifVersion`, fails
    /// with `.conflict` when the object is no longer at that version (S3: a ranged GET with
    /// `If-Match`), so reads of one object in pieces never mix two of its versions. `.notFound`
    /// when absent, `.badInput` when the range goes past the end.
    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8]
    /// A stream over the whole object. The default reads it in ranged reads pinned to the version
    /// it found when opened (`.conflict` if the object is replaced meanwhile).
    func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream
    /// Lends the whole object's bytes to `body`, in order, a window of about `window` bytes at a time,
    /// without copying them where the store can (a local file: mapped, issue 16). `body` gets the
    /// window and whether it reaches the object's end, and returns how many bytes at the window's end
    /// it left unread: they begin the next window (so a line or record is never cut; a window with
    /// nothing consumed is followed by a longer one), and must be 0 at the end. The bytes are valid
    /// during the call only; all of them are of the version found at open (as `openRead`'s). An
    /// empty object calls `body` once with no bytes. The default reads `openRead`'s chunks, each
    /// after what the window before left (`forEachWindowByReading`).
    func forEachWindow(of key: String, window: Int, _ body: (UnsafeBufferPointer<UInt8>, _ end: Bool) throws -> Int) async throws
    /// Starts writing a new version of `key`.
    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream
    /// Starts writing a new version of `key` whose durability `makeDurable` may bring about with
    /// other writes' in one pass (`.deferred`). The default ignores `durability`: each commit is durable.
    func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream
    /// Starts writing new versions of several keys at once (in the order given): a local store journals
    /// their temporary files together (one `LocalObjectStore.onTemporary` call) before creating any.
    /// The default opens them one by one; when one fails, the ones opened are aborted.
    func openWrites(_ writes: [(key: String, precondition: WritePrecondition)], durability: WriteDurability) async throws
        -> [any ObjectWriteStream]
    /// Makes the written bytes of `writers` (opened by this store, not yet committed) durable in one
    /// pass; their `commit`s then only publish them (rename, version check). The default does nothing:
    /// each commit is durable on its own.
    func makeDurable(_ writers: [any ObjectWriteStream]) async throws
    /// Commits `writers` (opened by this store, not yet committed) in the order given, as their own
    /// `commit`s would, and returns what each one committed. The local store publishes them all in
    /// one hop and syncs each folder once; the default commits them one by one. When one fails, the
    /// ones before it stay committed (and durable) and the ones after it are left to the caller to abort.
    func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo]
    /// Commits `writers` — new objects (`.absent`) whose keys nothing names yet and the caller
    /// removes after a failure or a crash (a journaled Delta replacement) — and makes them durable,
    /// their bytes and their names, with the written bytes of `others` (not committed), in one pass.
    /// Unlike `makeDurable` then `commit(_:)`, an object may be published before its bytes are
    /// durable: a crash before this returns can leave one with missing bytes, never anything the
    /// caller published before. Once it returns every object of `writers` is committed and durable
    /// and every write of `others` is as after `makeDurable`. On a failure the objects committed so
    /// far stay (possibly not durable) and the rest are left to the caller to abort. The default
    /// makes them all durable, then commits `writers`; the local store links each new file into
    /// place first, then syncs every file and their folders at once (one wait instead of two).
    func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo]
    /// Removes objects (S3: DeleteObjects); absent objects are not an error.
    func delete(_ keys: [String]) async throws
    /// The file-system path of `key` (of the root for `""`), for stores that are local folders; nil
    /// elsewhere (the default) and for a key no path string can name.
    func localPath(of key: String) -> String?
    /// The key of a local file-system path (absolute, or relative to the working directory) inside
    /// the store's root; nil when it is outside it or the store is not a local folder (the default).
    func key(forLocalPath path: String) -> String?
    /// The key of an object URL of this store's own scheme (`s3://bucket/…` for a bucket, as Delta
    /// writes absolute paths: percent-encoded), inside the store's root; nil for another scheme,
    /// bucket or prefix, a `.`/`..` segment, or a store without URLs (the default).
    func key(forURL url: String) -> String?
    /// Whether `prefix` names a folder or object (`.notApplicable`, the default, for stores without folders).
    func prefixStatus(_ prefix: String) async throws -> PrefixStatus
}

extension ObjectStore {
    public func listKeys(prefix: String) async throws -> [String] {
        try await list(prefix: prefix, startAfter: nil).all().map(\.key)
    }

    public func list(prefix: String, skippingFolder folder: String) -> ObjectListing {
        let listing = list(prefix: prefix, startAfter: nil)
        return ObjectListing { SkippingPages(listing.makeAsyncIterator(), skipping: folder) }
    }

    public func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream {
        guard let info = try await head(key) else { throw LetheError(.notFound, "no such object", at: key) }
        return RangedReadStream(store: self, info: info, chunkSize: max(1, chunkSize))
    }

    public func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        try await openWrite(key, precondition: precondition)
    }
    public func openWrites(_ writes: [(key: String, precondition: WritePrecondition)], durability: WriteDurability) async throws
        -> [any ObjectWriteStream]
    {
        var out: [any ObjectWriteStream] = []
        do {
            for w in writes { out.append(try await openWrite(w.key, precondition: w.precondition, durability: durability)) }
        } catch {
            for w in out { await w.abort() }
            throw error
        }
        return out
    }
    public func makeDurable(_ writers: [any ObjectWriteStream]) async throws {}
    public func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        try await makeDurable(writers + others)
        return try await commit(writers)
    }
    public func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        for w in writers { out.append(try await w.commit()) }
        return out
    }

    public func forEachWindow(
        of key: String, window: Int, _ body: (UnsafeBufferPointer<UInt8>, _ end: Bool) throws -> Int
    ) async throws {
        try await forEachWindowByReading(of: key, window: window, body)
    }

    /// `forEachWindow` through `openRead`: each window is what the one before left, then the next chunk
    /// (the stream is read one chunk ahead, to know which window is the last).
    public func forEachWindowByReading(
        of key: String, window: Int, _ body: (UnsafeBufferPointer<UInt8>, _ end: Bool) throws -> Int
    ) async throws {
        let stream = try await openRead(key, chunkSize: max(1, window))
        defer { stream.close() }
        var carry: [UInt8] = []
        var chunk = try await stream.next()
        if chunk == nil {
            _ = try [UInt8]().withUnsafeBufferPointer { try body($0, true) }
            return
        }
        while let c = chunk {
            let next = try await stream.next()
            let end = next == nil
            if carry.isEmpty {
                let left = try c.withUnsafeBufferPointer { try body($0, end) }
                carry = left > 0 ? Array(c.suffix(left)) : []
            } else {
                carry += c
                let left = try carry.withUnsafeBufferPointer { try body($0, end) }
                carry = left > 0 ? Array(carry.suffix(left)) : []
            }
            chunk = next
        }
    }

    public func localPath(of key: String) -> String? { nil }
    public func key(forLocalPath path: String) -> String? { nil }
    public func key(forURL url: String) -> String? { nil }
    public func prefixStatus(_ prefix: String) async throws -> PrefixStatus { .notApplicable }

    // Conveniences over the requirements.

    /// Every object below `prefix`, in key order, in one array (small prefixes; tests).
    public func list(prefix: String) async throws -> [ObjectInfo] {
        try await list(prefix: prefix, startAfter: nil).all()
    }
    /// The bytes in `range` (or all of them), whatever the version.
    public func read(_ key: String, range: Range<Int64>?) async throws -> [UInt8] {
        try await read(key, range: range, ifVersion: nil)
    }
    public func read(_ key: String) async throws -> [UInt8] { try await read(key, range: nil, ifVersion: nil) }
    public func openRead(_ key: String) async throws -> any ObjectReadStream { try await openRead(key, chunkSize: 1 << 20) }
    /// Removes one object; absent is not an error.
    public func delete(_ key: String) async throws { try await delete([key]) }

    /// Writes a whole object atomically.
    @discardableResult
    public func put(_ key: String, _ bytes: [UInt8], precondition: WritePrecondition = .none) async throws -> ObjectInfo {
        let w = try await openWrite(key, precondition: precondition)
        do {
            try await w.write(bytes)
            return try await w.commit()
        } catch {
            await w.abort()
            throw error
        }
    }
}

/// Whether `a` sorts before `b` in key order (the bytes of their UTF-8).
public func keyPrecedes(_ a: String, _ b: String) -> Bool {
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            let n = min(x.count, y.count)
            let c = n == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, n)
            return c < 0 || (c == 0 && x.count < y.count)
        }
    }
}

/// Pages of a listing, produced one at a time (by one iterator).
public protocol ObjectPageSource: AnyObject {
    /// The next page in key order (never empty), or nil at the end.
    func nextPage() async throws -> [ObjectInfo]?
}

/// A store's listing of a prefix: an `AsyncSequence` of pages (`[ObjectInfo]`, each non-empty), in key order.
public struct ObjectListing: AsyncSequence, Sendable {
    public typealias Element = [ObjectInfo]
    private let makeSource: @Sendable () -> any ObjectPageSource

    /// A listing whose iterations each get a fresh page source.
    public init(_ makeSource: @escaping @Sendable () -> any ObjectPageSource) { self.makeSource = makeSource }

    /// A listing fetched page after page from the last key of the page before (S3 `StartAfter`;
    /// memory): `fetch(after)` returns the next objects after `after` in key order and whether more may follow.
    public init(
        startAfter: String?,
        fetch: @escaping @Sendable (_ after: String?) async throws -> (objects: [ObjectInfo], more: Bool)
    ) {
        self.makeSource = { ResumingPages(after: startAfter, fetch: fetch) }
    }

    /// A listing with nothing in it.
    public static var empty: ObjectListing { ObjectListing(startAfter: nil) { _ in ([], false) } }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: any ObjectPageSource
        public mutating func next() async throws -> [ObjectInfo]? { try await source.nextPage() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: makeSource()) }

    /// Every object of every page, in one array (small prefixes; tests).
    public func all() async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var it = makeAsyncIterator()
        while let page = try await it.next() { out += page }
        return out
    }
}

/// Another listing's pages without the keys below one folder (pages left empty are not returned).
final class SkippingPages: ObjectPageSource {
    private var inner: ObjectListing.AsyncIterator
    private let folder: String
    init(_ inner: ObjectListing.AsyncIterator, skipping folder: String) {
        self.inner = inner
        self.folder = folder
    }
    func nextPage() async throws -> [ObjectInfo]? {
        while let page = try await inner.next() {
            let kept = page.filter { !$0.key.hasPrefix(folder) }
            if !kept.isEmpty { return kept }
        }
        return nil
    }
}

final class ResumingPages: ObjectPageSource {
    private var after: String?
    private var done = false
    private let fetch: @Sendable (String?) async throws -> (objects: [ObjectInfo], more: Bool)
    init(after: String?, fetch: @escaping @Sendable (String?) async throws -> (objects: [ObjectInfo], more: Bool)) {
        self.after = after
        self.fetch = fetch
    }
    func nextPage() async throws -> [ObjectInfo]? {
        while !done {
            let (objects, more) = try await fetch(after)
            done = !more
            if let last = objects.last { after = last.key }
            if !objects.isEmpty { return objects }
            if more && objects.isEmpty { done = true }  // a store that says "more" with nothing: stop, never spin
        }
        return nil
    }
}

/// `openRead` on a store's ranged reads, each pinned to the version found at open.
final class RangedReadStream<Store: ObjectStore>: ObjectReadStream {
    private let store: Store
    private let info: ObjectInfo
    private let chunkSize: Int
    private var offset: Int64 = 0
    private var closed = false
    init(store: Store, info: ObjectInfo, chunkSize: Int) { self.store = store; self.info = info; self.chunkSize = chunkSize }
    func next() async throws -> [UInt8]? {
        guard !closed, offset < info.size else { return nil }
        let end = min(info.size, offset + Int64(chunkSize))
        let bytes = try await store.read(info.key, range: offset..<end, ifVersion: info.version)
        offset = end
        return bytes.isEmpty ? nil : bytes
    }
    func close() { closed = true }
}
