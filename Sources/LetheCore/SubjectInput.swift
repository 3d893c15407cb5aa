import Foundation

/// A subject as someone typed it, before it is checked against the lake.
///
/// Typed ids are never split: `a|b` is the one id `a|b`. A composite subject (a dataset whose
/// `subject` lists several fields) is typed as a JSON array of its parts. See README, "Subject ids".
public struct TypedSubject: Sendable, Hashable {
    public var id: SubjectID
    /// 1 for a single id, else the number of parts of a composite subject.
    public var parts: Int
    /// Where it was typed, for messages (`argument 2`, `--hex`, `ids.txt:line 4`); never the id itself.
    public var origin: String
    /// Typed as plain text (an argument, or a `--from` line in text form), where an old composite
    /// spelling (`t1|u-1`) may hide.
    public var plainText: Bool

    public init(id: SubjectID, parts: Int = 1, origin: String, plainText: Bool = false) {
        self.id = id; self.parts = parts; self.origin = origin; self.plainText = plainText
    }
}

/// Parses the forms in which people type subjects. Errors are `.badUsage` (exit 2), located at the
/// form's origin, and never quote the id.
public enum SubjectInput {
    /// How each line of a `--from` file is read.
    public enum LineForm: String, Sendable, CaseIterable {
        /// The line's bytes are the id, exactly (any bytes but LF; not necessarily UTF-8).
        case text
        /// The line is the id's bytes in hexadecimal.
        case hex
        /// The line is a JSON string (one id) or a JSON array of parts (a composite subject).
        case json
    }

    /// An id typed as text: its UTF-8 bytes, exactly as typed.
    public static func text(_ s: String, origin: String) throws -> TypedSubject {
        try single(Array(s.utf8), origin: origin, plainText: true)
    }

    /// An id given as hexadecimal digits (`75ff31`): for ids that are not UTF-8, or hold characters a shell cannot pass.
    public static func hex(_ s: String, origin: String) throws -> TypedSubject {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard let b = Hex.decode(t.hasPrefix("0x") ? String(t.dropFirst(2)) : t) else {
            throw LetheError(.badUsage, "not hexadecimal bytes (an even number of digits 0-9, a-f)", at: origin)
        }
        return try single(b, origin: origin, plainText: false)
    }

    /// A JSON string (one id, JSON escapes allowed: `"a\u001fb"`) or a JSON array of parts for a composite
    /// subject (`["t1","a|b"]`); a part may also be `{"hex": "…"}` for bytes that are not UTF-8.
    public static func json(_ text: String, origin: String) throws -> TypedSubject {
        try json(Array(text.utf8), origin: origin)
    }

