import Crypto
import LetheCore
import LetheFormats

/// What an object dataset's index entries were produced under: the format, the subject fields,
/// their normalisation, the CSV delimiter, where partition values come from, and the rules of the
/// index itself. Index entries made under another spec say nothing about the dataset as configured
/// now: per-run verification trusts the index of a dataset only when the fingerprint recorded at
/// indexing (`index_spec.<dataset>`) equals the current one, and `index` rescans a dataset whose
/// recorded fingerprint is missing or different.
enum IndexSpec {
    /// Bumped whenever what a scan records for the same bytes changes (ordinals, canonical values, keys).
    static let rules = 1

    /// The setting holding the fingerprint a dataset was last indexed under.
    static func setting(_ dataset: String) -> String { "index_spec.\(dataset)" }

    /// SHA-256 (hex) of the spec of dataset `d` with its scan options `o`; nil without a subject.
    static func fingerprint(_ d: DatasetSpec, options o: FormatOptions?) -> String? {
        guard let o, let subject = d.subject else { return nil }
        var text = "rules=\(rules)\nformat=\(d.format.rawValue)\npath=\(d.path)\nnormalization=\(d.normalization)\n"
        text += "fields=" + subject.fields.map { $0.components.map { Hex.encode($0) }.joined(separator: ".") }.joined(separator: ",") + "\n"
        text += "delimiter=\(o.delimiter)\n"
        switch o.partitions {
        case .none: text += "partitions=none\n"
        case .hive(let prefix): text += "partitions=hive:\(prefix)\n"
        case .perObject: text += "partitions=per-object\n"
        }
        return Hex.encode(Array(SHA256.hash(data: Array(text.utf8))))
    }
}
