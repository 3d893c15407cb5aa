import Foundation
import LetheTestSupport
import Testing
@testable import LetheS3

/// The example credentials of AWS's documentation.
private let docCredentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
/// 2013-05-24T00:00:00Z, the time of the S3 examples.
private let docTime: Int64 = 1_369_353_600

private func signature(_ headers: [(name: String, value: String)]) -> String? {
    headers.first { $0.name == "Authorization" }?.value.components(separatedBy: "Signature=").last
}

/// The four examples of AWS's "Signature Calculations for the Authorization Header: Transferring
/// Payload in a Single Chunk (AWS Signature Version 4)" page of the Amazon S3 API reference
/// (bucket `examplebucket`, region us-east-1).
@Suite struct SigV4DocVectors {
    let signer = SigV4(credentials: docCredentials, region: "us-east-1", service: "s3")
    let host = "examplebucket.s3.amazonaws.com"

    @Test func getObjectWithRange() {
        let r = SignableRequest(
            method: "GET", host: host, path: "/test.txt", headers: [("Range", "bytes=0-9")], payloadHash: SigV4.emptyPayloadHash)
        let h = signer.sign(r, at: docTime)
        #expect(signature(h) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(h.first { $0.name == "Authorization" }?.value.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,") == true)
    }

    @Test func putObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        #expect(SigV4.payloadHash(body) == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let r = SignableRequest(
            method: "PUT", host: host, path: SigV4.s3Path(bucket: nil, key: "test$file.text"),
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: SigV4.payloadHash(body))
        #expect(r.path == "/test%24file.text")
        #expect(signature(signer.sign(r, at: docTime)) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycle() {
        let r = SignableRequest(method: "GET", host: host, path: "/", query: [("lifecycle", "")], payloadHash: SigV4.emptyPayloadHash)
        #expect(signature(signer.sign(r, at: docTime)) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjects() {
        let r = SignableRequest(
            method: "GET", host: host, path: "/", query: [("prefix", "J"), ("max-keys", "2")], payloadHash: SigV4.emptyPayloadHash)
        #expect(r.encodedQuery == "max-keys=2&prefix=J")
        #expect(signature(signer.sign(r, at: docTime)) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func timestampsAreUTCCivilDates() {
        #expect(SigV4.timestamps(docTime) == ("20130524T000000Z", "20130524"))
        #expect(SigV4.timestamps(0) == ("19700101T000000Z", "19700101"))
        #expect(SigV4.timestamps(951_827_696) == ("20000229T123456Z", "20000229"))  // a leap day
        #expect(SigV4.timestamps(4_102_444_799) == ("20991231T235959Z", "20991231"))
    }

    @Test func credentialsNeverShowTheirSecrets() {
        let c = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t-value", sessionToken: "t0k3n-value")
        #expect(!"\(c)".contains("s3cr3t") && !"\(c)".contains("t0k3n"))
    }
}

/// Generated requests signed here and by botocore (the venv's, AWS's own Python signer): odd keys
/// (spaces, `+`, `~`, `=`, `%`, unicode in both normal forms, `//`), repeated and empty query
/// parameters, header whitespace, session tokens, other services.
@Suite struct SigV4Oracle {
    struct Case {
        var signer: SigV4
        var request: SignableRequest
        var body: [UInt8]
        var time: Int64
        var scheme = "https"
    }

