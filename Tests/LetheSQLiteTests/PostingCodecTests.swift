import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog

@Suite struct PostingCodecTests {
    @Test func knownEncodings() throws {
        #expect(PostingCodec.encodeRows([]) == [])
        #expect(PostingCodec.encodeRows([0]) == [0])
        #expect(PostingCodec.encodeRows([0, 1, 2]) == [0, 0, 0])
        #expect(PostingCodec.encodeRows([5, 7]) == [5, 1])
        #expect(PostingCodec.encodeRows([127]) == [127])
        #expect(PostingCodec.encodeRows([128]) == [0x80, 0x01])
        #expect(PostingCodec.encodeRows([300]) == [0xAC, 0x02])
        #expect(try PostingCodec.decodeRows([0xAC, 0x02, 0x00]) == [300, 301])
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func roundTripRandomSortedRows(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let count = Int.random(in: 0...300, using: &rng)
            // Mix dense runs, sparse gaps and huge ordinals.
            let scale: Int64 = [4, 1_000, 1_000_000_000, Int64.max / 4][Int.random(in: 0..<4, using: &rng)]
            var set = Set<Int64>()
            for _ in 0..<count { set.insert(Int64.random(in: 0...scale, using: &rng)) }
            let rows = set.sorted()
            let bytes = PostingCodec.encodeRows(rows)
            #expect(try PostingCodec.decodeRows(bytes) == rows)
            #expect(try PostingCodec.decodeRows(bytes[...]) == rows)
        }
    }

    @Test func extremeRows() throws {
        let rows: [Int64] = [0, Int64.max - 1, Int64.max]
        #expect(try PostingCodec.decodeRows(PostingCodec.encodeRows(rows)) == rows)
    }

    @Test func corruptRowsAreRejected() {
        // Truncated varint.
        #expect(throws: LetheError.self) { try PostingCodec.decodeRows([0x80]) }
        // More than 64 bits.
        #expect(throws: LetheError.self) { try PostingCodec.decodeRows([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) }
        // A gap that runs past Int64.max.
        var big: [UInt8] = []
        PostingCodec.appendVarint(UInt64(Int64.max), to: &big)
        PostingCodec.appendVarint(0, to: &big)
        #expect(throws: LetheError.self) { try PostingCodec.decodeRows(big) }
    }

    @Test func normalizedRows() {
        #expect(PostingCodec.normalizedRows([1, 2, 3]) == [1, 2, 3])
        #expect(PostingCodec.normalizedRows([3, 1, 3, 2]) == [1, 2, 3])
        #expect(PostingCodec.normalizedRows([1, -1]) == nil)
    }

    @Test(arguments: [UInt8(1), 8, 24, 32, 63, 64])
    func bucketsCoverEveryPrefixAndOnlyTheirBlocks(bits: UInt8) throws {
        var rng = SplitMix64(seed: UInt64(bits))
        var prefixes = (0..<500).map { _ in Int64(bitPattern: rng.next()) }
        prefixes += [Int64.min, Int64.max, 0, -1]
        let ranges = try PostingCodec.decodeBuckets(PostingCodec.encodeBuckets(prefixes, bits: bits))
        #expect(!ranges.isEmpty)
        for p in prefixes {
            #expect(ranges.contains { $0.contains(p) })
        }
        // Each range is exactly one aligned block of 2^(64-bits) values.
        for r in ranges where bits < 64 {
            let lo = UInt64(bitPattern: r.lowerBound), hi = UInt64(bitPattern: r.upperBound)
            #expect(hi - lo == (UInt64(1) << UInt64(64 - bits)) - 1)
            #expect(lo >> UInt64(64 - bits) == hi >> UInt64(64 - bits))
        }
        // Ranges are distinct.
        #expect(Set(ranges.map(\.lowerBound)).count == ranges.count)
    }

    @Test func bucketsAreCompact() {
        var rng = SplitMix64(seed: 99)
        let prefixes = (0..<5_000).map { _ in Int64(bitPattern: rng.next()) }
        let bytes = PostingCodec.encodeBuckets(prefixes)
        // 5,000 random 24-bit buckets: gaps average ~3,350, i.e. two varint bytes each.
        #expect(bytes.count < 5_000 * 5 / 2)
    }

    @Test func corruptBucketsAreRejected() {
        #expect(throws: LetheError.self) { try PostingCodec.decodeBuckets([UInt8]()) }
        #expect(throws: LetheError.self) { try PostingCodec.decodeBuckets([0]) }
        #expect(throws: LetheError.self) { try PostingCodec.decodeBuckets([65]) }
        #expect(throws: LetheError.self) { try PostingCodec.decodeBuckets([24, 0x80]) }
        // A bucket beyond 2^24.
        var b: [UInt8] = [24]
        PostingCodec.appendVarint(1 << 24, to: &b)
        #expect(throws: LetheError.self) { try PostingCodec.decodeBuckets(b) }
    }
}
