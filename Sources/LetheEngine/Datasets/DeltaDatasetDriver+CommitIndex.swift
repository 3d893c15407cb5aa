import LetheCore
import LetheCatalog
import DeltaLake

/// Which retained commits of a Delta table name each of its data and change data files (an `add`,
/// `remove` or `cdc` action), complete for every commit up to `version`: what a targeted vacuum reads
/// instead of searching the whole log for the commits naming its files (`DeltaDatasetDriver+Vacuum.swift`).
/// Built from a full read of the log (by `index`, or by the first vacuum that finds none) and extended
/// by every later read of the commits after `version` (`index`, the vacuum).
///
/// Kept in settings: `delta.<dataset>.commits` holds `{"version":V,"format":1}`, and up to 256 shards
/// `delta.<dataset>.commits/<xx>` hold one line per file, `<16 hex digits> <v>,<v>,…`: the file's
/// object key hashed (FNV-1a, 64 bits; a key may name a subject's partition, so it is never stored as
/// such) and the versions ascending. Two keys with one hash share their versions: a reader then reads
/// a commit too many, never one too few.
///
/// Under the key `letheVacuumKey` (no object's: it starts with a NUL byte) it also holds Lethe's own
/// VACUUM START and END commits, so a vacuum finds whether an earlier attempt's START is still open
/// without reading the log back (`LetheVacuumCommits`). Format 2: an index stored before it (format 1)
/// lacks them, and is built again.
struct DeltaCommitIndex: Sendable, Equatable {
    /// Every commit up to this version is in the index.
    var version: Int64
    /// Key hash → commit versions naming the file, ascending.
    var named: [UInt64: [Int64]] = [:]

    static let format: Int64 = 2
    /// The entry of Lethe's VACUUM START and END commits (`DeltaTable.isLetheVacuum`).
    static let letheVacuumKey = "\u{0}lethe VACUUM"
    /// What the index says of Lethe's VACUUM START and END commits up to its version.
    var letheVacuums: LetheVacuumCommits { LetheVacuumCommits(through: version, versions: versions(of: Self.letheVacuumKey) ?? []) }
    static func setting(_ dataset: String) -> String { "delta.\(dataset).commits" }
    static func shardPrefix(_ dataset: String) -> String { "delta.\(dataset).commits/" }
    static func shardName(_ dataset: String, _ shard: UInt8) -> String {
        let hex: [Character] = Array("0123456789abcdef")
        return shardPrefix(dataset) + String([hex[Int(shard >> 4)], hex[Int(shard & 15)]])
    }

    /// FNV-1a over the key's UTF-8 bytes.
    static func hash(_ key: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    static func shard(_ h: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: h >> 56) }

    /// The versions of the commits naming `key` (nil: the index has no entry for it).
    func versions(of key: String) -> [Int64]? { named[Self.hash(key)] }

    /// Adds what `byKey` (object key → versions) says.
    mutating func add(_ byKey: [String: [Int64]]) {
        for (k, vs) in byKey { Self.merge(&named[Self.hash(k), default: []], vs) }
    }

    static func merge(_ into: inout [Int64], _ vs: [Int64]) {
        guard !vs.isEmpty else { return }
        if let last = into.last, vs.allSatisfy({ $0 > last }) {
            into += vs.sorted()
        } else {
            into = Array(Set(into).union(vs)).sorted()
        }
    }

    // MARK: Stored form

    static func headerText(version: Int64) -> String {
        JSONValue.object(["version": .int(version), "format": .int(format)]).encodedText
    }

    static func headerVersion(_ text: String?) -> Int64? {
        guard let text, let j = try? JSONValue.parse(Array(text.utf8)), j["format"]?.int == format, let v = j["version"]?.int else { return nil }
        return v
    }

