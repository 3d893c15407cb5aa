import Foundation
import LetheCore

/// The result of a residue scan for one request.
public struct Verification: Codable, Sendable, Equatable {
    public struct Found: Codable, Sendable, Equatable {
        public var dataset: String
        public var object: String
        public var rows: Int64
        public var issue: String?
    }
    public var id: String
    public var subjectKey: String
    public var clean: Bool
    public var at: Int64
    public var datasets: [String]
    public var objectsScanned: Int
    /// Delta logs replayed: a table's log is evidence of its own (a table the erasure emptied has
    /// no file left to read, and its log proves it holds no row).
    public var logsExamined: Int?
    /// Noncurrent versions of objects read (a bucket that keeps versions); nil when none.
    public var versionsExamined: Int?
    /// Plain datasets whose listing was read and held no object where the request's plan named the
    /// objects it erased: the erasure emptied them, and the listing proves no record is left.
    public var listingsExamined: Int?
    public var recordsScanned: Int64
    /// Records of the subject that remain, per object.
    public var found: [Found]
    /// Objects that could not be read (the scan cannot prove them clean).
    public var unreadable: [Found]
    public var stateFilesScanned: Int
    /// Files of Lethe's own state that hold the raw id's bytes.
    public var stateHits: [String]
    /// Why the state scan did not run, if it did not.
    public var stateScanSkipped: String?
    /// Delta log files (commits, checkpoints, `.crc`, …) with a field holding the subject's value.
    public var logHits: [String]?
    /// Why the scan cannot prove the subject gone, beyond objects: a dataset that could not be
    /// read or holds unsupported data, or nothing examined at all.
    public var problems: [String]?
    /// How the result was proven: `index` (per run: the index vouches for objects unchanged since
    /// they were indexed, the objects this run rewrote or that changed are read), `full` (every
    /// object read: `lethe verify`, and datasets the index cannot vouch for), `index+full` (both, by
    /// dataset). Nil in results stored before issue 12.
    public var proof: String?
    /// Objects listed in the datasets verified at index cost.
    public var objectsListed: Int?
    /// Of those, objects unchanged since they were indexed (proven by the index, not read).
    public var objectsUnchanged: Int?
    /// Of those, objects read again: rewritten by the run, or named by the index for the subject.
    public var objectsReread: Int?
    /// Of those read again, objects read only in the records their rewrite encoded anew (a Parquet
    /// row group that lost rows): the records copied byte for byte are proven by the index of the
    /// version erased from, whose postings put none of the request's records there. Nil when none.
    public var objectsRereadInPart: Int?
    /// Of those, objects new or changed since they were indexed: indexed now, then proven by the index.
    public var objectsIndexedNow: Int?
    /// Bytes of the objects read by the verification (object datasets verified at index cost).
    public var bytesRead: Int64?
    /// Objects the run rewrote whose bytes still hold the raw id outside the subject's records (a
    /// reference to the subject in another field of another record): reported, not residue; what to
    /// do with such references is a masking decision. Nil when none.
    public var mentions: [Found]?
    /// The unchanged objects (proven by the index) also asked what their own metadata says (Parquet
    /// bloom filters, full dictionaries, statistics): how many were asked, how many it ruled out for
    /// the subject, and by what. An object whose metadata showed the subject, or that changed, was
    /// read again instead. Nil when none was asked.
    public var evidence: Evidence?
    /// Crypto-shredding: true when the key store holds no data key of the subject (checked by every
    /// verification since issue 15), false when it still does (then the request is not clean).
    public var keyDestroyed: Bool?

    public struct Evidence: Codable, Sendable, Equatable {
        public var asked: Int
        public var ruledOut: Int
        public var by: [String]
        enum CodingKeys: String, CodingKey { case asked, ruledOut = "ruled_out", by }
    }

    enum CodingKeys: String, CodingKey {
        case id, subjectKey = "subject_key", clean, at, datasets, objectsScanned = "objects_scanned", logsExamined = "logs_examined"
        case listingsExamined = "listings_examined"
        case recordsScanned = "records_scanned", found, unreadable, stateFilesScanned = "state_files_scanned"
        case stateHits = "state_hits", stateScanSkipped = "state_scan_skipped", logHits = "log_hits", problems
        case proof, objectsListed = "objects_listed", objectsUnchanged = "objects_unchanged", objectsReread = "objects_reread"
        case objectsIndexedNow = "objects_indexed_now", bytesRead = "bytes_read", mentions
        case objectsRereadInPart = "objects_reread_in_part", evidence, versionsExamined = "versions_examined"
        case keyDestroyed = "key_destroyed"
    }

