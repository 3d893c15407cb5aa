import CLetheSHA

/// Turns subject values found in records into keys, caching by raw bytes so that
/// a subject seen many times is hashed once. One per task (not shared across threads).
///
/// Canonical values: a JSON string is its unescaped UTF-8 content, a JSON number
/// its literal text, a CSV field its unquoted text, a Parquet value its decimal or
/// UTF-8 text. So `"123"` and `123` name the same subject.
///
/// The cache is an open-addressing table over a byte arena: a hit costs one hash
/// of the value and one comparison, with no allocation.
///
/// With the SHA extensions an HMAC of a short value (two compressions, ~0.1 µs) costs about what a
/// lookup in a table larger than the CPU's caches does, so there the cache is *adaptive*: it holds at
/// most `adaptiveLimit` values (a table that stays in cache) and, once full, keeps them only while they
/// answer at least half of the lookups; below that (near-unique values, a million distinct subjects) it is
/// bypassed for `bypassSpan` lookups, then cleared and tried again. Without them (an HMAC several times
/// dearer) it grows to `cacheLimit` and starts over when full.
/// Not thread-safe: one task uses it at a time (pools hand it from task to task,
/// hence `@unchecked Sendable`).
public final class SubjectKeyer: @unchecked Sendable {
    public let hasher: SubjectHasher
    /// Applied to each value before it is keyed (a dataset's `normalize:`); the cache holds the raw values.
    public let normalization: Normalization
    /// All mutable state in one struct: each lookup is one access to the class's storage.
    private var table: Table

    /// - Parameter cacheLimit: distinct values kept before the cache is cleared.
    /// - Parameter adaptive: whether the cache is adaptive (see above); `nil`: when the SHA extensions are used.
    public convenience init(hasher: SubjectHasher, normalization: Normalization, cacheLimit: Int = 1 << 20, adaptive: Bool? = nil) {
        self.init(hasher: hasher, normalization: normalization, cacheLimit: cacheLimit, adaptive: adaptive, bypassSpan: SubjectKeyer.bypassSpan)
    }

    init(hasher: SubjectHasher, normalization: Normalization, cacheLimit: Int, adaptive: Bool?, bypassSpan: Int) {
        self.hasher = hasher
        self.normalization = normalization
        let adaptive = adaptive ?? SubjectKeyer.hashesFast
        self.table = Table(
            limit: max(16, adaptive ? min(cacheLimit, SubjectKeyer.adaptiveLimit) : cacheLimit), adaptive: adaptive, bypassSpan: bypassSpan)
    }

    /// Values an adaptive cache holds at most: 32,768 (64 K slots of 64 bytes, 4 MiB).
    public static let adaptiveLimit = 1 << 15
    /// Lookups a full adaptive cache is judged over.
    static let judgeWindow = 4096
    /// Lookups an adaptive cache that answered less than half of a window is bypassed for (its
    /// trials then cost about one lookup in thirty through the table).
    static let bypassSpan = 1 << 20
    /// Whether HMACs use the SHA extensions (the cache is then adaptive by default).
    public static let hashesFast = lethe_sha256_uses_sha_ni() != 0

    /// Keys values as they are (no normalisation).
    public convenience init(hasher: SubjectHasher, cacheLimit: Int = 1 << 20) {
        self.init(hasher: hasher, normalization: .none, cacheLimit: cacheLimit)
    }

    /// The key of a canonical subject value.
    public func key(_ canonical: [UInt8]) -> SubjectKey {
        canonical.withUnsafeBytes { key($0) }
    }

    /// The key of a canonical subject value held in a buffer.
    public func key(_ canonical: UnsafeRawBufferPointer) -> SubjectKey {
        table.key(canonical, hasher, normalization)
    }

    /// The keys of `offsets.count - 1` values stored back to back (value i is `bytes[offsets[i]..<offsets[i + 1]]`),
    /// in order into `out` (emptied first), as `key` gives them one by one and with the same accounting;
    /// while the cache is bypassed for all of them, short values are keyed two at a time. `scratch` and
    /// `out` keep their capacity from one call to the next.
    public func keys(bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>, scratch: inout [UInt8], into out: inout [SubjectKey]) {
        let n = max(0, offsets.count - 1)
        if table.bypassLeft > n {
            table.bypassLeft -= n
            table.misses &+= n
            if normalization == .none {
                hasher.keys(bytes: bytes, offsets: offsets, scratch: &scratch, into: &out)
            } else {
                out = Self.uncachedKeys(hasher, normalization, bytes: bytes, offsets: offsets)
            }
            return
        }
        out.removeAll(keepingCapacity: true)
        for i in 0..<n { out.append(key(UnsafeRawBufferPointer(rebasing: bytes[offsets[i]..<offsets[i + 1]]))) }
    }

