import Foundation
public import LetheCatalog
import LetheCore
import NIOCore
import PostgresNIO
import Synchronization

// Purging raw ids from the state (the same rules as the SQLite store), the residue scan of every
// table, and the run lock.

extension PostgresStateStore {
    /// Removes raw ids (each with its `substring` rule) from what may hold them: object names, the
    /// audit log's texts, names and free text of requests, settings and cursors. One read of each
    /// table for all ids (`NeedleSet`); a lone id is looked for by the server first (`position`).
    static func purge(_ s: PGSession, ids: [(bytes: [UInt8], substring: Bool)], key: [UInt8]?) throws -> Int {
        let all = NeedleSet(ids.map(\.bytes))
        let longIDs = ids.filter(\.substring).map(\.bytes)
        let long = NeedleSet(longIDs)
        let substringOf = Dictionary(ids.map { ($0.bytes, $0.substring) }, uniquingKeysWith: { $0 || $1 })
        let mark = Array(AuditTexts.purgedMark.utf8)
        // With one id the server narrows the rows; with many every row is read once.
        func filter(_ column: String) -> String { ids.count == 1 ? " WHERE position($1 in convert_to(\(column), 'UTF8')) > 0" : "" }
        func binds(_ b: inout PostgresBindings) { if ids.count == 1 { b.bytes(ids[0].bytes) } }
        func names(_ t: [UInt8], _ id: [UInt8]) -> Bool { t == id || (substringOf[id] == true && holdsToken(t, id)) }
        var changed = 0

        var deadNames: [Int64] = []
        for row in try s.query(.sql("SELECT id, key FROM object_names" + filter("key"), binds)).rows {
            let r = PGRow(row)
            let k = Array(try r.str(1).utf8)
            let hit = all.matches(in: k)
            if hit.contains(where: { (substringOf[$0] == true && holdsToken(k, $0)) || segmentNames(k, $0) }) { deadNames.append(try r.int(0)) }
        }
        if !deadNames.isEmpty { try s.exec(.sql("DELETE FROM object_names WHERE id = ANY($1)") { $0.append(deadNames) }) }
        changed += deadNames.count

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var texts: [Int64] = []
        for row in try s.query(
            .sql("SELECT id, text FROM audit_texts WHERE text IS NOT NULL" + filter("text").replacingOccurrences(of: " WHERE", with: " AND"), binds)
        ).rows {
            let r = PGRow(row)
            let t = Array(try r.str(1).utf8)
            if all.matches(in: t).contains(where: { names(t, $0) }) { texts.append(try r.int(0)) }
        }
        if !texts.isEmpty {
            try s.exec(
                .sql("UPDATE audit_texts SET text = NULL, purged_at = $1 WHERE id = ANY($2)") {
                    $0.append(now); $0.append(texts)
                })
        }
        changed += texts.count

        // Requests: names (any id), then free text (ids purged as substrings), in one read.
        let textColumns = ["reason", "decision_reason", "failure"], blobColumns = ["plan", "verification"]
        let requestFilter =
            ids.count == 1
            ? " WHERE "
                + (["requested_by", "decided_by"] + textColumns).map { "position($1 in convert_to(coalesce(\($0), ''), 'UTF8')) > 0" }
                .joined(separator: " OR ") + " OR " + blobColumns.map { "position($1 in coalesce(\($0), ''::bytea)) > 0" }.joined(separator: " OR ")
            : ""
        let rows = try s.query(
            .sql("SELECT id, requested_by, decided_by, \((textColumns + blobColumns).joined(separator: ", ")) FROM requests" + requestFilter, binds)
        ).rows
        for row in rows {
            let r = PGRow(row)
            let rid = try r.str(0)
            for (i, column) in ["requested_by", "decided_by"].enumerated() {
                guard let v = try r.optStr(1 + i) else { continue }
                let t = Array(v.utf8)
                guard all.matches(in: t).contains(where: { names(t, $0) }) else { continue }
                if column == "requested_by" {
                    try s.exec(
                        .sql("UPDATE requests SET requested_by_hmac = coalesce(requested_by_hmac, $1) WHERE id = $2") {
                            $0.append(AuditChain.textDigest(v, key: key)); $0.append(rid)
                        })
                }
                try s.exec(
                    .sql("UPDATE requests SET \(column) = $1 WHERE id = $2") {
                        $0.append(AuditTexts.purgedMark); $0.append(rid)
                    })
                changed += 1
            }
            guard !longIDs.isEmpty else { continue }
            for (i, column) in (textColumns + blobColumns).enumerated() {
                let isText = i < textColumns.count
                let old: [UInt8]
                if isText {
                    guard let v = try r.optStr(3 + i) else { continue }
                    old = Array(v.utf8)
                } else {
                    guard let v = r.bytes(3 + i) else { continue }
                    old = v
                }
                guard let new = long.replacingMatches(in: old, with: mark) else { continue }
                try s.exec(
                    .sql("UPDATE requests SET \(column) = $1 WHERE id = $2") {
                        if isText { $0.append(String(decoding: new, as: UTF8.self)) } else { $0.bytes(new) }
                        $0.append(rid)
                    })
                changed += 1
            }
        }
        guard !longIDs.isEmpty else { return changed }
        for row in try s.query(.sql("SELECT name, value FROM settings" + filter("value"), binds)).rows {
            let r = PGRow(row)
            let old = Array(try r.str(1).utf8)
            guard let new = long.replacingMatches(in: old, with: mark) else { continue }
            try s.exec(
                .sql("UPDATE settings SET value = $1 WHERE name = $2") {
                    $0.append(String(decoding: new, as: UTF8.self)); $0.append(try r.str(0))
                })
            changed += 1
        }
        for row in try s.query(.sql("SELECT dataset, kind, detail FROM cursors WHERE detail IS NOT NULL")).rows {
            let r = PGRow(row)
            guard let detail = try r.optStr(2) else { continue }
            let old = Array(detail.utf8)
            guard let new = long.replacingMatches(in: old, with: mark) else { continue }
            try s.exec(
                .sql("UPDATE cursors SET detail = $1 WHERE dataset = $2 AND kind = $3") {
                    $0.append(String(decoding: new, as: UTF8.self)); $0.append(try r.str(0)); $0.append(try r.str(1))
                })
            changed += 1
        }
        return changed
    }

