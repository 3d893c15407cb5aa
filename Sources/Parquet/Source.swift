#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Random-access bytes of one Parquet file. The footer is read from the end and
/// column chunks by range; the file need not be in memory.
public protocol ParquetSource: Sendable {
    /// The file's size in bytes.
    var size: Int64 { get }
    /// Reads exactly the bytes in `range` (which lies inside `0..<size`).
    func read(_ range: Range<Int64>) throws -> [UInt8]
}

/// A file held in memory.
public struct InMemorySource: ParquetSource {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: Int64 { Int64(bytes.count) }
    public func read(_ range: Range<Int64>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= Int64(bytes.count) else {
            throw ParquetError(.io, "read \(range) outside the \(bytes.count)-byte buffer")
        }
        return Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
    }
}

/// A local file read with `pread`.
public final class LocalFileSource: ParquetSource {
    private let fd: Int32
    public let size: Int64
    public let path: String

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ParquetError(.io, "cannot open \(path) (errno \(errno))", file: path) }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            close(fd)
            throw ParquetError(.io, "cannot size \(path)", file: path)
        }
        size = Int64(end)
    }

    deinit { close(fd) }

    public func read(_ range: Range<Int64>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw ParquetError(.io, "read \(range) outside the file", file: path)
        }
        let n = Int(range.count)
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            var done = 0
            while done < n {
                let r = pread(fd, buf.baseAddress! + done, n - done, off_t(range.lowerBound) + off_t(done))
                if r <= 0 { failed = true; break }
                done += r
            }
            count = failed ? 0 : n
        }
        if failed { throw ParquetError(.io, "short read of \(path) at \(range)", file: path) }
        return out
    }
}

/// An output byte stream.
public protocol ParquetSink {
    mutating func write(_ bytes: [UInt8]) throws
    /// Appends the bytes in `range` of `source` (the file being rewritten), as
    /// `write(try source.read(range))` does (the default). A sink over a store that can copy
    /// between its objects without reading them (a kernel copy) records the range instead.
    mutating func copy(from source: any ParquetSource, range: Range<Int64>) throws
    /// A hint that about `count` more bytes will follow (a rewrite: the original's size), so a
    /// sink that grows a buffer can size it once. The default does nothing.
    mutating func expect(_ count: Int)
}

extension ParquetSink {
    public mutating func copy(from source: any ParquetSource, range: Range<Int64>) throws {
        let bytes = try source.read(range)
        guard bytes.count == Int(range.count) else { throw ParquetError(.io, "short read of \(range)") }
        try write(bytes)
    }

    public mutating func expect(_ count: Int) {}
}

/// A sink that collects the bytes in memory.
public struct InMemorySink: ParquetSink, Sendable {
    public var bytes: [UInt8] = []
    public init() {}
    public mutating func write(_ bytes: [UInt8]) throws { self.bytes.append(contentsOf: bytes) }
    public mutating func expect(_ count: Int) { bytes.reserveCapacity(bytes.count + max(0, count)) }
}

/// Wraps a sink and counts the bytes written (the current file offset).
struct CountingSink<S: ParquetSink> {
    var base: S
    var offset: Int64 = 0
    mutating func write(_ bytes: [UInt8]) throws(ParquetError) {
        do { try base.write(bytes) } catch let e as ParquetError { throw e } catch { throw ParquetError(.io, "write failed: \(error)") }
        offset += Int64(bytes.count)
    }
    mutating func copy(from source: any ParquetSource, range: Range<Int64>) throws(ParquetError) {
        do { try base.copy(from: source, range: range) } catch let e as ParquetError { throw e } catch { throw ParquetError(.io, "copy failed: \(error)") }
        offset += Int64(range.count)
    }
}
