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

extension CryptoCounts {
    mutating func add(_ o: CryptoCounts) {
        records += o.records
        values += o.values
        passed += o.passed
        forgotten += o.forgotten
        failed += o.failed
        bytes += o.bytes
        quarantined += o.quarantined
    }
}

/// Encrypts (protect) or decrypts (reveal) the PII fields of a record stream, per subject, on bytes
/// (docs/crypto-shredding.md). Every byte outside the PII values passes through unchanged: other
/// fields, key order, whitespace, line endings, blank lines. Records are handled a chunk at a time:
/// one scan finds each record's subject and PII values (flat `Op`s: byte ranges, no copy of a value
/// unless it had to be unescaped), the chunk's distinct subjects' keys are fetched in one call and
/// each is prepared once (`ValueSealer` slots), then the output is written into one reused buffer,
/// each value sealed or opened in place.
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
    /// This stream's nonces (one `getrandom` per 341 values).
    let nonces = NonceSource()
    /// Seals and opens this stream's values: a prepared key per distinct subject of a chunk (speed).
    let sealer: ValueSealer

    let hasher: SubjectHasher
    /// The dataset's `normalize:`, applied to a subject's value before it is keyed, as the index keys it
    /// (otherwise a subject typed in another normal form would find no key to destroy).
    let normalization: Normalization
    let keys: any DataKeySource
    let fieldNames: [String]
    let scanner: JSONFieldScanner?
    let isProtect: Bool
    let isJSON: Bool
    /// Lines (JSONL) or records (CSV, header included) consumed so far: error locations.
    var line: Int64 = 0
    /// CSV: the column of each subject part and PII field, from the header (nil until it is read).
    var csvColumns: (subject: [Int], pii: [Int?])?
    /// The per-chunk work lists, kept between chunks for their capacity (moved out while a chunk runs).
    var chunk = Chunk()
    /// The output of a chunk, and the opened value of `reveal`, before they are copied out.
    var output: UnsafeMutablePointer<UInt8>
    var outputCapacity = 1 << 16
    var opened: UnsafeMutablePointer<UInt8>
    var openedCapacity = 1 << 12

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
        if case .protect = mode { isProtect = true } else { isProtect = false }
        isJSON = format == .jsonl
        output = .allocate(capacity: outputCapacity)
        opened = .allocate(capacity: openedCapacity)
        if case .csv = format {
            if let f = (subject + fields).first(where: { $0.components.count != 1 }) {
                throw LetheError(.badInput, "dataset `\(dataset)`: field `\(f)` is a dotted path; a CSV dataset names columns")
            }
            scanner = nil
        } else {
            scanner = JSONFieldScanner(paths: subject + fields)
        }
    }

    /// Whether the crypter holds `subject`'s prepared key: only a subject of the last chunk whose key the
    /// key source gave for that chunk (tests: a destroyed key is held by no crypter after its next chunk).
    public func holdsPreparedKey(for subject: SubjectKey) -> Bool {
        guard let i = chunk.subjects.firstIndex(of: subject), i < chunk.slot.count else { return false }
        return chunk.slot[i] >= 0 && Int(chunk.slot[i]) < sealer.live
    }
    /// Keys prepared so far, slots holding a prepared key now, and slots allocated.
    public var keySlots: (prepared: Int, live: Int, allocated: Int) { (sealer.prepared, sealer.live, sealer.slotCount) }

    deinit {
        output.deallocate()
        opened.deallocate()
    }

    /// One value to rewrite, or one record to leave out (`field` < 0): the byte range it replaces in
    /// the chunk, and the value's bytes (protect: the plaintext; reveal: the protected text) in the
    /// chunk or, when they had to be unescaped, in `Chunk.plain`.
    struct Op {
        var start: Int
        var end: Int
        var valueStart: Int
        var valueEnd: Int
        var line: Int64
        /// Index into `Chunk.subjects` (the value's prepared key); -1 when the record has no subject.
        var subject: Int32
        var field: Int32
        var kind: ProtectedValue.Kind
        var unescaped: Bool

        static func drop(_ range: Range<Int>, line: Int64) -> Op {
            Op(start: range.lowerBound, end: range.upperBound, valueStart: 0, valueEnd: 0, line: line, subject: -1, field: -1, kind: .text, unescaped: false)
        }
    }

    /// A chunk's work: its ops in input order, unescaped values, distinct subjects (interned through an
    /// open-addressing table on the subject key's first 64 bits) and which of them have a key.
    struct Chunk {
        var ops: [Op] = []
        var plain: [UInt8] = []
        var subjects: [SubjectKey] = []
        var table: [Int32] = [Int32](repeating: 0, count: 4096)
        var ready: [Bool] = []
        /// The sealer slot of each subject (-1: no key).
        var slot: [Int32] = []
        /// The key source's answer for `subjects` (wiped once the keys are prepared).
        var keys = DataKeyBatch()
        var joined: [UInt8] = []
        var fields: [Span] = []
        var counts = CryptoCounts()
        /// The chunk's raw subject values (the bytes the keyed hash is taken of), each keyed once: an
        /// open-addressing table on a seeded hash of the bytes, the bytes in one arena. A subject seen
        /// again in the chunk costs a hash and a compare instead of an HMAC-SHA-256 (two SHA-256 blocks).
        /// The values are keyed together once the chunk is scanned (`keyRaw`: short values two HMACs at
        /// a time); until then an op's `subject` is its raw value's index, then its index among `subjects`.
        var rawTable: [Int32] = [Int32](repeating: 0, count: 4096)
        var rawBytes: [UInt8] = []
        /// Value `i`'s bytes are `rawBytes[rawStart[i]..<rawStart[i + 1]]`.
        var rawStart: [Int] = [0]
        var rawHash: [UInt64] = []
        var rawKey: [SubjectKey] = []
        /// `keyRaw`'s HMAC outputs (capacity kept).
        var digests: [UInt8] = []
        /// Values whose dataset normalisation changed their bytes: keyed at once, from the normal form.
        var rawNormalized: [(Int, SubjectKey)] = []
        /// Index into `subjects`, -1 until a record of the value has an op.
        var rawSubject: [Int32] = []
        /// Per crypter: a chunk's worst case under chosen subject values stays a guess.
        let rawSeed = UInt64.random(in: 1...UInt64.max)

        mutating func reset() {
            ops.removeAll(keepingCapacity: true)
            plain.removeAll(keepingCapacity: true)
            if !subjects.isEmpty {
                table.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                subjects.removeAll(keepingCapacity: true)
            }
            ready.removeAll(keepingCapacity: true)
            slot.removeAll(keepingCapacity: true)
            counts = CryptoCounts()
            if !rawHash.isEmpty {
                rawTable.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                rawBytes.removeAll(keepingCapacity: true)
                rawStart.removeAll(keepingCapacity: true)
                rawStart.append(0)
                rawHash.removeAll(keepingCapacity: true)
                rawKey.removeAll(keepingCapacity: true)
                rawSubject.removeAll(keepingCapacity: true)
                rawNormalized.removeAll(keepingCapacity: true)
            }
        }

        @inline(__always)
        func rawHashOf(_ b: UnsafeRawBufferPointer) -> UInt64 {
            var h = rawSeed ^ (UInt64(b.count) &* 0x9E37_79B9_7F4A_7C15)
            let n = b.count
            var i = 0
            while i + 8 <= n {
                h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 29
                i += 8
            }
            var t: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                t |= UInt64(b[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ t) &* 0x94D0_49BB_1331_11EB
            return h ^ (h >> 32)
        }

        /// The entry of raw subject value `b` (`normalized` gives its key when the dataset's
        /// normalisation changes its bytes; the others are keyed by `keyRaw`).
        mutating func rawEntry(_ b: UnsafeRawBufferPointer, normalized: (UnsafeRawBufferPointer) -> SubjectKey?) -> Int32 {
            let h = rawHashOf(b)
            if (rawHash.count + 1) * 2 > rawTable.count {
                rawTable = [Int32](repeating: 0, count: rawTable.count * 2)
                let mask = rawTable.count - 1
                for (i, hash) in rawHash.enumerated() {
                    var at = Int(truncatingIfNeeded: hash) & mask
                    while rawTable[at] != 0 { at = (at + 1) & mask }
                    rawTable[at] = Int32(i + 1)
                }
            }
            let mask = rawTable.count - 1
            var at = Int(truncatingIfNeeded: h) & mask
            while true {
                let e = rawTable[at]
                if e == 0 { break }
                let r = Int(e) - 1
                if rawHash[r] == h {
                    let start = Int(rawStart[r])
                    let n = Int(rawStart[r + 1]) - start
                    if n == b.count && (n == 0 || rawBytes.withUnsafeBytes({ memcmp($0.baseAddress! + start, b.baseAddress!, n) == 0 })) { return Int32(r) }
                }
                at = (at + 1) & mask
            }
            let r = rawHash.count
            rawTable[at] = Int32(r + 1)
            rawHash.append(h)
            rawBytes.append(contentsOf: b)
            rawStart.append(rawBytes.count)
            if let k = normalized(b) { rawNormalized.append((r, k)) }
            rawSubject.append(-1)
            return Int32(r)
        }

        /// Keys the chunk's raw subject values (HMACs two at a time), then gives each op the index of
        /// its subject key among `subjects` (interned in op order).
        mutating func keyRaw(_ hasher: SubjectHasher) {
            guard !rawHash.isEmpty else { return }
            rawBytes.withUnsafeBytes { b in rawStart.withUnsafeBufferPointer { hasher.keys(bytes: b, offsets: $0, scratch: &digests, into: &rawKey) } }
            for (r, k) in rawNormalized { rawKey[r] = k }
            for i in ops.indices {
                let raw = ops[i].subject
                guard raw >= 0 else { continue }
                var s = rawSubject[Int(raw)]
                if s < 0 {
                    s = intern(rawKey[Int(raw)])
                    rawSubject[Int(raw)] = s
                }
                ops[i].subject = s
            }
        }

        /// The index of `s` among the chunk's subjects (added when new).
        mutating func intern(_ s: SubjectKey) -> Int32 {
            if (subjects.count + 1) * 2 > table.count {
                table = [Int32](repeating: 0, count: table.count * 2)
                let mask = table.count - 1
                for (i, t) in subjects.enumerated() {
                    var h = Int(truncatingIfNeeded: t.prefix64) & mask
                    while table[h] != 0 { h = (h + 1) & mask }
                    table[h] = Int32(i + 1)
                }
            }
            let mask = table.count - 1
            var h = Int(truncatingIfNeeded: s.prefix64) & mask
            while true {
                let e = table[h]
                if e == 0 {
                    subjects.append(s)
                    table[h] = Int32(subjects.count)
                    return Int32(subjects.count - 1)
                }
                if subjects[Int(e) - 1] == s { return e - 1 }
                h = (h + 1) & mask
            }
        }

        /// Gives the ops `from…` the record's raw subject value and line, in input order (paths match in
        /// any key order).
        mutating func finishRecord(from first: Int, raw: Int32, line: Int64) {
            for i in first..<ops.count {
                ops[i].subject = raw
                ops[i].line = line
            }
            var i = first + 1
            while i < ops.count {
                let op = ops[i]
                var j = i
                while j > first && ops[j - 1].start > op.start {
                    ops[j] = ops[j - 1]
                    j -= 1
                }
                ops[j] = op
                i += 1
            }
        }
    }

    private var quarantining: Bool { isProtect && validator != nil }

    /// Keeps a failing record aside (its bytes, with a line end) and notes it to leave it out.
    /// `readable`: the record can be read as one of the dataset's (for JSON Lines, each subject field
    /// is present and a string, number or null, as indexing requires); one that cannot goes to
    /// `unparsed`, with the records that are not JSON.
    private func reject(
        _ buf: UnsafeRawBufferPointer, _ range: Range<Int>, line: Int64, _ found: [RecordViolation], readable: Bool = true, into c: inout Chunk
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
        c.counts.quarantined += 1
        c.ops.append(.drop(range, line: line))
    }

    /// Processes the complete records of `input` (through its last record end; with `isFinal`, a last
    /// record without one too), appending the output to `out`. Returns the bytes consumed: the caller
    /// passes the rest again, followed by more input. Bad input (malformed JSON, a PII value without a
    /// subject, an object where a value should be) is `.badInput` naming the line and field.
    public func process(_ input: [UInt8], isFinal: Bool, into out: inout [UInt8]) async throws -> Int {
        let (consumed, written) = try await step(input, isFinal: isFinal)
        out.append(contentsOf: UnsafeBufferPointer(start: output, count: written))
        return consumed
    }

    /// The same over bytes the caller owns (they must stay valid and unchanged during the call), without
    /// copies: the output is lent from the crypter's own buffer, valid until its next call (a pipe
    /// writes it from there). Returns the bytes consumed and the output.
    public func process(_ input: UnsafeRawBufferPointer, isFinal: Bool) async throws -> (consumed: Int, output: UnsafeRawBufferPointer) {
        let (consumed, written) = try await step(RawInput(bytes: input), isFinal: isFinal)
        return (consumed, UnsafeRawBufferPointer(start: output, count: written))
    }

    /// A chunk's input, read through a scoped pointer (an array) or as given (raw bytes).
    protocol InputBytes {
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
    }

    struct RawInput: InputBytes {
        let bytes: UnsafeRawBufferPointer
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(bytes) }
    }

    /// Scans a chunk, looks up and prepares its subjects' keys, writes its output to `output`.
    /// Returns the bytes consumed and written.
    private func step<I: InputBytes>(_ input: I, isFinal: Bool) async throws -> (Int, Int) {
        var c = Chunk()
        swap(&c, &chunk)
        c.reset()
        defer {
            counts.add(c.counts)
            swap(&c, &chunk)
        }
        let consumed = try input.withBytes { buf -> Int in
            switch format {
            case .jsonl: return try scanLines(buf, isFinal: isFinal, into: &c)
            case .csv(let d): return try scanCSV(buf, delimiter: d, isFinal: isFinal, into: &c)
            }
        }
        c.keyRaw(hasher)
        // One key lookup for the chunk's distinct subjects (answered into an array aligned with them);
        // each found key prepared once for the chunk. The sealer then holds this chunk's keys only.
        if !c.subjects.isEmpty {
            var batch = DataKeyBatch()
            var slot: [Int32] = []
            var ready: [Bool] = []
            swap(&batch, &c.keys)
            swap(&slot, &c.slot)
            swap(&ready, &c.ready)
            defer {
                batch.wipe()
                swap(&batch, &c.keys)
                swap(&slot, &c.slot)
                swap(&ready, &c.ready)
            }
            let subjects = c.subjects
            try await keys.dataKeys(for: subjects, create: isProtect, into: &batch)
            let sealer = self.sealer
            try batch.material.withUnsafeBytes { m in
                let base = m.baseAddress!
                var next = 0
                for i in subjects.indices {
                    if batch.found[i] {
                        try sealer.prepare(slot: next, material: base + i * DataKeyBatch.stride, subject: subjects[i])
                        slot.append(Int32(next))
                        ready.append(true)
                        next += 1
                    } else {
                        slot.append(-1)
                        ready.append(false)
                    }
                }
                sealer.wipe(from: next)
            }
        } else {
            sealer.wipe()
        }
        let w = try input.withBytes { buf in try write(buf, consumed: consumed, &c) }
        c.counts.bytes += Int64(consumed)
        return (consumed, w)
    }

    /// Convenience: a whole buffer (a last record without its end included) into a new array.
    public func process(_ input: [UInt8]) async throws -> [UInt8] {
        var out: [UInt8] = []
        _ = try await process(input, isFinal: true, into: &out)
        return out
    }

    // MARK: Writing

    /// Grows `output` (and `opened`) to hold the chunk's output at its largest; writes it; returns its length.
    private func write(_ input: UnsafeRawBufferPointer, consumed: Int, _ c: inout Chunk) throws -> Int {
        let protect = isProtect
        let json = isJSON
        var marker: [UInt8]? = nil
        var nullOnError = false
        if case .reveal(let m, let n) = mode {
            marker = m
            nullOnError = n
        }
        let markerRoom = 6 * (marker?.count ?? 0) + 6
        var bound = consumed
        var largest = 0
        for op in c.ops where op.field >= 0 {
            let n = op.valueEnd - op.valueStart
            bound += protect ? ValueSealer.sealedLength(n) + 2 : 6 * n + markerRoom
            largest = max(largest, n)
        }
        if bound > outputCapacity {
            output.deallocate()
            outputCapacity = max(bound, outputCapacity * 2)
            output = .allocate(capacity: outputCapacity)
        }
        if largest + 16 > openedCapacity {
            opened.deallocate()
            openedCapacity = max(largest + 16, openedCapacity * 2)
            opened = .allocate(capacity: openedCapacity)
        }
        let o = output
        let value = opened
        let slots = sealer.slots
        guard let inp = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let csvDelimiter: UInt8
        if case .csv(let d) = format { csvDelimiter = d } else { csvDelimiter = 0 }
        var values: Int64 = 0, forgotten: Int64 = 0, failed: Int64 = 0
        defer {
            c.counts.values += values
            c.counts.forgotten += forgotten
            c.counts.failed += failed
        }
        let ops = c.ops
        let ready = c.ready
        let slotOf = c.slot
        return try c.plain.withUnsafeBufferPointer { plainBuf -> Int in
            let plain = plainBuf.baseAddress ?? inp
            var w = 0
            var at = 0
            func absent(_ marker: [UInt8]?) {
                if json {
                    if let marker {
                        let at = o + w
                        w += marker.withUnsafeBufferPointer { Self.quoteJSON($0.baseAddress ?? inp, $0.count, to: at) }
                    } else {
                        (o + w).update(from: Self.null, count: 4)
                        w += 4
                    }
                } else if let marker {
                    let at = o + w
                    w += marker.withUnsafeBufferPointer { Self.quoteCSV($0.baseAddress ?? inp, $0.count, delimiter: csvDelimiter, to: at) }
                }
            }
            for op in ops {
                (o + w).update(from: inp + at, count: op.start - at)
                w += op.start - at
                at = op.end
                if op.field < 0 { continue }  // a record kept aside
                let v = UnsafeRawBufferPointer(start: (op.unescaped ? plain : inp) + op.valueStart, count: op.valueEnd - op.valueStart)
                let hasKey = op.subject >= 0 && ready[Int(op.subject)]
                if protect {
                    guard hasKey else { throw LetheError(.failure, "no data key for a record's subject", at: "line \(op.line)") }
                    if json {
                        o[w] = 0x22
                        w += 1
                    }
                    let nonce = try nonces.nextNonce()
                    let n = try sealer.seal(v, kind: op.kind, slot: slots[Int(slotOf[Int(op.subject)])], field: Int(op.field), nonce: nonce, to: o + w)
                    w += n
                    if json {
                        o[w] = 0x22
                        w += 1
                    }
                    values += 1
                    continue
                }
                guard hasKey else {
                    forgotten += 1
                    absent(marker)
                    continue
                }
                do {
                    let (kind, n) = try sealer.open(v, slot: slots[Int(slotOf[Int(op.subject)])], field: Int(op.field), to: value)
                    if json {
                        if kind == .text {
                            let written = Self.quoteJSON(value, n, to: o + w)
                            w += written
                        } else {
                            (o + w).update(from: value, count: n)
                            w += n
                        }
                    } else {
                        let written = Self.quoteCSV(value, n, delimiter: csvDelimiter, to: o + w)
                        w += written
                    }
                    values += 1
                } catch let err as LetheError where err.code == .notFound {
                    forgotten += 1  // sealed by an earlier key of the subject, destroyed since
                    absent(marker)
                } catch let err as LetheError {
                    guard nullOnError else {
                        throw LetheError(.corrupt, err.message, at: "\(json ? "line" : "record") \(op.line), field `\(fieldNames[Int(op.field)])`")
                    }
                    failed += 1
                    absent(nil)
                }
            }
            (o + w).update(from: inp + at, count: consumed - at)
            return w + consumed - at
        }
    }

    static let null: [UInt8] = Array("null".utf8)
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes a JSON string of UTF-8 bytes at `o` (quotes, backslashes and control characters
    /// escaped; at most 6 × n + 2 bytes); returns its length.
    static func quoteJSON(_ v: UnsafePointer<UInt8>, _ n: Int, to o: UnsafeMutablePointer<UInt8>) -> Int {
        o[0] = 0x22
        if !needsEscapes(v, n) {  // most values: copied whole
            (o + 1).update(from: v, count: n)
            o[n + 1] = 0x22
            return n + 2
        }
        var w = 1
        for i in 0..<n {
            let c = v[i]
            switch c {
            case 0x22, 0x5C:
                o[w] = 0x5C
                o[w + 1] = c
                w += 2
            case 0x0A:
                o[w] = 0x5C
                o[w + 1] = UInt8(ascii: "n")
                w += 2
            case 0x0D:
                o[w] = 0x5C
                o[w + 1] = UInt8(ascii: "r")
                w += 2
            case 0x09:
                o[w] = 0x5C
                o[w + 1] = UInt8(ascii: "t")
                w += 2
            case 0..<0x20:
                o[w] = 0x5C
                o[w + 1] = UInt8(ascii: "u")
                o[w + 2] = 0x30
                o[w + 3] = 0x30
                o[w + 4] = hex[Int(c >> 4)]
                o[w + 5] = hex[Int(c & 15)]
                w += 6
            default:
                o[w] = c
                w += 1
            }
        }
        o[w] = 0x22
        return w + 1
    }

    /// Whether any of `n` bytes at `v` is a quote, a backslash or a control character (below 0x20): 8
    /// bytes a step (a zero byte of `x ^ c` is a byte equal to `c`; a byte below 0x20 borrows when
    /// 0x20 is subtracted; the tests tell whether such a byte exists, exactly).
    @inline(__always)
    static func needsEscapes(_ v: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func flagged(_ x: UInt64) -> Bool {
            let quote = x ^ (ones &* 0x22)
            let backslash = x ^ (ones &* 0x5C)
            let t = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((x &- ones &* 0x20) & ~x)
            return t & high != 0
        }
        let raw = UnsafeRawPointer(v)
        var i = 0
        while i + 8 <= n {
            if flagged(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return true }
            i += 8
        }
        while i < n {
            let c = v[i]
            if c < 0x20 || c == 0x22 || c == 0x5C { return true }
            i += 1
        }
        return false
    }

    /// Writes a CSV field at `o`: quoted (quotes doubled) when it holds the delimiter, a quote, CR or
    /// LF (at most 2 × n + 2 bytes); returns its length.
    static func quoteCSV(_ v: UnsafePointer<UInt8>, _ n: Int, delimiter: UInt8, to o: UnsafeMutablePointer<UInt8>) -> Int {
        var plain = true
        for i in 0..<n {
            let c = v[i]
            if c == delimiter || c == 0x22 || c == 0x0A || c == 0x0D {
                plain = false
                break
            }
        }
        if plain {
            o.update(from: v, count: n)
            return n
        }
        o[0] = 0x22
        var w = 1
        for i in 0..<n {
            if v[i] == 0x22 {
                o[w] = 0x22
                w += 1
            }
            o[w] = v[i]
            w += 1
        }
        o[w] = 0x22
        return w + 1
    }

    /// The subject key of a subject's canonical bytes when the dataset's normalisation changes them
    /// (nil: the bytes are keyed as they are, with the chunk's others).
    @inline(__always)
    private func normalizedKey(_ b: UnsafeRawBufferPointer) -> SubjectKey? {
        if let n = normalization.apply(b) { return hasher.key(forBytes: n) }
        return nil
    }

    // MARK: JSON Lines

    private func scanLines(_ buf: UnsafeRawBufferPointer, isFinal: Bool, into c: inout Chunk) throws -> Int {
        guard let base = buf.baseAddress, buf.count > 0, let scanner else { return 0 }
        let n = buf.count
        let k = subjectFields.count
        let piiCount = piiFields.count
        let protect = isProtect
        let quarantining = self.quarantining
        let validator = self.validator
        var line = self.line
        defer { self.line = line }
        var lineStart = 0
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
                    c.counts.records += 1
                    reject(buf, lineStart..<next, line: line, [RecordViolation(line: line, field: "-", rule: "json")], into: &c)
                    lineStart = next
                    continue
                }
                throw LetheError(.badInput, "malformed JSON: \(error.reason.rawValue) at byte \(error.offset + 1) of the line", at: "line \(line)")
            }
            c.counts.records += 1
            // Indexing reads a record whose subject fields are each present and a string, number or null.
            var readable = true
            for i in 0..<k {
                let kind = scanner.match(i).kind
                if !(kind == .string || kind == .number || kind == .null) { readable = false }
            }
            if quarantining, let validator {
                let found = validator.check(doc, line: line)
                if !found.isEmpty {
                    reject(buf, lineStart..<next, line: line, found, readable: readable, into: &c)
                    lineStart = next
                    continue
                }
            }
            // The subject's raw value (composite parts joined by 0x1F) as an entry of the chunk's; -1 when a
            // part is absent, null, empty or not a scalar.
            var subject: Int32 = -1
            if k == 1 {
                let m = scanner.match(0)
                if m.kind.isScalarValue && m.end > m.start {
                    if m.hasEscapes {
                        subject = scanner.withCanonicalValue(0, in: doc) { c.rawEntry($0, normalized: normalizedKey) } ?? -1
                    } else {
                        subject = c.rawEntry(UnsafeRawBufferPointer(rebasing: doc[m.start..<m.end]), normalized: normalizedKey)
                    }
                }
            } else {
                c.joined.removeAll(keepingCapacity: true)
                var whole = true
                for i in 0..<k {
                    let m = scanner.match(i)
                    guard m.kind.isScalarValue, m.end > m.start else {
                        whole = false
                        break
                    }
                    if i > 0 { c.joined.append(SubjectID.partSeparator) }
                    _ = scanner.withCanonicalValue(i, in: doc) { c.joined.append(contentsOf: $0) }
                }
                if whole {
                    var joined: [UInt8] = []
                    swap(&joined, &c.joined)
                    subject = joined.withUnsafeBytes { c.rawEntry($0, normalized: normalizedKey) }
                    swap(&joined, &c.joined)
                }
            }
            let first = c.ops.count
            var notScalar: Int?
            for f in 0..<piiCount {
                let m = scanner.match(k + f)
                let at = lineStart
                switch (protect, m.kind) {
                case (_, .absent), (_, .null): continue
                case (true, .object), (true, .array):
                    if quarantining {
                        notScalar = f
                        break
                    }
                    throw LetheError(
                        .badInput,
                        "field `\(fieldNames[f])` holds an \(m.kind == .object ? "object" : "array"): protect encrypts values; list its leaf fields in `pii`",
                        at: "line \(line)")
                case (true, .string):
                    let raw = UnsafeRawBufferPointer(rebasing: doc[m.start..<m.end])
                    if !m.hasEscapes && ProtectedValue.isProtected(raw) {
                        c.counts.passed += 1
                        continue
                    }
                    var op = Op(
                        start: at + m.start - 1, end: at + m.end + 1, valueStart: at + m.start, valueEnd: at + m.end, line: line, subject: -1,
                        field: Int32(f), kind: .text, unescaped: false)
                    if m.hasEscapes {
                        op.valueStart = c.plain.count
                        _ = scanner.withCanonicalValue(k + f, in: doc) { c.plain.append(contentsOf: $0) }
                        op.valueEnd = c.plain.count
                        op.unescaped = true
                    }
                    c.ops.append(op)
                case (true, .number), (true, .bool):
                    c.ops.append(
                        Op(
                            start: at + m.start, end: at + m.end, valueStart: at + m.start, valueEnd: at + m.end, line: line, subject: -1, field: Int32(f),
                            kind: m.kind == .number ? .number : .literal, unescaped: false))
                case (false, .string):
                    let raw = UnsafeRawBufferPointer(rebasing: doc[m.start..<m.end])
                    guard !m.hasEscapes && ProtectedValue.isProtected(raw) else {
                        c.counts.passed += 1
                        continue
                    }
                    c.ops.append(
                        Op(
                            start: at + m.start - 1, end: at + m.end + 1, valueStart: at + m.start, valueEnd: at + m.end, line: line, subject: -1,
                            field: Int32(f), kind: .text, unescaped: false))
                default:
                    c.counts.passed += 1
                }
            }
            if let f = notScalar {
                c.ops.removeSubrange(first...)
                reject(
                    buf, lineStart..<next, line: line, [RecordViolation(line: line, field: fieldNames[f], rule: "pii:scalar")], readable: readable, into: &c)
                lineStart = next
                continue
            }
            if c.ops.count > first && subject < 0 && protect {
                if quarantining {
                    c.ops.removeSubrange(first...)
                    let v = RecordViolation(line: line, field: subjectFields.map(\.description).joined(separator: ","), rule: "subject")
                    reject(buf, lineStart..<next, line: line, [v], readable: readable, into: &c)
                    lineStart = next
                    continue
                }
                throw LetheError(
                    .badInput,
                    "field `\(fieldNames[Int(c.ops[first].field)])` holds a value but the record has no subject (`\(subjectFields.map(\.description).joined(separator: "`, `"))`): no key to encrypt it with",
                    at: "line \(line)")
            }
            if c.ops.count > first { c.finishRecord(from: first, raw: subject, line: line) }
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

    /// Appends a field's content (without its quotes, `""` read as `"`) to `out`.
    static func appendContent(_ p: UnsafePointer<UInt8>, _ s: Span, to out: inout [UInt8]) {
        guard s.quoted else {
            out.append(contentsOf: UnsafeBufferPointer(start: p + s.start, count: s.end - s.start))
            return
        }
        var i = s.start + 1
        let last = s.end - 1
        while i < last {
            out.append(p[i])
            i += p[i] == 0x22 ? 2 : 1
        }
    }

    private func scanCSV(_ buf: UnsafeRawBufferPointer, delimiter: UInt8, isFinal: Bool, into c: inout Chunk) throws -> Int {
        guard let raw = buf.baseAddress, buf.count > 0 else { return 0 }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        let n = buf.count
        let protect = isProtect
        let quarantining = self.quarantining
        var at = 0
        var fields = c.fields
        defer { c.fields = fields }
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
            c.counts.records += 1
            if quarantining, let validator {
                var end = next
                if end > at && p[end - 1] == 0x0A { end -= 1 }
                if end > at && p[end - 1] == 0x0D { end -= 1 }
                let found = validator.check(UnsafeRawBufferPointer(start: p + at, count: end - at), line: recordLine)
                if !found.isEmpty {
                    reject(buf, at..<next, line: recordLine, found, into: &c)
                    at = next
                    continue
                }
            }
            var subject: Int32 = -1
            c.joined.removeAll(keepingCapacity: true)
            var whole = true
            for (j, col) in columns.subject.enumerated() {
                guard col < fields.count else {
                    whole = false
                    break
                }
                let before = c.joined.count
                if j > 0 { c.joined.append(SubjectID.partSeparator) }
                let partStart = c.joined.count
                Self.appendContent(p, fields[col], to: &c.joined)
                if c.joined.count == partStart {
                    c.joined.removeSubrange(before...)
                    whole = false
                    break
                }
            }
            if whole {
                var joined: [UInt8] = []
                swap(&joined, &c.joined)
                subject = joined.withUnsafeBytes { c.rawEntry($0, normalized: normalizedKey) }
                swap(&joined, &c.joined)
            }
            let first = c.ops.count
            for (f, column) in columns.pii.enumerated() {
                guard let col = column, col < fields.count else { continue }
                let s = fields[col]
                var op = Op(
                    start: s.start, end: s.end, valueStart: s.start, valueEnd: s.end, line: line, subject: -1, field: Int32(f), kind: .text, unescaped: false)
                if s.quoted {
                    op.valueStart = c.plain.count
                    Self.appendContent(p, s, to: &c.plain)
                    op.valueEnd = c.plain.count
                    op.unescaped = true
                }
                if op.valueEnd == op.valueStart { continue }
                let isProtected =
                    op.unescaped
                    ? c.plain.withUnsafeBytes { ProtectedValue.isProtected(UnsafeRawBufferPointer(rebasing: $0[op.valueStart..<op.valueEnd])) }
                    : ProtectedValue.isProtected(UnsafeRawBufferPointer(start: p + op.valueStart, count: op.valueEnd - op.valueStart))
                if isProtected == protect {
                    c.counts.passed += 1
                    continue
                }
                c.ops.append(op)
            }
            if c.ops.count > first && subject < 0 && protect {
                if quarantining {
                    c.ops.removeSubrange(first...)
                    let v = RecordViolation(line: recordLine, field: subjectFields.map(\.description).joined(separator: ","), rule: "subject")
                    reject(buf, at..<next, line: recordLine, [v], into: &c)
                    at = next
                    continue
                }
                throw LetheError(
                    .badInput,
                    "column `\(fieldNames[Int(c.ops[first].field)])` holds a value but the record has no subject (`\(subjectFields.map(\.description).joined(separator: "`, `"))`): no key to encrypt it with",
                    at: "record \(line)")
            }
            if c.ops.count > first { c.finishRecord(from: first, raw: subject, line: line) }
            at = next
        }
        return at
    }
}

extension Array: RecordCrypter.InputBytes where Element == UInt8 {
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try withUnsafeBytes(body) }
}
