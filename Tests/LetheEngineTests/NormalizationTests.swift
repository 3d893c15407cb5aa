import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog

// Issue 10 item 8: Unicode normalisation (NFC) as a per-dataset option. `José` typed or stored as
// `e` + U+0301 (NFD) and as U+00E9 (NFC) is one subject in a `normalize: nfc` dataset, two elsewhere.

private let nfc = "Jos\u{E9}"  // 4 scalars
private let nfd = "Jose\u{301}"  // 5 scalars: the same text to a reader

private let yaml = """
    lake: ./lake
    datasets:
      - name: names
        path: names
        format: jsonl
        subject: name
        normalize: nfc
      - name: exact
        path: exact
        format: csv
        subject: name
    """

private func row(_ name: String, _ n: Int) -> String { #"{"name":"\#(name)","n":\#(n)}"# + "\n" }

@Test(arguments: [nfd, nfc])
func aNormalisingDatasetMatchesEitherFormExactDatasetsTheTypedBytes(typed: String) async throws {
    #expect(Array(nfc.utf8) != Array(nfd.utf8))
    let f = try Fixture(yaml)
    f.put("names/a.jsonl", row(nfd, 1) + row(nfc, 2) + row("Ana", 3))
    f.put("exact/a.csv", "name,n\n\(nfd),1\n\(nfc),2\nAna,3\n")
    _ = try await f.lethe.index()
    let s = SubjectID(typed)
    let typedNFD = s.bytes == Array(nfd.utf8)  // (String == compares canonically: NFC and NFD are equal there)
    #expect(
        Set(try await f.lethe.locate(s).map { "\($0.object.key):\($0.rows)" })
            == ["names/a.jsonl:[0, 1]", "exact/a.csv:[\(typedNFD ? 0 : 1)]"])
    let r = try await f.lethe.forget([s], reason: "t", by: "alice")[0]
    #expect(ErasurePlan.decode(r.plan!)?.totalRows == 3)
    _ = try await f.lethe.approve([r.id], by: "bob")
    let run = try await f.lethe.run()
    #expect(run.failed.isEmpty && run.rowsDropped == 3)
    #expect(try await f.text("names/a.jsonl") == row("Ana", 3))
    #expect(try await f.text("exact/a.csv") == "name,n\n\(typedNFD ? nfc : nfd),\(typedNFD ? 2 : 1)\nAna,3\n")
    #expect(try await f.lethe.request(r.id).status == .verified)
    // Verified again once the raw id is destroyed: the NFC key kept in the plan still finds a new copy.
    #expect(try await f.lethe.destroyRawID(r.id, why: "on_demand").sealedSubject == nil)
    f.put("names/b.jsonl", row(nfd, 4))
    let v = try await f.lethe.verify(ids: [r.id])[0]
    #expect(!v.clean && v.found.map(\.object) == ["names/b.jsonl"])
}

@Test func keysOfANormalisingKeyerAreThoseOfTheNFCForm() {
    let hasher = SubjectHasher(secret: Array(repeating: 9, count: 32))
    let keyer = SubjectKeyer(hasher: hasher, normalization: .nfc)
    #expect(keyer.key(Array(nfd.utf8)) == hasher.key(for: SubjectID(nfc)))
    #expect(keyer.key(Array(nfc.utf8)) == hasher.key(for: SubjectID(nfc)))
    #expect(keyer.key(Array(nfd.utf8)) == keyer.key(Array(nfd.utf8)))  // cached
    #expect(keyer.key([0x4A, 0xFF]) == hasher.key(forBytes: [0x4A, 0xFF]))  // not UTF-8: as it is
    #expect(SubjectKeyer(hasher: hasher).key(Array(nfd.utf8)) == hasher.key(for: SubjectID(nfd)))
    // Composite parts are normalised each (U+001F composes with nothing).
    #expect(keyer.key(Array("t1\u{1F}\(nfd)".utf8)) == hasher.key(for: SubjectID(parts: [Array("t1".utf8), Array(nfc.utf8)])))
}
