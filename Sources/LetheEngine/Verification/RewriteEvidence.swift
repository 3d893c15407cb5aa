import Foundation
import LetheCore
import LetheFormats
import LetheStorage

/// What an object step's rewrite leaves for the run's verification, journaled with the step's end
/// (the `verify` member of the step's outcome) so that it survives a kill and a resumed job: the
/// version erased from, the version written, the records dropped (old numbering), whether the
/// written version is exactly the old one without them (`EraseOutcome.exact`), its record count,
/// and which of its records were encoded anew (`EraseOutcome.rewrittenRows`; nil: all).
///
/// The verification trusts none of it blindly: it applies only while the object is still listed
/// at `written` and the index still holds it at `from` with `records + dropped` records; a step
/// without it (run by an older build, re-run after a kill, nothing written) is read in full.
struct RewriteEvidence: Codable, Sendable, Equatable {
    var from: String
    var written: String?
    var removed: Bool
    var exact: Bool
    var dropped: [Int64]
    var records: Int64
    /// `[lower, upper)` pairs.
    var rewrittenRows: [[Int64]]?

    enum CodingKeys: String, CodingKey {
        case from, written, removed, exact, dropped, records, rewrittenRows = "rewritten_rows"
    }

    init(from version: String, _ o: EraseOutcome) {
        from = version
        written = o.written?.version
        removed = o.removed
        exact = o.exact
        dropped = o.droppedOrdinals
        records = o.kept
        rewrittenRows = o.rewrittenRows?.map { [$0.lowerBound, $0.upperBound] }
    }

    /// `rewrittenRows` as ranges (nil when absent or malformed).
    var rewrittenRanges: [Range<Int64>]? {
        guard let rewrittenRows else { return nil }
        var out: [Range<Int64>] = []
        for p in rewrittenRows {
            guard p.count == 2, p[0] >= 0, p[0] <= p[1] else { return nil }
            out.append(p[0]..<p[1])
        }
        return out
    }

    /// A Delta erasure's replacement file (`DeltaFileRewrite`): `from` the store version of the file
    /// removed (as read), `written` its replacement's; `dropped` and `records` in physical rows.
    init(from version: String, written: String, dropped: [Int64], records: Int64, rewrittenRows: [Range<Int64>]) {
        from = version
        self.written = written
        removed = false
        exact = true
        self.dropped = dropped
        self.records = records
        self.rewrittenRows = rewrittenRows.map { [$0.lowerBound, $0.upperBound] }
    }

    /// As a JSON member of a step's outcome.
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "from": .string(from), "removed": .bool(removed), "exact": .bool(exact),
            "dropped": .array(dropped.map(JSONValue.int)), "records": .int(records),
        ]
        if let written { o["written"] = .string(written) }
        if let rewrittenRows { o["rewritten_rows"] = .array(rewrittenRows.map { .array($0.map(JSONValue.int)) }) }
        return .object(o)
    }

    private struct Outcome: Decodable { var verify: RewriteEvidence? }
    private struct TableOutcome: Decodable {
        var verifyFiles: [RewriteEvidence]?
        enum CodingKeys: String, CodingKey { case verifyFiles = "verify_files" }
    }

    /// The evidence in a step's journaled outcome; nil when it holds none (or cannot be read).
    static func parse(_ outcome: String?) -> RewriteEvidence? {
        guard let outcome, outcome.hasPrefix("{") else { return nil }
        return (try? JSONDecoder().decode(Outcome.self, from: Data(outcome.utf8)))?.verify
    }

    /// The evidence of a Delta table step's journaled outcome (`verify_files`: one per replacement
    /// file, by store versions, never by key: a key may name a subject); empty when it holds none.
    static func parseFiles(_ outcome: String?) -> [RewriteEvidence] {
        guard let outcome, outcome.hasPrefix("{") else { return [] }
        return (try? JSONDecoder().decode(TableOutcome.self, from: Data(outcome.utf8)))?.verifyFiles ?? []
    }

    /// The old version's ordinal `row` in the new numbering: nil when it was dropped.
    static func shifted(_ row: Int64, dropped sorted: [Int64]) -> Int64? {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < row { lo = mid + 1 } else { hi = mid }
        }
        if lo < sorted.count && sorted[lo] == row { return nil }
        return row - Int64(lo)
    }

    /// The rows of the new version to read so that, with the index's postings of the batch's keys in
    /// the old version (`batchRows`), every record is accounted for: `rewrittenRanges` when each of
    /// those postings' rows was dropped or now lies in a rewritten range (the records copied byte for
    /// byte hold none of the batch's keys, as the index proves for the old version); nil (read
    /// everything) otherwise.
    func rowsToRead(batchRows: [Int64]) -> [Range<Int64>]? {
        guard let ranges = rewrittenRanges else { return nil }
        let sorted = Array(Set(dropped)).sorted()
        for r in batchRows {
            guard let n = Self.shifted(r, dropped: sorted) else { continue }
            if !ranges.contains(where: { $0.contains(n) }) { return nil }
        }
        return ranges
    }
}
