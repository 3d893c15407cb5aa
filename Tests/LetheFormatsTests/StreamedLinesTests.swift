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

// The one-pass line search keeps exactly the lines a line-by-line search keeps: needles at a line's
// edges, several in a line, a needle holding a newline (never found), no final newline.
@Test func oneLineSearchEqualsLineByLine() {
    var g = SplitMix64(seed: 99)
    let ids = ["user-000123", "user-004567", "bob\nsmith", "ab"].map(\.bytes)
    let needles = NeedleSet(ids, wordBounded: true)
    for round in 0..<50 {
        var text: [UInt8] = []
        for _ in 0..<(1 + g.next(60)) {
            var line: [UInt8] = []
            for _ in 0..<g.next(6) {
                line += g.chance(30) ? ids[g.next(ids.count)] : "user-\(g.next(10_000)) x".bytes
                if g.chance(50) { line += " ".bytes }
            }
            text += line + [10]
        }
        if round % 3 == 0, !text.isEmpty { text.removeLast() }
        var want: [UInt8] = []
        var wantFound = Set<[UInt8]>()
        for line in text.split(separator: 10, omittingEmptySubsequences: false).dropLast(text.last == 10 ? 1 : 0) {
            let hits = needles.matches(in: Array(line))
            if !hits.isEmpty {
                want += line + [10]
                wantFound.formUnion(hits)
            }
        }
        let got = EncodedObject.linesHolding(needles, in: text)
        #expect(got.lines == want, "round \(round)")
        #expect(got.found == wantFound, "round \(round)")
    }
}
