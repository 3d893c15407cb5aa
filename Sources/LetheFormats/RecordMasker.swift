import LetheCore

extension EraseActions {
    /// The action for a classified record: nil when it is kept as it is.
    func action(for line: LineOutcome) -> RecordAction? {
        guard case .subject(let key) = line else { return nil }
        return bySubject[key]
    }

    /// Refuses actions other than `.drop` on an object whose every subject part is a partition value
    /// (a Hive folder, a Delta partition): the folder names the subject and no rewrite can change it.
    func checkNotConstant(_ options: FormatOptions, format: String, keyer: SubjectKeyer, at location: String) throws {
        guard !dropsOnly, case .key = options.constantSubject(keyer) else { return }
        throw LetheError(
            .unsupported,
            "the \(format) object's subject is its folder (a partition value): `erase: mask`/`blank` cannot change a folder's name; use `erase: delete` for this dataset",
            at: location)
    }

    /// The pseudonym key, or an error when a field action hashes without one.
    func requireMaskKey(at location: String) throws -> MaskKey {
        guard let maskKey else { throw LetheError(.badInput, "a `hash` mask needs the installation's mask key", at: location) }
        return maskKey
    }
}

extension EraseOutcome {
    /// Counts one classified record against `actions`; returns what to do with its bytes. `ordinal`
    /// is the number of records before this line (advanced past a record; a dropped one is recorded).
    mutating func apply(_ line: LineOutcome, _ actions: EraseActions, ordinal: inout Int64) -> RecordAction? {
        switch line {
        case .blank: return nil
        case .noSubject:
            kept += 1
            ordinal += 1
            return nil
        case .subject(let key):
            guard let action = actions.bySubject[key] else {
                kept += 1
                ordinal += 1
                return nil
            }
            if case .drop = action {
                dropped[key, default: 0] += 1
                droppedOrdinals.append(ordinal)
            } else {
                // The record stays, changed: the new version's index entries cannot be derived from the old.
                transformed[key, default: 0] += 1
                kept += 1
                exact = false
            }
            ordinal += 1
            return action
        }
    }

    /// Whether anything was dropped or changed.
    var changedRecords: Bool { !dropped.isEmpty || !transformed.isEmpty }
}

/// Rewrites one JSON record for `RecordAction.transform` / `.blankRecord`, on bytes: the values of
/// the named fields are replaced in place, every other byte of the line is kept.
final class JSONRecordMasker {
    private let fields: [FieldPath]
    private let fieldActions: [FieldAction]
    private let scanner: JSONFieldScanner
    private let maskKey: MaskKey?

    init(_ actions: [FieldPath: FieldAction], maskKey: MaskKey?) {
        let sorted = actions.sorted { $0.key.description < $1.key.description }
        fields = sorted.map(\.key)
        fieldActions = sorted.map(\.value)
        scanner = JSONFieldScanner(paths: fields.isEmpty ? [FieldPath(components: [[0xFF]])] : fields)
        self.maskKey = maskKey
    }

