public import LetheCore
import LetheFormats

/// Warnings for ids typed in a form a typed subject column never holds.
///
/// Subjects are matched by their canonical text (docs/formats.md): `3.50` in a decimal(5,2)
/// column, `2021-01-03T04:05:06Z` in a UTC timestamp column, `1000` in an integer column.
/// Nothing typed is normalised, so `lethe forget 3.5` files a request that can find nothing
/// there. `canonicalHints(for:)` says so, per dataset and column, with the form expected.
///
/// The hints hold the id as typed (and its canonical form): they are for the user's own
/// terminal (stderr) only — never logged, audited or stored.
public struct CanonicalHint: Sendable, Equatable, CustomStringConvertible {
    public var dataset: String
    public var column: String
    /// The column's logical type, in words (`decimal(scale 2)`, `timestamp`).
    public var type: String
    /// The canonical form of the id for this column, when it has one (`3.50`); nil when the
    /// id cannot be a value of the column at all.
    public var suggestion: String?
    /// An example of the column's canonical form, for ids without a suggestion.
    public var example: String

    public var description: String {
        let head = "dataset `\(dataset)`, column `\(column)` (\(type)) holds values in canonical form"
        if let suggestion { return "\(head): did you mean \(suggestion)? (the id as typed matches nothing there)" }
        return "\(head), such as \(example): the id as typed cannot be one of them and matches nothing there"
    }
}

extension Lethe {
    /// For each dataset whose subject column is typed (Parquet, Delta), the columns for which
    /// `subject`'s part as typed is not the canonical form of any value (see `CanonicalHint`).
    /// Best effort: a dataset whose types cannot be read gives no hint.
    public func canonicalHints(for subject: SubjectID) async -> [CanonicalHint] {
        await canonicalHints(for: [subject])[0]
    }

    /// `canonicalHints(for:)` of many subjects, reading each dataset's types once. A column the id
    /// cannot be a value of is named only when no dataset takes the id as typed (an id meant for
    /// another dataset is not worth a warning); a closer canonical form is always suggested.
    public func canonicalHints(for subjects: [SubjectID]) async -> [[CanonicalHint]] {
        var datasets: [(DatasetSpec, SubjectSpec, [Int: CanonicalType])] = []
        for d in config.datasets {
            guard let spec = d.subject else { continue }
            datasets.append((d, spec, (try? await subjectColumnTypes(d, spec)) ?? [:]))
        }
        guard datasets.contains(where: { !$0.2.isEmpty }) else { return subjects.map { _ in [] } }
        return subjects.map { subject in
            guard let parts = subject.logParts else { return [] }  // raw bytes (`--hex`): no typed text to check
            var suggested: [CanonicalHint] = [], impossible: [CanonicalHint] = []
            var taken = false
            for (d, spec, types) in datasets where spec.fields.count == parts.count {
                var accepts = true
                for (i, field) in spec.fields.enumerated() {
                    guard let type = types[i], let hint = Self.hint(parts[i], type) else { continue }
                    accepts = false
                    let h = CanonicalHint(
                        dataset: d.name, column: field.description, type: type.description,
                        suggestion: hint.suggestion, example: hint.example)
                    if hint.suggestion != nil { suggested.append(h) } else if hint.lookalike { impossible.append(h) }
                }
                taken = taken || accepts
            }
            return suggested + (taken ? [] : impossible)
        }
    }

    /// The typed subject columns of a dataset, by index in its subject: Delta from the table's schema,
    /// Parquet from the footer of one indexed object; none for JSON Lines and CSV (text as written).
    func subjectColumnTypes(_ d: DatasetSpec, _ spec: SubjectSpec) async throws -> [Int: CanonicalType] {
        try await driver(for: d).subjectColumnTypes(spec, self)
    }

    /// The suggestion (or, when there is none, an example) for `text` typed for a column of `type`;
    /// nil when `text` is already canonical for it (or the type has no typed text). `lookalike`: the
    /// text looks like a value of the type (`3.555` for two places, `2021-13-01` for a date), so saying it
    /// cannot be one is worth a word; an id meant for another dataset (`u-1`) is not.
    static func hint(_ text: String, _ type: CanonicalType) -> (suggestion: String?, example: String, lookalike: Bool)? {
        switch type {
        case .string, .binary: return nil
        default: break
        }
        if let canonical = CanonicalValue.fromText(text, as: type) {
            let c = String(decoding: canonical, as: UTF8.self)
            return c == text ? nil : (c, example(type), true)
        }
        // Integers written with an exponent or a zero fraction (`1e3`, `42.0`).
        if case .integer = type, let v = Double(text), v.isFinite, v == v.rounded(), abs(v) < 9.0e15 {
            return (String(Int64(v)), example(type), true)
        }
        return (nil, example(type), looksLike(text, type))
    }

    static func looksLike(_ text: String, _ type: CanonicalType) -> Bool {
        let digitFirst = text.first.map { $0.isNumber || $0 == "-" || $0 == "+" } ?? false
        switch type {
        case .integer, .decimal, .float, .double: return Double(text) != nil
        case .date, .timestamp: return digitFirst && text.contains("-")
        case .time: return digitFirst && text.contains(":")
        case .uuid: return text.filter(\.isHexDigit).count >= 32
        case .boolean, .string, .binary: return false
        }
    }

    static func example(_ type: CanonicalType) -> String {
        switch type {
        case .string, .binary: return "text"
        case .boolean: return "true"
        case .integer: return "42"
        case .decimal(let s): return s == 0 ? "42" : "3.5" + String(repeating: "0", count: max(0, s - 1))
        case .float, .double: return "1.5"
        case .date: return "2021-01-03"
        case .timestamp(_, let utc): return utc ? "2021-01-03T04:05:06Z" : "2021-01-03T04:05:06"
        case .time: return "04:05:06"
        case .uuid: return "123e4567-e89b-12d3-a456-426614174000"
        }
    }
}
