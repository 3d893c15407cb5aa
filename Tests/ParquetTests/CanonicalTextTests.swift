import Foundation
import LetheTestSupport
import Testing
@testable import Parquet

/// The canonical text of values at the edges the fixtures cannot reach (years outside
/// 0…9999, decimals wider than 64 bits, INT96 days out of range, times out of range).
@Suite struct CanonicalTextTests {
    func column(_ node: SchemaNode) throws -> ColumnDescriptor {
        try ParquetSchema(root: .root([node])).columns[0]
    }

    func text(_ p: UnsafeRawBufferPointer) -> String { String(decoding: p, as: UTF8.self) }

    func ints(_ node: SchemaNode, _ values: [Int64], wide: Bool = true) throws -> [String] {
        let r = ValueRenderer(try column(node))
        return values.map { text(r.int($0, wide: wide)) }
    }

    func bytes(_ node: SchemaNode, _ values: [[UInt8]]) throws -> [String] {
        let r = ValueRenderer(try column(node))
        return values.map { v in v.withUnsafeBytes { text(r.bytes($0)) } }
    }

    @Test func dates() throws {
        let date = SchemaNode.leaf("d", .int32, logicalType: .date)
        #expect(
            try ints(date, [0, 18630, -1, 11016, -719_528, -719_529, 2_932_897, -719_893, 2_147_483_647, -2_147_483_648], wide: false) == [
                "1970-01-01", "2021-01-03", "1969-12-31", "2000-02-29", "0000-01-01", "-0001-12-31", "+10000-01-01",
                "-0001-01-01", "+5881580-07-11", "-5877641-06-23",
            ])
        // The legacy converted type reads the same.
        #expect(try ints(.leaf("d", .int32, convertedType: .date), [18630], wide: false) == ["2021-01-03"])
    }

    @Test func decimalsOnIntegers() throws {
        let d2 = SchemaNode.leaf("x", .int32, logicalType: .decimal(scale: 2, precision: 9))
        #expect(
            try ints(d2, [11111, -5, 0, 100, -100, 7, Int64(Int32.min)], wide: false) == [
                "111.11", "-0.05", "0.00", "1.00", "-1.00", "0.07", "-21474836.48",
            ])
        let d0 = SchemaNode.leaf("x", .int64, logicalType: .decimal(scale: 0, precision: 18))
        #expect(try ints(d0, [42, -42, 0, Int64.min]) == ["42", "-42", "0", "-9223372036854775808"])
        // Legacy: converted type DECIMAL with the scale on the schema element.
        let legacy = SchemaNode.leaf("x", .int64, convertedType: .decimal, scale: 4, precision: 18)
        #expect(try ints(legacy, [123_456_789, 1]) == ["12345.6789", "0.0001"])
        let wide = SchemaNode.leaf("x", .int64, logicalType: .decimal(scale: 25, precision: 38))
        #expect(try ints(wide, [-3]) == ["-0.0000000000000000000000003"])
    }

    @Test func decimalsOnByteArrays() throws {
        func be(_ v: Int64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * Int64(n - 1 - $0))) } }
        let flba = SchemaNode.leaf("x", .fixedLenByteArray, logicalType: .decimal(scale: 2, precision: 38), typeLength: 16)
        let max128: [UInt8] = [0x7F] + Array(repeating: 0xFF, count: 15)
        let min128: [UInt8] = [0x80] + Array(repeating: 0, count: 15)
        #expect(
            try bytes(flba, [be(11111, 16), be(-1, 16), be(0, 16), max128, min128, be(-5, 16)]) == [
                "111.11", "-0.01", "0.00", "1701411834604692317316873037158841057.27", "-1701411834604692317316873037158841057.28", "-0.05",
            ])
        // BYTE_ARRAY: minimal length, any length (10^40 needs 17 bytes), empty = 0.
        let ba = SchemaNode.leaf("x", .byteArray, logicalType: .decimal(scale: 3, precision: 50))
        var tenTo40: [UInt8] = [1]  // big-endian 10^40
        for _ in 0..<40 {
            var carry = 0
            for i in stride(from: tenTo40.count - 1, through: 0, by: -1) {
                let v = Int(tenTo40[i]) * 10 + carry
                tenTo40[i] = UInt8(v & 0xFF); carry = v >> 8
            }
            while carry > 0 { tenTo40.insert(UInt8(carry & 0xFF), at: 0); carry >>= 8 }
        }
        if tenTo40[0] & 0x80 != 0 { tenTo40.insert(0, at: 0) }
        var minus = tenTo40.map { ~$0 }  // two's complement negation
        for i in stride(from: minus.count - 1, through: 0, by: -1) { minus[i] &+= 1; if minus[i] != 0 { break } }
        let got = try bytes(ba, [[0x2B, 0x67], [0xFF], [], tenTo40, minus, [0x00, 0x00, 0x01]])
        #expect(
            got == [
                "11.111", "-0.001", "0.000", "10000000000000000000000000000000000000.000", "-10000000000000000000000000000000000000.000", "0.001",
            ])
        let legacy = SchemaNode.leaf("x", .fixedLenByteArray, convertedType: .decimal, typeLength: 4, scale: 1, precision: 9)
        #expect(try bytes(legacy, [be(-12345, 4)]) == ["-1234.5"])
    }

    @Test func timesAndTimestamps() throws {
        let ms = SchemaNode.leaf("t", .int32, logicalType: .time(adjustedToUTC: true, unit: .millis))
        #expect(
            try ints(ms, [0, 45_296_789, 45_296_780, 86_399_999, -1, 86_400_000], wide: false) == [
                "00:00:00", "12:34:56.789", "12:34:56.78", "23:59:59.999", "-1", "86400000",
            ])
        let ns = SchemaNode.leaf("t", .int64, logicalType: .time(adjustedToUTC: false, unit: .nanos))
        #expect(try ints(ns, [1, 1_000_000_000]) == ["00:00:00.000000001", "00:00:01"])
        #expect(try ints(.leaf("t", .int64, convertedType: .timeMicros), [1_500_000]) == ["00:00:01.5"])
        let utcMs = SchemaNode.leaf("ts", .int64, logicalType: .timestamp(adjustedToUTC: true, unit: .millis))
        #expect(
            try ints(utcMs, [0, -1, 1_609_643_106_123, 1_609_643_106_000]) == [
                "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2021-01-03T03:05:06.123Z", "2021-01-03T03:05:06Z",
            ])
        let localUs = SchemaNode.leaf("ts", .int64, logicalType: .timestamp(adjustedToUTC: false, unit: .micros))
        #expect(
            try ints(localUs, [1_609_643_106_000_100, Int64.min, Int64.max]) == [
                "2021-01-03T03:05:06.0001", "-290308-12-21T19:59:05.224192", "+294247-01-10T04:00:54.775807",
            ])
        // Legacy converted types are UTC.
        #expect(try ints(.leaf("ts", .int64, convertedType: .timestampMillis), [1000]) == ["1970-01-01T00:00:01Z"])
        #expect(try ints(.leaf("ts", .int64, convertedType: .timestampMicros), [1]) == ["1970-01-01T00:00:00.000001Z"])
    }

    @Test func int96() throws {
        let r = ValueRenderer(try column(.leaf("ts", .int96)))
        func t(_ nanos: Int64, _ julian: Int32) -> String { text(r.int96(Int96(low: UInt64(bitPattern: nanos), high: UInt32(bitPattern: julian)))) }
        #expect(t(0, 2_440_588) == "1970-01-01T00:00:00Z")
        #expect(t(11_106_123_456_789, 2_459_218) == "2021-01-03T03:05:06.123456789Z")
        #expect(t(-1, 2_440_588) == "1969-12-31T23:59:59.999999999Z")  // nanoseconds past the day carry over
        #expect(t(86_400_000_000_000, 2_440_588) == "1970-01-02T00:00:00Z")
        #expect(t(0, 0) == "-4713-11-24T00:00:00Z")  // Julian day 0
        // In a Delta table (`timestamp`: microseconds) the nanoseconds are cut to microseconds, as
        // Spark reads them; year 9999 (delta-rs's `table_with_edge_timestamps`) is no overflow.
        let d = ValueRenderer(try column(.leaf("ts", .int96)), form: .int96Micros)
        func m(_ nanos: Int64, _ julian: Int32) -> String { text(d.int96(Int96(low: UInt64(bitPattern: nanos), high: UInt32(bitPattern: julian)))) }
        #expect(m(11_106_123_456_789, 2_459_218) == "2021-01-03T03:05:06.123456Z")
        #expect(m(-1, 2_440_588) == "1969-12-31T23:59:59.999999Z")
        #expect(m(0, 5_373_484) == "9999-12-31T00:00:00Z")
    }

    /// INT96 written by pyarrow (`use_deprecated_int96_timestamps`) renders at nanosecond precision
    /// where the value has it, trailing zeros removed, exactly as pyarrow reads the file (nanoseconds)
    /// across its whole range, 1677-09-21 to 2262-04-11.
    @Test func int96WrittenByPyarrowRendersToTheNanosecondAsPyarrowReadsIt() throws {
        let path = NSTemporaryDirectory() + "lethe-int96-\(UUID().uuidString).parquet"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try Peers.python(
            [
                "-c",
                """
                import sys, datetime, pyarrow as pa, pyarrow.parquet as pq
                ns = [1609646706123456789, 1609646706123456000, 1609646706123000000, 1609646706000000000, 1609646706100000000,
                      1609646706000000010, 1, 0, -1, -86400000000001, 9223372036854775807, -9223372036854775807, None]
                pq.write_table(pa.table({"ts": pa.array(ns, pa.timestamp("ns", tz="UTC"))}), sys.argv[1], use_deprecated_int96_timestamps=True)
                for v in pq.read_table(sys.argv[1]).column("ts").cast(pa.int64()).to_pylist():
                    if v is None: print("null"); continue
                    s, f = divmod(v, 10**9)
                    d = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=s)
                    print(d.strftime("%Y-%m-%dT%H:%M:%S") + (("." + ("%09d" % f).rstrip("0")) if f else "") + "Z")
                """, path,
            ], what: "INT96 written by pyarrow")
        let expected = out.split(separator: "\n").map(String.init)
        #expect(expected.count == 13 && expected[0] == "2021-01-03T04:05:06.123456789Z" && expected[1] == "2021-01-03T04:05:06.123456Z")
        let file = try ParquetFile(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))), name: path)
        #expect(file.schema.columns[0].physicalType == .int96)
        var got: [String] = []
        for g in 0..<file.rowGroups.count {
            try file.scanColumn(0, rowGroup: g) { _, v in got.append(v.map { String(decoding: $0, as: UTF8.self) } ?? "null") }
        }
        #expect(got == expected)
    }

    @Test func uuidsFloat16AndIntegers() throws {
        let uuid = SchemaNode.leaf("u", .fixedLenByteArray, logicalType: .uuid, typeLength: 16)
        let u: [UInt8] = [0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00]
        #expect(try bytes(uuid, [u]) == ["123e4567-e89b-12d3-a456-426614174000"])
        let half = SchemaNode.leaf("h", .fixedLenByteArray, logicalType: .float16, typeLength: 2)
        let halves = try bytes(half, [[0x00, 0x3C], [0x00, 0x7C], [0x00, 0xFC], [0x01, 0x00], [0x00, 0x80], [0xFF, 0x7B], [0x66, 0x2E]])
        #expect(
            halves == [
                "1.0", "inf", "-inf", "6e-08", "-0.0", "65504.0", "0.1",
            ])
        // Plain binaries and strings are their bytes; a 16-byte binary without the annotation too.
        #expect(try bytes(.leaf("b", .fixedLenByteArray, typeLength: 16), [Array("0123456789abcdef".utf8)]) == ["0123456789abcdef"])
        let u8 = SchemaNode.leaf("x", .int32, logicalType: .integer(bitWidth: 8, signed: false))
        #expect(try ints(u8, [255, -1], wide: false) == ["255", "4294967295"])
        #expect(try ints(.leaf("x", .int64, convertedType: .uint64), [-1]) == ["18446744073709551615"])
        #expect(try ints(.leaf("x", .int64), [-654_807_448]) == ["-654807448"])
    }

    /// A BYTE_ARRAY decimal (pyarrow cannot write one): written with our writer, pyarrow
    /// reads the same decimal values that scanColumn renders.
    @Test func byteArrayDecimalAgreesWithPyarrow() throws {
        let schema = try ParquetSchema(
            root: .root([
                .leaf("amount", .byteArray, logicalType: .decimal(scale: 2, precision: 20))
            ]))
        var w = try ParquetWriter(sink: InMemorySink(), schema: schema)
        let values: [[UInt8]] = [[0x2B, 0x67], [0xFF, 0xFB], [0x00], [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]]
        _ = try w.writeRowGroup([ColumnData(values: .byteArray(ByteArrayValues(values)), definitionLevels: [1, 1, 1, 0, 1])])
        _ = try w.close()
        let file = try ParquetFile(bytes: w.sink.bytes)
        var scanned: [String?] = []
        try file.scanColumn(path: ["amount"], rowGroup: 0) { _, v in scanned.append(v.map { String(decoding: $0, as: UTF8.self) }) }
        #expect(scanned == ["111.11", "-0.05", "0.00", nil, "23611832414348226068.47"])
        let dir = Env.tempDir("bytearray-decimal")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("d.parquet").path
        try Data(w.sink.bytes).write(to: URL(fileURLWithPath: path))
        let out = try Peers.python(
            ["-c", "import sys, pyarrow.parquet as pq\nfor v in pq.read_table(sys.argv[1]).column(0).to_pylist(): print(v)", path],
            what: "pyarrow reading a BYTE_ARRAY decimal")
        #expect(out.split(separator: "\n").map(String.init) == ["111.11", "-0.05", "0.00", "None", "23611832414348226068.47"])
    }
}
