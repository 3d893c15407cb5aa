import LetheCore
public import LetheStorage
import Synchronization

/// A decorator over any object store (in memory by default) that injects faults and counts what
/// passes through it, for tests: fail the Nth write, commit or delete; tear a write; fail a read
/// after N chunks; slow reads; refuse every change after a cut (what a `kill -9` after that many
/// changes leaves); count bytes read, commits, listings, deletes.
///
/// Faults are set by methods and apply from then on; counts of "the Nth" start at the call that set
/// them. Without faults it passes everything through unchanged (the contract suites run over it).
public final class FaultInjectingStore: ObjectStore {
    public let base: any ObjectStore

    /// How a torn write ends.
    public enum Tear: Sendable {
        /// Nothing lands: the store gets the first K bytes, then the write is aborted and the commit throws.
        case lost
        /// The first K bytes land (committed) and the commit still throws: a store that is not atomic,
        /// or a write whose acknowledgement was lost.
        case landed
    }

    struct Faults {
        var failWriteAt: Int?
        var failCommitAt: Int?
        var failDeleteAt: Int?
        var failCommitWhere: (@Sendable (_ key: String, _ bytes: [UInt8], _ precondition: WritePrecondition) -> Bool)?
        var tear: (afterBytes: Int, how: Tear, key: String?)?
        var failReadAfterChunks: (chunks: Int, key: String?)?
        var readDelay: Duration?
        var cut: (changes: Int, arming: (@Sendable (_ key: String, _ bytes: [UInt8]) -> Bool)?)?
    }

    struct State {
        var faults = Faults()
        var writes = 0, commitsSeen = 0, deletesSeen = 0
        var armed = false, changesSinceArmed = 0, refused = 0
        var bytesRead: Int64 = 0, reads = 0, commits = 0, listings = 0, deletedKeys = 0, heads = 0
        var readsInFlight = 0, mostReadsInFlight = 0
    }

    private let state = Mutex(State())

    public init(base: any ObjectStore = InMemoryObjectStore()) { self.base = base }

    // MARK: Faults

    /// The `n`-th `write` call from now (1 = the next), on any stream, throws `.io` (the stream is then
    /// aborted by its caller, as after any failure).
    public func failWrite(at n: Int) { state.withLock { $0.faults.failWriteAt = $0.writes + n } }
    /// The `n`-th commit from now throws `.io` and nothing lands.
    public func failCommit(at n: Int) { state.withLock { $0.faults.failCommitAt = $0.commitsSeen + n } }
    /// The `n`-th delete call from now throws `.io` and deletes nothing.
    public func failDelete(at n: Int) { state.withLock { $0.faults.failDeleteAt = $0.deletesSeen + n } }
    /// Every commit for which `predicate(key, written bytes, precondition)` holds throws `.io`; nothing lands.
    public func failCommits(where predicate: @escaping @Sendable (_ key: String, _ bytes: [UInt8], _ precondition: WritePrecondition) -> Bool) {
        state.withLock { $0.faults.failCommitWhere = predicate }
    }
    /// Writes (of `key`, or of every key) are torn after `bytes` bytes: the commit throws `.io`, and
    /// what lands is as `how` says.
    public func tearWrites(afterBytes bytes: Int, _ how: Tear = .lost, key: String? = nil) {
        state.withLock { $0.faults.tear = (bytes, how, key) }
    }
    /// Streams opened by `openRead` (of `key`, or of every key) throw `.io` after `chunks` chunks.
    public func failReads(afterChunks chunks: Int, key: String? = nil) {
        state.withLock { $0.faults.failReadAfterChunks = (chunks, key) }
    }
    /// Each read (and each streamed chunk) waits `delay` first.
    public func slowReads(_ delay: Duration?) { state.withLock { $0.faults.readDelay = delay } }
    /// Once armed — at the first commit for which `armedBy(key, written bytes)` holds, or right away
    /// without `armedBy` — `changes` changes of the store go through (the arming one counted) and every
    /// later one is refused with `.io`: the store is left as a kill after that many changes leaves it.
    /// Changes are commits and deleted keys.
    public func cut(afterChanges changes: Int, armedBy: (@Sendable (_ key: String, _ bytes: [UInt8]) -> Bool)? = nil) {
        state.withLock { s in
            s.faults.cut = (changes, armedBy)
            s.armed = armedBy == nil
            s.changesSinceArmed = 0
            s.refused = 0
        }
    }
    /// Clears every fault (counters stay).
    public func clearFaults() {
        state.withLock {
            $0.faults = Faults(); $0.armed = false
        }
    }

    // MARK: Counters

