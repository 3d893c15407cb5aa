import CLetheJSON
import Foundation
public import LetheCore
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// The deletion set of a stream filter: the 64-bit stream tags of every forgotten
/// subject, in an immutable open-addressing table (linear probing, slot index by
/// multiply-shift so the capacity need not be a power of two).
///
/// Memory: one `UInt64` a slot, about 1.5 slots a tag after a rebuild and at most
/// 8/7 after growth by `applying`: 9–12 bytes a forgotten subject.
/// Immutable once built, so it is shared across threads freely: that is why it is
/// `@unchecked Sendable` (its slots are a raw buffer written only in `init` and freed in `deinit`).
public final class DeletionSet: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<UInt64>
    private let capacity: Int
    /// The number of distinct tags.
    public let count: Int
    /// The tag 0 marks an empty slot, so it is held apart.
    private let hasZero: Bool

    /// An empty set.
    public convenience init() { self.init(tags: []) }

    /// A set of `tags` (duplicates allowed).
    public convenience init(tags: [UInt64]) {
        self.init(tags, capacity: Self.capacity(for: tags.count))
    }

    static func capacity(for n: Int) -> Int { max(8, n + n / 2 + 1) }

    private init(_ tags: [UInt64], capacity: Int, copying other: DeletionSet? = nil, without removed: Set<UInt64> = []) {
        self.capacity = capacity
        let slots = Self.allocateSlots(capacity)
        self.slots = slots
        var n = 0
        var zero = false
        if let other, other.capacity == capacity, removed.isEmpty {
            slots.update(from: other.slots, count: capacity)
            n = other.count - (other.hasZero ? 1 : 0)
            zero = other.hasZero
        } else {
            slots.initialize(repeating: 0, count: capacity)
            if let other {
                other.forEach { t in
                    if removed.contains(t) { return }
                    if t == 0 { zero = true } else if Self.insert(t, slots, capacity) { n += 1 }
                }
            }
        }
        for t in tags where !removed.contains(t) {
            if t == 0 { zero = true } else if Self.insert(t, slots, capacity) { n += 1 }
        }
        hasZero = zero
        count = n + (zero ? 1 : 0)
    }

    deinit { Self.freeSlots(slots, capacity) }

    // For `DeletionSnapshot`.
    var capacityForSnapshot: Int { capacity }
    var hasZeroForSnapshot: Bool { hasZero }
    var slotsForSnapshot: UnsafePointer<UInt64> { UnsafePointer(slots) }

    /// A table whose slots `fill` writes (a snapshot); nil if `fill` fails or the slots
    /// do not hold `count` tags.
    init?(snapshotCapacity capacity: Int, count: Int, hasZero: Bool, fill: (UnsafeMutablePointer<UInt64>) -> Bool) {
        let slots = Self.allocateSlots(capacity)
        guard fill(slots) else { Self.freeSlots(slots, capacity); return nil }
        var n = 0
        for i in 0..<capacity where slots[i] != 0 { n += 1 }
        guard n + (hasZero ? 1 : 0) == count else { Self.freeSlots(slots, capacity); return nil }
        self.capacity = capacity
        self.slots = slots
        self.count = count
        self.hasZero = hasZero
    }

    /// Tables of 4 MiB and more are mapped directly and marked for transparent huge
    /// pages: a lookup is one random access, and with 4 KiB pages a large table also
    /// costs a TLB miss per event (expensive under virtualisation).
    private static let bigTable = 4 << 20

    private static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<UInt64> {
        let bytes = capacity * MemoryLayout<UInt64>.stride
        #if canImport(Glibc)
            if bytes >= bigTable {
                let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                if let m, m != MAP_FAILED {
                    _ = madvise(m, bytes, 14)  // MADV_HUGEPAGE (a hint; ignored where unsupported)
                    return m.bindMemory(to: UInt64.self, capacity: capacity)
                }
            }
        #endif
        return .allocate(capacity: capacity)
    }

    private static func freeSlots(_ p: UnsafeMutablePointer<UInt64>, _ capacity: Int) {
        let bytes = capacity * MemoryLayout<UInt64>.stride
        #if canImport(Glibc)
            if bytes >= bigTable {
                munmap(p, bytes)
                return
            }
        #endif
        p.deallocate()
    }

    @inline(__always)
    private static func home(_ t: UInt64, _ capacity: Int) -> Int {
        Int(truncatingIfNeeded: t.multipliedFullWidth(by: UInt64(capacity)).high)
    }

    /// Inserts a non-zero tag; false if it was there.
    private static func insert(_ t: UInt64, _ slots: UnsafeMutablePointer<UInt64>, _ capacity: Int) -> Bool {
        var i = home(t, capacity)
        while true {
            let s = slots[i]
            if s == 0 { slots[i] = t; return true }
            if s == t { return false }
            i += 1
            if i == capacity { i = 0 }
        }
    }

    /// Prefetches the slots `contains(tag)` reads (a hint; see `StreamFilter.filter`): the home
    /// slot's cache line and the one holding the slot seven further on. A tag that is not in the
    /// set (most of a stream's) is looked up past its home slot — about five slots on average at
    /// the table's load of two thirds — so its probe crosses into the next line about half the time.
    @inline(__always)
    public func prefetch(_ tag: UInt64) {
        let h = Self.home(tag, capacity)
        lethe_json_prefetch(UnsafeRawPointer(slots + h))
        lethe_json_prefetch(UnsafeRawPointer(slots + min(h + 7, capacity - 1)))
    }

    /// True if `tag` is in the set.
    @inline(__always)
    public func contains(_ tag: UInt64) -> Bool {
        if tag == 0 { return hasZero }
        var i = Self.home(tag, capacity)
        while true {
            let s = slots[i]
            if s == tag { return true }
            if s == 0 { return false }
            i += 1
            if i == capacity { i = 0 }
        }
    }

    /// Calls `body` with every tag.
    public func forEach(_ body: (UInt64) -> Void) {
        if hasZero { body(0) }
        for i in 0..<capacity where slots[i] != 0 { body(slots[i]) }
    }

    /// Every tag (unordered).
    public var tags: [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(count)
        forEach { out.append($0) }
        return out
    }

    /// The bytes the table holds.
    public var memoryBytes: Int { capacity * MemoryLayout<UInt64>.stride }

    /// A new set with `changes.added` inserted and `changes.removed` taken out.
    /// Additions that fit under a 7/8 load copy the table; removals or growth rebuild it.
    public func applying(_ changes: DeletionChanges) -> DeletionSet {
        let removed = Set(changes.removed)
        let needed = count + changes.added.count
        if removed.isEmpty && needed * 8 <= capacity * 7 {
            return DeletionSet(changes.added, capacity: capacity, copying: self)
        }
        return DeletionSet(changes.added, capacity: Self.capacity(for: needed), copying: self, without: removed)
    }
}

