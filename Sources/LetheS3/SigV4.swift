import Crypto

/// AWS credentials: an access key, its secret and, for temporary credentials, a session token.
/// `description` never shows the secret or the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
    public var description: String { "AWS credentials \(accessKeyID)\(sessionToken == nil ? "" : " (temporary)")" }
}

/// A request to sign: method, host (with `:port` when not the scheme's default), the path as sent
/// (already percent-encoded), the query as name/value pairs (not encoded), headers, and the
/// payload's SHA-256 in hex (or `UNSIGNED-PAYLOAD`).
public struct SignableRequest: Sendable, Equatable {
    public var method: String
    public var host: String
    public var path: String
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]
    public var payloadHash: String

    public init(
        method: String, host: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], payloadHash: String
    ) {
        self.method = method
        self.host = host
        self.path = path
        self.query = query
        self.headers = headers
        self.payloadHash = payloadHash
    }

    public static func == (a: SignableRequest, b: SignableRequest) -> Bool {
        a.method == b.method && a.host == b.host && a.path == b.path && a.payloadHash == b.payloadHash
            && a.query.map { [$0.name, $0.value] } == b.query.map { [$0.name, $0.value] }
            && a.headers.map { [$0.name, $0.value] } == b.headers.map { [$0.name, $0.value] }
    }

    /// The query string as sent: the canonical one (encoded, sorted), which every server accepts.
    public var encodedQuery: String { SigV4.canonicalQuery(query) }
}

/// Signature Version 4 (AWS's "Signing AWS API requests", the header form), written from AWS's
/// documentation: the canonical request, the string to sign, the key derived per date, region
/// and service, and the `Authorization` header. For S3 the path is used as sent (S3 does not
/// normalise or double-encode it); for other services it is encoded once more.
public struct SigV4: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Hex SHA-256 of a body.
    public static func payloadHash(_ body: [UInt8]) -> String { hex(Array(SHA256.hash(data: body))) }

    /// The headers to add to `request` to sign it at `time` (seconds since 1970, UTC):
    /// `x-amz-date`, `x-amz-content-sha256` (S3), `x-amz-security-token` (temporary credentials)
    /// and `Authorization`. Every header of the request (and `host`) is signed.
    public func sign(_ request: SignableRequest, at time: Int64) -> [(name: String, value: String)] {
        let (amzDate, day) = Self.timestamps(time)
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate)]
        if service == "s3" { added.append(("x-amz-content-sha256", request.payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        let (canonical, signed) = canonicalRequest(request, extra: added)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.hex(Array(SHA256.hash(data: Array(canonical.utf8)))))"
        let signature = Self.hex(Self.hmac(signingKey(day: day), Array(toSign.utf8)))
        added.append(
            ("Authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signed), Signature=\(signature)"))
        return added
    }

    /// The canonical request and its signed-header list (`extra`: the headers the signer adds).
    public func canonicalRequest(_ r: SignableRequest, extra: [(name: String, value: String)] = []) -> (String, String) {
        var headers: [String: String] = ["host": Self.trim(r.host)]
        for (n, v) in r.headers + extra {
            let name = n.lowercased()
            let value = Self.trim(v)
            // Repeated headers are joined by commas, in the order given.
            headers[name] = headers[name].map { $0 + "," + value } ?? value
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!)\n" }.joined()
        let signed = names.joined(separator: ";")
        let path = service == "s3" ? (r.path.isEmpty ? "/" : r.path) : Self.encode(r.path.isEmpty ? "/" : r.path, keepSlash: true)
        let canonical = [r.method.uppercased(), path, Self.canonicalQuery(r.query), canonicalHeaders, signed, r.payloadHash]
            .joined(separator: "\n")
        return (canonical, signed)
    }

    /// The signing key for one day (`YYYYMMDD`).
    func signingKey(day: String) -> [UInt8] {
        var k = Self.hmac(Array(("AWS4" + credentials.secretAccessKey).utf8), Array(day.utf8))
        k = Self.hmac(k, Array(region.utf8))
        k = Self.hmac(k, Array(service.utf8))
        return Self.hmac(k, Array("aws4_request".utf8))
    }

    /// Name/value pairs encoded and sorted by name, then value: `a=1&b=&c=x%2Fy`.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (encode($0.name, keepSlash: false), encode($0.value, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) : $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of UTF-8 bytes: `A-Z a-z 0-9 - . _ ~` kept (and `/` with `keepSlash`),
    /// everything else as `%XX` in upper case.
    public static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        let digits = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where keepSlash:
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), digits[Int(b >> 4)], digits[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An S3 object key as a request path: `/` + the key with each byte but the unreserved ones and
    /// `/` percent-encoded (with the bucket first for path-style addressing).
    public static func s3Path(bucket: String?, key: String) -> String {
        (bucket.map { "/" + encode($0, keepSlash: false) } ?? "") + "/" + encode(key, keepSlash: true)
    }

    /// A header value trimmed, with runs of spaces inside it collapsed to one.
    static func trim(_ v: String) -> String {
        var out = ""
        var space = false
        for c in v.trimmingWhitespace() {
            if c == " " || c == "\t" {
                space = true
                continue
            }
            if space && !out.isEmpty { out.append(" ") }
            space = false
            out.append(c)
        }
        return out
    }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` of a time in seconds since 1970 (UTC, proleptic Gregorian).
    static func timestamps(_ t: Int64) -> (String, String) {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = t - days * 86_400
        // Days since 1970-01-01 to a civil date (the era-based algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ x: Int64) -> String { x < 10 ? "0\(x)" : "\(x)" }
        let day = "\(y)\(two(m))\(two(d))"
        return ("\(day)T\(two(secs / 3600))\(two(secs / 60 % 60))\(two(secs % 60))Z", day)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s.removeLast() }
        return s
    }
}
