import LetheCore

/// How far `index` read a Delta table's log, and under which rules: the next index reads only the
/// commits after `version` while the subject columns, partition types, timestamp kinds and check
/// rules are still these.
public struct DeltaIndexCursor: Sendable, Equatable {
    /// The last table version indexed.
    public var version: Int64
    /// The subject's columns, each a path of field names.
    public var columns: [[String]]
    /// Partition columns among the subject's: physical name → Delta type name.
    public var partitions: [String: String]
    /// Per subject column: whether the schema types it as a UTC timestamp (nil: not a timestamp).
    public var utc: [Bool?]
    /// The version of the protocol checks applied when the table was last listed whole.
    public var checks: Int64

    public init(version: Int64, columns: [[String]], partitions: [String: String], utc: [Bool?], checks: Int64) {
        self.version = version; self.columns = columns; self.partitions = partitions; self.utc = utc; self.checks = checks
    }

    /// The stored text (compact JSON, sorted keys): `{"checks":…,"columns":[[…]],"partitions":{…},"utc":[…],"version":…}`.
    public var text: String {
        JSONValue.object([
            "version": .int(version),
            "columns": .array(columns.map { .array($0.map(JSONValue.string)) }),
            "partitions": .object(partitions.mapValues(JSONValue.string)),
            "utc": .array(utc.map { $0.map(JSONValue.bool) ?? .null }),
            "checks": .int(checks),
        ]).encodedText
    }

    /// Reads the stored text; nil when it is not a whole cursor (the next index then lists the table whole).
    public init?(text: String) {
        guard let j = try? JSONValue.parse(Array(text.utf8)), let version = j["version"]?.int, let checks = j["checks"]?.int,
            let cols = j["columns"]?.array, let parts = j["partitions"]?.object, let utc = j["utc"]?.array
        else { return nil }
        var columns: [[String]] = []
        for c in cols {
            guard let path = c.array?.compactMap(\.string), path.count == c.array?.count else { return nil }
            columns.append(path)
        }
        var partitions: [String: String] = [:]
        for (k, v) in parts {
            guard let s = v.string else { return nil }
            partitions[k] = s
        }
        self.init(
            version: version, columns: columns, partitions: partitions,
            utc: utc.map { $0.bool }, checks: checks)
    }
}

/// The settings that are cursors, by name: until every caller reads and writes cursors by type, a
/// store keeps `delta.<dataset>.indexed` and `propagation.<dataset>.version` in its cursors and
/// answers the setting names from there (same text as before).
public enum CursorSetting: Sendable, Equatable {
    /// `delta.<dataset>.indexed`: a `DeltaIndexCursor`'s text.
    case deltaIndex(dataset: String)
    /// `propagation.<dataset>.version`: the last change-feed version propagated, as decimal text.
    case propagation(dataset: String)

    public init?(name: String) {
        func middle(_ prefix: String, _ suffix: String) -> String? {
            guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.utf8.count > prefix.utf8.count + suffix.utf8.count else { return nil }
            return String(name.dropFirst(prefix.count).dropLast(suffix.count))
        }
        if let d = middle("delta.", ".indexed") {
            self = .deltaIndex(dataset: d)
        } else if let d = middle("propagation.", ".version") {
            self = .propagation(dataset: d)
        } else {
            return nil
        }
    }

    public var name: String {
        switch self {
        case .deltaIndex(let d): "delta.\(d).indexed"
        case .propagation(let d): "propagation.\(d).version"
        }
    }

    public var dataset: String {
        switch self {
        case .deltaIndex(let d), .propagation(let d): d
        }
    }

    /// The cursor kind as stored.
    public var kind: String {
        switch self {
        case .deltaIndex: "delta_index"
        case .propagation: "propagation"
        }
    }
}
