import CSnappy

/// Snappy through Debian's libsnappy (`CSnappy`), which the codec seam (`Codecs`) uses for pages:
/// its compressor is 1.5–2.4× faster than the Swift one and its decompressor copies with wide
/// loads and stores instead of a `memmove` per literal and match. The Swift code (`Snappy.swift`)
/// stays: `Snappy.patch` edits blocks in place with it, and the tests check the two agree.
extension Snappy {
    /// Compresses `src` into a Snappy raw block with libsnappy.
    static func compressWithLibrary(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        guard let base = src.baseAddress, !src.isEmpty else { return compress(src) }
        let bound = snappy_max_compressed_length(src.count)
        var status = SNAPPY_OK
        let out = [UInt8](unsafeUninitializedCapacity: max(bound, 1)) { dst, count in
            var produced = bound
            let output = UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: CChar.self)
            status = snappy_compress(base.assumingMemoryBound(to: CChar.self), src.count, output, &produced)
            count = status == SNAPPY_OK ? produced : 0
        }
        // libsnappy fails only when the output buffer is too small, which the bound rules out.
        return status == SNAPPY_OK ? out : compress(src)
    }

    /// Decompresses a Snappy raw block into exactly `expected` bytes with libsnappy (the length
    /// preamble is checked first, so the messages are those of the Swift decoder).
    static func decompressWithLibrary(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        let (length, start) = try uncompressedLength(src)
        guard length == expected else {
            throw ParquetError(.decompression, "Snappy: block says \(length) bytes, page header says \(expected)")
        }
        guard length > 0 else {
            guard src.count == start else { throw ParquetError(.decompression, "Snappy: corrupt compressed data") }
            return []
        }
        var ok = false
        let out = [UInt8](unsafeUninitializedCapacity: length) { dst, count in
            var produced = length
            let input = src.baseAddress!.assumingMemoryBound(to: CChar.self)
            let output = UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: CChar.self)
            ok = snappy_uncompress(input, src.count, output, &produced) == SNAPPY_OK && produced == length
            count = ok ? length : 0
        }
        guard ok else { throw ParquetError(.decompression, "Snappy: corrupt compressed data") }
        return out
    }
}
