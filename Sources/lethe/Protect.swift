import ArgumentParser
import Foundation
import LetheCore
import LetheStorage
import LetheStream
import LetheEngine
import LetheRuntime
import LetheFormats

/// The dataset's record format for protect/reveal/ingest (JSON Lines and CSV).
private func cryptoFormat(_ d: DatasetSpec) throws -> CryptoRecordFormat {
    switch d.format {
    case .jsonl: return .jsonl
    case .csv: return .csv(delimiter: d.delimiter)
    case .parquet, .delta:
        throw LetheError(
            .unsupported,
            "dataset `\(d.name)` is \(d.format.rawValue): protect, reveal and ingest handle jsonl, csv and parquet datasets (a Delta table's files are written by commits)"
        )
    }
}

/// The dataset named by --dataset, with a subject field and at least one PII field.
private func cryptoDataset(_ config: LakeConfig, _ name: String) throws -> (DatasetSpec, [FieldPath]) {
    guard let d = config.dataset(named: name) else { throw LetheError(.badUsage, "no dataset `\(name)` in \(config.file)") }
    guard let s = d.subject else { throw LetheError(.badUsage, "dataset `\(name)` has no subject field: whose key would protect it?") }
    return (d, s.fields)
}

/// A crypter for a dataset, its keys from the state's vault.
private func makeCrypter(_ config: LakeConfig, dataset name: String, mode: CryptoMode) throws -> (RecordCrypter, Runtime.StateHandle) {
    let (d, subject) = try cryptoDataset(config, name)
    let format = try cryptoFormat(d)
    let create: Bool
    if case .protect = mode { create = true } else { create = false }
    let state = try Runtime.openState(config: config, readOnly: !create)
    let vault = try Runtime.vault(config, state: state.state, create: create)
    let c = try RecordCrypter(
        dataset: d.name, format: format, mode: mode, subject: subject, pii: d.pii, hasher: state.secrets.hasher,
        normalization: d.normalization, keys: vault)
    return (c, state)
}

/// Writes a crypter's kept-aside records to `_quarantine/<dataset>/<run>/` (nothing when none).
private func writeQuarantine(_ c: RecordCrypter, _ d: DatasetSpec, _ lethe: Lethe, run: String) async throws -> QuarantineSummary {
    try await QuarantineWriter(store: lethe.store).write(ValidatedRecords(keptAsideBy: c), dataset: d, run: run)
}

/// `N record(s): V valid, Q quarantined` and the counts by rule (stderr), as `lethe validate` prints them.
private func quarantineLines(_ q: QuarantineSummary) -> [String] {
    var lines = ["\(q.records) record(s): \(q.accepted) valid, \(q.quarantined) quarantined"]
    for (rule, n) in q.byRule.sorted(by: { $0.key < $1.key }) { lines.append("  \(rule): \(n)") }
    if let why = q.reasonsObject {
        let objects = [q.recordsObject, q.unparsedObject].compactMap { $0 }.joined(separator: ", ")
        lines.append("quarantined to \(objects) (reasons: \(why))")
    }
    return lines
}

private func quarantineJSON(_ q: QuarantineSummary) -> JSONValue {
    var o: [String: JSONValue] = [
        "records": .int(q.records), "accepted": .int(q.accepted), "quarantined": .int(q.quarantined),
        "by_rule": .object(q.byRule.mapValues { .int($0) }),
    ]
    if let r = q.recordsObject { o["records_object"] = .string(r) }
    if let r = q.unparsedObject { o["unparsed_object"] = .string(r) }
    if let r = q.reasonsObject { o["reasons_object"] = .string(r) }
    return .object(o)
}

/// `protect-20261201T101500Z-1a2b3c4d`.
private func quarantineRun(_ verb: String) -> String {
    Validate.runID().replacingOccurrences(of: "validate-", with: verb + "-")
}

