import CDeflate
import CZlib
import LetheCore
import LetheStorage

/// The compression of a lake object, chosen from its key's extension.
enum Compression: Sendable, Equatable {
    case none
    case gzip
    case zstd

    /// `.gz` / `.gzip` → gzip, `.zst` / `.zstd` → zstd, anything else → none.
    static func forKey(_ key: String) -> Compression {
        let lower = key.lowercased()
        if lower.hasSuffix(".gz") || lower.hasSuffix(".gzip") { return .gzip }
        if lower.hasSuffix(".zst") || lower.hasSuffix(".zstd") { return .zstd }
        return .none
    }
}

/// Decompressed content of an object, chunk by chunk.
protocol ChunkSource: AnyObject {
    /// The next non-empty chunk, or nil at the end.
    func next() async throws -> [UInt8]?
    func close()
    /// Bytes read from the store so far (compressed size for compressed objects).
    var storedBytes: Int64 { get }
}

/// Where a rewritten object's uncompressed content goes.
protocol ChunkSink: AnyObject {
    func write(_ bytes: [UInt8]) async throws
    /// Flushes everything (the compressed trailer); the caller then commits the underlying writer.
    func finish() async throws
}

/// How a gzip object is decoded.
public enum GzipDecoding: Sendable {
    /// An object of at most `Codec.wholeGzipLimit` stored bytes, one gzip member, is read whole and
    /// decoded in one call of libdeflate (`WholeGzip`); anything else (larger, several members, corrupt,
    /// a size the trailer does not give) streams through zlib.
    case whole
    /// Always zlib, a chunk at a time (the reference, and what larger objects get).
    case streaming
}

enum Codec {
    /// gzip objects up to this many stored bytes are decoded whole (`GzipDecoding.whole`).
    static let wholeGzipLimit = 8 << 20
    /// … when their trailer says they decode to at most this many bytes.
    static let wholeGzipOutputLimit = 64 << 20

    /// Opens `object` for reading its decompressed content. Read failures are
    /// reported as `.corrupt` errors located at the object's key.
    static func openSource(_ key: String, in store: any ObjectStore, chunkSize: Int, gzip: GzipDecoding = .whole) async throws -> any ChunkSource {
        let compression = Compression.forKey(key)
        if compression == .zstd {
            throw LetheError(.badInput, "zstd-compressed objects are not supported by this format (use gzip)", at: key)
        }
        let stream: any ObjectReadStream
        do {
            stream = try await store.openRead(key, chunkSize: chunkSize)
        } catch {
            throw readFailure(error, key)
        }
        let plain = PlainSource(stream, key: key)
        switch compression {
        case .gzip:
            if gzip == .streaming { return try GzipSource(plain, key: key, outputSize: max(chunkSize, 64)) }
            return try await WholeGzip.open(plain, key: key, chunkSize: max(chunkSize, 64))
        default: return plain
        }
    }

    /// Wraps `writer` so that content written to the sink is compressed as `key` requires.
    static func sink(for key: String, over writer: any ObjectWriteStream) throws -> any ChunkSink {
        switch Compression.forKey(key) {
        case .gzip: return try GzipSink(writer, key: key)
        case .zstd: throw LetheError(.badInput, "zstd-compressed objects are not supported by this format (use gzip)", at: key)
        case .none: return PlainSink(writer)
        }
    }

    static func readFailure(_ error: any Error, _ key: String) -> any Error {
        if let e = error as? LetheError {
            if e.code == .corrupt || e.code == .notFound || e.code == .conflict { return e }
        }
        return LetheError(.corrupt, "unreadable object", at: key, cause: error)
    }
}

/// The stored bytes as they are.
final class PlainSource: ChunkSource {
    private let stream: any ObjectReadStream
    private let key: String
    private var done = false
    /// Bytes read from the store so far.
    private(set) var storedBytes: Int64 = 0

    init(_ stream: any ObjectReadStream, key: String) {
        self.stream = stream
        self.key = key
    }

    func next() async throws -> [UInt8]? {
        if done { return nil }
        while true {
            let chunk: [UInt8]?
            do {
                chunk = try await stream.next()
            } catch {
                throw Codec.readFailure(error, key)
            }
            guard let chunk else {
                done = true
                return nil
            }
            if chunk.isEmpty { continue }
            storedBytes += Int64(chunk.count)
            return chunk
        }
    }

    func close() { stream.close() }
}

