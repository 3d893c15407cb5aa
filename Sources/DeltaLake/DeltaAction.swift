import Foundation
public import LetheCore

/// A data file added to the table (`add` action).
public struct AddFile: Sendable, Equatable {
    /// The path as written in the log: relative to the table root and URL-encoded, or an absolute URI.
    public var path: String
    public var partitionValues: [String: String?]
    public var size: Int64
    public var modificationTime: Int64
    public var dataChange: Bool
    /// Per-file statistics (a JSON string), if any.
    public var stats: String?
    public var deletionVector: JSONValue?
    /// The whole action object, for fields not modelled here.
    public var raw: [String: JSONValue]

    public init(
        path: String, partitionValues: [String: String?], size: Int64, modificationTime: Int64,
        dataChange: Bool, stats: String?, deletionVector: JSONValue? = nil, extra: [String: JSONValue] = [:]
    ) {
        self.path = path; self.partitionValues = partitionValues; self.size = size
        self.modificationTime = modificationTime; self.dataChange = dataChange; self.stats = stats
        self.deletionVector = deletionVector
        var r = extra
        r["path"] = .string(path)
        r["partitionValues"] = .object(partitionValues.mapValues { $0.map(JSONValue.string) ?? .null })
        r["size"] = .int(size)
        r["modificationTime"] = .int(modificationTime)
        r["dataChange"] = .bool(dataChange)
        if let stats { r["stats"] = .string(stats) }
        if let deletionVector { r["deletionVector"] = deletionVector }
        self.raw = r
    }

    init(raw o: [String: JSONValue], table: String, file: String) throws {
        guard let path = o["path"]?.string else { throw DeltaError.corrupt(table, "`add` without a path", file: file) }
        self.path = path
        self.partitionValues = o["partitionValues"]?.stringMap ?? [:]
        self.size = o["size"]?.int ?? 0
        self.modificationTime = o["modificationTime"]?.int ?? 0
        self.dataChange = o["dataChange"]?.bool ?? true
        self.stats = o["stats"]?.string
        self.deletionVector = o["deletionVector"].flatMap { $0.isNull ? nil : $0 }
        self.raw = o
    }
}

/// A data file removed from the table (`remove` action): a tombstone until vacuumed.
public struct RemoveFile: Sendable, Equatable {
    public var path: String
    public var deletionTimestamp: Int64?
    public var dataChange: Bool
    public var size: Int64?
    public var deletionVector: JSONValue?
    public var raw: [String: JSONValue]

    init(raw o: [String: JSONValue], table: String, file: String) throws {
        guard let path = o["path"]?.string else { throw DeltaError.corrupt(table, "`remove` without a path", file: file) }
        self.path = path
        self.deletionTimestamp = o["deletionTimestamp"]?.int
        self.dataChange = o["dataChange"]?.bool ?? true
        self.size = o["size"]?.int
        self.deletionVector = o["deletionVector"].flatMap { $0.isNull ? nil : $0 }
        self.raw = o
    }

    /// The tombstone for a live file, as a DELETE writes it.
    public init(removing add: AddFile, at timestamp: Int64) {
        self.path = add.path
        self.deletionTimestamp = timestamp
        self.dataChange = true
        self.size = add.size
        self.deletionVector = add.deletionVector
        var r: [String: JSONValue] = [
            "path": .string(add.path), "deletionTimestamp": .int(timestamp), "dataChange": .bool(true),
            "extendedFileMetadata": .bool(true), "size": .int(add.size),
            "partitionValues": .object(add.partitionValues.mapValues { $0.map(JSONValue.string) ?? .null }),
        ]
        if let dv = add.deletionVector { r["deletionVector"] = dv }
        // Row tracking: a remove carries the Row ID and commit version fields of the last add of its path.
        for k in ["baseRowId", "defaultRowCommitVersion"] { if let v = add.raw[k], !v.isNull { r[k] = v } }
        self.raw = r
    }
}

/// The table's metadata (`metaData` action).
public struct TableMetadata: Sendable, Equatable {
    public var id: String
    public var schemaString: String
    public var partitionColumns: [String]
    public var configuration: [String: String]
    public var raw: [String: JSONValue]

    init(raw o: [String: JSONValue], table: String, file: String) throws {
        guard let id = o["id"]?.string, let schema = o["schemaString"]?.string else {
            throw DeltaError.corrupt(table, "`metaData` without id or schemaString", file: file)
        }
        self.id = id
        self.schemaString = schema
        self.partitionColumns = o["partitionColumns"]?.array?.compactMap(\.string) ?? []
        self.configuration = (o["configuration"]?.stringMap ?? [:]).compactMapValues { $0 }
        self.raw = o
    }

    /// True when the change data feed is on.
    public var changeDataFeed: Bool { configuration["delta.enableChangeDataFeed"]?.lowercased() == "true" }
    public var appendOnly: Bool { configuration["delta.appendOnly"]?.lowercased() == "true" }
    public var columnMappingMode: String { configuration["delta.columnMapping.mode"] ?? "none" }
}