    /// Parses one shard's lines into `named`; a line that does not parse is skipped (its file then
    /// has no entry: the vacuum searches the log for it).
    static func parseShard(_ text: String, into named: inout [UInt64: [Int64]]) {
        for sub in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let line = Array(sub)
            guard line.count > 17, line[16] == UInt8(ascii: " "),
                let h = UInt64(String(decoding: line.prefix(16), as: UTF8.self), radix: 16)
            else { continue }
            var vs: [Int64] = []
            var ok = true
            for part in line.dropFirst(17).split(separator: UInt8(ascii: ",")) {
                guard let v = Int64(String(decoding: part, as: UTF8.self)) else { ok = false; break }
                vs.append(v)
            }
            if ok { merge(&named[h, default: []], vs) }
        }
    }

    static func shardText(_ entries: [(UInt64, [Int64])]) -> String {
        var out = ""
        for (h, vs) in entries.sorted(by: { $0.0 < $1.0 }) {
            let hex = String(h, radix: 16)
            out += String(repeating: "0", count: 16 - hex.count) + hex + " " + vs.map(String.init).joined(separator: ",") + "\n"
        }
        return out
    }

    /// The table's commit index as stored; nil when there is none (or not in this format).
    static func load(dataset: String, _ meta: any StateStore) async throws -> DeltaCommitIndex? {
        guard let v = headerVersion(try await meta.setting(setting(dataset))) else { return nil }
        var out = DeltaCommitIndex(version: v)
        for (_, text) in try await meta.settings(prefix: shardPrefix(dataset)) { parseShard(text, into: &out.named) }
        return out
    }

    /// Stores `entries` (object key → versions) read from the commits `from...through` inside a
    /// state transaction. `complete`: they are every retained commit's up to `through` (a full read
    /// of the log): the index is replaced. Otherwise they extend the stored index, only when it covers
    /// every commit before `from` (else nothing is stored: the index would miss those in between).
    static func note(
        _ entries: [String: [Int64]], from: Int64, through: Int64, complete: Bool, dataset: String, _ tx: any StateTransaction
    ) throws {
        let stored = headerVersion(try tx.cursors.setting(setting(dataset)))
        if !complete {
            guard let stored, stored >= from - 1 else { return }
            guard through > stored else { return }
        }
        var byShard: [UInt8: [UInt64: [Int64]]] = [:]
        for (k, vs) in entries {
            let h = hash(k)
            merge(&byShard[shard(h), default: [:]][h, default: []], vs)
        }
        for s in 0...255 {
            let shard = UInt8(s)
            let name = shardName(dataset, shard)
            var named = byShard[shard] ?? [:]
            if complete {
                if named.isEmpty {
                    try tx.cursors.removeSetting(name)
                    continue
                }
            } else {
                guard !named.isEmpty else { continue }
                if let text = try tx.cursors.setting(name) { parseShard(text, into: &named) }
            }
            try tx.cursors.setSetting(name, shardText(named.map { ($0.key, $0.value) }))
        }
        try tx.cursors.setSetting(setting(dataset), headerText(version: complete ? through : max(stored ?? through, through)))
    }

    /// What an `index` run stores of a table's commit index, with its cursor (see `note`).
    struct Update: Sendable {
        var entries: [String: [Int64]]
        var from: Int64
        var through: Int64
        var complete: Bool
    }

    /// Per object key, the commits whose `add`, `remove` or `cdc` names the file, from a history
    /// read of the whole retained log (`DeltaTable.history(of:)` without `naming`).
    /// Lethe's VACUUM START and END commits under `letheVacuumKey`.
    static func entries(_ h: DeltaHistory, _ t: DeltaTable) -> [String: [Int64]] {
        var out: [String: [Int64]] = [:]
        for (p, vs) in h.namedIn { merge(&out[t.key(forLogPath: p), default: []], vs) }
        if !h.letheVacuums.isEmpty { out[letheVacuumKey] = h.letheVacuums }
        return out
    }

    /// Forgets the table's commit index (its files are then searched for in the log).
    static func remove(dataset: String, _ tx: any StateTransaction) throws {
        guard try tx.cursors.setting(setting(dataset)) != nil else { return }
        try tx.cursors.removeSetting(setting(dataset))
        for s in 0...255 { try tx.cursors.removeSetting(shardName(dataset, UInt8(s))) }
    }
}

extension DeltaTable {
    /// Per object key, the commits among `commits` (version, actions) whose `add`, `remove` or `cdc` names the
    /// file; and Lethe's VACUUM START and END commits among them under `DeltaCommitIndex.letheVacuumKey`.
    func namingByKey(_ commits: [(Int64, [DeltaAction])]) -> [String: [Int64]] {
        var out: [String: [Int64]] = [:]
        for (v, actions) in commits {
            for a in actions {
                let path: String
                switch a {
                case .add(let f): path = f.path
                case .remove(let r): path = r.path
                case .cdc(let c): path = c.path
                case .commitInfo(let info) where DeltaTable.isLetheVacuum(info):
                    if out[DeltaCommitIndex.letheVacuumKey]?.last != v { out[DeltaCommitIndex.letheVacuumKey, default: []].append(v) }
                    continue
                default: continue
                }
                let k = key(forLogPath: path)
                if out[k]?.last != v { out[k, default: []].append(v) }
            }
        }
        return out
    }
}
