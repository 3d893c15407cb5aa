import Foundation
import GRDB
import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    // MARK: Cursors and settings

    /// One row by key: read on the caller's thread (`readNow`), as `setting`.
    public func deltaIndex(dataset: String) async throws -> DeltaIndexCursor? {
        try readNow("cannot read the index cursor of dataset \(dataset)") { db, _ in try Self.deltaIndex(db, dataset: dataset) }
    }

    public func propagation(dataset: String) async throws -> Int64? {
        try await read("cannot read the propagation cursor of dataset \(dataset)") { db in try Self.propagation(db, dataset: dataset) }
    }

    /// One row by key: read on the caller's thread (`readNow`: no hop to a queue of GRDB's and back, no
    /// pool reader taken), its statement cached. A run reads a dozen settings between its other steps.
    public func setting(_ name: String) async throws -> String? {
        try readNow("cannot read setting \(name)") { db, _ in try Self.readSetting(db, name) }
    }

    /// Settings whose name starts with `prefix`, cursors included under their setting names.
    public func settings(prefix: String) async throws -> [String: String] {
        try await read("cannot read settings \(prefix)*") { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(
                db.cachedStatement(sql: "SELECT name, value FROM settings WHERE substr(name, 1, ?) = ?"),
                arguments: [prefix.utf8.count, prefix])
            {
                out[row[0]] = row[1]
            }
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT dataset, kind, version, detail FROM cursors")) {
                let dataset: String = row[0], kind: String = row[1]
                let c: CursorSetting = kind == "propagation" ? .propagation(dataset: dataset) : .deltaIndex(dataset: dataset)
                guard c.kind == kind, c.name.hasPrefix(prefix) else { continue }
                out[c.name] = Self.settingText(c, version: row[2], detail: row[3])
            }
            return out
        }
    }

    // MARK: Inside a transaction

    static func deltaIndex(_ db: Database, dataset: String) throws -> DeltaIndexCursor? {
        let detail = try String.fetchOne(
            db.cachedStatement(sql: "SELECT detail FROM cursors WHERE dataset = ? AND kind = ?"),
            arguments: [dataset, CursorSetting.deltaIndex(dataset: dataset).kind])
        return detail.flatMap(DeltaIndexCursor.init(text:))
    }

    static func propagation(_ db: Database, dataset: String) throws -> Int64? {
        try Int64.fetchOne(
            db, sql: "SELECT version FROM cursors WHERE dataset = ? AND kind = ?",
            arguments: [dataset, CursorSetting.propagation(dataset: dataset).kind])
    }

    static func storeCursor(_ db: Database, _ c: CursorSetting, version: Int64, detail: String?) throws {
        try db.execute(
            sql: """
                INSERT INTO cursors(dataset, kind, version, detail) VALUES (?, ?, ?, ?)
                ON CONFLICT(dataset, kind) DO UPDATE SET version = excluded.version, detail = excluded.detail
                """, arguments: [c.dataset, c.kind, version, detail])
    }

    /// A cursor's text under its setting name: the Delta index cursor's stored text, the propagated version in decimal.
    static func settingText(_ c: CursorSetting, version: Int64, detail: String?) -> String? {
        switch c {
        case .deltaIndex: detail
        case .propagation: String(version)
        }
    }

    /// A setting by name; `delta.<d>.indexed` and `propagation.<d>.version` are read from the cursors.
    static func readSetting(_ db: Database, _ name: String) throws -> String? {
        if let c = CursorSetting(name: name),
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT version, detail FROM cursors WHERE dataset = ? AND kind = ?"), arguments: [c.dataset, c.kind])
        {
            return settingText(c, version: row[0], detail: row[1])
        }
        return try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM settings WHERE name = ?"), arguments: [name])
    }

    /// Saves a setting; the cursors' names go to the cursors (a propagation value that is not a
    /// number stays a plain setting, as it was).
    static func setSetting(_ db: Database, _ name: String, _ value: String) throws {
        if try storeAsCursor(db, name, value) { return }
        try db.execute(
            sql: """
                INSERT INTO settings(name, value) VALUES (?, ?)
                ON CONFLICT(name) DO UPDATE SET value = excluded.value
                """, arguments: [name, value])
    }

    static func removeSetting(_ db: Database, _ name: String) throws {
        if let c = CursorSetting(name: name) {
            try db.execute(sql: "DELETE FROM cursors WHERE dataset = ? AND kind = ?", arguments: [c.dataset, c.kind])
        }
        try db.execute(sql: "DELETE FROM settings WHERE name = ?", arguments: [name])
    }

    /// Stores a cursor given by its setting name and text; false when `name` is no cursor's (or the value no cursor's).
    static func storeAsCursor(_ db: Database, _ name: String, _ value: String) throws -> Bool {
        guard let c = CursorSetting(name: name) else { return false }
        switch c {
        case .deltaIndex:
            // A text this build cannot read is kept verbatim (version -1): the next index lists the table whole.
            try storeCursor(db, c, version: DeltaIndexCursor(text: value)?.version ?? -1, detail: value)
        case .propagation:
            guard let v = Int64(value) else { return false }
            try storeCursor(db, c, version: v, detail: nil)
        }
        try db.execute(sql: "DELETE FROM settings WHERE name = ?", arguments: [name])
        return true
    }

    // MARK: Schema v6

    /// `v6-seams`: typed cursors (filled from the settings that held them, which go), the kind of
    /// each journal step (filled by the sentinel rules steps were told apart by), and an index of
    /// requests by subject key.
    static func migrateV6(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE cursors(
                    dataset TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    detail TEXT,
                    PRIMARY KEY(dataset, kind)
                ) WITHOUT ROWID;
                ALTER TABLE journal ADD COLUMN kind TEXT NOT NULL DEFAULT 'object';
                UPDATE journal SET kind = CASE
                    WHEN dataset = '' THEN 'settle'
                    WHEN object_key = '' THEN 'rebuild'
                    WHEN object_key = '!dataset-issue' THEN 'dataset_issue'
                    WHEN object_key = '_delta_log' THEN 'delta_table'
                    ELSE 'object' END;
                CREATE INDEX requests_subject ON requests(subject_key);
                """)
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM settings") {
            _ = try storeAsCursor(db, row[0], row[1])
        }
    }
}
