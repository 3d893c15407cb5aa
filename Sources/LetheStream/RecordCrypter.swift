#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import LetheCore

/// The records a `RecordCrypter` reads and writes.
public enum CryptoRecordFormat: Sendable, Equatable {
    /// JSON Lines: fields by exact dotted path (`JSONFieldScanner`).
    case jsonl
    /// CSV with a header row: fields by column name; RFC 4180 quoting.
    case csv(delimiter: UInt8)
}

/// What a `RecordCrypter` does to the PII fields.
public enum CryptoMode: Sendable, Equatable {
    /// Encrypts every PII value that is not protected yet (a subject without a key gets one).
    case protect
    /// Decrypts protected values. A value whose subject has no key any more (forgotten), or whose
    /// key was replaced, becomes `null` (JSON) / an empty field (CSV), or `marker` when given.
    /// A value that does not open (altered, moved to another field or subject) stops the stream
    /// with an error naming the line and field, unless `nullOnError` (then it is counted and nulled).
    case reveal(marker: [UInt8]?, nullOnError: Bool)
}

/// A check run on each record before it is protected (a dataset's `schema:`, issue 15). A record
/// it rejects is not written out: the crypter keeps it aside for the quarantine.
public protocol RecordValidator: AnyObject {
    /// A CSV stream's header record (its bytes), before any record. Not called for JSON Lines.
    func header(_ record: UnsafeRawBufferPointer) throws
    /// The rules one record breaks, empty when it passes: a JSON Lines line or a CSV record, without
    /// its line end. `line` is the physical line where it begins (1-based; a CSV header is line 1).
    func check(_ record: UnsafeRawBufferPointer, line: Int64) -> [RecordViolation]
}

/// One rule a record broke: where (line, field) and which rule — never a value.
public struct RecordViolation: Sendable, Hashable {
    public var line: Int64
    /// The field, or `-` for the record as a whole.
    public var field: String
    /// The rule (`required`, `type:int`, `json`, … ; the crypter's own: `subject`, `pii:scalar`).
    public var rule: String
    public init(line: Int64, field: String, rule: String) { self.line = line; self.field = field; self.rule = rule }
    /// A violation of the record as a whole: it cannot be read as a record (`json`, `fields`).
    public var isWholeRecord: Bool { rule == "json" || rule == "fields" }
}

/// Counts of a crypter's work.
public struct CryptoCounts: Sendable, Equatable {
    /// Records read (a CSV header is not counted; blank lines are not records).
    public var records: Int64 = 0
    /// Values encrypted (protect) or decrypted (reveal).
    public var values: Int64 = 0
    /// Values left as they were: already protected (protect), not protected (reveal).
    public var passed: Int64 = 0
    /// Reveal: values whose subject's key is gone (forgotten) or was replaced.
    public var forgotten: Int64 = 0
    /// Reveal with `nullOnError`: values that did not open.
    public var failed: Int64 = 0
    /// Bytes read.
    public var bytes: Int64 = 0
    /// Protect with a validator: records kept aside for the quarantine (counted in `records` too).
    public var quarantined: Int64 = 0
    public init() {}
}

/// Encrypts (protect) or decrypts (reveal) the PII fields of a record stream, per subject, on bytes
/// (docs/crypto-shredding.md). Every byte outside the PII values passes through unchanged: other
/// fields, key order, whitespace, line endings, blank lines. Records are handled a chunk at a time:
/// one scan finds each record's subject and PII values, the chunk's subjects' keys are fetched in one
/// call, then the output is written.
///
/// Validation (`schema:`, issue 15): with a `validator`, protect checks each record before protecting
/// it. A record that fails — the validator's rules, or one the crypter cannot protect (not JSON, a PII
/// value without a subject, an object in a PII field) — is not written out but kept aside in
/// `rejected` (or `unparsed`, for records not readable as records) with its `violations`, for the
/// caller's quarantine; the stream goes on. Without a validator such a record stops the stream
/// (`.badInput` naming the line and field).
public final class RecordCrypter {
    public let dataset: String
    public let format: CryptoRecordFormat
    public let mode: CryptoMode
    public let subjectFields: [FieldPath]
    /// The PII fields handled (the subject's own fields are never encrypted: they name the key).
    public let piiFields: [FieldPath]
    public private(set) var counts = CryptoCounts()
    /// Protect: the records' check; with one, failing records are kept aside (see the type's note).
    public var validator: (any RecordValidator)?
    /// The records kept aside, as they were (each with a line end; a CSV file's starts with the header).
    public private(set) var rejected: [UInt8] = []
    /// Of those, the records not readable as records (`json`), kept apart the same way.
    public private(set) var unparsed: [UInt8] = []
    public private(set) var unparsedRecords: Int64 = 0
    /// Every rule the kept-aside records broke, in order.
    public private(set) var violations: [RecordViolation] = []
    /// CSV: the header record as read (with its line end), and the physical lines read so far.
    var csvHeader: [UInt8] = []
    var physicalLine: Int64 = 0
    /// This stream's nonces (one `getrandom` per 256 values).
    let nonces = NonceSource()
    /// Seals and opens this stream's values without per-value allocations of its own (speed).
    let sealer: ValueSealer

