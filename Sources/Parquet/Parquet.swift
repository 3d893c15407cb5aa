/// A general Parquet library (reader, writer, row-group-preserving rewriter).
public enum ParquetLibrary {
    /// The four magic bytes at both ends of a Parquet file.
    public static let magic: [UInt8] = Array("PAR1".utf8)
}
