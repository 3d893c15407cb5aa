import LetheCore
public import Parquet

/// Column mapping (protocol: "Column Mapping"). In `name` mode a column's Parquet
/// name is its field's `delta.columnMapping.physicalName` (stats and partition values
/// are keyed by it too), so a subject named by its logical path must be looked up
/// under the physical one. In `id` mode readers resolve Parquet columns by field id
/// (`delta.columnMapping.id`); writers (Spark, kernel) name them by physical name too, so
/// Lethe looks columns up by physical name and checks the field id of each file it
/// rewrites (`checkFieldIDs`): a file whose column carries another id is refused by name.
extension TableMetadata {
    /// The Parquet column path of a logical field path (outermost first).
    public func physicalPath(_ logical: [String], table: String) throws -> [String] {
        switch columnMappingMode {
        case "none":
            return logical
        case "name", "id":
            guard let schema = try? JSONValue.parse(Array(schemaString.utf8)) else {
                throw DeltaError.corrupt(table, "the table schema (metaData.schemaString) is not valid JSON")
            }
            var fields = schema["fields"]?.array ?? []
            var out: [String] = []
            for (i, name) in logical.enumerated() {
                guard let f = fields.first(where: { $0["name"]?.string == name }) else {
                    throw LetheError(.badInput, "the table has no column `\(logical.prefix(i + 1).joined(separator: "."))`", at: table)
                }
                guard let physical = f["metadata"]?["delta.columnMapping.physicalName"]?.string else {
                    throw DeltaError.corrupt(
                        table, "column `\(logical.prefix(i + 1).joined(separator: "."))` has no delta.columnMapping.physicalName in \(columnMappingMode) mode")
                }
                out.append(physical)
                fields = f["type"]?["fields"]?.array ?? []
            }
            return out
        default:
            throw DeltaError.unsupported(table, "column mapping mode `\(columnMappingMode)` is not supported")
        }
    }
}

extension TableMetadata {
    /// The schema's fields (top level).
    var schemaFields: [JSONValue] {
        ((try? JSONValue.parse(Array(schemaString.utf8)))?["fields"]?.array) ?? []
    }

    /// The Delta type (`string`, `long`, …; `struct` for nested) of a column by physical path, if found.
    public func physicalType(of physical: [String]) -> String? {
        var fields = schemaFields
        var type: JSONValue?
        for name in physical {
            guard let f = fields.first(where: { ($0["metadata"]?["delta.columnMapping.physicalName"]?.string ?? $0["name"]?.string) == name }) else {
                return nil
            }
            type = f["type"]
            fields = f["type"]?["fields"]?.array ?? []
        }
        if let s = type?.string { return s }
        return type?["type"]?.string
    }

    /// The field ids (`delta.columnMapping.id`) along a logical path, in `id` mode.
    public func fieldIDs(_ logical: [String]) -> [Int32]? {
        var fields = schemaFields
        var out: [Int32] = []
        for name in logical {
            guard let f = fields.first(where: { $0["name"]?.string == name }),
                let id = f["metadata"]?["delta.columnMapping.id"]?.int
            else { return nil }
            out.append(Int32(truncatingIfNeeded: id))
            fields = f["type"]?["fields"]?.array ?? []
        }
        return out
    }
}

extension DeltaTable {
    /// In column mapping `id` mode, refuses (by name) a data file whose column at the subject's
    /// physical path does not carry the schema's field ids: Lethe would be reading another column.
    public func checkFieldIDs(_ file: ParquetFile, logical: [String], snapshot s: Snapshot) throws {
        guard s.metadata.columnMappingMode == "id", let ids = s.metadata.fieldIDs(logical) else { return }
        let physical = try s.metadata.physicalPath(logical, table: root)
        guard let col = file.schema.column(physical) else { return }
        let got = col.pathElements.suffix(ids.count).map(\.fieldID)
        guard got.elementsEqual(ids.map { Optional($0) }) else {
            throw DeltaError.unsupported(
                root,
                "column mapping mode `id`: data file \(file.name) has column `\(physical.joined(separator: "."))` with field ids \(got.map { $0.map(String.init) ?? "none" }), the schema says \(ids)"
            )
        }
    }
}
