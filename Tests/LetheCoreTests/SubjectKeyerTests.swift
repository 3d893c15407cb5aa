import Testing
@testable import LetheCore

@Test func keyerMatchesTheHasherThroughGrowthAndEviction() {
    let hasher = SubjectHasher(secret: Array(repeating: 5, count: 32))
    let keyer = SubjectKeyer(hasher: hasher, cacheLimit: 3000)
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
