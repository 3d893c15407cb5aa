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
