import Testing

@testable import LetheCore

// NeedleSet's sampled search against a naive one: every occurrence, in order, for needles of every
// length (short ones have no sampled stage), many needles sharing prefixes and grams, word bounds,
// hits at both edges of the haystack, and haystacks shorter than a load of 8 bytes.

private func naiveOccurrences(_ needles: [[UInt8]], _ hay: [UInt8], wordBounded: Bool) -> [(Int, [UInt8])] {
    let ns = Set(needles.filter { !$0.isEmpty }).sorted { $0.lexicographicallyPrecedes($1) }
    var out: [(Int, [UInt8])] = []
    hay.withUnsafeBufferPointer { h in
        for p in 0..<hay.count {
            for n in ns where p + n.count <= hay.count && hay[p..<(p + n.count)].elementsEqual(n) {
                if wordBounded && !NeedleSet.isBounded(n, at: p, in: h) { continue }
                out.append((p, n))
            }
        }
    }
    return out
}

private func occurrences(_ set: NeedleSet, _ hay: [UInt8]) -> [(Int, [UInt8])] {
    var out: [(Int, [UInt8])] = []
    hay.withUnsafeBufferPointer { h in
        set.forEachOccurrence(in: h) { at, n in
            out.append((at, n))
            return true
        }
    }
    return out
}

@Test(arguments: [1, 3, 5, 6, 7, 8, 9, 11, 12, 13, 20])
func needleSetFindsWhatANaiveSearchFinds(_ minLength: Int) {
    var g = SplitMix64(seed: UInt64(minLength) &* 7919)
    func draw(_ n: Int) -> Int { Int(g.next() % UInt64(n)) }
    // A small alphabet, so grams and prefixes repeat and hits are frequent.
    let alphabet = Array("ab0-1 \"u".utf8)
    func word(_ count: Int) -> [UInt8] { (0..<count).map { _ in alphabet[draw(alphabet.count)] } }
    for round in 0..<40 {
        let count = [1, 2, 10, 300][round % 4]
        let needles = (0..<count).map { _ in word(minLength + draw(6)) }
        var hay: [UInt8] = []
        for _ in 0..<(round % 7 == 0 ? draw(10) : 200 + draw(3000)) {
            if draw(8) == 0 { hay += needles[draw(needles.count)] } else { hay.append(alphabet[draw(alphabet.count)]) }
        }
        if draw(2) == 0, let first = needles.first { hay = first + hay + first }
        for bounded in [false, true] {
            let set = NeedleSet(needles, wordBounded: bounded)
            let want = naiveOccurrences(needles, hay, wordBounded: bounded)
            let got = occurrences(set, hay)
            #expect(got.map(\.0) == want.map(\.0), "min \(minLength) round \(round) bounded \(bounded)")
            #expect(got.map(\.1) == want.map(\.1), "min \(minLength) round \(round) bounded \(bounded)")
            #expect(set.matches(in: hay) == Set(want.map(\.1)))
            #expect(set.containsAny(hay) == !want.isEmpty)
        }
    }
}

@Test func needleSetOnIdsInJSONText() {
    // The sweep's shape: thousands of ids of one pattern in text full of other ids of that pattern.
    var g = SplitMix64(seed: 42)
    let ids = (0..<2_000).map { _ in Array("u-\(1_000_000 + Int(g.next() % 100_000))".utf8) }
    var hay: [UInt8] = []
    for i in 0..<3_000 {
        let who = g.next() % 50 == 0 ? ids[Int(g.next() % 2_000)] : Array("u-\(1_000_000 + Int(g.next() % 100_000))".utf8)
        hay += Array(#"{"n":\#(i),"user":{"id":""#.utf8) + who + Array(#"","email":"x@example.com"}"#.utf8) + [10]
    }
    let set = NeedleSet(ids, wordBounded: true)
    let want = naiveOccurrences(ids, hay, wordBounded: true)
    #expect(!want.isEmpty)
    #expect(occurrences(set, hay).map(\.0) == want.map(\.0))
    // A needle inside a longer number is not a whole token.
    #expect(NeedleSet([Array("u-1000123".utf8)], wordBounded: true).matches(in: Array("u-10001234 u-1000123x".utf8)).isEmpty)
    #expect(!NeedleSet([Array("u-1000123".utf8)], wordBounded: true).matches(in: Array("(u-1000123)".utf8)).isEmpty)
}