/// The current deletion set, swapped atomically as the metastore changes; many
/// filters (threads) may read it. Readers take the lock once per buffer they filter.
public final class SharedDeletionSet: Sendable {
    private struct State {
        var set: DeletionSet
        var cursor: Int64 = Int64.min
        var refreshes = 0
    }
    private let state: Mutex<State>

    public init(_ set: DeletionSet = DeletionSet()) { state = Mutex(State(set: set)) }

    /// The set now.
    public var current: DeletionSet { state.withLock { $0.set } }

    /// How many refreshes changed the set.
    public var generation: Int { state.withLock { $0.refreshes } }

    /// Replaces the set.
    public func replace(_ s: DeletionSet) {
        state.withLock {
            $0.set = s; $0.refreshes += 1
        }
    }

    /// Loads the whole set with `source(Int64.min)`, then keeps it current by calling
    /// `source(cursor)` every `interval` seconds until the task is cancelled.
    ///
    /// The cursor is the newest `updated_at` seen minus `overlap` ms, so a request
    /// committed late with an older timestamp (another process's clock, a slow
    /// transaction) is still picked up; re-reading the overlap is harmless
    /// (insertions are idempotent).
    public func load(from source: @Sendable (Int64) async throws -> DeletionChanges) async throws {
        let all = try await source(Int64.min)
        let s = DeletionSet(tags: all.added)
        state.withLock {
            $0.set = s; $0.cursor = all.latest; $0.refreshes += 1
        }
    }

    /// Installs a set read elsewhere (a snapshot) that reflects requests up to `cursor`;
    /// `refresh` then catches up from there.
    public func install(_ s: DeletionSet, cursor: Int64) {
        state.withLock {
            $0.set = s; $0.cursor = cursor; $0.refreshes += 1
        }
    }

    /// The newest `updated_at` the set reflects.
    public var currentCursor: Int64 { state.withLock { $0.cursor } }

    /// One incremental refresh; returns true if the set changed.
    @discardableResult
    public func refresh(from source: @Sendable (Int64) async throws -> DeletionChanges, overlap: Int64 = 5_000) async throws -> Bool {
        let (old, since) = state.withLock { ($0.set, $0.cursor) }
        let from = since == Int64.min ? Int64.min : since &- overlap
        let ch = try await source(from)
        let fresh = ch.added.contains { !old.contains($0) } || ch.removed.contains { old.contains($0) }
        var next = old
        if fresh { next = old.applying(ch) }
        state.withLock {
            if fresh { $0.set = next; $0.refreshes += 1 }
            if ch.latest > $0.cursor { $0.cursor = ch.latest }
        }
        return fresh
    }

    /// Refreshes every `interval` seconds until cancelled; errors are passed to `onError` and retried.
    public func follow(
        _ source: @escaping @Sendable (Int64) async throws -> DeletionChanges, interval: Double = 0.25,
        onError: @escaping @Sendable (any Error) -> Void = { _ in }
    ) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                try await refresh(from: source)
            } catch is CancellationError {
                return
            } catch {
                onError(error)
            }
        }
    }
}
