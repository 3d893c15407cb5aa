public import LetheCore
public import LetheStorage

/// JSON Lines: one JSON document per line (LF or CRLF), optionally gzip-compressed
/// (`.gz`, `.gzip`). Blank lines are not records. See docs/formats.md.
public struct JSONLinesFormat: RecordFormat {
    public var name: String { "jsonl" }
    /// Size of the chunks read from the store.
    public var chunkSize: Int
    /// The longest line accepted.
    public var maxLineLength: Int

    public init(chunkSize: Int = 1 << 20, maxLineLength: Int = 64 << 20) {
        precondition(chunkSize > 0 && maxLineLength > 0)
        self.chunkSize = chunkSize
        self.maxLineLength = maxLineLength
    }

    public func scan(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        visit: (Int64, SubjectKey) throws -> Void
    ) async throws -> ScanSummary {
        let options = options.resolved(for: object.key)
        let records = JSONLineKeyer(options: options, keyer: keyer, objectKey: object.key)
        var lines = LineSplitter(objectKey: object.key, maxLineLength: maxLineLength)
        var scan = LineScan(records: records, keyer: keyer)
        var stored: Int64 = 0
        do {
            if Compression.forKey(object.key) == .none {
                // Stored plain: lent by the store a window at a time (a local file mapped, not copied; the kernel
                // reads the next window while this one is scanned). Only a line cut by a window's end is copied.
                var own: (any Error)? = nil
                do {
                    try await store.forEachWindow(of: object.key, window: chunkSize) { w, _ in
                        stored += Int64(w.count)
                        do {
                            try scan.feed(bytes: UnsafeRawBufferPointer(w), &lines, visit)
                        } catch {
                            own = error
                            throw error
                        }
                        return 0
                    }
                } catch {
                    throw own ?? Codec.readFailure(error, object.key)
                }
            } else {
                let source = try await Codec.openSource(object.key, in: store, chunkSize: chunkSize)
                defer { source.close() }
                while let chunk = try await source.next() {
                    try scan.feed(chunk, &lines, visit)
                }
                stored = source.storedBytes
            }
            try scan.finish(&lines, visit)
        } catch {
            // A visit's own error leaves the batch empty (`flush` takes it first): nothing is visited twice.
            try scan.flush(visit)
            throw error
        }
        try scan.flush(visit)
        var summary = scan.summary
        summary.bytes = stored
        return summary
    }

    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: actions, hint: nil)
    }

    /// With a hint for the version read, only the hinted records are parsed and keyed; every other
    /// line is told apart from a blank one (to number the records) and copied as it is.
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
                let records = JSONLineKeyer(options: options, keyer: keyer, objectKey: object.key)
                var lines = LineSplitter(objectKey: object.key, maxLineLength: maxLineLength)
                var out = OutputBuffer()
                var outcome = EraseOutcome()
                outcome.exact = true
                // The hint holds for the version it was made from only (not for a carried tail's round).
                var ordinals = RecordOrdinals(hint?.version == version ? hinted : nil)
                var maskers: [RecordAction: JSONRecordMasker] = [:]
                func handle(_ line: UnsafeRawBufferPointer, _ contentLength: Int, _ lineNumber: Int64) throws {
                    let content = UnsafeRawBufferPointer(rebasing: line[0..<contentLength])
                    if ordinals.skipsRecords, !isBlankLine(content) {
                        if !ordinals.nextIsHinted() {
                            outcome.kept += 1
                            out.append(line)
                            return
                        }
                    }
                    switch outcome.apply(try records.classify(content, lineNumber), actions, ordinal: &ordinals.next) {
                    case nil: out.append(line)
                    case .drop?: return
                    case .blankRecord?:
                        // `{}` keeps the line (and its CR, if any): line numbers stay as they were.
                        out.bytes.append(contentsOf: [0x7B, 0x7D])
                        if contentLength > 0 && line[contentLength - 1] == 0x0D { out.bytes.append(0x0D) }
                        out.append(UnsafeRawBufferPointer(rebasing: line[contentLength...]))
                    case .transform(let fields)?:
                        let masker = maskers[.transform(fields)] ?? JSONRecordMasker(fields, maskKey: actions.maskKey)
                        maskers[.transform(fields)] = masker
                        do { try masker.transform(content, into: &out.bytes) } catch let e as JSONSyntaxError {
                            throw LetheError(
                                .corrupt, "malformed JSON: \(e.reason.rawValue) at byte \(e.offset + 1) of the line", at: "\(object.key):line \(lineNumber)")
                        }
                        out.append(UnsafeRawBufferPointer(rebasing: line[contentLength...]))
                    }
                }
                while let chunk = try await source.next() {
                    try lines.feed(chunk, handle)
                    if out.needsFlush { try await sink.write(out.take()) }
                }
                try lines.finish(handle)
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

