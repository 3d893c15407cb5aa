public import LetheCore
public import LetheStorage
public import Parquet
import Synchronization

/// Apache Parquet, through the `Parquet` target (see docs/parquet.md).
///
/// The subject field(s) name leaf columns; a nested path such as `user.id` names the
/// leaf `user` → `id`. A value's canonical bytes are its text as people write it
/// (`Parquet.CanonicalText`: `2021-01-03`, `111.11`, ISO 8601 timestamps), so an INT64
/// `123` and a string `"123"` name the same subject. A column inside a list or map keys
/// each row by the one value its elements hold; a row holding several is refused
/// (`unsupported`): dropping it would drop another subject's data. A field that is a
/// partition value of the object (`FormatOptions.constants`) is not read from the file.
/// A composite subject joins its fields' values with 0x1F. A row whose subject value
/// (any part of it) is null has no subject.
///
/// Erase rewrites the file without the subject's rows (untouched row groups copied
/// byte for byte, see `ParquetFile.rewrite(droppingRows:to:)`); a file left with no
/// row is deleted instead.
///
/// Reads: a scan of an object larger than `wholeObjectLimit` reads only its tail (the
/// footer, in one or two ranged reads), its first 4 bytes and the subject column
/// chunks (adjacent ranges coalesced), into a sparse in-memory source; smaller objects
/// are read whole. Erase of an object up to `wholeObjectLimit` reads it whole and writes the
/// rewritten file in one piece; a larger object is never held whole: erase reads the footer and
/// the subject chunks (of the hinted row groups only, with a hint), keys the rows, then reads
/// everything but the untouched row groups (all pinned to the version listed) and streams the
/// rewrite into the store's writer, the untouched row groups by `copyRange` (a kernel copy on a
/// local store). Memory use is then about the touched row groups, not the object.
public struct ParquetFormat: RecordFormat {
    public var name: String { "parquet" }
    /// Objects up to this size are read whole by a scan or an erase.
    public var wholeObjectLimit: Int64
    /// Bytes read from the end of the object first, hoping to get the whole footer.
    public var tailGuess: Int64
    /// Ranges closer than this are read as one.
    public var coalesceGap: Int64

    /// Tests: counts the rows keyed (each `SubjectKeyer.key` of a row's value).
    var keyedRows: KeyedRowCounter?
    /// Tests: counts the rows `match(…rows:)` reads (keyed or compared by value).
    var matchedRows: KeyedRowCounter?
    /// Tests: counts the values handed to `SubjectKeyer.key` (a dictionary entry once per chunk, a
    /// value of a page in another encoding once per row), and `match`'s comparisons of a value with
    /// the raw ids (once per dictionary entry, or per row).
    var keyedValues: KeyedRowCounter?
    /// Tests: key (and compare) every row's value as it comes, without the per-entry tables of
    /// dictionary-encoded chunks — the reference the per-entry path is tested against.
    var perRowKeys = false
    /// Tests: counts the row groups `match` found clean by their dictionary page alone (no row read).
    var dictionaryProofs: KeyedRowCounter?
    /// Threads keying the row groups of one object at once, in a full keying of a one-column subject
    /// (`scan`, an erasure or match keying every row, `unreferencedChunks`): each row group's dictionary
    /// keyed whole on its thread, the rows visited in order (`keysInParallel`). 1: one thread, the
    /// keyer's cache per entry. Hinted keyings (a few rows) stay on one thread.
    public var keyingTasks = ParquetFormat.defaultKeyingTasks
    /// A full keying of fewer rows than this stays on one thread (tests set 0).
    var parallelRowsMinimum: Int64 = 1 << 16
    /// Tests: the keying's helpers on threads of their own (`KeyingPipeline.ownThreads`), so that they run
    /// while the tests' tasks hold the global queue's threads.
    var helpersOnOwnThreads = false

    public init(wholeObjectLimit: Int64 = 1 << 20, tailGuess: Int64 = 64 << 10, coalesceGap: Int64 = 1 << 20) {
        precondition(tailGuess >= 8 && coalesceGap >= 0)
        self.wholeObjectLimit = wholeObjectLimit
        self.tailGuess = tailGuess
        self.coalesceGap = coalesceGap
    }

