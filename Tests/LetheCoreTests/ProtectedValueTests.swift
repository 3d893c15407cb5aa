import CLetheSeal
import Crypto
import Foundation
import LetheCore
import Testing

@Suite("Crypto-shredding value format")
struct ProtectedValueTests {
    let subject = SubjectHasher(secret: [UInt8](repeating: 3, count: 32)).key(for: SubjectID("u-1"))
    let other = SubjectHasher(secret: [UInt8](repeating: 3, count: 32)).key(for: SubjectID("u-2"))
    let key = ProtectedValue.DataKey(id: [1, 2, 3, 4, 5, 6, 7, 8], key: SymmetricKey(size: .bits256))

    @Test(arguments: [("", ProtectedValue.Kind.text), ("a@b.example", .text), ("é \"q\" \n", .text), ("-12.5e3", .number), ("true", .literal)])
    func roundTrip(_ value: String, _ kind: ProtectedValue.Kind) throws {
        let token = try ProtectedValue.seal(Array(value.utf8), kind: kind, key: key, dataset: "raw", field: "user.email", subject: subject)
        #expect(token.starts(with: Array("lethe:v1:".utf8)))
        #expect(ProtectedValue.isProtected(token))
        // base64url: nothing a JSON string or a CSV field would have to escape.
        #expect(!token.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "=") }))
        let p = try ProtectedValue.parse(token)
        #expect(p.keyID == key.id)
        #expect(p.nonce.count == 12 && p.tag.count == 16 && p.ciphertext.count == value.utf8.count + 1)
        let (k, v) = try ProtectedValue.open(p, key: key, dataset: "raw", field: "user.email", subject: subject)
        #expect(k == kind)
        #expect(v == Array(value.utf8))
    }

    @Test func everyValueGetsAFreshNonce() throws {
        let a = try ProtectedValue.seal(Array("x".utf8), kind: .text, key: key, dataset: "d", field: "f", subject: subject)
        let b = try ProtectedValue.seal(Array("x".utf8), kind: .text, key: key, dataset: "d", field: "f", subject: subject)
        #expect(a != b)
        #expect(try ProtectedValue.parse(a).nonce != ProtectedValue.parse(b).nonce)
    }

    /// A stream's nonce buffer (refilled every 340 values): 1,000 values, 1,000 distinct nonces, all open
    /// (swift-crypto), from the user-space generator and from the kernel.
    @Test(arguments: [false, true])
    func aStreamsNonceBufferGivesDistinctNoncesAcrossRefills(_ kernelOnly: Bool) throws {
        let nonces = NonceSource(kernelOnly: kernelOnly)
        var seen = Set<[UInt8]>()
        for i in 0..<1_000 {
            var out: [UInt8] = []
            let value = Array("v\(i)".utf8)
            try value.withUnsafeBytes {
                try ProtectedValue.seal($0, kind: .text, key: key, dataset: "d", field: "f", subject: subject, nonces: nonces, into: &out)
            }
            let p = try ProtectedValue.parse(out)
            seen.insert(p.nonce)
            #expect(try ProtectedValue.open(p, key: key, dataset: "d", field: "f", subject: subject).value == value)
        }
        #expect(seen.count == 1_000)
    }

    /// 12 nonce bytes as a set element.
    struct Nonce12: Hashable {
        var a: UInt64
        var b: UInt32
        init(_ p: UnsafePointer<UInt8>) {
            let r = UnsafeRawPointer(p)
            a = r.loadUnaligned(as: UInt64.self)
            b = r.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        }
    }

