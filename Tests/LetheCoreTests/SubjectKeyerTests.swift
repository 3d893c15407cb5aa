import Testing
@testable import LetheCore

@Test(arguments: [false, true]) func keyerMatchesTheHasherThroughGrowthAndEviction(adaptive: Bool) {
    let hasher = SubjectHasher(secret: Array(repeating: 5, count: 32))
    let keyer = SubjectKeyer(hasher: hasher, normalization: .none, cacheLimit: 3000, adaptive: adaptive)
    var values: [[UInt8]] = [[]]
    for i in 0..<10_000 { values.append(Array("subject-\(i)-\(String(repeating: "x", count: i % 23))".utf8)) }
    for round in 0..<3 {
        for (i, v) in values.enumerated() where (i + round) % 2 == 0 || round == 2 {
            #expect(keyer.key(v) == hasher.key(forBytes: v))
        }
    }
    // Prefixes and equal-length neighbours never collide into one key.
    #expect(keyer.key(Array("u-1".utf8)) != keyer.key(Array("u-12".utf8)))
    #expect(keyer.key(Array("u-1".utf8)) != keyer.key(Array("u-2".utf8)))
}

/// The cache compares a value's first 16 bytes in its slot and the rest in its arena: values that
/// differ only past the 16th byte, only in the last of 16, or only in length stay apart, across growth.
@Test func keyerKeepsValuesApartThatShareTheirFirstSixteenBytes() {
    let hasher = SubjectHasher(secret: Array(repeating: 9, count: 32))
    let keyer = SubjectKeyer(hasher: hasher, cacheLimit: 50_000)
    let head = "0123456789abcdef"
    var values: [[UInt8]] = [[], Array(head.utf8), Array((head + "x").utf8), Array((head + "y").utf8), Array(head.dropLast().utf8)]
    for i in 0..<5_000 {
        values.append(Array((head + "-tail-\(i)").utf8))
        values.append(Array("0123456789abcde\(i % 10)".utf8))
        values.append(Array("u-\(i)".utf8))
    }
    for _ in 0..<2 {
        for v in values { #expect(keyer.key(v) == hasher.key(forBytes: v)) }
    }
    #expect(keyer.misses == Set(values).count)
}

/// An adaptive cache that is full and answers less than half of a window's lookups stops being
/// consulted (near-unique values: every key is then an HMAC, as it would mostly be anyway), and keys
/// stay exact throughout.
@Test func anAdaptiveCacheStepsAsideForNearUniqueValues() {
    let hasher = SubjectHasher(secret: Array(repeating: 3, count: 32))
    let keyer = SubjectKeyer(hasher: hasher, normalization: .none, cacheLimit: 1000, adaptive: true)
    let n = 1000 + 2 * SubjectKeyer.judgeWindow
    for i in 0..<n {
        let v = Array("user-\(i)@example.org".utf8)
        #expect(keyer.key(v) == hasher.key(forBytes: v))
    }
    #expect(keyer.bypassing)
    #expect(keyer.misses == n)
    // Bypassed, values seen before are keyed (and counted) again, exactly.
    for i in 0..<100 {
        let v = Array("user-\(i)@example.org".utf8)
        #expect(keyer.key(v) == hasher.key(forBytes: v))
    }
    #expect(keyer.misses == n + 100)
}

/// A working set that fits keeps the cache (each value keyed once), and one that repeats often enough
/// keeps a full one; after a bypass the cache is cleared and learns the values of the moment again.
@Test func anAdaptiveCacheKeepsValuesThatRepeatAndLearnsAgainAfterABypass() {
    let hasher = SubjectHasher(secret: Array(repeating: 4, count: 32))
    let span = 50_000
    let keyer = SubjectKeyer(hasher: hasher, normalization: .none, cacheLimit: 1000, adaptive: true, bypassSpan: span)
    let small = (0..<500).map { Array("s-\($0)".utf8) }
    for _ in 0..<20 { for v in small { #expect(keyer.key(v) == hasher.key(forBytes: v)) } }
    #expect(keyer.misses == 500)
    #expect(!keyer.bypassing)
    // Full (1,000 values), then mostly hits: 9 in 10 lookups are of the 1,000 cached values.
    let more = (500..<1000).map { Array("s-\($0)".utf8) }
    for v in more { _ = keyer.key(v) }
    for i in 0..<(3 * SubjectKeyer.judgeWindow) {
        let v = i % 10 == 9 ? Array("new-\(i)".utf8) : (i % 2 == 0 ? small[i % 500] : more[i % 500])
        #expect(keyer.key(v) == hasher.key(forBytes: v))
    }
    #expect(!keyer.bypassing)
    // Near-unique values: bypassed; once the span is over, cleared and filled with the values of the moment.
    var i = 0
    while !keyer.bypassing {
        _ = keyer.key(Array("unique-\(i)".utf8))
        i += 1
    }
    for j in 0..<span { _ = keyer.key(small[j % 500]) }
    #expect(!keyer.bypassing)
    let before = keyer.misses
    for _ in 0..<4 { for v in small { #expect(keyer.key(v) == hasher.key(forBytes: v)) } }
    #expect(keyer.misses == before + 500)
}