    /// The key of a canonical value, neither looked up in the cache nor kept there: for values a
    /// caller already knows to be distinct (a Parquet dictionary's entries when its values do not repeat
    /// across chunks), where a cache would only grow. Normalised as `key` does.
    public func uncachedKey(_ canonical: UnsafeRawBufferPointer) -> SubjectKey {
        normalization.apply(canonical).map { hasher.key(forBytes: $0) } ?? hasher.key(forBytes: canonical)
    }

    /// `uncachedKey` of many values stored back to back (value i is `bytes[offsets[i]..<offsets[i + 1]]`),
    /// computed two at a time where they are short: for a whole Parquet dictionary of distinct values.
    public func uncachedKeys(bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>) -> [SubjectKey] {
        Self.uncachedKeys(hasher, normalization, bytes: bytes, offsets: offsets)
    }

    /// `uncachedKeys(bytes:offsets:)` of a keyer with `hasher` and `normalization`, without one: touches no
    /// cache, so several threads may call it at once (a Parquet object's row groups keyed in parallel).
    public static func uncachedKeys(
        _ hasher: SubjectHasher, _ normalization: Normalization, bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>
    ) -> [SubjectKey] {
        var keys = hasher.keys(bytes: bytes, offsets: offsets)
        if normalization != .none {
            // Values NFC changes (non-ASCII ones only) are keyed in their normal form.
            for i in keys.indices {
                let v = UnsafeRawBufferPointer(rebasing: bytes[offsets[i]..<offsets[i + 1]])
                if let n = normalization.apply(v) { keys[i] = hasher.key(forBytes: n) }
            }
        }
        return keys
    }

    /// Values the cache has keyed since it was made (a hit does not count, a bypassed lookup does): a
    /// caller's measure of how often its values repeat.
    public var misses: Int { table.misses }

    /// Whether an adaptive cache is being bypassed now (tests).
    var bypassing: Bool { table.bypassLeft > 0 }

    deinit { table.deallocate() }

    /// One cache line: a lookup that hits reads one line (the value's first 16 bytes and its key
    /// are in it; only a value longer than 16 bytes compares its rest in the arena). With a million
    /// distinct subjects the table is far larger than the caches, so a lookup's cost is its misses.
    struct Slot: Sendable {
        static let empty = Slot(key: SubjectKey(bytes: [UInt8](repeating: 0, count: 32)), hash: 0, length: -1, offset: 0, head0: 0, head1: 0)
        var key: SubjectKey
        var hash: UInt64
        /// -1: empty.
        var length: Int32
        /// Where the value's bytes past the 16th are in the arena.
        var offset: Int32
        /// The value's first 16 bytes, zero-padded.
        var head0: UInt64
        var head1: UInt64
    }

    struct Table {
        let limit: Int
        let adaptive: Bool
        let bypassSpan: Int
        private(set) var slots: UnsafeMutablePointer<Slot>
        private(set) var mask: Int
        var arena: [UInt8] = []
        var count = 0
        var misses = 0
        /// Lookups left to answer without the table (an adaptive table judged not to pay).
        var bypassLeft = 0
        /// A full adaptive table's current judging window: lookups, and those it answered.
        var windowLookups = 0
        var windowHits = 0

        init(limit: Int, adaptive: Bool, bypassSpan: Int) {
            self.limit = limit
            self.adaptive = adaptive
            self.bypassSpan = bypassSpan
            mask = 1023
            slots = Table.allocate(1024)
            arena.reserveCapacity(1 << 16)
        }

        /// Slots on 64-byte lines (2 MiB-aligned and backed by huge pages where the system allows, so
        /// a lookup in a large table costs no TLB miss), all empty.
        static func allocate(_ n: Int) -> UnsafeMutablePointer<Slot> {
            let bytes = n * MemoryLayout<Slot>.stride
            let huge = 2 << 20
            var raw: UnsafeMutableRawPointer? = nil
            guard posix_memalign(&raw, bytes >= huge ? huge : 64, bytes) == 0, let raw else { fatalError("out of memory for the key cache") }
            #if os(Linux)
                if bytes >= huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
            #endif
            let p = raw.bindMemory(to: Slot.self, capacity: n)
            p.initialize(repeating: Slot.empty, count: n)
            return p
        }

