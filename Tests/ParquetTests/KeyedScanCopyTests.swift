import Foundation
import Testing
@testable import Parquet

/// The copies the keyed scan of a subject column avoids or shortens (issue 16, session 23).
@Suite struct KeyedScanCopyTests {
    /// PLAIN `BYTE_ARRAY` decoding (every dictionary page) copies a value of up to 16 bytes as one 16-byte
    /// load and store: every length around that limit, values at the end of the page (fewer than 16 bytes
    /// after them: copied by length), a page decoded after another into the same accumulator, and bytes
    /// after the values that must not leak into them.
    @Test func plainByteArraysOfEveryShortLengthDecodeAsWritten() throws {
        var rng = SplitMix(state: 23)
        func value(_ len: Int) -> [UInt8] { (0..<len).map { _ in UInt8.random(in: 1...255, using: &rng) } }
        func page(_ values: [[UInt8]], trailing: Int) -> [UInt8] {
            var p: [UInt8] = []
            for v in values {
                withUnsafeBytes(of: UInt32(v.count).littleEndian) { p += $0 }
                p += v
            }
            return p + [UInt8](repeating: 0xEE, count: trailing)
        }
        var cases: [[[UInt8]]] = []
        for len in 0...40 { cases.append([value(len)]) }  // alone: the page ends right after it
        for len in 0...40 { cases.append([value(len), value(3), value(len), value(17), value(16), value(len)]) }
        cases.append((0..<500).map { _ in value(Int.random(in: 0...34, using: &rng)) })
        for values in cases {
            for trailing in [0, 5, 16, 40] {
                let bytes = page(values, trailing: trailing)
                var acc = ValueAccumulator(type: .byteArray, width: 0)
                let used = try bytes.withUnsafeBytes { try acc.appendPlain($0, count: values.count) }
                #expect(used == bytes.count - trailing)
                #expect(acc.result() == .byteArray(ByteArrayValues(values)), "\(values.map(\.count)) + \(trailing) bytes")
                // A second page into the same accumulator (a chunk of several pages): appended after the first.
                let more = [value(9), value(0), value(16), value(21)]
                let second = page(more, trailing: trailing)
                _ = try second.withUnsafeBytes { try acc.appendPlain($0, count: more.count) }
                #expect(acc.result() == .byteArray(ByteArrayValues(values + more)), "two pages: \(values.map(\.count))")
            }
        }
    }

    /// `SparseSource.read` hands a whole segment back without copying it, and any other range inside a
    /// segment as before: the bytes of the range, whichever segment holds it.
    @Test func sparseSourceReadsWholeSegmentsAndPartsOfThem() throws {
        var source = SparseSource(size: 1000)
        let a = (0..<100).map { UInt8($0) }, b = (0..<50).map { UInt8(200 - $0) }
        source.add(100, a)
        source.add(400, b)
        #expect(try source.read(100..<200) == a)
        #expect(try source.read(400..<450) == b)
        #expect(try source.read(100..<150) == Array(a[0..<50]))
        #expect(try source.read(150..<200) == Array(a[50..<100]))
        #expect(try source.read(120..<130) == Array(a[20..<30]))
        #expect(try source.read(400..<401) == [b[0]])
        #expect(try source.read(449..<450) == [b[49]])
        #expect(throws: ParquetError.self) { try source.read(150..<250) }
        #expect(throws: ParquetError.self) { try source.read(0..<10) }
    }
}
