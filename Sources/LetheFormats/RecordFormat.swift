import LetheCore
import LetheStorage

/// What a scan found in one object.
public struct ScanSummary: Sendable, Equatable {
    /// Records read (data rows; a CSV header is not a record).
    public var records: Int64 = 0
    /// Records whose subject value is null (JSON `null`, empty CSV field): no subject, nothing to erase.
    public var recordsWithoutSubject: Int64 = 0
    /// Bytes of the stored object.
    public var bytes: Int64 = 0
    public init() {}
}

/// What an erase pass did to one object.
public struct EraseOutcome: Sendable, Equatable {
    /// Records dropped, per subject key.
    public var dropped: [SubjectKey: Int64] = [:]
    /// Records kept.
    public var kept: Int64 = 0
    /// The object after the write; nil when nothing was dropped (the object was left untouched)
    /// or when the object was removed because no record remained (formats that cannot hold zero rows).
    public var written: ObjectInfo?
    /// True when the object was deleted because no record remained.
    public var removed: Bool = false
    public init() {}
    public var droppedTotal: Int64 { dropped.values.reduce(0, +) }
}

/// Per-object options a format reads from the dataset spec.
public struct FormatOptions: Sendable, Hashable {
    /// The subject field(s).
    public var subject: SubjectSpec
    /// CSV only: the field separator (default `,`).
    public var delimiter: UInt8 = UInt8(ascii: ",")
    public init(subject: SubjectSpec) { self.subject = subject }
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

    /// Writes `object` anew without the records whose subject key is in `drop`,
    /// every other record byte-for-byte as it was, with the same compression.
    /// Atomic: the write commits with `.matches(version: object.version)`. When no
    /// record matches, nothing is written.
    func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>
    ) async throws -> EraseOutcome
}
