import Foundation
public import LetheCore
import Parquet

/// Checks a Parquet file's rows against a dataset's `schema:` (the Parquet side of `SchemaValidator`;
/// docs/masking.md, "Validation and quarantine"). A rule names a flat leaf column (a top-level column,
/// or a leaf of a struct outside any list or map); its values are checked by their canonical text
/// (`CanonicalText`: a DATE is `2021-01-03`), each dictionary entry once per chunk:
///
/// * `type`: from the column's physical and logical types, value by value — `string` a BYTE_ARRAY or
///   FIXED_LEN_BYTE_ARRAY column that is not a decimal or float16 (binary included, as a CSV field is
///   text), or a DATE, TIME, TIMESTAMP, INT96 or UUID column (the text JSON would carry); `int` an
///   integer column, or a decimal value without a fractional part; `number` an integer, decimal or
///   finite floating-point value; `bool` a BOOLEAN column; `object` and `array` never (rules cover
///   leaf columns). A column of the wrong type therefore fails every row holding a value.
/// * `required`: not null. A column the file lacks breaks rule `column` in every row (as a CSV header
///   lacking the field), unless the object's Hive folder gives the field (`constants`).
/// * `enum`, `regex`: the canonical text is one of the list / matches the whole expression.
///
/// Rows that fail go to `rejected` as a Parquet file of those rows (the same schema, codec and
/// encodings: `ParquetFile.rewrite(droppingRows:)` of the others) and the rest to `accepted` (the
/// input's bytes when every row passes). Violations name the row as `line`: its 1-based ordinal in
/// the file. Never a value.
public struct ParquetSchemaValidator {
    private let rules: [FieldRule]
    private let regexes: [NSRegularExpression?]
    private let objectName: String

    /// What `protect` and `ingest` add: a row that holds a value in a PII column but has no subject
    /// cannot be protected (no key); with a schema it is quarantined (rule `subject`, the PII field)
    /// instead of stopping the file.
    public struct SubjectCheck {
        public var pii: [FieldPath]
        public var keyer: SubjectKeyer
        /// The subject's options, resolved for the object (a Hive folder's constant parts).
        public var options: FormatOptions
        public init(pii: [FieldPath], keyer: SubjectKeyer, options: FormatOptions) {
            self.pii = pii
            self.keyer = keyer
            self.options = options
        }
    }

    public init(schema: DatasetSchema, objectName: String) throws {
        self.rules = schema.fields
        self.regexes = try schema.fields.map { r in
            try r.regex.map { try NSRegularExpression(pattern: "^(?:" + $0 + ")$") }
        }
        self.objectName = objectName
    }

