import Foundation
import GRDB
import LetheCore

/// One SQLite write transaction seen through `StateTransaction`.
struct SQLiteTransaction: StateTransaction {
    let db: Database
    let path: String
    let auditKey: [UInt8]?

    func request(id: String) throws -> ErasureRequest? { try SQLiteMetastore.fetchRequest(db, id: id, at: path) }
    func requests(status: RequestStatus?) throws -> [ErasureRequest] { try SQLiteMetastore.fetchRequests(db, status: status, at: path) }
    func insertRequest(_ r: ErasureRequest) throws { try SQLiteMetastore.insertRequest(db, r) }
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) throws {
        try SQLiteMetastore.updateRequest(db, r, expecting: expected)
    }
    func createJob(_ steps: [JournalStep]) throws { try SQLiteMetastore.insertSteps(db, try SQLiteMetastore.encodeSteps(steps)) }
    func pendingRequestIDs() throws -> Set<String> { try SQLiteMetastore.pendingRequestIDs(db, at: path) }
    @discardableResult
    func appendAudit(event: String, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try SQLiteMetastore.appendAudit(db, event: event, requestID: requestID, actor: actor, details: details, at: at, key: auditKey)
    }
    func setting(_ name: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [name])
    }
    func setSetting(_ name: String, _ value: String) throws { try SQLiteMetastore.setSetting(db, name, value) }
}

