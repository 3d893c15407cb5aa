import Foundation
import LetheCatalog
import LetheCore
import LetheRuntime

/// `lethe-bench postings [--objects N] [--per-object N] [--targets N] [--target-postings N] [--rounds N]
/// [--locate-calls N] [--dir D] [--keep]`: the index write at the end of a one-subject `run` (issue 12).
/// A SQLite state holding `objects` objects of `per-object` postings (random keys, loaded in batches
/// as `index` does) and `targets` larger objects per round; then, per round, the entries of `targets`
/// objects rewritten without one subject's records are written through `putIndexedObjects` (today's
/// replacement: a range delete and an insert per key) and through `putDerivedObjects`, each on a
/// freshly opened store, with the bytes each adds to the WAL; then `locate` latency over the state
/// (lookups of keys of derived objects apart). See docs/benchmarks.md.
public enum PostingsBench {
    struct Options {
        var objects = 1_000
        var perObject = 1_250
        var targets = 4
        var targetPostings = 5_000
        var rounds = 5
        var locateCalls = 10_000
        var dir = "/tmp/lethe-bench-postings"
        var keep = false
    }

    static func usage() -> Never {
        say(
            """
            usage: lethe-bench postings [--objects N] [--per-object N] [--targets N] [--target-postings N]
                                        [--rounds N] [--locate-calls N] [--dir D] [--keep]
              --objects N          objects in the index besides the targets (default 1000)
              --per-object N       postings of each (default 1250: 1.25M postings)
              --targets N          objects rewritten per round (default 4)
              --target-postings N  postings (and records) of each rewritten object (default 5000)
              --rounds N           rounds, each on other objects (default 5)
            """)
        exit(2)
    }

    static func parse() -> Options {
        var o = Options()
        var args = Array(CommandLine.arguments.dropFirst(2))
        func value() -> Int {
            guard args.count >= 2, let v = Int(args[1]), v > 0 else { usage() }
            args.removeFirst()
            return v
        }
        while let a = args.first {
            switch a {
            case "--objects": o.objects = value()
            case "--per-object": o.perObject = value()
            case "--targets": o.targets = value()
            case "--target-postings": o.targetPostings = value()
            case "--rounds": o.rounds = value()
            case "--locate-calls": o.locateCalls = value()
            case "--dir":
                guard args.count >= 2 else { usage() }
                o.dir = args[1]
                args.removeFirst()
            case "--keep": o.keep = true
            default: usage()
            }
            args.removeFirst()
        }
        return o
    }

    public static func main() async {
        let o = parse()
        do {
            try await run(o)
        } catch {
            say("postings bench failed: \(error)")
            exit(1)
        }
    }

    /// One object's postings: `n` random keys, one record each (a subject's row), `records` records.
    static func postings(_ rng: inout SplitMix, n: Int, records: Int) -> [Int64: [Int64]] {
        var out: [Int64: [Int64]] = [:]
        out.reserveCapacity(n)
        var row: Int64 = 0
        while out.count < n {
            out[Int64(bitPattern: rng.next())] = [row % Int64(records)]
            row += 1
        }
        return out
    }

    static func indexed(_ key: String, records: Int, version: String = "v1") -> IndexedObject {
        IndexedObject(
            dataset: "events", key: key, size: 1_000_000, modifiedNanos: 0, version: version, records: Int64(records),
            status: .indexed, indexedAt: 0)
    }

