public import LetheStorage

/// The S3 response documents the object store reads, decoded from XML (`XML.parse`). Keys of
/// listings asked for with `encoding-type=url` are percent-decoded (`+` is a space), as AWS's SDKs do.

/// One object of a listing.
public struct S3Object: Sendable, Equatable {
    public var key: String
    public var size: Int64
    /// The ETag without its quotes.
    public var etag: String
    /// LastModified in nanoseconds since 1970 (UTC).
    public var modifiedNanos: Int64
}

/// A page of ListObjectsV2.
public struct S3ListPage: Sendable, Equatable {
    public var objects: [S3Object]
    public var truncated: Bool
    public var continuationToken: String?

    public init(_ root: XMLElement) throws(XMLError) {
        guard root.name == "ListBucketResult" else { throw XMLError(offset: 0, message: "expected ListBucketResult, got \(root.name)") }
        let url = root.text("EncodingType") == "url"
        objects = try root.all("Contents").map { (c) throws(XMLError) -> S3Object in
            guard let k = c.text("Key") else { throw XMLError(offset: 0, message: "Contents without a Key") }
            return S3Object(
                key: url ? try S3Text.urlDecoded(k) : k, size: Int64(c.text("Size") ?? "") ?? 0, etag: S3Text.unquoted(c.text("ETag") ?? ""),
                modifiedNanos: S3Text.nanos(c.text("LastModified") ?? "") ?? 0)
        }
        truncated = root.text("IsTruncated") == "true"
        continuationToken = root.text("NextContinuationToken")
    }
}

/// A page of ListObjectVersions: versions and delete markers in the server's order (by key, newest first).
public struct S3VersionsPage: Sendable, Equatable {
    /// Keys as S3 names them (the bucket's, not the lake's).
    public var versions: [ObjectVersion]
    public var truncated: Bool
    public var nextKeyMarker: String?
    public var nextVersionIDMarker: String?

    public init(_ root: XMLElement) throws(XMLError) {
        guard root.name == "ListVersionsResult" else { throw XMLError(offset: 0, message: "expected ListVersionsResult, got \(root.name)") }
        let url = root.text("EncodingType") == "url"
        var out: [ObjectVersion] = []
        for c in root.children where c.name == "Version" || c.name == "DeleteMarker" {
            guard let k = c.text("Key"), let v = c.text("VersionId") else { throw XMLError(offset: 0, message: "\(c.name) without Key or VersionId") }
            out.append(
                ObjectVersion(
                    key: url ? try S3Text.urlDecoded(k) : k, versionID: v, isLatest: c.text("IsLatest") == "true",
                    isDeleteMarker: c.name == "DeleteMarker", size: Int64(c.text("Size") ?? "") ?? 0,
                    etag: S3Text.unquoted(c.text("ETag") ?? ""), modifiedNanos: S3Text.nanos(c.text("LastModified") ?? "") ?? 0))
        }
        versions = out
        truncated = root.text("IsTruncated") == "true"
        nextKeyMarker = try root.text("NextKeyMarker").map { (k) throws(XMLError) in url ? try S3Text.urlDecoded(k) : k }
        nextVersionIDMarker = root.text("NextVersionIdMarker")
    }
}

/// An `<Error>` document (also found inside a 200 response to CompleteMultipartUpload).
public struct S3ErrorDocument: Sendable, Equatable {
    public var code: String
    public var message: String
    public var key: String?

    public init?(_ root: XMLElement) {
        guard root.name == "Error", let code = root.text("Code") else { return nil }
        self.code = code
        message = root.text("Message") ?? ""
        key = root.text("Key")
    }
}

/// The result of DeleteObjects: keys deleted and per-key errors.
public struct S3DeleteResult: Sendable, Equatable {
    public var deleted: [(key: String, versionID: String?)]
    public var errors: [(key: String, code: String, message: String)]

    public init(_ root: XMLElement) throws(XMLError) {
        guard root.name == "DeleteResult" else { throw XMLError(offset: 0, message: "expected DeleteResult, got \(root.name)") }
        deleted = root.all("Deleted").map { ($0.text("Key") ?? "", $0.text("VersionId")) }
        errors = root.all("Error").map { ($0.text("Key") ?? "", $0.text("Code") ?? "", $0.text("Message") ?? "") }
    }

    public static func == (a: S3DeleteResult, b: S3DeleteResult) -> Bool {
        a.deleted.map { [$0.key, $0.versionID ?? ""] } == b.deleted.map { [$0.key, $0.versionID ?? ""] }
            && a.errors.map { [$0.key, $0.code, $0.message] } == b.errors.map { [$0.key, $0.code, $0.message] }
    }
}

enum S3Text {
    /// An ETag without surrounding quotes.
    static func unquoted(_ s: String) -> String {
        guard s.count >= 2, s.first == "\"", s.last == "\"" else { return s }
        return String(s.dropFirst().dropLast())
    }

    /// Percent-decoding with `+` as a space (S3's `encoding-type=url`).
    static func urlDecoded(_ s: String) throws(XMLError) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while i < b.count {
            if b[i] == UInt8(ascii: "%") {
                guard i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) else {
                    throw XMLError(offset: 0, message: "bad percent-encoding in a listed key")
                }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(b[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : b[i])
                i += 1
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw XMLError(offset: 0, message: "a listed key is not UTF-8") }
        return text
    }

    /// `2009-10-12T17:50:30.000Z` (ISO 8601 in UTC, fraction optional) as nanoseconds since 1970.
    static func nanos(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ n: Int) -> Int64? {
            guard from + n <= b.count else { return nil }
            var v: Int64 = 0
            for c in b[from..<(from + n)] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int64(c - UInt8(ascii: "0"))
            }
            return v
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"), let y = num(0, 4),
            let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2), (1...12).contains(mo)
        else { return nil }
        var frac: Int64 = 0
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if digits < 9 { frac = frac * 10 + Int64(b[i] - UInt8(ascii: "0")) }
                digits += 1
                i += 1
            }
            for _ in min(digits, 9)..<9 { frac *= 10 }
        }
        guard i == b.count - 1, b[i] == UInt8(ascii: "Z") else { return nil }
        // Days from the civil date (the era-based algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 86_400 + h * 3_600 + mi * 60 + sec) * 1_000_000_000) + frac
    }
}