        func deallocate() { free(slots) }

        /// The value's first 16 bytes, zero-padded.
        @inline(__always)
        static func head(_ b: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
            var h: (UInt64, UInt64) = (0, 0)
            if let base = b.baseAddress { withUnsafeMutableBytes(of: &h) { _ = memcpy($0.baseAddress!, base, Swift.min(16, b.count)) } }
            return h
        }

        mutating func key(_ b: UnsafeRawBufferPointer, _ hasher: SubjectHasher, _ normalization: Normalization) -> SubjectKey {
            if bypassLeft > 0 {
                bypassLeft &-= 1
                if bypassLeft == 0 { clear() }
                misses &+= 1
                return normalization.apply(b).map { hasher.key(forBytes: $0) } ?? hasher.key(forBytes: b)
            }
            let h = SubjectKeyer.hash(b)
            let (h0, h1) = Table.head(b)
            var i = Int(truncatingIfNeeded: h) & mask
            while true {
                let s = slots + i
                let length = s.pointee.length
                if length < 0 { break }
                if s.pointee.hash == h && Int(length) == b.count && s.pointee.head0 == h0 && s.pointee.head1 == h1
                    && (b.count <= 16
                        || arena.withUnsafeBytes { a in memcmp(a.baseAddress! + Int(s.pointee.offset), b.baseAddress! + 16, b.count - 16) == 0 })
                {
                    if adaptive && count >= limit { judge(hit: true) }
                    return s.pointee.key
                }
                i = (i + 1) & mask
            }
            misses &+= 1
            let k = normalization.apply(b).map { hasher.key(forBytes: $0) } ?? hasher.key(forBytes: b)
            if adaptive && count >= limit {
                judge(hit: false)
            } else {
                insert(h, b, k, head: (h0, h1))
            }
            return k
        }

        /// Counts a lookup of a full adaptive table; at the end of a window in which it answered less
        /// than half of the lookups, it is bypassed for the next `bypassSpan`.
        mutating func judge(hit: Bool) {
            windowLookups &+= 1
            if hit { windowHits &+= 1 }
            guard windowLookups == SubjectKeyer.judgeWindow else { return }
            if windowHits * 2 < windowLookups { bypassLeft = bypassSpan }
            windowLookups = 0
            windowHits = 0
        }

        /// Empties the table (keeping its slots and arena's memory).
        mutating func clear() {
            count = 0
            windowLookups = 0
            windowHits = 0
            arena.removeAll(keepingCapacity: true)
            for j in 0...mask { slots[j].length = -1 }
        }

        mutating func insert(_ h: UInt64, _ b: UnsafeRawBufferPointer, _ k: SubjectKey, head: (UInt64, UInt64)) {
            if count >= limit || arena.count + b.count > Int(Int32.max) {
                // Full: start over rather than grow without bound.
                clear()
            } else if (count + 1) * 10 > (mask + 1) * 7 {
                grow()
            }
            let offset = Int32(arena.count)
            if b.count > 16 {
                let old = arena.count
                arena.append(contentsOf: repeatElement(0, count: b.count - 16))
                arena.withUnsafeMutableBytes { a in _ = memcpy(a.baseAddress! + old, b.baseAddress! + 16, b.count - 16) }
            }
            count += 1
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i].length >= 0 { i = (i + 1) & mask }
            slots[i] = Slot(key: k, hash: h, length: Int32(b.count), offset: offset, head0: head.0, head1: head.1)
        }

        mutating func grow() {
            let old = slots, oldCount = mask + 1
            slots = Table.allocate(oldCount * 2)
            mask = oldCount * 2 - 1
            for j in 0..<oldCount where old[j].length >= 0 {
                var i = Int(truncatingIfNeeded: old[j].hash) & mask
                while slots[i].length >= 0 { i = (i + 1) & mask }
                slots[i] = old[j]
            }
            free(old)
        }
    }

    /// A fast 64-bit hash of a short byte string (not keyed: only for the cache).
    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(b.count)
        var i = 0
        let n = b.count
        while i + 8 <= n {
            let w = b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(b[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        return h
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
