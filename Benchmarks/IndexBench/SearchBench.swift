import Foundation
import LetheCore
import LetheFormats
import LetheStorage

/// `lethe-bench search [--gb F] [--objects N] [--users N] [--ids N] [--dir D]`: the sweep's raw-id
/// search over plain JSON Lines (issue 16's "sweep throughput"), side by side with GNU grep.
/// The lake is IndexBench's (`LakeGenerator`, cached under `--dir`); the needles are `--ids` user ids
/// drawn as the lake draws them (hot users included). Lethe: `EncodedObject.linesHolding` over every
/// object from the local store (what `lethe sweep` runs per plain JSON Lines object), on one task and
/// on every core; and `NeedleSet` alone over the lake held in memory (the search kernel). The peer:
/// `LC_ALL=C grep -F -w -f IDS` over the same files (GNU grep's multi-pattern search), one process,
/// then one per core (`xargs -P`). The lines each finds are counted and must agree.
public enum SearchBench {
    struct Options {
        var gb = 1.0
        var objects = 1_000
        var users = 1_000_000
        var ids = 1_000
        var dir = "/tmp/lethe-bench-search"
        var gzipObjects = 250
    }

    static func usage() -> Never {
        say(
            """
            usage: lethe-bench search [--gb F] [--objects N] [--users N] [--ids N] [--dir D]
              --gb F       lake size in GiB (default 1)
              --objects N  objects (default 1000)
              --users N    users in the lake (default 1,000,000)
              --ids N      raw ids searched for (default 1000)
              --dir D      where the lake is generated and kept (default /tmp/lethe-bench-search)
              --gzip N     the first N objects gzipped (`gzip -6`) for the gzip case (default 250; 0: none)
            """)
        exit(2)
    }

    static func parse() -> Options {
        var o = Options()
        var args = Array(CommandLine.arguments.dropFirst(2))
        func value() -> String {
            guard args.count >= 2 else { usage() }
            args.removeFirst()
            return args[0]
        }
        while let a = args.first {
            switch a {
            case "--gb": guard let v = Double(value()), v > 0 else { usage() }; o.gb = v
            case "--objects": guard let v = Int(value()), v > 0 else { usage() }; o.objects = v
            case "--users": guard let v = Int(value()), v > 0 else { usage() }; o.users = v
            case "--ids": guard let v = Int(value()), v > 0 else { usage() }; o.ids = v
            case "--dir": o.dir = value()
            case "--gzip": guard let v = Int(value()), v >= 0 else { usage() }; o.gzipObjects = v
            default: usage()
            }
            args.removeFirst()
        }
        return o
    }

    public static func main() async {
        do { try await run(parse()) } catch {
            say("lethe-bench search: \(error)")
            exit(1)
        }
    }

