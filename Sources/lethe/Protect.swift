import ArgumentParser
import Foundation
import LetheCore
import LetheStorage
import LetheStream
import LetheEngine
import LetheRuntime

/// The dataset's record format for protect/reveal/ingest (JSON Lines and CSV).
private func cryptoFormat(_ d: DatasetSpec) throws -> CryptoRecordFormat {
    switch d.format {
    case .jsonl: return .jsonl
    case .csv: return .csv(delimiter: d.delimiter)
    case .parquet, .delta:
        throw LetheError(
            .unsupported, "dataset `\(d.name)` is \(d.format.rawValue): protect, reveal and ingest handle jsonl and csv datasets (Parquet not yet)")
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
    let c = try RecordCrypter(dataset: d.name, format: format, mode: mode, subject: subject, pii: d.pii, hasher: state.secrets.hasher, keys: vault)
    // Validation hook (issue 15's `schema:`): the lead wires `c.validate` to the dataset's schema here.
    return (c, state)
}

/// Reads `input` to its end in 1 MiB chunks through the crypter, writing to `write`.
private func pump(_ c: RecordCrypter, input: Int32, write: ([UInt8]) throws -> Void) async throws {
    var pending: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var out: [UInt8] = []
    while true {
        let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw LetheError.io("cannot read the input", errno: errno)
        }
        if n > 0 { pending += chunk[0..<n] }
        out.removeAll(keepingCapacity: true)
        let used = try await c.process(pending, isFinal: n == 0, into: &out)
        if !out.isEmpty { try write(out) }
        pending.removeFirst(used)
        if n == 0 { break }
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8], at path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw LetheError.io("cannot write the output", at: path, errno: errno)
        }
        done += n
    }
}

/// Runs a pipe from --in (or stdin) to --out (or stdout). --out is written aside and renamed into
/// place at the end: on an error nothing is left half-written.
private func runPipe(_ c: RecordCrypter, input: String?, output: String?) async throws {
    var inFD: Int32 = 0
    if let input {
        inFD = open(input, O_RDONLY | O_CLOEXEC)
        guard inFD >= 0 else { throw LetheError.io("cannot open the input", at: input, errno: errno) }
    }
    defer { if inFD != 0 { close(inFD) } }
    guard let output else {
        try await pump(c, input: inFD) { try writeAll(1, $0, at: "stdout") }
        return
    }
    // A device, FIFO or socket (/dev/null, a named pipe) is written in place: a rename would replace it
    // by a regular file (as root, /dev/null itself).
    if isSpecialFile(output) {
        let fd = open(output, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LetheError.io("cannot open the output", at: output, errno: errno) }
        defer { close(fd) }
        try await pump(c, input: inFD) { try writeAll(fd, $0, at: output) }
        return
    }
    let aside = output + ".lethe-tmp-\(getpid())"
    let fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LetheError.io("cannot create the output", at: output, errno: errno) }
    do {
        try await pump(c, input: inFD) { try writeAll(fd, $0, at: output) }
        guard fsync(fd) == 0 else { throw LetheError.io("cannot write the output", at: output, errno: errno) }
        close(fd)
        guard rename(aside, output) == 0 else { throw LetheError.io("cannot move the output into place", at: output, errno: errno) }
    } catch {
        close(fd)
        unlink(aside)
        throw error
    }
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
        abstract: "Encrypt a record stream's PII fields, each with its subject's key (a pipe).",
        discussion: """
            Reads JSON Lines or CSV (the dataset's format) from --in or stdin and writes it to --out or stdout \
            with every value of the dataset's `pii` fields encrypted under its subject's data key \
            (`lethe:v1:…`, docs/crypto-shredding.md); every other byte passes unchanged. A subject without a \
            key gets one. Values already protected are left as they are. Counts go to stderr. \
            Exit 2 on bad input (the line and field named; --out is then not written).
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset whose subject and pii fields apply.") var dataset: String
    @Option(name: .customLong("in"), help: "Read this file (default: stdin).") var input: String?
    @Option(name: .customLong("out"), help: "Write this file (default: stdout).") var output: String?

    func run() async throws {
        try await guarded {
            let config = try LakeConfig.load(path: global.config)
            let (c, _) = try makeCrypter(config, dataset: dataset, mode: .protect)
            try await runPipe(c, input: input, output: output)
            err(summary("protect", c.counts))
            if global.json { err(countsJSON(c.counts)) }
            return 0
        }
    }
}

struct Reveal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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
        abstract: "Protect one file, write it into the dataset as an object, and index it at once.",
        discussion: """
            The file (the dataset's format, uncompressed) is protected as `lethe protect` does, written \
            atomically at --object (a key under the lake root, inside the dataset's path; default: the \
            dataset's path and the file's name), and indexed at once (no scan of the lake). \
            An existing object is not replaced unless --replace. Exit 2 on bad input: nothing is written.
            """)
    @OptionGroup var global: Global
    @Option(help: "The dataset to write into.") var dataset: String
    @Option(name: .customLong("in"), help: "The file to ingest.") var input: String
    @Option(help: "The object's key under the lake root (inside the dataset's path).") var object: String?
    @Flag(help: "Replace an object that exists at the key.") var replace = false

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
            let c = try RecordCrypter(
                dataset: d.name, format: try cryptoFormat(d), mode: .protect, subject: d.subject!.fields, pii: d.pii,
                hasher: lethe.secrets.hasher, keys: vault)
            // Validation hook (issue 15's `schema:`): the lead wires `c.validate` to the dataset's schema here.
            guard let bytes = FileManager.default.contents(atPath: input) else {
                throw LetheError.io("cannot read the input", at: input, errno: errno)
            }
            let protected: [UInt8]
            do {
                protected = try await c.process([UInt8](bytes))
            } catch let e as LetheError {
                throw LetheError(e.code, e.message, at: input + (e.location.map { ":" + $0 } ?? ""))
            }
            do {
                _ = try await lethe.store.put(key, protected, precondition: replace ? .none : .absent)
            } catch let e as LetheError where e.code == .conflict {
                throw LetheError(.badUsage, "an object exists at `\(key)`: choose another --object, or --replace it")
            }
            let indexed = try await lethe.index(changes: [key], datasets: [d.name])
            let report = indexed.index
            err(summary("protect", c.counts) + "; wrote \(key), indexed \(report.objectsScanned) object(s) (\(report.records) record(s))")
            if global.json {
                out(countsJSON(c.counts, extra: ["object": .string(key), "indexed": .int(Int64(report.objectsScanned)), "dataset": .string(d.name)]))
            }
            return report.quarantined.isEmpty ? 0 : 1
        }
    }
}
