import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// moto's AWS API server (S3, SQS, KMS, IAM…) from the project's venv (`scripts/moto_server.py`),
/// on a free loopback port, for as long as this value lives: `stop()` (or the test process ending)
/// closes its standard input and it exits. With `auth`, moto checks every request's Signature V4
/// against an IAM user it made: `accessKey`/`secretKey` are that user's.
public final class MotoServer {
    public let endpoint: String
    public let accessKey: String
    public let secretKey: String
    /// `127.0.0.1:PORT`, the Host header of path-style requests.
    public var host: String { String(endpoint.dropFirst("http://".count)) }
    let process: Process
    let input: Pipe

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(auth: Bool = false, timeout: Double = 60) throws {
        guard FileManager.default.isExecutableFile(atPath: Peers.pythonPath) else {
            throw Failure(description: "moto needs \(Peers.pythonPath): run `scripts/bootstrap --python`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Peers.pythonPath)
        p.arguments = [Peers.script("moto_server.py")] + (auth ? ["--auth"] : [])
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        // The first line naming the endpoint, within `timeout` seconds.
        let fd = output.fileHandleForReading.fileDescriptor
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var byte: UInt8 = 0
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            let ready = poll(&pfd, 1, left)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else {
                p.terminate()
                throw Failure(description: "moto did not start within \(Int(timeout)) s")
            }
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else {
                throw Failure(description: "moto exited before it was ready: \(String(decoding: line, as: UTF8.self))")
            }
            if byte == UInt8(ascii: "\n") {
                if line.first == UInt8(ascii: "{") { break }
                line = []
            } else {
                line.append(byte)
            }
        }
        guard let j = try JSONSerialization.jsonObject(with: Data(line)) as? [String: String], let e = j["endpoint"],
            let a = j["access_key"], let s = j["secret_key"]
        else { throw Failure(description: "moto printed \(String(decoding: line, as: UTF8.self))") }
        endpoint = e
        accessKey = a
        secretKey = s
        process = p
        self.input = input
    }

    /// Stops the server and waits for it (idempotent).
    public func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }

    deinit { stop() }
}

/// A PostgreSQL server (Debian's `postgresql`, version 15) for the tests: a new cluster in a temporary
/// folder (`initdb`), started with `pg_ctl` on 127.0.0.1 and a free port (fsync off), with a role
/// `lethe` that logs in with a password (scram-sha-256) and owns the database `lethe_test`. One per
/// test process (`shared`): a watchdog shell stops it (`pg_ctl stop -m fast`) and removes the folder
/// when the test process ends (its standard input, held by this process, closes). `initdb` and
/// `postgres` refuse to run as root: as root they run as the `postgres` user, the folder chowned to it.
public final class PostgresServer: @unchecked Sendable {
    public let host = "127.0.0.1"
    public let port: Int
    public let user = "lethe"
    public let password: String
    public let database = "lethe_test"
    /// The cluster's folder (data, socket, log).
    public let folder: String
    /// The write end of the watchdog's standard input (close-on-exec: no other child inherits it).
    let watchdogInput: Int32
    static let bin = "/usr/lib/postgresql/15/bin"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The server of this test process, started on first use.
    public static let shared: Result<PostgresServer, Failure> = {
        do { return .success(try PostgresServer()) } catch let e as Failure { return .failure(e) } catch {
            return .failure(Failure(description: "\(error)"))
        }
    }()

    /// The shared server, or a failure naming what is missing (the tests fail, never skip).
    public static func get() throws -> PostgresServer { try shared.get() }

    /// `postgres://lethe:PASSWORD@127.0.0.1:PORT/lethe_test` with `?schema=` when given.
    public func url(schema: String? = nil, withPassword: Bool = true) -> String {
        let auth = withPassword ? "\(user):\(password)" : user
        return "postgres://\(auth)@\(host):\(port)/\(database)" + (schema.map { "?schema=\($0)" } ?? "")
    }

