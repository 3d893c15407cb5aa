import LetheCore
import LetheStorage
public import LetheFormats
import Parquet
public import Testing

/// One record of a fixture: its subject and a payload field.
public struct FixtureRecord: Sendable, Hashable {
    public var subject: String
    public var note: String
    public init(_ subject: String, _ note: String) { self.subject = subject; self.note = note }
}

/// A record format with a way to write objects of it and to read their records back, for the
/// format contract: jsonl, jsonl.gz, csv, csv.gz and Parquet (written by the in-Swift writer: no Python).
public struct FormatFixture: Sendable, CustomTestStringConvertible {
    /// `jsonl`, `jsonl.gz`, `csv`, `csv.gz`, `parquet`.
    public var name: String
    public var format: any RecordFormat
    /// The key objects of this fixture get (its extension names the compression).
    public var key: String
    /// The subject field is `user_id`; the payload `note`.
    public var options: FormatOptions
    /// The stored bytes of an object holding `records` in order (compressed as the key says).
    public var encode: @Sendable ([FixtureRecord]) async throws -> [UInt8]
    /// The records of stored bytes, in order, each as the exact text (or values) it holds: kept records
    /// must come back byte for byte. A CSV header comes first.
    public var decode: @Sendable ([UInt8]) async throws -> [String]

    public var testDescription: String { name }

    public static let all: [FormatFixture] = [jsonl(gzip: false), jsonl(gzip: true), csv(gzip: false), csv(gzip: true), parquet]

    static var subjectOptions: FormatOptions { FormatOptions(subject: SubjectSpec(fields: [FieldPath("user_id")])) }

    static func jsonl(gzip: Bool) -> FormatFixture {
        FormatFixture(
            name: gzip ? "jsonl.gz" : "jsonl", format: JSONLinesFormat(chunkSize: 64), key: "ds/part-0.jsonl" + (gzip ? ".gz" : ""),
            options: subjectOptions,
            encode: { records in
                // Spacing and field order vary by line: kept lines must come back exactly as written.
                let text =
                    records.enumerated().map { i, r in
                        i % 2 == 0 ? "{\"user_id\":\"\(r.subject)\",\"note\":\"\(r.note)\"}" : "{ \"note\": \"\(r.note)\", \"user_id\": \"\(r.subject)\" }"
                    }.joined(separator: "\n") + "\n"
                return try await compress(Array(text.utf8), gzip)
            },
            decode: { bytes in lines(try await decompress(bytes, gzip)) })
    }

    static func csv(gzip: Bool) -> FormatFixture {
        FormatFixture(
            name: gzip ? "csv.gz" : "csv", format: CSVFormat(chunkSize: 64), key: "ds/part-0.csv" + (gzip ? ".gz" : ""),
            options: subjectOptions,
            encode: { records in
                let text = "note,user_id\r\n" + records.map { "\"\($0.note), quoted\",\($0.subject)\r\n" }.joined()
                return try await compress(Array(text.utf8), gzip)
            },
            decode: { bytes in lines(try await decompress(bytes, gzip)) })
    }

    static let parquet = FormatFixture(
        name: "parquet", format: ParquetFormat(), key: "ds/part-0.parquet", options: subjectOptions,
        encode: { records in
            let schema = try ParquetSchema(
                root: .root([
                    .leaf("user_id", .byteArray, .required, logicalType: .string),
                    .leaf("note", .byteArray, .required, logicalType: .string),
                ]))
            var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
            // Two row groups: erasure keeps the others' rows in each.
            let half = records.count / 2
            for part in [records[..<half], records[half...]] where !part.isEmpty {
                _ = try w.writeRowGroup([
                    ColumnData(values: .byteArray(ByteArrayValues(part.map { Array($0.subject.utf8) }))),
                    ColumnData(values: .byteArray(ByteArrayValues(part.map { Array($0.note.utf8) }))),
                ])
            }
            _ = try w.close()
            return w.sink.bytes
        },
        decode: { bytes in
            let file = try ParquetFile(bytes: bytes)
            var out: [String] = []
            for g in 0..<file.rowGroups.count {
                let ids = try file.readColumn(path: ["user_id"], rowGroup: g), notes = try file.readColumn(path: ["note"], rowGroup: g)
                guard case .byteArray(let i) = ids.values, case .byteArray(let n) = notes.values else { return ["unexpected column type"] }
                for r in 0..<i.count { out.append(String(decoding: i[r], as: UTF8.self) + "|" + String(decoding: n[r], as: UTF8.self)) }
            }
            return out
        })

    /// Gzip through the format layer's own codec (what an erase writes back).
    static func compress(_ bytes: [UInt8], _ gzip: Bool) async throws -> [UInt8] {
        guard gzip else { return bytes }
        let m = InMemoryObjectStore()
        try await EncodedObject.write(bytes, to: "x.gz", in: m)
        return try await m.read("x.gz")
    }

    static func decompress(_ bytes: [UInt8], _ gzip: Bool) async throws -> [UInt8] {
        guard gzip else { return bytes }
        let m = InMemoryObjectStore()
        m.set("x.gz", bytes)
        return try await EncodedObject.read("x.gz", in: m)
    }

    static func lines(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }
}
