import CZlib
import CZstd

/// Page compression: Snappy via libsnappy (the Swift coder kept beside it), LZ4_RAW and LZ4 (Hadoop framing) in Swift, GZIP via zlib, ZSTD via libzstd.
enum Codecs {
    static func decompress(_ codec: CompressionCodec, _ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        switch codec {
        case .uncompressed:
            guard src.count == expected else {
                throw ParquetError(.corruptPage, "uncompressed page is \(src.count) bytes, header says \(expected)")
            }
            return Array(src)
        case .snappy: return try Snappy.decompressWithLibrary(src, expected: expected)
        case .lz4Raw: return try LZ4.decompress(src, expected: expected)
        case .lz4: return try LZ4.decompressHadoop(src, expected: expected)
        case .gzip: return try gunzip(src, expected: expected)
        case .zstd: return try unzstd(src, expected: expected)
        case .lzo, .brotli:
            throw ParquetError(.unsupported, "compression codec \(codec) is not supported")
        }
    }

    static func compress(_ codec: CompressionCodec, _ src: UnsafeRawBufferPointer) throws(ParquetError) -> [UInt8] {
        switch codec {
        case .uncompressed: return Array(src)
        case .snappy: return Snappy.compressWithLibrary(src)
        case .lz4Raw: return LZ4.compress(src)
        case .lz4: return LZ4.compressHadoop(src)
        case .gzip: return try gzip(src)
        case .zstd: return try zstd(src)
        case .lzo, .brotli:
            throw ParquetError(.unsupported, "compression codec \(codec) is not supported for writing")
        }
    }

    static func gunzip(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        var status: Int32 = Z_OK
        var produced = 0
        var consumedAll = false
        let out = [UInt8](unsafeUninitializedCapacity: max(expected, 1)) { dst, count in
            count = 0
            var stream = z_stream()
            // 15 + 32: accept gzip or zlib headers.
            status = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else { return }
            defer { inflateEnd(&stream) }
            var inPos = 0
            while true {
                stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: UInt8.self)).map { $0 + inPos }
                stream.avail_in = UInt32(src.count - inPos)
                stream.next_out = dst.baseAddress! + produced
                stream.avail_out = UInt32(max(expected, 1) - produced)
                let before = stream.avail_in
                status = inflate(&stream, Z_FINISH)
                inPos += Int(before - stream.avail_in)
                produced = max(expected, 1) - Int(stream.avail_out)
                if status == Z_STREAM_END {
                    // Concatenated gzip members: continue with the next one.
                    if inPos < src.count && produced < expected && src[inPos] == 0x1f {
                        inflateReset(&stream)
                        continue
                    }
                    consumedAll = true
                    break
                }
                break
            }
            count = min(produced, expected)
        }
        guard consumedAll, produced == expected else {
            throw ParquetError(.decompression, "GZIP: corrupt data (zlib status \(status), \(produced) of \(expected) bytes)")
        }
        return out
    }

    static func gzip(_ src: UnsafeRawBufferPointer) throws(ParquetError) -> [UInt8] {
        var stream = z_stream()
        var status = deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw ParquetError(.decompression, "GZIP: deflateInit failed (\(status))") }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(src.count))) + 32
        var produced = 0
        let out = [UInt8](unsafeUninitializedCapacity: bound) { dst, count in
            stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: UInt8.self))
            stream.avail_in = UInt32(src.count)
            stream.next_out = dst.baseAddress
            stream.avail_out = UInt32(bound)
            status = deflate(&stream, Z_FINISH)
            produced = bound - Int(stream.avail_out)
            count = produced
        }
        guard status == Z_STREAM_END else { throw ParquetError(.decompression, "GZIP: deflate failed (\(status))") }
        return out
    }

    static func unzstd(_ src: UnsafeRawBufferPointer, expected: Int) throws(ParquetError) -> [UInt8] {
        var result = 0
        let out = [UInt8](unsafeUninitializedCapacity: max(expected, 1)) { dst, count in
            result = ZSTD_decompress(dst.baseAddress, expected, src.baseAddress, src.count)
            count = (ZSTD_isError(result) != 0 || result > expected) ? 0 : result
        }
        if ZSTD_isError(result) != 0 {
            let name = String(cString: ZSTD_getErrorName(result))
            throw ParquetError(.decompression, "ZSTD: \(name)")
        }
        guard result == expected else {
            throw ParquetError(.decompression, "ZSTD: decompressed \(result) bytes, page header says \(expected)")
        }
        return out
    }

    static func zstd(_ src: UnsafeRawBufferPointer) throws(ParquetError) -> [UInt8] {
        let bound = ZSTD_compressBound(src.count)
        var result = 0
        let out = [UInt8](unsafeUninitializedCapacity: max(bound, 1)) { dst, count in
            result = ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, 1)
            count = ZSTD_isError(result) != 0 ? 0 : result
        }
        if ZSTD_isError(result) != 0 { throw ParquetError(.decompression, "ZSTD: compression failed") }
        return out
    }

    /// CRC-32 (the zlib polynomial) used for page checksums.
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt = CZlib.crc32(0, nil, 0)
        var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var left = bytes.count
        while left > 0, let q = p {
            let n = min(left, 1 << 30)
            c = CZlib.crc32(c, q, UInt32(n))
            p = q + n
            left -= n
        }
        return UInt32(truncatingIfNeeded: c)
    }
}
