import AsyncHTTPClient
import Foundation
import LetheCore
import NIOCore
import NIOHTTP1

/// One message received from a queue: its id, the handle that deletes it, its body, and how many
/// times it was received (1 the first time).
public struct SQSMessage: Sendable, Equatable {
    public var id: String
    public var receiptHandle: String
    public var body: String
    public var receiveCount: Int
}

/// A client of one SQS queue, in the AWS JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`,
/// `application/x-amz-json-1.0`, Signature V4 with service `sqs`): long-polled receives, batch
/// deletes, and the few calls tests and setup need. Retries connection errors, 5xx and throttling
/// with full-jitter backoff, as `S3Client` does.
public final class SQSClient: Sendable {
    /// The queue's URL (`https://sqs.us-east-1.amazonaws.com/123456789012/name`).
    public let queueURL: String
    let scheme: String
    let hostHeader: String
    let signer: SigV4
    let maxAttempts: Int

    /// - Parameters:
    ///   - region: the queue's region when its URL does not say it (`sqs.<region>.amazonaws.com`,
    ///     `<region>.queue.amazonaws.com`): a custom endpoint's.
    public init(queueURL: String, credentials: AWSCredentials, region: String, maxAttempts: Int = 8) throws {
        guard let u = URLComponents(string: queueURL), let s = u.scheme?.lowercased(), s == "http" || s == "https", let host = u.host,
            !host.isEmpty, u.path.count > 1
        else {
            throw LetheError.badInput(
                "`s3.events_queue` must be a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/lake-events, not \(queueURL)",
                at: "lethe.yaml")
        }
        self.queueURL = queueURL
        scheme = s
        let port = u.port.flatMap { (s == "http" && $0 == 80) || (s == "https" && $0 == 443) ? nil : $0 }
        hostHeader = port.map { "\(host):\($0)" } ?? host
        signer = SigV4(credentials: credentials, region: Self.region(ofHost: host) ?? region, service: "sqs")
        self.maxAttempts = max(1, maxAttempts)
    }

    /// The region an AWS queue host names, if it is one.
    static func region(ofHost host: String) -> String? {
        let parts = host.lowercased().split(separator: ".").map(String.init)
        if parts.count >= 4, parts[0] == "sqs", parts.suffix(2) == ["amazonaws", "com"] { return parts[1] }
        if parts.count >= 4, parts[1] == "queue", parts.suffix(2) == ["amazonaws", "com"] { return parts[0] }
        return nil
    }

    /// Receives up to `max` (1–10) messages, waiting up to `waitSeconds` (0–20) for the first
    /// (long polling). `visibilityTimeout`: seconds the messages stay hidden from other receivers
    /// (nil: the queue's setting).
    public func receive(max: Int = 10, waitSeconds: Int = 20, visibilityTimeout: Int? = nil) async throws -> [SQSMessage] {
        struct Request: Encodable {
            var QueueUrl: String
            var MaxNumberOfMessages: Int
            var WaitTimeSeconds: Int
            var VisibilityTimeout: Int?
            var MessageSystemAttributeNames = ["ApproximateReceiveCount"]
        }
        struct Response: Decodable {
            struct Message: Decodable {
                var MessageId: String?
                var ReceiptHandle: String?
                var Body: String?
                var Attributes: [String: String]?
            }
            var Messages: [Message]?
        }
        let r: Response = try await call(
            "ReceiveMessage",
            Request(
                QueueUrl: queueURL, MaxNumberOfMessages: min(10, Swift.max(1, max)), WaitTimeSeconds: min(20, Swift.max(0, waitSeconds)),
                VisibilityTimeout: visibilityTimeout))
        return (r.Messages ?? []).compactMap { m in
            guard let handle = m.ReceiptHandle else { return nil }
            return SQSMessage(
                id: m.MessageId ?? "?", receiptHandle: handle, body: m.Body ?? "",
                receiveCount: m.Attributes?["ApproximateReceiveCount"].flatMap(Int.init) ?? 1)
        }
    }

    /// Deletes messages by their receipt handles, ten per request. Returns the ids of the messages
    /// SQS did not delete (e.g. a handle that expired: the message comes back, at least once).
    @discardableResult
    public func delete(_ messages: [SQSMessage]) async throws -> [String] {
        struct Entry: Encodable {
            var Id: String
            var ReceiptHandle: String
        }
        struct Request: Encodable {
            var QueueUrl: String
            var Entries: [Entry]
        }
        struct Response: Decodable {
            struct Failed: Decodable { var Id: String? }
            var Failed: [Failed]?
        }
        var failed: [String] = []
        var start = 0
        while start < messages.count {
            let chunk = Array(messages[start..<min(messages.count, start + 10)])
            start += chunk.count
            // Batch entry ids are the positions (message ids may repeat when a message is received twice).
            let r: Response = try await call(
                "DeleteMessageBatch",
                Request(QueueUrl: queueURL, Entries: chunk.enumerated().map { Entry(Id: "m\($0.offset)", ReceiptHandle: $0.element.receiptHandle) }))
            for f in r.Failed ?? [] {
                if let id = f.Id, id.hasPrefix("m"), let i = Int(id.dropFirst()), i < chunk.count { failed.append(chunk[i].id) }
            }
        }
        return failed
    }

    /// Sends one message (tests, and S3's own documents sent by hand); returns its id.
    @discardableResult
    public func send(_ body: String) async throws -> String {
        struct Request: Encodable {
            var QueueUrl: String
            var MessageBody: String
        }
        struct Response: Decodable { var MessageId: String? }
        let r: Response = try await call("SendMessage", Request(QueueUrl: queueURL, MessageBody: body))
        return r.MessageId ?? ""
    }

