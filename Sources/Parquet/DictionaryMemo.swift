import Synchronization

/// Dictionary pages a reading of a file decompressed, kept for a rewrite of the same file that
/// follows it: an erasure keys the candidate rows of the subject column (its dictionary page
/// decompressed to look up their entries), then rewrites the file, whose page-level rewrite needs
/// that page again to neutralise the entries only dropped rows held. Attached to a `ParquetFile`
/// only on request (`rememberingDictionaryPages()`); a page is handed over once (`take`), so it
/// lives no longer than the rewrite that needs it.
public final class DictionaryMemo: Sendable {
    private let pages = Mutex<(kept: [Int: [UInt8]], taken: Int)>(([:], 0))

    init() {}

    /// The key of the dictionary page of column `column` in row group `rowGroup`.
    static func key(rowGroup: Int, column: Int) -> Int { rowGroup << 24 | column }

    func keep(_ data: [UInt8], rowGroup: Int, column: Int) {
        pages.withLock { $0.kept[Self.key(rowGroup: rowGroup, column: column)] = data }
    }

    /// The page kept for the chunk, if it decompresses to `size` bytes (its header's size).
    func take(rowGroup: Int, column: Int, size: Int) -> [UInt8]? {
        pages.withLock { m in
            let k = Self.key(rowGroup: rowGroup, column: column)
            guard let data = m.kept[k], data.count == size else { return nil }
            m.kept[k] = nil
            m.taken += 1
            return data
        }
    }

    /// How many pages are held, and how many were taken (tests).
    var count: Int { pages.withLock { $0.kept.count } }
    var taken: Int { pages.withLock { $0.taken } }
}

extension ParquetFile {
    /// This file with its decompressed dictionary pages kept as reads decompress them, for a
    /// rewrite of it that follows (`DictionaryMemo`).
    public func rememberingDictionaryPages() -> ParquetFile {
        var f = self
        f.dictionaryMemo = DictionaryMemo()
        return f
    }

    /// This file with the kept dictionary pages of `other` (another opening of the same bytes, e.g.
    /// with more of them fetched), if it keeps any.
    public func sharingDictionaryPages(with other: ParquetFile) -> ParquetFile {
        var f = self
        f.dictionaryMemo = other.dictionaryMemo
        return f
    }
}
