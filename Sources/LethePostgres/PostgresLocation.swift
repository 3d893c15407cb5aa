import Foundation
import LetheCore

/// Where a PostgreSQL state lives: `postgres://user[:password]@host[:port]/database[?schema=S]`
/// (`postgresql://` too). The password comes from the URL or else from `PGPASSWORD`; it is never
/// part of `description` or of an error. `schema` (default `lethe`) holds one installation: several
/// installations can share a database, each in its own schema.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var schema: String

    public static let defaultSchema = "lethe"

    /// `host:port/database` (schema `S`): what errors name (never the password).
    public var description: String { "\(host):\(port)/\(database) (schema \(schema))" }

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, schema: String = defaultSchema) {
        self.host = host; self.port = port; self.user = user; self.password = password; self.database = database; self.schema = schema
    }

    /// Parses a URL; `environment` supplies `PGPASSWORD` (and `PGUSER` when the URL names no user).
    /// Errors are `.badInput` and never repeat the password.
    public init(url: String, environment: [String: String]? = nil) throws {
        let environment = environment ?? ProcessInfo.processInfo.environment
        func bad(_ why: String) -> LetheError {
            LetheError(.badInput, "not a PostgreSQL state URL (\(why)); write postgres://user@host:port/database[?schema=name]")
        }
        var rest: Substring
        if url.hasPrefix("postgres://") {
            rest = url.dropFirst("postgres://".count)
        } else if url.hasPrefix("postgresql://") {
            rest = url.dropFirst("postgresql://".count)
        } else {
            throw bad("it must start with postgres://")
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw bad("no database") }
        let authority = rest[..<slash]
        let db = Self.decode(rest[rest.index(after: slash)...])
        guard let db, !db.isEmpty else { throw bad("no database") }
        var hostPort = authority
        var user: String? = nil
        var password: String? = nil
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                user = Self.decode(info[..<colon])
                password = Self.decode(info[info.index(after: colon)...])
                if password == nil { throw bad("the password is not valid percent-encoding") }
            } else {
                user = Self.decode(info)
            }
        }
        var host = String(hostPort)
        var port = 5432
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("an unclosed [ in the host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw bad("the port is not a number from 1 to 65535") }
                port = p
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw bad("the port is not a number from 1 to 65535")
            }
            port = p
        }
        guard !host.isEmpty else { throw bad("no host") }
        var schema = Self.defaultSchema
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = kv[0]
            let value = kv.count > 1 ? Self.decode(kv[1]) ?? "" : ""
            switch name {
            case "schema": schema = value
            case "sslmode" where value == "disable": break
            default: throw bad("unknown parameter `\(name)` (known: schema)")
            }
        }
        guard Self.isPlainIdentifier(schema) else {
            throw bad("the schema `\(schema)` must be lower-case letters, digits and _, starting with a letter or _ (at most 63)")
        }
        guard let name = user ?? environment["PGUSER"], !name.isEmpty else { throw bad("no user") }
        self.init(
            host: host, port: port, user: name, password: password ?? environment["PGPASSWORD"], database: db, schema: schema)
    }

    /// A schema name used unquoted in SQL: `[a-z_][a-z0-9_]*`, at most 63 bytes.
    static func isPlainIdentifier(_ s: String) -> Bool {
        guard let f = s.utf8.first, s.utf8.count <= 63, f == UInt8(ascii: "_") || (f >= 97 && f <= 122) else { return false }
        return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    static func decode(_ s: Substring) -> String? { String(s).removingPercentEncoding }
}
