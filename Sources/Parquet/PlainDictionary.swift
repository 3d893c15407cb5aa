/// A dictionary page's PLAIN body kept as bytes: where each entry lies, without decoding the
/// entries into values. The page-level rewrite neutralises entries and checks statistics on it.
struct PlainDictionary {
    /// The decompressed page body.
    var bytes: [UInt8]
    /// Byte arrays: the start of each entry's 4-byte length prefix, and the body's end last.
    /// Nil for fixed-width entries.
    var starts: [Int]?
    /// Width of a fixed-width entry.
    var width: Int
    var count: Int

    /// Reads a PLAIN dictionary body of `count` entries of `type`; nil for a type whose PLAIN form
    /// is not byte-addressable (booleans).
    init?(_ bytes: [UInt8], count: Int, type: PhysicalType, typeLength: Int) throws(ParquetError) {
        self.bytes = bytes
        self.count = count
        switch type {
        case .boolean: return nil
        case .int32, .float: width = 4
        case .int64, .double: width = 8
        case .int96: width = 12
        case .fixedLenByteArray:
            guard typeLength > 0 else { return nil }
            width = typeLength
        case .byteArray:
            width = 0
            var s = [Int]()
            s.reserveCapacity(count + 1)
            var pos = 0
            let ok = bytes.withUnsafeBytes { p -> Bool in
                for _ in 0..<count {
                    guard p.count - pos >= 4 else { return false }
                    let n = Int(p.loadUnaligned(fromByteOffset: pos, as: UInt32.self).littleEndian)
                    guard n <= p.count - pos - 4 else { return false }
                    s.append(pos)
                    pos += 4 + n
                }
                return true
            }
            guard ok else { throw ParquetError(.corruptPage, "dictionary page: byte array runs past the end of the page") }
            s.append(pos)
            starts = s
            return
        }
        guard bytes.count >= count * width else {
            throw ParquetError(.corruptPage, "dictionary page holds \(bytes.count) bytes for \(count) entries of \(width)")
        }
    }

    /// The PLAIN slot of entry `i` (with the length prefix for byte arrays).
    func slot(_ i: Int) -> Range<Int> {
        if let starts { return starts[i]..<starts[i + 1] }
        return (i * width)..<((i + 1) * width)
    }

    /// Entry `i` as a statistics value (the bytes, without a length prefix).
    func value(_ i: Int) -> [UInt8] {
        let r = slot(i)
        return Array(bytes[(starts == nil ? r.lowerBound : r.lowerBound + 4)..<r.upperBound])
    }

    /// The body with each entry of `orphans` replaced by a *filler*: a value of the same size that
    /// holds nothing of the old one and equals no other entry of the page, so every entry stays
    /// distinct. (A copy of a kept entry, as before, made two equal entries: Arrow's readers of a
    /// dictionary-typed column — pandas categoricals, `read_dictionary` — merge equal entries and then
    /// read the indices past the merged one as other values or out of range.) Byte arrays and
    /// fixed-length byte arrays: zero bytes ending in a counter of 5-bit digits (control characters: a
    /// string stays valid UTF-8 and no filler looks like a value; an empty value stays: it holds nothing); INT96: 1970-01-01 plus a count of
    /// nanoseconds (readers check the day); integers: the values below the smallest other entry (or
    /// above the largest); floating point: the representable values below the smallest other entry
    /// (or above the largest). Also returns the changed byte spans, for an in-place patch of the
    /// compressed page.
    /// Nil when no filler fits (the caller re-encodes the chunk, rebuilding the dictionary).
    ///
    /// `outsideRange`: whether an integer filler may lie outside the other entries' range (a plain
    /// or 32/64-bit integer, a timestamp or a date); false for a decimal, a time or a narrow integer,
    /// whose readers check a value's range: their fillers are values absent from just above the
    /// smallest entry (nil when those are all taken).
    func neutralised(_ orphans: [Int], type: PhysicalType, outsideRange: Bool = true) -> (body: [UInt8], changes: [(at: Int, bytes: [UInt8])])? {
        guard let changes = neutralisedChanges(orphans, type: type, outsideRange: outsideRange) else { return nil }
        return (applying(changes), changes)
    }

