import Foundation
import LetheCore
@testable import LetheCatalog

/// A fresh temporary folder path (not created) under the system temp folder.
func temporaryStateFolder(_ name: String = #function) -> String {
    let base = NSTemporaryDirectory() + "lethe-catalog-tests-\(getpid())"
    let safe = name.filter { $0.isLetter || $0.isNumber }
    return base + "/\(safe)-\(UUID().uuidString.prefix(8))"
}

func removeFolder(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// A deterministic subject key from a small number.
func testKey(_ n: UInt8, fill: UInt8 = 0xA5) -> SubjectKey {
    var b = [UInt8](repeating: fill, count: 32)
    b[0] = n
    b[31] = n
    return SubjectKey(bytes: b)
}

func sampleObject(_ dataset: String, _ key: String, records: Int64 = 10, version: String = "v1") -> IndexedObject {
    IndexedObject(dataset: dataset, key: key, size: 1000, modifiedNanos: 1_700_000_000_000_000_000, version: version,
                  records: records, status: .indexed, indexedAt: 1_700_000_000)
}

/// A small, seedable generator (SplitMix64) so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
