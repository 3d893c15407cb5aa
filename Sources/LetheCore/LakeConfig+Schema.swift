import Foundation
import Yams

/// What a valid record of a dataset holds (`schema:` in `lethe.yaml`), checked by `lethe validate`
/// (and by `protect`/`ingest`): field → type, required, enum, regex.
public struct DatasetSchema: Sendable, Hashable {
    /// The rules, in the order the config lists them.
    public var fields: [FieldRule]
    public init(fields: [FieldRule]) { self.fields = fields }
}

/// The rules of one field.
public struct FieldRule: Sendable, Hashable {
    /// A value's type. JSON Lines: the JSON kind (`int` is a number without fraction or exponent);
    /// CSV: whether the text parses as one (`bool` is `true`/`false`).
    public enum ValueType: String, Sendable, Hashable, CaseIterable {
        case string, int, number, bool, object, array
    }

    public var field: FieldPath
    public var type: ValueType?
    /// The field must be present and not null (an empty CSV field is missing).
    public var required = false
    /// The value's text must be one of these.
    public var allowed: [String]?
    /// The value's text must match this regular expression (anchored at both ends).
    public var regex: String?
    /// The config line, for messages.
    public var line: Int = 0

    public init(field: FieldPath, type: ValueType? = nil, required: Bool = false, allowed: [String]? = nil, regex: String? = nil) {
        self.field = field; self.type = type; self.required = required; self.allowed = allowed; self.regex = regex
    }
}

extension ConfigReader {
    /// `schema: {field: {type: string|int|number|bool|object|array, required: true, enum: [..], regex: ..}}`.
    func schema(_ v: Node) throws -> DatasetSchema {
        guard let m = v.mapping else {
            throw err("`schema` must be a mapping of field to rules (e.g. `schema: {user_id: {type: string, required: true}}`)", v)
        }
        var rules: [FieldRule] = []
        for (k, r) in m {
            guard let name = k.scalar?.string, !name.isEmpty else { throw err("`schema`: keys must be field names", k) }
            let field = try fieldPath(name, k, "schema")
            if rules.contains(where: { $0.field == field }) { throw err("`schema` names the field `\(name)` twice", k) }
            guard let rm = r.mapping else { throw err("`schema.\(name)` must be a mapping (type, required, enum, regex)", r) }
            var rule = FieldRule(field: field)
            rule.line = k.mark?.line ?? 0
            for (rk, rv) in rm {
                switch rk.scalar?.string {
                case "type":
                    let t = try str(rv, "schema.\(name).type")
                    guard let vt = FieldRule.ValueType(rawValue: t) else {
                        throw err(
                            "`schema.\(name).type`: unknown type `\(t)` (known: \(FieldRule.ValueType.allCases.map(\.rawValue).joined(separator: ", ")))", rv)
                    }
                    rule.type = vt
                case "required":
                    switch rv.scalar?.string {
                    case "true": rule.required = true
                    case "false": rule.required = false
                    default: throw err("`schema.\(name).required` must be true or false", rv)
                    }
                case "enum":
                    guard let seq = rv.sequence, !seq.isEmpty else { throw err("`schema.\(name).enum` must be a non-empty list of values", rv) }
                    rule.allowed = try seq.map { try str($0, "schema.\(name).enum") }
                case "regex":
                    let text = try str(rv, "schema.\(name).regex")
                    do { _ = try NSRegularExpression(pattern: text) } catch {
                        throw err("`schema.\(name).regex` is not a valid regular expression", rv)
                    }
                    rule.regex = text
                default:
                    throw err("unknown key `\(rk.scalar?.string ?? "?")` in `schema.\(name)` (known: type, required, enum, regex)", rk)
                }
            }
            rules.append(rule)
        }
        return DatasetSchema(fields: rules)
    }
}

extension DatasetSpec {
    /// The lake folder `_quarantine/` (`protect`, `ingest` and `validate` write rejected records there).
    /// No dataset's path may lie in it.
    public static let quarantineRoot = "_quarantine"

    /// `_quarantine/<name>/`: where this dataset's rejected records are kept (JSON Lines, CSV and
    /// Parquet datasets; nil for Delta tables, whose files are written by commits). The quarantine is part of the dataset for forget requests:
    /// its `records.*` objects are indexed, erased and verified as the dataset's own objects, and its
    /// other files are searched for raw ids as the dataset's hidden files are (docs/masking.md).
    public var quarantinePrefix: String? {
        format == .jsonl || format == .csv || format == .parquet ? "\(Self.quarantineRoot)/\(name)/" : nil
    }

    /// Whether lake key `key` is one of the dataset's objects: below its path, or in its quarantine.
    public func holds(_ key: String) -> Bool {
        key == path || key.hasPrefix(path + "/") || (quarantinePrefix.map { key.hasPrefix($0) } ?? false)
    }

    /// Whether a key in the dataset's quarantine holds records readable as the dataset's records
    /// (`records.jsonl`, `records.csv`, `records.parquet`); the quarantine's other files (reasons, unparsed records) are
    /// not records.
    public func isQuarantineRecords(_ key: String) -> Bool {
        guard let p = quarantinePrefix, key.hasPrefix(p) else { return false }
        let last = key.split(separator: "/").last ?? ""
        return last == "records.jsonl" || last == "records.csv" || last == "records.parquet"
    }
}
