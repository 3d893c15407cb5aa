import Foundation
public import LetheCore

/// One rule a record broke: where (line, field) and which rule — never the value.
public struct SchemaViolation: Sendable, Hashable, Codable {
    /// The physical line where the record begins (1-based; a CSV header is line 1).
    public var line: Int64
    /// The field (dotted path), or `-` for the record as a whole.
    public var field: String
    /// `required`, `type:<type>`, `enum`, `regex`, `json` (not a JSON record), `fields` (a CSV
    /// record whose field count differs from the header's), `column` (the header lacks the field).
    public var rule: String
    public init(line: Int64, field: String, rule: String) { self.line = line; self.field = field; self.rule = rule }
}

/// What `SchemaValidator.validate` made of an object's bytes.
public struct ValidatedRecords: Sendable {
    /// Records read (not blank lines, not the CSV header).
    public var records: Int64 = 0
    /// The records that passed, as they were (with the CSV header and blank lines), in order.
    public var accepted: [UInt8] = []
    /// The records that failed, as they were (after the CSV header), in order — apart from those in
    /// `unparsed`.
    public var rejected: [UInt8] = []
    /// The records that failed as a whole (`json`: not a JSON record; `fields`: a CSV record with
    /// another field count than the header's), as they were (after the CSV header). They are kept
    /// apart: no record reader can read them, so the quarantine stores them where forget requests
    /// search their bytes for the raw id instead of reading them as records (docs/masking.md).
    public var unparsed: [UInt8] = []
    /// How many of the failed records are in `unparsed`.
    public var unparsedRecords: Int64 = 0
    /// How many records failed.
    public var rejectedRecords: Int64 = 0
    /// Every rule broken, by line.
    public var violations: [SchemaViolation] = []
    public init() {}
}

/// Checks JSON Lines and CSV records against a dataset's `schema:` on bytes (no per-record `String`
/// or `JSONSerialization`): a JSON record's fields are found by `JSONFieldScanner`; a CSV record's by
/// the header. A record that is not JSON, or a CSV record with the wrong field count, fails whole.
public final class SchemaValidator {
    private let rules: [FieldRule]
    private let regexes: [NSRegularExpression?]
    private let format: DatasetSpec.Format
    private let delimiter: UInt8
    private let objectName: String
    /// The dataset's subject fields: a JSON record lacking one (or holding an object, array or
    /// boolean there) cannot be read as the dataset's record; when it fails, it goes to `unparsed`.
    private let subjectFields: [FieldPath]

    /// Nil-free validator of `schema` for `format` (`jsonl` or `csv`; `.unsupported` otherwise).
    public init(
        schema: DatasetSchema, format: DatasetSpec.Format, delimiter: UInt8 = UInt8(ascii: ","), objectName: String, subject: [FieldPath] = []
    ) throws {
        guard format == .jsonl || format == .csv else {
            throw LetheError(.unsupported, "schema validation covers jsonl and csv records, not \(format.rawValue)", at: objectName)
        }
        self.rules = schema.fields
        self.regexes = try schema.fields.map { r in
            try r.regex.map { try NSRegularExpression(pattern: "^(?:" + $0 + ")$") }
        }
        self.format = format
        self.delimiter = delimiter
        self.objectName = objectName
        self.subjectFields = subject
    }

    /// Splits `bytes` (one object, uncompressed) into accepted and rejected records with the violations.
    public func validate(_ bytes: [UInt8]) throws -> ValidatedRecords {
        var out = ValidatedRecords()
        if format == .jsonl { try validateLines(bytes, &out) } else { try validateCSV(bytes, &out) }
        return out
    }

    // MARK: JSON Lines

    private func makeScanner() -> JSONFieldScanner {
        JSONFieldScanner(paths: (rules.isEmpty ? [FieldPath(components: [[0xFF]])] : rules.map(\.field)) + subjectFields)
    }

    /// After a scan: whether each subject field is present and a string, number or null.
    private func subjectReadable(_ scanner: JSONFieldScanner) -> Bool {
        let base = rules.isEmpty ? 1 : rules.count
        for i in 0..<subjectFields.count {
            let kind = scanner.match(base + i).kind
            if !(kind == .string || kind == .number || kind == .null) { return false }
        }
        return true
    }

