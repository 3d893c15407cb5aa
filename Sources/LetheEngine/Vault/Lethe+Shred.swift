import Foundation
public import LetheCore
import LetheCatalog

extension Lethe {
    /// Crypto-shredding's first step of a forget (docs/crypto-shredding.md): destroys the data keys
    /// of these requests' subjects (and of their `normalize: nfc` keys) in one transaction with its
    /// audit entry (subject keys only), moves `vault.generation` (other processes' caches drop the
    /// keys), evicts them from this process's cache, and checkpoints the state so the database's
    /// write-ahead log keeps no page holding them. Every protected value of those subjects, in the
    /// lake and in every copy of it, is unreadable from here on. Idempotent: subjects without a key
    /// are skipped. Returns the subjects whose key was destroyed now.
    @discardableResult
    public func shredKeys(_ requests: [ErasureRequest]) async throws -> [SubjectKey] {
        return try await durably {
            guard !requests.isEmpty else { return [] }
            let nfc = nfcKeys(requests)
            var ownerOf: [SubjectKey: [String]] = [:]
            for r in requests {
                ownerOf[r.subjectKey, default: []].append(r.id)
                if let k = nfc[r.id] { ownerOf[k, default: []].append(r.id) }
            }
            // A read first: a lake without protected data (no key held) costs no write transaction. A
            // compact row matched by prefix is destroyed only when it is the subject's (the vault checks).
            let rows = try await heldDataKeys(Array(ownerOf.keys))
            let keys = Array(rows.keys)
            vault?.evict(Array(ownerOf.keys))
            guard !keys.isEmpty else { return [] }
            let at = now()
            let owners = ownerOf
            let held = Array(rows.values)
            let gone = try await meta.transaction("cannot destroy \(keys.count) data key(s)") { tx -> [SubjectKey] in
                let gone = try tx.vault.destroyKeys(held)
                guard !gone.isEmpty else { return [] }
                let g = Int64(try tx.setting(Vault.generationSetting) ?? "0") ?? 0
                try tx.setSetting(Vault.generationSetting, String(g + 1))
                let ids = Array(Set(gone.flatMap { owners[$0] ?? [] })).sorted()
                let details = JSONValue.object([
                    "keys": .int(Int64(gone.count)), "subject_keys": .array(gone.map { .string($0.hex) }),
                ])
                try tx.audit.append(.keysDestroyed, requestIDs: ids, actor: "lethe", details: details.text, at: at)
                return gone
            }
            vault?.evict(keys)
            if !gone.isEmpty { _ = await meta.checkpoint() }
            return gone
        }
    }

    /// The keys a plan lists: each subject key's data key held in the key store now. A compact row
    /// (matched by the subject key's prefix) counts when this engine's vault confirms it is the
    /// subject's; without a vault (no local KEK), it counts (odds of another subject's: n / 2^96).
    func heldDataKeys(_ keys: [SubjectKey]) async throws -> [SubjectKey: WrappedDataKey] {
        guard !keys.isEmpty else { return [:] }
        let rows = try await meta.vault.wrappedKeys(subjects: keys)
        guard let vault, !rows.isEmpty else { return rows }
        return try await vault.owned(rows)
    }
}
