import Foundation
public import LetheCore
import LetheCatalog

/// Everything one request will touch: each dataset holding the subject (objects
/// and row counts from the index), the derived datasets lineage reaches, in
/// lineage order, and every dataset the index cannot vouch for (not indexed yet,
/// objects or the whole dataset unreadable, unsupported data): those may hold any
/// subject. Stored on the request as JSON; holds only keyed hashes, and names
/// objects by reference (`StateStore.objectRefs`) so a key naming a subject stays purgeable.
public struct ErasurePlan: Codable, Sendable, Equatable {
    public struct Object: Codable, Sendable, Equatable {
        /// The object key (plans made before references; `resolvedPlan` fills it for display).
        public var key: String?
        /// The object's reference (see `StateStore.objectRefs`).
        public var ref: Int64?
        public var rows: Int64
        /// `indexed`; `unreadable` for a quarantined object that may hold the subject;
        /// `unsupported` for one holding data Lethe refuses by name.
        public var state: String
        /// Why the object is quarantined (display only: filled by `resolvedPlan`).
        public var issue: String?
    }
    public struct Dataset: Codable, Sendable, Equatable {
        public var name: String
        public var format: String
        /// `holds` (the index found the subject), `derived` (reached through lineage), `rebuild`,
        /// or `may_hold` (the index cannot vouch for the dataset: see `state`).
        public var role: String
        public var derivedFrom: [String]
        public var objects: [Object]
        public var rows: Int64
        public var rebuild: String?
        /// Nil when fully indexed; `partial` (some objects could not be read), `unindexed`
        /// (never indexed), `unreadable` or `unsupported` (the whole dataset; see `issue`).
        public var state: String?
        public var issue: String?
        /// `mask` or `blank` when the dataset's `erase:` keeps the subject's records changed; nil: deleted.
        public var action: String? = nil
    }
    public var subjectKey: String
    public var plannedAt: Int64
    public var datasets: [Dataset]
    public var totalObjects: Int
    public var totalRows: Int64
    /// The subject's key in `normalize: nfc` datasets when it differs from `subjectKey` (see `nfcKey(for:)`).
    public var nfcSubjectKey: String? = nil
    /// Crypto-shredding: the data keys to destroy (`held`: the run destroys them before any object
    /// step) or destroyed by the run that made this plan (`destroyed`); nil when the subject has none.
    public var shred: [ShredKey]? = nil

    /// A data key a plan lists (keyed hashes and ids only; never key material).
    public struct ShredKey: Codable, Sendable, Equatable {
        public var subjectKey: String
        public var keyID: String?
        public var kek: String?
        public var state: String
        enum CodingKeys: String, CodingKey { case subjectKey = "subject_key", keyID = "key_id", kek, state }
    }

    enum CodingKeys: String, CodingKey {
        case subjectKey = "subject_key", plannedAt = "planned_at", datasets
        case totalObjects = "total_objects", totalRows = "total_rows", nfcSubjectKey = "nfc_subject_key", shred
    }

