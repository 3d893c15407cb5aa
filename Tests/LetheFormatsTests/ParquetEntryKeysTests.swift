import Foundation
import LetheTestSupport
import Testing
import LetheCore
import LetheStorage
import Parquet
@testable import LetheFormats

// Issue 16, "keys once per value": a dictionary-encoded subject chunk is keyed once per dictionary
// entry, a value of a page in another encoding through the keyer's cache. Differential: every
// result (keys per row, rows without a subject, locate/erase/match outcomes, bytes written) equals
// the per-row reference (`perRowKeys`), on files this project did not write: Apache parquet-testing's
// data/ and files pyarrow and DuckDB write here (dictionary and PLAIN pages, nulls, a dictionary
// that overflows and falls back to PLAIN mid-chunk, data page v2, lists, optional columns).

/// Writes the peer files into the folder argv[1]; prints nothing.
private let writers = #"""
    import sys, os, unicodedata, random
    import pyarrow as pa, pyarrow.parquet as pq, duckdb
    d = sys.argv[1]
    rng = random.Random(16)
    n = 20000
    def user(i):
        r = rng.random()
        if r < 0.08: return None
        if r < 0.5: return "u-%d" % rng.randrange(40)            # hot subjects
        return "u-%d" % rng.randrange(6000)                       # a long tail: the dictionary overflows
    users = [user(i) for i in range(n)]
    ints = [None if u is None else (rng.randrange(-50, 50) if rng.random() < 0.7 else rng.randrange(-10**12, 10**12)) for u in users]
    # NFC: é composed (U+00E9) and decomposed (e + U+0301) name one subject under normalize: nfc.
    names = [None if rng.random() < 0.05 else unicodedata.normalize(rng.choice(["NFC", "NFD"]), "jos\u00e9-%d" % rng.randrange(30)) for _ in range(n)]
    # A list holding one subject (repeated or once), empty or null.
    def tags(i):
        r = rng.random()
        if r < 0.1: return None
        if r < 0.2: return []
        v = "t-%d" % rng.randrange(25)
        return [v] * rng.randrange(1, 3)
    t = pa.table({
        "user_id": pa.array(users, pa.string()),
        "num": pa.array(ints, pa.int64()),
        "name": pa.array(names, pa.string()),
        "tags": pa.array([tags(i) for i in range(n)], pa.list_(pa.string())),
        "req": pa.array(["r-%d" % (i % 300) for i in range(n)], pa.string()),
    })
    # Dictionary pages, then PLAIN when the dictionary passes 2 KiB (mid-chunk), small data pages.
    pq.write_table(t, os.path.join(d, "fallback.parquet"), row_group_size=7000, dictionary_pagesize_limit=2048,
                   data_page_size=1024, compression="snappy")
    pq.write_table(t, os.path.join(d, "dictionary-v2.parquet"), row_group_size=5000, data_page_version="2.0",
                   compression="zstd")
    pq.write_table(t, os.path.join(d, "plain.parquet"), row_group_size=6000, use_dictionary=False, compression="gzip")
    pq.write_table(t, os.path.join(d, "mixed.parquet"), row_group_size=8000, use_dictionary=["user_id", "name"],
                   compression="none")
    con = duckdb.connect()
    con.register("t", t.drop(["tags"]))
    con.execute("COPY (SELECT * FROM t) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 4096)" % os.path.join(d, "duckdb.parquet"))
    """#

/// A folder of peer-written files, made once per process.
private let peerFolder: Result<String, any Error> = Result {
    let dir = NSTemporaryDirectory() + "lethe-entrykeys-\(getpid())"
    if !FileManager.default.fileExists(atPath: dir + "/duckdb.parquet") {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Peers.python(["-c", writers, dir], what: "entry keys test (write)")
    }
    return dir
}

private let peerFiles = ["fallback.parquet", "dictionary-v2.parquet", "plain.parquet", "mixed.parquet", "duckdb.parquet"]

/// What one keying of a file gave: rows and keys, rows without a subject, or the error.
private struct Keyed: Equatable {
    var rows: [Int64] = []
    var keys: [SubjectKey] = []
    var without: Int64 = 0
    var error: String?
    var values = 0
}

private func keyed(
    _ file: ParquetFile, _ name: String, _ opts: FormatOptions, normalization: Normalization, perRow: Bool, only: [Int64]? = nil,
    tasks: Int = 1
) -> Keyed {
    var f = ParquetFormat()
    f.perRowKeys = perRow
    // Several tasks: the row groups keyed in parallel whatever the file's size.
    f.keyingTasks = tasks
    f.parallelRowsMinimum = 0
    let counter = KeyedRowCounter()
    f.keyedValues = counter
    let keyer = SubjectKeyer(hasher: hasher, normalization: normalization)
    var out = Keyed()
    do {
        if let only {
            for (row, key) in try f.keys(of: only, in: file, objectKey: name, options: opts, keyer: keyer) {
                out.rows.append(row)
                out.keys.append(key)
            }
        } else {
            out.without = try f.keys(file, name, opts, keyer) { row, key in
                out.rows.append(row)
                out.keys.append(key)
            }
        }
    } catch {
        out.error = "\(error)"
    }
    out.values = counter.count
    return out
}

/// Every leaf column of `file` keyed both ways (no normalisation and NFC, all rows and a hinted
/// sample): identical results. Returns (rows keyed, values keyed by the per-entry path).
private func expectSameKeys(_ file: ParquetFile, _ name: String) -> (rows: Int, values: Int) {
    var rows = 0, values = 0
    for desc in file.schema.columns {
        let opts = FormatOptions(subject: SubjectSpec(fields: [FieldPath(components: desc.path.map { Array($0.utf8) })]))
        for normalization in [Normalization.none, .nfc] {
            let a = keyed(file, name, opts, normalization: normalization, perRow: false)
            let b = keyed(file, name, opts, normalization: normalization, perRow: true)
            #expect(a.rows == b.rows && a.keys == b.keys && a.without == b.without && a.error == b.error, "\(name) \(desc.dottedPath) \(normalization)")
            #expect(a.values <= b.values, "\(name) \(desc.dottedPath)")
            // The row groups keyed on two threads (each dictionary keyed whole): the same rows and keys, in order.
            let p = keyed(file, name, opts, normalization: normalization, perRow: false, tasks: 2)
            #expect(p.rows == b.rows && p.keys == b.keys && p.without == b.without && p.error == b.error, "\(name) \(desc.dottedPath) parallel")
            if a.error == nil {
                rows += a.rows.count
                values += a.values
            }
            // Hinted rows (every 7th, and the last): the rows a Delta erase or a hinted erase keys.
            guard file.numRows > 0 else { continue }
            let sample = Array(stride(from: 0, to: file.numRows, by: 7)) + [file.numRows - 1]
            let c = keyed(file, name, opts, normalization: normalization, perRow: false, only: sample)
            let d = keyed(file, name, opts, normalization: normalization, perRow: true, only: sample)
            #expect(c == Keyed(rows: d.rows, keys: d.keys, without: d.without, error: d.error, values: c.values), "\(name) \(desc.dottedPath) hinted")
        }
    }
    return (rows, values)
}

/// Issue 16: a full keying with the row groups keyed on several threads (`ParquetFormat.keysInParallel`)
/// visits every row once, in row order, with the per-row path's key: over many row groups (several
/// windows of them, uneven sizes), nulls, a dictionary falling back to PLAIN mid-chunk, PLAIN-only and
/// DuckDB files, constant parts; and it reports the same unreferenced dictionary entries as one thread.
@Test(arguments: [2, 3, 8])
func rowGroupsKeyedOnSeveralThreadsAreVisitedInOrder(_ tasks: Int) throws {
    let path = NSTemporaryDirectory() + "lethe-entrykeys-groups-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    // 53 row groups (the last one short); every 5th row null; values recurring within and across groups.
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            n = 53 * 400 - 170
            pq.write_table(pa.table({'user_id': [None if i % 5 == 0 else 'u-%d' % (i * 37 % 2111) for i in range(n)]}),
                           sys.argv[1], row_group_size=400)
            """,
            path,
        ], what: "entry keys test (groups)")
    let file = try ParquetFile(source: InMemorySource([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))), name: "groups")
    #expect(file.rowGroups.count == 53)
    let reference = keyed(file, "groups", options("user_id"), normalization: .none, perRow: true)
    let parallel = keyed(file, "groups", options("user_id"), normalization: .none, perRow: false, tasks: tasks)
    #expect(parallel.error == nil && parallel.rows.count == reference.rows.count && parallel.rows.count > 16000)
    #expect(parallel.rows == reference.rows, "each row once, in order")
    #expect(parallel.keys == reference.keys)
    #expect(parallel.without == reference.without && parallel.without > 4000)
    // The peer files (fallback to PLAIN, data page v2, PLAIN only, DuckDB), a subject with a constant part.
    let dir = try peerFolder.get()
    for name in peerFiles {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        let peer = try ParquetFile(source: InMemorySource(bytes), name: name)
        var withTenant = FormatOptions(subject: SubjectSpec(fields: [FieldPath("tenant"), FieldPath("user_id")]))
        withTenant.constants[FieldPath("tenant")] = .value(Array("t-1".utf8))
        for opts in [options("user_id"), options("num"), withTenant] {
            for normalization in [Normalization.none, .nfc] {
                let a = keyed(peer, name, opts, normalization: normalization, perRow: false, tasks: tasks)
                let b = keyed(peer, name, opts, normalization: normalization, perRow: true)
                #expect(a.error == nil && a.rows.count > 1000)
                #expect(a.rows == b.rows && a.keys == b.keys && a.without == b.without, "\(name) \(normalization)")
            }
        }
    }
    // Unreferenced entries: each row group holds the whole dictionary (pyarrow writes an Arrow
    // dictionary array so), its rows naming only some entries.
    let orphans = NSTemporaryDirectory() + "lethe-entrykeys-orphans-\(UUID().uuidString).parquet"
    defer { unlink(orphans) }
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            vals = pa.array(['u-%d' % v for v in range(12)])
            idx = [(g * 5 + k) % 9 for g in range(11) for k in range(6)]
            pq.write_table(pa.table({'user_id': pa.DictionaryArray.from_arrays(pa.array(idx, type=pa.int32()), vals)}),
                           sys.argv[1], row_group_size=6)
            """,
            orphans,
        ], what: "entry keys test (orphans)")
    let dictionaries = try ParquetFile(source: InMemorySource([UInt8](try Data(contentsOf: URL(fileURLWithPath: orphans)))), name: "orphans")
    let everyone = Set((0..<12).map { key("u-\($0)") })
    var unreferenced: [[Int: Set<Int>]] = []
    for t in [1, tasks] {
        var f = ParquetFormat()
        f.keyingTasks = t
        f.parallelRowsMinimum = 0
        unreferenced.append(
            try f.unreferencedChunks(
                in: dictionaries, objectKey: "orphans", options: options("user_id"), keyer: SubjectKeyer(hasher: hasher), keys: everyone))
    }
    #expect(unreferenced[0].count == 11 && unreferenced[0].values.allSatisfy { $0 == [0] })
    #expect(unreferenced[1] == unreferenced[0])
    let one = SubjectKeyer(hasher: hasher)
    var f = ParquetFormat()
    f.parallelRowsMinimum = 0
    var reported: [[SubjectKey]] = []
    for t in [1, tasks] {
        f.keyingTasks = t
        var keys: [SubjectKey] = []
        _ = try f.keys(dictionaries, "orphans", options("user_id").resolved(for: "orphans"), one, unreferenced: { g, _, k in keys.append(k) }) { _, _ in }
        reported.append(keys)
    }
    #expect(reported[1] == reported[0] && reported[0].count == 11 * 6)
}

/// Apache parquet-testing comes from GitHub (`scripts/corpus-parquet --fetch-only`), which CI cannot reach:
/// there the pyarrow- and DuckDB-written files below carry the differential check alone.
@Test(.enabled(if: Corpora.parquetTesting != nil, "Apache parquet-testing is not fetched (scripts/corpus-parquet --fetch-only)"))
func everyParquetTestingFileKeysAsThePerRowPathDoes() throws {
    let root = try Corpora.parquetTestingData()
    let names = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".parquet") }.sorted()
    #expect(names.count > 40)
    var opened = 0
    var counts: [String: (rows: Int, values: Int)] = [:]
    for name in names {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + name)))
        guard let file = try? ParquetFile(source: InMemorySource(bytes), name: name) else { continue }  // encrypted, bad_data-like
        opened += 1
        counts[name] = expectSameKeys(file, name)
    }
    #expect(opened > 35)
    // Their dictionary-encoded files of 1,000 rows (RLE_DICTIONARY, and parquet-mr's PLAIN_DICTIONARY) are keyed per entry.
    for name in ["rle-dict-snappy-checksum.parquet", "plain-dict-uncompressed-checksum.parquet"] {
        let c = counts[name]
        #expect(c != nil && c!.rows >= 1000 && c!.values * 2 < c!.rows, "\(name): \(String(describing: c))")
    }
}

@Test func peerWrittenFilesKeyAsThePerRowPathDoes() throws {
    let dir = try peerFolder.get()
    for name in peerFiles {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        let file = try ParquetFile(source: InMemorySource(bytes), name: name)
        let (rows, values) = expectSameKeys(file, name)
        #expect(rows > 0)
        if name != "plain.parquet" { #expect(values < rows, "\(name): \(values) values keyed for \(rows) rows") }
    }
}

/// What one scan of a chunk gave: a slot per row (-1 null, an entry, or -2 - i for the i-th other value),
/// the rows of the other values and the values, the dictionary handed over, the error.
private struct Slots: Equatable {
    var slots: [Int32] = []
    var otherRows: [Int64] = []
    var others = ByteArrayValues()
    var dictionary: ByteArrayValues?
    var error: String?
}

/// Row group `group`'s `column` scanned per row (`scanColumnEntries`) and in bulk (`scanColumnSlots`).
private func slotsBothWays(_ file: ParquetFile, _ column: Int, _ group: Int) -> (perRow: Slots, bulk: Slots) {
    var a = Slots()
    var rowsVisited: [Int64] = []
    do {
        var dictionary: ByteArrayValues?
        defer { a.dictionary = dictionary }
        try file.scanColumnEntries(column, rowGroup: group, dictionary: { dictionary = $0 }) { row, entry, value in
            rowsVisited.append(row)
            guard let value else { return a.slots.append(-1) }
            if entry >= 0 { return a.slots.append(Int32(entry)) }
            a.slots.append(Int32(-2 - a.others.count))
            a.otherRows.append(row)
            a.others.append(value)
        }
    } catch {
        a.error = "\(error)"
    }
    // The per-row scan visits the row group's rows in order, from its first.
    let first = file.rowGroupFirstRow[group]
    #expect(rowsVisited == Array(first..<(first + Int64(rowsVisited.count))))
    var b = Slots()
    do {
        var dictionary: ByteArrayValues?
        defer { b.dictionary = dictionary }
        try file.scanColumnSlots(column, rowGroup: group, dictionary: { dictionary = $0 }, slots: &b.slots) { row, value in
            b.otherRows.append(row)
            b.others.append(value)
            return Int32(-1 - b.others.count)
        }
    } catch {
        b.error = "\(error)"
    }
    return (a, b)
}

/// Every column and row group of `file` scanned both ways: the same slots, other values, dictionary
/// and error. Returns (rows a dictionary page gave, null rows, other rows).
@discardableResult
private func expectSameSlots(_ file: ParquetFile, _ name: String) -> (entries: Int, nulls: Int, others: Int) {
    var entries = 0, nulls = 0, others = 0
    for desc in file.schema.columns {
        for g in 0..<file.rowGroups.count {
            let (a, b) = slotsBothWays(file, desc.index, g)
            #expect(a == b, "\(name) \(desc.dottedPath) row group \(g)")
            entries += a.slots.count { $0 >= 0 }
            nulls += a.slots.count { $0 == -1 }
            others += a.otherRows.count
        }
    }
    return (entries, nulls, others)
}

/// Issue 16: a dictionary page's indices handed over in bulk (`scanColumnSlots`) name the entries the
/// per-row scan names, row for row, over every column of the peer files — RLE and bit-packed index
/// runs, nulls, data page v2, a dictionary falling back to PLAIN mid-chunk, PLAIN-only files, lists —
/// and of parquet-testing when fetched.
@Test func dictionaryIndicesInBulkNameWhatThePerRowScanNames() throws {
    let dir = try peerFolder.get()
    var total = (entries: 0, nulls: 0, others: 0)
    for name in peerFiles {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        let file = try ParquetFile(source: InMemorySource(bytes), name: name)
        let c = expectSameSlots(file, name)
        total = (total.entries + c.entries, total.nulls + c.nulls, total.others + c.others)
        if name != "plain.parquet" { #expect(c.entries > 0, "\(name)") }
    }
    #expect(total.nulls > 0 && total.others > 0)
    if Corpora.parquetTesting != nil {
        let root = try Corpora.parquetTestingData()
        let names = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".parquet") }
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + name)))
            guard let file = try? ParquetFile(source: InMemorySource(bytes), name: name) else { continue }
            expectSameSlots(file, name)
        }
    }
}

/// A damaged chunk (one byte of a dictionary-encoded subject chunk changed, at many places: page
/// headers, levels, index runs, dictionary values) gives the same error in bulk as per row, after
/// the same rows.
@Test(arguments: ["mixed.parquet", "fallback.parquet"])  // one page a chunk, uncompressed; small pages, snappy
func aDamagedChunkFailsInBulkAsPerRow(_ name: String) throws {
    let dir = try peerFolder.get()
    let clean = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
    let file = try ParquetFile(source: InMemorySource(clean), name: name)
    let column = try file.column(["user_id"]).index
    var failed = 0, partial = 0
    for g in 0..<min(2, file.rowGroups.count) {
        let md = file.rowGroups[g].columns[column].metaData!
        let start = Int(md.chunkStart), size = Int(md.totalCompressedSize)
        for k in 0..<150 {
            var bytes = clean
            let at = start + k * size / 150
            bytes[at] ^= k % 2 == 0 ? 0xFF : 0x10
            guard let damaged = try? ParquetFile(source: InMemorySource(bytes), name: name) else { continue }
            let (a, b) = slotsBothWays(damaged, column, g)
            #expect(a == b, "row group \(g), byte \(at)")
            if a.error != nil {
                failed += 1
                if !a.slots.isEmpty { partial += 1 }
            }
        }
    }
    #expect(failed > 20, "\(failed) failed")
    if name == "fallback.parquet" { #expect(partial > 5, "\(partial) failed after some rows") }
}

/// pyarrow's fallback: a chunk whose first pages are dictionary-encoded and whose later pages are
/// PLAIN (the dictionary passed `dictionary_pagesize_limit`). The per-entry path keys each entry
/// once and each PLAIN value through the cache; the keys agree with the per-row path's.
@Test func aDictionaryFallingBackToPlainMidChunkIsKeyedPerEntryThenPerValue() throws {
    let dir = try peerFolder.get()
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/fallback.parquet")))
    let file = try ParquetFile(source: InMemorySource(bytes), name: "fallback.parquet")
    let column = try file.column(["user_id"]).index
    var mixedChunks = 0
    var entryRows = 0, distinctEntries = 0, plainRows = 0
    for g in 0..<file.rowGroups.count {
        var entries = Set<Int>()
        var plain = 0, fromDictionary = 0
        try file.scanColumnEntries(column, rowGroup: g) { _, entry, value in
            guard value != nil else { return }
            if entry >= 0 {
                entries.insert(entry)
                fromDictionary += 1
            } else {
                plain += 1
            }
        }
        if plain > 0 && fromDictionary > 0 { mixedChunks += 1 }
        entryRows += fromDictionary
        distinctEntries += entries.count
        plainRows += plain
    }
    #expect(mixedChunks == file.rowGroups.count, "every chunk falls back mid-chunk")
    let a = keyed(file, "fallback.parquet", options("user_id"), normalization: .none, perRow: false)
    let b = keyed(file, "fallback.parquet", options("user_id"), normalization: .none, perRow: true)
    #expect(a.rows == b.rows && a.keys == b.keys && a.without == b.without)
    #expect(b.values == entryRows + plainRows)
    #expect(a.values == distinctEntries + plainRows, "one keying per entry, one per PLAIN value")
    #expect(distinctEntries < entryRows)
}

/// A subject of a partition value and a column (the partition constant before or after it) is
/// keyed per entry too, with the same keys as the per-row join.
@Test(arguments: [["tenant", "user_id"], ["user_id", "tenant"], ["a", "num", "b"]])
func aSubjectWithConstantPartsKeysAsThePerRowJoin(_ fields: [String]) throws {
    let dir = try peerFolder.get()
    for name in ["fallback.parquet", "duckdb.parquet"] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        let file = try ParquetFile(source: InMemorySource(bytes), name: name)
        var opts = FormatOptions(subject: SubjectSpec(fields: fields.map(FieldPath.init)))
        for f in fields where f != "user_id" && f != "num" { opts.constants[FieldPath(f)] = .value(Array("v-\(f)".utf8)) }
        let a = keyed(file, name, opts, normalization: .none, perRow: false)
        let b = keyed(file, name, opts, normalization: .none, perRow: true)
        #expect(a.error == nil && a.rows.count > 1000)
        #expect(a.rows == b.rows && a.keys == b.keys && a.without == b.without, "\(name) \(fields)")
        // pyarrow dictionary-encodes both columns (until its fallback); DuckDB writes them PLAIN (its
        // dictionaries are for the low-cardinality `name` and `req`).
        if name == "fallback.parquet" { #expect(a.values < b.values) } else { #expect(a.values <= b.values) }
        let column = fields.first { $0 == "user_id" || $0 == "num" }!
        let parts = fields.map { $0 == column ? "VALUE" : "v-\($0)" }
        // Spot check against the key of the joined parts.
        if let i = a.rows.indices.first {
            var value: [UInt8]?
            try file.scanColumn(path: [column], rowGroup: file.rowGroup(ofRow: a.rows[i])!) { row, v in
                if row == a.rows[i] { value = v.map { Array($0) } }
            }
            let joined = parts.map { $0 == "VALUE" ? String(decoding: value!, as: UTF8.self) : $0 }
            #expect(a.keys[i] == key(parts: joined))
        }
    }
}

/// Through the object store: scan (whole and sparse), erase (in memory and streamed) and match (by
/// value and by key) give the same outcomes and write the same bytes either way.
@Test(arguments: ["fallback.parquet", "dictionary-v2.parquet", "plain.parquet", "duckdb.parquet"])
func locateEraseAndMatchAgreeWithThePerRowPath(_ name: String) async throws {
    let dir = try peerFolder.get()
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
    let drop: Set<SubjectKey> = [key("u-3"), key("u-17"), key("u-4242"), key("u-5999")]
    for normalization in [Normalization.none, .nfc] {
        for limit in [Int64.max, 0] {
            var outcomes: [[String]] = []
            var written: [[UInt8]] = []
            for perRow in [false, true] {
                var f = ParquetFormat(wholeObjectLimit: limit, tailGuess: 512, coalesceGap: 0)
                f.perRowKeys = perRow
                let store = InMemoryObjectStore()
                store.set("d/" + name, bytes)
                let info = try #require(try await store.head("d/" + name))
                var log: [String] = []
                for field in ["user_id", "num", "name", "tags.list.element"] {
                    var rows: [String] = []
                    let s = try? await f.scan(
                        info, in: store, options: options(field), keyer: SubjectKeyer(hasher: hasher, normalization: normalization)
                    ) { row, k in rows.append("\(row):\(k.short)") }
                    log.append("\(field) \(String(describing: s)) \(rows.joined(separator: ","))")
                }
                for matcher in [SubjectMatcher.values([Array("u-3".utf8), Array("u-4242".utf8)]), .keys(drop)] {
                    let m = try await f.match(
                        info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher, normalization: normalization),
                        matcher: matcher, rows: nil)
                    log.append("match \(m.matches.map { "\($0.row):\($0.key.short)" })")
                }
                let e = try await f.erase(
                    info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher, normalization: normalization), drop: drop)
                log.append("erase \(e.droppedOrdinals) \(e.dropped.sorted { $0.key < $1.key }.map { "\($0.key.short)=\($0.value)" }) \(e.kept)")
                #expect(e.droppedTotal > 0)
                outcomes.append(log)
                written.append(try await store.read("d/" + name))
            }
            #expect(outcomes[0] == outcomes[1], "\(name) \(normalization) limit \(limit)")
            #expect(written[0] == written[1] && written[0] != bytes)
        }
    }
}

/// The count that makes the change: a dictionary-encoded column of 50 subjects over 20,000 rows in 4
/// row groups is keyed at most 4 × 50 times, not 20,000.
@Test func aDictionaryChunkIsKeyedOncePerEntry() throws {
    let path = NSTemporaryDirectory() + "lethe-entrykeys-small-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(
        [
            "-c",
            "import sys, pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({'user_id': ['u-%d' % (i * 7 % 50) for i in range(20000)]}), sys.argv[1], row_group_size=5000)",
            path,
        ], what: "entry keys test (small)")
    let file = try ParquetFile(source: InMemorySource([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))), name: "small")
    let a = keyed(file, "small", options("user_id"), normalization: .none, perRow: false)
    #expect(a.rows.count == 20000 && a.error == nil)
    #expect(a.values == 4 * 50)
    #expect(keyed(file, "small", options("user_id"), normalization: .none, perRow: true).keys == a.keys)
}

/// Near-unique values (each in one row group's dictionary only): after the first chunk, entries that
/// miss the keyer's cache almost always stop going through it (it would only grow); the keys are the
/// per-row path's. Values that recur across row groups keep using it.
@Test func nearUniqueEntriesBypassTheCacheAndRecurringOnesDoNot() throws {
    let path = NSTemporaryDirectory() + "lethe-entrykeys-unique-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            n = 30000
            pq.write_table(pa.table({'unique': ['v-%d' % i for i in range(n)], 'recurring': ['r-%d' % (i % 6000) for i in range(n)]}),
                           sys.argv[1], row_group_size=10000)
            """,
            path,
        ], what: "entry keys test (unique)")
    let file = try ParquetFile(source: InMemorySource([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))), name: "unique")
    for (column, bypassed) in [("unique", true), ("recurring", false)] {
        let keyer = SubjectKeyer(hasher: hasher)
        var keys: [SubjectKey] = []
        var serial = ParquetFormat()
        serial.keyingTasks = 1  // the cache's judgement is the one-thread path's
        _ = try serial.keys(file, "unique", options(column), keyer) { _, k in keys.append(k) }
        #expect(keys == keyed(file, "unique", options(column), normalization: .none, perRow: true).keys)
        #expect(keys.count == 30000)
        if bypassed {
            #expect(keyer.misses == 10000 + KeyedValues.probe, "the first chunk and the probe go through the cache")
        } else {
            #expect(keyer.misses == 6000)
        }
    }
}