/// The table's protocol (`protocol` action).
public struct TableProtocol: Sendable, Equatable {
    public var minReaderVersion: Int
    public var minWriterVersion: Int
    public var readerFeatures: [String]
    public var writerFeatures: [String]
    public var raw: [String: JSONValue]

    init(raw o: [String: JSONValue], table: String, file: String) throws {
        guard let r = o["minReaderVersion"]?.int, let w = o["minWriterVersion"]?.int else {
            throw DeltaError.corrupt(table, "`protocol` without versions", file: file)
        }
        self.minReaderVersion = Int(r)
        self.minWriterVersion = Int(w)
        self.readerFeatures = o["readerFeatures"]?.array?.compactMap(\.string) ?? []
        self.writerFeatures = o["writerFeatures"]?.array?.compactMap(\.string) ?? []
        self.raw = o
    }
}

/// A change data file (`cdc` action).
public struct CDCFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var raw: [String: JSONValue]
}

/// One line of a commit file.
public enum DeltaAction: Sendable, Equatable {
    case add(AddFile)
    case remove(RemoveFile)
    case metadata(TableMetadata)
    case `protocol`(TableProtocol)
    case cdc(CDCFile)
    case commitInfo([String: JSONValue])
    /// Any other action (txn, domainMetadata, …), kept verbatim.
    case other(String, JSONValue)

    /// The actions the protocol defines (others are kept verbatim as `.other`).
    static let kinds: Set<String> = [
        "add", "remove", "metaData", "protocol", "cdc", "commitInfo", "txn", "domainMetadata",
        "checkpointMetadata", "sidecar",
    ]

    /// Parses one line of a commit file.
    static func parse(_ line: [UInt8], table: String, file: String, line number: Int) throws -> DeltaAction {
        let json: JSONValue
        do { json = try JSONValue.parse(line) } catch {
            throw DeltaError.corrupt(table, "line \(number) is not valid JSON", file: file)
        }
        guard let o = json.object, !o.isEmpty else {
            throw DeltaError.corrupt(table, "line \(number) is not a single action object", file: file)
        }
        // One action a line; fields a newer writer added beside it are ignored, as the protocol
        // asks of readers (they are not kept if Lethe rewrites the line).
        let known = o.keys.filter(Self.kinds.contains)
        guard known.count <= 1 else {
            throw DeltaError.corrupt(table, "line \(number) holds several actions (\(known.sorted().joined(separator: ", ")))", file: file)
        }
        let kind = known.first ?? (o.count == 1 ? o.keys.first! : o.keys.sorted()[0])
        let body = o[kind]!
        guard let b = body.object else {
            if known.isEmpty { return .other(kind, body) }
            throw DeltaError.corrupt(table, "line \(number): `\(kind)` is not an object", file: file)
        }
        switch kind {
        case "add": return .add(try AddFile(raw: b, table: table, file: file))
        case "remove": return .remove(try RemoveFile(raw: b, table: table, file: file))
        case "metaData": return .metadata(try TableMetadata(raw: b, table: table, file: file))
        case "protocol": return .protocol(try TableProtocol(raw: b, table: table, file: file))
        case "cdc":
            guard let p = b["path"]?.string else { throw DeltaError.corrupt(table, "`cdc` without a path", file: file) }
            return .cdc(CDCFile(path: p, size: b["size"]?.int ?? 0, raw: b))
        case "commitInfo": return .commitInfo(b)
        default: return .other(kind, body)
        }
    }

    /// The action as one line of a commit file.
    public var line: String {
        switch self {
        case .add(let a): return JSONValue.object(["add": .object(a.raw)]).encodedText
        case .remove(let r): return JSONValue.object(["remove": .object(r.raw)]).encodedText
        case .metadata(let m): return JSONValue.object(["metaData": .object(m.raw)]).encodedText
        case .protocol(let p): return JSONValue.object(["protocol": .object(p.raw)]).encodedText
        case .cdc(let c): return JSONValue.object(["cdc": .object(c.raw)]).encodedText
        case .commitInfo(let c): return JSONValue.object(["commitInfo": .object(c)]).encodedText
        case .other(let k, let v): return JSONValue.object([k: v]).encodedText
        }
    }
}

/// Decodes a log path (RFC 3986 percent-encoding) into the relative object key it names.
/// As Foundation's `removingPercentEncoding` (a `%` not followed by two hex digits, or a result
/// that is not UTF-8, leaves the path as it is), on bytes: a table of thousands of files decodes
/// every path several times a run, and most hold no `%` at all.
public func decodeDeltaPath(_ path: String) -> String {
    var bytes = path
    return bytes.withUTF8 { src -> String? in
        guard !src.isEmpty, memchr(src.baseAddress!, 0x25, src.count) != nil else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(src.count)
        var i = 0
        while i < src.count {
            let b = src[i]
            guard b == 0x25 else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 2 < src.count, let h = CanonicalValue.hexValue(src[i + 1]), let l = CanonicalValue.hexValue(src[i + 2]) else { return path }
            out.append(h << 4 | l)
            i += 3
        }
        return String(validating: out, as: UTF8.self) ?? path
    } ?? path
}
