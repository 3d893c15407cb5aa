import Foundation
import LetheCore
@testable import LetheSQLite
import LetheCatalog

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
    IndexedObject(
        dataset: dataset, key: key, size: 1000, modifiedNanos: 1_700_000_000_000_000_000, version: version,
        records: records, status: .indexed, indexedAt: 1_700_000_000)
}