    /// The plan as stored: compact JSON, keys sorted, absent optionals left out — what `JSONEncoder` with
    /// `.sortedKeys` writes, but for slashes, not escaped (so a purge finds an id holding one); built as a
    /// `JSONValue`: `forget --from` plans 100,000 subjects.
    public var json: [UInt8] {
        // Written byte by byte, keys in sorted order (see `JSONText`): no dictionaries, no `String`.
        var b: [UInt8] = []
        b.reserveCapacity(160 + datasets.count * 160 + totalObjects * 48)
        func key(_ k: StaticString, first: Bool = false) {
            if !first { b.append(UInt8(ascii: ",")) }
            b.append(UInt8(ascii: "\""))
            k.withUTF8Buffer { b.append(contentsOf: $0) }
            b.append(UInt8(ascii: "\""))
            b.append(UInt8(ascii: ":"))
        }
        b += Array(#"{"datasets":["#.utf8)
        for (i, d) in datasets.enumerated() {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.append(UInt8(ascii: "{"))
            if let v = d.action {
                key("action", first: true)
                JSONText.quote(v, into: &b)
            }
            key("derived_from", first: d.action == nil)
            b.append(UInt8(ascii: "["))
            for (j, f) in d.derivedFrom.enumerated() {
                if j > 0 { b.append(UInt8(ascii: ",")) }
                JSONText.quote(f, into: &b)
            }
            b.append(UInt8(ascii: "]"))
            key("format")
            JSONText.quote(d.format, into: &b)
            if let v = d.issue {
                key("issue")
                JSONText.quote(v, into: &b)
            }
            key("name")
            JSONText.quote(d.name, into: &b)
            key("objects")
            b.append(UInt8(ascii: "["))
            for (j, x) in d.objects.enumerated() {
                if j > 0 { b.append(UInt8(ascii: ",")) }
                b.append(UInt8(ascii: "{"))
                var first = true
                if let v = x.issue {
                    key("issue", first: first)
                    JSONText.quote(v, into: &b)
                    first = false
                }
                if let v = x.key {
                    key("key", first: first)
                    JSONText.quote(v, into: &b)
                    first = false
                }
                if let v = x.ref {
                    key("ref", first: first)
                    JSONText.append(v, into: &b)
                    first = false
                }
                key("rows", first: first)
                JSONText.append(x.rows, into: &b)
                key("state")
                JSONText.quote(x.state, into: &b)
                b.append(UInt8(ascii: "}"))
            }
            b.append(UInt8(ascii: "]"))
            if let v = d.rebuild {
                key("rebuild")
                JSONText.quote(v, into: &b)
            }
            key("role")
            JSONText.quote(d.role, into: &b)
            key("rows")
            JSONText.append(d.rows, into: &b)
            if let v = d.state {
                key("state")
                JSONText.quote(v, into: &b)
            }
            b.append(UInt8(ascii: "}"))
        }
        b.append(UInt8(ascii: "]"))
        if let n = nfcSubjectKey {
            key("nfc_subject_key")
            JSONText.quote(n, into: &b)
        }
        key("planned_at")
        JSONText.append(plannedAt, into: &b)
        if let shred {
            key("shred")
            b.append(UInt8(ascii: "["))
            for (i, k) in shred.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                b.append(UInt8(ascii: "{"))
                var first = true
                if let v = k.kek {
                    key("kek", first: true)
                    JSONText.quote(v, into: &b)
                    first = false
                }
                if let v = k.keyID {
                    key("key_id", first: first)
                    JSONText.quote(v, into: &b)
                    first = false
                }
                key("state", first: first)
                JSONText.quote(k.state, into: &b)
                key("subject_key")
                JSONText.quote(k.subjectKey, into: &b)
                b.append(UInt8(ascii: "}"))
            }
            b.append(UInt8(ascii: "]"))
        }
        key("subject_key")
        JSONText.quote(subjectKey, into: &b)
        key("total_objects")
        JSONText.append(Int64(totalObjects), into: &b)
        key("total_rows")
        JSONText.append(totalRows, into: &b)
        b.append(UInt8(ascii: "}"))
        return b
    }

