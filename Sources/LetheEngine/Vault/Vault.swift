import Crypto
public import Foundation
public import LetheCore
public import LetheCatalog
import Synchronization

/// Crypto-shredding's vault (docs/crypto-shredding.md): each subject's data key, wrapped by the
/// key-encryption key and stored in the state by the subject's keyed hash; unwrapped keys are kept
/// in a bounded in-memory cache. `protect` asks with `create` (a new subject gets a key), `reveal`
/// without. A key destroyed by a run (`Lethe.shredKeys`) leaves this process's cache at once, and the
/// caches of other processes within `revalidateEvery` (they watch `vault.generation`, which every
/// destruction moves, and drop the cached keys the store no longer holds).
public final class Vault: DataKeySource, Sendable {
    public let kek: any KeyEncryptionKey
    /// Other KEKs this vault opens keys of (by name): during a rotation, the one keys move to.
    let others: [String: any KeyEncryptionKey]
    let state: any StateStore
    let capacity: Int
    let now: @Sendable () -> Int64
    /// How often (ms) a long-lived vault checks whether keys were destroyed elsewhere.
    let revalidateEvery: Int64
    private let cache: Mutex<Cache>

    struct Cache {
        /// The unwrapped keys: subject key, 32 key bytes and 8 id bytes inline (no object per key).
        var keys: DataKeyCache
        var generation: String?
        var checkedAt: Int64?
    }

