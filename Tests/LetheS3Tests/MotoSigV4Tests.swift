import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import LetheTestSupport
import Testing
@testable import LetheS3

/// Requests signed by `SigV4` sent to moto with signature checking on (an IAM user's keys): moto
/// accepts them and refuses a request signed with the wrong secret.
@Suite(.serialized) struct MotoSigV4Tests {
    func send(
        _ moto: MotoServer, _ signer: SigV4, _ method: String, _ path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) async throws -> (Int, [UInt8]) {
        let r = SignableRequest(
            method: method, host: moto.host, path: path, query: query, headers: headers, payloadHash: SigV4.payloadHash(body))
        let signed = signer.sign(r, at: Int64(Date().timeIntervalSince1970))
        var req = URLRequest(url: URL(string: moto.endpoint + path + (query.isEmpty ? "" : "?" + r.encodedQuery))!)
        req.httpMethod = method
        for (n, v) in headers + signed { req.setValue(v, forHTTPHeaderField: n) }
        if !body.isEmpty { req.httpBody = Data(body) }
        let (data, response) = try await URLSession.shared.data(for: req)
        return ((response as! HTTPURLResponse).statusCode, [UInt8](data))
    }

    @Test func motoAcceptsOurSignaturesAndRefusesAWrongOne() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let good = SigV4(credentials: AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey), region: "us-east-1", service: "s3")
        let key = "raw/caf\u{e9} + events/part 0.jsonl"
        let body = Array("{\"user\":\"u1\"}\n".utf8)
        #expect(try await send(moto, good, "PUT", "/lake").0 == 200)
        #expect(
            try await send(moto, good, "PUT", SigV4.s3Path(bucket: "lake", key: key), headers: [("Content-Type", "application/x-ndjson")], body: body).0 == 200)
        let (status, got) = try await send(moto, good, "GET", SigV4.s3Path(bucket: "lake", key: key), headers: [("Range", "bytes=0-6")])
        #expect(status == 206 && got == Array(body[0...6]))
        let (listed, xml) = try await send(
            moto, good, "GET", "/lake", query: [("list-type", "2"), ("prefix", "raw/"), ("encoding-type", "url")])
        #expect(listed == 200)
        #expect(try S3ListPage(try XML.parse(xml)).objects.map(\.key) == [key])

        var wrong = good
        wrong.credentials.secretAccessKey += "x"
        let (refused, err) = try await send(moto, wrong, "GET", SigV4.s3Path(bucket: "lake", key: key))
        #expect(refused == 403)
        #expect(S3ErrorDocument(try XML.parse(err))?.code == "SignatureDoesNotMatch")
    }
}
