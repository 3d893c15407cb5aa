import Foundation
import LetheCore
import LetheStorage
import LetheTestSupport
import LetheTesting
import Testing
@testable import LetheS3

/// The S3 store against moto's S3 server: the object-store contract every
/// store passes, each check in a bucket of its own, under a key prefix and without one.
@Suite(.serialized) struct S3ObjectStoreTests {
    static func store(_ moto: MotoServer, bucket: String, prefix: String) async throws -> S3ObjectStore {
        let creds = AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey)
        let client = S3Client(endpoint: try S3Endpoint(url: moto.endpoint, region: "us-east-1", bucket: bucket), credentials: creds)
        let r = try await client.send("PUT", key: nil, what: "CreateBucket")
        #expect(r.status == 200, "create bucket \(bucket): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        var s = S3ObjectStore(client: client, prefix: prefix)
        s.multipartThreshold = 5 << 20  // moto's smallest part
        s.partSize = 5 << 20
        return s
    }

    @Test func objectStoreContractOnMoto() async throws {
        // Signatures are checked by the other tests; without IAM checks moto answers 10,000 puts faster.
        let moto = try MotoServer(auth: false)
        defer { moto.stop() }
        for (i, check) in ObjectStoreContract.Check.allCases.enumerated() {
            for prefix in ["", "lake/data"] where check != .listingPagesResumeAfterKey || prefix.isEmpty {
                let bucket = "contract-\(i)-\(prefix.isEmpty ? "root" : "prefixed")"
                try await ObjectStoreContract.run(check) { try await Self.store(moto, bucket: bucket, prefix: prefix) }
            }
        }
    }

    @Test func multipartWritesAndTheirConditions() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let s = try await Self.store(moto, bucket: "multipart", prefix: "p")
        let big = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let w = try await s.openWrite("big.bin", precondition: .absent)
        for at in stride(from: 0, to: big.count, by: 3 << 20) { try await w.write(Array(big[at..<min(big.count, at + (3 << 20))])) }
        let info = try await w.commit()
        #expect(info.size == Int64(big.count) && info.version.hasSuffix("-3"))  // three parts
        #expect(try await s.read("big.bin", range: 5_000_000..<5_000_100, ifVersion: info.version) == Array(big[5_000_000..<5_000_100]))
        // A multipart replace of a version that changed meanwhile is refused and leaves no upload.
        let w2 = try await s.openWrite("big.bin", precondition: .matches(version: info.version))
        try await w2.write(big)
        try await s.put("big.bin", [1, 2, 3])
        #expect(await ObjectStoreContract.errorCode { _ = try await w2.commit() } == .conflict)
        #expect(try await s.read("big.bin") == [1, 2, 3])
        let uploads = try await s.client.send("GET", key: nil, query: [("uploads", "")], what: "ListMultipartUploads")
        #expect(!String(decoding: uploads.body, as: UTF8.self).contains("<UploadId>"))
        // An aborted multipart write leaves no upload either.
        let w3 = try await s.openWrite("other.bin", precondition: .none)
        try await w3.write(big)
        await w3.abort()
        #expect(try await s.head("other.bin") == nil)
        let after = try await s.client.send("GET", key: nil, query: [("uploads", "")], what: "ListMultipartUploads")
        #expect(!String(decoding: after.body, as: UTF8.self).contains("<UploadId>"))
    }

    /// `copyRange` from the same bucket goes by `UploadPartCopy` (the bytes do not pass through
    /// Lethe), with the bytes written before it topped up to a whole part; the result is the same
    /// bytes; a source replaced before the upload completes makes the write fail and leaves no object.
    @Test func serverSideCopiesAssembleTheSameBytesAndPinTheSource() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        var s = try await Self.store(moto, bucket: "copies", prefix: "lake")
        s.serverCopyThreshold = 6 << 20
        let src = (0..<(23 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 13)) }
        try await s.put("src.bin", src)
        let version = try #require(try await s.head("src.bin")).version
        let head = Array(repeating: UInt8(ascii: "h"), count: 1 << 20), tail = Array("tail".utf8)
        let w = try await s.openWrite("out.bin", precondition: .absent)
        try await w.write(head)
        let before = s.client.stats
        try await w.copyRange(from: "src.bin", version: version, range: Int64(2 << 20)..<Int64(21 << 20), in: s)
        let after = s.client.stats
        try await w.copyRange(from: "src.bin", version: version, range: 7..<1000, in: s)  // small: read and written
        try await w.write(tail)
        let info = try await w.commit()
        #expect(try await s.read("out.bin") == head + Array(src[(2 << 20)..<(21 << 20)]) + Array(src[7..<1000]) + tail)
        #expect(info.version.hasSuffix("-3"), "\(info.version)")  // the topped-up part, the copied part, the rest
        // 19 MiB copied: 4 MiB read to top the first part up, the other 15 MiB copied by the server.
        #expect((4 << 20)..<((4 << 20) + (64 << 10)) ~= after.bytesIn - before.bytesIn)  // + the small XML answers
        #expect(after.bytesOut - before.bytesOut < 6 << 20)
        // From another bucket the bytes are read and written.
        let other = try await Self.store(moto, bucket: "copies-other", prefix: "")
        let w2 = try await other.openWrite("x.bin", precondition: .none)
        try await w2.copyRange(from: "src.bin", version: version, range: 0..<Int64(src.count), in: s)
        _ = try await w2.commit()
        #expect(try await other.read("x.bin") == src)
        // The source replaced after its part was copied: the write fails, nothing is published.
        let w3 = try await s.openWrite("late.bin", precondition: .absent)
        try await w3.copyRange(from: "src.bin", version: version, range: 0..<Int64(src.count), in: s)
        try await s.put("src.bin", [1, 2, 3])
        #expect(await ObjectStoreContract.errorCode { _ = try await w3.commit() } == .conflict)
        #expect(try await s.head("late.bin") == nil)
    }

    @Test func errorsAreOneLineAndNameTheObject() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let s = try await Self.store(moto, bucket: "errors", prefix: "")
        #expect(await ObjectStoreContract.errorCode { _ = try await s.read("missing") } == .notFound)
        let wrong = S3ObjectStore(
            client: S3Client(
                endpoint: try S3Endpoint(url: moto.endpoint, region: "us-east-1", bucket: "errors"),
                credentials: AWSCredentials(accessKeyID: moto.accessKey, secretAccessKey: "wrong")), prefix: "")
        do {
            _ = try await wrong.head("x")
            Issue.record("a wrong secret was accepted")
        } catch let e as LetheError {
            #expect(e.code == .badInput)
            #expect(!"\(e)".contains("wrong") && !"\(e)".contains("\n"))
        }
        let unreachable = S3ObjectStore(
            client: S3Client(
                endpoint: try S3Endpoint(url: "http://127.0.0.1:9", region: "us-east-1", bucket: "b"),
                credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"), maxAttempts: 2), prefix: "")
        do {
            _ = try await unreachable.head("x")
            Issue.record("an unreachable endpoint answered")
        } catch let e as LetheError {
            #expect(e.code == .io && "\(e)".contains("after 2 attempts"))
        }
    }

    @Test func httpDates() {
        #expect(HTTPDate.nanos("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777_000_000_000)
        #expect(HTTPDate.nanos("Sun, 06 Nov 1994 08:49:37") == nil)
    }
}

