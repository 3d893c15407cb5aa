public import LetheCore
import Parquet

/// What a `ParquetCrypter` does to the PII columns (the Parquet side of `RecordCrypter`'s modes).
public enum ParquetCryptoMode: Sendable, Equatable {
    /// Encrypts every PII value not protected yet (a subject without a key gets one).
    case protect
    /// Decrypts protected values; a forgotten subject's value becomes null (an optional column) or
    /// `marker`, an empty value in a required column without a marker. A value that does not open
    /// fails the file unless `nullOnError`.
    case reveal(marker: [UInt8]?, nullOnError: Bool)
}

/// What a `ParquetCrypter` did.
public struct ParquetCryptoResult: Sendable {
    /// The new file (the input's bytes as they were when no value changed).
    public var bytes: [UInt8]
    public var rows: Int64 = 0
    /// Values encrypted (protect) or decrypted (reveal).
    public var values: Int64 = 0
    /// Values left as they were: already protected (protect), not protected (reveal).
    public var passed: Int64 = 0
    /// Reveal: values whose subject's key is gone.
    public var forgotten: Int64 = 0
    /// Reveal with `nullOnError`: values that did not open.
    public var failed: Int64 = 0
}

/// Encrypts (protect) or decrypts (reveal) a Parquet file's PII columns (docs/crypto-shredding.md):
/// each `pii` field names a leaf column of physical type BYTE_ARRAY (a string or binary column),
/// whose every non-null value is sealed with its row's subject's data key into the text form
/// `lethe:v1:…` (kind `s`, the value's bytes; the same associated data as JSON Lines and CSV: the
/// dataset, the field as written in `pii`, the subject key). The file is rewritten through the
/// Parquet library's cell rewrite (`ParquetFile.rewrite(masking:…)`): every other column chunk is
/// copied byte for byte, the PII chunks are re-encoded with the same physical type, codec,
/// encodings and page version, their statistics and page indexes rebuilt from the new values and
/// their bloom filters dropped (plaintext statistics or filters would give the values away); the
/// schema, row count and key/value metadata are kept.
///
/// A PII column that is not BYTE_ARRAY, or sits inside a list or map, is refused (`.unsupported`,
/// naming it): protect never leaves a PII value in the clear silently. A PII field the file lacks
/// has nothing to protect. A value in a row without a subject is `.badInput` naming the row.
public struct ParquetCrypter: Sendable {
    public let dataset: String
    public let subject: SubjectSpec
    /// The PII fields handled (the subject's own fields are never encrypted: they name the key).
    public let piiFields: [FieldPath]
    let keyer: SubjectKeyer
    let keys: any DataKeySource

    public init(dataset: String, subject: SubjectSpec, pii: [FieldPath], keyer: SubjectKeyer, keys: any DataKeySource) {
        self.dataset = dataset
        self.subject = subject
        self.piiFields = pii.filter { !subject.fields.contains($0) }
        self.keyer = keyer
        self.keys = keys
    }