    public init(
        kek: any KeyEncryptionKey, others: [any KeyEncryptionKey] = [], state: any StateStore, cacheSize: Int = VaultConfig.defaultCacheSize,
        revalidateEvery: Int64 = 1000, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.kek = kek
        self.others = Dictionary(others.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.state = state
        self.capacity = max(1, cacheSize)
        self.revalidateEvery = revalidateEvery
        self.now = now
        self.cache = Mutex(Cache(keys: DataKeyCache(capacity: max(1, cacheSize))))
    }

    /// The setting every key destruction moves forward (the caches of other processes watch it).
    public static let generationSetting = "vault.generation"

    /// How many unwrapped keys the cache holds.
    public var cachedCount: Int { cache.withLock { $0.keys.count } }
    /// Whether the cache holds a subject's key (tests: eviction).
    public func isCached(_ subject: SubjectKey) -> Bool { cache.withLock { $0.keys.contains(subject) } }
    /// Every byte of the cache's key slots, live or not (tests: a destroyed key leaves none behind).
    public var cachedMaterial: [UInt8] { cache.withLock { $0.keys.rawMaterial } }

    /// Drops every cached key (their bytes zeroed).
    public func evictAll() { cache.withLock { $0.keys.removeAll() } }

    /// Drops these subjects' keys from the cache (their bytes zeroed).
    public func evict(_ subjects: [SubjectKey]) {
        cache.withLock { c in for s in subjects { c.keys.remove(s) } }
    }

    public func dataKeys(for subjects: [SubjectKey], create: Bool) async throws -> [SubjectKey: ProtectedValue.DataKey] {
        try await revalidateIfDue()
        var out: [SubjectKey: ProtectedValue.DataKey] = [:]
        out.reserveCapacity(subjects.count)
        var missing: [SubjectKey] = []
        cache.withLock { c in
            for s in subjects where out[s] == nil {
                if let k = c.keys.dataKey(s) { out[s] = k } else { missing.append(s) }
            }
        }
        missing = Array(Set(missing))
        guard !missing.isEmpty else { return out }
        out.merge(try await load(missing, create: create)) { a, _ in a }
        return out
    }

    /// The batch form (`RecordCrypter`'s per-chunk call): answers into `batch`, aligned with
    /// `subjects`, copying cached keys' bytes under one lock (no dictionary, no retain per key).
    public func dataKeys(for subjects: [SubjectKey], create: Bool, into batch: inout DataKeyBatch) async throws {
        try await revalidateIfDue()
        batch.reset(subjects.count)
        var material: [UInt8] = []
        var found: [Bool] = []
        swap(&material, &batch.material)
        swap(&found, &batch.found)
        var missing: [Int] = []
        cache.withLock { c in
            material.withUnsafeMutableBytes { m in
                found.withUnsafeMutableBufferPointer { f in
                    subjects.withUnsafeBufferPointer { c.keys.copy($0, to: m.baseAddress!, found: f, missing: &missing) }
                }
            }
        }
        swap(&material, &batch.material)
        swap(&found, &batch.found)
        guard !missing.isEmpty else { return }
        let fresh = try await load(Array(Set(missing.map { subjects[$0] })), create: create)
        for i in missing {
            if let k = fresh[subjects[i]] { batch.set(i, k) }
        }
    }

    /// Reads (and with `create`, makes) the keys of subjects the cache does not hold; caches them.
    func load(_ missing: [SubjectKey], create: Bool) async throws -> [SubjectKey: ProtectedValue.DataKey] {
        let stored = try await state.vault.wrappedKeys(subjects: missing)
        var fresh: [SubjectKey: ProtectedValue.DataKey] = [:]
        var toCreate: [SubjectKey] = []
        for s in missing {
            if let w = stored[s], let k = try await unwrap(w) {
                fresh[s] = k
            } else if create {
                toCreate.append(s)
            }
        }
        if !toCreate.isEmpty {
            var made: [SubjectKey: NewDataKey] = [:]
            for s in toCreate { made[s] = try await kek.newDataKey(subject: s) }
            let at = now()
            // A subject whose prefix another subject's compact row holds gets an exact row (`collide`).
            var exact: Set<SubjectKey> = Set(toCreate.filter { stored[$0] != nil })
            for _ in 0..<2 {
                let rows = toCreate.filter { fresh[$0] == nil }.map { s in
                    let m = made[s]!
                    return WrappedDataKey(
                        subject: s, keyID: m.keyID, kek: kek.name, wrapped: m.wrapped, createdAt: at, exact: m.exact == false ? exact.contains(s) : true)
                }
                guard !rows.isEmpty else { break }
                let held = try await state.transaction("cannot store \(rows.count) data key(s) in the vault") { tx in try tx.vault.insertKeys(rows) }
                for r in rows {
                    let s = r.subject
                    guard let h = held[s] else { throw LetheError(.failure, "the vault did not keep the data key of subject \(s.short)") }
                    if h.keyID == r.keyID && h.wrapped == r.wrapped {
                        fresh[s] = ProtectedValue.DataKey(id: r.keyID, bytes: made[s]!.plain)
                    } else if let k = try await unwrap(h) {
                        fresh[s] = k  // another writer stored the subject's key first
                    } else {
                        exact.insert(s)  // another subject's compact row holds this prefix
                    }
                }
            }
            if let s = toCreate.first(where: { fresh[$0] == nil }) {
                throw LetheError(.failure, "the vault could not store a data key of subject \(s.short)")
            }
            // Data is encrypted under these keys as soon as they are returned: their rows reach the
            // disk first (a key lost to a power loss would leave its data unreadable).
            try await state.makeDurable()
        }
        cache.withLock { c in for (s, k) in fresh { c.keys.insert(s, k) } }
        return fresh
    }

    /// The KEK a row names: this vault's, or one of `others` (a rotation under way).
    func kek(named name: String) -> (any KeyEncryptionKey)? { name == kek.name ? kek : others[name] }

    /// Unwraps a subject's row. Nil when a compact row is not the subject's (its key id is not the
    /// check of the subject: another subject's row sharing the prefix, or altered); an exact row that
    /// does not open is `.corrupt`.
    func unwrap(_ w: WrappedDataKey) async throws -> ProtectedValue.DataKey? {
        guard let k = kek(named: w.kek) else {
            throw LetheError(
                .badInput,
                "the data key of subject \(w.subject.short) is wrapped by `\(w.kek)`, but this vault's key-encryption key is `\(kek.name)` (`vault:` in lethe.yaml, or the key file)"
            )
        }
        let plain: [UInt8]
        do {
            plain = try await k.unwrap(w.wrapped, WrapContext(subject: w.subject, keyID: w.keyID))
        } catch let e as LetheError where e.code == .corrupt && !w.exact {
            return nil
        }
        guard plain.count == 32 else { throw LetheError(.corrupt, "the data key of subject \(w.subject.short) unwraps to \(plain.count) bytes, not 32") }
        return ProtectedValue.DataKey(id: w.keyID, key: SymmetricKey(data: plain))
    }

    /// The rows that are their subject's: exact rows, and compact rows whose check the KEK confirms
    /// (a row of a KEK this vault does not hold is kept: destroying errs on the side of erasure).
    public func owned(_ rows: [SubjectKey: WrappedDataKey]) async throws -> [SubjectKey: WrappedDataKey] {
        var out: [SubjectKey: WrappedDataKey] = [:]
        for (s, w) in rows {
            if w.exact || kek(named: w.kek) == nil {
                out[s] = w
            } else if try await unwrap(w) != nil {
                out[s] = w
            }
        }
        return out
    }

    /// Every `revalidateEvery` ms: when `vault.generation` moved (a key was destroyed, here or by another
    /// process), drops the cached keys the store no longer holds as cached.
    func revalidateIfDue() async throws {
        let t = now()
        let due = cache.withLock { c -> Bool in
            if let last = c.checkedAt, t - last < revalidateEvery, t >= last { return false }
            c.checkedAt = t
            return true
        }
        guard due else { return }
        let generation = try await state.setting(Self.generationSetting)
        let (changed, cached) = cache.withLock { c -> (Bool, [SubjectKey]) in
            let changed = c.generation != generation
            c.generation = generation
            return (changed, changed ? c.keys.cachedSubjects : [])
        }
        guard changed, !cached.isEmpty else { return }
        let held = try await owned(try await state.vault.wrappedKeys(subjects: cached))
        cache.withLock { c in
            for s in cached {
                if let id = c.keys.keyID(s), held[s]?.keyID != id { c.keys.remove(s) }
            }
        }
    }
}
