import Crypto
import Foundation
public import LetheCore
import LetheCatalog

// Certificates of erasure (issue 14): per verified request, what was erased, where, when and how it
// was proven, with the audit chain's head at verification, signed with the installation's Ed25519 key.
//
// The file: `{"certificate": {…}, "signature": {"alg": "Ed25519", "key_fingerprint": "…", "value": "…"}}`.
// The signed bytes are the certificate object written canonically: compact JSON, object keys in
// byte order, integers only (no floating point), strings as `JSONValue.text` writes them (UTF-8, only
// `"`, `\` and control characters escaped) — i.e. `JSONValue.text` of the `certificate` value. A
// verifier parses the file, writes the `certificate` value the same way and checks the signature
// over those bytes (see `Lethe.verifyCertificate`).

extension Lethe {
    /// This build's version (written into certificates).
    public static let version = "0.1.0"
    /// The `format` of certificates this build writes and reads.
    public static let certificateFormat = "lethe-certificate/1"

    /// The installation's public key of certificates (32 bytes, Ed25519), or `.notFound` when the
    /// state was opened without `signing.key`.
    public var signingPublicKey: [UInt8] {
        get throws { Array(try signingPrivateKey().publicKey.rawRepresentation) }
    }

    func signingPrivateKey() throws -> Curve25519.Signing.PrivateKey {
        guard let k = secrets.signingKey else {
            throw LetheError(
                .notFound,
                "the installation's signing key (signing.key beside the other keys) is not available: run a writing command (e.g. `lethe index`) once to create it, or restore it from a backup"
            )
        }
        return try Curve25519.Signing.PrivateKey(rawRepresentation: k)
    }

    /// A public key's fingerprint as certificates name it: hex of the first 16 bytes of its SHA-256.
    public static func keyFingerprint(_ publicKey: [UInt8]) -> String {
        Hex.encode(Array(SHA256.hash(data: publicKey).prefix(16)))
    }

    /// The signed certificate of erasure of a verified request (`.conflict` when it is not verified,
    /// `.notFound` for no such request). Holds no raw id and no text a person typed: the subject's
    /// keyed hash, datasets by name, objects by reference, counts, times, the proof, and the audit
    /// entry of the verification (its `seq` and `hash`: the chain's head at that moment).
    public func certificate(id: String) async throws -> JSONValue {
        let r = try await request(id)
        guard r.status == .verified else {
            throw LetheError(.conflict, "request \(id) is \(r.status.rawValue): a certificate of erasure is issued only for a verified request")
        }
        let entries = try await meta.audit.entries(requestID: id)
        guard let verifiedEntry = entries.last(where: { $0.event == AuditEvent.verified.rawValue }) else {
            throw LetheError(.conflict, "request \(id) is verified but its audit log holds no verification entry")
        }
        func time(of e: AuditEvent) -> JSONValue {
            entries.last(where: { $0.event == e.rawValue }).map { .string(Self.isoTime($0.at)) } ?? .null
        }
        let approved = entries.last(where: { $0.event == AuditEvent.approved.rawValue || $0.event == AuditEvent.approvedBatch.rawValue })
        var datasets: [JSONValue] = []
        var objects: Int64 = 0, rows: Int64 = 0
        if let plan = r.plan.flatMap(ErasurePlan.decode) {
            for d in plan.datasets {
                let refs = d.objects.compactMap(\.ref)
                objects += Int64(d.objects.count)
                rows += d.rows
                datasets.append(
                    .object([
                        "name": .string(d.name), "format": .string(d.format), "role": .string(d.role),
                        "derived_from": .array(d.derivedFrom.map(JSONValue.string)), "rebuilt": .bool(d.rebuild != nil),
                        "objects": .int(Int64(d.objects.count)), "object_refs": .array(refs.map(JSONValue.int)), "rows": .int(d.rows),
                        "action": .string(d.action ?? "delete"),
                    ]))
            }
        }
        var verification: [String: JSONValue] = ["proof": .string(r.proof ?? "full"), "swept": .bool(r.sweptAt != nil)]
        if let s = r.sweptAt { verification["swept_at"] = .string(Self.isoTime(s)) }
        if let v = r.verification.flatMap({ try? JSONDecoder().decode(Verification.self, from: Data($0)) }) {
            verification["clean"] = .bool(v.clean)
            verification["datasets"] = .array(v.datasets.map(JSONValue.string))
            verification["objects_scanned"] = .int(Int64(v.objectsScanned))
            verification["records_scanned"] = .int(v.recordsScanned)
            verification["state_files_scanned"] = .int(Int64(v.stateFilesScanned))
            let optional: [(String, Int?)] = [
                ("logs_examined", v.logsExamined), ("versions_examined", v.versionsExamined), ("listings_examined", v.listingsExamined),
                ("objects_listed", v.objectsListed), ("objects_unchanged", v.objectsUnchanged), ("objects_reread", v.objectsReread),
                ("objects_indexed_now", v.objectsIndexedNow),
            ]
            for (k, n) in optional { if let n { verification[k] = .int(Int64(n)) } }
            if let e = v.evidence { verification["evidence"] = .array(e.by.map(JSONValue.string)) }
        }
        let key = try signingPrivateKey()
        let publicKey = Array(key.publicKey.rawRepresentation)
        let body = JSONValue.object([
            "format": .string(Self.certificateFormat),
            "request_id": .string(r.id),
            "subject_key": .string(r.subjectKey.hex),
            "filed_at": .string(Self.isoTime(r.filedAt)),
            "approved_at": approved.map { .string(Self.isoTime($0.at)) } ?? .null,
            "erased_at": time(of: .erased),
            "verified_at": .string(Self.isoTime(verifiedEntry.at)),
            "erased": .object(["datasets": .array(datasets), "objects": .int(objects), "rows": .int(rows)]),
            "where": .object(["lake": .string(Self.lakeName(config.lake)), "installation_key": .string(Self.keyFingerprint(publicKey))]),
            "verification": .object(verification),
            "audit_head": .object(["seq": .int(verifiedEntry.seq), "hash": .string(verifiedEntry.hash)]),
            "lethe_version": .string(Self.version),
        ])
        let signature = try key.signature(for: Array(body.text.utf8))
        return .object([
            "certificate": body,
            "signature": .object([
                "alg": .string("Ed25519"), "key_fingerprint": .string(Self.keyFingerprint(publicKey)),
                "value": .string(Data(signature).base64EncodedString()),
            ]),
        ])
    }

