import Foundation
import LetheCore
public import LetheStorage

/// A lake in an S3 bucket (or an S3-compatible server) under a key prefix: the `ObjectStore` seam
/// over ListObjectsV2, HEAD, ranged GET with `If-Match`, PutObject with `If-Match` /
/// `If-None-Match: *` (compare-and-swap and put-if-absent: a concurrent writer makes a commit fail,
/// never lose data), multipart uploads above `multipartThreshold` (aborted on failure) and
/// DeleteObjects. An object's version is its ETag.
public struct S3ObjectStore: ObjectStore {
    public let client: S3Client
    /// Key prefix of the lake in the bucket (`""`, or `a/b` without slashes around).
    public let prefix: String
    /// Writes above this size go as multipart uploads of `partSize` parts.
    public var multipartThreshold = 8 << 20
    public var partSize = 8 << 20
    /// `copyRange` of at least this many bytes from the same bucket is copied by the server
    /// (`UploadPartCopy`); smaller ranges are read and written.
    public var serverCopyThreshold: Int64 = 16 << 20
    /// S3's smallest part but the last (5 MiB).
    static let minimumPartSize: Int64 = 5 << 20
    /// The largest range one `UploadPartCopy` copies.
    static let copyPieceSize: Int64 = 1 << 30

    public init(client: S3Client, prefix: String) {
        self.client = client
        var p = prefix
        while p.hasPrefix("/") { p.removeFirst() }
        while p.hasSuffix("/") { p.removeLast() }
        self.prefix = p
    }

    public var location: String { "s3://\(client.endpoint.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }

    func s3Key(_ key: String) -> String { prefix.isEmpty ? key : prefix + "/" + key }
    func lakeKey(_ s3Key: String) -> String? {
        guard !prefix.isEmpty else { return s3Key }
        guard s3Key.hasPrefix(prefix + "/") else { return nil }
        return String(s3Key.dropFirst(prefix.count + 1))
    }
    func url(_ key: String) -> String { "s3://\(client.endpoint.bucket)/\(s3Key(key))" }

    /// `s3://`, `s3a://` or `s3n://` + this bucket + a percent-encoded key under the lake prefix.
    public func key(forURL url: String) -> String? {
        guard let scheme = ["s3://", "s3a://", "s3n://"].first(where: { url.hasPrefix($0) }) else { return nil }
        let rest = url.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/"), rest[..<slash] == client.endpoint.bucket else { return nil }
        guard let decoded = String(rest[rest.index(after: slash)...]).removingPercentEncoding else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false)
        guard !decoded.isEmpty, !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        guard let key = lakeKey(decoded), !key.isEmpty else { return nil }
        return key
    }

    // MARK: Listing

    public func list(prefix: String, startAfter: String?) -> ObjectListing {
        let store = self
        var p = prefix
        while p.hasSuffix("/") { p.removeLast() }
        // A folder prefix: the object `p` itself (it sorts first), then everything under `p/`.
        return ObjectListing(startAfter: startAfter) { [p] after in
            var out: [ObjectInfo] = []
            if !p.isEmpty, after == nil || keyPrecedes(after!, p), let me = try await store.head(p) { out.append(me) }
            let folder = p.isEmpty ? "" : p + "/"
            var from = after
            if let a = from, !folder.isEmpty, keyPrecedes(a, folder) { from = nil }
            let page = try await store.listPage(folder: folder, after: from, max: 1000 - out.count)
            out += page.objects
            return (out, page.more)
        }
    }

