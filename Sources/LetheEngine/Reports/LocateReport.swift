import Foundation
import LetheCore

/// Where a subject's rows are, with how they are reachable.
public struct LocatedRows: Sendable {
    public var dataset: String
    public var object: String
    /// `live` for every dataset but Delta tables, whose files (and rows a deletion vector
    /// deleted from a live file) may be history or change data.
    public var role: DeltaFileRole
    public var rows: [Int64]
}

/// `locate`'s report: one entry per object holding the subject, with its row count and the first
/// 1,000 row positions (0 rows: the object holds the subject's value only where no row does, in a
/// Parquet dictionary entry no row references). Encoded as a JSON array of entries.
public struct LocateReport: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var dataset: String
        public var object: String
        /// `live`, `history` or `cdc` (see `DeltaFileRole`).
        public var role: String
        public var rows: Int
        public var positions: [Int64]

        public init(_ l: LocatedRows) {
            dataset = l.dataset; object = l.object; role = l.role.rawValue
            // An unreferenced-entry mark (`RecordOrdinal`) names the object without a row: 0 rows when alone.
            let records = l.rows.filter(RecordOrdinal.isRecord)
            rows = records.count; positions = Array(records.prefix(LocateReport.maxPositions))
        }
    }
    public static let maxPositions = 1000
    public var entries: [Entry]

    public init(_ found: [LocatedRows]) { entries = found.map(Entry.init) }

    public init(from decoder: any Decoder) throws { entries = try decoder.singleValueContainer().decode([Entry].self) }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(entries)
    }
}

extension LocateReport {
    /// The report as `ReportEncoder.text` writes it (the same keys, sorted, and values), written byte by
    /// byte without `JSONEncoder`: the service answers every `POST /v1/locate` with it.
    public var jsonText: String {
        var w = JSONLineWriter()
        w.raw("[")
        for (i, e) in entries.enumerated() {
            if i > 0 { w.raw(",") }
            w.key("dataset", open: true); w.string(e.dataset)
            w.key("object"); w.string(e.object)
            w.key("positions"); w.raw("[")
            for (j, p) in e.positions.enumerated() {
                if j > 0 { w.raw(",") }
                w.int(p)
            }
            w.raw("]")
            w.key("role"); w.string(e.role)
            w.key("rows"); w.int(Int64(e.rows))
            w.close()
        }
        w.raw("]")
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