/// Versioned buckets: noncurrent versions listed, read and deleted for good.
@Suite(.serialized) struct S3VersionsTests {
    @Test func noncurrentVersionsAreListedReadAndDeleted() async throws {
        let moto = try MotoServer(auth: true)
        defer { moto.stop() }
        let s = try await S3ObjectStoreTests.store(moto, bucket: "versioned", prefix: "lake")
        #expect(try await s.keepsVersions() == false)
        let body = Array("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".utf8)
        let r = try await s.client.send("PUT", key: nil, query: [("versioning", "")], body: body, what: "PutBucketVersioning")
        #expect(r.status == 200)
        #expect(try await s.keepsVersions())
        let v1 = try await s.put("raw/a b.jsonl", Array("old, with u-1\n".utf8))
        try await s.put("raw/a b.jsonl", Array("new\n".utf8))
        try await s.put("raw/gone.jsonl", Array("x\n".utf8))
        try await s.delete("raw/gone.jsonl")
        try await s.put("rawish/other", [1])
        let vs = try await s.versions(prefix: "raw")
        #expect(vs.map(\.key) == ["raw/a b.jsonl", "raw/a b.jsonl", "raw/gone.jsonl", "raw/gone.jsonl"])
        #expect(vs.filter(\.isLatest).count == 2 && vs.filter(\.isDeleteMarker).count == 1)
        let old = try #require(vs.first { $0.key == "raw/a b.jsonl" && !$0.isLatest })
        #expect(old.etag == v1.version)
        #expect(try await s.read("raw/a b.jsonl", versionID: old.versionID, range: nil) == Array("old, with u-1\n".utf8))
        try await s.deleteVersions([(old.key, old.versionID)])
        let after = try await s.versions(prefix: "raw")
        #expect(!after.contains { $0.versionID == old.versionID })
        #expect(try await s.read("raw/a b.jsonl") == Array("new\n".utf8))
        #expect(await ObjectStoreContract.errorCode { _ = try await s.read("raw/a b.jsonl", versionID: old.versionID, range: nil) } != nil)
    }
}
