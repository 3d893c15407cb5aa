import Crypto

/// The hash chain of the audit log: each entry's hash covers its fields and the
/// previous entry's hash, so editing or removing any entry breaks every later link.
public enum AuditChain {
    /// The previous-hash of the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// Hex SHA-256 over the entry's fields, length-prefixed so no two field lists collide.
    public static func hash(seq: Int64, at: Int64, event: String, requestID: String?, actor: String?,
                            details: String, prevHash: String) -> String {
        var h = SHA256()
        func field(_ s: String?) {
            guard let s else { h.update(data: [0xFF]); return }
            let b = Array(s.utf8)
            var n = UInt32(b.count).bigEndian
            withUnsafeBytes(of: &n) { h.update(bufferPointer: $0) }
            h.update(data: b)
        }
        field(String(seq)); field(String(at)); field(event); field(requestID); field(actor); field(details); field(prevHash)
        return Hex.encode(Array(h.finalize()))
    }
}
