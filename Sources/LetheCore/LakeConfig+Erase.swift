import Yams

/// What erasure does to a subject's records in a dataset (`erase:` in `lethe.yaml`).
public enum EraseMode: String, Sendable, Hashable, CaseIterable {
    /// The records go (the default).
    case delete
    /// The records stay with the subject field(s) and the `pii` fields replaced as `mask:` says.
    case mask
    /// The records stay as empty records: JSON `{}`, a CSV row of empty fields, a Parquet/Delta row of nulls.
    case blank

    /// The verb a plan or report uses for the records this mode touches.
    public var verb: String {
        switch self {
        case .delete: return "erased"
        case .mask: return "masked"
        case .blank: return "blanked"
        }
    }
}

/// How `erase: mask` replaces one field's value (`mask: {email: null, ip: redact, user_id: hash}`).
public enum MaskRule: Sendable, Hashable, CustomStringConvertible {
    /// JSON `null`, an empty CSV field, a Parquet null (the column must be optional).
    case null
    /// The redaction marker `[redacted]` (a string column; a number column cannot hold it).
    case redact
    /// A stable pseudonym: the value's HMAC-SHA-256 under the mask key (`MaskKey`), 32 hex digits.
    case hash
    /// An empty string.
    case blank
    /// A fixed text (`{literal: "n/a"}`).
    case literal(String)

    /// The redaction marker.
    public static let redactionMarker = "[redacted]"

    public var description: String {
        switch self {
        case .null: return "null"
        case .redact: return "redact"
        case .hash: return "hash"
        case .blank: return "blank"
        case .literal(let s): return "literal(\(s.utf8.count) bytes)"
        }
    }
}

extension DatasetSpec {
    /// The fields a mask replaces in a subject's record, each with its rule: every subject field and
    /// every `pii` field (rule from `mask:`, null when unlisted), then any other field `mask:` names.
    public var maskedFields: [(field: FieldPath, rule: MaskRule)] {
        var out: [(FieldPath, MaskRule)] = []
        var seen = Set<FieldPath>()
        for f in (subject?.fields ?? []) + pii + mask.keys.sorted(by: { $0.description < $1.description }) where seen.insert(f).inserted {
            out.append((f, mask[f] ?? .null))
        }
        return out
    }
}

/// The key of the mask's pseudonyms: derived from the installation secret under a label of its own,
/// so a pseudonym is never a subject key (the index's HMAC) and cannot be matched against the index.
public struct MaskKey: Sendable {
    private let hasher: SubjectHasher
    /// The label the key is derived under (versioned: a new label makes new pseudonyms).
    public static let label = Array("lethe/mask-pseudonym/v1".utf8)

    /// The mask key of an installation whose subject keys `installation` computes.
    public init(installation: SubjectHasher) {
        hasher = SubjectHasher(secret: installation.key(forBytes: MaskKey.label).bytes)
    }

    /// The pseudonym of `value`: 32 lowercase hex digits (the first 128 bits of the HMAC).
    public func pseudonym(_ value: some Collection<UInt8>) -> [UInt8] {
        let key = hasher.key(forBytes: Array(value))
        return Array(Hex.encode(key.bytes.prefix(16)).utf8)
    }

    /// The pseudonym as a 64-bit integer (for integer columns: the first 63 bits of the HMAC, not negative).
    public func pseudonymInteger(_ value: some Collection<UInt8>) -> Int64 {
        let b = hasher.key(forBytes: Array(value)).bytes
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
        return Int64(bitPattern: v & 0x7FFF_FFFF_FFFF_FFFF)
    }
}

extension ConfigReader {
    /// `erase: delete | mask | blank`.
    func eraseMode(_ v: Node) throws -> EraseMode {
        let text = try str(v, "erase")
        guard let m = EraseMode(rawValue: text) else {
            throw err("`erase` must be `delete` (the default: records go), `mask` (fields replaced as `mask:` says) or `blank` (the record kept empty)", v)
        }
        return m
    }

    /// `mask: {field: null | redact | hash | blank | {literal: TEXT}}`.
    func maskRules(_ v: Node) throws -> [FieldPath: MaskRule] {
        guard let m = v.mapping else {
            throw err("`mask` must be a mapping of field to rule (e.g. `mask: {email: null, ip: redact, user_id: hash}`)", v)
        }
        var rules: [FieldPath: MaskRule] = [:]
        for (k, r) in m {
            guard let name = k.scalar?.string, !name.isEmpty else { throw err("`mask`: keys must be field names", k) }
            let field = try fieldPath(name, k, "mask")
            if rules[field] != nil { throw err("`mask` names the field `\(name)` twice", k) }
            if let lit = r.mapping {
                guard lit.count == 1, let only = lit.first, only.key.scalar?.string == "literal", let text = only.value.scalar?.string else {
                    throw err("`mask.\(name)`: a fixed value is written `{literal: TEXT}`", r)
                }
                rules[field] = .literal(text)
                continue
            }
            guard let s = r.scalar?.string else { throw err("`mask.\(name)` must be null, redact, hash, blank or {literal: TEXT}", r) }
            switch s {
            case "null", "~", "", "Null", "NULL": rules[field] = .null
            case "redact": rules[field] = .redact
            case "hash": rules[field] = .hash
            case "blank": rules[field] = .blank
            default:
                throw err("`mask.\(name)`: unknown rule `\(s)` (known: null, redact, hash, blank, {literal: TEXT})", r)
            }
        }
        return rules
    }

    /// Checks `erase`/`mask` against the rest of the dataset entry and stores them in `spec`.
    func applyErase(_ e: DatasetEntry, to spec: inout DatasetSpec, _ item: Node) throws {
        if let (mode, node) = e.erase {
            if mode != .delete && e.subject == nil {
                throw err("dataset `\(spec.name)`: `erase: \(mode.rawValue)` needs a `subject` (whose records to \(mode.rawValue))", node)
            }
            if mode != .delete && e.deletesFrom != nil {
                throw err("dataset `\(spec.name)`: `erase: \(mode.rawValue)` and `deletes_from: change_feed` do not go together (the other tool deletes)", node)
            }
            spec.erase = mode
        }
        if let (node, rules) = e.mask {
            guard spec.erase == .mask else {
                throw err("dataset `\(spec.name)`: `mask` needs `erase: mask` (it says how the subject's fields are replaced)", node)
            }
            let known = Set((e.subject?.fields ?? []) + e.pii)
            for f in rules.keys where !known.contains(f) {
                throw err("dataset `\(spec.name)`: `mask` names `\(f)`, which is neither a `subject` nor a `pii` field", node)
            }
            spec.mask = rules
        }
        if let schema = e.schema { spec.schema = schema }
    }
}