    /// The body with `changes` (from `neutralisedChanges`) written over it.
    func applying(_ changes: [(at: Int, bytes: [UInt8])]) -> [UInt8] {
        var body = bytes
        body.withUnsafeMutableBufferPointer { b in
            for c in changes {
                for (k, x) in c.bytes.enumerated() { b[c.at + k] = x }
            }
        }
        return body
    }

    /// The changed byte spans of `neutralised(_:type:outsideRange:)` (sorted by position, not
    /// overlapping) without the new body: what an in-place edit of the compressed page needs, and
    /// all the rewrite needs when that edit succeeds (no copy of the whole body).
    func neutralisedChanges(_ orphans: [Int], type: PhysicalType, outsideRange: Bool = true) -> [(at: Int, bytes: [UInt8])]? {
        guard !orphans.isEmpty else { return [] }
        var changes: [(at: Int, bytes: [UInt8])] = []
        /// Writes `new` over the value bytes at `range`, recording the bytes that changed.
        func put(_ new: [UInt8], at range: Range<Int>) {
            var lo = 0, hi = new.count
            while lo < hi && bytes[range.lowerBound + lo] == new[lo] { lo += 1 }
            while hi > lo && bytes[range.lowerBound + hi - 1] == new[hi - 1] { hi -= 1 }
            guard lo < hi else { return }
            changes.append((range.lowerBound + lo, Array(new[lo..<hi])))
        }
        /// The value bytes of entry `i` (without a byte array's length prefix).
        func valueRange(_ i: Int) -> Range<Int> {
            let r = slot(i)
            return starts == nil ? r : (r.lowerBound + 4)..<r.upperBound
        }
        switch type {
        case .int32, .int64:
            let wide = type == .int64
            func load(_ i: Int) -> Int64 {
                bytes.withUnsafeBytes { p in
                    wide
                        ? Int64(littleEndian: p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                        : Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                }
            }
            // Over every entry, the replaced ones too: a filler must never be the value it replaces.
            var lo = wide ? Int64.max : Int64(Int32.max), hi = wide ? Int64.min : Int64(Int32.min)
            let any = count > 0
            bytes.withUnsafeBytes { p in
                for i in 0..<count {
                    let v =
                        wide
                        ? Int64(littleEndian: p.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
                        : Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self)))
                    lo = Swift.min(lo, v)
                    hi = Swift.max(hi, v)
                }
            }
            let floor = wide ? Int64.min : Int64(Int32.min), ceiling = wide ? Int64.max : Int64(Int32.max)
            let n = Int64(orphans.count)
            var next: Int64, step: Int64
            /// Whether at least `n` values lie strictly between `a` and `b` (`a` < `b`) — or beyond, on overflow.
            func room(_ a: Int64, _ b: Int64) -> Bool {
                let (d, overflow) = b.subtractingReportingOverflow(a)
                return overflow || d >= n
            }
            var inRange: [Int64]?
            if !any {
                (next, step) = (0, 1)
            } else if outsideRange && room(floor, lo) {
                (next, step) = (lo - 1, -1)
            } else if outsideRange && room(hi, ceiling) {
                (next, step) = (hi + 1, 1)
            } else {
                // Values just above the smallest entry that no entry (kept, or being replaced) holds.
                let window = Swift.max(64, 4 * orphans.count)
                var present = [Bool](repeating: false, count: window)
                for i in 0..<count {
                    let (d, overflow) = load(i).subtractingReportingOverflow(lo)
                    if !overflow && d > 0 && d <= Int64(window) { present[Int(d) - 1] = true }
                }
                var free: [Int64] = []
                for k in 0..<window where !present[k] && free.count < orphans.count {
                    let (v, overflow) = lo.addingReportingOverflow(Int64(k) + 1)
                    if overflow || v > hi { break }
                    free.append(v)
                }
                guard free.count == orphans.count else { return nil }
                inRange = free
                (next, step) = (0, 0)
            }
            for (k, o) in orphans.enumerated() {
                let v = inRange?[k] ?? next
                next += step
                let new: [UInt8] =
                    wide ? withUnsafeBytes(of: v.littleEndian) { Array($0) } : withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { Array($0) }
                put(new, at: valueRange(o))
            }
        case .float, .double:
            let wide = type == .double
            func load(_ i: Int) -> Double {
                bytes.withUnsafeBytes { p in
                    wide
                        ? Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                        : Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))))
                }
            }
            var lo = Double.infinity, hi = -Double.infinity, any = false
            for i in 0..<count {
                let v = load(i)
                if v.isNaN { continue }
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
                any = true
            }
            // Each filler one representable step past the last, below the smallest (or above the largest).
            var down = !any
            if any { down = wide ? lo > -Double.greatestFiniteMagnitude : Float(lo) > -Float.greatestFiniteMagnitude }
            var at = any ? (down ? lo : hi) : 0
            if any && !down && (wide ? hi >= Double.greatestFiniteMagnitude : Float(hi) >= Float.greatestFiniteMagnitude) { return nil }
            for (k, o) in orphans.enumerated() {
                if !any && k == 0 {
                    at = 0
                } else if wide {
                    at = down ? at.nextDown : at.nextUp
                } else {
                    at = Double(down ? Float(at).nextDown : Float(at).nextUp)
                }
                guard at.isFinite else { return nil }
                let new: [UInt8] =
                    wide ? withUnsafeBytes(of: at.bitPattern.littleEndian) { Array($0) } : withUnsafeBytes(of: Float(at).bitPattern.littleEndian) { Array($0) }
                put(new, at: valueRange(o))
            }
        case .boolean:
            return nil
        case .int96:
            // Valid timestamps, 1970-01-01 (Julian day 2440588) plus a count of nanoseconds: readers
            // check an INT96's day.
            var taken = Set<[UInt8]>()
            let epochDay = withUnsafeBytes(of: UInt32(2_440_588).littleEndian) { Array($0) }
            for i in 0..<count {
                let r = valueRange(i)
                if bytes[(r.lowerBound + 8)..<r.upperBound].elementsEqual(epochDay) { taken.insert(Array(bytes[r])) }
            }
            var c: UInt64 = 0
            for o in orphans {
                var filler: [UInt8]
                repeat {
                    filler = withUnsafeBytes(of: c.littleEndian) { Array($0) } + epochDay
                    c += 1
                } while taken.contains(filler)
                taken.insert(filler)
                put(filler, at: valueRange(o))
            }
        case .byteArray, .fixedLenByteArray:
            // Fillers of each length the orphans have: zero bytes ending in a counter of 5-bit digits
            // (its last 8 bytes at most: control characters, so a string column stays valid UTF-8 and
            // no filler looks like a value), skipping any that an entry already is (the replaced ones too).
            // The lengths the orphans have (a table, not a set: this runs over every entry).
            var longest = 0
            for o in orphans { longest = Swift.max(longest, valueRange(o).count) }
            var lengths = [Bool](repeating: false, count: longest + 1)
            for o in orphans { lengths[valueRange(o).count] = true }
            lengths[0] = false
            var taken = Set<[UInt8]>()
            bytes.withUnsafeBytes { p in
                for i in 0..<count {
                    let r = valueRange(i)
                    guard r.count <= longest, lengths[r.count] else { continue }
                    let zeros = r.count - Swift.min(r.count, 8)
                    var k = r.lowerBound
                    while k < r.lowerBound + zeros && p[k] == 0 { k += 1 }
                    if k == r.lowerBound + zeros { taken.insert(Array(UnsafeRawBufferPointer(rebasing: p[r]))) }
                }
            }
            var counters: [Int: UInt64] = [:]
            for o in orphans {
                let r = valueRange(o)
                let n = r.count
                guard n > 0 else { continue }  // an empty value holds nothing
                let digits = Swift.min(n, 8)
                var c = counters[n] ?? 0
                var filler = [UInt8](repeating: 0, count: n)
                while true {
                    if c >> UInt64(5 * digits) != 0 { return nil }  // every filler of this length is taken
                    var v = c
                    for j in stride(from: n - 1, through: n - digits, by: -1) {
                        filler[j] = UInt8(truncatingIfNeeded: v & 0x1F)
                        v >>= 5
                    }
                    c += 1
                    if !taken.contains(filler) { break }
                }
                counters[n] = c
                taken.insert(filler)
                put(filler, at: r)
            }
        }
        return changes
    }
}

