import Foundation
import Synchronization
import LetheCore
import LetheCatalog

/// A state store over another (SQLite in memory) whose index derives the entries of rewritten
/// objects as `SubjectIndexWriter.putDerivedObject` says (from the postings it last stored for the
/// version erased from, through `PostingDerivation`), where the base store may still answer nil:
/// the contract's reference, so the verification's derived path runs whatever the base does. It
/// remembers every object's postings as they pass through `putIndexedObjects`; everything else is
/// the base's. Counts the derivations (the base's too).
final class DerivingStateStore: StateStore {
    let base: any StateStore
    struct Memory {
        var postings: [String: (version: String, postings: [Int64: [Int64]])] = [:]
        var derived = 0
        var refused = 0
        /// Replacements (`putDerivedObject(…replacing:)`) left to derive before one throws inside
        /// its transaction, after the base store's change (nil: none fails).
        var replacementsBeforeFailure: Int?
    }
    let memory = Mutex(Memory())

    init(base: any StateStore) { self.base = base }

    var derivations: (derived: Int, refused: Int) { memory.withLock { ($0.derived, $0.refused) } }

    /// The error an armed replacement throws.
    struct InjectedFailure: Error {}
    /// Arms a failure: the `nth` replacement derived from now on (1 = the next) throws in its transaction.
    func failReplacement(nth: Int = 1) { memory.withLock { $0.replacementsBeforeFailure = nth - 1 } }

    var index: any SubjectIndexReader { base.index }
    var requests: any RequestReader { base.requests }
    var audit: any AuditReader { base.audit }
    var journal: any JournalReader { base.journal }
    var cursors: any CursorReader { base.cursors }
    var tokens: any TokenReader { base.tokens }
    var outbox: any OutboxReader { base.outbox }
    var vault: any VaultKeyReader { base.vault }

    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any StateTransaction) throws -> T) async throws -> T {
        try await base.transaction(what) { tx in try body(DerivingTransaction(base: tx, store: self)) }
    }
    func checkIntact() throws { try base.checkIntact() }
    func checkpoint() async -> Bool { await base.checkpoint() }
    func makeDurable() async throws { try await base.makeDurable() }
    func releaseMemory() { base.releaseMemory() }
    var residueScanner: (any StateResidueScanner)? { base.residueScanner }
    func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? {
        try await base.acquireRunLock(progress: progress)
    }
}

private struct DerivingTransaction: StateTransaction {
    let base: any StateTransaction
    let store: DerivingStateStore
    var index: any SubjectIndexWriter { DerivingIndexWriter(base: base.index, store: store) }
    var requests: any RequestWriter { base.requests }
    var audit: any AuditWriter { base.audit }
    var journal: any JournalWriter { base.journal }
    var cursors: any CursorWriter { base.cursors }
    var tokens: any TokenWriter { base.tokens }
    var outbox: any OutboxWriter { base.outbox }
    var vault: any VaultKeyWriter { base.vault }
    func purge(rawID bytes: [UInt8], substring: Bool) throws -> Int { try base.purge(rawID: bytes, substring: substring) }
    func purge(rawIDs: [[UInt8]]) throws -> Int { try base.purge(rawIDs: rawIDs) }
}

private struct DerivingIndexWriter: SubjectIndexWriter {
    let base: any SubjectIndexWriter
    let store: DerivingStateStore

    static func id(_ dataset: String, _ key: String) -> String { dataset + "\u{0}" + key }

    func putIndexedObjects(_ batch: [(IndexedObject, [Int64: [Int64]])]) throws -> [IndexedObject] {
        let out = try base.putIndexedObjects(batch)
        store.memory.withLock { m in
            for (o, p) in batch { m.postings[Self.id(o.dataset, o.key)] = (o.version, p) }
        }
        return out
    }
    func quarantine(_ object: IndexedObject) throws -> IndexedObject {
        store.memory.withLock { _ = $0.postings.removeValue(forKey: Self.id(object.dataset, object.key)) }
        return try base.quarantine(object)
    }
    func removeObjects(dataset: String, keys: [String]) throws {
        store.memory.withLock { m in for k in keys { m.postings[Self.id(dataset, k)] = nil } }
        try base.removeObjects(dataset: dataset, keys: keys)
    }
    func purgeDeadPostings(force: Bool) throws -> Int { try base.purgeDeadPostings(force: force) }
    func objectRefs(dataset: String, keys: [String]) throws -> [String: Int64] { try base.objectRefs(dataset: dataset, keys: keys) }

    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64]) throws -> IndexedObject? {
        if let stored = try base.putDerivedObject(object, from: version, dropped: dropped) {
            store.memory.withLock {
                $0.postings.removeValue(forKey: Self.id(object.dataset, object.key))
                $0.derived += 1
            }
            return stored
        }
        guard let old = store.memory.withLock({ $0.postings[Self.id(object.dataset, object.key)] }), old.version == version else {
            store.memory.withLock { $0.refused += 1 }
            return nil
        }
        let derived = PostingDerivation.derive(old: old.postings, dropped: dropped)
        let out = try putIndexedObjects([(object, derived)])
        store.memory.withLock { $0.derived += 1 }
        return out.first
    }

    func putDerivedObject(_ object: IndexedObject, from version: String, dropped: [Int64], replacing oldKey: String) throws -> IndexedObject? {
        if let stored = try base.putDerivedObject(object, from: version, dropped: dropped, replacing: oldKey) {
            let fail = store.memory.withLock { m -> Bool in
                guard let left = m.replacementsBeforeFailure else { return false }
                m.replacementsBeforeFailure = left > 0 ? left - 1 : nil
                return left == 0
            }
            if fail { throw DerivingStateStore.InjectedFailure() }
            store.memory.withLock {
                $0.postings.removeValue(forKey: Self.id(object.dataset, oldKey))
                $0.postings.removeValue(forKey: Self.id(object.dataset, object.key))
                $0.derived += 1
            }
            return stored
        }
        store.memory.withLock { $0.refused += 1 }
        return nil
    }
}
