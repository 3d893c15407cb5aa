import Foundation
import Testing

@testable import LetheCore

#if canImport(Glibc)
    import Glibc
#endif

/// The C kernel of NeedleSet (Teddy over AVX2, the sampled stage, and the automatic choice that
/// switches between them) against a reference that verifies every start through a dictionary: the
/// same occurrences at the same starts in the same order, for needles of 1 to 64 bytes, 1 to 5,000 of
/// them, overlapping ones (prefixes and suffixes of each other), planted at 32-byte and 4 KiB block
/// edges and at the very end of a haystack that ends right before an inaccessible page.
@Suite struct NeedleSetDifferentialTests {
    /// Every occurrence, verified start by start: the needles grouped by their first `min(8, shortest)` bytes.
    static func reference(_ needles: [[UInt8]], _ hay: UnsafeBufferPointer<UInt8>, wordBounded: Bool) -> [(Int, [UInt8])] {
        let ns = Set(needles.filter { !$0.isEmpty }).sorted { $0.lexicographicallyPrecedes($1) }
        guard let m = ns.map(\.count).min() else { return [] }
        let k = min(8, m)
        func key(_ b: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<k { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
            return v
        }
        var groups: [UInt64: [[UInt8]]] = [:]
        for n in ns { n.withUnsafeBufferPointer { groups[key($0, 0), default: []].append(n) } }
        var out: [(Int, [UInt8])] = []
        guard hay.count >= k else { return [] }
        for p in 0...(hay.count - k) {
            guard let g = groups[key(hay, p)] else { continue }
            for n in g where p + n.count <= hay.count && hay[p..<(p + n.count)].elementsEqual(n) {
                if wordBounded && !NeedleSet.isBounded(n, at: p, in: hay) { continue }
                out.append((p, n))
            }
        }
        return out
    }

    /// A buffer whose last byte is the last byte before an inaccessible page.
    final class PageEnd {
        let base: UnsafeMutableRawPointer
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size: Int
        init(bytes: Int) {
            let pages = (bytes + page - 1) / page
            size = page * (pages + 1)
            base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            precondition(base != MAP_FAILED)
            precondition(mprotect(base + page * pages, page, PROT_NONE) == 0)
        }
        deinit { munmap(base, size) }
        func with<R>(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
            let limit = size - page
            precondition(bytes.count <= limit)
            let start = base + (limit - bytes.count)
            bytes.withUnsafeBytes { if let b = $0.baseAddress { start.copyMemory(from: b, byteCount: $0.count) } }
            return body(UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: bytes.count))
        }
    }

    /// Needle shapes: ids sharing a prefix (Teddy's case), random hex (too varied for Teddy: the sampled
    /// stage), a small alphabet (dense candidates: the automatic choice switches), and overlapping needles.
    enum Shape: CaseIterable { case ids, hex, small, overlapping }

    static func needles(_ shape: Shape, count: Int, minLength: Int, _ g: inout SplitMix64) -> [[UInt8]] {
        func draw(_ n: Int) -> Int { Int(g.next() % UInt64(n)) }
        let hex = Array("0123456789abcdef".utf8), small = Array("ab0-1 \"u".utf8)
        func length() -> Int { min(64, minLength + draw(minLength < 8 ? 4 : 12)) }
        switch shape {
        case .ids:
            return (0..<count).map { _ in
                let l = max(3, length())
                return Array(Array("u-0".utf8).prefix(l)) + (0..<max(0, l - 3)).map { _ in hex[draw(10)] }
            }
        case .hex: return (0..<count).map { _ in (0..<length()).map { _ in hex[draw(16)] } }
        case .small: return (0..<count).map { _ in (0..<length()).map { _ in small[draw(small.count)] } }
        case .overlapping:
            // Each needle a prefix, suffix or extension of another.
            var out: [[UInt8]] = [(0..<max(minLength, 2) + 6).map { _ in small[draw(small.count)] }]
            while out.count < count {
                let n = out[draw(out.count)]
                switch draw(3) {
                case 0: out.append(Array(n.prefix(max(minLength, n.count - 1 - draw(3)))))
                case 1: out.append(Array(n.suffix(max(minLength, n.count - 1 - draw(3)))))
                default: out.append(Array((n + [small[draw(small.count)]]).prefix(64)))
                }
            }
            return out
        }
    }