    public static func json(_ bytes: [UInt8], origin: String) throws -> TypedSubject {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw LetheError(
                .badUsage, "not valid JSON: write a JSON string (\"u-1\") or an array of the composite subject's parts ([\"t1\",\"u-1\"])", at: origin)
        }
        func part(_ v: Any, _ i: Int) throws -> [UInt8] {
            if let s = v as? String { return Array(s.utf8) }
            if let o = v as? [String: Any], o.count == 1, let h = o["hex"] as? String {
                guard let b = Hex.decode(h) else { throw LetheError(.badUsage, "part \(i + 1): `hex` is not hexadecimal bytes", at: origin) }
                return b
            }
            throw LetheError(.badUsage, "part \(i + 1) is neither a string nor {\"hex\": \"…\"}", at: origin)
        }
        if let a = value as? [Any] {
            guard !a.isEmpty else { throw LetheError(.badUsage, "an empty array names no subject", at: origin) }
            let parts = try a.enumerated().map { try part($1, $0) }
            if parts.count == 1 { return try single(parts[0], origin: origin, plainText: false) }
            for (i, p) in parts.enumerated() {
                if p.isEmpty { throw LetheError(.badUsage, "part \(i + 1) of the composite subject is empty", at: origin) }
                if p.contains(SubjectID.partSeparator) {
                    throw LetheError(.badUsage, "part \(i + 1) holds U+001F, the byte that joins a composite subject's parts", at: origin)
                }
            }
            return TypedSubject(id: SubjectID(parts: parts), parts: parts.count, origin: origin)
        }
        return try single(try part(value, 0), origin: origin, plainText: false)
    }

    /// The subjects of a `--from` file: one a line (LF ends a line; a last line without LF counts).
    /// Lines are taken literally: no trimming and no comments unless `trim` / `comments` ask for them.
    /// Empty lines are not ids and are skipped. In text form a line ending in CR (a CRLF file) or a file
    /// starting with a byte order mark is refused: the invisible byte would be part of the id.
    public static func lines(
        _ data: [UInt8], form: LineForm, trim: Bool = false, comments: Bool = false,
        file: String
    ) throws -> [TypedSubject] {
        var out: [TypedSubject] = []
        var lineNumber = 0
        var start = 0
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C }
        while start < data.count {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.count
            lineNumber += 1
            var line = data[start..<end]
            start = end + 1
            let origin = "\(file):line \(lineNumber)"
            if comments && line.first == UInt8(ascii: "#") { continue }
            if trim || form != .text {
                while let f = line.first, isSpace(f) { line = line.dropFirst() }
                while let l = line.last, isSpace(l) { line = line.dropLast() }
            }
            if line.isEmpty { continue }
            switch form {
            case .text:
                if line.last == 0x0D {
                    throw LetheError(.badUsage, "the line ends with a carriage return (a CRLF file?), which would be part of the id: pass --trim", at: origin)
                }
                if lineNumber == 1 && line.starts(with: [0xEF, 0xBB, 0xBF]) {
                    throw LetheError(.badUsage, "the file starts with a byte order mark, which would be part of the id: save it without one", at: origin)
                }
                out.append(try single(Array(line), origin: origin, plainText: true))
            case .hex:
                out.append(try hex(String(decoding: line, as: UTF8.self), origin: origin))
            case .json:
                out.append(try json(Array(line), origin: origin))
            }
        }
        return out
    }

    static func single(_ bytes: [UInt8], origin: String, plainText: Bool) throws -> TypedSubject {
        guard !bytes.isEmpty else { throw LetheError(.badUsage, "an empty subject id", at: origin) }
        return TypedSubject(id: SubjectID(bytes: bytes), parts: 1, origin: origin, plainText: plainText)
    }
}

extension LakeConfig {
    /// The subject of `s` if it can name someone in this lake without ambiguity (exit 2 otherwise):
    /// its number of parts matches some dataset's `subject`; in a lake with composite datasets, a single
    /// id must not hold U+001F (the byte joining composite parts), and a plain-text id must not hold
    /// `composite_separator` (the old way of typing composite subjects, which Lethe no longer splits).
    public func check(_ s: TypedSubject) throws -> SubjectID {
        let arities = Set(datasets.compactMap { $0.subject?.fields.count })
        guard !arities.isEmpty else { return s.id }
        if !arities.contains(s.parts) {
            let have = arities.sorted().map(String.init).joined(separator: " or ")
            if s.parts == 1 {
                throw LetheError(
                    .badUsage,
                    "a single id, but every dataset of \(file) has a composite subject (\(have) fields): "
                        + "type it as a JSON array of its parts, --subject-json '[\"part1\",\"part2\"]'", at: s.origin)
            }
            throw LetheError(
                .badUsage, "a composite subject of \(s.parts) parts, but the datasets of \(file) have subjects of \(have) field(s)",
                at: s.origin)
        }
        if s.parts == 1 && arities.contains(where: { $0 > 1 }) {
            if s.id.bytes.contains(SubjectID.partSeparator) {
                throw LetheError(
                    .badUsage, "the id holds U+001F, the byte that joins a composite subject's parts: ambiguous in a lake with composite datasets",
                    at: s.origin)
            }
            let sep = Array(String(compositeSeparator).utf8)
            if s.plainText, s.id.bytes.count >= sep.count,
                (0...(s.id.bytes.count - sep.count)).contains(where: { s.id.bytes[$0..<($0 + sep.count)].elementsEqual(sep) })
            {
                throw LetheError(
                    .badUsage,
                    "the id holds `\(compositeSeparator)` (composite_separator); typed ids are never split: "
                        + "write a composite subject as --subject-json '[\"part1\",\"part2\"]', or this one id as --subject-json '\"…\"'",
                    at: s.origin)
            }
        }
        return s.id
    }
}
