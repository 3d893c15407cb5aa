import LetheCore
import Synchronization

/// An object store in memory, for tests. Same atomicity and precondition
/// semantics as the real stores; versions are a counter.
public final class InMemoryObjectStore: ObjectStore {
    struct Entry { var bytes: [UInt8]; var version: Int64; var modified: Int64 }
    private let state = Mutex<(objects: [String: Entry], counter: Int64)>(([:], 0))
    /// Objects per listing page.
    public let pageSize: Int

    public init(pageSize: Int = 1000) { self.pageSize = max(1, pageSize) }
    public var location: String { "memory:" }

    private func info(_ key: String, _ e: Entry) -> ObjectInfo {
        ObjectInfo(key: key, size: Int64(e.bytes.count), modifiedNanos: e.modified, version: "v\(e.version)")
    }

    /// Pages of a snapshot taken when the listing is iterated (sorted once).
    public func list(prefix: String, startAfter: String?) -> ObjectListing {
        let p = prefix.hasSuffix("/") || prefix.isEmpty ? prefix : prefix + "/"
        return ObjectListing { [self] in
            let found = state.withLock { s in
                s.objects.filter { o in (o.key.hasPrefix(p) || o.key == prefix) && (startAfter.map { keyPrecedes($0, o.key) } ?? true) }
                    .map { info($0.key, $0.value) }
            }.sorted { keyPrecedes($0.key, $1.key) }
            return SnapshotPages(found, pageSize: pageSize)
        }
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        state.withLock { s in s.objects[key].map { info(key, $0) } }
    }

    public func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        guard let e = state.withLock({ $0.objects[key] }) else { throw LetheError(.notFound, "no such object", at: key) }
        if let ifVersion, ifVersion != "v\(e.version)" {
            throw LetheError(.conflict, "object changed since it was read (expected version \(ifVersion), found v\(e.version))", at: key)
        }
        let b = e.bytes
        guard let r = range else { return b }
        guard r.lowerBound >= 0, r.upperBound <= Int64(b.count) else { throw LetheError(.badInput, "range past the end", at: key) }
        return Array(b[Int(r.lowerBound)..<Int(r.upperBound)])
    }

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        MemoryWriteStream(store: self, key: key, precondition: precondition)
    }

    public func delete(_ keys: [String]) async throws {
        state.withLock { s in for k in keys { s.objects.removeValue(forKey: k) } }
    }

    /// Replaces an object's bytes directly (tests: simulate an outside writer or corruption).
    public func set(_ key: String, _ bytes: [UInt8]) {
        state.withLock { s in
            s.counter += 1
            s.objects[key] = Entry(bytes: bytes, version: s.counter, modified: s.counter)
        }
    }

    /// An object's bytes, or nil (tests).
    public func bytes(_ key: String) -> [UInt8]? { state.withLock { $0.objects[key]?.bytes } }

    func commit(_ key: String, _ bytes: [UInt8], _ pre: WritePrecondition) throws -> ObjectInfo {
        try state.withLock { s in
            let cur = s.objects[key]
            switch pre {
            case .none: break
            case .absent:
                if cur != nil { throw LetheError(.conflict, "object already exists", at: key) }
            case .matches(let v):
                let now = cur.map { "v\($0.version)" } ?? "absent"
                if now != v { throw LetheError(.conflict, "object changed while it was being rewritten", at: key) }
            }
            s.counter += 1
            let e = Entry(bytes: bytes, version: s.counter, modified: s.counter)
            s.objects[key] = e
            return info(key, e)
        }
    }
}

final class MemoryWriteStream: ObjectWriteStream {
    private let store: InMemoryObjectStore
    private let key: String
    private let pre: WritePrecondition
    private var buf: [UInt8] = []
    private var done = false
    init(store: InMemoryObjectStore, key: String, precondition: WritePrecondition) {
        self.store = store; self.key = key; self.pre = precondition
    }
    func write(_ bytes: [UInt8]) async throws { buf.append(contentsOf: bytes) }
    func write(_ bytes: UnsafeRawBufferPointer) async throws { buf.append(contentsOf: bytes) }
    func commit() async throws -> ObjectInfo {
        Swift.precondition(!done)
        done = true
        return try store.commit(key, buf, pre)
    }
    func abort() async { done = true; buf = [] }
}

/// Pages of a sorted array.
final class SnapshotPages: ObjectPageSource {
    private let objects: [ObjectInfo]
    private let pageSize: Int
    private var next = 0
    init(_ objects: [ObjectInfo], pageSize: Int) { self.objects = objects; self.pageSize = pageSize }
    func nextPage() async throws -> [ObjectInfo]? {
        guard next < objects.count else { return nil }
        let end = min(objects.count, next + pageSize)
        defer { next = end }
        return Array(objects[next..<end])
    }
}