    /// The rules one JSON record (a line without its line end, not blank) breaks.
    private func checkJSON(_ content: UnsafeRawBufferPointer, _ scanner: JSONFieldScanner, _ number: Int64, _ found: inout [SchemaViolation]) {
        do {
            try scanner.scan(content)
            for (i, rule) in rules.enumerated() {
                let m = scanner.match(i)
                check(rule, i, number, &found, present: m.kind != .absent && m.kind != .null) {
                    switch $0 {
                    case .string: return m.kind == .string
                    case .int:
                        return m.kind == .number
                            && !UnsafeRawBufferPointer(rebasing: content[m.start..<m.end]).contains { $0 == 0x2E || $0 == 0x65 || $0 == 0x45 }
                    case .number: return m.kind == .number
                    case .bool: return m.kind == .bool
                    case .object: return m.kind == .object
                    case .array: return m.kind == .array
                    }
                } text: {
                    scanner.canonicalValue(i, in: content)
                }
            }
        } catch {
            found.append(SchemaViolation(line: number, field: "-", rule: "json"))
        }
    }

    private func validateLines(_ bytes: [UInt8], _ out: inout ValidatedRecords) throws {
        let scanner = makeScanner()
        var lines = LineSplitter(objectKey: objectName, maxLineLength: 64 << 20)
        var found: [SchemaViolation] = []
        func handle(_ line: UnsafeRawBufferPointer, _ contentLength: Int, _ number: Int64) throws {
            let content = UnsafeRawBufferPointer(rebasing: line[0..<contentLength])
            if isBlankLine(content) {
                out.accepted.append(contentsOf: line)
                return
            }
            out.records += 1
            found.removeAll(keepingCapacity: true)
            checkJSON(content, scanner, number, &found)
            route(line, number, found, &out, readable: found.isEmpty || found.contains { Self.isWholeRecord($0.rule) } || subjectReadable(scanner))
        }
        try lines.feed(bytes, handle)
        try lines.finish(handle)
    }

    // MARK: CSV

    private func validateCSV(_ bytes: [UInt8], _ out: inout ValidatedRecords) throws {
        var reader = CSVReader(objectKey: objectName, delimiter: delimiter, maxRecordLength: 64 << 20)
        var columns: [Int?]? = nil
        var headerCount = 0
        var found: [SchemaViolation] = []
        var scratch: [UInt8] = []
        func handle(_ record: CSVRecord, _ fields: [CSVField]) throws {
            if record.isBlank {
                out.accepted.append(contentsOf: record.raw)
                return
            }
            guard let cols = columns else {
                columns = headerColumns(record, fields, &scratch)
                headerCount = fields.count
                out.accepted.append(contentsOf: record.raw)
                out.rejected.append(contentsOf: record.raw)
                out.unparsed.append(contentsOf: record.raw)
                return
            }
            out.records += 1
            found.removeAll(keepingCapacity: true)
            checkCSV(record, fields, cols, headerCount, &found, &scratch)
            route(record.raw, record.line, found, &out)
        }
        try reader.feed(bytes, handle)
        try reader.finish(handle)
    }

