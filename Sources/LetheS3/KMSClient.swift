import AsyncHTTPClient
import Foundation
public import LetheCore
import NIOCore
import NIOHTTP1

/// AWS KMS as crypto-shredding's key-encryption key (`vault: {kek: kms, kms_key_id: …}`): each data
/// key comes from `GenerateDataKey` (AES_256) and is unwrapped by `Decrypt`, both with an encryption
/// context naming the subject's keyed hash and the key id (KMS refuses to decrypt under another
/// context, and CloudTrail logs the context: keyed hashes only). AWS JSON protocol
/// (`X-Amz-Target: TrentService.<Action>`, `application/x-amz-json-1.1`), Signature V4 with service
/// `kms`; connection errors, 5xx and throttling are retried with full-jitter backoff.
public final class KMSKeyEncryptionKey: KeyEncryptionKey {
    /// The key id, ARN or alias the data keys are generated under.
    public let keyID: String
    public let name: String
    let endpoint: String
    let hostHeader: String
    let scheme: String
    let signer: SigV4
    let maxAttempts: Int

    /// - Parameters:
    ///   - endpoint: the KMS endpoint (`http://127.0.0.1:PORT` for moto); nil: `https://kms.<region>.amazonaws.com`.
    public init(keyID: String, region: String, endpoint: String?, credentials: AWSCredentials, maxAttempts: Int = 6) throws {
        let e = endpoint ?? "https://kms.\(region).amazonaws.com"
        guard let u = URLComponents(string: e), let s = u.scheme?.lowercased(), s == "http" || s == "https", let host = u.host, !host.isEmpty else {
            throw LetheError.badInput("`vault.kms_endpoint` must be an http(s) URL, not \(e)", at: "lethe.yaml")
        }
        let port = u.port.flatMap { (s == "http" && $0 == 80) || (s == "https" && $0 == 443) ? nil : $0 }
        self.keyID = keyID
        self.name = "kms:" + keyID
        self.endpoint = e
        self.scheme = s
        self.hostHeader = port.map { "\(host):\($0)" } ?? host
        self.signer = SigV4(credentials: credentials, region: region, service: "kms")
        self.maxAttempts = max(1, maxAttempts)
    }

    static func context(_ c: WrapContext) -> [String: String] {
        ["lethe:subject": c.subject.hex, "lethe:key_id": Hex.encode(c.keyID)]
    }

    public func generateDataKey(_ context: WrapContext) async throws -> (plain: [UInt8], wrapped: [UInt8]) {
        struct Request: Encodable {
            var KeyId: String
            var KeySpec = "AES_256"
            var EncryptionContext: [String: String]
        }
        struct Response: Decodable {
            var CiphertextBlob: String?
            var Plaintext: String?
        }
        let r: Response = try await call("GenerateDataKey", Request(KeyId: keyID, EncryptionContext: Self.context(context)))
        guard let c = r.CiphertextBlob.flatMap({ Data(base64Encoded: $0) }), let p = r.Plaintext.flatMap({ Data(base64Encoded: $0) }), p.count == 32
        else {
            throw LetheError(.io, "KMS answered GenerateDataKey without a 32-byte data key", at: endpoint)
        }
        return (Array(p), Array(c))
    }

    public func unwrap(_ wrapped: [UInt8], _ context: WrapContext) async throws -> [UInt8] {
        struct Request: Encodable {
            var CiphertextBlob: String
            var KeyId: String
            var EncryptionContext: [String: String]
        }
        struct Response: Decodable { var Plaintext: String? }
        let r: Response = try await call(
            "Decrypt", Request(CiphertextBlob: Data(wrapped).base64EncodedString(), KeyId: keyID, EncryptionContext: Self.context(context)))
        guard let p = r.Plaintext.flatMap({ Data(base64Encoded: $0) }) else {
            throw LetheError(.io, "KMS answered Decrypt without a plaintext", at: endpoint)
        }
        return Array(p)
    }

