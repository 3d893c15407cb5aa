// lethe-bench: the benchmarks of docs/benchmarks.md, one program (built only with LETHE_BENCH set).
//
//   LETHE_BENCH=1 swift build -c release --product lethe-bench
//   .build/release/lethe-bench index|erase|parquet|rewrite|delta|stream|verified|postings|search|s3|serve|protect [options]   (--help after each)
import Foundation
import IndexBenchmark
import DeltaBenchmark
import ParquetBenchmark
import StreamBenchmark
import VerifiedBenchmark
import S3Benchmark
import ServeBenchmark
import ProtectBenchmark
import LetheStorage

// As the lethe CLI does: large buffers freed are reused, not zeroed anew by the kernel each time.
ProcessMemory.keepFreedMemory()

switch CommandLine.arguments.dropFirst().first {
case "index": await LetheBench.main(erase: false)  // lake, index backfill, index size, locate
case "erase": await LetheBench.main(erase: true)  // the same, then erasure of 1 and 1,000 subjects vs a full scan
case "parquet": await ParquetBench.main()  // Parquet scan and erasure vs pyarrow
case "rewrite": await RewriteBench.main()  // the Parquet rewrite alone, on given files (one core, in memory)
case "delta": await DeltaBench.main()  // Delta erasure vs delta-rs
case "stream": await StreamBench.main()  // lethe filter vs a Python filter
case "verified": await VerifiedBench.main()  // approval → verified vs the peers (issue 12)
case "search": await SearchBench.main()  // the sweep's raw-id search over plain JSON Lines vs GNU grep (issue 16)
case "postings": await PostingsBench.main()  // a rewritten object's index entries: replaced vs derived (issue 12)
case "s3": await S3Bench.main()  // the same lake on a local folder and on S3 (moto): time, requests, bytes (issue 13)
case "serve": await ServeBench.main()  // lethe serve on loopback: 1,000 concurrent filings, 10,000 locates (issue 14)
case "protect": await ProtectBench.main()  // crypto-shredding: protect/reveal MB/s, key destruction, key store size vs Python AESGCM (issue 15)
default:
    FileHandle.standardError.write(
        Data("usage: lethe-bench index|erase|parquet|rewrite|delta|stream|verified|postings|search|s3|serve|protect [options] (--help after each)\n".utf8))
    exit(2)
}
