import CLetheSeal
import Crypto

/// The data keys of a batch of subjects, aligned with the subjects asked for (subject `i`'s answer at
/// index `i`): raw bytes, no `SymmetricKey` or array per key, so that a chunk's keys cost no retain,
/// release or dictionary probe on the hot path (`RecordCrypter`).
public struct DataKeyBatch: Sendable {
    /// 40 bytes a subject: the 32 key bytes, then the 8 key-id bytes (zeros when not found).
    public var material: [UInt8] = []
    /// Whether subject `i` has a key.
    public var found: [Bool] = []
    /// Bytes a subject in `material`.
    public static let stride = 40

    public init() {}

    /// Room for `n` subjects, none found (capacity kept).
    public mutating func reset(_ n: Int) {
        material.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        material.removeAll(keepingCapacity: true)
        material.append(contentsOf: repeatElement(0, count: n * Self.stride))
        found.removeAll(keepingCapacity: true)
        found.append(contentsOf: repeatElement(false, count: n))
    }

    /// Sets subject `i`'s key.
    public mutating func set(_ i: Int, _ key: ProtectedValue.DataKey) {
        found[i] = true
        material.withUnsafeMutableBytes { m in
            key.key.withUnsafeBytes { k in (m.baseAddress! + i * Self.stride).copyMemory(from: k.baseAddress!, byteCount: 32) }
            key.id.withUnsafeBytes { d in (m.baseAddress! + i * Self.stride + 32).copyMemory(from: d.baseAddress!, byteCount: 8) }
        }
    }

    /// Subject `i`'s key, nil when it has none.
    public func key(_ i: Int) -> ProtectedValue.DataKey? {
        guard found[i] else { return nil }
        let at = i * Self.stride
        return ProtectedValue.DataKey(id: Array(material[(at + 32)..<(at + 40)]), bytes: Array(material[at..<(at + 32)]))
    }

    /// Zeroes the key bytes (after use).
    public mutating func wipe() {
        material.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }
}

extension DataKeySource {
    /// The dictionary answer laid out as a batch (sources without a batch path of their own).
    public func dataKeys(for subjects: [SubjectKey], create: Bool, into batch: inout DataKeyBatch) async throws {
        let found = try await dataKeys(for: subjects, create: create)
        batch.reset(subjects.count)
        for (i, s) in subjects.enumerated() {
            if let k = found[s] { batch.set(i, k) }
        }
    }
}

/// A bounded in-memory cache of unwrapped data keys (the vault's): each entry holds the subject key,
/// the 32 key bytes and the 8 key-id bytes inline in flat arrays (no object per key), found through an
/// open-addressing table on the subject key's first 64 bits. At `capacity` entries the oldest is
/// evicted (insertion order). A removed or evicted entry's key bytes are overwritten with zeros.
public struct DataKeyCache: Sendable {
    public let capacity: Int
    /// Per entry (slot): the subject, whether it is live, and 40 bytes of key ‖ key id.
    var subjects: [SubjectKey] = []
    var live: [Bool] = []
    var material: [UInt8] = []
    /// Slots freed by `remove`, reused first.
    var free: [Int32] = []
    /// Insertion order of the live slots, for eviction (may name slots removed or reused since;
    /// `stamp` tells).
    var order: [Int32] = []
    var orderHead = 0
    var stamps: [UInt32] = []
    var orderStamps: [UInt32] = []
    var clock: UInt32 = 0
    /// Open addressing, linear probing: slot + 1, 0 empty.
    var table: [Int32] = [Int32](repeating: 0, count: 16)
    public private(set) var count = 0

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    @inline(__always) private static func home(_ s: SubjectKey, _ mask: Int) -> Int {
        // The subject key is an HMAC output: its bits are uniform already; mix a little for short tables.
        Int(truncatingIfNeeded: (s.w0 ^ (s.w0 >> 29)) &* 0x9E37_79B9_7F4A_7C15 >> 16) & mask
    }

    /// The table position holding `s`, or nil.
    @inline(__always) private func position(_ s: SubjectKey) -> Int? {
        let mask = table.count - 1
        var h = Self.home(s, mask)
        return table.withUnsafeBufferPointer { t in
            subjects.withUnsafeBufferPointer { subs in
                while true {
                    let e = t[h]
                    if e == 0 { return nil }
                    if subs[Int(e) - 1] == s { return h }
                    h = (h + 1) & mask
                }
            }
        }
    }

    public func contains(_ s: SubjectKey) -> Bool { position(s) != nil }

