import Testing

@testable import Parquet

/// Pages are compressed and decompressed with libsnappy (`Snappy.compressWithLibrary`,
/// `decompressWithLibrary`, through `Codecs`); the Swift coder stays for `Snappy.patch`. The two
/// must read each other's blocks, and agree on every damaged block: both refuse it as
/// `.decompression`, or both read the same bytes.
@Suite struct SnappyLibraryTests {
    static func inputs() -> [[UInt8]] {
        var rng = SplitMix(state: 12)
        var words: [UInt8] = []
        while words.count < 200_000 { words += Array("u-\(Int.random(in: 0..<9_999_999, using: &rng)) click page_view DE ".utf8) }
        let random = (0..<150_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return [[], [7], Array(repeating: 0, count: 100_000), words, random, Array(words.prefix(70_000)) + random.prefix(70_000)]
    }

    @Test func libraryAndSwiftReadEachOthersBlocks() throws {
        for input in Self.inputs() {
            let swift = input.withUnsafeBytes { Snappy.compress($0) }
            let library = input.withUnsafeBytes { Snappy.compressWithLibrary($0) }
            for block in [swift, library] {
                let a = try block.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompress(p, expected: input.count) }
                let b = try block.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompressWithLibrary(p, expected: input.count) }
                #expect(a == input)
                #expect(b == input)
            }
            // Through the codec seam, as pages are written and read.
            let page = try input.withUnsafeBytes { (p) throws(ParquetError) in try Codecs.compress(.snappy, p) }
            #expect(try page.withUnsafeBytes { (p) throws(ParquetError) in try Codecs.decompress(.snappy, p, expected: input.count) } == input)
        }
    }

    @Test func damagedBlocksAreRefusedOrReadAlikeByBoth() throws {
        var rng = SplitMix(state: 13)
        var refused = 0, read = 0
        for input in Self.inputs() where !input.isEmpty {
            let block = input.withUnsafeBytes { Snappy.compressWithLibrary($0) }
            for _ in 0..<300 {
                var m = block
                switch Int.random(in: 0..<3, using: &rng) {
                case 0:
                    let i = Int.random(in: 0..<m.count, using: &rng)
                    m[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1: m = Array(m.prefix(Int.random(in: 0..<m.count, using: &rng)))
                default: m[Int.random(in: 0..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                var swiftError: (any Error)?, libraryError: (any Error)?
                var swiftOut: [UInt8]?, libraryOut: [UInt8]?
                do { swiftOut = try m.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompress(p, expected: input.count) } } catch {
                    swiftError = error
                }
                do {
                    libraryOut = try m.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompressWithLibrary(p, expected: input.count) }
                } catch { libraryError = error }
                #expect(swiftOut == libraryOut)
                #expect((swiftError == nil) == (libraryError == nil))
                if let libraryError {
                    #expect((libraryError as? ParquetError)?.code == .decompression)
                    refused += 1
                } else {
                    read += 1
                }
            }
        }
        #expect(refused > 100 && read > 100, "refused \(refused), read \(read)")
        // A length preamble that disagrees with the page header is named.
        let block = [UInt8](repeating: 1, count: 100).withUnsafeBytes { Snappy.compressWithLibrary($0) }
        #expect(throws: ParquetError.self) { try block.withUnsafeBytes { (p) throws(ParquetError) in try Snappy.decompressWithLibrary(p, expected: 99) } }
    }
}