    /// Filler of the shape's alphabet with needles planted at random, at 32-byte and 4 KiB edges, and at the end.
    static func haystack(_ shape: Shape, _ needles: [[UInt8]], size: Int, _ g: inout SplitMix64) -> [UInt8] {
        func draw(_ n: Int) -> Int { Int(g.next() % UInt64(n)) }
        let alphabet: [UInt8]
        switch shape {
        case .ids: alphabet = Array("u-0123456789\",:{} ".utf8)
        case .hex: alphabet = Array("0123456789abcdef\" ".utf8)
        case .small, .overlapping: alphabet = Array("ab0-1 \"u".utf8)
        }
        var hay = (0..<size).map { _ in alphabet[draw(alphabet.count)] }
        func plant(_ at: Int) {
            let n = needles[draw(needles.count)]
            guard at >= 0, at + n.count <= hay.count else { return }
            hay.replaceSubrange(at..<(at + n.count), with: n)
        }
        for _ in 0..<(size / 40) { plant(draw(max(1, size))) }
        for edge in Swift.stride(from: 32, to: size, by: 32) where draw(3) == 0 { plant(edge - draw(4)) }
        for edge in Swift.stride(from: 4096, to: size, by: 4096) { plant(edge - 1 - draw(3)); plant(edge + draw(3)) }
        if let n = needles.randomElement(using: &g), n.count <= hay.count { hay.replaceSubrange((hay.count - n.count)..., with: n) }
        return hay
    }

    @Test(arguments: Shape.allCases)
    func kernelAgreesWithReference(_ shape: Shape) {
        var g = SplitMix64(seed: 0x16_0000 &+ UInt64(Shape.allCases.firstIndex(of: shape)!))
        let stages: [NeedleSet.Stage] = [.auto, .sampled, .teddy]
        var teddySets = 0
        for (round, count) in [1, 2, 7, 50, 300, 1_000, 5_000].enumerated() {
            for minLength in [1, 2, 3, 5, 6, 9, 16, 64] {
                let needles = Self.needles(shape, count: count, minLength: minLength, &g)
                // Haystacks up to 40 KB (several 4 KiB blocks of the automatic choice); smaller with many needles.
                let size = [0, 5, 31, 33, 100, 4_095, 4_097, 12_000, count >= 1_000 ? 9_000 : 40_000][Int(g.next() % 9)]
                let hay = Self.haystack(shape, needles, size: size, &g)
                let page = PageEnd(bytes: max(hay.count, 1))
                for bounded in [false, true] {
                    let set = NeedleSet(needles, wordBounded: bounded)
                    if set.usesTeddy { teddySets += 1 }
                    page.with(hay) { h in
                        let want = Self.reference(needles, h, wordBounded: bounded)
                        for stage in stages {
                            var got: [(Int, [UInt8])] = []
                            set.forEachOccurrence(in: h, stage: stage) { at, n in
                                got.append((at, n))
                                return true
                            }
                            let what = "\(shape) round \(round) count \(count) min \(minLength) size \(hay.count) bounded \(bounded) \(stage)"
                            #expect(got.map(\.0) == want.map(\.0), "\(what)")
                            #expect(got.map(\.1) == want.map(\.1), "\(what)")
                        }
                        // Stopping early: the first occurrence only.
                        var first: Int?
                        set.forEachOccurrence(in: h) { at, _ in
                            first = at
                            return false
                        }
                        #expect(first == want.first?.0)
                    }
                }
            }
        }
        // The ids (a shared prefix) always get a Teddy stage; 5,000 random hex ids never do.
        if shape == .ids { #expect(teddySets > 0) }
    }

    @Test func teddyIsChosenForSharedPrefixesAndNotForRandomHex() {
        var g = SplitMix64(seed: 7)
        let ids = (0..<1_000).map { _ in Array("u-\(1_000_000 + Int(g.next() % 1_000_000))".utf8) }
        #expect(NeedleSet(ids, wordBounded: true).usesTeddy)
        let hex = Array("0123456789abcdef".utf8)
        let hexIDs = (0..<1_000).map { _ in (0..<32).map { _ in hex[Int(g.next() % 16)] } }
        #expect(!NeedleSet(hexIDs).usesTeddy)
    }

    @Test func denseCandidatesSwitchStagesWithoutLosingOccurrences() {
        // Every third byte starts a fingerprint: the automatic choice leaves Teddy and comes back.
        var g = SplitMix64(seed: 99)
        let ids = (0..<500).map { _ in Array("u-0\(100_000 + Int(g.next() % 900_000))".utf8) }
        var hay: [UInt8] = []
        while hay.count < 300_000 {
            if g.next() % 64 == 0 { hay += ids[Int(g.next() % 500)] } else { hay += Array("u-0".utf8) }
            hay.append(g.next() % 2 == 0 ? 0x20 : UInt8(ascii: "7"))
        }
        let set = NeedleSet(ids, wordBounded: true)
        #expect(set.usesTeddy)
        hay.withUnsafeBufferPointer { h in
            let want = Self.reference(ids, h, wordBounded: true)
            #expect(want.count > 100)
            for stage in [NeedleSet.Stage.auto, .sampled, .teddy] {
                var got: [Int] = []
                set.forEachOccurrence(in: h, stage: stage) { at, _ in
                    got.append(at)
                    return true
                }
                #expect(got == want.map(\.0), "\(stage)")
            }
        }
    }
}