    /// KEK rotation: `ReEncrypt` of the row's blob under `target`'s key, with the same encryption
    /// context (KMS decrypts and re-encrypts inside; the data key never leaves it).
    public func rewrap(_ row: VaultRow, to target: any KeyEncryptionKey) async throws -> [UInt8] {
        guard let target = target as? KMSKeyEncryptionKey else {
            throw LetheError(.badInput, "KMS data keys rotate to another KMS key (`\(target.name)` is not one)")
        }
        guard row.exact else { throw LetheError(.corrupt, "a KMS data key's row must be keyed by the whole subject key") }
        struct Request: Encodable {
            var CiphertextBlob: String
            var SourceKeyId: String
            var DestinationKeyId: String
            var SourceEncryptionContext: [String: String]
            var DestinationEncryptionContext: [String: String]
        }
        struct Response: Decodable { var CiphertextBlob: String? }
        let context = Self.context(WrapContext(subject: SubjectKey(bytes: row.rowKey), keyID: row.keyID))
        let r: Response = try await call(
            "ReEncrypt",
            Request(
                CiphertextBlob: Data(row.wrapped).base64EncodedString(), SourceKeyId: keyID, DestinationKeyId: target.keyID,
                SourceEncryptionContext: context, DestinationEncryptionContext: context))
        guard let c = r.CiphertextBlob.flatMap({ Data(base64Encoded: $0) }), !c.isEmpty else {
            throw LetheError(.io, "KMS answered ReEncrypt without a ciphertext", at: endpoint)
        }
        return Array(c)
    }

    /// Creates a symmetric key (tests and setup against moto); returns its id.
    public func createKey(description: String) async throws -> String {
        struct Request: Encodable { var Description: String }
        struct Response: Decodable {
            struct Meta: Decodable { var KeyId: String? }
            var KeyMetadata: Meta?
        }
        let r: Response = try await call("CreateKey", Request(Description: description))
        guard let id = r.KeyMetadata?.KeyId else { throw LetheError(.io, "KMS answered CreateKey without a key id", at: endpoint) }
        return id
    }

    /// One call of the JSON protocol. An error answer is `.corrupt` for a ciphertext KMS refuses
    /// (`InvalidCiphertextException`: another context or key), `.badInput` for other refusals
    /// (a key that does not exist or is disabled, credentials, permissions), `.io` once retries are spent.
    func call<Request: Encodable, Response: Decodable>(_ action: String, _ request: Request) async throws -> Response {
        let bytes = [UInt8](try JSONEncoder().encode(request))
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "TrentService.\(action)"),
        ]
        let signable = SignableRequest(method: "POST", host: hostHeader, path: "/", headers: headers, payloadHash: SigV4.payloadHash(bytes))
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
                let resp = try await S3Client.http.execute(req, timeout: .seconds(30))
                var buf = try await resp.body.collect(upTo: 1 << 20)
                let data = Data(buf.readBytes(length: buf.readableBytes) ?? [])
                let status = Int(resp.status.code)
                if status == 200 {
                    do {
                        return try JSONDecoder().decode(Response.self, from: data.isEmpty ? Data("{}".utf8) : data)
                    } catch {
                        throw LetheError(.io, "KMS answered \(action) with an unreadable document", at: endpoint)
                    }
                }
                let code = SQSClient.errorCode(data, headers: resp.headers)
                let retry = status >= 500 || ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"].contains(code)
                if !retry || attempt >= maxAttempts {
                    let kind: LetheError.Code = code == "InvalidCiphertextException" ? .corrupt : (retry ? .io : .badInput)
                    throw LetheError(kind, "KMS refused \(action): HTTP \(status) \(code)", at: endpoint)
                }
                last = "HTTP \(status) \(code)"
            } catch let e as LetheError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = "\(error)"
                guard attempt < maxAttempts else {
                    throw LetheError(.io, "cannot reach KMS at \(scheme)://\(hostHeader): \(action) failed after \(attempt) attempts (last: \(last))")
                }
            }
            let cap = min(5.0, 0.1 * pow(2.0, Double(attempt)))
            try await Task.sleep(nanoseconds: UInt64(Double.random(in: 0...cap) * 1e9))
        }
    }
}
