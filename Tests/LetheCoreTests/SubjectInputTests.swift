import Testing
@testable import LetheCore

private func config(_ subjects: [String]) throws -> LakeConfig {
    var text = "lake: x\ndatasets:\n"
    for (i, s) in subjects.enumerated() {
        text += "  - name: d\(i)\n    path: d\(i)\n    format: jsonl\n    subject: \(s)\n"
    }
    return try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/b")
}

private func refused(_ body: () throws -> Any, _ words: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try body()
        Issue.record("accepted", sourceLocation: sourceLocation)
    } catch let e as LetheError {
        #expect(e.code == .badUsage, sourceLocation: sourceLocation)
        for w in words { #expect(e.description.contains(w), "\(e)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

// Issue 10 item 7: `forget 'a|b'` on a single-column dataset named the record of `a\u001fb`.
@Test func aTypedIdIsNeverSplit() throws {
    let single = try config(["id"])
    let s = try SubjectInput.text("a|b", origin: "argument 1")
    #expect(try single.check(s) == SubjectID(bytes: Array("a|b".utf8)))
    #expect(try single.check(s) != SubjectID(parts: [Array("a".utf8), Array("b".utf8)]))
}

@Test func compositeSubjectsAreJSONArrays() throws {
    let lake = try config(["[tenant, user_id]"])
    let s = try SubjectInput.json(#"["t1","a|b"]"#, origin: "--subject-json")
    #expect(s.parts == 2)
    #expect(try lake.check(s) == SubjectID(parts: [Array("t1".utf8), Array("a|b".utf8)]))
    // A part may be given as hex bytes; an array of one string is a single id.
    let h = try SubjectInput.json(#"["t1",{"hex":"ff00"}]"#, origin: "--subject-json")
    #expect(h.id.bytes == Array("t1".utf8) + [0x1F, 0xFF, 0x00])
    #expect(try SubjectInput.json(#"["u-1"]"#, origin: "x").parts == 1)
    refused({ try SubjectInput.json(#"["t1",""]"#, origin: "--subject-json") }, "part 2", "empty")
    refused({ try SubjectInput.json(#"["t1","a\u001fb"]"#, origin: "--subject-json") }, "U+001F")
    refused({ try SubjectInput.json(#"[1,2]"#, origin: "--subject-json") }, "part 1")
    refused({ try SubjectInput.json("[", origin: "--subject-json") }, "--subject-json", "not valid JSON")
    refused({ try SubjectInput.json("[]", origin: "--subject-json") }, "empty array")
}

@Test func theLakeDecidesWhichFormsNameSomeone() throws {
    let single = try config(["id"])
    let composite = try config(["[tenant, user_id]"])
    let mixed = try config(["id", "[tenant, user_id]"])
    let plain = try SubjectInput.text("t1|u-1", origin: "argument 1")
    let asJSON = try SubjectInput.json(#""t1|u-1""#, origin: "--subject-json")
    let parts = try SubjectInput.json(#"["t1","u-1"]"#, origin: "--subject-json")
    let unitSeparator = try SubjectInput.json(#""a\u001fb""#, origin: "--subject-json")
    // The old composite spelling is refused where it could have meant a composite subject, never split.
    refused({ try mixed.check(plain) }, "argument 1", "composite_separator", "--subject-json")
    refused({ try composite.check(plain) }, "every dataset", "composite")
    #expect(try single.check(plain).bytes == Array("t1|u-1".utf8))
    #expect(try mixed.check(asJSON).bytes == Array("t1|u-1".utf8))
    #expect(try mixed.check(parts) == SubjectID(parts: [Array("t1".utf8), Array("u-1".utf8)]))
    refused({ try single.check(parts) }, "2 parts")
    refused({ try mixed.check(unitSeparator) }, "U+001F")
    #expect(try single.check(unitSeparator).bytes == [0x61, 0x1F, 0x62])
}

// Issue 10 item 8: ids that cannot be typed as text.
@Test func hexIdsAreRawBytes() throws {
    #expect(try SubjectInput.hex("75ff2d31", origin: "--hex").id.bytes == [0x75, 0xFF, 0x2D, 0x31])
    #expect(try SubjectInput.hex("0xFF", origin: "--hex").id.bytes == [0xFF])
    refused({ try SubjectInput.hex("7", origin: "--hex") }, "--hex", "hexadecimal")
    refused({ try SubjectInput.hex("zz", origin: "--hex") }, "hexadecimal")
    refused({ try SubjectInput.hex("", origin: "--hex") }, "empty")
}

@Test func fromFileLinesAreTakenLiterally() throws {
    let data: [UInt8] = Array(" u-1 \n#u-2\n\nu-3".utf8) + [0x0A, 0x75, 0xFF, 0x0A]
    let ids = try SubjectInput.lines(data, form: .text, file: "ids.txt").map(\.id.bytes)
    #expect(ids == [Array(" u-1 ".utf8), Array("#u-2".utf8), Array("u-3".utf8), [0x75, 0xFF]])
    let asked = try SubjectInput.lines(data, form: .text, trim: true, comments: true, file: "ids.txt").map(\.id.bytes)
    #expect(asked == [Array("u-1".utf8), Array("u-3".utf8), [0x75, 0xFF]])
    // Origins name the file and line, never the id.
    #expect(
        try SubjectInput.lines(data, form: .text, file: "ids.txt").map(\.origin) == ["ids.txt:line 1", "ids.txt:line 2", "ids.txt:line 4", "ids.txt:line 5"])
    refused({ try SubjectInput.lines(Array("u-1\r\nu-2\r\n".utf8), form: .text, file: "ids.txt") }, "ids.txt:line 1", "carriage return", "--trim")
    #expect(try SubjectInput.lines(Array("u-1\r\n".utf8), form: .text, trim: true, file: "f").map(\.id.bytes) == [Array("u-1".utf8)])
    refused({ try SubjectInput.lines([0xEF, 0xBB, 0xBF] + Array("u-1\n".utf8), form: .text, file: "ids.txt") }, "byte order mark")
}

@Test func fromFileLinesInHexAndJSON() throws {
    #expect(try SubjectInput.lines(Array("75ff\n 6162 \n".utf8), form: .hex, file: "f").map(\.id.bytes) == [[0x75, 0xFF], [0x61, 0x62]])
    let j = try SubjectInput.lines(Array("\"a|b\"\n[\"t1\",\"u-1\"]\n".utf8), form: .json, file: "f")
    #expect(j.map(\.parts) == [1, 2])
    refused({ try SubjectInput.lines(Array("\"ok\"\nnope\n".utf8), form: .json, file: "f") }, "f:line 2")
}
