import Testing
import Foundation
import LetheTestSupport
@testable import DeltaLake
import LetheCore
import LetheStorage

/// Runs scripts/delta_dv.py (delta-rs writes the data, the script commits deletion vectors and
/// checks them against delta-rs and pyroaring) with the project's venv Python.
func dvPy(_ args: [String]) throws -> String {
    try Peers.python([Peers.script("delta_dv.py")] + args, what: "delta_dv.py \(args.prefix(2).joined(separator: " "))")
}

/// What delta_dv.py committed: per data file, the row indexes its DV deletes and the descriptor.
struct DVFixture: Decodable {
    struct File: Decodable {
        var f: Int
        var numRecords: Int
        var rows: [Int64]
        var descriptor: JSONValue
        var dvFile: String?
    }
    var version: Int64
    var files: [String: File]

    /// The file with data-file number `f`.
    func path(_ f: Int) -> String { files.first { $0.value.f == f }!.key }
}

/// A delta-rs table `dir/dv` (7 appends; deletion vectors enabled) and a commit giving six of its
/// files DVs of every kind: two in one DV file (the second at a later offset), one in a DV file
/// under a random-prefix folder with ≥ 4 containers (run cookie with an offset header), one by
/// absolute `file://` path, two inline (one a bitmap container, one a 35-byte run container: not
/// a multiple of 4 bytes). File 6 keeps no DV.
func makeDVTable() throws -> (dir: String, fixture: DVFixture) {
    let dir = tempDir()
    _ = try dvPy(["make", dir, "40,1000,12000,200000,20,30,25"])
    let spec = #"""
        {"dvs": [
          {"f": 0, "rows": [0, 5, 39], "storage": "u", "bin": "b1"},
          {"f": 1, "ranges": [[100, 300], [500, 510]], "rows": [999], "storage": "u", "bin": "b1"},
          {"f": 2, "ranges": [[0, 12000, 2]], "storage": "i"},
          {"f": 3, "ranges": [[0, 70000], [131072, 196608, 3]], "rows": [196613, 199999], "storage": "u", "bin": "b2", "prefix": "xy"},
          {"f": 4, "ranges": [[3, 8]], "rows": [12], "storage": "i"},
          {"f": 5, "rows": [1, 2, 29], "storage": "p", "bin": "b3"}
        ]}
        """#
    let out = try dvPy(["delete", dir + "/dv", spec])
    return (dir, try JSONDecoder().decode(DVFixture.self, from: Data(out.utf8)))
}

@Test func deletedRowsMatchWhatDeltaRsReads() async throws {
    let (dir, fx) = try makeDVTable(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "dv")
    let snap = try await table.snapshot()
    #expect(snap.version == fx.version)
    #expect(snap.tableProtocol.readerFeatures.contains("deletionVectors"))
    #expect(snap.files.count == 7)
    #expect(fx.files.count == 6)
    var census = DeletionVectorBitmap.Census()
    var offsets: [Int64] = [], inlineSizes: [Int64] = [], kinds: Set<String> = []
    for (path, add) in snap.files {
        let expected = fx.files[path]?.rows ?? []
        #expect(try await table.deletedRows(add) == expected, "\(path)")
        guard let want = fx.files[path] else {
            #expect(try table.deletionVector(of: add) == nil)
            continue
        }
        let dv = try #require(try table.deletionVector(of: add))
        // The descriptor gives back the JSON it was parsed from, which is what the script wrote.
        #expect(dv.json == want.descriptor)
        #expect(dv.json == add.deletionVector)
        #expect(dv.cardinality == Int64(want.rows.count))
        kinds.insert(dv.storageType.rawValue)
        if let f = want.dvFile {
            #expect(try dv.fileKey(in: table) == "dv/" + f)
            offsets.append(dv.offset ?? 0)
        } else {
            #expect(try dv.fileKey(in: table) == nil)
            inlineSizes.append(dv.sizeInBytes)
        }
        if dv.storageType == .relativeUUID && want.f == 3 { #expect(dv.randomPrefix == "xy") }
        let (bytes, _, _) = try await table.bitmapBytes(dv, dataFile: path)
        #expect(Int64(bytes.count) == dv.sizeInBytes)
        #expect(try DeletionVectorBitmap.decode(bytes[...], expectedCount: nil, census: &census) == expected)
    }
    // The fixture covers what it claims to.
    #expect(kinds == ["u", "i", "p"])
    #expect(offsets.contains { $0 > 1 })  // a second DV in one file
    #expect(inlineSizes.contains { $0 % 4 != 0 })  // Z85 padding
    #expect(census.arrays > 0 && census.bitmaps > 0 && census.runs > 0)
    #expect(census.noRunCookies > 0 && census.runCookies > 0 && census.runCookiesWithOffsets > 0)
    // Through a descriptor alone (no data file known), and for a DV at a non-zero offset.
    let second = try #require(try table.deletionVector(of: snap.files[fx.path(1)]!))
    #expect(try await table.deletedRows(second) == fx.files[fx.path(1)]!.rows)
}

@Test func deletionVectorsInACheckpointWrittenByDeltaRsAreRead() async throws {
    let (dir, fx) = try makeDVTable(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = LocalObjectStore(root: dir)
    let table = DeltaTable(store: store, root: "dv")
    let fromJSON = try await table.snapshot()
    _ = try deltaPy(["checkpoint", dir + "/dv"])
    #expect(try await table.lastCheckpoint()?.version == fx.version)
    // Only the checkpoint is left: the DVs must come from its `add.deletionVector` struct.
    for v in 0...fx.version { try await store.delete("dv/_delta_log/" + DeltaTable.commitName(v)) }
    let fromCheckpoint = try await table.snapshot()
    #expect(Set(fromCheckpoint.files.keys) == Set(fromJSON.files.keys))
    for (path, add) in fromCheckpoint.files {
        let mine = try table.deletionVector(of: add), theirs = try table.deletionVector(of: fromJSON.files[path]!)
        #expect(mine?.storageType == theirs?.storageType && mine?.pathOrInlineDv == theirs?.pathOrInlineDv, "\(path)")
        #expect(mine?.offset == theirs?.offset && mine?.sizeInBytes == theirs?.sizeInBytes && mine?.cardinality == theirs?.cardinality)
        #expect(try await table.deletedRows(add) == (fx.files[path]?.rows ?? []), "\(path)")
    }
}

@Test func aCorruptChecksumIsReportedNamingTheDVFile() async throws {
    let (dir, fx) = try makeDVTable(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "dv")
    let snap = try await table.snapshot()
    let victim = fx.path(1), neighbour = fx.path(0)  // two DVs of one file
    let dv = try #require(try table.deletionVector(of: snap.files[victim]!))
    let binPath = dir + "/dv/" + fx.files[victim]!.dvFile!
    var bin = try [UInt8](Data(contentsOf: URL(fileURLWithPath: binPath)))
    bin[Int(dv.offset!) + 4 + 20] ^= 0x40  // inside the victim's bitmap
    try Data(bin).write(to: URL(fileURLWithPath: binPath))
    do {
        _ = try await table.deletedRows(snap.files[victim]!)
        Issue.record("a DV failing its CRC was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt)
        #expect(e.location == "dv/" + fx.files[victim]!.dvFile!)
        #expect(e.message.contains("checksum"))
        #expect(e.message.contains("table `dv`") && e.message.contains(victim))
    }
    // The other DV in the same file is intact.
    #expect(try await table.deletedRows(snap.files[neighbour]!) == fx.files[neighbour]!.rows)
    // A wrong size field is caught before the checksum.
    bin[Int(dv.offset!) + 3] ^= 0x01
    try Data(bin).write(to: URL(fileURLWithPath: binPath))
    do {
        _ = try await table.deletedRows(snap.files[victim]!)
        Issue.record("a DV with a wrong size field was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt && e.message.contains("descriptor says \(dv.sizeInBytes)"))
    }
    // So is a file whose format version is not 1.
    bin[0] = 2
    try Data(bin).write(to: URL(fileURLWithPath: binPath))
    do {
        _ = try await table.deletedRows(snap.files[neighbour]!)
        Issue.record("a DV file of version 2 was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt && e.message.contains("format version 2"))
    }
}

@Test func aCardinalityMismatchIsCorrupt() async throws {
    let (dir, fx) = try makeDVTable(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "dv")
    let snap = try await table.snapshot()
    for f in [0, 4] {  // a DV file and an inline DV
        let path = fx.path(f)
        var add = snap.files[path]!
        var o = add.deletionVector!.object!
        o["cardinality"] = .int(Int64(fx.files[path]!.rows.count) + 1)
        add.deletionVector = .object(o)
        do {
            _ = try await table.deletedRows(add)
            Issue.record("a DV whose cardinality is wrong was read")
        } catch let e as LetheError {
            #expect(e.code == .corrupt)
            #expect(e.message.contains("holds \(fx.files[path]!.rows.count) rows but its descriptor's cardinality is \(fx.files[path]!.rows.count + 1)"))
            #expect(e.message.contains(path))
            #expect(e.location == (fx.files[path]!.dvFile.map { "dv/" + $0 } ?? "dv"))
        }
    }
}

@Test func aMissingDVFileNamesTheTableAndTheFile() async throws {
    let (dir, fx) = try makeDVTable(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "dv")
    let snap = try await table.snapshot()
    let path = fx.path(3)
    let rel = fx.files[path]!.dvFile!
    #expect(rel.hasPrefix("xy/deletion_vector_"))
    try FileManager.default.removeItem(atPath: dir + "/dv/" + rel)
    do {
        _ = try await table.deletedRows(snap.files[path]!)
        Issue.record("a missing DV file was not reported")
    } catch let e as LetheError {
        #expect(e.code == .corrupt)
        #expect(e.location == "dv/" + rel)
        #expect(e.message.contains("missing") && e.message.contains("table `dv`") && e.message.contains(path))
    }
    // A DV file cut short is reported too.
    let other = fx.path(0)
    let bin = dir + "/dv/" + fx.files[other]!.dvFile!
    let bytes = try Data(contentsOf: URL(fileURLWithPath: bin))
    try bytes.prefix(10).write(to: URL(fileURLWithPath: bin))
    do {
        _ = try await table.deletedRows(snap.files[other]!)
        Issue.record("a truncated DV file was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt && e.message.contains("10 bytes, too short"))
    }
}

@Test func malformedDescriptorsAndBadZ85AreCorrupt() throws {
    func parse(_ o: [String: JSONValue]) throws -> DeletionVectorDescriptor {
        try DeletionVectorDescriptor(json: .object(o), table: "t", dataFile: "part-1.parquet")
    }
    func rejects(_ o: [String: JSONValue], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parse(o)
            Issue.record("accepted \(JSONValue.object(o).encodedText)", sourceLocation: sourceLocation)
        } catch let e as LetheError {
            #expect(e.code == .corrupt, sourceLocation: sourceLocation)
            #expect(e.location == "t", sourceLocation: sourceLocation)
            #expect(e.message.contains("`part-1.parquet`") && e.message.contains(words), "\(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }
    let inline: [String: JSONValue] = [
        "storageType": .string("i"), "pathOrInlineDv": .string("wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L"),
        "sizeInBytes": .int(40), "cardinality": .int(6),
    ]
    _ = try parse(inline)
    var o = inline; o["pathOrInlineDv"] = .string("wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{~")
    rejects(o, "not valid Z85")
    o = inline; o["pathOrInlineDv"] = .string("#####000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L")  // 85^5 - 1 > 2^32 - 1
    rejects(o, "not valid Z85")
    o = inline; o["pathOrInlineDv"] = .string("wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-")
    rejects(o, "48 Z85 characters; sizeInBytes 40 needs 50")
    o = inline; o["sizeInBytes"] = .int(44)
    rejects(o, "needs 55")
    o = inline; o["offset"] = .int(1)
    rejects(o, "inline deletion vector has an offset")
    o = inline; o["storageType"] = .string("x")
    rejects(o, "storageType `x` is not one of u, i, p")
    o = inline; o["sizeInBytes"] = nil
    rejects(o, "sizeInBytes (absent)")
    o = inline; o["cardinality"] = .int(-1)
    rejects(o, "cardinality -1")
    o = inline; o["pathOrInlineDv"] = nil
    rejects(o, "no pathOrInlineDv")
    let relative: [String: JSONValue] = [
        "storageType": .string("u"), "pathOrInlineDv": .string("ab^-aqEH.-t@S}K{vb[*k^"),
        "offset": .int(4), "sizeInBytes": .int(40), "cardinality": .int(6),
    ]
    _ = try parse(relative)
    o = relative; o["pathOrInlineDv"] = .string("ab^-aqEH.-t@S}K{vb[*k\"")
    rejects(o, "does not end in a Z85-encoded UUID")
    o = relative; o["pathOrInlineDv"] = .string("^-aqEH.-t@S}K{vb[*k")
    rejects(o, "shorter than a 20-character Z85 UUID")
    o = relative; o["pathOrInlineDv"] = .string("../^-aqEH.-t@S}K{vb[*k^")
    rejects(o, "not a relative folder")
    o = relative; o["offset"] = .string("4")
    rejects(o, "offset \"4\"")
    #expect(throws: LetheError.self) { try DeletionVectorDescriptor(json: .string("x"), table: "t", dataFile: "p") }
}

@Test func theProtocolsExamplesDecode() async throws {
    // PROTOCOL.md, "JSON Example 1": a relative DV with a random prefix.
    let u = try DeletionVectorDescriptor(
        json: .object([
            "storageType": .string("u"), "pathOrInlineDv": .string("ab^-aqEH.-t@S}K{vb[*k^"),
            "offset": .int(4), "sizeInBytes": .int(40), "cardinality": .int(6),
        ]),
        table: "mytable", dataFile: "a.parquet")
    #expect(u.uuid == "d2c639aa-8816-431a-aaf6-d3fe2512ff61")
    #expect(u.randomPrefix == "ab")
    #expect(u.offset == 4 && u.sizeInBytes == 40 && u.cardinality == 6)
    let store = InMemoryObjectStore()
    #expect(try u.fileKey(in: DeltaTable(store: store, root: "mytable")) == "mytable/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin")
    #expect(try u.fileKey(in: DeltaTable(store: store, root: "")) == "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin")
    // "JSON Example 3" says it holds rows 3, 4, 7, 11, 18, 29, but its 40 bytes are the older
    // "native" RoaringBitmapArray layout written big-endian (64 39 d3 d0 = 1681511376, then 1 bitmap
    // of 0x1c bytes), not the portable format behind magic 1681511377 that the protocol's
    // "Deletion Vector Format" specifies (and this fixture writes). It is refused (Trino's tests expect the same).
    let example = JSONValue.object([
        "storageType": .string("i"), "pathOrInlineDv": .string("wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L"),
        "sizeInBytes": .int(40), "cardinality": .int(6),
    ])
    let i = try DeletionVectorDescriptor(json: example, table: "t", dataFile: "a.parquet")
    #expect(i.json == example)
    #expect(i.inlineBytes?.prefix(12) == [0x64, 0x39, 0xD3, 0xD0, 0, 0, 0, 1, 0, 0, 0, 0x1C])
    #expect(try i.fileKey(in: DeltaTable(store: store, root: "t")) == nil)
    do {
        _ = try await DeltaTable(store: store, root: "t").deletedRows(i)
        Issue.record("the protocol's native-layout example was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt && e.message.contains("magic number") && e.location == "t")
    }
    // The same rows in the portable layout, inline (44 bytes), and one more row (46 bytes: Z85-padded).
    let portable = portableBitmap(rows: [3, 4, 7, 11, 18, 29])
    for (bytes, count) in [(portable, 6), (portableBitmap(rows: [3, 4, 7, 11, 18, 29, 30]), 7)] {
        #expect(bytes.count % 4 == (count == 6 ? 0 : 2))
        let dv = try DeletionVectorDescriptor(
            json: .object([
                "storageType": .string("i"), "pathOrInlineDv": .string(Z85.encode(bytes)),
                "sizeInBytes": .int(Int64(bytes.count)), "cardinality": .int(Int64(count)),
            ]),
            table: "t", dataFile: "a.parquet")
        #expect(try await DeltaTable(store: store, root: "t").deletedRows(dv) == Array([3, 4, 7, 11, 18, 29, 30].prefix(count)))
    }
    // An add without a DV deletes nothing.
    let plain = AddFile(path: "a.parquet", partitionValues: [:], size: 1, modificationTime: 0, dataChange: true, stats: nil)
    #expect(try await DeltaTable(store: store, root: "t").deletedRows(plain) == [])
    // Example 1's DV file in an in-memory table, written by hand: the version byte, then two DVs.
    let other = portableBitmap(rows: [0, 65536, 65537])
    var file: [UInt8] = [1]
    for bitmap in [portable, other] { file += be32(UInt32(bitmap.count)) + bitmap + be32(CRC32.checksum(bitmap[...])) }
    store.set("t/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin", file)
    let t = DeltaTable(store: store, root: "t")
    for (offset, bitmap, rows) in [(1, portable, [3, 4, 7, 11, 18, 29] as [Int64]), (1 + 4 + portable.count + 4, other, [0, 65536, 65537])] {
        var o = u.json.object!
        o["offset"] = .int(Int64(offset))
        o["sizeInBytes"] = .int(Int64(bitmap.count))
        o["cardinality"] = .int(Int64(rows.count))
        let dv = try DeletionVectorDescriptor(json: .object(o), table: "t", dataFile: "a.parquet")
        #expect(try await t.deletedRows(dv) == rows)
    }
    // The example's own offset (4) is not where this file's DVs start: the size field there is wrong.
    do {
        _ = try await t.deletedRows(u)
        Issue.record("a DV at the wrong offset was read")
    } catch let e as LetheError {
        #expect(e.code == .corrupt && e.location == "t/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin")
    }
}

/// Delta's magic number and a portable 64-bit Roaring bitmap of `rows` (all below 2^32), in
/// array containers under cookie 12346, built by hand per RoaringFormatSpec.
func portableBitmap(rows: [UInt32]) -> [UInt8] {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
    let groups = Dictionary(grouping: rows) { Int($0 >> 16) }.sorted { $0.key < $1.key }
    var b = le32(1_681_511_377) + [1, 0, 0, 0, 0, 0, 0, 0] + le32(0) + le32(12346) + le32(UInt32(groups.count))
    for g in groups { b += le16(g.key) + le16(g.value.count - 1) }
    var offset = 8 + 8 * groups.count
    for g in groups { b += le32(UInt32(offset)); offset += 2 * g.value.count }
    for g in groups { for v in g.value.sorted() { b += le16(Int(v & 0xFFFF)) } }
    return b
}

@Test func z85AndCRC32MatchTheirSpecifications() {
    // ZeroMQ RFC 32's test vector.
    let hello: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
    #expect(Z85.encode(hello) == "HelloWorld")
    #expect(Z85.decode(Array("HelloWorld".utf8)[...]) == hello)
    #expect(Z85.decode(Array("Hello".utf8)[...]) == Array(hello.prefix(4)))
    #expect(Z85.decode(Array("HelloWorl".utf8)[...]) == nil)  // not whole blocks
    #expect(Z85.decode(Array("Hello Worl".utf8)[...]) == nil)  // not in the alphabet
    #expect(Z85.decode(Array("%nSc0".utf8)[...]) == [0xFF, 0xFF, 0xFF, 0xFF])
    #expect(Z85.decode(Array("%nSc1".utf8)[...]) == nil)  // 2^32: does not fit a block
    // Padding: 1...7 bytes encode as whole blocks and decode back after truncation.
    for n in 1...7 {
        let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
        let text = Z85.encode(bytes)
        #expect(text.utf8.count == (n + 3) / 4 * 5)
        #expect(Array(Z85.decode(Array(text.utf8)[...])!.prefix(n)) == bytes)
    }
    #expect(CRC32.checksum(Array("123456789".utf8)[...]) == 0xCBF4_3926)
    #expect(CRC32.checksum([][...]) == 0)
}

/// A 64-bit bitmap built by hand per RoaringFormatSpec: three buckets (high keys 0, 1 and
/// 2^31 - 1), with an array container (no-run cookie), a run container (run cookie, no offset
/// header) and a bitmap container.
func handBuiltTreemap() -> (bytes: [UInt8], rows: [Int64]) {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
    var b = le32(1_681_511_377) + [3, 0, 0, 0, 0, 0, 0, 0]
    var rows: [Int64] = []
    // Bucket 0: cookie 12346, one container (key 0, 2 values), offset header, array [7, 9].
    b += le32(0) + le32(12346) + le32(1) + le16(0) + le16(1) + le32(16) + le16(7) + le16(9)
    rows += [7, 9]
    // Bucket 1: cookie 12347 with 1 container, run flags, key 2 with 10 values, run 100...109.
    b += le32(1) + le32(12347) + [0x01] + le16(2) + le16(9) + le16(1) + le16(100) + le16(9)
    rows += (100...109).map { Int64(1) << 32 | Int64(2) << 16 | Int64($0) }
    // Bucket 2^31 - 1: cookie 12346, key 0xFFFF with 4097 values 0...4096: a bitmap container.
    b += le32(0x7FFF_FFFF) + le32(12346) + le32(1) + le16(0xFFFF) + le16(4096) + le32(16)
    b += [UInt8](repeating: 0xFF, count: 512) + [1] + [UInt8](repeating: 0, count: 8192 - 513)
    rows += (0...4096).map { Int64(0x7FFF_FFFF) << 32 | Int64(0xFFFF) << 16 | Int64($0) }
    return (b, rows)
}

@Test func multiBucketTreemapsDecodeAndDamageIsCaught() throws {
    let (bytes, rows) = handBuiltTreemap()
    var census = DeletionVectorBitmap.Census()
    #expect(try DeletionVectorBitmap.decode(bytes[...], expectedCount: nil, census: &census) == rows)
    #expect(census == DeletionVectorBitmap.Census(buckets: 3, arrays: 1, bitmaps: 1, runs: 1, noRunCookies: 2, runCookies: 1, runCookiesWithOffsets: 0))
    func fails(_ b: [UInt8], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try DeletionVectorBitmap.decode(b[...])
            Issue.record("damaged bitmap accepted", sourceLocation: sourceLocation)
        } catch let e as DeletionVectorBitmap.FormatError {
            #expect(e.message.contains(words), "\(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }
    var b = bytes; b[0] ^= 1
    fails(b, "magic number")
    fails(bytes + [0], "1 bytes follow the bitmap")
    fails(Array(bytes.dropLast()), "truncated")
    // Buckets start after the magic number and the count; bucket 0 is 24 bytes (key, cookie,
    // container count, descriptive header, offset header, two values), bucket 1 is 19.
    let bucket0 = 4 + 8, bucket1 = bucket0 + 24
    b = bytes; b[bucket1] = 0  // key 0 again

    fails(b, "bucket keys are not ascending")
    // The last bucket's key with its top bit set: Delta forbids it.
    let bucket2 = bucket1 + 4 + 4 + 1 + 4 + 2 + 4
    b = bytes; b[bucket2 + 3] = 0xFF
    fails(b, "most significant bit")
    b = bytes; b[bucket1 + 4] = 0x99
    fails(b, "unknown Roaring cookie")
    b = bytes; b[bucket1 + 4 + 4 + 1 + 2] = 10  // run container header says 11 values
    fails(b, "holds 10 values, its header says 11")
    b = bytes; b[bucket2 + 15] = 0x0F  // 3841 values: read as an array container, whose "values" (0xFFFF...) do not ascend
    fails(b, "array container 65535 is not strictly ascending")
    b = bytes; b[bucket2 + 4 + 8 + 4 + 4 + 600] = 0x10  // one more bit than the header counts
    fails(b, "bitmap container 65535 holds 4098 values, its header says 4097")
    b = bytes; b[bucket0 + 20] = 9  // array [9, 9]
    fails(b, "array container 0 is not strictly ascending")
    var huge = Array(bytes.prefix(4)) + [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    huge += [UInt8](repeating: 0, count: 24)
    fails(huge, "buckets cannot fit")
}

@Test func pyroaringsPortable64BitSerializationDecodes() throws {
    struct Out: Decodable { var hex: String; var rows: [Int64] }
    let spec =
        #"{"rows": [0, 1, 65535, 65536, 4294967295, 4294967301, 9223372036854775807], "ranges": [[21474836480, 21474902016, 2], [8589934592, 8589999000], [12884901888, 12885163000, 7], [17179869184, 17180169184]]}"#
    let out = try JSONDecoder().decode(Out.self, from: Data(try dvPy(["bitmap", spec]).utf8))
    var bytes: [UInt8] = []
    var hex = Array(out.hex.utf8)[...]
    while !hex.isEmpty {
        bytes.append(UInt8(String(decoding: hex.prefix(2), as: UTF8.self), radix: 16)!)
        hex = hex.dropFirst(2)
    }
    var census = DeletionVectorBitmap.Census()
    let rows = try DeletionVectorBitmap.decode(bytes[...], expectedCount: Int64(out.rows.count), census: &census)
    #expect(rows == out.rows)
    #expect(census.buckets == 7)
    #expect(census.bitmaps > 0 && census.runs > 0 && census.arrays > 0 && census.runCookiesWithOffsets > 0)
}

@Test func absolutePathDVsResolveOnlyUnderTheTable() throws {
    let dir = tempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
    let table = DeltaTable(store: LocalObjectStore(root: dir), root: "t")
    func p(_ path: String) throws -> DeletionVectorDescriptor {
        try DeletionVectorDescriptor(
            json: .object([
                "storageType": .string("p"), "pathOrInlineDv": .string(path), "offset": .int(1),
                "sizeInBytes": .int(40), "cardinality": .int(6),
            ]),
            table: "t", dataFile: "a.parquet")
    }
    #expect(try p("file://\(dir)/t/deletion_vector_x.bin").fileKey(in: table) == "t/deletion_vector_x.bin")
    #expect(try p("file://\(dir)/t/sub%20dir/deletion_vector_x.bin").fileKey(in: table) == "t/sub dir/deletion_vector_x.bin")
    #expect(try p("file:\(dir)/t/deletion_vector_x.bin").fileKey(in: table) == "t/deletion_vector_x.bin")
    #expect(try p("\(dir)/t/./a/../deletion_vector_x.bin").fileKey(in: table) == "t/deletion_vector_x.bin")
    let atRoot = DeltaTable(store: LocalObjectStore(root: dir + "/t"), root: "")
    #expect(try p("file://\(dir)/t/deletion_vector_x.bin").fileKey(in: atRoot) == "deletion_vector_x.bin")
    for outside in [
        "file:///etc/deletion_vector_x.bin", "\(dir)/other/deletion_vector_x.bin", "\(dir)/t/../deletion_vector_x.bin",
        "\(dir)/tt/deletion_vector_x.bin", "s3://bucket/t/deletion_vector_x.bin",
    ] {
        do {
            _ = try p(outside).fileKey(in: table)
            Issue.record("resolved \(outside)")
        } catch let e as LetheError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains(outside) && e.message.contains("not under the table root"))
        }
    }
    #expect(throws: LetheError.self) { try p("file://\(dir)/t/deletion_vector_x.bin").fileKey(in: DeltaTable(store: InMemoryObjectStore(), root: "t")) }
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
