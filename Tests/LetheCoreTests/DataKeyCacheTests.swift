import Crypto
import Foundation
import LetheCore
import Testing

private func subject(_ i: Int) -> SubjectKey {
    SubjectKey(bytes: Array(SHA256.hash(data: Array("subject-\(i)".utf8))))
}

private func key(_ i: Int) -> ProtectedValue.DataKey {
    let bytes = Array(SHA256.hash(data: Array("key-\(i)".utf8)))
    return ProtectedValue.DataKey(id: Array(bytes.prefix(4)) + [UInt8(i & 255), 1, 2, 3], bytes: bytes)
}

private func raw(_ k: ProtectedValue.DataKey) -> [UInt8] { k.key.withUnsafeBytes { Array($0) } }

/// Whether `needle` occurs in `hay`.
private func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard hay.count >= needle.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return true }
    return false
}

@Suite("Data key cache (vault) and batch")
struct DataKeyCacheTests {
    /// Inserts, lookups and removals in any order agree with a dictionary (linear probing with
    /// backward-shift deletion keeps every remaining key reachable).
    @Test func agreesWithADictionaryThroughInsertsAndRemovals() {
        var cache = DataKeyCache(capacity: 10_000)
        var model: [SubjectKey: [UInt8]] = [:]
        var rng = SystemRandomNumberGenerator()
        for round in 0..<6000 {
            let i = Int.random(in: 0..<1500, using: &rng)
            let s = subject(i)
            if round % 3 == 2 {
                cache.remove(s)
                model[s] = nil
            } else {
                let k = key(i &+ round)
                cache.insert(s, k)
                model[s] = raw(k) + k.id
            }
        }
        #expect(cache.count == model.count)
        for i in 0..<1500 {
            let s = subject(i)
            var out = [UInt8](repeating: 0xAA, count: 40)
            let hit = out.withUnsafeMutableBytes { cache.copy(s, to: $0.baseAddress!) }
            #expect(hit == (model[s] != nil))
            if let m = model[s] {
                #expect(out == m)
                #expect(cache.keyID(s) == Array(m[32...]))
                #expect(cache.dataKey(s).map { raw($0) } == Array(m[..<32]))
            }
        }
        #expect(Set(cache.cachedSubjects) == Set(model.keys))
        // The batch lookup (prefetching ahead) gives the same answer, in the query's order, with repeats.
        let query = (0..<3000).map { _ in subject(Int.random(in: 0..<1500, using: &rng)) }
        var out = [UInt8](repeating: 0xAA, count: 40 * query.count)
        var found = [Bool](repeating: false, count: query.count)
        var missing: [Int] = []
        out.withUnsafeMutableBytes { o in
            found.withUnsafeMutableBufferPointer { f in query.withUnsafeBufferPointer { cache.copy($0, to: o.baseAddress!, found: f, missing: &missing) } }
        }
        #expect(missing == query.indices.filter { model[query[$0]] == nil })
        for (i, s) in query.enumerated() {
            #expect(found[i] == (model[s] != nil))
            if let m = model[s] { #expect(Array(out[(40 * i)..<(40 * i + 40)]) == m) }
        }
    }

    /// At capacity the oldest entry goes; the count never passes the bound.
    @Test func theCapacityIsABoundAndTheOldestGoesFirst() {
        var cache = DataKeyCache(capacity: 50)
        for i in 0..<500 {
            cache.insert(subject(i), key(i))
            #expect(cache.count <= 50)
        }
        #expect(cache.count == 50)
        #expect((450..<500).allSatisfy { cache.contains(subject($0)) })
        #expect(!(0..<450).contains { cache.contains(subject($0)) })
        // A key replaced in place keeps its place and takes the new bytes.
        cache.insert(subject(470), key(9999))
        #expect(cache.dataKey(subject(470)).map { raw($0) } == raw(key(9999)))
        #expect(cache.count == 50)
    }

    /// A removed or evicted key leaves no byte of it in the cache's storage.
    @Test func aRemovedKeysBytesAreOverwritten() {
        var cache = DataKeyCache(capacity: 3)
        for i in 0..<3 { cache.insert(subject(i), key(i)) }
        #expect(contains(cache.rawMaterial, raw(key(1))))
        cache.remove(subject(1))
        #expect(!cache.contains(subject(1)))
        #expect(!contains(cache.rawMaterial, raw(key(1))))
        cache.insert(subject(3), key(3))
        cache.insert(subject(4), key(4))  // evicts subject 0
        #expect(!cache.contains(subject(0)) && !contains(cache.rawMaterial, raw(key(0))))
        #expect(cache.contains(subject(2)) && cache.contains(subject(3)) && cache.contains(subject(4)))
        cache.removeAll()
        #expect(cache.count == 0 && !cache.contains(subject(4)))
    }

    /// A batch laid out from a dictionary answer is aligned with the subjects asked for.
    @Test func aBatchIsAlignedWithItsSubjects() async throws {
        struct Source: DataKeySource {
            func dataKeys(for subjects: [SubjectKey], create: Bool) async throws -> [SubjectKey: ProtectedValue.DataKey] {
                [subject(1): key(1), subject(3): key(3)]
            }
        }
        var batch = DataKeyBatch()
        try await Source().dataKeys(for: [subject(0), subject(1), subject(2), subject(3)], create: false, into: &batch)
        #expect(batch.found == [false, true, false, true])
        #expect(batch.material.count == 160)
        #expect(Array(batch.material[40..<72]) == raw(key(1)) && Array(batch.material[72..<80]) == key(1).id)
        #expect(batch.key(3).map { raw($0) } == raw(key(3)) && batch.key(0) == nil)
        batch.wipe()
        #expect(batch.material.allSatisfy { $0 == 0 })
    }

    /// The file KEK's pads and key ids computed in C are swift-crypto's HKDF and HMAC, byte for byte.
    @Test func theFileKEKsCPadAndKeyIDAreSwiftCryptos() {
        for i in 0..<64 {
            let kek = FileKeyEncryptionKey(key: Array(SHA256.hash(data: Array("kek-\(i)".utf8))), path: "/dev/null")
            let s = subject(i)
            let id = Array(raw(key(i)).prefix(8))
            let prefix = Array(s.bytes.prefix(i % 2 == 0 ? 12 : 32))
            #expect(kek.padForTests(prefix: prefix, keyID: id) == kek.padReference(prefix: prefix, keyID: id))
            #expect(FileKeyEncryptionKey.keyID(raw(key(i)), subject: s) == FileKeyEncryptionKey.keyIDReference(raw(key(i)), subject: s))
        }
    }

    /// Sealer slots are a chunk's: `prepare` fills slot i with subject i's key; `wipe(from:)` overwrites the
    /// keys of the slots past the current chunk's, after which they seal nothing, and a slot prepared
    /// again seals under its new key (opened by swift-crypto).
    @Test func sealerSlotsHoldOnlyTheCurrentChunksKeys() throws {
        let sealer = ValueSealer(dataset: "d", fields: ["f"])
        let nonces = NonceSource()
        func material(_ k: ProtectedValue.DataKey) -> [UInt8] { raw(k) + k.id }
        func chunk(_ subjects: [Int], keyOffset: Int = 0) throws {
            for (slot, i) in subjects.enumerated() {
                try material(key(i + keyOffset)).withUnsafeBytes { try sealer.prepare(slot: slot, material: $0.baseAddress!, subject: subject(i)) }
            }
            sealer.wipe(from: subjects.count)
        }
        func seal(_ slot: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: ValueSealer.sealedLength(5))
            let n = try out.withUnsafeMutableBufferPointer { o in
                try Array("hello".utf8).withUnsafeBytes {
                    try sealer.seal($0, kind: .text, slot: sealer.slots[slot], field: 0, nonce: try nonces.nextNonce(), to: o.baseAddress!)
                }
            }
            return Array(out[..<n])
        }
        func opens(_ text: [UInt8], _ k: ProtectedValue.DataKey, _ s: SubjectKey) -> Bool {
            (try? ProtectedValue.open(ProtectedValue.parse(text), key: k, dataset: "d", field: "f", subject: s).value) == Array("hello".utf8)
        }
        try chunk([1, 2, 3, 4])
        #expect(sealer.live == 4 && sealer.prepared == 4)
        #expect(opens(try seal(3), key(4), subject(4)))
        try chunk([5, 6])
        #expect(sealer.live == 2 && sealer.slotCount == 4)
        let five = try seal(0), six = try seal(1)
        #expect(opens(five, key(5), subject(5)) && opens(six, key(6), subject(6)))
        // Slots 2 and 3 (subjects 3 and 4 of the last chunk) are wiped: they seal nothing.
        for slot in [2, 3] {
            #expect(throws: LetheError.self) { _ = try seal(slot) }
        }
        // A replaced key: the slot prepared again seals under the new key, not the old one.
        try chunk([5], keyOffset: 100)
        let text = try seal(0)
        #expect(opens(text, key(105), subject(5)) && !opens(text, key(5), subject(5)))
        #expect(throws: LetheError.self) { _ = try seal(1) }
        sealer.wipe()
        #expect(sealer.live == 0)
        #expect(throws: LetheError.self) { _ = try seal(0) }
    }
}
