import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The dictionary pages a read decompresses, kept for the rewrite of the same file that follows
/// (`DictionaryMemo`, issue 12): an erasure keys the subject column's candidate rows, then rewrites
/// the file without them; the rewrite takes the page the keying decompressed instead of
/// decompressing it again, and writes the same bytes as without it.
@Suite struct DictionaryMemoTests {
    @Test(arguments: ["dict_v1_onepage", "dict_v2_pages"]) func rewriteTakesThePageTheReadKept(writer: String) throws {
        let path = try #require(try PageRewriteFastPathTests.generated.get()[writer])
        let plain = try ParquetFile(source: try LocalFileSource(path: path), name: writer)
        let column = try #require(plain.schema.columns.firstIndex { $0.dottedPath == "s" })
        let rows: [Int64] = [3, 700, 1501]  // two in row group 0, one in row group 1
        var wanted = [Bool](repeating: false, count: Int(plain.metadata.rowGroups[0].numRows))
        wanted[3] = true
        wanted[700] = true

        // Without the memo: nothing is kept.
        var seen: [Int64] = []
        try plain.scanColumnEntries(column, rowGroup: 0, rows: wanted) { row, _, _ in seen.append(row) }
        #expect(plain.dictionaryMemo == nil)

        let remembering = plain.rememberingDictionaryPages()
        let memo = try #require(remembering.dictionaryMemo)
        var again: [Int64] = []
        try remembering.scanColumnEntries(column, rowGroup: 0, rows: wanted) { row, _, _ in again.append(row) }
        #expect(again == seen)
        #expect(memo.count == 1, "the keyed chunk's dictionary page is kept")

        // A reopening of the same bytes shares the pages kept.
        let reopened = try ParquetFile(source: try LocalFileSource(path: path), name: writer).sharingDictionaryPages(with: remembering)
        let (_, withMemo, r) = try PageCopyRewriteTests.rewrite(reopened, rows, options: PageRewriteOptions())
        #expect(memo.count == 0 && memo.taken == 1, "the rewrite took the page")
        #expect(r.pages.neutralisedEntries > 0)
        let (_, without, _) = try PageCopyRewriteTests.rewrite(plain, rows, options: PageRewriteOptions())
        #expect(withMemo == without)
    }

    /// A kept page whose size is not the page's is not used (the page is decompressed again).
    @Test func aPageOfAnotherSizeIsNotTaken() throws {
        let path = try #require(try PageRewriteFastPathTests.generated.get()["dict_v1_onepage"])
        let plain = try ParquetFile(source: try LocalFileSource(path: path), name: "dict_v1_onepage")
        let column = try #require(plain.schema.columns.firstIndex { $0.dottedPath == "s" })
        let remembering = plain.rememberingDictionaryPages()
        let memo = try #require(remembering.dictionaryMemo)
        memo.keep([1, 2, 3], rowGroup: 0, column: column)
        let (_, withMemo, _) = try PageCopyRewriteTests.rewrite(remembering, [3, 700], options: PageRewriteOptions())
        #expect(memo.taken == 0 && memo.count == 1)
        let (_, without, _) = try PageCopyRewriteTests.rewrite(plain, [3, 700], options: PageRewriteOptions())
        #expect(withMemo == without)
    }
}
