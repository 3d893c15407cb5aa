import Crypto
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The secrets kept in the state folder, each a file of mode 0600:
/// - `secret.key`: the installation secret under which subject keys are computed;
/// - `request.key`: the key that seals raw subject ids inside requests until verification;
/// - `stream.key`: the SipHash-2-4 key (its first 16 bytes) of the stream filter's
///   deletion-set tags (`streamTag`), so stream filters never hold raw ids or HMACs;
/// - `audit.key`: the HMAC key of the audit chain (`AuditChain`), kept outside the database.
///
/// The state records a fingerprint of each (see `fingerprint`); the engine's state opener
/// creates keys only for a new state and refuses a missing or different key, never making a
/// new one over an existing state. Losing `secret.key` makes the index useless (keys cannot be
/// recomputed): back the keys up with the state.
public struct StateSecrets: Sendable {
    public let hasher: SubjectHasher
    // Sendable since swift-crypto 4.
    private let sealKey: SymmetricKey
    /// The PRF of stream tags.
    public let streamHasher: SipHash24
    /// The audit chain's HMAC key (nil: the chain is not keyed, e.g. a read-only look at an older state).
    public let auditKey: [UInt8]?
    /// The key under which API tokens are stored (HMAC-SHA-256 of the token): derived from the
    /// installation secret with a fixed label, so a stolen database alone cannot test guesses.
    public let tokenKey: [UInt8]
    /// The Ed25519 private key (32 bytes, `signing.key`) that signs certificates of erasure; nil
    /// when the state was opened without it (read-only, before the file exists).
    public let signingKey: [UInt8]?

    /// The key files, in the order they are checked.
    public static let keyFiles = ["secret.key", "request.key", "stream.key", "audit.key", "signing.key"]

    /// - Parameter streamKey: the `stream.key` bytes (≥ 16); when nil, a key derived
    ///   from the installation secret (HMAC-SHA-256 of a fixed label) — for tests and
    ///   embedders that keep no state folder.
    public init(
        installationSecret: [UInt8], requestKey: [UInt8], streamKey: [UInt8]? = nil, auditKey: [UInt8]? = nil, signingKey: [UInt8]? = nil
    ) {
        self.hasher = SubjectHasher(secret: installationSecret)
        self.sealKey = SymmetricKey(data: requestKey)
        let sk =
            streamKey
            ?? Array(
                HMAC<SHA256>.authenticationCode(
                    for: Array("lethe stream key".utf8), using: SymmetricKey(data: installationSecret)))
        self.streamHasher = SipHash24(key: sk)
        self.auditKey = auditKey
        self.tokenKey = Array(
            HMAC<SHA256>.authenticationCode(for: Array("lethe api token key v1".utf8), using: SymmetricKey(data: installationSecret)))
        self.signingKey = signingKey
    }

    /// The stream filter's 64-bit tag of a subject: SipHash-2-4 of its canonical bytes under `stream.key`.
    public func streamTag(_ subject: SubjectID) -> UInt64 {
        streamHasher.hash(subject.bytes)
    }

    /// The stream tag of canonical subject bytes held in a buffer (the filter's hot path).
    @inline(__always)
    public func streamTag(bytes: UnsafeRawBufferPointer) -> UInt64 {
        streamHasher.hash(bytes)
    }

    /// A key's fingerprint as the state records it: hex of the first 16 bytes of
    /// SHA-256("lethe key fingerprint v1" ‖ key). It identifies the key without revealing it.
    public static func fingerprint(_ key: [UInt8]) -> String {
        Hex.encode(Array(SHA256.hash(data: Array("lethe key fingerprint v1".utf8) + key).prefix(16)))
    }