    public func scan(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        visit: (Int64, SubjectKey) throws -> Void
    ) async throws -> ScanSummary {
        let options = options.resolved(for: object.key)
        let file: ParquetFile
        var prestarted: Prestarted?
        defer { prestarted?.pipeline.finish() }
        if object.size <= wholeObjectLimit {
            file = try open(try await store.read(object.key), object.key)
        } else {
            (file, prestarted) = try await openSparseKeying(object, in: store, options: options, keyer: keyer)
        }
        var summary = ScanSummary()
        summary.bytes = file.source.size
        summary.records = file.numRows
        var unreferenced: [SubjectKey] = []
        summary.recordsWithoutSubject = try keys(
            file, object.key, options, keyer, unreferenced: { _, _, k in unreferenced.append(k) }, prestarted: prestarted
        ) { row, key in
            try visit(row, key)
        }
        summary.unreferenced = unreferenced
        return summary
    }

    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions
    ) async throws -> EraseOutcome {
        try await erase(object, in: store, options: options, keyer: keyer, actions: actions, hint: nil)
    }

    /// With a hint for `object`'s version, only the hinted rows are keyed (reading only the row
    /// groups that hold them, `keys(of:in:…)`); the rows dropped are those of them whose key is dropped.
    public func erase(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        actions: EraseActions, hint: EraseHint?
    ) async throws -> EraseOutcome {
        if !actions.dropsOnly { return try await eraseMasking(object, in: store, options: options, keyer: keyer, actions: actions) }
        let drop = try actions.dropOnly(format: name, at: object.key)
        let options = options.resolved(for: object.key)
        if let whole = try await eraseWhole(object, in: store, options: options, keyer: keyer, drop: drop) { return whole }
        let hinted = hint.flatMap { $0.applies(to: object) ? $0.ordinals(of: drop) : nil }
        if object.size > wholeObjectLimit {
            return try await eraseStreaming(object, in: store, options: options, keyer: keyer, drop: drop, hinted: hinted)
        }
        return try await eraseInMemory(object, in: store, options: options, keyer: keyer, drop: drop, hinted: hinted)
    }

    /// Erase of an object read whole, rewritten in memory and written in one piece.
    private func eraseInMemory(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>, hinted: [Int64]?
    ) async throws -> EraseOutcome {
        let bytes = try await store.read(object.key, range: nil, ifVersion: object.version)
        let file = try open(bytes, object.key)
        var (outcome, scrub) = try droppedRows(file, object.key, options, keyer, drop, hinted: hinted)
        if outcome.droppedOrdinals.isEmpty && scrub.isEmpty {
            outcome.kept = file.numRows
            return outcome
        }
        var sink = InMemorySink()
        let result: RewriteResult
        do {
            result = try file.rewrite(droppingRows: outcome.droppedOrdinals, scrubbing: scrub, to: &sink)
        } catch {
            throw Self.lethe(error, object.key)
        }
        let output = sink.bytes
        return try await finish(outcome, result, file, object, in: store) { writer in try await writer.write(output) }
    }

    /// The rows to drop (sorted), keyed in full or, with `hinted` ordinals, only those; and the
    /// subject chunks to scrub (row group → columns): those whose dictionary holds a dropped key's
    /// value in an entry no row references. A full keying finds those on its way; a hint finds them
    /// only where the index marked the object so (`RecordOrdinal.unreferencedEntry`), and then the
    /// object is keyed in full. A scrub leaves the outcome inexact: the new version's index entry is
    /// read, not derived (the old entry's mark would survive a derivation).
    private func droppedRows(
        _ file: ParquetFile, _ objectKey: String, _ options: FormatOptions, _ keyer: SubjectKeyer,
        _ drop: Set<SubjectKey>, hinted: [Int64]?
    ) throws -> (EraseOutcome, scrub: [Int: Set<Int>]) {
        var outcome = EraseOutcome()
        outcome.exact = true
        var rows: [Int64] = []
        var scrub: [Int: Set<Int>] = [:]
        let marked = hinted?.contains { !RecordOrdinal.isRecord($0) } ?? true
        if let hinted, !marked {
            for (row, key) in try keys(of: hinted.filter { $0 < file.numRows }, in: file, objectKey: objectKey, options: options, keyer: keyer)
            where drop.contains(key) {
                rows.append(row)
                outcome.dropped[key, default: 0] += 1
            }
            rows.sort()
        } else {
            _ = try keys(file, objectKey, options, keyer, unreferenced: { g, c, k in if drop.contains(k) { scrub[g, default: []].insert(c) } }) {
                row, key in
                if drop.contains(key) {
                    rows.append(row)
                    outcome.dropped[key, default: 0] += 1
                }
            }
        }
        outcome.droppedOrdinals = rows
        if !scrub.isEmpty { outcome.exact = false }
        return (outcome, scrub)
    }

    /// Erase of an object larger than `wholeObjectLimit`, never held whole in memory: the footer and
    /// the subject chunks of the row groups to key (all, or those of the hinted rows) are read first;
    /// then everything but the untouched row groups (touched groups, page indexes, bloom filters,
    /// footer), all pinned to the version read. The rewrite streams into the store's writer, the
    /// untouched row groups by `copyRange` (a kernel copy on a local store): the bytes written are
    /// those of the in-memory rewrite.
    private func eraseStreaming(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        drop: Set<SubjectKey>, hinted: [Int64]?
    ) async throws -> EraseOutcome {
        let (footerOnly, footer) = try await openFooter(object, in: store, pinned: true)
        if footerOnly.omitsDictionaryHeaderSize {
            // An old parquet-mr file whose chunk ends are found by reading them: read whole.
            return try await eraseInMemory(object, in: store, options: options, keyer: keyer, drop: drop, hinted: hinted)
        }
        // Phase 1: key the rows (subject chunks of the groups that can hold dropped rows; all of them
        // where the index marked an unreferenced entry, see `droppedRows`).
        var groups: Set<Int>? = nil
        if let hinted, hinted.allSatisfy(RecordOrdinal.isRecord) { groups = Set(hinted.compactMap { footerOnly.rowGroup(ofRow: $0) }) }
        var keying = footer
        try await fetch(subjectRanges(footerOnly, options, groups: groups), of: object, in: store, into: &keying)
        var (outcome, scrub) = try droppedRows(try open(keying, object.key), object.key, options, keyer, drop, hinted: hinted)
        if outcome.droppedOrdinals.isEmpty && scrub.isEmpty {
            outcome.kept = footerOnly.numRows
            return outcome
        }
        // Phase 2: everything but the row groups copied unread.
        let touched = Set(outcome.droppedOrdinals.compactMap { footerOnly.rowGroup(ofRow: $0) }).union(scrub.keys)
        var copied: [Range<Int64>] = []
        for g in 0..<footerOnly.rowGroups.count where !touched.contains(g) {
            if let r = try Self.parquet(object.key, { () throws(ParquetError) in try footerOnly.rowGroupByteRange(g) }) { copied.append(r) }
        }
        copied.sort { $0.lowerBound < $1.lowerBound }
        var needed: [Range<Int64>] = []
        var at: Int64 = 0
        for r in copied {
            if r.lowerBound > at { needed.append(at..<r.lowerBound) }
            at = max(at, r.upperBound)
        }
        if at < object.size { needed.append(at..<object.size) }
        var source = footer
        try await fetch(needed.filter { !footer.covers($0) }, of: object, in: store, into: &source)
        let fetched = MissRecordingSource(source)
        let file = try open(fetched, object.key)
        var sink = PlannedSink()
        let result: RewriteResult
        do {
            result = try file.rewrite(droppingRows: outcome.droppedOrdinals, scrubbing: scrub, to: &sink)
        } catch let e where e.code == .io {
            // The rewrite read outside the ranges fetched (a bloom filter or page index lying inside an
            // untouched row group's range): nothing is written yet, so do it the whole-object way.
            return try await eraseInMemory(object, in: store, options: options, keyer: keyer, drop: drop, hinted: hinted)
        } catch {
            throw Self.lethe(error, object.key)
        }
        // A read outside them the rewrite caught: it left out what it could not read (a page index, a
        // bloom filter) where the whole object's rewrite keeps it.
        if fetched.missed { return try await eraseInMemory(object, in: store, options: options, keyer: keyer, drop: drop, hinted: hinted) }
        let steps = sink.steps
        return try await finish(outcome, result, file, object, in: store) { writer in
            for step in steps {
                switch step {
                case .bytes(let b): try await writer.write(b)
                case .copy(let r): try await writer.copyRange(from: object.key, version: object.version, range: r, in: store)
                }
            }
        }
    }

    /// The end of both erase paths: an object left without rows is removed; otherwise `write` fills
    /// a writer conditional on the version read, committed (or aborted on any error).
    private func finish(
        _ outcome: EraseOutcome, _ result: RewriteResult, _ file: ParquetFile, _ object: ObjectInfo, in store: any ObjectStore,
        write: (any ObjectWriteStream) async throws -> Void
    ) async throws -> EraseOutcome {
        var outcome = outcome
        outcome.kept = result.keptRows
        outcome.rewrittenRows = Self.rewrittenRows(result, groupRows: file.rowGroups.map(\.numRows))
        if result.isEmpty {
            try await removeObject(object, in: store)
            outcome.removed = true
            return outcome
        }
        let writer = try await store.openWrite(object.key, precondition: .matches(version: object.version))
        do {
            try await write(writer)
            outcome.written = try await writer.commit()
            return outcome
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// Reads only the footer and the subject column chunks of the row groups that hold `rows` (all
    /// with nil), pinned to `object.version`; each of those row groups is read whole. `.values` on a
    /// single-column subject without normalisation, partition or folder parts compares each value's
    /// canonical bytes with the raw ids (no keyed hash per row; the key is the hash of those bytes,
    /// so this is the keyed predicate); otherwise each row is keyed.
    public func match(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer,
        matcher: SubjectMatcher, rows: [Range<Int64>]?
    ) async throws -> RowsMatch {
        let options = options.resolved(for: object.key)
        var out = RowsMatch()
        let (footerOnly, footer) = try await openFooter(object, in: store, pinned: true)
        var groups: [Int] = []
        for g in 0..<footerOnly.rowGroups.count {
            let first = footerOnly.rowGroupFirstRow[g], n = footerOnly.rowGroups[g].numRows
            guard n > 0 else { continue }
            if let rows, !rows.contains(where: { $0.lowerBound < first + n && first < $0.upperBound }) { continue }
            groups.append(g)
        }
        let file: ParquetFile
        if footerOnly.omitsDictionaryHeaderSize {
            // An old parquet-mr file whose chunk ends are found by reading them: read whole.
            let bytes = try await store.read(object.key, range: nil, ifVersion: object.version)
            out.bytesRead = Int64(bytes.count)
            file = try open(bytes, object.key)
        } else {
            var source = footer
            let ranges = subjectRanges(footerOnly, options, groups: Set(groups)).filter { !footer.covers($0) }
            try await fetch(ranges, of: object, in: store, into: &source)
            out.bytesRead = source.segments.reduce(0) { $0 + Int64($1.bytes.count) }
            file = try open(source, object.key)
        }
        out.records = file.numRows
        out.rowsRead = groups.reduce(0) { $0 + file.rowGroups[$1].numRows }
        matchedRows?.add(Int(out.rowsRead))
        if case .values(let values) = matcher, let column = valueColumn(file, options, keyer) {
            let wanted = WantedValues(values)
            // Byte-array values that are their own canonical bytes: when every value of a chunk is
            // written out PLAIN in its pages (the dictionary page's entries, PLAIN data pages), none of
            // them being a wanted value proves the chunk holds none, without decoding a row (a hit, or
            // another encoding, reads the chunk as below).
            let desc = file.schema.columns[column]
            let byEntries = (desc.physicalType == .byteArray || desc.physicalType == .fixedLenByteArray) && CanonicalText.form(of: desc) == .raw && !perRowKeys
            // The index of the value equal to `value`, if any.
            func wantedIndex(_ value: UnsafeRawBufferPointer) -> Int? {
                keyedValues?.add()
                return wanted.index(of: value)
            }
            do {
                // A dictionary-encoded page's value is compared once per entry of the chunk's dictionary.
                var entries: [Int32] = []  // per entry: -2 not seen yet, -1 no match, else the index in `wanted`
                for g in groups {
                    if byEntries, let sections = try file.plainValueSections(column: column, rowGroup: g),
                        sections.allSatisfy({ s in
                            s.bytes.withUnsafeBytes {
                                wanted.noneIn(
                                    plain: UnsafeRawBufferPointer(rebasing: $0[s.from...]), width: desc.physicalType == .byteArray ? nil : desc.typeLength)
                            }
                        })
                    {
                        dictionaryProofs?.add()
                        continue
                    }
                    entries.removeAll(keepingCapacity: true)
                    var dictionary: ByteArrayValues?
                    try file.scanColumnEntries(column, rowGroup: g, dictionary: { dictionary = $0 }) { row, entry, value in
                        guard let value else { return }
                        var found: Int?
                        if entry >= 0 {
                            // Every referenced entry is marked, so the unreferenced ones are known after the scan.
                            if entry >= entries.count { entries += repeatElement(-2, count: max(entry + 1, 2 * entries.count) - entries.count) }
                            if entries[entry] == -2 || perRowKeys { entries[entry] = Int32(wantedIndex(value) ?? -1) }
                            found = entries[entry] >= 0 ? Int(entries[entry]) : nil
                        } else {
                            found = wantedIndex(value)
                        }
                        if found != nil { out.matches.append(SubjectMatch(row: row, key: keyer.key(value))) }
                    }
                    // A dictionary entry no row references still holds its value's bytes: residue when wanted.
                    if let dictionary {
                        for e in 0..<dictionary.count where e >= entries.count || entries[e] == -2 {
                            guard dictionary[e].withUnsafeBytes({ wantedIndex($0) }) != nil else { continue }
                            let key = dictionary[e].withUnsafeBytes { keyer.key($0) }
                            if !out.unreferenced.contains(key) { out.unreferenced.append(key) }
                        }
                    }
                }
            } catch {
                throw Self.lethe(error, object.key)
            }
            return out
        }
        let keys = matcher.keys(keyer)
        var unreferenced: Set<SubjectKey> = []
        _ = try self.keys(file, object.key, options, keyer, groups: groups, unreferenced: { _, _, k in if keys.contains(k) { unreferenced.insert(k) } }) {
            row, key in
            if keys.contains(key) { out.matches.append(SubjectMatch(row: row, key: key)) }
        }
        out.unreferenced = unreferenced.sorted { $0.hex < $1.hex }
        return out
    }

    /// Up to this many values, `match` compares each row's value with every one.
    static let linearValues = WantedValues.linear

    /// The one column whose canonical values are the subject's, as the keyer would hash them: a
    /// single-field subject read from the file (not a partition value, not checked against a folder,
    /// no schema-imposed timestamp form), keyed without normalisation. Nil otherwise.
    private func valueColumn(_ file: ParquetFile, _ options: FormatOptions, _ keyer: SubjectKeyer) -> Int? {
        guard keyer.normalization == .none, options.subject.fields.count == 1, options.constants.isEmpty,
            options.folderFields.isEmpty, options.absentIsNull.isEmpty, options.timestampUTC.isEmpty,
            let field = options.subject.fields.first,
            let desc = file.schema.column(field.components.map { String(decoding: $0, as: UTF8.self) })
        else { return nil }
        return desc.index
    }

    /// The record ordinals of the rewritten file that the rewrite re-encoded (the row groups that lost
    /// some rows), from its outcome per row group of the file read (`groupRows`: their row counts).
    static func rewrittenRows(_ result: RewriteResult, groupRows: [Int64]) -> [Range<Int64>] {
        rewrittenRows(result.rowGroups, groupRows: groupRows)
    }

    /// `rewrittenRows` from the outcome of each row group (a Delta erasure's `DeltaFileRewrite`).
    public static func rewrittenRows(_ rowGroups: [RowGroupOutcome], groupRows: [Int64]) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        var at: Int64 = 0
        for (g, o) in rowGroups.enumerated() where g < groupRows.count {
            switch o {
            case .copied: at += groupRows[g]
            case .removed: break
            case .reencoded(_, let dropped):
                let n = groupRows[g] - dropped
                if n > 0 {
                    if let last = out.last, last.upperBound == at {
                        out[out.count - 1] = last.lowerBound..<(at + n)
                    } else {
                        out.append(at..<(at + n))
                    }
                }
                at += n
            }
        }
        return out
    }

    /// The byte ranges of the subject (and folder-checked) column chunks of `groups` (all when nil), coalesced.
    private func subjectRanges(_ file: ParquetFile, _ options: FormatOptions, groups: Set<Int>?) -> [Range<Int64>] {
        var ranges: [Range<Int64>] = []
        for field in options.recordFields + options.folderFields {
            let path = field.components.map { String(decoding: $0, as: UTF8.self) }
            guard let desc = file.schema.column(path) else { continue }  // reported by the keying
            for (g, rg) in file.rowGroups.enumerated() where groups?.contains(g) ?? true {
                guard let md = rg.columns[desc.index].metaData, md.totalCompressedSize > 0 else { continue }
                ranges.append(file.readRange(column: desc.index, rowGroup: g))
            }
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int64>] = []
        for r in ranges {
            if let last = merged.last, r.lowerBound <= last.upperBound + coalesceGap {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        return merged
    }

    /// Reads `ranges` of `object` (at its version) into `source`, skipping those it holds.
    func fetch(_ ranges: [Range<Int64>], of object: ObjectInfo, in store: any ObjectStore, into source: inout SparseSource) async throws {
        for r in ranges where !r.isEmpty && !source.covers(r) {
            source.add(r.lowerBound, try await store.read(object.key, range: r, ifVersion: object.version))
        }
    }

    static func parquet<T>(_ objectKey: String, _ body: () throws(ParquetError) -> T) throws -> T {
        do { return try body() } catch { throw lethe(error, objectKey) }
    }

    private func open(_ bytes: [UInt8], _ objectKey: String) throws -> ParquetFile {
        try open(InMemorySource(bytes), objectKey)
    }

    private func open(_ source: any ParquetSource, _ objectKey: String) throws -> ParquetFile {
        do {
            return try ParquetFile(source: source, name: objectKey)
        } catch {
            throw Self.lethe(error, objectKey)
        }
    }

    /// A Parquet error as a LetheError: `unsupported` (a codec, encryption, a subject in a
    /// list holding several) stays `unsupported`, anything else is `corrupt`.
    static func lethe(_ error: any Error, _ objectKey: String) -> LetheError {
        if let e = error as? LetheError { return e }
        if let p = error as? ParquetError, p.code == .unsupported { return LetheError(.unsupported, "\(p)", at: objectKey) }
        return LetheError(.corrupt, "\(error)", at: objectKey)
    }

    /// A full keying of one subject column started while its chunks are read (`openSparseKeying`).
    struct Prestarted {
        var column: Int
        var pipeline: KeyingPipeline<GroupKeys>
    }

    /// `openSparse` for a full keying (`scan`): when the subject is one column, read as is (no constant
    /// part, no text form imposed, no folder to check) and its row groups will be keyed on several
    /// threads, their keying starts as the chunks come from the store, each row group's as soon as its
    /// chunk is there (`keys` then delivers them, in order); otherwise as `openSparse`. The chunks are
    /// read in file order, one at a time, as `openSparse` reads them.
    private func openSparseKeying(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer
    ) async throws -> (ParquetFile, Prestarted?) {
        let (footerOnly, footer) = try await openFooter(object, in: store)
        let fields = options.subject.fields
        guard !perRowKeys, fields.count == 1, options.constants[fields[0]] == nil, options.timestampUTC[fields[0]] == nil,
            options.folderFields.isEmpty,
            let column = footerOnly.schema.column(fields[0].components.map { String(decoding: $0, as: UTF8.self) })?.index,
            keysInParallel(footerOnly, groups: Array(0..<footerOnly.rowGroups.count))
        else {
            return (try await openSparse(object, in: store, options: options, footer: (footerOnly, footer)), nil)
        }
        let source = ArrivingSource(footer)
        let file = footerOnly.reading(from: source)
        let groups = Array(0..<file.rowGroups.count)
        let pipeline = groupKeying(file, column: column, groups: groups, form: nil, keyer: keyer, prefix: [], suffix: [], available: 0)
        do {
            var available = 0
            for r in subjectRanges(footerOnly, options, groups: nil) where !source.covers(r) {
                source.add(r.lowerBound, try await store.read(object.key, range: r))
                while available < groups.count, source.covers(file.readRange(column: column, rowGroup: available)) { available += 1 }
                pipeline.arrived(available)
            }
        } catch {
            pipeline.finish()
            throw error
        }
        return (file, Prestarted(column: column, pipeline: pipeline))
    }

    /// Opens `object` reading only its footer and the subject column chunks (and the chunks of
    /// columns a Hive folder gives, which are checked against it).
    private func openSparse(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, footer opened: (ParquetFile, SparseSource)? = nil
    ) async throws -> ParquetFile {
        let (footerOnly, footer): (ParquetFile, SparseSource)
        if let opened { (footerOnly, footer) = opened } else { (footerOnly, footer) = try await openFooter(object, in: store) }
        var source = footer
        for r in subjectRanges(footerOnly, options, groups: nil) where !source.covers(r) {
            source.add(r.lowerBound, try await store.read(object.key, range: r))
        }
        return try open(source, object.key)
    }

    /// Opens `object` reading only its footer (the source holds the bytes read).
    func openFooter(_ object: ObjectInfo, in store: any ObjectStore, pinned: Bool = false) async throws -> (ParquetFile, SparseSource) {
        let version = pinned ? object.version : nil
        let source = try await SparseSource.footer(size: object.size, tailGuess: tailGuess) { r in
            try await store.read(object.key, range: r, ifVersion: version)
        }
        return (try open(source, object.key), source)
    }

    /// The logical type of each of `fields` that the file holds as a flat column, in the form its
    /// canonical text takes (left out: a column without a typed text — strings, raw binary). Reads the footer only.
    public func canonicalTypes(of object: ObjectInfo, in store: any ObjectStore, fields: [FieldPath]) async throws -> [FieldPath: CanonicalType] {
        let (file, _) = try await openFooter(object, in: store)
        var out: [FieldPath: CanonicalType] = [:]
        for f in fields {
            guard let desc = file.schema.column(f.components.map { String(decoding: $0, as: UTF8.self) }) else { continue }
            switch CanonicalText.form(of: desc) {
            case .raw: continue
            case .signed, .unsigned: out[f] = .integer
            case .boolean: out[f] = .boolean
            case .float, .float16: out[f] = .float
            case .double: out[f] = .double
            case .decimal(let s): out[f] = .decimal(scale: s)
            case .date: out[f] = .date
            case .time(let d): out[f] = .time(digits: d)
            case .timestamp(let d, let utc): out[f] = .timestamp(digits: d, utc: utc)
            case .int96: out[f] = .timestamp(digits: 9, utc: true)
            case .int96Micros: out[f] = .timestamp(digits: 6, utc: true)
            case .uuid: out[f] = .uuid
            }
        }
        return out
    }

    /// The subject keys of the given rows of an opened file, reading only the row groups
    /// that hold them (rows without a subject are left out). Confirms rows an index named.
    public func keys(
        of rows: [Int64], in file: ParquetFile, objectKey: String, options: FormatOptions,
        keyer: SubjectKeyer
    ) throws -> [(row: Int64, key: SubjectKey)] {
        guard !rows.isEmpty else { return [] }
        var groups: [Int] = []
        var g = 0
        for r in rows.sorted() {
            while g < file.rowGroups.count && r >= file.rowGroupFirstRow[g] + file.rowGroups[g].numRows { g += 1 }
            guard g < file.rowGroups.count else { break }
            if groups.last != g { groups.append(g) }
        }
        var out: [(row: Int64, key: SubjectKey)] = []
        _ = try keys(file, objectKey, options.resolved(for: objectKey), keyer, groups: groups, only: Set(rows)) { row, key in out.append((row, key)) }
        return out
    }

    /// The byte ranges `keys(of: rows, in:…)` reads (the subject chunks of the row groups holding
    /// `rows`, coalesced), from the file's footer: what to fetch before keying them.
    /// An unreferenced-entry mark among `rows` (`RecordOrdinal.unreferencedEntry`) names every row
    /// group (`unreferencedChunks` reads them all).
    public func keyingRanges(of rows: [Int64], in footer: ParquetFile, objectKey: String, options: FormatOptions) -> [Range<Int64>] {
        let groups: Set<Int>? = rows.allSatisfy(RecordOrdinal.isRecord) ? Set(rows.compactMap { footer.rowGroup(ofRow: $0) }) : nil
        return subjectRanges(footer, options.resolved(for: objectKey), groups: groups)
    }

    /// The subject chunks (row group → leaf columns) whose dictionary holds one of `keys`' values in
    /// an entry no row references: what `ParquetFile.rewrite(…scrubbing:…)` must scrub when those
    /// subjects are erased. Reads every row group's subject chunk; empty for a subject of several
    /// columns or constant parts only (no one dictionary holds it).
    public func unreferencedChunks(
        in file: ParquetFile, objectKey: String, options: FormatOptions, keyer: SubjectKeyer, keys wanted: Set<SubjectKey>
    ) throws -> [Int: Set<Int>] {
        var out: [Int: Set<Int>] = [:]
        _ = try keys(
            file, objectKey, options.resolved(for: objectKey), keyer, unreferenced: { g, c, k in if wanted.contains(k) { out[g, default: []].insert(c) } }
        ) {
            _, _ in
        }
        return out
    }

    /// Calls `visit(row, key)` for each row with a subject, in row order; returns the
    /// number of rows without one. `options` are resolved for the object (constants set).
    func keys(
        _ file: ParquetFile, _ objectKey: String, _ options: FormatOptions, _ keyer: SubjectKeyer,
        groups: [Int]? = nil, only: Set<Int64>? = nil, unreferenced: ((_ rowGroup: Int, _ column: Int, SubjectKey) -> Void)? = nil,
        prestarted: Prestarted? = nil, _ visit: (Int64, SubjectKey) throws -> Void
    ) throws -> Int64 {
        let groups = groups ?? Array(0..<file.rowGroups.count)
        var withoutSubject: Int64 = 0
        // A column the object lacks where its log entry allows it (`absentIsNull`) is null in every row.
        var options = options
        for field in options.absentIsNull where options.constants[field] == nil {
            let path = field.components.map { String(decoding: $0, as: UTF8.self) }
            if !file.schema.columns.contains(where: { $0.path.starts(with: path) }) { options.constants[field] = .null }
        }
        try checkAgainstFolders(file, objectKey, options, groups: groups)
        // Every part constant (partition values): every row has the same subject, no column is read.
        switch options.constantSubject(keyer) {
        case .key(let key):
            for g in groups {
                let first = file.rowGroupFirstRow[g]
                for row in first..<(first + file.rowGroups[g].numRows) where only?.contains(row) ?? true { try visit(row, key) }
            }
            return 0
        case .none:
            for g in groups {
                let first = file.rowGroupFirstRow[g]
                for row in first..<(first + file.rowGroups[g].numRows) where only?.contains(row) ?? true { withoutSubject += 1 }
            }
            return withoutSubject
        case .varies:
            break
        }
        // The parts read from columns, in subject order (nil: a constant part), with the text form
        // the dataset's schema imposes on a timestamp column, if any.
        var columns: [Int?] = []
        var forms: [Int: CanonicalText.Form] = [:]
        for field in options.subject.fields {
            if options.constants[field] != nil { columns.append(nil); continue }
            let path = field.components.map { String(decoding: $0, as: UTF8.self) }
            guard let desc = file.schema.column(path) else {
                let leaves = file.schema.columns.filter { $0.path.starts(with: path) }
                if !leaves.isEmpty {  // a struct, list, map or variant: a group holds no one value
                    throw LetheError(
                        .unsupported,
                        "subject `\(field)` is a group (struct, list, map or variant), not a value column: name one of its leaves (\(leaves.prefix(8).map(\.dottedPath).joined(separator: ", ")))",
                        at: objectKey)
                }
                let names = file.schema.columns.map(\.dottedPath).joined(separator: ", ")
                throw LetheError(.corrupt, "no column `\(field)` (columns: \(names))", at: objectKey)
            }
            columns.append(desc.index)
            if let utc = options.timestampUTC[field] {
                switch CanonicalText.form(of: desc) {
                case .timestamp(let digits, let annotated) where annotated != utc:
                    forms[desc.index] = .timestamp(digits: digits, utc: utc)
                case .int96 where utc:  // a Delta `timestamp` (microseconds) stored as legacy INT96
                    forms[desc.index] = .int96Micros
                default: break
                }
            }
        }
        do {
            if !perRowKeys, let single = columns.firstIndex(where: { $0 != nil }), columns.lastIndex(where: { $0 != nil }) == single {
                // One part read from a column, the others constant (partition values): each value is keyed
                // as prefix + value + suffix. A dictionary-encoded page's value is keyed once per entry of
                // the chunk's dictionary (on the first row that names it), other values through the
                // keyer's cache: no keyed hash, and no cache probe, per row of a dictionary page.
                let column = columns[single]!
                var prefix: [UInt8] = [], suffix: [UInt8] = []
                for (k, field) in options.subject.fields.enumerated() where k != single {
                    guard case .value(let v)? = options.constants[field] else { continue }
                    if k < single {
                        prefix += v
                        prefix.append(SubjectID.partSeparator)
                    } else {
                        suffix.append(SubjectID.partSeparator)
                        suffix += v
                    }
                }
                if only == nil && keysInParallel(file, groups: groups) {
                    // The keying `scan` started while it read the chunks, if it is this one.
                    let same =
                        prestarted.map {
                            $0.column == column && forms[column] == nil && prefix.isEmpty && suffix.isEmpty && groups == Array(0..<file.rowGroups.count)
                        } ?? false
                    return try keysInParallel(
                        file, column: column, groups: groups, form: forms[column], keyer: keyer, prefix: prefix, suffix: suffix,
                        unreferenced: unreferenced, prestarted: same ? prestarted?.pipeline : nil, visit)
                }
                let affixed = KeyedValues(keyer: keyer, prefix: prefix, suffix: suffix, counter: keyedValues)
                var table = EntryKeys()
                // Near-unique values (the cache bypassed) and every row wanted: a dictionary's entries are
                // keyed all at once when its page is read, two at a time (`SubjectKeyer.uncachedKeys`).
                let eager: ((ByteArrayValues) throws -> Void)? =
                    only != nil || !affixed.plain
                    ? nil
                    : { entries in
                        guard affixed.bypassing else { return }
                        table.fill(affixed.entryKeys(entries))
                    }
                if let only {
                    // A few rows an index named (an erasure's candidates): looked up by position in the row
                    // group, each keyed through the keyer (its cache), no table sized by the dictionary.
                    for g in groups {
                        let first = file.rowGroupFirstRow[g]
                        let wanted = Self.rowMask(only, first: first, count: file.rowGroups[g].numRows)
                        guard wanted.contains(true) else { continue }
                        try file.scanColumnEntries(column, rowGroup: g, form: forms[column], dictionary: nil, rows: wanted) { row, entry, value in
                            let r = row &- first
                            guard r >= 0, r < wanted.count, wanted[Int(r)] else { return }
                            guard let value else {
                                withoutSubject += 1
                                return
                            }
                            keyedRows?.add()
                            try visit(row, affixed.key(value))
                        }
                    }
                    return withoutSubject
                }
                for g in groups {
                    table.reset()
                    affixed.newChunk()
                    // The entries rows reference, to key those none does (`unreferenced`: residue all the same).
                    var dictionary: ByteArrayValues?
                    var referenced: [Bool] = []
                    var distinct = 0
                    let onDictionary: ((ByteArrayValues) throws -> Void)? =
                        unreferenced == nil
                        ? eager
                        : { entries in
                            dictionary = entries
                            referenced = [Bool](repeating: false, count: entries.count)
                            try eager?(entries)
                        }
                    try file.scanColumnEntries(column, rowGroup: g, form: forms[column], dictionary: onDictionary) { row, entry, value in
                        guard let value else {
                            withoutSubject += 1
                            return
                        }
                        keyedRows?.add()
                        if entry < 0 { return try visit(row, affixed.key(value)) }
                        if entry < referenced.count && !referenced[entry] {
                            referenced[entry] = true
                            distinct += 1
                        }
                        if let k = table[entry] { return try visit(row, k) }
                        let k = affixed.entryKey(value)
                        table[entry] = k
                        try visit(row, k)
                    }
                    if let unreferenced, let dictionary, distinct < dictionary.count {
                        // An entry whose value a referenced entry also holds (an erasure's neutralised copy)
                        // adds nothing: that subject has rows here.
                        var orphans: [SubjectKey] = []
                        for e in 0..<dictionary.count where !referenced[e] {
                            orphans.append(table[e] ?? dictionary[e].withUnsafeBytes { affixed.entryKey($0) })
                        }
                        // Few orphans, many referenced entries (already keyed by the scan): probed by prefix.
                        let prefixes = Set(orphans.map(\.prefix64))
                        var copies: Set<SubjectKey> = []
                        for r in 0..<dictionary.count where referenced[r] {
                            guard let k = table[r], prefixes.contains(k.prefix64) else { continue }
                            copies.insert(k)
                        }
                        for k in orphans where !copies.contains(k) { unreferenced(g, column, k) }
                    }
                }
                return withoutSubject
            }
            // The reference (`perRowKeys`) and subjects of several columns: each row keyed.
            if columns.count == 1, let column = columns[0] {
                for g in groups {
                    try file.scanColumn(column, rowGroup: g, form: forms[column]) { row, value in
                        if let only, !only.contains(row) { return }
                        if let value {
                            keyedRows?.add()
                            keyedValues?.add()
                            try visit(row, keyer.key(value))
                        } else {
                            withoutSubject += 1
                        }
                    }
                }
                return withoutSubject
            }
            // Composite: collect each row's parts, joined with 0x1F (constant parts in their place).
            var joined: [[UInt8]] = []
            var missing: [Bool] = []
            for g in groups {
                let first = file.rowGroupFirstRow[g]
                let count = Int(file.rowGroups[g].numRows)
                joined = Array(repeating: [], count: count)
                missing = Array(repeating: false, count: count)
                for (k, column) in columns.enumerated() {
                    guard let column else {
                        guard case .value(let v)? = options.constants[options.subject.fields[k]] else { continue }
                        for r in 0..<count {
                            if k > 0 { joined[r].append(SubjectID.partSeparator) }
                            joined[r].append(contentsOf: v)
                        }
                        continue
                    }
                    try file.scanColumn(column, rowGroup: g, form: forms[column]) { row, value in
                        let r = Int(row - first)
                        guard r >= 0, r < count else {
                            throw ParquetError(
                                .corruptMetadata, "column chunk holds more rows than its row group (\(count))",
                                file: objectKey, rowGroup: g)
                        }
                        if let value {
                            if k > 0 { joined[r].append(SubjectID.partSeparator) }
                            joined[r].append(contentsOf: value)
                        } else {
                            missing[r] = true
                        }
                    }
                }
                for r in 0..<count {
                    if let only, !only.contains(first + Int64(r)) { continue }
                    if missing[r] {
                        withoutSubject += 1
                    } else {
                        keyedRows?.add()
                        keyedValues?.add()
                        try visit(first + Int64(r), keyer.key(joined[r]))
                    }
                }
            }
            return withoutSubject
        } catch let e as ParquetError {
            throw Self.lethe(e, objectKey)
        }
    }
}

extension ParquetFormat {
    /// A Hive-partitioned file that also stores a column the folder gives (`user_id=u-1/` and a
    /// `user_id` column): each of its values must be the folder's or null, else the file is refused
    /// (`FormatOptions.folderConflict`), naming the row.
    func checkAgainstFolders(_ file: ParquetFile, _ objectKey: String, _ options: FormatOptions, groups: [Int]) throws {
        for field in options.folderFields {
            guard let desc = file.schema.column(field.components.map { String(decoding: $0, as: UTF8.self) }) else { continue }
            do {
                for g in groups {
                    try file.scanColumn(desc.index, rowGroup: g) { row, value in
                        guard let value, !options.agreesWithFolder(field, value) else { return }
                        throw LetheError(.corrupt, FormatOptions.folderConflict(field), at: "\(objectKey):row \(row)")
                    }
                }
            } catch let e as ParquetError {
                throw Self.lethe(e, objectKey)
            }
        }
    }
}

/// Keys one column's values as a subject whose other parts are constant: the bytes keyed are
/// `prefix + value + suffix` (a single-field subject: the value), normalised by the keyer.
struct KeyedValues {
    let keyer: SubjectKeyer
    let prefix: [UInt8]
    let suffix: [UInt8]
    let counter: KeyedRowCounter?
    /// No constant parts: the value is the subject.
    let plain: Bool
    /// The joined bytes of the last value keyed with affixes (reused).
    private let scratch: ScratchBytes

    init(keyer: SubjectKeyer, prefix: [UInt8], suffix: [UInt8], counter: KeyedRowCounter?) {
        self.keyer = keyer
        self.prefix = prefix
        self.suffix = suffix
        self.counter = counter
        plain = prefix.isEmpty && suffix.isEmpty
        scratch = ScratchBytes()
    }

    @inline(__always)
    func key(_ value: UnsafeRawBufferPointer) -> SubjectKey {
        counter?.add()
        if plain { return keyer.key(value) }
        return joined(value) { keyer.key($0) }
    }

    /// A new column chunk (a new dictionary) starts.
    func newChunk() {
        scratch.chunks += 1
        if scratch.chunks == 2 {
            scratch.entries = 0
            scratch.missesAtStart = keyer.misses
        }
    }

    /// The key of a dictionary entry. Entries go through the keyer's cache (a value recurs in the
    /// dictionaries of many row groups, and of other objects) unless the first `probe` entries of the
    /// scan's later chunks (a chunk's own entries are distinct) show that nearly all of them are new
    /// (near-unique values: the cache would only grow and miss); from then on they are keyed without it.
    @inline(__always)
    func entryKey(_ value: UnsafeRawBufferPointer) -> SubjectKey {
        counter?.add()
        if scratch.chunks >= 2 && !scratch.decided {
            if scratch.entries == Self.probe {
                scratch.decided = true
                scratch.bypass = (keyer.misses &- scratch.missesAtStart) * 10 > Self.probe * 9
            } else {
                scratch.entries += 1
            }
        }
        if plain { return scratch.bypass ? keyer.uncachedKey(value) : keyer.key(value) }
        let bypass = scratch.bypass
        return joined(value) { bypass ? $0.withUnsafeBytes { keyer.uncachedKey($0) } : keyer.key($0) }
    }

    /// Whether entries are keyed without the cache (near-unique values).
    var bypassing: Bool { scratch.bypass }

    /// The keys of a whole dictionary, without the cache, two at a time (a plain subject only).
    func entryKeys(_ entries: ByteArrayValues) -> [SubjectKey] {
        counter?.add(entries.count)
        return entries.bytes.withUnsafeBytes { b in entries.offsets.withUnsafeBufferPointer { keyer.uncachedKeys(bytes: b, offsets: $0) } }
    }

    /// Entries keyed through the cache before it is judged.
    static let probe = 4096

    private func joined(_ value: UnsafeRawBufferPointer, _ body: ([UInt8]) -> SubjectKey) -> SubjectKey {
        scratch.bytes.removeAll(keepingCapacity: true)
        scratch.bytes += prefix
        scratch.bytes.append(contentsOf: value)
        scratch.bytes += suffix
        return body(scratch.bytes)
    }
}

/// A reusable byte buffer and the entry counts of one scan (one task's).
final class ScratchBytes {
    var bytes: [UInt8] = []
    var chunks = 0
    var entries = 0
    var missesAtStart = 0
    var decided = false
    var bypass = false
}

extension ParquetFormat {
    /// Which of a row group's `count` rows (from row `first`) are in `rows`, by position.
    static func rowMask(_ rows: Set<Int64>, first: Int64, count: Int64) -> [Bool] {
        var mask = [Bool](repeating: false, count: Int(max(0, count)))
        for r in rows where r >= first && r < first + count { mask[Int(r - first)] = true }
        return mask
    }
}

/// The keys of one column chunk's dictionary entries, filled as rows name them.
struct EntryKeys {
    private var keys: [SubjectKey] = []
    private var known: [Bool] = []

    /// Every entry's key at once (a chunk's dictionary keyed whole).
    mutating func fill(_ all: [SubjectKey]) {
        keys = all
        known = [Bool](repeating: true, count: all.count)
    }

    /// Forgets every entry (a new chunk, a new dictionary).
    mutating func reset() {
        for i in known.indices { known[i] = false }
    }

    subscript(entry: Int) -> SubjectKey? {
        get { entry < known.count && known[entry] ? keys[entry] : nil }
        set {
            guard let newValue else { return }
            if entry >= known.count {
                let n = max(entry + 1, known.count * 2)
                known += repeatElement(false, count: n - known.count)
                keys += repeatElement(newValue, count: n - keys.count)
            }
            keys[entry] = newValue
            known[entry] = true
        }
    }
}

/// A count of rows keyed, for tests.
final class KeyedRowCounter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    func add(_ k: Int) { n.withLock { $0 += k } }
    var count: Int { n.withLock { $0 } }
}

// MARK: masking (issue 15)

extension ParquetFormat {
    /// `RecordAction.transform` / `.blankRecord`: the subjects' rows stay, their masked columns'
    /// cells replaced (`.blankRecord`: every column null). Only the row groups holding such rows are
    /// touched, and in them only the masked columns' chunks are re-encoded (`ParquetFile.rewrite(masking:…)`);
    /// every column keeps its physical type. A subject chunk whose dictionary holds a subject's value
    /// in an entry no row references is scrubbed as a deletion scrubs it (in a row group without the
    /// subjects' rows too; an object holding a subject only so is rewritten for it). A null in a
    /// required column, text in a numeric column or a column inside a list is refused
    /// (`.unsupported`, naming the column), nothing written.
    fileprivate func eraseMasking(
        _ object: ObjectInfo, in store: any ObjectStore, options: FormatOptions, keyer: SubjectKeyer, actions: EraseActions
    ) async throws -> EraseOutcome {
        let options = options.resolved(for: object.key)
        try actions.checkNotConstant(options, format: name, keyer: keyer, at: object.key)
        let distinct = Set(actions.bySubject.values)
        guard distinct.count == 1, let action = distinct.first, action != .drop else {
            throw LetheError(.unsupported, "the parquet format applies one record action per erase (mask or blank, not mixed with drop)", at: object.key)
        }
        let bytes = try await store.read(object.key, range: nil, ifVersion: object.version)
        let file = try open(bytes, object.key)
        var outcome = EraseOutcome()
        var rows: [Int64] = []
        // The subject chunks whose dictionary holds a subject's value in an entry no row references:
        // scrubbed as a deletion scrubs them (`droppedRows`), masked rows or not.
        var scrub: [Int: Set<Int>] = [:]
        _ = try keys(file, object.key, options, keyer, unreferenced: { g, c, k in if actions.bySubject[k] != nil { scrub[g, default: []].insert(c) } }) {
            row, key in
            if actions.bySubject[key] != nil {
                rows.append(row)
                outcome.transformed[key, default: 0] += 1
            }
        }
        outcome.kept = file.numRows
        guard !rows.isEmpty || !scrub.isEmpty else {
            outcome.exact = true
            return outcome
        }
        // Only entries to scrub: no cell changes, so no mask is checked against the columns.
        let plan: (columns: Set<Int>, replace: @Sendable (Int, OldCell) -> CellValue) =
            rows.isEmpty ? ([], { _, _ in .keep }) : try Self.maskPlan(action, file: file, maskKey: actions.maskKey, objectKey: object.key)
        var sink = InMemorySink()
        let result: RewriteResult
        do {
            result = try file.rewrite(masking: rows, columns: plan.columns, replace: plan.replace, scrubbing: scrub, to: &sink)
        } catch let e where e.code == .invalidArgument || e.code == .unsupported {
            throw LetheError(.unsupported, "cannot mask: \(e)", at: object.key)
        } catch {
            throw Self.lethe(error, object.key)
        }
        outcome.exact = false
        let output = sink.bytes
        var done = try await finish(outcome, result, file, object, in: store) { writer in try await writer.write(output) }
        // The subject's rows are still there, changed: the new version is indexed by a scan.
        done.rewrittenRows = nil
        done.exact = false
        return done
    }

    /// Checks, reading only the footer, that `object`'s columns can take `action` (`maskPlan`'s
    /// refusals: a null in a required column, text in a numeric one, …): the plan-time check.
    public func checkMask(_ action: RecordAction, of object: ObjectInfo, in store: any ObjectStore, maskKey: MaskKey?) async throws {
        let (file, _) = try await openFooter(object, in: store)
        _ = try Self.maskPlan(action, file: file, maskKey: maskKey, objectKey: object.key)
    }

    /// What a record action does to `file`'s columns: the masked leaf columns (`.transform`: those
    /// whose path is a field of it; `.blankRecord`: all) and each masked cell's new value. Refuses,
    /// before anything is written, a mask a column cannot take (`.unsupported`, naming the column).
    public static func maskPlan(
        _ action: RecordAction, file: ParquetFile, maskKey: MaskKey?, objectKey: String
    ) throws -> (columns: Set<Int>, replace: @Sendable (Int, OldCell) -> CellValue) {
        var byColumn: [Int: FieldAction] = [:]
        for (ci, desc) in file.schema.columns.enumerated() {
            switch action {
            case .blankRecord: byColumn[ci] = .null
            case .transform(let fields):
                let path = desc.path.map { Array($0.utf8) }
                if let a = fields.first(where: { $0.key.components == path })?.value { byColumn[ci] = a }
            case .drop: break
            }
        }
        try checkMasks(byColumn, file, objectKey, hashes: maskKey != nil)
        let types = file.schema.columns.map(\.physicalType)
        let actions = byColumn
        return (Set(byColumn.keys), { ci, old in cell(actions[ci]!, old, physical: types[ci], maskKey: maskKey) })
    }

    /// Refuses, before anything is written, a mask the columns cannot take.
    private static func checkMasks(_ byColumn: [Int: FieldAction], _ file: ParquetFile, _ key: String, hashes: Bool) throws {
        for (ci, a) in byColumn.sorted(by: { $0.key < $1.key }) {
            let desc = file.schema.columns[ci]
            func refuse(_ why: String) -> LetheError {
                LetheError(.unsupported, "cannot mask column `\(desc.dottedPath)` (\(desc.physicalType)): \(why)", at: key)
            }
            guard desc.isFlat else { throw refuse("it lies inside a list or map; masking covers flat columns") }
            let text = desc.physicalType == .byteArray
            let integer = desc.physicalType == .int32 || desc.physicalType == .int64
            switch a {
            case .null:
                guard desc.element.repetition == .optional else {
                    throw refuse("the column is required, so it cannot hold null; choose hash, redact or a literal")
                }
            case .redact, .blank:
                guard text else { throw refuse("`\(a == .redact ? "redact" : "blank")` needs a string column; choose null or hash") }
            case .literal(let s):
                guard text || (integer && Int64(s) != nil) else { throw refuse("the literal does not fit the column's type") }
            case .hash:
                guard hashes else { throw LetheError(.badInput, "a `hash` mask needs the installation's mask key", at: key) }
                guard text || integer else { throw refuse("`hash` needs a string or integer column") }
            }
        }
    }

    /// The new value of one masked cell.
    private static func cell(_ a: FieldAction, _ old: OldCell, physical: PhysicalType, maskKey: MaskKey?) -> CellValue {
        func integer(_ v: Int64) -> CellValue { physical == .int32 ? .int32(Int32(truncatingIfNeeded: v & 0x7FFF_FFFF)) : .int64(v) }
        switch a {
        case .null: return .null
        case .redact: return .bytes(Array(MaskRule.redactionMarker.utf8))
        case .blank: return .bytes([])
        case .literal(let s): return physical == .byteArray ? .bytes(Array(s.utf8)) : integer(Int64(s) ?? 0)
        case .hash:
            guard let maskKey else { return .keep }
            switch old {
            case .null, .other: return .keep  // null stays null
            case .bytes(let b): return physical == .byteArray ? .bytes(maskKey.pseudonym(b)) : .keep
            case .int32(let v): return integer(maskKey.pseudonymInteger(Array(String(v).utf8)))
            case .int64(let v): return integer(maskKey.pseudonymInteger(Array(String(v).utf8)))
            }
        }
    }
}
