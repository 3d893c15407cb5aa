// lethe-bench s3: the same lake on a local folder and on S3 (moto on loopback), issue 13 (docs/benchmarks.md,
// "Issue 13: S3 vs local"): index, erase 1 subject and 1,000 subjects, verify; wall time, and through a counting
// store decorator the requests by operation and the bytes read and written. The Parquet rows give the bytes read
// from each untouched object as a share of its size (ranged reads: footer and subject column chunks).
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench
//   .build/release/lethe-bench s3 [--scale F] [--users N] [--subjects N] [--dir D] [--markdown FILE]
//
// moto is one Python process: its times are Python-bound; bytes and requests are the comparable figures.
import Foundation
import BenchSupport
import LetheCore
import LetheEngine
import LetheRuntime
import LetheS3
import LetheStorage
import LetheTesting

public enum S3Bench {
    struct Options {
        var scale = 1.0
        var users = 20_000
        var subjects = 1_000
        var dir = "/tmp/lethe-s3-bench"
        var markdown: String?

        static let usageText = """
            usage: lethe-bench s3 [--scale F] [--users N] [--subjects N] [--dir D] [--markdown FILE]
              --scale F       object counts times F, in (0, 1] (default 1: ~80 MB in 54 objects)
              --users N       users in the lake (default 20,000)
              --subjects N    subjects of the batch erasure (default 1,000)
              --dir D         work folder (default /tmp/lethe-s3-bench), emptied first
              --markdown FILE also write the report to FILE
            """

        static func parse(_ args: [String]) throws -> Options {
            var o = Options()
            var i = 0
            func value() throws -> String {
                i += 1
                guard i < args.count else { throw BenchError("\(args[i - 1]) needs a value") }
                return args[i]
            }
            while i < args.count {
                switch args[i] {
                case "--scale":
                    guard let s = Double(try value()), s > 0, s <= 1 else { throw BenchError("--scale: a number in (0, 1]") }
                    o.scale = s
                case "--users":
                    guard let n = Int(try value()), n > 0 else { throw BenchError("--users: a count") }
                    o.users = n
                case "--subjects":
                    guard let n = Int(try value()), n > 0 else { throw BenchError("--subjects: a count") }
                    o.subjects = n
                case "--dir": o.dir = try value()
                case "--markdown": o.markdown = try value()
                case "-h", "--help":
                    say(usageText)
                    exit(0)
                default: throw BenchError("unknown argument \(args[i])\n" + usageText)
                }
                i += 1
            }
            return o
        }
    }

    /// One phase on one store.
    struct Phase {
        var store: String
        var name: String
        var seconds: Double
        var counts: CountingObjectStore.Counts
        var load: String
        /// Parquet objects not written in the phase: bytes read ÷ size (max, median), and how many were read at all.
        var untouched: (max: Double, median: Double, read: Int, of: Int)?
        var touchedParquet = 0
        var note = ""
    }

    public static func main() async {
        do {
            try await run(try Options.parse(Array(CommandLine.arguments.dropFirst(2))))
        } catch {
            FileHandle.standardError.write(Data("lethe-bench s3: \(error)\n".utf8))
            exit(1)
        }
    }

    static let datasets = """
          - {name: jsonl, path: raw/jsonl, format: jsonl, subject: user.id}
          - {name: gz, path: raw/gz, format: jsonl, subject: user.id}
          - {name: csv, path: raw/csv, format: csv, subject: user_id}
          - {name: parquet, path: raw/parquet, format: parquet, subject: user_id}
          - {name: delta, path: delta/events, format: delta, subject: user_id}
        """