    /// Splits `bytes` (one whole Parquet file) into the rows that pass and those that fail.
    /// `constants`: fields the object's Hive folder gives (checked as the value of every row when the
    /// file lacks the column).
    public func validate(
        _ bytes: [UInt8], constants: [FieldPath: PartitionValue] = [:], subjectCheck: SubjectCheck? = nil
    ) throws -> ValidatedRecords {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: objectName) } catch { throw ParquetFormat.lethe(error, objectName) }
        var out = ValidatedRecords()
        out.records = file.numRows
        let n = Int(file.numRows)
        // (row, rule order, rule): sorted by row then rule at the end, as a JSON Lines file lists them.
        var found: [(row: Int64, order: Int, field: String, rule: String)] = []
        var fails = [Bool](repeating: false, count: n)
        func add(_ row: Int64, _ order: Int, _ field: String, _ rule: String) {
            found.append((row, order, field, rule))
            fails[Int(row)] = true
        }
        do {
            for (i, rule) in rules.enumerated() {
                let name = rule.field.description
                let path = rule.field.components.map { String(decoding: $0, as: UTF8.self) }
                guard let desc = file.schema.column(path) else {
                    if file.schema.columns.contains(where: { $0.path.starts(with: path) && $0.path.count > path.count }) {
                        throw LetheError(
                            .unsupported,
                            "schema field `\(name)` is a group (struct, list or map) in this file: Parquet rules cover leaf columns (name them, e.g. `\(name).…`)",
                            at: objectName)
                    }
                    if let c = constants[rule.field] {
                        // The Hive folder's value, the same in every row.
                        let broken: [String]
                        switch c {
                        case .value(let b): broken = b.withUnsafeBytes { check(rule, i, form: .raw, $0) }
                        case .null: broken = rule.required ? ["required"] : []
                        }
                        for r in broken { for row in 0..<file.numRows { add(row, i, name, r) } }
                        continue
                    }
                    for row in 0..<file.numRows { add(row, i, name, "column") }
                    continue
                }
                guard desc.isFlat else {
                    throw LetheError(
                        .unsupported, "schema field `\(name)` is inside a list or map: Parquet rules cover flat columns", at: objectName)
                }
                let form = CanonicalText.form(of: desc)
                for g in 0..<file.rowGroups.count {
                    // A dictionary entry's verdict, once per chunk.
                    var byEntry: [Int: [String]] = [:]
                    try file.scanColumnEntries(desc.index, rowGroup: g) { row, entry, value in
                        guard let value else {
                            if rule.required { add(row, i, name, "required") }
                            return
                        }
                        let broken: [String]
                        if entry >= 0, let known = byEntry[entry] {
                            broken = known
                        } else {
                            broken = check(rule, i, form: form, value)
                            if entry >= 0 { byEntry[entry] = broken }
                        }
                        for r in broken { add(row, i, name, r) }
                    }
                }
            }
            if let s = subjectCheck { try checkSubjects(file, s, add) }
        } catch let e as LetheError {
            throw e
        } catch {
            throw ParquetFormat.lethe(error, objectName)
        }
        guard !found.isEmpty else {
            out.accepted = bytes
            return out
        }
        found.sort { ($0.row, $0.order) < ($1.row, $1.order) }
        out.violations = found.map { SchemaViolation(line: $0.row + 1, field: $0.field, rule: $0.rule) }
        var failing: [Int64] = [], passing: [Int64] = []
        for r in 0..<n { if fails[r] { failing.append(Int64(r)) } else { passing.append(Int64(r)) } }
        out.rejectedRecords = Int64(failing.count)
        do {
            var kept = InMemorySink()
            _ = try file.rewrite(droppingRows: failing, to: &kept)
            var rejected = InMemorySink()
            _ = try file.rewrite(droppingRows: passing, to: &rejected)
            out.accepted = kept.bytes
            out.rejected = rejected.bytes
        } catch {
            throw ParquetFormat.lethe(error, objectName)
        }
        return out
    }

    /// The rules one value breaks (`type:…`, `enum`, `regex`; empty when it passes).
    private func check(_ rule: FieldRule, _ i: Int, form: CanonicalText.Form, _ value: UnsafeRawBufferPointer) -> [String] {
        if let t = rule.type, !Self.holds(t, form: form, value) { return ["type:\(t.rawValue)"] }
        guard rule.allowed != nil || regexes[i] != nil else { return [] }
        let s = String(decoding: value, as: UTF8.self)
        var broken: [String] = []
        if let allowed = rule.allowed, !allowed.contains(s) { broken.append("enum") }
        if let re = regexes[i], re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) == nil { broken.append("regex") }
        return broken
    }

    /// Whether a value of a column of text form `form` (its canonical text `value`) is of type `t`.
    static func holds(_ t: FieldRule.ValueType, form: CanonicalText.Form, _ value: UnsafeRawBufferPointer) -> Bool {
        switch t {
        case .string:
            switch form {
            case .raw, .uuid, .date, .time, .timestamp, .int96, .int96Micros: return true
            case .signed, .unsigned, .boolean, .float, .double, .float16, .decimal: return false
            }
        case .int:
            switch form {
            case .signed, .unsigned: return true
            case .decimal: return !value.contains(UInt8(ascii: "."))
            default: return false
            }
        case .number:
            switch form {
            case .signed, .unsigned, .decimal: return true
            case .float, .double, .float16: return Double(String(decoding: value, as: UTF8.self)).map(\.isFinite) ?? false
            default: return false
            }
        case .bool: return form == .boolean
        case .object, .array: return false
        }
    }

    /// Rule `subject` on each PII field holding a value in a row without a subject.
    private func checkSubjects(_ file: ParquetFile, _ s: SubjectCheck, _ add: (Int64, Int, String, String) -> Void) throws {
        var keyed = [Bool](repeating: false, count: Int(file.numRows))
        _ = try ParquetFormat().keys(file, objectName, s.options, s.keyer) { row, _ in keyed[Int(row)] = true }
        for (pi, f) in s.pii.enumerated() where !s.options.subject.fields.contains(f) {
            let path = f.components.map { String(decoding: $0, as: UTF8.self) }
            // Columns protect refuses (groups, lists, other types) are left to its own error.
            guard let desc = file.schema.column(path), desc.isFlat else { continue }
            for g in 0..<file.rowGroups.count {
                try file.scanColumn(desc.index, rowGroup: g) { row, value in
                    if value != nil && !keyed[Int(row)] { add(row, rules.count + pi, f.description, "subject") }
                }
            }
        }
    }
}
