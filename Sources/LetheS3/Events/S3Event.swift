import Foundation
import LetheCore

/// One record of an S3 event notification (AWS's "Event message structure", version 2.x):
/// what happened to which object of which bucket. The key is decoded (S3 sends it
/// URL-encoded, a space as `+`).
public struct S3ObjectEvent: Sendable, Equatable {
    /// What the record says happened: an object was written, or removed (a delete, a delete
    /// marker, a lifecycle expiration). Other events (restores, tagging, ACLs, replication,
    /// lifecycle transitions) change no bytes Lethe indexes: `other`.
    public enum Kind: Sendable, Equatable { case created, removed, other }

    public var kind: Kind
    /// `ObjectCreated:Put`, `ObjectRemoved:DeleteMarkerCreated`, … (without the `s3:` prefix).
    public var name: String
    public var bucket: String
    /// The object's key, decoded.
    public var key: String
    public var size: Int64?
    public var eTag: String?
    public var versionID: String?
    /// S3's order of the events of one key (hex; compare with `S3ObjectEvent.precedes`). Absent
    /// from some servers' documents.
    public var sequencer: String?

    public init(
        kind: Kind, name: String, bucket: String, key: String, size: Int64? = nil, eTag: String? = nil, versionID: String? = nil,
        sequencer: String? = nil
    ) {
        self.kind = kind; self.name = name; self.bucket = bucket; self.key = key
        self.size = size; self.eTag = eTag; self.versionID = versionID; self.sequencer = sequencer
    }

    /// The kind of an event name (with or without `s3:`).
    public static func kind(of name: String) -> Kind {
        let n = name.hasPrefix("s3:") ? String(name.dropFirst(3)) : name
        if n.hasPrefix("ObjectCreated:") { return .created }
        if n.hasPrefix("ObjectRemoved:") || n.hasPrefix("LifecycleExpiration:") { return .removed }
        return .other
    }

    /// Whether sequencer `a` comes before `b`: S3's sequencers are hexadecimal of varying length,
    /// compared as numbers (the shorter left-padded with zeros). Only events of the same key
    /// are comparable.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        let x = Array(a.uppercased().utf8).drop { $0 == UInt8(ascii: "0") }
        let y = Array(b.uppercased().utf8).drop { $0 == UInt8(ascii: "0") }
        if x.count != y.count { return x.count < y.count }
        return x.lexicographicallyPrecedes(y)
    }
}

/// What one message of the events queue holds.
public enum S3EventMessage: Sendable, Equatable {
    /// Object events (one document may hold several records).
    case events([S3ObjectEvent])
    /// `s3:TestEvent`: S3 sends one when a notification configuration is saved; nothing to do.
    case test(bucket: String?)
    /// A JSON document that is no S3 event (e.g. another producer's message on the queue).
    case unrelated(String)

    /// Parses a message body: an S3 event document (`{"Records": [...]}`), the test event, or
    /// either wrapped in an SNS notification envelope (`{"Type": "Notification", "Message": "…"}`,
    /// a queue subscribed to a topic without raw delivery). Throws `.badInput` for a body that is
    /// not JSON, or a record without bucket or key, or a key that does not decode.
    public static func parse(_ body: [UInt8]) throws -> S3EventMessage {
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: Data(body))
        } catch {
            throw LetheError.badInput("the message is not an S3 event document (\(Self.reason(error)))", at: "events queue")
        }
        if doc.Type == "Notification", let inner = doc.Message {
            return try parse(Array(inner.utf8))
        }
        if doc.Event == "s3:TestEvent" { return .test(bucket: doc.Bucket) }
        guard let records = doc.Records else {
            return .unrelated(doc.Type.map { "a document of type \($0)" } ?? "a JSON document without `Records`")
        }
        var out: [S3ObjectEvent] = []
        for (i, r) in records.enumerated() {
            guard let name = r.eventName, let s3 = r.s3, let bucket = s3.bucket?.name, let raw = s3.object?.key else {
                throw LetheError.badInput("record \(i) has no eventName, s3.bucket.name or s3.object.key", at: "events queue")
            }
            if let source = r.eventSource, source != "aws:s3" {
                throw LetheError.badInput("record \(i) comes from `\(source)`, not aws:s3", at: "events queue")
            }
            guard let key = decodeKey(raw) else {
                throw LetheError.badInput("record \(i): the object key is not valid URL-encoded UTF-8", at: "events queue")
            }
            let o = s3.object!
            out.append(
                S3ObjectEvent(
                    kind: S3ObjectEvent.kind(of: name), name: name, bucket: bucket, key: key, size: o.size, eTag: o.eTag,
                    versionID: o.versionId, sequencer: o.sequencer))
        }
        return .events(out)
    }

    /// An event key as S3 writes it (`application/x-www-form-urlencoded`: `+` for a space,
    /// `%XX` for other bytes) decoded to text; nil when it is not valid.
    public static func decodeKey(_ s: String) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let c = it.popFirst() {
            switch c {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let h = it.popFirst().flatMap(hex), let l = it.popFirst().flatMap(hex) else { return nil }
                out.append(h << 4 | l)
            default: out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.typeMismatch(_, let c): return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: return "unreadable JSON"
        }
    }

    // The documents' shapes, as AWS documents them (field names as sent).
    private struct Document: Decodable {
        var Records: [Record]?
        var Event: String?
        var Bucket: String?
        var `Type`: String?
        var Message: String?
    }
    private struct Record: Decodable {
        var eventSource: String?
        var eventName: String?
        var s3: Entity?
    }
    private struct Entity: Decodable {
        var bucket: Bucket?
        var object: Object?
    }
    private struct Bucket: Decodable { var name: String? }
    private struct Object: Decodable {
        var key: String?
        var size: Int64?
        var eTag: String?
        var versionId: String?
        var sequencer: String?
    }
}

extension S3ObjectEvent {
    /// The latest event of each key, in S3's order (`sequencer`); events without a sequencer count
    /// in the order given, after any with one of the same key. The result keeps the keys'
    /// first-seen order.
    public static func coalesce(_ events: [S3ObjectEvent]) -> [S3ObjectEvent] {
        var latest: [String: Int] = [:]
        var order: [String] = []
        var out: [S3ObjectEvent] = []
        for e in events {
            let id = e.bucket + "\u{0}" + e.key
            guard let i = latest[id] else {
                latest[id] = out.count
                order.append(id)
                out.append(e)
                continue
            }
            let old = out[i]
            if let a = old.sequencer, let b = e.sequencer, !precedes(a, b) { continue }  // older or the same: a duplicate or out of order
            out[i] = e
        }
        return order.map { out[latest[$0]!] }
    }
}