    static func run(_ o: Options) async throws {
        let machine = Machine.current()
        let cores = machine.cores
        let lake = o.dir + "/lake"
        let gen = LakeGenerator(root: lake, totalBytes: Int64(o.gb * 1_073_741_824), objects: o.objects, users: o.users)
        let stamp = o.dir + "/.generated-\(o.gb)-\(o.objects)-\(o.users)"
        if !FileManager.default.fileExists(atPath: stamp) {
            try? FileManager.default.removeItem(atPath: o.dir)
            say("generating \(o.gb) GiB in \(o.objects) objects under \(lake) …")
            _ = try await gen.generate(workers: cores)
            guard FileManager.default.createFile(atPath: stamp, contents: Data()) else {
                throw BenchError("cannot write \(stamp)")
            }
        }
        let store = LocalObjectStore(root: lake)
        let keys = try await store.listKeys(prefix: "").sorted()
        let bytes = keys.reduce(Int64(0)) { $0 + fileSize(lake + "/" + $1) }
        var rng = SplitMix64(seed: 0x5EEB)
        var idSet = Set<String>()
        while idSet.count < min(o.ids, o.users) { idSet.insert(LakeGenerator.userID(gen.drawUser(&rng))) }
        let ids = idSet.sorted()
        let needles = NeedleSet(ids.map { Array($0.utf8) }, wordBounded: true)
        let idsFile = o.dir + "/ids.txt"
        try (ids.joined(separator: "\n") + "\n").write(toFile: idsFile, atomically: true, encoding: .utf8)
        say("\(machine.cpu), \(cores) cores, load \(machine.load); \(grouped(bytes)) bytes in \(keys.count) objects, \(ids.count) ids")

        func gbps(_ s: Double) -> String { String(format: "%.2f GB/s", Double(bytes) / 1e9 / s) }
        var rows: [(String, Double, Int)] = []

        // Every object read once, untimed: every row then reads from the page cache, as the peer's do.
        for k in keys { _ = fileBytes(lake + "/" + k) }
        // Lethe: linesHolding per object, one task, then one task per core (objects lent mapped by the store);
        // then one task with the objects read into memory (`read` copies, as before the mapped windows).
        var copying = store
        copying.mapsObjects = false
        for (workers, store, how) in [(1, store, "mapped"), (cores, store, "mapped"), (1, copying, "read copies")] {
            let t0 = monotonic()
            let lines = try await withThrowingTaskGroup(of: Int.self) { group in
                var next = 0
                var total = 0
                func launch() {
                    guard next < keys.count else { return }
                    let key = keys[next]
                    next += 1
                    group.addTask {
                        let (l, _) = try await EncodedObject.linesHolding(needles, in: key, of: store)
                        return l.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
                    }
                }
                for _ in 0..<workers { launch() }
                while let n = try await group.next() {
                    total += n
                    launch()
                }
                return total
            }
            rows.append(("Lethe `linesHolding` (the sweep's search), \(how), \(workers) task(s)", monotonic() - t0, lines))
        }
        // The kernel alone: NeedleSet over the lake in memory, one thread: the stage the CPU picks (Teddy
        // over AVX2 where it has it and the needles suit it), then the portable sampled stage (the former kernel's algorithm).
        var held: [[UInt8]] = []
        for k in keys { held.append(fileBytes(lake + "/" + k)) }
        let teddy = NeedleSet.hasTeddy && needles.usesTeddy
        for (stage, name) in [(NeedleSet.Stage.auto, teddy ? "Teddy (AVX2)" : "auto"), (.sampled, "sampled grams (portable)")] {
            let t1 = monotonic()
            var occurrences = 0
            for b in held {
                b.withUnsafeBufferPointer { h in
                    needles.forEachOccurrence(in: h, stage: stage) { _, _ in
                        occurrences += 1
                        return true
                    }
                }
            }
            rows.append(("Lethe `NeedleSet` alone, \(name), in memory, 1 thread (occurrences)", monotonic() - t1, occurrences))
        }
        held = []

        // The peer: GNU grep -F -w over the same files.
        let grep = "/usr/bin/grep"
        let out = o.dir + "/grep.out"
        let files = keys.map { lake + "/" + $0 }
        let listFile = o.dir + "/files.txt"
        try (files.joined(separator: "\n") + "\n").write(toFile: listFile, atomically: true, encoding: .utf8)
        for workers in [1, cores] {
            let r = try runProgram(
                "/bin/sh",
                ["-c", "LC_ALL=C xargs -P \(workers) -n \(max(1, files.count / (workers * 4))) \(grep) -h -F -w -f \(idsFile) < \(listFile) | wc -l"],
                stdoutTo: out)
            guard r.status == 0 else { throw BenchError("grep failed: \(r.err)") }
            let n = Int(String(decoding: fileBytes(out), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            rows.append(("GNU grep -F -w -f ids, \(workers) process(es)", r.seconds, n))
        }
        print("\n| search | s | throughput | lines (occurrences) |\n|---|---:|---:|---:|")
        for (name, s, n) in rows { print("| \(name) | \(String(format: "%.3f", s)) | \(gbps(s)) | \(grouped(n)) |") }
        let lethe = rows[0].2, peer = rows[5].2
        if lethe != peer { print("\nlines differ: Lethe \(lethe), grep \(peer) (grep -w's word bytes include `_`)") }
        if o.gzipObjects > 0 { try await gzipCase(o, keys: Array(keys.prefix(o.gzipObjects)), lake: lake, needles: needles, cores: cores) }
    }

    /// The sweep's search of gzip objects (`EncodedObject.matches`, what `lethe sweep` runs per gzip JSON Lines
    /// or CSV object) with libdeflate whole-object decoding (the default up to the bound) and with zlib
    /// streaming, and each decoder alone (`EncodedObject.read`), side by side with the decoders' own speed:
    /// `gzip -dc` (GNU gzip, its own inflate) and Python's `zlib.decompress` (the system zlib) over the
    /// same files held in memory. Throughput is decoded bytes over the time.
    static func gzipCase(_ o: Options, keys: [String], lake: String, needles: NeedleSet, cores: Int) async throws {
        let gzRoot = o.dir + "/lake-gz"
        let stamp = o.dir + "/.gzipped-\(keys.count)"
        if !FileManager.default.fileExists(atPath: stamp) {
            try? FileManager.default.removeItem(atPath: gzRoot)
            say("gzipping \(keys.count) objects (gzip -6) under \(gzRoot) …")
            let list = o.dir + "/gz-list.txt"
            try (keys.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
            let r = try runProgram(
                "/bin/sh",
                ["-c", "cd \(lake) && xargs -P \(cores) -I{} sh -c 'mkdir -p \"\(gzRoot)/$(dirname {})\" && gzip -6 -c {} > \"\(gzRoot)/{}.gz\"' < \(list)"])
            guard r.status == 0 else { throw BenchError("gzip failed: \(r.err)") }
            guard FileManager.default.createFile(atPath: stamp, contents: Data()) else { throw BenchError("cannot write \(stamp)") }
        }
        let gzKeys = keys.map { $0 + ".gz" }
        let store = LocalObjectStore(root: gzRoot)
        let decoded = keys.reduce(Int64(0)) { $0 + fileSize(lake + "/" + $1) }
        let stored = gzKeys.reduce(Int64(0)) { $0 + fileSize(gzRoot + "/" + $1) }
        for k in gzKeys { _ = fileBytes(gzRoot + "/" + k) }
        say("gzip case: \(grouped(stored)) stored bytes decoding to \(grouped(decoded)) in \(gzKeys.count) objects")
        var rows: [(String, Double, String)] = []
        func run(_ workers: Int, _ body: @escaping @Sendable (String) async throws -> Int) async throws -> (Double, Int) {
            let t0 = monotonic()
            let n = try await withThrowingTaskGroup(of: Int.self) { group in
                var next = 0, total = 0
                func launch() {
                    guard next < gzKeys.count else { return }
                    let key = gzKeys[next]
                    next += 1
                    group.addTask { try await body(key) }
                }
                for _ in 0..<workers { launch() }
                while let n = try await group.next() {
                    total += n
                    launch()
                }
                return total
            }
            return (monotonic() - t0, n)
        }
        var found: [Int] = []
        for (decoding, name) in [(GzipDecoding.whole, "libdeflate whole"), (.streaming, "zlib streaming")] {
            for workers in decoding == .whole ? [1, cores] : [1] {
                let (s, n) = try await run(workers) { key in
                    try await EncodedObject.matches(of: needles, overlap: 64, in: key, of: store, gzip: decoding).count
                }
                found.append(n)
                rows.append(("Lethe `EncodedObject.matches` (the sweep's gzip search), \(name), \(workers) task(s)", s, grouped(n) + " ids"))
            }
        }
        // What the sweep runs on one task: the next object decoded (`EncodedObject.decodedWhole`) on a task of its
        // own while this one is searched.
        do {
            let t0 = monotonic()
            var ahead: Task<[UInt8]?, Never>?
            var n = 0
            for (i, key) in gzKeys.enumerated() {
                let mine = ahead
                ahead = nil
                if i + 1 < gzKeys.count {
                    let nextKey = gzKeys[i + 1]
                    ahead = Task {
                        guard let info = try? await store.head(nextKey) else { return nil }
                        return try? await EncodedObject.decodedWhole(info, in: store)
                    }
                }
                if let mine, let bytes = await mine.value {
                    n += bytes.withUnsafeBufferPointer { needles.matches(in: $0) }.count
                } else {
                    n += try await EncodedObject.matches(of: needles, overlap: 64, in: key, of: store).count
                }
            }
            found.append(n)
            rows.append(("Lethe, the next object decoded while this one is searched (the sweep's), 1 task", monotonic() - t0, grouped(n) + " ids"))
        }
        for (decoding, name) in [(GzipDecoding.whole, "libdeflate whole"), (.streaming, "zlib streaming (1 MiB chunks)")] {
            let (s, n) = try await run(1) { key in try await EncodedObject.read(key, in: store, gzip: decoding).count }
            guard Int64(n) == decoded else { throw BenchError("\(name) decoded \(n) bytes, expected \(decoded)") }
            rows.append(("Lethe decoder alone (`EncodedObject.read`), \(name), 1 task", s, grouped(n) + " bytes"))
        }
        // The peers: GNU gzip's inflate and Python's zlib (the system zlib), one process.
        let listFile = o.dir + "/gz-files.txt"
        try (gzKeys.map { gzRoot + "/" + $0 }.joined(separator: "\n") + "\n").write(toFile: listFile, atomically: true, encoding: .utf8)
        for workers in [1, cores] {
            let r = try runProgram(
                "/bin/sh", ["-c", "xargs -P \(workers) -n \(max(1, gzKeys.count / (workers * 4))) gzip -dc < \(listFile)"], stdoutTo: "/dev/null")
            guard r.status == 0 else { throw BenchError("gzip -dc failed: \(r.err)") }
            rows.append(("GNU `gzip -dc` > /dev/null, \(workers) process(es)", r.seconds, ""))
        }
        let py = packageRoot + "/.venv/bin/python"
        let code = """
            import sys, time, zlib
            data = [open(p, "rb").read() for p in open(sys.argv[1]).read().split()]
            t0 = time.perf_counter(); n = sum(len(zlib.decompress(d, 31)) for d in data); print(time.perf_counter() - t0, n)
            """
        let r = try runProgram(py, ["-c", code, listFile])
        let parts = r.out.split(separator: " ")
        guard r.status == 0, parts.count == 2, let s = Double(parts[0]) else { throw BenchError("python zlib failed: \(r.err)") }
        rows.append(
            (
                "Python `zlib.decompress` (system zlib \(zlibVersionText())), in memory, 1 thread", s,
                String(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) + " bytes"
            ))
        print(
            "\n| gzip search / decode (\(gzKeys.count) objects, \(grouped(stored)) B stored, \(grouped(decoded)) B decoded) | s | decoded GB/s | found |\n|---|---:|---:|---:|"
        )
        for (name, s, n) in rows { print("| \(name) | \(String(format: "%.3f", s)) | \(String(format: "%.2f", Double(decoded) / 1e9 / s)) | \(n) |") }
        if Set(found).count != 1 { print("\nids found differ between the decoders: \(found)") }
    }

    static func zlibVersionText() -> String {
        (try? runProgram(packageRoot + "/.venv/bin/python", ["-c", "import zlib; print(zlib.ZLIB_RUNTIME_VERSION)"]).out.trimmingCharacters(
            in: .whitespacesAndNewlines)) ?? "?"
    }
}
