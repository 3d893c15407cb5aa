public import LetheCore
public import LetheStorage

/// CSV (RFC 4180) with a header row, optionally gzip-compressed (`.gz`, `.gzip`).
/// The subject fields name header columns; a dotted `FieldPath` names the column
/// whose name is the dotted text (`user.id`). See docs/formats.md.
public struct CSVFormat: RecordFormat {
    public var name: String { "csv" }
    /// Size of the chunks read from the store.
    public var chunkSize: Int
    /// The longest record accepted (guards against an unclosed quote swallowing the object).
    public var maxRecordLength: Int

    public init(chunkSize: Int = 1 << 20, maxRecordLength: Int = 64 << 20) {
        precondition(chunkSize > 0 && maxRecordLength > 0)
        self.chunkSize = chunkSize
        self.maxRecordLength = maxRecordLength
    }

    public func scan(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        visit: (Int64, SubjectKey) throws -> Void
    ) async throws -> ScanSummary {
        let options = options.resolved(for: object.key)
        let source = try await Codec.openSource(object.key, in: store, chunkSize: chunkSize)
        defer { source.close() }
        var reader = CSVReader(objectKey: object.key, delimiter: options.delimiter, maxRecordLength: maxRecordLength)
        let records = CSVRecordKeyer(options: options, keyer: keyer, objectKey: object.key)
        var summary = ScanSummary()
        func handle(_ record: CSVRecord, _ fields: [CSVField]) throws {
            try summary.tally(try records.classify(record, fields), visit)
        }
        while let chunk = try await source.next() {
            try reader.feed(chunk, handle)
        }
        try reader.finish(handle)
        summary.bytes = source.storedBytes
        return summary
    }

    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: actions, hint: nil)
    }

    /// With a hint for the version read, only the header and the hinted records are classified and
    /// keyed; every other record is copied as it is.
    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions, hint: EraseHint?
    ) async throws -> EraseOutcome {
        let options = options.resolved(for: object.key)
        try actions.checkNotConstant(options, format: name, keyer: keyer, at: object.key)
        let drop = Set(actions.bySubject.keys)
        if let whole = try await eraseWhole(object, in: store, options: options, keyer: keyer, drop: drop) { return whole }
        let hinted = hint?.ordinals(of: drop)
        // Bytes a writer appends to the replaced file meanwhile are carried into the new version (TailCarry).
        return try await TailCarry.erase(object, in: store, chunkSize: chunkSize) { source, version, force in
            let writer = try await store.openWrite(object.key, precondition: .matches(version: version))
            do {
                let sink = try Codec.sink(for: object.key, over: writer)
                var reader = CSVReader(objectKey: object.key, delimiter: options.delimiter, maxRecordLength: maxRecordLength)
                let records = CSVRecordKeyer(options: options, keyer: keyer, objectKey: object.key)
                var out = OutputBuffer()
                var outcome = EraseOutcome()
                outcome.exact = true
                // The hint holds for the version it was made from only (not for a carried tail's round).
                var ordinals = RecordOrdinals(hint?.version == version ? hinted : nil)
                var headerSeen = false
                var maskers: [[FieldPath: FieldAction]: CSVRecordMasker] = [:]
                func masker(_ records: CSVRecordKeyer, _ columns: [FieldPath: FieldAction] = [:]) -> CSVRecordMasker {
                    if let m = maskers[columns] { return m }
                    let m = CSVRecordMasker(columns, header: records.headerNames, delimiter: options.delimiter, maskKey: actions.maskKey)
                    maskers[columns] = m
                    return m
                }
                func handle(_ record: CSVRecord, _ fields: [CSVField]) throws {
                    if ordinals.skipsRecords, !record.isBlank {
                        if headerSeen && !ordinals.nextIsHinted() {
                            outcome.kept += 1
                            out.append(record.raw)
                            return
                        }
                        headerSeen = true
                    }
                    switch outcome.apply(try records.classify(record, fields), actions, ordinal: &ordinals.next) {
                    case nil: out.append(record.raw)
                    case .drop?: return
                    case .blankRecord?:
                        try masker(records).transform(record, fields, blankAll: true, into: &out.bytes)
                    case .transform(let columns)?:
                        try masker(records, columns).transform(record, fields, blankAll: false, into: &out.bytes)
                    }
                }
                while let chunk = try await source.next() {
                    try reader.feed(chunk, handle)
                    if out.needsFlush { try await sink.write(out.take()) }
                }
                try reader.finish(handle)
                if !outcome.changedRecords && !force {
                    await writer.abort()
                    return (outcome, nil)
                }
                try await sink.write(out.take())
                try await sink.finish()
                outcome.written = try await writer.commit()
                return (outcome, writer)
            } catch {
                await writer.abort()
                throw error
            }
        }
    }
}