    /// The user-space generator (AES-256-CTR under a key from getrandom, docs/crypto-shredding.md "Nonces")
    /// is the one a stream takes on this CPU; it never repeats a nonce: 2,100,000 from one source (past
    /// the reseed after 4,096 refills of 340) and 10,000 from each of 40 more, all distinct; and its bits
    /// are balanced (each of the 96 bit positions set in 50 % ± 0.5 % of 200,000 nonces).
    @Test func theNonceGeneratorNeverRepeatsAcrossRefillsReseedsAndSources() throws {
        let one = NonceSource()
        #expect(one.isUserSpace == ValueSealer.cpuHasAESNI)
        #expect(!NonceSource(kernelOnly: true).isUserSpace)
        var seen = Set<Nonce12>(minimumCapacity: 2_600_000)
        var ones = [Int](repeating: 0, count: 96)
        for i in 0..<2_100_000 {
            let p = try one.nextNonce()
            seen.insert(Nonce12(p))
            if i < 200_000 {
                for bit in 0..<96 where p[bit / 8] & (1 << UInt8(bit % 8)) != 0 { ones[bit] += 1 }
            }
        }
        #expect(seen.count == 2_100_000)
        #expect(ones.allSatisfy { abs($0 - 100_000) < 1_000 })
        for _ in 0..<40 {
            let other = NonceSource()
            for _ in 0..<10_000 { seen.insert(Nonce12(try other.nextNonce())) }
        }
        #expect(seen.count == 2_500_000)
    }