    /// Copies `s`'s 32 key bytes and 8 id bytes to `out`; false when not cached.
    @inline(__always)
    public func copy(_ s: SubjectKey, to out: UnsafeMutableRawPointer) -> Bool {
        guard let p = position(s) else { return false }
        let slot = Int(table[p]) - 1
        material.withUnsafeBytes { m in out.copyMemory(from: m.baseAddress! + slot * 40, byteCount: 40) }
        return true
    }

    /// Copies the 40 bytes of key and key id of each subject of `query` the cache holds to `out` (subject
    /// `i`'s at `i * 40`) and sets `found[i]`; appends the indices of the others to `missing`. The same
    /// answer as `copy(_:to:)` per subject, with the memory latency of random subjects overlapped: each
    /// subject's table entry is prefetched 8 subjects ahead, its entry's subject and key bytes 4 ahead
    /// (a vault of 100,000 keys does not fit the caches; one subject at a time waited for three misses).
    public func copy(
        _ query: UnsafeBufferPointer<SubjectKey>, to out: UnsafeMutableRawPointer, found: UnsafeMutableBufferPointer<Bool>, missing: inout [Int]
    ) {
        let n = query.count
        let mask = table.count - 1
        table.withUnsafeBufferPointer { t in
            subjects.withUnsafeBufferPointer { subs in
                material.withUnsafeBytes { m in
                    let tp = t.baseAddress!
                    for i in 0..<n {
                        if i + 8 < n { lethe_prefetch(tp + Self.home(query[i + 8], mask)) }
                        if i + 4 < n {
                            let e = tp[Self.home(query[i + 4], mask)]
                            if e != 0, let sb = subs.baseAddress, let mb = m.baseAddress {
                                lethe_prefetch(sb + Int(e) - 1)
                                lethe_prefetch(mb + (Int(e) - 1) * 40)
                            }
                        }
                        let s = query[i]
                        var h = Self.home(s, mask)
                        var hit = -1
                        while true {
                            let e = tp[h]
                            if e == 0 { break }
                            if subs[Int(e) - 1] == s {
                                hit = Int(e) - 1
                                break
                            }
                            h = (h + 1) & mask
                        }
                        if hit >= 0 {
                            (out + i * 40).copyMemory(from: m.baseAddress! + hit * 40, byteCount: 40)
                            found[i] = true
                        } else {
                            missing.append(i)
                        }
                    }
                }
            }
        }
    }

    /// `s`'s key id, nil when not cached.
    public func keyID(_ s: SubjectKey) -> [UInt8]? {
        guard let p = position(s) else { return nil }
        let at = (Int(table[p]) - 1) * 40
        return Array(material[(at + 32)..<(at + 40)])
    }

    /// `s`'s key, nil when not cached.
    public func dataKey(_ s: SubjectKey) -> ProtectedValue.DataKey? {
        guard let p = position(s) else { return nil }
        let at = (Int(table[p]) - 1) * 40
        return ProtectedValue.DataKey(id: Array(material[(at + 32)..<(at + 40)]), bytes: Array(material[at..<(at + 32)]))
    }

    /// Every cached subject.
    public var cachedSubjects: [SubjectKey] {
        var out: [SubjectKey] = []
        out.reserveCapacity(count)
        for i in subjects.indices where live[i] { out.append(subjects[i]) }
        return out
    }

