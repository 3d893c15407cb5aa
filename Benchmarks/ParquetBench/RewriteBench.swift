// lethe-bench rewrite: the Parquet rewrite itself (no store, no fsync), on files you give it.
//
//   .build/release/lethe-bench rewrite [--drop N] [--runs R] FILE...
//
// Each file is read into memory once; then, R times, the rewrite without N rows spread evenly over
// the file (the first, then every numRows/N-th) into memory. Prints the median per file and the
// throughput over the files' bytes: what one core spends re-encoding the pages that lose rows
// (Delta erasures of 1,000 subjects touch every row group of every file).
import Foundation
import Parquet

public enum RewriteBench {
    public static func main() async {
        var drop = 1, runs = 5
        var compare = false
        var files: [String] = []
        var args = Array(CommandLine.arguments.dropFirst(2))
        let usage =
            "usage: lethe-bench rewrite [--drop N] [--runs R] [--compare] FILE...\n"
            + "  --compare  also time the rewrite that encodes and compresses each page again (no in-place page edit), runs interleaved"
        while !args.isEmpty {
            let a = args.removeFirst()
            switch a {
            case "--drop": drop = Int(args.isEmpty ? "" : args.removeFirst()) ?? 0
            case "--runs": runs = Int(args.isEmpty ? "" : args.removeFirst()) ?? 0
            case "--compare": compare = true
            case "-h", "--help":
                print(usage)
                return
            default: files.append(a)
            }
        }
        guard drop > 0, runs > 0, !files.isEmpty else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        do {
            var parsed: [(ParquetFile, [Int64], Int)] = []
            for f in files {
                let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: f)))
                let file = try ParquetFile(bytes: bytes, name: f)
                let n = file.numRows
                let k = Int64(min(Int64(drop), n))
                let step = max(1, n / k)
                parsed.append((file, (0..<k).map { $0 * step }, bytes.count))
            }
            let total = parsed.reduce(0) { $0 + $1.2 }
            var variants: [(String, PageRewriteOptions)] = [("in-place page edits", PageRewriteOptions())]
            if compare {
                var o = PageRewriteOptions()
                o.splicePages = false
                variants.append(("pages encoded and compressed again", o))
            }
            var times = [[Double]](repeating: [], count: variants.count)
            var cpu = [[Double]](repeating: [], count: variants.count)
            var written = [Int](repeating: 0, count: variants.count)
            var pages = [PageRewriteCounts](repeating: PageRewriteCounts(), count: variants.count)
            for _ in 0..<runs {
                for (v, (_, options)) in variants.enumerated() {
                    let t0 = ContinuousClock.now
                    let c0 = threadCPUSeconds()
                    var w = 0
                    var p = PageRewriteCounts()
                    for (file, rows, _) in parsed {
                        var sink = InMemorySink()
                        let r = try file.rewrite(droppingRows: rows, to: &sink, pageOptions: options)
                        w += sink.bytes.count
                        p.pageLevelChunks += r.pages.pageLevelChunks
                        p.wholeChunks += r.pages.wholeChunks
                        p.reencodedPages += r.pages.reencodedPages
                        p.flatPages += r.pages.flatPages
                        p.splicedPages += r.pages.splicedPages
                        p.neutralisedEntries += r.pages.neutralisedEntries
                        p.patchedDictionaries += r.pages.patchedDictionaries
                        p.keptPageStatistics += r.pages.keptPageStatistics
                        p.keptChunkStatistics += r.pages.keptChunkStatistics
                    }
                    let d = ContinuousClock.now - t0
                    cpu[v].append(threadCPUSeconds() - c0)
                    times[v].append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
                    written[v] = w
                    pages[v] = p
                }
            }
            for (v, (name, _)) in variants.enumerated() {
                let t = times[v].sorted(), c = cpu[v].sorted()
                let median = t[t.count / 2]
                let cpuMedian = c[c.count / 2]
                print(
                    String(
                        format:
                            "%@: %d file(s), %.1f MB, %d row(s) dropped per file: median %.1f ms (%.2f ms per file, %.0f MB/s on one core; best %.1f ms), %.1f MB written; CPU (this thread) median %.2f ms per file, best %.2f",
                        name, parsed.count, Double(total) / 1e6, drop, median * 1e3, median * 1e3 / Double(parsed.count), Double(total) / 1e6 / median,
                        t[0] * 1e3, Double(written[v]) / 1e6, cpuMedian * 1e3 / Double(parsed.count), c[0] * 1e3 / Double(parsed.count)))
                let p = pages[v]
                print(
                    "  chunks: \(p.pageLevelChunks) page-level, \(p.wholeChunks) whole; pages re-encoded \(p.reencodedPages) (flat \(p.flatPages),"
                        + " edited in place \(p.splicedPages)), bounds kept \(p.keptPageStatistics); dictionary entries neutralised"
                        + " \(p.neutralisedEntries), pages patched \(p.patchedDictionaries); chunk statistics kept \(p.keptChunkStatistics)")
            }
        } catch {
            FileHandle.standardError.write(Data("lethe-bench rewrite: \(error)\n".utf8))
            exit(1)
        }
    }
}

/// CPU time this thread has used (user + system), so a figure holds on a busy machine.
private func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
