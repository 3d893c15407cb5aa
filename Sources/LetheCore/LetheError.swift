/// The one error type of Lethe's own modules.
///
/// `code` says what kind of failure it is (the CLI maps it to an exit code, the
/// server to an HTTP status); `message` is one line naming the file, line or field
/// involved. Messages never carry a raw subject identifier: use the keyed hash.
public struct LetheError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: String, Sendable { case badInput, badUsage, notFound, conflict, forbidden, failure, corrupt, io, unsupported }
        let kind: Kind
        /// Bad input data or configuration (exit 2).
        public static let badInput = Code(kind: .badInput)
        /// The command was called wrongly (exit 2).
        public static let badUsage = Code(kind: .badUsage)
        /// A named thing does not exist (exit 2 from the CLI: the caller named it).
        public static let notFound = Code(kind: .notFound)
        /// A concurrent change or a state that forbids the step (exit 1).
        public static let conflict = Code(kind: .conflict)
        /// The principal may not do this, e.g. approving their own request (exit 1).
        public static let forbidden = Code(kind: .forbidden)
        /// The work failed (exit 1).
        public static let failure = Code(kind: .failure)
        /// Stored data is corrupt: a lake object, or Lethe's own state (exit 1).
        public static let corrupt = Code(kind: .corrupt)
        /// The operating system refused an operation (exit 1).
        public static let io = Code(kind: .io)
        /// Data Lethe cannot handle correctly (a table feature, a column type, a codec): refused by name,
        /// before anyone approves, and nothing is touched (exit 2).
        public static let unsupported = Code(kind: .unsupported)
        public var description: String { kind.rawValue }
    }

    public var code: Code
    public var message: String
    /// Where: a file or object path, optionally with line / offset / field.
    public var location: String?
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, at location: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.underlying = cause
    }

    public var description: String {
        var s = location.map { "\($0): \(message)" } ?? message
        if let underlying { s += " (\(underlying))" }
        return s
    }

    public static func badInput(_ message: String, at location: String? = nil) -> LetheError {
        LetheError(.badInput, message, at: location)
    }
    public static func failure(_ message: String, at location: String? = nil) -> LetheError {
        LetheError(.failure, message, at: location)
    }
    public static func io(_ message: String, at location: String? = nil, errno: Int32? = nil) -> LetheError {
        LetheError(.io, errno.map { "\(message): \(String(cString: strerror($0)))" } ?? message, at: location)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
