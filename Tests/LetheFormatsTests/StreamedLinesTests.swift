import Testing
import LetheCore
import LetheStorage
@testable import LetheFormats

// The sweep's streamed line search (issue 12): the lines holding a raw id, found a chunk at a time,
// are exactly those a whole-object search finds, for lines across chunk boundaries, longer than a
// chunk, without a final newline, and through gzip.

@Test(arguments: [1, 7, 64, 4096])
func streamedLineSearchEqualsTheWholeObjectSearch(_ chunk: Int) async throws {
    var g = SplitMix64(seed: UInt64(chunk))
    let ids = ["user-000123", "user-004567", "alice@example.com"]
    let needles = NeedleSet(ids.map(\.bytes), wordBounded: true)
    for round in 0..<20 {
        var text: [UInt8] = []
        for i in 0..<(50 + g.next(200)) {
            let who = g.chance(10) ? ids[g.next(ids.count)] : "user-\(g.next(1_000_000))"
            let pad = String(repeating: "x", count: g.chance(5) ? 5_000 : g.next(40))
            text += #"{"n":\#(i),"user":"\#(who)","pad":"\#(pad)","ref":"\#(g.chance(5) ? ids[0] + "0" : "none")"}"#.bytes
            text.append(UInt8(ascii: "\n"))
        }
        if round % 2 == 1 { text.removeLast() }  // no final newline
        let whole = EncodedObject.linesHolding(needles, in: text)
        for key in ["d/x.jsonl", "d/x.jsonl.gz"] {
            let store = InMemoryObjectStore()
            try await EncodedObject.write(text, to: key, in: store)
            let streamed = try await EncodedObject.linesHolding(needles, in: key, of: store, chunkSize: chunk)
            #expect(streamed.lines == whole.lines, "round \(round) \(key)")
            #expect(streamed.found == whole.found)
        }
    }
}