extension ScanSummary {
    /// Counts one classified line: a record with a subject is visited, a blank line is not a record.
    mutating func tally(_ line: LineOutcome, _ visit: (Int64, SubjectKey) throws -> Void) rethrows {
        switch line {
        case .blank: return
        case .noSubject: recordsWithoutSubject += 1
        case .subject(let key): try visit(records, key)
        }
        records += 1
    }
}

/// Numbers the records of a line format during an erase and, with a hint, tells which ones it names.
struct RecordOrdinals {
    /// The hinted ordinals (sorted), or nil: every record is classified.
    private let hinted: [Int64]?
    private var h = 0
    /// The ordinal of the next record.
    var next: Int64 = 0

    init(_ hinted: [Int64]?) { self.hinted = hinted }

    /// Whether records not hinted are copied without being classified.
    var skipsRecords: Bool { hinted != nil }

    /// For the next record (known not blank): whether it is hinted; if not, it is counted here.
    mutating func nextIsHinted() -> Bool {
        guard let hinted else { return true }
        while h < hinted.count && hinted[h] < next { h += 1 }
        if h < hinted.count && hinted[h] == next { return true }
        next += 1
        return false
    }
}

/// Whether a line's content is empty or whitespace only (not a record).
func isBlankLine(_ line: UnsafeRawBufferPointer) -> Bool {
    for c in line where !(c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A) { return false }
    return true
}

/// A scan's lines classified and their subjects keyed. Records whose subject is one field are keyed a
/// batch at a time (two HMACs at once while the keyer's cache is bypassed) and visited in order when
/// their batch is; a failure delivers the batch first (`flush`), so the visits before it are those of a
/// record-at-a-time scan. (A struct whose methods take `self` inout: its fields' accesses are checked
/// statically, not per line.)
struct LineScan {
    let records: JSONLineKeyer
    let keyer: SubjectKeyer
    var summary = ScanSummary()
    var batch = PendingKeys()

    mutating func feed(_ chunk: [UInt8], _ lines: inout LineSplitter, _ visit: (Int64, SubjectKey) throws -> Void) throws {
        try chunk.withUnsafeBytes { try feed(bytes: $0, &lines, visit) }
    }

    /// The lines the bytes complete: those whole in them scanned together (`JSONFieldScanner.scanLines`).
    mutating func feed(bytes: UnsafeRawBufferPointer, _ lines: inout LineSplitter, _ visit: (Int64, SubjectKey) throws -> Void) throws {
        try lines.feed(bytes: bytes, lines: { try scanLines($0, from: $1, visit) }) { try handle($0, $1, $2, visit) }
    }

    /// Classifies the whole lines of `region` (numbered from `first`) and returns how many there were.
    mutating func scanLines(_ region: UnsafeRawBufferPointer, from first: Int64, _ visit: (Int64, SubjectKey) throws -> Void) throws -> Int64 {
        var lineNumber = first
        try records.scanLines(region) { line, contentLength, outcome in
            switch outcome {
            case .blank: break
            case .declined: try handle(line, contentLength, lineNumber, visit)
            case .scanned: try handle(line, contentLength, lineNumber, scanned: true, visit)
            }
            lineNumber += 1
        }
        return lineNumber - first
    }