    /// Bytes returned by reads and read streams.
    public var bytesRead: Int64 { state.withLock { $0.bytesRead } }
    /// Calls of `read` (streamed chunks not counted).
    public var reads: Int { state.withLock { $0.reads } }
    /// Commits that landed.
    public var commits: Int { state.withLock { $0.commits } }
    /// Listings started (`list` iterations and `listKeys` calls).
    public var listings: Int { state.withLock { $0.listings } }
    /// Calls of `head`.
    public var heads: Int { state.withLock { $0.heads } }
    /// Keys passed to `delete` that it was allowed to delete.
    public var deletedKeys: Int { state.withLock { $0.deletedKeys } }
    /// The most reads (`read` calls and read streams' chunks) under way at once since the last reset:
    /// with `slowReads`, whether work on several objects overlapped.
    public var mostReadsAtOnce: Int { state.withLock { $0.mostReadsInFlight } }
    /// Whether the cut refused a change.
    public var wasCut: Bool { state.withLock { $0.refused > 0 } }
    /// Resets the counters.
    public func resetCounters() {
        state.withLock {
            $0.bytesRead = 0; $0.reads = 0; $0.commits = 0; $0.listings = 0; $0.deletedKeys = 0; $0.heads = 0
            $0.mostReadsInFlight = $0.readsInFlight
        }
    }

    // MARK: The in-memory base

    /// Sets an object's bytes directly, past faults and counters (tests: an outside writer, corruption).
    /// The base must be an `InMemoryObjectStore` (the default).
    public func set(_ key: String, _ bytes: [UInt8]) { memory.set(key, bytes) }
    /// An object's bytes, read directly (nil when absent); the base must be an `InMemoryObjectStore`.
    public func get(_ key: String) -> [UInt8]? { memory.bytes(key) }

    private var memory: InMemoryObjectStore {
        guard let m = base as? InMemoryObjectStore else { preconditionFailure("set/get need an in-memory base") }
        return m
    }

    // MARK: ObjectStore

    public var location: String { base.location }

    public func list(prefix: String, startAfter: String?) -> ObjectListing {
        let inner = base.list(prefix: prefix, startAfter: startAfter)
        return ObjectListing { [self] in
            state.withLock { $0.listings += 1 }
            return ForwardingPages(inner.makeAsyncIterator())
        }
    }

    public func listKeys(prefix: String) async throws -> [String] {
        state.withLock { $0.listings += 1 }
        return try await base.listKeys(prefix: prefix)
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        state.withLock { $0.heads += 1 }
        return try await base.head(key)
    }

    public func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        readStarts()
        defer { readEnds() }
        if let d = state.withLock({ $0.faults.readDelay }) { try await Task.sleep(for: d) }
        let b = try await base.read(key, range: range, ifVersion: ifVersion)
        state.withLock {
            $0.bytesRead += Int64(b.count); $0.reads += 1
        }
        return b
    }

    public func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream {
        let inner = try await base.openRead(key, chunkSize: chunkSize)
        let failAfter = state.withLock { s in s.faults.failReadAfterChunks.flatMap { $0.key == nil || $0.key == key ? $0.chunks : nil } }
        return FaultReadStream(inner: inner, store: self, key: key, failAfter: failAfter)
    }

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        FaultWriteStream(inner: try await base.openWrite(key, precondition: precondition), store: self, key: key, precondition: precondition)
    }

    public func delete(_ keys: [String]) async throws {
        var allowed: [String] = []
        var refusedKey: String?
        let fail: Bool = state.withLock { s in
            s.deletesSeen += 1
            if s.faults.failDeleteAt == s.deletesSeen { return true }
            for k in keys {
                guard s.allowChange(key: k, bytes: nil) else { refusedKey = k; break }
                allowed.append(k)
            }
            s.deletedKeys += allowed.count
            return false
        }
        if fail { throw LetheError(.io, "injected delete failure", at: keys.first) }
        if !allowed.isEmpty { try await base.delete(allowed) }
        if let refusedKey { throw LetheError(.io, "injected cut: the store refuses every change from here", at: refusedKey) }
    }

    public func localPath(of key: String) -> String? { base.localPath(of: key) }
    public func key(forLocalPath path: String) -> String? { base.key(forLocalPath: path) }
    public func prefixStatus(_ prefix: String) async throws -> PrefixStatus { try await base.prefixStatus(prefix) }

    // MARK: Streams

    fileprivate func countWrite() -> Bool {
        state.withLock { s in
            s.writes += 1
            return s.faults.failWriteAt == s.writes
        }
    }

    fileprivate func tear(for key: String) -> (afterBytes: Int, how: Tear)? {
        state.withLock { s in s.faults.tear.flatMap { $0.key == nil || $0.key == key ? ($0.afterBytes, $0.how) : nil } }
    }

    /// Whether a commit of `bytes` to `key` may land (counting it).
    fileprivate func allowCommit(_ key: String, _ bytes: [UInt8], _ pre: WritePrecondition) -> String? {
        state.withLock { s in
            s.commitsSeen += 1
            if s.faults.failCommitAt == s.commitsSeen { return "injected commit failure" }
            if let p = s.faults.failCommitWhere, p(key, bytes, pre) { return "injected commit failure" }
            if !s.allowChange(key: key, bytes: bytes) { return "injected cut: the store refuses every change from here" }
            return nil
        }
    }

    fileprivate func landed() { state.withLock { $0.commits += 1 } }

    fileprivate func chunkRead(_ n: Int) -> Duration? {
        state.withLock { s in
            s.bytesRead += Int64(n)
            return s.faults.readDelay
        }
    }

    fileprivate var readDelay: Duration? { state.withLock { $0.faults.readDelay } }

    fileprivate func readStarts() {
        state.withLock { s in
            s.readsInFlight += 1
            s.mostReadsInFlight = max(s.mostReadsInFlight, s.readsInFlight)
        }
    }

    fileprivate func readEnds() { state.withLock { $0.readsInFlight -= 1 } }
}

