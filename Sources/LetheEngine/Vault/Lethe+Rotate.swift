import LetheCatalog
public import LetheCore

/// What a KEK rotation did (`Lethe.rotateKEK`).
public struct KEKRotation: Sendable, Equatable {
    public var from: String
    public var to: String
    /// Keys re-wrapped by this call.
    public var rewrapped: Int
    /// Rows changed by another writer between the read and the write (read again on the next pass).
    public var raced: Int
    /// Keys still wrapped by `from` afterwards (0 when the rotation is complete).
    public var remaining: Int64
}

extension Lethe {
    /// Re-wraps every data key wrapped by `from` under `to` (docs/crypto-shredding.md "Rotating the
    /// KEK"), `batch` rows a transaction; each row's KEK id moves with its wrapping, so a rotation killed
    /// midway resumes where it stopped (the rows still wrapped by `from` are what is left). Keys made by
    /// writers during the rotation (still under `from`) are picked up by later passes, until none is
    /// left or `passes` is spent. The key ids (in every protected value) never change. One audit entry
    /// `keys_rewrapped` (KEK names and a count) per call that moved any key.
    public func rotateKEK(
        from: any KeyEncryptionKey, to: any KeyEncryptionKey, batch: Int = 500, passes: Int = 5,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> KEKRotation {
        return try await durably {
            guard from.name != to.name else { throw LetheError(.badUsage, "the new key-encryption key is the current one (`\(to.name)`)") }
            var done = 0, raced = 0
            for _ in 0..<max(1, passes) {
                var after: VaultRow? = nil
                var moved = 0
                while true {
                    let rows = try await meta.vault.vaultRows(kek: from.name, after: after, limit: max(1, batch))
                    guard let last = rows.last else { break }
                    var pairs: [(VaultRow, [UInt8])] = []
                    for r in rows { pairs.append((r, try await from.rewrap(r, to: to))) }
                    let batchPairs = pairs
                    let n = try await meta.transaction("cannot re-wrap \(rows.count) data key(s)") { tx -> Int in
                        var n = 0
                        for (r, w) in batchPairs where try tx.vault.rewrapKey(r, kek: to.name, wrapped: w) { n += 1 }
                        return n
                    }
                    moved += n
                    raced += rows.count - n
                    progress?(done + moved)
                    after = last
                    if rows.count < batch { break }
                }
                done += moved
                if try await meta.vault.vaultKeyCountsByKEK()[from.name] ?? 0 == 0 { break }
            }
            let remaining = try await meta.vault.vaultKeyCountsByKEK()[from.name] ?? 0
            if done > 0 {
                let details = JSONValue.object(["from": .string(from.name), "to": .string(to.name), "keys": .int(Int64(done)), "remaining": .int(remaining)])
                let at = now()
                _ = try await meta.transaction("cannot record the KEK rotation") { tx in
                    try tx.audit.append(.keysRewrapped, requestID: nil, actor: "lethe", details: details.text, at: at)
                }
            }
            vault?.evictAll()
            return KEKRotation(from: from.name, to: to.name, rewrapped: done, raced: raced, remaining: remaining)
        }
    }
}

extension Lethe {
    /// How many data keys each KEK wraps, by name (`lethe vault status`).
    public func vaultKeyCounts() async throws -> [String: Int64] { try await meta.vault.vaultKeyCountsByKEK() }
}
