import Foundation
public import LetheCore
import LetheStorage
import Parquet

// Deletion vectors (PROTOCOL.md, "Deletion Vectors" and "Deletion Vector Format"): a set of
// row indexes of one data file that are logically deleted, kept inline in the log (Z85) or in
// a DV file, as a 64-bit Roaring bitmap in the portable serialization behind a magic number.

/// The `deletionVector` of an `add` or `remove` action: where a DV is and how many rows it removes.
public struct DeletionVectorDescriptor: Sendable, Equatable {
    /// How the DV is stored (`storageType`).
    public enum StorageType: String, Sendable, Equatable {
        /// `u`: a file under the table root named from a UUID, after an optional random prefix (a folder).
        case relativeUUID = "u"
        /// `i`: inline in the log, Z85-encoded.
        case inline = "i"
        /// `p`: a file at an absolute path or URI.
        case absolutePath = "p"
    }

    public let storageType: StorageType
    /// `<random prefix><20-char Z85 UUID>` (u), the Z85 bitmap (i), or the absolute path (p).
    public let pathOrInlineDv: String
    /// Where the DV's size field starts in its file; absent for inline DVs (read as 0 for files).
    public let offset: Int64?
    /// The size of the serialized bitmap (magic number included; before Z85 encoding when inline).
    public let sizeInBytes: Int64
    /// The number of rows the DV removes.
    public let cardinality: Int64
    /// For `u`: the random prefix (a folder under the table root; often empty).
    public let randomPrefix: String
    /// For `u`: the DV file's UUID, lowercase with dashes.
    public let uuid: String?
    /// For `i`: the decoded bitmap bytes (exactly `sizeInBytes`).
    let inlineBytes: [UInt8]?
    /// The JSON object as parsed, unchanged.
    public let json: JSONValue

