import Foundation
import LetheCore

/// Sorted posting segments (issue 16, "an index write path at backfill speed").
///
/// A batch of objects with many postings is written as one segment: every (key prefix, object,
/// rows) entry of the batch, sorted by key then object, cut into blocks of about `blockTarget`
/// bytes, one `segment_blocks` row per block keyed by (segment, the block's last key). A block
/// ends only where the key changes, so a key's entries of one segment are in one block: `locate`
/// reads one block per segment (the first whose last key is not below the key).
///
/// A block: one format byte (1), the first entry's key (8 bytes, little-endian), then per entry
/// the key's distance to the previous entry's key (unsigned varint, 0 for the first entry and for
/// a repeated key), the object id (varint), the length of the rows (varint) and the rows as
/// `PostingCodec.encodeRows` writes them.
///
/// An entry is live while its object's row names its segment (`objects.segment`); an object
/// re-indexed, quarantined or removed leaves its entries dead (its id joins `dead_objects`, so it
/// is never reused), and a merge of segments leaves dead entries out.
enum PostingSegment {
    /// Bytes of entries a block holds before it ends (at the next change of key): with the block's
    /// row it fits one 4 KiB page of a rowid table.
    static let blockTarget = 3_800
    /// A batch holding fewer postings is written to the `postings` table (a B-tree row a key).
    static let minimumPostings = 65_536
    /// Segments of one size tier (a factor `fanout` apart) are merged once there are `fanout` of them.
    /// Large, so that an index pass of fewer batches than this merges nothing while it runs: its
    /// segments are merged once, all together, at its end (`consolidateSegments`), and an entry is
    /// written twice (its batch's segment, the merged one). A pass of many more batches (a lake of
    /// many gigabytes) merges a tier's segments 16 at a time, so a lookup meanwhile reads at most 15
    /// blocks a tier and the final merge has few inputs.
    static let fanout = 16
    static let format: UInt8 = 1

    /// Builds blocks from entries given in (key, object) order.
    struct Writer {
        private var blocks: [(lastKey: Int64, data: Data)] = []
        private(set) var entries: Int64 = 0
        /// Blocks closed so far (taken or not).
        private(set) var blocksWritten: Int64 = 0
        /// Blocks closed and not yet taken.
        var pendingBlocks: Int { blocks.count }
        /// The open block's bytes are `block[0..<used]`; the rest is room written in place (an entry
        /// is a few varints and a few bytes of rows: no `append` call, capacity check or copy loop
        /// per byte: `Array.append(contentsOf:)` alone was ~2 % of a backfill, whose entries pass here twice).
        private var block: [UInt8]
        private var used = 0
        private var previous: Int64 = 0
        private var open = false

        init() { block = [UInt8](repeating: 0, count: blockTarget + 512) }

        /// Appends an entry; `rows` is its encoded rows.
        mutating func add(key: Int64, object: Int64, rows: UnsafeRawBufferPointer) {
            if open && key != previous && used >= PostingSegment.blockTarget { close() }
            // Header (9) + three varints (10 each) + the rows, at most.
            let room = 39 + rows.count
            if used + room > block.count { block.append(contentsOf: repeatElement(0, count: max(room, block.count))) }
            let wasOpen = open
            let first = previous
            used = block.withUnsafeMutableBytes { b in
                var i = used
                var base = first
                if !wasOpen {
                    b[i] = PostingSegment.format
                    b.storeBytes(of: key.littleEndian, toByteOffset: i + 1, as: Int64.self)
                    i += 9
                    base = key
                }
                PostingCodec.putVarint(UInt64(bitPattern: key &- base), b, &i)
                PostingCodec.putVarint(UInt64(bitPattern: object), b, &i)
                PostingCodec.putVarint(UInt64(rows.count), b, &i)
                // An entry's rows are a few bytes (a row ordinal or two): copied byte by byte, not by
                // a `memmove` call an entry (~2 % of a backfill, whose entries pass here twice).
                let n = rows.count
                if n <= 8 {
                    for j in 0..<n { b[i + j] = rows[j] }
                } else {
                    UnsafeMutableRawBufferPointer(rebasing: b[i..<(i + n)]).copyMemory(from: rows)
                }
                i += n
                return i
            }
            open = true
            previous = key
            entries += 1
        }

        /// Ends the open block (if any).
        mutating func close() {
            guard open else { return }
            blocks.append((previous, block.withUnsafeBytes { Data($0[0..<used]) }))
            blocksWritten += 1
            used = 0
            open = false
        }

        /// The closed blocks, handed over.
        mutating func takeBlocks() -> [(lastKey: Int64, data: Data)] {
            defer { blocks.removeAll(keepingCapacity: true) }
            return blocks
        }
    }

    /// Calls `visit` with each entry of a block in order (key, object, encoded rows) until it returns false.
    static func forEach(
        _ data: UnsafeRawBufferPointer, _ visit: (Int64, Int64, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        guard data.count >= 9, data[0] == format else { throw LetheError(.corrupt, "posting segment block: bad header") }
        var key = data.loadUnaligned(fromByteOffset: 1, as: Int64.self).littleEndian
        var i = 9
        let n = data.count
        while i < n {
            let delta = try varint(data, &i)
            let object = try varint(data, &i)
            let length = try varint(data, &i)
            guard length <= UInt64(n - i), object <= UInt64(Int64.max) else { throw LetheError(.corrupt, "posting segment block: truncated entry") }
            key = key &+ Int64(bitPattern: delta)
            let rows = UnsafeRawBufferPointer(rebasing: data[i..<(i + Int(length))])
            i += Int(length)
            if try !visit(key, Int64(object), rows) { return }
        }
    }

    /// `PostingCodec.readVarint` on a block's bytes, the same values and errors, without its checks per
    /// byte where nine bytes are left: a lookup walks a block's entries up to its key (hundreds of
    /// entries, three varints each, a key's distance six bytes or so), a third of a batch's `locate`.
    /// A varint of ten bytes, or one near the end, goes through the checked reader.
    @inline(__always)
    static func varint(_ data: UnsafeRawBufferPointer, _ i: inout Int) throws -> UInt64 {
        guard data.count - i >= 9 else { return try PostingCodec.readVarint(data, &i) }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var j = i
        while shift <= 56 {
            let b = data[j]
            j += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 {
                i = j
                return value
            }
            shift += 7
        }
        return try PostingCodec.readVarint(data, &i)
    }

    /// The first key of a block (its header).
    static func firstKey(_ data: Data) throws -> Int64 {
        guard data.count >= 9, data.first == format else { throw LetheError(.corrupt, "posting segment block: bad header") }
        return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 1, as: Int64.self).littleEndian }
    }

    /// The size tier of a segment of `entries` entries (merged with its peers, `fanout` at a time).
    static func tier(_ entries: Int64) -> Int {
        var t = 0
        var size = Int64(minimumPostings) * Int64(fanout)
        while entries >= size && t < 30 {
            t += 1
            size = size.multipliedReportingOverflow(by: Int64(fanout)).overflow ? .max : size * Int64(fanout)
        }
        return t
    }
}
