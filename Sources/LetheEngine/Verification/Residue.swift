import LetheCore
import LetheFormats

/// Searches for a raw subject id where records are not read: object keys (a `user_id=…/` folder, a
/// file named after the id), hidden files and other bytes. Used by verification and by the sweep.
enum Residue {
    /// Raw ids shorter than this are not searched for as bytes (they would match at random). Longer ones
    /// match as whole tokens (`NeedleSet(wordBounded:)`): `179600` is not found in `1796004080592`.
    static let minimumNeedle = 6

    /// True when an object key names a subject: holds its id as a whole token (ids of at least
    /// `minimumNeedle` bytes), has a path segment that is the id, or a Hive folder `field=value`
    /// of one of the subject's own `fields` whose value (URL-decoded) is the id. A folder of another
    /// column (`country=DE`) says nothing about the subject, whatever its value. `fields` nil: any
    /// folder name counts.
    static func key(_ key: String, names subject: SubjectID, fields: [FieldPath]? = nil) -> Bool {
        let id = subject.bytes
        guard !id.isEmpty, !id.contains(SubjectID.partSeparator) else { return false }
        let k = Array(key.utf8)
        if id.count >= minimumNeedle, !NeedleSet([id], wordBounded: true).matches(in: k).isEmpty { return true }
        for seg in k.split(separator: UInt8(ascii: "/")) where Array(seg) == id { return true }
        for (field, value) in FormatOptions.hiveValues(key, below: "") where value == .value(id) {
            if fields?.contains(field) ?? true { return true }
        }
        return false
    }

    /// `key(_:names:fields:)` for many subjects at once: built once per batch, then each key is
    /// searched once (one needle pass, one split, one Hive parse) instead of once per subject.
    struct KeyNaming {
        let needles: NeedleSet
        /// Raw id bytes → the names (e.g. request ids) of the subjects with that id.
        let byID: [[UInt8]: [String]]
        let fields: [FieldPath]?
        /// The lengths of the ids: a key's path segment of another length cannot be one.
        let lengths: Set<Int>

        init(_ subjects: [String: SubjectID], fields: [FieldPath]?) {
            var byID: [[UInt8]: [String]] = [:]
            for (name, subject) in subjects {
                let id = subject.bytes
                guard !id.isEmpty, !id.contains(SubjectID.partSeparator) else { continue }
                byID[id, default: []].append(name)
            }
            self.byID = byID
            self.lengths = Set(byID.keys.map(\.count))
            self.needles = NeedleSet(byID.keys.filter { $0.count >= Residue.minimumNeedle }, wordBounded: true)
            self.fields = fields
        }

        /// The names of the subjects `key` names, as `Residue.key(key, names:fields:)` says, sorted.
        func subjects(namedBy key: String) -> [String] {
            guard !byID.isEmpty else { return [] }
            let k = Array(key.utf8)
            var ids = needles.matches(in: k)
            for seg in k.split(separator: UInt8(ascii: "/")) where lengths.contains(seg.count) && byID[Array(seg)] != nil {
                ids.insert(Array(seg))
            }
            // A Hive-style `field=value` folder needs an `=`.
            for (field, value) in k.contains(UInt8(ascii: "=")) ? FormatOptions.hiveValues(key, below: "") : [:] {
                guard case .value(let v) = value, byID[v] != nil, fields?.contains(field) ?? true else { continue }
                ids.insert(v)
            }
            return ids.flatMap { byID[$0] ?? [] }.sorted()
        }
    }

    /// `key(_:names:fields:)` with fields given as dotted names.
    static func key(_ key: String, names subject: SubjectID, fields: [String]) -> Bool {
        Self.key(key, names: subject, fields: fields.map { FieldPath($0) })
    }

    /// The needles (each at least `minimumNeedle` bytes) that occur in `hay`.
    static func search(_ hay: [UInt8], for needles: [[UInt8]]) -> Set<[UInt8]> {
        NeedleSet(needles.filter { $0.count >= minimumNeedle }, wordBounded: true).matches(in: hay)
    }
}