/// Reads the header, then finds each data record's subject and turns it into a key.
/// The header itself is reported as `.blank` (it is not a record).
final class CSVRecordKeyer {
    private let keyer: SubjectKeyer
    /// The header names of the subject fields read from each record (the others are constants).
    private let columnNames: [[UInt8]]
    private let options: FormatOptions
    private let constant: ConstantSubject
    private let objectKey: String
    private var columns: [Int] = []
    /// Folder fields (see `FormatOptions.folderFields`) the header also names, with their column.
    private var folderColumns: [(field: FieldPath, column: Int)] = []
    private var headerCount = -1
    /// The header's column names (unquoted), once read.
    private(set) var headerNames: [[UInt8]] = []
    private var scratch: [UInt8] = []
    private var joined: [UInt8] = []

    init(options: FormatOptions, keyer: SubjectKeyer, objectKey: String) {
        self.keyer = keyer
        self.objectKey = objectKey
        self.options = options
        self.constant = options.constantSubject(keyer)
        // A dotted path names the column whose name is the dotted text.
        self.columnNames = options.recordFields.map { path in
            var name: [UInt8] = []
            for (i, c) in path.components.enumerated() {
                if i > 0 { name.append(UInt8(ascii: ".")) }
                name.append(contentsOf: c)
            }
            return name
        }
    }

    func classify(_ record: CSVRecord, _ fields: [CSVField]) throws -> LineOutcome {
        if record.isBlank { return .blank }
        if headerCount < 0 {
            try readHeader(record, fields)
            return .blank
        }
        guard fields.count == headerCount else {
            throw LetheError(
                .corrupt, "expected \(headerCount) fields (as in the header), found \(fields.count)",
                at: "\(objectKey):line \(record.line)")
        }
        for (field, column) in folderColumns {
            let f = fields[column]
            if f.start != f.end, !f.withText(in: record.buffer, scratch: &scratch, { options.agreesWithFolder(field, $0) }) {
                throw LetheError(.corrupt, FormatOptions.folderConflict(field), at: "\(objectKey):line \(record.line)")
            }
        }
        switch constant {
        case .key(let k): return .subject(k)
        case .none: return .noSubject
        case .varies: break
        }
        let buf = record.buffer
        if options.subject.fields.count == 1 {
            let f = fields[columns[0]]
            if f.start == f.end { return .noSubject }
            return .subject(f.withText(in: buf, scratch: &scratch) { keyer.key($0) })
        }
        joined.removeAll(keepingCapacity: true)
        var k = 0
        for (i, field) in options.subject.fields.enumerated() {
            if i > 0 { joined.append(SubjectID.partSeparator) }
            if case .value(let v)? = options.constants[field] {
                joined.append(contentsOf: v)
                continue
            }
            let f = fields[columns[k]]
            k += 1
            if f.start == f.end { return .noSubject }
            f.withText(in: buf, scratch: &scratch) { joined.append(contentsOf: $0) }
        }
        return .subject(keyer.key(joined))
    }

    private func readHeader(_ record: CSVRecord, _ fields: [CSVField]) throws {
        var names: [[UInt8]] = []
        for f in fields {
            names.append(f.withText(in: record.buffer, scratch: &scratch) { Array($0) })
        }
        var cols: [Int] = []
        for name in columnNames {
            let hits = names.indices.filter { names[$0] == name }
            let display = String(decoding: name, as: UTF8.self)
            guard let first = hits.first else {
                throw LetheError(.corrupt, "the header has no subject column `\(display)`", at: "\(objectKey):line \(record.line)")
            }
            guard hits.count == 1 else {
                throw LetheError(.corrupt, "the subject column `\(display)` appears \(hits.count) times in the header", at: "\(objectKey):line \(record.line)")
            }
            cols.append(first)
        }
        columns = cols
        headerNames = names
        folderColumns = []
        for field in options.folderFields {
            let name = Array(field.components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".").utf8)
            let hits = names.indices.filter { names[$0] == name }
            guard hits.count <= 1 else {
                throw LetheError(.corrupt, "the subject column `\(field)` appears \(hits.count) times in the header", at: "\(objectKey):line \(record.line)")
            }
            if let c = hits.first { folderColumns.append((field, c)) }
        }
        headerCount = fields.count
    }
}
