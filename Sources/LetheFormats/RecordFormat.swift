public import LetheCore
public import LetheStorage

/// What a scan found in one object.
public struct ScanSummary: Sendable, Equatable {
    /// Records read (data rows; a CSV header is not a record).
    public var records: Int64 = 0
    /// Records whose subject value is null (JSON `null`, empty CSV field): no subject, nothing to erase.
    public var recordsWithoutSubject: Int64 = 0
    /// Bytes of the stored object.
    public var bytes: Int64 = 0
    /// Keys of values the object holds where no record does (`RowsMatch.unreferenced`): Parquet
    /// dictionary entries no row references, for a subject read from one column. Residue of those subjects.
    public var unreferenced: [SubjectKey] = []
    public init() {}
}

/// What an erase pass did to one object.
public struct EraseOutcome: Sendable, Equatable {
    /// Records dropped, per subject key.
    public var dropped: [SubjectKey: Int64] = [:]
    /// Records kept with fields changed (`RecordAction.transform`, `.blankRecord`), per subject key.
    public var transformed: [SubjectKey: Int64] = [:]
    /// Records kept.
    public var kept: Int64 = 0
    /// The object after the write; nil when nothing was dropped (the object was left untouched)
    /// or when the object was removed because no record remained (formats that cannot hold zero rows).
    public var written: ObjectInfo?
    /// True when the object was deleted because no record remained.
    public var removed: Bool = false
    /// The ordinals (0-based, numbered as in the object that was read) of the records dropped,
    /// sorted: with `exact`, the new version's records are the old ones without these, in order,
    /// so its index entries can be derived (`PostingDerivation`) instead of scanned.
    public var droppedOrdinals: [Int64] = []
    /// True when the written version holds exactly the read version's records minus
    /// `droppedOrdinals` (or nothing was written because nothing matched). False when bytes a
    /// writer appended meanwhile were carried into it (`TailCarry`), or the format cannot tell:
    /// the new version must then be indexed by a scan.
    public var exact: Bool = false
    /// The record ordinals of the written version (new numbering, sorted, disjoint) that were
    /// encoded anew; every other record of it was copied byte for byte from the version read (a
    /// Parquet row group without a dropped row). Nil: the whole object was written anew (JSON Lines,
    /// CSV), or nothing was written. A verification that trusts the index for the read version
    /// re-reads only these ranges (see `RecordFormat.match(…rows:)`).
    public var rewrittenRows: [Range<Int64>]?
    public init() {}
    public var droppedTotal: Int64 { dropped.values.reduce(0, +) }
}

/// What an index says about one version of an object: the record ordinals (0-based) that hold
/// each subject key's postings. Rows of a 64-bit prefix collision may be listed too (an erase
/// checks each hinted row's full key); a key absent from `rows` has no record in that version.
/// Complete only for `version`: a format given an object at another version ignores the hint.
public struct EraseHint: Sendable, Hashable {
    /// The object version the index scanned.
    public var version: String
    /// Record ordinals by subject key.
    public var rows: [SubjectKey: [Int64]]
    public init(version: String, rows: [SubjectKey: [Int64]]) {
        self.version = version
        self.rows = rows
    }

    /// The hinted ordinals of `keys`, sorted, without duplicates (negative ordinals left out).
    public func ordinals(of keys: some Sequence<SubjectKey>) -> [Int64] {
        var out: [Int64] = []
        for k in keys { out += rows[k] ?? [] }
        out.sort()
        var unique: [Int64] = []
        unique.reserveCapacity(out.count)
        for r in out where r >= 0 && unique.last != r { unique.append(r) }
        return unique
    }

    /// The hint when it is complete for `object` (same version), else nil.
    public func applies(to object: ObjectInfo) -> Bool { object.version == version }
}

/// Which records a re-read or sweep looks for.
public enum SubjectMatcher: Sendable, Hashable {
    /// Records whose subject key is one of these.
    case keys(Set<SubjectKey>)
    /// Records whose canonical subject value (the bytes the keyer would hash, before its
    /// normalisation) is one of these raw ids. A caller that needs a normalised form (NFC)
    /// matched too puts that form in the set as well.
    case values(Set<[UInt8]>)
}

extension SubjectMatcher {
    /// The keys this matcher stands for (`.values`: the keys of the values under `keyer`).
    public func keys(_ keyer: SubjectKeyer) -> Set<SubjectKey> {
        switch self {
        case .keys(let k): return k
        case .values(let values): return Set(values.map { keyer.key($0) })
        }
    }
}

extension RowsMatch {
    /// Whether `row` lies in one of `ranges` (sorted or not).
    public static func contains(_ ranges: [Range<Int64>], _ row: Int64) -> Bool {
        ranges.contains { $0.contains(row) }
    }
}