    /// The record `content` (without its line ending) with the fields replaced, appended to `out`.
    func transform(_ content: UnsafeRawBufferPointer, into out: inout [UInt8]) throws {
        try scanner.scan(content)
        var spans: [(start: Int, end: Int, value: [UInt8])] = []
        for (i, action) in fieldActions.enumerated() {
            let m = scanner.match(i)
            guard m.kind != .absent else { continue }  // nothing there to mask
            let span = Self.valueSpan(m, in: content)
            let value: [UInt8]
            switch action {
            case .null: value = Array("null".utf8)
            case .redact: value = Self.quoted(Array(MaskRule.redactionMarker.utf8))
            case .blank: value = Array("\"\"".utf8)
            case .literal(let s): value = Self.quoted(Array(s.utf8))
            case .hash:
                if m.kind == .null { continue }  // null stays null: there is nothing to pseudonymise
                guard let maskKey else { throw LetheError(.badInput, "a `hash` mask needs the installation's mask key") }
                let text = scanner.canonicalValue(i, in: content) ?? Array(UnsafeRawBufferPointer(rebasing: content[span]))
                value = Self.quoted(maskKey.pseudonym(text))
            }
            spans.append((span.lowerBound, span.upperBound, value))
        }
        spans.sort { $0.start < $1.start }
        var at = 0
        for s in spans where s.start >= at {  // a field inside another masked field goes with it
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: content[at..<s.start]))
            out.append(contentsOf: s.value)
            at = s.end
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: content[at..<content.count]))
    }

    /// The bytes of a match's whole value (a string with its quotes, an object or array to its closing bracket).
    static func valueSpan(_ m: JSONFieldScanner.Match, in content: UnsafeRawBufferPointer) -> Range<Int> {
        switch m.kind {
        case .string: return (m.start - 1)..<(m.end + 1)
        case .object, .array:
            var depth = 0, i = m.start, inString = false
            while i < content.count {
                let c = content[i]
                if inString {
                    if c == 0x5C { i += 1 } else if c == 0x22 { inString = false }
                } else if c == 0x22 {
                    inString = true
                } else if c == 0x7B || c == 0x5B {
                    depth += 1
                } else if c == 0x7D || c == 0x5D {
                    depth -= 1
                    if depth == 0 { return m.start..<(i + 1) }
                }
                i += 1
            }
            return m.start..<content.count
        default: return m.start..<m.end
        }
    }

    /// `text` as a JSON string (quotes, backslashes and control characters escaped).
    static func quoted(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x22]
        let hex = Array("0123456789abcdef".utf8)
        for c in text {
            switch c {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: out.append(c)
            }
        }
        out.append(0x22)
        return out
    }
}

/// Rewrites one CSV record for `RecordAction.transform` / `.blankRecord`: the named columns' fields
/// are replaced (quoted when the new text needs it), every other field's bytes are kept.
struct CSVRecordMasker {
    /// Column index → action (from the header).
    var columns: [Int: FieldAction] = [:]
    let delimiter: UInt8
    let maskKey: MaskKey?

    init(_ actions: [FieldPath: FieldAction], header: [[UInt8]], delimiter: UInt8, maskKey: MaskKey?) {
        self.delimiter = delimiter
        self.maskKey = maskKey
        for (path, action) in actions {
            var name: [UInt8] = []
            for (i, c) in path.components.enumerated() {
                if i > 0 { name.append(UInt8(ascii: ".")) }
                name.append(contentsOf: c)
            }
            for (i, h) in header.enumerated() where h == name { columns[i] = action }
        }
    }

    /// The record with its columns replaced (`blankAll`: every field empty), line ending kept.
    func transform(_ record: CSVRecord, _ fields: [CSVField], blankAll: Bool, into out: inout [UInt8]) throws {
        let buf = record.buffer
        var scratch: [UInt8] = []
        for (i, f) in fields.enumerated() {
            if i > 0 { out.append(delimiter) }
            let action: FieldAction? = blankAll ? .blank : columns[i]
            guard let action else {
                // The field's own bytes, quotes included.
                let s = f.quoted ? f.start - 1 : f.start, e = f.quoted ? f.end + 1 : f.end
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[s..<e]))
                continue
            }
            switch action {
            case .null, .blank: break
            case .redact: append(Array(MaskRule.redactionMarker.utf8), to: &out)
            case .literal(let s): append(Array(s.utf8), to: &out)
            case .hash:
                if f.start == f.end { break }  // an empty field stays empty
                guard let maskKey else { throw LetheError(.badInput, "a `hash` mask needs the installation's mask key") }
                append(f.withText(in: buf, scratch: &scratch) { maskKey.pseudonym($0) }, to: &out)
            }
        }
        // The line ending as it was (LF, CRLF, or none on the last record).
        let raw = record.raw
        var end = raw.count
        if end > 0 && raw[end - 1] == 0x0A { end -= 1 }
        if end > 0 && raw[end - 1] == 0x0D { end -= 1 }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[end..<raw.count]))
    }

    private func append(_ text: [UInt8], to out: inout [UInt8]) {
        if text.contains(where: { $0 == delimiter || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) {
            out.append(0x22)
            for c in text {
                out.append(c)
                if c == 0x22 { out.append(0x22) }
            }
            out.append(0x22)
        } else {
            out.append(contentsOf: text)
        }
    }
}
