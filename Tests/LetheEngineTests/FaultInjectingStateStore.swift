import Foundation
import Synchronization
import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog

/// A state store that wraps another and fails on purpose: `failAuditAppend(nth:)` makes the Nth
/// audit append from now on throw (inside a transaction, which then rolls back as a whole; or a
/// lone append), so a test can show that a change and its audit entry land together or not at all.
/// Everything else is passed through to `base`.
final class FaultInjectingStateStore: Metastore {
    let base: any Metastore
    private let fault = Mutex<Fault>(Fault())

    struct Fault {
        /// Appends left before the one that fails (nil: no fault armed).
        var auditAppendsBeforeFailure: Int?
        /// Faults thrown so far.
        var thrown = 0
    }

    /// The error an injected fault throws.
    static let injected = LetheError(.io, "injected fault: audit append")

    init(base: any Metastore) { self.base = base }

    /// Arms the fault: the `nth` audit append from now on (1 = the next) throws.
    func failAuditAppend(nth: Int = 1) { fault.withLock { $0.auditAppendsBeforeFailure = nth - 1 } }
    /// Disarms the fault.
    func heal() { fault.withLock { $0.auditAppendsBeforeFailure = nil } }
    /// How many faults were thrown.
    var faultsThrown: Int { fault.withLock { $0.thrown } }

    /// Counts one audit append; throws when it is the armed one.
    fileprivate func auditAppend() throws {
        let fail = fault.withLock { f -> Bool in
            guard let left = f.auditAppendsBeforeFailure else { return false }
            if left > 0 { f.auditAppendsBeforeFailure = left - 1; return false }
            f.auditAppendsBeforeFailure = nil
            f.thrown += 1
            return true
        }
        if fail { throw Self.injected }
    }

    // MARK: Units of work (the fault's seam)

    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        try await base.transaction(what) { tx in try body(FaultInjectingTransaction(base: tx, store: self)) }
    }

    func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) async throws -> AuditEntry {
        try auditAppend()
        return try await base.appendAudit(event: event, requestID: requestID, actor: actor, details: details, at: at)
    }

    func checkIntact() throws { try base.checkIntact() }
    func checkpoint() async -> Bool { await base.checkpoint() }
    func releaseMemory() { base.releaseMemory() }

    // MARK: Passed through

    func objects(dataset: String) async throws -> [IndexedObject] { try await base.objects(dataset: dataset) }
    func putIndexedObject(_ object: IndexedObject, postings: [Int64: [Int64]]) async throws -> IndexedObject {
        try await base.putIndexedObject(object, postings: postings)
    }
    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) async throws -> [IndexedObject] {
        try await base.putIndexedObjects(batch)
    }
    func quarantine(_ object: IndexedObject) async throws -> IndexedObject { try await base.quarantine(object) }
    func removeObjects(dataset: String, keys: [String]) async throws { try await base.removeObjects(dataset: dataset, keys: keys) }
    func purgeDeadPostings(force: Bool) async throws -> Int { try await base.purgeDeadPostings(force: force) }
    func locate(prefix: Int64, dataset: String?) async throws -> [Posting] { try await base.locate(prefix: prefix, dataset: dataset) }
    func quarantinedObjects() async throws -> [IndexedObject] { try await base.quarantinedObjects() }
    func datasetsWithObjects() async throws -> Set<String> { try await base.datasetsWithObjects() }
    func indexStats() async throws -> (objects: Int64, quarantined: Int64, postings: Int64) { try await base.indexStats() }
    func insertRequest(_ r: ErasureRequest) async throws { try await base.insertRequest(r) }
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) async throws {
        try await base.updateRequest(r, expecting: expected)
    }
    func request(id: String) async throws -> ErasureRequest? { try await base.request(id: id) }
    func requests(status: RequestStatus?) async throws -> [ErasureRequest] { try await base.requests(status: status) }
    func insertRequests(_ rs: [ErasureRequest]) async throws { try await base.insertRequests(rs) }
    func deletionTags(since: Int64) async throws -> DeletionChanges { try await base.deletionTags(since: since) }
    func requestsWithoutStreamTag() async throws -> [ErasureRequest] { try await base.requestsWithoutStreamTag() }
    func auditEntries() async throws -> [AuditEntry] { try await base.auditEntries() }
    func createJob(_ steps: [JournalStep]) async throws { try await base.createJob(steps) }
    func pendingSteps() async throws -> [JournalStep] { try await base.pendingSteps() }
    func steps(job: String) async throws -> [JournalStep] { try await base.steps(job: job) }
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) async throws {
        try await base.finishStep(job: job, ordinal: ordinal, state: state, outcome: outcome)
    }
    func beginStep(job: String, ordinal: Int64) async throws -> Int { try await base.beginStep(job: job, ordinal: ordinal) }
    func pruneJob(_ job: String) async throws { try await base.pruneJob(job) }
    func setting(_ name: String) async throws -> String? { try await base.setting(name) }
    func setSetting(_ name: String, _ value: String) async throws { try await base.setSetting(name, value) }
    func removeSetting(_ name: String) async throws { try await base.removeSetting(name) }
    func settings(prefix: String) async throws -> [String: String] { try await base.settings(prefix: prefix) }
    func recordTemporary(_ key: String, owner: Int32, table: String?) async throws {
        try await base.recordTemporary(key, owner: owner, table: table)
    }
    func temporaries() async throws -> [TemporaryFile] { try await base.temporaries() }
    func forgetTemporaries(_ keys: [String]) async throws { try await base.forgetTemporaries(keys) }
    func textDigest(_ text: String) -> String { base.textDigest(text) }
    func auditTexts() async throws -> AuditTexts { try await base.auditTexts() }
    func objectRefs(dataset: String, keys: [String]) async throws -> [String: Int64] {
        try await base.objectRefs(dataset: dataset, keys: keys)
    }
    func objectNames(_ refs: [Int64]) async throws -> [Int64: (dataset: String, key: String)] { try await base.objectNames(refs) }
    func purge(rawID bytes: [UInt8], substring: Bool) async throws -> Int { try await base.purge(rawID: bytes, substring: substring) }
}

