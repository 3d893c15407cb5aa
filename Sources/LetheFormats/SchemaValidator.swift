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
    /// The records that failed, as they were (after the CSV header), in order.
    public var rejected: [UInt8] = []
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

    /// Nil-free validator of `schema` for `format` (`jsonl` or `csv`; `.unsupported` otherwise).
    public init(schema: DatasetSchema, format: DatasetSpec.Format, delimiter: UInt8 = UInt8(ascii: ","), objectName: String) throws {
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
    }

    /// Splits `bytes` (one object, uncompressed) into accepted and rejected records with the violations.
    public func validate(_ bytes: [UInt8]) throws -> ValidatedRecords {
        var out = ValidatedRecords()
        if format == .jsonl { try validateLines(bytes, &out) } else { try validateCSV(bytes, &out) }
        return out
    }

    // MARK: JSON Lines

    private func validateLines(_ bytes: [UInt8], _ out: inout ValidatedRecords) throws {
        let scanner = JSONFieldScanner(paths: rules.isEmpty ? [FieldPath(components: [[0xFF]])] : rules.map(\.field))
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
            route(line, number, found, &out)
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
                var names: [[UInt8]] = []
                for f in fields { names.append(f.withText(in: record.buffer, scratch: &scratch) { Array($0) }) }
                if names.first?.starts(with: [0xEF, 0xBB, 0xBF]) == true { names[0].removeFirst(3) }
                columns = rules.map { r in
                    names.firstIndex(of: Array(r.field.components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").utf8))
                }
                headerCount = fields.count
                out.accepted.append(contentsOf: record.raw)
                out.rejected.append(contentsOf: record.raw)
                return
            }
            out.records += 1
            found.removeAll(keepingCapacity: true)
            if fields.count != headerCount {
                found.append(SchemaViolation(line: record.line, field: "-", rule: "fields"))
            } else {
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
            route(record.raw, record.line, found, &out)
        }
        try reader.feed(bytes, handle)
        try reader.finish(handle)
    }

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

    private func route(_ raw: UnsafeRawBufferPointer, _ line: Int64, _ found: [SchemaViolation], _ out: inout ValidatedRecords) {
        if found.isEmpty {
            out.accepted.append(contentsOf: raw)
        } else {
            out.rejected.append(contentsOf: raw)
            if raw.last != 0x0A { out.rejected.append(0x0A) }
            out.rejectedRecords += 1
            out.violations += found
        }
    }
}
