// lethe-bench parquet: Lethe's Parquet subject scan and erasure side by side with pyarrow,
// in one run (issue 3). Generates the file with the project venv's pyarrow (scripts/bench_parquet.py), then:
//   (a) subject-column scan: ParquetFile.scanColumn and ParquetFormat.scan (keyed hash,
//       through the object store) vs pq.read_table(columns=["user_id"]);
//   (b) erase one subject held by one row group of 32: ParquetFormat.erase and
//       ParquetFile.rewrite vs pyarrow read_table → mask → write_table;
//   (c) full re-encode (a subject in every row group) the same way.
// Each measurement runs RUNS times (default 3); the median is reported. Prints the
// machine, the date and a Markdown section for docs/benchmarks.md.
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench && .build/release/lethe-bench parquet
//       [--dir DIR] [--rows-per-group N] [--groups N] [--users N] [--runs N] [--keep] [--markdown FILE]
//       [--scan-only [--file PATH]]
// --scan-only: the adapter's keyed scan (`ParquetFormat.scan`, as in (a)) and pyarrow's
// read_table(columns=["user_id"]) alone, each run's wall and process CPU time printed (the file
// generated as above, or an existing one with --file: before and after builds alternated on one file).
import Foundation
import BenchSupport
import Parquet
import LetheCore
import LetheStorage
import LetheFormats

struct Options {
    var dir = "/tmp/lethe-parquet-bench"
    var rowsPerGroup = 32_768
    var groups = 32
    var users = 20_000_000
    var runs = 3
    var keep = false
    var markdown: String?
    var scanOnly = false
    var file: String?

    static func parse(_ args: [String]) throws -> Options {
        var o = Options()
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw BenchError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        func int() throws -> Int {
            let s = try value()
            guard let n = Int(s), n > 0 else { throw BenchError("\(args[i - 1]): not a positive number: \(s)") }
            return n
        }
        while i < args.count {
            switch args[i] {
            case "--dir": o.dir = try value()
            case "--rows-per-group": o.rowsPerGroup = try int()
            case "--groups": o.groups = try int()
            case "--users": o.users = try int()
            case "--runs": o.runs = try int()
            case "--keep": o.keep = true
            case "--markdown": o.markdown = try value()
            case "--scan-only": o.scanOnly = true
            case "--file": o.file = try value()
            case "-h", "--help":
                print(
                    "usage: lethe-bench parquet [--dir DIR] [--rows-per-group N] [--groups N] [--users N] [--runs N] [--keep] [--markdown FILE] [--scan-only [--file PATH]]"
                )
                exit(0)
            default: throw BenchError("unknown argument \(args[i])")
            }
            i += 1
        }
        if o.groups < 2 { throw BenchError("--groups must be at least 2") }
        if o.rowsPerGroup < 16 { throw BenchError("--rows-per-group must be at least 16") }
        return o
    }
}

/// A buffered file sink for `ParquetFile.rewrite`.
struct FileSink: ParquetSink {
    let fd: Int32
    var buffer: [UInt8] = []

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path) (errno \(errno))") }
        buffer.reserveCapacity(1 << 20)
    }

    /// Small writes are buffered; a large one (a copied row group) goes straight to the file.
    mutating func write(_ bytes: [UInt8]) throws {
        if bytes.count >= 1 << 20 {
            try flush()
            try Self.writeAll(fd, bytes)
            return
        }
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        try Self.writeAll(fd, buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            guard n > 0 else { throw BenchError("write failed (errno \(errno))") }
            done += n
        }
    }

    mutating func close() throws {
        try flush()
        Glibc.close(fd)
    }
}

