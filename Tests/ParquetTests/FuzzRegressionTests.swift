import Testing
@testable import Parquet

/// Inputs the libFuzzer targets found (scripts/fuzz, docs/robustness.md), minimised. Each one
/// crashed the process before its fix; now each is refused with an error.
@Suite struct FuzzRegressionTests {
    /// A file made of `footer` between the magic numbers.
    static func file(footer: [UInt8]) -> [UInt8] {
        var out = ParquetLibrary.magic + footer
        withUnsafeBytes(of: UInt32(footer.count).littleEndian) { out.append(contentsOf: $0) }
        return out + ParquetLibrary.magic
    }

    /// The root claims two children, but its first child, a group, takes the last element:
    /// the schema builder read past the end of the element list (index out of range).
    @Test func schemaWhoseChildrenRunPastTheElementList() {
        let elements = [
            SchemaElement(name: "schema", repetition: nil, numChildren: 2),
            SchemaElement(name: "g", repetition: .optional, numChildren: 1),
            SchemaElement(name: "v", type: .int32, repetition: .optional),
        ]
        #expect(throws: ParquetError.self) { try ParquetSchema(elements: elements) }
    }

    /// The footer the `thrift` target found (a Spark schema mutated the same way), in a file.
    @Test func footerWhoseSchemaRunsPastItsElements() {
        let footer: [UInt8] = [
            0x15, 0x02, 0x19, 0x8c, 0x48, 0x0c, 0x73, 0x70, 0x61, 0x72, 0x6b, 0x5f, 0x73, 0x63, 0x68, 0x65,
            0x6d, 0x61, 0x15, 0x0a, 0x00, 0x15, 0x0c, 0x25, 0x04, 0x01, 0x04, 0x00, 0x15, 0x0c, 0x25, 0x00,
            0x75, 0x65, 0x00, 0x15, 0x0c, 0x25, 0x00, 0x74, 0x29, 0x00, 0x35, 0x02, 0x18, 0x07, 0x65, 0x6c,
            0x65, 0x6d, 0x65, 0x6e, 0x74, 0x15, 0x02, 0x00, 0x35, 0x02, 0x18, 0x01, 0x76, 0x15, 0x04, 0x00,
            0x15, 0x0c, 0x25, 0x00, 0x75, 0x65, 0x00, 0x15, 0x0c, 0x25, 0x00, 0x18, 0x08, 0x6d, 0x65, 0x74,
            0x15, 0x06, 0x4c, 0x3c, 0x01, 0x00, 0x00,
        ]
        #expect(throws: ParquetError.self) { try ParquetFile(bytes: Self.file(footer: footer), name: "fuzz.parquet") }
    }
}
