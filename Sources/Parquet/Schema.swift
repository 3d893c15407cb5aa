/// The schema tree of a Parquet file and its leaf columns.

/// A node of the schema tree (the root, a group, or a leaf).
public struct SchemaNode: Sendable, Equatable {
    public var element: SchemaElement
    public var children: [SchemaNode]
    public var name: String { element.name }
    public var isLeaf: Bool { children.isEmpty && element.physicalType != nil }
    /// The node's repetition (`nil` only for the root).
    public var repetition: Repetition? { element.repetition }
}

/// A leaf column: its path, types and maximum levels.
public struct ColumnDescriptor: Sendable, Equatable {
    /// Index among the leaf columns (= index of its chunk in each row group).
    public var index: Int
    /// Names from the root's child down to the leaf.
    public var path: [String]
    /// `path` joined with dots.
    public var dottedPath: String { path.joined(separator: ".") }
    public var physicalType: PhysicalType
    /// Byte width for FIXED_LEN_BYTE_ARRAY (12 for INT96), else 0.
    public var typeLength: Int
    public var maxDefinitionLevel: Int
    public var maxRepetitionLevel: Int
    /// The leaf's schema element (logical/converted type verbatim).
    public var element: SchemaElement
    /// The schema elements from the root's child down to the leaf (used to interpret levels).
    public var pathElements: [SchemaElement]
    public var logicalType: LogicalType? { element.logicalType }
    public var convertedType: ConvertedType? { element.convertedType }
    /// True when the column has no repeated ancestor (one value or null per row).
    public var isFlat: Bool { maxRepetitionLevel == 0 }

    /// How min/max statistics order this column's values.
    var sortOrder: SortOrder {
        switch physicalType {
        case .boolean: return .unsigned
        case .int32, .int64:
            if case .integer(_, let signed)? = logicalType { return signed ? .signed : .unsigned }
            switch convertedType {
            case .uint8?, .uint16?, .uint32?, .uint64?: return .unsigned
            default: return .signed
            }
        case .float, .double: return .signed
        case .int96: return .undefined
        case .byteArray, .fixedLenByteArray:
            if case .decimal? = logicalType { return .signed }
            if convertedType == .decimal { return .signed }
            if case .float16? = logicalType { return .float16 }
            if convertedType == .interval { return .undefined }
            return .unsigned
        }
    }
}

enum SortOrder { case signed, unsigned, float16, undefined }

/// The whole schema: the tree and its leaves in file order.
public struct ParquetSchema: Sendable, Equatable {
    public var root: SchemaNode
    public var columns: [ColumnDescriptor]
    /// The flattened elements as stored in the footer.
    public var elements: [SchemaElement]

    /// Builds the tree from the footer's flattened schema list.
    public init(elements: [SchemaElement]) throws(ParquetError) {
        guard let first = elements.first else { throw ParquetError(.corruptMetadata, "empty schema") }
        self.elements = elements
        var index = 1
        var leaves: [ColumnDescriptor] = []
        func build(_ el: SchemaElement, depth: Int, def: Int, rep: Int, path: [String], pathElements: [SchemaElement]) throws(ParquetError) -> SchemaNode {
            guard depth < 64 else { throw ParquetError(.corruptMetadata, "schema nested too deeply") }
            let n = Int(el.numChildren ?? 0)
            if depth > 0 && el.numChildren == nil {
                guard let pt = el.physicalType else {
                    throw ParquetError(.corruptMetadata, "schema leaf \(path.joined(separator: ".")) has no valid physical type")
                }
                var length = 0
                if pt == .fixedLenByteArray {
                    guard let l = el.typeLength, l > 0, l < 1 << 24 else {
                        throw ParquetError(.corruptMetadata, "FIXED_LEN_BYTE_ARRAY column \(path.joined(separator: ".")) has an invalid type_length")
                    }
                    length = Int(l)
                } else if pt == .int96 {
                    length = 12
                }
                leaves.append(
                    ColumnDescriptor(
                        index: leaves.count, path: path, physicalType: pt, typeLength: length,
                        maxDefinitionLevel: def, maxRepetitionLevel: rep, element: el, pathElements: pathElements))
                return SchemaNode(element: el, children: [])
            }
            guard n >= 0, n <= elements.count - index else { throw ParquetError(.corruptMetadata, "schema element \(el.name) has an invalid child count") }
            var children: [SchemaNode] = []
            for _ in 0..<n {
                // The check above counts this group's children, not what its nested groups take.
                guard index < elements.count else {
                    throw ParquetError(.corruptMetadata, "schema element \(el.name) has more children than the schema has elements")
                }
                let c = elements[index]
                index += 1
                guard let r = c.repetition else { throw ParquetError(.corruptMetadata, "schema element \(c.name) has no repetition type") }
                let d = def + (r == .required ? 0 : 1)
                let rp = rep + (r == .repeated ? 1 : 0)
                children.append(try build(c, depth: depth + 1, def: d, rep: rp, path: path + [c.name], pathElements: pathElements + [c]))
            }
            return SchemaNode(element: el, children: children)
        }
        root = try build(first, depth: 0, def: 0, rep: 0, path: [], pathElements: [])
        guard index == elements.count else { throw ParquetError(.corruptMetadata, "schema has \(elements.count - index) elements outside the tree") }
        columns = leaves
    }

    /// Builds a schema from a tree (for writing).
    public init(root: SchemaNode) throws(ParquetError) {
        var flat: [SchemaElement] = []
        func walk(_ n: SchemaNode) {
            var e = n.element
            if !n.children.isEmpty || n.element.physicalType == nil { e.raw[5] = .i32(Int32(n.children.count)) }
            flat.append(e)
            for c in n.children { walk(c) }
        }
        walk(root)
        try self.init(elements: flat)
    }

    /// The leaf column with this path, if any.
    public func column(_ path: [String]) -> ColumnDescriptor? {
        columns.first { $0.path == path }
    }
}