    mutating func finish(_ lines: inout LineSplitter, _ visit: (Int64, SubjectKey) throws -> Void) throws {
        try lines.finish { try handle($0, $1, $2, visit) }
    }

    /// `scanned`: the line was scanned already (`JSONFieldScanner.scanLines`), only its matches are read.
    mutating func handle(
        _ line: UnsafeRawBufferPointer, _ contentLength: Int, _ lineNumber: Int64, scanned: Bool = false,
        _ visit: (Int64, SubjectKey) throws -> Void
    ) throws {
        let content = UnsafeRawBufferPointer(rebasing: line[0..<contentLength])
        let unkeyed = try scanned ? records.classifyScanned(content, lineNumber) : records.classifyUnkeyed(content, lineNumber)
        guard let outcome = unkeyed else {
            let record = summary.records
            records.withSubjectValue(content) { batch.append($0, record: record) }
            summary.records += 1
            if batch.records.count == PendingKeys.size { try flush(visit) }
            return
        }
        if case .subject = outcome { try flush(visit) }
        try summary.tally(outcome, visit)
    }

    /// Keys the batch and visits its records, in order; the batch is empty afterwards, even if a visit throws.
    mutating func flush(_ visit: (Int64, SubjectKey) throws -> Void) throws {
        guard !batch.records.isEmpty else { return }
        batch.key(keyer)
        defer { batch.reset() }
        for i in batch.records.indices { try visit(batch.records[i], batch.keys[i]) }
    }
}

/// Subject values of records read but not yet keyed (a scan keys them a batch at a time).
struct PendingKeys {
    static let size = 256
    var bytes: [UInt8] = []
    var offsets: [Int] = [0]
    var records: [Int64] = []
    var keys: [SubjectKey] = []
    var scratch: [UInt8] = []

    mutating func append(_ value: UnsafeRawBufferPointer, record: Int64) {
        bytes.append(contentsOf: value)
        offsets.append(bytes.count)
        records.append(record)
    }

    /// `keys[i]`: the key of value i.
    mutating func key(_ keyer: SubjectKeyer) {
        bytes.withUnsafeBytes { b in
            offsets.withUnsafeBufferPointer { keyer.keys(bytes: b, offsets: $0, scratch: &scratch, into: &keys) }
        }
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.append(0)
        records.removeAll(keepingCapacity: true)
    }
}

/// What one line holds.
enum LineOutcome {
    /// Empty or whitespace only: not a record.
    case blank
    /// A record whose subject is null or empty.
    case noSubject
    case subject(SubjectKey)
}

/// Finds the subject of each JSON Lines record and turns it into a key.
final class JSONLineKeyer {
    private let scanner: JSONFieldScanner
    private let keyer: SubjectKeyer
    /// The subject fields read from each record (the others are the object's constants).
    private let fields: [FieldPath]
    /// Subject fields the object's Hive folder gives, which a record must not contradict.
    private let folderFields: [FieldPath]
    private let options: FormatOptions
    private let constant: ConstantSubject
    private let objectKey: String
    private var joined: [UInt8] = []

    init(options: FormatOptions, keyer: SubjectKeyer, objectKey: String) {
        self.options = options
        self.fields = options.recordFields
        self.folderFields = options.folderFields
        // With every part constant the records are still validated, against a path no key can match.
        // Folder fields are looked up after the record fields, to check them against the folder.
        let paths = fields + folderFields
        self.scanner = JSONFieldScanner(paths: paths.isEmpty ? [FieldPath(components: [[0xFF]])] : paths)
        self.constant = options.constantSubject(keyer)
        self.keyer = keyer
        self.objectKey = objectKey
    }

    /// Classifies one line's content (without its LF).
    func classify(_ line: UnsafeRawBufferPointer, _ lineNumber: Int64) throws -> LineOutcome {
        if let outcome = try classifyUnkeyed(line, lineNumber) { return outcome }
        return .subject(withSubjectValue(line) { keyer.key($0) })
    }

