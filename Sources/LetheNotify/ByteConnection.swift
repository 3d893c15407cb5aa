import LetheCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One TCP connection (optionally TLS) read and written as bytes by one task: the transport of the
/// SMTP and Redis clients. Every read and write has a deadline: when it passes, the connection is
/// closed and the call throws an error saying so.
///
/// Not `Sendable`: it lives inside `with(…)` and is used by the task that opened it.
final class ByteConnection {
    let channel: any Channel
    /// `what at host:port`, for errors (never credentials).
    let peer: String
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// Bytes received and not consumed yet.
    var buffer = ByteBuffer()
    /// The deadline of one read or write.
    let timeout: TimeAmount

    private init(
        channel: any Channel, peer: String, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, timeout: TimeAmount
    ) {
        self.channel = channel
        self.peer = peer
        self.iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.timeout = timeout
    }

    /// Connects to `host:port` (TLS from the first byte when `tls` is given), runs `body`, closes.
    /// `what` names the server in errors (`SMTP server`, `Redis`).
    static func with<T: Sendable>(
        host: String, port: Int, tls: TLSConfiguration?, what: String, connectTimeout: TimeAmount, timeout: TimeAmount,
        _ body: (ByteConnection) async throws -> T
    ) async throws -> T {
        let peer = "\(what) at \(host):\(port)"
        let context = try tls.map { c in
            do { return try NIOSSLContext(configuration: c) } catch {
                throw LetheError(.badInput, "cannot set up TLS for \(peer): \(error)")
            }
        }
        let serverName = isIPAddress(host) ? nil : host
        let async: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            async = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let context {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw LetheError(.io, "cannot connect to \(peer): \(error)")
        }
        return try await async.executeThenClose { inbound, outbound in
            let c = ByteConnection(channel: async.channel, peer: peer, inbound: inbound, outbound: outbound, timeout: timeout)
            return try await body(c)
        }
    }

    /// Starts TLS on the open connection (SMTP STARTTLS). Bytes the server sent before the handshake
    /// would be plain text an attacker injected (CVE-2011-0411 and kin): refused.
    func startTLS(_ configuration: TLSConfiguration, host: String) async throws {
        guard buffer.readableBytes == 0 else {
            throw LetheError(.failure, "\(peer) sent data before the TLS handshake (refused)")
        }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw LetheError(.badInput, "cannot set up TLS for \(peer): \(error)")
        }
        let serverName = Self.isIPAddress(host) ? nil : host
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                NIOSSLClientHandler(context: context, serverHostname: serverName), position: .first)
        }.get()
    }

    /// Sends bytes (waits until the channel took them).
    func write(_ bytes: ByteBuffer) async throws {
        let outbound = self.outbound
        try await withDeadline("sending to") { try await outbound.write(bytes) }
    }

    /// Reads more bytes into `buffer`; throws when the peer closed the connection or the deadline passed.
    func fill() async throws {
        var it = iterator
        let more = try await withDeadline("waiting for") { try await it.next() }
        iterator = it
        guard var more else { throw LetheError(.io, "\(peer) closed the connection") }
        buffer.writeBuffer(&more)
    }

    /// One line without its line end (CRLF or LF), at most `limit` bytes.
    func readLine(limit: Int = 8192) async throws -> [UInt8] {
        while true {
            if let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = nl - buffer.readerIndex
                var line = buffer.readBytes(length: length) ?? []
                buffer.moveReaderIndex(forwardBy: 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return line
            }
            guard buffer.readableBytes <= limit else { throw LetheError(.failure, "\(peer) sent a line longer than \(limit) bytes") }
            try await fill()
        }
    }

    /// Runs `body`; if it has not finished after `timeout`, closes the connection and throws.
    private func withDeadline<R>(_ doing: String, _ body: () async throws -> R) async throws -> R {
        let fired = Fired()
        let channel = self.channel
        let task = channel.eventLoop.scheduleTask(in: timeout) {
            fired.flag.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        defer { task.cancel() }
        let seconds = Double(timeout.nanoseconds) / 1e9
        do {
            let r = try await body()
            if fired.flag.load(ordering: .relaxed) { throw LetheError(.io, "timed out after \(seconds) s \(doing) \(peer)") }
            return r
        } catch let e as LetheError {
            throw e
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if fired.flag.load(ordering: .relaxed) { throw LetheError(.io, "timed out after \(seconds) s \(doing) \(peer)") }
            throw LetheError(.io, "connection to \(peer) failed: \(error)")
        }
    }

    private final class Fired: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// True for an IPv4 or IPv6 literal (TLS sends no server name for those and checks the address).
    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