    /// Parses a `deletionVector` object. `table` and `dataFile` (the action's path) name where it
    /// came from in errors; a malformed descriptor is `.corrupt`.
    public init(json: JSONValue, table: String, dataFile: String) throws {
        func bad(_ why: String) -> LetheError {
            LetheError(.corrupt, "the deletion vector of data file `\(dataFile)` is malformed: \(why)", at: table)
        }
        guard let o = json.object else { throw bad("not a JSON object") }
        guard let st = o["storageType"]?.string else { throw bad("no storageType") }
        guard let kind = StorageType(rawValue: st) else { throw bad("storageType `\(st)` is not one of u, i, p") }
        guard let where_ = o["pathOrInlineDv"]?.string else { throw bad("no pathOrInlineDv") }
        var offset: Int64?
        if let v = o["offset"], !v.isNull {
            guard let n = v.int, n >= 0 else { throw bad("offset \(v.encodedText) is not a non-negative integer") }
            guard kind != .inline else { throw bad("an inline deletion vector has an offset") }
            offset = n
        }
        guard let size = o["sizeInBytes"]?.int, size >= 0, size <= Int64(Int32.max) else {
            throw bad("sizeInBytes \(o["sizeInBytes"]?.encodedText ?? "(absent)") is not an integer in 0...\(Int32.max)")
        }
        guard let card = o["cardinality"]?.int, card >= 0 else {
            throw bad("cardinality \(o["cardinality"]?.encodedText ?? "(absent)") is not a non-negative integer")
        }
        var prefix = "", uuid: String?, inline: [UInt8]?
        switch kind {
        case .relativeUUID:
            let chars = Array(where_.utf8)
            guard chars.count >= 20 else { throw bad("pathOrInlineDv `\(where_)` is shorter than a 20-character Z85 UUID") }
            guard let u = Z85.decode(chars[(chars.count - 20)...]) else {
                throw bad("pathOrInlineDv `\(where_)` does not end in a Z85-encoded UUID")
            }
            prefix = String(decoding: chars[..<(chars.count - 20)], as: UTF8.self)
            if prefix.hasPrefix("/") || prefix.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0 == "." }) {
                throw bad("random prefix `\(prefix)` is not a relative folder under the table")
            }
            uuid = Self.canonicalUUID(u)
        case .inline:
            let chars = Array(where_.utf8)
            let expected = (Int(size) + 3) / 4 * 5
            guard chars.count == expected else {
                throw bad("inline data is \(chars.count) Z85 characters; sizeInBytes \(size) needs \(expected)")
            }
            guard let bytes = Z85.decode(chars[...]) else { throw bad("inline data is not valid Z85") }
            inline = Array(bytes.prefix(Int(size)))
        case .absolutePath:
            guard !where_.isEmpty else { throw bad("empty path") }
        }
        self.storageType = kind
        self.pathOrInlineDv = where_
        self.offset = offset
        self.sizeInBytes = size
        self.cardinality = card
        self.randomPrefix = prefix
        self.uuid = uuid
        self.inlineBytes = inline
        self.json = json
    }

    /// The DV of an `add`, or nil when it has none.
    public init?(_ add: AddFile, table: String) throws {
        guard let j = add.deletionVector, !j.isNull else { return nil }
        try self.init(json: j, table: table, dataFile: add.path)
    }

    /// The DV of a `remove`, or nil when it has none.
    public init?(_ remove: RemoveFile, table: String) throws {
        guard let j = remove.deletionVector, !j.isNull else { return nil }
        try self.init(json: j, table: table, dataFile: remove.path)
    }

    /// The object key of the DV's file in `table`'s store, or nil for an inline DV. A `p` path is
    /// resolved only when it is a local path (or `file:` URI) under the table root of a local store;
    /// anything else is refused (`.badInput`) naming the path.
    public func fileKey(in table: DeltaTable) throws -> String? {
        switch storageType {
        case .inline:
            return nil
        case .relativeUUID:
            let name = "deletion_vector_\(uuid!).bin"
            let rel = randomPrefix.isEmpty ? name : (randomPrefix.hasSuffix("/") ? randomPrefix : randomPrefix + "/") + name
            return table.root.isEmpty ? rel : table.root + "/" + rel
        case .absolutePath:
            return try table.key(forAbsoluteDeletionVectorPath: pathOrInlineDv)
        }
    }

    static func canonicalUUID(_ b: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, byte) in b.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension DeltaTable {
    /// The DV of a live file, parsed; nil when it has none.
    public func deletionVector(of add: AddFile) throws -> DeletionVectorDescriptor? {
        try DeletionVectorDescriptor(add, table: displayName)
    }

    /// The row indexes (0-based positions in the data file) a DV deletes, ascending. Checks the DV
    /// file's format version, size field and CRC-32, the bitmap's structure, and that it holds
    /// `cardinality` rows; failures are `.corrupt` and name the table and the DV file.
    public func deletedRows(_ dv: DeletionVectorDescriptor) async throws -> [Int64] {
        try await deletedRows(dv, dataFile: nil)
    }

    /// The row indexes deleted from a live file by its DV, ascending; [] when it has none.
    public func deletedRows(_ add: AddFile) async throws -> [Int64] {
        guard let dv = try deletionVector(of: add) else { return [] }
        return try await deletedRows(dv, dataFile: add.path)
    }

    /// The table in messages: its root, or the store's location for a table at the store root.
    var displayName: String { root.isEmpty ? store.location : root }

    func deletedRows(_ dv: DeletionVectorDescriptor, dataFile: String?) async throws -> [Int64] {
        let (bitmap, location, whose) = try await bitmapBytes(dv, dataFile: dataFile)
        let what = dv.storageType == .inline ? "inline deletion vector" : "deletion vector at offset \(dv.offset ?? 0)"
        let rows: [Int64]
        do {
            rows = try DeletionVectorBitmap.decode(bitmap[...], expectedCount: dv.cardinality)
        } catch let e as DeletionVectorBitmap.FormatError {
            throw LetheError(.corrupt, "\(what) is not a valid bitmap: \(e.message) (\(whose))", at: location)
        }
        guard Int64(rows.count) == dv.cardinality else {
            throw LetheError(
                .corrupt, "\(what) holds \(rows.count) rows but its descriptor's cardinality is \(dv.cardinality) (\(whose))",
                at: location)
        }
        return rows
    }

    /// A DV's bitmap bytes (magic number included), where they are (the DV file's key, or the
    /// table for an inline DV), and whose DV it is, for messages.
    func bitmapBytes(_ dv: DeletionVectorDescriptor, dataFile: String?) async throws -> (bytes: [UInt8], location: String, whose: String) {
        let whose = "table `\(displayName)`" + (dataFile.map { ", data file `\($0)`" } ?? "")
        if let inline = dv.inlineBytes { return (inline, displayName, whose) }
        guard let key = try dv.fileKey(in: self) else { preconditionFailure("a file DV without a key") }
        return (try await readDeletionVectorFile(key, dv, whose: whose), key, whose)
    }

    /// The bitmap bytes of a DV stored in a file: `[version 1] … [size BE][bitmap][CRC-32 BE]` at `offset`.
    private func readDeletionVectorFile(_ key: String, _ dv: DeletionVectorDescriptor, whose: String) async throws -> [UInt8] {
        let offset = dv.offset ?? 0
        let size = dv.sizeInBytes
        guard offset <= Int64.max - size - 8 else {
            throw LetheError(.corrupt, "deletion vector offset \(offset) is out of range (\(whose))", at: key)
        }
        let end = offset + 4 + size + 4
        // One read from the start (the version byte) when the DV is near it, else two small reads.
        let nearStart = offset <= 64 * 1024
        var blob: [UInt8]
        var version: UInt8
        do {
            if nearStart {
                blob = try await store.read(key, range: 0..<end)
                version = blob[0]
                blob.removeFirst(Int(offset))
            } else {
                version = try await store.read(key, range: 0..<1)[0]
                blob = try await store.read(key, range: offset..<end)
            }
        } catch let e as LetheError where e.code == .notFound {
            throw LetheError(.corrupt, "deletion vector file is missing (\(whose))", at: key)
        } catch let e as LetheError where e.code == .badInput {
            let have = try await store.head(key)?.size
            throw LetheError(
                .corrupt,
                "deletion vector file is \(have.map { "\($0) bytes" } ?? "unreadable"), too short for "
                    + "a \(size)-byte DV at offset \(offset) (\(whose))", at: key)
        }
        guard version == 1 else {
            throw LetheError(.corrupt, "deletion vector file has format version \(version), not 1 (\(whose))", at: key)
        }
        let stored = Self.bigEndian32(blob, 0)
        guard Int64(stored) == size else {
            throw LetheError(.corrupt, "deletion vector at offset \(offset) is \(stored) bytes, its descriptor says \(size) (\(whose))", at: key)
        }
        let data = blob[4..<(4 + Int(size))]
        let crc = Self.bigEndian32(blob, 4 + Int(size))
        let actual = CRC32.checksum(data)
        guard crc == actual else {
            throw LetheError(
                .corrupt,
                "deletion vector at offset \(offset) fails its checksum (stored CRC-32 "
                    + "\(String(crc, radix: 16)), computed \(String(actual, radix: 16))) (\(whose))", at: key)
        }
        return Array(data)
    }

    private static func bigEndian32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// The key of an absolute DV path (`p`), when it is a local path or `file:` URI under this table's
    /// root, or an object URL of the store's (`s3://bucket/…`) under it.
    func key(forAbsoluteDeletionVectorPath path: String) throws -> String {
        func refuse() -> LetheError {
            DeltaError.unsupported(
                displayName,
                "deletion vector file `\(path)` is not under the table root; "
                    + "only deletion vectors inside the table are read")
        }
        // An object URL of the store's own (`s3://bucket/…` on an S3 lake).
        if let key = store.key(forURL: path) {
            guard root.isEmpty || key.hasPrefix(root + "/") else { throw refuse() }
            return key
        }
        var local: String?
        if path.hasPrefix("file://") {
            var rest = Substring(path.dropFirst("file://".count))
            if rest.hasPrefix("localhost/") { rest = rest.dropFirst("localhost".count) }
            if rest.hasPrefix("/") { local = decodeDeltaPath(String(rest)) }
        } else if path.hasPrefix("file:/") {
            local = decodeDeltaPath(String(path.dropFirst("file:".count)))
        } else if path.hasPrefix("/") {
            local = decodeDeltaPath(path)
        }
        // The store resolves the path against its folder (lexically, then through links); the key must be in this table.
        guard let local, let key = store.key(forLocalPath: local), root.isEmpty || key.hasPrefix(root + "/") else { throw refuse() }
        return key
    }
}