    /// A forked child does not repeat its parent's nonces: the generator's memory is wiped on fork
    /// (`MADV_WIPEONFORK`), so the child draws from the kernel; without that, the child's next 200
    /// nonces would be the parent's.
    @Test func aForkedChildDoesNotRepeatItsParentsNonces() throws {
        let nonces = NonceSource()
        for _ in 0..<5 { _ = try nonces.nextNonce() }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let count = 200
        let pid = fork()
        if pid == 0 {
            // The child: only system calls and the generator (no allocation).
            for _ in 0..<count {
                guard let p = try? nonces.nextNonce(), write(fds[1], p, 12) == 12 else { _exit(1) }
            }
            _exit(0)
        }
        #expect(pid > 0)
        close(fds[1])
        let size = 12 * count
        var child = [UInt8](repeating: 0, count: size)
        var got = 0
        while got < size {
            let r = child.withUnsafeMutableBytes { read(fds[0], $0.baseAddress! + got, size - got) }
            if r <= 0 { break }
            got += r
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(got == size)
        var parent = Set<Nonce12>()
        for _ in 0..<count { parent.insert(Nonce12(try nonces.nextNonce())) }
        let shared = child.withUnsafeBufferPointer { c in (0..<count).filter { parent.contains(Nonce12(c.baseAddress! + 12 * $0)) }.count }
        #expect(shared == 0)
    }

    /// Moved to another field, dataset or subject, or altered anywhere: refused with `.corrupt`.
    @Test func associatedDataAndTamperingAreRefused() throws {
        let token = try ProtectedValue.seal(Array("secret".utf8), kind: .text, key: key, dataset: "d", field: "email", subject: subject)
        let p = try ProtectedValue.parse(token)
        for (dataset, field, s) in [("d", "ip", subject), ("e", "email", subject), ("d", "email", other)] {
            #expect(throws: LetheError.self) { _ = try ProtectedValue.open(p, key: key, dataset: dataset, field: field, subject: s) }
            do {
                _ = try ProtectedValue.open(p, key: key, dataset: dataset, field: field, subject: s)
            } catch let e as LetheError {
                #expect(e.code == .corrupt)
                #expect(!e.message.contains("secret"))
            }
        }
        // Flip one bit in each part of the payload (not the key id: that is "another key").
        for part in 0..<3 {
            var q = p
            switch part {
            case 0: q.nonce[0] ^= 1
            case 1: q.ciphertext[0] ^= 1
            default: q.tag[15] ^= 0x80
            }
            #expect(throws: LetheError.self) { _ = try ProtectedValue.open(q, key: key, dataset: "d", field: "email", subject: subject) }
        }
        // A wrong key with the same id does not open either.
        let wrong = ProtectedValue.DataKey(id: key.id, key: SymmetricKey(size: .bits256))
        #expect(throws: LetheError.self) { _ = try ProtectedValue.open(p, key: wrong, dataset: "d", field: "email", subject: subject) }
    }

    /// A value sealed by another key id (the subject's earlier, destroyed key) is `.notFound`, not corrupt.
    @Test func anUnknownKeyIDIsNotFound() throws {
        let token = try ProtectedValue.seal(Array("v".utf8), kind: .text, key: key, dataset: "d", field: "f", subject: subject)
        let successor = ProtectedValue.DataKey(id: [9, 9, 9, 9, 9, 9, 9, 9], key: SymmetricKey(size: .bits256))
        do {
            _ = try ProtectedValue.open(try ProtectedValue.parse(token), key: successor, dataset: "d", field: "f", subject: subject)
            Issue.record("opened under another key id")
        } catch let e as LetheError {
            #expect(e.code == .notFound)
        }
    }

    /// Frozen vectors made by another implementation (Python `cryptography` 50's AESGCM, see the values
    /// below): key 00…1f, key id 01…08, nonce a0…ab, subject key 40…5f, dataset `raw`. The value format
    /// must keep opening them, on every route (swift-crypto, the sealer with AES-NI, the sealer on EVP),
    /// and the sealer given the same nonce must write the same text, byte for byte.
    static let frozen: [(field: String, kind: ProtectedValue.Kind, value: String, text: String)] = [
        ("user.email", .text, "a@x.example", "lethe:v1:AQIDBAUGBwigoaKjpKWmp6ipqquVeTxVa6563g8V67b5Y0nhg7ZgGSg4HwKUcr3Z"),
        ("age", .number, "-12.5e3", "lethe:v1:AQIDBAUGBwigoaKjpKWmp6ipqquINU0fa_5njERccqRR4YwMsVNddcST29U"),
        ("user.email", .text, "é \"q\" \n", "lethe:v1:AQIDBAUGBwigoaKjpKWmp6ipqquV29UNZ7ogn2hP6sd6JvYlDvX22ayOd01b"),
        ("ip", .text, "", "lethe:v1:AQIDBAUGBwigoaKjpKWmp6ipqquVgLD3oeC4WkkVDN1egXhy1w"),
    ]

    @Test(arguments: [false, true])
    func frozenVectorsOpenEverywhereAndTheSealerWritesThemAgain(_ evp: Bool) throws {
        let key = ProtectedValue.DataKey(id: Array(1...8), bytes: Array(0..<32))
        let subject = SubjectKey(bytes: Array(0x40..<0x60))
        let nonce: [UInt8] = Array(0xa0..<0xac)
        let sealer = ValueSealer(dataset: "raw", fields: ["user.email", "age", "ip"], evp: evp)
        #expect(sealer.usesAESNI == (!evp && ValueSealer.cpuHasAESNI))
        let slot = try sealer.prepare(slot: 0, key: key, subject: subject)
        for v in Self.frozen {
            let field = ["user.email", "age", "ip"].firstIndex(of: v.field)!
            let text = Array(v.text.utf8)
            // swift-crypto (the reference path) opens it.
            let (k, value) = try ProtectedValue.open(try ProtectedValue.parse(text), key: key, dataset: "raw", field: v.field, subject: subject)
            #expect(k == v.kind && value == Array(v.value.utf8))
            // The sealer opens it, and writes it again from the same nonce.
            var out = [UInt8](repeating: 0, count: text.count + 16)
            let (k2, n) = try text.withUnsafeBytes { t in
                try out.withUnsafeMutableBufferPointer { try sealer.open(t, slot: slot, field: field, to: $0.baseAddress!) }
            }
            #expect(k2 == v.kind && Array(out[0..<n]) == Array(v.value.utf8))
            var sealed = [UInt8](repeating: 0, count: ValueSealer.sealedLength(v.value.utf8.count))
            let m = try Array(v.value.utf8).withUnsafeBytes { p in
                try nonce.withUnsafeBufferPointer { nb in
                    try sealed.withUnsafeMutableBufferPointer {
                        try sealer.seal(p, kind: v.kind, slot: slot, field: field, nonce: nb.baseAddress!, to: $0.baseAddress!)
                    }
                }
            }
            #expect(m == sealed.count)
            #expect(String(decoding: sealed, as: UTF8.self) == v.text)
        }
    }

    /// The sealer (OpenSSL, both routes) and `ProtectedValue` (swift-crypto) read each other's values,
    /// for every length from 0 to 70 bytes and a few past the sealer's stack buffer.
    @Test(arguments: [false, true])
    func theSealerAndSwiftCryptoOpenEachOthersValues(_ evp: Bool) throws {
        let sealer = ValueSealer(dataset: "events", fields: ["user.email", "ip"], evp: evp)
        let nonces = NonceSource()
        var rng = SystemRandomNumberGenerator()
        for n in Array(0...70) + [1_000, 1_100, 5_000] {
            let value = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let key = ProtectedValue.DataKey(id: (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }, key: SymmetricKey(size: .bits256))
            let s = SubjectKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let field = n % 2
            let name = ["user.email", "ip"][field]
            let kind: ProtectedValue.Kind = [.text, .number, .literal][n % 3]
            // sealer → swift-crypto
            var out: [UInt8] = []
            try value.withUnsafeBytes { try sealer.seal($0, kind: kind, key: key, field: field, subject: s, nonces: nonces, into: &out) }
            #expect(out.count == ValueSealer.sealedLength(n))
            let (k, v) = try ProtectedValue.open(try ProtectedValue.parse(out), key: key, dataset: "events", field: name, subject: s)
            #expect(k == kind && v == value)
            // swift-crypto → sealer
            let text = try ProtectedValue.seal(value, kind: kind, key: key, dataset: "events", field: name, subject: s)
            let (k2, v2) = try text.withUnsafeBytes { t in try sealer.open(t, key: key, field: field, subject: s) { ($0, Array($1)) } }
            #expect(k2 == kind && v2 == value)
        }
    }

    /// The sealer's own AES-256-GCM (AES-NI + PCLMULQDQ, stitched for short values) against swift-crypto's,
    /// on random keys, nonces, dataset and field names (associated data from 22 to ~330 bytes, past the
    /// sealer's 256-byte stack buffer) and every length from 0 to 4,096: the same nonce gives the same
    /// ciphertext and tag byte for byte, each opens the other's, and a flipped tag, ciphertext or nonce
    /// bit, or the associated data of another field, is refused. Both routes (AES-NI, OpenSSL EVP).
    @Test(arguments: [false, true])
    func theSealersGCMIsSwiftCryptosGCMOnRandomInputs(_ evp: Bool) throws {
        var rng = SystemRandomNumberGenerator()
        func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        func name(_ n: Int) -> String { String(decoding: (0..<n).map { _ in UInt8.random(in: 0x61...0x7a, using: &rng) }, as: UTF8.self) }
        var sealer = ValueSealer(dataset: "d", fields: ["f"], evp: evp)
        var dataset = "d", fields = ["f", "g"]
        for n in 0...4_096 {
            if n % 64 == 0 {
                dataset = name(Int.random(in: 0...140, using: &rng))
                fields = [name(Int.random(in: 1...140, using: &rng)), name(Int.random(in: 1...8, using: &rng))]
                sealer = ValueSealer(dataset: dataset, fields: fields, evp: evp)
            }
            let value = bytes(n)
            let key = ProtectedValue.DataKey(id: bytes(8), bytes: bytes(32))
            let s = SubjectKey(bytes: bytes(32))
            let nonce = bytes(12)
            let field = n % 2
            let kind: ProtectedValue.Kind = [.text, .number, .literal][n % 3]
            let slot = try sealer.prepare(slot: n % 3, key: key, subject: s)
            var text = [UInt8](repeating: 0, count: ValueSealer.sealedLength(n))
            let m = try value.withUnsafeBytes { v in
                try nonce.withUnsafeBufferPointer { nb in
                    try text.withUnsafeMutableBufferPointer {
                        try sealer.seal(v, kind: kind, slot: slot, field: field, nonce: nb.baseAddress!, to: $0.baseAddress!)
                    }
                }
            }
            #expect(m == text.count)
            // swift-crypto, same nonce: the same payload, byte for byte.
            let aad = ProtectedValue.associatedData(dataset: dataset, field: fields[field], subject: s, keyID: key.id)
            let box = try AES.GCM.seal([kind.rawValue] + value, using: key.key, nonce: try AES.GCM.Nonce(data: nonce), authenticating: aad)
            var reference = ProtectedValue.prefix
            Base64URL.encode(key.id + nonce + Array(box.ciphertext) + Array(box.tag), into: &reference)
            #expect(text == reference, "length \(n)")
            // The sealer opens swift-crypto's value (with a fresh nonce) and swift-crypto the sealer's.
            let other = try ProtectedValue.seal(value, kind: kind, key: key, dataset: dataset, field: fields[field], subject: s)
            var out = [UInt8](repeating: 0, count: other.count + 16)
            let (k2, n2) = try other.withUnsafeBytes { t in
                try out.withUnsafeMutableBufferPointer { try sealer.open(t, slot: slot, field: field, to: $0.baseAddress!) }
            }
            #expect(k2 == kind && Array(out[0..<n2]) == value)
            let (k3, v3) = try ProtectedValue.open(try ProtectedValue.parse(text), key: key, dataset: dataset, field: fields[field], subject: s)
            #expect(k3 == kind && v3 == value)
            // Tampered: one bit of the tag, the ciphertext or the nonce; the other field's associated data.
            var payload = key.id + nonce + Array(box.ciphertext) + Array(box.tag)
            let bit = [
                payload.count * 8 - 1 - Int.random(in: 0..<128, using: &rng), (20 + Int.random(in: 0..<(n + 1), using: &rng)) * 8 + n % 8, (8 + n % 12) * 8,
            ][n % 3]
            payload[bit / 8] ^= UInt8(1 << (bit % 8))
            var altered = ProtectedValue.prefix
            Base64URL.encode(payload, into: &altered)
            for (t, f) in [(altered, field), (text, 1 - field)] {
                do {
                    _ = try t.withUnsafeBytes { t in try out.withUnsafeMutableBufferPointer { try sealer.open(t, slot: slot, field: f, to: $0.baseAddress!) } }
                    Issue.record("a tampered or moved value opened (length \(n))")
                } catch let e as LetheError {
                    #expect(e.code == .corrupt)
                }
            }
        }
    }

    /// The sealer refuses what `ProtectedValue.open` refuses, with the same codes: another field,
    /// dataset or subject, any bit flipped (`.corrupt`), another key id (`.notFound`), malformed text.
    @Test(arguments: [false, true])
    func theSealerRefusesMovedTamperedAndMalformedValues(_ evp: Bool) throws {
        let d = ValueSealer(dataset: "d", fields: ["email", "ip"], evp: evp)
        let e = ValueSealer(dataset: "e", fields: ["email", "ip"], evp: evp)
        let token = try ProtectedValue.seal(Array("secret".utf8), kind: .text, key: key, dataset: "d", field: "email", subject: subject)
        func code(_ sealer: ValueSealer, _ text: [UInt8], field: Int = 0, key k: ProtectedValue.DataKey? = nil, subject s: SubjectKey? = nil) -> LetheError
            .Code?
        {
            do {
                _ = try text.withUnsafeBytes { t in try sealer.open(t, key: k ?? key, field: field, subject: s ?? subject) { _, _ in 0 } }
                return nil
            } catch let err as LetheError {
                #expect(!err.message.contains("secret"))
                return err.code
            } catch {
                return nil
            }
        }
        #expect(code(d, token) == nil)
        #expect(code(d, token, field: 1) == .corrupt)
        #expect(code(e, token) == .corrupt)
        #expect(code(d, token, subject: other) == .corrupt)
        #expect(code(d, token, key: ProtectedValue.DataKey(id: key.id, key: SymmetricKey(size: .bits256))) == .corrupt)
        #expect(code(d, token, key: ProtectedValue.DataKey(id: [9, 9, 9, 9, 9, 9, 9, 9], key: key.key)) == .notFound)
        // Every bit of the payload after the key id (nonce, ciphertext, tag), flipped one at a time.
        let payload = Base64URL.decode(String(decoding: token[9...], as: UTF8.self))!
        for bit in (8 * 8)..<(payload.count * 8) {
            var p = payload
            p[bit / 8] ^= UInt8(1 << (bit % 8))
            var altered = ProtectedValue.prefix
            Base64URL.encode(p, into: &altered)
            #expect(code(d, altered) == .corrupt)
        }
        for text in ["lethe:v1:", "lethe:v1:AAAA", "lethe:v1:!!!!", "lethe:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "lethe:v1:A", "x"] {
            #expect(code(d, Array(text.utf8)) == .corrupt)
        }
        // Padding, or leftover bits that are not zero: not the one encoding of the payload.
        let t = String(decoding: token, as: UTF8.self)
        #expect(code(d, Array((t + "=").utf8)) == .corrupt)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var bumped = token
        // The payload is 8 + 12 + 7 + 16 = 43 bytes (43 mod 3 = 1): the last character carries 4 leftover bits.
        bumped[bumped.count - 1] = alphabet[(alphabet.firstIndex(of: bumped[bumped.count - 1])! + 1) % 64]
        #expect(code(d, bumped) == .corrupt)
    }

    @Test(arguments: ["lethe:v1:", "lethe:v1:AAAA", "lethe:v1:!!!!", "lethe:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "lethe:v1:A"])
    func malformedTextIsRefused(_ text: String) {
        #expect(throws: LetheError.self) { _ = try ProtectedValue.parse(Array(text.utf8)) }
    }

    @Test func base64URLMatchesFoundationsAlphabetWithoutPadding() {
        var rng = SystemRandomNumberGenerator()
        for n in 0..<70 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let ours = Base64URL.encode(bytes)
            let theirs = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(ours == theirs)
            #expect(Base64URL.decode(ours) == bytes)
        }
        #expect(Base64URL.decode("AB==") == nil)
        #expect(Base64URL.decode("AB") == nil)  // leftover bits not zero
    }

    /// The sealer's SSSE3 base64url against its scalar code and `Base64URL` (the reference), over
    /// random bytes of every length 0–600 and mutated texts: the same characters, the same bytes, and
    /// the same refusals (a character outside the alphabet anywhere, a length of 1 mod 4, leftover
    /// bits, truncation).
    @Test func theSIMDBase64URLIsTheScalarOneOnRandomAndInvalidInputs() {
        if ValueSealer.cpuHasAESNI { #expect(lethe_b64_uses_simd() == 1) }  // the route under test is taken
        var rng = SystemRandomNumberGenerator()
        func encode(_ b: [UInt8], _ route: Int32) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: b.count / 3 * 4 + 3)
            let n = b.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { lethe_b64url_encode(i.baseAddress, b.count, $0.baseAddress, route) } }
            return Array(out[0..<n])
        }
        func decode(_ t: [UInt8], _ route: Int32) -> [UInt8]? {
            var out = [UInt8](repeating: 0, count: t.count / 4 * 3 + 3)
            let n = t.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer { lethe_b64url_decode(i.baseAddress, t.count, $0.baseAddress, $0.count, route) }
            }
            return n < 0 ? nil : Array(out[0..<n])
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var refused = 0
        for n in 0...600 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let text = encode(bytes, 1)
            #expect(text == encode(bytes, 0))
            #expect(String(decoding: text, as: UTF8.self) == Base64URL.encode(bytes))
            #expect(decode(text, 1) == bytes)
            #expect(decode(text, 0) == bytes)
            var variants: [[UInt8]] = []
            if !text.isEmpty {
                for _ in 0..<4 {
                    var t = text  // one character replaced by any byte (often outside the alphabet)
                    t[Int.random(in: 0..<t.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    variants.append(t)
                }
                var t = text  // the last character: leftover bits set or not
                t[t.count - 1] = alphabet.randomElement(using: &rng)!
                variants.append(t)
                variants.append(Array(text[0..<Int.random(in: 0..<text.count, using: &rng)]))  // truncated
                variants.append(text + [alphabet.randomElement(using: &rng)!])
            }
            for v in variants {
                let simd = decode(v, 1)
                #expect(simd == decode(v, 0))
                #expect(simd == v.withUnsafeBytes { Base64URL.decode($0) })
                if simd == nil { refused += 1 }
            }
        }
        #expect(refused > 1_000)  // the invalid cases were exercised
    }

    @Test func theFileKEKIsCreatedOnceWithMode0600AndBindsItsContext() async throws {
        let folder = NSTemporaryDirectory() + "lethe-kek-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/vault.key"
        #expect(throws: LetheError.self) { _ = try FileKeyEncryptionKey.load(path: path, create: false) }
        let kek = try FileKeyEncryptionKey.load(path: path, create: true)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let again = try FileKeyEncryptionKey.load(path: path, create: true)
        #expect(again.name == kek.name && kek.name.hasPrefix("file:"))
        let ctx = WrapContext(subject: subject, keyID: key.id)
        let (plain, wrapped) = try await kek.generateDataKey(ctx)
        // AES key wrap: 40 bytes.
        #expect(plain.count == 32 && wrapped.count == 40)
        #expect(try await again.unwrap(wrapped, ctx) == plain)
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(wrapped, WrapContext(subject: other, keyID: key.id)) }
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(wrapped, WrapContext(subject: subject, keyID: [0, 0, 0, 0, 0, 0, 0, 0])) }
        var flipped = wrapped
        flipped[17] ^= 1
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(flipped, ctx) }
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(Array(wrapped.dropLast()), ctx) }
        // A GCM wrapping of the first cut (60 bytes) still opens, bound to its context the same way.
        let legacy = try kek.wrapLegacyGCM(plain, ctx)
        #expect(legacy.count == 60)
        #expect(try await again.unwrap(legacy, ctx) == plain)
        await #expect(throws: LetheError.self) { _ = try await kek.unwrap(legacy, WrapContext(subject: other, keyID: key.id)) }
        // Another KEK opens neither.
        let stranger = FileKeyEncryptionKey(key: [UInt8](repeating: 9, count: 32), path: "x")
        await #expect(throws: LetheError.self) { _ = try await stranger.unwrap(wrapped, ctx) }
        await #expect(throws: LetheError.self) { _ = try await stranger.unwrap(legacy, ctx) }
    }

    @Test func vaultConfigParses() throws {
        let base = "lake: lake\nstate: st\ndatasets:\n  - {name: a, path: a, format: jsonl, subject: u, pii: [e]}\n"
        let none = try LakeConfig.parse(base, file: "l.yaml", baseDir: "/x")
        #expect(none.vault.kek == .file(path: nil))
        #expect(none.vaultKeyFile == "/x/st/vault.key")
        let kms = try LakeConfig.parse(
            base + "vault: {kek: kms, kms_key_id: alias/lethe, kms_endpoint: 'http://127.0.0.1:5000', cache: 5}\n", file: "l.yaml", baseDir: "/x")
        #expect(kms.vault.kek == .kms(keyID: "alias/lethe", endpoint: "http://127.0.0.1:5000", region: nil))
        #expect(kms.vault.cacheSize == 5)
        #expect(throws: LetheError.self) { _ = try LakeConfig.parse(base + "vault: {kek: kms}\n", file: "l.yaml", baseDir: "/x") }
        #expect(throws: LetheError.self) { _ = try LakeConfig.parse(base + "vault: {kek: hsm}\n", file: "l.yaml", baseDir: "/x") }
        #expect(throws: LetheError.self) { _ = try LakeConfig.parse(base + "vault: {color: red}\n", file: "l.yaml", baseDir: "/x") }
    }
}
