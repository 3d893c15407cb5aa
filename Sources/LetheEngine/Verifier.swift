import Foundation
import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog

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
    /// Delta log files (commits, checkpoints) that hold the raw id's bytes.
    public var logHits: [String]?

    enum CodingKeys: String, CodingKey {
        case id, subjectKey = "subject_key", clean, at, datasets, objectsScanned = "objects_scanned"
        case recordsScanned = "records_scanned", found, unreadable, stateFilesScanned = "state_files_scanned"
        case stateHits = "state_hits", stateScanSkipped = "state_scan_skipped", logHits = "log_hits"
    }

    public var summary: String {
        if clean { return "clean" }
        var parts: [String] = []
        if !found.isEmpty { parts.append("residue in " + found.map { "\($0.object) (\($0.rows) rows)" }.joined(separator: ", ")) }
        if !unreadable.isEmpty { parts.append("unreadable: " + unreadable.map(\.object).joined(separator: ", ")) }
        if !stateHits.isEmpty { parts.append("raw id in state files: " + stateHits.joined(separator: ", ")) }
        if let l = logHits, !l.isEmpty { parts.append("raw id in Delta logs: " + l.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }

    public var json: [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(self)) ?? Data())
    }
}

extension Lethe {
    /// Verifies requests by id (or every erased/verified request with `all`).
    public func verify(ids: [String], all: Bool = false) async throws -> [Verification] {
        var rs: [ErasureRequest] = []
        if all {
            rs = try await meta.requests(status: nil).filter { $0.status == .erased || $0.status == .verified || ($0.status == .failed && $0.verification != nil) }
        } else {
            for id in ids { rs.append(try await request(id)) }
            for r in rs where !(r.status == .erased || r.status == .verified || (r.status == .failed && r.verification != nil)) {
                throw LetheError(.conflict, "request \(r.id) is \(r.status.rawValue): only erased requests can be verified (run `lethe run` first)")
            }
        }
        return try await verify(rs)
    }

