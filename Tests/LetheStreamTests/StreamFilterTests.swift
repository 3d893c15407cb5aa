import Foundation
import Testing
import LetheCore
@testable import LetheStream

@Suite struct StreamFilterTests {
    static func forgotten(subjects: Int) -> Set<String> {
        var f: Set<String> = []
        for n in 10..<(10 + subjects) {
            if n % 3 == 0 { f.insert("u-\(n)") }
            if n % 5 == 0 { f.formUnion(["\(n)", "ü-\(n)-東京", "😀-\(n)"]) }
            if n % 7 == 0 { f.insert("u-\(n)\"q\\") }
        }
        return f
    }

    @Test(arguments: Validation.allCases)
    func corpusMatchesReferenceParser(_ validation: Validation) throws {
        var corpus = Corpus(seed: 42)
        let input = corpus.lines(120_000, subjects: 5000)
        let forgotten = Self.forgotten(subjects: 5000)
        let expected = try referenceFilter(input, fields: [["user", "id"]], forgotten: forgotten)
        let filter = makeFilter(["user.id"], forgotten: Array(forgotten), validation: validation)
        let got = try filter.filter(input)
        #expect(got == expected)
        // The corpus exercises both outcomes heavily.
        #expect(filter.counts.dropped > 10_000)
        #expect(filter.counts.passed > 50_000)
        #expect(filter.counts.blank > 1000)
        #expect(filter.counts.malformed == 0)
        #expect(filter.counts.bytes == Int64(input.count))
    }

    @Test func pieceSizesDoNotMatter() throws {
        var corpus = Corpus(seed: 7)
        let input = corpus.lines(5000, subjects: 300)
        let forgotten = Self.forgotten(subjects: 300)
        let whole = try makeFilter(forgotten: Array(forgotten)).filter(input)
        for sizes in [[1], [3, 17, 256], [4096], [100_000]] {
            let f = makeFilter(forgotten: Array(forgotten))
            #expect(try filterInPieces(f, input, sizes: sizes) == whole, "pieces \(sizes)")
        }
    }

    @Test func compositeSubject() throws {
        var rng = SplitMix(seed: 3)
        var s = ""
        for _ in 0..<20_000 {
            let t = "t\(rng.next() % 5)", u = "u-\(rng.next() % 50)"
            switch rng.next() % 4 {
            case 0: s += "{\"user\":{\"id\":\"\(u)\"},\"tenant\":\"\(t)\"}\n"
            case 1: s += "{\"tenant\":\"\(t)\",\"x\":1,\"user\":{\"id\":\"\(u)\"}}\n"
            case 2: s += "{\"user\":{\"id\":\"\(u)\"}}\n"  // part missing: passes
            default: s += "{\"tenant\":\"\(t)\",\"user\":{\"id\":\"\"}}\n"  // empty part: passes
            }
        }
        let input = Array(s.utf8)
        let forgotten: Set<String> = ["t1\u{1F}u-3", "t2\u{1F}u-7", "t0\u{1F}u-0", "u-3"]
        let f = makeFilter(["tenant", "user.id"], forgotten: Array(forgotten))
        let got = try f.filter(input)
        #expect(got == (try referenceFilter(input, fields: [["tenant"], ["user", "id"]], forgotten: forgotten)))
        #expect(f.counts.dropped > 100)
    }

    @Test(arguments: Validation.allCases)
    func exactPathsOnly(_ validation: Validation) throws {
        let f = makeFilter(["user.id"], forgotten: ["u-1", "42"], validation: validation)
        let lines = [
            #"{"item":{"id":"u-1"}}"#,  // other object
            #"{"user":{"profile":{"id":"u-1"}}}"#,  // deeper
            #"{"note":"{\"user\":{\"id\":\"u-1\"}}"}"#,  // inside a string
            #"{"user":[{"id":"u-1"}]}"#,  // inside an array
            #"{"user.id":"u-1"}"#,  // a dotted key
            #"{"user":{"id":"u-10"}}"#,  // a longer id
            #"{"user":{"id":4.2e1}}"#,  // another literal of 42
            #"{"user":{"id":true}}"#,
        ]
        let input = Array((lines.joined(separator: "\n") + "\n").utf8)
        #expect(try f.filter(input) == input)
        let hits = [
            #"{"user":{"id":"u-1"}}"#, #"{ "user" : { "x":[1,{"id":"u-2"}], "id" : "u-1" } }"#,
            #"{"us\u0065r":{"\u0069\u0064":"u\u002d1"}}"#, #"{"user":{"id":42}}"#, #"{"user":{"id":"42"}}"#,
            "{\"user\":{\"id\":\"u-1\"}}\r",
        ]
        let f2 = makeFilter(["user.id"], forgotten: ["u-1", "42"], validation: validation)
        #expect(try f2.filter(Array((hits.joined(separator: "\n") + "\n").utf8)) == [])
        #expect(f2.counts.dropped == Int64(hits.count))
    }