    let hasher: SubjectHasher
    /// The dataset's `normalize:`, applied to a subject's value before it is keyed, as the index keys it
    /// (otherwise a subject typed in another normal form would find no key to destroy).
    let normalization: Normalization
    let keys: any DataKeySource
    let fieldNames: [String]
    let scanner: JSONFieldScanner?
    /// Lines (JSONL) or records (CSV, header included) consumed so far: error locations.
    var line: Int64 = 0
    /// CSV: the column of each subject part and PII field, from the header (nil until it is read).
    var csvColumns: (subject: [Int], pii: [Int?])?

    public init(
        dataset: String, format: CryptoRecordFormat, mode: CryptoMode, subject: [FieldPath], pii: [FieldPath], hasher: SubjectHasher,
        normalization: Normalization = .none, keys: any DataKeySource
    ) throws {
        precondition(!subject.isEmpty, "a subject field")
        self.dataset = dataset
        self.format = format
        self.mode = mode
        let fields = pii.filter { !subject.contains($0) }
        self.subjectFields = subject
        self.piiFields = fields
        self.hasher = hasher
        self.normalization = normalization
        self.keys = keys
        self.fieldNames = fields.map(\.description)
        self.sealer = ValueSealer(dataset: dataset, fields: fields.map(\.description))
        if case .csv = format {
            if let f = (subject + fields).first(where: { $0.components.count != 1 }) {
                throw LetheError(.badInput, "dataset `\(dataset)`: field `\(f)` is a dotted path; a CSV dataset names columns")
            }
            scanner = nil
        } else {
            scanner = JSONFieldScanner(paths: subject + fields)
        }
    }

    /// One value to rewrite: its byte range in the chunk, the PII field's index, and for protect
    /// the plaintext (kind + value), for reveal the protected text.
    struct Edit {
        var start: Int
        var end: Int
        var field: Int
        var kind: ProtectedValue.Kind
        var bytes: [UInt8]
    }

    struct Record {
        var subject: SubjectKey?
        var edits: [Edit]
        var line: Int64
        /// A record kept aside: its bytes (line end included) are left out of the output.
        var drop: Range<Int>? = nil
    }

    private var quarantining: Bool {
        if case .protect = mode { return validator != nil }
        return false
    }

    /// Keeps a failing record aside (its bytes, with a line end) and notes it to leave it out.
    /// `readable`: the record can be read as one of the dataset's (for JSON Lines, each subject field
    /// is present and a string, number or null, as indexing requires); one that cannot goes to
    /// `unparsed`, with the records that are not JSON.
    private func reject(
        _ buf: UnsafeRawBufferPointer, _ range: Range<Int>, line: Int64, _ found: [RecordViolation], readable: Bool = true,
        into records: inout [Record]
    ) {
        let whole = !readable || found.contains(where: \.isWholeRecord)
        let bytes = UnsafeRawBufferPointer(rebasing: buf[range])
        func add(_ b: inout [UInt8]) {
            if b.isEmpty, case .csv = format {
                b += csvHeader
                if b.last != 0x0A { b.append(0x0A) }
            }
            b.append(contentsOf: bytes)
            if b.last != 0x0A { b.append(0x0A) }
        }
        if whole {
            add(&unparsed)
            unparsedRecords += 1
        } else {
            add(&rejected)
        }
        violations += found
        counts.quarantined += 1
        records.append(Record(subject: nil, edits: [], line: line, drop: range))
    }

