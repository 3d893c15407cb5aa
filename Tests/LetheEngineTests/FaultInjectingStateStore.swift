import Foundation
import Synchronization
import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheSQLite

/// The SQLite store under the name the engine's tests use (LetheSQLite keeps the same alias).
typealias SQLiteMetastore = SQLiteStateStore

/// A state store that wraps another and fails on purpose: `failAuditAppend(nth:)` makes the Nth
/// audit append from now on throw inside its transaction, which then rolls back as a whole, so a
/// test can show that a change and its audit entry land together or not at all. Readers are the
/// base store's; every write goes through `transaction` (the single-call writes are the protocol's
/// defaults, which run there too).
final class FaultInjectingStateStore: StateStore {
    let base: any StateStore
    private let fault = Mutex<Fault>(Fault())

    struct Fault {
        /// Appends left before the one that fails (nil: no fault armed).
        var auditAppendsBeforeFailure: Int?
        /// Faults thrown so far.
        var thrown = 0
    }

    /// The error an injected fault throws.
    static let injected = LetheError(.io, "injected fault: audit append")

    init(base: any StateStore) { self.base = base }

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

    var index: any SubjectIndexReader { base.index }
    var requests: any RequestReader { base.requests }
    var audit: any AuditReader { base.audit }
    var journal: any JournalReader { base.journal }
    var cursors: any CursorReader { base.cursors }

    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        try await base.transaction(what) { tx in try body(FaultInjectingTransaction(base: tx, store: self)) }
    }
    func checkIntact() throws { try base.checkIntact() }
    func checkpoint() async -> Bool { await base.checkpoint() }
    func releaseMemory() { base.releaseMemory() }
    func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? {
        try await base.acquireRunLock(progress: progress)
    }
}

/// A transaction of `FaultInjectingStateStore`: its audit writer may fail; the rest is the base's.
private struct FaultInjectingTransaction: StateTransaction {
    let base: any StateTransaction
    let store: FaultInjectingStateStore

    var index: any SubjectIndexWriter { base.index }
    var requests: any RequestWriter { base.requests }
    var audit: any AuditWriter { FaultInjectingAuditWriter(base: base.audit, store: store) }
    var journal: any JournalWriter { base.journal }
    var cursors: any CursorWriter { base.cursors }
    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int { try base.purge(rawID: bytes, substring: substring) }
}

private struct FaultInjectingAuditWriter: AuditWriter {
    let base: any AuditWriter
    let store: FaultInjectingStateStore

    func append(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try store.auditAppend()
        return try base.append(event, requestID: requestID, actor: actor, details: details, at: at)
    }
    func text(_ text: String) throws -> AuditTextRef { try base.text(text) }
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
