import LetheCore

/// Column mapping (protocol: "Column Mapping"). In `name` mode a column's Parquet
/// name is its field's `delta.columnMapping.physicalName` (stats and partition values
/// are keyed by it too), so a subject named by its logical path must be looked up
/// under the physical one. `id` mode (Parquet field ids) is refused by name.
extension TableMetadata {
    /// The Parquet column path of a logical field path (outermost first).
    public func physicalPath(_ logical: [String], table: String) throws -> [String] {
        switch columnMappingMode {
        case "none":
            return logical
        case "name":
            guard let schema = try? DeltaJSON.parse(Array(schemaString.utf8)) else {
                throw DeltaError.corrupt(table, "the table schema (metaData.schemaString) is not valid JSON")
            }
            var fields = schema["fields"]?.array ?? []
            var out: [String] = []
            for (i, name) in logical.enumerated() {
                guard let f = fields.first(where: { $0["name"]?.string == name }) else {
                    throw LetheError(.badInput, "the table has no column `\(logical.prefix(i + 1).joined(separator: "."))`", at: table)
                }
                guard let physical = f["metadata"]?["delta.columnMapping.physicalName"]?.string else {
                    throw DeltaError.corrupt(table, "column `\(logical.prefix(i + 1).joined(separator: "."))` has no delta.columnMapping.physicalName in name mode")
                }
                out.append(physical)
                fields = f["type"]?["fields"]?.array ?? []
            }
            return out
        default:
            throw DeltaError.unsupported(table, "column mapping mode `\(columnMappingMode)` is not supported (only `name`)")
        }
    }
}