/// Reads `input` to its end in 1 MiB reads through the crypter, writing to `write`: the reads land in
/// one buffer (what a chunk leaves, an unfinished record, moves to its start), and the output is
/// written from the crypter's own buffer (no copies of the stream on the way).
private func pump(_ c: RecordCrypter, input: Int32, write: (UnsafeRawBufferPointer) throws -> Void) async throws {
    let step = 1 << 20
    var capacity = 2 * step
    var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    defer { buffer.deallocate() }
    var held = 0  // bytes at the buffer's start not consumed yet
    while true {
        if capacity - held < step {  // a record longer than what is held: room for it to grow
            capacity = max(2 * capacity, held + step)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
            grown.copyMemory(from: buffer, byteCount: held)
            buffer.deallocate()
            buffer = grown
        }
        let n = read(input, buffer + held, step)
        if n < 0 {
            if errno == EINTR { continue }
            throw LetheError.io("cannot read the input", errno: errno)
        }
        held += n
        let (used, out) = try await c.process(UnsafeRawBufferPointer(start: buffer, count: held), isFinal: n == 0)
        if !out.isEmpty { try write(out) }
        if used > 0 {
            if held > used { memmove(buffer, buffer + used, held - used) }
            held -= used
        }
        if n == 0 { break }
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8], at path: String) throws {
    try bytes.withUnsafeBytes { try writeAll(fd, $0, at: path) }
}

private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw LetheError.io("cannot write the output", at: path, errno: errno)
        }
        done += n
    }
}

/// Runs a pipe from --in (or stdin) to --out (or stdout). --out is written aside and renamed into
/// place at the end: on an error nothing is left half-written. `beforeCommit` runs once the whole
/// input is processed, before --out is moved into place (the quarantine is written there);
/// `undo` takes it back when the move fails.
private func runPipe(
    _ c: RecordCrypter, input: String?, output: String?, beforeCommit: () async throws -> Void = {}, undo: () async -> Void = {}
) async throws {
    var inFD: Int32 = 0
    if let input {
        inFD = open(input, O_RDONLY | O_CLOEXEC)
        guard inFD >= 0 else { throw LetheError.io("cannot open the input", at: input, errno: errno) }
    }
    defer { if inFD != 0 { close(inFD) } }
    guard let output else {
        try await pump(c, input: inFD) { try writeAll(1, $0, at: "stdout") }
        try await beforeCommit()
        return
    }
    // A device, FIFO or socket (/dev/null, a named pipe) is written in place: a rename would replace it
    // by a regular file (as root, /dev/null itself).
    if isSpecialFile(output) {
        let fd = open(output, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LetheError.io("cannot open the output", at: output, errno: errno) }
        defer { close(fd) }
        try await pump(c, input: inFD) { try writeAll(fd, $0, at: output) }
        try await beforeCommit()
        return
    }
    let aside = output + ".lethe-tmp-\(getpid())"
    let fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LetheError.io("cannot create the output", at: output, errno: errno) }
    do {
        try await pump(c, input: inFD) { try writeAll(fd, $0, at: output) }
        guard fsync(fd) == 0 else { throw LetheError.io("cannot write the output", at: output, errno: errno) }
        try await beforeCommit()
        close(fd)
        guard rename(aside, output) == 0 else {
            let e = errno
            await undo()
            throw LetheError.io("cannot move the output into place", at: output, errno: e)
        }
    } catch {
        close(fd)
        unlink(aside)
        throw error
    }
}

/// A Parquet dataset's file, whole (a Parquet file is read from its footer: it cannot stream).
private func readWhole(_ input: String?) throws -> [UInt8] {
    if let input {
        guard let data = FileManager.default.contents(atPath: input) else { throw LetheError.io("cannot read the input", at: input, errno: errno) }
        return [UInt8](data)
    }
    return [UInt8](FileHandle.standardInput.readDataToEndOfFile())
}

