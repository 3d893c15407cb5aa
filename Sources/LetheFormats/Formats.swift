/// The record formats Lethe knows, by the name used in `lethe.yaml`.
public enum Formats {
    /// The names `named(_:)` accepts.
    public static var names: [String] { ["jsonl", "csv", "parquet"] }

    /// The format called `name` (`jsonl`, `csv`, `parquet`), or nil.
    public static func named(_ name: String) -> (any RecordFormat)? {
        switch name.lowercased() {
        case "jsonl", "json", "ndjson": return JSONLinesFormat()
        case "csv": return CSVFormat()
        case "parquet": return ParquetFormat()
        default: return nil
        }
    }
}
