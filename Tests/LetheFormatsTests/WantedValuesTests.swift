import LetheCore
import Testing

@testable import LetheFormats

/// `WantedValues` (the lookup of `ParquetFormat.match … .values`) against a `Set` of the same values:
/// every length class (empty, under a word, word multiples, ≥ 64 bytes), the linear and the hashed
/// path, values that differ only in their last byte or length.
@Suite struct WantedValuesTests {
    static func values(_ n: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        let lengths = [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100]
        return (0..<n).map { i in
            let len = lengths[i % lengths.count]
            return (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next() % 4) }  // few symbols: many near-equal values
        }
    }

    @Test(arguments: [3, 8, 9, 40, 2_000])
    func findsExactlyTheWantedValues(_ n: Int) {
        let wanted = Self.values(n, seed: UInt64(n))
        let table = WantedValues(wanted)
        let set = Set(wanted)
        var probes = Self.values(5_000, seed: 99) + wanted
        for w in wanted.prefix(200) where !w.isEmpty {
            probes.append(w.dropLast() + [w.last! &+ 1])  // last byte changed
            probes.append(Array(w.dropLast()))  // one shorter
            probes.append(w + [0])  // one longer
        }
        var wrong = 0
        for p in probes {
            let i = p.withUnsafeBytes { table.index(of: $0) }
            if set.contains(p) {
                if let i, wanted[i] == p { continue }
                wrong += 1
            } else if i != nil {
                wrong += 1
            }
        }
        #expect(wrong == 0)
    }

    @Test func noValues() {
        let table = WantedValues([[UInt8]]())
        #expect([UInt8]().withUnsafeBytes { table.index(of: $0) } == nil)
        #expect([UInt8](repeating: 1, count: 80).withUnsafeBytes { table.index(of: $0) } == nil)
    }
}