/// gzip decoded whole with libdeflate: the stored bytes read up to `Codec.wholeGzipLimit`; when the
/// object ends within it and is one member whose trailer's size (ISIZE) is at most
/// `Codec.wholeGzipOutputLimit`, one `libdeflate_gzip_decompress_ex` call decodes it (checking its CRC-32
/// and size) and the content is handed out in chunks. Otherwise — a larger object, several members,
/// trailing bytes, corrupt or truncated data — the bytes read so far and the rest of the stream go
/// through zlib (`GzipSource`), which says what is wrong, naming the object.
enum WholeGzip {
    static func open(_ plain: PlainSource, key: String, chunkSize: Int) async throws -> any ChunkSource {
        var chunks: [[UInt8]] = []
        var total = 0
        var ended = false
        while total <= Codec.wholeGzipLimit {
            guard let c = try await plain.next() else {
                ended = true
                break
            }
            chunks.append(c)
            total += c.count
        }
        if ended {
            let input: [UInt8]
            if chunks.count == 1 {
                input = chunks[0]
            } else {
                var all: [UInt8] = []
                all.reserveCapacity(total)
                for c in chunks { all += c }
                input = all
            }
            if let out = decode(input) { return BufferSource(out, chunkSize: chunkSize, storedBytes: plain.storedBytes) }
            chunks = [input]
        }
        return try GzipSource(ReplaySource(chunks, then: plain), key: key, outputSize: chunkSize)
    }

    /// The content of a one-member gzip stream, or nil when libdeflate cannot decode it whole (then
    /// zlib decodes it, or says why it cannot).
    static func decode(_ input: [UInt8], outputLimit: Int = Codec.wholeGzipOutputLimit) -> [UInt8]? {
        guard input.count >= 18 else { return nil }
        let isize = input.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: $0.count - 4, as: UInt32.self))) }
        guard isize <= outputLimit, let d = libdeflate_alloc_decompressor() else { return nil }
        defer { libdeflate_free_decompressor(d) }
        var ok = false
        let out = [UInt8](unsafeUninitializedCapacity: max(isize, 1)) { buf, count in
            var inUsed = 0, outMade = 0
            let rc = input.withUnsafeBytes { i in
                libdeflate_gzip_decompress_ex(d, i.baseAddress, i.count, buf.baseAddress, isize, &inUsed, &outMade)
            }
            ok = rc == LIBDEFLATE_SUCCESS && inUsed == input.count && outMade == isize
            count = ok ? outMade : 0
        }
        return ok ? out : nil
    }
}

/// Decoded content held whole, handed out a chunk at a time.
final class BufferSource: ChunkSource {
    let content: [UInt8]
    private let chunkSize: Int
    private var at = 0
    let storedBytes: Int64

    init(_ content: [UInt8], chunkSize: Int, storedBytes: Int64) {
        self.content = content
        self.chunkSize = chunkSize
        self.storedBytes = storedBytes
    }

    func next() async throws -> [UInt8]? {
        guard at < content.count else { return nil }
        if at == 0 && content.count <= chunkSize {
            at = content.count
            return content
        }
        let end = min(content.count, at + chunkSize)
        defer { at = end }
        return Array(content[at..<end])
    }

    func close() {}
}

/// Chunks already read, then the rest of a stream.
final class ReplaySource: ChunkSource {
    private var chunks: [[UInt8]]
    private let rest: PlainSource

    init(_ chunks: [[UInt8]], then rest: PlainSource) {
        self.chunks = chunks.reversed()
        self.rest = rest
    }

    var storedBytes: Int64 { rest.storedBytes }

    func next() async throws -> [UInt8]? {
        while let c = chunks.popLast() { if !c.isEmpty { return c } }
        return try await rest.next()
    }

    func close() { rest.close() }
}

/// Inflates a gzip stream (one or more members, as `gzip` and `cat a.gz b.gz` write).
final class GzipSource: ChunkSource {
    private let source: any ChunkSource
    private let key: String
    private let strm: UnsafeMutablePointer<z_stream>
    private let outputSize: Int
    private let out: UnsafeMutablePointer<UInt8>
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var inputEnded = false
    private var sawInput = false
    /// True between the end of a member and the start of the next one.
    private var memberEnded = false
    private var finished = false

    init(_ source: any ChunkSource, key: String, outputSize: Int) throws {
        self.source = source
        self.key = key
        self.outputSize = outputSize
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        out = .allocate(capacity: outputSize)
        // 15 + 32: a 32 KiB window, gzip or zlib header detected automatically.
        let rc = inflateInit2_(strm, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            strm.deallocate()
            out.deallocate()
            throw LetheError(.failure, "cannot initialise zlib (code \(rc))", at: key)
        }
    }

    deinit {
        inflateEnd(strm)
        strm.deinitialize(count: 1)
        strm.deallocate()
        out.deallocate()
    }

    var storedBytes: Int64 { source.storedBytes }

    func next() async throws -> [UInt8]? {
        while !finished {
            let produced = try await fill()
            if produced > 0 { return Array(UnsafeBufferPointer(start: out, count: produced)) }
        }
        return nil
    }

