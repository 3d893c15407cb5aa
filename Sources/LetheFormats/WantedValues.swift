/// The values `ParquetFormat.match` looks for (a batch's raw ids), looked up by a row's value bytes:
/// a length filter, then up to `linear` values compared one by one, past that an open-addressing
/// table of a word-at-a-time hash. No `Hasher`, no allocation per lookup: with 1,000 subjects the
/// verification of a rewritten Delta table asks once per dictionary entry of every subject chunk
/// (≈ one lookup per row), and `Set<Int>`/`[UInt64: [Int]]` lookups were a third of its CPU.
struct WantedValues: Sendable {
    /// Up to this many values, each lookup compares with every one.
    static let linear = 8

    let values: [[UInt8]]
    /// Bit n set: a value of n bytes (n < 64); `longest` for the rest.
    private let shortLengths: UInt64
    private let hasLong: Bool
    /// Slot → index in `values` (-1: empty), and the slot's hash; `mask` = slots − 1.
    private let slots: [Int32]
    private let hashes: [UInt64]
    private let mask: Int
    /// A 64K-bit filter on each value's length and last four bytes, asked before the hash: a
    /// value whose bit is clear is none of them (at 1,000 values, ~98 % of others stop there).
    private let tails: [UInt64]

    init<S: Sequence>(_ values: S) where S.Element == [UInt8] {
        let list = Array(values)
        self.values = list
        var short: UInt64 = 0
        var long = false
        for v in list {
            if v.count < 64 { short |= 1 << UInt64(v.count) } else { long = true }
        }
        shortLengths = short
        hasLong = long
        guard list.count > Self.linear else {
            slots = []
            hashes = []
            mask = 0
            tails = []
            return
        }
        var t = [UInt64](repeating: 0, count: 1 << 10)
        for v in list {
            let k = v.withUnsafeBytes(Self.tailKey)
            t[k >> 6] |= 1 << UInt64(k & 63)
        }
        tails = t
        var size = 16
        while size < list.count * 4 { size <<= 1 }
        var s = [Int32](repeating: -1, count: size)
        var h = [UInt64](repeating: 0, count: size)
        for (i, v) in list.enumerated() {
            let hv = v.withUnsafeBytes(Self.hash)
            var at = Int(truncatingIfNeeded: hv) & (size - 1)
            while s[at] >= 0 { at = (at + 1) & (size - 1) }
            s[at] = Int32(i)
            h[at] = hv
        }
        slots = s
        hashes = h
        mask = size - 1
    }

    /// The index in `values` of the value equal to `value`, if any (the first, for duplicates).
    @inline(__always)
    func index(of value: UnsafeRawBufferPointer) -> Int? {
        let n = value.count
        if n < 64 {
            guard shortLengths & (1 << UInt64(n)) != 0 else { return nil }
        } else if !hasLong {
            return nil
        }
        if slots.isEmpty {
            return values.firstIndex { $0.count == n && $0.withUnsafeBytes { Self.equal($0, value) } }
        }
        let k = Self.tailKey(value)
        guard tails.withUnsafeBufferPointer({ $0[k >> 6] & (1 << UInt64(k & 63)) != 0 }) else { return nil }
        let hv = Self.hash(value)
        return slots.withUnsafeBufferPointer { s in
            hashes.withUnsafeBufferPointer { h in
                var at = Int(truncatingIfNeeded: hv) & mask
                while s[at] >= 0 {
                    if h[at] == hv {
                        let i = Int(s[at])
                        if values[i].count == n && values[i].withUnsafeBytes({ Self.equal($0, value) }) { return i }
                    }
                    at = (at + 1) & mask
                }
                return nil
            }
        }
    }

    /// Whether no value of a PLAIN section (byte arrays, each a 4-byte length and its bytes, or
    /// `width` bytes each, to its end) is a wanted value. False when one is, and when the section
    /// does not end with a whole value (the caller's full read reports what is wrong).
    func noneIn(plain section: UnsafeRawBufferPointer, width: Int?) -> Bool {
        guard let base = section.baseAddress else { return true }
        let end = section.count
        var at = 0
        while at < end {
            let n: Int
            if let width {
                n = width
            } else {
                guard end - at >= 4 else { return false }
                n = Int(UInt32(littleEndian: section.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                at += 4
            }
            guard n > 0 || width == nil, end - at >= n else { return false }
            if index(of: UnsafeRawBufferPointer(start: base + at, count: n)) != nil { return false }
            at += n
        }
        return true
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var i = 0
        while i + 8 <= a.count {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < a.count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }

    /// 16 bits of the value's length and last four bytes (the tail filter's bit).
    @inline(__always)
    static func tailKey(_ p: UnsafeRawBufferPointer) -> Int {
        let n = p.count
        var t = UInt32(truncatingIfNeeded: n) &* 0x9E37_79B1
        if n >= 4 {
            t ^= p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
        } else {
            for i in 0..<n { t ^= UInt32(p[i]) << (8 * UInt32(i)) }
        }
        t = (t ^ (t >> 15)) &* 0x85EB_CA6B
        return Int(t >> 16)
    }

    /// 64-bit hash of the bytes, eight at a time (any good mix: equality is checked after).
    static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(p.count)
        var i = 0
        while i + 8 <= p.count {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < p.count {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 32)
    }
}
