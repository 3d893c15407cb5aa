/// Walking the pages of a column chunk: page headers, CRCs, decompression, levels.

/// One page with its body decompressed.
struct DecodedPage {
    var header: PageHeader
    /// For data pages v1 and dictionary pages: the whole uncompressed body.
    /// For v2: repetition levels, definition levels, then the uncompressed values.
    var data: [UInt8]
    /// Offset of the page header inside the chunk.
    var offsetInChunk: Int
    /// Header plus compressed body size.
    var storedSize: Int
}

/// Iterates the pages of one column chunk held in memory.
struct PageIterator {
    let chunk: [UInt8]
    let codec: CompressionCodec
    let options: ReadOptions
    var pos = 0
    /// Index of the next page (dictionary page included).
    var index = 0

    init(chunk: [UInt8], codecRaw: Int32, options: ReadOptions) throws(ParquetError) {
        guard let c = CompressionCodec(rawValue: codecRaw) else { throw ParquetError(.unsupported, "unknown compression codec \(codecRaw)") }
        self.chunk = chunk
        self.codec = c
        self.options = options
    }

    var atEnd: Bool { pos >= chunk.count }

    /// The next page's header and where its body starts, without reading the body; nil at the end.
    func peekHeader() throws(ParquetError) -> (PageHeader, Int)? {
        guard pos < chunk.count else { return nil }
        let raw: ThriftStruct
        let bodyStart: Int
        do throws(ParquetError) {
            (raw, bodyStart) = try ThriftStruct.decode(chunk, from: pos, to: nil)
        } catch {
            throw corruptPage(error)
        }
        return (try PageHeader(raw: raw), bodyStart)
    }

    /// Reads the next page header and body; nil at the end of the chunk.
    mutating func next() throws(ParquetError) -> DecodedPage? {
        let start = pos
        guard let (header, bodyStart) = try peekHeader() else { return nil }
        guard header.compressedSize <= chunk.count - bodyStart else {
            throw ParquetError(.corruptPage, "page of \(header.compressedSize) bytes runs past the end of the column chunk")
        }
        guard header.uncompressedSize <= options.maxPageSize else {
            throw ParquetError(.limitExceeded, "page of \(header.uncompressedSize) uncompressed bytes exceeds the limit")
        }
        let bodyEnd = bodyStart + header.compressedSize
        pos = bodyEnd
        index += 1
        let data: [UInt8] = try withBytes(chunk) { (all) throws(ParquetError) -> [UInt8] in
            let body = UnsafeRawBufferPointer(rebasing: all[bodyStart..<bodyEnd])
            if options.verifyChecksums, let crc = header.crc {
                let actual = Codecs.crc32(body)
                guard actual == UInt32(bitPattern: crc) else {
                    throw ParquetError(
                        .checksum, "page CRC mismatch (stored \(String(UInt32(bitPattern: crc), radix: 16)), computed \(String(actual, radix: 16)))")
                }
            }
            switch header.type {
            case .dataPageV2:
                let levels = header.defLevelsByteLength + header.repLevelsByteLength
                var out = Array(UnsafeRawBufferPointer(rebasing: body[0..<levels]))
                let rest = UnsafeRawBufferPointer(rebasing: body[levels...])
                // An empty value section (all nulls) is not decompressed: some writers store no codec stream at all.
                if rest.isEmpty && header.uncompressedSize == levels { return out }
                if header.isCompressed && codec != .uncompressed {
                    out.append(contentsOf: try Codecs.decompress(codec, rest, expected: header.uncompressedSize - levels))
                } else {
                    guard rest.count == header.uncompressedSize - levels else {
                        throw ParquetError(.corruptPage, "uncompressed v2 page body is \(rest.count) bytes, header says \(header.uncompressedSize - levels)")
                    }
                    out.append(contentsOf: rest)
                }
                return out
            case .indexPage:
                return []
            default:
                if body.isEmpty && header.uncompressedSize == 0 { return [] }
                return try Codecs.decompress(codec, body, expected: header.uncompressedSize)
            }
        }
        return DecodedPage(header: header, data: data, offsetInChunk: start, storedSize: bodyEnd - start)
    }
}

func corruptPage(_ e: ParquetError) -> ParquetError {
    var e = e
    if e.code == .corruptMetadata { e.code = .corruptPage; e.message = "page header: " + e.message }
    return e
}

/// Decodes levels of one page. v1: with the 4-byte length prefix (RLE) or BIT_PACKED.
func decodeLevels(_ data: UnsafeRawBufferPointer, pos: inout Int, count: Int, maxLevel: Int, encoding: Int32, v2Length: Int?) throws(ParquetError) -> [UInt16] {
    let bw = bitWidth(of: UInt64(maxLevel))
    var levels: [UInt16]
    if let len = v2Length {
        guard data.count - pos >= len else { throw ParquetError(.corruptPage, "levels run past the end of the page") }
        var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[pos..<(pos + len)]), bitWidth: bw)
        levels = try dec.decode(count: count)
        pos += len
    } else if encoding == Encoding.rle.rawValue {
        guard data.count - pos >= 4 else { throw ParquetError(.corruptPage, "level length prefix truncated") }
        let len = Int(data.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
        pos += 4
        guard data.count - pos >= len else { throw ParquetError(.corruptPage, "levels of \(len) bytes run past the end of the page") }
        var dec = try RLEDecoder(UnsafeRawBufferPointer(rebasing: data[pos..<(pos + len)]), bitWidth: bw)
        levels = try dec.decode(count: count)
        pos += len
    } else if encoding == Encoding.bitPacked.rawValue {
        let len = (count * bw + 7) / 8
        guard data.count - pos >= len else { throw ParquetError(.corruptPage, "bit-packed levels run past the end of the page") }
        levels = [UInt16](repeating: 0, count: count)
        for i in 0..<count {
            var v = 0
            for b in 0..<bw {
                let bit = i * bw + b
                let byte = data[pos + bit >> 3]
                v = v << 1 | Int(byte >> UInt8(7 - bit & 7) & 1)
            }
            levels[i] = UInt16(v)
        }
        pos += len
    } else {
        throw ParquetError(.corruptPage, "unsupported level encoding \(encoding)")
    }
    for l in levels where Int(l) > maxLevel {
        throw ParquetError(.corruptPage, "level \(l) exceeds the maximum \(maxLevel)")
    }
    return levels
}