/// Writes `bytes` to --out (aside, fsync, rename; a device or FIFO in place) or stdout.
private func writeWhole(_ bytes: [UInt8], to output: String?) throws {
    guard let output else { return try writeAll(1, bytes, at: "stdout") }
    if isSpecialFile(output) {
        let fd = open(output, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LetheError.io("cannot open the output", at: output, errno: errno) }
        defer { close(fd) }
        return try writeAll(fd, bytes, at: output)
    }
    let aside = try writeAside(bytes, for: output)
    guard rename(aside, output) == 0 else {
        let e = errno
        unlink(aside)
        throw LetheError.io("cannot move the output into place", at: output, errno: e)
    }
}

/// Writes `bytes` beside `output` (`<output>.lethe-tmp-<pid>`) and makes them durable; returns that
/// path (removed again when the write fails).
private func writeAside(_ bytes: [UInt8], for output: String) throws -> String {
    let aside = output + ".lethe-tmp-\(getpid())"
    let fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LetheError.io("cannot create the output", at: output, errno: errno) }
    do {
        try writeAll(fd, bytes, at: output)
        guard fsync(fd) == 0 else { throw LetheError.io("cannot write the output", at: output, errno: errno) }
        close(fd)
    } catch {
        close(fd)
        unlink(aside)
        throw error
    }
    return aside
}

/// `writeWhole` with a quarantine: to --out, the file is written aside and made durable, then
/// `beforeCommit` writes the quarantine, then the file is renamed into place (`undo` takes the
/// quarantine back when the rename fails); to stdout or a device, the quarantine is written first
/// (the rows that failed are never lost), then the output (`undo` when it cannot be written).
private func writeWhole(
    _ bytes: [UInt8], to output: String?, beforeCommit: () async throws -> Void, undo: () async -> Void
) async throws {
    guard let output, !isSpecialFile(output) else {
        try await beforeCommit()
        do { try writeWhole(bytes, to: output) } catch {
            await undo()
            throw error
        }
        return
    }
    let aside = try writeAside(bytes, for: output)
    do { try await beforeCommit() } catch {
        unlink(aside)
        throw error
    }
    guard rename(aside, output) == 0 else {
        let e = errno
        unlink(aside)
        await undo()
        throw LetheError.io("cannot move the output into place", at: output, errno: e)
    }
}

/// A Parquet file of a dataset with a `schema:`, checked before it is protected: the rows that fail
/// the schema, or hold a PII value without a subject (no key to protect it with), are left out of
/// the protected file and written, as they were, to `_quarantine/<dataset>/<run>/records.parquet`
/// with `reasons.jsonl` (row, field, rule). `hive`: the object's Hive folder values (ingest).
private func validatedParquet(
    _ d: DatasetSpec, _ bytes: [UInt8], name: String, keyer: SubjectKeyer, options: FormatOptions
) throws -> ValidatedRecords {
    let check = ParquetSchemaValidator.SubjectCheck(pii: d.pii, keyer: keyer, options: options)
    do {
        return try ParquetSchemaValidator(schema: d.schema!, objectName: name).validate(bytes, constants: options.constants, subjectCheck: check)
    } catch let e as LetheError {
        throw LetheError(e.code, e.message, at: e.location ?? name)
    }
}

/// A Parquet dataset's protect or reveal: the whole file through `ParquetCrypter` (its PII string
/// and binary columns re-encoded, every other column chunk copied byte for byte).
private func parquetPipe(
    _ config: LakeConfig, _ d: DatasetSpec, mode: ParquetCryptoMode, input: String?, output: String?
) async throws -> CryptoCounts {
    let protect = mode == .protect
    let state = try Runtime.openState(config: config, readOnly: !protect)
    let vault = try Runtime.vault(config, state: state.state, create: protect)
    let crypter = ParquetCrypter(
        dataset: d.name, subject: d.subject!, pii: d.pii, keyer: SubjectKeyer(hasher: state.secrets.hasher, normalization: d.normalization),
        keys: vault)
    let bytes = try readWhole(input)
    let r = try await crypter.process(bytes, name: input ?? "stdin", mode: mode)
    try writeWhole(r.bytes, to: output)
    return counts(r, bytes: bytes.count)
}

