import AsyncHTTPClient
import Crypto
import Foundation
import LetheCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Where a bucket is and how to reach it.
public struct S3Endpoint: Sendable, Equatable {
    /// `https` or `http` (a local test server).
    public var scheme: String
    /// Host name or address, and port when not the scheme's default.
    public var host: String
    public var port: Int?
    public var region: String
    public var bucket: String
    /// Path-style addressing (`host/bucket/key`, S3-compatible servers) instead of virtual-hosted
    /// (`bucket.host/key`, AWS's default).
    public var pathStyle: Bool

    /// From an endpoint URL (`http://127.0.0.1:9000`; nil: AWS's own for `region`).
    public init(url: String?, region: String, bucket: String, pathStyle: Bool? = nil) throws {
        self.region = region
        self.bucket = bucket
        guard let url else {
            scheme = "https"
            host = "s3.\(region).amazonaws.com"
            port = nil
            self.pathStyle = pathStyle ?? bucket.contains(".")
            return
        }
        guard let u = URLComponents(string: url), let s = u.scheme?.lowercased(), s == "http" || s == "https", let h = u.host, !h.isEmpty
        else { throw LetheError.badInput("`s3.endpoint` must be an http(s) URL such as http://127.0.0.1:9000, not \(url)", at: "lethe.yaml") }
        scheme = s
        host = h
        port = u.port
        // Custom endpoints are S3-compatible servers: path style unless told otherwise.
        self.pathStyle = pathStyle ?? true
    }

    /// The Host header for a request.
    var hostHeader: String {
        let h = pathStyle ? host : "\(bucket).\(host)"
        guard let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) else { return h }
        return "\(h):\(port)"
    }

    /// The request path of an object key (or of the bucket, for `nil`).
    func path(key: String?) -> String {
        let k = key.map { "/" + SigV4.encode($0, keepSlash: true) } ?? ""
        return pathStyle ? "/" + SigV4.encode(bucket, keepSlash: false) + k : (k.isEmpty ? "/" : k)
    }
}

/// A response: status, headers (names lower-cased) and the whole body.
public struct S3Response: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    /// The `<Error><Code>` of an error body, when there is one.
    public var errorCode: String? { (try? XML.parse(body)).flatMap(S3ErrorDocument.init)?.code }
}

/// Signed HTTP requests to one bucket, with retries (connection errors, 500/502/503/504, SlowDown,
/// InternalError, RequestTimeout) and full-jitter backoff. Counters of requests, retries and bytes.
public final class S3Client: Sendable {
    public let endpoint: S3Endpoint
    let signer: SigV4
    let maxAttempts: Int
    /// Bodies larger than this are refused (listings and errors are small; reads are ranged).
    static let maxBody = 256 << 20

    public struct Counters: Sendable, Equatable {
        public var requests = 0
        public var retries = 0
        public var bytesIn: Int64 = 0
        public var bytesOut: Int64 = 0
    }
    private let counters = Mutex(Counters())
    public var stats: Counters { counters.withLock { $0 } }

    /// The process's one HTTP client: no redirects (S3 names the right region in its error
    /// instead), 5 s to connect, 60 s to read. It lives as long as the process.
    static let http: HTTPClient = {
        var c = HTTPClient.Configuration()
        c.redirectConfiguration = .disallow
        c.timeout = .init(connect: .seconds(5), read: .seconds(60))
        c.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }()

    public init(endpoint: S3Endpoint, credentials: AWSCredentials, maxAttempts: Int = 8) {
        self.endpoint = endpoint
        self.signer = SigV4(credentials: credentials, region: endpoint.region, service: "s3")
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Sends one request (retried as above) and returns the final response, whatever its status.
    /// `what` names the operation in errors (`GET s3://bucket/key`).
    public func send(
        _ method: String, key: String?, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = [],
        body: [UInt8] = [], what: String
    ) async throws -> S3Response {
        let path = endpoint.path(key: key)
        let signable = SignableRequest(
            method: method, host: endpoint.hostHeader, path: path, query: query, headers: headers, payloadHash: SigV4.payloadHash(body))
        let url = "\(endpoint.scheme)://\(endpoint.hostHeader)\(path)" + (query.isEmpty ? "" : "?" + signable.encodedQuery)
        var attempt = 0
        let started = Date()
        while true {
            attempt += 1
            counters.withLock {
                $0.requests += 1
                $0.bytesOut += Int64(body.count)
                if attempt > 1 { $0.retries += 1 }
            }
            var req = HTTPClientRequest(url: url)
            req.method = HTTPMethod(rawValue: method)
            req.headers.add(name: "Host", value: endpoint.hostHeader)
            for (n, v) in headers { req.headers.add(name: n, value: v) }
            for (n, v) in signer.sign(signable, at: Int64(Date().timeIntervalSince1970)) { req.headers.add(name: n, value: v) }
            if !body.isEmpty || method == "PUT" || method == "POST" { req.body = .bytes(ByteBuffer(bytes: body)) }
            var failure: String
            do {
                let resp = try await Self.http.execute(req, timeout: .seconds(120))
                var buf = try await resp.body.collect(upTo: Self.maxBody)
                let bytes = buf.readBytes(length: buf.readableBytes) ?? []
                counters.withLock { $0.bytesIn += Int64(bytes.count) }
                var hs: [String: String] = [:]
                for h in resp.headers { hs[h.name.lowercased()] = h.value }
                let r = S3Response(status: Int(resp.status.code), headers: hs, body: bytes)
                guard Self.retryable(r), attempt < maxAttempts else { return r }
                failure = "HTTP \(r.status)\(r.errorCode.map { " \($0)" } ?? "")"
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failure = "\(error)"
                guard attempt < maxAttempts else {
                    throw LetheError(
                        .io,
                        "cannot reach S3 at \(endpoint.scheme)://\(endpoint.hostHeader): \(what) failed after \(attempt) attempts in \(Int(Date().timeIntervalSince(started))) s (last: \(failure))"
                    )
                }
            }
            // Full jitter: a random wait up to min(5 s, 100 ms × 2^attempt).
            let cap = min(5.0, 0.1 * pow(2.0, Double(attempt)))
            try await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...cap) * 1e9))
            _ = failure
        }
    }

    static func retryable(_ r: S3Response) -> Bool {
        if [500, 502, 503, 504].contains(r.status) { return true }
        if let code = r.errorCode, ["SlowDown", "InternalError", "RequestTimeout"].contains(code) { return true }
        return false
    }

    /// Hex MD5 of a body: the ETag S3 gives a single-part upload without SSE-KMS.
    static func md5Hex(_ body: [UInt8]) -> String { Insecure.MD5.hash(data: body).map { String(format: "%02x", $0) }.joined() }

    /// Base64 MD5 of a body (the Content-MD5 header DeleteObjects requires).
    static func md5Base64(_ body: [UInt8]) -> String { Data(Insecure.MD5.hash(data: body)).base64EncodedString() }
}
