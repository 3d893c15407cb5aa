import Foundation
import LetheCore
import LetheStorage

/// A small in-memory object store for these tests, with failure injection.
final class TestStore: ObjectStore, @unchecked Sendable {
    private let lock = NSLock()
    private var objects: [String: (bytes: [UInt8], version: Int)] = [:]
    private var counter = 0
    /// Commits performed so far.
    private(set) var commits = 0
    /// When set, reads of this key fail after this many chunks.
    var failReadAfterChunks: (key: String, chunks: Int)?

    var location: String { "memory:test" }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func set(_ key: String, _ bytes: [UInt8]) {
        locked {
            counter += 1
            objects[key] = (bytes, counter)
        }
    }

    func get(_ key: String) -> [UInt8]? { locked { objects[key]?.bytes } }

    func commitCount() -> Int { locked { commits } }

    private func info(_ key: String) -> ObjectInfo? {
        guard let o = objects[key] else { return nil }
        return ObjectInfo(key: key, size: Int64(o.bytes.count), modifiedNanos: Int64(o.version), version: "v\(o.version)")
    }

    func list(prefix: String, startAfter: String?) -> ObjectListing {
        ObjectListing(startAfter: startAfter) { [self] after in
            (locked { objects.keys.filter { k in k.hasPrefix(prefix) && after.map { $0 < k } ?? true }.sorted().compactMap { info($0) } }, false)
        }
    }

    func head(_ key: String) async throws -> ObjectInfo? { locked { info(key) } }

    func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        guard let b = get(key) else { throw LetheError(.notFound, "no such object", at: key) }
        guard let range else { return b }
        return Array(b[Int(range.lowerBound)..<Int(range.upperBound)])
    }

    func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream {
        guard let b = get(key) else { throw LetheError(.notFound, "no such object", at: key) }
        let fail = locked { failReadAfterChunks.flatMap { $0.key == key ? $0.chunks : nil } }
        return Reader(bytes: b, chunkSize: chunkSize, failAfter: fail)
    }

    func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        Writer(store: self, key: key, precondition: precondition)
    }

    func delete(_ keys: [String]) async throws { locked { for key in keys { objects.removeValue(forKey: key) } } }

    fileprivate func commit(_ key: String, _ bytes: [UInt8], _ pre: WritePrecondition) throws -> ObjectInfo {
        try locked {
            switch pre {
            case .none: break
            case .absent:
                if objects[key] != nil { throw LetheError(.conflict, "exists", at: key) }
            case .matches(let version):
                guard let cur = info(key), cur.version == version else { throw LetheError(.conflict, "version changed", at: key) }
            }
            counter += 1
            commits += 1
            objects[key] = (bytes, counter)
            return info(key)!
        }
    }

    final class Reader: ObjectReadStream {
        let bytes: [UInt8]
        let chunkSize: Int
        var offset = 0
        var chunks = 0
        let failAfter: Int?
        init(bytes: [UInt8], chunkSize: Int, failAfter: Int?) {
            self.bytes = bytes
            self.chunkSize = chunkSize
            self.failAfter = failAfter
        }
        func next() async throws -> [UInt8]? {
            if let failAfter, chunks >= failAfter { throw POSIXError(.EIO) }
            guard offset < bytes.count else { return nil }
            let end = min(bytes.count, offset + chunkSize)
            defer { offset = end; chunks += 1 }
            return Array(bytes[offset..<end])
        }
        func close() {}
    }

    final class Writer: ObjectWriteStream {
        let store: TestStore
        let key: String
        let precondition: WritePrecondition
        var buffer: [UInt8] = []
        var aborted = false
        init(store: TestStore, key: String, precondition: WritePrecondition) {
            self.store = store
            self.key = key
            self.precondition = precondition
        }
        func write(_ bytes: [UInt8]) async throws { buffer.append(contentsOf: bytes) }
        func write(_ bytes: UnsafeRawBufferPointer) async throws { buffer.append(contentsOf: bytes) }
        func commit() async throws -> ObjectInfo {
            Swift.precondition(!aborted)
            return try store.commit(key, buffer, precondition)
        }
        func abort() async { aborted = true; buffer = [] }
    }
}
