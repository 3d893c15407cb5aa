import LetheCore

/// The Delta log's JSON values are LetheCore's `JSONValue` (write log lines with `encodedText`).
/// Kept while callers move to `JSONValue`.
public typealias DeltaJSON = JSONValue