/// One record a `SubjectMatcher` matched.
public struct SubjectMatch: Sendable, Hashable {
    /// The record's 0-based ordinal.
    public var row: Int64
    /// Its subject key.
    public var key: SubjectKey
    public init(row: Int64, key: SubjectKey) { self.row = row; self.key = key }
}

/// What `RecordFormat.match(…rows:)` found in the rows it read.
public struct RowsMatch: Sendable, Equatable {
    /// The records matched, in row order.
    public var matches: [SubjectMatch] = []
    /// Records read (those of the ranges asked for, or every record).
    public var rowsRead: Int64 = 0
    /// The object's records (all of them, read or not).
    public var records: Int64 = 0
    /// Bytes read from the store.
    public var bytesRead: Int64 = 0
    /// Subjects whose value the object holds where no record does: a Parquet dictionary entry of a
    /// chunk read that no row references (another writer, or an older erasure, left it). Residue all
    /// the same: the value's bytes are in the file.
    public var unreferenced: [SubjectKey] = []
    public init() {}
}

/// Per-object options a format reads from the dataset spec.
public struct FormatOptions: Sendable, Hashable {
    /// The subject field(s).
    public var subject: SubjectSpec
    /// CSV only: the field separator (default `,`).
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// Subject parts that are constant for the object being read: its partition values
    /// (canonical bytes, or `.null`), by field. A format takes such a part from here
    /// instead of looking the field up in each record. Filled per object from
    /// `partitions` by `resolved(for:)`, which every format calls first.
    public var constants: [FieldPath: PartitionValue] = [:]
    /// Where each object's partition values come from.
    public var partitions: PartitionSource = .none
    /// Subject fields whose timestamps the dataset's own schema declares UTC (true) or local
    /// (false), whatever the file's annotation says: a Delta `timestamp` column that an older
    /// writer stored with Parquet `isAdjustedToUTC=false` still renders `…Z` (Parquet only).
    public var timestampUTC: [FieldPath: Bool] = [:]
    /// Per object key: subject fields read from the records that an object without such a column
    /// holds as null (no subject), as Delta readers read a column a data file lacks. Set for a Delta
    /// file whose own log entry shows it was not partitioned by a subject partition column (written
    /// before the table's partitioning changed); any other file lacking a subject column is refused.
    public var absentIsNullByObject: [String: Set<FieldPath>] = [:]
    /// `absentIsNullByObject` of the object being read (filled by `resolved(for:)`).
    public var absentIsNull: Set<FieldPath> = []
    /// The dataset's personal fields besides the subject (`pii` in `lethe.yaml`): what a record
    /// action other than `.drop` changes. Carried, not used by `.drop`.
    public var pii: [FieldPath] = []
    public init(subject: SubjectSpec) { self.subject = subject }
}

/// A partition value: a subject part constant for a whole object.
public enum PartitionValue: Sendable, Hashable {
    /// The partition holds null (Delta `null`, Hive `__HIVE_DEFAULT_PARTITION__`): no subject.
    case null
    /// Canonical bytes (see docs/formats.md, "Canonical subject values").
    case value([UInt8])
}

/// Where a dataset's objects get their partition values.
public enum PartitionSource: Sendable, Hashable {
    /// No partition columns.
    case none
    /// Hive-style `field=value` folders in the object key below `prefix` (the dataset's
    /// path): a segment whose name is a subject field gives that field's value, URL-decoded
    /// (`%2F` → `/`); `__HIVE_DEFAULT_PARTITION__` is null.
    case hive(prefix: String)
    /// Given per object key (a Delta table's `partitionValues`, rendered canonically by
    /// the column's type), by field.
    case perObject([String: [FieldPath: PartitionValue]])
}

/// What the constant parts of a subject make of every record of an object.
enum ConstantSubject {
    /// At least one part comes from the records.
    case varies
    /// A part is null: no record has a subject.
    case none
    /// Every part is constant: every record belongs to this subject.
    case key(SubjectKey)
}

extension FormatOptions {
    /// These options for one object: `constants` filled from `partitions` (a field already
    /// in `constants` keeps its value).
    public func resolved(for objectKey: String) -> FormatOptions {
        var o = self
        if let absent = absentIsNullByObject[objectKey] { o.absentIsNull.formUnion(absent) }
        switch partitions {
        case .none:
            break
        case .hive(let prefix):
            for (field, value) in Self.hiveValues(objectKey, below: prefix)
            where o.constants[field] == nil
                && subject.fields.contains(field)
            {
                o.constants[field] = value
            }
        case .perObject(let table):
            for (field, value) in table[objectKey] ?? [:] where o.constants[field] == nil && subject.fields.contains(field) {
                o.constants[field] = value
            }
        }
        return o
    }