    /// True when a `/`-separated segment of `key` is `id`, or `name=id` (a Hive partition folder).
    static func segmentNames(_ key: [UInt8], _ id: [UInt8]) -> Bool {
        for seg in key.split(separator: UInt8(ascii: "/")) {
            let s = Array(seg)
            if s == id { return true }
            if let eq = s.firstIndex(of: UInt8(ascii: "=")), Array(s[(eq + 1)...]) == id { return true }
        }
        return false
    }

    static func holdsToken(_ hay: [UInt8], _ needle: [UInt8]) -> Bool { !NeedleSet([needle], wordBounded: true).matches(in: hay).isEmpty }

    // MARK: Residue scan

    public var residueScanner: (any StateResidueScanner)? { PostgresResidueScanner(store: self) }

    // MARK: Run lock

    /// One `lethe run` at a time per installation: a session advisory lock (`pg_advisory_lock`) held on
    /// a connection of its own for the whole run; the server frees it when that connection closes,
    /// a killed process included (its socket closes).
    public func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? {
        let name = "lethe:\(location.schema):run"
        let connection = try await threads.runIfActive { () throws -> PGSession in
            do {
                return PGSession(connection: try self.connections.connect(), logger: self.connections.logger, location: self.location.description)
            } catch {
                throw self.wrap(error, "cannot take the run lock")
            }
        }
        var told = false
        while true {
            let got: Bool
            do {
                got = try await threads.runIfActive {
                    try PGRow(connection.query(.sql("SELECT pg_try_advisory_lock(hashtext($1))") { $0.append(name) }).rows[0]).bool(0)
                }
            } catch {
                closeConnection(connection.connection)
                throw wrap(error, "cannot take the run lock")
            }
            if got { return PGRunLock(connection.connection) }
            if !told {
                progress?("waiting for another `lethe run` on this state to finish")
                told = true
            }
            do { try await Task.sleep(nanoseconds: 100_000_000) } catch {
                closeConnection(connection.connection)
                throw error
            }
        }
    }
}

