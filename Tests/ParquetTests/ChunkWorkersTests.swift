import Foundation
import LetheTestSupport
import Synchronization
import Testing
@testable import Parquet

/// A row group's columns rewritten on several threads (`PageRewriteOptions.chunkWorkers`, issue 12:
/// a Delta erasure's last files of a wave use the cores the others leave idle) give the bytes the
/// rewrite one column after the other gives.
@Suite struct ChunkWorkersTests {
    @Test(arguments: PageRewriteFastPathTests.writers) func sameBytesOnSeveralThreads(writer: String) throws {
        let path = try #require(try PageRewriteFastPathTests.generated.get()[writer])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        var parallel = PageRewriteOptions()
        parallel.chunkWorkers = 3
        for rows: [Int64] in [[0], [5, 1600, 2999], Array(stride(from: 7, to: 3000, by: 97))] {
            let (_, one, r1) = try PageCopyRewriteTests.rewrite(file, rows, options: PageRewriteOptions())
            let (_, several, r3) = try PageCopyRewriteTests.rewrite(file, rows, options: parallel)
            #expect(one == several, "\(writer) \(rows.count) rows")
            #expect(r1.pages.pageLevelChunks == r3.pages.pageLevelChunks && r1.pages.wholeChunks == r3.pages.wholeChunks)
        }
    }

    /// A read that fails inside a chunk's task (a partial read of the file that did not fetch the
    /// chunk: a Delta erasure's `MissRecordingSource`) leaves that chunk to the whole-chunk path: here the
    /// read fails once and the whole-chunk path's read succeeds, so the file is written with that
    /// chunk re-encoded whole and the others page by page, the same rows as on one thread; when the
    /// chunk cannot be read at all, the rewrite throws the read's error (the erasure then reads the
    /// whole file) instead of writing a file without the chunk.
    @Test(arguments: PageRewriteFastPathTests.writers) func aChunkTaskThatCannotReadLeavesTheChunkToTheWholeChunkPath(writer: String) throws {
        let path = try #require(try PageRewriteFastPathTests.generated.get()[writer])
        let file = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        let rows: [Int64] = [5, 700, 1400]  // row group 0
        let (_, _, r1) = try PageCopyRewriteTests.rewrite(file, rows, options: PageRewriteOptions())
        let expected = expectedAfterDrop(try readAllProjections(file), rows)
        var parallel = PageRewriteOptions()
        parallel.chunkWorkers = 3
        let column = 1  // i32, written page by page
        let chunk = try file.chunkRange(column: column, rowGroup: 0)

        let flaky = FailingSource(try LocalFileSource(path: path), failing: chunk, times: 1)
        let (out, _, r3) = try PageCopyRewriteTests.rewrite(file.reading(from: flaky), rows, options: parallel)
        #expect(flaky.failures == 1)
        #expect(r1.pages.wholeChunks + 1 == r3.pages.wholeChunks && r1.pages.pageLevelChunks == r3.pages.pageLevelChunks + 1, "\(r1.pages) \(r3.pages)")
        let same = try readAllProjections(out) == expected
        #expect(same, "the rows read back differ from the original's without the rows dropped")

        let missing = FailingSource(try LocalFileSource(path: path), failing: chunk, times: .max)
        var sink = InMemorySink()
        #expect(throws: ParquetError.self) { try file.reading(from: missing).rewrite(droppingRows: rows, to: &sink, pageOptions: parallel) }
        #expect(missing.failures == 2)  // the chunk's task, then the whole-chunk path
    }
}

/// A source whose reads of one range fail (`.io`) the first `times` times.
final class FailingSource: ParquetSource {
    let base: any ParquetSource
    let range: Range<Int64>
    let times: Int
    private let failed = Mutex(0)
    init(_ base: any ParquetSource, failing range: Range<Int64>, times: Int) {
        self.base = base
        self.range = range
        self.times = times
    }
    var size: Int64 { base.size }
    var failures: Int { failed.withLock { $0 } }
    func read(_ r: Range<Int64>) throws -> [UInt8] {
        let fail =
            r == range
            && failed.withLock { n in
                guard n < times else { return false }
                n += 1
                return true
            }
        if fail { throw ParquetError(.io, "read \(r) outside the ranges fetched") }
        return try base.read(r)
    }
}