    /// Processes the complete records of `input` (through its last record end; with `isFinal`, a last
    /// record without one too), appending the output to `out`. Returns the bytes consumed: the caller
    /// passes the rest again, followed by more input. Bad input (malformed JSON, a PII value without a
    /// subject, an object where a value should be) is `.badInput` naming the line and field.
    public func process(_ input: [UInt8], isFinal: Bool, into out: inout [UInt8]) async throws -> Int {
        var records: [Record] = []
        let consumed = try input.withUnsafeBytes { buf -> Int in
            switch format {
            case .jsonl: return try scanLines(buf, isFinal: isFinal, into: &records)
            case .csv(let d): return try scanCSV(buf, delimiter: d, isFinal: isFinal, into: &records)
            }
        }
        var subjects: [SubjectKey] = []
        for r in records where !r.edits.isEmpty { if let s = r.subject { subjects.append(s) } }
        let found: [SubjectKey: ProtectedValue.DataKey]
        if subjects.isEmpty {
            found = [:]
        } else {
            if case .protect = mode {
                found = try await keys.dataKeys(for: subjects, create: true)
            } else {
                found = try await keys.dataKeys(for: subjects, create: false)
            }
        }
        out.reserveCapacity(out.count + consumed + consumed / 2)
        var at = 0
        for r in records {
            if let d = r.drop {
                out.append(contentsOf: input[at..<d.lowerBound])
                at = d.upperBound
                continue
            }
            for e in r.edits {
                out.append(contentsOf: input[at..<e.start])
                try write(e, of: r, key: r.subject.flatMap { found[$0] }, into: &out)
                at = e.end
            }
        }
        out.append(contentsOf: input[at..<consumed])
        counts.bytes += Int64(consumed)
        return consumed
    }

