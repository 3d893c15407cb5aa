/// Record ordinals as the index holds them (a posting's rows): 0-based positions of records in an
/// object, and one more kind of entry past any real record.
public enum RecordOrdinal {
    /// The ordinal a posting holds for a subject whose value an object holds where no record does: a
    /// Parquet dictionary entry no row references (`ScanSummary.unreferenced`). Residue all the same,
    /// so the index names the object for that subject (planning, `locate`, the index-cost
    /// verification read it), and an erasure scrubs the entry (`ParquetFile.rewrite(…scrubbing:…)`).
    public static let unreferencedEntry: Int64 = 1 << 62

    /// Ordinals at or past this are unreferenced-entry marks, never records: a derived index entry
    /// shifts a mark down by the rows dropped before it, which leaves it far above any record.
    public static let marksFrom: Int64 = 1 << 61

    /// Whether `ordinal` is a record's (not an unreferenced-entry mark).
    @inline(__always)
    public static func isRecord(_ ordinal: Int64) -> Bool { ordinal < marksFrom }

    /// The records among `ordinals` (the marks left out).
    public static func records(_ ordinals: [Int64]) -> Int {
        var n = 0
        for r in ordinals where r < marksFrom { n += 1 }
        return n
    }
}