    /// A schema name no test of this process used (`t_<random>`): one installation per test.
    public func freshSchema(_ hint: String = "t") -> String {
        let clean = hint.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.prefix(20)
        return "t_" + String(clean) + "_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    init(timeout: Double = 60) throws {
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: Self.bin + "/initdb") else {
            throw Failure(description: "PostgreSQL 15 is not installed (\(Self.bin)/initdb): run `scripts/bootstrap`")
        }
        var template = Array("/tmp/lethe-pg-XXXXXX".utf8CString)  // reachable by the `postgres` user
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(description: "cannot create a temporary folder for PostgreSQL")
        }
        folder = String(cString: made)
        let root = getuid() == 0
        if root {
            guard let pw = getpwnam("postgres") else {
                throw Failure(description: "running as root and there is no `postgres` user to run PostgreSQL as: run `scripts/bootstrap`")
            }
            _ = chown(folder, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        password = "pw-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        port = try Self.freePort()
        let data = folder + "/data"
        let folder = self.folder
        func run(_ args: [String], _ what: String) throws { try Self.run(args, what, root: root, folder: folder) }
        do {
            try run(
                [
                    Self.bin + "/initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "-E", "UTF8", "--no-locale", "--no-sync",
                ], "initdb")
            let options = [
                "-p \(port)", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=\(folder)", "-c fsync=off",
                "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200", "-c shared_buffers=32MB",
            ].joined(separator: " ")
            try run([Self.bin + "/pg_ctl", "-D", data, "-l", folder + "/log", "-w", "-t", "\(Int(timeout))", "-o", options, "start"], "pg_ctl start")
        } catch {
            try? fm.removeItem(atPath: folder)
            throw error
        }
        // From here the watchdog owns the server: it stops it when this process's end closes its input.
        let stop = (root ? "runuser -u postgres -- " : "") + "\(Self.bin)/pg_ctl -D '\(data)' -m fast -w stop >/dev/null 2>&1"
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        // Close-on-exec on the end this process keeps: no other child inherits it.
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        _ = try Self.spawn(["/bin/bash", "-c", Self.closeInherited + "read _ignored; \(stop); rm -rf '\(folder)'"], stdin: fds[0], folder: folder)
        close(fds[0])
        watchdogInput = fds[1]
        try run(
            [
                Self.bin + "/psql", "-X", "-q", "-h", folder, "-p", "\(port)", "-U", "postgres", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1",
                "-c", "CREATE ROLE \(user) LOGIN PASSWORD '\(password)'",
                "-c", "CREATE DATABASE \(database) OWNER \(user)",
            ], "creating the test role and database")
    }

    /// Runs SQL as the superuser (over the cluster's socket) in `database` (default: the test database).
    public func superuserSQL(_ sql: String, database db: String? = nil) throws {
        try Self.run(
            [Self.bin + "/psql", "-X", "-q", "-h", folder, "-p", "\(port)", "-U", "postgres", "-d", db ?? database, "-v", "ON_ERROR_STOP=1", "-c", sql],
            "psql", root: getuid() == 0, folder: folder)
    }

    /// Runs a PostgreSQL program (as the `postgres` user when this process is root); fails with its output.
    static func run(_ args: [String], _ what: String, root: Bool, folder: String) throws {
        let output = folder + "/command.out"
        let argv =
            ["/bin/bash", "-c", closeInherited + "exec \"$@\" >'\(output)' 2>&1 </dev/null", "bash"]
            + (root ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + args
        let pid = try spawn(argv, stdin: nil, folder: folder)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
            throw Failure(description: "\(what) failed (status \(status)): \(text.suffix(600)) \(log.suffix(600))")
        }
    }

    /// Starts `argv` (an absolute path first) with `posix_spawn`, its standard input `stdin` (else
    /// /dev/null), in `folder`; returns its pid. Not Foundation's `Process`: it decides that a child
    /// ended when a socket the child inherited closes, which a server the child leaves running keeps open.
    static func spawn(_ argv: [String], stdin: Int32?, folder: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let command = ["/bin/bash", "-c", "cd \"$0\" && exec \"$@\"", folder] + argv
        var cArgs = command.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(argv.first ?? ""): errno \(rc)") }
        return pid
    }

    /// Closes every descriptor above 2 this shell inherited: the server `pg_ctl` leaves running must
    /// hold none of this process's (Foundation's `Process` learns a child ended when its socket closes,
    /// and a server holding another child's would keep that one "running").
    static let closeInherited = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#

    /// A loopback port nothing listens on now (bound to port 0, then closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw Failure(description: "cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A Python peer from the project's venv that prints one JSON line when it is ready and exits when
/// its standard input closes (`scripts/webhook_receiver.py`, `scripts/smtp_receiver.py`): started
/// by `init`, stopped by `stop()` or when this value (or the test process) ends. A peer that answers
/// requests (`scripts/jwt_issuer.py`) takes a JSON line and answers one: `exchange`.
public final class PythonPeer: @unchecked Sendable {
    /// The ready line, parsed.
    public let ready: [String: Any]
    let process: Process
    let input: Pipe
    let output: Pipe
    let script: String
    let lock = NSLock()

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(script: String, arguments: [String], timeout: Double = 30) throws {
        guard FileManager.default.isExecutableFile(atPath: Peers.pythonPath) else {
            throw Failure(description: "\(script) needs \(Peers.pythonPath): run `scripts/bootstrap --python`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Peers.pythonPath)
        p.arguments = [Peers.script(script)] + arguments
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        do {
            ready = try Self.jsonLine(output.fileHandleForReading.fileDescriptor, timeout: timeout, script: script, waiting: "start")
        } catch {
            p.terminate()
            throw error
        }
        process = p
        self.input = input
        self.output = output
        self.script = script
    }

    /// Sends `request` as one JSON line; the peer's JSON answer line.
    public func exchange(_ request: [String: Any], timeout: Double = 120) throws -> [String: Any] {
        try lock.withLock {
            var line = try JSONSerialization.data(withJSONObject: request)
            line.append(UInt8(ascii: "\n"))
            try input.fileHandleForWriting.write(contentsOf: line)
            return try Self.jsonLine(output.fileHandleForReading.fileDescriptor, timeout: timeout, script: script, waiting: "answer")
        }
    }

    /// The next line of `fd` that is a JSON object (other lines skipped), within `timeout` seconds.
    static func jsonLine(_ fd: Int32, timeout: Double, script: String, waiting: String) throws -> [String: Any] {
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var byte: UInt8 = 0
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(0, deadline.timeIntervalSinceNow) * 1000))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw Failure(description: "\(script) did not \(waiting) within \(Int(timeout)) s") }
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { throw Failure(description: "\(script) exited before it would \(waiting)") }
            if byte == UInt8(ascii: "\n") {
                if line.first == UInt8(ascii: "{") { break }
                line = []
            } else {
                line.append(byte)
            }
        }
        guard let j = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw Failure(description: "\(script) printed \(String(decoding: line, as: UTF8.self))")
        }
        return j
    }

    /// Stops the peer and waits for it (idempotent).
    public func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }

    deinit { stop() }

    /// The JSON lines of a log file a peer appends to (none if it does not exist yet).
    public static func jsonLines(_ path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// A new empty temporary folder.
    public static func temporaryFolder(_ hint: String) throws -> String {
        var template = Array("/tmp/lethe-\(hint)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(description: "cannot create a temporary folder")
        }
        return String(cString: made)
    }
}