private func counts(_ r: ParquetCryptoResult, bytes: Int) -> CryptoCounts {
    var c = CryptoCounts()
    c.records = r.rows
    c.values = r.values
    c.passed = r.passed
    c.forgotten = r.forgotten
    c.failed = r.failed
    c.bytes = Int64(bytes)
    return c
}

/// Whether `path` names something other than a regular file (a device such as /dev/null, a FIFO, a
/// socket): such an output is written in place, never replaced by a rename.
func isSpecialFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG
}

private func summary(_ verb: String, _ c: CryptoCounts) -> String {
    var s = "\(verb): \(c.records) record(s), \(c.values) value(s) \(verb == "protect" ? "encrypted" : "decrypted")"
    if c.passed > 0 { s += ", \(c.passed) left as they were" }
    if c.forgotten > 0 { s += ", \(c.forgotten) of forgotten subjects (null)" }
    if c.failed > 0 { s += ", \(c.failed) that did not open (null)" }
    return s
}

private func countsJSON(_ c: CryptoCounts, extra: [String: JSONValue] = [:]) -> String {
    var o: [String: JSONValue] = [
        "records": .int(c.records), "values": .int(c.values), "passed": .int(c.passed), "forgotten": .int(c.forgotten),
        "failed": .int(c.failed), "bytes": .int(c.bytes),
    ]
    o.merge(extra) { _, b in b }
    return JSONValue.object(o).text
}

