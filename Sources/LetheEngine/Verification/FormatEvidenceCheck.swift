import Foundation
import LetheCore
import LetheStorage
import LetheFormats

/// The index-independent cross-check of a run's verification at index cost (issue 12: "where the
/// format carries its own evidence, use it"): each Parquet object the index proves clean (unchanged
/// since indexed, its postings naming no subject of the batch) is also asked what its own metadata
/// says about the batch's raw ids — bloom filters, full dictionaries, min/max statistics
/// (`ParquetFormat.evidence`), a footer and a few small ranges per object.
///
/// - Evidence that an object holds a subject (its dictionary has the value) contradicts the index:
///   the object is read again, never assumed clean. So is an object that changed since the listing.
/// - Evidence that it cannot hold them is counted (`ruledOut`), and named in the verification, as
///   a second proof beside the index's; where metadata cannot tell, the index's proof stands alone.
///
/// At most `limit` objects per dataset are asked (the first in key order), and the verification says
/// how many were: the cross-check is cheap per object, not free per lake.
struct FormatEvidenceCheck: Sendable {
    /// Objects asked, ruled out for every raw id, and to read again (contradicted, or changed).
    var asked = 0
    var ruledOut = 0
    var reread: [String] = []
    /// The kinds of evidence that ruled objects out (`bloom filter`, `dictionary`, `statistics`).
    var kinds: Set<String> = []

    static let limit = 1_000

    /// Asks `objects` (unchanged, proven by the index) of dataset `d` about `rawIDs`; nothing for a
    /// format without evidence, a dataset with NFC normalisation, or no raw ids held.
    static func run(
        _ d: DatasetSpec, _ f: any RecordFormat, _ objects: [ObjectInfo], options: FormatOptions, rawIDs: [[UInt8]],
        store: any ObjectStore, limit: Int = limit
    ) async throws -> FormatEvidenceCheck {
        var out = FormatEvidenceCheck()
        guard let parquet = f as? ParquetFormat, !rawIDs.isEmpty, !objects.isEmpty else { return out }
        let normalized = d.normalization != .none
        let chosen = Array(objects.sorted { $0.key < $1.key }.prefix(limit))
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount * 2, 16))
        enum Answer: Sendable { case evidence([FormatEvidence]), changed, unreadable }
        try await withThrowingTaskGroup(of: (String, Answer).self) { group in
            var next = 0
            func launch() {
                guard next < chosen.count else { return }
                let o = chosen[next]
                next += 1
                group.addTask {
                    do {
                        return (o.key, .evidence(try await parquet.evidence(o, in: store, options: options, normalized: normalized, rawIDs: rawIDs)))
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch let e as LetheError where e.code == .conflict || e.code == .notFound {
                        return (o.key, .changed)
                    } catch {
                        return (o.key, .unreadable)
                    }
                }
            }
            for _ in 0..<workers { launch() }
            while let (key, answer) = try await group.next() {
                out.asked += 1
                switch answer {
                case .changed:
                    out.reread.append(key)
                case .unreadable:
                    // A footer the evidence reader cannot take: no second proof, the index's stands.
                    break
                case .evidence(let e):
                    if e.contains(.present) {
                        out.reread.append(key)
                    } else if e.allSatisfy({ if case .absent = $0 { return true } else { return false } }) {
                        out.ruledOut += 1
                        for case .absent(let by) in e { out.kinds.formUnion(by) }
                    }
                }
                launch()
            }
        }
        out.reread.sort()
        return out
    }
}
