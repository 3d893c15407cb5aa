/// The one error type of the `Parquet` module.
///
/// `code` says what went wrong, `message` says it in words, and the location
/// fields name where: the file, row group, column (dotted path) and page.
/// `description` joins them into one line, e.g.
/// `events.parquet: row group 2, column user.id, page 3: CRC mismatch (...)`.
public struct ParquetError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Raw: String, Sendable {
            case badMagic, truncated, corruptMetadata, corruptPage, decompression
            case checksum, unsupported, invalidArgument, io, limitExceeded
        }
        private let raw: Raw
        private init(_ raw: Raw) { self.raw = raw }
        /// The file does not start or end with `PAR1`.
        public static let badMagic = Code(.badMagic)
        /// The file or a structure inside it ends before it should.
        public static let truncated = Code(.truncated)
        /// The footer (Thrift) or the schema is malformed or inconsistent.
        public static let corruptMetadata = Code(.corruptMetadata)
        /// A page header or page body is malformed or does not add up.
        public static let corruptPage = Code(.corruptPage)
        /// A compressed page failed to decompress.
        public static let decompression = Code(.decompression)
        /// A page CRC did not match.
        public static let checksum = Code(.checksum)
        /// A valid feature this library does not implement (e.g. encryption, LZO).
        public static let unsupported = Code(.unsupported)
        /// The caller passed something invalid (unknown column, bad row list, bad values).
        public static let invalidArgument = Code(.invalidArgument)
        /// The source or sink failed.
        public static let io = Code(.io)
        /// A length in the file exceeds a configured safety limit.
        public static let limitExceeded = Code(.limitExceeded)
        public var description: String { raw.rawValue }
    }

    public var code: Code
    public var message: String
    /// The file's name as given to `ParquetFile(source:name:)`.
    public var file: String?
    public var rowGroup: Int?
    /// Dotted path of the leaf column.
    public var column: String?
    /// Zero-based index of the page inside its column chunk (dictionary page included).
    public var page: Int?

    public init(_ code: Code, _ message: String, file: String? = nil, rowGroup: Int? = nil, column: String? = nil, page: Int? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.rowGroup = rowGroup
        self.column = column
        self.page = page
    }

    public var description: String {
        var location: [String] = []
        if let rowGroup { location.append("row group \(rowGroup)") }
        if let column { location.append("column \(column)") }
        if let page { location.append("page \(page)") }
        var out = file.map { "\($0): " } ?? ""
        if !location.isEmpty { out += location.joined(separator: ", ") + ": " }
        return out + message + " [\(code)]"
    }

    /// Returns a copy with any location fields that are still empty filled in.
    func located(file: String? = nil, rowGroup: Int? = nil, column: String? = nil, page: Int? = nil) -> ParquetError {
        var e = self
        if e.file == nil { e.file = file }
        if e.rowGroup == nil { e.rowGroup = rowGroup }
        if e.column == nil { e.column = column }
        if e.page == nil { e.page = page }
        return e
    }
}

/// Runs `body`, turning any error into a `ParquetError` carrying the given location.
@inline(__always)
func withLocation<T>(file: String? = nil, rowGroup: Int? = nil, column: String? = nil, page: Int? = nil, _ body: () throws -> T) throws(ParquetError) -> T {
    do {
        return try body()
    } catch let e as ParquetError {
        throw e.located(file: file, rowGroup: rowGroup, column: column, page: page)
    } catch {
        throw ParquetError(.io, "\(error)", file: file, rowGroup: rowGroup, column: column, page: page)
    }
}
