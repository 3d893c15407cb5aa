public import LetheCore
public import LetheFormats
public import LetheStream

/// A dataset's `schema:` as a `RecordCrypter`'s record check: `protect` and `ingest` quarantine the
/// records that fail it (docs/masking.md, "Validation and quarantine"). The same rules as `lethe
/// validate`, a record at a time.
public final class SchemaRecordValidator: RecordValidator {
    let validator: SchemaValidator

    /// `.badUsage` when the dataset has no `schema:`; `.unsupported` for a format other than JSON Lines and CSV.
    public init(dataset d: DatasetSpec, name: String) throws {
        guard let schema = d.schema else {
            throw LetheError(.badUsage, "dataset `\(d.name)` has no `schema:` in lethe.yaml: nothing to validate against")
        }
        validator = try SchemaValidator(schema: schema, format: d.format, delimiter: d.delimiter, objectName: name)
    }

    public func header(_ record: UnsafeRawBufferPointer) throws { try validator.checkHeader(record) }

    public func check(_ record: UnsafeRawBufferPointer, line: Int64) -> [RecordViolation] {
        validator.check(record: record, line: line).map { RecordViolation(line: $0.line, field: $0.field, rule: $0.rule) }
    }
}

extension ValidatedRecords {
    /// The records a crypter kept aside, as `QuarantineWriter` takes them.
    public init(keptAsideBy c: RecordCrypter) {
        self.init()
        records = c.counts.records
        rejected = c.rejected
        unparsed = c.unparsed
        rejectedRecords = c.counts.quarantined
        unparsedRecords = c.unparsedRecords
        violations = c.violations.map { SchemaViolation(line: $0.line, field: $0.field, rule: $0.rule) }
    }
}
