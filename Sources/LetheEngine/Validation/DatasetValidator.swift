public import LetheCore
public import LetheFormats
public import LetheStorage

/// Validates one dataset's records against its `schema:` (the check `lethe validate`, `protect` and
/// `ingest` run before data enters the lake): JSON Lines and CSV on bytes, Parquet by its rows
/// (`ParquetSchemaValidator`). See docs/masking.md.
public struct DatasetValidator {
    public let dataset: DatasetSpec
    public let schema: DatasetSchema

    /// `.badUsage` when the dataset has no `schema:`.
    public init(dataset: DatasetSpec) throws {
        guard let schema = dataset.schema else {
            throw LetheError(.badUsage, "dataset `\(dataset.name)` has no `schema:` in lethe.yaml: nothing to validate against")
        }
        self.dataset = dataset
        self.schema = schema
    }

    /// The records of `bytes` (one uncompressed object or stream named `name` in messages) split
    /// into accepted and rejected, with every violation (line, field, rule — never a value).
    public func validate(_ bytes: [UInt8], name: String) throws -> ValidatedRecords {
        if dataset.format == .parquet {
            // A whole Parquet file: the rows that fail as a Parquet file of those rows (`rejected`).
            return try ParquetSchemaValidator(schema: schema, objectName: name).validate(bytes)
        }
        return try SchemaValidator(
            schema: schema, format: dataset.format, delimiter: dataset.delimiter, objectName: name, subject: dataset.subject?.fields ?? []
        ).validate(bytes)
    }
}

/// What `QuarantineWriter.write` put where, and the counts (the summary `validate` prints).
public struct QuarantineSummary: Sendable, Equatable, Codable {
    public var dataset: String
    public var records: Int64
    public var accepted: Int64
    public var quarantined: Int64
    /// Violations by rule (`required`, `type:int`, …).
    public var byRule: [String: Int64]
    /// The quarantined records' object and its reasons file (nil when nothing was quarantined).
    public var recordsObject: String?
    public var reasonsObject: String?
    /// The records that are not readable as records (`json`, `fields`), kept apart (nil when none).
    public var unparsedObject: String?

    public init(dataset: String, records: Int64, accepted: Int64, quarantined: Int64, byRule: [String: Int64]) {
        self.dataset = dataset; self.records = records; self.accepted = accepted; self.quarantined = quarantined; self.byRule = byRule
    }

    enum CodingKeys: String, CodingKey {
        case dataset, records, accepted, quarantined, byRule = "by_rule", recordsObject = "records_object", reasonsObject = "reasons_object"
        case unparsedObject = "unparsed_object"
    }
}

/// Writes the records a validation rejected under `_quarantine/<dataset>/<run>/` in the lake:
/// `records.<jsonl|csv|parquet>` (the records as they were; a CSV file keeps its header; a Parquet
/// file of the failing rows, the input's schema, codec and encodings), `unparsed.<jsonl|csv>`
/// (records that are not JSON, CSV records with another field count: not readable as records) and
/// `reasons.jsonl` (one `{"line","field","rule"}` per violation, no value of any field). Each object is
/// written atomically (write-temp + rename or a single PUT); the reasons file is written last, so its
/// presence says the quarantine of that run is complete. Nothing is written when nothing was rejected.
///
/// The quarantine is part of its dataset for forget requests (`DatasetSpec.quarantinePrefix`):
/// `records.*` objects are indexed and erased as the dataset's objects, the other files are searched
/// for raw ids as a dataset's hidden files are.
public struct QuarantineWriter: Sendable {
    public let store: any ObjectStore
    /// The folder under the lake root.
    public static let root = "_quarantine"

    public init(store: any ObjectStore) { self.store = store }

    /// The prefix of one run's quarantine.
    public static func prefix(dataset: String, run: String) -> String { "\(root)/\(dataset)/\(run)" }

    public func write(_ result: ValidatedRecords, dataset: DatasetSpec, run: String) async throws -> QuarantineSummary {
        guard !run.isEmpty, !run.contains("/"), run != ".", run != ".." else {
            throw LetheError(.badUsage, "a quarantine run id is one path segment (got `\(run)`)")
        }
        var byRule: [String: Int64] = [:]
        for v in result.violations { byRule[v.rule, default: 0] += 1 }
        var summary = QuarantineSummary(
            dataset: dataset.name, records: result.records, accepted: result.records - result.rejectedRecords,
            quarantined: result.rejectedRecords, byRule: byRule)
        guard result.rejectedRecords > 0 else { return summary }
        let prefix = Self.prefix(dataset: dataset.name, run: run)
        let ext = dataset.format == .csv ? "csv" : dataset.format == .parquet ? "parquet" : "jsonl"
        let recordsKey = "\(prefix)/records.\(ext)", unparsedKey = "\(prefix)/unparsed.\(ext)"
        let reasonsKey = "\(prefix)/reasons.jsonl"
        var written: [String] = []
        do {
            if result.rejectedRecords > result.unparsedRecords {
                _ = try await store.put(recordsKey, result.rejected, precondition: .absent)
                written.append(recordsKey)
                summary.recordsObject = recordsKey
            }
            if result.unparsedRecords > 0 {
                _ = try await store.put(unparsedKey, result.unparsed, precondition: .absent)
                written.append(unparsedKey)
                summary.unparsedObject = unparsedKey
            }
        } catch {
            await remove(written)
            throw error
        }
        var reasons: [UInt8] = []
        for v in result.violations {
            reasons += Array(#"{"line":"#.utf8)
            reasons += Array(String(v.line).utf8)
            reasons += Array(#","field":"#.utf8)
            JSONText.quote(v.field, into: &reasons)
            reasons += Array(#","rule":"#.utf8)
            JSONText.quote(v.rule, into: &reasons)
            reasons += Array("}\n".utf8)
        }
        do {
            _ = try await store.put(reasonsKey, reasons, precondition: .absent)
        } catch {
            await remove(written)
            throw error
        }
        summary.reasonsObject = reasonsKey
        return summary
    }

    /// Takes back a run's quarantine (its reasons file first: without it the run is incomplete), when
    /// what it was written for could not be completed (an ingest whose object was not written).
    public func remove(_ summary: QuarantineSummary) async {
        await remove([summary.reasonsObject, summary.recordsObject, summary.unparsedObject].compactMap { $0 })
    }

    private func remove(_ keys: [String]) async {
        for k in keys { try? await store.delete(k) }
    }
}
