import Crypto
import CLetheSHA

/// The hash chain of the audit log: each entry's hash covers its fields and the
/// previous entry's hash, so editing or removing any entry breaks every later link.
///
/// Entries are keyed: their hash is HMAC-SHA-256 under the state's audit key (`audit.key`,
/// kept outside the database), so someone who can rewrite the database but not read the
/// key cannot recompute a chain. Entries written before the key existed are plain SHA-256;
/// the first keyed entry covers their head (its previous hash), so they cannot be rewritten
/// either, and no unkeyed entry may follow a keyed one.
public enum AuditChain {
    /// The previous-hash of the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// Hex HMAC-SHA-256 under `key` (or plain SHA-256 when `key` is nil, the unkeyed form of
    /// older entries) over the entry's fields, length-prefixed so no two field lists collide.
    public static func hash(
        seq: Int64, at: Int64, event: String, requestID: String?, actor: String?,
        details: String, prevHash: String, key: [UInt8]? = nil
    ) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96 + event.utf8.count + (requestID?.utf8.count ?? 0) + (actor?.utf8.count ?? 0) + details.utf8.count + prevHash.utf8.count)
        func field(_ s: String?) {
            guard let s else { bytes.append(0xFF); return }
            let n = UInt32(s.utf8.count)
            bytes.append(UInt8(n >> 24))
            bytes.append(UInt8(n >> 16 & 0xFF))
            bytes.append(UInt8(n >> 8 & 0xFF))
            bytes.append(UInt8(n & 0xFF))
            bytes.append(contentsOf: s.utf8)
        }
        field(String(seq)); field(String(at)); field(event); field(requestID); field(actor); field(details); field(prevHash)
        if let key {
            // The HMAC of the C SHA-256 (SHA extensions where the CPU has them): what `HMAC<SHA256>`
            // computes, without its key object and copies (one entry per request of a batch's changes).
            var k = lethe_hmac_sha256_key()
            key.withUnsafeBufferPointer { lethe_hmac_sha256_init(&k, $0.baseAddress, $0.count) }
            var mac = [UInt8](repeating: 0, count: 32)
            bytes.withUnsafeBufferPointer { b in mac.withUnsafeMutableBufferPointer { lethe_hmac_sha256(&k, b.baseAddress, b.count, $0.baseAddress!) } }
            return Hex.encode(mac)
        }
        return Hex.encode(Array(SHA256.hash(data: bytes)))
    }

    /// The keyed digest the chain commits to for a piece of free text (a reason, an actor's name):
    /// hex HMAC-SHA-256 under `key` of a label and the text (plain SHA-256 when `key` is nil). The
    /// text itself lives in a table that erasure may purge (`audit_texts`), so the append-only log
    /// never holds what people typed, and a digest of a short name cannot be guessed without the key.
    public static func textDigest(_ text: String, key: [UInt8]?) -> String {
        let bytes = Array("lethe audit text v1\u{0}".utf8) + Array(text.utf8)
        if let key {
            return Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))))
        }
        return Hex.encode(Array(SHA256.hash(data: bytes)))
    }
}