    static func run(_ o: Options) async throws {
        try? FileManager.default.removeItem(atPath: o.dir)
        defer { if !o.keep { try? FileManager.default.removeItem(atPath: o.dir) } }
        let folder = o.dir + "/state"
        let db = folder + "/lethe.sqlite"
        say(
            "== building the state: \(grouped(o.objects)) objects × \(grouped(o.perObject)) postings + \(o.rounds * 2) × \(o.targets) objects × \(grouped(o.targetPostings))  [load \(Machine.loadAverage())]"
        )
        var rng = SplitMix(seed: 0x5EED_12)
        var targets: [(IndexedObject, [Int64: [Int64]])] = []
        let t0 = monotonic()
        do {
            let (_, meta) = try Runtime.openState(folder: folder)
            var batch: [(IndexedObject, [Int64: [Int64]])] = []
            var inBatch = 0
            let total = o.objects + 2 * o.rounds * o.targets
            for i in 0..<total {
                let target = i % max(1, total / (2 * o.rounds * o.targets)) == 0 && targets.count < 2 * o.rounds * o.targets
                let n = target ? o.targetPostings : o.perObject
                let p = postings(&rng, n: n, records: n)
                let obj = indexed("events/part-\(i).jsonl", records: n)
                if target { targets.append((obj, p)) }
                batch.append((obj, p))
                inBatch += n
                if batch.count >= 256 || inBatch >= 500_000 {
                    try await meta.putIndexedObjects(batch)
                    batch = []
                    inBatch = 0
                }
            }
            if !batch.isEmpty { try await meta.putIndexedObjects(batch) }
            _ = await meta.checkpoint()
            let stats = try await meta.indexStats()
            say(
                "built in \(duration(monotonic() - t0)): \(grouped(stats.objects)) objects, \(grouped(stats.postings)) postings, \(fmt(Double(fileSize(db)) / Double(stats.postings), 2)) B/posting"
            )
        }

        // Rounds: each writes the entries of `targets` objects rewritten without one subject (its rows
        // in each: one key's row), through each method, on a store opened for it (cold page cache).
        var replace = Latencies(), derive = Latencies()
        var walReplace: [Int64] = [], walDerive: [Int64] = []
        var derivedKeys: [Int64] = []
        for round in 0..<o.rounds {
            let pair = Array(targets[(2 * round * o.targets)..<(2 * (round + 1) * o.targets)])
            let (forReplace, forDerive) =
                round % 2 == 0
                ? (Array(pair.prefix(o.targets)), Array(pair.suffix(o.targets)))
                : (Array(pair.suffix(o.targets)), Array(pair.prefix(o.targets)))
            // The subject's rows in each object: the rows of its first key (and 2 more rows).
            func dropped(_ p: [Int64: [Int64]]) -> [Int64] { Array(Set(p[p.keys.min()!]! + [1, 2])).sorted() }
            for method in (round % 2 == 0 ? ["replace", "derive"] : ["derive", "replace"]) {
                let (_, meta) = try Runtime.openState(folder: folder)
                let wal0 = fileSize(db + "-wal")
                if method == "replace" {
                    let batch = forReplace.map { (obj, p) in
                        let d = dropped(p)
                        var n = obj
                        n.version = "v2"
                        n.records = PostingDerivation.records(old: obj.records, dropped: d)
                        return (n, PostingDerivation.derive(old: p, dropped: d))
                    }
                    let t = monotonic()
                    try await meta.putIndexedObjects(batch)
                    replace.add(monotonic() - t)
                    walReplace.append(fileSize(db + "-wal") - wal0)
                } else {
                    let batch = forDerive.map { (obj, p) in
                        let d = dropped(p)
                        var n = obj
                        n.version = "v2"
                        n.records = PostingDerivation.records(old: obj.records, dropped: d)
                        return (object: n, from: obj.version, dropped: d)
                    }
                    let t = monotonic()
                    let r = try await meta.putDerivedObjects(batch)
                    derive.add(monotonic() - t)
                    walDerive.append(fileSize(db + "-wal") - wal0)
                    guard r.allSatisfy({ $0 != nil }) else { throw BenchError("the store did not derive") }
                    for (_, p) in forDerive { derivedKeys += p.keys }
                }
                _ = await meta.checkpoint()
            }
            say(
                "round \(round + 1): putIndexedObjects \(duration(replace.samples.last!)) (WAL +\(grouped(walReplace.last!)) B), putDerivedObjects \(duration(derive.samples.last!)) (WAL +\(grouped(walDerive.last!)) B)  [load \(Machine.loadAverage())]"
            )
        }

        // locate: random keys of the state, and keys of derived objects.
        let (_, meta) = try Runtime.openState(folder: folder)
        var all: [Int64] = []
        for (_, p) in targets { all += p.keys }
        var sample: [Int64] = []
        for _ in 0..<o.locateCalls { sample.append(all[Int(rng.next() % UInt64(all.count))]) }
        for k in sample.prefix(200) { _ = try await meta.locate(prefix: k, dataset: nil) }
        var any = Latencies(), derived = Latencies()
        for k in sample {
            let t = monotonic()
            _ = try await meta.locate(prefix: k, dataset: nil)
            any.add(monotonic() - t)
        }
        for _ in 0..<o.locateCalls {
            let k = derivedKeys[Int(rng.next() % UInt64(derivedKeys.count))]
            let t = monotonic()
            _ = try await meta.locate(prefix: k, dataset: nil)
            derived.add(monotonic() - t)
        }
        let stats = try await meta.indexStats()
        say("")
        say(
            "| \(o.targets) objects × \(grouped(o.targetPostings)) postings, index of \(grouped(stats.postings)) postings, \(o.rounds) rounds | median | min | max | WAL added (median) |"
        )
        say("|---|---|---|---|---|")
        func median(_ xs: [Int64]) -> Int64 { xs.sorted()[xs.count / 2] }
        say(
            "| putIndexedObjects (range delete + insert per key) | \(duration(replace.percentile(0.5))) | \(duration(replace.samples.min()!)) | \(duration(replace.maximum)) | \(grouped(median(walReplace))) B |"
        )
        say(
            "| putDerivedObjects (dropped list on the object row) | \(duration(derive.percentile(0.5))) | \(duration(derive.samples.min()!)) | \(duration(derive.maximum)) | \(grouped(median(walDerive))) B |"
        )
        say("")
        say(
            "locate (raw StateStore, \(grouped(o.locateCalls)) calls): any key p50 \(duration(any.percentile(0.5))), p99 \(duration(any.percentile(0.99))); keys of derived objects p50 \(duration(derived.percentile(0.5))), p99 \(duration(derived.percentile(0.99)))"
        )
        say("state file: \(fmt(Double(fileSize(db) + fileSize(db + "-wal")) / Double(stats.postings), 2)) B/posting  [load \(Machine.loadAverage())]")
    }
}
