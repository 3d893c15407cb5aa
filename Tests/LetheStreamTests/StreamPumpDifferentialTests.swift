import Foundation
import Testing
import LetheCore
@testable import LetheStream

/// The batched filter (lines scanned in batches, their set lookups prefetched and made after) and the
/// pump's writev(2) of kept runs straight from its read buffer, against a line-at-a-time reference: the
/// same filter fed one line per call (a batch of one, its output appended to an array). Random inputs
/// with malformed lines, drops at read-chunk and batch edges, every `--on-malformed` policy and every
/// validation; the pump runs file to file with small chunks and few runs per writev.
@Suite struct StreamPumpDifferentialTests {
    /// A line-at-a-time judge: each line (with its LF) given alone to `filter`; stops at `.fail`'s error.
    static func oneLineAtATime(_ filter: StreamFilter, _ input: [UInt8]) -> (out: [UInt8], failedAt: Int64?) {
        var out: [UInt8] = []
        var start = 0
        while start < input.count {
            var end = start
            while end < input.count && input[end] != 0x0A { end += 1 }
            let next = min(end + 1, input.count)
            let line = Array(input[start..<next])
            do {
                try line.withUnsafeBytes { b in
                    let used = try filter.filter(b, isFinal: true) { out.append(contentsOf: $0) }
                    precondition(used == line.count)
                }
            } catch let e as MalformedLine {
                return (out, e.line)
            } catch {
                preconditionFailure("\(error)")
            }
            start = next
        }
        return (out, nil)
    }

    /// Events of the corpus with some lines broken (cut short, a stray comma, a second subject field,
    /// garbage after the object) and runs of forgotten subjects, so drops meet every kind of edge.
    static func input(seed: UInt64, lines: Int, malformed: Bool) -> [UInt8] {
        var corpus = Corpus(seed: seed)
        var rng = SplitMix(seed: seed &* 31 &+ 7)
        var s: [UInt8] = []
        for _ in 0..<lines {
            var line: [UInt8]
            switch rng.next() % 10 {
            case 0, 1:
                // A forgotten subject, padded to a random length so it lands anywhere in a chunk.
                let pad = String(repeating: "p", count: Int(rng.next() % 300))
                line = Array("{\"user\":{\"id\":\"u-\(12 + 3 * Int(rng.next() % 60))\"},\"pad\":\"\(pad)\"}".utf8)
            default:
                line = Array(corpus.event(subjects: 200).utf8)
            }
            if malformed && rng.next() % 12 == 0 {
                switch rng.next() % 4 {
                case 0: line = Array(line.prefix(max(1, line.count / 2)))
                case 1: line.insert(contentsOf: Array(",,".utf8), at: line.count - 1)
                case 2: line = Array("{\"user\":{\"id\":\"u-12\"},\"user\":{\"id\":\"u-1\"}}".utf8)
                default: line += Array("]".utf8)
                }
            }
            s += line
            s.append(0x0A)
        }
        if rng.next() % 2 == 0 { s.removeLast() }  // sometimes no LF after the last line
        return s
    }

    /// Runs `filter` through a `StreamPump` from a file to a file; returns the output and the line
    /// number of `.fail`'s error.
    static func pumped(
        _ filter: StreamFilter, _ input: [UInt8], chunk: Int, maxRuns: Int, dir: URL
    ) throws -> (out: [UInt8], failedAt: Int64?) {
        let inPath = dir.appendingPathComponent("in-\(chunk)-\(maxRuns).jsonl").path
        let outPath = dir.appendingPathComponent("out-\(chunk)-\(maxRuns).jsonl").path
        _ = FileManager.default.createFile(atPath: inPath, contents: Data(input))
        let inFD = open(inPath, O_RDONLY), outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(inFD >= 0 && outFD >= 0)
        var failedAt: Int64?
        do {
            try StreamPump(filter: filter, input: inFD, output: outFD, chunk: chunk, maxRuns: maxRuns).run()
        } catch let e as MalformedLine {
            failedAt = e.line
        }
        close(inFD)
        close(outFD)
        return (Array(FileManager.default.contents(atPath: outPath)!), failedAt)
    }

    static let cases: [(MalformedPolicy, Validation)] =
        MalformedPolicy.allCases.flatMap { p in Validation.allCases.map { (p, $0) } }

