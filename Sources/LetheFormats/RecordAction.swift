public import LetheCore

/// What erasure does to one field of a record (crypto-shredding adds `.encrypt(KeyRef)` later).
public enum FieldAction: Sendable, Hashable {
    /// The field becomes null.
    case null
    /// The field's value is replaced by a fixed marker of the same type.
    case redact
    /// The field's value is replaced by its keyed hash (a stable pseudonym under `EraseActions.maskKey`).
    case hash
    /// The field becomes empty (empty string, zero-length bytes).
    case blank
    /// The field's value is replaced by this text.
    case literal(String)

    /// The action a `mask:` rule of `lethe.yaml` asks for.
    public init(_ rule: MaskRule) {
        switch rule {
        case .null: self = .null
        case .redact: self = .redact
        case .hash: self = .hash
        case .blank: self = .blank
        case .literal(let s): self = .literal(s)
        }
    }
}

/// What erasure does to one subject's records.
public enum RecordAction: Sendable, Hashable {
    /// The record goes (every format supports it).
    case drop
    /// The record stays with these fields changed (its other fields byte for byte).
    case transform([FieldPath: FieldAction])
    /// The record stays with every field blanked (a row count that must not change).
    case blankRecord

    /// Its name in messages.
    public var name: String {
        switch self {
        case .drop: return "drop"
        case .transform: return "transform"
        case .blankRecord: return "blank-record"
        }
    }
}

/// What an erase does, by subject key. The journal stores the subject keys only: the action comes
/// from the dataset when the step is executed.
public struct EraseActions: Sendable {
    public var bySubject: [SubjectKey: RecordAction]
    /// The key of `FieldAction.hash` pseudonyms (required when an action hashes a field).
    public var maskKey: MaskKey?
    public init(bySubject: [SubjectKey: RecordAction], maskKey: MaskKey? = nil) {
        self.bySubject = bySubject
        self.maskKey = maskKey
    }

    /// Whether every action is `.drop`.
    public var dropsOnly: Bool { bySubject.values.allSatisfy { $0 == .drop } }

    /// Every one of `keys` dropped (what every erase did before record actions).
    public static func drop(_ keys: Set<SubjectKey>) -> EraseActions {
        EraseActions(bySubject: Dictionary(uniqueKeysWithValues: keys.map { ($0, .drop) }))
    }

    /// The keys to drop, when every action is `.drop`; otherwise `.unsupported` naming the format and
    /// the action (no format applies another action yet, and none is reachable from `lethe.yaml`).
    public func dropOnly(format: String, at location: String? = nil) throws -> Set<SubjectKey> {
        var keys = Set<SubjectKey>()
        keys.reserveCapacity(bySubject.count)
        for (key, action) in bySubject {
            guard case .drop = action else {
                throw LetheError(
                    .unsupported, "the \(format) format cannot apply the record action `\(action.name)` yet: only `drop` is supported", at: location)
            }
            keys.insert(key)
        }
        return keys
    }
}
