import LetheCore
public import Parquet

/// Delta per-file statistics computed from a Parquet file's footer: `numRecords`,
/// and for flat columns `nullCount`, plus `minValues`/`maxValues` where the footer's
/// statistics can be rendered exactly (strings, integers, floating point, dates). Columns
/// whose statistics are missing or of another type are left out, which the protocol
/// allows (a reader then knows nothing about them); a stale bound is never written.
public enum DeltaStats {
    /// Delta types whose bounds `json(for:)` writes.
    static let boundedTypes: Set<String> = ["string", "long", "integer", "short", "byte", "float", "double", "date"]

    public static func json(for file: ParquetFile) -> String {
        var mins: [String: JSONValue] = [:], maxs: [String: JSONValue] = [:], nulls: [String: JSONValue] = [:]
        for c in file.schema.columns where c.isFlat {
            var nullTotal: Int64 = 0
            var nullsKnown = true
            var lo: JSONValue?, hi: JSONValue?
            var loBytes: [UInt8]?, hiBytes: [UInt8]?
            var boundsKnown = true
            for rg in file.metadata.rowGroups {
                guard c.index < rg.columns.count, let st = rg.columns[c.index].metaData?.statistics else {
                    nullsKnown = false; boundsKnown = false; continue
                }
                if let n = st.nullCount { nullTotal += n } else { nullsKnown = false }
                let rows = rg.numRows
                if let n = st.nullCount, n == rows { continue }  // all null: no bounds from this group
                guard let mn = st.minValue, let mx = st.maxValue,
                    let a = render(mn, c), let b = render(mx, c)
                else { boundsKnown = false; continue }
                if lo == nil || less(mn, loBytes!, c) { lo = a; loBytes = mn }
                if hi == nil || less(hiBytes!, mx, c) { hi = b; hiBytes = mx }
            }
            if nullsKnown { put(&nulls, c.path, .int(nullTotal)) }
            if boundsKnown, let lo, let hi { put(&mins, c.path, lo); put(&maxs, c.path, hi) }
        }
        var o: [String: JSONValue] = ["numRecords": .int(file.numRows)]
        if !mins.isEmpty { o["minValues"] = .object(mins); o["maxValues"] = .object(maxs) }
        if !nulls.isEmpty { o["nullCount"] = .object(nulls) }
        return JSONValue.object(o).encodedText
    }

    static func put(_ d: inout [String: JSONValue], _ path: [String], _ v: JSONValue) {
        guard let first = path.first else { return }
        if path.count == 1 { d[first] = v; return }
        var inner = d[first]?.object ?? [:]
        put(&inner, Array(path.dropFirst()), v)
        d[first] = .object(inner)
    }

    static func isString(_ c: ColumnDescriptor) -> Bool {
        if case .string? = c.logicalType { return true }
        return c.convertedType == .utf8
    }
    static func isPlainInteger(_ c: ColumnDescriptor) -> Bool {
        if let l = c.logicalType {
            if case .integer(_, let signed) = l { return signed }
            return false
        }
        return c.convertedType == nil || c.convertedType == .int8 || c.convertedType == .int16 || c.convertedType == .int32 || c.convertedType == .int64
    }

    static func render(_ b: [UInt8], _ c: ColumnDescriptor) -> JSONValue? {
        switch c.physicalType {
        case .byteArray where isString(c):
            guard let s = String(validating: b, as: UTF8.self) else { return nil }
            return .string(s)
        case .int32 where (c.logicalType == .date || c.convertedType == .date) && b.count == 4:
            return .string(dateText(Int64(Int32(bitPattern: le32(b)))))
        case .int32 where isPlainInteger(c) && b.count == 4:
            return .int(Int64(Int32(bitPattern: le32(b))))
        case .int64 where isPlainInteger(c) && b.count == 8:
            return .int(Int64(bitPattern: le64(b)))
        case .double where c.logicalType == nil && b.count == 8:
            let d = Double(bitPattern: le64(b))
            return d.isFinite ? .double(d) : nil
        case .float where c.logicalType == nil && b.count == 4:
            let f = Float(bitPattern: le32(b))
            return f.isFinite ? .double(Double(f)) : nil
        default:
            return nil
        }
    }

    static func less(_ a: [UInt8], _ b: [UInt8], _ c: ColumnDescriptor) -> Bool {
        switch c.physicalType {
        case .int32: return Int32(bitPattern: le32(a)) < Int32(bitPattern: le32(b))
        case .int64: return Int64(bitPattern: le64(a)) < Int64(bitPattern: le64(b))
        case .double: return Double(bitPattern: le64(a)) < Double(bitPattern: le64(b))
        case .float: return Float(bitPattern: le32(a)) < Float(bitPattern: le32(b))
        default: return a.lexicographicallyPrecedes(b)
        }
    }

    /// A date (days since 1970-01-01, proleptic Gregorian) as Delta statistics write it: `YYYY-MM-DD`.
    static func dateText(_ days: Int64) -> String {
        String(decoding: CanonicalValue.date(days: days), as: UTF8.self)
    }

    static func le32(_ b: [UInt8]) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[$1]) << (8 * UInt32($1)) } }
    static func le64(_ b: [UInt8]) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[$1]) << (8 * UInt64($1)) } }
}