/// Z85 (ZeroMQ RFC 32) decoding as Delta uses it: whole 5-character blocks of 4 big-endian bytes;
/// data whose length is not a multiple of 4 was zero-padded before encoding, and the descriptor's
/// `sizeInBytes` says how many bytes are real.
enum Z85 {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
    /// Character -> digit, 0xFF where the character is not in the alphabet.
    static let digits: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// The bytes of `text`, or nil when its length is not a multiple of 5, a character is not in
    /// the alphabet, or a block's value does not fit 32 bits.
    static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 5 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 5 * 4)
        var i = text.startIndex
        while i < text.endIndex {
            var v: UInt64 = 0
            for j in i..<(i + 5) {
                let d = digits[Int(text[j])]
                guard d != 0xFF else { return nil }
                v = v * 85 + UInt64(d)
            }
            guard v <= UInt64(UInt32.max) else { return nil }
            out.append(UInt8(truncatingIfNeeded: v >> 24))
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
            out.append(UInt8(truncatingIfNeeded: v))
            i += 5
        }
        return out
    }

    /// Encodes `bytes`, zero-padding them to a multiple of 4 (tests, and writers of inline DVs).
    static func encode(_ bytes: [UInt8]) -> String {
        var padded = bytes
        while padded.count % 4 != 0 { padded.append(0) }
        var out = [UInt8]()
        out.reserveCapacity(padded.count / 4 * 5)
        var block = [UInt8](repeating: 0, count: 5)
        for i in stride(from: 0, to: padded.count, by: 4) {
            var v = UInt32(padded[i]) << 24 | UInt32(padded[i + 1]) << 16 | UInt32(padded[i + 2]) << 8 | UInt32(padded[i + 3])
            for k in (0..<5).reversed() { block[k] = alphabet[Int(v % 85)]; v /= 85 }
            out += block
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// CRC-32 (IEEE 802.3, as zlib computes it) of a DV's bitmap: the Parquet library's (zlib).
enum CRC32 {
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { ParquetLibrary.crc32($0) }
    }
}

/// Delta's DV bitmap: the magic number 1681511377 (little endian), then a 64-bit Roaring bitmap
/// in the portable serialization (RoaringFormatSpec, "Extension for 64-bit implementations"):
/// a uint64 bucket count, then per bucket, ascending, a uint32 high key and a 32-bit Roaring
/// bitmap of the low halves. All integers are little endian.
enum DeletionVectorBitmap {
    static let magic: UInt32 = 1_681_511_377
    static let cookieNoRuns: UInt32 = 12346
    static let cookieRuns: UInt32 = 12347

    struct FormatError: Error {
        var message: String
        init(_ m: String) { message = m }
    }

    /// What a bitmap was made of (tests check that fixtures cover every container kind).
    struct Census: Equatable {
        var buckets = 0
        var arrays = 0, bitmaps = 0, runs = 0
        /// 32-bit bitmaps with each cookie, and with the run cookie and an offset header.
        var noRunCookies = 0, runCookies = 0, runCookiesWithOffsets = 0
    }

    /// The row indexes in `bytes` (magic number included), ascending.
    static func decode(_ bytes: ArraySlice<UInt8>, expectedCount: Int64? = nil) throws -> [Int64] {
        var census = Census()
        return try decode(bytes, expectedCount: expectedCount, census: &census)
    }

    static func decode(_ bytes: ArraySlice<UInt8>, expectedCount: Int64?, census: inout Census) throws -> [Int64] {
        var r = Reader(bytes: bytes)
        let m = try r.u32()
        guard m == magic else {
            // 1681511376 marks the older "native" RoaringBitmapArray layout, which the protocol does
            // not specify for DVs (its inline example is in it, big-endian); not read here.
            let native = m == magic - 1 || m.byteSwapped == magic - 1
            throw FormatError("magic number is \(m), not \(magic)" + (native ? " (the native RoaringBitmapArray layout, which is not supported)" : ""))
        }
        let buckets = try r.u64()
        guard buckets <= UInt64(r.remaining / 12) else {
            throw FormatError("\(buckets) buckets cannot fit in \(r.remaining) bytes")
        }
        var rows: [Int64] = []
        if let n = expectedCount, n > 0 { rows.reserveCapacity(Int(min(n, 1 << 24))) }
        var previousKey: UInt32?
        for _ in 0..<Int(buckets) {
            let high = try r.u32()
            guard high & 0x8000_0000 == 0 else { throw FormatError("bucket key \(high) has its most significant bit set") }
            if let p = previousKey, high <= p { throw FormatError("bucket keys are not ascending (\(high) after \(p))") }
            previousKey = high
            census.buckets += 1
            try decode32(&r, high: Int64(high) << 32, into: &rows, census: &census)
        }
        guard r.remaining == 0 else { throw FormatError("\(r.remaining) bytes follow the bitmap") }
        return rows
    }

    /// One 32-bit Roaring bitmap (RoaringFormatSpec: cookie header, descriptive header, offset
    /// header, containers), its values offset by `high`, appended to `rows`.
    private static func decode32(_ r: inout Reader, high: Int64, into rows: inout [Int64], census: inout Census) throws {
        let cookie = try r.u32()
        let count: Int
        var runFlags: ArraySlice<UInt8> = []
        let hasOffsets: Bool
        if cookie & 0xFFFF == cookieRuns {
            count = Int(cookie >> 16) + 1
            runFlags = try r.bytes((count + 7) / 8)
            hasOffsets = count >= 4
            census.runCookies += 1
            if hasOffsets { census.runCookiesWithOffsets += 1 }
        } else if cookie == cookieNoRuns {
            let n = try r.u32()
            guard n <= 65536 else { throw FormatError("\(n) containers (at most 65536)") }
            count = Int(n)
            hasOffsets = true
            census.noRunCookies += 1
        } else {
            throw FormatError("unknown Roaring cookie \(cookie)")
        }
        let header = try r.bytes(count * 4)
        if hasOffsets { _ = try r.bytes(count * 4) }  // offsets: the containers are read in order anyway
        var previousKey = -1
        for i in 0..<count {
            let h = header.startIndex + i * 4
            let key = Int(header[h]) | Int(header[h + 1]) << 8
            let cardinality = (Int(header[h + 2]) | Int(header[h + 3]) << 8) + 1
            guard key > previousKey else { throw FormatError("container keys are not ascending (\(key) after \(previousKey))") }
            previousKey = key
            let base = high | Int64(key) << 16
            let isRun = !runFlags.isEmpty && runFlags[runFlags.startIndex + i / 8] & (1 << (i % 8)) != 0
            if isRun {
                census.runs += 1
                let n = Int(try r.u16())
                var total = 0, last = -1
                for _ in 0..<n {
                    let start = Int(try r.u16()), length = Int(try r.u16()) + 1
                    guard start > last, start + length <= 65536 else {
                        throw FormatError("run \(start)+\(length) in container \(key) overlaps or leaves it")
                    }
                    for v in start..<(start + length) { rows.append(base | Int64(v)) }
                    last = start + length - 1
                    total += length
                }
                guard total == cardinality else {
                    throw FormatError("run container \(key) holds \(total) values, its header says \(cardinality)")
                }
            } else if cardinality <= 4096 {
                census.arrays += 1
                let values = try r.bytes(cardinality * 2)
                var last = -1
                var j = values.startIndex
                while j < values.endIndex {
                    let v = Int(values[j]) | Int(values[j + 1]) << 8
                    guard v > last else { throw FormatError("array container \(key) is not strictly ascending") }
                    rows.append(base | Int64(v))
                    last = v
                    j += 2
                }
            } else {
                census.bitmaps += 1
                let words = try r.bytes(8192)
                var total = 0
                for w in 0..<1024 {
                    let o = words.startIndex + w * 8
                    var word: UInt64 = 0
                    for k in 0..<8 { word |= UInt64(words[o + k]) << (8 * k) }
                    total += word.nonzeroBitCount
                    while word != 0 {
                        let bit = word.trailingZeroBitCount
                        rows.append(base | Int64(w * 64 + bit))
                        word &= word - 1
                    }
                }
                guard total == cardinality else {
                    throw FormatError("bitmap container \(key) holds \(total) values, its header says \(cardinality)")
                }
            }
        }
    }

    /// Little-endian reads that fail past the end.
    struct Reader {
        let bytes: ArraySlice<UInt8>
        var at: Int
        init(bytes: ArraySlice<UInt8>) { self.bytes = bytes; at = bytes.startIndex }
        var remaining: Int { bytes.endIndex - at }

        mutating func bytes(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n <= remaining else { throw FormatError("truncated: needs \(n) bytes at \(at - bytes.startIndex), \(remaining) left") }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        mutating func u16() throws -> UInt16 {
            let b = try bytes(2)
            return UInt16(b[b.startIndex]) | UInt16(b[b.startIndex + 1]) << 8
        }
        mutating func u32() throws -> UInt32 {
            let b = try bytes(4)
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(b[b.startIndex + k]) << (8 * k) }
            return v
        }
        mutating func u64() throws -> UInt64 {
            let b = try bytes(8)
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(b[b.startIndex + k]) << (8 * k) }
            return v
        }
    }
}
