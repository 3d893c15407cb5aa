/// The value a masked cell had (see `ParquetFile.rewrite(masking:columns:replace:to:)`).
public enum OldCell: Sendable, Equatable {
    case null
    /// BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY.
    case bytes(ArraySlice<UInt8>)
    case int32(Int32)
    case int64(Int64)
    /// Another physical type (boolean, INT96, float, double).
    case other
}

/// What a masked cell becomes.
public enum CellValue: Sendable, Equatable {
    /// As it was.
    case keep
    /// Null (the column must be optional).
    case null
    /// Bytes (a BYTE_ARRAY column; a FIXED_LEN_BYTE_ARRAY column of that length).
    case bytes([UInt8])
    /// An INT32 column's value.
    case int32(Int32)
    /// An INT64 column's value.
    case int64(Int64)
}

extension ColumnData {
    /// A flat column's data with the cells of `rows` (sorted indexes within the chunk) replaced.
    func masking(
        _ rows: [Int], desc: ColumnDescriptor, column: Int, replace: (_ column: Int, _ slot: Int, _ old: OldCell) -> CellValue, file: String
    ) throws(ParquetError) -> ColumnData {
        let maxDef = desc.maxDefinitionLevel
        let optional = desc.element.repetition == .optional
        var def = definitionLevels
        // For each slot, the value's source: an old value index, or a new value.
        var newValues: [Int: CellValue] = [:]  // slot → new value
        var ri = 0, vi = 0
        var valueIndexOfSlot: [Int?] = []
        valueIndexOfSlot.reserveCapacity(slotCount)
        for s in 0..<slotCount {
            let hasValue = definitionLevels.map { Int($0[s]) == maxDef } ?? true
            valueIndexOfSlot.append(hasValue ? vi : nil)
            if hasValue { vi += 1 }
        }
        func fail(_ why: String) -> ParquetError {
            ParquetError(.invalidArgument, "column `\(desc.dottedPath)` \(why)", file: file)
        }
        for s in 0..<slotCount {
            while ri < rows.count && rows[ri] < s { ri += 1 }
            guard ri < rows.count && rows[ri] == s else { continue }
            let old: OldCell
            if let i = valueIndexOfSlot[s] {
                switch values {
                case .byteArray(let v), .fixedLenByteArray(let v): old = .bytes(v[i])
                case .int32(let v): old = .int32(v[i])
                case .int64(let v): old = .int64(v[i])
                default: old = .other
                }
            } else {
                old = .null
            }
            let new = replace(column, s, old)
            switch new {
            case .keep: continue
            case .null:
                guard optional, def != nil else { throw fail("is required: it cannot hold null (mask it with another rule)") }
                def![s] = UInt16(maxDef - 1)
            case .bytes(let b):
                switch values {
                case .byteArray: break
                case .fixedLenByteArray:
                    guard b.count == desc.typeLength else { throw fail("holds \(desc.typeLength) bytes per value: a mask of \(b.count) bytes does not fit") }
                default: throw fail("is \(values.physicalType): it cannot hold text")
                }
                if def != nil { def![s] = UInt16(maxDef) }
            case .int32:
                guard case .int32 = values else { throw fail("is \(values.physicalType): it cannot hold an INT32") }
                if def != nil { def![s] = UInt16(maxDef) }
            case .int64:
                guard case .int64 = values else { throw fail("is \(values.physicalType): it cannot hold an INT64") }
                if def != nil { def![s] = UInt16(maxDef) }
            }
            newValues[s] = new
        }
        if newValues.isEmpty { return self }
        // The values in slot order: old ones where kept, new ones where written, none where null.
        func build<T>(_ old: [T], _ value: (CellValue) -> T?) -> [T] {
            var out: [T] = []
            out.reserveCapacity(old.count)
            for s in 0..<slotCount {
                if let n = newValues[s] {
                    if let v = value(n) { out.append(v) }
                } else if let i = valueIndexOfSlot[s] {
                    out.append(old[i])
                }
            }
            return out
        }
        let rebuilt: ColumnValues
        switch values {
        case .byteArray(let v), .fixedLenByteArray(let v):
            var out = ByteArrayValues()
            for s in 0..<slotCount {
                if let n = newValues[s] {
                    if case .bytes(let b) = n { out.append(b) }
                } else if let i = valueIndexOfSlot[s] {
                    out.append(v[i])
                }
            }
            if case .byteArray = values { rebuilt = .byteArray(out) } else { rebuilt = .fixedLenByteArray(out) }
        case .int32(let v): rebuilt = .int32(build(v) { if case .int32(let x) = $0 { return x } else { return nil } })
        case .int64(let v): rebuilt = .int64(build(v) { if case .int64(let x) = $0 { return x } else { return nil } })
        case .boolean(let v): rebuilt = .boolean(build(v) { _ in nil })
        case .int96(let v): rebuilt = .int96(build(v) { _ in nil })
        case .float(let v): rebuilt = .float(build(v) { _ in nil })
        case .double(let v): rebuilt = .double(build(v) { _ in nil })
        }
        return ColumnData(values: rebuilt, definitionLevels: def, repetitionLevels: repetitionLevels)
    }
}