    /// The column of each rule's field in a CSV header record (nil: the header lacks it).
    private func headerColumns(_ record: CSVRecord, _ fields: [CSVField], _ scratch: inout [UInt8]) -> [Int?] {
        var names: [[UInt8]] = []
        for f in fields { names.append(f.withText(in: record.buffer, scratch: &scratch) { Array($0) }) }
        if names.first?.starts(with: [0xEF, 0xBB, 0xBF]) == true { names[0].removeFirst(3) }
        return rules.map { r in
            names.firstIndex(of: Array(r.field.components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").utf8))
        }
    }

    /// The rules one CSV record (not blank, not the header) breaks.
    private func checkCSV(
        _ record: CSVRecord, _ fields: [CSVField], _ cols: [Int?], _ headerCount: Int, _ found: inout [SchemaViolation], _ scratch: inout [UInt8]
    ) {
        if fields.count != headerCount {
            found.append(SchemaViolation(line: record.line, field: "-", rule: "fields"))
            return
        }
        for (i, rule) in rules.enumerated() {
            guard let c = cols[i] else {
                found.append(SchemaViolation(line: record.line, field: rule.field.description, rule: "column"))
                continue
            }
            let f = fields[c]
            let text = f.withText(in: record.buffer, scratch: &scratch) { Array($0) }
            check(rule, i, record.line, &found, present: !text.isEmpty) {
                let s = String(decoding: text, as: UTF8.self)
                switch $0 {
                case .string: return true
                case .int: return Int64(s) != nil
                case .number: return Double(s).map(\.isFinite) ?? false
                case .bool: return s == "true" || s == "false"
                case .object, .array: return false
                }
            } text: {
                text
            }
        }
    }

    // MARK: One record at a time (protect, ingest)

    private var recordScanner: JSONFieldScanner?
    private var recordColumns: (columns: [Int?], count: Int)?

    /// A CSV stream's header record (its bytes, with or without the line end): the columns the
    /// rules name. Call it before `check(record:line:)` on a CSV stream.
    public func checkHeader(_ header: UnsafeRawBufferPointer) throws {
        var reader = CSVReader(objectKey: objectName, delimiter: delimiter, maxRecordLength: 64 << 20)
        var scratch: [UInt8] = []
        var got: (columns: [Int?], count: Int)?
        let body: (CSVRecord, [CSVField]) throws -> Void = { r, f in
            if got == nil { got = (self.headerColumns(r, f, &scratch), f.count) }
        }
        try reader.feed(Array(header), body)
        try reader.finish(body)
        recordColumns = got ?? ([Int?](repeating: nil, count: rules.count), 0)
    }

    /// The rules one record breaks (empty when it passes): a JSON Lines line without its line end, or
    /// a CSV record (after `checkHeader`), not blank. `line` is where the record begins (1-based,
    /// counting every physical line of the stream). Violations name the line, field and rule only.
    public func check(record: UnsafeRawBufferPointer, line: Int64) -> [SchemaViolation] {
        var found: [SchemaViolation] = []
        if format == .jsonl {
            let scanner = recordScanner ?? makeScanner()
            recordScanner = scanner
            checkJSON(record, scanner, line, &found)
            return found
        }
        guard let cols = recordColumns else {
            return [SchemaViolation(line: line, field: "-", rule: "fields")]
        }
        var reader = CSVReader(objectKey: objectName, delimiter: delimiter, maxRecordLength: 64 << 20)
        var scratch: [UInt8] = []
        var seen = false
        let body: (CSVRecord, [CSVField]) throws -> Void = { r, f in
            guard !seen else { return }
            seen = true
            var r = r
            r.line = line
            self.checkCSV(r, f, cols.columns, cols.count, &found, &scratch)
        }
        do {
            try reader.feed(Array(record), body)
            try reader.finish(body)
        } catch {
            found.append(SchemaViolation(line: line, field: "-", rule: "fields"))
        }
        if !seen && found.isEmpty { found.append(SchemaViolation(line: line, field: "-", rule: "fields")) }
        return found
    }

    /// Whether a violation concerns the record as a whole (it cannot be read as a record).
    public static func isWholeRecord(_ rule: String) -> Bool { rule == "json" || rule == "fields" }

    // MARK: shared

    /// Checks one field's rule; a missing value breaks only `required` (the other rules hold vacuously).
    private func check(
        _ rule: FieldRule, _ i: Int, _ line: Int64, _ found: inout [SchemaViolation], present: Bool,
        type isType: (FieldRule.ValueType) -> Bool, text: () -> [UInt8]?
    ) {
        let name = rule.field.description
        guard present else {
            if rule.required { found.append(SchemaViolation(line: line, field: name, rule: "required")) }
            return
        }
        if let t = rule.type, !isType(t) {
            found.append(SchemaViolation(line: line, field: name, rule: "type:\(t.rawValue)"))
            return
        }
        guard rule.allowed != nil || regexes[i] != nil else { return }
        let value = text().map { String(decoding: $0, as: UTF8.self) }
        if let allowed = rule.allowed, !(value.map(allowed.contains) ?? false) {
            found.append(SchemaViolation(line: line, field: name, rule: "enum"))
        }
        if let re = regexes[i] {
            let s = value ?? ""
            if re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) == nil {
                found.append(SchemaViolation(line: line, field: name, rule: "regex"))
            }
        }
    }

    private func route(_ raw: UnsafeRawBufferPointer, _ line: Int64, _ found: [SchemaViolation], _ out: inout ValidatedRecords, readable: Bool = true) {
        if found.isEmpty {
            out.accepted.append(contentsOf: raw)
        } else if !readable || found.contains(where: { Self.isWholeRecord($0.rule) }) {
            out.unparsed.append(contentsOf: raw)
            if raw.last != 0x0A { out.unparsed.append(0x0A) }
            out.rejectedRecords += 1
            out.unparsedRecords += 1
            out.violations += found
        } else {
            out.rejected.append(contentsOf: raw)
            if raw.last != 0x0A { out.rejected.append(0x0A) }
            out.rejectedRecords += 1
            out.violations += found
        }
    }
}