/// A webhook receiver (`scripts/webhook_receiver.py`) on a free loopback port: it verifies each
/// delivery's signature in Python with `secret` and records it. `/fail` answers 500, `/slow` after 5 s.
public final class WebhookReceiver: @unchecked Sendable {
    public let url: String
    let peer: PythonPeer
    let folder: String
    var log: String { folder + "/received.jsonl" }

    public init(secret: String) throws {
        folder = try PythonPeer.temporaryFolder("hooks")
        peer = try PythonPeer(script: "webhook_receiver.py", arguments: [folder + "/received.jsonl", secret])
        guard let u = peer.ready["url"] as? String else { throw PythonPeer.Failure(description: "webhook_receiver.py printed no url") }
        url = u
    }

    /// The deliveries received so far: `path`, `headers` (lower-case names), `body`, `verified`.
    public var received: [[String: Any]] { PythonPeer.jsonLines(log) }

    public func stop() {
        peer.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
    deinit { stop() }
}

/// aiosmtpd (`scripts/smtp_receiver.py`) on a free loopback port, recording every message it
/// accepts; with `auth` it requires AUTH with that `user:password`; with `starttls` or `smtps`
/// (a PEM certificate and key) it offers STARTTLS (and requires it) or speaks TLS from the start.
/// Recipients `nobody@…` are refused for good (550), `busy@…` for now (451).
public final class SMTPReceiver: @unchecked Sendable {
    public let port: Int
    let peer: PythonPeer
    let folder: String
    var log: String { folder + "/messages.jsonl" }