/// Issue 12: a run's verification matches each file it rewrote against the batch's raw ids. A
/// chunk whose values are all written out PLAIN in its pages (the dictionary page's entries, PLAIN
/// data pages: pyarrow's fallback after the dictionary overflows, files without a dictionary) and
/// holds none of the ids is clean without decoding a row; a chunk that holds one is read, and the
/// matches are the per-row path's. Files by pyarrow (v1 and v2 pages, snappy, zstd, gzip) and DuckDB.
@Test func plainValueSectionsWithoutTheIdsProveTheirChunkClean() async throws {
    let dir = try peerFolder.get()
    let cases: [(String, [String])] = [
        ("dictionary-v2.parquet", ["u-4242", "u-5999"]),  // rare: absent from most row groups
        ("duckdb.parquet", ["u-4242", "u-1"]),  // `u-1` is a hot subject: in every row group
        ("fallback.parquet", ["u-4242"]),  // dictionary page, then PLAIN pages
        ("plain.parquet", ["u-4242", "u-17"]),  // PLAIN pages only; `u-17` is hot
        ("dictionary-v2.parquet", ["nobody"]),
    ]
    for (name, ids) in cases {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        var results: [[String]] = []
        var proofs: [Int] = []
        for perRow in [false, true] {
            var f = ParquetFormat()
            f.perRowKeys = perRow
            let counter = KeyedRowCounter()
            f.dictionaryProofs = counter
            let store = InMemoryObjectStore()
            store.set("d/" + name, bytes)
            let info = try #require(try await store.head("d/" + name))
            let m = try await f.match(
                info, in: store, options: options("user_id"), keyer: SubjectKeyer(hasher: hasher, normalization: .none),
                matcher: .values(Set(ids.map { Array($0.utf8) })), rows: nil)
            results.append(m.matches.map { "\($0.row):\($0.key.short)" })
            proofs.append(counter.count)
        }
        #expect(results[0] == results[1], "\(name) \(ids)")
        #expect(proofs[1] == 0)
        let groups = try ParquetFile(source: InMemorySource(bytes), name: name).rowGroups.count
        switch (name, ids) {
        case (_, ["nobody"]): #expect(proofs[0] == groups && results[0].isEmpty)
        case ("duckdb.parquet", _), ("plain.parquet", _): #expect(proofs[0] == 0 && !results[0].isEmpty)
        default: #expect(proofs[0] > 0 && proofs[0] < groups, "\(name): \(proofs[0]) of \(groups)")
        }
    }
}

