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

    /// The body with each entry of `orphans` replaced by a copy of a kept entry (`kept[i]`), of
    /// the same length where one exists. Also returns the changed byte spans when the body keeps
    /// its size (every replacement the same length), for an in-place patch of the compressed page.
    func neutralised(_ orphans: [Int], kept: [Bool]) -> (body: [UInt8], changes: [(at: Int, bytes: [UInt8])]?)? {
        guard let first = kept.firstIndex(of: true) else { return nil }
        var keeper = [Int](repeating: first, count: orphans.count)
        if starts != nil {
            // A kept entry of each length an orphan has, found in one pass.
            var want: [Int: Int] = [:]
            for o in orphans { want[slot(o).count] = -1 }
            var missing = want.count
            var i = 0
            while missing > 0 && i < count {
                if kept[i], let w = want[slot(i).count], w < 0 {
                    want[slot(i).count] = i
                    missing -= 1
                }
                i += 1
            }
            for (k, o) in orphans.enumerated() { if let w = want[slot(o).count], w >= 0 { keeper[k] = w } }
        }
        let sameSize = orphans.indices.allSatisfy { slot(orphans[$0]).count == slot(keeper[$0]).count }
        if sameSize {
            var body = bytes
            var changes: [(at: Int, bytes: [UInt8])] = []
            for (k, o) in orphans.enumerated() {
                let to = slot(o), from = slot(keeper[k])
                var lo = 0, hi = to.count
                while lo < hi && bytes[to.lowerBound + lo] == bytes[from.lowerBound + lo] { lo += 1 }
                while hi > lo && bytes[to.lowerBound + hi - 1] == bytes[from.lowerBound + hi - 1] { hi -= 1 }
                guard lo < hi else { continue }
                let b = Array(bytes[(from.lowerBound + lo)..<(from.lowerBound + hi)])
                body.replaceSubrange((to.lowerBound + lo)..<(to.lowerBound + hi), with: b)
                changes.append((to.lowerBound + lo, b))
            }
            return (body, changes)
        }
        var body: [UInt8] = []
        body.reserveCapacity(bytes.count)
        var pos = 0
        for (k, o) in orphans.enumerated() {
            let to = slot(o)
            body.append(contentsOf: bytes[pos..<to.lowerBound])
            body.append(contentsOf: bytes[slot(keeper[k])])
            pos = to.upperBound
        }
        body.append(contentsOf: bytes[pos...])
        return (body, nil)
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