/// A transaction of `FaultInjectingStateStore`: the audit append may fail; the rest is passed through.
private struct FaultInjectingTransaction: StateTransaction {
    let base: any StateTransaction
    let store: FaultInjectingStateStore

    func appendAudit(event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try store.auditAppend()
        return try base.appendAudit(event: event, requestID: requestID, actor: actor, details: details, at: at)
    }

    func request(id: String) throws -> ErasureRequest? { try base.request(id: id) }
    func requests(status: RequestStatus?) throws -> [ErasureRequest] { try base.requests(status: status) }
    func insertRequest(_ r: ErasureRequest) throws { try base.insertRequest(r) }
    func updateRequest(_ r: ErasureRequest, expecting expected: RequestStatus) throws { try base.updateRequest(r, expecting: expected) }
    func createJob(_ steps: [JournalStep]) throws { try base.createJob(steps) }
    func pendingRequestIDs() throws -> Set<String> { try base.pendingRequestIDs() }
    func setting(_ name: String) throws -> String? { try base.setting(name) }
    func setSetting(_ name: String, _ value: String) throws { try base.setSetting(name, value) }
    func auditText(_ text: String) throws -> AuditTextRef { try base.auditText(text) }
    func removeSetting(_ name: String) throws { try base.removeSetting(name) }
    func finishStep(job: String, ordinal: Int64, state: JournalStep.State, outcome: String?) throws {
        try base.finishStep(job: job, ordinal: ordinal, state: state, outcome: outcome)
    }
    func beginStep(job: String, ordinal: Int64) throws -> Int { try base.beginStep(job: job, ordinal: ordinal) }
    func removeObjects(dataset: String, keys: [String]) throws { try base.removeObjects(dataset: dataset, keys: keys) }
    func forgetTemporaries(_ keys: [String]) throws { try base.forgetTemporaries(keys) }
}

extension Lethe {
    /// The same lake over another state store (e.g. a `FaultInjectingStateStore` around this one's).
    func over(_ meta: any Metastore) -> Lethe {
        Lethe(config: config, store: store, meta: meta, secrets: secrets, stateFolder: stateFolder, logger: logger, now: now)
    }
}

// MARK: The issue's test

@Test func transitionAndAuditLandTogetherOrNotAtAll() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n")
    _ = try await f.lethe.index()
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "ticket 1", by: "alice")[0]
    #expect(r.status == .planned)
    let faulty = FaultInjectingStateStore(base: f.lethe.meta)
    let lethe = f.lethe.over(faulty)

    faulty.failAuditAppend()
    await #expect(throws: LetheError.self) { _ = try await lethe.approve([r.id], by: "bob") }
    #expect(faulty.faultsThrown == 1)
    #expect(try await f.lethe.request(r.id).status == .planned)
    #expect(try await f.lethe.meta.auditEntries().filter { $0.requestID == r.id }.map(\.event) == ["filed", "planned"])

    faulty.heal()
    let approved = try await lethe.approve([r.id], by: "bob")[0]
    #expect(approved.status == .approved)
    #expect(try await f.lethe.request(r.id).status == .approved)
    #expect(try await f.lethe.meta.auditEntries().filter { $0.requestID == r.id }.map(\.event) == ["filed", "planned", "approved"])
    #expect(try await f.lethe.checkAudit().ok)
}

/// The wrapper itself: only the armed append fails, the ones before it pass.
@Test func faultInjectingStateStoreFailsExactlyTheNthAuditAppend() async throws {
    let faulty = FaultInjectingStateStore(base: try SQLiteMetastore(inMemory: nil))
    faulty.failAuditAppend(nth: 3)
    for i in 0..<2 {
        _ = try await faulty.transaction("t") { tx in try tx.appendAudit(event: .filed, requestID: "r-\(i)", actor: nil, details: "{}", at: 1) }
    }
    await #expect(throws: LetheError.self) {
        try await faulty.transaction("t") { tx in
            try tx.setSetting("x", "1")
            _ = try tx.appendAudit(event: .filed, requestID: "r-2", actor: nil, details: "{}", at: 1)
        }
    }
    #expect(try await faulty.setting("x") == nil)   // rolled back with the failed append
    _ = try await faulty.appendAudit(event: .filed, requestID: "r-3", actor: nil, details: "{}", at: 1)
    #expect(try await faulty.auditEntries().compactMap(\.requestID) == ["r-0", "r-1", "r-3"])
}