    /// Caches `s`'s key (replacing the one held); evicts the oldest entry beyond `capacity`.
    public mutating func insert(_ s: SubjectKey, _ key: ProtectedValue.DataKey) {
        var bytes = [UInt8](repeating: 0, count: 40)
        key.key.withUnsafeBytes { k in bytes.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: k.baseAddress!, byteCount: 32) } }
        for i in 0..<8 { bytes[32 + i] = key.id[i] }
        bytes.withUnsafeBytes { insert(s, material: $0) }
        bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Caches `s`'s key from 40 bytes (key ‖ id).
    public mutating func insert(_ s: SubjectKey, material m: UnsafeRawBufferPointer) {
        precondition(m.count == 40, "40 bytes of key and key id")
        if let p = position(s) {
            write(Int(table[p]) - 1, m)
            return
        }
        while count >= capacity { evictOldest() }
        let slot: Int
        if let f = free.popLast() {
            slot = Int(f)
            subjects[slot] = s
            live[slot] = true
        } else {
            slot = subjects.count
            subjects.append(s)
            live.append(true)
            stamps.append(0)
            material.append(contentsOf: repeatElement(0, count: 40))
        }
        clock &+= 1
        stamps[slot] = clock
        order.append(Int32(slot))
        orderStamps.append(clock)
        write(slot, m)
        count += 1
        if count * 2 > table.count { rehash(table.count * 2) }
        place(slot)
    }

    private mutating func write(_ slot: Int, _ m: UnsafeRawBufferPointer) {
        material.withUnsafeMutableBytes { ($0.baseAddress! + slot * 40).copyMemory(from: m.baseAddress!, byteCount: 40) }
    }

    private mutating func place(_ slot: Int) {
        let mask = table.count - 1
        var h = Self.home(subjects[slot], mask)
        while table[h] != 0 { h = (h + 1) & mask }
        table[h] = Int32(slot + 1)
    }

    private mutating func rehash(_ size: Int) {
        table = [Int32](repeating: 0, count: size)
        for i in subjects.indices where live[i] { place(i) }
    }

    private mutating func evictOldest() {
        while orderHead < order.count {
            let slot = Int(order[orderHead])
            let stamp = orderStamps[orderHead]
            orderHead += 1
            if live[slot] && stamps[slot] == stamp {
                remove(subjects[slot])
                break
            }
        }
        if orderHead > 4096 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderStamps.removeFirst(orderHead)
            orderHead = 0
        }
    }

    /// Drops `s`'s key (its bytes zeroed).
    public mutating func remove(_ s: SubjectKey) {
        guard var i = position(s) else { return }
        let slot = Int(table[i]) - 1
        material.withUnsafeMutableBytes { _ = ($0.baseAddress! + slot * 40).initializeMemory(as: UInt8.self, repeating: 0, count: 40) }
        live[slot] = false
        free.append(Int32(slot))
        count -= 1
        // Backward-shift deletion: no tombstones.
        let mask = table.count - 1
        table[i] = 0
        var j = i
        while true {
            j = (j + 1) & mask
            let e = table[j]
            if e == 0 { break }
            let k = Self.home(subjects[Int(e) - 1], mask)
            // Move e to the hole unless its home lies cyclically in (i, j].
            let stays = i <= j ? (i < k && k <= j) : (i < k || k <= j)
            if !stays {
                table[i] = e
                table[j] = 0
                i = j
            }
        }
    }

    /// Drops every key (their bytes zeroed).
    public mutating func removeAll() {
        material.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        self = DataKeyCache(capacity: capacity)
    }

    /// The bytes of every slot, live or not (tests: a removed key leaves no bytes behind).
    public var rawMaterial: [UInt8] { material }
}

/// Subject key → small integer, open addressing with linear probing and backward-shift deletion (no
/// tombstones), the keys inline: `ValueSealer`'s kept slots, probed once per distinct subject a chunk.
struct SubjectIndexMap {
    var keys: [SubjectKey]
    /// value + 1; 0: empty.
    var values: [Int32]
    var count = 0
    static let empty = SubjectKey(bytes: [UInt8](repeating: 0, count: 32))

    init() {
        keys = [SubjectKey](repeating: Self.empty, count: 64)
        values = [Int32](repeating: 0, count: 64)
    }

    @inline(__always) static func home(_ s: SubjectKey, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (s.w0 ^ (s.w0 >> 29)) &* 0x9E37_79B9_7F4A_7C15 >> 16) & mask
    }

    @inline(__always) func position(_ s: SubjectKey) -> Int? {
        let mask = values.count - 1
        var h = Self.home(s, mask)
        return values.withUnsafeBufferPointer { v in
            keys.withUnsafeBufferPointer { k in
                while true {
                    if v[h] == 0 { return nil }
                    if k[h] == s { return h }
                    h = (h + 1) & mask
                }
            }
        }
    }

    subscript(_ s: SubjectKey) -> Int32? {
        get { position(s).map { values[$0] - 1 } }
        set {
            if let v = newValue {
                if let p = position(s) {
                    values[p] = v + 1
                    return
                }
                if (count + 1) * 2 > values.count { grow() }
                let mask = values.count - 1
                var h = Self.home(s, mask)
                while values[h] != 0 { h = (h + 1) & mask }
                keys[h] = s
                values[h] = v + 1
                count += 1
            } else {
                _ = removeValue(forKey: s)
            }
        }
    }

    mutating func removeValue(forKey s: SubjectKey) -> Int32? {
        guard var i = position(s) else { return nil }
        let old = values[i] - 1
        let mask = values.count - 1
        values[i] = 0
        count -= 1
        var j = i
        while true {
            j = (j + 1) & mask
            if values[j] == 0 { break }
            let k = Self.home(keys[j], mask)
            let stays = i <= j ? (i < k && k <= j) : (i < k || k <= j)
            if !stays {
                keys[i] = keys[j]
                values[i] = values[j]
                values[j] = 0
                i = j
            }
        }
        return old
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [SubjectKey](repeating: Self.empty, count: oldValues.count * 2)
        values = [Int32](repeating: 0, count: oldValues.count * 2)
        count = 0
        for i in oldValues.indices where oldValues[i] != 0 { self[oldKeys[i]] = oldValues[i] - 1 }
    }
}