    public var summary: String {
        if clean { return "clean" }
        var parts: [String] = problems ?? []
        if !found.isEmpty { parts.append("residue in " + found.map { "\($0.object) (\($0.issue ?? "\($0.rows) rows"))" }.joined(separator: ", ")) }
        if !unreadable.isEmpty { parts.append("unreadable: " + unreadable.map(\.object).joined(separator: ", ")) }
        if !stateHits.isEmpty { parts.append("raw id in state files: " + stateHits.joined(separator: ", ")) }
        if let l = logHits, !l.isEmpty { parts.append("subject's value in Delta logs: " + l.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }

    /// The result as stored: compact JSON, keys sorted, absent optionals left out — what `JSONEncoder`
    /// with `.sortedKeys` writes, but for slashes, not escaped (as `ErasurePlan.json`); written byte by
    /// byte: a 1,000-request run stores 1,000 of them in its verdict phase.
    public var json: [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(512 + 96 * (found.count + unreadable.count + (mentions?.count ?? 0)))
        var first = true
        func key(_ k: StaticString) {
            if !first { b.append(UInt8(ascii: ",")) }
            first = false
            b.append(UInt8(ascii: "\""))
            k.withUTF8Buffer { b.append(contentsOf: $0) }
            b.append(UInt8(ascii: "\""))
            b.append(UInt8(ascii: ":"))
        }
        func int(_ k: StaticString, _ v: Int64?) {
            guard let v else { return }
            key(k)
            JSONText.append(v, into: &b)
        }
        func string(_ k: StaticString, _ v: String?) {
            guard let v else { return }
            key(k)
            JSONText.quote(v, into: &b)
        }
        func bool(_ k: StaticString, _ v: Bool?) {
            guard let v else { return }
            key(k)
            b += v ? Array("true".utf8) : Array("false".utf8)
        }
        func array(_ v: [String]) {
            b.append(UInt8(ascii: "["))
            for (i, x) in v.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                JSONText.quote(x, into: &b)
            }
            b.append(UInt8(ascii: "]"))
        }
        func strings(_ k: StaticString, _ v: [String]?) {
            guard let v else { return }
            key(k)
            array(v)
        }
        func founds(_ k: StaticString, _ v: [Found]?) {
            guard let v else { return }
            key(k)
            b.append(UInt8(ascii: "["))
            for (i, f) in v.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                b += Array(#"{"dataset":"#.utf8)
                JSONText.quote(f.dataset, into: &b)
                if let issue = f.issue {
                    b += Array(#","issue":"#.utf8)
                    JSONText.quote(issue, into: &b)
                }
                b += Array(#","object":"#.utf8)
                JSONText.quote(f.object, into: &b)
                b += Array(#","rows":"#.utf8)
                JSONText.append(f.rows, into: &b)
                b.append(UInt8(ascii: "}"))
            }
            b.append(UInt8(ascii: "]"))
        }
        b.append(UInt8(ascii: "{"))
        // The keys in the byte order of their names (`CodingKeys`).
        int("at", at)
        int("bytes_read", bytesRead)
        bool("clean", clean)
        strings("datasets", datasets)
        if let e = evidence {
            key("evidence")
            b += Array(#"{"asked":"#.utf8)
            JSONText.append(Int64(e.asked), into: &b)
            b += Array(#","by":"#.utf8)
            array(e.by)
            b += Array(#","ruled_out":"#.utf8)
            JSONText.append(Int64(e.ruledOut), into: &b)
            b.append(UInt8(ascii: "}"))
        }
        founds("found", found)
        string("id", id)
        bool("key_destroyed", keyDestroyed)
        int("listings_examined", listingsExamined.map(Int64.init))
        strings("log_hits", logHits)
        int("logs_examined", logsExamined.map(Int64.init))
        founds("mentions", mentions)
        int("objects_indexed_now", objectsIndexedNow.map(Int64.init))
        int("objects_listed", objectsListed.map(Int64.init))
        int("objects_reread", objectsReread.map(Int64.init))
        int("objects_reread_in_part", objectsRereadInPart.map(Int64.init))
        int("objects_scanned", Int64(objectsScanned))
        int("objects_unchanged", objectsUnchanged.map(Int64.init))
        strings("problems", problems)
        string("proof", proof)
        int("records_scanned", recordsScanned)
        int("state_files_scanned", Int64(stateFilesScanned))
        strings("state_hits", stateHits)
        string("state_scan_skipped", stateScanSkipped)
        string("subject_key", subjectKey)
        founds("unreadable", unreadable)
        int("versions_examined", versionsExamined.map(Int64.init))
        b.append(UInt8(ascii: "}"))
        return b
    }

    /// `json` as `JSONEncoder` writes it (tests compare the two).
    public var encodedJSON: [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(self)) ?? Data())
    }
}