    /// The canonical value of the subject field of the line `classifyUnkeyed` just returned nil for.
    func withSubjectValue<R>(_ line: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        scanner.withCanonicalValue(0, in: line, body)!
    }

    /// `classify` without keying a subject that is one field's value: nil for such a line, whose value
    /// `withSubjectValue` then gives (until the next line is classified).
    func classifyUnkeyed(_ line: UnsafeRawBufferPointer, _ lineNumber: Int64) throws -> LineOutcome? {
        var i = 0
        let n = line.count
        while i < n {
            let c = line[i]
            if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A { i += 1 } else { break }
        }
        if i == n { return .blank }
        do {
            try scanner.scan(line)
        } catch {
            throw LetheError(
                .corrupt,
                "malformed JSON: \(error.reason.rawValue) at byte \(error.offset + 1) of the line"
                    + (error.reason == .duplicateField ? " (subject field \(fieldNames))" : ""),
                at: location(lineNumber))
        }
        return try classifyScanned(line, lineNumber)
    }

    /// The lines of a window of whole lines, scanned together (see `JSONFieldScanner.scanLines`); a line
    /// `.scanned` is then classified by `classifyScanned`, a `.declined` one by `classifyUnkeyed`.
    func scanLines(_ window: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Int, JSONFieldScanner.LineOutcome) throws -> Void) rethrows {
        try scanner.scanLines(window, body)
    }

    /// `classifyUnkeyed` of a line whose content the scanner has just scanned without error (its matches are the line's).
    func classifyScanned(_ line: UnsafeRawBufferPointer, _ lineNumber: Int64) throws -> LineOutcome? {
        for (j, f) in folderFields.enumerated() {
            let m = scanner.match(fields.count + j)
            switch m.kind {
            case .absent, .null: continue
            case .bool, .object, .array: throw LetheError(.corrupt, FormatOptions.folderConflict(f), at: location(lineNumber))
            case .string, .number:
                if scanner.withCanonicalValue(fields.count + j, in: line, { options.agreesWithFolder(f, $0) }) == false {
                    throw LetheError(.corrupt, FormatOptions.folderConflict(f), at: location(lineNumber))
                }
            }
        }
        switch constant {
        case .key(let k): return .subject(k)
        case .none: return .noSubject
        case .varies: break
        }
        var missingValue = false
        for k in 0..<fields.count {
            let m = scanner.match(k)
            switch m.kind {
            case .absent:
                // `{}` is a record `erase: blank` emptied: it has no subject.
                if isEmptyObject(line) { return .noSubject }
                throw LetheError(.corrupt, "record has no subject field `\(fields[k])`", at: location(lineNumber))
            case .bool, .object, .array:
                throw LetheError(
                    .corrupt,
                    "subject field `\(fields[k])` holds \(m.kind == .bool ? "a boolean" : m.kind == .object ? "an object" : "an array"), not a string or number",
                    at: location(lineNumber))
            case .null:
                missingValue = true
            case .string, .number:
                if m.start == m.end { missingValue = true }
            }
        }
        if missingValue { return .noSubject }
        if options.subject.fields.count == 1 { return nil }
        joined.removeAll(keepingCapacity: true)
        var k = 0
        for (i, f) in options.subject.fields.enumerated() {
            if i > 0 { joined.append(SubjectID.partSeparator) }
            if case .value(let v)? = options.constants[f] {
                joined.append(contentsOf: v)
            } else {
                scanner.withCanonicalValue(k, in: line) { joined.append(contentsOf: $0) }
                k += 1
            }
        }
        return .subject(keyer.key(joined))
    }

    private var fieldNames: String { fields.map(\.description).joined(separator: ", ") }

    private func location(_ line: Int64) -> String { "\(objectKey):line \(line)" }
}

/// Whether a line's content is the empty object `{}` (with optional whitespace): a blanked record.
func isEmptyObject(_ line: UnsafeRawBufferPointer) -> Bool {
    var seen: [UInt8] = []
    for c in line where !(c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A) {
        seen.append(c)
        if seen.count > 2 { return false }
    }
    return seen == [0x7B, 0x7D]
}
