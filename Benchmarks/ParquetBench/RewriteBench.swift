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
        var files: [String] = []
        var args = Array(CommandLine.arguments.dropFirst(2))
        while !args.isEmpty {
            let a = args.removeFirst()
            switch a {
            case "--drop": drop = Int(args.isEmpty ? "" : args.removeFirst()) ?? 0
            case "--runs": runs = Int(args.isEmpty ? "" : args.removeFirst()) ?? 0
            case "-h", "--help":
                print("usage: lethe-bench rewrite [--drop N] [--runs R] FILE...")
                return
            default: files.append(a)
            }
        }
        guard drop > 0, runs > 0, !files.isEmpty else {
            FileHandle.standardError.write(Data("usage: lethe-bench rewrite [--drop N] [--runs R] FILE...\n".utf8))
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
            var times: [Double] = []
            var cpu: [Double] = []
            var written = 0
            var pages = PageRewriteCounts()
            for _ in 0..<runs {
                let t0 = ContinuousClock.now
                let c0 = threadCPUSeconds()
                written = 0
                pages = PageRewriteCounts()
                for (file, rows, _) in parsed {
                    var sink = InMemorySink()
                    let r = try file.rewrite(droppingRows: rows, to: &sink)
                    written += sink.bytes.count
                    pages.pageLevelChunks += r.pages.pageLevelChunks
                    pages.wholeChunks += r.pages.wholeChunks
                    pages.reencodedPages += r.pages.reencodedPages
                    pages.flatPages += r.pages.flatPages
                    pages.neutralisedEntries += r.pages.neutralisedEntries
                    pages.patchedDictionaries += r.pages.patchedDictionaries
                    pages.keptPageStatistics += r.pages.keptPageStatistics
                    pages.keptChunkStatistics += r.pages.keptChunkStatistics
                }
                let d = ContinuousClock.now - t0
                cpu.append(threadCPUSeconds() - c0)
                times.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            }
            times.sort()
            cpu.sort()
            let median = times[times.count / 2]
            let cpuMedian = cpu[cpu.count / 2]
            print(
                String(
                    format:
                        "%d file(s), %.1f MB, %d row(s) dropped per file: median %.1f ms (%.2f ms per file, %.0f MB/s on one core; best %.1f ms), %.1f MB written; CPU (this thread) median %.2f ms per file, best %.2f",
                    parsed.count, Double(total) / 1e6, drop, median * 1e3, median * 1e3 / Double(parsed.count), Double(total) / 1e6 / median,
                    times[0] * 1e3, Double(written) / 1e6, cpuMedian * 1e3 / Double(parsed.count), cpu[0] * 1e3 / Double(parsed.count)))
            print(
                "  chunks: \(pages.pageLevelChunks) page-level, \(pages.wholeChunks) whole; pages re-encoded \(pages.reencodedPages) (flat \(pages.flatPages)),"
                    + " bounds kept \(pages.keptPageStatistics); dictionary entries neutralised \(pages.neutralisedEntries), pages patched"
                    + " \(pages.patchedDictionaries); chunk statistics kept \(pages.keptChunkStatistics)")
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