/// A held run lock: closing its connection frees it.
final class PGRunLock: RunLockHandle {
    let connection: PostgresConnection
    init(_ connection: PostgresConnection) { self.connection = connection }
    func release() { closeConnection(connection) }
    deinit { release() }
}

/// The residue scan of a PostgreSQL state: every row of every table of the installation's schema,
/// each text cell as its UTF-8 bytes and each bytea cell as its bytes (numbers hold no raw id), and
/// every file of the keys folder. Hits name `table.column` (or the key file). Dead row versions,
/// the write-ahead log and backups are beyond SQL's reach (docs/state.md).
struct PostgresResidueScanner: StateResidueScanner {
    let store: PostgresStateStore

    func search(for needles: [[UInt8]]) throws -> (files: Int, hits: [[UInt8]: [String]]) {
        let set = NeedleSet(needles.filter { $0.count >= Self.minimumNeedle }, wordBounded: true)
        var hits: [[UInt8]: Set<String>] = [:]
        var scanned = 0
        let schema = store.location.schema
        try store.readNow("cannot search the state for raw ids", consistent: true) { s in
            var columns: [String: [(String, Bool)]] = [:]
            for row in try s.query(
                .sql(
                    """
                    SELECT table_name::text, column_name::text, data_type::text = 'bytea' FROM information_schema.columns
                    WHERE table_schema = $1 AND data_type IN ('text', 'bytea', 'character varying') ORDER BY table_name, ordinal_position
                    """
                ) { $0.append(schema) }
            ).rows {
                let r = PGRow(row)
                columns[try r.str(0), default: []].append((try r.str(1), try r.bool(2)))
            }
            for (table, cols) in columns.sorted(by: { $0.key < $1.key }) {
                scanned += 1
                let found = Mutex<[[UInt8]: Set<String>]>([:])
                let names = cols.map(\.0)
                let list = cols.map { "\"\($0.0)\"" }.joined(separator: ", ")
                try s.stream(PostgresQuery(unsafeSQL: "SELECT \(list) FROM \"\(table)\"")) { row in
                    var i = 0
                    for cell in row {
                        defer { i += 1 }
                        guard var b = cell.bytes, b.readableBytes >= StateFolderSearch.minimum else { continue }
                        let bytes = b.readBytes(length: b.readableBytes) ?? []
                        let m = set.matches(in: bytes)
                        if !m.isEmpty {
                            let where_ = "\(table).\(names[i])"
                            found.withLock { f in for n in m { f[n, default: []].insert(where_) } }
                        }
                    }
                }
                for (n, w) in found.withLock({ $0 }) { hits[n, default: []].formUnion(w) }
            }
        }
        if let folder = store.keysFolder {
            let (files, found) = try StateFolderSearch.search(folder, set: set, longest: needles.map(\.count).max() ?? 0)
            scanned += files
            for (n, w) in found { hits[n, default: []].formUnion(w) }
        }
        return (scanned, hits.mapValues { $0.sorted() })
    }
}

/// Every file under a folder (the keys folder of a PostgreSQL state), byte for byte.
enum StateFolderSearch {
    static var minimum: Int { 6 }

    static func search(_ folder: String, set: NeedleSet, longest: Int) throws -> (Int, [[UInt8]: Set<String>]) {
        var scanned = 0
        var hits: [[UInt8]: Set<String>] = [:]
        guard let e = FileManager.default.enumerator(atPath: folder) else { return (0, [:]) }
        while let rel = e.nextObject() as? String {
            let path = folder + "/" + rel
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                let h = FileHandle(forReadingAtPath: path)
            else { continue }
            defer { try? h.close() }
            var carry: [UInt8] = []
            while true {
                let chunk = h.readData(ofLength: 4 << 20)
                if chunk.isEmpty { break }
                let buf = carry + Array(chunk)
                for n in set.matches(in: buf) { hits[n, default: []].insert(rel) }
                carry = Array(buf.suffix(max(0, longest - 1)))
            }
            scanned += 1
        }
        return (scanned, hits)
    }
}
