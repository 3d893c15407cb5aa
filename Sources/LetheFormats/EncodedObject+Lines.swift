public import LetheCore
public import LetheStorage

extension EncodedObject {
    /// The lines of the decompressed content of `key` that hold a needle (each with its newline, a
    /// last line without one given one), in order, and the needles found. Read a chunk at a time:
    /// only whole lines are searched (a line is carried to the next chunk until its newline comes),
    /// so memory is one chunk, the longest line and the lines kept.
    ///
    /// An object stored plain is lent by the store a window at a time (`ObjectStore.forEachWindow`: a
    /// local file mapped, not copied; the kernel reads the next window while this one is searched),
    /// each window searched up to its last newline; a compressed one is decoded a chunk at a time.
    public static func linesHolding(
        _ needles: NeedleSet, in key: String, of store: any ObjectStore, chunkSize: Int = 4 << 20
    ) async throws -> (lines: [UInt8], found: Set<[UInt8]>) {
        guard Compression.forKey(key) == .none else { return try await decodedLinesHolding(needles, in: key, of: store, chunkSize: chunkSize) }
        var lines: [UInt8] = []
        var found = Set<[UInt8]>()
        let nl = UInt8(ascii: "\n")
        do {
            try await store.forEachWindow(of: key, window: chunkSize) { w, end in
                var upto = w.count
                if !end {
                    while upto > 0 && w[upto - 1] != nl { upto -= 1 }
                    if upto == 0 { return w.count }  // no newline yet: a longer window
                }
                if upto > 0 {
                    let (l, f) = linesHolding(needles, in: UnsafeBufferPointer(rebasing: w[0..<upto]))
                    lines += l
                    found.formUnion(f)
                }
                return w.count - upto
            }
        } catch {
            throw Codec.readFailure(error, key)
        }
        return (lines, found)
    }

    /// `linesHolding` over a compressed object's decoded chunks.
    static func decodedLinesHolding(
        _ needles: NeedleSet, in key: String, of store: any ObjectStore, chunkSize: Int
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
            // The line the previous chunk began, completed; then this chunk's whole lines searched where
            // they lie (no copy of the chunk).
            var from = 0
            if !carry.isEmpty, let first = c.firstIndex(of: nl) {
                carry += c[...first]
                let (l, f) = linesHolding(needles, in: carry)
                lines += l
                found.formUnion(f)
                from = first + 1
            }
            if from <= last {
                let (l, f) = c.withUnsafeBufferPointer { h in
                    linesHolding(needles, in: UnsafeBufferPointer(rebasing: h[from...last]))
                }
                lines += l
                found.formUnion(f)
            }
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
    /// pass of the needle search over the whole of `bytes`; a hit's line is found around it. A needle is
    /// found only inside one line (a needle holding a newline never is), and a line's edges count as
    /// word boundaries.
    public static func linesHolding(_ needles: NeedleSet, in bytes: [UInt8]) -> (lines: [UInt8], found: Set<[UInt8]>) {
        bytes.withUnsafeBufferPointer { linesHolding(needles, in: $0) }
    }

    /// `linesHolding(_:in:)` over bytes in place.
    public static func linesHolding(
        _ needles: NeedleSet, in h: UnsafeBufferPointer<UInt8>
    ) -> (lines: [UInt8], found: Set<[UInt8]>) {
        var lines: [UInt8] = []
        var found = Set<[UInt8]>()
        let nl = UInt8(ascii: "\n")
        // The end (its newline's index, or the count) of the last line kept.
        var keptEnd = -1
        needles.forEachOccurrence(in: h) { at, needle in
            if needle.contains(nl) { return true }
            found.insert(needle)
            if at < keptEnd { return true }
            var start = at
            while start > 0 && h[start - 1] != nl { start -= 1 }
            var end = at + needle.count
            while end < h.count && h[end] != nl { end += 1 }
            lines.append(contentsOf: UnsafeBufferPointer(rebasing: h[start..<min(end + 1, h.count)]))
            if end == h.count { lines.append(nl) }
            keptEnd = end
            return true
        }
        return (lines, found)
    }
}
