import Foundation
import Testing

@testable import LetheCore

/// `ISOTime.milliseconds` against Foundation's `ISO8601DateFormatter` (the form it replaces in
/// notification payloads and certificates).
@Suite struct ISOTimeTests {
    @Test func fixedPoints() {
        #expect(ISOTime.milliseconds(0) == "1970-01-01T00:00:00.000Z")
        #expect(ISOTime.milliseconds(1_764_560_530_123) == "2025-12-01T03:42:10.123Z")
        #expect(ISOTime.milliseconds(-1) == "1969-12-31T23:59:59.999Z")
        #expect(ISOTime.milliseconds(951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(ISOTime.milliseconds(253_402_300_799_999) == "9999-12-31T23:59:59.999Z")
    }

    @Test func sameAsFoundation() {
        var rng = SplitMix64(seed: 12)
        var samples: [Int64] = [0, 1, 999, 1000, -1, -999, -1000, -1001, 86_399_999, 86_400_000, 951_782_399_999, 4_102_444_800_000]
        // Around now, the Gregorian four-digit years, earlier ones, and every millisecond of one second.
        for _ in 0..<3_000 { samples.append(1_700_000_000_000 + Int64(rng.next() % 400_000_000_000)) }
        for _ in 0..<2_000 { samples.append(-12_212_553_600_000 + Int64(rng.next() % 265_614_854_399_999)) }  // 1583…9999
        for _ in 0..<200 { samples.append(-62_135_596_800_000 + Int64(rng.next() % 49_923_043_200_000)) }  // 1…1582: Foundation's (Julian)
        for i in 0..<1_000 { samples.append(1_764_560_530_000 + Int64(i)) }
        // One formatter for all (`ISOTime.foundation` makes one per call: milliseconds each).
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        var differ: [(Int64, String, String)] = []
        for ms in samples {
            let want = f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
            if ISOTime.milliseconds(ms) != want { differ.append((ms, ISOTime.milliseconds(ms), want)) }
        }
        #expect(differ.isEmpty, "differ from Foundation: \(differ.prefix(5))")
        #expect(ISOTime.milliseconds(-62_135_596_800_001) == ISOTime.foundation(-62_135_596_800_001))  // year 0: Foundation's
    }
}
