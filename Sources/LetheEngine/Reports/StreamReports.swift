import Foundation
public import LetheCore

/// `deletions`: the stream tags (16 hex digits) added and removed since a cursor, and the next cursor.
public struct DeletionsReport: Codable, Sendable, Equatable {
    public var added: [UInt64]
    public var removed: [UInt64]
    /// The next cursor (0 when no request exists).
    public var latest: Int64
    /// The cursor asked for (0 for the whole set).
    public var since: Int64

    public init(added: [UInt64], removed: [UInt64], latest: Int64, since: Int64) {
        self.added = added; self.removed = removed; self.latest = latest; self.since = since
    }

    /// From the changes since `cursor` (`Int64.min` for the whole set).
    public init(_ changes: DeletionChanges, since cursor: Int64) {
        self.init(
            added: changes.added, removed: changes.removed,
            latest: changes.latest == Int64.min ? 0 : changes.latest, since: cursor == Int64.min ? 0 : cursor)
    }

    /// A tag as 16 hex digits.
    public static func hex(_ t: UInt64) -> String {
        let s = String(t, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    enum CodingKeys: String, CodingKey { case added, removed, latest, since }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func tags(_ k: CodingKeys) throws -> [UInt64] {
            try c.decode([String].self, forKey: k).map { text in
                guard text.count == 16, let t = UInt64(text, radix: 16) else {
                    throw DecodingError.dataCorruptedError(forKey: k, in: c, debugDescription: "not a 16-digit hex tag: \(text)")
                }
                return t
            }
        }
        added = try tags(.added); removed = try tags(.removed)
        latest = try c.decode(Int64.self, forKey: .latest); since = try c.decode(Int64.self, forKey: .since)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(added.map(Self.hex), forKey: .added)
        try c.encode(removed.map(Self.hex), forKey: .removed)
        try c.encode(latest, forKey: .latest)
        try c.encode(since, forKey: .since)
    }
}

/// `filter`'s counts; `failed_at_line` only when a malformed line stopped it.
public struct FilterReport: Codable, Sendable, Equatable {
    public var passed: Int64
    public var dropped: Int64
    public var malformed: Int64
    public var blank: Int64
    public var bytes: Int64
    public var failedAtLine: Int64?

    public init(passed: Int64, dropped: Int64, malformed: Int64, blank: Int64, bytes: Int64, failedAtLine: Int64? = nil) {
        self.passed = passed; self.dropped = dropped; self.malformed = malformed; self.blank = blank; self.bytes = bytes
        self.failedAtLine = failedAtLine
    }

    /// The one-line summary printed on stderr.
    public var summary: String {
        "lethe filter: \(passed) passed, \(dropped) dropped, \(malformed) malformed, \(blank) blank line(s); \(bytes) bytes"
    }

    enum CodingKeys: String, CodingKey { case passed, dropped, malformed, blank, bytes, failedAtLine = "failed_at_line" }
}