    /// Convenience: a whole buffer (a last record without its end included) into a new array.
    public func process(_ input: [UInt8]) async throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try await process(input, isFinal: true, into: &out)
        return out
    }

    // MARK: Writing

    private func write(_ e: Edit, of r: Record, key: ProtectedValue.DataKey?, into out: inout [UInt8]) throws {
        let field = fieldNames[e.field]
        switch mode {
        case .protect:
            guard let key, let subject = r.subject else { throw LetheError(.failure, "no data key for a record's subject", at: "line \(r.line)") }
            let quoted = format == .jsonl
            if quoted { out.append(0x22) }
            try e.bytes.withUnsafeBytes {
                try sealer.seal($0, kind: e.kind, key: key, field: e.field, subject: subject, nonces: nonces, into: &out)
            }
            if quoted { out.append(0x22) }
            counts.values += 1
        case .reveal(let marker, let nullOnError):
            guard let key, let subject = r.subject else {
                counts.forgotten += 1
                writeAbsent(marker, into: &out)
                return
            }
            do {
                try e.bytes.withUnsafeBytes { text in
                    try sealer.open(text, key: key, field: e.field, subject: subject) { kind, value in writeRevealed(kind, value, into: &out) }
                }
                counts.values += 1
            } catch let err as LetheError where err.code == .notFound {
                counts.forgotten += 1  // sealed by an earlier key of the subject, destroyed since
                writeAbsent(marker, into: &out)
            } catch let err as LetheError {
                guard nullOnError else { throw LetheError(.corrupt, err.message, at: "\(lineWord) \(r.line), field `\(field)`") }
                counts.failed += 1
                writeAbsent(nil, into: &out)
            }
        }
    }

    private var lineWord: String { format == .jsonl ? "line" : "record" }

    private func writeAbsent(_ marker: [UInt8]?, into out: inout [UInt8]) {
        switch format {
        case .jsonl:
            if let marker { marker.withUnsafeBytes { Self.quoteJSON($0, into: &out) } } else { out += Array("null".utf8) }
        case .csv(let d):
            if let marker { marker.withUnsafeBytes { Self.quoteCSV($0, delimiter: d, into: &out) } }
        }
    }

    private func writeRevealed(_ kind: ProtectedValue.Kind, _ value: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        switch (format, kind) {
        case (.jsonl, .text): Self.quoteJSON(value, into: &out)
        case (.jsonl, _): out.append(contentsOf: value)
        case (.csv(let d), _): Self.quoteCSV(value, delimiter: d, into: &out)
        }
    }

    static let hex = Array("0123456789abcdef".utf8)

    /// A JSON string of UTF-8 bytes (quotes, backslashes and control characters escaped).
    static func quoteJSON(_ v: UnsafeRawBufferPointer, into b: inout [UInt8]) {
        b.append(0x22)
        for c in v {
            switch c {
            case 0x22, 0x5C: b.append(0x5C); b.append(c)
            case 0x0A: b.append(0x5C); b.append(UInt8(ascii: "n"))
            case 0x0D: b.append(0x5C); b.append(UInt8(ascii: "r"))
            case 0x09: b.append(0x5C); b.append(UInt8(ascii: "t"))
            case 0..<0x20: b += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: b.append(c)
            }
        }
        b.append(0x22)
    }

    /// A CSV field: quoted (quotes doubled) when it holds the delimiter, a quote, CR or LF.
    static func quoteCSV(_ v: UnsafeRawBufferPointer, delimiter: UInt8, into b: inout [UInt8]) {
        guard v.contains(where: { $0 == delimiter || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else {
            b.append(contentsOf: v)
            return
        }
        b.append(0x22)
        for c in v {
            if c == 0x22 { b.append(0x22) }
            b.append(c)
        }
        b.append(0x22)
    }

    // MARK: JSON Lines

    private func scanLines(_ buf: UnsafeRawBufferPointer, isFinal: Bool, into records: inout [Record]) throws -> Int {
        guard let base = buf.baseAddress, buf.count > 0, let scanner else { return 0 }
        let n = buf.count
        let k = subjectFields.count
        var lineStart = 0
        var joined: [UInt8] = []
        while lineStart < n {
            let end: Int, next: Int
            if let nl = memchr(base + lineStart, 0x0A, n - lineStart) {
                end = UnsafeRawPointer(nl) - base
                next = end + 1
            } else {
                if !isFinal { break }
                end = n
                next = n
            }
            line += 1
            let doc = UnsafeRawBufferPointer(start: base + lineStart, count: end - lineStart)
            do {
                try scanner.scan(doc)
            } catch {
                if error.reason == .empty {
                    lineStart = next
                    continue
                }
                if quarantining {
                    counts.records += 1
                    reject(buf, lineStart..<next, line: line, [RecordViolation(line: line, field: "-", rule: "json")], into: &records)
                    lineStart = next
                    continue
                }
                throw LetheError(.badInput, "malformed JSON: \(error.reason.rawValue) at byte \(error.offset + 1) of the line", at: "line \(line)")
            }
            counts.records += 1
            // Indexing reads a record whose subject fields are each present and a string, number or null.
            var readable = true
            for i in 0..<k {
                let kind = scanner.match(i).kind
                if !(kind == .string || kind == .number || kind == .null) { readable = false }
            }
            if quarantining, let validator {
                let found = validator.check(doc, line: line)
                if !found.isEmpty {
                    reject(buf, lineStart..<next, line: line, found, readable: readable, into: &records)
                    lineStart = next
                    continue
                }
            }
            // The subject (composite parts joined by 0x1F); nil when a part is absent, null, empty or not a scalar.
            var subject: SubjectKey?
            joined.removeAll(keepingCapacity: true)
            var whole = true
            for i in 0..<k {
                let m = scanner.match(i)
                guard m.kind.isScalarValue, m.end > m.start else {
                    whole = false
                    break
                }
                if i > 0 { joined.append(SubjectID.partSeparator) }
                _ = scanner.withCanonicalValue(i, in: doc) { joined.append(contentsOf: $0) }
            }
            if whole { subject = hasher.key(forBytes: normalization.apply(joined)) }
            var edits: [Edit] = []
            var notScalar: Int?
            for f in 0..<piiFields.count {
                let m = scanner.match(k + f)
                let at = lineStart
                switch (mode, m.kind) {
                case (_, .absent), (_, .null): continue
                case (.protect, .object), (.protect, .array):
                    if quarantining {
                        notScalar = f
                        break
                    }
                    throw LetheError(
                        .badInput,
                        "field `\(fieldNames[f])` holds an \(m.kind == .object ? "object" : "array"): protect encrypts values; list its leaf fields in `pii`",
                        at: "line \(line)")
                case (.protect, .string):
                    let raw = UnsafeRawBufferPointer(rebasing: doc[m.start..<m.end])
                    if !m.hasEscapes && ProtectedValue.isProtected(raw) {
                        counts.passed += 1
                        continue
                    }
                    let plain = scanner.canonicalValue(k + f, in: doc) ?? []
                    edits.append(Edit(start: at + m.start - 1, end: at + m.end + 1, field: f, kind: .text, bytes: plain))
                case (.protect, .number), (.protect, .bool):
                    edits.append(
                        Edit(
                            start: at + m.start, end: at + m.end, field: f, kind: m.kind == .number ? .number : .literal,
                            bytes: Array(doc[m.start..<m.end])))
                case (.reveal, .string):
                    let raw = UnsafeRawBufferPointer(rebasing: doc[m.start..<m.end])
                    guard !m.hasEscapes && ProtectedValue.isProtected(raw) else {
                        counts.passed += 1
                        continue
                    }
                    edits.append(Edit(start: at + m.start - 1, end: at + m.end + 1, field: f, kind: .text, bytes: Array(raw)))
                default:
                    counts.passed += 1
                }
            }
            if let f = notScalar {
                reject(
                    buf, lineStart..<next, line: line, [RecordViolation(line: line, field: fieldNames[f], rule: "pii:scalar")], readable: readable,
                    into: &records)
                lineStart = next
                continue
            }
            if !edits.isEmpty && subject == nil, case .protect = mode {
                if quarantining {
                    let v = RecordViolation(line: line, field: subjectFields.map(\.description).joined(separator: ","), rule: "subject")
                    reject(buf, lineStart..<next, line: line, [v], readable: readable, into: &records)
                    lineStart = next
                    continue
                }
                throw LetheError(
                    .badInput,
                    "field `\(fieldNames[edits[0].field])` holds a value but the record has no subject (`\(subjectFields.map(\.description).joined(separator: "`, `"))`): no key to encrypt it with",
                    at: "line \(line)")
            }
            edits.sort { $0.start < $1.start }  // paths match in any key order
            if !edits.isEmpty { records.append(Record(subject: subject, edits: edits, line: line)) }
            lineStart = next
        }
        return lineStart
    }

    // MARK: CSV

    /// A field of a CSV record: its raw span (quotes included) and whether it is quoted.
    struct Span {
        var start: Int
        var end: Int
        var quoted: Bool
    }

    /// The fields of the record at `start` and where the next one starts; nil when the record is not
    /// complete in the buffer (and `isFinal` is false).
    static func csvRecord(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int, delimiter d: UInt8, isFinal: Bool, into fields: inout [Span]) throws
        -> Int?
    {
        fields.removeAll(keepingCapacity: true)
        var i = start
        while true {
            let fieldStart = i
            if i < n && p[i] == 0x22 {
                i += 1
                while true {
                    guard i < n else {
                        if isFinal { throw LetheError(.badInput, "unterminated quoted field") }
                        return nil
                    }
                    if p[i] == 0x22 {
                        if i + 1 < n && p[i + 1] == 0x22 {
                            i += 2
                            continue
                        }
                        if i + 1 >= n && !isFinal { return nil }  // a doubled quote may straddle the chunk
                        i += 1
                        break
                    }
                    i += 1
                }
                // After the closing quote: the delimiter, the line end (CR LF or LF), or the end of input.
                let end = i
                if i == n {
                    if !isFinal { return nil }
                    fields.append(Span(start: fieldStart, end: end, quoted: true))
                    return n
                }
                if p[i] == 0x0D {
                    if i + 1 == n {
                        if !isFinal { return nil }
                        fields.append(Span(start: fieldStart, end: end, quoted: true))
                        return n
                    }
                    if p[i + 1] == 0x0A { i += 1 }
                }
                guard p[i] == d || p[i] == 0x0A else {
                    throw LetheError(.badInput, "unexpected character after a quoted field (byte \(i - start + 1) of the record)")
                }
                fields.append(Span(start: fieldStart, end: end, quoted: true))
            } else {
                while i < n && p[i] != d && p[i] != 0x0A { i += 1 }
                if i == n && !isFinal { return nil }
                var end = i
                if end > fieldStart && p[end - 1] == 0x0D && (i == n || p[i] == 0x0A) { end -= 1 }
                fields.append(Span(start: fieldStart, end: end, quoted: false))
            }
            if i >= n { return n }
            if p[i] == 0x0A { return i + 1 }
            i += 1  // the delimiter
        }
    }

    /// A field's content: without its quotes, `""` read as `"`.
    static func content(_ p: UnsafePointer<UInt8>, _ s: Span) -> [UInt8] {
        guard s.quoted else { return Array(UnsafeBufferPointer(start: p + s.start, count: s.end - s.start)) }
        var out: [UInt8] = []
        var i = s.start + 1
        let last = s.end - 1
        while i < last {
            out.append(p[i])
            i += p[i] == 0x22 ? 2 : 1
        }
        return out
    }

    private func scanCSV(_ buf: UnsafeRawBufferPointer, delimiter: UInt8, isFinal: Bool, into records: inout [Record]) throws -> Int {
        guard let raw = buf.baseAddress, buf.count > 0 else { return 0 }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        let n = buf.count
        var at = 0
        var fields: [Span] = []
        var joined: [UInt8] = []
        while at < n {
            let next: Int
            do {
                guard let nx = try Self.csvRecord(p, at, n, delimiter: delimiter, isFinal: isFinal, into: &fields) else { break }
                next = nx
            } catch let e as LetheError {
                throw LetheError(.badInput, e.message, at: "record \(line + 1)")
            }
            line += 1
            let recordLine = physicalLine + 1
            if validator != nil {
                var i = at
                while i < next, let nl = memchr(p + i, 0x0A, next - i) {
                    physicalLine += 1
                    i = UnsafeRawPointer(nl) - raw + 1
                }
                if next == n && (next == at || p[next - 1] != 0x0A) { physicalLine += 1 }  // a last line without its end
            }
            guard let columns = csvColumns else {
                // The header: column names (a UTF-8 BOM before the first is not part of it).
                var names = fields.map { String(decoding: Self.content(p, $0), as: UTF8.self) }
                if let first = names.first, first.hasPrefix("\u{FEFF}") { names[0] = String(first.dropFirst()) }
                var subject: [Int] = []
                for f in subjectFields {
                    guard let i = names.firstIndex(of: f.description) else {
                        throw LetheError(.badInput, "the header has no subject column `\(f)` (dataset `\(dataset)`)", at: "record 1")
                    }
                    subject.append(i)
                }
                csvColumns = (subject, piiFields.map { names.firstIndex(of: $0.description) })
                if quarantining, let validator {
                    csvHeader = Array(UnsafeRawBufferPointer(start: p + at, count: next - at))
                    try validator.header(UnsafeRawBufferPointer(start: p + at, count: next - at))
                }
                at = next
                continue
            }
            // A blank line is not a record.
            if fields.count == 1 && fields[0].end == fields[0].start {
                at = next
                continue
            }
            counts.records += 1
            if quarantining, let validator {
                var end = next
                if end > at && p[end - 1] == 0x0A { end -= 1 }
                if end > at && p[end - 1] == 0x0D { end -= 1 }
                let found = validator.check(UnsafeRawBufferPointer(start: p + at, count: end - at), line: recordLine)
                if !found.isEmpty {
                    reject(buf, at..<next, line: recordLine, found, into: &records)
                    at = next
                    continue
                }
            }
            var subject: SubjectKey?
            joined.removeAll(keepingCapacity: true)
            var whole = true
            for (j, c) in columns.subject.enumerated() {
                guard c < fields.count else {
                    whole = false
                    break
                }
                let v = Self.content(p, fields[c])
                if v.isEmpty {
                    whole = false
                    break
                }
                if j > 0 { joined.append(SubjectID.partSeparator) }
                joined += v
            }
            if whole { subject = hasher.key(forBytes: normalization.apply(joined)) }
            var edits: [Edit] = []
            for (f, column) in columns.pii.enumerated() {
                guard let c = column, c < fields.count else { continue }
                let s = fields[c]
                let v = Self.content(p, s)
                if v.isEmpty { continue }
                let isProtected = ProtectedValue.isProtected(v)
                switch mode {
                case .protect:
                    if isProtected {
                        counts.passed += 1
                        continue
                    }
                    edits.append(Edit(start: s.start, end: s.end, field: f, kind: .text, bytes: v))
                case .reveal:
                    guard isProtected else {
                        counts.passed += 1
                        continue
                    }
                    edits.append(Edit(start: s.start, end: s.end, field: f, kind: .text, bytes: v))
                }
            }
            if !edits.isEmpty && subject == nil, case .protect = mode {
                if quarantining {
                    let v = RecordViolation(line: recordLine, field: subjectFields.map(\.description).joined(separator: ","), rule: "subject")
                    reject(buf, at..<next, line: recordLine, [v], into: &records)
                    at = next
                    continue
                }
                throw LetheError(
                    .badInput,
                    "column `\(fieldNames[edits[0].field])` holds a value but the record has no subject (`\(subjectFields.map(\.description).joined(separator: "`, `"))`): no key to encrypt it with",
                    at: "record \(line)")
            }
            if !edits.isEmpty { records.append(Record(subject: subject, edits: edits, line: line)) }
            at = next
        }
        return at
    }
}