    /// The lake as a certificate names it: `s3://bucket/prefix`, or the folder's absolute path.
    static func lakeName(_ l: LakeLocation) -> String {
        switch l {
        case .folder(let p): return p
        case .s3(let bucket, let prefix, _, _, _, _): return "s3://\(bucket)/\(prefix)"
        }
    }

    /// Why a certificate does not verify (nil: it does).
    public enum CertificateProblem: Sendable, Equatable, CustomStringConvertible {
        /// Not a certificate file (what is missing).
        case malformed(String)
        /// Signed by another key than the one given (fingerprints).
        case otherKey(signedWith: String, expected: String)
        /// The signature does not match the certificate's bytes (altered, or forged).
        case badSignature

        public var description: String {
            switch self {
            case .malformed(let why): return "not a certificate of erasure: \(why)"
            case .otherKey(let s, let e):
                return "signed with another key (fingerprint \(s)), not the one given (\(e)): from another installation, or altered"
            case .badSignature: return "the signature does not match the certificate: it was altered after signing, or forged"
            }
        }
    }

    /// Checks a certificate file's bytes against an Ed25519 public key (32 bytes): nil when valid.
    /// Needs no state (offline).
    public static func verifyCertificate(_ bytes: [UInt8], publicKey: [UInt8]) -> CertificateProblem? {
        guard let file = try? JSONValue.parse(bytes) else { return .malformed("the file is not JSON") }
        guard let body = file["certificate"], case .object = body else { return .malformed("no `certificate` object") }
        guard body["format"]?.string == certificateFormat else { return .malformed("its format is not \(certificateFormat)") }
        guard let sig = file["signature"], sig["alg"]?.string == "Ed25519", let value = sig["value"]?.string,
            let signature = Data(base64Encoded: value)
        else { return .malformed("no Ed25519 `signature` with a base64 `value`") }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return .malformed("the public key is not Ed25519") }
        let expected = keyFingerprint(publicKey)
        if let named = sig["key_fingerprint"]?.string, named != expected {
            // The signature decides; the fingerprint only names the other key when it fails.
            if !key.isValidSignature(signature, for: Array(body.text.utf8)) { return .otherKey(signedWith: named, expected: expected) }
        }
        return key.isValidSignature(signature, for: Array(body.text.utf8)) ? nil : .badSignature
    }

    /// Reads a public key as `lethe certificate key` prints it (base64 of 32 bytes, or 64 hex digits).
    public static func parsePublicKey(_ text: String) -> [UInt8]? {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let d = Data(base64Encoded: t), d.count == 32 { return Array(d) }
        if let h = Hex.decode(t), h.count == 32 { return h }
        return nil
    }
}