    /// Protects or reveals one whole file. `name` names it in errors (and resolves Hive folder values
    /// of the subject when it is an object key below `options`' partition prefix).
    public func process(_ bytes: [UInt8], name: String, mode: ParquetCryptoMode, options: FormatOptions? = nil) async throws -> ParquetCryptoResult {
        let file: ParquetFile
        do { file = try ParquetFile(bytes: bytes, name: name) } catch { throw ParquetFormat.lethe(error, name) }
        var result = ParquetCryptoResult(bytes: bytes)
        result.rows = file.numRows
        // The PII columns: leaf index → (field index, optional).
        var columns: [Int: (field: Int, optional: Bool)] = [:]
        for (fi, f) in piiFields.enumerated() {
            let path = f.components.map { String(decoding: $0, as: UTF8.self) }
            guard let desc = file.schema.column(path) else {
                if file.schema.columns.contains(where: { $0.path.starts(with: path) }) {
                    throw LetheError(.unsupported, "PII field `\(f)` is a group (struct, list or map): name its leaf columns in `pii`", at: name)
                }
                continue
            }
            guard desc.isFlat else {
                throw LetheError(.unsupported, "PII column `\(desc.dottedPath)` is inside a list or map: protect covers flat columns", at: name)
            }
            guard desc.physicalType == .byteArray else {
                throw LetheError(
                    .unsupported,
                    "PII column `\(desc.dottedPath)` is \(desc.physicalType): protect encrypts Parquet string and binary (BYTE_ARRAY) columns; keep other types out of `pii`",
                    at: name)
            }
            columns[desc.index] = (fi, desc.element.repetition == .optional)
        }
        guard !columns.isEmpty, file.numRows > 0 else { return result }

        // Which rows hold a PII value, and each row's subject key.
        var holds = [Bool](repeating: false, count: Int(file.numRows))
        do {
            for c in columns.keys {
                for g in 0..<file.rowGroups.count {
                    try file.scanColumn(c, rowGroup: g) { row, value in if value != nil { holds[Int(row)] = true } }
                }
            }
        } catch { throw ParquetFormat.lethe(error, name) }
        var rowKeys = [SubjectKey?](repeating: nil, count: Int(file.numRows))
        let resolved = (options ?? FormatOptions(subject: subject)).resolved(for: name)
        _ = try ParquetFormat().keys(file, name, resolved, keyer) { row, key in rowKeys[Int(row)] = key }
        var subjects = Set<SubjectKey>()
        for r in 0..<rowKeys.count where holds[r] {
            if let k = rowKeys[r] { subjects.insert(k) }
        }
        let protect = mode == .protect
        let fieldNames = piiFields.map(\.description)
        // Each value is sealed or opened by one C call (`ValueSealer`, as JSON Lines and CSV are), with
        // its subject's key prepared once into a slot: `slotOf` maps a subject to it (absent: no key).
        let sealer = ValueSealer(dataset: dataset, fields: fieldNames)
        let nonces = NonceSource()
        var slotOf: [SubjectKey: Int32] = [:]
        if !subjects.isEmpty {
            let list = Array(subjects)
            var batch = DataKeyBatch()
            try await keys.dataKeys(for: list, create: protect, into: &batch)
            try batch.material.withUnsafeBytes { m in
                for (i, s) in list.enumerated() where batch.found[i] {
                    let slot = slotOf.count
                    try sealer.prepare(slot: slot, material: m.baseAddress! + i * DataKeyBatch.stride, subject: s)
                    slotOf[s] = Int32(slot)
                }
            }
            batch.wipe()
        }
        let slots = sealer.slots
        var scratch = [UInt8](repeating: 0, count: 256)
        var failure: (any Error)?
        var sink = InMemorySink()
        var r = result
        let absentMarker: [UInt8]?
        let nullOnError: Bool
        if case .reveal(let m, let n) = mode { (absentMarker, nullOnError) = (m, n) } else { (absentMarker, nullOnError) = (nil, false) }
        func absent(_ optional: Bool) -> CellValue {
            if let absentMarker { return .bytes(absentMarker) }
            return optional ? .null : .bytes([])
        }
        let rows = Array(0..<file.numRows)
        do {
            _ = try file.rewrite(
                masking: rows, columns: Set(columns.keys),
                replaceAt: { column, row, old in
                    guard failure == nil, case .bytes(let v) = old, let col = columns[column] else { return .keep }
                    let field = fieldNames[col.field], optional = col.optional
                    let isProtected = v.withUnsafeBytes { ProtectedValue.isProtected($0) }
                    let subject = rowKeys[Int(row)]
                    if protect {
                        if isProtected {
                            r.passed += 1
                            return .keep
                        }
                        guard let subject, let slot = slotOf[subject] else {
                            failure = LetheError(
                                .badInput,
                                "column `\(field)` holds a value but the row has no subject (`\(self.subject.fields.map(\.description).joined(separator: "`, `"))`): no key to encrypt it with",
                                at: "\(name):row \(row)")
                            return .keep
                        }
                        do {
                            let nonce = try nonces.nextNonce()
                            let m = ValueSealer.sealedLength(v.count)
                            let out = try [UInt8](unsafeUninitializedCapacity: m) { o, n in
                                n = try v.withUnsafeBytes {
                                    try sealer.seal($0, kind: .text, slot: slots[Int(slot)], field: col.field, nonce: nonce, to: o.baseAddress!)
                                }
                            }
                            r.values += 1
                            return .bytes(out)
                        } catch {
                            failure = error
                            return .keep
                        }
                    }
                    guard isProtected else {
                        r.passed += 1
                        return .keep
                    }
                    guard let subject, let slot = slotOf[subject] else {
                        r.forgotten += 1
                        return absent(optional)
                    }
                    do {
                        if scratch.count < v.count + 16 { scratch = [UInt8](repeating: 0, count: v.count + 16) }
                        let value = try scratch.withUnsafeMutableBufferPointer { o in
                            let (_, n) = try v.withUnsafeBytes { try sealer.open($0, slot: slots[Int(slot)], field: col.field, to: o.baseAddress!) }
                            return Array(o[0..<n])
                        }
                        r.values += 1
                        return .bytes(value)
                    } catch let e as LetheError where e.code == .notFound {
                        r.forgotten += 1  // sealed by an earlier key of the subject, destroyed since
                        return absent(optional)
                    } catch {
                        if nullOnError {
                            r.failed += 1
                            return optional ? .null : .bytes([])
                        }
                        failure = LetheError(.corrupt, "\(error)", at: "\(name):row \(row), column `\(field)`")
                        return .keep
                    }
                }, to: &sink)
        } catch {
            throw ParquetFormat.lethe(error, name)
        }
        if let failure { throw failure }
        r.bytes = r.values > 0 || r.forgotten > 0 || r.failed > 0 ? sink.bytes : bytes
        return r
    }
}