    /// One ListObjectsV2 page below `folder` (a lake prefix ending in `/`, or empty), after `after`.
    func listPage(folder: String, after: String?, max: Int = 1000) async throws -> (objects: [ObjectInfo], more: Bool) {
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("max-keys", "\(max)"), ("encoding-type", "url"), ("prefix", s3Key(folder).isEmpty ? "" : s3Key(folder)),
        ]
        if prefix.isEmpty && folder.isEmpty { query.removeLast() }
        if let after { query.append(("start-after", s3Key(after))) }
        let r = try await client.send("GET", key: nil, query: query, what: "ListObjectsV2 \(url(folder))")
        try check(r, what: "list", key: folder)
        let page: S3ListPage
        do {
            page = try S3ListPage(try XML.parse(r.body))
        } catch {
            throw LetheError(.io, "S3 answered a listing with an unreadable document (\(error))", at: url(folder))
        }
        var objects: [ObjectInfo] = []
        for o in page.objects where !o.key.hasSuffix("/") {  // console "folder" markers are not data
            guard let k = lakeKey(o.key) else { continue }
            objects.append(ObjectInfo(key: k, size: o.size, modifiedNanos: o.modifiedNanos, version: o.etag))
        }
        // A page of only folder markers is skipped by asking for the next one.
        if objects.isEmpty && page.truncated, let last = page.objects.last.flatMap({ lakeKey($0.key) }) {
            return try await listPage(folder: folder, after: last, max: max)
        }
        return (objects, page.truncated)
    }

    // MARK: Reads

    public func head(_ key: String) async throws -> ObjectInfo? {
        let r = try await client.send("HEAD", key: s3Key(key), what: "HEAD \(url(key))")
        if r.status == 404 { return nil }
        try check(r, what: "head", key: key)
        return info(key, r.headers)
    }

    func info(_ key: String, _ h: [String: String]) -> ObjectInfo {
        ObjectInfo(
            key: key, size: Int64(h["content-length"] ?? "") ?? 0, modifiedNanos: HTTPDate.nanos(h["last-modified"] ?? "") ?? 0,
            version: S3Text.unquoted(h["etag"] ?? ""))
    }

    public func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        var headers: [(name: String, value: String)] = []
        if let ifVersion { headers.append(("If-Match", "\"\(ifVersion)\"")) }
        if let range {
            guard range.lowerBound >= 0 else { throw LetheError.badInput("negative read offset", at: url(key)) }
            if range.isEmpty {
                // Nothing to fetch; the object must still exist (and be at the version).
                guard let i = try await head(key) else { throw LetheError(.notFound, "no such object", at: url(key)) }
                if let ifVersion, i.version != ifVersion { throw LetheError(.conflict, "the object changed since it was read", at: url(key)) }
                guard range.lowerBound <= i.size else { throw LetheError.badInput("read past the end of the object", at: url(key)) }
                return []
            }
            headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let r = try await client.send("GET", key: s3Key(key), headers: headers, what: "GET \(url(key))")
        if r.status == 416 { throw LetheError.badInput("read \(range.map { "\($0)" } ?? "") past the end of the object", at: url(key)) }
        try check(r, what: "read", key: key)
        guard let range else { return r.body }
        if r.status == 200 {
            // A server that ignores Range sends the whole object.
            guard Int64(r.body.count) >= range.upperBound else { throw LetheError.badInput("read \(range) past the end of the object", at: url(key)) }
            return Array(r.body[Int(range.lowerBound)..<Int(range.upperBound)])
        }
        guard r.body.count == range.count else { throw LetheError.badInput("read \(range) past the end of the object", at: url(key)) }
        return r.body
    }

    // MARK: Writes

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        S3WriteStream(store: self, key: key, precondition: precondition)
    }

    public func delete(_ keys: [String]) async throws {
        try await deleteObjects(keys.map { ($0, nil) })
    }

    /// DeleteObjects, 1,000 at a time; with a version id, that version for good.
    func deleteObjects(_ items: [(key: String, versionID: String?)]) async throws {
        var at = 0
        while at < items.count {
            let chunkItems = Array(items[at..<min(items.count, at + 1000)])
            let chunk = chunkItems.map(\.key)
            at += chunk.count
            var xml = "<Delete><Quiet>true</Quiet>"
            for (k, v) in chunkItems {
                xml += "<Object><Key>\(Self.escape(s3Key(k)))</Key>" + (v.map { "<VersionId>\(Self.escape($0))</VersionId>" } ?? "") + "</Object>"
            }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let r = try await client.send(
                "POST", key: nil, query: [("delete", "")],
                headers: [("Content-MD5", S3Client.md5Base64(body)), ("Content-Type", "application/xml")], body: body,
                what: "DeleteObjects \(location)")
            try check(r, what: "delete", key: chunk[0])
            let result = try S3DeleteResult(try XML.parse(r.body))
            if let e = result.errors.first(where: { $0.code != "NoSuchKey" }) {
                throw LetheError(.io, "S3 refused to delete an object: \(e.code) \(e.message)", at: "s3://\(client.endpoint.bucket)/\(e.key)")
            }
        }
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                if c.value < 0x20 { out += "&#\(c.value);" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    /// Turns an error response into a one-line `LetheError`: 404 → `.notFound`, 412 → `.conflict`,
    /// access and configuration errors → `.badInput` (exit 2), anything else → `.failure`.
    func check(_ r: S3Response, what: String, key: String) throws {
        guard r.status >= 300 else { return }
        let code = r.errorCode
        let named = code.map { "\($0)" } ?? "HTTP \(r.status)"
        switch (r.status, code) {
        case (404, "NoSuchBucket"?):
            throw LetheError.badInput("the bucket \(client.endpoint.bucket) does not exist (NoSuchBucket)", at: location)
        case (404, _): throw LetheError(.notFound, "no such object", at: url(key))
        case (412, _), (409, "ConditionalRequestConflict"?):
            throw LetheError(.conflict, "the object changed since it was read (\(named))", at: url(key))
        case (403, _), (400, "InvalidAccessKeyId"?), (400, "AuthorizationHeaderMalformed"?), (301, _):
            throw LetheError.badInput(
                "S3 refused to \(what) (\(named)): check the credentials, region and endpoint, and that they allow it (docs/scale-out.md)",
                at: url(key))
        default:
            throw LetheError(.failure, "S3 could not \(what) (\(named))", at: url(key))
        }
    }
}

extension S3ObjectStore: VersionedObjectStore {
    public func keepsVersions() async throws -> Bool {
        let r = try await client.send("GET", key: nil, query: [("versioning", "")], what: "GetBucketVersioning \(location)")
        try check(r, what: "read the bucket's versioning", key: "")
        let status = (try? XML.parse(r.body))?.text("Status")
        return status == "Enabled" || status == "Suspended"
    }

    public func versions(prefix: String) async throws -> [ObjectVersion] {
        var p = prefix
        while p.hasSuffix("/") { p.removeLast() }
        var out: [ObjectVersion] = []
        var keyMarker: String?, versionMarker: String?
        repeat {
            var query: [(name: String, value: String)] = [("versions", ""), ("encoding-type", "url"), ("max-keys", "1000")]
            let s3Prefix = s3Key(p)
            if !s3Prefix.isEmpty { query.append(("prefix", s3Prefix)) }
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let versionMarker { query.append(("version-id-marker", versionMarker)) }
            let r = try await client.send("GET", key: nil, query: query, what: "ListObjectVersions \(url(p))")
            try check(r, what: "list versions", key: p)
            let page: S3VersionsPage
            do {
                page = try S3VersionsPage(try XML.parse(r.body))
            } catch {
                throw LetheError(.io, "S3 answered a version listing with an unreadable document (\(error))", at: url(p))
            }
            for var v in page.versions {
                guard let k = lakeKey(v.key), !k.hasSuffix("/"), p.isEmpty || k == p || k.hasPrefix(p + "/") else { continue }
                v.key = k
                out.append(v)
            }
            guard page.truncated, let km = page.nextKeyMarker else { break }
            keyMarker = km
            versionMarker = page.nextVersionIDMarker
        } while true
        return out
    }

    public func read(_ key: String, versionID: String, range: Range<Int64>?) async throws -> [UInt8] {
        var headers: [(name: String, value: String)] = []
        if let range, !range.isEmpty { headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        let r = try await client.send(
            "GET", key: s3Key(key), query: [("versionId", versionID)], headers: headers, what: "GET \(url(key)) version \(versionID)")
        try check(r, what: "read a version", key: key)
        return r.body
    }

    public func deleteVersions(_ versions: [(key: String, versionID: String)]) async throws {
        try await deleteObjects(versions.map { ($0.key, $0.versionID) })
    }
}

/// Buffers up to the store's multipart threshold; then uploads parts as they fill.
final class S3WriteStream: ObjectWriteStream {
    let store: S3ObjectStore
    let key: String
    let precondition: WritePrecondition
    private var buffer: [UInt8] = []
    private var uploadID: String?
    private var parts: [(number: Int, etag: String)] = []
    private var done = false

    init(store: S3ObjectStore, key: String, precondition: WritePrecondition) {
        self.store = store
        self.key = key
        self.precondition = precondition
    }

    var client: S3Client { store.client }
    var s3Key: String { store.s3Key(key) }

    func write(_ bytes: [UInt8]) async throws {
        buffer += bytes
        while buffer.count >= store.multipartThreshold && buffer.count >= store.partSize {
            try await uploadPart(Array(buffer.prefix(store.partSize)))
            buffer.removeFirst(store.partSize)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) async throws { try await write(Array(bytes)) }

    private func conditionHeaders() async throws -> [(name: String, value: String)] {
        switch precondition {
        case .none: return []
        case .absent: return [("If-None-Match", "*")]
        case .matches(let v): return [("If-Match", "\"\(v)\"")]
        }
    }

    /// Appends `range` of `source` at `version`: by the server (`UploadPartCopy`, the source pinned
    /// with `x-amz-copy-source-if-match`) when it is in the same bucket and large enough, else read
    /// and written. The bytes written before it are topped up from the range to a whole part
    /// first, and a remainder smaller than a part is read, so every part but the last stays at
    /// least 5 MiB. The source's version is checked again before the upload completes.
    func copyRange(from sourceKey: String, version: String, range: Range<Int64>, in source: any ObjectStore) async throws {
        guard let src = source as? S3ObjectStore, src.client.endpoint == client.endpoint,
            Int64(range.count) >= store.serverCopyThreshold
        else {
            return try await copyRangeByReading(from: sourceKey, version: version, range: range, in: source)
        }
        let minimum = S3ObjectStore.minimumPartSize
        var at = range.lowerBound
        if !buffer.isEmpty, buffer.count < minimum {
            let end = min(range.upperBound, at + minimum - Int64(buffer.count))
            buffer += try await src.read(sourceKey, range: at..<end, ifVersion: version)
            at = end
        }
        if !buffer.isEmpty {
            try await uploadPart(buffer)
            buffer = []
        }
        while range.upperBound - at >= minimum {
            var end = min(range.upperBound, at + S3ObjectStore.copyPieceSize)
            if range.upperBound - end < minimum { end = range.upperBound }
            try await uploadPartCopy(src, sourceKey, version: version, at..<end)
            at = end
        }
        if at < range.upperBound { buffer += try await src.read(sourceKey, range: at..<range.upperBound, ifVersion: version) }
        copiedFrom.append((src, sourceKey, version))
    }

    /// Sources of server-side copies, checked again before the upload completes (a server may
    /// ignore `x-amz-copy-source-if-match`).
    private var copiedFrom: [(store: S3ObjectStore, key: String, version: String)] = []

    private func uploadPartCopy(_ src: S3ObjectStore, _ sourceKey: String, version: String, _ r: Range<Int64>) async throws {
        try await startUpload()
        let n = parts.count + 1
        let headers = [
            ("x-amz-copy-source", "/\(src.client.endpoint.bucket)/" + SigV4.encode(src.s3Key(sourceKey), keepSlash: true)),
            ("x-amz-copy-source-range", "bytes=\(r.lowerBound)-\(r.upperBound - 1)"),
            ("x-amz-copy-source-if-match", "\"\(version)\""),
        ]
        let resp = try await client.send(
            "PUT", key: s3Key, query: [("partNumber", "\(n)"), ("uploadId", uploadID!)], headers: headers,
            what: "UploadPartCopy \(n) \(store.url(key)) from \(src.url(sourceKey))")
        if resp.status == 412 || resp.status == 404 {
            throw LetheError(.conflict, "the object changed since it was read", at: src.url(sourceKey))
        }
        try store.check(resp, what: "copy a part", key: key)
        guard let etag = (try? XML.parse(resp.body))?.text("ETag") else {
            throw LetheError(.io, "S3 copied a part without an ETag", at: store.url(key))
        }
        parts.append((n, S3Text.unquoted(etag)))
    }

    private func startUpload() async throws {
        guard uploadID == nil else { return }
        let r = try await client.send("POST", key: s3Key, query: [("uploads", "")], what: "CreateMultipartUpload \(store.url(key))")
        try store.check(r, what: "start an upload", key: key)
        guard let id = (try? XML.parse(r.body))?.text("UploadId") else {
            throw LetheError(.io, "S3 started an upload without an UploadId", at: store.url(key))
        }
        uploadID = id
    }

    private func uploadPart(_ part: [UInt8]) async throws {
        try await startUpload()
        let n = parts.count + 1
        let r = try await client.send(
            "PUT", key: s3Key, query: [("partNumber", "\(n)"), ("uploadId", uploadID!)], body: part, what: "UploadPart \(n) \(store.url(key))")
        try store.check(r, what: "upload a part", key: key)
        parts.append((n, S3Text.unquoted(r.headers["etag"] ?? "")))
    }

    func commit() async throws -> ObjectInfo {
        guard !done else { throw LetheError(.failure, "commit of a finished write", at: store.url(key)) }
        done = true
        let condition = try await conditionHeaders()
        do {
            if uploadID == nil {
                let r = try await client.send("PUT", key: s3Key, headers: condition, body: buffer, what: "PutObject \(store.url(key))")
                if r.status == 404, case .matches = precondition {
                    // The version to replace is gone: someone deleted the object meanwhile.
                    throw LetheError(.conflict, "the object changed since it was read (it is gone)", at: store.url(key))
                }
                if r.status == 412 || r.status == 409, try await isOurs(S3Client.md5Hex(buffer)) {
                    // A retried put whose first attempt landed: ours, not a concurrent writer's.
                } else {
                    try store.check(r, what: "write", key: key)
                }
            } else {
                if !buffer.isEmpty || parts.isEmpty { try await uploadPart(buffer) }
                buffer = []
                for c in copiedFrom {
                    guard let now = try await c.store.head(c.key), now.version == c.version else {
                        throw LetheError(.conflict, "the object changed since it was read", at: c.store.url(c.key))
                    }
                }
                if case .matches(let v) = precondition {
                    // CompleteMultipartUpload is not conditional on every server: check first.
                    guard let now = try await store.head(key), now.version == v else {
                        throw LetheError(.conflict, "the object changed since it was read", at: store.url(key))
                    }
                }
                var xml = "<CompleteMultipartUpload>"
                for p in parts { xml += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\"\(p.etag)\"</ETag></Part>" }
                xml += "</CompleteMultipartUpload>"
                let r = try await client.send(
                    "POST", key: s3Key, query: [("uploadId", uploadID!)], headers: condition, body: Array(xml.utf8),
                    what: "CompleteMultipartUpload \(store.url(key))")
                try store.check(r, what: "finish an upload", key: key)
                if let e = (try? XML.parse(r.body)).flatMap(S3ErrorDocument.init) {
                    throw LetheError(.failure, "S3 could not finish an upload (\(e.code))", at: store.url(key))
                }
                uploadID = nil
            }
        } catch {
            await abortUpload()
            throw error
        }
        guard let info = try await store.head(key) else { throw LetheError(.io, "the object written is not there", at: store.url(key)) }
        return info
    }

    /// After a 412 on a retried put: whether the object now there is this write's (same ETag).
    private func isOurs(_ md5: String) async throws -> Bool {
        guard client.stats.retries > 0, let now = try await store.head(key) else { return false }
        return now.version == md5 && now.size == Int64(buffer.count)
    }

    private func abortUpload() async {
        guard let id = uploadID else { return }
        uploadID = nil
        _ = try? await client.send("DELETE", key: s3Key, query: [("uploadId", id)], what: "AbortMultipartUpload \(store.url(key))")
    }

    func abort() async {
        guard !done else { return }
        done = true
        buffer = []
        await abortUpload()
    }
}

/// HTTP dates (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's preferred form) as nanoseconds since 1970.
enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func nanos(_ s: String) -> Int64? {
        let parts = s.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let d = Int(parts[1]), let mi = months.firstIndex(of: String(parts[2])),
            let y = Int(parts[3])
        else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int($0) }
        guard hms.count == 3 else { return nil }
        let iso = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mi + 1, d, hms[0], hms[1], hms[2])
        return S3Text.nanos(iso)
    }
}
