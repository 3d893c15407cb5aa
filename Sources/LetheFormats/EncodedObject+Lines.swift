public import LetheCore
public import LetheStorage

extension EncodedObject {
    /// The lines of the decompressed content of `key` that hold a needle (each with its newline, a
    /// last line without one given one), in order, and the needles found. Read a chunk at a time:
    /// only whole lines are searched (a line is carried to the next chunk until its newline comes),
    /// so memory is one chunk, the longest line and the lines kept.
    public static func linesHolding(
        _ needles: NeedleSet, in key: String, of store: any ObjectStore, chunkSize: Int = 1 << 20
    ) async throws -> (lines: [UInt8], found: Set<[UInt8]>) {
        let src = try await Codec.openSource(key, in: store, chunkSize: chunkSize)
        defer { src.close() }
        var lines: [UInt8] = []
        var found = Set<[UInt8]>()
        var carry: [UInt8] = []
        let nl = UInt8(ascii: "\n")
        while let c = try await src.next() {
            guard let last = c.lastIndex(of: nl) else {
                carry += c
                continue
            }
            let whole = carry.isEmpty ? Array(c[...last]) : carry + c[...last]
            let (l, f) = linesHolding(needles, in: whole)
            lines += l
            found.formUnion(f)
            carry = Array(c[(last + 1)...])
        }
        if !carry.isEmpty {
            let (l, f) = linesHolding(needles, in: carry)
            lines += l
            found.formUnion(f)
        }
        return (lines, found)
    }

    /// The lines of `bytes` holding a needle (each with its newline), in order, and the needles found: one
    /// search per block of about 64 KiB (cut at a newline), then line by line only in the blocks with a hit.
    public static func linesHolding(_ needles: NeedleSet, in bytes: [UInt8]) -> (lines: [UInt8], found: Set<[UInt8]>) {
        var lines: [UInt8] = []
        var found = Set<[UInt8]>()
        let nl = UInt8(ascii: "\n")
        func lineEnd(_ from: Int) -> Int {
            var end = from
            while end < bytes.count && bytes[end] != nl { end += 1 }
            return end
        }
        var block = 0
        while block < bytes.count {
            let blockEnd = min(bytes.count, lineEnd(min(bytes.count, block + 65_536)) + 1)
            if needles.containsAny(Array(bytes[block..<blockEnd])) {
                var start = block
                while start < blockEnd {
                    let end = lineEnd(start)
                    let stop = min(end + 1, bytes.count)
                    let hits = needles.matches(in: Array(bytes[start..<end]))
                    if !hits.isEmpty {
                        found.formUnion(hits)
                        lines.append(contentsOf: bytes[start..<stop])
                        if end == bytes.count { lines.append(nl) }
                    }
                    start = stop
                }
            }
            block = blockEnd
        }
        return (lines, found)
    }
}
