import Foundation
import LetheTestSupport
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
}