extension PlainDictionary {
    /// Min and max over the entries marked true, read from the bytes (as `MinMax.compute` over
    /// the decoded entries would give); nil for a type or order this does not handle.
    func minMax(marked: [Bool], type: PhysicalType, order: SortOrder) -> MinMax? {
        guard marked.count == count else { return nil }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        return bytes.withUnsafeBytes { p -> MinMax? in
            func ints<T: FixedWidthInteger>(_: T.Type) -> MinMax {
                var lo = T.max, hi = T.min, any = false
                for i in 0..<count where marked[i] {
                    let v = T(littleEndian: p.loadUnaligned(fromByteOffset: i * width, as: T.self))
                    lo = Swift.min(lo, v)
                    hi = Swift.max(hi, v)
                    any = true
                }
                return any ? MinMax(min: le(lo), max: le(hi)) : MinMax()
            }
            func floats<T: BinaryFloatingPoint>(_: T.Type, _ bits: (T) -> [UInt8], _ load: (Int) -> T) -> MinMax {
                var lo = T.infinity, hi = -T.infinity, any = false
                for i in 0..<count where marked[i] {
                    let v = load(i)
                    if v.isNaN { continue }
                    lo = Swift.min(lo, v)
                    hi = Swift.max(hi, v)
                    any = true
                }
                guard any else { return MinMax() }
                if lo == 0 { lo = -0.0 }
                if hi == 0 { hi = 0.0 }
                return MinMax(min: bits(lo), max: bits(hi))
            }
            switch (type, order) {
            case (.int32, .signed): return ints(Int32.self)
            case (.int32, .unsigned): return ints(UInt32.self)
            case (.int64, .signed): return ints(Int64.self)
            case (.int64, .unsigned): return ints(UInt64.self)
            case (.float, .signed):
                return floats(
                    Float.self, { le($0.bitPattern) }, { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) })
            case (.double, .signed):
                return floats(
                    Double.self, { le($0.bitPattern) }, { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) })
            case (.byteArray, .unsigned), (.fixedLenByteArray, .unsigned):
                // Bytewise, a prefix before its extensions.
                let skip = starts == nil ? 0 : 4
                var lo = -1, hi = -1
                func less(_ a: Int, _ b: Int) -> Bool {
                    let x = slot(a), y = slot(b)
                    let xs = x.lowerBound + skip, ys = y.lowerBound + skip
                    let n = Swift.min(x.upperBound - xs, y.upperBound - ys)
                    var k = 0
                    while k < n && p[xs + k] == p[ys + k] { k += 1 }
                    return k < n ? p[xs + k] < p[ys + k] : x.upperBound - xs < y.upperBound - ys
                }
                for i in 0..<count where marked[i] {
                    if lo < 0 {
                        lo = i
                        hi = i
                        continue
                    }
                    if less(i, lo) { lo = i }
                    if less(hi, i) { hi = i }
                }
                return lo < 0 ? MinMax() : MinMax(min: value(lo), max: value(hi))
            default:
                return nil
            }
        }
    }
}
