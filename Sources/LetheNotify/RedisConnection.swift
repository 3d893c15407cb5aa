import Foundation
import LetheCore
import NIOCore

/// Where a Redis server is: `redis://[user:password@]host[:port][/db]` (port 6379, db 0 by default).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    /// Parses a `redis://` URL; `field` names the setting in errors (`stream.redis`). Errors never
    /// repeat the password.
    public init(_ text: String, field: String = "stream.redis") throws {
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased() else {
            throw LetheError.badInput("not a URL (expected redis://[user:password@]host:port[/db])", at: field)
        }
        if scheme == "rediss" {
            throw LetheError(.unsupported, "TLS to Redis (rediss://) is not supported yet: use redis:// over a trusted network or a TLS tunnel", at: field)
        }
        guard scheme == "redis" else { throw LetheError.badInput("scheme `\(scheme)` is not redis://", at: field) }
        guard let h = c.host, !h.isEmpty else { throw LetheError.badInput("the Redis URL has no host", at: field) }
        host = h
        port = c.port ?? 6379
        guard (1...65535).contains(port) else { throw LetheError.badInput("port \(port) is out of range", at: field) }
        user = c.user.flatMap { $0.isEmpty ? nil : $0 }
        password = c.password
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        if path.isEmpty {
            database = 0
        } else if let d = Int(path), d >= 0 {
            database = d
        } else {
            throw LetheError.badInput("the path `/\(path)` is not a database number", at: field)
        }
    }

    /// The URL without its password.
    public var description: String {
        let auth = user.map { $0 + (password == nil ? "" : ":***") + "@" } ?? (password == nil ? "" : ":***@")
        let h = host.contains(":") ? "[\(host)]" : host
        return "redis://\(auth)\(h):\(port)" + (database == 0 ? "" : "/\(database)")
    }
}

/// A connection to Redis speaking RESP2: AUTH and SELECT from the URL on connect, then commands,
/// one at a time or pipelined (written together, replies read in order).
///
/// Scoped: `RedisConnection.with(url) { redis in … }` connects, runs the closure, closes. Used by
/// one task at a time (not `Sendable`). A dropped connection or a missed deadline throws; callers
/// that must survive them (the deletion-set sink) reconnect with backoff.
public final class RedisConnection {
    let io: ByteConnection
    public let url: RedisURL

    private init(_ io: ByteConnection, url: RedisURL) {
        self.io = io
        self.url = url
    }

    /// Connects to `url`, authenticates and selects the database, runs `body`, and closes.
    /// `timeout` (seconds) bounds the connect and each reply.
    public static func with<T: Sendable>(
        _ url: RedisURL, timeout: Double = 10, _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let t = TimeAmount.nanoseconds(Int64(timeout * 1e9))
        return try await ByteConnection.with(host: url.host, port: url.port, tls: nil, what: "Redis", connectTimeout: t, timeout: t) { io in
            let redis = RedisConnection(io, url: url)
            var hello: [[String]] = []
            if let password = url.password {
                hello.append(url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if url.database != 0 { hello.append(["SELECT", String(url.database)]) }
            if !hello.isEmpty {
                for (command, reply) in zip(hello, try await redis.pipeline(hello)) {
                    if case .error(let e) = reply { throw LetheError(.failure, "\(io.peer) refused \(command[0]): \(e)") }
                }
            }
            return try await body(redis)
        }
    }

    /// Sends `commands` in one write and returns their replies in order; error replies are
    /// values (`.error`), not thrown.
    public func pipeline(_ commands: [[String]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var out = ByteBuffer()
        for c in commands { RESP.encode(c, into: &out) }
        try await io.write(out)
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        while replies.count < commands.count {
            if let v = try RESP.parse(&io.buffer) {
                replies.append(v)
            } else {
                try await io.fill()
            }
        }
        return replies
    }

    /// Sends one command and returns its reply; an error reply throws, naming the command and the reply.
    @discardableResult
    public func command(_ arguments: [String]) async throws -> RESPValue {
        let reply = try await pipeline([arguments])[0]
        if case .error(let e) = reply { throw LetheError(.failure, "\(io.peer): \(arguments.first ?? "") failed: \(e)") }
        return reply
    }

    /// `command(["SET", "k", "v"])` written as `command("SET", "k", "v")`.
    @discardableResult
    public func command(_ arguments: String...) async throws -> RESPValue { try await command(arguments) }
}