    /// Inflates into `out` until it is full or the input ends; returns the bytes produced.
    private func fill() async throws -> Int {
        var produced = 0
        var drained = false
        while produced < outputSize {
            if inputOffset >= input.count && !inputEnded {
                if let chunk = try await source.next() {
                    input = chunk
                    inputOffset = 0
                    sawInput = true
                } else {
                    inputEnded = true
                }
                continue
            }
            let haveInput = inputOffset < input.count
            if memberEnded {
                if !haveInput { break }
                // More data after a complete member: the next member starts here.
                guard inflateReset(strm) == Z_OK else { throw corrupt("cannot restart gzip stream") }
                memberEnded = false
            }
            let beforeIn = inputOffset, beforeOut = produced
            let rc: Int32 = input.withUnsafeBytes { buf in
                if let base = buf.baseAddress, haveInput {
                    strm.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self) + inputOffset)
                    strm.pointee.avail_in = uInt(buf.count - inputOffset)
                } else {
                    strm.pointee.next_in = nil
                    strm.pointee.avail_in = 0
                }
                strm.pointee.next_out = out + produced
                strm.pointee.avail_out = uInt(outputSize - produced)
                let rc = inflate(strm, Z_NO_FLUSH)
                if haveInput { inputOffset = buf.count - Int(strm.pointee.avail_in) }
                produced = outputSize - Int(strm.pointee.avail_out)
                strm.pointee.next_in = nil
                return rc
            }
            switch rc {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK, Z_BUF_ERROR:
                if inputOffset == beforeIn && produced == beforeOut {
                    if !haveInput { drained = true; break }
                    throw corrupt("corrupt gzip data (no progress)")
                }
            default:
                let detail = strm.pointee.msg.map { String(cString: $0) } ?? "code \(rc)"
                throw corrupt("corrupt gzip data (\(detail))")
            }
            if drained { break }
        }
        if inputEnded && inputOffset >= input.count && (memberEnded || drained || !sawInput) {
            finished = true
            if sawInput && !memberEnded {
                throw corrupt("truncated gzip data (the stream ends inside a member)")
            }
        }
        return produced
    }

    private func corrupt(_ message: String) -> LetheError {
        LetheError(.corrupt, message, at: key)
    }

    func close() { source.close() }
}

/// Writes content as it is.
final class PlainSink: ChunkSink {
    private let writer: any ObjectWriteStream
    init(_ writer: any ObjectWriteStream) { self.writer = writer }
    func write(_ bytes: [UInt8]) async throws {
        if !bytes.isEmpty { try await writer.write(bytes) }
    }
    func finish() async throws {}
}

/// Compresses content into a single gzip member.
final class GzipSink: ChunkSink {
    private let writer: any ObjectWriteStream
    private let key: String
    private let strm: UnsafeMutablePointer<z_stream>
    private let outputSize = 256 << 10
    private let out: UnsafeMutablePointer<UInt8>

    init(_ writer: any ObjectWriteStream, key: String) throws {
        self.writer = writer
        self.key = key
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        out = .allocate(capacity: outputSize)
        // 15 + 16: a 32 KiB window with a gzip header and trailer.
        let rc = deflateInit2_(strm, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            strm.deallocate()
            out.deallocate()
            throw LetheError(.failure, "cannot initialise zlib (code \(rc))", at: key)
        }
    }

    deinit {
        deflateEnd(strm)
        strm.deinitialize(count: 1)
        strm.deallocate()
        out.deallocate()
    }

    func write(_ bytes: [UInt8]) async throws {
        var offset = 0
        while offset < bytes.count {
            let full: Bool = try bytes.withUnsafeBytes { buf in
                strm.pointee.next_in = UnsafeMutablePointer(mutating: buf.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset)
                strm.pointee.avail_in = uInt(buf.count - offset)
                strm.pointee.next_out = out
                strm.pointee.avail_out = uInt(outputSize)
                let rc = deflate(strm, Z_NO_FLUSH)
                offset = buf.count - Int(strm.pointee.avail_in)
                strm.pointee.next_in = nil
                guard rc == Z_OK || rc == Z_BUF_ERROR else {
                    throw LetheError(.failure, "gzip compression failed (code \(rc))", at: key)
                }
                return strm.pointee.avail_out == 0
            }
            let produced = outputSize - Int(strm.pointee.avail_out)
            if produced > 0 { try await writer.write(Array(UnsafeBufferPointer(start: out, count: produced))) }
            _ = full
        }
    }

    func finish() async throws {
        while true {
            strm.pointee.next_in = nil
            strm.pointee.avail_in = 0
            strm.pointee.next_out = out
            strm.pointee.avail_out = uInt(outputSize)
            let rc = deflate(strm, Z_FINISH)
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                throw LetheError(.failure, "gzip compression failed (code \(rc))", at: key)
            }
            let produced = outputSize - Int(strm.pointee.avail_out)
            if produced > 0 { try await writer.write(Array(UnsafeBufferPointer(start: out, count: produced))) }
            if rc == Z_STREAM_END { return }
        }
    }
}