    static func cases(_ n: Int) -> [Case] {
        var seeded = SeededGenerator(seed: 0x5157_4f52_4143_4c45)
        let keys = [
            "a b/c+d", "tilde~and=equals", "per%cent", "caf\u{e9}", "cafe\u{301}", "double//slash", "dir/", "x?y#z",
            "emoji-\u{1F600}", "", "a/b/c.parquet", "part-00000-\u{5f20}.json", "!'()*", "[brackets]", "semi;colon,comma",
        ]
        let values = ["", "1", "a b", "a+b", "x/y", "=", "&", "\u{e9}", "~", "-._"]
        let names = ["prefix", "start-after", "list-type", "max-keys", "versionId", "uploads", "partNumber", "A", "a", "encoding-type"]
        var out: [Case] = []
        for i in 0..<n {
            let service = i % 7 == 6 ? "sqs" : "s3"
            let token: String? = i % 3 == 0 ? "FQoGZXIvYXdzE\(i)//////////wEaD+token/with=chars" : nil
            let creds = AWSCredentials(accessKeyID: "AKID\(i)", secretAccessKey: "secret/\(i)+key=", sessionToken: token)
            let region = ["us-east-1", "eu-west-3", "ap-southeast-2"][i % 3]
            let key = keys[seeded.next(keys.count)] + (i % 2 == 0 ? "" : "/\(i)")
            let path = service == "s3" ? SigV4.s3Path(bucket: i % 4 == 0 ? "bucket-\(i % 5)" : nil, key: key) : "/"
            var query: [(name: String, value: String)] = []
            for _ in 0..<seeded.next(4) { query.append((names[seeded.next(names.count)], values[seeded.next(values.count)])) }
            var headers: [(name: String, value: String)] = []
            if i % 2 == 1 { headers.append(("Range", "bytes=\(i)-\(i * 10 + 9)")) }
            if i % 5 == 2 { headers.append(("If-Match", "  \"etag-\(i)\"  ")) }
            if i % 5 == 3 { headers.append(("If-None-Match", "*")) }
            if i % 4 == 1 { headers.append(("Content-Type", "application/x-www-form-urlencoded;   charset=utf-8")) }
            if i % 6 == 4 { headers.append(("X-Amz-Meta-Note", "two  spaces\tand tab")) }
            let body: [UInt8] = i % 3 == 1 ? Array("body \(i) \u{e9}".utf8) : []
            let port = i % 8 == 7 ? ":9000" : ""
            let host = service == "s3" ? (i % 4 == 0 ? "127.0.0.1\(port)" : "bucket-\(i % 5).s3.\(region).amazonaws.com") : "sqs.\(region).amazonaws.com"
            let req = SignableRequest(
                method: ["GET", "PUT", "HEAD", "POST", "DELETE"][i % 5], host: host, path: path, query: query, headers: headers,
                payloadHash: SigV4.payloadHash(body))
            out.append(
                Case(signer: SigV4(credentials: creds, region: region, service: service), request: req, body: body, time: 1_700_000_000 + Int64(i) * 86_413))
        }
        return out
    }

    @Test func botocoreSignsTheSame() throws {
        let cases = Self.cases(300)
        var input: [[String: Any]] = []
        for c in cases {
            let r = c.request
            let url = "\(c.scheme)://\(r.host)\(r.path)" + (r.query.isEmpty ? "" : "?" + r.encodedQuery)
            input.append([
                "method": r.method, "url": url, "headers": r.headers.map { [$0.name, $0.value] },
                // Bytes as latin-1 text (the script encodes it back to the same bytes).
                "body": String(String.UnicodeScalarView(c.body.map { Unicode.Scalar($0) })),
                "time": c.time, "access": c.signer.credentials.accessKeyID, "secret": c.signer.credentials.secretAccessKey,
                "token": c.signer.credentials.sessionToken as Any, "region": c.signer.region, "service": c.signer.service,
            ])
        }
        let path = NSTemporaryDirectory() + "sigv4-oracle-\(UUID().uuidString).json"
        try JSONSerialization.data(withJSONObject: input).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let out = try Peers.python(
            [
                "-c", "import sys, runpy; sys.stdin = open(sys.argv[1]); runpy.run_path(sys.argv[2], run_name='__main__')", path,
                Peers.script("sigv4_oracle.py"),
            ], what: "sigv4_oracle.py")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: String]])
        #expect(expected.count == cases.count)
        var mismatches = 0
        for (c, e) in zip(cases, expected) {
            let mine = c.signer.sign(c.request, at: c.time)
            let auth = mine.first { $0.name == "Authorization" }?.value
            if auth != e["authorization"] {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record(
                        "\(c.request.method) \(c.request.host)\(c.request.path)?\(c.request.encodedQuery) headers \(c.request.headers): Lethe \(auth ?? "nil"), botocore \(e["authorization"] ?? "nil")\ncanonical:\n\(c.signer.canonicalRequest(c.request).0)"
                    )
                }
            }
            #expect(mine.first { $0.name == "x-amz-date" }?.value == e["amz_date"])
        }
        #expect(mismatches == 0)
    }
}

/// A small deterministic generator (SplitMix64) for the generated cases.
struct SeededGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(_ n: Int) -> Int { n <= 1 ? 0 : Int(next64() % UInt64(n)) }
}