enum Clock {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let c = ContinuousClock()
        let t0 = c.now
        try body()
        return Self.double(c.now - t0)
    }

    static func seconds(_ body: () async throws -> Void) async rethrows -> Double {
        let c = ContinuousClock()
        let t0 = c.now
        try await body()
        return Self.double(c.now - t0)
    }

    static func double(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The venv's Python running scripts/bench_parquet.py (or `-c CODE`), its output as text.
struct ParquetPython {
    let python: String
    let script: String

    init(scriptDir: String) throws {
        python = ProcessInfo.processInfo.environment["LETHE_PYTHON"] ?? packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw BenchError("lethe-bench parquet needs \(python) with pyarrow: run `scripts/bootstrap --python`")
        }
        script = packageRoot + "/scripts/bench_parquet.py"
    }

    /// Runs the bench script (or `-c CODE` when `code` is given); returns stdout and the wall time.
    @discardableResult
    func run(_ args: [String], code: String? = nil) throws -> (out: String, wall: Double) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = (code.map { ["-c", $0] } ?? [script]) + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        var o = Data(), e = Data()
        let wall = try Clock.seconds {
            try p.run()
            o = out.fileHandleForReading.readDataToEndOfFile()
            e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
        }
        guard p.terminationStatus == 0 else {
            throw BenchError("python \(args.first ?? "") failed: \(String(decoding: e, as: UTF8.self))")
        }
        return (String(decoding: o, as: UTF8.self), wall)
    }

    func json(_ args: [String]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try run(args).out.utf8))
    }

    func times(_ args: [String]) throws -> [Double] {
        guard let t = try json(args) as? [Double] else { throw BenchError("python \(args[0]): bad output") }
        return t
    }
}

func mb(_ bytes: Int64) -> Double { Double(bytes) / 1e6 }

/// The process's CPU time (user + system, all threads), in seconds.
func processCPU() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(u.ru_utime) + s(u.ru_stime)
}

/// `--scan-only`: the adapter's keyed scan and pyarrow's read of the subject column, each run's wall and
/// process CPU time (pyarrow's in its own process, `time.process_time`, after a warm-up read).
func scanOnly(_ o: Options, _ py: ParquetPython, path: String) async throws {
    let hasher = SubjectHasher(secret: Array(repeating: 9, count: 32))
    let store = LocalObjectStore(root: o.dir + "/lake")
    let key = "events/bench.parquet"
    try copyFile(path, o.dir + "/lake/" + key)
    _ = try Data(contentsOf: URL(fileURLWithPath: o.dir + "/lake/" + key))  // warm the page cache
    let rows = try ParquetFile(source: try LocalFileSource(path: path), name: path).numRows
    let opts = FormatOptions(subject: SubjectSpec("user_id"))
    let format = ParquetFormat()
    var checksum: UInt64 = 0
    var lethe: [(wall: Double, cpu: Double)] = []
    for _ in 0..<o.runs {
        let info = try await store.head(key)!
        let keyer = SubjectKeyer(hasher: hasher)
        var n: Int64 = 0
        var x: UInt64 = 0
        let c0 = processCPU()
        let wall = try await Clock.seconds {
            let s = try await format.scan(info, in: store, options: opts, keyer: keyer) { _, k in
                n += 1
                x &+= UInt64(truncatingIfNeeded: k.prefix64)
            }
            guard s.records == rows, n == rows else { throw BenchError("ParquetFormat.scan saw \(n) rows") }
        }
        lethe.append((wall, processCPU() - c0))
        checksum &+= x
    }
    let code = """
        import sys, time, json, pyarrow.parquet as pq
        pq.read_table(sys.argv[1], columns=['user_id'])
        out = []
        for _ in range(int(sys.argv[2])):
            w, c = time.perf_counter(), time.process_time()
            pq.read_table(sys.argv[1], columns=['user_id'])
            out.append([time.perf_counter() - w, time.process_time() - c])
        print(json.dumps(out))
        """
    let pyOut = try py.run([path, String(o.runs)], code: code).out
    guard let pyRuns = try JSONSerialization.jsonObject(with: Data(pyOut.utf8)) as? [[Double]] else { throw BenchError("pyarrow scan: bad output") }
    func list(_ xs: [Double]) -> String { xs.map { fmt($0, 3) }.joined(separator: " ") }
    let pyWall = pyRuns.map { $0[0] }, pyCPU = pyRuns.map { $0[1] }
    print("ParquetFormat.scan (\(ParquetFormat.defaultKeyingTasks) threads) wall: \(list(lethe.map(\.wall))) (median \(fmt(median(lethe.map(\.wall)), 3)) s)")
    print("ParquetFormat.scan CPU:  \(list(lethe.map(\.cpu))) (median \(fmt(median(lethe.map(\.cpu)), 3)) s)")
    print("pyarrow read_table wall: \(list(pyWall)) (median \(fmt(median(pyWall), 3)) s)")
    print("pyarrow read_table CPU:  \(list(pyCPU)) (median \(fmt(median(pyCPU), 3)) s)")
    print(
        "ratio of medians: wall \(fmt(median(lethe.map(\.wall)) / median(pyWall), 2))×, CPU \(fmt(median(lethe.map(\.cpu)) / median(pyCPU), 2))×; load \(Machine.load()); checksum \(checksum & 0xFFFF)"
    )
}