/// Issue 12: a dictionary entry no row references still holds its value's bytes. A run's
/// verification that matched only rows called such a file clean (an older erasure left copies of
/// a kept value in the dictionary, and that value's subject was erased later). `match` reports the
/// value as unreferenced residue, whether the chunk could be proven by its sections or not. The file
/// is pyarrow's: an Arrow dictionary array whose dictionary holds a value no index names.
@Test func aDictionaryEntryNoRowReferencesIsResidue() async throws {
    let path = NSTemporaryDirectory() + "lethe-orphan-\(UUID().uuidString).parquet"
    defer { unlink(path) }
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            d = pa.DictionaryArray.from_arrays(pa.array([0, 2, 0, 2, 3], type=pa.int32()), pa.array(['u-kept', 'u-orphan', 'u-other', 'u-last']))
            pq.write_table(pa.table({'user_id': d, 'v': [1, 2, 3, 4, 5]}), sys.argv[1])
            """,
            path,
        ], what: "orphan dictionary entry")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let keyer = SubjectKeyer(hasher: hasher, normalization: .none)
    for perRow in [false, true] {
        var f = ParquetFormat()
        f.perRowKeys = perRow
        let store = InMemoryObjectStore()
        store.set("d/orphan.parquet", bytes)
        let info = try #require(try await store.head("d/orphan.parquet"))
        func match(_ ids: [String]) async throws -> RowsMatch {
            try await f.match(
                info, in: store, options: options("user_id"), keyer: keyer, matcher: .values(Set(ids.map { Array($0.utf8) })), rows: nil)
        }
        let orphan = try await match(["u-orphan"])
        #expect(orphan.matches.isEmpty)
        #expect(orphan.unreferenced == [keyer.key(Array("u-orphan".utf8))], "perRow \(perRow)")
        let both = try await match(["u-orphan", "u-other"])
        #expect(both.matches.map(\.row) == [1, 3])
        #expect(both.unreferenced == [keyer.key(Array("u-orphan".utf8))])
        let referenced = try await match(["u-kept", "u-last", "nobody"])
        #expect(referenced.matches.map(\.row) == [0, 2, 4])
        #expect(referenced.unreferenced.isEmpty)
    }
}

/// Issue 12: an erasure scrubs a dictionary entry no row references when it holds a dropped subject's
/// value (`ParquetFile.rewrite(…scrubbing:…)`): found on a full keying, or where the index marked the
/// object (`RecordOrdinal.unreferencedEntry`); a hint of rows only leaves other row groups unread. The
/// files are pyarrow's (Arrow dictionary arrays, each row group with the whole dictionary); the result
/// is read back by pyarrow with every other row and value as before.
@Test func anErasureScrubsADictionaryEntryNoRowReferences() async throws {
    let dir = NSTemporaryDirectory() + "lethe-scrub-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // two.parquet: groups [u-kept, u-other, u-kept] and [u-orphan, u-last]: u-orphan has a row in group 1
    // and only an entry in group 0. one.parquet: one group where no row references u-orphan.
    try Peers.python(
        [
            "-c",
            """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            vals = pa.array(['u-kept', 'u-orphan', 'u-other', 'u-last'])
            d = pa.DictionaryArray.from_arrays(pa.array([0, 2, 0, 1, 3], type=pa.int32()), vals)
            pq.write_table(pa.table({'user_id': d, 'v': [1, 2, 3, 4, 5]}), sys.argv[1] + '/two.parquet', row_group_size=3)
            d = pa.DictionaryArray.from_arrays(pa.array([0, 2, 0, 2, 3], type=pa.int32()), vals)
            pq.write_table(pa.table({'user_id': d, 'v': [1, 2, 3, 4, 5]}), sys.argv[1] + '/one.parquet')
            """,
            dir,
        ], what: "orphan dictionary entries")
    let keyer = SubjectKeyer(hasher: hasher, normalization: .none)
    let orphan = keyer.key(Array("u-orphan".utf8))
    /// The row groups whose dictionary (as pyarrow reads it: every entry) holds u-orphan.
    func holding(_ bytes: [UInt8]) throws -> [Int] {
        let p = dir + "/dict-\(UUID().uuidString).parquet"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        let out = try Peers.python(
            [
                "-c",
                """
                import sys, pyarrow.parquet as pq
                f = pq.ParquetFile(sys.argv[1], read_dictionary=['user_id'])
                print([g for g in range(f.num_row_groups) if 'u-orphan' in f.read_row_group(g).column('user_id').chunks[0].dictionary.to_pylist()])
                """, p,
            ], what: "dictionaries")
        return try JSONDecoder().decode([Int].self, from: Data(out.utf8))
    }
    /// What pyarrow reads of `bytes`: the user ids and v, one line.
    func peerRead(_ bytes: [UInt8]) throws -> String {
        let p = dir + "/out-\(UUID().uuidString).parquet"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return try Peers.python(
            [
                "-c",
                "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.column('user_id').to_pylist(), t.column('v').to_pylist())",
                p,
            ], what: "read back"
        ).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let two = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/two.parquet")))
    let one = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/one.parquet")))
    #expect(try holding(two) == [0, 1] && holding(one) == [0])  // the test's premise
    let f = ParquetFormat()
    for kind in ["no hint", "marked", "rows only"] {
        let store = InMemoryObjectStore()
        store.set("d/two.parquet", two)
        let info = try #require(try await store.head("d/two.parquet"))
        let hint: EraseHint? =
            switch kind {
            case "marked": EraseHint(version: info.version, rows: [orphan: [3, RecordOrdinal.unreferencedEntry]])
            case "rows only": EraseHint(version: info.version, rows: [orphan: [3]])
            default: nil
            }
        let outcome = try await f.erase(info, in: store, options: options("user_id"), keyer: keyer, drop: [orphan], hint: hint)
        #expect(outcome.droppedOrdinals == [3], "\(kind)")
        #expect(outcome.kept == 4)
        let out = try #require(store.bytes("d/two.parquet"))
        #expect(try peerRead(out) == "['u-kept', 'u-other', 'u-kept', 'u-last'] [1, 2, 3, 5]", "\(kind)")
        let newInfo = try #require(try await store.head("d/two.parquet"))
        let summary = try await f.scan(newInfo, in: store, options: options("user_id"), keyer: keyer) { _, _ in }
        if kind == "rows only" {
            // The index named no entry: group 0 is not read, its entry stays (and a scan still reports it).
            #expect(try holding(out) == [0] && summary.unreferenced.contains(orphan))
            #expect(outcome.exact)
        } else {
            #expect(try holding(out) == [], "\(kind)")
            // (The entries neutralised are fillers no row references: unreferenced too, but no subject's.)
            #expect(!summary.unreferenced.contains(orphan), "\(kind)")
            #expect(!outcome.exact, "\(kind): a scrubbed object's entry is read again, not derived")
        }
    }
    // No row to drop, only the entry: the object is rewritten all the same (marked or keyed in full).
    for marked in [true, false] {
        let store = InMemoryObjectStore()
        store.set("d/one.parquet", one)
        let info = try #require(try await store.head("d/one.parquet"))
        let hint = marked ? EraseHint(version: info.version, rows: [orphan: [RecordOrdinal.unreferencedEntry]]) : nil
        let outcome = try await f.erase(info, in: store, options: options("user_id"), keyer: keyer, drop: [orphan], hint: hint)
        #expect(outcome.droppedOrdinals.isEmpty && outcome.written != nil && outcome.kept == 5, "marked \(marked)")
        let out = try #require(store.bytes("d/one.parquet"))
        #expect(try holding(out) == [])
        #expect(try peerRead(out) == "['u-kept', 'u-other', 'u-kept', 'u-other', 'u-last'] [1, 2, 3, 4, 5]")
        // A subject with neither rows nor an entry: nothing written.
        let store2 = InMemoryObjectStore()
        store2.set("d/one.parquet", one)
        let info2 = try #require(try await store2.head("d/one.parquet"))
        let none = try await f.erase(info2, in: store2, options: options("user_id"), keyer: keyer, drop: [keyer.key(Array("nobody".utf8))], hint: nil)
        #expect(none.written == nil && store2.bytes("d/one.parquet") == one)
    }
}
