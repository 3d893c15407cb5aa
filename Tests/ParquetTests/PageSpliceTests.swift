import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The in-place page edit's two primitives against what they replace: a Snappy block spliced
/// must decompress to the edited bytes (whoever compressed it), and an RLE / bit-packed stream
/// edited run by run must decode to the values minus the dropped ones. Random inputs over many
/// seeds; the edits fall on element and run boundaries, inside them, at both ends.
@Suite struct PageSpliceTests {
    /// Bytes with structure for copies to find: random bytes, repeated phrases, runs of one byte.
    static func sample(_ n: Int, _ rng: inout SplitMix) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        let phrases: [[UInt8]] = (0..<6).map { _ in (0..<Int.random(in: 3...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        while out.count < n {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: out += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: out += phrases[Int.random(in: 0..<phrases.count, using: &rng)]
            case 2: out += repeatElement(UInt8.random(in: 0...3, using: &rng), count: Int.random(in: 1...300, using: &rng))
            default: out += Array(out.suffix(Int.random(in: 0...100, using: &rng)))
            }
        }
        return Array(out.prefix(n))
    }

    /// Sorted, disjoint edits: deletions, replacements and insertions, some at 0 and at the end.
    static func edits(for n: Int, _ rng: inout SplitMix) -> [ByteEdit] {
        var cuts = (0..<Int.random(in: 0...12, using: &rng)).map { _ in Int.random(in: 0...n, using: &rng) }
        if Bool.random(using: &rng) { cuts.append(0) }
        if Bool.random(using: &rng) { cuts.append(n) }
        cuts.sort()
        var edits: [ByteEdit] = []
        var i = 0
        while i < cuts.count {
            let lo = cuts[i]
            let hi = i + 1 < cuts.count && Bool.random(using: &rng) ? cuts[i + 1] : lo
            if let last = edits.last, last.range.upperBound > lo || (last.range.isEmpty && last.range.lowerBound == lo) {
                i += 1
                continue
            }
            let bytes =
                Int.random(in: 0..<3, using: &rng) == 0 ? [] : (0..<Int.random(in: 1...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if lo == hi && bytes.isEmpty {
                i += 1
                continue
            }
            edits.append(ByteEdit(range: lo..<hi, bytes: bytes))
            i += hi > lo ? 2 : 1
        }
        return edits
    }

    @Test func aSplicedSnappyBlockDecompressesToTheEditedBytes() throws {
        var rng = SplitMix(state: 0x5EED)
        var keptCopies = 0
        for round in 0..<600 {
            let n = [0, 1, 7, 64, 1000, 70_000, 140_000][round % 7] + Int.random(in: 0...50, using: &rng)
            let data = Self.sample(n, &rng)
            let edits = Self.edits(for: data.count, &rng)
            let expected = data.withUnsafeBytes { applyEdits($0, edits) }
            for byLibrary in [true, false] {
                let block = data.withUnsafeBytes { byLibrary ? Snappy.compressWithLibrary($0) : Snappy.compress($0) }
                let spliced = try #require(
                    block.withUnsafeBytes { b in data.withUnsafeBytes { Snappy.splice(b, original: $0, edits: edits) } },
                    "round \(round)")
                let back = try spliced.withUnsafeBytes { try Snappy.decompressWithLibrary($0, expected: expected.count) }
                #expect(back.elementsEqual(expected), "round \(round) library \(byLibrary) edits \(edits.map(\.range))")
                let swiftBack = try spliced.withUnsafeBytes { try Snappy.decompress($0, expected: expected.count) }
                #expect(swiftBack.elementsEqual(expected))
                if n > 10_000 && spliced.count < block.count + 4096 { keptCopies += 1 }
            }
        }
        // Large blocks with few edits stay about their old size: their copies were kept.
        #expect(keptCopies > 100)
    }

    @Test func aSpliceRefusesABlockThatIsNotTheOriginals() {
        let data = Array("abcabcabcabcabcabcabcabc hello hello hello".utf8)
        let block = data.withUnsafeBytes { Snappy.compressWithLibrary($0) }
        let edit = [ByteEdit(range: 3..<6, bytes: [])]
        let shorter = Array(data.dropLast())
        #expect(block.withUnsafeBytes { b in shorter.withUnsafeBytes { Snappy.splice(b, original: $0, edits: edit) } } == nil)
        let truncated = Array(block.dropLast(2))
        #expect(truncated.withUnsafeBytes { b in data.withUnsafeBytes { Snappy.splice(b, original: $0, edits: edit) } } == nil)
        let overlapping = [ByteEdit(range: 3..<6, bytes: []), ByteEdit(range: 5..<7, bytes: [1])]
        #expect(block.withUnsafeBytes { b in data.withUnsafeBytes { Snappy.splice(b, original: $0, edits: overlapping) } } == nil)
        let outside = [ByteEdit(range: 40..<99, bytes: [])]
        #expect(block.withUnsafeBytes { b in data.withUnsafeBytes { Snappy.splice(b, original: $0, edits: outside) } } == nil)
    }

    /// Values with runs (RLE) and noise (bit-packed), of one bit width.
    static func values(_ n: Int, bitWidth bw: Int, _ rng: inout SplitMix) -> [UInt32] {
        let top: UInt64 = bw == 0 ? 0 : (1 << UInt64(bw)) - 1
        var out: [UInt32] = []
        while out.count < n {
            let v = UInt32(UInt64.random(in: 0...top, using: &rng))
            if Bool.random(using: &rng) {
                out += repeatElement(v, count: Int.random(in: 1...40, using: &rng))
            } else {
                out.append(v)
            }
        }
        return Array(out.prefix(n))
    }

    @Test func aStreamEditedRunByRunDecodesToTheKeptValues() throws {
        var rng = SplitMix(state: 0xD20B)
        var edited = 0
        for round in 0..<1500 {
            let bw = [0, 1, 1, 2, 3, 5, 8, 12, 16, 17, 20, 31, 32][round % 13]
            let n = Int.random(in: 1...2000, using: &rng)
            let vals = Self.values(n, bitWidth: bw, &rng)
            var stream = RLEEncoder.encode(vals, bitWidth: bw)
            let trailing = round % 5 == 0  // bytes after the stream (a page's values that follow) stay
            if trailing { stream += [0xAB, 0xCD] }
            var drops = Array(Set((0..<Int.random(in: 1...min(n, 30), using: &rng)).map { _ in Int.random(in: 0..<n, using: &rng) })).sorted()
            if round % 7 == 0 { drops = Array(0..<n) }  // every value
            var edits: [ByteEdit] = []
            let end = try #require(stream.withUnsafeBytes { HybridSplice.dropping($0, bitWidth: bw, count: n, drops: drops, base: 0, edits: &edits) })
            #expect(end <= stream.count && (!trailing || end == stream.count - 2))
            let out = stream.withUnsafeBytes { applyEdits($0, edits) }
            if trailing { #expect(out.suffix(2) == [0xAB, 0xCD]) }
            let kept = vals.enumerated().filter { !drops.contains($0.offset) }.map(\.element)
            if !kept.isEmpty {
                var dec = try out.withUnsafeBytes { try RLEDecoder($0, bitWidth: bw) }
                let got: [UInt32] = try dec.decode(count: kept.count)
                #expect(got == kept, "round \(round) bw \(bw) n \(n) drops \(drops.count)")
            }
            edited += edits.count
        }
        #expect(edited > 1500)
    }

    /// A bit-packed run that loses values keeps the bytes of its groups that lose none: only its
    /// header and the groups holding a dropped value are replaced (a dictionary index page of
    /// random values is one long bit-packed run; rewriting it whole cost a tenth of a rewrite).
    @Test func aBitPackedRunKeepsTheGroupsThatLoseNothing() throws {
        var rng = SplitMix(state: 0xB17)
        for bw in [3, 8, 16, 17] {
            let top = UInt32((1 << UInt64(bw)) - 1)
            let n = 1024 + 5  // the last group padded
            let vals = (0..<n).map { _ in UInt32.random(in: 0...top, using: &rng) }
            let stream = RLEEncoder.encode(vals, bitWidth: bw)
            for drops in [[100], [0], [n - 1], [8, 9, 17, 500, 1000, 1024], Array(64..<72)] {
                var edits: [ByteEdit] = []
                _ = try #require(stream.withUnsafeBytes { HybridSplice.dropping($0, bitWidth: bw, count: n, drops: drops, base: 0, edits: &edits) })
                let out = stream.withUnsafeBytes { applyEdits($0, edits) }
                let kept = vals.enumerated().filter { !drops.contains($0.offset) }.map(\.element)
                var dec = try out.withUnsafeBytes { try RLEDecoder($0, bitWidth: bw) }
                #expect(try dec.decode(count: kept.count) as [UInt32] == kept, "bw \(bw) drops \(drops)")
                // Replaced: the run's header (a few bytes) and one group of `bw` bytes per group touched.
                let groupsTouched = Set(drops.map { $0 / 8 }).count
                let replaced = edits.reduce(0) { $0 + $1.range.count }
                #expect(replaced <= 3 * (groupsTouched + 1) + groupsTouched * bw, "bw \(bw) drops \(drops): \(replaced) bytes replaced")
            }
        }
    }

    /// Streams other writers make: an RLE run that claims more values than are left, a last
    /// bit-packed run padded past the count, runs of zero bit width.
    @Test func streamsOfOtherWritersAreEditedToo() throws {
        // RLE run of 10 × 7 claiming 10 where only 6 remain after a bit-packed group of 8.
        var s: [UInt8] = []
        HybridSplice.appendPacked([1, 2, 3, 4, 5, 6, 7, 0], bitWidth: 3, to: &s)
        s += [UInt8(10 << 1), 7]
        var edits: [ByteEdit] = []
        _ = try #require(s.withUnsafeBytes { HybridSplice.dropping($0, bitWidth: 3, count: 14, drops: [2, 9], base: 0, edits: &edits) })
        let out = s.withUnsafeBytes { applyEdits($0, edits) }
        var dec = try out.withUnsafeBytes { try RLEDecoder($0, bitWidth: 3) }
        #expect(try dec.decode(count: 12) as [UInt32] == [1, 2, 4, 5, 6, 7, 0, 7, 7, 7, 7, 7])
        // A run of no values is not edited (the decoding path reports it).
        var e2: [ByteEdit] = []
        #expect([UInt8(0), 7].withUnsafeBytes { HybridSplice.dropping($0, bitWidth: 3, count: 4, drops: [1], base: 0, edits: &e2) } == nil)
        // Truncated: a bit-packed header with its bytes missing.
        #expect([UInt8(3 << 1 | 1), 1].withUnsafeBytes { HybridSplice.dropping($0, bitWidth: 8, count: 24, drops: [1], base: 0, edits: &e2) } == nil)
    }
}

/// A dictionary entry an erasure neutralised is a copy of a value kept then (the first kept entry
/// of its length), referenced by no row. When that value's subject is erased in a later rewrite,
/// its copies must go with it: every entry no kept row references is neutralised, not only the
/// entries the dropped rows referenced (found by the soak: a Delta file kept `u-00040` after its
/// rows were erased).
@Test func copiesAnEarlierErasureLeftGoWhenTheirValueIsErased() throws {
    let dir = Env.tempDir("neutralise-twice")
    let path = dir.appendingPathComponent("t.parquet").path
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            ids = ["id-000"] + ["id-%03d" % (1 + i % 40) for i in range(400)] + ["id-000"]
            pq.write_table(pa.table({"s": ids, "n": list(range(len(ids)))}), sys.argv[1], compression="snappy")
            """, path,
        ], what: "neutralise twice")
    let file = try ParquetFile(source: try LocalFileSource(path: path), name: "t")
    let n = file.numRows
    // First erasure: `id-007`'s rows; its entry becomes a copy of the first kept entry, `id-000`.
    let first = (0..<n).filter { $0 > 0 && $0 < n - 1 && (Int($0) - 1) % 40 + 1 == 7 }
    let (once, _, r1) = try PageCopyRewriteTests.rewrite(file, first, options: PageRewriteOptions())
    #expect(r1.pages.neutralisedEntries > 0)
    // Second erasure: `id-000`'s rows (the first and the last).
    let (twice, bytes, _) = try PageCopyRewriteTests.rewrite(once, [0, n - 1 - Int64(first.count)], options: PageRewriteOptions())
    #expect(try PageCopyRewriteTests.residue(Array("id-000".utf8), twice, bytes).isEmpty)
    #expect(try PageCopyRewriteTests.residue(Array("id-007".utf8), twice, bytes).isEmpty)
    #expect(twice.numRows == n - Int64(first.count) - 2)
}
