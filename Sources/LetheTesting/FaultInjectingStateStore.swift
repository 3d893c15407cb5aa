public import LetheCatalog
public import LetheCore
import Synchronization

/// A state store that wraps another and fails on purpose: `failAuditAppend(nth:)` makes the Nth
/// audit append from now on throw inside its transaction, which then rolls back as a whole, so a
/// test can show that a change and its audit entry land together or not at all. Readers, the run
/// lock and the residue scanner are the base store's; every write goes through `transaction` (the
/// single-call writes are the protocol's defaults, which run there too). Unarmed, it is a
/// passthrough (it runs `StateStoreContract` as its base does).
public final class FaultInjectingStateStore: StateStore {
    public let base: any StateStore
    private let fault = Mutex<Fault>(Fault())

    struct Fault {
        /// Appends left before the one that fails (nil: no fault armed).
        var auditAppendsBeforeFailure: Int?
        /// Batch index writes (`putIndexedObjects(flat:)`) left before the one that fails (nil: none armed).
        var indexWritesBeforeFailure: Int?
        /// Faults thrown so far.
        var thrown = 0
        /// Transactions that committed.
        var committed = 0
        /// Purge calls of the transactions' `purge(rawIDs:)` and `purge(rawID:substring:)`.
        var batchPurges = 0, singlePurges = 0
        /// `batchWrites` calls.
        var batches = 0
        /// `makeDurable` calls.
        var durablePoints = 0
    }

    /// The error an injected fault throws.
    public static let injected = LetheError(.io, "injected fault: audit append")

    public init(base: any StateStore) { self.base = base }

    /// Arms the fault: the `nth` audit append from now on (1 = the next) throws.
    public func failAuditAppend(nth: Int = 1) { fault.withLock { $0.auditAppendsBeforeFailure = nth - 1 } }
    /// Arms a fault of the index's batch writes: the `nth` `putIndexedObjects(flat:)` from now on
    /// (1 = the next) throws `injectedIndexWrite` without writing anything.
    public func failIndexWrite(nth: Int = 1) { fault.withLock { $0.indexWritesBeforeFailure = nth - 1 } }
    /// Disarms the faults.
    public func heal() {
        fault.withLock {
            $0.auditAppendsBeforeFailure = nil
            $0.indexWritesBeforeFailure = nil
        }
    }
    /// The error an injected fault of an index write throws.
    public static let injectedIndexWrite = LetheError(.io, "injected fault: index write")
    /// How many faults were thrown.
    public var faultsThrown: Int { fault.withLock { $0.thrown } }
    /// How many write transactions committed through this store (each `transaction`, and so each single-call write).
    public var transactionsCommitted: Int { fault.withLock { $0.committed } }
    /// How many times `batchWrites` was called.
    public var batchWritesCalls: Int { fault.withLock { $0.batches } }
    /// How many times `makeDurable` was called (the engine's durable points).
    public var makeDurableCalls: Int { fault.withLock { $0.durablePoints } }
    /// How many times a transaction purged many raw ids at once (`purge(rawIDs:)`) and one at a time.
    public var purgeCalls: (batched: Int, single: Int) { fault.withLock { ($0.batchPurges, $0.singlePurges) } }

    fileprivate func count(_ body: (inout Fault) -> Void) { fault.withLock { body(&$0) } }

    /// Counts one call of the kind whose countdown `left` is; true (the fault disarmed and counted)
    /// when it is the armed one.
    private func trips(_ left: WritableKeyPath<Fault, Int?>) -> Bool {
        fault.withLock { f -> Bool in
            guard let n = f[keyPath: left] else { return false }
            if n > 0 {
                f[keyPath: left] = n - 1
                return false
            }
            f[keyPath: left] = nil
            f.thrown += 1
            return true
        }
    }

    /// Counts one audit append; throws when it is the armed one.
    fileprivate func auditAppend() throws {
        if trips(\.auditAppendsBeforeFailure) { throw Self.injected }
    }

    /// Through the protocol's default (the dictionary form, one `transaction`) unless the armed fault is this write.
    @discardableResult
    public func putIndexedObjects(flat batch: [(IndexedObject, PostingList)]) async throws -> [IndexedObject] {
        if trips(\.indexWritesBeforeFailure) { throw Self.injectedIndexWrite }
        return try await putIndexedObjects(batch.map { ($0.0, $0.1.dictionary) })
    }

    public var index: any SubjectIndexReader { base.index }
    public var requests: any RequestReader { base.requests }
    public var audit: any AuditReader { base.audit }
    public var journal: any JournalReader { base.journal }
    public var cursors: any CursorReader { base.cursors }
    public var tokens: any TokenReader { base.tokens }
    public var outbox: any OutboxReader { base.outbox }
    public var vault: any VaultKeyReader { base.vault }

    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        let result = try await base.transaction(what) { tx in try body(FaultInjectingTransaction(base: tx, store: self)) }
        fault.withLock { $0.committed += 1 }
        return result
    }
    public func checkIntact() throws { try base.checkIntact() }
    public func checkpoint() async -> Bool { await base.checkpoint() }
    public func makeDurable() async throws {
        fault.withLock { $0.durablePoints += 1 }
        try await base.makeDurable()
    }
    public func releaseMemory() { base.releaseMemory() }
    public func batchWrites<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        fault.withLock { $0.batches += 1 }
        return try await base.batchWrites(body)
    }
    public var residueScanner: (any StateResidueScanner)? { base.residueScanner }
    public func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? {
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
    var tokens: any TokenWriter { base.tokens }
    var outbox: any OutboxWriter { base.outbox }
    var vault: any VaultKeyWriter { base.vault }
    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int {
        store.count { $0.singlePurges += 1 }
        return try base.purge(rawID: bytes, substring: substring)
    }
    func purge(rawIDs: [[UInt8]]) throws -> Int {
        store.count { $0.batchPurges += 1 }
        return try base.purge(rawIDs: rawIDs)
    }
}

private struct FaultInjectingAuditWriter: AuditWriter {
    let base: any AuditWriter
    let store: FaultInjectingStateStore

    func append(_ event: AuditEvent, requestID: String?, actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try store.auditAppend()
        return try base.append(event, requestID: requestID, actor: actor, details: details, at: at)
    }
    func append(_ event: AuditEvent, requestIDs: [String], actor: String?, details: String, at: Int64) throws -> AuditEntry {
        try store.auditAppend()
        return try base.append(event, requestIDs: requestIDs, actor: actor, details: details, at: at)
    }
    func text(_ text: String) throws -> AuditTextRef { try base.text(text) }
}