    /// Residue scan for a batch of requests, independent of the index: every object of
    /// every dataset in their plans is listed from the store and scanned once for all
    /// their subject keys; then Lethe's state folder is searched for each raw id.
    /// Results are stored on the requests and in the audit log.
    func verify(_ requests: [ErasureRequest]) async throws -> [Verification] {
        guard !requests.isEmpty else { return [] }
        var datasetsOf: [String: [String]] = [:]
        var wanted: Set<String> = []
        for r in requests {
            let plan = r.plan.flatMap(ErasurePlan.decode)
            let names = (plan?.datasets ?? []).map(\.name).filter { config.dataset(named: $0)?.subject != nil }
            datasetsOf[r.id] = names
            wanted.formUnion(names)
        }
        let nfc = nfcKeys(requests)
        var found: [SubjectKey: [Verification.Found]] = [:]
        var unreadable: [String: [Verification.Found]] = [:]
        var objectsScanned: [String: Int] = [:]
        var records: [String: Int64] = [:]
        for d in config.datasets where wanted.contains(d.name) {
            let f = try format(for: d)
            let (objects, listedOptions) = try await datasetObjects(d)
            guard let opts = listedOptions else { continue }
            let keys = Set(requests.map { subjectKey(of: $0, in: d, nfc) })
            let keyer = keyer(for: d)
            for o in objects {
                var hits: [SubjectKey: Int64] = [:]
                do {
                    let s = try await f.scan(o, in: store, options: opts, keyer: keyer) { _, k in
                        if keys.contains(k) { hits[k, default: 0] += 1 }
                    }
                    records[d.name, default: 0] += s.records
                } catch let e as LetheError {
                    unreadable[d.name, default: []].append(.init(dataset: d.name, object: o.key, rows: 0, issue: e.description))
                }
                objectsScanned[d.name, default: 0] += 1
                for (k, n) in hits { found[k, default: []].append(.init(dataset: d.name, object: o.key, rows: n)) }
            }
        }
        // Raw ids, unsealed in memory only; Lethe's own state is searched once for all of them.
        var raws: [String: SubjectID] = [:]
        for r in requests {
            if let sealed = r.sealedSubject { raws[r.id] = try secrets.unseal(sealed, requestID: r.id) }
        }
        let searchable = Array(Set(raws.values.map(\.bytes).filter { $0.count >= Self.minimumNeedle }))
        var stateScan: (files: Int, hits: [[UInt8]: [String]])?
        if let folder = stateFolder, !searchable.isEmpty {
            stateScan = try Self.searchFolder(folder, for: searchable)
        }
        // The Delta logs of the plans' tables, each file read once for all raw ids: dataset → id → files.
        var logScan: [String: [[UInt8]: [String]]] = [:]
        if !searchable.isEmpty {
            for d in config.datasets where d.format == .delta && wanted.contains(d.name) {
                var perID: [[UInt8]: [String]] = [:]
                let set = NeedleSet(searchable)
                for o in try await store.list(prefix: d.path + "/_delta_log") {
                    for id in set.matches(in: try await store.read(o.key)) { perID[id, default: []].append(o.key) }
                }
                logScan[d.name] = perID
            }
        }
        var out: [Verification] = []
        for r in requests {
            let names = datasetsOf[r.id] ?? []
            var v = Verification(id: r.id, subjectKey: r.subjectKey.hex, clean: true, at: now(), datasets: names,
                                 objectsScanned: names.reduce(0) { $0 + (objectsScanned[$1] ?? 0) },
                                 recordsScanned: names.reduce(0) { $0 + (records[$1] ?? 0) },
                                 found: names.flatMap { n in
                                     (found[subjectKey(of: r, in: config.dataset(named: n), nfc)] ?? []).filter { $0.dataset == n }
                                 },
                                 unreadable: names.flatMap { unreadable[$0] ?? [] },
                                 stateFilesScanned: 0, stateHits: [], stateScanSkipped: nil, logHits: nil)
            if let raw = raws[r.id] {
                if raw.bytes.count >= Self.minimumNeedle {
                    // The Delta logs of the plan's tables: stats and commitInfo must not name the subject.
                    v.logHits = names.flatMap { logScan[$0]?[raw.bytes] ?? [] }
                    if let stateScan {
                        v.stateFilesScanned = stateScan.files
                        v.stateHits = stateScan.hits[raw.bytes] ?? []
                    } else {
                        v.stateScanSkipped = "the state is not a local folder"
                    }
                } else {
                    v.stateScanSkipped = "the id is shorter than \(Self.minimumNeedle) bytes: a byte search would match at random"
                }
            } else {
                v.stateScanSkipped = "the raw id was destroyed at an earlier verification"
            }
            v.clean = v.found.isEmpty && v.unreadable.isEmpty && v.stateHits.isEmpty && (v.logHits ?? []).isEmpty
            let current = try await request(r.id)
            let details: [String: JSONValue] = [
                "subject_key": .string(r.subjectKey.hex), "clean": .bool(v.clean),
                "objects_scanned": .int(Int64(v.objectsScanned)), "records_scanned": .int(v.recordsScanned),
                "residue_objects": .int(Int64(v.found.count)), "unreadable_objects": .int(Int64(v.unreadable.count)),
                "state_hits": .int(Int64(v.stateHits.count)),
            ]
            if v.clean {
                try await transition(current, .verified(result: v.json, at: now()))
                try await audit("verified", request: r.id, actor: "lethe", details)
            } else if current.status == .erased || current.status == .verified {
                try await transition(current, .verificationFailed(result: v.json, reason: v.summary, at: now()))
                try await audit("verification_failed", request: r.id, actor: "lethe", details)
            } else {
                var c = current
                c.verification = v.json
                try await meta.updateRequest(c, expecting: current.status)
                try await audit("verification_failed", request: r.id, actor: "lethe", details)
            }
            out.append(v)
        }
        return out
    }

    /// Raw ids shorter than this are not searched for as bytes (they would match at random).
    static let minimumNeedle = 6

    /// Searches every file under a folder for byte strings (each at least `minimumNeedle` long)
    /// in one pass per file; returns the number of files and, per needle, the relative paths holding it.
    static func searchFolder(_ folder: String, for needles: [[UInt8]]) throws -> (files: Int, hits: [[UInt8]: [String]]) {
        var scanned = 0
        var hits: [[UInt8]: [String]] = [:]
        guard let e = FileManager.default.enumerator(atPath: folder) else { return (0, [:]) }
        let longest = needles.map(\.count).max() ?? 0
        let set = NeedleSet(needles.filter { $0.count >= minimumNeedle })
        while let rel = e.nextObject() as? String {
            let path = folder + "/" + rel
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                  let h = FileHandle(forReadingAtPath: path) else { continue }
            defer { try? h.close() }
            scanned += 1
            var carry: [UInt8] = []
            var seen = Set<[UInt8]>()
            while true {
                let chunk = h.readData(ofLength: 4 << 20)
                if chunk.isEmpty { break }
                let buf = carry + Array(chunk)
                seen.formUnion(set.matches(in: buf))
                carry = Array(buf.suffix(max(0, longest - 1)))
            }
            for n in seen { hits[n, default: []].append(rel) }
        }
        return (scanned, hits)
    }

    /// The needles (each at least `minimumNeedle` bytes) that occur in `hay`.
    static func search(_ hay: [UInt8], for needles: [[UInt8]]) -> Set<[UInt8]> {
        NeedleSet(needles.filter { $0.count >= minimumNeedle }).matches(in: hay)
    }
}
