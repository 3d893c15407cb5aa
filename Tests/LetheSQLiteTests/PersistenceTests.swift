import Foundation
import Testing
import LetheCore
@testable import LetheSQLite
import LetheCatalog
import LetheTesting
import GRDB

@Suite struct PersistenceTests {
    @Test func reopenedFileKeepsEverything() async throws {
        let folder = temporaryStateFolder() + "/nested/.lethe"
        defer { removeFolder(folder) }
        let request = ErasureRequest(
            id: "r-1", subjectKey: testKey(7), sealedSubject: [9, 9], reason: "art. 17",
            requestedBy: "alice", at: 5)
        let object: IndexedObject
        let audit: [AuditEntry]
        do {
            let store = try SQLiteStateStore(folder: folder)
            #expect(store.databasePath == folder + "/lethe.sqlite")
            object = try await store.putIndexedObject(sampleObject("raw", "raw/a.jsonl"), postings: [42: [1, 2, 3]])
            try await store.quarantine(sampleObject("raw", "raw/bad.jsonl"))
            try await store.insertRequest(request)
            try await store.appendAudit(event: .filed, requestID: "r-1", actor: "alice", details: "{}", at: 5)
            audit = try await store.auditEntries()
            try await store.createJob([
                JournalStep(
                    job: "j", ordinal: 0, dataset: "raw", objectKey: "raw/a.jsonl",
                    requestIDs: ["r-1"], subjectKeys: [testKey(7)])
            ])
            try await store.setSetting("k", "v")
        }
        let store = try SQLiteStateStore(folder: folder)
        #expect(try await store.locate(prefix: 42, dataset: nil) == [Posting(object: object, rows: [1, 2, 3])])
        #expect(try await store.objects(dataset: "raw").map(\.status) == [.indexed, .quarantined])
        #expect(try await store.request(id: "r-1") == request)
        #expect(try await store.auditEntries() == audit)
        #expect(try await store.pendingSteps().map(\.subjectKeys) == [[testKey(7)]])
        #expect(try await store.setting("k") == "v")
        // Appending continues the same chain.
        let next = try await store.appendAudit(event: .planned, requestID: "r-1", actor: nil, details: "{}", at: 6)
        #expect(next.seq == 2 && next.prevHash == audit[0].hash)

        let folderMode = try FileManager.default.attributesOfItem(atPath: folder)[.posixPermissions] as? NSNumber
        #expect(folderMode?.intValue == 0o700)
        let fileMode = try FileManager.default.attributesOfItem(atPath: store.databasePath)[.posixPermissions] as? NSNumber
        #expect(fileMode?.intValue == 0o600)
        let journal = try await store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }

    @Test func aFileThatIsNotADatabaseIsCorrupt() throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let garbage = String(repeating: "this is not sqlite ", count: 400)
        try garbage.write(toFile: folder + "/lethe.sqlite", atomically: true, encoding: .utf8)
        do {
            _ = try SQLiteStateStore(folder: folder)
            Issue.record("opened a non-database file")
        } catch let e as LetheError {
            #expect(e.code == .corrupt)
            #expect(e.location == folder + "/lethe.sqlite")
        }
    }

    @Test func aStatePathThatIsAFileIsBadInput() throws {
        let folder = temporaryStateFolder()
        defer { removeFolder(folder) }
        try FileManager.default.createDirectory(atPath: (folder as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "x".write(toFile: folder, atomically: true, encoding: .utf8)
        #expect(throws: LetheError.self) { _ = try SQLiteStateStore(folder: folder) }
    }

    @Test func namedInMemoryStoresShareOneDatabase() async throws {
        let name = "shared-\(UUID().uuidString)"
        let a = try SQLiteStateStore(inMemory: name)
        let b = try SQLiteStateStore(inMemory: name)
        try await a.setSetting("x", "1")
        #expect(try await b.setting("x") == "1")
        let c = try SQLiteStateStore(inMemory: nil)
        #expect(try await c.setting("x") == nil)
    }
}
