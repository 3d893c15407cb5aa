/// The index entries of an object rewritten without some of its records, derived from the entries
/// of the version that was read instead of a scan of the new version (issue 12, "no second scan").
///
/// Valid only when the rewrite kept every other record in order and added none (`EraseOutcome.exact`):
/// the new version's record `i` is then the old version's `i`-th surviving record.
public enum PostingDerivation {
    /// The postings of the new version: every dropped row removed from every posting (a posting of
    /// another key that shared a dropped row by prefix collision keeps its other rows), each
    /// surviving row shifted down by the number of dropped rows before it, empty postings left out.
    ///
    /// - Parameters:
    ///   - old: rows (0-based record ordinals, any order) by key prefix, of the version read.
    ///   - dropped: the dropped ordinals in the old numbering (any order; duplicates ignored).
    public static func derive(old: [Int64: [Int64]], dropped: [Int64]) -> [Int64: [Int64]] {
        var d = dropped.sorted()
        var w = 0
        for r in d where w == 0 || d[w - 1] != r {
            d[w] = r
            w += 1
        }
        d.removeSubrange(w...)
        var out: [Int64: [Int64]] = [:]
        out.reserveCapacity(old.count)
        for (key, rows) in old {
            var kept: [Int64] = []
            kept.reserveCapacity(rows.count)
            for row in rows.sorted() {
                // Number of dropped rows before `row`, and whether `row` itself was dropped.
                var lo = 0, hi = d.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if d[mid] < row { lo = mid + 1 } else { hi = mid }
                }
                if lo < d.count && d[lo] == row { continue }
                let shifted = row - Int64(lo)
                if kept.last != shifted { kept.append(shifted) }
            }
            if !kept.isEmpty { out[key] = kept }
        }
        return out
    }

    /// The new version's record count: the old one less the distinct dropped ordinals.
    public static func records(old: Int64, dropped: [Int64]) -> Int64 {
        old - Int64(Set(dropped).count)
    }
}