    /// Creates a folder with mode 0700 if it does not exist.
    public static func ensureFolder(_ folder: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) {
            if !isDir.boolValue { throw LetheError(.badInput, "the state path exists and is not a folder", at: folder) }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw LetheError(.io, "cannot create the state folder: \(error.localizedDescription)", at: folder)
        }
    }

    /// Reads a key file (32 bytes as hex and a newline); nil if the file does not exist.
    public static func readKey(_ path: String) throws -> [UInt8]? {
        // One open decides "absent" (ENOENT) or "there": checking existence after a failed read
        // raced with another opener renaming the key into place (the file appeared in between).
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw LetheError.io("cannot read the key file", at: path, errno: errno)
        }
        defer { close(fd) }
        var d: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LetheError.io("cannot read the key file", at: path, errno: errno)
            }
            if n == 0 || d.count > 1 << 16 { break }
            d += buf[0..<n]
        }
        let text = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let b = Hex.decode(text), b.count == 32 else {
            throw LetheError(
                .badInput,
                "not a 32-byte hex key: restore the original file from a backup of the state folder; Lethe never makes a new key over an existing state",
                at: path)
        }
        return b
    }

    /// Creates a key file with a new random key, exclusively and whole (written and fsynced
    /// aside with mode 0600, then linked into place, so no reader ever sees a partial key);
    /// `.conflict` if the file exists.
    public static func createKey(_ path: String) throws -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Array((Hex.encode(key) + "\n").utf8)
        let aside = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36)
        let fd = Glibc.open(aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw LetheError.io("cannot create key file", at: path, errno: errno) }
        defer { unlink(aside) }
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        guard n == text.count, fsync(fd) == 0 else {
            let e = errno
            close(fd)
            throw LetheError.io("cannot write key file", at: path, errno: e)
        }
        close(fd)
        // link() fails if the key exists: an atomic create-exclusive of the whole file.
        if link(aside, path) != 0 {
            if errno == EEXIST { throw LetheError(.conflict, "the key file exists", at: path) }
            throw LetheError.io("cannot create key file", at: path, errno: errno)
        }
        syncFolder(of: path)
        return key
    }

    /// Fsyncs the folder holding `path` (a created or renamed entry survives a crash).
    public static func syncFolder(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = Glibc.open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Seals a raw subject id for storage in a request (AES-256-GCM, the request id as associated data).
    public func seal(_ subject: SubjectID, requestID: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(subject.bytes, using: sealKey, authenticating: Array(requestID.utf8))
        guard let combined = box.combined else { throw LetheError.failure("sealing failed") }
        return Array(combined)
    }

    /// Seals many raw subject ids, each bound to its request id (`seal` of each): the random nonces
    /// are drawn from the system in one call rather than one call per id (`forget --from`).
    public func seal(_ subjects: [SubjectID], requestIDs: [String]) throws -> [[UInt8]] {
        precondition(subjects.count == requestIDs.count, "one request id per subject")
        let size = 12
        let nonces = try Self.randomBytes(subjects.count * size, what: "random nonces")
        var out: [[UInt8]] = []
        out.reserveCapacity(subjects.count)
        for (i, (s, id)) in zip(subjects, requestIDs).enumerated() {
            let nonce = try AES.GCM.Nonce(data: nonces[(i * size)..<((i + 1) * size)])
            let box = try AES.GCM.seal(s.bytes, using: sealKey, nonce: nonce, authenticating: Array(id.utf8))
            guard let combined = box.combined else { throw LetheError.failure("sealing failed") }
            out.append(Array(combined))
        }
        return out
    }

    /// `count` bytes from the system's random source (`/dev/urandom`) in one read where it gives them:
    /// many nonces or request ids drawn at once instead of one system call each.
    public static func randomBytes(_ count: Int, what: String = "random bytes") throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let fd = Glibc.open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw LetheError.io("cannot draw \(what)", at: "/dev/urandom", errno: errno) }
        defer { close(fd) }
        try bytes.withUnsafeMutableBytes { buf in
            var filled = 0
            while filled < buf.count {
                let n = read(fd, buf.baseAddress! + filled, buf.count - filled)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw LetheError.io("cannot draw \(what)", at: "/dev/urandom", errno: errno) }
                filled += n
            }
        }
        return bytes
    }

    /// Opens a sealed subject id; fails if the blob was tampered with or belongs to another request.
    public func unseal(_ sealed: [UInt8], requestID: String) throws -> SubjectID {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: sealKey, authenticating: Array(requestID.utf8))
            return SubjectID(bytes: Array(plain))
        } catch {
            throw LetheError(.corrupt, "the sealed subject of request \(requestID) cannot be opened (wrong request.key or tampered)")
        }
    }
}
