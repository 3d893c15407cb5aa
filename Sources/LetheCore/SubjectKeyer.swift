/// Turns subject values found in records into keys, caching by raw bytes so that
/// a subject seen many times is hashed once. One per task (not shared across threads).
///
/// Canonical values: a JSON string is its unescaped UTF-8 content, a JSON number
/// its literal text, a CSV field its unquoted text, a Parquet value its decimal or
/// UTF-8 text. So `"123"` and `123` name the same subject.
///
/// The cache is an open-addressing table over a byte arena: a hit costs one hash
/// of the value and one comparison, with no allocation.
/// Not thread-safe: one task uses it at a time (pools hand it from task to task,
/// hence `@unchecked Sendable`).
public final class SubjectKeyer: @unchecked Sendable {
    public let hasher: SubjectHasher
    /// Applied to each value before it is keyed (a dataset's `normalize:`); the cache holds the raw values.
    public let normalization: Normalization
    /// All mutable state in one struct: each lookup is one access to the class's storage.
    private var table: Table

    /// - Parameter cacheLimit: distinct values kept before the cache is cleared.
    public init(hasher: SubjectHasher, normalization: Normalization, cacheLimit: Int = 1 << 20) {
        self.hasher = hasher
        self.normalization = normalization
        self.table = Table(limit: max(16, cacheLimit))
    }

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

    /// The key of a canonical value, neither looked up in the cache nor kept there: for values a
    /// caller already knows to be distinct (a Parquet dictionary's entries when its values do not repeat
    /// across chunks), where a cache would only grow. Normalised as `key` does.
    public func uncachedKey(_ canonical: UnsafeRawBufferPointer) -> SubjectKey {
        normalization.apply(canonical).map { hasher.key(forBytes: $0) } ?? hasher.key(forBytes: canonical)
    }

    /// `uncachedKey` of many values stored back to back (value i is `bytes[offsets[i]..<offsets[i + 1]]`),
    /// computed two at a time where they are short: for a whole Parquet dictionary of distinct values.
    public func uncachedKeys(bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>) -> [SubjectKey] {
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

    /// Values the cache has keyed since it was made (a hit does not count): a caller's measure of
    /// how often its values repeat.
    public var misses: Int { table.misses }

    struct Slot { var hash: UInt64; var offset: Int32; var length: Int32; var key: Int32 }

    struct Table {
        let limit: Int
        var slots: [Slot]
        var mask: Int
        var arena: [UInt8] = []
        var keys: [SubjectKey] = []
        var misses = 0

        init(limit: Int) {
            self.limit = limit
            slots = Array(repeating: Slot(hash: 0, offset: 0, length: -1, key: 0), count: 1024)
            mask = 1023
            arena.reserveCapacity(1 << 16)
        }

        mutating func key(_ b: UnsafeRawBufferPointer, _ hasher: SubjectHasher, _ normalization: Normalization) -> SubjectKey {
            let h = SubjectKeyer.hash(b)
            let hit: Int32? = slots.withUnsafeBufferPointer { sl in
                arena.withUnsafeBytes { a in
                    var i = Int(truncatingIfNeeded: h) & mask
                    while true {
                        let s = sl[i]
                        if s.length < 0 { return nil }
                        if s.hash == h && Int(s.length) == b.count
                            && (b.isEmpty || memcmp(a.baseAddress! + Int(s.offset), b.baseAddress!, b.count) == 0)
                        {
                            return s.key
                        }
                        i = (i + 1) & mask
                    }
                }
            }
            if let hit { return keys[Int(hit)] }
            misses &+= 1
            let k = normalization.apply(b).map { hasher.key(forBytes: $0) } ?? hasher.key(forBytes: b)
            insert(h, b, k)
            return k
        }

        mutating func insert(_ h: UInt64, _ b: UnsafeRawBufferPointer, _ k: SubjectKey) {
            if keys.count >= limit || arena.count + b.count > Int(Int32.max) {
                // Full: start over rather than grow without bound.
                keys.removeAll(keepingCapacity: true)
                arena.removeAll(keepingCapacity: true)
                for j in slots.indices { slots[j].length = -1 }
            } else if (keys.count + 1) * 10 > slots.count * 7 {
                grow()
            }
            let offset = Int32(arena.count)
            if !b.isEmpty {
                let old = arena.count
                arena.append(contentsOf: repeatElement(0, count: b.count))
                arena.withUnsafeMutableBytes { a in _ = memcpy(a.baseAddress! + old, b.baseAddress!, b.count) }
            }
            keys.append(k)
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i].length >= 0 { i = (i + 1) & mask }
            slots[i] = Slot(hash: h, offset: offset, length: Int32(b.count), key: Int32(keys.count - 1))
        }

        mutating func grow() {
            let old = slots
            slots = Array(repeating: Slot(hash: 0, offset: 0, length: -1, key: 0), count: old.count * 2)
            mask = slots.count - 1
            for s in old where s.length >= 0 {
                var i = Int(truncatingIfNeeded: s.hash) & mask
                while slots[i].length >= 0 { i = (i + 1) & mask }
                slots[i] = s
            }
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