    @Test(arguments: 0..<cases.count)
    func pumpAndBatchesMatchOneLineAtATime(_ index: Int) throws {
        let (policy, validation) = Self.cases[index]
        let forgotten = Array(StreamFilterTests.forgotten(subjects: 200))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pumpdiff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var sawDrop = false, sawMalformed = false
        for seed in UInt64(1)...6 {
            // Under `fail` most inputs stop early: half of them have no malformed line.
            let input = Self.input(seed: seed, lines: 2500, malformed: policy != .fail || seed % 2 == 0)
            let ref = makeFilter(forgotten: forgotten, policy: policy, validation: validation)
            let want = Self.oneLineAtATime(ref, input)
            sawDrop = sawDrop || ref.counts.dropped > 0
            sawMalformed = sawMalformed || ref.counts.malformed > 0
            // In memory, batches of `StreamFilter.batch` lines, whole or in pieces.
            let whole = makeFilter(forgotten: forgotten, policy: policy, validation: validation)
            var got: [UInt8] = []
            var failedAt: Int64?
            do {
                try input.withUnsafeBytes { b in _ = try whole.filter(b, isFinal: true) { got.append(contentsOf: $0) } }
            } catch let e as MalformedLine { failedAt = e.line }
            let sameInMemory = got == want.out  // a Bool: a failing #expect would print both outputs whole
            #expect(sameInMemory, "in memory, seed \(seed)")
            #expect(failedAt == want.failedAt)
            #expect(whole.counts == ref.counts, "seed \(seed)")
            // Through the pump: chunks of 4 KiB and 9 KiB, one, three or 1,024 runs a writev.
            for (chunk, maxRuns) in [(4096, 1), (4096, 3), (9000, 1024)] {
                let f = makeFilter(forgotten: forgotten, policy: policy, validation: validation)
                let p = try Self.pumped(f, input, chunk: chunk, maxRuns: maxRuns, dir: dir)
                let samePumped = p.out == want.out
                #expect(samePumped, "pump \(chunk)/\(maxRuns), seed \(seed)")
                #expect(p.failedAt == want.failedAt)
                #expect(f.counts == ref.counts, "pump \(chunk)/\(maxRuns), seed \(seed)")
            }
        }
        #expect(sawDrop)
        #expect(sawMalformed)
    }

    /// `--validate minimal` under `pass` finds a line's subject as if the line were valid and reads no
    /// further unless the subject is forgotten: its output must be `full`'s byte for byte on inputs with
    /// malformed lines of every kind (cut short, stray commas, a second subject field, garbage after
    /// the object) and the corpus's escaped, nested and decoy subjects, whole and through the pump.
    @Test func minimalUnderPassKeepsTheOutputOfFull() throws {
        let forgotten = Array(StreamFilterTests.forgotten(subjects: 200))
        var dropped: Int64 = 0, malformed: Int64 = 0
        for seed in UInt64(11)...18 {
            let input = Self.input(seed: seed, lines: 2500, malformed: true)
            let full = makeFilter(forgotten: forgotten, policy: .pass, validation: .full)
            let minimal = makeFilter(forgotten: forgotten, policy: .pass, validation: .minimal)
            let want = Self.oneLineAtATime(full, input).out
            var got: [UInt8] = []
            try input.withUnsafeBytes { b in _ = try minimal.filter(b, isFinal: true) { got.append(contentsOf: $0) } }
            let same = got == want
            #expect(same, "seed \(seed)")
            #expect(minimal.counts.dropped == full.counts.dropped, "seed \(seed)")
            #expect(minimal.counts.lines == full.counts.lines, "seed \(seed)")
            dropped += full.counts.dropped
            malformed += full.counts.malformed
        }
        #expect(dropped > 1_000 && malformed > 500, "dropped \(dropped) malformed \(malformed)")
    }

    /// Lines of exactly 64 bytes: every 4 KiB read ends on a line end, and forgotten lines sit
    /// on both sides of each edge and at each batch edge; a chunk with nothing dropped is one run.
    @Test func dropsOnChunkEdges() throws {
        func line(_ id: String) -> [UInt8] {
            var l = Array("{\"user\":{\"id\":\"\(id)\"},\"x\":\"".utf8)
            l += [UInt8](repeating: 0x61, count: 63 - l.count - 2) + Array("\"}\n".utf8)
            precondition(l.count == 64)
            return l
        }
        var input: [UInt8] = []
        var forgotten: [String] = []
        for i in 0..<4096 {
            let id = "k-\(i)"
            if i % 64 == 0 || i % 64 == 63 || i % 16 == 15 || (i > 2000 && i < 2200) { forgotten.append(id) }
            input += line(id)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pumpedge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ref = makeFilter(forgotten: forgotten)
        let want = Self.oneLineAtATime(ref, input).out
        #expect(ref.counts.dropped == Int64(forgotten.count))
        for (chunk, maxRuns) in [(4096, 1), (4096, 2), (8192, 1024)] {
            let f = makeFilter(forgotten: forgotten)
            let same = try Self.pumped(f, input, chunk: chunk, maxRuns: maxRuns, dir: dir).out == want
            #expect(same, "pump \(chunk)/\(maxRuns)")
            #expect(f.counts == ref.counts)
        }
    }
}