    /// `json` as `JSONEncoder` writes it (tests compare the two).
    public var encodedJSON: [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(self)) ?? Data())
    }

    /// A stored plan, or nil when the bytes are not one. Read through the byte parser (`JSONValue.parse`)
    /// with the `Codable` conformance's rules (the same keys required, `null` as absent for optionals,
    /// unknown keys ignored; `ErasurePlanDecodeTests` holds the two together): a 1,000-request run reads
    /// each plan several times (planning, NFC keys, scope), and `JSONDecoder` took ~85 µs a plan.
    public static func decode(_ bytes: [UInt8]) -> ErasurePlan? {
        guard let j = try? JSONValue.parse(bytes) else { return nil }
        return ErasurePlan(json: j)
    }

    /// `decode` through Foundation's `JSONDecoder` (tests compare the two).
    public static func decodedByFoundation(_ bytes: [UInt8]) -> ErasurePlan? {
        try? JSONDecoder().decode(ErasurePlan.self, from: Data(bytes))
    }

    /// A stored plan's `total_objects` and `total_rows` without decoding it (listings of 100,000
    /// requests): the last occurrence of each top-level key. A string value cannot hold `"total_rows":`
    /// (its quotes would be escaped) and no nested object has these keys. Nil when absent.
    public static func totals(_ bytes: [UInt8]) -> (objects: Int, rows: Int64)? {
        func number(after key: String) -> Int64? {
            let k = Array(key.utf8)
            guard bytes.count > k.count else { return nil }
            var i = bytes.count - k.count
            while i >= 0 {
                if bytes[i] == k[0], bytes[i..<(i + k.count)].elementsEqual(k) {
                    var j = i + k.count, n: Int64 = 0, digits = 0
                    while j < bytes.count, bytes[j] >= 48, bytes[j] <= 57, digits < 18 {
                        n = n * 10 + Int64(bytes[j] - 48)
                        j += 1
                        digits += 1
                    }
                    return digits > 0 && j < bytes.count && (bytes[j] == UInt8(ascii: ",") || bytes[j] == UInt8(ascii: "}")) ? n : nil
                }
                i -= 1
            }
            return nil
        }
        guard let o = number(after: #""total_objects":"#), let r = number(after: #""total_rows":"#) else { return nil }
        return (Int(o), r)
    }

    /// Why Lethe refuses to file a request with this plan (data it cannot handle, named), or nil.
    public var refusal: String? {
        var parts: [String] = []
        for d in datasets {
            if d.state == "unsupported" { parts.append("dataset `\(d.name)` is unsupported: \(d.issue ?? "")") }
            let n = d.objects.filter { $0.state == "unsupported" }.count
            if n > 0 { parts.append("dataset `\(d.name)` has \(n) object(s) Lethe cannot handle (see `lethe index`)") }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}

extension ErasurePlan {
    /// The plan a parsed JSON value holds (see `decode`), or nil.
    init?(json j: JSONValue) {
        guard let o = j.object else { return nil }
        // An optional: absent or null is nil; present with another type fails the whole plan.
        func optString(_ v: JSONValue?) -> String?? {
            guard let v, !v.isNull else { return .some(nil) }
            return v.string.map { .some($0) } ?? nil
        }
        func optInt(_ v: JSONValue?) -> Int64?? {
            guard let v, !v.isNull else { return .some(nil) }
            return v.int.map { .some($0) } ?? nil
        }
        func strings(_ v: JSONValue?) -> [String]? {
            guard let a = v?.array else { return nil }
            var out: [String] = []
            out.reserveCapacity(a.count)
            for x in a {
                guard let s = x.string else { return nil }
                out.append(s)
            }
            return out
        }
        guard let subjectKey = o["subject_key"]?.string, let plannedAt = o["planned_at"]?.int,
            let total = o["total_objects"]?.int, let totalObjects = Int(exactly: total), let totalRows = o["total_rows"]?.int,
            let ds = o["datasets"]?.array, let nfc = optString(o["nfc_subject_key"])
        else { return nil }
        var datasets: [Dataset] = []
        datasets.reserveCapacity(ds.count)
        for dv in ds {
            guard let d = dv.object, let name = d["name"]?.string, let format = d["format"]?.string, let role = d["role"]?.string,
                let derivedFrom = strings(d["derived_from"]), let os = d["objects"]?.array, let rows = d["rows"]?.int,
                let rebuild = optString(d["rebuild"]), let state = optString(d["state"]), let issue = optString(d["issue"]),
                let action = optString(d["action"])
            else { return nil }
            var objects: [Object] = []
            objects.reserveCapacity(os.count)
            for ov in os {
                guard let x = ov.object, let rows = x["rows"]?.int, let state = x["state"]?.string, let key = optString(x["key"]),
                    let ref = optInt(x["ref"]), let issue = optString(x["issue"])
                else { return nil }
                objects.append(Object(key: key, ref: ref, rows: rows, state: state, issue: issue))
            }
            datasets.append(
                Dataset(
                    name: name, format: format, role: role, derivedFrom: derivedFrom, objects: objects, rows: rows, rebuild: rebuild,
                    state: state, issue: issue, action: action))
        }
        var shred: [ShredKey]?
        if let v = o["shred"], !v.isNull {
            guard let a = v.array else { return nil }
            var keys: [ShredKey] = []
            for kv in a {
                guard let k = kv.object, let sk = k["subject_key"]?.string, let state = k["state"]?.string,
                    let keyID = optString(k["key_id"]), let kek = optString(k["kek"])
                else { return nil }
                keys.append(ShredKey(subjectKey: sk, keyID: keyID, kek: kek, state: state))
            }
            shred = keys
        }
        self.init(
            subjectKey: subjectKey, plannedAt: plannedAt, datasets: datasets, totalObjects: totalObjects, totalRows: totalRows,
            nfcSubjectKey: nfc, shred: shred)
    }
}

extension ErasurePlan.Dataset {
    enum CodingKeys: String, CodingKey {
        case name, format, role, derivedFrom = "derived_from", objects, rows, rebuild, state, issue, action
    }
}

extension Lethe {
    /// Plans the erasure of one subject from the index and the lineage.
    public func plan(_ key: SubjectKey, nfc: SubjectKey? = nil) async throws -> ErasurePlan {
        try await plans([key], nfc: nfc.map { [key: $0] } ?? [:], coverage: try await coverage())[key]!
    }

    /// Plans many subjects at once (one pass over what the index cannot vouch for).
    /// `nfc`: the NFC key of a subject whose key differs in `normalize: nfc` datasets (see `nfcKey(for:)`).
    /// `postings`: the keys' index entries when the caller has read them already (`postings(_:nfc:)` of
    /// the same keys and `nfc`), so that a run reads the index once for its plans and its steps.
    func plans(
        _ keys: [SubjectKey], nfc: [SubjectKey: SubjectKey] = [:], coverage: Coverage, destroyed: Set<SubjectKey> = [],
        postings known: [SubjectKey: [Posting]]? = nil
    ) async throws
        -> [SubjectKey: ErasurePlan]
    {
        let at = now()
        let unique = Array(Set(keys))
        let held = try await Trace.span("plans: held data keys") { try await heldDataKeys(unique + Array(nfc.values)) }
        let postings: [SubjectKey: [Posting]]
        if let known {
            postings = known
        } else {
            postings = try await Trace.span("plans: postings of \(unique.count) subjects") { try await self.postings(unique, nfc: nfc) }
        }
        var t0 = ContinuousClock.now
        // Each object once (by its id), whatever the number of postings naming it.
        var objects: [Int64: IndexedObject] = [:]
        for ps in postings.values {
            for p in ps where objects[p.object.id] == nil { objects[p.object.id] = p.object }
        }
        var keysByDataset: [String: Set<String>] = [:]
        for o in objects.values { keysByDataset[o.dataset, default: []].insert(o.key) }
        for (d, q) in coverage.quarantined { keysByDataset[d, default: []].formUnion(q.map(\.key)) }
        var refs: [String: [String: Int64]] = [:]
        for (d, ks) in keysByDataset { refs[d] = try await objectRefs(d, Array(ks)) }
        // A posting's object reference by the object's id (no hashing of its key per posting).
        var refOfObject: [Int64: Int64] = [:]
        refOfObject.reserveCapacity(objects.count)
        for (id, o) in objects { if let r = refs[o.dataset]?[o.key] { refOfObject[id] = r } }
        Trace.mark("plans: object references", since: t0)
        t0 = ContinuousClock.now
        defer { Trace.mark("plans: \(unique.count) plans built", since: t0) }
        let incomplete = coverage.incomplete, refsByDataset = refs, refByID = refOfObject, config = self.config
        @Sendable func plan(_ k: SubjectKey) -> ErasurePlan {
            let refs = refsByDataset
            var byDataset: [String: [ErasurePlan.Object]] = [:]
            for p in postings[k] ?? [] {
                byDataset[p.object.dataset, default: []].append(
                    .init(key: nil, ref: refByID[p.object.id], rows: Int64(RecordOrdinal.records(p.rows)), state: "indexed"))
            }
            let holding = Set(byDataset.keys)
            let reached = Set(config.downstream(of: holding).map(\.name))
            var datasets: [ErasurePlan.Dataset] = []
            for d in config.datasets where holding.contains(d.name) || reached.contains(d.name) || incomplete.contains(d.name) {
                var objects = (byDataset[d.name] ?? []).sorted { ($0.ref ?? 0) < ($1.ref ?? 0) }
                var state: String?, issue: String?
                if d.subject != nil {
                    // An unreadable object may hold the subject: the run must try it, and fails the request while it cannot.
                    for q in coverage.quarantined[d.name] ?? [] {
                        objects.append(
                            .init(
                                key: nil, ref: refs[d.name]?[q.key], rows: 0,
                                state: q.issueCode == LetheError.Code.unsupported.description ? "unsupported" : "unreadable"))
                    }
                    if let i = coverage.issues[d.name] {
                        state = i.kind.rawValue; issue = i.message
                    } else if coverage.unindexed.contains(d.name) {
                        state = "unindexed"; issue = "never indexed: run `lethe index`"
                    } else if coverage.quarantined[d.name] != nil {
                        state = "partial"
                    }
                }
                let role =
                    holding.contains(d.name)
                    ? "holds"
                    : reached.contains(d.name) ? (d.subject == nil ? "rebuild" : "derived") : "may_hold"
                datasets.append(
                    .init(
                        name: d.name, format: d.format.rawValue, role: role, derivedFrom: d.derivedFrom,
                        objects: objects, rows: objects.reduce(0) { $0 + $1.rows }, rebuild: d.rebuild,
                        state: state, issue: issue, action: d.erase == .delete ? nil : d.erase.rawValue))
            }
            var plan = ErasurePlan(
                subjectKey: k.hex, plannedAt: at, datasets: datasets,
                totalObjects: datasets.reduce(0) { $0 + $1.objects.count },
                totalRows: datasets.reduce(0) { $0 + $1.rows }, nfcSubjectKey: nfc[k]?.hex)
            var shred: [ErasurePlan.ShredKey] = []
            for s in [k] + (nfc[k].map { [$0] } ?? []) {
                if let w = held[s] {
                    shred.append(.init(subjectKey: s.hex, keyID: Hex.encode(w.keyID), kek: w.kek, state: "held"))
                } else if destroyed.contains(s) {
                    shred.append(.init(subjectKey: s.hex, keyID: nil, kek: nil, state: "destroyed"))
                }
            }
            plan.shred = shred.isEmpty ? nil : shred
            return plan
        }
        var out: [SubjectKey: ErasurePlan] = [:]
        out.reserveCapacity(unique.count)
        guard unique.count >= Self.partThreshold else {
            for k in unique { out[k] = plan(k) }
            return out
        }
        // Many subjects (a `forget --from`): built in parts, one per core.
        let built = try await boundedMap(Self.parts(unique.count), limit: Self.maxParts) { r in unique[r].map { ($0, plan($0)) } }
        for part in built { for (k, p) in part { out[k] = p } }
        return out
    }

    /// A plan with its object keys filled in from their references (for display); an object whose
    /// name was purged (its key named an erased subject) keeps only its reference.
    public func resolvedPlan(_ plan: ErasurePlan) async throws -> ErasurePlan {
        var p = plan
        let names = try await meta.objectNames(plan.datasets.flatMap { $0.objects.compactMap(\.ref) })
        var issues: [String: [String: String]] = [:]
        for (i, d) in p.datasets.enumerated() {
            if d.objects.contains(where: { $0.state != "indexed" }) && issues[d.name] == nil {
                var m: [String: String] = [:]
                for o in try await meta.objects(dataset: d.name) where o.status == .quarantined { m[o.key] = o.issue }
                issues[d.name] = m
            }
            for (j, o) in d.objects.enumerated() {
                if o.key == nil, let r = o.ref, let n = names[r] { p.datasets[i].objects[j].key = n.key }
                if o.state != "indexed", let k = p.datasets[i].objects[j].key { p.datasets[i].objects[j].issue = issues[d.name]?[k] }
            }
        }
        return p
    }
}
