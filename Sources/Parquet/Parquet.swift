/// A general Parquet library (reader, writer, row-group-preserving rewriter).
/// See docs/parquet.md.
public enum ParquetLibrary {
    /// The four magic bytes at both ends of a Parquet file.
    public static let magic: [UInt8] = Array("PAR1".utf8)

    /// CRC-32 with the zlib polynomial (page checksums; also Delta's deletion vector files).
    public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 { Codecs.crc32(bytes) }
}

/// `withUnsafeBytes` for typed-throwing bodies.
@inline(__always) @discardableResult
func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ParquetError) -> R) throws(ParquetError) -> R {
    let r: Result<R, ParquetError> = a.withUnsafeBytes { p in
        do throws(ParquetError) { return .success(try body(p)) } catch { return .failure(error) }
    }
    return try r.get()
}

/// `withUnsafeBufferPointer` for typed-throwing bodies.
@inline(__always) @discardableResult
func withBuffer<T, R>(_ a: [T], _ body: (UnsafeBufferPointer<T>) throws(ParquetError) -> R) throws(ParquetError) -> R {
    let r: Result<R, ParquetError> = a.withUnsafeBufferPointer { p in
        do throws(ParquetError) { return .success(try body(p)) } catch { return .failure(error) }
    }
    return try r.get()
}