extension SQLiteMetastore {
    // MARK: Units of work

    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        let path = databasePath, key = auditKey
        // The body's own errors (other than the database's) come back as they were thrown.
        let thrown = LockedValue<(any Error)?>(nil)
        do {
            return try await write(what) { db in
                do {
                    return try body(SQLiteTransaction(db: db, path: path, auditKey: key))
                } catch {
                    if !(error is DatabaseError) { thrown.value = error }
                    throw error
                }
            }
        } catch {
            if let e = thrown.value { throw e }
            throw error
        }
    }

    // MARK: Temporary files

    public func recordTemporary(_ key: String, owner: Int32) async throws {
        let at = Int64(Date().timeIntervalSince1970 * 1000)
        try await write("cannot record temporary file \(key)") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO temp_files(key, owner, at) VALUES (?, ?, ?)", arguments: [key, owner, at])
        }
    }

    public func temporaries() async throws -> [(key: String, owner: Int32)] {
        let rows = try await read("cannot read the temporary files") { db in
            try Row.fetchAll(db, sql: "SELECT key, owner FROM temp_files ORDER BY key").map { ($0[0] as String, $0[1] as Int32) }
        }
        return rows.map { (key: $0.0, owner: $0.1) }
    }

    public func forgetTemporaries(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await write("cannot forget \(keys.count) temporary file(s)") { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM temp_files WHERE key = ?")
            for k in keys { try delete.execute(arguments: [k]) }
        }
    }

    // MARK: Object names

    public func objectRefs(dataset: String, keys: [String]) async throws -> [String: Int64] {
        guard !keys.isEmpty else { return [:] }
        return try await write("cannot name \(keys.count) object(s) of dataset \(dataset)") { db in
            let find = try db.cachedStatement(sql: "SELECT id FROM object_names WHERE dataset = ? AND key = ?")
            let insert = try db.cachedStatement(sql: "INSERT INTO object_names(dataset, key) VALUES (?, ?)")
            var out: [String: Int64] = [:]
            for k in Set(keys) {
                if let id = try Int64.fetchOne(find, arguments: [dataset, k]) {
                    out[k] = id
                } else {
                    try insert.execute(arguments: [dataset, k])
                    out[k] = db.lastInsertedRowID
                }
            }
            return out
        }
    }

    public func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)] {
        guard !refs.isEmpty else { return [:] }
        let found = try await read("cannot read object names") { db -> [(Int64, String, String)] in
            let find = try db.cachedStatement(sql: "SELECT id, dataset, key FROM object_names WHERE id = ?")
            var out: [(Int64, String, String)] = []
            for r in Set(refs) {
                if let row = try Row.fetchOne(find, arguments: [r]) { out.append((row[0], row[1], row[2])) }
            }
            return out
        }
        var out: [Int64: (dataset: String, key: String)] = [:]
        for (id, d, k) in found { out[id] = (d, k) }
        return out
    }

    // MARK: Purging a raw id

    /// The text `purge` puts where a raw id was.
    public static let purgedMark = "[erased]"

    @discardableResult
    public func purge(rawID bytes: [UInt8], substring: Bool) async throws -> Int {
        guard !bytes.isEmpty else { return 0 }
        let needle = Data(bytes)
        return try await write("cannot purge an erased id from the state") { db in
            var changed = 0
            // Object names: a key holding the id (or, for a short id, a path segment that is the id).
            for row in try Row.fetchAll(db, sql: "SELECT id, key FROM object_names WHERE instr(CAST(key AS BLOB), ?) > 0", arguments: [needle]) {
                let key: String = row[1]
                if substring || Self.segmentNames(key, bytes) {
                    try db.execute(sql: "DELETE FROM object_names WHERE id = ?", arguments: [row[0] as Int64])
                    changed += 1
                }
            }
            guard substring else { return changed }
            // Free text of requests (reasons, failures, plans and verification results) and settings.
            let mark = Array(Self.purgedMark.utf8)
            for column in ["reason", "decision_reason", "failure", "plan", "verification"] {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT id, CAST(\(column) AS BLOB) FROM requests WHERE \(column) IS NOT NULL AND instr(CAST(\(column) AS BLOB), ?) > 0
                    """, arguments: [needle])
                for row in rows {
                    let old: Data = row[1]
                    let new = Data(Self.replacing(Array(old), bytes, with: mark))
                    let isText = column == "reason" || column == "decision_reason" || column == "failure"
                    let value: any DatabaseValueConvertible = isText ? String(decoding: new, as: UTF8.self) : new
                    try db.execute(sql: "UPDATE requests SET \(column) = ? WHERE id = ?", arguments: [value, row[0] as String])
                    changed += 1
                }
            }
            for row in try Row.fetchAll(db, sql: "SELECT name, CAST(value AS BLOB) FROM settings WHERE instr(CAST(value AS BLOB), ?) > 0", arguments: [needle]) {
                let old: Data = row[1]
                let new = String(decoding: Self.replacing(Array(old), bytes, with: mark), as: UTF8.self)
                try db.execute(sql: "UPDATE settings SET value = ? WHERE name = ?", arguments: [new, row[0] as String])
                changed += 1
            }
            return changed
        }
    }

    /// True when a `/`-separated segment of `key` is `id`, or `name=id` (a Hive partition folder).
    static func segmentNames(_ key: String, _ id: [UInt8]) -> Bool {
        for seg in key.utf8.split(separator: UInt8(ascii: "/")) {
            let s = Array(seg)
            if s == id { return true }
            if let eq = s.firstIndex(of: UInt8(ascii: "=")), Array(s[(eq + 1)...]) == id { return true }
        }
        return false
    }

    /// `hay` with every occurrence of `needle` replaced by `mark`.
    static func replacing(_ hay: [UInt8], _ needle: [UInt8], with mark: [UInt8]) -> [UInt8] {
        guard !needle.isEmpty, hay.count >= needle.count else { return hay }
        var out: [UInt8] = []
        out.reserveCapacity(hay.count)
        var i = 0
        while i < hay.count {
            if i + needle.count <= hay.count, hay[i] == needle[0], Array(hay[i..<(i + needle.count)]) == needle {
                out += mark
                i += needle.count
            } else {
                out.append(hay[i])
                i += 1
            }
        }
        return out
    }

    /// Moves the write-ahead log into the database and empties it, so superseded page images
    /// (which may hold purged text) do not linger in `lethe.sqlite-wal`. Best effort: a reader in
    /// another process keeps the log; returns false then.
    @discardableResult
    public func checkpoint() async -> Bool {
        guard let pool = writer as? DatabasePool else { return true }
        do {
            _ = try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            return true
        } catch {
            return false
        }
    }
}