extension FaultInjectingStore.State {
    /// Counts one change (a commit of `bytes`, or a delete: nil) against the cut; false when it must not happen.
    mutating func allowChange(key: String, bytes: [UInt8]?) -> Bool {
        guard let cut = faults.cut else { return true }
        if !armed, let bytes, let arming = cut.arming, arming(key, bytes) { armed = true }
        guard armed else { return true }
        changesSinceArmed += 1
        if changesSinceArmed > cut.changes { refused += 1; return false }
        return true
    }
}

/// Pages of the base store's listing, passed through.
final class ForwardingPages: ObjectPageSource {
    private var it: ObjectListing.AsyncIterator
    init(_ it: ObjectListing.AsyncIterator) { self.it = it }
    func nextPage() async throws -> [ObjectInfo]? { try await it.next() }
}

final class FaultReadStream: ObjectReadStream {
    private let inner: any ObjectReadStream
    private let store: FaultInjectingStore
    private let key: String
    private let failAfter: Int?
    private var chunks = 0
    init(inner: any ObjectReadStream, store: FaultInjectingStore, key: String, failAfter: Int?) {
        self.inner = inner; self.store = store; self.key = key; self.failAfter = failAfter
    }
    func next() async throws -> [UInt8]? {
        if let failAfter, chunks >= failAfter { throw LetheError(.io, "injected read failure after \(failAfter) chunks", at: key) }
        store.readStarts()
        defer { store.readEnds() }
        if let d = store.readDelay { try await Task.sleep(for: d) }
        guard let c = try await inner.next() else { return nil }
        chunks += 1
        _ = store.chunkRead(c.count)
        return c
    }
    func close() { inner.close() }
}

final class FaultWriteStream: ObjectWriteStream {
    private let inner: any ObjectWriteStream
    private let store: FaultInjectingStore
    private let key: String
    private let precondition: WritePrecondition
    private var bytes: [UInt8] = []
    private var torn = false

    init(inner: any ObjectWriteStream, store: FaultInjectingStore, key: String, precondition: WritePrecondition) {
        self.inner = inner; self.store = store; self.key = key; self.precondition = precondition
    }

    func write(_ b: UnsafeRawBufferPointer) async throws { try await write(Array(b)) }

    func write(_ b: [UInt8]) async throws {
        if store.countWrite() { throw LetheError(.io, "injected write failure", at: key) }
        var part = b[...]
        if let tear = store.tear(for: key) {
            let room = max(0, tear.afterBytes - bytes.count)
            if b.count > room { torn = true; part = b[0..<room] }
        }
        bytes.append(contentsOf: part)
        if !part.isEmpty { try await inner.write(Array(part)) }
    }

    func commit() async throws -> ObjectInfo {
        if let reason = store.allowCommit(key, bytes, precondition) {
            await inner.abort()
            throw LetheError(.io, reason, at: key)
        }
        if torn, let tear = store.tear(for: key) {
            switch tear.how {
            case .lost:
                await inner.abort()
            case .landed:
                _ = try await inner.commit()
                store.landed()
            }
            throw LetheError(.io, "injected torn write after \(tear.afterBytes) bytes", at: key)
        }
        let info = try await inner.commit()
        store.landed()
        return info
    }

    func abort() async { await inner.abort() }

    func replacedTail(from offset: Int64) async throws -> [UInt8] { try await inner.replacedTail(from: offset) }
}