    static func run(_ o: Options) async throws {
        let machine = Machine.current()
        say("lethe-bench s3: \(machine.cpu), \(machine.cores) cores, \(fmt(machine.memGiB, 1)) GiB, \(machine.kernel); load \(machine.load)")
        try? FileManager.default.removeItem(atPath: o.dir)
        let lake = o.dir + "/lake"
        try FileManager.default.createDirectory(atPath: lake, withIntermediateDirectories: true)
        let py = try Python(for: "s3")
        let made = try py.call("bench_s3_lake.py", [lake, String(o.users), String(o.scale)])
        let files = try made.json.int("files"), bytes = try made.json.int("bytes")
        say("lake: \(files) files, \(megabytes(bytes)) (generated in \(secs(made.wall)) s)")
        var sizes: [String: Int64] = [:]
        for rel in FileManager.default.enumerator(atPath: lake)!.compactMap({ $0 as? String }) where rel.hasPrefix("raw/parquet/") {
            sizes[rel] = fileSize(lake + "/" + rel)
        }
        var rng = SystemRandomNumberGenerator()
        var batch = Set<String>()
        while batch.count < o.subjects { batch.insert(String(format: "u-%07d", Int.random(in: 0..<o.users, using: &rng))) }
        let subjects = batch.sorted()

        var phases: [Phase] = []
        // Local folder.
        let local = o.dir + "/local"
        try copyTree(lake, local + "/lake")
        phases += try await measure(
            "local", yaml: "lake: \(local)/lake\nstate: \(local)/state\ndatasets:\n\(datasets)\n", dir: local, subjects: subjects,
            sizes: sizes, prefix: "")

        // moto.
        let moto = try Moto(python: py.python)
        defer { moto.stop() }
        setenv("AWS_ACCESS_KEY_ID", "testing", 1)
        setenv("AWS_SECRET_ACCESS_KEY", "testing", 1)
        let s3dir = o.dir + "/s3"
        try FileManager.default.createDirectory(atPath: s3dir, withIntermediateDirectories: true)
        let yaml = "lake: s3://bench/lake\ns3: {endpoint: \"\(moto.endpoint)\", region: us-east-1}\nstate: \(s3dir)/state\ndatasets:\n\(datasets)\n"
        let uploader = try Runtime.open(config: try LakeConfig.parse(yaml, file: s3dir + "/lethe.yaml", baseDir: s3dir))
        let s3 = uploader.store as! S3ObjectStore
        let created = try await s3.client.send("PUT", key: nil, what: "CreateBucket")
        guard created.status == 200 else { throw BenchError("moto: CreateBucket answered HTTP \(created.status)") }
        let started = monotonic()
        let rels = FileManager.default.enumerator(atPath: lake)!.compactMap { $0 as? String }.filter { rel in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: lake + "/" + rel, isDirectory: &isDir) && !isDir.boolValue
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, rel) in rels.enumerated() {
                if i >= 8 { try await group.next() }
                group.addTask { _ = try await s3.put(rel, fileBytes(lake + "/" + rel)) }
            }
            try await group.waitForAll()
        }
        say("uploaded \(rels.count) files to moto in \(secs(monotonic() - started)) s")
        phases += try await measure("s3 (moto)", yaml: yaml, dir: s3dir, subjects: subjects, sizes: sizes, prefix: "")

        let report = markdown(phases, machine: machine, files: files, bytes: bytes, o: o)
        say(report)
        if let m = o.markdown { try report.write(toFile: m, atomically: true, encoding: .utf8) }
    }

    /// Index, erase one subject, erase the batch, verify every request: each phase timed and counted.
    static func measure(_ name: String, yaml: String, dir: String, subjects: [String], sizes: [String: Int64], prefix: String) async throws
        -> [Phase]
    {
        let opened = try Runtime.open(config: try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir))
        let store = CountingObjectStore(opened.store)
        let lethe = Lethe(
            config: opened.config, store: store, meta: opened.meta, secrets: opened.secrets, stateFolder: opened.stateFolder,
            logger: opened.logger)
        var out: [Phase] = []
        func phase(_ what: String, _ body: () async throws -> String) async throws {
            say("\(name): \(what) (load \(Machine.loadAverage()))")
            store.reset()
            let t0 = monotonic()
            let note = try await body()
            var p = Phase(store: name, name: what, seconds: monotonic() - t0, counts: store.counts, load: Machine.loadAverage(), note: note)
            var shares: [Double] = []
            var read = 0
            for (rel, size) in sizes where !p.counts.writtenKeys.contains(prefix + rel) {
                let n = p.counts.readByKey[prefix + rel] ?? 0
                if n > 0 { read += 1 }
                shares.append(Double(n) / Double(max(1, size)))
            }
            p.touchedParquet = sizes.count - shares.count
            shares.sort()
            if !shares.isEmpty { p.untouched = (shares.last!, shares[shares.count / 2], read, shares.count) }
            say(
                "  \(secs(p.seconds)) s, \(p.counts.requests) requests, read \(megabytes(p.counts.bytesRead)), wrote \(megabytes(p.counts.bytesWritten)) \(note)"
            )
            out.append(p)
        }
        try await phase("index") {
            let r = try await lethe.index()
            guard r.quarantined.isEmpty, r.datasetIssues.isEmpty else { throw BenchError("\(name): index: \(r.quarantined) \(r.datasetIssues)") }
            return "\(grouped(r.records)) records"
        }
        var ids: [String] = []
        for (what, batch) in [("erase 1 subject", ["t-0000001"]), ("erase \(grouped(subjects.count)) subjects", subjects)] {
            let filed = try await lethe.forget(batch.map { SubjectID($0) }, reason: "benchmark", by: "alice")
            ids += filed.map(\.id)
            try await phase(what) {
                _ = try await lethe.approve(filed.map(\.id), by: "bob")
                let r = try await lethe.run()
                guard r.failed.isEmpty else { throw BenchError("\(name): \(what): \(r.failed.prefix(3))") }
                return "\(grouped(r.rowsDropped)) rows dropped, \(r.objectsRewritten) objects rewritten"
            }
        }
        try await phase("verify (full scan)") {
            let v = try await lethe.verify(ids: ids)
            let dirty = v.filter { !$0.clean }
            guard dirty.isEmpty else { throw BenchError("\(name): verify: \(dirty.count) requests not clean: \(dirty[0].summary)") }
            return "\(v.count) requests clean"
        }
        return out
    }

    static func markdown(_ phases: [Phase], machine: Machine, files: Int64, bytes: Int64, o: Options) -> String {
        var s = """
            Machine: \(machine.cpu), \(machine.cores) cores, \(fmt(machine.memGiB, 1)) GiB, \(machine.kernel); \(machine.date); \
            load at start \(machine.load). Lake: \(files) files, \(megabytes(bytes)) (JSON Lines, gzip JSON Lines, CSV: \
            \(max(2, Int(10 * o.scale))) objects each; Parquet: \(max(2, Int(8 * o.scale))) objects of 4 row groups; a Delta table of \
            \(max(2, Int(8 * o.scale))) files), \(grouped(o.users)) users; erase 1 rare subject, then \(grouped(o.subjects)).

            | store | phase | wall s | requests | LIST | HEAD | GET | PUT | copies (bytes) | DELETE | read | written | Parquet untouched: read ÷ size (max / median, objects read) | load |
            |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|

            """
        for p in phases {
            let c = p.counts
            let share =
                p.untouched.map {
                    "\(fmt($0.max * 100, 2)) % / \(fmt($0.median * 100, 2)) % (\($0.read) of \($0.of); \(p.touchedParquet) rewritten)"
                } ?? "— (all \(p.touchedParquet) rewritten)"
            s += "| \(p.store) | \(p.name) | \(secs(p.seconds)) | \(grouped(c.requests)) | \(grouped(c.listPages)) | \(grouped(c.heads)) | "
            s += "\(grouped(c.gets)) | \(grouped(c.puts)) | \(grouped(c.copies)) (\(megabytes(c.bytesCopied))) | \(grouped(c.deletes)) | "
            s += "\(megabytes(c.bytesRead)) | \(megabytes(c.bytesWritten)) | \(share) | \(p.load) |\n"
        }
        return s
    }
}

/// moto's server (scripts/moto_server.py, no signature checks) until `stop`.
final class Moto {
    let endpoint: String
    let process: Process
    let input: Pipe

    init(python: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [packageRoot + "/scripts/moto_server.py"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        var line = Data()
        let h = output.fileHandleForReading
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let chunk = h.availableData
            guard !chunk.isEmpty else { throw BenchError("moto exited before it was ready") }
            line += chunk
            if let nl = line.firstIndex(of: UInt8(ascii: "\n")) {
                guard let j = try? JSONSerialization.jsonObject(with: line[..<nl]) as? [String: String], let e = j["endpoint"] else {
                    throw BenchError("moto printed \(String(decoding: line, as: UTF8.self))")
                }
                endpoint = e
                process = p
                self.input = input
                return
            }
        }
        p.terminate()
        throw BenchError("moto did not start within 60 s")
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }
}