    @Test func lineEndsAndBlankLinesPassByteForByte() throws {
        let f = makeFilter(["user_id"], forgotten: ["gone"])
        let input = Array("{\"user_id\":\"a\"}\r\n\r\n\n   \n{\"user_id\":\"gone\"}\r\n\t\n{\"user_id\":\"b\"}".utf8)
        let want = Array("{\"user_id\":\"a\"}\r\n\r\n\n   \n\t\n{\"user_id\":\"b\"}".utf8)
        #expect(try f.filter(input) == want)
        #expect(
            f.counts
                == {
                    var c = StreamCounts(); c.passed = 2; c.dropped = 1; c.blank = 4; c.bytes = Int64(input.count); return c
                }())
        // A dropped last line without a newline leaves the output ending at the previous line end.
        let g = makeFilter(["user_id"], forgotten: ["gone"])
        #expect(try g.filter(Array("{\"user_id\":\"a\"}\n{\"user_id\":\"gone\"}".utf8)) == Array("{\"user_id\":\"a\"}\n".utf8))
        // Without isFinal the incomplete last line is left for the next call.
        let h = makeFilter(["user_id"], forgotten: [])
        let part = Array("{\"user_id\":\"a\"}\n{\"user_id\"".utf8)
        var out: [UInt8] = []
        let used = try part.withUnsafeBytes { try h.filter($0, isFinal: false) { out.append(contentsOf: $0) } }
        #expect(used == 16)
        #expect(out == Array("{\"user_id\":\"a\"}\n".utf8))
    }

    static let malformedInput = Array(
        "{\"user_id\":\"a\"}\n{\"user_id\":\"gone\"}\n{\"user_id\":\"b\"\n{\"user_id\":\"c\"}\n{\"user_id\":\"x\",\"user_id\":\"y\"}\n".utf8)

    @Test func malformedPass() throws {
        let f = makeFilter(["user_id"], forgotten: ["gone"], policy: .pass)
        let got = try f.filter(Self.malformedInput)
        #expect(got == Array("{\"user_id\":\"a\"}\n{\"user_id\":\"b\"\n{\"user_id\":\"c\"}\n{\"user_id\":\"x\",\"user_id\":\"y\"}\n".utf8))
        #expect(f.counts.malformed == 2 && f.counts.passed == 2 && f.counts.dropped == 1)
    }

    /// `--validate minimal` under `pass`: the output of `full`; a kept line's unread rest is not
    /// judged (it counts as passed), a forgotten subject's line is validated whole before it is dropped.
    @Test func minimalValidationKeepsTheOutputOfFull() throws {
        let input = Self.malformedInput + Array("{\"user_id\":\"gone\",,}\n{\"user_id\":\"gone\",\"n\":1}\n".utf8)
        let full = makeFilter(["user_id"], forgotten: ["gone"], policy: .pass)
        let minimal = makeFilter(["user_id"], forgotten: ["gone"], policy: .pass, validation: .minimal)
        let want = try full.filter(input)
        #expect(try minimal.filter(input) == want)
        #expect(want.count < input.count)
        #expect(full.counts.malformed == 3 && full.counts.passed == 2 && full.counts.dropped == 2)
        // `{"user_id":"b"` and the duplicate `x`/`y` are kept unread; `"gone",,}` is read whole: malformed.
        #expect(minimal.counts.malformed == 1 && minimal.counts.passed == 4 && minimal.counts.dropped == 2)
        // Under `drop`, minimal is full.
        let drop = makeFilter(["user_id"], forgotten: ["gone"], policy: .drop, validation: .minimal)
        let dropFull = makeFilter(["user_id"], forgotten: ["gone"], policy: .drop)
        #expect(try drop.filter(input) == dropFull.filter(input))
        #expect(drop.counts == dropFull.counts)
    }

    @Test func malformedDrop() throws {
        let f = makeFilter(["user_id"], forgotten: ["gone"], policy: .drop)
        #expect(try f.filter(Self.malformedInput) == Array("{\"user_id\":\"a\"}\n{\"user_id\":\"c\"}\n".utf8))
        #expect(f.counts.malformed == 2 && f.counts.passed == 2 && f.counts.dropped == 1)
    }

    @Test func malformedFailNamesTheLineAfterKeepingTheOnesBefore() throws {
        let f = makeFilter(["user_id"], forgotten: ["gone"], policy: .fail)
        var out: [UInt8] = []
        do {
            try Self.malformedInput.withUnsafeBytes { b in
                _ = try f.filter(b, isFinal: true) { out.append(contentsOf: $0) }
            }
            Issue.record("no error")
        } catch let e as MalformedLine {
            #expect(e.line == 3)
            #expect(e.description.hasPrefix("line 3: malformed JSON"))
        }
        #expect(out == Array("{\"user_id\":\"a\"}\n".utf8))
        #expect(f.counts.malformed == 1)
    }

    @Test func fastModeStillCatchesASecondSubjectField() throws {
        // Found and closed early, but a later top-level "user" (plain or escaped) forces full validation.
        let lines = [
            #"{"user":{"id":"ok"},"n":1,"user":{"id":"gone"}}"#,
            #"{"user":{"id":"ok"},"n":1,"us\u0065r":{"id":"gone"}}"#,
            #"{"user":{"id":"ok","id":"gone"},"n":1}"#,
        ]
        for line in lines {
            let f = makeFilter(["user.id"], forgotten: ["gone"], policy: .drop, validation: .fast)
            #expect(try f.filter(Array((line + "\n").utf8)) == [], "\(line)")
            #expect(f.counts.malformed == 1)
        }
        // A value that merely reads "user" is a false alarm: full validation, then kept.
        let f = makeFilter(["user.id"], forgotten: ["gone"], validation: .fast)
        let ok = Array(#"{"user":{"id":"ok"},"role":"user"}"#.utf8 + [0x0A])
        #expect(try f.filter(ok) == ok)
        // What fast mode gives up: syntax after the subject's object is not read.
        let g = makeFilter(["user.id"], forgotten: ["gone"], policy: .fail, validation: .fast)
        let tail = Array(#"{"user":{"id":"ok"},"n":1,,,]"#.utf8 + [0x0A])
        #expect(try g.filter(tail) == tail)
        let h = makeFilter(["user.id"], forgotten: ["gone"], policy: .drop, validation: .full)
        #expect(try h.filter(tail) == [])
    }

    @Test func pumpBetweenFilesWithLongLinesAndSmallChunks() throws {
        var corpus = Corpus(seed: 11)
        var input = corpus.lines(3000, subjects: 200)
        // A line far longer than the chunk, to make the pump grow its buffer.
        input += Array(("\n{\"user\":{\"id\":\"u-12\"},\"blob\":\"" + String(repeating: "x", count: 50_000) + "\"}\n{\"user\":{\"id\":\"u-13\"}}").utf8)
        let forgotten = Self.forgotten(subjects: 200)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-pump-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inPath = dir.appendingPathComponent("in.jsonl").path, outPath = dir.appendingPathComponent("out.jsonl").path
        _ = FileManager.default.createFile(atPath: inPath, contents: Data(input))
        let inFD = open(inPath, O_RDONLY), outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(inFD >= 0 && outFD >= 0)
        let f = makeFilter(forgotten: Array(forgotten))
        let pump = StreamPump(filter: f, input: inFD, output: outFD, chunk: 4096, maxRuns: 3)
        try pump.run()
        close(inFD); close(outFD)
        let got = Array(FileManager.default.contents(atPath: outPath)!)
        #expect(got == (try referenceFilter(input, fields: [["user", "id"]], forgotten: forgotten)))
        #expect(got.suffix(21) == Array("{\"user\":{\"id\":\"u-13\"}}".utf8).suffix(21))
    }
}

@Suite struct DeletionSetTests {
    @Test func membershipAndChanges() {
        var rng = SplitMix(seed: 5)
        let tags = (0..<10_000).map { _ in rng.next() }
        let s = DeletionSet(tags: tags + [0] + tags.prefix(100))
        #expect(s.count == 10_001)
        #expect(tags.allSatisfy(s.contains) && s.contains(0))
        let others = (0..<10_000).map { _ in rng.next() }
        #expect(!others.contains(where: s.contains))
        #expect(s.memoryBytes <= 16 * s.count)
        // Additions within the load limit, then beyond it, then removals.
        let s2 = s.applying(DeletionChanges(added: Array(others.prefix(10)), removed: [], latest: 1))
        #expect(s2.count == 10_011 && others.prefix(10).allSatisfy(s2.contains) && !s.contains(others[0]))
        let s3 = s2.applying(DeletionChanges(added: others, removed: [], latest: 2))
        #expect(s3.count == 20_001 && others.allSatisfy(s3.contains) && tags.allSatisfy(s3.contains))
        #expect(s3.memoryBytes <= 16 * s3.count)
        let s4 = s3.applying(DeletionChanges(added: [], removed: Array(tags.prefix(5000)) + [0], latest: 3))
        #expect(s4.count == 15_000)
        #expect(!tags.prefix(5000).contains(where: s4.contains) && !s4.contains(0))
        #expect(tags.suffix(5000).allSatisfy(s4.contains) && others.allSatisfy(s4.contains))
        #expect(Set(s4.tags) == Set(tags.suffix(5000) + others))
    }

    @Test func largeTables() {
        // Over 4 MiB: the table is mapped directly (huge-page hint) rather than malloc'd.
        var rng = SplitMix(seed: 9)
        let tags = (0..<400_000).map { _ in rng.next() }
        let s = DeletionSet(tags: tags)
        #expect(s.memoryBytes >= 4 << 20)
        #expect(s.count == 400_000 && tags.allSatisfy(s.contains))
        let more = (0..<1000).map { _ in rng.next() }
        let s2 = s.applying(DeletionChanges(added: more, removed: Array(tags.prefix(10)), latest: 1))
        #expect(s2.count == 400_990 && more.allSatisfy(s2.contains) && !tags.prefix(10).contains(where: s2.contains))
        #expect(tags.dropFirst(10).allSatisfy(s2.contains))
    }

    actor FakeMetastore {
        /// (updatedAt, tag, forgotten)
        var rows: [(Int64, UInt64, Bool)] = []
        var calls: [Int64] = []
        func set(_ r: [(Int64, UInt64, Bool)]) { rows = r }
        func changes(since: Int64) -> DeletionChanges {
            calls.append(since)
            let recent = rows.filter { $0.0 >= since }
            let forgottenTags = Set(rows.filter(\.2).map(\.1))
            return DeletionChanges(
                added: recent.filter(\.2).map(\.1),
                removed: recent.filter { !$0.2 && !forgottenTags.contains($0.1) }.map(\.1),
                latest: rows.map(\.0).max() ?? Int64.min)
        }
    }

    @Test func refreshPicksUpApprovalsAndRejections() async throws {
        let meta = FakeMetastore()
        await meta.set([(1000, tag("a"), true)])
        let shared = SharedDeletionSet()
        let source: @Sendable (Int64) async throws -> DeletionChanges = { await meta.changes(since: $0) }
        try await shared.load(from: source)
        let f = StreamFilter(fields: [FieldPath("user_id")], streamKey: testStreamKey, set: shared, onMalformed: .fail)
        let input = Array("{\"user_id\":\"a\"}\n{\"user_id\":\"b\"}\n".utf8)
        #expect(try f.filter(input) == Array("{\"user_id\":\"b\"}\n".utf8))
        // Nothing new: the set stays.
        #expect(try await shared.refresh(from: source) == false)
        // b approved with an older timestamp (another clock), inside the overlap window.
        await meta.set([(1000, tag("a"), true), (900, tag("b"), true)])
        #expect(try await shared.refresh(from: source) == true)
        #expect(await meta.calls.last == 1000 - 5000)
        #expect(try f.filter(input) == [])
        // a's request rejected: it passes again.
        await meta.set([(2000, tag("a"), false), (900, tag("b"), true)])
        #expect(try await shared.refresh(from: source) == true)
        #expect(try f.filter(input) == Array("{\"user_id\":\"a\"}\n".utf8))
        #expect(f.counts.dropped == 4 && f.counts.passed == 2)
    }
}
