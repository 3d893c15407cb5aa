import LetheCore
public import LetheStorage
import Synchronization

/// Forwards to a store and counts what passes through, by operation: listing pages (one LIST
/// request each on S3) and the objects they yield, HEADs, GETs (each `read`, ranged or not) and the
/// bytes they return, PUTs (each committed write) and the bytes written, ranges copied from
/// another object (UploadPartCopy on S3), and DELETE calls with the keys they name. For tests
/// and benchmarks: the same figures for a local folder and for S3.
public final class CountingObjectStore: ObjectStore {
    public let base: any ObjectStore

    public struct Counts: Sendable, Equatable {
        public var listPages = 0
        public var listed = 0
        public var heads = 0
        public var gets = 0
        public var bytesRead: Int64 = 0
        public var puts = 0
        public var bytesWritten: Int64 = 0
        public var copies = 0
        public var bytesCopied: Int64 = 0
        public var deletes = 0
        public var keysDeleted = 0
        /// Bytes read per key (to tell what share of an object a step read).
        public var readByKey: [String: Int64] = [:]
        /// Keys written (committed).
        public var writtenKeys: Set<String> = []

        public init() {}

        /// Requests of every kind (a DELETE call of up to 1,000 keys is one request on S3).
        public var requests: Int { listPages + heads + gets + puts + copies + deletes }
    }

    private let state = Mutex(Counts())

    public init(_ base: any ObjectStore) { self.base = base }

    public var counts: Counts { state.withLock { $0 } }
    public func reset() { state.withLock { $0 = Counts() } }

    func note(_ change: (inout Counts) -> Void) { state.withLock { change(&$0) } }

    public var location: String { base.location }

    public func list(prefix: String, startAfter: String?) -> ObjectListing {
        let base = base
        return ObjectListing { [self] in
            CountingPages(inner: base.list(prefix: prefix, startAfter: startAfter).makeAsyncIterator(), store: self)
        }
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        note { $0.heads += 1 }
        return try await base.head(key)
    }

    public func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        let bytes = try await base.read(key, range: range, ifVersion: ifVersion)
        note {
            $0.gets += 1
            $0.bytesRead += Int64(bytes.count)
            $0.readByKey[key, default: 0] += Int64(bytes.count)
        }
        return bytes
    }

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        CountingWriteStream(inner: try await base.openWrite(key, precondition: precondition), store: self, key: key)
    }

    public func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        CountingWriteStream(inner: try await base.openWrite(key, precondition: precondition, durability: durability), store: self, key: key)
    }

    public func makeDurable(_ writers: [any ObjectWriteStream]) async throws {
        try await base.makeDurable(writers.map(Self.inner))
    }

    public func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let out = try await base.commit(writers.map(Self.inner))
        note {
            $0.puts += writers.count
            for case let w as CountingWriteStream in writers {
                $0.bytesWritten += w.written
                $0.writtenKeys.insert(w.key)
            }
        }
        return out
    }

    public func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let out = try await base.commitNew(writers.map(Self.inner), makingDurable: others.map(Self.inner))
        note {
            $0.puts += writers.count
            for case let w as CountingWriteStream in writers {
                $0.bytesWritten += w.written
                $0.writtenKeys.insert(w.key)
            }
        }
        return out
    }

    public func delete(_ keys: [String]) async throws {
        try await base.delete(keys)
        note {
            $0.deletes += keys.isEmpty ? 0 : (keys.count + 999) / 1_000
            $0.keysDeleted += keys.count
        }
    }

    public func localPath(of key: String) -> String? { base.localPath(of: key) }
    public func key(forLocalPath path: String) -> String? { base.key(forLocalPath: path) }
    public func key(forURL url: String) -> String? { base.key(forURL: url) }
    public func prefixStatus(_ prefix: String) async throws -> PrefixStatus { try await base.prefixStatus(prefix) }

    static func inner(_ w: any ObjectWriteStream) -> any ObjectWriteStream { (w as? CountingWriteStream)?.inner ?? w }
}

final class CountingPages: ObjectPageSource {
    var inner: ObjectListing.AsyncIterator
    let store: CountingObjectStore

    init(inner: ObjectListing.AsyncIterator, store: CountingObjectStore) {
        self.inner = inner
        self.store = store
    }

    private var pages = 0

    /// A page is one request; the end of a listing is not, unless it had no page at all (an
    /// empty listing is still one request).
    func nextPage() async throws -> [ObjectInfo]? {
        let page = try await inner.next()
        let request = page != nil || pages == 0
        pages += 1
        store.note {
            if request { $0.listPages += 1 }
            $0.listed += page?.count ?? 0
        }
        return page
    }
}

final class CountingWriteStream: ObjectWriteStream {
    let inner: any ObjectWriteStream
    let store: CountingObjectStore
    let key: String
    var written: Int64 = 0

    init(inner: any ObjectWriteStream, store: CountingObjectStore, key: String) {
        self.inner = inner
        self.store = store
        self.key = key
    }

    func write(_ bytes: [UInt8]) async throws {
        written += Int64(bytes.count)
        try await inner.write(bytes)
    }

    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        written += Int64(bytes.count)
        try await inner.write(bytes)
    }

    func commit() async throws -> ObjectInfo {
        let info = try await inner.commit()
        let n = written, key = key
        store.note {
            $0.puts += 1
            $0.bytesWritten += n
            $0.writtenKeys.insert(key)
        }
        return info
    }

    func abort() async { await inner.abort() }

    func replacedTail(from offset: Int64) async throws -> [UInt8] { try await inner.replacedTail(from: offset) }

    func copyRange(from key: String, version: String, range: Range<Int64>, in source: any ObjectStore) async throws {
        let from = (source as? CountingObjectStore)?.base ?? source
        try await inner.copyRange(from: key, version: version, range: range, in: from)
        store.note {
            $0.copies += 1
            $0.bytesCopied += Int64(range.count)
        }
    }
}
