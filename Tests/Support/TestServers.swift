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