    /// The `name=value` folder segments of `key` below `prefix` (the file name itself is not a folder).
    public static func hiveValues(_ key: String, below prefix: String) -> [FieldPath: PartitionValue] {
        var rel = Substring(key)
        if !prefix.isEmpty {
            let p = prefix.hasSuffix("/") ? prefix : prefix + "/"
            guard rel.hasPrefix(p) else { return [:] }
            rel = rel.dropFirst(p.count)
        }
        var out: [FieldPath: PartitionValue] = [:]
        for segment in rel.split(separator: "/", omittingEmptySubsequences: false).dropLast() {
            guard let eq = segment.firstIndex(of: "=") else { continue }
            let name = hiveUnescape(segment[..<eq]), value = hiveUnescape(segment[segment.index(after: eq)...])
            guard !name.isEmpty else { continue }
            let field = FieldPath(
                components: String(decoding: name, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) })
            out[field] = value == Array("__HIVE_DEFAULT_PARTITION__".utf8) ? .null : .value(value)
        }
        return out
    }

    /// Hive's folder-name escaping undone: `%XX` (hex) is the byte XX. So is the local store's escape of a
    /// name's byte that is not UTF-8 (U+FFFD and two upper-case hex digits; a literal U+FFFD is escaped
    /// byte by byte, so every U+FFFD in a local key starts one): the value is the folder name's own bytes.
    static func hiveUnescape(_ s: Substring) -> [UInt8] {
        let u = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(u.count)
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 65...70: return c - 55
            case 97...102: return c - 87
            default: return nil
            }
        }
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let h = hex(u[i + 1]), let l = hex(u[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else if u[i] == 0xEF, i + 4 < u.count, u[i + 1] == 0xBF, u[i + 2] == 0xBD,
                u[i + 3] < 97, u[i + 4] < 97, let h = hex(u[i + 3]), let l = hex(u[i + 4])
            {
                out.append(h << 4 | l)
                i += 5
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return out
    }

    /// The subject fields whose values come from the records (not from `constants`).
    var recordFields: [FieldPath] { subject.fields.filter { constants[$0] == nil } }

    /// The subject fields whose value this object's Hive folder gives (`user_id=u-1/`): a record
    /// that holds the same field must agree with the folder (see `agreesWithFolder`).
    var folderFields: [FieldPath] {
        guard case .hive = partitions else { return [] }
        return subject.fields.filter { constants[$0] != nil }
    }

    /// Whether a record's own value of a folder field (canonical bytes; empty for none) agrees with
    /// the folder: the same value, or none at all. A record naming another subject than its folder
    /// is ambiguous — erased as the folder's subject it would take another person's record with it,
    /// and that person could be certified clean while it stays — so the object is refused instead.
    func agreesWithFolder(_ field: FieldPath, _ value: UnsafeRawBufferPointer) -> Bool {
        guard !value.isEmpty else { return true }
        guard case .value(let v)? = constants[field] else { return false }
        return v.elementsEqual(value)
    }

    /// The one-line reason a record that disagrees with its folder is refused (no value in it).
    static func folderConflict(_ field: FieldPath) -> String {
        "the record's subject field `\(field)` holds another value than the object's folder `\(field)=…` gives: "
            + "the record is ambiguous (whose is it?); move it to its own folder or correct the field, then index again"
    }

    /// What the constant parts make of every record (after `resolved(for:)`).
    func constantSubject(_ keyer: SubjectKeyer) -> ConstantSubject {
        var parts: [[UInt8]] = []
        var varies = false
        for f in subject.fields {
            switch constants[f] {
            case nil: varies = true
            case .null?: return .none
            case .value(let v)?: parts.append(v)
            }
        }
        if varies { return .varies }
        return .key(keyer.key(SubjectID(parts: parts).bytes))
    }

    /// Joins one record's parts in the order of `subject`: constants from `constants`,
    /// the others from `recordParts` (in the order of `recordFields`).
    func join(recordParts: [UnsafeRawBufferPointer], into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        var r = 0
        for (k, f) in subject.fields.enumerated() {
            if k > 0 { out.append(SubjectID.partSeparator) }
            if case .value(let v)? = constants[f] {
                out.append(contentsOf: v)
            } else {
                out.append(contentsOf: recordParts[r])
                r += 1
            }
        }
    }
}

extension RecordFormat {
    /// Erase for an object whose subject is wholly constant (every part a partition value):
    /// the object belongs to one subject, so when that subject is dropped the object is
    /// deleted (with its Hadoop `.crc` sidecar), not rewritten, and no folder keeps its name.
    /// Nil when the subject varies by record (the format erases record by record).
    func eraseWhole(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>
    ) async throws -> EraseOutcome? {
        guard case .key(let key) = options.constantSubject(keyer) else { return nil }
        let summary = try await scan(object, in: store, options: options, keyer: keyer) { _, _ in }
        var outcome = EraseOutcome()
        outcome.exact = true
        guard drop.contains(key) else {
            outcome.kept = summary.records
            return outcome
        }
        outcome.dropped[key] = summary.records
        outcome.droppedOrdinals = Array(0..<summary.records)
        try await removeObject(object, in: store)
        outcome.removed = true
        return outcome
    }
}

/// Deletes an object if it is still the version read, and the Hadoop checksum file
/// (`.name.crc`) that Spark and Hive write next to it, if any.
func removeObject(_ object: ObjectInfo, in store: any ObjectStore) async throws {
    guard let current = try await store.head(object.key), current.version == object.version else {
        throw LetheError(.conflict, "object changed since it was read (expected version \(object.version))", at: object.key)
    }
    try await store.delete(object.key)
    let sidecar = hadoopChecksumKey(object.key)
    if try await store.head(sidecar) != nil { try await store.delete(sidecar) }
}

/// The key of the Hadoop checksum file of `key`: `dir/.name.crc`.
public func hadoopChecksumKey(_ key: String) -> String {
    guard let slash = key.lastIndex(of: "/") else { return "." + key + ".crc" }
    return String(key[...slash]) + "." + String(key[key.index(after: slash)...]) + ".crc"
}

/// The format seam. A format scans an object for the subjects of its records, and
/// writes it anew without the records of given subjects.
///
/// Errors: malformed content throws `LetheError` with code `.corrupt` and a location
/// `object:line N` (or `object:offset N`) naming the field where one is involved.
/// An erase that meets a malformed object throws before anything is committed.
public protocol RecordFormat: Sendable {
    /// The name used in `lethe.yaml` (`jsonl`, `csv`, `parquet`).
    var name: String { get }

    /// Scans `object`, calling `visit(row, key)` for each record that has a subject.
    /// `row` is the record's 0-based ordinal among the object's records.
    func scan(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        visit: (Int64, SubjectKey) throws -> Void
    ) async throws -> ScanSummary

    /// Writes `object` anew applying `actions` to the records of their subjects (`.drop`: without
    /// them), every other record byte-for-byte as it was, with the same compression.
    /// Atomic: the write commits with `.matches(version: object.version)`. When no
    /// record matches, nothing is written. An action the format cannot apply throws `.unsupported`
    /// naming the format, before anything is read.
    func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions
    ) async throws -> EraseOutcome

    /// `erase(…actions:)` told by the index where the subjects' records are: when `hint` applies
    /// to `object` (same version) a format may key only the hinted records and copy the others
    /// unread; otherwise (nil, another version) it erases as without a hint. Drops exactly what
    /// the unhinted erase drops. The default ignores the hint.
    func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions, hint: EraseHint?
    ) async throws -> EraseOutcome

    /// The records of `object` that `matcher` matches, in row order (a re-read or a sweep). The
    /// default scans with `keyer` (`.values`: the keys of the values, which is the keyed predicate).
    func match(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        matcher: SubjectMatcher
    ) async throws -> [SubjectMatch]

    /// The records of `object` in `rows` (ordinal ranges; nil: every record) that `matcher`
    /// matches, read at `object.version`. A format may read only the parts of the object that hold
    /// those rows (Parquet: the subject column chunks of the row groups they fall in; a row group is
    /// read whole, so `rowsRead` may exceed the rows asked for). The default scans every record.
    func match(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        matcher: SubjectMatcher, rows: [Range<Int64>]?
    ) async throws -> RowsMatch
}