struct Protect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protect",
        abstract: "Encrypt a record stream's PII fields, each with its subject's key (a pipe).",
        discussion: """
            Reads JSON Lines or CSV (the dataset's format) from --in or stdin and writes it to --out or stdout \
            with every value of the dataset's `pii` fields encrypted under its subject's data key \
            (`lethe:v1:…`, docs/crypto-shredding.md); every other byte passes unchanged. A subject without a \
            key gets one. Values already protected are left as they are. Counts go to stderr. \
            With a `schema:` on the dataset, a record that fails it (or cannot be protected: not JSON, a PII \
            value without a subject) is not written out but quarantined under _quarantine/<dataset>/<run>/ \
            with a reasons file (line, field, rule; never a value); the summary counts them by rule. \
            A Parquet file is read whole and checked row by row (its failing rows quarantined as \
            records.parquet, the reasons' line being the row's 1-based ordinal). \
            Exit 1 when a record was quarantined (unless --allow-quarantine); \
            exit 2 on bad input (the line and field named; --out is then not written).
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset whose subject and pii fields apply.") var dataset: String
    @Option(name: .customLong("in"), help: "Read this file (default: stdin).") var input: String?
    @Option(name: .customLong("out"), help: "Write this file (default: stdout).") var output: String?
    @Option(help: "The quarantine's run id (one path segment; default: protect-<UTC time>-<random>).") var run: String?
    @Flag(help: "Exit 0 even when records were quarantined.") var allowQuarantine = false

    func run() async throws {
        try await guarded {
            let config = try LakeConfig.load(path: global.config)
            let (d, _) = try cryptoDataset(config, dataset)
            if d.format == .parquet && d.schema != nil {
                return try await protectParquetWithSchema(config, d)
            }
            if d.format == .parquet {
                let counts = try await parquetPipe(config, d, mode: .protect, input: input, output: output)
                err(summary("protect", counts))
                if global.json { err(countsJSON(counts)) }
                return 0
            }
            guard d.schema != nil else {
                let (c, _) = try makeCrypter(config, dataset: dataset, mode: .protect)
                try await runPipe(c, input: input, output: output)
                err(summary("protect", c.counts))
                if global.json { err(countsJSON(c.counts)) }
                return 0
            }
            // With a schema: the lake's store for the quarantine, and the quarantine indexed at once.
            var lethe = try Runtime.open(config: config)
            let vault = try Runtime.vault(config, state: lethe.meta, create: true)
            lethe.vault = vault
            let c = try RecordCrypter(
                dataset: d.name, format: try cryptoFormat(d), mode: .protect, subject: d.subject!.fields, pii: d.pii,
                hasher: lethe.secrets.hasher, normalization: d.normalization, keys: vault)
            c.validator = try SchemaRecordValidator(dataset: d, name: input ?? "stdin")
            let runID = run ?? quarantineRun("protect")
            var q: QuarantineSummary?
            let store = lethe
            try await runPipe(
                c, input: input, output: output,
                beforeCommit: { q = try await writeQuarantine(c, d, store, run: runID) },
                undo: { if let q { await QuarantineWriter(store: store.store).remove(q) } })
            let written = q!
            if let r = written.recordsObject { _ = try await lethe.index(changes: [r], datasets: [d.name]) }
            err(summary("protect", c.counts))
            for l in quarantineLines(written) { err(l) }
            if global.json { err(countsJSON(c.counts, extra: ["quarantine": quarantineJSON(written)])) }
            return written.quarantined > 0 && !allowQuarantine ? 1 : 0
        }
    }
}

extension Protect {
    /// A Parquet dataset with a `schema:`: the file checked, the rows that pass protected and written
    /// (atomically to --out), the others quarantined and indexed (`validatedParquet`).
    func protectParquetWithSchema(_ config: LakeConfig, _ d: DatasetSpec) async throws -> Int32 {
        var lethe = try Runtime.open(config: config)
        let vault = try Runtime.vault(config, state: lethe.meta, create: true)
        lethe.vault = vault
        let name = input ?? "stdin"
        let bytes = try readWhole(input)
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher, normalization: d.normalization)
        let checked = try validatedParquet(d, bytes, name: name, keyer: keyer, options: FormatOptions(subject: d.subject!))
        let crypter = ParquetCrypter(dataset: d.name, subject: d.subject!, pii: d.pii, keyer: keyer, keys: vault)
        let r = try await crypter.process(checked.accepted, name: name, mode: .protect)
        let runID = run ?? quarantineRun("protect")
        var q: QuarantineSummary?
        let store = lethe.store
        try await writeWhole(
            r.bytes, to: output, beforeCommit: { q = try await QuarantineWriter(store: store).write(checked, dataset: d, run: runID) },
            undo: { if let q { await QuarantineWriter(store: store).remove(q) } })
        let written = q!
        if let key = written.recordsObject { _ = try await lethe.index(changes: [key], datasets: [d.name]) }
        let c = counts(r, bytes: bytes.count)
        err(summary("protect", c))
        for l in quarantineLines(written) { err(l) }
        if global.json { err(countsJSON(c, extra: ["quarantine": quarantineJSON(written)])) }
        return written.quarantined > 0 && !allowQuarantine ? 1 : 0
    }
}

struct Reveal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reveal",
        abstract: "Decrypt a record stream's protected values (forgotten subjects' values come out as null).",
        discussion: """
            The inverse of `lethe protect`, for authorised readers. A value whose subject was forgotten \
            (its key destroyed) becomes null in JSON and an empty field in CSV, or --marker; the stream goes on. \
            A value that does not open (altered, or moved from another field, dataset or subject) stops it \
            with an error naming the line and field (exit 2), unless --on-error null.
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset whose subject and pii fields apply.") var dataset: String
    @Option(name: .customLong("in"), help: "Read this file (default: stdin).") var input: String?
    @Option(name: .customLong("out"), help: "Write this file (default: stdout).") var output: String?
    @Option(help: "Write this text instead of null for values of forgotten subjects.") var marker: String?
    @Option(name: .customLong("on-error"), help: "A value that does not open: fail (stop, exit 2) or null (count it and go on).")
    var onError: String = "fail"

    func run() async throws {
        try await guarded {
            guard onError == "fail" || onError == "null" else { throw LetheError(.badUsage, "--on-error must be fail or null") }
            let config = try LakeConfig.load(path: global.config)
            let (d, _) = try cryptoDataset(config, dataset)
            if d.format == .parquet {
                let counts: CryptoCounts
                do {
                    counts = try await parquetPipe(
                        config, d, mode: .reveal(marker: marker.map { Array($0.utf8) }, nullOnError: onError == "null"), input: input, output: output)
                } catch let e as LetheError where e.code == .corrupt {
                    throw LetheError(.badInput, e.message, at: e.location)
                }
                err(summary("reveal", counts))
                if global.json { err(countsJSON(counts)) }
                return 0
            }
            let mode = CryptoMode.reveal(marker: marker.map { Array($0.utf8) }, nullOnError: onError == "null")
            let (c, _) = try makeCrypter(config, dataset: dataset, mode: mode)
            do {
                try await runPipe(c, input: input, output: output)
            } catch let e as LetheError where e.code == .corrupt {
                throw LetheError(.badInput, e.message, at: e.location)
            }
            err(summary("reveal", c.counts))
            if global.json { err(countsJSON(c.counts)) }
            return 0
        }
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Protect one file, write it into the dataset as an object, and index it at once.",
        discussion: """
            The file (the dataset's format, uncompressed) is protected as `lethe protect` does, written \
            atomically at --object (a key under the lake root, inside the dataset's path; default: the \
            dataset's path and the file's name), and indexed at once (no scan of the lake). \
            An existing object is not replaced unless --replace. \
            With a `schema:` on the dataset, records that fail it are left out of the object and quarantined \
            under _quarantine/<dataset>/<run>/ with a reasons file (line, field, rule), indexed with the \
            object; exit 1 when a record was quarantined (unless --allow-quarantine). \
            Exit 2 on bad input: nothing is written.
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset to write into.") var dataset: String
    @Option(name: .customLong("in"), help: "The file to ingest.") var input: String
    @Option(help: "The object's key under the lake root (inside the dataset's path).") var object: String?
    @Flag(help: "Replace an object that exists at the key.") var replace = false
    @Option(help: "The quarantine's run id (one path segment; default: ingest-<UTC time>-<random>).") var run: String?
    @Flag(help: "Exit 0 even when records were quarantined.") var allowQuarantine = false

    func run() async throws {
        try await guarded {
            let config = try LakeConfig.load(path: global.config)
            let (d, _) = try cryptoDataset(config, dataset)
            let key = object ?? d.path + "/" + (input as NSString).lastPathComponent
            guard key.hasPrefix(d.path + "/"), !key.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw LetheError(.badUsage, "--object `\(key)` is not inside dataset `\(d.name)`'s path `\(d.path)/`")
            }
            if key.hasSuffix(".gz") || key.hasSuffix(".gzip") || key.hasSuffix(".zst") {
                throw LetheError(.unsupported, "ingest writes uncompressed objects: --object `\(key)` names a compressed one")
            }
            var lethe = try Runtime.open(config: config)
            let vault = try Runtime.vault(config, state: lethe.meta, create: true)
            lethe.vault = vault
            if d.format == .parquet {
                return try await ingestParquet(d, key: key, lethe: lethe, vault: vault)
            }
            let c = try RecordCrypter(
                dataset: d.name, format: try cryptoFormat(d), mode: .protect, subject: d.subject!.fields, pii: d.pii,
                hasher: lethe.secrets.hasher, normalization: d.normalization, keys: vault)
            if d.schema != nil { c.validator = try SchemaRecordValidator(dataset: d, name: input) }
            guard let bytes = FileManager.default.contents(atPath: input) else {
                throw LetheError.io("cannot read the input", at: input, errno: errno)
            }
            let protected: [UInt8]
            do {
                protected = try await c.process([UInt8](bytes))
            } catch let e as LetheError {
                throw LetheError(e.code, e.message, at: input + (e.location.map { ":" + $0 } ?? ""))
            }
            // The quarantine first (the failing records are never lost), then the object; the quarantine
            // is taken back when the object cannot be written. Both are indexed at once.
            let quarantine = try await writeQuarantine(c, d, lethe, run: run ?? quarantineRun("ingest"))
            do {
                _ = try await lethe.store.put(key, protected, precondition: replace ? .none : .absent)
            } catch {
                await QuarantineWriter(store: lethe.store).remove(quarantine)
                if let e = error as? LetheError, e.code == .conflict {
                    throw LetheError(.badUsage, "an object exists at `\(key)`: choose another --object, or --replace it")
                }
                throw error
            }
            let indexed = try await lethe.index(changes: [key] + [quarantine.recordsObject].compactMap { $0 }, datasets: [d.name])
            let report = indexed.index
            err(summary("protect", c.counts) + "; wrote \(key), indexed \(report.objectsScanned) object(s) (\(report.records) record(s))")
            if d.schema != nil { for l in quarantineLines(quarantine) { err(l) } }
            if global.json {
                var extra: [String: JSONValue] = ["object": .string(key), "indexed": .int(Int64(report.objectsScanned)), "dataset": .string(d.name)]
                if d.schema != nil { extra["quarantine"] = quarantineJSON(quarantine) }
                out(countsJSON(c.counts, extra: extra))
            }
            if !report.quarantined.isEmpty { return 1 }
            return quarantine.quarantined > 0 && !allowQuarantine ? 1 : 0
        }
    }

    /// A Parquet file: its PII columns protected (`ParquetCrypter`), written atomically, indexed at once.
    private func ingestParquet(_ d: DatasetSpec, key: String, lethe: Lethe, vault: Vault) async throws -> Int32 {
        var bytes = try readWhole(input)
        let inputBytes = bytes.count  // reported: the input's size, not the accepted rows'
        var options = FormatOptions(subject: d.subject!)
        options.partitions = .hive(prefix: d.path)  // a subject part a `user_id=…/` folder of the key gives
        let keyer = SubjectKeyer(hasher: lethe.secrets.hasher, normalization: d.normalization)
        // With a schema: the rows that fail it are kept out of the object and quarantined (first: they
        // are never lost; taken back when the object cannot be written).
        var checked: ValidatedRecords?
        if d.schema != nil {
            checked = try validatedParquet(d, bytes, name: input, keyer: keyer, options: options.resolved(for: key))
            bytes = checked!.accepted
        }
        let crypter = ParquetCrypter(dataset: d.name, subject: d.subject!, pii: d.pii, keyer: keyer, keys: vault)
        let r: ParquetCryptoResult
        do {
            r = try await crypter.process(bytes, name: key, mode: .protect, options: options)
        } catch let e as LetheError {
            throw LetheError(e.code, e.message, at: input + (e.location.map { ":" + $0 } ?? ""))
        }
        var quarantine: QuarantineSummary?
        if let checked { quarantine = try await QuarantineWriter(store: lethe.store).write(checked, dataset: d, run: run ?? quarantineRun("ingest")) }
        do {
            _ = try await lethe.store.put(key, r.bytes, precondition: replace ? .none : .absent)
        } catch {
            if let quarantine { await QuarantineWriter(store: lethe.store).remove(quarantine) }
            if let e = error as? LetheError, e.code == .conflict {
                throw LetheError(.badUsage, "an object exists at `\(key)`: choose another --object, or --replace it")
            }
            throw error
        }
        let report = try await lethe.index(changes: [key] + [quarantine?.recordsObject].compactMap { $0 }, datasets: [d.name]).index
        let c = counts(r, bytes: inputBytes)
        err(summary("protect", c) + "; wrote \(key), indexed \(report.objectsScanned) object(s) (\(report.records) record(s))")
        if let quarantine { for l in quarantineLines(quarantine) { err(l) } }
        if global.json {
            var extra: [String: JSONValue] = ["object": .string(key), "indexed": .int(Int64(report.objectsScanned)), "dataset": .string(d.name)]
            if let quarantine { extra["quarantine"] = quarantineJSON(quarantine) }
            out(countsJSON(c, extra: extra))
        }
        if !report.quarantined.isEmpty { return 1 }
        return (quarantine?.quarantined ?? 0) > 0 && !allowQuarantine ? 1 : 0
    }
}
