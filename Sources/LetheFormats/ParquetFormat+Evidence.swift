import LetheCore
public import LetheStorage
import Parquet

/// What an object's own metadata says about a subject, independently of Lethe's index.
public enum FormatEvidence: Sendable, Equatable {
    /// The object cannot hold the subject's records; the kinds of evidence that prove it, sorted
    /// ("bloom filter", "dictionary", "statistics").
    case absent(by: [String])
    /// The object's metadata shows the subject's value (a full dictionary holds it).
    case present
    /// Its metadata cannot tell.
    case unknown
}

extension ParquetFormat {
    /// The file's own evidence about each raw id (the bytes a request names, before keying),
    /// from the footer, the bloom filters and the dictionary pages of fully dictionary-encoded
    /// subject chunks, read by range at the listed version: per id, `absent` when every row group
    /// rules it out, `present` when a dictionary holds it, else `unknown`.
    ///
    /// Evidence is given only where a stored value equals the keyed bytes exactly: a single
    /// subject field held in the file as a flat string column (BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY
    /// without a typed text) or a plain signed INT32/INT64 column (the id as its decimal text),
    /// and no normalisation (`normalized`: NFC would let other byte forms match). Anything else is
    /// `unknown`, as is a subject field the file does not hold.
    public func evidence(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, normalized: Bool, rawIDs: [[UInt8]]
    ) async throws -> [FormatEvidence] {
        let unknown = [FormatEvidence](repeating: .unknown, count: rawIDs.count)
        let options = options.resolved(for: object.key)
        guard !rawIDs.isEmpty, !normalized, options.recordFields.count == 1, options.folderFields.isEmpty,
            options.subject.fields.count == 1
        else { return unknown }
        let (footerOnly, footer) = try await openFooter(object, in: store, pinned: true)
        let path = options.recordFields[0].components.map { String(decoding: $0, as: UTF8.self) }
        guard let desc = footerOnly.schema.column(path), desc.isFlat else { return unknown }
        // Each id as the column's PLAIN bytes (nil: this column's text cannot be told from them).
        let plain: [[UInt8]?] = rawIDs.map { Self.plainValue($0, desc) }
        var ranges: [Range<Int64>] = []
        for g in 0..<footerOnly.rowGroups.count { ranges += footerOnly.evidenceRanges(column: desc.index, rowGroup: g) }
        var source = footer
        try await fetch(ranges.sorted { $0.lowerBound < $1.lowerBound }, of: object, in: store, into: &source)
        let file = try Self.parquet(object.key) { () throws(ParquetError) in try ParquetFile(source: source, name: object.key) }
        var kinds = [Set<String>](repeating: [], count: rawIDs.count)
        var out = unknown
        var decided = [Bool](repeating: false, count: rawIDs.count)  // present, or not provable absent
        let asked = plain.indices.filter { plain[$0] != nil }
        for i in plain.indices where plain[i] == nil { decided[i] = true }
        for g in 0..<file.rowGroups.count {
            let open = asked.filter { !decided[$0] }
            guard !open.isEmpty else { break }
            let verdicts: [ChunkEvidence]
            do {
                verdicts = try file.evidence(column: desc.index, rowGroup: g, values: open.map { plain[$0]! })
            } catch {
                // A bloom filter past the bytes fetched or a damaged dictionary page: no evidence.
                return unknown
            }
            for (i, v) in zip(open, verdicts) {
                switch v {
                case .absent(let k): kinds[i].insert(k.rawValue)
                case .present:
                    out[i] = .present
                    decided[i] = true
                case .unknown: decided[i] = true
                }
            }
        }
        for i in asked where !decided[i] { out[i] = .absent(by: kinds[i].sorted()) }
        return out
    }

    /// A raw id as the PLAIN bytes a column holding it would store, when the column's canonical
    /// text is the stored bytes (strings) or a plain signed integer's decimal text.
    static func plainValue(_ raw: [UInt8], _ desc: ColumnDescriptor) -> [UInt8]? {
        switch CanonicalText.form(of: desc) {
        case .raw:
            if desc.physicalType == .fixedLenByteArray && raw.count != desc.typeLength { return nil }
            return raw
        case .signed:
            guard desc.logicalType == nil || desc.logicalType == .integer(bitWidth: desc.physicalType == .int32 ? 32 : 64, signed: true),
                let text = String(validating: raw, as: UTF8.self), let v = Int64(text), String(v) == text
            else { return nil }
            if desc.physicalType == .int32 {
                guard let v32 = Int32(exactly: v) else { return nil }
                return withUnsafeBytes(of: v32.littleEndian) { Array($0) }
            }
            return withUnsafeBytes(of: v.littleEndian) { Array($0) }
        default:
            return nil
        }
    }
}