    /// Deletes every message of the queue.
    public func purge() async throws {
        struct Request: Encodable { var QueueUrl: String }
        struct Empty: Decodable {}
        let _: Empty = try await call("PurgeQueue", Request(QueueUrl: queueURL))
    }

    /// Creates a queue at the endpoint `endpoint` (`http://127.0.0.1:PORT`) and returns its URL
    /// (tests and setup scripts).
    public static func createQueue(name: String, endpoint: String, credentials: AWSCredentials, region: String) async throws -> String {
        struct Request: Encodable { var QueueName: String }
        struct Response: Decodable { var QueueUrl: String? }
        let client = try SQSClient(queueURL: endpoint + "/000000000000/" + name, credentials: credentials, region: region)
        let r: Response = try await client.call("CreateQueue", Request(QueueName: name))
        guard let url = r.QueueUrl else { throw LetheError.failure("CreateQueue answered no QueueUrl", at: endpoint) }
        return url
    }

    /// The queue's ARN (`arn:aws:sqs:region:account:name`), for a bucket's notification configuration.
    public func arn() async throws -> String {
        struct Request: Encodable {
            var QueueUrl: String
            var AttributeNames = ["QueueArn"]
        }
        struct Response: Decodable { var Attributes: [String: String]? }
        let r: Response = try await call("GetQueueAttributes", Request(QueueUrl: queueURL))
        guard let arn = r.Attributes?["QueueArn"] else { throw LetheError.failure("GetQueueAttributes answered no QueueArn", at: queueURL) }
        return arn
    }

    // MARK: Transport

    /// One call of the JSON protocol, retried as described above. An error answer becomes a
    /// `LetheError`: `.badInput` (exit 2) for a queue that does not exist or a request SQS refuses
    /// (credentials, permissions), `.io` once the retries are spent.
    func call<Request: Encodable, Response: Decodable>(_ action: String, _ request: Request) async throws -> Response {
        let body = try JSONEncoder().encode(request)
        let bytes = [UInt8](body)
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "AmazonSQS.\(action)"),
        ]
        let signable = SignableRequest(method: "POST", host: hostHeader, path: "/", headers: headers, payloadHash: SigV4.payloadHash(bytes))
        let started = Date()
        var attempt = 0
        while true {
            attempt += 1
            var req = HTTPClientRequest(url: "\(scheme)://\(hostHeader)/")
            req.method = .POST
            req.headers.add(name: "Host", value: hostHeader)
            for (n, v) in headers { req.headers.add(name: n, value: v) }
            for (n, v) in signer.sign(signable, at: Int64(Date().timeIntervalSince1970)) { req.headers.add(name: n, value: v) }
            req.body = .bytes(ByteBuffer(bytes: bytes))
            var last: String
            do {
                // A long poll holds the request up to 20 s.
                let resp = try await S3Client.http.execute(req, timeout: .seconds(60))
                var buf = try await resp.body.collect(upTo: 16 << 20)
                let data = Data(buf.readBytes(length: buf.readableBytes) ?? [])
                let status = Int(resp.status.code)
                if status == 200 {
                    do {
                        return try JSONDecoder().decode(Response.self, from: data.isEmpty ? Data("{}".utf8) : data)
                    } catch {
                        throw LetheError(.io, "SQS answered \(action) with an unreadable document", at: queueURL)
                    }
                }
                let code = Self.errorCode(data, headers: resp.headers)
                let retry = status >= 500 || ["ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalError"].contains(code)
                if !retry || attempt >= maxAttempts {
                    let kind: LetheError.Code = status >= 500 || retry ? .io : .badInput
                    throw LetheError(
                        kind,
                        "SQS refused \(action): HTTP \(status) \(code)\(Self.errorMessage(data).map { " (\($0))" } ?? "")"
                            + (kind == .badInput
                                ? " (the queue URL, credentials and sqs:ReceiveMessage/sqs:DeleteMessage permissions: docs/storage-s3.md)" : ""),
                        at: queueURL)
                }
                last = "HTTP \(status) \(code)"
            } catch let e as LetheError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = "\(error)"
                guard attempt < maxAttempts else {
                    throw LetheError(
                        .io,
                        "cannot reach SQS at \(scheme)://\(hostHeader): \(action) failed after \(attempt) attempts in \(Int(Date().timeIntervalSince(started))) s (last: \(last))",
                        at: queueURL)
                }
            }
            let cap = min(5.0, 0.1 * pow(2.0, Double(attempt)))
            try await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...cap) * 1e9))
        }
    }

    /// The error code of a JSON-protocol error answer (`__type`, after the `#`), or of its
    /// `x-amzn-query-error` header.
    static func errorCode(_ body: Data, headers: HTTPHeaders) -> String {
        if let q = headers.first(name: "x-amzn-query-error"), let code = q.split(separator: ";").first { return String(code) }
        struct E: Decodable { var __type: String? }
        guard let t = (try? JSONDecoder().decode(E.self, from: body))?.__type else { return "error" }
        return t.split(separator: "#").last.map(String.init) ?? t
    }

    static func errorMessage(_ body: Data) -> String? {
        struct E: Decodable {
            var message: String?
            var Message: String?
        }
        guard let e = try? JSONDecoder().decode(E.self, from: body) else { return nil }
        return (e.message ?? e.Message).map { String($0.prefix(200)) }
    }
}