/// The rows of `file` whose `user_id` equals `subject` (byte comparison), found with scanColumn.
func rowsOf(_ subject: [UInt8], in file: ParquetFile) throws -> [Int64] {
    var rows: [Int64] = []
    let col = try file.column(["user_id"]).index
    try subject.withUnsafeBytes { want in
        for g in 0..<file.rowGroups.count {
            try file.scanColumn(col, rowGroup: g) { row, value in
                if let value, value.count == want.count, memcmp(value.baseAddress!, want.baseAddress!, want.count) == 0 {
                    rows.append(row)
                }
            }
        }
    }
    return rows
}

func copyFile(_ from: String, _ to: String) throws {
    try? FileManager.default.removeItem(atPath: to)
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

func run() async throws {
    let o = try Options.parse(Array(CommandLine.arguments.dropFirst(2)))  // lethe-bench parquet …
    let fm = FileManager.default
    try? fm.removeItem(atPath: o.dir)
    try fm.createDirectory(atPath: o.dir + "/lake/events", withIntermediateDirectories: true)
    defer { if !o.keep { try? fm.removeItem(atPath: o.dir) } }
    let py = try ParquetPython(scriptDir: o.dir)
    let machine = Machine()
    let started = Date()
    let target = "u-TARGET-0001", every = "u-EVERYRG-001"
    let path = o.dir + "/bench.parquet"
    if o.scanOnly {
        if let file = o.file {
            try copyFile(file, path)
        } else {
            _ = try py.run(["gen", path, String(o.rowsPerGroup), String(o.groups), target, every, String(o.users)])
        }
        return try await scanOnly(o, py, path: path)
    }

    // The file.
    FileHandle.standardError.write(Data("generating \(o.groups) × \(o.rowsPerGroup) rows with pyarrow…\n".utf8))
    guard let facts = try py.json(["gen", path, String(o.rowsPerGroup), String(o.groups), target, every, String(o.users)]) as? [String: Any],
        let rows = facts["rows"] as? Int, let subjectBytes = (facts["subject_compressed"] as? NSNumber)?.int64Value,
        let subjectRaw = (facts["subject_uncompressed"] as? NSNumber)?.int64Value,
        let distinct = facts["distinct_users"] as? Int
    else {
        throw BenchError("gen: bad output")
    }
    let size = (try fm.attributesOfItem(atPath: path)[.size] as! NSNumber).int64Value
    _ = try Data(contentsOf: URL(fileURLWithPath: path))  // warm the page cache

    // (a) Subject-column scan.
    var scanLib: [Double] = []
    var scanFmt: [Double] = []
    var checksum = 0
    for _ in 0..<o.runs {
        scanLib.append(
            try Clock.seconds {
                let file = try ParquetFile(source: try LocalFileSource(path: path), name: path)
                let col = try file.column(["user_id"]).index
                var n = 0, bytes = 0
                for g in 0..<file.rowGroups.count {
                    try file.scanColumn(col, rowGroup: g) { _, v in
                        n += 1
                        bytes &+= v?.count ?? 0
                    }
                }
                guard n == rows else { throw BenchError("scanColumn saw \(n) rows, expected \(rows)") }
                checksum &+= bytes
            })
    }
    let hasher = SubjectHasher(secret: Array(repeating: 9, count: 32))
    var scanKeyed: [Double] = []
    for _ in 0..<o.runs {
        let keyer = SubjectKeyer(hasher: hasher)
        var x: UInt64 = 0
        scanKeyed.append(
            try Clock.seconds {
                let file = try ParquetFile(source: try LocalFileSource(path: path), name: path)
                let col = try file.column(["user_id"]).index
                for g in 0..<file.rowGroups.count {
                    try file.scanColumn(col, rowGroup: g) { _, v in
                        if let v { x &+= UInt64(truncatingIfNeeded: keyer.key(v).prefix64) }
                    }
                }
            })
        checksum &+= Int(truncatingIfNeeded: x)
    }
    // The same keyed once per dictionary entry (the adapter's path since issue 16): each row's entry maps to its key.
    var scanEntries: [Double] = []
    for _ in 0..<o.runs {
        let keyer = SubjectKeyer(hasher: hasher)
        var x: UInt64 = 0
        scanEntries.append(
            try Clock.seconds {
                let file = try ParquetFile(source: try LocalFileSource(path: path), name: path)
                let col = try file.column(["user_id"]).index
                var keys: [SubjectKey?] = []
                for g in 0..<file.rowGroups.count {
                    keys.removeAll(keepingCapacity: true)
                    try file.scanColumnEntries(col, rowGroup: g) { _, entry, v in
                        guard let v else { return }
                        let k: SubjectKey
                        if entry < 0 {
                            k = keyer.key(v)
                        } else {
                            if entry >= keys.count { keys += repeatElement(nil, count: max(entry + 1, 2 * keys.count) - keys.count) }
                            if let known = keys[entry] {
                                k = known
                            } else {
                                k = keyer.key(v)
                                keys[entry] = k
                            }
                        }
                        x &+= UInt64(truncatingIfNeeded: k.prefix64)
                    }
                }
            })
        checksum &+= Int(truncatingIfNeeded: x)
    }
    // Canonical text of other types: INT64 as decimal, timestamps as ISO 8601 (µs UTC `…Z`, ms local).
    var typed: [(String, Double)] = []
    for column in ["event_id", "ts", "received_at"] {
        var times: [Double] = []
        for _ in 0..<o.runs {
            times.append(
                try Clock.seconds {
                    let file = try ParquetFile(source: try LocalFileSource(path: path), name: path)
                    let col = try file.column([column]).index
                    var bytes = 0
                    for g in 0..<file.rowGroups.count {
                        try file.scanColumn(col, rowGroup: g) { _, v in bytes &+= v?.count ?? 0 }
                    }
                    checksum &+= bytes
                })
        }
        typed.append((column, median(times)))
    }
    let store = LocalObjectStore(root: o.dir + "/lake")
    let key = "events/bench.parquet"
    try copyFile(path, o.dir + "/lake/" + key)
    let opts = FormatOptions(subject: SubjectSpec("user_id"))
    let format = ParquetFormat()
    for _ in 0..<o.runs {
        let info = try await store.head(key)!
        let keyer = SubjectKeyer(hasher: hasher)
        var n: Int64 = 0
        var x: UInt64 = 0
        scanFmt.append(
            try await Clock.seconds {
                let s = try await format.scan(info, in: store, options: opts, keyer: keyer) { _, k in
                    n += 1
                    x &+= UInt64(truncatingIfNeeded: k.prefix64)
                }
                guard s.records == Int64(rows), n == Int64(rows) else { throw BenchError("ParquetFormat.scan saw \(n) rows") }
            })
        checksum &+= Int(truncatingIfNeeded: x)
    }
    // The same on one thread (before issue 16's session 19 the adapter's only path): entries through the keyer's cache.
    var scanFmt1: [Double] = []
    var serial = ParquetFormat()
    serial.keyingTasks = 1
    for _ in 0..<o.runs {
        let info = try await store.head(key)!
        let keyer = SubjectKeyer(hasher: hasher)
        var x: UInt64 = 0
        scanFmt1.append(
            try await Clock.seconds {
                _ = try await serial.scan(info, in: store, options: opts, keyer: keyer) { _, k in x &+= UInt64(truncatingIfNeeded: k.prefix64) }
            })
        checksum &+= Int(truncatingIfNeeded: x)
    }
    let pyScan = median(try py.times(["scan", path, String(o.runs), "1"]))
    let pyScan1 = median(try py.times(["scan", path, String(o.runs), "0"]))
    var walls: [Double] = []
    for _ in 0..<o.runs {
        walls.append(try py.run([path], code: "import sys, pyarrow.parquet as pq; pq.read_table(sys.argv[1], columns=['user_id'])").wall)
    }
    let pyWall = median(walls)

    // (b) and (c): erase one subject (one row group) and a subject of every row group.
    struct EraseFigures { var format: Double; var rewrite: Double; var pyarrow: Double; var dropped: Int; var groups: Int }
    func erase(_ subject: String, expectDropped: Int) async throws -> EraseFigures {
        var viaFormat: [Double] = [], viaRewrite: [Double] = []
        let drop: Set<SubjectKey> = [hasher.key(for: SubjectID(subject))]
        var reencoded = 0
        for _ in 0..<o.runs {
            try copyFile(path, o.dir + "/lake/" + key)
            let info = try await store.head(key)!
            let keyer = SubjectKeyer(hasher: hasher)
            var outcome = EraseOutcome()
            viaFormat.append(
                try await Clock.seconds {
                    outcome = try await format.erase(info, in: store, options: opts, keyer: keyer, drop: drop)
                })
            guard outcome.droppedTotal == Int64(expectDropped), outcome.kept == Int64(rows - expectDropped) else {
                throw BenchError("ParquetFormat.erase dropped \(outcome.droppedTotal) rows, expected \(expectDropped)")
            }
        }
        let check = try py.json(["check", o.dir + "/lake/" + key, subject]) as? [String: Int]
        guard check?["rows"] == rows - expectDropped, check?["subject_rows"] == 0 else {
            throw BenchError("pyarrow reads the erased file wrongly: \(String(describing: check))")
        }
        let out = o.dir + "/rewritten.parquet"
        for _ in 0..<o.runs {
            var result: RewriteResult?
            viaRewrite.append(
                try Clock.seconds {
                    let file = try ParquetFile(source: try LocalFileSource(path: path), name: path)
                    let rows = try rowsOf(Array(subject.utf8), in: file)
                    var sink = try FileSink(path: out)
                    result = try file.rewrite(droppingRows: rows, to: &sink)
                    try sink.close()
                })
            guard let r = result, r.droppedRows == Int64(expectDropped) else {
                throw BenchError("rewrite dropped \(result?.droppedRows ?? -1) rows, expected \(expectDropped)")
            }
            reencoded = r.rowGroups.filter { if case .reencoded = $0 { return true } else { return false } }.count
        }
        let pyErase = median(try py.times(["erase", path, o.dir + "/pyarrow.parquet", subject, String(o.rowsPerGroup), String(o.runs)]))
        return EraseFigures(
            format: median(viaFormat), rewrite: median(viaRewrite), pyarrow: pyErase,
            dropped: expectDropped, groups: reencoded)
    }
    let one = try await erase(target, expectDropped: 3)
    let all = try await erase(every, expectDropped: o.groups)

    // Report.
    let lib = median(scanLib), viaFormat = median(scanFmt), viaFormat1 = median(scanFmt1), keyed = median(scanKeyed), perEntry = median(scanEntries)
    let date = ISO8601DateFormatter().string(from: started)
    var md = """
        ## Parquet (issue 3)

        `lethe-bench parquet` (Benchmarks/ParquetBench/ParquetBench.swift), \(date), \(machine.cores) × \(machine.cpu), \(fmt(machine.memGiB, 1)) GiB, load average at the end \(Machine.load()).
        File written by pyarrow \(facts["pyarrow"] ?? "?"): \(fmt(mb(size), 1)) MB, \(rows) rows (\(distinct) distinct `user_id` values) in \(o.groups) row groups of \(o.rowsPerGroup), \(facts["columns"] ?? "?") columns (string `user_id`, int64, two timestamps, doubles, float, int32, strings, bool), snappy. The `user_id` column chunks hold \(fmt(mb(subjectBytes), 1)) MB compressed (\(fmt(mb(subjectRaw), 1)) MB uncompressed); scan MB/s below is that compressed size over the time. Warm page cache; median of \(o.runs) runs each. Lethe is single-threaded except `ParquetFormat.scan`, which keys the row groups on \(ParquetFormat.defaultKeyingTasks) threads (issue 16); pyarrow uses its thread pool unless noted.

        | measurement | Lethe | pyarrow | pyarrow ÷ Lethe time | goal |
        |---|---|---|---|---|
        | (a) subject-column scan: `ParquetFile.scanColumn` over all row groups vs `pq.read_table(path, columns=["user_id"])` (in-process) | \(fmt(lib, 3)) s, \(fmt(mb(subjectBytes) / lib, 0)) MB/s, \(fmt(Double(rows) / lib / 1e6, 1)) M rows/s | \(fmt(pyScan, 3)) s, \(fmt(mb(subjectBytes) / pyScan, 0)) MB/s | \(fmt(pyScan / lib, 2))× | Lethe within 2× of pyarrow: \(lib <= 2 * pyScan ? "met" : "missed") |
        | (a) the same, pyarrow `use_threads=False` | | \(fmt(pyScan1, 3)) s, \(fmt(mb(subjectBytes) / pyScan1, 0)) MB/s | \(fmt(pyScan1 / lib, 2))× | |
        | (a) the same, pyarrow wall time of a fresh `python -c` (interpreter start + import + read) | | \(fmt(pyWall, 3)) s | \(fmt(pyWall / lib, 2))× | |
        | (a) `ParquetFile.scanColumn` + `SubjectKeyer.key` per row (HMAC-SHA-256 once per distinct value), no object store | \(fmt(keyed, 3)) s, \(fmt(mb(subjectBytes) / keyed, 0)) MB/s | \(fmt(pyScan, 3)) s | \(fmt(pyScan / keyed, 2))× | |
        | (a) `ParquetFile.scanColumnEntries` + `SubjectKeyer.key` once per dictionary entry of each chunk (issue 16), no object store | \(fmt(perEntry, 3)) s, \(fmt(mb(subjectBytes) / perEntry, 0)) MB/s | \(fmt(pyScan, 3)) s | \(fmt(pyScan / perEntry, 2))× | |
        | (a) `ParquetFormat.scan` via `LocalObjectStore`: footer + subject chunks only, keyed once per dictionary entry, the row groups on \(ParquetFormat.defaultKeyingTasks) threads (issue 16; PLAIN values through the keyer's cache) | \(fmt(viaFormat, 3)) s, \(fmt(mb(subjectBytes) / viaFormat, 0)) MB/s | \(fmt(pyScan, 3)) s | \(fmt(pyScan / viaFormat, 2))× | within 2×: \(viaFormat <= 2 * pyScan ? "met" : "missed") |
        | (a) the same on one thread (`keyingTasks = 1`: entries through the keyer's cache until near-unique) | \(fmt(viaFormat1, 3)) s | \(fmt(pyScan, 3)) s | \(fmt(pyScan / viaFormat1, 2))× | |
        | (a) `ParquetFile.scanColumn` of other columns, as canonical text: \(typed.map { "`\($0.0)` \(fmt($0.1, 3)) s (\(fmt(Double(rows) / $0.1 / 1e6, 1)) M rows/s)" }.joined(separator: ", ")) — INT64 as decimal, TIMESTAMP(µs, UTC) as `2026-01-01T00:00:01.5Z`, TIMESTAMP(ms) without `Z` | | | | |
        | (b) erase 1 subject (\(one.dropped) rows, all in 1 of \(o.groups) row groups): `ParquetFormat.erase` (read object, keyed-hash scan, rewrite, atomic write + fsync) vs `read_table` → mask → `write_table(row_group_size=\(o.rowsPerGroup), compression="snappy")` | \(fmt(one.format, 3)) s | \(fmt(one.pyarrow, 3)) s | \(fmt(one.pyarrow / one.format, 1))× | ≥ 10×: \(one.pyarrow / one.format >= 10 ? "met" : "missed") |
        | (b) the same with `ParquetFile.rewrite` into a file (scan for the rows + rewrite; \(one.groups) row group re-encoded, \(o.groups - one.groups) copied) | \(fmt(one.rewrite, 3)) s | \(fmt(one.pyarrow, 3)) s | \(fmt(one.pyarrow / one.rewrite, 1))× | ≥ 10×: \(one.pyarrow / one.rewrite >= 10 ? "met" : "missed") |
        | (c) full re-encode (1 row dropped from each of the \(o.groups) row groups): `ParquetFormat.erase` | \(fmt(all.format, 3)) s, \(fmt(mb(size) / all.format, 0)) MB/s | \(fmt(all.pyarrow, 3)) s, \(fmt(mb(size) / all.pyarrow, 0)) MB/s | \(fmt(all.pyarrow / all.format, 2))× | ≥ 0.5×: \(all.pyarrow / all.format >= 0.5 ? "met" : "missed") |
        | (c) the same with `ParquetFile.rewrite` into a file (\(all.groups) row groups re-encoded) | \(fmt(all.rewrite, 3)) s, \(fmt(mb(size) / all.rewrite, 0)) MB/s | \(fmt(all.pyarrow, 3)) s | \(fmt(all.pyarrow / all.rewrite, 2))× | ≥ 0.5×: \(all.pyarrow / all.rewrite >= 0.5 ? "met" : "missed") |

        """
    md += "\n"
    print(md, terminator: "")
    FileHandle.standardError.write(Data("(checksum \(checksum & 0xFFFF))\n".utf8))
    if let file = o.markdown {
        if !fm.fileExists(atPath: file) { _ = fm.createFile(atPath: file, contents: nil) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try h.seekToEnd()
        try h.write(contentsOf: Data(("\n" + md).utf8))
        try h.close()
    }
}

/// `lethe-bench parquet`.
public enum ParquetBench {
    public static func main() async {
        do {
            try await run()
        } catch {
            FileHandle.standardError.write(Data("lethe-bench parquet: \(error)\n".utf8))
            exit(1)
        }
    }
}