    public init(auth: String? = nil, starttls: (cert: String, key: String)? = nil, smtps: (cert: String, key: String)? = nil) throws {
        folder = try PythonPeer.temporaryFolder("smtp")
        var args = [folder + "/messages.jsonl"]
        if let auth { args += ["--auth", auth] }
        if let starttls { args += ["--starttls", starttls.cert, starttls.key] }
        if let smtps { args += ["--smtps", smtps.cert, smtps.key] }
        peer = try PythonPeer(script: "smtp_receiver.py", arguments: args)
        guard let p = peer.ready["port"] as? Int else { throw PythonPeer.Failure(description: "smtp_receiver.py printed no port") }
        port = p
    }

    /// The messages accepted so far: `mail_from`, `rcpt_tos`, `data` (the message text), `tls`.
    public var messages: [[String: Any]] { PythonPeer.jsonLines(log) }

    public func stop() {
        peer.stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
    deinit { stop() }

    /// A self-signed certificate for 127.0.0.1 and localhost (`openssl req`), as PEM files in a new
    /// folder: the certificate doubles as the client's trusted CA.
    public static func selfSignedCertificate() throws -> (cert: String, key: String) {
        let folder = try PythonPeer.temporaryFolder("tls")
        let cert = folder + "/cert.pem", key = folder + "/key.pem"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert,
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw PythonPeer.Failure(description: "openssl req failed (exit \(p.terminationStatus))") }
        return (cert, key)
    }
}

/// A Redis server (Debian's `redis-server`) on a free loopback port, no persistence, optionally
/// with a password: started by `init`, stopped by `stop()` (or when the test process ends: a
/// watchdog shell holding a pipe from this process kills it), restarted empty on the same port by
/// `restart()`. `cli` runs `redis-cli` against it.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let password: String?
    let folder: String
    private var watchdogInput: Int32 = -1
    private var watchdogPID: pid_t = 0
    static let server = "/usr/bin/redis-server"
    static let client = "/usr/bin/redis-cli"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `redis://[:password@]127.0.0.1:PORT`.
    public var url: String { "redis://" + (password.map { ":\($0)@" } ?? "") + "127.0.0.1:\(port)" }

    public init(password: String? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.server) else {
            throw Failure(description: "redis-server is not installed (\(Self.server)): run `scripts/bootstrap`")
        }
        self.password = password
        port = try PostgresServer.freePort()
        folder = try PythonPeer.temporaryFolder("redis")
        try start()
    }

    /// Starts the server (after `stop`) and waits until it answers PING.
    public func start() throws {
        guard watchdogInput < 0 else { return }
        var args = [Self.server, "--port", "\(port)", "--bind", "127.0.0.1", "--save", "''", "--appendonly", "no", "--dir", folder]
        if let password { args += ["--requirepass", password] }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let line = args.joined(separator: " ")
        // SIGKILL: the test process's threads block SIGTERM, and a spawned child inherits that mask.
        watchdogPID = try PostgresServer.spawn(
            ["/bin/bash", "-c", PostgresServer.closeInherited + "\(line) >'\(folder)/log' 2>&1 & p=$!; read _ignored; kill -KILL $p; wait $p"],
            stdin: fds[0], folder: folder)
        close(fds[0])
        watchdogInput = fds[1]
        // A hang guard, not a timing check: under the full parallel test run on 2 cores a starting
        // redis-server once needed more than 20 s to answer (the CI clone of session 9).
        let deadline = Date().addingTimeInterval(120)
        while true {
            if (try? cli(["PING"]))?.trimmingCharacters(in: .whitespacesAndNewlines) == "PONG" { return }
            guard Date() < deadline else {
                let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
                stop()
                throw Failure(description: "redis-server did not answer within 120 s: \(log.suffix(600))")
            }
            usleep(50_000)
        }
    }

    /// Stops the server and waits until it has exited (idempotent).
    public func stop() {
        guard watchdogInput >= 0 else { return }
        close(watchdogInput)
        watchdogInput = -1
        var status: Int32 = 0
        while waitpid(watchdogPID, &status, 0) < 0 && errno == EINTR {}
    }

    /// Stops the server and starts a new, empty one on the same port.
    public func restart() throws {
        stop()
        try start()
    }

    /// Runs `redis-cli` with `arguments` against the server; its standard output.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.client)
        p.arguments = ["-h", "127.0.0.1", "-p", "\(port)"] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let o = Peers.readAll(out.fileHandleForReading.fileDescriptor)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failure(description: "redis-cli \(arguments.joined(separator: " ")) failed (exit \(p.terminationStatus))") }
        return String(decoding: o, as: UTF8.self)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
