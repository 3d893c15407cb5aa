public import ArgumentParser  // a retroactive ExpressibleByArgument conformance of a public type
import Foundation
import LetheCore

/// The ways to type subjects on the command line (locate, forget).
struct SubjectArguments: ParsableArguments {
    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp(
            "Subject ids, each exactly as typed and never split (`a|b` is one id). A negative number is an id (`-654807448`), and so is anything after `--`.",
            valueName: "subject"))
    var subjects: [String] = []
    @Option(
        name: .customLong("hex"),
        help: ArgumentHelp(
            "A subject id as hexadecimal bytes (`75ff31`), for ids that are not UTF-8 text or hold characters a shell cannot pass. Repeatable.",
            valueName: "hex"))
    var hex: [String] = []
    @Option(
        name: .customLong("subject-json"),
        help: ArgumentHelp(
            #"A subject as JSON: a string for one id (JSON escapes allowed: "a\u001fb"), or an array of the parts of a composite subject: '["t1","a|b"]' (a part may be {"hex":"ff00"}). Repeatable."#,
            valueName: "json"))
    var json: [String] = []

    /// Every subject given, in the order of the forms (arguments, --hex, --subject-json).
    func typed() throws -> [TypedSubject] {
        var out: [TypedSubject] = []
        for (i, s) in try positional().enumerated() { out.append(try SubjectInput.text(s, origin: "subject argument \(i + 1)")) }
        for (i, h) in hex.enumerated() { out.append(try SubjectInput.hex(h, origin: "--hex \(i + 1)")) }
        for (i, j) in json.enumerated() { out.append(try SubjectInput.json(j, origin: "--subject-json \(i + 1)")) }
        return out
    }

    /// The positional ids. `.allUnrecognized` collects, in order, the ids, negative numbers (which
    /// argument-parser would take for options), a `--` and everything after it, and unknown options:
    /// before `--`, anything else that starts with `-` is refused as the unknown option it is
    /// (`--resaon` must not become an id).
    func positional() throws -> [String] {
        var out: [String] = []
        var terminated = false
        for s in subjects {
            if !terminated && s == "--" { terminated = true; continue }
            if !terminated && s.hasPrefix("-") && !Self.looksNumeric(s) {
                // Echoed only when it is plainly an option: an id that starts with `-` is not repeated.
                let what = s.hasPrefix("--") ? "unknown option `\(s)`" : "unknown option (an argument that starts with `-`)"
                throw LetheError(.badUsage, "\(what); an id that starts with `-` goes after `--` (`lethe forget -- ID`)")
            }
            out.append(s)
        }
        return out
    }

    /// A negative number (`-654807448`, `-1.5`, `-.5`, `-1e3`, `-inf`), which Lethe reads as an id, not an option.
    static func looksNumeric(_ s: String) -> Bool {
        let rest = s.dropFirst()
        if rest == "inf" || rest == "nan" { return true }
        guard let f = rest.first else { return false }
        return f.isASCII && (f.isNumber || (f == "." && rest.dropFirst().first.map { $0.isASCII && $0.isNumber } == true))
    }

}

/// How a `--from` file is read.
struct FromFileOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A file of subject ids, one a line (`-` reads stdin). Lines are taken literally: every byte is part of the id (not necessarily UTF-8), no comments, no trimming; empty lines are skipped; a line ending in CR is refused (pass --trim).",
            valueName: "file"))
    var from: String?
    @Option(
        name: .customLong("from-format"),
        help:
            "How each --from line is read: text (its bytes, exactly), hex (hexadecimal bytes) or json (a JSON string, or an array of a composite subject's parts)."
    )
    var fromFormat: SubjectInput.LineForm = .text
    @Flag(help: "Strip spaces, tabs and a CR from both ends of each --from line.")
    var trim = false
    @Flag(help: "Skip --from lines that start with `#`.")
    var comments = false

    func typed() throws -> [TypedSubject] {
        guard let from else {
            if trim || comments || fromFormat != .text {
                throw LetheError(.badUsage, "--from-format, --trim and --comments apply to --from FILE")
            }
            return []
        }
        let data: Data
        if from == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let d = FileManager.default.contents(atPath: from) else {
                throw LetheError(.badInput, "cannot read the subject list", at: from)
            }
            data = d
        }
        return try SubjectInput.lines(
            Array(data), form: fromFormat, trim: trim, comments: comments,
            file: from == "-" ? "stdin" : from)
    }
}

extension SubjectInput.LineForm: ExpressibleByArgument {}