extension RecordFormat {
    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions, hint: EraseHint?
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: actions)
    }

    public func match(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        matcher: SubjectMatcher
    ) async throws -> [SubjectMatch] {
        let keys = matcher.keys(keyer)
        var out: [SubjectMatch] = []
        guard !keys.isEmpty else { return out }
        _ = try await scan(object, in: store, options: options, keyer: keyer) { row, key in
            if keys.contains(key) { out.append(SubjectMatch(row: row, key: key)) }
        }
        return out
    }

    public func match(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        matcher: SubjectMatcher, rows: [Range<Int64>]?
    ) async throws -> RowsMatch {
        var out = RowsMatch()
        let keys = matcher.keys(keyer)
        let s = try await scan(object, in: store, options: options, keyer: keyer) { row, key in
            if keys.contains(key), rows.map({ RowsMatch.contains($0, row) }) ?? true { out.matches.append(SubjectMatch(row: row, key: key)) }
        }
        out.records = s.records
        out.rowsRead = s.records
        out.bytesRead = object.size
        return out
    }

    /// Drops the records whose subject key is in `drop` (`erase(…actions: .drop(drop))`).
    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: .drop(drop))
    }

    /// Drops the records whose subject key is in `drop`, told where they are by `hint`.
    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>, hint: EraseHint?
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: .drop(drop), hint: hint)
    }
}
